"""The deployment files under deploy/ say only what the product accepts: every command they run
parses, every setting they set exists, the image copies every package, the units verify."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import app
from settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KNOWN_ENV = {s.env for s in SETTINGS}


def _app_command(argv: list[str]) -> None:
    """``python app.py ARGS`` must parse; gunicorn must be given our config file."""
    if argv[:2] == ["python", "app.py"]:
        app.build_parser().parse_args(argv[2:])
    elif argv[0].endswith("gunicorn"):
        assert argv[1:] == ["--config", "deploy/gunicorn.conf.py"]
    else:
        raise AssertionError(f"unexpected command {argv}")


def test_the_compose_file_runs_our_commands_with_known_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "init", "app", "poller"}
    for name in ("init", "app", "poller"):
        service = services[name]
        _app_command(service["command"])
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        unknown = set(service["environment"]) - KNOWN_ENV
        assert not unknown, f"{name}: settings that do not exist: {unknown}"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["poller"]["command"] == ["python", "app.py", "feeds", "poll"]
    assert services["app"]["ports"] == ["127.0.0.1:8050:8050"]  # loopback only, no TLS
    assert services["app"]["depends_on"]["init"]["condition"] == \
        "service_completed_successfully"


def test_the_image_copies_every_package_and_the_bundled_data() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    copied |= set(re.search(r"^COPY ((?:\S+ )+)\./$", dockerfile, re.MULTILINE).group(1).split())
    project = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"^include = \[(.*)\]$", project, re.MULTILINE).group(1)
    packages = {p.strip(' "*') for p in include.split(",")}
    py_modules = re.search(r"^py-modules = \[(.*)\]$", project, re.MULTILINE).group(1)
    modules = {m.strip(' "') + ".py" for m in py_modules.split(",")}
    assert packages | modules | {"data", "deploy", "pyproject.toml"} <= copied
    command = re.search(r'^CMD (\[.*\])$', dockerfile, re.MULTILINE).group(1)
    _app_command(yaml.safe_load(command))


def test_the_units_and_their_settings_file() -> None:
    env = (DEPLOY / "systemd" / "env.example").read_text()
    names = set(re.findall(r"^([A-Z_]+)=", env, re.MULTILINE))
    assert names <= KNOWN_ENV and {"DATABASE_URL", "MISSIONWATCH_SECRET_KEY"} <= names
    for unit in ("web", "poller"):
        text = (DEPLOY / "systemd" / f"missionwatch-{unit}.service").read_text()
        start = re.search(r"^ExecStart=(.*)$", text, re.MULTILINE).group(1).split()
        _app_command(["python", *start[1:]] if start[0].endswith("/python") else start)
        assert "EnvironmentFile=/etc/missionwatch/env" in text
        assert "UMask=0077" in text  # files it writes hold personal data


def test_the_units_verify_with_systemd(tmp_path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    venv = Path(app.__file__).resolve().parent / ".venv"
    if not (venv / "bin" / "gunicorn").exists():
        pytest.skip("no .venv with gunicorn next to app.py")
    for unit in ("web", "poller"):
        text = (DEPLOY / "systemd" / f"missionwatch-{unit}.service").read_text()
        text = text.replace("/opt/missionwatch", str(ROOT)).replace(
            "/etc/missionwatch/env", str(DEPLOY / "systemd" / "env.example"))
        (tmp_path / f"missionwatch-{unit}.service").write_text(text)
    result = subprocess.run(["systemd-analyze", "verify",
                             *sorted(str(p) for p in tmp_path.glob("*.service"))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_gunicorn_settings_follow_the_missionwatch_settings(monkeypatch) -> None:
    from gunicorn.config import Config

    monkeypatch.setenv("MISSIONWATCH_WORKERS", "3")
    monkeypatch.setenv("MISSIONWATCH_THREADS", "5")
    monkeypatch.setenv("MISSIONWATCH_PORT", "8123")
    namespace: dict = {"__file__": str(DEPLOY / "gunicorn.conf.py")}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"),
         namespace)
    config = Config()
    for key, value in namespace.items():
        if key in config.settings:
            config.set(key, value)
    assert config.workers == 3 and config.threads == 5
    assert config.bind == ["127.0.0.1:8123"]
    assert config.preload_app and config.worker_class_str == "gthread"
    assert config.wsgi_app == "app:wsgi()"
    assert "%(U)s" in config.access_log_format and "%(q)s" not in config.access_log_format \
        and "%(r)s" not in config.access_log_format  # never the query string (tokens)
