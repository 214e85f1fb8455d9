"""What must not change a shape's descriptor, as mesh operations: the copies training learns from.

Each function returns a new mesh and leaves its input alone. `Perturbation` draws one random
combination (a turn about +Z by any angle, a mirror image, vertex noise, re-tessellation) and
records it as plain values, so a view store can say how each of its copies was made.
Scale and placement are not drawn: `renderer.normalize` removes them exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import fast_simplification
import numpy as np
import trimesh

# Subdividing multiplies the faces by four: past this many, a copy is left as it is.
MAX_SUBDIVIDE_FACES = 250_000
DECIMATE_MIN_FACES = 1000


def rotate_z(mesh: trimesh.Trimesh, degrees: float) -> trimesh.Trimesh:
    """Turned about the up axis (+Z) by `degrees`, counter-clockwise seen from above."""
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return _mesh(np.asarray(mesh.vertices, dtype=np.float64) @ rotation.T, mesh.faces)


def mirror(mesh: trimesh.Trimesh, axis: int = 1) -> trimesh.Trimesh:
    """Reflected in the plane through the origin across `axis` (0 = x, 1 = y), faces rewound
    so they still face outwards."""
    flip = np.ones(3)
    flip[axis] = -1.0
    vertices = np.asarray(mesh.vertices, dtype=np.float64) * flip
    return _mesh(vertices, np.asarray(mesh.faces)[:, ::-1])


def jitter(mesh: trimesh.Trimesh, sigma: float, rng: np.random.Generator) -> trimesh.Trimesh:
    """Every vertex position moved by Gaussian noise of `sigma` times the bounding box's
    diagonal; vertices at one position move together, so the surface does not tear."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    positions, where = np.unique(vertices, axis=0, return_inverse=True)
    noise = rng.normal(0.0, sigma * diagonal(mesh), positions.shape)
    return _mesh(vertices + noise[where.ravel()], mesh.faces)


def diagonal(mesh: trimesh.Trimesh) -> float:
    """Length of the bounding box's diagonal."""
    vertices = np.asarray(mesh.vertices)
    return float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))


def subdivide(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Every triangle split in four (the surface does not move)."""
    vertices, faces = trimesh.remesh.subdivide(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    return _mesh(vertices, faces)


def decimate(mesh: trimesh.Trimesh, keep: float) -> trimesh.Trimesh:
    """About `keep` of the faces left by quadric edge collapse (fast-simplification). A mesh
    of fewer than `DECIMATE_MIN_FACES` faces is subdivided up to that many first, so that
    decimating re-tessellates it instead of deleting its thin parts."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], not {keep}")
    while 0 < len(mesh.faces) < DECIMATE_MIN_FACES:
        mesh = subdivide(mesh)
    vertices, faces = fast_simplification.simplify(
        np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), 1.0 - keep
    )
    if len(faces) == 0:  # too few faces to collapse any: keep the mesh as it is
        return _mesh(mesh.vertices, mesh.faces)
    return _mesh(vertices, faces)


def _mesh(vertices, faces) -> trimesh.Trimesh:
    """A new mesh that shares no array with its sources."""
    return trimesh.Trimesh(
        vertices=np.array(vertices, dtype=np.float64), faces=np.array(faces), process=False
    )


@dataclass(frozen=True)
class Perturbation:
    """One drawn copy: turned by `degrees` about +Z, mirrored or not, re-tessellated
    ("subdivide", "decimate" or None, `keep` of the faces), vertex noise `sigma`."""

    degrees: float
    mirror: bool
    retessellate: str | None
    keep: float
    sigma: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Perturbation:
        """Any angle; mirrored half the time; a third each subdivided, decimated (to 30-80 %
        of the faces) or left; vertex noise up to 0.5 % of the diagonal on half the copies."""
        kind = ("subdivide", "decimate", None)[int(rng.integers(3))]
        return cls(
            degrees=round(float(rng.uniform(0.0, 360.0)), 3),
            mirror=bool(rng.random() < 0.5),
            retessellate=kind,
            keep=round(float(rng.uniform(0.3, 0.8)), 3) if kind == "decimate" else 1.0,
            sigma=round(float(rng.uniform(0.0, 0.005)), 5) if rng.random() < 0.5 else 0.0,
        )

    def apply(self, mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
        """The perturbed copy; `rng` draws the vertex noise."""
        if self.retessellate == "subdivide" and len(mesh.faces) <= MAX_SUBDIVIDE_FACES:
            mesh = subdivide(mesh)
        elif self.retessellate == "decimate":
            mesh = decimate(mesh, self.keep)
        if self.sigma > 0:
            mesh = jitter(mesh, self.sigma, rng)
        if self.mirror:
            mesh = mirror(mesh)
        return rotate_z(mesh, self.degrees)

    def to_dict(self) -> dict:
        return asdict(self)
