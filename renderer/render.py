"""Offscreen rendering of a normalised mesh from every camera of a rig.

Camera model: a perspective camera at CAMERA_DISTANCE from the origin on the ray through
`rig.positions[i]`, looking at the origin, image up = world +Z projected onto the image
plane (+Y when the view is within 1 degree of +-Z; see `renderer.rigs.up_vector`). The
field of view makes the unit sphere's silhouette a centred disc of radius
SPHERE_FILL * size / 2 pixels. Shading: a grey, fully rough material, flat shaded, on a
white background, lit by a directional light that sits on the camera, plus a little
ambient light: the look of the classic multi-view datasets. Lighting is two-sided: a face
seen from behind is lit as if its normal pointed at the camera. Meshes made by others are
often open, single-sided or wound either way, and vertex noise pushes the two sides of a
thin shell (a glass pane, a leaf) through each other; lit from one side only, such faces
turn black, and a noisy copy of a thin shell turns into black-and-grey speckle. A closed
mesh wound outwards renders as before, except for a few pixels where a back face ties a
front one.

All views of a shape are drawn in one pass: one instanced draw call puts view i into
layer i of a 2D-array framebuffer, and one read brings every layer back. The shaders are
pyrender's (renderer/shaders/), so the images are the bytes that pyrender's one render per
view gives under OSMesa (`render_views_per_view`, the reference the tests hold it to, with
each view's faces turned towards its camera), colour and depth alike. Two things make them
bit-identical, not merely close:
- pyrender under OSMesa draws into the window-system buffer, single-sampled, which Mesa
  stores top row first and rasterises with the bottom-left fill rule; the layered
  framebuffer is set to the same with glClipControl(GL_UPPER_LEFT). Without it, depth
  differs in the last bit and pixels on a shared edge can go to the other triangle.
- the vertex shader keeps pyrender's matrix chain, identities included.
(pyrender under EGL draws into a 4x multisampled framebuffer instead; the one-pass
renderer draws single-sampled everywhere, so a GPU renders what the CPU renders.)

The platform comes from PYOPENGL_PLATFORM (osmesa when unset; egl on a GPU machine).
A GL context belongs to the thread that made it, so each thread keeps its own (a pyrender
OffscreenRenderer) with its layered framebuffer, reused across calls.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

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
# How faces are lit, recorded with rendered views (e.g. a view store's manifest) so that views
# lit another way (one-sided, as before) are never mixed with these.
LIGHTING = "two-sided"

# What the one-pass renderer needs beyond GL 3.3 core: gl_Layer written by the vertex
# shader (either extension) and glClipControl (core in 4.5).
LAYER_EXTENSIONS = ("GL_ARB_shader_viewport_layer_array", "GL_AMD_vertex_shader_layer")
CLIP_CONTROL_EXTENSION = "GL_ARB_clip_control"
_SHADERS = Path(__file__).with_name("shaders")

_thread_state = threading.local()


def render_views(
    mesh: trimesh.Trimesh, rig: str | Rig = "circle-12", size: int = 224, *, depth: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render `mesh` (expected inside the unit sphere, see `normalize`) from each camera.

    Returns uint8 views (V, size, size, 3), view i seen from `rig.positions[i]`; with
    `depth=True`, also float32 depths (V, size, size): distance along the camera's axis,
    0 where the background shows. Same mesh, rig and size give the same bytes. All views
    are drawn in one pass where the GL has layered rendering (llvmpipe and NVIDIA do),
    else one view at a time (`render_views_per_view`), with the same result.
    """
    rig = get_rig(rig) if isinstance(rig, str) else rig
    offscreen = _offscreen_renderer(size)
    offscreen._platform.make_current()
    layered = _layered_target(offscreen, size, rig.num_views)
    if layered is None:
        return render_views_per_view(mesh, rig, size, depth=depth)
    return layered.render(mesh, rig, depth=depth)


def render_views_per_view(
    mesh: trimesh.Trimesh, rig: str | Rig = "circle-12", size: int = 224, *, depth: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """`render_views` the way pyrender does it: one render and one read per view, the
    camera and light moved between them. The fallback where the GL lacks layered
    rendering, and the reference that the one-pass renderer is tested against.

    pyrender lights one side of a face only, so each view gets the mesh with the normals
    of the faces it sees from behind reversed: the two-sided lighting of the one-pass
    shaders, decided as they decide it (the sign of normal . (camera - third vertex), in
    float32)."""
    pyrender = _pyrender()
    rig = get_rig(rig) if isinstance(rig, str) else rig
    scene = pyrender.Scene(bg_color=BACKGROUND, ambient_light=AMBIENT)
    camera = scene.add(_camera())
    light = scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=LIGHT_INTENSITY))
    renderer = _offscreen_renderer(size)
    vertices = _flat_vertices(mesh)
    positions, normals = vertices[:, :3], vertices[:, 3:]
    material = _material()
    colors = np.empty((rig.num_views, size, size, 3), dtype=np.uint8)
    depths = np.empty((rig.num_views, size, size), dtype=np.float32) if depth else None
    for i, direction in enumerate(rig.positions):
        pose = camera_pose(direction, CAMERA_DISTANCE)
        behind = _faces_seen_from_behind(positions, normals, pose[:3, 3].astype(np.float32))
        primitive = pyrender.Primitive(
            positions=positions,
            normals=np.where(np.repeat(behind, 3)[:, None], -normals, normals),
            material=material,
        )
        node = scene.add(pyrender.Mesh([primitive]))
        scene.set_pose(camera, pose)
        scene.set_pose(light, pose)
        color, view_depth = renderer.render(scene)
        scene.remove_node(node)
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


def _material():
    return _pyrender().MetallicRoughnessMaterial(
        baseColorFactor=BASE_COLOR, metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True
    )


def _camera():
    return _pyrender().PerspectiveCamera(yfov=YFOV, znear=Z_NEAR, zfar=Z_FAR)


def _offscreen_renderer(size: int):
    renderer = getattr(_thread_state, "renderer", None)
    if renderer is not None and renderer.viewport_width == size:
        return renderer
    release_renderer()
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
    """Delete this thread's GL context and what lives in it (e.g. before a worker thread
    ends); the next render on this thread makes a new one."""
    renderer = getattr(_thread_state, "renderer", None)
    if renderer is not None:
        renderer.delete()  # the context goes, and the layered target's objects with it
    _thread_state.renderer = None
    _thread_state.layered = None


def _layered_target(offscreen, size: int, num_views: int) -> _LayeredTarget | None:
    """This thread's one-pass target for `size` x `num_views`, made on first use in the
    current context; None where the GL cannot render layers from the vertex shader."""
    state = getattr(_thread_state, "layered", None)
    if state is not None and state.fits(size, num_views):
        return state
    if state is not None:
        state.delete()
    _thread_state.layered = None
    if not _supports_layered_rendering():
        return None
    _thread_state.layered = _LayeredTarget.create(size, num_views)
    return _thread_state.layered


@functools.cache
def _supports_layered_rendering() -> bool:
    from OpenGL import GL as gl

    names = {
        gl.glGetStringi(gl.GL_EXTENSIONS, i).decode()
        for i in range(gl.glGetIntegerv(gl.GL_NUM_EXTENSIONS))
    }
    return CLIP_CONTROL_EXTENSION in names and any(name in names for name in LAYER_EXTENSIONS)


def _shader_source(name: str, num_views: int) -> str:
    """A shader of renderer/shaders/ with NUM_VIEWS defined (after #version and
    #extension, which must come first)."""
    lines = (_SHADERS / name).read_text().splitlines(keepends=True)
    directives = 0
    while lines[directives].startswith(("#version", "#extension")):
        directives += 1
    return "".join([*lines[:directives], f"#define NUM_VIEWS {num_views}\n", *lines[directives:]])


@dataclass
class _LayeredTarget:
    """A 2D-array colour and depth framebuffer with a layer per view, the program that
    draws every view into it in one instanced draw, and the mesh's vertex buffer."""

    size: int
    num_views: int
    program: int
    uniforms: dict[str, int]
    vertex_array: int
    vertex_buffer: int
    instance_buffer: int
    framebuffer: int
    color: int
    depth: int

    @classmethod
    def create(cls, size: int, num_views: int) -> _LayeredTarget:
        from OpenGL import GL as gl
        from OpenGL.GL import shaders

        stages = [
            shaders.compileShader(_shader_source(name, num_views), kind)
            for name, kind in (
                ("views.vert", gl.GL_VERTEX_SHADER),
                ("views.frag", gl.GL_FRAGMENT_SHADER),
            )
        ]
        program = shaders.compileProgram(*stages, validate=False)
        uniforms = {
            name: gl.glGetUniformLocation(program, name)
            for name in (
                "M", "views", "P", "base_color_factor", "metallic_factor", "roughness_factor",
                "emissive_factor", "n_directional_lights", "light_color", "light_intensity",
                "light_directions", "cam_positions", "ambient_light",
            )
        }  # fmt: skip

        vertex_array = gl.glGenVertexArrays(1)
        vertex_buffer, instance_buffer = gl.glGenBuffers(2)
        gl.glBindVertexArray(vertex_array)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, vertex_buffer)
        for location in (0, 1):  # position, normal: interleaved float32 (x y z nx ny nz)
            gl.glVertexAttribPointer(
                location, 3, gl.GL_FLOAT, gl.GL_FALSE, 24, ctypes.c_void_p(12 * location)
            )
            gl.glEnableVertexAttribArray(location)
        # pyrender's per-instance model matrix, one identity shared by every view.
        identity = np.eye(4, dtype=np.float32)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, instance_buffer)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, identity.nbytes, identity, gl.GL_STATIC_DRAW)
        for column in range(4):
            gl.glVertexAttribPointer(
                2 + column, 4, gl.GL_FLOAT, gl.GL_FALSE, 64, ctypes.c_void_p(16 * column)
            )
            gl.glEnableVertexAttribArray(2 + column)
            gl.glVertexAttribDivisor(2 + column, num_views)
        gl.glBindVertexArray(0)

        color, depth = gl.glGenTextures(2)
        for texture, internal, pixel_format, pixel_type in (
            (color, gl.GL_RGBA8, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE),
            (depth, gl.GL_DEPTH_COMPONENT24, gl.GL_DEPTH_COMPONENT, gl.GL_FLOAT),
        ):
            gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, texture)
            gl.glTexImage3D(
                gl.GL_TEXTURE_2D_ARRAY, 0, internal, size, size, num_views, 0,
                pixel_format, pixel_type, None,
            )  # fmt: skip
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, 0)
        framebuffer = gl.glGenFramebuffers(1)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, framebuffer)
        gl.glFramebufferTexture(gl.GL_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, color, 0)
        gl.glFramebufferTexture(gl.GL_FRAMEBUFFER, gl.GL_DEPTH_ATTACHMENT, depth, 0)
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"layered framebuffer incomplete (GL status {status:#x})")
        return cls(
            size, num_views, program, uniforms, vertex_array, vertex_buffer, instance_buffer,
            framebuffer, color, depth,
        )  # fmt: skip

    def fits(self, size: int, num_views: int) -> bool:
        return (self.size, self.num_views) == (size, num_views)

    def delete(self) -> None:
        from OpenGL import GL as gl

        gl.glDeleteFramebuffers(1, [self.framebuffer])
        gl.glDeleteTextures(2, [self.color, self.depth])
        gl.glDeleteBuffers(2, [self.vertex_buffer, self.instance_buffer])
        gl.glDeleteVertexArrays(1, [self.vertex_array])
        gl.glDeleteProgram(self.program)

    def render(
        self, mesh: trimesh.Trimesh, rig: Rig, *, depth: bool
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        from OpenGL import GL as gl
        from OpenGL.GL.ARB.clip_control import glClipControl

        size, num_views = self.size, self.num_views
        vertices = _flat_vertices(mesh)
        poses = np.stack([camera_pose(direction, CAMERA_DISTANCE) for direction in rig.positions])
        # As pyrender computes them: V = inv(pose) in float64, the light's direction is the
        # camera's -z, then float32 on the way to the GL.
        views = np.linalg.inv(poses).astype(np.float32)
        projection = _camera().get_projection_matrix(width=size, height=size)

        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.vertex_buffer)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, vertices.nbytes, vertices, gl.GL_STREAM_DRAW)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)
        gl.glUseProgram(self.program)
        u = self.uniforms
        gl.glUniformMatrix4fv(u["M"], 1, gl.GL_TRUE, np.eye(4, dtype=np.float32))
        gl.glUniformMatrix4fv(u["views"], num_views, gl.GL_TRUE, views)
        gl.glUniformMatrix4fv(u["P"], 1, gl.GL_TRUE, projection.astype(np.float32))
        gl.glUniform4fv(u["base_color_factor"], 1, np.array(BASE_COLOR, dtype=np.float32))
        gl.glUniform1f(u["metallic_factor"], 0.0)
        gl.glUniform1f(u["roughness_factor"], 1.0)
        gl.glUniform3fv(u["emissive_factor"], 1, np.zeros(3, dtype=np.float32))
        gl.glUniform1i(u["n_directional_lights"], 1)
        gl.glUniform3fv(u["light_color"], 1, np.ones(3, dtype=np.float32))
        gl.glUniform1f(u["light_intensity"], LIGHT_INTENSITY)
        gl.glUniform3fv(
            u["light_directions"], num_views, np.ascontiguousarray(-poses[:, :3, 2], np.float32)
        )
        gl.glUniform3fv(
            u["cam_positions"], num_views, np.ascontiguousarray(poses[:, :3, 3], np.float32)
        )
        gl.glUniform3fv(u["ambient_light"], 1, np.array(AMBIENT, dtype=np.float32))

        # The fixed-function state pyrender's forward pass sets for this material.
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.framebuffer)
        glClipControl(gl.GL_UPPER_LEFT, gl.GL_NEGATIVE_ONE_TO_ONE)
        gl.glViewport(0, 0, size, size)
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthMask(gl.GL_TRUE)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDepthRange(0.0, 1.0)
        gl.glClearColor(*BACKGROUND)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glEnable(gl.GL_MULTISAMPLE)
        gl.glEnable(gl.GL_BLEND)
        gl.glBlendFunc(gl.GL_ONE, gl.GL_ZERO)
        gl.glPolygonMode(gl.GL_FRONT_AND_BACK, gl.GL_FILL)
        # Back faces are drawn, as pyrender draws a double-sided material. Culling them drew
        # closed meshes 1.7x faster, but even among the 143 meshes of bench.corpus that are
        # closed and wound outwards, 8 then rendered visibly otherwise (doors and windows
        # whose shells cross: up to 7,376 pixels of 12 views at 96 px, descriptor cosine
        # down to 0.52) and 73 more by up to 100 pixels, most where a back face ties a
        # front one on an edge.
        gl.glDisable(gl.GL_CULL_FACE)
        gl.glDisable(gl.GL_PROGRAM_POINT_SIZE)
        gl.glBindVertexArray(self.vertex_array)
        gl.glDrawArraysInstanced(gl.GL_TRIANGLES, 0, len(vertices), num_views)
        gl.glBindVertexArray(0)
        gl.glUseProgram(0)
        # pyrender's own renders (the fallback) share this context: leave it as GL's default.
        glClipControl(gl.GL_LOWER_LEFT, gl.GL_NEGATIVE_ONE_TO_ONE)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)

        # With the upper-left origin, row 0 of each layer is the image's top row.
        rgba = np.empty((num_views, size, size, 4), dtype=np.uint8)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self.color)
        gl.glGetTexImage(gl.GL_TEXTURE_2D_ARRAY, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)
        colors = np.ascontiguousarray(rgba[..., :3])
        if not depth:
            gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, 0)
            return colors
        window_depth = np.empty((num_views, size, size), dtype=np.float32)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self.depth)
        gl.glGetTexImage(
            gl.GL_TEXTURE_2D_ARRAY, 0, gl.GL_DEPTH_COMPONENT, gl.GL_FLOAT, window_depth
        )
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, 0)
        return colors, _linear_depth(window_depth)


def _flat_vertices(mesh: trimesh.Trimesh) -> np.ndarray:
    """Flat shading as pyrender.Mesh.from_trimesh(smooth=False) lays it out, the same
    float32 values: three vertices per face, each with the face's normal; interleaved
    (x y z nx ny nz), (3F, 6). Cast before the gather: half the memory traffic."""
    vertices = np.empty((len(mesh.faces), 3, 6), dtype=np.float32)
    vertices[:, :, :3] = mesh.vertices.astype(np.float32)[mesh.faces]
    vertices[:, :, 3:] = mesh.face_normals.astype(np.float32)[:, None, :]
    return vertices.reshape(-1, 6)


def _faces_seen_from_behind(
    positions: np.ndarray, normals: np.ndarray, camera: np.ndarray
) -> np.ndarray:
    """Per face of flat vertices (3F, 3): does `camera` lie behind its plane? Measured at
    the face's third vertex, GL's provoking vertex, as views.vert measures it."""
    third = slice(2, None, 3)
    return np.einsum("ij,ij->i", normals[third], camera - positions[third]) < 0


def _linear_depth(window_depth: np.ndarray) -> np.ndarray:
    """Depth-buffer values to distance along the camera axis, 0 for the background:
    pyrender's Renderer.read_depth_buf, operation for operation (so bit for bit)."""
    background = window_depth == 1.0
    ndc = 2.0 * window_depth - 1.0
    foreground = np.logical_not(background)
    ndc[foreground] = (2.0 * Z_NEAR * Z_FAR) / (Z_FAR + Z_NEAR - ndc[foreground] * (Z_FAR - Z_NEAR))
    ndc[background] = 0.0
    return ndc
