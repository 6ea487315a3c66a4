"""GDACS RSS: the recorded feeds, area rules, bad items, hostile XML, fetch from a local server."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import defusedxml
import pytest
import shapely

from feeds import FeedFormatError, FeedUnavailable, gdacs
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from feeds.usgs import shaking_radius_km
from settings import Settings
from tests.feeds.local_server import LocalServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gdacs"
RSS_24H = FIXTURES / "aio-georss-gdacs_gdacs-rss-24h.xml"
RSS = FIXTURES / "aio-georss-gdacs_gdacs-rss.xml"
NOW = datetime(2019, 12, 30, 2, 0, tzinfo=timezone.utc)
BOM = b"\xef\xbb\xbf"

HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:gdacs="http://www.gdacs.org" xmlns:georss="http://www.georss.org/georss" '
        'xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#"><channel><title>t</title>')
TAIL = "</channel></rss>"


def _item(kind: str = "EQ", event_id: str = "1", episode: str = "1", *,
          point: str | None = "18.2 -66.5", bbox: str = "-70.5 -62.5 14.2 22.2",
          severity: str = '<gdacs:severity unit="M" value="6.4">Magnitude 6.4M</gdacs:severity>',
          alert: str = "Orange") -> str:
    point_xml = f"<georss:point>{point}</georss:point>" if point is not None else ""
    return (f"<item><title>test</title><guid>{kind}{event_id}</guid>"
            f"<pubDate>Tue, 07 Jan 2020 08:24:26 GMT</pubDate>"
            f"<gdacs:fromdate>Tue, 07 Jan 2020 08:24:26 GMT</gdacs:fromdate>"
            f"<gdacs:eventtype>{kind}</gdacs:eventtype><gdacs:eventid>{event_id}</gdacs:eventid>"
            f"<gdacs:episodeid>{episode}</gdacs:episodeid>"
            f"<gdacs:alertlevel>{alert}</gdacs:alertlevel>{severity}{point_xml}"
            f"<gdacs:bbox>{bbox}</gdacs:bbox><gdacs:country>Puerto Rico</gdacs:country></item>")


def _rss(*items: str) -> bytes:
    return (HEAD + "".join(items) + TAIL).encode()


# --------------------------------------------------------------------------- recorded samples


@pytest.mark.parametrize(("path", "count", "types"), [
    (RSS_24H, 21, {"DR": 11, "EQ": 8, "TC": 2}),
    (RSS, 16, {"DR": 11, "TC": 3, "EQ": 2}),
])
def test_recorded_feeds_parse_every_item(path: Path, count: int, types: dict[str, int]) -> None:
    payload = path.read_bytes()
    assert payload.startswith(BOM)
    result = gdacs.parse_gdacs(payload, now=NOW)
    assert (len(result.hazards), result.skipped, result.unplaced) == (count, 0, 0)
    assert collections.Counter(h.properties["eventtype"] for h in result.hazards) == types
    assert len({h.hazard_id for h in result.hazards}) == count
    for hazard in result.hazards:
        kind = hazard.properties["eventtype"]
        assert hazard.hazard_id == (f"gdacs:{kind}-{hazard.properties['eventid']}-"
                                    f"{hazard.properties['episodeid']}")
        assert hazard.category == gdacs.CATEGORIES[kind]
        assert hazard.geometry_method == ("polygon" if kind == "DR" else "radius")
        assert hazard.sent is not None and hazard.onset is not None
    # the same document as text (BOM and all) gives the same hazards
    as_text = gdacs.parse_gdacs(payload.decode("utf-8"), now=NOW)
    assert [h.hazard_id for h in as_text.hazards] == [h.hazard_id for h in result.hazards]


def test_recorded_items_map_to_hazards() -> None:
    hazards = {h.hazard_id: h for h in gdacs.parse_gdacs(RSS.read_bytes(), now=NOW).hazards}
    phanfone = hazards["gdacs:TC-1000641-29"]
    assert phanfone.severity == "severe"  # event alert Orange
    assert phanfone.source_severity == ("GDACS Orange (episode Green): Tropical Depression "
                                        "(maximum wind speed of 46 km/h)")
    assert phanfone.category == "tropical_cyclone"
    assert (phanfone.center_lon, phanfone.center_lat) == (112.1, 14.6)
    assert phanfone.radius_km == gdacs.TS_RADIUS_KM  # 46 km/h now (175.9 at its peak)
    assert phanfone.onset == datetime(2019, 12, 21, 18, 0, tzinfo=timezone.utc)
    assert phanfone.sent == datetime(2019, 12, 28, 18, 0, tzinfo=timezone.utc)
    assert phanfone.area_desc == "Philippines"
    assert phanfone.url == "http://www.gdacs.org/report.aspx?eventtype=TC&eventid=1000641"

    quake = hazards["gdacs:EQ-1199929-1287798"]
    assert (quake.event, quake.severity, quake.certainty) == (
        "Earthquake M 5.5: South Africa", "minor", "observed")
    assert quake.radius_km == pytest.approx(shaking_radius_km(5.5))
    assert (quake.center_lon, quake.center_lat) == (37.087, -44.5653)

    drought = hazards["gdacs:DR-1012728-43"]
    assert drought.category == "other" and drought.severity == "severe"
    assert drought.geometry.equals(shapely.box(18.348, -26.932, 26.348, -18.932))
    assert drought.geometry.contains(shapely.Point(22.348, -22.932))


# --------------------------------------------------------------------------- area rules


def test_bbox_rules() -> None:
    box = gdacs.bbox_polygon("55.07 81.07 -46.78 -20.78")
    assert box.bounds == (55.07, -46.78, 81.07, -20.78)  # lonmin lonmax latmin latmax
    across = gdacs.bbox_polygon("170 -170 -20 -10", point=(-175.0, -15.0))
    assert across.bounds == (170.0, -20.0, 190.0, -10.0)
    # SARAI-19's recorded box lies in the South Atlantic, its centre near Fiji: not trusted
    assert gdacs.bbox_polygon("-35.59 -9.59 -32.20 -6.20", point=(-178.8, -20.5)) is None
    for bad in ("", "1 2 3", "a b c d", "0 10 20 10", "0 0 1 2", "0 10 -95 0", "nan 1 2 3"):
        assert gdacs.bbox_polygon(bad) is None


def test_tropical_cyclone_radius_follows_current_wind() -> None:
    storm = ('<gdacs:severity unit="km/h" value="90">Tropical Storm (maximum wind speed of '
             '130 km/h)</gdacs:severity>')
    no_text = '<gdacs:severity unit="km/h" value="90"></gdacs:severity>'
    result = gdacs.parse_gdacs(_rss(_item("TC", "1", severity=storm),
                                    _item("TC", "2", severity=no_text),
                                    _item("TC", "3", severity="")), now=NOW)
    radii = [h.radius_km for h in result.hazards]
    assert radii == [gdacs.TC_RADIUS_KM, gdacs.TS_RADIUS_KM, gdacs.TC_RADIUS_KM]


def test_other_types_use_the_box_or_stay_unplaced() -> None:
    result = gdacs.parse_gdacs(_rss(
        _item("FL", "1", point="18.2 -66.5"),
        _item("WF", "2", point="40 -120", bbox="-70.5 -62.5 14.2 22.2"),  # box misses point
        _item("VO", "3", point="19.4 -155.3"),
        _item("EQ", "4", point=None),
        _item("XX", "5"),
    ), now=NOW)
    flood, fire, volcano, quake, other = result.hazards
    assert (flood.category, flood.geometry_method) == ("flood", "polygon")
    assert flood.geometry.bounds == (-70.5, 14.2, -62.5, 22.2)
    assert (fire.category, fire.is_placed) == ("fire", False)
    assert (volcano.radius_km, volcano.category) == (gdacs.VO_RADIUS_KM, "other")
    assert quake.geometry_method == "polygon"  # no point: the box
    assert other.category == "other"
    assert result.unplaced == 1


# --------------------------------------------------------------------------- bad input


def test_malformed_items_are_skipped_and_counted() -> None:
    result = gdacs.parse_gdacs(_rss(
        _item("EQ", "1"),
        _item("EQ", ""),                          # no event id
        _item("EQ", "3", point="north -66.5"),
        _item("EQ", "4", point="95 10"),          # latitude out of range
        _item("EQ", "5", episode="1 2"),
        _item("TC", "6"),
    ), now=NOW)
    assert [h.hazard_id for h in result.hazards] == ["gdacs:EQ-1-1", "gdacs:TC-6-1"]
    assert result.skipped == 4 == len(result.problems)
    assert result.problems[0] == "item 1 (EQ): gdacs:eventid missing or malformed: ''"
    assert result.problems[1].startswith("item 2 (EQ3): latitude is not a number")
    assert result.problems[2].startswith("item 3 (EQ4): point out of range")
    assert result.problems[3].startswith("item 4 (EQ5): gdacs:episodeid missing or malformed")


@pytest.mark.parametrize("payload", [
    RSS.read_bytes()[:20000],                                   # truncated
    b"<!DOCTYPE html><html><body>busy</body></html>",
    b'{"type": "FeatureCollection"}',
    b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>',      # XML, but not RSS
    b"<rss version='2.0'></rss>",                              # no channel
    "",
])
def test_payload_that_is_not_rss_raises(payload: bytes | str) -> None:
    with pytest.raises(FeedFormatError):
        gdacs.parse_gdacs(payload, now=NOW)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&secret;</title></channel></rss>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY,
                                     BILLION_LAUGHS.decode()])
def test_entity_attacks_are_refused_by_defusedxml(payload: bytes | str) -> None:
    with pytest.raises(FeedFormatError, match="XML refused") as caught:
        gdacs.parse_gdacs(payload, now=NOW)
    assert isinstance(caught.value.__cause__, defusedxml.DefusedXmlException)


@pytest.mark.parametrize("field", ["pubDate", "gdacs:fromdate"])
def test_dates_outside_the_years_of_datetime_skip_the_item(field: str) -> None:
    # OverflowError escaped parse_gdacs before
    item = (f"<item><gdacs:eventtype>DR</gdacs:eventtype><gdacs:eventid>1</gdacs:eventid>"
            f"<gdacs:episodeid>1</gdacs:episodeid>"
            f"<{field}>Fri, 31 Dec 9999 23:59:59 -1200</{field}></item>")
    payload = (f'<rss version="2.0" xmlns:gdacs="http://www.gdacs.org"><channel>{item}'
               "</channel></rss>")
    result = gdacs.parse_gdacs(payload, now=NOW)
    assert (result.hazards, result.skipped) == ((), 1)
    assert f"{field} is out of range in UTC" in result.problems[0]


@pytest.mark.parametrize("encoding", ["TTF-8", "utf-32"])
def test_declared_encoding_that_cannot_be_read_is_a_format_error(encoding: str) -> None:
    # LookupError (unknown codec) and ValueError (multi-byte) escaped the XML parser
    payload = f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"/>'.encode()
    with pytest.raises(FeedFormatError, match="unusable encoding"):
        gdacs.parse_gdacs(payload, now=NOW)


def test_arguments_are_checked_at_the_door() -> None:
    with pytest.raises(ValueError, match="now must be a UTC-aware datetime"):
        gdacs.parse_gdacs(RSS.read_bytes(), now=datetime(2020, 1, 1))  # noqa: DTZ001
    with pytest.raises(TypeError, match="payload must be bytes or str"):
        gdacs.parse_gdacs({"rss": 1}, now=NOW)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fetch


@contextlib.contextmanager
def _fetching(answer: tuple[int, str, bytes]) -> Iterator[FetchContext]:
    with LocalServer() as server:
        server.routes["/xml/rss.xml"] = answer
        settings = Settings.from_env({}, gdacs_url=server.base + "/xml/rss.xml")
        client = HttpClient(settings, sleep=lambda _s: None)
        try:
            yield FetchContext(client=client, cache=MemoryCache(), settings=settings, now=NOW)
        finally:
            client.close()


def test_fetch_reads_the_feed_from_a_server() -> None:
    with _fetching((200, "application/rss+xml; charset=utf-8", RSS.read_bytes())) as ctx:
        result = gdacs.fetch(ctx)
    assert (len(result.hazards), result.skipped) == (16, 0)


@pytest.mark.parametrize(("answer", "error"), [
    ((500, "text/plain", b"oops"), FeedUnavailable),
    ((200, "application/rss+xml", RSS.read_bytes()[:5000]), FeedFormatError),
    ((200, "text/html", b"<html><body>maintenance</body></html>"), FeedFormatError),
])
def test_failing_feed_fails_the_poll(answer: tuple[int, str, bytes],
                                     error: type[Exception]) -> None:
    with _fetching(answer) as ctx, pytest.raises(error):
        gdacs.fetch(ctx)
