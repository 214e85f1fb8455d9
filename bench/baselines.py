"""Trivial shape descriptors a learned one must beat, each compared by L2 distance.

- `pca_eigenvalues`: the three eigenvalues of the covariance of the mesh's vertices, largest
  first, scaled to unit length (so blind to size, and to the scale the normaliser picks);
- `view_pixels`: the grey values of the 12 views at 64 x 64 px of the normalised mesh,
  kept as uint8 and compared (`centred_unit`) minus their mean and scaled to unit length;
- `d2_histogram`: Osada et al.'s D2 shape distribution, the histogram of distances between
  random surface points of the normalised mesh (area-weighted samples, all pairs).
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial.distance import pdist

PIXEL_SIZE = 64
D2_POINTS = 1024
D2_BINS = 64


def pca_eigenvalues(mesh: trimesh.Trimesh) -> np.ndarray:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(np.cov(vertices.T))[::-1]
    return (eigenvalues / np.linalg.norm(eigenvalues)).astype(np.float32)


def view_pixels(views: np.ndarray) -> np.ndarray:
    """uint8 views (V, S, S, 3) -> uint8 grey values (V * S * S,): small to keep for a
    gallery of thousands (the renders are grey already, so nothing is lost)."""
    return views.mean(axis=-1).round().astype(np.uint8).ravel()


def centred_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey vectors (N, D) -> float32, each minus its mean and of unit length, so
    a mesh drawn a little larger or smaller is not far from itself by brightness alone."""
    centred = pixels.astype(np.float32)
    centred -= centred.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)


def d2_histogram(mesh: trimesh.Trimesh, seed: int = 0) -> np.ndarray:
    """`mesh` normalised to the unit sphere (distances in [0, 2]); same seed, same points."""
    points, _ = trimesh.sample.sample_surface(mesh, D2_POINTS, seed=seed)
    counts, _ = np.histogram(pdist(points), bins=D2_BINS, range=(0.0, 2.0))
    return (counts / counts.sum()).astype(np.float32)
