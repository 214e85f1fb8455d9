"""The ten ModelNet10 families: furniture built from boxes, cylinders and rounded blocks.

Each class is a parametric family with wide variation (proportions, part counts, leg and
back styles, arms, drawers, thickness), and the common kinds of its class as styles: beds
on a solid base, on a tube or post frame (iron and day beds) and stacked (bunk and loft
beds); chairs with legs and upholstered armchairs; straight and corner sofas. The
confusable pairs of ModelNet10 are kept confusable on purpose: desk and table share tops
and legs, dresser and night_stand are both drawer cabinets, bed and sofa are both long
padded slabs with a raised end or back, an armchair is a short sofa.
"""

from __future__ import annotations

import numpy as np
import trimesh

from gmvit.data.synth.parts import (
    SECTIONS,
    Family,
    box,
    cylinder,
    rod,
    rounded_box,
    sheet,
    stand,
    u,
)


def legs(
    rng: np.random.Generator,
    width: float,
    depth: float,
    height: float,
    *,
    styles: tuple[str, ...] = ("square", "round", "pedestal", "trestle"),
    inset: float | None = None,
) -> list[trimesh.Trimesh]:
    """Supports under a top spanning x in [-width/2, width/2], y in [-depth/2, depth/2],
    standing on z = 0 and reaching z = height."""
    style = styles[int(rng.integers(len(styles)))]
    thickness = u(rng, 0.03, 0.08) * max(1.0, min(width, depth) / 0.6)
    inset = u(rng, 0.0, 0.12) * min(width, depth) if inset is None else inset
    x = width / 2 - thickness / 2 - inset
    y = depth / 2 - thickness / 2 - inset
    corners = [(sx * x, sy * y) for sx in (-1, 1) for sy in (-1, 1)]
    if style == "square":
        return [box((thickness, thickness, height), (cx, cy, height / 2)) for cx, cy in corners]
    if style == "round":
        return [cylinder(thickness / 2, height, (cx, cy, height / 2)) for cx, cy in corners]
    if style == "pedestal":
        column = u(rng, 0.05, 0.12) * max(1.0, min(width, depth) / 0.6)
        foot = u(rng, 0.25, 0.45) * min(width, depth)
        return [
            cylinder(column, height, (0, 0, height / 2)),
            cylinder(foot, 0.03, (0, 0, 0.015)),
        ]
    # trestle: two end panels joined by a stretcher
    panel = u(rng, 0.03, 0.07)
    parts = [box((panel, depth - 2 * inset, height), (sx * x, 0, height / 2)) for sx in (-1, 1)]
    parts.append(box((2 * x, panel, panel), (0, 0, u(rng, 0.15, 0.4) * height)))
    return parts


def drawer_fronts(
    rng: np.random.Generator,
    width: float,
    height: float,
    z0: float,
    y_front: float,
    rows: int,
    columns: int,
) -> list[trimesh.Trimesh]:
    """Slightly proud drawer fronts with knobs over a face at y = y_front."""
    gap = 0.015
    drawer_w = (width - gap * (columns + 1)) / columns
    drawer_h = (height - gap * (rows + 1)) / rows
    knob = u(rng, 0.01, 0.025)
    parts = []
    for r in range(rows):
        for c in range(columns):
            cx = -width / 2 + gap + drawer_w / 2 + c * (drawer_w + gap)
            cz = z0 + gap + drawer_h / 2 + r * (drawer_h + gap)
            parts.append(box((drawer_w, 0.02, drawer_h), (cx, y_front + 0.01, cz)))
            parts.append(box((knob * 3, knob * 2, knob), (cx, y_front + 0.02 + knob, cz)))
    return parts


# ---------------------------------------------------------------- the ten families


def _bathtub(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    length, width, height = u(rng, 1.4, 1.9), u(rng, 0.65, 0.95), u(rng, 0.4, 0.65)
    wall = u(rng, 0.04, 0.12)
    base_z = u(rng, 0.0, 0.15) if rng.random() < 0.5 else 0.0
    parts = [box((length, width, wall), (0, 0, base_z + wall / 2))]
    parts += [
        box((length, wall, height), (0, sy * (width - wall) / 2, base_z + height / 2))
        for sy in (-1, 1)
    ]
    parts += [
        box((wall, width, height), (sx * (length - wall) / 2, 0, base_z + height / 2))
        for sx in (-1, 1)
    ]
    if rng.random() < 0.5:  # a rolled rim
        parts += [
            cylinder(wall * 0.8, length, (0, sy * (width - wall) / 2, base_z + height), axis="x")
            for sy in (-1, 1)
        ]
    if base_z > 0:  # clawed feet
        parts += [
            cylinder(0.04, base_z, (sx * length * 0.4, sy * width * 0.35, base_z / 2))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
    if rng.random() < 0.6:  # the tap
        tap_z = base_z + height + 0.08
        parts.append(cylinder(0.02, 0.16, (length / 2 - wall, 0, tap_z - 0.08)))
        parts.append(cylinder(0.015, 0.12, (length / 2 - wall - 0.06, 0, tap_z), axis="x"))
    return parts


def padded_slab(
    rng: np.random.Generator, length: float, depth: float, z_top: float, leg_height: float
) -> list[trimesh.Trimesh]:
    """The long padded body shared by beds and sofas, on short feet."""
    parts = [box((length, depth, z_top - leg_height), (0, 0, (z_top + leg_height) / 2))]
    if leg_height > 0:
        parts += legs(rng, length, depth, leg_height, styles=("square", "round"), inset=0.02)
    return parts


def _one_style(
    rng: np.random.Generator, styles: tuple[tuple[float, Family], ...], otherwise: Family
) -> list[trimesh.Trimesh]:
    """One draw in [0, 1) picks the style: the first whose bound it is under, else
    `otherwise`."""
    draw = rng.random()
    for bound, style in styles:
        if draw < bound:
            return style(rng)
    return otherwise(rng)


def _bed(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    return _one_style(rng, ((0.3, _frame_bed), (0.45, _bunk_bed)), _base_bed)


def _pillows_and_blanket(
    rng: np.random.Generator, length: float, width: float, top: float
) -> list[trimesh.Trimesh]:
    """Pillows at the head end (x < 0) and maybe a folded blanket on a mattress whose top is
    at z = `top`."""
    parts = []
    pillows = int(rng.integers(0, 3)) if width > 1.3 else int(rng.integers(0, 2))
    for p in range(pillows):
        y = 0.0 if pillows == 1 else (p - 0.5) * width / 2
        parts.append(
            box(
                (0.35, min(0.6, width / max(pillows, 1) - 0.05), 0.12),
                (-length / 2 + 0.25, y, top + 0.06),
            )
        )
    if rng.random() < 0.5:  # a folded blanket
        parts.append(box((length * 0.45, width * 1.02, 0.04), (length * 0.2, 0, top + 0.02)))
    return parts


def _base_bed(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A mattress on a solid base, a headboard panel, maybe a footboard."""
    length, width = u(rng, 1.8, 2.2), u(rng, 0.9, 1.9)
    leg = u(rng, 0.0, 0.25)
    top = leg + u(rng, 0.25, 0.45)
    parts = padded_slab(rng, length, width, top, leg)
    headboard_h = top + u(rng, 0.2, 0.8)
    board = u(rng, 0.04, 0.12)
    parts.append(box((board, width, headboard_h), (-length / 2 - board / 2, 0, headboard_h / 2)))
    if rng.random() < 0.5:  # footboard
        foot_h = top + u(rng, 0.0, 0.3)
        parts.append(box((board, width, foot_h), (length / 2 + board / 2, 0, foot_h / 2)))
    return parts + _pillows_and_blanket(rng, length, width, top)


def _frame_bed(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A mattress raised on a frame of thin posts and rails, open underneath: iron and
    wooden frame beds; a third are day beds, with a railed back along one long side."""
    length, width = u(rng, 1.8, 2.2), u(rng, 0.8, 1.7)
    deck, mattress = u(rng, 0.25, 0.5), u(rng, 0.12, 0.25)
    top = deck + mattress
    r = u(rng, 0.01, 0.03)
    round_tubes = rng.random() < 0.6

    def post(x: float, y: float, height: float) -> trimesh.Trimesh:
        if round_tubes:
            return cylinder(r, height, (x, y, height / 2), sections=8)
        return box((2 * r, 2 * r, height), (x, y, height / 2))

    parts = [box((length, width, mattress), (0, 0, deck + mattress / 2))]
    rail = u(rng, 0.04, 0.12)
    parts += [box((length, 2 * r, rail), (0, sy * width / 2, deck - rail / 2)) for sy in (-1, 1)]
    ends = ((-1, top + u(rng, 0.3, 0.8)), (1, top + u(rng, -0.1, 0.45)))
    for sx, height in ends:
        x = sx * length / 2
        parts += [post(x, sy * width / 2, height) for sy in (-1, 1)]
        if height < top + 0.05:  # a low foot end: two posts and nothing between
            continue
        parts.append(rod((x, -width / 2, height - r), (x, width / 2, height - r), r))
        parts.append(rod((x, -width / 2, deck), (x, width / 2, deck), r))
        bars = int(rng.integers(3, 14))
        for b in range(bars):
            y = -width / 2 + (b + 1) * width / (bars + 1)
            parts.append(rod((x, y, deck), (x, y, height - r), r * 0.6, sections=6))
    if rng.random() < 1 / 3:  # a day bed: a railed back along one long side
        y = -width / 2
        back = top + u(rng, 0.25, 0.5)
        parts.append(rod((-length / 2, y, back), (length / 2, y, back), r))
        bars = int(rng.integers(4, 16))
        for b in range(bars):
            x = -length / 2 + (b + 1) * length / (bars + 1)
            parts.append(rod((x, y, top), (x, y, back), r * 0.6, sections=6))
    return parts + _pillows_and_blanket(rng, length, width, top)


def _bunk_bed(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """Two mattresses stacked between four tall posts, a guard rail and a ladder; a third
    are loft beds, with the lower bunk left out and a desk or shelves under the upper."""
    length, width = u(rng, 1.9, 2.1), u(rng, 0.8, 1.2)
    post_h = u(rng, 1.5, 1.9)
    post = u(rng, 0.04, 0.08)
    upper = post_h - u(rng, 0.35, 0.6)
    loft = rng.random() < 1 / 3
    mattress, board = u(rng, 0.1, 0.2), u(rng, 0.08, 0.2)
    x, y = length / 2 - post / 2, width / 2 - post / 2
    parts = [
        box((post, post, post_h), (sx * x, sy * y, post_h / 2)) for sx in (-1, 1) for sy in (-1, 1)
    ]
    levels = [upper] if loft else [u(rng, 0.15, 0.35), upper]
    for deck in levels:
        parts += [box((length, post / 2, board), (0, sy * y, deck)) for sy in (-1, 1)]
        parts += [box((post / 2, width, board), (sx * x, 0, deck)) for sx in (-1, 1)]
        parts.append(
            box((length - 2 * post, width - 2 * post, mattress), (0, 0, deck + mattress / 2))
        )
    # the ends: panels or rails between the posts above the upper deck
    for sx in (-1, 1):
        if rng.random() < 0.5:
            parts.append(
                box((post / 2, width, post_h - upper - 0.1), (sx * x, 0, (post_h + upper) / 2))
            )
        else:
            parts.append(box((post / 2, width, post / 2), (sx * x, 0, post_h - post / 4)))
    guard = upper + u(rng, 0.2, 0.35)
    parts.append(box((length * 0.6, post / 2, post / 2), (-length * 0.2, y, guard)))
    # the ladder on the front side: two rails and rungs
    ladder_x = length / 2 - u(rng, 0.25, 0.45)
    for dx in (-0.2, 0.2):
        parts.append(box((0.04, 0.04, upper + 0.3), (ladder_x + dx, y + 0.04, (upper + 0.3) / 2)))
    rungs = int(rng.integers(3, 7))
    for k in range(rungs):
        z = (k + 1) * upper / (rungs + 1)
        parts.append(rod((ladder_x - 0.2, y + 0.04, z), (ladder_x + 0.2, y + 0.04, z), 0.015, 6))
    if loft:
        if rng.random() < 0.5:  # a desk under the bed
            top = u(rng, 0.7, 0.78)
            parts.append(box((length * 0.6, width * 0.8, 0.03), (-length * 0.15, 0, top)))
            parts.append(box((0.03, width * 0.8, top), (-length * 0.45, 0, top / 2)))
        else:  # shelves
            shelf_h = u(rng, 0.6, upper - 0.1)
            parts.append(box((0.4, width * 0.8, shelf_h), (-length / 2 + 0.25, 0, shelf_h / 2)))
    return parts


def _sofa(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    return _one_style(rng, ((0.25, _corner_sofa),), _straight_sofa)


def _back_cushions(
    rng: np.random.Generator,
    x0: float,
    x1: float,
    y_back: float,
    seat: float,
    back_h: float,
    most: int = 3,
) -> list[trimesh.Trimesh]:
    """From none to `most` loose cushions side by side, leaning on a back whose front face
    is at y = `y_back`, between x0 and x1."""
    count = int(rng.integers(0, most + 1))
    if count == 0:
        return []
    thick, gap = u(rng, 0.1, 0.18), 0.02
    width = (x1 - x0 - gap * (count + 1)) / count
    height = (back_h - seat) * u(rng, 0.7, 0.95)
    return [
        rounded_box(
            (width, thick, height),
            (x0 + gap + width / 2 + c * (width + gap), y_back + thick / 2, seat + 0.1 + height / 2),
            0.04,
        )
        for c in range(count)
    ]


def _corner_sofa(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """Two seats at a right angle (an L): a long one along x, a wing along +y at its +x end,
    backs on the outer sides, an arm at each free end."""
    length, wing, depth = u(rng, 2.0, 3.0), u(rng, 1.4, 2.2), u(rng, 0.8, 1.0)
    leg = u(rng, 0.0, 0.12)
    seat = leg + u(rng, 0.25, 0.4)
    back_t, back_h = u(rng, 0.12, 0.25), seat + u(rng, 0.25, 0.5)
    arm_t, arm_h = u(rng, 0.1, 0.25), seat + u(rng, 0.1, 0.3)
    corner_x = length / 2 - depth / 2  # the wing's centre line
    wing_y = depth / 2 + (wing - depth) / 2
    parts = [
        box((length, depth, seat - leg), (0, 0, (seat + leg) / 2)),
        box((depth, wing - depth, seat - leg), (corner_x, wing_y, (seat + leg) / 2)),
        box((length, back_t, back_h - leg), (0, -depth / 2 + back_t / 2, (back_h + leg) / 2)),
        box(
            (back_t, wing, back_h - leg),
            (length / 2 - back_t / 2, wing / 2 - depth / 2, (back_h + leg) / 2),
        ),
        box((arm_t, depth, arm_h - leg), (-length / 2 - arm_t / 2, 0, (arm_h + leg) / 2)),
        box(
            (depth, arm_t, arm_h - leg), (corner_x, wing - depth / 2 + arm_t / 2, (arm_h + leg) / 2)
        ),
    ]
    if leg > 0:
        parts += legs(rng, length, depth, leg, styles=("square", "round"), inset=0.02)
    parts += _back_cushions(
        rng, -length / 2, length / 2 - back_t, -depth / 2 + back_t, seat, back_h
    )
    return parts


def _straight_sofa(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    length, depth = u(rng, 1.4, 2.6), u(rng, 0.75, 1.0)
    leg = u(rng, 0.0, 0.15)
    seat = leg + u(rng, 0.25, 0.4)
    parts = padded_slab(rng, length, depth, seat, leg)
    back_t = u(rng, 0.12, 0.25)
    back_h = seat + u(rng, 0.25, 0.5)
    parts.append(
        box((length, back_t, back_h - leg), (0, -depth / 2 + back_t / 2, (back_h + leg) / 2))
    )
    arms = rng.random() < 0.85
    if arms:
        arm_t = u(rng, 0.08, 0.25)
        arm_h = seat + u(rng, 0.1, 0.3)
        for sx in (-1, 1):
            parts.append(
                box((arm_t, depth, arm_h - leg), (sx * (length + arm_t) / 2, 0, (arm_h + leg) / 2))
            )
            if rng.random() < 0.4:  # rolled arm
                parts.append(
                    cylinder(arm_t * 0.6, depth, (sx * (length + arm_t) / 2, 0, arm_h), axis="y")
                )
    cushions = int(rng.integers(1, 4))
    gap = 0.02
    cushion_w = (length - gap * (cushions + 1)) / cushions
    for c in range(cushions):
        cx = -length / 2 + gap + cushion_w / 2 + c * (cushion_w + gap)
        parts.append(box((cushion_w, depth - back_t - 0.04, 0.1), (cx, back_t / 2, seat + 0.05)))
    return parts + _back_cushions(
        rng, -length / 2, length / 2, -depth / 2 + back_t, seat + 0.1, back_h
    )


def _chair(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    return _one_style(rng, ((0.25, _armchair), (0.45, _shell_chair)), _legged_chair)


def _shell_chair(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A one-piece moulded shell, the seat running into a leaning back and the sides raised,
    on a pedestal with a disc or a star of feet, or on four thin splayed legs: tulip,
    moulded plastic and swivel chairs."""
    width, depth = u(rng, 0.45, 0.7), u(rng, 0.42, 0.6)
    seat_z, back_h = u(rng, 0.4, 0.48), u(rng, 0.3, 0.55)
    lift, lean, taper = u(rng, 0.03, 0.15), u(rng, 0.05, 0.2), u(rng, -0.2, 0.4)
    along = np.linspace(0.0, 1.0, 16)  # 0: the seat's front edge, 1: the back's top
    bend = depth / (depth + back_h)
    seat = along < bend
    rise = np.clip((along - bend) / (1 - bend), 0.0, 1.0)
    y = np.where(seat, depth / 2 - along / bend * depth, -depth / 2 - rise * lean)
    z = np.where(seat, seat_z - 0.03 * np.sin(np.pi * along / bend), seat_z + rise * back_h)
    across = np.linspace(-0.5, 0.5, 12)
    x = width * across[None, :] * (1 - taper * rise[:, None])
    grid = np.stack(
        (x, np.repeat(y[:, None], 12, 1), z[:, None] + lift * (2 * across[None, :]) ** 2), -1
    )
    shell = sheet(grid, u(rng, 0.01, 0.03))
    if shell.volume < 0:
        shell.invert()
    parts = [shell]
    under = seat_z - 0.04
    if rng.random() < 0.6:  # a pedestal
        parts.append(cylinder(u(rng, 0.02, 0.045), under, (0, 0, under / 2)))
        reach = u(rng, 0.2, 0.3)
        if rng.random() < 0.5:
            parts.append(cylinder(reach, 0.025, (0, 0, 0.0125)))
        else:
            feet = int(rng.integers(4, 6))
            for f in range(feet):
                angle = 2 * np.pi * f / feet
                end = (reach * np.cos(angle), reach * np.sin(angle), 0.02)
                parts.append(rod((0, 0, 0.04), end, 0.02, sections=6))
    else:  # four splayed legs
        radius = u(rng, 0.008, 0.02)
        for sx in (-1, 1):
            for sy in (-1, 1):
                top = (sx * width * 0.3, sy * depth * 0.3, under)
                parts.append(rod(top, (sx * width * 0.45, sy * depth * 0.45, 0.0), radius, 6))
    return stand(parts)  # a slanted rod's end dips below its axis


def _armchair(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """An upholstered armchair: rounded blocks for the seat, the arms and the back, on
    short legs or on the floor; maybe wings, loose seat and back cushions."""
    width, depth = u(rng, 0.65, 1.0), u(rng, 0.7, 0.95)
    leg = u(rng, 0.0, 0.18) if rng.random() < 0.7 else 0.0
    seat = leg + u(rng, 0.2, 0.32)
    soft = u(rng, 0.01, 0.06)
    arm_w, arm_h = u(rng, 0.08, 0.22), seat + u(rng, 0.12, 0.32)
    back_t, back_h = u(rng, 0.12, 0.25), seat + u(rng, 0.35, 0.65)
    inner = width - 2 * arm_w
    parts = [
        rounded_box((inner, depth - back_t, seat - leg), (0, back_t / 2, (seat + leg) / 2), soft),
        rounded_box(
            (width, back_t, back_h - leg), (0, -(depth - back_t) / 2, (back_h + leg) / 2), soft
        ),
    ]
    parts += [
        rounded_box(
            (arm_w, depth, arm_h - leg), (sx * (width - arm_w) / 2, 0, (arm_h + leg) / 2), soft
        )
        for sx in (-1, 1)
    ]
    if rng.random() < 0.3:  # wings at the top of the back
        wing_h = (back_h - arm_h) * 0.8
        parts += [
            rounded_box(
                (arm_w, depth * 0.35, wing_h),
                (
                    sx * (width - arm_w) / 2,
                    -depth / 2 + depth * 0.175 + back_t,
                    back_h - wing_h / 2,
                ),
                soft,
            )
            for sx in (-1, 1)
        ]
    if rng.random() < 0.7:  # a seat cushion
        parts.append(
            rounded_box(
                (inner - 0.02, depth - back_t - 0.03, 0.1), (0, back_t / 2, seat + 0.05), 0.03
            )
        )
    parts += _back_cushions(rng, -inner / 2, inner / 2, -depth / 2 + back_t, seat + 0.1, back_h, 1)
    if leg > 0:
        parts += legs(rng, width, depth, leg, styles=("square", "round"), inset=0.03)
    return parts


def _legged_chair(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth = u(rng, 0.4, 0.6), u(rng, 0.4, 0.6)
    seat_z, seat_t = u(rng, 0.4, 0.5), u(rng, 0.03, 0.1)
    parts = legs(rng, width, depth, seat_z - seat_t, styles=("square", "round", "pedestal"))
    parts.append(box((width, depth, seat_t), (0, 0, seat_z - seat_t / 2)))
    back_h = u(rng, 0.3, 0.6)
    back_t = u(rng, 0.02, 0.06)
    back_y = -depth / 2 + back_t / 2
    style = int(rng.integers(3))
    if style == 0:  # solid panel
        parts.append(box((width, back_t, back_h), (0, back_y, seat_z + back_h / 2)))
    elif style == 1:  # vertical slats between two posts and a top rail
        slats = int(rng.integers(2, 6))
        post = u(rng, 0.025, 0.05)
        for sx in (-1, 1):
            parts.append(
                box((post, back_t, back_h), (sx * (width - post) / 2, back_y, seat_z + back_h / 2))
            )
        parts.append(box((width, back_t, 0.06), (0, back_y, seat_z + back_h - 0.03)))
        for s in range(slats):
            x = -width / 2 + post + (s + 1) * (width - 2 * post) / (slats + 1)
            parts.append(
                box((0.02, back_t * 0.8, back_h - 0.06), (x, back_y, seat_z + (back_h - 0.06) / 2))
            )
    else:  # horizontal rails
        rails = int(rng.integers(2, 5))
        for sx in (-1, 1):
            parts.append(
                box((0.04, back_t, back_h), (sx * (width - 0.04) / 2, back_y, seat_z + back_h / 2))
            )
        for r in range(rails):
            z = seat_z + (r + 1) * back_h / rails - 0.03
            parts.append(box((width, back_t, 0.05), (0, back_y, z)))
    if rng.random() < 0.35:  # arms
        arm_z = seat_z + u(rng, 0.18, 0.28)
        for sx in (-1, 1):
            parts.append(box((0.05, depth, 0.04), (sx * (width / 2 + 0.025), 0, arm_z)))
            parts.append(
                box(
                    (0.04, 0.04, arm_z - seat_z),
                    (sx * (width / 2 + 0.025), depth / 2 - 0.04, (arm_z + seat_z) / 2),
                )
            )
    return parts


def _tabletop(
    rng: np.random.Generator, width: float, depth: float, height: float, thickness: float
) -> list[trimesh.Trimesh]:
    return [box((width, depth, thickness), (0, 0, height - thickness / 2))]


def _desk(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth = u(rng, 1.0, 1.8), u(rng, 0.5, 0.8)
    height, top_t = u(rng, 0.7, 0.78), u(rng, 0.02, 0.06)
    parts = _tabletop(rng, width, depth, height, top_t)
    under = height - top_t
    pedestals = int(rng.integers(0, 3))
    pedestal_w = u(rng, 0.3, 0.45)
    sides = {0: (), 1: (int(rng.choice([-1, 1])),), 2: (-1, 1)}[pedestals]
    for sx in sides:
        cx = sx * (width - pedestal_w) / 2
        parts.append(box((pedestal_w, depth * 0.95, under), (cx, 0, under / 2)))
        rows = int(rng.integers(2, 5))
        for part in drawer_fronts(rng, pedestal_w, under, 0.0, depth * 0.475, rows, 1):
            part.apply_translation((cx, 0, 0))
            parts.append(part)
    if len(sides) < 2:  # legs on the open ends
        leg_parts = legs(rng, width, depth, under, styles=("square", "round", "trestle"))
        if sides:
            # keep only the supports on the side without a pedestal
            leg_parts = [p for p in leg_parts if np.sign(p.centroid[0]) != sides[0]]
        parts += leg_parts
    # A top on bare legs is a table: a desk without a pedestal always has a modesty panel.
    if not sides or rng.random() < 0.6:
        parts.append(box((width * 0.9, 0.02, under * 0.5), (0, -depth / 2 + 0.03, under * 0.7)))
    if rng.random() < 0.5:  # a centre drawer under the top
        parts.append(box((width * 0.35, depth * 0.9, 0.1), (0, 0, under - 0.05)))
    if rng.random() < 0.4:  # a hutch or shelf riser on top
        riser_h = u(rng, 0.15, 0.5)
        parts.append(box((width, 0.03, riser_h), (0, -depth / 2 + 0.015, height + riser_h / 2)))
    return parts


def _table(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    round_top = rng.random() < 0.3
    width = u(rng, 0.7, 2.0)
    depth = width if round_top else u(rng, 0.6, 1.1)
    height, top_t = u(rng, 0.4, 0.78), u(rng, 0.02, 0.08)
    if round_top:
        parts = [cylinder(width / 2, top_t, (0, 0, height - top_t / 2))]
        parts += legs(
            rng, width * 0.7, depth * 0.7, height - top_t, styles=("square", "round", "pedestal")
        )
    else:
        parts = _tabletop(rng, width, depth, height, top_t)
        parts += legs(rng, width, depth, height - top_t)
    if not round_top and rng.random() < 0.5:  # apron
        apron = u(rng, 0.05, 0.12)
        parts.append(box((width * 0.92, depth * 0.92, apron), (0, 0, height - top_t - apron / 2)))
    if rng.random() < 0.3:  # lower shelf
        parts.append(box((width * 0.85, depth * 0.85, 0.02), (0, 0, u(rng, 0.1, 0.25))))
    return parts


def cabinet(
    rng: np.random.Generator,
    width: float,
    depth: float,
    height: float,
    rows: int,
    columns: int,
    open_shelf: bool,
) -> list[trimesh.Trimesh]:
    """A drawer cabinet on a plinth or feet; dressers and night stands differ in
    proportion and drawer count only."""
    plinth = u(rng, 0.02, 0.15)
    parts = []
    if rng.random() < 0.5:
        parts.append(box((width * 0.96, depth * 0.96, plinth), (0, 0, plinth / 2)))
    else:
        parts += legs(rng, width, depth, plinth, styles=("square", "round"), inset=0.01)
    body_h = height - plinth
    parts.append(box((width, depth, body_h), (0, 0, plinth + body_h / 2)))
    top_t = u(rng, 0.015, 0.04)
    parts.append(box((width * 1.04, depth * 1.04, top_t), (0, 0, height + top_t / 2)))
    drawer_h = body_h
    if open_shelf:
        # an open cubby: the upper part of the front is recessed
        drawer_h = body_h * u(rng, 0.4, 0.65)
        parts.append(
            box(
                (width * 0.9, 0.02, body_h - drawer_h),
                (0, depth / 2 - 0.12, plinth + drawer_h + (body_h - drawer_h) / 2),
            )
        )
        parts[-2] = box((width, depth - 0.12, body_h), (0, -0.06, plinth + body_h / 2))
        parts.append(box((width, 0.12, drawer_h), (0, depth / 2 - 0.06, plinth + drawer_h / 2)))
    parts += drawer_fronts(rng, width, drawer_h, plinth, depth / 2, rows, columns)
    if rng.random() < 0.25:  # a mirror or a lamp on top
        if width > 0.8:
            mirror_h = u(rng, 0.4, 0.8)
            parts.append(
                box((width * 0.7, 0.03, mirror_h), (0, -depth / 2 + 0.05, height + mirror_h / 2))
            )
        else:
            parts.append(cylinder(0.05, 0.25, (width * 0.2, 0, height + 0.125)))
            parts.append(cylinder(0.12, 0.15, (width * 0.2, 0, height + 0.3)))
    return parts


def _dresser(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth, height = u(rng, 0.8, 1.8), u(rng, 0.4, 0.6), u(rng, 0.7, 1.4)
    rows, columns = int(rng.integers(3, 6)), int(rng.integers(1, 4))
    return cabinet(rng, width, depth, height, rows, columns, open_shelf=rng.random() < 0.1)


def _night_stand(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width, depth, height = u(rng, 0.4, 0.65), u(rng, 0.35, 0.5), u(rng, 0.45, 0.75)
    rows = int(rng.integers(1, 4))
    return cabinet(rng, width, depth, height, rows, 1, open_shelf=rng.random() < 0.4)


def _monitor(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    width = u(rng, 0.45, 0.9)
    height = width / u(rng, 1.3, 2.4)
    thickness = u(rng, 0.015, 0.08)
    neck_h = u(rng, 0.08, 0.25)
    screen_z = neck_h + height / 2
    parts = [box((width, thickness, height), (0, 0, screen_z))]
    bezel = u(rng, 0.005, 0.03)
    parts.append(
        box((width - 2 * bezel, 0.005, height - 2 * bezel), (0, thickness / 2 + 0.0025, screen_z))
    )
    if rng.random() < 0.4:  # a bulky back housing
        parts.append(
            box(
                (width * 0.6, u(rng, 0.05, 0.2), height * 0.6),
                (0, -thickness / 2 - 0.05, screen_z),
            )
        )
    neck_y = -thickness / 2 - 0.02
    parts.append(box((0.05, 0.03, neck_h + height / 3), (0, neck_y, (neck_h + height / 3) / 2)))
    base = int(rng.integers(3))
    if base == 0:
        parts.append(cylinder(u(rng, 0.1, 0.18), 0.02, (0, neck_y, 0.01)))
    elif base == 1:
        parts.append(box((u(rng, 0.2, 0.35), u(rng, 0.15, 0.25), 0.02), (0, neck_y, 0.01)))
    else:  # V-shaped feet
        for sx in (-1, 1):
            foot = box((0.3, 0.03, 0.02), (sx * 0.1, neck_y + 0.04, 0.01))
            foot.apply_transform(
                trimesh.transformations.rotation_matrix(sx * 0.5, (0, 0, 1), (0, neck_y, 0))
            )
            parts.append(foot)
    return parts


def _toilet(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    bowl_r = u(rng, 0.17, 0.24)
    bowl_len = u(rng, 1.1, 1.5)  # elongation of the bowl along x
    seat_z = u(rng, 0.38, 0.45)
    base_h = seat_z * u(rng, 0.4, 0.6)
    parts = [cylinder(bowl_r * 0.55, base_h, (0, 0, base_h / 2))]
    bowl = trimesh.creation.cylinder(radius=bowl_r, height=seat_z - base_h, sections=SECTIONS)
    bowl.apply_scale((bowl_len, 1.0, 1.0))
    bowl.apply_translation((0, 0, base_h + (seat_z - base_h) / 2))
    parts.append(bowl)
    seat = trimesh.creation.annulus(
        r_min=bowl_r * 0.6, r_max=bowl_r * 1.05, height=0.03, sections=SECTIONS
    )
    seat.apply_scale((bowl_len, 1.0, 1.0))
    seat.apply_translation((0, 0, seat_z + 0.015))
    parts.append(seat)
    tank_w, tank_d = u(rng, 0.35, 0.5), u(rng, 0.15, 0.22)
    tank_h = u(rng, 0.25, 0.45)
    tank_x = -bowl_r * bowl_len - tank_d / 2 + 0.05
    if rng.random() < 0.85:
        parts.append(box((tank_d, tank_w, tank_h), (tank_x, 0, seat_z + tank_h / 2 - 0.05)))
        parts.append(box((tank_d * 1.1, tank_w * 1.05, 0.03), (tank_x, 0, seat_z + tank_h - 0.035)))
    else:  # wall-hung cistern panel
        parts.append(box((0.05, tank_w, tank_h + seat_z), (tank_x, 0, (tank_h + seat_z) / 2)))
    if rng.random() < 0.5:  # the lid, raised
        lid = trimesh.creation.cylinder(radius=bowl_r, height=0.02, sections=SECTIONS)
        lid.apply_scale((bowl_len, 1.0, 1.0))
        lid.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2 * 0.9, (0, 1, 0)))
        lid.apply_translation((tank_x + tank_d / 2 + 0.03, 0, seat_z + bowl_r * bowl_len))
        parts.append(lid)
    return parts


FAMILIES: dict[str, Family] = {
    "bathtub": _bathtub,
    "bed": _bed,
    "chair": _chair,
    "desk": _desk,
    "dresser": _dresser,
    "monitor": _monitor,
    "night_stand": _night_stand,
    "sofa": _sofa,
    "table": _table,
    "toilet": _toilet,
}
