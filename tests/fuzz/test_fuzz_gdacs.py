"""Fuzzing the GDACS RSS parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, gdacs
from tests.fuzz.mutations import (
    FUZZ_MARKS,
    FUZZ_SETTINGS,
    NOW,
    Calls,
    check_parse_result,
    expect_only,
    mutated_bytes,
    mutated_xml,
)
from tests.fuzz.seeds import fixture_bytes

pytestmark = FUZZ_MARKS


def _trimmed(name: str, kinds: tuple[str, ...]) -> bytes:
    """The RSS document with one item of each event type in ``kinds``."""
    root = ET.fromstring(fixture_bytes(name))
    channel = root.find("channel")
    assert channel is not None
    wanted = list(kinds)
    for item in channel.findall("item"):
        kind = item.findtext("gdacs:eventtype", namespaces=gdacs.NS)
        if kind in wanted:
            wanted.remove(kind)
            for resources in item.findall("gdacs:resources", gdacs.NS):  # links, unused
                item.remove(resources)
        else:
            channel.remove(item)
    return ET.tostring(root, encoding="utf-8")


SEEDS = [_trimmed("gdacs/aio-georss-gdacs_gdacs-rss.xml", ("TC", "EQ", "DR")),
         _trimmed("gdacs/aio-georss-gdacs_gdacs-rss-24h.xml", ("EQ", "TC"))]

#: Values worth trying per element (georss:point is "lat lon", bbox "lonmin lonmax latmin latmax").
TEXTS = {
    "point": ("-19.4 59.8", "91 0", "0 181", "nan nan", "1e400 0", "10", "10 20 30", "",
              "-90 -180", "90 180"),
    "lat": ("-19.4", "95", "nan", ""), "long": ("59.8", "-181", "inf", ""),
    "bbox": ("55.07 81.07 -46.78 -20.78", "170 -170 -10 10", "-180 180 -90 90", "1 1 1 1",
             "nan 1 2 3", "10 20 30", "81 55 -20 -46", "1e308 -1e308 -90 90", "0 360 0 1"),
    "severity": ("Magnitude 5.5M, Depth:10km", "Magnitude 99M", "Magnitude -9M",
                 "Tropical Storm (maximum wind speed of 1e400 km/h)",
                 "maximum wind speed of 93 km/h", ""),
    "eventtype": ("EQ", "TC", "DR", "FL", "WF", "VO", "TS", "XX", "", "EQ EQ"),
    "eventid": ("1000643", "", "a b", "x" * 80), "episodeid": ("1", "", "-"),
    "alertlevel": ("Red", "Orange", "Green", "Purple", ""),
    "pubDate": ("Sun, 29 Dec 2019 12:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 -1200",
                "Mon, 01 Jan 0001 00:00:00 +1400", "Sun, 29 Dec 2019 12:00:00 -0000",
                "yesterday", "Sun, 31 Feb 2019 12:00:00 GMT"),
    "fromdate": ("Fri, 31 Dec 9999 23:59:59 -1200", "Mon, 01 Jan 0001 00:00:00 +1400"),
    "item": ("",),
}


def test_gdacs_rss_survives_mutation() -> None:
    calls = Calls()
    payloads = st.one_of(
        mutated_xml(SEEDS, TEXTS), mutated_xml(SEEDS, TEXTS), mutated_xml(SEEDS, TEXTS),
        st.sampled_from(SEEDS).flatmap(lambda seed: mutated_bytes(seed, SEEDS)))

    @FUZZ_SETTINGS
    @given(payload=payloads)
    def fuzz(payload: bytes) -> None:
        calls()
        result = expect_only((FeedError,), lambda: gdacs.parse_gdacs(payload, now=NOW))
        if result is not None:
            check_parse_result(result, "gdacs")

    fuzz()
    calls.check()
