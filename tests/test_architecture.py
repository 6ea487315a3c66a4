"""Structural rules: the core never imports Dash or Plotly; settings are all documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import settings

ROOT = Path(__file__).resolve().parent.parent


def _core_modules() -> list[str]:
    modules = []
    for package in ("layers", "feeds", "store"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "migrations" in relative.parts:
                continue
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
    return modules


def test_core_packages_import_neither_dash_nor_plotly() -> None:
    modules = _core_modules()
    assert "layers.locations" in modules
    assert "store.roster" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dash', 'plotly'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"core imported: {result.stdout}"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.settings_table_markdown() in readme, (
        "README's configuration table is out of date: paste settings.settings_table_markdown()"
    )


def test_settings_from_env_converts_and_validates() -> None:
    parsed = settings.Settings.from_env({"MISSIONWATCH_PORT": "9000",
                                         "MISSIONWATCH_ONLINE_GEOCODING": "yes"})
    assert parsed.port == 9000
    assert parsed.online_geocoding is True
    assert parsed.resolved_database_url.startswith("sqlite:///")
    import pytest

    with pytest.raises(ValueError, match="MISSIONWATCH_PORT"):
        settings.Settings.from_env({"MISSIONWATCH_PORT": "eighty"})
    with pytest.raises(ValueError, match="h3_resolution"):
        settings.Settings.from_env({"MISSIONWATCH_H3_RESOLUTION": "16"})
    with pytest.raises(ValueError, match="boolean"):
        settings.Settings.from_env({"MISSIONWATCH_ONLINE_GEOCODING": "maybe"})


def test_access_settings_are_validated() -> None:
    import pytest

    parsed = settings.Settings.from_env({"MISSIONWATCH_SIGNIN_RATE_LIMIT": "5/minute, 20 per hour"})
    assert parsed.signin_rate_limit.startswith("5/minute")
    assert not parsed.secure_cookies  # loopback over http
    assert settings.Settings.from_env({"MISSIONWATCH_HOST": "0.0.0.0"}).secure_cookies
    assert not settings.Settings.from_env({"MISSIONWATCH_HOST": "0.0.0.0",
                                           "MISSIONWATCH_COOKIE_SECURE": "false"}).secure_cookies
    with pytest.raises(ValueError, match="signin_rate_limit"):
        settings.Settings.from_env({"MISSIONWATCH_SIGNIN_RATE_LIMIT": "lots"})
    with pytest.raises(ValueError, match="cookie_secure"):
        settings.Settings.from_env({"MISSIONWATCH_COOKIE_SECURE": "sometimes"})
    with pytest.raises(ValueError, match="secret_key"):
        settings.Settings.from_env({"MISSIONWATCH_SECRET_KEY": "short"})
    with pytest.raises(ValueError, match="session_idle_minutes"):
        settings.Settings.from_env({"MISSIONWATCH_SESSION_IDLE_MINUTES": "0"})
