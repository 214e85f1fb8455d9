"""Turned and thrown things: bottle, bowl, cone, cup, flower_pot, vase, lamp and plant.

Most are surfaces of revolution whose outline comes from a few random knots, so the
curvature varies from shape to shape; the number of facets around the axis and of rings
along it is drawn too (uneven tessellation). cup/bowl/vase and flower_pot/plant/vase are
confusable on purpose: a cup is a deep bowl with a handle, a vase may hold flowers, a
flower pot may hold a small plant, a plant stands in a pot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

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
    vessel,
)


def _sections(rng: np.random.Generator, low: int = 12, high: int = 48) -> int:
    return int(rng.integers(low, high + 1))


def _handle(radius: float, z_low: float, z_high: float, reach: float, thickness: float):
    """A D-shaped loop on the +x side of a body of `radius`, from z_low to z_high."""
    middle, half = (z_low + z_high) / 2, (z_high - z_low) / 2
    path = arc((radius - thickness, 0, middle), 1.0, -np.pi / 2, np.pi / 2, 12, plane="xz")
    path[:, 0] = radius - thickness + (path[:, 0] - (radius - thickness)) * reach
    path[:, 2] = middle + (path[:, 2] - middle) * half
    return tube(path, thickness, sections=8)


# ---------------------------------------------------------------- bottle


def _bottle(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("wine", "soda", "jug", "flask", "square"))
    height = u(rng, 0.18, 0.4)
    body_r = height * u(rng, 0.12, 0.22)
    neck_r = body_r * u(rng, 0.25, 0.45)
    rings = int(rng.integers(12, 40))
    if style == "wine":
        shoulder = height * u(rng, 0.55, 0.7)
        knots = [(body_r, 0), (body_r, shoulder), (neck_r * 1.1, shoulder + height * 0.15)]
        knots += [(neck_r, height * 0.93), (neck_r * 1.25, height * 0.95), (neck_r * 1.2, height)]
    elif style == "soda":
        shoulder = height * u(rng, 0.55, 0.75)
        knots = [(body_r * 0.9, 0), (body_r, height * 0.05), (body_r, shoulder)]
        knots += [(neck_r, height * 0.9), (neck_r, height)]
    elif style == "jug":
        body_r *= 1.5
        knots = [(body_r * 0.8, 0), (body_r, height * 0.35), (body_r * 0.85, height * 0.65)]
        knots += [(neck_r, height * 0.88), (neck_r * 1.2, height)]
    else:  # a flask or a square spirits bottle
        knots = [(body_r, 0), (body_r * 1.05, height * 0.5), (body_r, height * 0.7)]
        knots += [(neck_r, height * 0.82), (neck_r, height)]
    outline = smooth_profile(knots, rings)
    if style == "soda":  # moulded ribs
        ribs = np.abs(np.sin(outline[:, 1] / height * np.pi * int(rng.integers(3, 8))))
        band = (outline[:, 1] > height * 0.1) & (outline[:, 1] < height * 0.55)
        outline[band, 0] *= 1 - 0.06 * ribs[band]
    profile = np.vstack(([[0, 0]], outline, [[0, height]]))
    sections = {"square": 4, "flask": _sections(rng, 16, 32)}.get(style, _sections(rng))
    body = revolve(profile, sections)
    if style == "square":
        rotate(body, np.pi / 4, (0, 0, 1))
        body.apply_scale((1.0, u(rng, 0.5, 1.0), 1.0))
    elif style == "flask":
        body.apply_scale((1.0, u(rng, 0.35, 0.6), 1.0))
    parts = [body]
    if rng.random() < 0.7:  # a cap or a cork
        cap_h = height * u(rng, 0.04, 0.1)
        parts.append(
            cylinder(
                neck_r * u(rng, 1.05, 1.3),
                cap_h,
                (0, 0, height + cap_h / 2 - 0.005),
                sections=_sections(rng, 8, 24),
            )
        )
    if style == "jug" and rng.random() < 0.8:
        parts.append(
            _handle(body_r * 0.85, height * 0.45, height * 0.85, body_r * 0.6, height * 0.025)
        )
    return parts


# ---------------------------------------------------------------- bowl and cup


def _bowl(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("round", "flared", "footed", "deep"))
    rim_r = u(rng, 0.07, 0.2)
    depth = (
        rim_r
        * {
            "round": u(rng, 0.4, 0.7),
            "flared": u(rng, 0.25, 0.45),
            "footed": u(rng, 0.35, 0.6),
            "deep": u(rng, 0.6, 0.9),
        }[style]
    )
    base_r = rim_r * u(rng, 0.3, 0.6)
    wall = rim_r * u(rng, 0.03, 0.08)
    power = u(rng, 0.35, 0.6) if style != "flared" else u(rng, 0.8, 1.2)
    t = np.linspace(0, 1, int(rng.integers(8, 24)))
    radii = base_r + (rim_r - base_r) * t**power
    foot = depth * u(rng, 0.05, 0.12) if style != "footed" else depth * u(rng, 0.5, 1.0)
    heights = foot + depth * t
    parts = [vessel(radii, heights, wall, _sections(rng, 16, 64))]
    if style == "footed":  # a stem and a foot disc
        stem = smooth_profile(
            [(base_r * u(rng, 0.9, 1.3), 0), (base_r * 0.35, foot * 0.5), (base_r * 0.6, foot)], 8
        )
        parts.append(revolve(np.vstack(([[0, 0]], stem, [[0, foot]])), _sections(rng, 12, 32)))
    else:  # a foot ring
        parts.append(
            trimesh.creation.annulus(
                base_r * 0.7, base_r * 0.85, foot, sections=_sections(rng, 12, 32)
            )
        )
        parts[-1].apply_translation((0, 0, foot / 2))
    if rng.random() < 0.3:  # a rolled rim
        parts.append(
            trimesh.creation.torus(
                rim_r - wall / 2, wall * 0.9, major_sections=32, minor_sections=6
            ).apply_translation((0, 0, foot + depth))
        )
    return parts


def _cup(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("mug", "teacup", "paper", "tumbler", "stein"))
    rim_r = u(rng, 0.035, 0.06)
    height = (
        rim_r
        * {
            "mug": u(rng, 1.6, 2.6),
            "teacup": u(rng, 1.0, 1.4),
            "paper": u(rng, 2.0, 3.2),
            "tumbler": u(rng, 1.8, 3.0),
            "stein": u(rng, 2.6, 3.6),
        }[style]
    )
    base_r = (
        rim_r
        * {
            "mug": u(rng, 0.9, 1.05),
            "teacup": u(rng, 0.45, 0.6),
            "paper": u(rng, 0.6, 0.75),
            "tumbler": u(rng, 0.75, 0.95),
            "stein": u(rng, 1.0, 1.2),
        }[style]
    )
    wall = rim_r * u(rng, 0.05, 0.1)
    t = np.linspace(0, 1, int(rng.integers(6, 20)))
    curve = t ** (0.5 if style == "teacup" else 1.0)
    lift = height * 0.15 if style == "teacup" else 0.0
    parts = [
        vessel(base_r + (rim_r - base_r) * curve, lift + height * t, wall, _sections(rng, 12, 48))
    ]
    if style in ("mug", "teacup", "stein") or rng.random() < 0.15:
        body_r = (base_r + rim_r) / 2
        low, high = lift + height * u(rng, 0.15, 0.3), lift + height * u(rng, 0.7, 0.9)
        parts.append(_handle(body_r, low, high, rim_r * u(rng, 0.6, 1.0), wall * u(rng, 0.8, 1.4)))
    if style == "teacup":
        parts.append(
            revolve(
                [
                    (0, 0),
                    (rim_r * 0.6, 0),
                    (rim_r * 1.6, lift * 0.6),
                    (rim_r * 1.65, lift * 0.8),
                    (rim_r * 1.5, lift * 0.8),
                    (rim_r * 0.6, lift * 0.3),
                    (0, lift * 0.3),
                ],
                _sections(rng, 20, 48),
            )
        )
        parts.append(cylinder(base_r * 0.8, lift, (0, 0, lift / 2), sections=16))
    if style == "paper" and rng.random() < 0.6:  # a lid
        parts.append(cylinder(rim_r * 1.05, height * 0.06, (0, 0, height * 1.03), sections=24))
    return parts


# ---------------------------------------------------------------- cone


def _cone(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("plain", "traffic", "truncated", "rounded"))
    height = u(rng, 0.3, 1.0)
    radius = height * u(rng, 0.15, 0.6)
    sections = _sections(rng, 8, 64)
    if style == "plain":  # enough rings along the flank for a sane face count
        rings = max(int(rng.integers(2, 8)), int(np.ceil(120 / sections)))
        flank = np.linspace((radius, 0.0), (0.0, height), rings + 1)
        return [revolve(np.vstack(([[0, 0]], flank)), sections)]
    if style == "rounded":  # a cone with a rounded tip and a slightly bulged flank
        tip = radius * u(rng, 0.05, 0.25)
        profile = smooth_profile(
            [
                (radius, 0),
                (radius * 0.5 * u(rng, 1.0, 1.2), height * 0.5),
                (tip, height * 0.95),
                (0, height),
            ],
            int(rng.integers(6, 20)),
        )
        return [revolve(np.vstack(([[0, 0]], profile)), sections)]
    top = radius * u(rng, 0.08, 0.3)
    parts = [revolve([(0, 0), (radius, 0), (top, height), (0, height)], sections)]
    if style == "traffic":
        base = radius * u(rng, 2.2, 2.8)
        plate = height * u(rng, 0.03, 0.06)
        parts = [revolve([(0, 0), (radius, 0), (top, height), (0, height)], sections)]
        parts[0].apply_translation((0, 0, plate))
        parts.append(rounded_box((base, base, plate), (0, 0, plate / 2), plate * 0.4, detail=0))
        for band in range(int(rng.integers(0, 3))):
            z = height * (0.45 + 0.2 * band)
            r = radius + (top - radius) * z / height
            parts.append(
                revolve(
                    [
                        (r * 1.02, z),
                        (r * 0.98 - height * 0.01, z + height * 0.08),
                        (r * 0.9, z + height * 0.08),
                        (r * 0.9, z),
                        (r * 1.02, z),
                    ],
                    sections,
                )
            )
            parts[-1].apply_translation((0, 0, plate))
    return parts


# ---------------------------------------------------------------- vase and flower_pot


def _flowers(rng: np.random.Generator, top: float, spread: float, count: int):
    parts = []
    for _ in range(count):
        angle, lean = u(rng, 0, 2 * np.pi), u(rng, 0.05, 0.5)
        length = u(rng, 0.15, 0.4)
        end = np.array([np.cos(angle) * np.sin(lean), np.sin(angle) * np.sin(lean), np.cos(lean)])
        start = np.array([np.cos(angle) * spread * 0.3, np.sin(angle) * spread * 0.3, top - 0.05])
        tip = start + end * length
        parts.append(rod(start, tip, 0.003, sections=5))
        bloom = u(rng, 0.015, 0.035)
        parts.append(ellipsoid((bloom, bloom, bloom * u(rng, 0.5, 1.0)), tip, detail=1))
    return parts


def _vase(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("amphora", "cylinder", "bulb", "trumpet", "gourd"))
    height = u(rng, 0.2, 0.6)
    r = height * u(rng, 0.12, 0.3)
    knots = {
        "amphora": [(r * 0.5, 0), (r, 0.4), (r * 0.45, 0.8), (r * 0.4, 0.9), (r * 0.6, 1.0)],
        "cylinder": [(r * 0.9, 0), (r, 0.5), (r * u(rng, 0.8, 1.1), 1.0)],
        "bulb": [(r * 0.6, 0), (r * 1.2, 0.3), (r * 0.3, 0.75), (r * 0.25, 0.9), (r * 0.4, 1.0)],
        "trumpet": [(r * 0.6, 0), (r * 0.35, 0.3), (r * 0.45, 0.7), (r * 1.0, 1.0)],
        "gourd": [(r * 0.6, 0), (r, 0.25), (r * 0.5, 0.5), (r * 0.75, 0.7), (r * 0.35, 1.0)],
    }[style]
    knots = [(kr * u(rng, 0.85, 1.15), kz * height) for kr, kz in knots]
    outline = smooth_profile(knots, int(rng.integers(10, 40)))
    sections = _sections(rng, 6, 48) if style == "cylinder" else _sections(rng, 16, 48)
    parts = [
        vessel(outline[:, 0], outline[:, 1], r * u(rng, 0.05, 0.1), sections, floor=height * 0.1)
    ]
    if style == "amphora" and rng.random() < 0.8:  # two handles
        for side in (0, np.pi):
            handle = _handle(r * 0.45, height * 0.55, height * 0.88, r * 0.7, r * 0.07)
            parts.append(rotate(handle, side, (0, 0, 1)))
    if rng.random() < 0.35:
        parts += _flowers(rng, height, knots[-1][0], int(rng.integers(3, 9)))
    return parts


def _pot_body(rng: np.random.Generator, height: float, top_r: float) -> list[trimesh.Trimesh]:
    """A planter with a rim and a little soil showing, square or round, maybe on a saucer."""
    base_r = top_r * u(rng, 0.6, 0.9)
    wall = top_r * u(rng, 0.05, 0.1)
    parts = []
    if rng.random() < 0.3:  # a square planter: an extruded rounded square, hollow
        side = 2 * top_r
        corner = side * u(rng, 0.02, 0.15)
        ring = rounded_rectangle(side, side, corner).difference(
            rounded_rectangle(side - 2 * wall, side - 2 * wall, corner)
        )
        parts.append(prism(ring, height, offset=height / 2))
        parts.append(box((side, side, wall), (0, 0, wall / 2)))
        soil = box((side - 2 * wall, side - 2 * wall, wall), (0, 0, height * 0.85))
    else:
        t = np.linspace(0, 1, int(rng.integers(3, 12)))
        radii = base_r + (top_r - base_r) * t ** u(rng, 0.6, 1.5)
        sections = _sections(rng, 10, 48)
        parts.append(vessel(radii, height * t, wall, sections))
        rim = height * u(rng, 0.08, 0.2)
        band = trimesh.creation.annulus(top_r - wall, top_r * 1.08, rim, sections=sections)
        parts.append(band.apply_translation((0, 0, height - rim / 2)))
        soil = cylinder(top_r - wall, wall, (0, 0, height * 0.85), sections=sections)
        if rng.random() < 0.4:  # a saucer
            parts.append(
                vessel([base_r * 1.3, top_r * 1.2], [-height * 0.06, 0.0], wall * 0.5, sections)
            )
    parts.append(soil)
    return parts


def _leaf(
    rng: np.random.Generator, base: np.ndarray, direction: np.ndarray, length: float, width: float
) -> trimesh.Trimesh:
    """A thin, arching leaf blade from `base` towards `direction`."""
    rows, columns = int(rng.integers(5, 9)), 3
    t = np.linspace(0, 1, rows)[:, None]
    s = np.linspace(-1, 1, columns)[None, :]
    direction = direction / np.linalg.norm(direction)
    side = np.cross(direction, (0, 0, 1))
    side = side / (np.linalg.norm(side) + 1e-9)
    droop = u(rng, 0.1, 0.6) * length
    half_width = width / 2 * np.sin(np.pi * np.clip(t, 0.05, 0.95)) ** 0.8
    grid = (
        base
        + direction * length * t[..., None]
        + side * (half_width * s)[..., None]
        - np.array([0, 0, 1.0]) * (droop * t**2)[..., None]
        + np.array([0, 0, 1.0]) * (np.abs(s) * width * 0.15)[..., None]
    )
    return sheet(grid, width * 0.04)


def _foliage(rng: np.random.Generator, base_z: float, height: float, spread: float):
    """Stems fanning out of a pot with leaves along them."""
    parts = []
    for _ in range(int(rng.integers(3, 8))):
        angle, lean = u(rng, 0, 2 * np.pi), u(rng, 0.1, 0.7)
        direction = np.array(
            [np.cos(angle) * np.sin(lean), np.sin(angle) * np.sin(lean), np.cos(lean)]
        )
        start = np.array([0.0, 0.0, base_z])
        tip = start + direction * height * u(rng, 0.6, 1.0)
        parts.append(rod(start, tip, height * 0.008, sections=5))
        for _k in range(int(rng.integers(2, 6))):
            at = start + (tip - start) * u(rng, 0.3, 1.0)
            out = np.array(
                [
                    np.cos(angle + u(rng, -1.2, 1.2)),
                    np.sin(angle + u(rng, -1.2, 1.2)),
                    u(rng, -0.1, 0.8),
                ]
            )
            parts.append(_leaf(rng, at, out, spread * u(rng, 0.4, 0.8), spread * u(rng, 0.12, 0.3)))
    return parts


def _flower_pot(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    height = u(rng, 0.12, 0.45)
    top_r = height * u(rng, 0.45, 0.8)
    parts = _pot_body(rng, height, top_r)
    contents = pick(rng, ("empty", "empty", "sprouts", "small plant"))
    if contents == "sprouts":
        parts += _flowers(rng, height * 0.9, top_r, int(rng.integers(2, 6)))
    elif contents == "small plant":  # smaller than the pot, unlike a plant
        parts += _foliage(rng, height * 0.85, height * u(rng, 0.3, 0.6), top_r * 0.6)
    return parts


# ---------------------------------------------------------------- plant


def _cactus_body(rng: np.random.Generator, start, end, radius: float, ribs: int):
    """A capsule with `ribs` lengthwise ridges."""
    body = limb(start, end, radius, count=int(rng.integers(6, 12)))
    axis = np.asarray(end, float) - np.asarray(start, float)
    axis /= np.linalg.norm(axis)
    first = np.cross(axis, (0.3, 0.2, 1.0))
    first /= np.linalg.norm(first)
    second = np.cross(axis, first)
    local = body.vertices - np.asarray(start, float)
    radial = local - np.outer(local @ axis, axis)
    angle = np.arctan2(radial @ second, radial @ first)
    body.vertices += radial * (0.08 * np.cos(ribs * angle))[:, None]
    return body


def _plant(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("leafy", "cactus", "tree", "grass"))
    pot_h = u(rng, 0.15, 0.35)
    pot_r = pot_h * u(rng, 0.5, 0.8)
    parts = _pot_body(rng, pot_h, pot_r) if rng.random() < 0.85 else []
    soil = pot_h * 0.85 if parts else 0.0
    size = pot_h * u(rng, 2.0, 5.0)
    if style == "leafy":
        parts += _foliage(rng, soil, size, size * u(rng, 0.25, 0.45))
    elif style == "cactus":
        radius = size * u(rng, 0.06, 0.12)
        ribs = int(rng.integers(6, 14))
        if rng.random() < 0.35:  # barrel cactus
            barrel = size * u(rng, 0.15, 0.3)
            parts.append(
                _cactus_body(rng, (0, 0, soil + barrel), (0, 0, soil + barrel * 1.3), barrel, ribs)
            )
        else:  # saguaro with arms
            top = soil + size
            parts.append(_cactus_body(rng, (0, 0, soil), (0, 0, top), radius, ribs))
            for _ in range(int(rng.integers(0, 4))):
                angle, at = u(rng, 0, 2 * np.pi), soil + size * u(rng, 0.3, 0.7)
                reach = size * u(rng, 0.12, 0.25)
                elbow = np.array([np.cos(angle) * reach, np.sin(angle) * reach, at])
                parts.append(_cactus_body(rng, (0, 0, at), elbow, radius * 0.7, ribs))
                parts.append(
                    _cactus_body(
                        rng, elbow, elbow + (0, 0, size * u(rng, 0.2, 0.4)), radius * 0.7, ribs
                    )
                )
    elif style == "tree":  # a small tree or bonsai: a trunk with branches and leaf blobs
        trunk_top = np.array(
            [u(rng, -0.1, 0.1) * size, u(rng, -0.1, 0.1) * size, soil + size * 0.6]
        )
        parts.append(
            tube([(0, 0, soil), (0, 0, soil + size * 0.3), trunk_top], size * 0.03, sections=8)
        )
        for _ in range(int(rng.integers(2, 6))):
            angle = u(rng, 0, 2 * np.pi)
            tip = trunk_top + (
                np.cos(angle) * size * 0.3,
                np.sin(angle) * size * 0.3,
                u(rng, -0.1, 0.3) * size,
            )
            parts.append(rod(trunk_top, tip, size * 0.015, sections=6))
            blob = size * u(rng, 0.12, 0.25)
            parts.append(
                ellipsoid(
                    (blob, blob, blob * u(rng, 0.5, 0.9)), tip, detail=int(rng.integers(1, 3))
                )
            )
    else:  # grass, palm or snake plant: long blades arching out of the pot
        for _ in range(int(rng.integers(6, 16))):
            angle = u(rng, 0, 2 * np.pi)
            out = np.array(
                [np.cos(angle) * u(rng, 0.1, 0.6), np.sin(angle) * u(rng, 0.1, 0.6), 1.0]
            )
            parts.append(
                _leaf(
                    rng,
                    np.array([0, 0, soil]),
                    out,
                    size * u(rng, 0.5, 1.0),
                    size * u(rng, 0.04, 0.12),
                )
            )
    return parts


# ---------------------------------------------------------------- lamp


def _shade(
    rng: np.random.Generator, bottom_r: float, top_r: float, height: float, sections: int
) -> trimesh.Trimesh:
    """An open lamp shade: a thin frustum or bell with no caps."""
    t = np.linspace(0, 1, int(rng.integers(2, 10)))
    bell = t ** u(rng, 0.5, 1.0)
    radii = bottom_r + (top_r - bottom_r) * bell
    wall = max(bottom_r, top_r) * 0.03
    ring = np.vstack(
        (np.column_stack((radii, height * t)), np.column_stack((radii - wall, height * t))[::-1])
    )
    return revolve(np.vstack((ring, ring[:1])), sections)


def _lamp(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("desk", "floor", "table", "pendant", "arc"))
    sections = _sections(rng, 12, 48)
    if style == "desk":  # a jointed arm with a cone shade
        base_r = u(rng, 0.07, 0.12)
        parts = [cylinder(base_r, 0.025, (0, 0, 0.0125), sections=sections)]
        lower, upper = u(rng, 0.2, 0.4), u(rng, 0.2, 0.4)
        a1, a2 = u(rng, -0.5, 0.3), u(rng, 0.6, 1.6)
        joint1 = np.array([0, 0, 0.025])
        joint2 = joint1 + lower * np.array([np.sin(a1), 0, np.cos(a1)])
        head = joint2 + upper * np.array([np.sin(a2), 0, np.cos(a2)])
        arm = u(rng, 0.006, 0.012)
        parts += [rod(joint1, joint2, arm), rod(joint2, head, arm)]
        parts += [ellipsoid((arm * 2,) * 3, p, detail=1) for p in (joint2, head)]
        shade_h = u(rng, 0.08, 0.15)
        shade = _shade(rng, u(rng, 0.05, 0.1), u(rng, 0.015, 0.03), shade_h, sections)
        shade.apply_translation(head - (0, 0, shade_h))
        rotate(shade, u(rng, 0.2, 1.0), (0, 1, 0), head)  # aimed forward and down
        return parts + [shade]
    if style in ("floor", "table"):
        height = u(rng, 1.3, 1.9) if style == "floor" else u(rng, 0.35, 0.7)
        if style == "floor":
            parts = [
                cylinder(u(rng, 0.12, 0.2), 0.03, (0, 0, 0.015), sections=sections),
                rod((0, 0, 0), (0, 0, height), u(rng, 0.01, 0.02)),
            ]
        else:  # a turned or vase-shaped base
            base_r = height * u(rng, 0.12, 0.25)
            outline = smooth_profile(
                [
                    (base_r * 0.7, 0),
                    (base_r, height * 0.25),
                    (base_r * u(rng, 0.3, 0.9), height * 0.5),
                    (base_r * 0.15, height * 0.6),
                ],
                int(rng.integers(6, 20)),
            )
            parts = [
                revolve(np.vstack(([[0, 0]], outline, [[0, height * 0.6]])), sections),
                rod((0, 0, height * 0.55), (0, 0, height * 0.8), height * 0.012),
            ]
        shade_h = height * u(rng, 0.2, 0.4) if style == "table" else u(rng, 0.2, 0.4)
        bottom = shade_h * u(rng, 0.6, 1.3)
        shade = _shade(rng, bottom, bottom * u(rng, 0.5, 1.0), shade_h, sections)
        shade.apply_translation((0, 0, height * (0.7 if style == "table" else 0.85)))
        return parts + [shade]
    if style == "pendant":  # hanging from a ceiling rose on a cord
        drop = u(rng, 0.4, 1.2)
        shade_r = u(rng, 0.12, 0.3)
        dome = revolve(
            np.vstack(
                (
                    smooth_profile(
                        [
                            (shade_r, 0),
                            (shade_r * 0.85, shade_r * 0.4),
                            (shade_r * 0.15, shade_r * 0.7),
                        ],
                        int(rng.integers(4, 14)),
                    ),
                    [[0.0, shade_r * 0.72]],
                )
            ),
            sections,
        )
        parts = [
            dome,
            rod((0, 0, shade_r * 0.7), (0, 0, drop), 0.004, sections=5),
            cylinder(0.06, 0.03, (0, 0, drop), sections=16),
        ]
        if rng.random() < 0.6:  # the bulb
            parts.append(ellipsoid((0.03, 0.03, 0.04), (0, 0, shade_r * 0.2), detail=1))
        return parts
    # an arc floor lamp: a heavy base, a long bowed arm and a dome hanging off its end
    reach, height = u(rng, 0.8, 1.5), u(rng, 1.5, 2.1)
    parts = [rounded_box((0.3, 0.3, 0.08), (0, 0, 0.04), 0.02, detail=0)]
    path = arc((reach, 0, 0.08), 1.0, np.pi, np.pi / 2 - 0.3, 16, plane="xz")
    path[:, 0] = reach + (path[:, 0] - reach) * reach
    path[:, 2] = 0.08 + (path[:, 2] - 0.08) * (height - 0.08)
    parts.append(tube(path, 0.012, sections=8))
    shade = _shade(rng, u(rng, 0.15, 0.25), 0.03, u(rng, 0.12, 0.2), sections)
    shade.apply_translation(path[-1] - (0, 0, 0.2))
    return parts + [shade, rod(path[-1], path[-1] - (0, 0, 0.05), 0.008)]


FAMILIES: dict[str, Callable[[np.random.Generator], list[trimesh.Trimesh]]] = {
    "bottle": _bottle,
    "bowl": _bowl,
    "cone": _cone,
    "cup": _cup,
    "flower_pot": _flower_pot,
    "lamp": _lamp,
    "plant": _plant,
    "vase": _vase,
}
