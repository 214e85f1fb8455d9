"""Offscreen rendering of a normalised mesh from every camera of a rig.

Camera model: a perspective camera at CAMERA_DISTANCE from the origin on the ray through
`rig.positions[i]`, looking at the origin, image up = world +Z projected onto the image
plane (+Y when the view is within 1 degree of +-Z; see `renderer.rigs.up_vector`). The
field of view makes the unit sphere's silhouette a centred disc of radius
SPHERE_FILL * size / 2 pixels. Shading: a grey, fully rough material, flat shaded, on a
white background, lit by a directional light that sits on the camera, plus a little
ambient light: the look of the classic multi-view datasets.

The platform comes from PYOPENGL_PLATFORM (osmesa when unset; egl on a GPU machine).
pyrender's GL context belongs to the thread that made it, so each thread gets its own
OffscreenRenderer, reused across calls and recreated only when the size changes.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading

import numpy as np
import trimesh

from renderer.rigs import Rig, camera_pose, get_rig

CAMERA_DISTANCE = 2.5
SPHERE_FILL = 0.9
# tan(half fov) such that the sphere's silhouette (half-angle asin(1/d)) fills SPHERE_FILL.
YFOV = 2 * math.atan(math.tan(math.asin(1 / CAMERA_DISTANCE)) / SPHERE_FILL)
Z_NEAR, Z_FAR = 0.1, CAMERA_DISTANCE + 2.0
BASE_COLOR = (0.7, 0.7, 0.7, 1.0)
BACKGROUND = (1.0, 1.0, 1.0, 1.0)
AMBIENT = (0.08, 0.08, 0.08)
LIGHT_INTENSITY = 3.0

_thread_state = threading.local()


def render_views(
    mesh: trimesh.Trimesh, rig: str | Rig = "circle-12", size: int = 224, *, depth: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render `mesh` (expected inside the unit sphere, see `normalize`) from each camera.

    Returns uint8 views (V, size, size, 3), view i seen from `rig.positions[i]`; with
    `depth=True`, also float32 depths (V, size, size): distance along the camera's axis,
    0 where the background shows. Same mesh, rig and size give the same bytes.
    """
    pyrender = _pyrender()
    rig = get_rig(rig) if isinstance(rig, str) else rig
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=BASE_COLOR, metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True
    )
    scene = pyrender.Scene(bg_color=BACKGROUND, ambient_light=AMBIENT)
    scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=False))
    camera = scene.add(pyrender.PerspectiveCamera(yfov=YFOV, znear=Z_NEAR, zfar=Z_FAR))
    light = scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=LIGHT_INTENSITY))
    renderer = _offscreen_renderer(size)
    colors = np.empty((rig.num_views, size, size, 3), dtype=np.uint8)
    depths = np.empty((rig.num_views, size, size), dtype=np.float32) if depth else None
    for i, direction in enumerate(rig.positions):
        pose = camera_pose(direction, CAMERA_DISTANCE)
        scene.set_pose(camera, pose)
        scene.set_pose(light, pose)
        color, view_depth = renderer.render(scene)
        colors[i] = color[..., :3]
        if depths is not None:
            depths[i] = view_depth
    return (colors, depths) if depths is not None else colors


def _pyrender():
    # Imported on first render, not with the package: the parser worker processes import
    # `renderer` and must never load OpenGL, and the platform must be chosen before it is.
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    import pyrender

    return pyrender


def _offscreen_renderer(size: int):
    renderer = getattr(_thread_state, "renderer", None)
    if renderer is not None and renderer.viewport_width == size:
        return renderer
    if renderer is not None:
        renderer.delete()
    renderer = _pyrender().OffscreenRenderer(size, size)
    renderer._renderer._program_cache._program_cache = _ProgramsByContextAddress()
    _thread_state.renderer = renderer
    return renderer


class _ProgramsByContextAddress(dict):
    """pyrender's shader-program cache, keyed by the GL context's address.

    pyrender keys its cache by (current context, shaders, defines). Under OSMesa, PyOpenGL
    returns a new pointer object for the current context on every call, and those compare
    unequal, so pyrender compiled a fresh program on every render and kept them all (a
    leak, and most of the cost of a small render). Keying by the address fixes both.
    """

    @staticmethod
    def _key(key: tuple) -> tuple:
        context, *rest = key
        try:
            context = ctypes.cast(context, ctypes.c_void_p).value
        except (ctypes.ArgumentError, TypeError):
            pass  # already a plain, comparable handle
        return (context, *rest)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._key(key))

    def __getitem__(self, key: tuple):
        return super().__getitem__(self._key(key))

    def __setitem__(self, key: tuple, value) -> None:
        super().__setitem__(self._key(key), value)


def release_renderer() -> None:
    """Delete this thread's OffscreenRenderer and its GL context (e.g. before a worker
    thread ends); the next render on this thread makes a new one."""
    renderer = getattr(_thread_state, "renderer", None)
    if renderer is not None:
        renderer.delete()
        _thread_state.renderer = None
