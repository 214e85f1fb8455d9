"""Furniture and fixtures beyond ModelNet10: bench, bookshelf, curtain, door, glass_box,
mantel, piano, range_hood, sink, stairs, stool, tv_stand and wardrobe.

Box-built parts are shared with the ModelNet10 families (legs, drawer fronts) so the
confusable pairs stay confusable: a tv_stand is a low, wide dresser with open bays, a
bench is a sofa's seat without the padding, a wardrobe is a tall cabinet with doors.
Rounded edges, extruded outlines with holes and swept rails give the rest their curves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh
from shapely.affinity import translate
from shapely.geometry import Point, Polygon
from shapely.geometry import box as rectangle

from gmvit.data.synth.modelnet10 import drawer_fronts, legs
from gmvit.data.synth.parts import (
    arc,
    box,
    cylinder,
    ellipsoid,
    hull,
    pick,
    polyline_band,
    prism,
    revolve,
    rod,
    rotate,
    rounded_box,
    rounded_rectangle,
    sheet,
    smooth_profile,
    tessellate,
    tube,
    u,
    vessel,
)


def _slat(
    length: float,
    width: float,
    thickness: float,
    center,
    tilt: float = 0.0,
    *,
    rounded: bool = False,
) -> trimesh.Trimesh:
    """A board along x, `width` across and `thickness` thick, tilted about x by `tilt`."""
    if rounded:
        part = rounded_box((length, width, thickness), (0, 0, 0), thickness * 0.45, detail=0)
    else:
        part = box((length, width, thickness), (0, 0, 0))
    rotate(part, tilt, (1, 0, 0))
    part.apply_translation(center)
    return part


def _handle_bar(x: float, y: float, z: float, length: float, vertical: bool = True):
    """A bar pull standing off a front at y: two stand-offs and the grip."""
    half = np.array((0, 0, length / 2)) if vertical else np.array((length / 2, 0, 0))
    grip = np.array((x, y + 0.03, z))
    parts = [rod(grip - half, grip + half, 0.007, sections=6)]
    for end in (grip - half * 0.8, grip + half * 0.8):
        parts.append(rod(end - (0, 0.03, 0), end, 0.005, sections=6))
    return parts


# ---------------------------------------------------------------- bench


def _bench(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("park", "plank", "padded", "garden"))
    length, depth = u(rng, 1.0, 2.0), u(rng, 0.35, 0.6)
    seat_z = u(rng, 0.38, 0.5)
    parts: list[trimesh.Trimesh] = []
    if style in ("park", "garden"):
        slats = int(rng.integers(3, 8))
        gap = depth / slats
        rounded = rng.random() < 0.5
        for s in range(slats):
            y = depth / 2 - gap * (s + 0.5)
            parts.append(_slat(length, gap * 0.8, 0.03, (0, y, seat_z), rounded=rounded))
        lean, back_h = u(rng, 0.1, 0.35), u(rng, 0.35, 0.55)
        frame = 0.05
        for sx in (-1, 1):
            x = sx * (length / 2 - u(rng, 0.05, 0.2))
            side = [(depth / 2, 0), (depth / 2 * 0.9, seat_z), (-depth / 2, seat_z)]
            if style == "park":
                side.append((-depth / 2 - back_h * np.sin(lean), seat_z + back_h * np.cos(lean)))
            outline = polyline_band(side, frame).union(
                polyline_band([(-depth / 2 * 0.8, 0), (-depth / 2 * 0.7, seat_z)], frame)
            )
            parts.append(prism(outline, u(rng, 0.03, 0.06), plane="yz", offset=x))
            if style == "park" and rng.random() < 0.6:  # a curled armrest
                arm_z = seat_z + u(rng, 0.18, 0.28)
                path = [
                    (x, depth / 2, seat_z),
                    (x, depth / 2, arm_z),
                    (x, 0, arm_z),
                    (x, -depth / 2, arm_z + 0.05),
                ]
                parts.append(tube(path, 0.02, sections=8))
        if style == "park":
            for s in range(int(rng.integers(2, 5))):
                t = (s + 0.5) / 4
                center = (
                    0,
                    -depth / 2 - t * back_h * np.sin(lean),
                    seat_z + t * back_h * np.cos(lean),
                )
                parts.append(_slat(length, 0.02, back_h / 5, center, -lean, rounded=rounded))
        return parts
    if style == "plank":  # one thick board on trestles or posts
        board = u(rng, 0.04, 0.09)
        parts.append(
            rounded_box(
                (length, depth * 0.7, board),
                (0, 0, seat_z - board / 2),
                board * u(rng, 0.1, 0.45),
                detail=int(rng.integers(0, 2)),
            )
        )
        parts += legs(rng, length * 0.9, depth * 0.6, seat_z - board, styles=("square", "trestle"))
        return parts
    # padded: an upholstered top on slim legs, maybe tufted
    pad = u(rng, 0.08, 0.18)
    parts.append(
        rounded_box(
            (length, depth, pad),
            (0, 0, seat_z - pad / 2),
            pad * 0.3,
            detail=int(rng.integers(1, 3)),
        )
    )
    parts += legs(rng, length * 0.95, depth * 0.9, seat_z - pad, styles=("square", "round"))
    for k in range(int(rng.integers(0, 7))):  # buttons
        parts.append(
            ellipsoid(
                (0.015, 0.015, 0.01), ((k + 0.5) / 7 * length - length / 2, 0, seat_z), detail=1
            )
        )
    return parts


# ---------------------------------------------------------------- bookshelf


def _books(
    rng: np.random.Generator, x0: float, x1: float, z: float, space: float, depth: float
) -> list[trimesh.Trimesh]:
    """A row of books from x0 to x1 on a shelf at height z, with gaps, a lying stack and
    the odd leaning book."""
    parts, x = [], x0 + u(rng, 0.0, 0.1) * (x1 - x0)
    while x < x1 - 0.05:
        if rng.random() < 0.1:  # a stack lying flat
            w = u(rng, 0.15, 0.25)
            if x + w > x1:
                break
            for k in range(int(rng.integers(2, 6))):
                t = u(rng, 0.02, 0.05)
                parts.append(
                    box(
                        (w * u(rng, 0.8, 1.0), depth * u(rng, 0.6, 0.9), t),
                        (x + w / 2, 0, z + t / 2 + k * 0.05),
                    )
                )
            x += w + 0.01
            continue
        w = u(rng, 0.015, 0.06)
        h = min(space * u(rng, 0.55, 0.92), 0.4)
        book = box((w, depth * u(rng, 0.6, 0.92), h), (x + w / 2, 0, z + h / 2))
        if rng.random() < 0.05:
            rotate(book, u(rng, 0.2, 0.4), (0, 1, 0), (x + w, 0, z))
        parts.append(book)
        x += w + (u(rng, 0.05, 0.2) if rng.random() < 0.08 else 0.002)
    return parts


def _bookshelf(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("standard", "standard", "cubes", "ladder", "open"))
    width, depth = u(rng, 0.6, 1.6), u(rng, 0.25, 0.4)
    height = u(rng, 0.9, 2.2) if style != "cubes" else u(rng, 0.7, 1.5)
    board = u(rng, 0.015, 0.04)
    fill = u(rng, 0.3, 1.0)  # how full the shelves are
    parts: list[trimesh.Trimesh] = []
    if style == "ladder":  # leaning against a wall, shelves narrowing upwards
        lean = u(rng, 0.15, 0.3)
        top_y = -height * np.tan(lean)
        for sx in (-1, 1):
            parts.append(
                rod(
                    (sx * width / 2, depth / 2, 0),
                    (sx * width / 2, top_y, height),
                    0.02,
                    sections=int(rng.integers(4, 12)),
                )
            )
        shelves = int(rng.integers(3, 6))
        for s in range(shelves):
            z = (s + 0.3) / shelves * height
            front = depth / 2 + (top_y - depth / 2) * z / height
            d = depth * (1 - 0.6 * s / shelves)
            parts.append(box((width, d, board), (0, front - d / 2, z)))
            if rng.random() < fill:
                for part in _books(rng, -width / 2, width / 2, z + board / 2, height / shelves, d):
                    part.apply_translation((0, front - d / 2, 0))
                    parts.append(part)
        parts.append(box((width, 0.02, 0.02), (0, top_y, height)))
        return parts
    rows = max(2, round(height / u(rng, 0.28, 0.42)))
    columns = max(1, round(width / u(rng, 0.3, 0.45))) if style == "cubes" else 1
    spacing = (height - board) / rows
    if style == "open":  # four posts with cross braces at the back
        post = u(rng, 0.015, 0.03)
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(
                    box(
                        (post, post, height),
                        (sx * (width - post) / 2, sy * (depth - post) / 2, height / 2),
                    )
                )
            parts.append(
                rod(
                    (sx * width / 2, -depth / 2, 0.05),
                    (-sx * width / 2, -depth / 2, height - 0.05),
                    0.006,
                    sections=5,
                )
            )
    else:
        for sx in (-1, 1):
            parts.append(box((board, depth, height), (sx * (width - board) / 2, 0, height / 2)))
        if rng.random() < 0.7 or style == "cubes":
            parts.append(box((width, 0.01, height), (0, -depth / 2 + 0.005, height / 2)))
        for c in range(1, columns):
            parts.append(
                box((board, depth, height), (-width / 2 + c * width / columns, 0, height / 2))
            )
    for r in range(rows + 1):
        z = board / 2 + r * spacing
        parts.append(box((width, depth, board), (0, 0, z)))
        if r == rows:
            break
        for c in range(columns):
            if rng.random() > fill:
                continue
            x0 = -width / 2 + c * width / columns + board
            x1 = x0 + width / columns - 2 * board
            if style == "cubes" and rng.random() < 0.3:  # a storage basket
                parts.append(
                    rounded_box(
                        (x1 - x0 - 0.02, depth * 0.9, spacing * 0.8),
                        ((x0 + x1) / 2, 0, z + spacing * 0.4),
                        0.02,
                        detail=0,
                    )
                )
            else:
                parts += _books(rng, x0, x1, z + board / 2, spacing - board, depth)
    if style == "standard" and rng.random() < 0.5:  # a cornice
        parts.append(box((width * 1.05, depth * 1.05, board * 2), (0, 0, height + board)))
    return parts


# ---------------------------------------------------------------- curtain


def _curtain_panel(
    rng: np.random.Generator, x0: float, width: float, height: float, tie: float | None, edge: float
) -> trimesh.Trimesh:
    """A pleated panel hanging from z = height, its left edge at x0; `tie` gathers it
    towards x = `edge` at that fraction of its drop."""
    folds = int(rng.integers(3, 10))
    columns = folds * int(rng.integers(3, 7)) + 1
    rows = int(rng.integers(4, 16))
    s = np.linspace(0, 1, columns)[None, :]
    t = np.linspace(0, 1, rows)[:, None]
    depth = width / folds * u(rng, 0.15, 0.35) * (1 + u(rng, 0.0, 1.0) * t)
    x = x0 + width * s + 0 * t
    y = depth * np.sin(2 * np.pi * folds * s)
    if tie is not None:
        pinch = u(rng, 0.5, 0.85) * np.exp(-(((t - tie) / 0.22) ** 2))
        x = edge + (x - edge) * (1 - pinch)
        y = y * (1 - 0.5 * pinch)
    z = height * (1 - t) + 0 * s
    return sheet(np.stack((x, y, z), axis=-1), u(rng, 0.005, 0.015))


def _curtain(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("single", "pair", "tied", "valance", "shower"))
    height = u(rng, 1.2, 2.6)
    panel_w = u(rng, 0.5, 1.4)
    total = panel_w * (1 if style in ("single", "shower") else 2) + u(rng, 0.0, 0.8)
    parts = [
        cylinder(
            0.015,
            total + 0.2,
            (total / 2, 0, height + 0.04),
            axis="x",
            sections=int(rng.integers(6, 16)),
        )
    ]
    for x in (-0.1, total + 0.1):  # finials
        parts.append(ellipsoid((0.035, 0.035, 0.035), (x, 0, height + 0.04), detail=1))
    tie = u(rng, 0.45, 0.7) if style == "tied" else None
    parts.append(_curtain_panel(rng, 0.0, panel_w, height, tie, 0.0))
    if style not in ("single", "shower"):
        parts.append(_curtain_panel(rng, total - panel_w, panel_w, height, tie, total))
    if style == "valance":
        parts.append(
            _curtain_panel(rng, -0.05, total + 0.1, height * u(rng, 0.12, 0.22), None, 0.0)
        )
        parts[-1].apply_translation((0, 0.03, height * u(rng, 0.78, 0.88)))
    if style == "shower":  # rings on the rod
        for k in range(int(rng.integers(6, 14))):
            ring = trimesh.creation.torus(0.025, 0.004, major_sections=12, minor_sections=4)
            rotate(ring, np.pi / 2, (1, 0, 0))
            parts.append(ring.apply_translation((k / 10 * panel_w, 0, height + 0.02)))
    return parts


# ---------------------------------------------------------------- door


def _door_leaf(
    rng: np.random.Generator,
    width: float,
    height: float,
    thickness: float,
    style: str,
    arched: bool,
) -> list[trimesh.Trimesh]:
    """One leaf spanning x in [0, width], y centred on 0, standing on z = 0."""
    if arched:
        rise = width / 2 * u(rng, 0.3, 1.0)
        top = [
            (width / 2 + width / 2 * np.cos(a), height - rise + rise * np.sin(a))
            for a in np.linspace(0, np.pi, int(rng.integers(8, 24)))
        ]
        parts = [prism([(0, 0), (width, 0)] + top, thickness, plane="xz")]
    else:
        parts = [
            tessellate(
                box((width, thickness, height), (width / 2, 0, height / 2)), int(rng.integers(0, 3))
            )
        ]
    rows, columns = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    margin = width * u(rng, 0.1, 0.18)
    if style == "panel":
        cell_w = (width - margin * (columns + 1)) / columns
        cell_h = (height * 0.85 - margin * (rows + 1)) / rows
        for r in range(rows):
            for c in range(columns):
                cx = margin + cell_w / 2 + c * (cell_w + margin)
                cz = margin + cell_h / 2 + r * (cell_h + margin)
                for sy in (-1, 1):
                    parts.append(
                        rounded_box(
                            (cell_w, 0.012, cell_h), (cx, sy * thickness / 2, cz), 0.005, detail=0
                        )
                    )
    elif style == "glazed":  # a pane with glazing bars
        pane_w, pane_h = width - 2 * margin, height * u(rng, 0.35, 0.6)
        pane_z = height * 0.9 - pane_h / 2
        parts.append(box((pane_w, thickness * 1.1, pane_h), (width / 2, 0, pane_z)))
        for c in range(1, columns + 1):
            parts.append(
                box(
                    (0.02, thickness * 1.3, pane_h),
                    (margin + c * pane_w / (columns + 1), 0, pane_z),
                )
            )
        for r in range(1, rows + 1):
            parts.append(
                box(
                    (pane_w, thickness * 1.3, 0.02),
                    (width / 2, 0, pane_z - pane_h / 2 + r * pane_h / (rows + 1)),
                )
            )
    handle_x, handle_z = width - u(rng, 0.05, 0.08), u(rng, 0.95, 1.1)
    for sy in (-1, 1):
        y = sy * thickness / 2
        if rng.random() < 0.5:  # a knob
            parts.append(rod((handle_x, y, handle_z), (handle_x, y + sy * 0.04, handle_z), 0.008))
            parts.append(
                ellipsoid(
                    (0.028, 0.02, 0.028),
                    (handle_x, y + sy * 0.055, handle_z),
                    detail=int(rng.integers(1, 3)),
                )
            )
        else:  # a lever
            parts.append(rod((handle_x, y, handle_z), (handle_x, y + sy * 0.05, handle_z), 0.008))
            parts.append(
                rod(
                    (handle_x, y + sy * 0.05, handle_z),
                    (handle_x - 0.12, y + sy * 0.05, handle_z),
                    0.009,
                )
            )
    return parts


def _door(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("panel", "panel", "flush", "glazed"))
    double = rng.random() < 0.25
    arched = rng.random() < 0.2
    width = u(rng, 0.7, 1.0) * (1.6 if double else 1.0)
    height, thickness = u(rng, 1.9, 2.4), u(rng, 0.035, 0.06)
    jamb, jamb_d = u(rng, 0.04, 0.12), thickness * u(rng, 2.0, 4.0)
    parts = [
        box((jamb, jamb_d, height + jamb), (sx * (width + jamb) / 2, 0, (height + jamb) / 2))
        for sx in (-1, 1)
    ]
    parts.append(box((width + 2 * jamb, jamb_d, jamb), (0, 0, height + jamb / 2)))
    leaves = 2 if double else 1
    leaf_w = width / leaves
    for k in range(leaves):
        leaf = _door_leaf(rng, leaf_w, height, thickness, style, arched and not double)
        swing = u(rng, 0.2, 1.3) if rng.random() < 0.3 else 0.0
        for part in leaf:
            if k == 1:  # the right leaf is the left one mirrored about its hinge side
                part.apply_transform(np.diag((-1.0, 1.0, 1.0, 1.0)))
                part.apply_translation((leaf_w, 0, 0))
            rotate(
                part,
                swing * (1 if k == 0 else -1),
                (0, 0, 1),
                (0, 0, 0) if k == 0 else (leaf_w, 0, 0),
            )
            part.apply_translation((-width / 2 + k * leaf_w, 0, 0))
            parts.append(part)
    if arched and not double:  # fill the frame's corners above the arch
        parts.append(box((width, jamb_d * 0.9, width * 0.25), (0, 0, height - width * 0.125)))
    return parts


# ---------------------------------------------------------------- glass_box


def _frame_edges(size, center, bar: float) -> list[trimesh.Trimesh]:
    """The twelve edges of a box as square bars."""
    (w, d, h), (cx, cy, cz) = size, center
    parts = []
    for sy in (-1, 1):
        for sz in (-1, 1):
            parts.append(box((w + bar, bar, bar), (cx, cy + sy * d / 2, cz + sz * h / 2)))
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(box((bar, d + bar, bar), (cx + sx * w / 2, cy, cz + sz * h / 2)))
        for sy in (-1, 1):
            parts.append(box((bar, bar, h + bar), (cx + sx * w / 2, cy + sy * d / 2, cz)))
    return parts


def _glass_box(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("cube", "case", "aquarium", "vitrine"))
    w = u(rng, 0.2, 1.2)
    d = w * u(rng, 0.4, 1.0)
    h = {
        "cube": w * u(rng, 0.6, 1.2),
        "case": w * u(rng, 0.3, 0.7),
        "aquarium": w * u(rng, 0.5, 0.8),
        "vitrine": u(rng, 1.4, 1.9),
    }[style]
    base = {
        "cube": 0.0,
        "case": u(rng, 0.6, 0.9),
        "aquarium": u(rng, 0.5, 0.8),
        "vitrine": u(rng, 0.05, 0.15),
    }[style]
    glass = u(rng, 0.004, 0.012)
    bar = max(w, h) * u(rng, 0.015, 0.04)
    cz = base + h / 2
    # panes set back from the frame's faces, so the bars stand proud of the glass
    inset = bar * 0.35
    parts = [box((w, glass, h), (0, sy * (d / 2 - inset), cz)) for sy in (-1, 1)]
    parts += [box((glass, d, h), (sx * (w / 2 - inset), 0, cz)) for sx in (-1, 1)]
    parts.append(box((w, d, glass), (0, 0, base + glass / 2)))
    if rng.random() < 0.6:
        parts.append(box((w, d, glass), (0, 0, base + h - inset)))  # the lid
    parts += _frame_edges((w, d, h), (0, 0, cz), bar)
    if rng.random() < 0.4:  # glazing bars dividing the long sides
        for k in range(1, int(rng.integers(2, 4))):
            x = -w / 2 + k * w / 3
            parts += [box((bar * 0.6, bar * 0.6, h), (x, sy * d / 2, cz)) for sy in (-1, 1)]
    if style == "cube" and rng.random() < 0.5:  # a lid handle
        parts.append(ellipsoid((0.02, 0.02, 0.015), (0, 0, base + h + 0.01), detail=1))
    if style == "case":  # on a table-like stand
        parts.append(box((w * 1.02, d * 1.02, 0.04), (0, 0, base - 0.02)))
        parts += legs(rng, w, d, base - 0.04, styles=("square", "round", "trestle"))
    elif style == "aquarium":  # on a cabinet, with gravel and a plant
        parts.append(box((w * 1.02, d * 1.02, base), (0, 0, base / 2)))
        parts.append(box((w - 0.02, d - 0.02, h * 0.08), (0, 0, base + h * 0.04)))
        for _ in range(int(rng.integers(0, 5))):
            x = u(rng, -0.4, 0.4) * w
            parts.append(
                ellipsoid((0.01, 0.01, h * u(rng, 0.2, 0.4)), (x, 0, base + h * 0.3), detail=1)
            )
    elif style == "vitrine":  # glass shelves on a plinth
        parts.append(box((w * 1.04, d * 1.04, base), (0, 0, base / 2)))
        for s in range(1, int(rng.integers(2, 5))):
            parts.append(box((w * 0.98, d * 0.98, glass), (0, 0, base + s * h / 4)))
    return parts


# ---------------------------------------------------------------- mantel


def _moulding(
    rng: np.random.Generator, length: float, depth: float, height: float, z: float
) -> trimesh.Trimesh:
    """A shelf with a curved (ogee) underside, running along x, its back at y = 0."""
    steps = int(rng.integers(3, 10))
    t = np.linspace(0, 1, steps)
    curve = [(depth * (0.4 + 0.6 * ti), height * (0.6 * np.sin(np.pi * ti / 2) ** 2)) for ti in t]
    outline = [(0, 0)] + curve + [(depth, height), (0, height)]
    shelf = prism(outline, length, plane="yz")
    shelf.apply_translation((0, 0, z))
    return shelf


def _mantel(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("classic", "modern", "arched", "columns"))
    width, height = u(rng, 1.2, 2.0), u(rng, 0.9, 1.4)
    depth = u(rng, 0.12, 0.35)
    open_w, open_h = width * u(rng, 0.4, 0.65), height * u(rng, 0.5, 0.75)
    surround = rectangle(-width / 2, 0, width / 2, height)
    opening = rectangle(-open_w / 2, -0.01, open_w / 2, open_h)
    if style == "arched":
        opening = opening.union(
            Point(0, open_h).buffer(open_w / 2, quad_segs=int(rng.integers(4, 12)))
        )
        opening = opening.intersection(rectangle(-width, -0.01, width, height * 0.92))
    front = surround.difference(opening)
    parts = [prism(front, depth, plane="xz", offset=depth / 2)]
    parts.append(box((open_w, 0.03, open_h), (0, -0.02, open_h / 2)))  # the fire back
    if style != "modern":
        parts.append(
            _moulding(
                rng, width * u(rng, 1.05, 1.2), depth * u(rng, 1.2, 1.6), u(rng, 0.05, 0.12), height
            )
        )
        parts[-1].apply_translation((0, -0.02, 0))
    else:
        parts.append(
            box((width * u(rng, 1.0, 1.3), depth * 1.3, 0.05), (0, depth * 0.15, height + 0.025))
        )
    if style in ("classic", "columns"):  # pilasters or turned columns each side
        for sx in (-1, 1):
            x = sx * (open_w / 2 + (width - open_w) / 4)
            if style == "columns":
                r = (width - open_w) / 8
                profile = smooth_profile(
                    [
                        (r * 1.3, 0),
                        (r, 0.1 * height),
                        (r * 0.85, 0.85 * height),
                        (r * 1.3, height * 0.98),
                    ],
                    int(rng.integers(6, 20)),
                )
                column = revolve(
                    np.vstack(([[0, 0]], profile, [[0, height * 0.98]])), int(rng.integers(8, 32))
                )
                parts.append(column.apply_translation((x, depth + r, 0)))
            else:
                parts.append(
                    box(
                        ((width - open_w) / 4, 0.03, height * 0.95),
                        (x, depth + 0.015, height * 0.475),
                    )
                )
    if rng.random() < 0.5:  # the hearth
        parts.append(
            box((width * u(rng, 0.8, 1.2), u(rng, 0.3, 0.5), 0.04), (0, depth + 0.2, 0.02))
        )
    if rng.random() < 0.25:  # an overmantel mirror standing on the shelf
        mirror_h = u(rng, 0.4, 0.8)
        parts.append(box((open_w, 0.03, mirror_h), (0, 0.02, height + mirror_h / 2)))
    return parts


# ---------------------------------------------------------------- piano


def _keys(rng: np.random.Generator, width: float, y_front: float, z: float):
    """A keyboard: the white keys as one slab, black keys in the 2-3 pattern."""
    depth = 0.15
    parts = [box((width, depth, 0.02), (0, y_front - depth / 2, z + 0.01))]
    whites = int(rng.integers(28, 53))
    key = width / whites
    for k in range(whites - 1):
        if k % 7 in (2, 6):
            continue
        x = -width / 2 + (k + 1) * key
        parts.append(box((key * 0.55, depth * 0.6, 0.015), (x, y_front - depth * 0.7, z + 0.027)))
    return parts


def _piano(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("grand", "upright"))
    width = u(rng, 1.35, 1.6)
    if style == "upright":
        height, depth = u(rng, 1.0, 1.4), u(rng, 0.5, 0.68)
        parts = [
            box((width, depth * 0.55, height - 0.1), (0, -depth * 0.2, 0.05 + (height - 0.1) / 2))
        ]
        parts.append(box((width, depth * 0.65, 0.03), (0, -depth * 0.15, height)))  # lid
        parts.append(box((width, depth * 0.35, 0.08), (0, depth * 0.25, 0.7)))  # key bed
        parts += _keys(rng, width * 0.9, depth * 0.42, 0.74)
        for sx in (-1, 1):  # cheeks and toe blocks or columns
            parts.append(box((0.05, depth * 0.4, 0.72), (sx * width / 2, depth * 0.22, 0.36)))
            if rng.random() < 0.5:
                parts.append(
                    cylinder(
                        0.03,
                        0.6,
                        (sx * (width / 2 - 0.05), depth * 0.4, 0.3),
                        sections=int(rng.integers(6, 16)),
                    )
                )
        parts.append(box((width, 0.03, 0.3), (0, depth * 0.08, 0.9)))  # music desk
        if rng.random() < 0.3:  # a bench
            parts.append(box((0.8, 0.35, 0.05), (0, depth + 0.35, 0.5)))
            parts += [
                box((0.04, 0.04, 0.48), (sx * 0.35, depth + 0.35 + sy * 0.13, 0.24))
                for sx in (-1, 1)
                for sy in (-1, 1)
            ]
        return parts
    # grand: a straight spine on the left, the curved bentside on the right, a rounded tail
    length = u(rng, 1.4, 2.7)
    curve = int(rng.integers(8, 24))
    t = np.linspace(0, 1, curve)
    narrow = u(rng, 0.35, 0.6)
    bentside = [
        (width / 2 - width * narrow * (3 * ti**2 - 2 * ti**3), -length * (0.25 + 0.75 * ti))
        for ti in t
    ]
    outline = Polygon([(-width / 2, 0), (width / 2, 0)] + bentside + [(-width / 2, -length)])
    outline = outline.buffer(-0.1).buffer(0.1, quad_segs=int(rng.integers(3, 8)))
    rim_z, rim_h = u(rng, 0.6, 0.7), u(rng, 0.25, 0.35)
    parts = [prism(outline, rim_h, offset=rim_z + rim_h / 2)]
    lid = prism(outline, 0.02, offset=rim_z + rim_h + 0.01)
    opening = u(rng, 0.0, 0.75) if rng.random() < 0.7 else 0.0
    rotate(lid, -opening, (0, 1, 0), (-width / 2, 0, rim_z + rim_h))
    parts.append(lid)
    if opening > 0:  # the prop stick
        parts.append(
            rod(
                (width * 0.3, -length * 0.4, rim_z + rim_h),
                (width * 0.3, -length * 0.4, rim_z + rim_h + np.sin(opening) * width * 0.7),
                0.01,
                sections=5,
            )
        )
    parts.append(box((width, 0.3, 0.1), (0, 0.15, rim_z + 0.05)))  # key bed
    parts += _keys(rng, width * 0.88, 0.3, rim_z + 0.1)
    leg_h = rim_z
    for x, y in ((-width / 2 + 0.1, 0.1), (width / 2 - 0.1, 0.1), (-width * 0.2, -length * 0.85)):
        if rng.random() < 0.5:
            profile = smooth_profile(
                [(0.06, 0), (0.045, leg_h * 0.5), (0.07, leg_h)], int(rng.integers(4, 12))
            )
            leg = revolve(np.vstack(([[0, 0]], profile, [[0, leg_h]])), 12)
            parts.append(leg.apply_translation((x, y, 0)))
        else:
            parts.append(box((0.1, 0.1, leg_h), (x, y, leg_h / 2)))
    parts.append(box((0.12, 0.05, rim_z * 0.8), (0, 0.0, rim_z * 0.4)))  # pedal lyre
    return parts


# ---------------------------------------------------------------- range_hood


def _range_hood(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("chimney", "pyramid", "slab", "round", "glass"))
    width, depth = u(rng, 0.6, 1.2), u(rng, 0.45, 0.6)
    duct_h = u(rng, 0.3, 0.9)
    if style == "slab":  # an under-cabinet hood, maybe under its cabinet
        parts = [rounded_box((width, depth, u(rng, 0.1, 0.2)), (0, 0, 0.08), 0.01, detail=0)]
        parts.append(_slat(width, 0.1, 0.015, (0, depth / 2, 0.02), -0.4))
        if rng.random() < 0.6:
            parts.append(box((width, depth * 1.05, duct_h), (0, 0, 0.16 + duct_h / 2)))
        return parts
    if style == "round":
        r = width / 2
        profile = smooth_profile(
            [(r, 0), (r * 0.9, 0.05), (r * 0.25, 0.35)], int(rng.integers(4, 16))
        )
        parts = [revolve(np.vstack(([[0, 0]], profile, [[0, 0.35]])), int(rng.integers(12, 48)))]
        parts.append(cylinder(r * 0.22, duct_h, (0, 0, 0.35 + duct_h / 2), sections=24))
        return parts
    band = u(rng, 0.03, 0.08)
    canopy_h = u(rng, 0.15, 0.35)
    top_w, top_d = width * u(rng, 0.25, 0.45), depth * u(rng, 0.4, 0.6)
    bottom = [(sx * width / 2, sy * depth / 2, band) for sx in (-1, 1) for sy in (-1, 1)]
    if style == "pyramid":
        top = [
            (sx * top_w / 2, sy * top_w / 2, band + canopy_h) for sx in (-1, 1) for sy in (-1, 1)
        ]
    else:
        top = [
            (sx * top_w / 2, -depth / 2 + sy * top_d / 2 + top_d / 2, band + canopy_h)
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
    parts = [
        box((width, depth, band), (0, 0, band / 2)),
        tessellate(hull(bottom + top), int(rng.integers(0, 3))),
    ]
    top_center = np.mean(top, axis=0)
    if style == "glass":  # a curved glass visor in front of a slim chimney
        s = np.linspace(-1, 1, 3)[None, :]
        t = np.linspace(0, 1, int(rng.integers(4, 10)))[:, None]
        grid = np.stack(
            (
                width / 2 * s + 0 * t,
                depth / 2 * np.cos(t * np.pi / 2) + 0 * s,
                band + canopy_h * 0.6 * np.sin(t * np.pi / 2) + 0 * s,
            ),
            -1,
        )
        parts.append(sheet(grid, 0.008))
    parts.append(
        box(
            (top_w * 0.9, top_d * 0.9 if style != "pyramid" else top_w * 0.9, duct_h),
            (top_center[0], top_center[1], band + canopy_h + duct_h / 2),
        )
    )
    return parts


# ---------------------------------------------------------------- sink


def _faucet(rng: np.random.Generator, x: float, y: float, z: float, reach: float):
    """A tap at (x, y, z) whose spout points towards +y."""
    parts = [cylinder(0.025, 0.04, (x, y, z + 0.02), sections=12)]
    rise = u(rng, 0.1, 0.35)
    if rng.random() < 0.5:  # gooseneck
        path = arc((x, y + reach / 2, z + rise), reach / 2, np.pi, 0.2, 12, plane="yz")
        path = np.vstack(([(x, y, z)], path))
    else:
        path = np.array([(x, y, z), (x, y, z + rise * 0.5), (x, y + reach, z + rise * 0.5)])
    parts.append(tube(path, 0.012, sections=8))
    for sx in (-1, 1) if rng.random() < 0.5 else (1,):
        parts.append(rod((x + sx * 0.08, y, z), (x + sx * 0.08, y, z + 0.05), 0.015))
    return parts


def _sink(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("kitchen", "pedestal", "vessel", "wall"))
    if style == "kitchen":  # basins cut into a counter over a cabinet
        width, depth, top_z = u(rng, 0.8, 2.0), u(rng, 0.55, 0.65), u(rng, 0.85, 0.95)
        basins = 1 if width < 1.0 else int(rng.integers(1, 3))
        basin_w, basin_d = min(0.7, width * 0.7 / basins), depth * 0.7
        corner = u(rng, 0.01, 0.08)
        top = rectangle(-width / 2, -depth / 2, width / 2, depth / 2)
        holes = [rounded_rectangle(basin_w, basin_d, corner) for _ in range(basins)]
        xs = [(b - (basins - 1) / 2) * (basin_w + 0.05) for b in range(basins)]
        for hole, x in zip(holes, xs, strict=True):
            top = top.difference(translate(hole, x, 0.03))
        parts = [prism(top, 0.04, offset=top_z - 0.02)]
        bowl_h = u(rng, 0.15, 0.25)
        for x in xs:
            ring = rounded_rectangle(basin_w, basin_d, corner).difference(
                rounded_rectangle(basin_w - 0.02, basin_d - 0.02, max(corner - 0.01, 0.001))
            )
            wall = prism(ring, bowl_h, offset=top_z - bowl_h / 2)
            wall.apply_translation((x, 0.03, 0))
            parts += [wall, box((basin_w, basin_d, 0.01), (x, 0.03, top_z - bowl_h))]
        parts.append(
            box((width * 0.98, depth * 0.95, top_z - 0.04), (0, -0.01, (top_z - 0.04) / 2))
        )
        parts += _faucet(rng, 0, -depth / 2 + 0.06, top_z, basin_d * 0.45)
        return parts
    basin_r = u(rng, 0.2, 0.3)
    stretch = u(rng, 1.0, 1.5)
    basin_h = u(rng, 0.12, 0.2)
    t = np.linspace(0, 1, int(rng.integers(5, 14)))
    radii = basin_r * (0.45 + 0.55 * t ** u(rng, 0.3, 0.7))
    sections = int(rng.integers(16, 48))
    if style == "vessel":  # a bowl sitting on a vanity top
        top_z = u(rng, 0.75, 0.85)
        basin = vessel(radii, top_z + basin_h * t, 0.012, sections)
        parts = [
            rounded_box((basin_r * 3, basin_r * 2.4, 0.05), (0, 0, top_z - 0.025), 0.01, detail=0)
        ]
        parts += legs(rng, basin_r * 3, basin_r * 2.4, top_z - 0.05, styles=("square", "round"))
        if rng.random() < 0.5:
            parts.append(box((basin_r * 2.8, basin_r * 2.2, 0.02), (0, 0, 0.2)))
    else:
        rim_z = u(rng, 0.8, 0.9)
        basin = vessel(radii, rim_z - basin_h + basin_h * t, 0.015, sections)
        parts = [
            cylinder(basin_r * 1.02, 0.03, (0, 0, rim_z - 0.015), sections=sections).apply_scale(
                (stretch, 1, 1)
            )
        ]
        if style == "pedestal":
            column = smooth_profile(
                [(0.14, 0), (0.08, 0.2), (0.09, rim_z * 0.7), (basin_r * 0.5, rim_z - basin_h)],
                int(rng.integers(5, 15)),
            )
            parts.append(
                revolve(
                    np.vstack(([[0, 0]], column, [[0, rim_z - basin_h]])), int(rng.integers(10, 32))
                )
            )
        else:  # wall-hung, with its trap
            parts.append(
                tube(
                    [
                        (0, 0, rim_z - basin_h),
                        (0, 0, rim_z - basin_h - 0.2),
                        (0, -basin_r * 0.9, rim_z - basin_h - 0.25),
                    ],
                    0.02,
                    sections=8,
                )
            )
            parts.append(
                box((basin_r * 2.6 * stretch, 0.03, 0.4), (0, -basin_r * 1.05, rim_z - 0.2))
            )
    basin.apply_scale((stretch, 1, 1))
    parts.append(basin)
    top_z = parts[0].bounds[1, 2]
    parts += _faucet(rng, 0, -basin_r * 0.85, top_z, basin_r * 0.5)
    return parts


# ---------------------------------------------------------------- stairs


def _railing(rng: np.random.Generator, path: np.ndarray, height: float) -> list[trimesh.Trimesh]:
    """A handrail `height` above a walking line, on posts or balusters."""
    rail = path + (0, 0, height)
    parts = [tube(rail, u(rng, 0.015, 0.03), sections=int(rng.integers(6, 12)))]
    step = 1 if rng.random() < 0.5 else max(1, len(path) // 3)
    for p in path[::step]:
        parts.append(rod(p, p + (0, 0, height), u(rng, 0.008, 0.02), sections=6))
    return parts


def _stairs(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("solid", "open", "landing", "spiral"))
    steps = int(rng.integers(3, 15))
    rise, run, width = u(rng, 0.15, 0.2), u(rng, 0.22, 0.32), u(rng, 0.7, 1.4)
    rails = pick(rng, ((), (-1,), (1,), (-1, 1)))
    if style == "spiral":
        radius, turn = u(rng, 0.7, 1.1), u(rng, 0.35, 0.55)
        pole = u(rng, 0.04, 0.1)
        parts = [cylinder(pole, steps * rise + 1.0, (0, 0, (steps * rise + 1.0) / 2), sections=12)]
        arc_points = int(rng.integers(3, 8))
        for s in range(steps):
            a0, a1 = s * turn, s * turn + turn * 1.05
            edge = [
                (radius * np.cos(a), radius * np.sin(a)) for a in np.linspace(a0, a1, arc_points)
            ]
            parts.append(prism([(0, 0)] + edge, 0.04, offset=(s + 1) * rise))
        rail = np.array(
            [
                (radius * np.cos(a), radius * np.sin(a), rise * (1 + a / turn))
                for a in np.linspace(0, steps * turn, steps * 3)
            ]
        )
        parts += _railing(rng, rail, 0.9)
        return parts
    profile = [(0.0, 0.0)]
    for s in range(steps):
        profile += [(s * run, (s + 1) * rise), ((s + 1) * run, (s + 1) * rise)]
    profile.append((steps * run, 0.0))
    if style == "solid":
        parts = [tessellate(prism(profile, width, plane="xz"), int(rng.integers(0, 2)))]
    else:  # treads on two stringers
        parts = []
        for s in range(steps):
            parts.append(_slat(width, run * 1.05, 0.04, (0, 0, 0)))
            rotate(parts[-1], np.pi / 2, (0, 0, 1))
            parts[-1].apply_translation(((s + 0.5) * run, 0, (s + 1) * rise - 0.02))
        stringer = polyline_band([(0, 0.05), (steps * run, steps * rise - 0.05)], 0.25)
        for sy in (-1, 1):
            parts.append(prism(stringer, 0.05, plane="xz", offset=sy * width / 2))
    walk = np.array([((s + 0.5) * run, 0, (s + 1) * rise) for s in range(steps)])
    for sy in rails:
        parts += _railing(rng, walk + (0, sy * width * 0.45, 0), u(rng, 0.8, 1.0))
    if style == "landing":  # a landing and a second flight at right angles
        top = steps * rise
        parts.append(box((width, width, top), (steps * run + width / 2, 0, top / 2)))
        second = int(rng.integers(2, 8))
        for s in range(second):
            z = top + (s + 1) * rise
            parts.append(
                box((width, run, z), (steps * run + width / 2, width / 2 + (s + 0.5) * run, z / 2))
            )
    return parts


# ---------------------------------------------------------------- stool


def _stool(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("bar", "milking", "pedestal", "square", "low"))
    height = {
        "bar": u(rng, 0.6, 0.8),
        "milking": u(rng, 0.2, 0.35),
        "pedestal": u(rng, 0.45, 0.8),
        "square": u(rng, 0.4, 0.6),
        "low": u(rng, 0.25, 0.45),
    }[style]
    seat_r = u(rng, 0.14, 0.22)
    seat_t = u(rng, 0.03, 0.08)
    sections = int(rng.integers(10, 48))
    parts: list[trimesh.Trimesh] = []
    if style == "square":
        parts.append(
            rounded_box(
                (2 * seat_r, 2 * seat_r, seat_t),
                (0, 0, height - seat_t / 2),
                seat_t * 0.4,
                detail=int(rng.integers(0, 2)),
            )
        )
    else:  # a round seat, flat or padded with a rounded edge
        crown = seat_t * u(rng, 0.0, 0.6)
        profile = smooth_profile(
            [
                (seat_r, 0),
                (seat_r * 1.02, seat_t * 0.5),
                (seat_r * 0.8, seat_t),
                (0, seat_t + crown),
            ],
            int(rng.integers(4, 10)),
        )
        seat = revolve(np.vstack(([[0, 0]], profile)), sections)
        parts.append(seat.apply_translation((0, 0, height - seat_t)))
    under = height - seat_t
    if style == "pedestal":
        parts.append(cylinder(seat_r * 0.15, under, (0, 0, under / 2), sections=12))
        if rng.random() < 0.5:
            parts.append(
                cylinder(seat_r * u(rng, 0.8, 1.2), 0.03, (0, 0, 0.015), sections=sections)
            )
        else:  # a five-star base
            for k in range(5):
                a = 2 * np.pi * k / 5
                parts.append(
                    rod(
                        (0, 0, 0.05),
                        (np.cos(a) * seat_r * 1.3, np.sin(a) * seat_r * 1.3, 0.02),
                        0.015,
                        sections=6,
                    )
                )
        if rng.random() < 0.5:  # a footrest ring
            ring = trimesh.creation.torus(seat_r * 0.9, 0.01, major_sections=24, minor_sections=6)
            parts.append(ring.apply_translation((0, 0, under * 0.4)))
        return parts
    count = 3 if style == "milking" else pick(rng, (3, 4, 4))
    splay = u(rng, 0.0, 0.25)
    feet = []
    for k in range(count):
        a = 2 * np.pi * k / count + np.pi / 4
        top = np.array((np.cos(a), np.sin(a), 0)) * seat_r * 0.7 + (0, 0, under)
        foot = np.array((np.cos(a), np.sin(a), 0)) * seat_r * (0.7 + splay * 2)
        feet.append((top, foot))
        parts.append(rod(top, foot, u(rng, 0.012, 0.025), sections=int(rng.integers(4, 12))))
    if style in ("bar", "square") and rng.random() < 0.8:  # rungs or a footring
        z = under * u(rng, 0.25, 0.4)
        f = 1 - z / under
        points = [top + (foot - top) * f for top, foot in feet]
        for k in range(count):
            parts.append(rod(points[k], points[(k + 1) % count], 0.01, sections=6))
    return parts


# ---------------------------------------------------------------- tv_stand


def _tv_stand(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("cabinet", "cabinet", "frame"))
    width, depth, height = u(rng, 1.0, 2.2), u(rng, 0.35, 0.5), u(rng, 0.35, 0.7)
    board = u(rng, 0.02, 0.04)
    if style == "frame":  # shelves on a metal frame
        shelves = int(rng.integers(2, 4))
        parts = [
            box(
                (width, depth, board),
                (0, 0, height * (s + 0.4) / (shelves - 0.6) if s < shelves - 1 else height),
            )
            for s in range(shelves)
        ]
        parts += legs(rng, width, depth, height, styles=("square", "round", "trestle"))
    else:
        plinth = u(rng, 0.02, 0.12)
        parts = legs(rng, width, depth, plinth, styles=("square", "round"), inset=0.03)
        body_h = height - plinth
        parts.append(box((width, depth * 0.95, body_h), (0, -depth * 0.025, plinth + body_h / 2)))
        parts.append(box((width * 1.02, depth, board), (0, 0, height + board / 2)))
        bays = int(rng.integers(2, 5))
        bay_w = width / bays
        for b in range(bays):
            cx = -width / 2 + (b + 0.5) * bay_w
            kind = pick(rng, ("open", "door", "drawers"))
            if kind == "open":  # a recess with a shelf: the front pulled back
                parts.append(
                    box((bay_w * 0.9, 0.02, body_h * 0.9), (cx, depth * 0.5, plinth + body_h / 2))
                )
                parts[-1].apply_translation((0, -depth * 0.6, 0))
                parts.append(
                    box((bay_w * 0.9, depth * 0.6, 0.015), (cx, depth * 0.2, plinth + body_h / 2))
                )
            elif kind == "door":
                parts.append(
                    box((bay_w * 0.94, 0.02, body_h * 0.92), (cx, depth / 2, plinth + body_h / 2))
                )
                parts += _handle_bar(cx + bay_w * 0.35, depth / 2, plinth + body_h / 2, 0.1)
            else:
                for part in drawer_fronts(
                    rng, bay_w, body_h, plinth, depth / 2, int(rng.integers(1, 3)), 1
                ):
                    parts.append(part.apply_translation((cx, 0, 0)))
    if rng.random() < 0.15:  # a television on it
        tv_w = width * u(rng, 0.5, 0.8)
        tv_h = tv_w * 0.58
        parts.append(box((tv_w, 0.04, tv_h), (0, 0, height + 0.08 + tv_h / 2)))
        parts.append(box((0.3, 0.2, 0.08), (0, 0, height + 0.04)))
    return parts


# ---------------------------------------------------------------- wardrobe


def _wardrobe(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth = u(rng, 0.8, 2.0), u(rng, 0.5, 0.65)
    height = u(rng, 1.7, 2.3)
    plinth = u(rng, 0.05, 0.15)
    armoire = rng.random() < 0.25
    if armoire:  # an arched top on bracket feet
        rise = u(rng, 0.08, 0.25)
        top = [
            (width / 2 * np.cos(a), height - rise + rise * np.sin(a))
            for a in np.linspace(0, np.pi, int(rng.integers(6, 20)))
        ]
        parts = [prism([(-width / 2, plinth), (width / 2, plinth)] + top, depth, plane="xz")]
        parts += legs(rng, width, depth, plinth, styles=("square", "round"), inset=0.02)
        body_top = height - rise
    else:
        parts = [
            box((width, depth, height - plinth), (0, 0, (height + plinth) / 2)),
            box((width * 0.96, depth * 0.96, plinth), (0, 0, plinth / 2)),
        ]
        body_top = height
        if rng.random() < 0.6:  # a cornice
            parts.append(_moulding(rng, width * 1.04, 0.05, u(rng, 0.04, 0.1), height))
            parts[-1].apply_translation((0, depth / 2 - 0.01, 0))
    drawer_rows = int(rng.integers(0, 3))
    drawer_h = 0.2 * drawer_rows
    if drawer_rows:
        parts += drawer_fronts(
            rng, width, drawer_h, plinth, depth / 2, drawer_rows, int(rng.integers(1, 3))
        )
    doors = max(1, min(4, round(width / u(rng, 0.4, 0.6))))
    door_w = width / doors
    door_z0 = plinth + drawer_h + 0.01
    door_h = body_top - door_z0 - 0.03
    for k in range(doors):
        cx = -width / 2 + (k + 0.5) * door_w
        parts.append(
            box((door_w - 0.01, 0.02, door_h), (cx, depth / 2 + 0.01, door_z0 + door_h / 2))
        )
        if rng.random() < 0.2:  # a mirror panel
            parts.append(
                box(
                    (door_w * 0.7, 0.01, door_h * 0.7),
                    (cx, depth / 2 + 0.025, door_z0 + door_h / 2),
                )
            )
        side = 1 if k % 2 == 0 else -1
        hx = cx + side * door_w * 0.4 if doors > 1 else cx + door_w * 0.4
        parts += _handle_bar(hx, depth / 2 + 0.02, door_z0 + door_h * 0.5, u(rng, 0.05, 0.4))
    return parts


FAMILIES: dict[str, Callable[[np.random.Generator], list[trimesh.Trimesh]]] = {
    "bench": _bench,
    "bookshelf": _bookshelf,
    "curtain": _curtain,
    "door": _door,
    "glass_box": _glass_box,
    "mantel": _mantel,
    "piano": _piano,
    "range_hood": _range_hood,
    "sink": _sink,
    "stairs": _stairs,
    "stool": _stool,
    "tv_stand": _tv_stand,
    "wardrobe": _wardrobe,
}
