"""Vehicles, people, instruments, electronics and shelters: airplane, car, guitar,
keyboard, laptop, person, radio, tent and xbox.

Outlines are drawn in 2D (shapely) and extruded, bodies are revolved or built from
capsules, thin parts (strings, antennas, guy ropes, propeller blades) stay thin.
keyboard/laptop/piano and radio/xbox/monitor share flat slabs and rows of small boxes,
so they stay confusable the way ModelNet40's are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh
from shapely.affinity import scale as scale_outline
from shapely.geometry import Point, Polygon
from shapely.geometry import box as rectangle

from gmvit.data.synth.parts import (
    arc,
    box,
    cylinder,
    ellipsoid,
    limb,
    pick,
    prism,
    revolve,
    rod,
    rotate,
    rounded_box,
    rounded_rectangle,
    sheet,
    smooth_profile,
    tube,
    u,
)


def _along_x(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A body revolved about +Z laid down along +X (nose forward)."""
    return rotate(mesh, np.pi / 2, (0, 1, 0))


# ---------------------------------------------------------------- airplane


def _wing(
    root_chord: float,
    tip_chord: float,
    span: float,
    sweep: float,
    thickness: float,
    x: float,
    z: float,
    dihedral: float,
    side: int,
) -> trimesh.Trimesh:
    """One wing or tailplane: a swept, tapered planform leaving the fuselage at (x, 0, z)
    towards `side` (+1 left, -1 right)."""
    outline = [(0, 0), (-root_chord, 0), (-sweep - tip_chord, span), (-sweep, span)]
    wing = prism(outline, thickness)
    rotate(wing, dihedral, (1, 0, 0))
    if side < 0:
        wing.apply_transform(np.diag((1.0, -1.0, 1.0, 1.0)))
    return wing.apply_translation((x, 0, z))


def _fin(
    chords: np.ndarray, height: float, thickness: float, at, cant: float = 0.0
) -> trimesh.Trimesh:
    """A vertical fin whose root's leading edge is at `at`: `chords` are how far back the
    root's trailing edge, the tip's leading edge and the tip's trailing edge lie; `cant`
    leans it about the fuselage's axis."""
    root, tip_front, tip_back = chords
    outline = [(0, 0), (-root, 0), (-tip_back, height), (-tip_front, height)]
    fin = rotate(prism(outline, thickness, plane="xz"), cant, (1, 0, 0))
    return fin.apply_translation(at)


def _fuselage(
    rng: np.random.Generator, length: float, radius: float, nose: float, tail: float
) -> trimesh.Trimesh:
    profile = smooth_profile(
        [
            (0.02 * radius, 0),
            (radius * 0.8, nose * 0.5),
            (radius, nose),
            (radius, length - tail),
            (radius * 0.25, length),
        ],
        int(rng.integers(10, 30)),
    )
    body = revolve(np.vstack(([[0, 0]], profile, [[0, length]])), int(rng.integers(10, 32)))
    # nose at +x, tail at -x
    return rotate(body, -np.pi / 2, (0, 1, 0)).apply_translation((length / 2, 0, 0))


def _airplane(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("airliner", "fighter", "propeller"))
    if style == "airliner":
        length = u(rng, 25, 70)
        radius = length * u(rng, 0.04, 0.06)
        parts = [_fuselage(rng, length, radius, radius * u(rng, 2.0, 3.0), length * 0.25)]
        span = length * u(rng, 0.4, 0.55)
        root, tip = length * u(rng, 0.15, 0.22), length * u(rng, 0.04, 0.07)
        sweep = span * u(rng, 0.3, 0.7)
        wing_x, wing_z = u(rng, 0.0, 0.15) * length, -radius * u(rng, 0.3, 0.6)
        dihedral = u(rng, 0.03, 0.1)
        for side in (1, -1):
            parts.append(
                _wing(
                    root, tip, span, sweep, root * 0.08, wing_x + root / 2, wing_z, dihedral, side
                )
            )
        engines = pick(rng, (2, 2, 4))
        for side in (1, -1):
            for k in range(engines // 2):
                y = side * span * (0.3 + 0.3 * k)
                ex = wing_x + root / 2 - sweep * abs(y) / span + radius * 0.8
                nacelle = revolve(
                    smooth_profile(
                        [
                            (radius * 0.35, 0),
                            (radius * 0.45, radius * 1.2),
                            (radius * 0.3, radius * 2.5),
                        ],
                        6,
                    ),
                    int(rng.integers(8, 20)),
                )
                parts.append(
                    rotate(nacelle, -np.pi / 2, (0, 1, 0)).apply_translation(
                        (ex, y, wing_z - radius * 0.45)
                    )
                )
        t_tail = rng.random() < 0.25
        fin_h = length * u(rng, 0.1, 0.16)
        at = (-length / 2 + length * 0.14, 0, radius * 0.5)
        parts.append(_fin(length * np.array((0.12, 0.1, 0.16)), fin_h, radius * 0.1, at))
        tail_z = radius * 0.5 + fin_h if t_tail else radius * 0.2
        for side in (1, -1):
            parts.append(
                _wing(
                    length * 0.08,
                    length * 0.03,
                    span * 0.18,
                    span * 0.08,
                    radius * 0.06,
                    -length / 2 + length * 0.1,
                    tail_z,
                    0.05,
                    side,
                )
            )
    elif style == "fighter":
        length = u(rng, 14, 22)
        radius = length * u(rng, 0.04, 0.06)
        parts = [_fuselage(rng, length, radius, length * u(rng, 0.25, 0.4), length * 0.1)]
        span = length * u(rng, 0.3, 0.45)
        root = length * u(rng, 0.35, 0.55)
        for side in (1, -1):  # delta or swept wing
            parts.append(
                _wing(
                    root,
                    root * u(rng, 0.05, 0.3),
                    span,
                    root * u(rng, 0.5, 0.9),
                    radius * 0.15,
                    -length * 0.05 + root / 2,
                    0,
                    -0.03,
                    side,
                )
            )
            parts.append(
                _wing(
                    length * 0.15,
                    length * 0.05,
                    span * 0.35,
                    length * 0.08,
                    radius * 0.1,
                    -length / 2 + length * 0.15,
                    0,
                    0.0,
                    side,
                )
            )
        twin = rng.random() < 0.5
        fin_h = length * u(rng, 0.12, 0.2)
        for y in (-radius * 0.8, radius * 0.8) if twin else (0.0,):
            at = (-length / 2 + length * 0.2, y, radius * 0.5)
            parts.append(
                _fin(
                    length * np.array((0.15, 0.13, 0.2)),
                    fin_h,
                    radius * 0.08,
                    at,
                    np.sign(y) * 0.25,
                )
            )
        parts.append(
            ellipsoid(
                (length * 0.09, radius * 0.6, radius * 0.7),
                (length * 0.22, 0, radius * 0.7),
                detail=2,
            )
        )  # canopy
        for side in (1, -1):  # intakes
            parts.append(
                box(
                    (length * 0.25, radius * 0.6, radius * 0.9),
                    (length * 0.05, side * radius * 1.1, -radius * 0.2),
                )
            )
    else:  # propeller: straight wings high or low, a nose propeller and fixed gear
        length = u(rng, 7, 12)
        radius = length * u(rng, 0.06, 0.08)
        parts = [_fuselage(rng, length, radius, radius * 1.5, length * 0.45)]
        span = length * u(rng, 0.5, 0.7)
        chord = length * u(rng, 0.14, 0.2)
        high = rng.random() < 0.5
        wing_z = radius * 0.9 if high else -radius * 0.7
        for side in (1, -1):
            parts.append(
                _wing(
                    chord,
                    chord * u(rng, 0.6, 1.0),
                    span,
                    chord * u(rng, -0.05, 0.1),
                    chord * 0.12,
                    length * 0.22,
                    wing_z,
                    0.04 if not high else 0.0,
                    side,
                )
            )
            parts.append(
                _wing(
                    length * 0.1,
                    length * 0.07,
                    span * 0.2,
                    length * 0.02,
                    radius * 0.1,
                    -length / 2 + length * 0.12,
                    radius * 0.3,
                    0,
                    side,
                )
            )
        fin_h = length * u(rng, 0.12, 0.2)
        at = (-length / 2 + length * 0.14, 0, radius * 0.3)
        parts.append(_fin(length * np.array((0.14, 0.06, 0.14)), fin_h, radius * 0.12, at))
        hub = np.array((length / 2, 0, 0))
        parts.append(
            _along_x(
                trimesh.creation.cone(radius * 0.45, radius * 0.8, sections=12)
            ).apply_translation(hub)
        )
        blades = int(rng.integers(2, 5))
        for k in range(blades):
            a = 2 * np.pi * k / blades + u(rng, 0, np.pi)
            blade = box((radius * 0.08, radius * 0.3, length * 0.12), (0, 0, length * 0.06))
            rotate(blade, 0.3, (0, 0, 1))
            rotate(blade, a, (1, 0, 0))
            parts.append(blade.apply_translation(hub + (0.05, 0, 0)))
        if rng.random() < 0.7:  # fixed landing gear
            for y in (-radius * 2, radius * 2):
                wheel = (length * 0.25, y, -radius * 2.2)
                parts.append(rod((length * 0.25, y * 0.4, -radius * 0.8), wheel, radius * 0.08))
                parts.append(cylinder(radius * 0.35, radius * 0.2, wheel, axis="y", sections=12))
    return parts


# ---------------------------------------------------------------- car


def _car(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("sedan", "hatchback", "suv", "pickup", "sports", "van"))
    length = {
        "sedan": u(rng, 4.2, 5.0),
        "hatchback": u(rng, 3.6, 4.3),
        "suv": u(rng, 4.3, 5.0),
        "pickup": u(rng, 5.0, 5.8),
        "sports": u(rng, 4.0, 4.6),
        "van": u(rng, 4.5, 5.5),
    }[style]
    width = u(rng, 1.7, 2.0)
    clearance = {"suv": 0.25, "pickup": 0.3, "sports": 0.1}.get(style, 0.15)
    body_h = {
        "sports": u(rng, 0.45, 0.55),
        "suv": u(rng, 0.75, 0.9),
        "pickup": u(rng, 0.75, 0.9),
        "van": u(rng, 0.8, 1.0),
    }.get(style, u(rng, 0.55, 0.7))
    roof = {
        "sports": u(rng, 0.3, 0.4),
        "van": u(rng, 0.9, 1.1),
        "suv": u(rng, 0.7, 0.85),
        "pickup": u(rng, 0.6, 0.75),
    }.get(style, u(rng, 0.5, 0.65))
    wheel_r = u(rng, 0.3, 0.42) if style in ("suv", "pickup") else u(rng, 0.28, 0.36)
    front, rear = length / 2, -length / 2
    base, belt = clearance + wheel_r * 0.4, clearance + body_h
    top = belt + roof
    # the greenhouse's corners: rear pillar base, roof rear, roof front, windscreen base
    cabin = {
        "sedan": (rear + 0.9, rear + 1.4, front - 1.9, front - 1.2),
        "hatchback": (rear + 0.1, rear + 0.35, front - 1.6, front - 1.1),
        "suv": (rear + 0.05, rear + 0.15, front - 1.6, front - 1.2),
        "pickup": (front - 3.0, front - 2.9, front - 1.9, front - 1.4),
        "sports": (rear + 1.0, rear + 1.7, front - 2.0, front - 1.3),
        "van": (rear + 0.02, rear + 0.05, front - 1.0, front - 0.4),
    }[style]
    jitter = [c + u(rng, -0.1, 0.1) for c in cabin]
    side = Polygon(
        [
            (rear, base),
            (front, base),
            (front, belt - 0.15),
            (front - 0.4, belt),
            (jitter[3], belt),
            (jitter[2], top),
            (jitter[1], top),
            (jitter[0], belt),
            (rear, belt),
        ]
    )
    rounding = u(rng, 0.05, 0.25)
    side = side.buffer(-rounding, join_style="round").buffer(
        rounding, quad_segs=int(rng.integers(2, 8))
    )
    wheel_x = (front - length * u(rng, 0.15, 0.2), rear + length * u(rng, 0.15, 0.2))
    for x in wheel_x:  # wheel arches
        side = side.difference(
            Point(x, clearance + wheel_r * 0.5).buffer(wheel_r * 1.1, quad_segs=6)
        )
    if side.geom_type != "Polygon":
        side = max(side.geoms, key=lambda g: g.area)
    parts = [prism(side, width * u(rng, 0.92, 0.97), plane="xz")]
    greenhouse = Polygon(
        [(jitter[0], belt - 0.05), (jitter[3], belt - 0.05), (jitter[2], top), (jitter[1], top)]
    )
    greenhouse = greenhouse.buffer(-rounding / 2).buffer(rounding / 2, quad_segs=4)
    parts.append(prism(greenhouse, width * 0.85, plane="xz"))  # narrower than the body
    if style == "pickup":  # an open bed: sides and tailgate above the body line
        bed_x = (rear, jitter[0] - 0.05)
        for sy in (-1, 1):
            parts.append(
                box(
                    (bed_x[1] - bed_x[0], 0.06, 0.35),
                    ((bed_x[0] + bed_x[1]) / 2, sy * width * 0.46, belt + 0.1),
                )
            )
        parts.append(box((0.06, width * 0.9, 0.35), (rear + 0.03, 0, belt + 0.1)))
    if style == "sports" and rng.random() < 0.6:  # a spoiler
        parts.append(box((0.25, width * 0.9, 0.03), (rear + 0.2, 0, belt + 0.2)))
        parts += [
            box((0.05, 0.05, 0.2), (rear + 0.2, sy * width * 0.3, belt + 0.1)) for sy in (-1, 1)
        ]
    sections = int(rng.integers(10, 32))
    for x in wheel_x:
        for sy in (-1, 1):
            y = sy * (width / 2 - 0.12)
            parts.append(
                cylinder(
                    wheel_r, 0.22, (x, y, clearance + wheel_r * 0.5), axis="y", sections=sections
                )
            )
            parts.append(
                cylinder(
                    wheel_r * 0.55,
                    0.24,
                    (x, y, clearance + wheel_r * 0.5),
                    axis="y",
                    sections=sections,
                )
            )
    for sy in (-1, 1):  # mirrors
        parts.append(box((0.12, 0.15, 0.1), (jitter[3], sy * width * 0.52, belt + 0.08)))
    return parts


# ---------------------------------------------------------------- guitar


def _guitar(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("acoustic", "electric", "bass", "classical"))
    if style in ("acoustic", "classical"):
        lower, upper = u(rng, 0.17, 0.21), u(rng, 0.12, 0.15)
        body_len = u(rng, 0.45, 0.52)
        quad_segs = int(rng.integers(4, 12))
        outline = (
            Point(0, lower)
            .buffer(lower, quad_segs=quad_segs)
            .union(Point(0, body_len - upper).buffer(upper, quad_segs=quad_segs))
            .union(rectangle(-upper * 0.8, lower, upper * 0.8, body_len - upper))
        )
        depth = u(rng, 0.08, 0.12)
        top = outline.difference(Point(0, body_len - upper * 1.2).buffer(upper * 0.35))
        parts = [
            prism(outline, depth * 0.9, plane="xz", offset=-depth * 0.05),
            prism(top, depth * 0.1, plane="xz", offset=depth * 0.45),
        ]
    else:  # a solid body with horns
        lower = u(rng, 0.15, 0.19)
        body_len = u(rng, 0.4, 0.48)
        horn = u(rng, 0.05, 0.12)
        outline = (
            Point(0, lower)
            .buffer(lower, quad_segs=6)
            .union(Point(lower * 0.5, body_len - horn).buffer(horn, quad_segs=6))
            .union(Point(-lower * 0.6, body_len - horn * 1.5).buffer(horn * 1.2, quad_segs=6))
            .union(rectangle(-lower * 0.6, lower, lower * 0.5, body_len - horn))
        )
        outline = outline.buffer(0.02, quad_segs=4).buffer(-0.02, quad_segs=4)
        depth = u(rng, 0.035, 0.05)
        parts = [prism(outline, depth, plane="xz")]
        for k in range(int(rng.integers(1, 4))):  # pickups and knobs
            parts.append(box((0.08, 0.02, 0.025), (0, depth / 2, body_len * (0.35 + 0.12 * k))))
        for k in range(int(rng.integers(2, 5))):
            parts.append(
                cylinder(
                    0.012,
                    0.02,
                    (lower * 0.6, depth / 2 + 0.01, lower * (0.4 + 0.25 * k)),
                    axis="y",
                    sections=10,
                )
            )
    scale = u(rng, 1.1, 1.25) if style == "bass" else 1.0
    neck_len = u(rng, 0.42, 0.5) * scale
    strings = 4 if style == "bass" else 6
    neck_w = 0.012 * strings
    front = depth / 2
    parts.append(
        prism(
            [
                (-neck_w / 2, body_len - 0.05),
                (neck_w / 2, body_len - 0.05),
                (neck_w * 0.42, body_len + neck_len),
                (-neck_w * 0.42, body_len + neck_len),
            ],
            0.025,
            plane="xz",
            offset=front - 0.0125,
        )
    )
    head_len = u(rng, 0.15, 0.22)
    head = prism(rounded_rectangle(neck_w * 1.6, head_len, 0.01), 0.018, plane="xz")
    rotate(head, u(rng, 0.0, 0.25), (1, 0, 0))
    parts.append(head.apply_translation((0, front - 0.02, body_len + neck_len + head_len / 2)))
    for k in range(strings):  # tuning pegs on both sides of the head
        side = 1 if k % 2 else -1
        z = body_len + neck_len + head_len * (0.25 + 0.22 * (k // 2))
        parts.append(
            rod(
                (side * neck_w * 0.8, front - 0.02, z),
                (side * neck_w * 1.4, front - 0.02, z),
                0.005,
                sections=6,
            )
        )
    bridge_z = lower * u(rng, 0.7, 0.9)
    parts.append(box((neck_w * 2, 0.012, 0.025), (0, front + 0.006, bridge_z)))
    for k in range(strings):  # the strings: very thin
        x0 = (k - (strings - 1) / 2) * neck_w / strings * 1.3
        x1 = (k - (strings - 1) / 2) * neck_w / strings * 0.9
        parts.append(
            rod(
                (x0, front + 0.008, bridge_z),
                (x1, front + 0.004, body_len + neck_len),
                0.0012,
                sections=4,
            )
        )
    tilt = u(rng, -0.15, 0.15)
    for part in parts:
        rotate(part, tilt, (0, 1, 0))
    return parts


# ---------------------------------------------------------------- keyboard and laptop


def _key_rows(
    rng: np.random.Generator, width: float, depth: float, z: float, rows: int, keycap: str
) -> list[trimesh.Trimesh]:
    """Rows of keys over [-width/2, width/2] x [-depth/2, depth/2], a space bar in the
    front row, keycaps straight or tapered."""
    pitch = depth / rows
    per_row = max(8, round(width / pitch))
    key = width / per_row
    height = pitch * u(rng, 0.25, 0.45)
    parts = []
    for r in range(rows):
        y = depth / 2 - (r + 0.5) * pitch
        widths = [1.0] * per_row
        if r == rows - 1:  # the space bar row
            widths = [1.0] * 3 + [per_row - 7.0] + [1.0] * 4
        elif r > 0:
            stretch = [1.5, 1.75, 2.25][min(r - 1, 2)]
            widths = [stretch] + [1.0] * (per_row - 2) + [stretch]
        scale_w = per_row / sum(widths)
        x = -width / 2
        for w in widths:
            w *= key * scale_w
            size = (w * 0.86, pitch * 0.86, height)
            center = np.array((x + w / 2, y, z + height / 2))
            cap = box(size, center)
            if keycap == "tapered":  # the top face shrunk towards its centre
                top = cap.vertices[:, 2] > center[2]
                cap.vertices[top, :2] = center[:2] + (cap.vertices[top, :2] - center[:2]) * 0.75
            parts.append(cap)
            x += w
    return parts


def _keyboard(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("full", "tenkeyless", "compact", "split"))
    rows = 5 if style == "compact" else 6
    main_w = u(rng, 0.28, 0.33)
    depth = u(rng, 0.11, 0.16)
    keycap = pick(rng, ("flat", "tapered"))
    margin = u(rng, 0.005, 0.025)
    base_t = u(rng, 0.012, 0.03)
    if style == "split":
        parts = []
        for side in (-1, 1):
            half = [
                rounded_box(
                    (main_w / 2 + 2 * margin, depth + 2 * margin, base_t),
                    (0, 0, base_t / 2),
                    base_t * 0.4,
                    detail=1,
                )
            ]
            half += _key_rows(rng, main_w / 2, depth, base_t, rows, keycap)
            for part in half:
                rotate(part, -side * u(rng, 0.1, 0.25), (0, 0, 1))
                parts.append(part.apply_translation((side * (main_w / 4 + 0.03), 0, 0)))
    else:
        extra = {"full": u(rng, 0.12, 0.16), "tenkeyless": u(rng, 0.05, 0.07), "compact": 0.0}[
            style
        ]
        width = main_w + extra
        parts = [
            rounded_box(
                (width + 2 * margin, depth + 2 * margin, base_t),
                (0, 0, base_t / 2),
                min(margin, base_t) * 0.9,
                detail=int(rng.integers(0, 2)),
            )
        ]
        parts += [
            p.apply_translation((-extra / 2, 0, 0))
            for p in _key_rows(rng, main_w, depth, base_t, rows, keycap)
        ]
        if extra > 0.1:  # the number pad
            pad = _key_rows(rng, extra * 0.6, depth, base_t, rows, "flat")
            parts += [p.apply_translation((width / 2 - extra * 0.35, 0, 0)) for p in pad]
        elif extra > 0:  # arrows and navigation
            for dx, dy in ((0, 0), (-1, 0), (1, 0), (0, 1)):
                parts.append(
                    box(
                        (0.016, 0.016, 0.008),
                        (
                            width / 2 - extra / 2 + dx * 0.019,
                            -depth / 2 + 0.012 + dy * 0.019,
                            base_t + 0.004,
                        ),
                    )
                )
    if rng.random() < 0.35:  # a wrist rest
        parts.append(
            rounded_box(
                (main_w, 0.07, base_t * 0.9),
                (0, -depth / 2 - 0.05, base_t * 0.45),
                base_t * 0.4,
                detail=1,
            )
        )
    tilt = u(rng, 0.0, 0.12)
    for part in parts:
        rotate(part, tilt, (1, 0, 0))
    return parts


def _laptop(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth = u(rng, 0.28, 0.4), u(rng, 0.19, 0.28)
    base_t, lid_t = u(rng, 0.012, 0.025), u(rng, 0.005, 0.012)
    radius = u(rng, 0.002, 0.012)
    parts = [rounded_box((width, depth, base_t), (0, 0, base_t / 2), radius, detail=1)]
    deck = base_t
    if rng.random() < 0.6:
        parts += [
            p.apply_translation((0, depth * 0.18, 0))
            for p in _key_rows(rng, width * 0.85, depth * 0.45, deck - 0.0015, 5, "flat")
        ]
    else:  # a keyboard plate flush with the deck
        parts.append(box((width * 0.85, depth * 0.45, 0.002), (0, depth * 0.18, deck)))
    parts.append(box((width * u(rng, 0.25, 0.45), depth * 0.25, 0.002), (0, -depth * 0.28, deck)))
    # the lid stands on the hinge at the back edge, screen to the front, leaning back
    # by its opening angle beyond upright (or forward, nearly closed)
    opening = u(rng, 1.6, 2.3) if rng.random() < 0.9 else u(rng, 0.4, 1.2)
    lid = rounded_box((width, lid_t, depth), (0, lid_t / 2, depth / 2), radius, detail=1)
    screen = box((width * 0.9, 0.002, depth * 0.85), (0, 0, depth / 2))
    for part in (lid, screen):
        rotate(part, -(opening - np.pi / 2), (1, 0, 0))
        parts.append(part.apply_translation((0, depth / 2, base_t)))
    return parts


# ---------------------------------------------------------------- person


def _person(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    pose = pick(rng, ("standing", "walking", "arms out", "sitting", "waving"))
    height = u(rng, 1.5, 1.95) if rng.random() < 0.85 else u(rng, 1.0, 1.3)
    girth = u(rng, 0.8, 1.3)
    count = int(rng.integers(5, 12))
    hip_z = height * 0.52
    thigh, shin = height * 0.245, height * 0.245
    hip_w, shoulder_w = height * 0.06 * girth, height * 0.12 * girth
    shoulder_z = height * 0.81
    upper_arm, forearm = height * 0.17, height * 0.16
    limb_r = height * 0.032 * girth
    parts = [limb((0, 0, hip_z + 0.05), (0, 0, shoulder_z - 0.06), height * 0.09 * girth, count)]
    parts[0].apply_scale((1.0, 0.65, 1.0))
    parts.append(
        ellipsoid((height * 0.055,) * 3, (0, 0, height * 0.93), detail=int(rng.integers(1, 3)))
    )
    parts.append(limb((0, 0, shoulder_z), (0, 0, height * 0.88), limb_r * 0.8, count))
    swing = u(rng, 0.3, 0.6) if pose == "walking" else u(rng, 0.0, 0.1)
    for side in (1, -1):
        hip = np.array((0, side * hip_w, hip_z))
        if pose == "sitting":
            knee = hip + (thigh, 0, 0)
            foot = knee + (u(rng, -0.1, 0.15) * shin, 0, -shin)
        else:
            a = swing * side
            knee = hip + thigh * np.array((np.sin(a), 0, -np.cos(a)))
            bend = a - u(rng, 0.0, 0.3)
            foot = knee + shin * np.array((np.sin(bend), 0, -np.cos(bend)))
        parts += [limb(hip, knee, limb_r * 1.3, count), limb(knee, foot, limb_r, count)]
        parts.append(
            rounded_box(
                (height * 0.14, height * 0.06, height * 0.04),
                foot + (height * 0.04, 0, -height * 0.01),
                height * 0.015,
                detail=0,
            )
        )
        shoulder = np.array((0, side * shoulder_w, shoulder_z))
        if pose == "arms out" or (pose == "waving" and side == 1):
            lift = u(rng, -0.3, 0.6) if pose == "arms out" else u(rng, 0.6, 1.2)
            elbow = shoulder + upper_arm * np.array((0, side * np.cos(lift), np.sin(lift)))
            bend = lift + (u(rng, 0.0, 0.4) if pose == "arms out" else u(rng, 0.6, 1.2))
            hand = elbow + forearm * np.array((0, side * np.cos(bend), np.sin(bend)))
        else:  # hanging, swinging when walking, forward on the lap when sitting
            a = -swing * side + u(rng, -0.1, 0.1)
            out = u(rng, 0.05, 0.25)
            elbow = shoulder + upper_arm * np.array((np.sin(a), side * np.sin(out), -np.cos(a)))
            b = a + (1.3 if pose == "sitting" else u(rng, 0.0, 0.4))
            hand = elbow + forearm * np.array((np.sin(b), side * 0.1, -np.cos(b)))
        parts += [limb(shoulder, elbow, limb_r, count), limb(elbow, hand, limb_r * 0.85, count)]
        parts.append(ellipsoid((limb_r * 1.1,) * 3, hand, detail=1))
    if rng.random() < 0.25:  # a skirt or a coat
        hem = hip_z - height * u(rng, 0.15, 0.3)
        skirt = revolve(
            [
                (0, hem),
                (height * u(rng, 0.13, 0.2), hem),
                (height * 0.1, hip_z + 0.1),
                (0, hip_z + 0.1),
            ],
            int(rng.integers(8, 24)),
        )
        parts.append(skirt)
    if rng.random() < 0.2:  # a hat
        parts.append(cylinder(height * 0.07, height * 0.01, (0, 0, height * 0.975), sections=16))
        parts.append(cylinder(height * 0.045, height * 0.06, (0, 0, height * 1.0), sections=16))
    return parts


# ---------------------------------------------------------------- radio


def _radio(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("portable", "boombox", "cathedral", "clock"))
    width = {
        "portable": u(rng, 0.15, 0.3),
        "boombox": u(rng, 0.4, 0.65),
        "cathedral": u(rng, 0.3, 0.45),
        "clock": u(rng, 0.18, 0.28),
    }[style]
    height = (
        width
        * {
            "portable": u(rng, 0.55, 0.8),
            "boombox": u(rng, 0.4, 0.55),
            "cathedral": u(rng, 1.0, 1.3),
            "clock": u(rng, 0.3, 0.45),
        }[style]
    )
    depth = width * u(rng, 0.25, 0.45)
    front = depth / 2
    if style == "cathedral":  # an arched wooden cabinet
        rise = height * u(rng, 0.25, 0.45)
        top = [
            (width / 2 * np.cos(a), height - rise + rise * np.sin(a))
            for a in np.linspace(0, np.pi, int(rng.integers(6, 20)))
        ]
        parts = [prism([(-width / 2, 0), (width / 2, 0)] + top, depth, plane="xz")]
        grille = scale_outline(
            Polygon([(-width / 2, 0), (width / 2, 0)] + top), 0.6, 0.5, origin=(0, height)
        )
        parts.append(prism(grille, 0.01, plane="xz", offset=front))
        for k in range(int(rng.integers(2, 7))):  # fretwork bars
            x = (k + 0.5) / 6 * width * 0.5 - width * 0.25
            parts.append(box((0.01, 0.015, height * 0.45), (x, front + 0.005, height * 0.65)))
        speakers = []
    else:
        corner = width * u(rng, 0.02, 0.1)
        parts = [
            rounded_box(
                (width, depth, height), (0, 0, height / 2), corner, detail=int(rng.integers(0, 3))
            )
        ]
        speakers = {"portable": [0.0], "boombox": [-width * 0.3, width * 0.3], "clock": []}[style]
    for x in speakers:  # speaker cones set in rings
        r = min(height * 0.35, width * 0.18)
        sections = int(rng.integers(12, 40))
        parts.append(
            cylinder(r * 1.1, 0.01, (x, front, height * 0.45), axis="y", sections=sections)
        )
        cone = trimesh.creation.cone(r, r * 0.3, sections=sections)
        parts.append(
            rotate(cone, np.pi / 2, (1, 0, 0)).apply_translation((x, front + 0.005, height * 0.45))
        )
    if style in ("portable", "boombox", "clock"):  # a display or tuning window
        parts.append(
            box(
                (width * u(rng, 0.25, 0.5), 0.006, height * 0.15),
                (0, front + 0.003, height * (0.82 if style != "clock" else 0.55)),
            )
        )
    for k in range(int(rng.integers(1, 4))):  # knobs
        x = width * (0.3 + 0.08 * k) * (-1 if style == "cathedral" else 1)
        z = height * (0.2 if style == "cathedral" else 0.82)
        parts.append(cylinder(width * 0.03, 0.02, (x, front + 0.01, z), axis="y", sections=12))
    if style in ("portable", "boombox") and rng.random() < 0.7:  # a telescopic antenna
        a = u(rng, -0.6, 0.6)
        direction = np.array((np.sin(a), 0, np.cos(a)))
        start = np.array((width * 0.4, -depth * 0.2, height))
        length = height * u(rng, 0.8, 2.0)
        for k, r in enumerate((0.004, 0.003, 0.002)):
            parts.append(
                rod(
                    start + direction * length * k / 3,
                    start + direction * length * (k + 1) / 3,
                    r,
                    sections=5,
                )
            )
    if style == "boombox" or (style == "portable" and rng.random() < 0.5):  # a carry handle
        path = arc((0, 0, height), width * 0.3, 0, np.pi, 10, plane="xz")
        path[:, 2] = height + (path[:, 2] - height) * 0.4
        parts.append(tube(path, 0.01, sections=6))
    return parts


# ---------------------------------------------------------------- tent


def _tent(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("dome", "ridge", "teepee", "tunnel"))
    if style in ("dome", "teepee"):
        radius = u(rng, 1.0, 2.0)
        height = radius * (u(rng, 0.5, 0.8) if style == "dome" else u(rng, 1.3, 2.0))
        panels = int(rng.integers(5, 9))
        rings = int(rng.integers(4, 12))
        if style == "dome":
            profile = [
                (radius * np.cos(a), height * np.sin(a)) for a in np.linspace(0, np.pi / 2, rings)
            ]
        else:
            profile = [(radius * (1 - t), height * t) for t in np.linspace(0, 1, rings)]
        shell = revolve(np.vstack(([[0, 0]], profile)), panels)
        parts = [shell]
        poles = 2 if style == "dome" else panels
        for k in range(poles):
            a = np.pi * k / poles if style == "dome" else 2 * np.pi * (k + 0.5) / panels
            if style == "dome":  # arched poles crossing over the top
                t = np.linspace(0, np.pi, 12)
                path = (
                    np.column_stack(
                        (
                            np.cos(a) * radius * np.cos(t),
                            np.sin(a) * radius * np.cos(t),
                            height * np.sin(t),
                        )
                    )
                    * 1.02
                )
                parts.append(tube(path, 0.012, sections=6))
            else:  # poles crossing above the apex
                tip = np.array((np.cos(a) * 0.15, np.sin(a) * 0.15, height * 1.15))
                parts.append(
                    rod(
                        (np.cos(a) * radius * 0.95, np.sin(a) * radius * 0.95, 0),
                        tip,
                        0.02,
                        sections=5,
                    )
                )
        door = u(rng, 0.4, 0.7) * height
        parts.append(
            prism([(-0.3, 0), (0.3, 0), (0, door)], 0.02, plane="yz", offset=radius * 0.99)
        )
        return parts
    length, width = u(rng, 1.8, 3.5), u(rng, 1.2, 2.5)
    height = width * u(rng, 0.5, 0.8)
    if style == "ridge":  # an A-frame with sagging walls, guy ropes and pegs
        columns = int(rng.integers(3, 9))
        s = np.linspace(-1, 1, columns)[None, :]
        t = np.linspace(0, 1, int(rng.integers(3, 8)))[:, None]
        sag = u(rng, 0.0, 0.1) * (1 - s**2) * np.sin(np.pi * t)
        parts = []
        for sy in (-1, 1):
            grid = np.stack(
                (
                    length / 2 * s + 0 * t,
                    sy * (width / 2 * (1 - t) - sag * width),
                    height * t + 0 * s,
                ),
                -1,
            )
            parts.append(sheet(grid, 0.01))
        for sx in (-1, 1):
            parts.append(
                prism(
                    [(-width / 2, 0), (width / 2, 0), (0, height)],
                    0.01,
                    plane="yz",
                    offset=sx * length / 2,
                )
            )
            parts.append(rod((sx * length / 2, 0, 0), (sx * length / 2, 0, height * 1.08), 0.015))
            for sy in (-1, 1) if rng.random() < 0.7 else ():
                peg = (sx * (length / 2 + 0.5), sy * (width / 2 + 0.4), 0)
                parts.append(rod((sx * length / 2, 0, height), peg, 0.004, sections=4))
        parts.append(rod((-length / 2, 0, height), (length / 2, 0, height), 0.015))
        return parts
    # tunnel: hoops with fabric between
    hoops = int(rng.integers(2, 5))
    rows = int(rng.integers(6, 14))
    a = np.linspace(0, np.pi, rows)[:, None]
    s = np.linspace(-1, 1, int(rng.integers(3, 8)))[None, :]
    sag = 1 - u(rng, 0.0, 0.12) * np.cos(np.pi * s * (hoops - 1) / 2) ** 2
    grid = np.stack(
        (length / 2 * s + 0 * a, width / 2 * np.cos(a) * sag, height * np.sin(a) * sag), -1
    )
    parts = [sheet(grid, 0.01)]
    for k in range(hoops):
        x = -length / 2 + length * k / (hoops - 1)
        path = arc((x, 0, 0), 1.0, 0, np.pi, 12, plane="yz")
        path[:, 1] *= width / 2 * 1.01
        path[:, 2] *= height * 1.01
        parts.append(tube(path, 0.012, sections=6))
    for sx in (-1, 1):  # the end walls, one with a door
        end = Polygon(list(zip(width / 2 * np.cos(a[:, 0]), height * np.sin(a[:, 0]), strict=True)))
        parts.append(prism(end, 0.01, plane="yz", offset=sx * length / 2))
    return parts


# ---------------------------------------------------------------- xbox


def _controller(rng: np.random.Generator, x: float, y: float) -> list[trimesh.Trimesh]:
    w = u(rng, 0.14, 0.16)
    parts = [ellipsoid((w * 0.35, w * 0.25, w * 0.12), (x, y, w * 0.1), detail=1)]
    for sx in (-1, 1):  # the grips
        parts.append(
            limb(
                (x + sx * w * 0.3, y, w * 0.1),
                (x + sx * w * 0.4, y - w * 0.3, w * 0.08),
                w * 0.12,
                6,
            )
        )
        parts.append(
            cylinder(
                w * 0.04, w * 0.06, (x + sx * w * 0.15, y + sx * w * 0.05, w * 0.2), sections=10
            )
        )
    return parts


def _xbox(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("original", "360", "one", "series_x"))
    if style == "series_x":  # a tall square tower, a concave vent on top
        side, height = u(rng, 0.14, 0.16), u(rng, 0.28, 0.32)
        parts = [rounded_box((side, side, height), (0, 0, height / 2), 0.005, detail=1)]
        vent = trimesh.creation.annulus(
            side * 0.1, side * 0.42, 0.006, sections=int(rng.integers(16, 48))
        )
        parts.append(vent.apply_translation((0, 0, height + 0.003)))
        parts.append(cylinder(side * 0.4, 0.02, (0, 0, height - 0.005), sections=32))
        parts.append(cylinder(side * 0.4, 0.01, (0, 0, 0.005), sections=32))  # the foot
    else:
        width = {
            "original": u(rng, 0.3, 0.33),
            "360": u(rng, 0.26, 0.31),
            "one": u(rng, 0.3, 0.34),
        }[style]
        depth = width * u(rng, 0.8, 0.95)
        height = {
            "original": u(rng, 0.09, 0.11),
            "360": u(rng, 0.075, 0.085),
            "one": u(rng, 0.06, 0.08),
        }[style]
        radius = {"original": 0.01, "360": 0.025, "one": 0.004}[style]
        body = rounded_box((width, depth, height), (0, 0, height / 2), radius, detail=1)
        if style == "360":  # pinched sides
            body.vertices[:, 0] *= 1 - 0.08 * np.cos(np.pi * (body.vertices[:, 2] / height - 0.5))
        parts = [body]
        front = depth / 2
        if style == "one":  # half the top is a grille of slats
            for k in range(int(rng.integers(8, 20))):
                x = -width / 2 + 0.01 + k * 0.008
                parts.append(box((0.004, depth * 0.9, 0.004), (x, 0, height + 0.002)))
        if style == "original":  # the big round emblem on top and a disc tray
            parts.append(cylinder(width * 0.12, 0.02, (0, front * 0.6, height), sections=32))
        parts.append(box((width * 0.5, 0.004, height * 0.15), (0, front, height * 0.6)))
        parts.append(
            cylinder(
                height * 0.12, 0.006, (width * 0.38, front, height * 0.6), axis="y", sections=16
            )
        )
        if style == "360" and rng.random() < 0.5:  # standing on its side
            for part in parts:
                rotate(part, np.pi / 2, (0, 1, 0))
    if rng.random() < 0.4:
        parts += _controller(rng, 0.0, -0.3)
    return parts


FAMILIES: dict[str, Callable[[np.random.Generator], list[trimesh.Trimesh]]] = {
    "airplane": _airplane,
    "car": _car,
    "guitar": _guitar,
    "keyboard": _keyboard,
    "laptop": _laptop,
    "person": _person,
    "radio": _radio,
    "tent": _tent,
    "xbox": _xbox,
}
