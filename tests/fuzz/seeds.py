"""Small seeds for the fuzz tests, cut in memory from the recorded payloads in tests/fixtures."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@cache
def fixture_bytes(name: str) -> bytes:
    """The bytes of ``tests/fixtures/<name>``."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    """A fresh parse of the JSON fixture ``name``."""
    return json.loads(fixture_bytes(name).decode("utf-8-sig"))


def trimmed_collection(name: str, *, first: int, keep: Any = None, list_key: str = "features",
                       ) -> dict[str, Any]:
    """The fixture's collection with only its first ``first`` items (and those ``keep`` picks)."""
    data = fixture_json(name)
    items = data[list_key]
    chosen = items[:first]
    if keep is not None:
        chosen += [item for item in items[first:] if keep(item)][:first]
    data[list_key] = chosen
    return data


def text(tree: Any) -> str:
    """JSON text of a seed (the form the mutators take)."""
    return json.dumps(tree)


def decoded(body: bytes) -> Any:
    """The JSON document of a body as the sources' ``fetch`` decode it, or None if it is not."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
