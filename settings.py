"""Every knob of Mission Watch: its name, environment variable, default and one line of help.

This is the only module that reads ``os.environ``. The README's configuration table and the
CLI's ``--help`` epilogue are checked against :data:`SETTINGS` by the tests, so a setting
cannot exist without being documented.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent
BUNDLED_DATA_DIR = PROJECT_ROOT / "data"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One configurable value: the field name, its environment variable and help text."""

    name: str
    env: str
    default: Any
    help: str
    kind: type = str


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "MISSIONWATCH_DATA_DIR", str(PROJECT_ROOT / "var"),
            "Directory for the SQLite store and generated files (created on first use)."),
    Setting("database_url", "DATABASE_URL", "",
            "SQLAlchemy URL of the store; empty means SQLite at DATA_DIR/missionwatch.sqlite3. "
            "PostgreSQL: postgresql+psycopg://user:pass@host/db."),
    Setting("host", "MISSIONWATCH_HOST", "127.0.0.1",
            "Address the dashboard listens on (loopback by default)."),
    Setting("port", "MISSIONWATCH_PORT", 8050, "Port the dashboard listens on.", int),
    Setting("h3_resolution", "MISSIONWATCH_H3_RESOLUTION", 9,
            "H3 resolution of the cell stored for every location (0-15; 9 is about 0.1 km2).",
            int),
    Setting("basemap_url", "MISSIONWATCH_BASEMAP_URL", "",
            "Street basemap: an XYZ raster tile URL with {z}, {x} and {y} (https), e.g. a tile "
            "server of your own. Empty: the bundled boundaries only (works with no internet); "
            "the boundaries are drawn over the tiles either way, so a map whose tiles cannot "
            "load still shows the states."),
    Setting("basemap_attribution", "MISSIONWATCH_BASEMAP_ATTRIBUTION", "",
            "Attribution shown on the map for the tiles of MISSIONWATCH_BASEMAP_URL."),
    Setting("display_h3_resolution", "MISSIONWATCH_DISPLAY_H3_RESOLUTION", 5,
            "Coarser H3 resolution used to aggregate residences on maps (never single homes).",
            int),
    Setting("demo_seed", "MISSIONWATCH_DEMO_SEED", 20261127,
            "Seed of the synthetic demo roster; the same seed gives the same roster.", int),
    Setting("jurisdiction_tolerance_km", "MISSIONWATCH_JURISDICTION_TOLERANCE_KM", 10.0,
            "How far outside the generalised boundary a point may lie and still be matched to "
            "the nearest jurisdiction (atolls, generalised coastlines).", float),
    Setting("online_geocoding", "MISSIONWATCH_ONLINE_GEOCODING", False,
            "Geocode addresses without coordinates through the US Census geocoder before the "
            "offline gazetteer (off by default: nothing leaves the machine).", _bool),
    Setting("census_geocoder_url", "MISSIONWATCH_CENSUS_GEOCODER_URL",
            "https://geocoding.geo.census.gov/geocoder/locations/onelineaddress",
            "Endpoint of the US Census one-line address geocoder."),
    Setting("log_level", "MISSIONWATCH_LOG_LEVEL", "INFO",
            "Logging level: DEBUG, INFO, WARNING or ERROR."),
    Setting("user_agent", "MISSIONWATCH_USER_AGENT",
            "MissionWatch/0.1 (set MISSIONWATCH_USER_AGENT to an app name and contact e-mail)",
            "User-Agent sent to every feed; api.weather.gov requires one with contact details."),
    Setting("http_connect_timeout_s", "MISSIONWATCH_HTTP_CONNECT_TIMEOUT_S", 5.0,
            "Seconds to wait for a feed server to accept the connection.", float),
    Setting("http_read_timeout_s", "MISSIONWATCH_HTTP_READ_TIMEOUT_S", 30.0,
            "Seconds to wait for a feed server's answer between bytes.", float),
    Setting("http_retries", "MISSIONWATCH_HTTP_RETRIES", 2,
            "Retries after a connection error, 429 or 5xx (never after other 4xx).", int),
    Setting("http_max_bytes", "MISSIONWATCH_HTTP_MAX_BYTES", 25_000_000,
            "Largest feed body accepted; a larger one is refused, the last good data kept.", int),
    Setting("feed_stale_factor", "MISSIONWATCH_FEED_STALE_FACTOR", 3.0,
            "A feed is stale when its last success is older than this many poll intervals.",
            float),
    Setting("nws_alerts_url", "MISSIONWATCH_NWS_ALERTS_URL",
            "https://api.weather.gov/alerts/active",
            "NWS active alerts (GeoJSON)."),
    Setting("nws_api_base", "MISSIONWATCH_NWS_API_BASE", "https://api.weather.gov",
            "Base of the NWS API for zone shapes; zone URLs in alerts are rewritten onto it."),
    Setting("nws_interval_s", "MISSIONWATCH_NWS_INTERVAL_S", 60, "Seconds between NWS polls.",
            int),
    Setting("usgs_url", "MISSIONWATCH_USGS_URL",
            "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/2.5_day.geojson",
            "USGS earthquake summary feed (GeoJSON)."),
    Setting("usgs_interval_s", "MISSIONWATCH_USGS_INTERVAL_S", 60,
            "Seconds between USGS polls.", int),
    Setting("nhc_url", "MISSIONWATCH_NHC_URL", "https://www.nhc.noaa.gov/CurrentStorms.json",
            "NHC current storms (JSON with links to each storm's GIS products)."),
    Setting("nhc_interval_s", "MISSIONWATCH_NHC_INTERVAL_S", 300,
            "Seconds between NHC polls.", int),
    Setting("wildfire_url", "MISSIONWATCH_WILDFIRE_URL",
            "https://services3.arcgis.com/T4QMspbfLg3qTGWY/arcgis/rest/services/"
            "WFIGS_Interagency_Perimeters_Current/FeatureServer/0/query",
            "NIFC/WFIGS current interagency fire perimeters (ArcGIS FeatureServer query)."),
    Setting("wildfire_interval_s", "MISSIONWATCH_WILDFIRE_INTERVAL_S", 600,
            "Seconds between wildfire perimeter polls.", int),
    Setting("fema_url", "MISSIONWATCH_FEMA_URL",
            "https://www.fema.gov/api/open/v2/DisasterDeclarationsSummaries",
            "OpenFEMA disaster declarations summaries (v2)."),
    Setting("fema_interval_s", "MISSIONWATCH_FEMA_INTERVAL_S", 1800,
            "Seconds between OpenFEMA polls.", int),
    Setting("gdacs_url", "MISSIONWATCH_GDACS_URL", "https://www.gdacs.org/xml/rss.xml",
            "GDACS current events (RSS)."),
    Setting("gdacs_interval_s", "MISSIONWATCH_GDACS_INTERVAL_S", 600,
            "Seconds between GDACS polls.", int),
    Setting("tsunami_urls", "MISSIONWATCH_TSUNAMI_URLS",
            "https://www.tsunami.gov/events/xml/PAAQAtom.xml,"
            "https://www.tsunami.gov/events/xml/PHEBAtom.xml",
            "Tsunami warning centre Atom feeds (comma-separated; NTWC and PTWC)."),
    Setting("tsunami_interval_s", "MISSIONWATCH_TSUNAMI_INTERVAL_S", 60,
            "Seconds between tsunami feed polls.", int),
    Setting("secret_key", "MISSIONWATCH_SECRET_KEY", "",
            "Key that signs session cookies; empty means a random key kept in "
            "DATA_DIR/secret_key (created with mode 0600 on first run)."),
    Setting("cookie_secure", "MISSIONWATCH_COOKIE_SECURE", "auto",
            "Send the session cookie over HTTPS only: true, false, or auto (true unless the "
            "dashboard listens on loopback, where plain http is fine)."),
    Setting("session_idle_minutes", "MISSIONWATCH_SESSION_IDLE_MINUTES", 30,
            "A signed-in session ends after this many minutes without user activity "
            "(automatic refreshes do not count; display-token sessions are exempt).", int),
    Setting("session_max_hours", "MISSIONWATCH_SESSION_MAX_HOURS", 12,
            "A signed-in session ends this many hours after sign-in, active or not.", int),
    Setting("display_session_days", "MISSIONWATCH_DISPLAY_SESSION_DAYS", 30,
            "Lifetime of a wall display's session cookie since its last request; its token "
            "is re-checked on every request, so revoking it ends the session at once.", int),
    Setting("wall_refresh_s", "MISSIONWATCH_WALL_REFRESH_S", 30.0,
            "Seconds between a wall display's updates (it also says when updates stop "
            "arriving).", float),
    Setting("wall_rotate_s", "MISSIONWATCH_WALL_ROTATE_S", 20.0,
            "Seconds each top incident's close-up stays on a wall display before the next.",
            float),
    Setting("wall_closeups", "MISSIONWATCH_WALL_CLOSEUPS", 6,
            "How many top incidents a wall display rotates through.", int),
    Setting("wall_announce_minutes", "MISSIONWATCH_WALL_ANNOUNCE_MINUTES", 30,
            "How long a new incident that affects missions stays highlighted and first on a "
            "wall display.", int),
    Setting("wall_chime", "MISSIONWATCH_WALL_CHIME", False,
            "Play a short chime on wall displays when a new incident affecting missions is "
            "announced (kiosk browsers need --autoplay-policy=no-user-gesture-required).",
            _bool),
    Setting("signin_rate_limit", "MISSIONWATCH_SIGNIN_RATE_LIMIT", "10 per minute;50 per hour",
            "Sign-in and token attempts allowed per client address (in memory, per process)."),
    Setting("signin_lockout_failures", "MISSIONWATCH_SIGNIN_LOCKOUT_FAILURES", 5,
            "Failed sign-ins in a row that lock an account for a while.", int),
    Setting("signin_lockout_minutes", "MISSIONWATCH_SIGNIN_LOCKOUT_MINUTES", 15,
            "How long an account stays locked after too many failed sign-ins.", int),
    Setting("workers", "MISSIONWATCH_WORKERS", 0,
            "Worker processes under gunicorn (deploy/gunicorn.conf.py); 0 means one per CPU "
            "core (at least 2, at most 8). Each holds the roster, its index and its caches "
            "in memory and redoes their work after a change, so more workers than cores only "
            "cost memory and time (see benchmarks/README.md).", int),
    Setting("threads", "MISSIONWATCH_THREADS", 4,
            "Threads per gunicorn worker: requests one worker answers at once.", int),
    Setting("trusted_proxies", "MISSIONWATCH_TRUSTED_PROXIES", 0,
            "How many reverse proxies (TLS terminators, load balancers) stand in front of "
            "the dashboard. Their X-Forwarded-For/-Proto/-Host headers are believed, so "
            "sign-in limits and the audit log see the real client address; 0 believes none.",
            int),
)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$")

_BY_NAME = {s.name: s for s in SETTINGS}


def _convert(setting: Setting, raw: str) -> Any:
    if setting.kind is bool or setting.kind is _bool:
        return _bool(raw)
    try:
        return setting.kind(raw)
    except ValueError as exc:
        raise ValueError(f"{setting.env}: expected {setting.kind.__name__}, got {raw!r}") from exc


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved configuration. Build it with :meth:`from_env` or :meth:`with_overrides`."""

    data_dir: str
    database_url: str
    host: str
    port: int
    h3_resolution: int
    basemap_url: str
    basemap_attribution: str
    display_h3_resolution: int
    demo_seed: int
    jurisdiction_tolerance_km: float
    online_geocoding: bool
    census_geocoder_url: str
    log_level: str
    user_agent: str
    http_connect_timeout_s: float
    http_read_timeout_s: float
    http_retries: int
    http_max_bytes: int
    feed_stale_factor: float
    nws_alerts_url: str
    nws_api_base: str
    nws_interval_s: int
    usgs_url: str
    usgs_interval_s: int
    nhc_url: str
    nhc_interval_s: int
    wildfire_url: str
    wildfire_interval_s: int
    fema_url: str
    fema_interval_s: int
    gdacs_url: str
    gdacs_interval_s: int
    tsunami_urls: str
    tsunami_interval_s: int
    secret_key: str = dataclasses.field(repr=False)  # never in logs or tracebacks
    cookie_secure: str
    session_idle_minutes: int
    session_max_hours: int
    display_session_days: int
    wall_refresh_s: float
    wall_rotate_s: float
    wall_closeups: int
    wall_announce_minutes: int
    wall_chime: bool
    signin_rate_limit: str
    signin_lockout_failures: int
    signin_lockout_minutes: int
    workers: int
    threads: int
    trusted_proxies: int

    def __post_init__(self) -> None:
        for name in ("h3_resolution", "display_h3_resolution"):
            value = getattr(self, name)
            if not 0 <= value <= 15:
                raise ValueError(f"{name} must be between 0 and 15, got {value}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if self.jurisdiction_tolerance_km < 0:
            raise ValueError("jurisdiction_tolerance_km must be >= 0")
        for setting in SETTINGS:
            if setting.name.endswith("_interval_s") and getattr(self, setting.name) < 10:
                raise ValueError(f"{setting.name} must be at least 10 seconds")
        if self.cookie_secure.strip().lower() not in {"auto", "true", "false"}:
            raise ValueError(f"cookie_secure must be auto, true or false, got "
                             f"{self.cookie_secure!r}")
        for name in ("session_idle_minutes", "session_max_hours", "display_session_days",
                     "signin_lockout_failures", "signin_lockout_minutes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        # Fractions of a second are for soak tests; a real wall updates every few seconds or more.
        if not 0.1 <= self.wall_refresh_s <= 3600 or not 0.1 <= self.wall_rotate_s <= 3600:
            raise ValueError("wall_refresh_s and wall_rotate_s must be between 0.1 and 3600")
        if not 1 <= self.wall_closeups <= 20:
            raise ValueError(f"wall_closeups must be between 1 and 20, got {self.wall_closeups}")
        if self.wall_announce_minutes < 0:
            raise ValueError("wall_announce_minutes must be >= 0")
        for part in re.split(r"[;,]", self.signin_rate_limit):
            if not _RATE.match(part):
                raise ValueError(f"signin_rate_limit: expected limits like '10 per minute;50 "
                                 f"per hour', got {self.signin_rate_limit!r}")
        if self.basemap_url:
            parts = urlsplit(self.basemap_url)
            if parts.scheme not in ("https", "http") or not parts.netloc or not all(
                    k in self.basemap_url for k in ("{z}", "{x}", "{y}")):
                raise ValueError("basemap_url must be an http(s) tile URL with {z}, {x} and "
                                 f"{{y}}, got {self.basemap_url!r}")
        if not 0 <= self.workers <= 64 or not 1 <= self.threads <= 64:
            raise ValueError(f"workers must be between 0 and 64 and threads between 1 and 64, "
                             f"got {self.workers} and {self.threads}")
        if not 0 <= self.trusted_proxies <= 5:
            raise ValueError(f"trusted_proxies must be between 0 and 5, got "
                             f"{self.trusted_proxies}")
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters (or empty)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``), then apply overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            values[setting.name] = setting.default if raw is None else _convert(setting, raw)
        for key, value in overrides.items():
            if key not in _BY_NAME:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(_BY_NAME)}")
            if value is not None:
                values[key] = value
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced (``None`` keeps the current value)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def worker_count(self) -> int:
        """Gunicorn workers: ``workers``, or one per CPU core (2 to 8) when it is 0."""
        return self.workers or min(8, max(2, os.cpu_count() or 1))

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def basemap_origin(self) -> str | None:
        """The tile server's origin (scheme://host[:port]) for the CSP, or None."""
        if not self.basemap_url:
            return None
        parts = urlsplit(self.basemap_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def on_loopback(self) -> bool:
        """Whether the dashboard listens on a loopback address only."""
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def secure_cookies(self) -> bool:
        """Whether the session cookie is marked Secure (``auto``: unless on loopback)."""
        value = self.cookie_secure.strip().lower()
        if value == "auto":
            return not self.on_loopback
        return value == "true"

    @property
    def resolved_database_url(self) -> str:
        """The store URL: ``DATABASE_URL`` or the default SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'missionwatch.sqlite3'}"


def settings_table_markdown() -> str:
    """The README's configuration table, generated from :data:`SETTINGS`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = s.default
        if s.name == "data_dir":
            default = "./var"
        shown = f"`{default}`" if default != "" else "(empty)"
        rows.append(f"| `{s.env}` | {shown} | {s.help} |")
    return "\n".join(rows)
