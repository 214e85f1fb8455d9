"""What must not change a shape's descriptor: copies of a mesh as the world re-exports them.

Each perturbation is `f(mesh, rng) -> mesh`, built from the mesh operations training
learns from (`gmvit.data.perturb`), a new trimesh (the input is not touched), drawn
from `rng` only, so a fixed seed gives the same copy:

- `noise`: scaled by a factor in [0.5, 2], shifted by up to one bounding-box diagonal, and
  every vertex position moved by Gaussian noise of standard deviation 0.2 % of the
  bounding-box diagonal per coordinate (coincident vertices move together, so the
  surface does not tear);
- `rotation`: rotated about +Z (through the origin) by an angle uniform in [0, 360);
- `subdivision`: every triangle split into four at its edge midpoints (the same surface);
- `decimation`: quadric decimation (fast-simplification) of the welded mesh to half the
  faces; a mesh under `gmvit.data.perturb.DECIMATE_MIN_FACES` faces is first subdivided
  until it has that many, so that halving re-triangulates it instead of deleting its thin
  parts;
- `mirror`: reflected through the plane x = 0, faces reversed so they still face outwards.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

from gmvit.data import perturb

NOISE_FRACTION = 0.002

Perturbation = Callable[[trimesh.Trimesh, np.random.Generator], trimesh.Trimesh]


def noise(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    noisy = perturb.jitter(mesh, NOISE_FRACTION, rng)
    scale = rng.uniform(0.5, 2.0)
    shift = rng.uniform(-1.0, 1.0, size=3) * perturb.diagonal(mesh)
    noisy.vertices = scale * np.asarray(noisy.vertices) + shift
    return noisy


def rotation(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    return perturb.rotate_z(mesh, rng.uniform(0.0, 360.0))


def subdivision(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    return perturb.subdivide(mesh)


def decimation(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    return perturb.decimate(mesh, 0.5)


def mirror(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    return perturb.mirror(mesh, axis=0)


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
