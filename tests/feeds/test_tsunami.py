"""Tsunami CAP messages: the recorded NTWC messages, CAP areas, Atom feeds, hostile XML, and
fetch (Atom -> CAP, cached) from a real local server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import defusedxml
import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from feeds import FeedFormatError, FeedUnavailable, tsunami
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from settings import Settings
from tests.feeds.local_server import LocalServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tsunami"
CAP_2012 = FIXTURES / "cap-ts_PAAQ-1-mbvnpe_2012.xml"
CAP_DUTCH_HARBOR = FIXTURES / "kweathercore_PAAQ-1-rfwv11_tsunami.xml"
CAP_HAIDA_GWAII = FIXTURES / "tsunami-events_PAAQ-1-rcz9ap_2022.xml"
NOW = datetime(2022, 8, 1, 1, 0, tzinfo=timezone.utc)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def _cap(body: str, *, ns: str = "urn:oasis:names:tc:emergency:cap:1.2",
         identifier: str = "PHEB-TEST-1", status: str = "Actual", msg_type: str = "Alert",
         references: str = "") -> bytes:
    """A CAP message written for the tests, in the layout of the NTWC messages."""
    refs = f"<references>{references}</references>" if references else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{ns}">'
            f"<identifier>{identifier}</identifier><sender>ptwc@noaa.gov</sender>"
            f"<sent>2024-01-01T10:00:00-00:00</sent><status>{status}</status>"
            f"<msgType>{msg_type}</msgType><scope>Public</scope>{refs}{body}</alert>").encode()


def _info(*areas: str, extra: str = "") -> str:
    return ("<info><category>Geo</category><event>Tsunami Warning</event>"
            "<urgency>Immediate</urgency><severity>Extreme</severity>"
            f"<certainty>Observed</certainty>{extra}"
            "<expires>2024-01-01T16:00:00-00:00</expires>"
            "<headline>Tsunami warning</headline>"
            + "".join(f"<area><areaDesc>area {i}</areaDesc>{a}</area>"
                      for i, a in enumerate(areas))
            + "</info>")


# --------------------------------------------------------------------------- recorded messages


def test_recorded_messages_parse() -> None:
    """All three are NTWC Tsunami Information Statements whose only area is the epicentre."""
    expected = {
        CAP_2012: ("tsunami:PAAQ-1-mbvnpe", "Tsunami", _utc(2012, 10, 14, 10, 1, 22), None,
                   "Information", ""),
        CAP_DUTCH_HARBOR: ("tsunami:PAAQ-1-rfwv11", "Tsunami Information",
                           _utc(2022, 8, 1, 0, 40, 48), _utc(2022, 8, 1, 1, 40, 48),
                           "Tsunami Information", "65 miles SE of Dutch Harbor, Alaska"),
        CAP_HAIDA_GWAII: ("tsunami:PAAQ-1-rcz9ap", "Tsunami Information",
                          _utc(2022, 6, 5, 0, 5, 50), _utc(2022, 6, 5, 1, 5, 50),
                          "Information", "100 miles SE of Sandspit, Haida Gwaii"),
    }
    for path, (hazard_id, event, sent, expires, label, area_desc) in expected.items():
        result = tsunami.parse_cap(path.read_bytes(), now=NOW)
        assert result.skipped == 0
        (hazard,) = result.hazards
        assert (hazard.hazard_id, hazard.event, hazard.sent, hazard.expires) == (
            hazard_id, event, sent, expires)
        assert (hazard.source_severity, hazard.area_desc) == (label, area_desc)
        assert (hazard.category, hazard.status, hazard.message_type) == (
            "tsunami", "actual", "alert")
        assert (hazard.severity, hazard.urgency, hazard.certainty) == (
            "minor", "unknown", "unlikely")
        assert hazard.effective == sent  # no <effective>: CAP says it is sent
        assert hazard.properties["sender"] == "ntwc@noaa.gov"
        assert hazard.supersedes == ()
    # Areas: a 1 km circle at Dutch Harbor's epicentre; radius-0 circles are points (unplaced)
    dutch = tsunami.parse_cap(CAP_DUTCH_HARBOR.read_bytes(), now=NOW)
    (hazard,) = dutch.hazards
    assert (hazard.center_lon, hazard.center_lat, hazard.radius_km) == (-165.164, 53.401, 1.0)
    assert (hazard.geometry_method, dutch.unplaced) == ("radius", 0)
    for path, point in ((CAP_2012, (-152.489, 60.084)), (CAP_HAIDA_GWAII, (-131.076, 51.885))):
        result = tsunami.parse_cap(path.read_bytes(), now=NOW)
        assert result.unplaced == 1
        assert not result.hazards[0].is_placed
        assert result.hazards[0].properties["point_circles"] == (point,)
    params = tsunami.parse_cap(CAP_HAIDA_GWAII.read_bytes(), now=NOW).hazards[0].properties
    assert params["parameters"]["EventPreliminaryMagnitude"] == "5.6"
    assert params["event_codes"] == {"TsunamiSystemCategory": "Information"}


# --------------------------------------------------------------------------- CAP areas


def test_cap_polygons_are_latitude_first() -> None:
    hilo = "19.5,-155.2 19.8,-155.2 19.8,-154.9 19.5,-154.9 19.5,-155.2"
    (hazard,) = tsunami.parse_cap(_cap(_info(f"<polygon>{hilo}</polygon>")), now=NOW).hazards
    assert hazard.geometry_method == "polygon"
    assert hazard.geometry.bounds == (-155.2, 19.5, -154.9, 19.8)
    assert hazard.geometry.contains(shapely.Point(-155.0, 19.6))
    assert (hazard.severity, hazard.urgency, hazard.certainty) == (
        "extreme", "immediate", "observed")


def test_polygon_across_the_antimeridian_is_drawn_past_180() -> None:
    aleutians = "51,179 51,-179 53,-179 53,179 51,179"
    assert tsunami.cap_polygon(aleutians).bounds == (179.0, 51.0, 181.0, 53.0)


def test_several_areas_join_and_bad_shapes_are_noted() -> None:
    areas = ("<polygon>10,10 10,11 11,11 11,10 10,10</polygon>",
             "<polygon>20,20 20,21 21,21 21,20 20,20</polygon>",
             "<polygon>1,1 2,2</polygon><polygon>95,0 96,0 96,1 95,0</polygon>",
             "<geocode><valueName>UGC</valueName><value>HIZ001</value></geocode>")
    result = tsunami.parse_cap(_cap(_info(*areas)), now=NOW)
    (hazard,) = result.hazards
    assert hazard.geometry.geom_type == "MultiPolygon"
    assert hazard.geometry.area == pytest.approx(2.0)
    assert len(hazard.properties["area_problems"]) == 2
    assert hazard.properties["geocodes"] == ("UGC=HIZ001",)
    assert hazard.area_desc == "area 0; area 1; area 2; area 3"


def test_several_circles_are_geodesic_polygons() -> None:
    circles = ("<circle>21.3,-157.8 50</circle>", "<circle>13.4,144.8 25.5</circle>")
    (hazard,) = tsunami.parse_cap(_cap(_info(*circles)), now=NOW).hazards
    assert (hazard.geometry_method, hazard.geometry.geom_type) == ("radius", "MultiPolygon")
    geod = Geod(ellps="WGS84")
    honolulu, guam = sorted(hazard.geometry.geoms, key=lambda p: p.centroid.x)
    for polygon, (lon, lat, radius) in ((honolulu, (-157.8, 21.3, 50)),
                                        (guam, (144.8, 13.4, 25.5))):
        x, y = np.asarray(polygon.exterior.coords).T
        _, _, dist = geod.inv(np.full(x.shape, lon), np.full(y.shape, lat), x, y)
        assert np.allclose(dist, radius * 1000.0, rtol=1e-9)
        assert polygon.contains(shapely.Point(lon, lat))


@given(st.floats(-89, 89), st.floats(-180, 180), st.floats(0.5, 1.5), st.floats(0.5, 1.5))
def test_any_cap_box_keeps_latitude_and_longitude_apart(lat: float, lon: float, dlat: float,
                                                         dlon: float) -> None:
    lat = min(lat, 89 - dlat)
    east = lon + dlon
    ring = [(lat, lon), (lat + dlat, lon), (lat + dlat, east), (lat, east), (lat, lon)]
    if east > 180:  # write it as a sender would, in [-180, 180]
        ring = [(a, b - 360 if b > 180 else b) for a, b in ring]
    text = " ".join(f"{a!r},{b!r}" for a, b in ring)
    shape = tsunami.cap_polygon(text)
    minx, miny, maxx, maxy = shape.bounds
    assert (miny, maxy) == pytest.approx((lat, lat + dlat))
    assert (maxx - minx) == pytest.approx(dlon)


# --------------------------------------------------------------------------- message fields


def test_references_become_supersedes() -> None:
    refs = ("ptwc@noaa.gov,PHEB-TEST-0,2024-01-01T09:00:00-00:00 "
            "ptwc@noaa.gov,PHEB-TEST-00,2024-01-01T09:30:00-00:00 garbage")
    (hazard,) = tsunami.parse_cap(_cap(_info(), msg_type="Update", references=refs),
                                  now=NOW).hazards
    assert hazard.message_type == "update"
    assert hazard.supersedes == ("tsunami:PHEB-TEST-0", "tsunami:PHEB-TEST-00")


def test_cancel_without_info_is_kept_unplaced() -> None:
    result = tsunami.parse_cap(_cap("", msg_type="Cancel"), now=NOW)
    (hazard,) = result.hazards
    assert (hazard.message_type, hazard.event, result.unplaced) == (
        "cancel", "Tsunami message (cancel)", 1)
    assert not hazard.active(NOW)


def test_english_info_is_chosen_and_cap_1_1_is_read() -> None:
    spanish = _info().replace("<category>", "<language>es-US</language><category>").replace(
        "Tsunami Warning", "Aviso de tsunami")
    english = _info().replace("<category>", "<language>en-US</language><category>")
    (hazard,) = tsunami.parse_cap(_cap(spanish + english), now=NOW).hazards
    assert hazard.event == "Tsunami Warning"
    old = _cap(_info().replace("Observed", "Very Likely"),
               ns="urn:oasis:names:tc:emergency:cap:1.1")
    (hazard,) = tsunami.parse_cap(old, now=NOW).hazards
    assert hazard.certainty == "likely"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("payload", "reason"), [
    (_cap(_info(), identifier=""), "identifier missing or malformed"),
    (_cap(_info(), identifier="two words"), "identifier missing or malformed"),
    (_cap(_info(), status="Rehearsal"), "status 'Rehearsal' is not one of"),
    (_cap(_info(), msg_type="Shout"), "msgType 'Shout' is not one of"),
    (_cap(_info()).replace(b"2024-01-01T10:00:00-00:00", b"yesterday"),
     "sent is not an ISO 8601 time"),
    (_cap(_info()).replace(b"2024-01-01T10:00:00-00:00", b"2024-01-01T10:00:00"),
     "sent has no UTC offset"),
    # OverflowError before: both lie outside datetime's years once in UTC
    (_cap(_info()).replace(b"2024-01-01T10:00:00-00:00", b"0001-01-01T00:00:00+14:00"),
     "sent is out of range in UTC"),
    (_cap(_info(extra="<effective>9999-12-31T23:59:59-12:00</effective>")),
     "effective is out of range in UTC"),
])
def test_unusable_message_is_skipped_and_counted(payload: bytes, reason: str) -> None:
    result = tsunami.parse_cap(payload, now=NOW)
    assert (result.hazards, result.skipped) == ((), 1)
    assert result.problems[0].startswith(f"alert 0: {reason}")


@pytest.mark.parametrize("payload", [
    CAP_HAIDA_GWAII.read_bytes()[:2000],                        # truncated
    b"<html><body>maintenance</body></html>",
    b"not xml at all",
    b'<rss version="2.0"><channel/></rss>',                     # XML, not CAP
    b'<alert xmlns="urn:example:not-cap"/>',
    "",
])
def test_payload_that_is_not_cap_raises(payload: bytes | str) -> None:
    with pytest.raises(FeedFormatError):
        tsunami.parse_cap(payload, now=NOW)


def test_entity_expansion_is_refused_by_defusedxml() -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa">'
              '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">'
              ']><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
              "<identifier>&c;</identifier></alert>")
    for parse in (tsunami.parse_cap, tsunami.parse_atom):
        with pytest.raises(FeedFormatError, match="XML refused") as caught:
            parse(laughs, now=NOW)
        assert isinstance(caught.value.__cause__, defusedxml.DefusedXmlException)


# --------------------------------------------------------------------------- Atom feeds


def _atom(*links: str | None) -> bytes:
    """A centre's Atom feed, written for the tests in the layout tsunami.gov uses (one entry per
    bulletin, the CAP document as ``<link rel="related" type="application/cap+xml">``)."""
    entries = []
    for number, href in enumerate(links):
        link = ("" if href is None else
                f'<link rel="related" title="CapXML document" href="{href}" '
                'type="application/cap+xml"/>')
        entries.append(
            f"<entry><title>Bulletin {number}</title><updated>2022-08-01T00:40:48Z</updated>"
            f"<geo:lat>53.401</geo:lat><geo:long>-165.164</geo:long>"
            f"<id>urn:uuid:entry-{number}</id>{link}"
            f'<link rel="alternate" title="Bulletin" href="/events/{number}.txt" '
            'type="application/xml"/></entry>')
    return ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#">'
            "<id>urn:uuid:feed</id><title>Tsunami Information Statement</title>"
            "<updated>2022-08-01T00:40:48Z</updated>" + "".join(entries) + "</feed>").encode()


def test_atom_entry_time_out_of_range_is_left_out() -> None:
    feed = tsunami.parse_atom(_atom("https://www.tsunami.gov/x/PAAQCAP.xml").replace(
        b"<updated>2022-08-01T00:40:48Z</updated><geo:lat>",
        b"<updated>9999-12-31T23:59:59-12:00</updated><geo:lat>"), now=NOW)
    assert [e.updated for e in feed.entries] == [None]


def test_atom_entries_name_their_cap_documents() -> None:
    feed = tsunami.parse_atom(_atom("https://www.tsunami.gov/events/PAAQ/x/PAAQCAP.xml", None,
                                    "/events/PAAQ/y/PAAQCAP.xml"), now=NOW)
    assert [e.cap_url for e in feed.entries] == [
        "https://www.tsunami.gov/events/PAAQ/x/PAAQCAP.xml", "/events/PAAQ/y/PAAQCAP.xml"]
    assert feed.entries[0].updated == _utc(2022, 8, 1, 0, 40, 48)
    assert (feed.skipped, feed.problems) == (1, ("entry 1 (urn:uuid:entry-1): no CAP link",))
    with pytest.raises(FeedFormatError, match="not an Atom feed"):
        tsunami.parse_atom(CAP_2012.read_bytes(), now=NOW)


# --------------------------------------------------------------------------- fetch


@contextlib.contextmanager
def _context(server: LocalServer, paths: tuple[str, ...],
             cache: MemoryCache | None = None) -> Iterator[FetchContext]:
    settings = Settings.from_env({}, tsunami_urls=",".join(server.base + p for p in paths))
    client = HttpClient(settings, sleep=lambda _s: None)
    try:
        yield FetchContext(client=client, cache=cache or MemoryCache(), settings=settings,
                           now=NOW)
    finally:
        client.close()


XML = "application/xml"
NTWC, PTWC = "/events/xml/PAAQAtom.xml", "/events/xml/PHEBAtom.xml"
CAP_PATHS = {"/events/PAAQ/2012/mbvnpe/PAAQCAP.xml": CAP_2012,
             "/events/PAAQ/2022/rfwv11/PAAQCAP.xml": CAP_DUTCH_HARBOR,
             "/events/PAAQ/2022/rcz9ap/PAAQCAP.xml": CAP_HAIDA_GWAII}


def _play_centres(server: LocalServer) -> None:
    """NTWC's feed links two messages (one absolute, one relative link) and a bulletin whose CAP
    document is gone; PTWC's feed links the third message."""
    cap_paths = list(CAP_PATHS)
    server.routes[NTWC] = (200, XML, _atom(server.base + cap_paths[0], cap_paths[1],
                                           "/events/PAAQ/gone/PAAQCAP.xml"))
    server.routes[PTWC] = (200, XML, _atom(server.base + cap_paths[2]))
    for path, fixture in CAP_PATHS.items():
        server.routes[path] = (200, XML, fixture.read_bytes())


def test_fetch_follows_atom_feeds_to_cap_documents_and_caches_them() -> None:
    cache = MemoryCache()
    with LocalServer() as server:
        _play_centres(server)
        with _context(server, (NTWC, PTWC), cache) as ctx:
            result = tsunami.fetch(ctx)
        assert sorted(h.hazard_id for h in result.hazards) == [
            "tsunami:PAAQ-1-mbvnpe", "tsunami:PAAQ-1-rcz9ap", "tsunami:PAAQ-1-rfwv11"]
        assert (result.skipped, result.unplaced) == (1, 2)
        assert "CAP document unusable" in result.problems[0]
        assert all(server.hits[p] == 1 for p in CAP_PATHS)

        with _context(server, (NTWC, PTWC), cache) as ctx:  # next poll
            again = tsunami.fetch(ctx)
        assert len(again.hazards) == 3
        assert server.hits[NTWC] == server.hits[PTWC] == 2
        assert all(server.hits[p] == 1 for p in CAP_PATHS)  # from the cache


def test_feed_url_answering_with_a_cap_document_is_parsed_directly() -> None:
    with LocalServer() as server:
        server.routes["/cap.xml"] = (200, XML, CAP_DUTCH_HARBOR.read_bytes())
        with _context(server, ("/cap.xml",)) as ctx:
            result = tsunami.fetch(ctx)
    assert [h.hazard_id for h in result.hazards] == ["tsunami:PAAQ-1-rfwv11"]


def test_cap_links_to_other_hosts_are_not_followed() -> None:
    with LocalServer() as server:
        server.routes[NTWC] = (200, XML, _atom("http://internal.example/PAAQCAP.xml"))
        with _context(server, (NTWC,)) as ctx:
            result = tsunami.fetch(ctx)
    assert (result.hazards, result.skipped) == ((), 1)
    assert "untrusted host" in result.problems[0]


def test_unreachable_cap_document_or_feed_fails_the_poll() -> None:
    with LocalServer() as server:
        _play_centres(server)
        server.routes["/events/PAAQ/2022/rfwv11/PAAQCAP.xml"] = (503, "text/plain", b"busy")
        with _context(server, (NTWC, PTWC)) as ctx, pytest.raises(FeedUnavailable):
            tsunami.fetch(ctx)
        _play_centres(server)
        server.routes[PTWC] = (500, "text/plain", b"oops")
        with _context(server, (NTWC, PTWC)) as ctx, pytest.raises(FeedUnavailable):
            tsunami.fetch(ctx)
        server.routes[PTWC] = (200, XML, b'<rss version="2.0"><channel/></rss>')
        with _context(server, (NTWC, PTWC)) as ctx, pytest.raises(FeedFormatError):
            tsunami.fetch(ctx)
