"""Mesh in, views out: safe loading, normalisation, camera rigs and offscreen rendering."""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    SceneTooComplexError,
    TooManyFacesError,
    UnsupportedFormatError,
)
from renderer.formats import FORMATS, accepted_extensions
from renderer.grid import view_grid
from renderer.limits import LoadLimits
from renderer.loading import load_bundle, load_mesh, normalize
from renderer.render import release_renderer, render_views
from renderer.rigs import RIG_FOR_VIEWS, RIGS, Rig, camera_pose, get_rig, up_vector


def render_file(
    source: bytes | str | os.PathLike | Mapping[str, bytes],
    *,
    filename: str | None = None,
    rig: str | Rig = "circle-12",
    size: int = 224,
    limits: LoadLimits | None = None,
) -> np.ndarray:
    """Load (safely), normalise and render: uint8 views (V, size, size, 3). `source` is
    bytes, a path, or the files of one mesh by name (see `load_bundle`; `filename` then
    names the main one if several could be)."""
    if isinstance(source, Mapping):
        mesh = load_bundle(source, filename, limits=limits)
    else:
        mesh = load_mesh(source, filename=filename, limits=limits)
    return render_views(normalize(mesh), rig, size)


__all__ = [
    "FORMATS",
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
    "SceneTooComplexError",
    "Rig",
    "TooManyFacesError",
    "UnsupportedFormatError",
    "camera_pose",
    "accepted_extensions",
    "get_rig",
    "load_bundle",
    "load_mesh",
    "normalize",
    "render_file",
    "release_renderer",
    "render_views",
    "up_vector",
    "view_grid",
]
