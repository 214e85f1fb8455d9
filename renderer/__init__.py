"""Mesh in, views out: safe loading, normalisation, camera rigs and offscreen rendering."""

from __future__ import annotations

import os

import numpy as np

from renderer.errors import (
    BadFaceIndexError,
    CompressedContentError,
    DegenerateMeshError,
    EmptyMeshError,
    FileTooLargeError,
    LoadTimeoutError,
    MalformedMeshError,
    MeshError,
    NoFacesError,
    NonFiniteError,
    TooManyFacesError,
    UnsupportedFormatError,
)
from renderer.grid import view_grid
from renderer.loading import LoadLimits, load_mesh, normalize
from renderer.render import release_renderer, render_views
from renderer.rigs import RIG_FOR_VIEWS, RIGS, Rig, camera_pose, get_rig, up_vector


def render_file(
    source: bytes | str | os.PathLike,
    *,
    filename: str | None = None,
    rig: str | Rig = "circle-12",
    size: int = 224,
    limits: LoadLimits | None = None,
) -> np.ndarray:
    """Load (safely), normalise and render: uint8 views (V, size, size, 3)."""
    mesh = normalize(load_mesh(source, filename=filename, limits=limits))
    return render_views(mesh, rig, size)


__all__ = [
    "RIGS",
    "RIG_FOR_VIEWS",
    "BadFaceIndexError",
    "CompressedContentError",
    "DegenerateMeshError",
    "EmptyMeshError",
    "FileTooLargeError",
    "LoadLimits",
    "LoadTimeoutError",
    "MalformedMeshError",
    "MeshError",
    "NoFacesError",
    "NonFiniteError",
    "Rig",
    "TooManyFacesError",
    "UnsupportedFormatError",
    "camera_pose",
    "get_rig",
    "load_mesh",
    "normalize",
    "render_file",
    "release_renderer",
    "render_views",
    "up_vector",
    "view_grid",
]
