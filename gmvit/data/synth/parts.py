"""The building blocks every family is made of: boxes, cylinders, surfaces of revolution,
swept tubes, extruded outlines, rounded boxes and ellipsoids, all in metres with +Z up.

Parts are separate meshes that may overlap; a family returns a list of them and
`gmvit.data.synth.make_shape` joins them. Tessellation is part of the variation: callers
pass `sections`/`detail` drawn from their generator, so one shape has finely and coarsely
meshed parts side by side.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import trimesh
from scipy.interpolate import PchipInterpolator
from scipy.spatial import ConvexHull
from shapely.geometry import LineString, Point, Polygon

SECTIONS = 16  # cylinder facets of the ModelNet10 families: round enough at 224 px, few faces

Vec = tuple[float, float, float] | np.ndarray
# A family draws one shape's parts from a generator.
Family = Callable[[np.random.Generator], list[trimesh.Trimesh]]


def u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


_UNIT_BOX = trimesh.creation.box()


def box(size: Vec, center: Vec) -> trimesh.Trimesh:
    """An axis-aligned box: the vertices `trimesh.creation.box` makes, without its cost
    (a shape may have hundreds of boxes)."""
    vertices = _UNIT_BOX.vertices * np.asarray(size, float) + np.asarray(center, float)
    return trimesh.Trimesh(vertices=vertices, faces=_UNIT_BOX.faces.copy(), process=False)


def cylinder(
    radius: float,
    height: float,
    center: Vec,
    axis: str = "z",
    sections: int = SECTIONS,
) -> trimesh.Trimesh:
    transform = trimesh.transformations.translation_matrix(center)
    if axis == "x":
        transform = transform @ trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0))
    elif axis == "y":
        transform = transform @ trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0))
    return trimesh.creation.cylinder(
        radius=radius, height=height, sections=sections, transform=transform
    )


@functools.cache
def _unit_cylinder(sections: int) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=1.0, height=1.0, sections=sections)


def rod(start: Vec, end: Vec, radius: float, sections: int = 8) -> trimesh.Trimesh:
    """A cylinder from `start` to `end` (a shape may have hundreds: spokes, balusters)."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = float(np.linalg.norm(axis))
    unit = _unit_cylinder(sections)
    transform = trimesh.geometry.align_vectors((0, 0, 1), axis / length)
    vertices = (unit.vertices * (radius, radius, length)) @ transform[:3, :3].T
    return trimesh.Trimesh(
        vertices=vertices + (start + end) / 2, faces=unit.faces.copy(), process=False
    )


def limb(start: Vec, end: Vec, radius: float, count: int = 8) -> trimesh.Trimesh:
    """A capsule whose sphere centres are `start` and `end` (arms, legs, fuselages)."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = float(np.linalg.norm(axis))
    mesh = trimesh.creation.capsule(height=length, radius=radius, count=[count, count])
    mesh.apply_transform(trimesh.geometry.align_vectors((0, 0, 1), axis / length))
    mesh.apply_translation((start + end) / 2)
    return mesh


def ellipsoid(radii: Vec, center: Vec, detail: int = 2) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=detail)
    mesh.apply_scale(radii)
    mesh.apply_translation(center)
    return mesh


def revolve(
    profile: Sequence[tuple[float, float]] | np.ndarray,
    sections: int,
    center: Vec = (0.0, 0.0, 0.0),
) -> trimesh.Trimesh:
    """The surface swept by a (radius, z) profile around the vertical axis through
    `center`. A profile that starts and ends on the axis (radius 0) closes into a solid."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=float), sections=sections)
    mesh.apply_translation(center)
    return mesh


def vessel(
    radii: Sequence[float] | np.ndarray,
    heights: Sequence[float] | np.ndarray,
    wall: float,
    sections: int,
    center: Vec = (0.0, 0.0, 0.0),
    *,
    floor: float | None = None,
) -> trimesh.Trimesh:
    """A hollow, open-topped body of revolution (cup, bowl, vase, pot): the outer wall runs
    through (radii[i], heights[i]) from the base up to the rim; the inner wall follows it
    `wall` inside and stops `floor` (default `wall`) above the base."""
    radii, heights = np.asarray(radii, float), np.asarray(heights, float)
    floor = wall if floor is None else floor
    outer = np.column_stack((radii, heights))
    inner_r = np.maximum(radii - wall, wall * 0.5)
    keep = heights >= heights[0] + floor
    inner = np.column_stack((inner_r[keep], heights[keep]))[::-1]
    profile = np.vstack(
        ([[0.0, heights[0]]], outer, inner, [[0.0, max(heights[0] + floor, inner[-1, 1])]])
    )
    return revolve(profile, sections, center)


def tube(
    path: Sequence[Vec] | np.ndarray, radius: float, sections: int = 8, cap: bool = True
) -> trimesh.Trimesh:
    """A round tube of `radius` along a 3D polyline (handles, pipes, arms, ribs)."""
    circle = Point(0, 0).buffer(radius, quad_segs=max(2, sections // 4))
    return trimesh.creation.sweep_polygon(circle, np.asarray(path, float), cap=cap)


def arc(
    center: Vec, radius: float, start: float, stop: float, count: int, plane: str = "xz"
) -> np.ndarray:
    """Points on a circular arc from angle `start` to `stop` (radians) in an axis plane."""
    angles = np.linspace(start, stop, count)
    points = np.zeros((count, 3))
    a, b = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}[plane]
    points[:, a] = radius * np.cos(angles)
    points[:, b] = radius * np.sin(angles)
    return points + np.asarray(center, float)


_PLANES = {  # drawing (x, y) and extrusion axis -> world axes; proper rotations
    "xy": np.eye(4),
    "xz": np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float),
    "yz": np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float),
}
_AXES = {"xy": (0, 0, 1), "xz": (0, 1, 0), "yz": (1, 0, 0)}  # the extrusion axis


def prism(
    outline: Polygon | Sequence[tuple[float, float]],
    thickness: float,
    plane: str = "xy",
    offset: float = 0.0,
) -> trimesh.Trimesh:
    """An outline drawn in an axis plane (its holes kept), extruded `thickness` along the
    remaining axis and centred on `offset` there. In 'xz' the drawing's y is height (side
    profiles of cars, pianos, doors); in 'yz' the drawing's x is world y."""
    polygon = outline if isinstance(outline, Polygon) else Polygon(outline)
    mesh = trimesh.creation.extrude_polygon(polygon, thickness)
    mesh.apply_translation((0, 0, -thickness / 2))
    mesh.apply_transform(_PLANES[plane])
    mesh.apply_translation(np.asarray(_AXES[plane], float) * offset)
    return mesh


def rounded_rectangle(width: float, depth: float, radius: float, quad_segs: int = 4) -> Polygon:
    """A width x depth rectangle centred on the origin with corners rounded by `radius`."""
    radius = min(radius, 0.49 * min(width, depth))
    core = Polygon(
        [
            (-width / 2 + radius, -depth / 2 + radius),
            (width / 2 - radius, -depth / 2 + radius),
            (width / 2 - radius, depth / 2 - radius),
            (-width / 2 + radius, depth / 2 - radius),
        ]
    )
    return core.buffer(radius, quad_segs=quad_segs)


def rounded_box(size: Vec, center: Vec, radius: float, detail: int = 1) -> trimesh.Trimesh:
    """A box with every edge and corner rounded by `radius` (the hull of eight spheres)."""
    half = np.maximum(np.asarray(size, float) / 2 - radius, 1e-4)
    sphere = trimesh.creation.icosphere(subdivisions=detail, radius=radius).vertices
    corners = np.array([(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * half
    mesh = hull((corners[:, None, :] + sphere[None]).reshape(-1, 3))
    mesh.apply_translation(center)
    return mesh


def polyline_band(points: Sequence[tuple[float, float]], width: float) -> Polygon:
    """A 2D polyline thickened to `width` (curtain folds, leaf blades, wing sections)."""
    return LineString(points).buffer(width / 2, cap_style="flat", join_style="mitre")


def sheet(grid: np.ndarray, thickness: float) -> trimesh.Trimesh:
    """A surface sampled on a (rows, columns, 3) grid, thickened by `thickness` along its
    normals into a closed slab (curtains, tent fabric, leaves, canopies)."""
    rows, columns = grid.shape[:2]
    normals = np.cross(np.gradient(grid, axis=1), np.gradient(grid, axis=0))
    normals = trimesh.util.unitize(normals.reshape(-1, 3)).reshape(grid.shape)
    half = normals * thickness / 2
    vertices = np.vstack(((grid + half).reshape(-1, 3), (grid - half).reshape(-1, 3)))
    back = rows * columns
    index = np.arange(back).reshape(rows, columns)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, 1:].ravel(), index[1:, :-1].ravel()
    faces = [np.column_stack(f) for f in ((a, b, c), (a, c, d))]
    faces += [np.column_stack(f) + back for f in ((a, c, b), (a, d, c))]
    rim = np.concatenate((index[0], index[1:, -1], index[-1, -2::-1], index[-2:0:-1, 0]))
    rim_next = np.roll(rim, -1)
    faces += [
        np.column_stack((rim, rim + back, rim_next)),
        np.column_stack((rim_next, rim + back, rim_next + back)),
    ]
    return trimesh.Trimesh(vertices=vertices, faces=np.vstack(faces), process=False)


def smooth_profile(knots: Sequence[tuple[float, float]], count: int) -> np.ndarray:
    """`count` (radius, height) points through (radius, height) knots of rising height,
    interpolated without overshoot: the outline of a turned or thrown body."""
    knots = np.asarray(knots, float)
    heights = np.linspace(knots[0, 1], knots[-1, 1], count)
    radii = PchipInterpolator(knots[:, 1], knots[:, 0])(heights)
    return np.column_stack((radii, heights))


def hull(points: np.ndarray | Sequence[Vec]) -> trimesh.Trimesh:
    """The convex hull of points, its faces wound outwards (frustums, wedges, rounded
    boxes): qhull straight, without `trimesh.convex`'s repairs, which cost more here."""
    points = np.asarray(points, float)
    qhull = ConvexHull(points)
    faces = qhull.simplices.copy()
    triangles = points[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    inward = (normals * qhull.equations[:, :3]).sum(axis=1) < 0
    faces[inward] = faces[inward][:, ::-1]
    used, faces = np.unique(faces, return_inverse=True)
    return trimesh.Trimesh(vertices=points[used], faces=faces.reshape(-1, 3), process=False)


def tessellate(mesh: trimesh.Trimesh, times: int) -> trimesh.Trimesh:
    """`mesh` with every face split in four, `times` times: same shape, finer mesh."""
    for _ in range(times):
        mesh = mesh.subdivide()
    return mesh


def rotate(mesh: trimesh.Trimesh, angle: float, axis: Vec, point: Vec = (0, 0, 0)):
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, axis, point))
    return mesh


def stand(parts: list[trimesh.Trimesh]) -> list[trimesh.Trimesh]:
    """The parts moved up or down together so the lowest of them touches z = 0."""
    floor = min(float(p.bounds[0, 2]) for p in parts)
    for part in parts:
        part.apply_translation((0, 0, -floor))
    return parts
