"""The registry of hazard sources: name, module, poll interval setting, recorded sample.

Modules are imported lazily (:func:`load_module`), so a source whose module is missing or
broken fails on its own (its health says why) while the others keep polling.
"""

from __future__ import annotations

import dataclasses
import importlib
from datetime import datetime, timezone
from types import ModuleType

from settings import BUNDLED_DATA_DIR, Settings

RECORDED_DIR = BUNDLED_DATA_DIR / "feeds"


@dataclasses.dataclass(frozen=True)
class Recording:
    """A real payload of a source bundled under ``data/feeds/`` for offline demos."""

    files: tuple[str, ...]           # paths relative to data/feeds/
    recorded_at: datetime            # when the payload was current (its own date)
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Source:
    """One hazard source: its module ``feeds/<name>.py`` and the setting of its interval."""

    name: str
    module: str
    interval_setting: str
    title: str
    conditional: bool = True         # one main request, so If-None-Match/-Modified may be sent
    recording: Recording | None = None


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


REGISTRY: dict[str, Source] = {
    source.name: source for source in (
        Source("nws", "feeds.nws", "nws_interval_s", "NWS alerts",
               recording=Recording(
                   ("nws/weathergov_northwest-alerts_alerts-active.json",),
                   _utc(2025, 12, 15, 21, 53, 46),
                   "times templated by weather.gov's api-proxy, rendered on the recording's "
                   "clock (its top-level 'updated')")),
        Source("usgs", "feeds.usgs", "usgs_interval_s", "USGS earthquakes",
               recording=Recording(("usgs/naseemao_significant_month.geojson",),
                                   _utc(2023, 10, 11, 20, 16, 31))),
        Source("nhc", "feeds.nhc", "nhc_interval_s", "NHC tropical cyclones",
               recording=Recording(("nhc/mapbox-sandy_al182012_5day_latest.zip",),
                                   _utc(2012, 10, 26, 18, 0, 0),
                                   "Hurricane Sandy, advisory 17A")),
        Source("wildfire", "feeds.wildfire", "wildfire_interval_s", "Wildfire perimeters"),
        Source("fema", "feeds.fema", "fema_interval_s", "FEMA declarations",
               recording=Recording(
                   ("openfema/openFemaNgClient_DisasterDeclarationsSummariesV2.json",),
                   _utc(2022, 10, 28, 18, 46, 1))),
        Source("gdacs", "feeds.gdacs", "gdacs_interval_s", "GDACS events",
               recording=Recording(("gdacs/aio-georss-gdacs_gdacs-rss.xml",),
                                   _utc(2019, 12, 30, 1, 35, 11))),
        Source("tsunami", "feeds.tsunami", "tsunami_interval_s", "Tsunami messages",
               conditional=False,  # two feeds (NTWC and PTWC): one 304 says nothing of both
               recording=Recording(("tsunami/kweathercore_PAAQ-1-rfwv11_tsunami.xml",),
                                   _utc(2022, 8, 1, 0, 40, 48))),
    )
}

SOURCE_NAMES: tuple[str, ...] = tuple(REGISTRY)


def get_source(name: str) -> Source:
    """The registered source ``name``; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"source must be one of {', '.join(REGISTRY)}; got {name!r}"
        ) from None


def interval_s(name: str, settings: Settings) -> int | None:
    """Seconds between polls of ``name`` (None for a source that is not polled)."""
    source = REGISTRY.get(name)
    if source is None:
        return None
    return int(getattr(settings, source.interval_setting))


def load_module(name: str) -> ModuleType:
    """Import ``name``'s module and check its contract (``SOURCE`` and ``fetch``).

    Raises ImportError (or whatever the module raises while importing) when it cannot be used.
    """
    source = get_source(name)
    module = importlib.import_module(source.module)
    declared = getattr(module, "SOURCE", None)
    if declared != name:
        raise ImportError(f"{source.module}.SOURCE must be {name!r}, got {declared!r}")
    if not callable(getattr(module, "fetch", None)):
        raise ImportError(f"{source.module} has no fetch(ctx) function")
    return module
