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
# Noisy copies are first refined to between 2**10 and 2**16 faces, the span of real meshes
# (the bench corpus: 10th percentile 323 faces, median 3.5k, 90th 26k). Noise tilts the facets
# of a coarse surface a little but crumples a fine one, whose flat shading then turns into a
# speckle; the synthetic meshes have a few hundred faces, so without this training never
# sees what noise does to a real mesh.
NOISE_FACES_LOG2 = (10.0, 16.0)


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
    positions, where = _positions(mesh)
    noise = rng.normal(0.0, sigma * diagonal(mesh), positions.shape)
    return _mesh(positions[where] + noise[where], mesh.faces)


def diagonal(mesh: trimesh.Trimesh) -> float:
    """Length of the bounding box's diagonal."""
    vertices = np.asarray(mesh.vertices)
    return float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))


def subdivide(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Every triangle split in four (the surface does not move)."""
    vertices, faces = trimesh.remesh.subdivide(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    return _mesh(vertices, faces)


def refine(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """Subdivided until it has at least `faces` faces (the surface does not move); a mesh
    that one more subdivision would take past `MAX_SUBDIVIDE_FACES` is left there."""
    while 0 < len(mesh.faces) < faces and 4 * len(mesh.faces) <= MAX_SUBDIVIDE_FACES:
        mesh = subdivide(mesh)
    return mesh


def decimate(mesh: trimesh.Trimesh, keep: float) -> trimesh.Trimesh:
    """About `keep` of the faces left by quadric edge collapse (fast-simplification), on the
    mesh welded (one vertex per position). A mesh of fewer than `DECIMATE_MIN_FACES` faces
    is subdivided up to that many first, so that decimating re-tessellates it instead of
    deleting its thin parts."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], not {keep}")
    mesh = refine(_welded(mesh), DECIMATE_MIN_FACES)
    vertices, faces = fast_simplification.simplify(
        np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), 1.0 - keep
    )
    if len(faces) == 0:  # too few faces to collapse any: keep the mesh as it is
        return _mesh(mesh.vertices, mesh.faces)
    return _mesh(vertices, faces)


def _positions(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """The distinct vertex positions, and for each vertex the index of its position."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    positions, where = np.unique(vertices, axis=0, return_inverse=True)
    return positions, where.ravel()


def _welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Vertices at one position made one, faces that collapse dropped. Exporters split
    vertices along sharp edges and seams; a decimator that sees them split collapses each
    piece alone and tears the surface apart."""
    positions, where = _positions(mesh)
    faces = where[np.asarray(mesh.faces)]
    whole = (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )
    return _mesh(positions, faces[whole])


def _mesh(vertices, faces) -> trimesh.Trimesh:
    """A new mesh that shares no array with its sources."""
    return trimesh.Trimesh(
        vertices=np.array(vertices, dtype=np.float64), faces=np.array(faces), process=False
    )


@dataclass(frozen=True)
class Perturbation:
    """One drawn copy: turned by `degrees` about +Z, mirrored or not, re-tessellated
    ("subdivide", "decimate" or None, `keep` of the faces), vertex noise `sigma` on the
    surface refined to at least `noise_faces` faces."""

    degrees: float
    mirror: bool
    retessellate: str | None
    keep: float
    sigma: float
    noise_faces: int = 0  # 0 in the copies of stores rendered before refinement existed

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Perturbation:
        """Any angle; mirrored half the time; a third each subdivided, decimated (to 30-80 %
        of the faces) or left; vertex noise up to 0.5 % of the diagonal on half the copies,
        on the surface refined to a face count log-uniform in 2**`NOISE_FACES_LOG2`."""
        kind = ("subdivide", "decimate", None)[int(rng.integers(3))]
        degrees = round(float(rng.uniform(0.0, 360.0)), 3)
        mirrored = bool(rng.random() < 0.5)
        keep = round(float(rng.uniform(0.3, 0.8)), 3) if kind == "decimate" else 1.0
        sigma = round(float(rng.uniform(0.0, 0.005)), 5) if rng.random() < 0.5 else 0.0
        noise_faces = int(2.0 ** rng.uniform(*NOISE_FACES_LOG2)) if sigma > 0 else 0
        return cls(degrees, mirrored, kind, keep, sigma, noise_faces)

    def apply(self, mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
        """The perturbed copy; `rng` draws the vertex noise."""
        if self.retessellate == "subdivide" and len(mesh.faces) <= MAX_SUBDIVIDE_FACES:
            mesh = subdivide(mesh)
        elif self.retessellate == "decimate":
            mesh = decimate(mesh, self.keep)
        if self.sigma > 0:
            mesh = jitter(refine(mesh, self.noise_faces), self.sigma, rng)
        if self.mirror:
            mesh = mirror(mesh)
        return rotate_z(mesh, self.degrees)

    def to_dict(self) -> dict:
        return asdict(self)
