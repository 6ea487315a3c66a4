"""The registry of hazard sources: name, module, poll interval setting, recorded sample.

Modules are imported lazily (:func:`load_module`), so a source whose module is missing or
broken fails on its own (its health says why) while the others keep polling.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from settings import BUNDLED_DATA_DIR, Settings

RECORDED_DIR = BUNDLED_DATA_DIR / "feeds"


# A replay: (the source module, the recorded payloads, the replay clock) -> ParseResult, using
# the module's pure parse functions only (no I/O).
Replay = Callable[[ModuleType, Sequence[bytes], datetime], Any]


@dataclasses.dataclass(frozen=True)
class Recording:
    """A real payload of a source bundled under ``data/feeds/`` for offline demos.

    It is replayed on its own clock: the parsers and the reconciliation get ``now`` =
    ``recorded_at``, the moment the payload was current, so the snapshot is what a live poll
    would have stored then, and it is labelled with that date.
    """

    files: tuple[str, ...]           # paths relative to data/feeds/
    recorded_at: datetime            # when the payload was current (its own date)
    replay: Replay
    note: str = ""


def _replay_nws(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    # weather.gov's api-proxy recorded times relative to serving time ("date:now -2 minutes");
    # rendered on the replay clock they are back near the original times.
    payload = module.resolve_template_times(json.loads(payloads[0]), now=clock)
    return module.place_alerts(module.parse_alerts(payload))  # zones: none, counties: bundled


def _replay_usgs(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    return module.parse_summary(payloads[0], now=clock)


def _replay_nhc(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    return module.parse_gis_zip(payloads[0], now=clock)


def _replay_fema(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    return module.parse_declarations(json.loads(payloads[0]), now=clock)


def _replay_gdacs(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    return module.parse_gdacs(payloads[0], now=clock)


def _replay_tsunami(module: ModuleType, payloads: Sequence[bytes], clock: datetime) -> Any:
    return module.parse_cap(payloads[0], now=clock)


@dataclasses.dataclass(frozen=True)
class Source:
    """One hazard source: its module ``feeds/<name>.py`` and the setting of its interval."""

    name: str
    module: str
    interval_setting: str
    title: str
    conditional: bool = True         # its first request stands for the whole poll, so the
    #                                  validators of the last answer may be sent with it
    recording: Recording | None = None


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


REGISTRY: dict[str, Source] = {
    source.name: source for source in (
        Source("nws", "feeds.nws", "nws_interval_s", "NWS alerts",
               recording=Recording(
                   ("nws/weathergov_northwest-alerts_alerts-active.json",),
                   _utc(2025, 12, 15, 21, 53, 46), _replay_nws,
                   "the payload's 'updated'; its templated times are rendered on this clock")),
        Source("usgs", "feeds.usgs", "usgs_interval_s", "USGS earthquakes",
               recording=Recording(("usgs/naseemao_significant_month.geojson",),
                                   _utc(2023, 10, 11, 20, 16, 31), _replay_usgs,
                                   "metadata.generated of the significant_month feed")),
        Source("nhc", "feeds.nhc", "nhc_interval_s", "NHC tropical cyclones",
               recording=Recording(("nhc/mapbox-sandy_al182012_5day_latest.zip",),
                                   _utc(2012, 10, 26, 18, 0, 0), _replay_nhc,
                                   "Hurricane Sandy, advisory 17A (ADVDATE 121026/1800)")),
        # paged sources: an unchanged first page says nothing of the others
        Source("wildfire", "feeds.wildfire", "wildfire_interval_s", "Wildfire perimeters",
               conditional=False),
        Source("fema", "feeds.fema", "fema_interval_s", "FEMA declarations", conditional=False,
               recording=Recording(
                   ("openfema/openFemaNgClient_DisasterDeclarationsSummariesV2.json",),
                   _utc(2022, 10, 28, 18, 46, 1, 231000), _replay_fema,
                   "metadata.rundate of the page")),
        Source("gdacs", "feeds.gdacs", "gdacs_interval_s", "GDACS events",
               recording=Recording(("gdacs/aio-georss-gdacs_gdacs-rss.xml",),
                                   _utc(2019, 12, 30, 1, 35, 11), _replay_gdacs,
                                   "the channel's pubDate")),
        Source("tsunami", "feeds.tsunami", "tsunami_interval_s", "Tsunami messages",
               conditional=False,  # two feeds (NTWC and PTWC): one 304 says nothing of both
               recording=Recording(("tsunami/kweathercore_PAAQ-1-rfwv11_tsunami.xml",),
                                   _utc(2022, 8, 1, 0, 40, 48), _replay_tsunami,
                                   "the CAP message's sent")),
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
