"""What must not change a shape's descriptor: copies of a mesh as the world re-exports them.

Each perturbation is `f(mesh, rng) -> mesh`, a new trimesh (the input is not touched), drawn
from `rng` only, so a fixed seed gives the same copy:

- `noise`: scaled by a factor in [0.5, 2], shifted by up to one bounding-box diagonal, and
  every vertex position moved by Gaussian noise of standard deviation 0.2 % of the
  bounding-box diagonal per coordinate (coincident vertices move together, so the
  surface does not tear);
- `rotation`: rotated about +Z (through the origin) by an angle uniform in [0, 360);
- `subdivision`: every triangle split into four at its edge midpoints (the same surface);
- `decimation`: quadric decimation (fast-simplification) to half the faces; a mesh under
  `DECIMATION_MIN_FACES` faces is first subdivided until it has that many, so that halving
  re-triangulates it instead of deleting its thin parts;
- `mirror`: reflected through the plane x = 0, faces reversed so they still face outwards.
"""

from __future__ import annotations

from collections.abc import Callable

import fast_simplification
import numpy as np
import trimesh

NOISE_FRACTION = 0.002
DECIMATION_MIN_FACES = 1000

Perturbation = Callable[[trimesh.Trimesh, np.random.Generator], trimesh.Trimesh]


def diagonal(mesh: trimesh.Trimesh) -> float:
    vertices = np.asarray(mesh.vertices)
    return float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def noise(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    positions, where = np.unique(vertices, axis=0, return_inverse=True)
    jitter = rng.normal(0.0, NOISE_FRACTION * diagonal(mesh), size=positions.shape)
    scale = rng.uniform(0.5, 2.0)
    shift = rng.uniform(-1.0, 1.0, size=3) * diagonal(mesh)
    return _mesh(scale * (vertices + jitter[where.ravel()]) + shift, mesh.faces)


def rotation(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    angle = rng.uniform(0.0, 2 * np.pi)
    turn = trimesh.transformations.rotation_matrix(angle, (0, 0, 1))[:3, :3]
    return _mesh(np.asarray(mesh.vertices) @ turn.T, mesh.faces)


def subdivision(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    return _mesh(*trimesh.remesh.subdivide(mesh.vertices, mesh.faces))


def decimation(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    while len(faces) < DECIMATION_MIN_FACES:
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    vertices, faces = fast_simplification.simplify(vertices, faces, target_reduction=0.5)
    return _mesh(vertices, faces)


def mirror(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    vertices = np.asarray(mesh.vertices) * np.array([-1.0, 1.0, 1.0])
    return _mesh(vertices, np.asarray(mesh.faces)[:, ::-1])


PERTURBATIONS: dict[str, Perturbation] = {
    "noise": noise,
    "rotation": rotation,
    "subdivision": subdivision,
    "decimation": decimation,
    "mirror": mirror,
}
DESCRIPTIONS: dict[str, str] = {
    "noise": "scale, shift, 0.2 % vertex noise",
    "rotation": "rotation about +Z, random angle",
    "subdivision": "subdivision (x4 faces)",
    "decimation": "decimation to half the faces",
    "mirror": "mirror image (x -> -x)",
}
