"""A real, tiny filesystem that really fills up: a tmpfs of a given size, mounted for one test.

``tiny_disk(path, size)`` mounts a tmpfs of ``size`` bytes at ``path`` and always unmounts it
afterwards, even when the test fails; ``TinyDisk.fill()`` writes a filler file until the kernel
answers ENOSPC, so the next byte anyone writes there fails, and ``free()`` removes it.

Mounting needs CAP_SYS_ADMIN. As root it is done directly. Otherwise a test decorated with
:func:`needs_tmpfs` runs itself again in a subprocess inside a new user and mount namespace
(``unshare --user --map-root-user --mount``), where an unprivileged user may mount a tmpfs;
its outcome is the test's. When neither is possible the test is skipped with the reason, and
with ``MISSIONWATCH_REQUIRE_FAULTS=1`` (CI) it fails instead.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_FAULTS = os.environ.get("MISSIONWATCH_REQUIRE_FAULTS", "") == "1"
# Set in the namespace's copy of the test, so it does not try to start another one.
IN_NAMESPACE = "MISSIONWATCH_FAULTS_IN_NAMESPACE"
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount")
FILLER = ".filler"
CHUNK = 64 * 1024


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``; under ``MISSIONWATCH_REQUIRE_FAULTS=1`` fail instead."""
    if REQUIRE_FAULTS:
        pytest.fail(f"MISSIONWATCH_REQUIRE_FAULTS=1 but {reason}")
    pytest.skip(reason)


def is_mount_point(path: Path) -> bool:
    """Whether a filesystem is mounted exactly at ``path`` (per /proc/self/mountinfo)."""
    target = str(Path(path).resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        return any(line.split()[4] == target for line in mounts)


@functools.cache
def _direct_mount_works() -> str | None:
    """None when this process can mount a tmpfs, else why not."""
    if os.geteuid() != 0:
        return "not root (mounting a tmpfs needs CAP_SYS_ADMIN)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"mw-tmpfs-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True, capture_output=True)
        return None
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


@functools.cache
def _namespace_works() -> str | None:
    """None when ``unshare --user --map-root-user --mount`` can mount a tmpfs, else why not."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    done = subprocess.run(
        [*UNSHARE, "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" "
         "&& umount \"$d\"; r=$?; rmdir \"$d\"; exit $r"],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"unshare --user --map-root-user --mount cannot mount a tmpfs: " \
               f"{done.stderr.strip() or done.returncode}"
    return None


def _forced_mode() -> str:
    # "namespace" runs the namespace path even as root, so that path is tested too.
    return os.environ.get("MISSIONWATCH_FAULTS_MOUNT", "")


def needs_tmpfs(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``test`` where it can mount a tmpfs: here as root, else again inside a user and
    mount namespace (its pytest outcome is this test's), else skip (fail under CI)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        direct = _direct_mount_works()
        if os.environ.get(IN_NAMESPACE) == "1" or (direct is None
                                                    and _forced_mode() != "namespace"):
            if direct is not None:
                pytest.fail(f"inside the namespace, mounting a tmpfs still fails: {direct}")
            return test(*args, **kwargs)
        why_not = _namespace_works()
        if why_not is not None:
            skip_or_fail(f"cannot mount a tmpfs: {direct}; {why_not}")
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        env = {**os.environ, IN_NAMESPACE: "1"}
        env.pop("PYTEST_XDIST_WORKER", None)
        done = subprocess.run(
            [*UNSHARE, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "no:xdist", node],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{node} failed inside a user and mount namespace:\n"
                        f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}", pytrace=False)
        if " passed" not in done.stdout:
            pytest.fail(f"{node} did not pass inside the namespace:\n{done.stdout[-3000:]}",
                        pytrace=False)
        return None

    return run


class TinyDisk:
    """A mounted tmpfs: its path, and a filler that takes every free byte."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.filler = path / FILLER

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self) -> int:
        """Write the filler until ENOSPC; the bytes it holds. Afterwards not one more data
        block can be written on this filesystem."""
        block = b"\0" * CHUNK
        written = 0
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (CHUNK, 4096, 512, 1):   # ever smaller, to the last byte
                while True:
                    try:
                        written += os.write(descriptor, block[:size])
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(descriptor)
        return written

    def free(self) -> None:
        """Remove the filler: the space is back."""
        self.filler.unlink(missing_ok=True)

    def files(self) -> list[str]:
        """Every file on the disk but the filler, as paths relative to its root."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                      if p.is_file() and p != self.filler)


@contextlib.contextmanager
def tiny_disk(path: Path, size: int) -> Iterator[TinyDisk]:
    """A tmpfs of ``size`` bytes mounted at ``path`` (made if missing) for the block; always
    unmounted afterwards, even when the block fails."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if is_mount_point(path):
        raise AssertionError(f"{path} is already a mount point")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                    str(path)], check=True, capture_output=True, text=True)
    try:
        yield TinyDisk(path, size)
    finally:
        unmount(path)


def unmount(path: Path) -> None:
    """Unmount ``path``; a lazy unmount if a process still holds a file there (it is detached
    at once and goes when the last file closes); fail loudly if it stays mounted."""
    done = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True,
                       check=False)
    if is_mount_point(path):
        raise AssertionError(f"{path} is still mounted: {done.stderr.strip()}")
