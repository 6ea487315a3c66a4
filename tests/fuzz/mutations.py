"""Mutation strategies shared by the fuzz tests, and the checks every parse result must pass.

Inputs start from the recorded payloads in ``tests/fixtures`` (trimmed in memory) and are
mutated two ways, both driven by Hypothesis so that a failure shrinks to a small input:

* structure-aware: the seed is parsed (JSON tree, XML element tree, CSV rows) and random
  subtrees are replaced by hostile values of other types, deleted, duplicated, spliced from
  elsewhere in the seed, or, inside geometries, replaced by broken shapes and coordinates;
* byte-level: bit flips, truncation, inserted and deleted bytes, splices of two seeds, repeated
  chunks, invalid UTF-8 and byte-order marks.

:func:`check_parse_result` is the property of every feed parser's output.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from feeds.model import Hazard, ParseResult
from store.feeds import hazard_to_row

#: Inputs each fuzz target runs at least (asserted after the run by counting calls).
FUZZ_EXAMPLES = 10_000

#: Hypothesis settings of every fuzz target.
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)

#: Marks of every fuzz module: a failing mutated payload can be long, and Hypothesis warns
#: when it prints one; the failure itself must show, not that warning (filterwarnings=error).
FUZZ_MARKS = [pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")]

NOW = datetime(2025, 12, 15, 21, 53, 46, tzinfo=timezone.utc)


class Calls:
    """Counts the executions of a fuzz body, so a run that stopped early fails."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1

    def check(self, at_least: int = FUZZ_EXAMPLES) -> None:
        assert self.count >= at_least, (
            f"the fuzz body ran {self.count} times, fewer than {at_least}: Hypothesis stopped "
            "early (search space exhausted or examples rejected)")


# --------------------------------------------------------------------------- hostile values

NAN = float("nan")
INF = float("inf")

HOSTILE_NUMBERS: tuple[Any, ...] = (
    0, -0.0, 1, -1, 0.5, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324,
    NAN, INF, -INF, 90.0000001, -90.5, 180.0000001, -180.5, 181, 360, -360, 540, 1e6, 999.9,
    9999, 253402300799999, -62135596800001, 253402300800000, 1.7e15,
)

HOSTILE_STRINGS: tuple[str, ...] = (
    "", " ", "\x00", "\t\r\n", "null", "None", "NaN", "nan", "Infinity", "-inf", "1e999",
    "true", "0", "-1", "١٢٣", "0x1A", "1_000", "38,9", " 38.9 ",
    "2024-13-45T99:99:99Z", "2024-01-01T00:00:00", "2024-01-01", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999Z", "2024-02-30T00:00:00Z",
    "1970-01-01T00:00:00+24:00", "date:now", "date:now -9999999999 days", "date:today 99:99:99",
    "Mon, 32 Dec 2019 25:61:00 GMT", "Fri, 31 Dec 9999 23:59:59 -1200",
    "Mon, 01 Jan 0001 00:00:00 +1400", "\ufeff", "\u202eevil", "\ud800", "\U0001f300" * 3,
    "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "+1", "-1+1", "@SUM(A1)",
    "a" * 2000, "x,y", "{}", "[]", "FeatureCollection", "Feature", "Polygon", "Point",
    "https://evil.example/x", "al182012", "ep072026", "DR-4673-FL", "{" + "0" * 36 + "}",
)

GEOMETRY_TYPES: tuple[Any, ...] = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection", "Feature", "polygon", "", None, 7,
)

#: Rings and coordinate arrays that break shapes: empty, unclosed, too short, bow ties,
#: antimeridian crossings, poles, out of range, non-finite, wrong depth.
HOSTILE_RINGS: tuple[Any, ...] = (
    [],
    [[]],
    [[0, 0]],
    [[0, 0], [1, 1]],
    [[0, 0], [1, 0], [1, 1]],                               # unclosed
    [[0, 0], [1, 0], [1, 1], [0, 0]],
    [[0, 0], [0, 0], [0, 0], [0, 0]],                       # no area
    [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]],               # bow tie
    [[179, 10], [-179, 10], [-179, 11], [179, 11], [179, 10]],  # antimeridian
    [[170, 10], [190, 10], [190, 11], [170, 11], [170, 10]],    # past 180
    [[-190, 10], [-170, 10], [-170, 11], [-190, 11], [-190, 10]],
    [[0, 89], [120, 89], [-120, 89], [0, 89]],              # around the pole
    [[0, 95], [1, 95], [1, 96], [0, 95]],                   # latitude out of range
    [[400, 0], [401, 0], [401, 1], [400, 0]],
    [[NAN, 0], [1, 0], [1, 1], [NAN, 0]],
    [[INF, 0], [1, 0], [1, 1], [INF, 0]],
    [[1e308, 0], [-1e308, 0], [0, 1e308], [1e308, 0]],
    [[0, 0, 0], [1, 0, 5], [1, 1], [0, 0, 0]],              # mixed dimensions
    [["0", "0"], ["1", "0"], ["1", "1"], ["0", "0"]],
    [[None, None], [1, 0], [1, 1], [None, None]],
    [[[0, 0], [1, 0], [1, 1], [0, 0]]],                     # one level too deep
    [0, 0, 1, 1],
    [[0, 0], [1, 0], [1, 1], [0, 0], [0, 0], [0.5, 0.5], [0, 0]],
    [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]],  # the whole world
    [[0, 0], [360, 0], [360, 1], [0, 1], [0, 0]],           # a whole turn
)

_hostile_leaf = st.one_of(
    st.none(), st.booleans(), st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_STRINGS),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)


@functools.cache
def json_values(keys: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Hostile JSON-like values (NaN and infinities included: Python's json accepts them).

    Cached: building and validating a recursive strategy costs more than drawing from it."""
    key = st.sampled_from(keys) | st.text(max_size=6) if keys else st.text(max_size=6)
    return st.recursive(
        _hostile_leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=4),
        max_leaves=8,
    )


_GEOMETRY_TYPES = st.sampled_from(GEOMETRY_TYPES)
_RING_CHOICE = st.sampled_from(HOSTILE_RINGS)


@st.composite
def geometries(draw: st.DrawFn) -> Any:
    """A GeoJSON-ish geometry that is broken in some way (or, sometimes, fine)."""
    kind = draw(_GEOMETRY_TYPES)
    shape = draw(st.integers(0, 6))
    ring = draw(_RING_CHOICE)
    if shape == 0:
        coords: Any = ring
    elif shape == 1:
        coords = [ring]
    elif shape == 2:
        coords = [[ring], [draw(_RING_CHOICE)]]
    elif shape == 3:
        coords = [ring, draw(_RING_CHOICE)]   # a hole, maybe outside
    elif shape == 4:
        coords = draw(json_values())
    elif shape == 5:
        coords = ring[0] if ring else []
    else:
        coords = [[ring]] * draw(st.integers(0, 3))
    geometry: dict[str, Any] = {"type": kind, "coordinates": coords}
    if draw(st.integers(0, 5)) == 0:
        geometry = {"type": "GeometryCollection",
                    "geometries": [geometry, {"type": "Polygon", "coordinates": [ring]}]}
    if draw(st.integers(0, 7)) == 0:
        del geometry[draw(st.sampled_from(sorted(geometry)))]
    return geometry


# --------------------------------------------------------------------------- JSON trees

Path = tuple[Any, ...]


GEOMETRY_KEYS = frozenset({"geometry", "coordinates", "geometries"})


def _walk(draw: st.DrawFn, tree: Any, *, towards_geometry: bool = False) -> Path | None:
    """A random path from the root to a value inside ``tree`` (None for a leaf or empty root).

    Each step picks a child and stops there with probability 1/3, so shallow and deep values
    both get their turn without listing every path of the tree. ``towards_geometry`` prefers
    the keys of GeoJSON shapes on the way down.
    """
    path: list[Any] = []
    node = tree
    while isinstance(node, (dict, list)) and node:
        keys = list(node) if isinstance(node, dict) else range(len(node))
        preferred = [k for k in keys if k in GEOMETRY_KEYS] if towards_geometry \
            and isinstance(node, dict) else []
        if preferred and draw(st.booleans()):
            key = preferred[draw(st.integers(0, len(preferred) - 1))]
        else:
            key = keys[draw(st.integers(0, len(keys) - 1))]
        path.append(key)
        node = node[key]
        if draw(st.integers(0, 2)) == 0:
            break
    return tuple(path) or None


def _get(tree: Any, path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


TREE_OPS = ("replace", "replace", "delete", "duplicate", "splice", "wrap", "empty", "geometry",
            "coordinate", "ring", "stringify", "add_key", "repeat")
_OPS = st.sampled_from(TREE_OPS)
_GEOMETRIES = geometries()
_RINGS = st.sampled_from(HOSTILE_RINGS)
_NUMBERS = st.sampled_from(HOSTILE_NUMBERS) | st.floats()
_EMPTIES = st.sampled_from(([], {}, "", None))
_KEY_TEXT = st.text(max_size=6)


@st.composite
def mutated_tree(draw: st.DrawFn, seeds: Sequence[str], *, max_ops: int = 6,
                 keys: Sequence[str] = ()) -> Any:
    """A seed (JSON text) parsed and mutated structure-aware, ``max_ops`` times at most."""
    tree = json.loads(draw(st.sampled_from(tuple(seeds))))
    values = json_values(tuple(keys))
    names = st.sampled_from(tuple(keys)) if keys else _KEY_TEXT
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(_OPS)
        path = _walk(draw, tree, towards_geometry=op in ("geometry", "coordinate", "ring"))
        if path is None:
            tree = copy.deepcopy(draw(values)) if not isinstance(tree, (dict, list)) else tree
            break
        parent = _get(tree, path[:-1])
        current = parent[path[-1]]
        if op == "replace":
            parent[path[-1]] = copy.deepcopy(draw(values))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(path[-1], json.loads(json.dumps(current)))
        elif op == "splice":
            donor = _walk(draw, tree)
            if donor is not None and donor[:len(path)] != path:  # not from inside itself
                parent[path[-1]] = json.loads(json.dumps(_get(tree, donor)))
        elif op == "wrap":
            parent[path[-1]] = [current] if draw(st.booleans()) else {"value": current}
        elif op == "empty":
            parent[path[-1]] = copy.deepcopy(draw(_EMPTIES))
        elif op == "geometry":
            parent[path[-1]] = copy.deepcopy(draw(_GEOMETRIES))
        elif op == "coordinate":
            parent[path[-1]] = draw(_NUMBERS)
        elif op == "ring":
            parent[path[-1]] = copy.deepcopy(draw(_RINGS))
        elif op == "stringify":
            if isinstance(current, (int, float)) and not isinstance(current, bool):
                parent[path[-1]] = repr(current)
            elif isinstance(current, str):
                parent[path[-1]] = draw(st.sampled_from(HOSTILE_NUMBERS))
            else:
                parent[path[-1]] = json.dumps(current)
        elif op == "add_key" and isinstance(current, dict):
            name = draw(names)
            current[name] = copy.deepcopy(draw(values))
        elif op == "repeat" and isinstance(parent, list):
            parent.extend(copy.deepcopy([current] * draw(st.integers(1, 40))))
    return tree


def dumps(tree: Any) -> bytes:
    """JSON bytes of a mutated tree (NaN and infinities written as Python's json does)."""
    return json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass")


def tree_keys(*trees: Any) -> tuple[str, ...]:
    """Every dict key in ``trees``, sorted: keys mutations may insert."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            found.update(str(k) for k in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for tree in trees:
        walk(tree)
    return tuple(sorted(found))


# --------------------------------------------------------------------------- bytes

BYTE_OPS = ("flip", "truncate", "insert", "delete", "splice", "repeat", "bad_utf8", "bom",
            "overwrite")
BAD_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
            b"\x00", b"\x80\x80")
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf")
_BYTE_OPS = st.sampled_from(BYTE_OPS)
_INSERTED = st.binary(min_size=1, max_size=16)
_PIECES = st.binary(min_size=1, max_size=8)
_BAD_UTF8 = st.sampled_from(BAD_UTF8)
_BOMS = st.sampled_from(BOMS)


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes, donors: Sequence[bytes] = (), *,
                  max_ops: int = 4) -> bytes:
    """``data`` with 1 to ``max_ops`` byte-level mutations."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(_BYTE_OPS)
        size = len(buf)
        # a position drawn independently of the size: seeds with a timestamp inside (XLSX)
        # may differ in length from run to run, the draws must not
        at = draw(st.integers(0, 2**20)) % (size + 1)
        if op == "flip" and size:
            at = min(at, size - 1)
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = draw(_INSERTED)
        elif op == "delete":
            del buf[at:at + draw(st.integers(1, 64))]
        elif op == "splice" and donors:
            donor = draw(st.sampled_from(tuple(donors)))
            cut = draw(st.integers(0, 2**20)) % (len(donor) + 1)
            buf = buf[:at] + bytearray(donor[cut:])
        elif op == "repeat" and size:
            chunk = bytes(buf[at:at + draw(st.integers(1, 256))])
            buf[at:at] = chunk * draw(st.integers(1, 20))
        elif op == "bad_utf8":
            buf[at:at] = draw(_BAD_UTF8)
        elif op == "bom":
            buf[0:0] = draw(_BOMS)
        elif op == "overwrite" and size:
            piece = draw(_PIECES)
            buf[at:at + len(piece)] = piece
    return bytes(buf)


# --------------------------------------------------------------------------- XML


def _xml_safe(text: str) -> str:
    """Text XML can hold: lone surrogates and control characters become '?' (byte-level
    mutations cover the rest)."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c >= " " or c in "\t\n\r" else "?" for c in text)


XML_OPS = ("text", "text", "text", "delete", "duplicate", "move", "rename", "attribute",
           "insert", "clear")
_XML_OPS = st.sampled_from(XML_OPS)
_ATTRIBUTE_NAMES = st.sampled_from(("value", "unit", "href", "type", "rel", "lang"))
_ATTRIBUTE_VALUES = st.sampled_from(tuple(str(v) for v in HOSTILE_NUMBERS) + HOSTILE_STRINGS)


@functools.cache
def _texts_for(values: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(values + HOSTILE_STRINGS) | st.text(max_size=30)


@st.composite
def mutated_xml(draw: st.DrawFn, seeds: Sequence[bytes], texts: Mapping[str, Sequence[str]],
                *, max_ops: int = 6) -> bytes:
    """An XML seed parsed and mutated element-wise, then written back as bytes.

    ``texts`` maps local tag names to interesting values for them (coordinates, dates...);
    other elements get hostile strings.
    """
    root = ET.fromstring(draw(st.sampled_from(tuple(seeds))))
    for _ in range(draw(st.integers(0, max_ops))):
        parents = {child: parent for parent in root.iter() for child in parent}
        elements = list(parents)
        if not elements:
            break
        element = elements[draw(st.integers(0, len(elements) - 1))]
        parent = parents[element]
        local = element.tag.rsplit("}", 1)[-1]
        op = draw(_XML_OPS)
        if op == "text":
            element.text = _xml_safe(draw(_texts_for(tuple(texts.get(local, ())))))
        elif op == "delete":
            parent.remove(element)
        elif op == "duplicate":
            parent.insert(list(parent).index(element), ET.fromstring(ET.tostring(element)))
        elif op == "move":
            target = elements[draw(st.integers(0, len(elements) - 1))]
            if element not in target.iter():
                parent.remove(element)
                target.append(element)
        elif op == "rename":
            namespace = element.tag[:-len(local)]
            element.tag = draw(st.sampled_from((
                namespace + local.upper(), local, "{urn:other}" + local,
                namespace + draw(st.sampled_from(tuple(texts) or ("x",))))))
        elif op == "attribute":
            name = draw(_ATTRIBUTE_NAMES)
            element.set(name, _xml_safe(draw(_ATTRIBUTE_VALUES)))
        elif op == "insert":
            tag = draw(st.sampled_from(tuple(texts) or ("x",)))
            namespace = element.tag[:-len(local)]
            child = ET.SubElement(element, namespace + tag)
            child.text = _xml_safe(draw(st.sampled_from(tuple(texts.get(tag, ("",))))))
        elif op == "clear":
            element.clear()
    return ET.tostring(root, encoding="utf-8")


# --------------------------------------------------------------------------- checks


def _check_coords(coords: np.ndarray, what: str) -> None:
    assert coords.size, f"{what}: empty coordinates"
    assert np.isfinite(coords).all(), f"{what}: non-finite coordinates"
    assert np.abs(coords[:, 1]).max() <= 90.0, f"{what}: latitude out of range"
    # Shapes crossing the antimeridian may be drawn past 180; layers.shapes brings them back.
    assert np.abs(coords[:, 0]).max() <= 360.0, f"{what}: longitude out of range"


def check_hazard(hazard: Hazard, source: str) -> None:
    """One hazard is well-formed: its source, times, area, and a row the store can write."""
    assert isinstance(hazard, Hazard), type(hazard)
    assert hazard.source == source and hazard.hazard_id.startswith(f"{source}:")
    for name in ("sent", "effective", "onset", "expires", "ends"):
        value = getattr(hazard, name)
        assert value is None or (isinstance(value, datetime)
                                 and value.utcoffset() == timedelta(0)), (name, value)
    geometry = hazard.geometry
    if geometry is not None:
        assert geometry.geom_type in ("Polygon", "MultiPolygon"), geometry.geom_type
        assert not geometry.is_empty, f"{hazard.hazard_id}: empty geometry"
        assert shapely.is_valid(geometry), (
            f"{hazard.hazard_id}: invalid geometry ({shapely.is_valid_reason(geometry)})")
        assert geometry.area > 0, f"{hazard.hazard_id}: geometry without area"
        _check_coords(shapely.get_coordinates(geometry), hazard.hazard_id)
        assert hazard.geometry_method is not None
    if hazard.radius_km is not None:
        assert math.isfinite(hazard.radius_km) and hazard.radius_km > 0, hazard.radius_km
        _check_coords(np.array([[hazard.center_lon, hazard.center_lat]], dtype=float),
                      hazard.hazard_id)
    assert hazard.is_placed == (hazard.geometry_method is not None), hazard.hazard_id
    hazard_to_row(hazard, stored_at=NOW)  # the store can keep it


def check_parse_result(result: Any, source: str) -> None:
    """The property of every parse: well-formed hazards, and counts that add up."""
    assert isinstance(result, ParseResult), type(result)
    assert isinstance(result.hazards, tuple)
    for hazard in result.hazards:
        check_hazard(hazard, source)
    assert result.unplaced == sum(not h.is_placed for h in result.hazards)
    assert result.skipped == len(result.problems), (result.skipped, result.problems)
    assert all(isinstance(p, str) and p for p in result.problems)


def expect_only(allowed: tuple[type[BaseException], ...], call: Callable[[], Any]
                ) -> Any | None:
    """``call()``, or None when it raised one of the ``allowed`` (documented) errors."""
    try:
        return call()
    except allowed as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None


# --------------------------------------------------------------------------- CSV


def csv_bytes(rows: Sequence[Sequence[str]], *, quoting: int = csv.QUOTE_MINIMAL,
              line_end: str = "\n", encoding: str = "utf-8") -> bytes:
    """Rows written as CSV text in ``encoding`` (unencodable characters replaced)."""
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator=line_end).writerows(rows)
    return out.getvalue().encode(encoding, "replace")
