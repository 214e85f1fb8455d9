"""Held-out families for open-set tests: anchor, bicycle, dumbbell, fan, hourglass,
ladder, teapot and umbrella. None of them is one of ModelNet40's forty classes; some are
near them on purpose (a teapot beside cup and vase, a ladder beside stairs, a fan beside
lamp), so "I don't know" is tested on hard cases as well as easy ones. They are never
part of a training set.
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
    sheet,
    smooth_profile,
    tube,
    u,
    vessel,
)


def _anchor(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    height = u(rng, 0.6, 2.0)
    shank_r = height * u(rng, 0.025, 0.05)
    parts = [
        rod((0, 0, height * 0.1), (0, 0, height * 0.9), shank_r, sections=int(rng.integers(6, 16)))
    ]
    ring = trimesh.creation.torus(
        height * 0.07, shank_r * 0.6, major_sections=int(rng.integers(12, 32)), minor_sections=6
    )
    parts.append(rotate(ring, np.pi / 2, (1, 0, 0)).apply_translation((0, 0, height * 0.97)))
    if rng.random() < 0.7:  # the stock: a bar across, at right angles to the arms
        stock = height * u(rng, 0.3, 0.5)
        parts.append(rod((0, -stock, height * 0.82), (0, stock, height * 0.82), shank_r * 0.8))
        for sy in (-1, 1):
            parts.append(ellipsoid((shank_r * 1.3,) * 3, (0, sy * stock, height * 0.82), detail=1))
    reach = height * u(rng, 0.3, 0.45)
    sweep = u(rng, 0.6, 1.2)  # how far up the arms curl
    path = arc(
        (0, 0, height * 0.1 + reach),
        reach,
        -np.pi / 2 - sweep,
        -np.pi / 2 + sweep,
        int(rng.integers(8, 20)),
        plane="xz",
    )
    parts.append(tube(path, shank_r * 0.9, sections=8))
    fluke = height * u(rng, 0.06, 0.12)
    for end, side in ((path[0], -1), (path[-1], 1)):
        blade = prism(
            [(0, 0), (side * fluke * 0.5, -fluke * 1.2), (side * fluke * 1.2, fluke * 0.2)],
            shank_r * 0.8,
            plane="xz",
        )
        parts.append(blade.apply_translation(end))
    parts.append(ellipsoid((shank_r * 1.6,) * 3, (0, 0, height * 0.1), detail=1))  # the crown
    return parts


def _wheel(rng: np.random.Generator, center, radius: float, spokes: int) -> list[trimesh.Trimesh]:
    center = np.asarray(center, float)
    tyre = trimesh.creation.torus(
        radius,
        radius * 0.06,
        major_sections=int(rng.integers(16, 40)),
        minor_sections=int(rng.integers(4, 8)),
    )
    parts = [rotate(tyre, np.pi / 2, (1, 0, 0)).apply_translation(center)]
    parts.append(cylinder(radius * 0.06, radius * 0.15, center, axis="y", sections=10))
    for k in range(spokes):
        a = 2 * np.pi * k / spokes
        parts.append(
            rod(center, center + radius * np.array((np.cos(a), 0, np.sin(a))), 0.0015, sections=3)
        )
    return parts


def _bicycle(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    wheel_r = u(rng, 0.25, 0.36)
    base = u(rng, 0.95, 1.15) * wheel_r * 3.2
    spokes = int(rng.integers(0, 4)) * 8
    rear, front = np.array((0, 0, wheel_r)), np.array((base, 0, wheel_r))
    parts = _wheel(rng, rear, wheel_r, spokes) + _wheel(rng, front, wheel_r, spokes)
    crank = rear + (base * 0.4, 0, -wheel_r * 0.1)
    seat = crank + (-wheel_r * 0.35, 0, wheel_r * u(rng, 1.5, 2.0))
    head = front + (-wheel_r * 0.45, 0, wheel_r * u(rng, 1.5, 1.9))
    tube_r = u(rng, 0.012, 0.025)
    step_through = rng.random() < 0.3
    top = (crank + seat) / 2 if step_through else seat - (0, 0, wheel_r * 0.1)
    for a, b in (
        (crank, seat),
        (crank, head - (0, 0, 0.08)),
        (top, head),
        (rear, crank),
        (rear, seat),
    ):
        parts.append(rod(a, b, tube_r, sections=int(rng.integers(5, 10))))
    for sy in (-1, 1):  # the fork
        parts.append(rod(head, front + (0, sy * 0.04, 0), tube_r * 0.8, sections=6))
    bar = head + (-0.05, 0, u(rng, 0.08, 0.2))
    parts.append(rod(head, bar, tube_r))
    if rng.random() < 0.5:  # drop bars
        for sy in (-1, 1):
            path = [
                bar + (0, sy * 0.22, 0),
                bar + (0.08, sy * 0.22, -0.04),
                bar + (0.05, sy * 0.22, -0.12),
            ]
            parts.append(tube(path, tube_r * 0.9, sections=6))
    parts.append(rod(bar + (0, -0.25, 0), bar + (0, 0.25, 0), tube_r * 0.9, sections=8))
    parts.append(rod(seat, seat + (0, 0, 0.08), tube_r * 0.8))
    parts.append(ellipsoid((0.13, 0.06, 0.03), seat + (0, 0, 0.1), detail=1))
    parts.append(cylinder(wheel_r * 0.35, 0.01, crank, axis="y", sections=16))  # chainring
    for sy in (-1, 1):  # cranks and pedals
        end = crank + (sy * 0.06, sy * 0.08, -sy * 0.15)
        parts.append(rod(crank + (0, sy * 0.02, 0), end, 0.01, sections=5))
        parts.append(box((0.09, 0.06, 0.02), end + (0, sy * 0.03, 0)))
    return parts


def _dumbbell(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("plates", "hex", "round"))
    bar = u(rng, 0.3, 0.55)
    bar_r = u(rng, 0.012, 0.018)
    parts = [cylinder(bar_r, bar, (0, 0, 0), axis="x", sections=int(rng.integers(8, 20)))]
    grip = bar * u(rng, 0.3, 0.5)
    for sx in (-1, 1):
        if style == "plates":
            x = sx * grip / 2
            for k in range(int(rng.integers(1, 5))):
                r, t = u(rng, 0.06, 0.13) * (1 - 0.15 * k), u(rng, 0.015, 0.035)
                parts.append(
                    cylinder(
                        r, t, (x + sx * t / 2, 0, 0), axis="x", sections=int(rng.integers(12, 40))
                    )
                )
                x += sx * t
            parts.append(cylinder(bar_r * 2, 0.02, (x + sx * 0.01, 0, 0), axis="x", sections=12))
        else:
            head_r, head_l = u(rng, 0.05, 0.1), u(rng, 0.05, 0.12)
            center = (sx * (grip / 2 + head_l / 2), 0, 0)
            if style == "hex":
                parts.append(cylinder(head_r, head_l, center, axis="x", sections=6))
            else:
                parts.append(
                    ellipsoid(
                        (head_l / 2 + head_r * 0.3, head_r, head_r),
                        center,
                        detail=int(rng.integers(1, 3)),
                    )
                )
    return parts


def _fan(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("pedestal", "desk", "ceiling", "box"))
    blades = int(rng.integers(3, 6))
    if style == "ceiling":  # hanging from a rod, long flat blades
        span = u(rng, 0.5, 0.7)
        parts = [
            cylinder(0.1, 0.12, (0, 0, 0.06), sections=24),
            rod((0, 0, 0.12), (0, 0, u(rng, 0.3, 0.6)), 0.012),
        ]
        for k in range(blades):
            blade = prism(
                [(0.1, -0.05), (span, -0.07), (span + 0.03, 0), (span, 0.07), (0.1, 0.05)],
                0.01,
                offset=0.03,
            )
            rotate(blade, 0.15, (1, 0, 0))
            parts.append(rotate(blade, 2 * np.pi * k / blades, (0, 0, 1)))
        return parts
    radius = u(rng, 0.15, 0.25)
    if style == "box":
        side = radius * 2.3
        parts = [box((side, 0.1, 0.03), (0, 0, sy * side / 2 + side / 2)) for sy in (-1, 1)]
        parts += [box((0.03, 0.1, side), (sx * side / 2, 0, side / 2)) for sx in (-1, 1)]
        hub = np.array((0, 0, side / 2))
    else:
        height = u(rng, 1.0, 1.4) if style == "pedestal" else u(rng, 0.25, 0.4)
        parts = [
            cylinder(radius * u(rng, 0.7, 1.1), 0.04, (0, 0, 0.02), sections=24),
            rod((0, 0, 0), (0, 0, height), 0.015),
        ]
        hub = np.array((0, 0, height + radius * 0.3))
        parts.append(limb(hub - (0, 0.05, 0), hub - (0, 0.18, 0), radius * 0.3, 8))  # the motor
    for k in range(blades):
        a = 2 * np.pi * k / blades
        blade = ellipsoid((radius * 0.45, 0.004, radius * 0.22), (radius * 0.5, 0, 0), detail=1)
        rotate(blade, 0.35, (1, 0, 0))
        parts.append(rotate(blade, a, (0, 1, 0)).apply_translation(hub + (0, 0.02, 0)))
    parts.append(cylinder(radius * 0.15, 0.05, hub, axis="y", sections=16))
    if style != "box":  # the guard: rings and radial wires
        for r in (radius * 1.05, radius * 0.6):
            ring = trimesh.creation.torus(r, 0.004, major_sections=32, minor_sections=4)
            parts.append(rotate(ring, np.pi / 2, (1, 0, 0)).apply_translation(hub + (0, 0.06, 0)))
        for k in range(int(rng.integers(8, 20))):
            a = 2 * np.pi * k / 16
            parts.append(
                rod(
                    hub + (0, 0.07, 0),
                    hub + (radius * np.cos(a), 0.06, radius * np.sin(a)),
                    0.002,
                    sections=3,
                )
            )
    return parts


def _hourglass(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    height = u(rng, 0.15, 0.35)
    bulb = height * u(rng, 0.18, 0.3)
    neck = bulb * u(rng, 0.05, 0.15)
    plate = height * u(rng, 0.04, 0.08)
    glass_h = height - 2 * plate
    knots = [
        (neck * 2, 0),
        (bulb, glass_h * 0.2),
        (bulb * 0.9, glass_h * 0.38),
        (neck, glass_h * 0.5),
    ]
    lower = smooth_profile(knots, int(rng.integers(5, 14)))
    upper = lower[::-1].copy()
    upper[:, 1] = glass_h - upper[:, 1]
    profile = np.vstack(([[0, 0]], lower, upper[1:], [[0, glass_h]]))
    sections = int(rng.integers(12, 40))
    parts = [revolve(profile, sections).apply_translation((0, 0, plate))]
    square = rng.random() < 0.4
    width = bulb * u(rng, 1.2, 1.5)
    for z in (plate / 2, height - plate / 2):
        if square:
            parts.append(box((2 * width, 2 * width, plate), (0, 0, z)))
        else:
            parts.append(cylinder(width, plate, (0, 0, z), sections=sections))
    posts = int(rng.integers(2, 5))
    for k in range(posts):
        a = 2 * np.pi * k / posts + np.pi / 4
        x, y = np.cos(a) * width * 0.85, np.sin(a) * width * 0.85
        if rng.random() < 0.5:
            parts.append(rod((x, y, plate), (x, y, height - plate), height * 0.015))
        else:  # a turned post
            turned = smooth_profile(
                [
                    (height * 0.02, 0),
                    (height * 0.035, glass_h * 0.3),
                    (height * 0.015, glass_h * 0.5),
                    (height * 0.035, glass_h * 0.7),
                    (height * 0.02, glass_h),
                ],
                9,
            )
            post = revolve(np.vstack(([[0, 0]], turned, [[0, glass_h]])), 8)
            parts.append(post.apply_translation((x, y, plate)))
    return parts


def _ladder(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("straight", "step", "step", "library"))
    rungs = int(rng.integers(4, 12))
    width = u(rng, 0.35, 0.55)
    rail = u(rng, 0.02, 0.04)
    if style == "straight":  # leaning on a wall
        length = rungs * u(rng, 0.25, 0.3)
        lean = u(rng, 0.15, 0.3)
        parts = [box((rail, rail * 2, length), (sx * width / 2, 0, length / 2)) for sx in (-1, 1)]
        parts += [
            rod(
                (-width / 2, 0, (k + 0.5) * length / rungs),
                (width / 2, 0, (k + 0.5) * length / rungs),
                rail * 0.4,
                sections=int(rng.integers(4, 10)),
            )
            for k in range(rungs)
        ]
        for part in parts:
            rotate(part, lean, (1, 0, 0))
        return parts
    height = rungs * u(rng, 0.2, 0.26)
    spread = height * u(rng, 0.25, 0.4)
    parts = []
    front = [np.array((sx * width / 2, spread / 2, 0)) for sx in (-1, 1)]
    apex = [np.array((sx * width / 2 * 0.85, 0, height)) for sx in (-1, 1)]
    back = [np.array((sx * width / 2, -spread / 2, 0)) for sx in (-1, 1)]
    for f, a, b in zip(front, apex, back, strict=True):
        parts.append(rod(f, a, rail, sections=4))
        parts.append(rod(b, a, rail * 0.8, sections=4))
    for k in range(1, rungs):
        t = k / rungs
        left, right = front[0] + (apex[0] - front[0]) * t, front[1] + (apex[1] - front[1]) * t
        if style == "step":  # flat treads
            parts.append(box((right[0] - left[0], 0.09, 0.02), ((left + right) / 2)))
        else:
            parts.append(rod(left, right, rail * 0.5, sections=6))
    parts.append(box((width, spread * 0.4, 0.03), (0, 0, height)))  # the top platform
    if style == "library":  # a handrail hoop
        path = arc((0, spread * 0.1, height), width / 2, 0, np.pi, 10, plane="xz")
        path[:, 2] = height + (path[:, 2] - height) * 0.6
        parts.append(tube(path, rail * 0.5, sections=6))
    return parts


def _teapot(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    radius = u(rng, 0.07, 0.12)
    height = radius * u(rng, 1.0, 1.8)
    knots = [(radius * 0.65, 0), (radius, height * u(rng, 0.3, 0.5)), (radius * 0.55, height)]
    outline = smooth_profile(knots, int(rng.integers(8, 24)))
    sections = int(rng.integers(16, 48))
    parts = [vessel(outline[:, 0], outline[:, 1], radius * 0.05, sections)]
    lid_r = outline[-1, 0] * 1.05
    lid = smooth_profile([(lid_r, 0), (lid_r * 0.6, radius * 0.2), (lid_r * 0.15, radius * 0.3)], 6)
    parts.append(
        revolve(np.vstack(([[0, 0]], lid, [[0, radius * 0.3]])), sections).apply_translation(
            (0, 0, height)
        )
    )
    parts.append(ellipsoid((radius * 0.1,) * 3, (0, 0, height + radius * 0.33), detail=1))
    spout_z = height * u(rng, 0.15, 0.35)
    reach = radius * u(rng, 0.6, 1.0)
    spout = [
        (radius * 0.8, 0, spout_z),
        (radius + reach * 0.5, 0, spout_z + height * 0.25),
        (radius + reach, 0, spout_z + height * u(rng, 0.55, 0.8)),
    ]
    parts.append(tube(spout, radius * u(rng, 0.08, 0.14), sections=int(rng.integers(6, 12))))
    if rng.random() < 0.7:  # a side handle
        path = arc((-radius * 0.9, 0, height * 0.55), 1.0, np.pi / 2, 3 * np.pi / 2, 12, plane="xz")
        path[:, 0] = -radius * 0.9 + (path[:, 0] + radius * 0.9) * radius * 0.6
        path[:, 2] = height * 0.55 + (path[:, 2] - height * 0.55) * height * 0.35
        parts.append(tube(path, radius * 0.07, sections=8))
    else:  # a bail handle over the top
        path = arc((0, 0, height), radius * 0.8, 0, np.pi, 12, plane="yz")
        parts.append(tube(path, radius * 0.05, sections=6))
    return parts


def _umbrella(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    style = pick(rng, ("open", "closed", "patio"))
    ribs = int(rng.integers(6, 11))
    if style == "closed":  # a furled spindle on its handle
        length = u(rng, 0.7, 1.0)
        furl = smooth_profile(
            [(0.008, 0.15), (0.045, 0.35), (0.02, length - 0.05), (0.004, length)],
            int(rng.integers(6, 16)),
        )
        parts = [revolve(np.vstack(([[0, 0.15]], furl, [[0, length]])), ribs)]
        parts.append(rod((0, 0, 0.06), (0, 0, 0.2), 0.006))
        hook = arc((0.04, 0, 0.06), 0.04, 0, -np.pi, 10, plane="xz")
        parts.append(tube(hook, 0.012, sections=8))
        return parts
    radius = u(rng, 0.45, 0.6) if style == "open" else u(rng, 1.0, 1.5)
    pole = u(rng, 0.7, 0.9) if style == "open" else u(rng, 2.0, 2.4)
    rise = radius * u(rng, 0.25, 0.45)
    rows = int(rng.integers(4, 10))
    t = np.linspace(0, 1, rows)[:, None]
    a = np.linspace(0, 2 * np.pi, ribs * 3 + 1)[None, :]
    scallop = 1 - 0.12 * np.abs(np.sin(a * ribs / 2))  # the fabric sags between ribs
    r = radius * t * np.where(t > 0, scallop, 1)
    z = pole + rise * (1 - t**2)
    grid = np.stack((r * np.cos(a), r * np.sin(a), z + 0 * a), -1)
    parts = [sheet(grid, 0.004)]
    parts.append(rod((0, 0, 0.1), (0, 0, pole + rise + 0.05), 0.01 if style == "open" else 0.025))
    for k in range(ribs):  # ribs under the canopy
        ang = 2 * np.pi * k / ribs
        parts.append(
            rod(
                (0, 0, pole + rise * 0.7),
                (radius * np.cos(ang), radius * np.sin(ang), pole),
                0.003,
                sections=3,
            )
        )
    if style == "open":
        hook = arc((0.04, 0, 0.1), 0.04, 0, -np.pi, 10, plane="xz")
        parts.append(tube(hook, 0.012, sections=8))
    else:  # a weighted base
        parts.append(cylinder(0.25, 0.08, (0, 0, 0.04), sections=24))
    return parts


FAMILIES: dict[str, Callable[[np.random.Generator], list[trimesh.Trimesh]]] = {
    "anchor": _anchor,
    "bicycle": _bicycle,
    "dumbbell": _dumbbell,
    "fan": _fan,
    "hourglass": _hourglass,
    "ladder": _ladder,
    "teapot": _teapot,
    "umbrella": _umbrella,
}
