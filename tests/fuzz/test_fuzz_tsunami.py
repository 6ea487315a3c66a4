"""Fuzzing the tsunami parsers: CAP 1.2 messages and the warning centres' Atom feeds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, tsunami
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

CAP_SEEDS = [fixture_bytes(f"tsunami/{name}") for name in (
    "kweathercore_PAAQ-1-rfwv11_tsunami.xml", "tsunami-events_PAAQ-1-rcz9ap_2022.xml",
    "cap-ts_PAAQ-1-mbvnpe_2012.xml")]

# No recorded tsunami.gov Atom feed exists (tests/fixtures/PROVENANCE.md); this one follows the
# layout the fetch tests use.
ATOM_SEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#">
  <id>urn:uuid:ntwc</id><title>NTWC</title><updated>2022-08-01T00:40:48Z</updated>
  <entry>
    <id>urn:uuid:1</id><title>Tsunami Information Statement</title>
    <updated>2022-08-01T00:40:48Z</updated>
    <link rel="related" type="application/cap+xml" href="/events/PAAQ/2022/08/01/PAAQCAP.xml"/>
    <link rel="alternate" href="https://tsunami.gov/events/PAAQ/2022/08/01/"/>
  </entry>
  <entry>
    <id>urn:uuid:2</id><title>Bulletin</title><updated>2022-08-01T01:00:00-09:00</updated>
    <link rel="related" title="CAP document" href="https://tsunami.gov/x/PHEBCAP.xml"/>
  </entry>
</feed>
"""

#: Values worth trying per CAP element (polygons are "lat,lon" pairs, circles "lat,lon km").
CAP_TEXTS = {
    "polygon": (
        "51.0,-179.0 51.0,179.0 52.0,179.0 52.0,-179.0 51.0,-179.0",
        "0,0 0,0 0,0 0,0", "0,0 1,1 1,0 0,1 0,0", "10,10 10,11 11,11", "10,10 10,11",
        "91,0 0,0 0,1 91,0", "nan,1 2,3 4,5 nan,1", "1,2,3 4,5 6,7", "1e400,0 1,1 2,2 1e400,0",
        "-90,-180 -90,180 90,180 90,-180 -90,-180", "10,10", "", "10,10 10,20 20,20 10,10 " * 50,
        "89.9,0 89.9,120 89.9,-120 89.9,0", "0,-180 0,180 1,180 1,-180 0,-180",
    ),
    "circle": (
        "53.1,-166.8 0", "53.1,-166.8 1.0", "53.1,-166.8 -5", "53.1,-166.8 1e308",
        "53.1,-166.8 20000", "89.99,0 100", "-89.99,10 5000", "0,179.99 500", "0,-179.99 500",
        "53.1,-166.8 nan", "53.1,-166.8 inf", "53.1 100", "53.1,-166.8", "91,0 10",
        "53.1,-166.8 1.0 extra",
    ),
    "sent": ("2022-08-01T00:40:48-00:00", "2022-08-01T00:40:48", "0001-01-01T00:00:00+14:00",
             "9999-12-31T23:59:59-12:00", "yesterday"),
    "effective": ("2022-08-01T00:40:48-00:00", "9999-12-31T23:59:59-12:00"),
    "onset": ("0001-01-01T00:00:00+01:00",),
    "expires": ("9999-12-31T23:59:59-01:00", "2022-08-01T01:40:48-08:00"),
    "identifier": ("PAAQ-1-x", "a b", "a,b", "", "x" * 300),
    "status": ("Actual", "Exercise", "Bogus", ""),
    "msgType": ("Alert", "Update", "Cancel", "Ack", "Error", "Nonsense"),
    "references": ("a,b,c", "a,,c", "a,b", "w,PAAQ-1-x,2022-08-01T00:40:48-00:00 x,y,z"),
    "severity": ("Extreme", "Very Likely", "Unknown", "Catastrophic"),
    "certainty": ("Very Likely", "Observed"),
    "language": ("en-US", "es-US", "fr", ""),
    "area": ("",), "info": ("",),
}


def test_tsunami_cap_and_atom_survive_mutation() -> None:
    calls = Calls()
    cap = st.one_of(mutated_xml(CAP_SEEDS, CAP_TEXTS),
                    st.sampled_from(CAP_SEEDS).flatmap(lambda s: mutated_bytes(s, CAP_SEEDS)))
    atom = st.one_of(mutated_xml([ATOM_SEED], {"updated": CAP_TEXTS["sent"]}),
                     mutated_bytes(ATOM_SEED, CAP_SEEDS))

    @FUZZ_SETTINGS
    @given(cap=cap, atom=atom)
    def fuzz(cap: bytes, atom: bytes) -> None:
        calls()
        result = expect_only((FeedError,), lambda: tsunami.parse_cap(cap, now=NOW))
        if result is not None:
            check_parse_result(result, "tsunami")
            assert len(result.hazards) + result.skipped == 1
        feed = expect_only((FeedError,), lambda: tsunami.parse_atom(atom, now=NOW))
        if feed is not None:
            assert feed.skipped == len(feed.problems)
            for entry in feed.entries:
                assert entry.cap_url
                assert entry.updated is None or entry.updated.utcoffset().total_seconds() == 0

    fuzz()
    calls.check()
