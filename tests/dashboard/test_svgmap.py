"""The wall display's server-rendered SVG maps: well-formed, projected right, private, small.

The projection oracle is independent of the module: its own PROJ definition (built from a dict,
longitudes passed as given, PROJ wraps them), its own fit of the box (1001 samples per edge).
Paths are parsed back into shapes with the even-odd rule, the way a browser fills them.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable

import antimeridian
import h3
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from dashboard import svgmap
from dashboard.svgmap import PANELS, Panel, bounds_of, closeup_panel, legend_cells, project, render
from layers.geography import load_geography
from tests.layers.geometry_catalogue import CATALOGUE

SVG = "{http://www.w3.org/2000/svg}"
GEOD = pyproj.Geod(ellps="WGS84")
LOWER_48_AND_DC = {
    "AL", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA",
    "WA", "WV", "WI", "WY",
}
TERRITORIES = {
    "alaska": ("AK",), "hawaii": ("HI",), "puerto_rico": ("PR", "VI"), "guam": ("GU",),
    "american_samoa": ("AS",), "marshall_islands": ("MH",),
}
NO_CELLS = pd.DataFrame({"h3_cell": pd.Series([], dtype=str), "people": pd.Series([], dtype=int)})
NO_MISSIONS = pd.DataFrame({"lat": pd.Series([], dtype=float),
                            "lon": pd.Series([], dtype=float),
                            "affected": pd.Series([], dtype=bool)})


@pytest.fixture(scope="module")
def states():
    return load_geography().states


def draw(panel: Panel, states, hazards=(), *, cells=NO_CELLS, missions=NO_MISSIONS,
         highlight=None) -> str:
    return render(panel, base=states, hazards=list(hazards), cells=cells, missions=missions,
                  highlight=highlight)


# ------------------------------------------------------------------------------ SVG reading


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def elements(root: ET.Element, cls: str, tag: str = "path") -> list[ET.Element]:
    """Elements in document order whose class list contains ``cls``."""
    return [e for e in root.iter(f"{SVG}{tag}") if cls in e.get("class", "").split()]


def path_rings(d: str) -> list[np.ndarray]:
    """Subpaths of path data (M/m, L/l, Z/z with implicit repeats) as point arrays."""
    rings: list[list[tuple[float, float]]] = []
    command, cur, start = "", (0.0, 0.0), (0.0, 0.0)
    numbers: list[float] = []

    def flush() -> None:
        nonlocal cur, start, command
        for i in range(0, len(numbers) - 1, 2):
            x, y = numbers[i], numbers[i + 1]
            relative = command.islower()
            point = (cur[0] + x, cur[1] + y) if relative else (x, y)
            if command in "Mm" and i == 0:
                rings.append([point])
                start = point
            else:
                rings[-1].append(point)
            cur = point
        numbers.clear()

    for token in re.findall(r"[MmLlZz]|-?\d+(?:\.\d+)?", d):
        if token in "MmLlZz":
            flush()
            command = token
            if token in "Zz":
                cur = start
        else:
            numbers.append(float(token))
    flush()
    return [np.array(r) for r in rings]


def path_shape(d: str):
    """The area a browser fills for ``d`` under fill-rule evenodd."""
    shapes = [shapely.make_valid(Polygon(r)) for r in path_rings(d) if len(r) >= 3]
    return functools.reduce(shapely.symmetric_difference, shapes)


def path_bbox(d: str) -> np.ndarray:
    points = np.concatenate(path_rings(d))
    return np.array([points[:, 0].min(), points[:, 1].min(), points[:, 0].max(),
                     points[:, 1].max()])


def hazard_path(svg: str, hazard_id: str) -> str:
    found = [e for e in elements(parse(svg), "hazard") if e.get("data-id") == hazard_id]
    assert len(found) == 1, f"expected one path for {hazard_id}, found {len(found)}"
    return found[0].get("d")


def luminance(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ------------------------------------------------------------------------------ the oracle


def oracle(panel: Panel) -> tuple[Callable, float, float, float]:
    """Independent lon/lat -> pixel for ``panel``: LAEA on the box centre, box fitted to W x H.

    Returns ``(to_pixels, scale, centre_x, centre_y)`` (projected metres for the last three).
    """
    west, south, east, north = panel.bounds
    crs = pyproj.CRS({"proj": "laea", "lat_0": (south + north) / 2,
                      "lon_0": ((west + east) / 2 + 180) % 360 - 180, "ellps": "WGS84",
                      "units": "m"})
    forward = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    t = np.linspace(0, 1, 1001)
    lon = np.concatenate([west + (east - west) * t, np.full_like(t, east),
                          west + (east - west) * t, np.full_like(t, west)])
    lat = np.concatenate([np.full_like(t, south), south + (north - south) * t,
                          np.full_like(t, north), south + (north - south) * t])
    x, y = forward.transform(lon, lat)
    scale = min(panel.width / (x.max() - x.min()), panel.height / (y.max() - y.min()))
    cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2

    def to_pixels(lons, lats):
        px, py = forward.transform(np.asarray(lons, float), np.asarray(lats, float))
        return ((px - cx) * scale + panel.width / 2, panel.height / 2 - (py - cy) * scale)

    return to_pixels, scale, cx, cy


def view_km(panel: Panel) -> tuple[float, float]:
    """Geodesic width and height of the panel's frame through its centre (oracle projection)."""
    _, scale, cx, cy = oracle(panel)
    west, south, east, north = panel.bounds
    crs = pyproj.CRS({"proj": "laea", "lat_0": (south + north) / 2,
                      "lon_0": ((west + east) / 2 + 180) % 360 - 180, "ellps": "WGS84"})
    inverse = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    hw, hh = panel.width / 2 / scale, panel.height / 2 / scale
    lon, lat = inverse.transform([cx - hw, cx + hw, cx, cx], [cy, cy, cy - hh, cy + hh])
    _, _, width = GEOD.inv(lon[0], lat[0], lon[1], lat[1])
    _, _, height = GEOD.inv(lon[2], lat[2], lon[3], lat[3])
    return width / 1000, height / 1000


CLOSEUPS = {
    "point": closeup_panel((-97.5, 35.4, -97.5, 35.4)),
    "aleutians_across_180": closeup_panel((179.5, 51.5, -179.5, 52.5)),
    "samoa": closeup_panel((-171.0, -14.5, -170.5, -14.1), 640, 480),
}
ALL_PANELS = {**PANELS, **{f"closeup_{k}": p for k, p in CLOSEUPS.items()}}


# ------------------------------------------------------------------------------ documents


@pytest.mark.parametrize("key", list(PANELS))
def test_every_panel_is_a_standalone_svg(states, key: str) -> None:
    panel = PANELS[key]
    svg = draw(panel, states)
    root = parse(svg)
    assert root.get("viewBox") == f"0 0 {panel.width} {panel.height}"
    assert root.get("preserveAspectRatio") == "xMidYMid meet"
    styles = list(root.iter(f"{SVG}style"))
    assert len(styles) == 1 and ".hazard" in styles[0].text
    assert not list(root.iter(f"{SVG}script"))
    assert not list(root.iter(f"{SVG}text"))
    for element in root.iter():
        assert not element.tag.endswith(("script", "foreignObject", "image", "use"))
        for name, value in element.attrib.items():
            assert "href" not in name and not name.startswith("on"), (element.tag, name)
            assert "url(" not in value and "javascript:" not in value
    assert "@import" not in styles[0].text and "url(" not in styles[0].text
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_panels_are_the_agreed_set() -> None:
    assert set(PANELS) == {"conus", "alaska", "hawaii", "puerto_rico", "guam",
                           "american_samoa", "marshall_islands"}
    west, south, east, north = PANELS["marshall_islands"].bounds
    assert west <= 165 and east >= 172.1 and south <= 4.5 and north >= 14.7


def test_conus_draws_the_lower_48_and_dc_and_not_alaska(states) -> None:
    svg = draw(PANELS["conus"], states)
    codes = {e.get("data-code") for e in elements(parse(svg), "state")}
    assert codes == LOWER_48_AND_DC
    # An Alaskan mainland point would fall far outside the frame.
    x, y = project(PANELS["conus"], [-150.0], [61.2])
    assert not (0 <= x[0] <= PANELS["conus"].width and 0 <= y[0] <= PANELS["conus"].height)


@pytest.mark.parametrize("key", list(TERRITORIES))
def test_each_inset_contains_its_territory(states, key: str) -> None:
    panel = PANELS[key]
    paths = {e.get("data-code"): e.get("d") for e in elements(parse(draw(panel, states)),
                                                               "state")}
    to_pixels = oracle(panel)[0]
    for code in TERRITORIES[key]:
        assert code in paths, f"{code} missing from {key}"
        geometry = states.geometry[states["code"] == code].iloc[0]
        if key == "american_samoa":
            # The inset frames Tutuila and Manu'a: nearly all the land (not Swains or Rose).
            framed = geometry.intersection(box(*panel.bounds))
            assert framed.area >= 0.95 * geometry.area
            geometry = framed
        coords = shapely.get_coordinates(geometry)
        px, py = to_pixels(coords[:, 0], coords[:, 1])
        expected = np.array([px.min(), py.min(), px.max(), py.max()])
        # The whole territory is in the frame ...
        assert expected[0] >= 0 and expected[1] >= 0
        assert expected[2] <= panel.width and expected[3] <= panel.height
        # ... and what is drawn is that territory (simplified to half a pixel).
        np.testing.assert_allclose(path_bbox(paths[code]), expected, atol=1.0)


def test_insets_show_their_areas_at_the_right_size(states) -> None:
    """Drawn land area against the oracle's projection of the exact shape (large islands)."""
    for key, code in (("alaska", "AK"), ("hawaii", "HI"), ("puerto_rico", "PR")):
        panel = PANELS[key]
        d = next(e.get("d") for e in elements(parse(draw(panel, states)), "state")
                 if e.get("data-code") == code)
        to_pixels = oracle(panel)[0]
        geometry = shapely.segmentize(states.geometry[states["code"] == code].iloc[0], 0.05)
        exact = shapely.transform(geometry, lambda xy, f=to_pixels: np.column_stack(
            f(xy[:, 0], xy[:, 1])))
        assert path_shape(d).area == pytest.approx(exact.area, rel=0.03), key


# ------------------------------------------------------------------------------ projection


@pytest.mark.parametrize("key", list(ALL_PANELS))
def test_projection_matches_an_independent_pyproj_computation(key: str) -> None:
    panel = ALL_PANELS[key]
    west, south, east, north = panel.bounds
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    lon = rng.uniform(west, east, 500)
    lat = rng.uniform(south, north, 500)
    lon = np.concatenate([lon, [west, east, west, east]])
    lat = np.concatenate([lat, [south, south, north, north]])
    as_stored = (lon + 180) % 360 - 180  # data arrive within [-180, 180)
    x, y = project(panel, as_stored, lat)
    ox, oy = oracle(panel)[0](lon, lat)
    np.testing.assert_allclose(x, ox, atol=0.01)
    np.testing.assert_allclose(y, oy, atol=0.01)
    assert (x >= -1e-6).all() and (x <= panel.width + 1e-6).all()
    assert (y >= -1e-6).all() and (y <= panel.height + 1e-6).all()
    # The box fills the frame along one axis at least.
    assert max((x.max() - x.min()) / panel.width, (y.max() - y.min()) / panel.height) > 0.99


def test_points_either_side_of_the_antimeridian_land_side_by_side() -> None:
    panel = PANELS["alaska"]
    x, y = project(panel, [179.9, -179.9, 180.0, -180.0], [52.0, 52.0, 52.0, 52.0])
    assert 0 < abs(x[1] - x[0]) < 5 and abs(y[1] - y[0]) < 1
    assert x[2] == pytest.approx(x[3]) and y[2] == pytest.approx(y[3])
    assert ((x >= 0) & (x <= panel.width) & (y >= 0) & (y <= panel.height)).all()


def _across(west: float, south: float, east: float, north: float):
    """The same area as one polygon beyond 180 and as a MultiPolygon split at ±180."""
    whole = box(west, south, east, north)
    split = MultiPolygon([box(west, south, 180, north), box(-180, south, east - 360, north)])
    return whole, split


@pytest.mark.parametrize(("key", "area", "clipped"), [
    ("alaska", (178.0, 51.5, 182.0, 53.5), False),
    ("marshall_islands", (168.0, 6.0, 181.0, 9.0), True),
    ("american_samoa", (175.0, -14.5, 190.5, -14.0), True),
    ("closeup_aleutians_across_180", (179.8, 51.8, 180.3, 52.2), False),
])
def test_hazards_across_the_antimeridian_render_the_same_either_way(
        states, key: str, area: tuple[float, ...], clipped: bool) -> None:
    panel = ALL_PANELS[key]
    whole, split = _across(*area)
    d_whole = hazard_path(draw(panel, states, [("h", "severe", whole)]), "h")
    d_split = hazard_path(draw(panel, states, [("h", "severe", split)]), "h")
    assert len(path_rings(d_whole)) == len(path_rings(d_split)) == 1  # joined: no seam
    np.testing.assert_allclose(path_bbox(d_whole), path_bbox(d_split), atol=0.2)
    margin = svgmap.CLIP_MARGIN_PX
    bbox = path_bbox(d_whole)
    assert bbox[0] >= -margin and bbox[1] >= -margin
    assert bbox[2] <= panel.width + margin and bbox[3] <= panel.height + margin
    # Against the oracle: the outline, densified, projected independently, cut to the frame.
    to_pixels = oracle(panel)[0]
    outline = shapely.get_coordinates(shapely.segmentize(whole, 0.01))
    ox, oy = to_pixels(outline[:, 0], outline[:, 1])
    expected = shapely.clip_by_rect(Polygon(np.column_stack([ox, oy])), -margin, -margin,
                                    panel.width + margin, panel.height + margin)
    np.testing.assert_allclose(bbox, expected.bounds, atol=1.0)
    assert path_shape(d_whole).area == pytest.approx(expected.area, rel=0.02)
    if not clipped:
        assert bbox[0] >= 0 and bbox[1] >= 0
        assert bbox[2] <= panel.width and bbox[3] <= panel.height


def test_every_catalogue_shape_renders_in_every_panel(states) -> None:
    hazards = [(h["hazard_id"], "moderate", h["geometry"]) for case in CATALOGUE
               for h in case.hazards]
    for key, panel in ALL_PANELS.items():
        root = parse(draw(panel, states, hazards))
        for element in elements(root, "hazard"):
            d = element.get("d")
            assert "nan" not in d and "inf" not in d, (key, element.get("data-id"))
            bbox = path_bbox(d)
            margin = svgmap.CLIP_MARGIN_PX
            assert bbox[0] >= -margin - 0.05 and bbox[2] <= panel.width + margin + 0.05
        shown = {e.get("data-id") for e in elements(root, "hazard")}
        # The whole world covers every frame; the thin sliver across 180 only frames holding 180.
        assert "world" in shown, key
        world = path_shape(hazard_path(draw(panel, states, [h for h in hazards
                                                            if h[0] == "world"]), "world"))
        assert world.covers(box(0, 0, panel.width, panel.height)), key
        west, _, east, _ = panel.bounds
        assert ("sliver" in shown) == (west < 180 < east or west < -180 < east), key
    # The three ways of drawing the same Pacific box agree.
    panel = PANELS["marshall_islands"]
    boxes = [path_bbox(hazard_path(draw(panel, states, [h]), h[0]))
             for h in hazards if h[0] in ("split", "beyond", "jump")]
    np.testing.assert_allclose(boxes[0], boxes[1], atol=0.2)
    np.testing.assert_allclose(boxes[0], boxes[2], atol=0.2)


# ------------------------------------------------------------------------------ hazards


FLORIDA_HURRICANE = Polygon([(-84, 24), (-78, 24), (-77, 30), (-82, 31), (-86, 28)])
GUAM_TYPHOON = Point(145.0, 13.8).buffer(0.6)


def test_hazards_outside_the_panel_are_not_drawn(states) -> None:
    hazards = [("fl", "extreme", FLORIDA_HURRICANE), ("gu", "severe", GUAM_TYPHOON)]
    guam = [e.get("data-id") for e in elements(parse(draw(PANELS["guam"], states, hazards)),
                                               "hazard")]
    conus = [e.get("data-id") for e in elements(parse(draw(PANELS["conus"], states, hazards)),
                                                "hazard")]
    assert guam == ["gu"]
    assert conus == ["fl"]


def test_hazard_classes_ids_order_and_highlight(states) -> None:
    tricky = 'a<b>&"c\'d\x01'
    hazards = [
        ("x1", "extreme", Point(-97, 38).buffer(1)),
        ("m1", "minor", Point(-96, 38).buffer(1)),
        (tricky, "Severe", Point(-95, 38).buffer(1)),
        ("u1", "not-a-severity", Point(-94, 38).buffer(1)),
        ("mod", "moderate", Point(-93, 38).buffer(1)),
        ("x2", "extreme", Point(-92, 38).buffer(1)),
    ]
    svg = draw(PANELS["conus"], states, hazards, highlight="m1")
    assert "&lt;b&gt;&amp;&quot;c" in svg
    paths = elements(parse(svg), "hazard")
    ids = [p.get("data-id") for p in paths]
    classes = {p.get("data-id"): p.get("class").split() for p in paths}
    assert ids == ["u1", "mod", 'a<b>&"c\'d', "x1", "x2", "m1"]  # worse on top, highlight last
    assert classes["x1"] == ["hazard", "sev-extreme"]
    assert classes['a<b>&"c\'d'] == ["hazard", "sev-severe"]
    assert classes["u1"] == ["hazard", "sev-unknown"]
    assert classes["m1"] == ["hazard", "sev-minor", "highlight"]
    assert sum("highlight" in c for c in classes.values()) == 1
    for p in paths:
        assert p.get("vector-effect") == "non-scaling-stroke"
    style = next(parse(svg).iter(f"{SVG}style")).text
    for severity, colour in svgmap.SEVERITY_FILL.items():
        assert f".sev-{severity}{{fill:{colour};stroke:{colour}}}" in style


def test_without_highlight_extreme_is_drawn_last(states) -> None:
    hazards = [("x", "extreme", Point(-97, 38).buffer(1)), ("m", "minor", Point(-97, 38).buffer(2))]
    ids = [p.get("data-id") for p in elements(parse(draw(PANELS["conus"], states, hazards)),
                                              "hazard")]
    assert ids == ["m", "x"]


def test_holes_stay_holes(states) -> None:
    donut = Point(-98, 38).buffer(2.0).difference(Point(-98, 38).buffer(0.8))
    square = Polygon([(-90, 32), (-86, 32), (-86, 36), (-90, 36)],
                     [[(-89, 33), (-87, 33), (-87, 35), (-89, 35)]])
    hazard = MultiPolygon([donut, square])
    panel = PANELS["conus"]
    d = hazard_path(draw(panel, states, [("h", "severe", hazard)]), "h")
    assert len(path_rings(d)) == 4
    filled = path_shape(d)
    (hx, ox, sx, qx), (hy, oy, sy, qy) = project(panel, [-98, -96.6, -88, -89.5],
                                                 [38, 38, 34, 34])
    assert not filled.contains(Point(hx, hy))  # the donut's hole
    assert filled.contains(Point(ox, oy))      # its ring
    assert not filled.contains(Point(sx, sy))  # the square's hole
    assert filled.contains(Point(qx, qy))
    style = next(parse(draw(panel, states)).iter(f"{SVG}style")).text
    assert re.search(r"\.hazard\{[^}]*fill-rule:evenodd", style)


def test_unknown_or_empty_hazard_shapes_are_skipped(states) -> None:
    hazards = [("e", "minor", Polygon()), ("n", "minor", None), ("p", "minor", Point(-97, 38)),
               ("ok", "minor", Point(-97, 38).buffer(1))]
    ids = [p.get("data-id") for p in elements(parse(draw(PANELS["conus"], states, hazards)),
                                              "hazard")]
    assert ids == ["ok"]
    with pytest.raises(ValueError, match="hazards"):
        draw(PANELS["conus"], states, [("only-two", "minor")])


# ------------------------------------------------------------------------------ cells


def _cells() -> tuple[pd.DataFrame, list[str], list[str]]:
    kansas = sorted(h3.grid_disk(h3.latlng_to_cell(39.1, -94.6, 5), 2))
    guam = [h3.latlng_to_cell(13.47, 144.75, 5), h3.latlng_to_cell(13.3, 144.7, 5)]
    people = [round(10 ** (i / 4)) for i in range(len(kansas))] + [5, 50]
    frame = pd.DataFrame({"h3_cell": kansas + guam, "people": people,
                          "names": "Jane Doe"})  # extra columns must never reach the SVG
    return frame, kansas, guam


def test_one_hexagon_per_cell_in_the_panel(states) -> None:
    frame, kansas, guam = _cells()
    panel = PANELS["conus"]
    svg = draw(panel, states, cells=frame)
    paths = elements(parse(svg), "cell")
    assert len(paths) == len(kansas)
    centres = np.array([h3.cell_to_latlng(c) for c in kansas])
    cx, cy = oracle(panel)[0](centres[:, 1], centres[:, 0])
    by_people = dict(zip(frame["people"].iloc[:len(kansas)], zip(cx, cy, strict=True),
                         strict=True))
    for path in paths:
        rings = path_rings(path.get("d"))
        assert len(rings) == 1 and len(rings[0]) == 6  # a hexagon (closing point implied)
        centre = Polygon(rings[0]).centroid
        x, y = by_people[int(path.get("data-people"))]
        assert centre.distance(Point(x, y)) < 0.5
        assert set(path.attrib) == {"class", "fill", "data-people", "d"}
        assert path.get("class") == "cell"
    for cell in kansas + guam:
        assert cell not in svg
    assert "Jane Doe" not in svg
    assert len(elements(parse(draw(PANELS["guam"], states, cells=frame)), "cell")) == 2


def test_cell_colours_rise_with_people_and_match_the_legend(states) -> None:
    frame, _, _ = _cells()
    paths = elements(parse(draw(PANELS["conus"], states, cells=frame)), "cell")
    pairs = sorted((int(p.get("data-people")), p.get("fill")) for p in paths)
    lum = [luminance(c) for _, c in pairs]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(lum))
    assert lum[-1] - lum[0] > 0.3
    # Drawn in rising order, so dense cells end on top.
    assert [int(p.get("data-people")) for p in paths] == sorted(p for p, _ in pairs)
    top = svgmap.CELL_SCALE_MAX  # the default scale, the one the page's legend shows
    legend = legend_cells(top)
    assert [label for label, _ in legend] == ["1–9", "10–99", "100–999", "1,000–9,999",
                                              "10,000+"]
    legend_lum = [luminance(c) for _, c in legend]
    assert all(a < b for a, b in itertools.pairwise(legend_lum))
    # Each drawn colour sits between the legend steps of its decade's neighbours.
    for people, colour in pairs:
        decade = len(str(people)) - 1
        assert svgmap.cell_colours([people], top) == [colour]
        low = legend_lum[decade - 1] if decade > 0 else luminance(svgmap.CELL_COLOURS[0])
        high = (legend_lum[decade + 1] if decade + 1 < len(legend)
                else luminance(svgmap.CELL_COLOURS[-1]))
        assert low - 1e-9 <= luminance(colour) <= high + 1e-9
    # Cell colours are not severity colours.
    assert not set(svgmap.CELL_COLOURS) & set(svgmap.SEVERITY_FILL.values())


def test_the_default_scale_is_fixed_and_none_scales_to_the_data(states) -> None:
    frame, kansas, _ = _cells()
    small = frame[frame["h3_cell"].isin(kansas[:3])]  # counts 1, 2 and 3

    def colours(cells, **kwargs) -> dict[str, str]:
        svg = render(PANELS["conus"], base=states, hazards=[], cells=cells,
                     missions=NO_MISSIONS, **kwargs)
        return {p.get("data-people"): p.get("fill") for p in elements(parse(svg), "cell")}

    whole, part = colours(frame), colours(small)
    assert all(whole[k] == v for k, v in part.items())  # same count, same colour, any panel
    own = colours(small, cell_max=None)  # 1 to 9: the top of the data is near the top colour
    assert luminance(own["3"]) > luminance(part["3"]) + 0.05
    assert own["1"] == part["1"] == svgmap.CELL_COLOURS[0]


def test_bad_cells_are_skipped_and_bad_frames_refused(states) -> None:
    frame = pd.DataFrame({"h3_cell": ["not-a-cell", h3.latlng_to_cell(39.1, -94.6, 5),
                                      h3.latlng_to_cell(39.5, -94.6, 5)],
                          "people": [10, 5, 0]})
    assert len(elements(parse(draw(PANELS["conus"], states, cells=frame)), "cell")) == 1
    with pytest.raises(ValueError, match="cells"):
        draw(PANELS["conus"], states, cells=pd.DataFrame({"cell": ["x"]}))


# ------------------------------------------------------------------------------ missions


def test_missions_are_anonymous_dots_with_the_affected_on_top(states) -> None:
    missions = pd.DataFrame({
        "lat": [38.9, 40.7, 13.47, 34.0, 41.9, np.nan],
        "lon": [-77.0, -74.0, 144.75, -118.2, -87.6, -90.0],
        "affected": [True, False, False, True, False, True],
        "name": ["Embassy of Secretland"] * 6,
        "mission_id": ["m-secret-1", "m2", "m3", "m4", "m5", "m6"],
    })
    panel = PANELS["conus"]
    svg = draw(panel, states, missions=missions)
    assert "Embassy of Secretland" not in svg and "m-secret-1" not in svg
    dots = list(parse(svg).iter(f"{SVG}circle"))
    assert [d.get("class") for d in dots] == ["mission", "mission", "mission affected",
                                              "mission affected"]
    assert float(dots[2].get("r")) > float(dots[0].get("r"))
    x, y = project(panel, [-77.0, -118.2], [38.9, 34.0])
    drawn = sorted((float(d.get("cx")), float(d.get("cy"))) for d in dots[2:])
    np.testing.assert_allclose(drawn, sorted(zip(x, y, strict=True)), atol=0.051)
    for dot in dots:
        assert set(dot.attrib) <= {"class", "cx", "cy", "r", "vector-effect"}
    assert len(list(parse(draw(PANELS["guam"], states, missions=missions))
                    .iter(f"{SVG}circle"))) == 1
    with pytest.raises(ValueError, match="missions"):
        draw(panel, states, missions=missions.drop(columns="affected"))


# ------------------------------------------------------------------------------ close-ups


def test_a_point_sized_box_still_shows_its_surroundings() -> None:
    for lat in (0.0, 35.4, 64.8, -14.3):
        panel = closeup_panel((-150.0, lat, -150.0, lat))
        width_km, height_km = view_km(panel)
        assert width_km >= svgmap.MIN_CLOSEUP_KM and height_km >= svgmap.MIN_CLOSEUP_KM
        assert width_km < 200 and height_km < 200
        x, y = project(panel, [-150.0], [lat])
        assert x[0] == pytest.approx(panel.width / 2, abs=0.5)
        assert y[0] == pytest.approx(panel.height / 2, abs=0.5)


def test_a_closeup_frames_the_area_with_a_margin(states) -> None:
    area = Point(-97.0, 35.0).buffer(1.0)
    panel = closeup_panel(area.bounds, 800, 600, name="Oklahoma")
    assert panel.name == "Oklahoma" and (panel.width, panel.height) == (800, 600)
    bbox = path_bbox(hazard_path(draw(panel, states, [("h", "extreme", area)]), "h"))
    assert bbox[0] > 20 and bbox[1] > 20
    assert bbox[2] < panel.width - 20 and bbox[3] < panel.height - 20
    assert max(bbox[2] - bbox[0], bbox[3] - bbox[1]) > 0.6 * min(panel.width, panel.height)


@pytest.mark.parametrize("given", [
    (179.0, 51.0, -179.0, 52.0),    # east < west: across the antimeridian
    (-180.0, 51.0, 180.0, 52.0),    # plain bounds of a shape split at ±180
    (179.0, 51.0, 181.0, 52.0),     # east beyond 180
])
def test_closeups_across_the_antimeridian_frame_the_small_area(given) -> None:
    panel = closeup_panel(given)
    west, _, east, _ = panel.bounds
    assert 0 < east - west < 10
    assert west < 180 < east
    x, y = project(panel, [180.0, -180.0], [51.5, 51.5])
    assert 0 < x[0] < panel.width and 0 < y[0] < panel.height
    assert x[0] == pytest.approx(x[1])


def test_bounds_of_a_split_shape_is_the_small_box(states) -> None:
    whole, split = _across(178.0, 51.5, 182.0, 53.5)
    assert bounds_of(split) == pytest.approx((178.0, 51.5, 182.0, 53.5))
    assert bounds_of(whole) == pytest.approx((178.0, 51.5, 182.0, 53.5))
    alaska = bounds_of(states.geometry[states["code"] == "AK"].iloc[0])
    assert 172 < alaska[0] < 173 and 229 < alaska[2] < 231  # the Aleutians to the panhandle
    panel = closeup_panel(split)
    assert panel.bounds[2] - panel.bounds[0] < 10
    bbox = path_bbox(hazard_path(draw(panel, states, [("h", "severe", split)]), "h"))
    assert bbox[0] > 0 and bbox[2] < panel.width and bbox[1] > 0 and bbox[3] < panel.height
    with pytest.raises(ValueError, match="geometry"):
        bounds_of(Polygon())


def test_bounds_of_matches_the_antimeridian_package_on_random_shapes() -> None:
    rng = np.random.default_rng(20240601)
    for _ in range(200):
        west = rng.uniform(-180, 180)
        width = rng.uniform(0.01, 60)
        south = rng.uniform(-60, 50)
        height = rng.uniform(0.01, 20)
        east = west + width
        if east > 180:
            shape = MultiPolygon([box(west, south, 180, south + height),
                                  box(-180, south, east - 360, south + height)])
        else:
            shape = box(west, south, east, south + height)
        got = bounds_of(shape)
        ref = antimeridian.bbox(shape)
        ref_east = ref[2] + 360 if ref[2] < ref[0] else ref[2]
        assert got == pytest.approx((ref[0], ref[1], ref_east, ref[3]), abs=1e-9)
        assert got == pytest.approx((west, south, east, south + height), abs=1e-9)


def test_panels_refuse_impossible_boxes() -> None:
    with pytest.raises(ValueError, match="bounds"):
        Panel("x", (10.0, 5.0, 0.0, 6.0), 100, 100)
    with pytest.raises(ValueError, match="bounds"):
        Panel("x", (0.0, 6.0, 1.0, 5.0), 100, 100)
    with pytest.raises(ValueError, match="width"):
        Panel("x", (0.0, 5.0, 1.0, 6.0), 0, 100)
    with pytest.raises(ValueError, match="bounds"):
        closeup_panel((0.0, float("nan"), 1.0, 2.0))


# ------------------------------------------------------------------------------ size, cache


def _national_load(states, n_hazards: int = 300, n_cells: int = 3000):
    rng = np.random.default_rng(42)
    lower48 = shapely.union_all(
        states.geometry[states["code"].isin(LOWER_48_AND_DC)].to_numpy())
    lon = rng.uniform(-124, -67, 20 * n_cells)
    lat = rng.uniform(25, 49, 20 * n_cells)
    on_land = shapely.contains_xy(lower48, lon, lat)
    lon, lat = lon[on_land], lat[on_land]
    severities = list(svgmap.SEVERITY_ORDER)
    hazards = []
    for i in range(n_hazards):
        k = int(rng.integers(12, 150))
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = rng.uniform(0.2, 1.5) * (1 + 0.3 * rng.random(k))
        ring = np.column_stack([lon[i] + radius * np.cos(angle) / np.cos(np.radians(lat[i])),
                                lat[i] + radius * np.sin(angle)])
        hazards.append((f"urn:oid:2.49.0.1.840.0.{i:040d}", severities[i % 5],
                        shapely.make_valid(Polygon(ring))))
    cells = list(dict.fromkeys(h3.latlng_to_cell(a, o, 5) for a, o in zip(lat, lon,
                                                                           strict=True)))
    cells = cells[:n_cells]
    frame = pd.DataFrame({"h3_cell": cells,
                          "people": rng.lognormal(3, 1.6, len(cells)).astype(int) + 1})
    missions = pd.DataFrame({"lat": lat[-500:], "lon": lon[-500:],
                             "affected": rng.random(500) < 0.1})
    return hazards, frame, missions


def test_a_busy_national_map_stays_small(states) -> None:
    hazards, cells, missions = _national_load(states)
    assert len(cells) == 3000
    svg = render(PANELS["conus"], base=states, hazards=hazards, cells=cells,
                 missions=missions)
    root = parse(svg)
    assert len(elements(root, "hazard")) == 300
    assert len(elements(root, "cell")) == 3000
    assert len(svg.encode()) < 1_500_000
    land = re.search(r'<g class="land">.*?</g>', svg).group(0)
    assert len(land) < 120_000  # the bundled outlines, simplified to half a pixel
    for element in root.iter():  # coordinates to a tenth of a pixel
        for name in ("d", "cx", "cy"):
            numbers = re.findall(r"\d+\.\d+", element.get(name, ""))
            assert all(len(n.split(".")[1]) == 1 for n in numbers), element.get(name)


def test_the_land_layer_follows_the_base_it_is_given(states) -> None:
    panel = PANELS["conus"]
    first = draw(panel, states)
    assert draw(panel, states) == first
    texas = states[states["code"] == "TX"].copy()
    codes = {e.get("data-code") for e in elements(parse(draw(panel, texas)), "state")}
    assert codes == {"TX"}
    with pytest.raises(ValueError, match="base"):
        draw(dataclasses.replace(panel, name="other"), texas.drop(columns="code"))
