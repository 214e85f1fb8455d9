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

All views of a shape are drawn in one pass, in two steps, into 2D-array textures with a
layer per view, and one read brings every layer back:
1. the surface pass draws the mesh once, instanced, view i into layer i: its depth, and
   which face each pixel sees;
2. the shading pass lights each pixel of each layer once, with pyrender's shader
   (renderer/shaders/), where pyrender lights every fragment drawn, a pixel as often as
   faces are drawn over it, and a face smaller than a pixel as a whole block of them.
The views are those of pyrender's one render per view under OSMesa
(`render_views_per_view`, the reference the tests hold it to, with each view's faces
turned towards its camera). The depth is the same, bit for bit. The colour is too, but
for a value here and there one grey level apart (`bench.render` counts them: 60 of 141.6
million over 120 real meshes): pyrender interpolates three copies of a face's normal,
which rounds it in the last bit, where the shading pass takes the face's own. Two things
make the depth and the coverage bit-identical, not merely close:
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
    if layered is None or not _one_pass_draws(len(mesh.faces)):
        return render_views_per_view(mesh, rig, size, depth=depth)
    return layered.render(mesh, rig, depth=depth)


def render_views_per_view(
    mesh: trimesh.Trimesh,
    rig: str | Rig = "circle-12",
    size: int = 224,
    *,
    depth: bool = False,
    two_sided: bool = True,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """`render_views` the way pyrender does it: one render and one read per view, the
    camera and light moved between them. The fallback where the GL lacks layered
    rendering, and the reference that the one-pass renderer is tested against.

    pyrender lights one side of a face only, so each view gets the mesh with the normals
    of the faces it sees from behind reversed: the two-sided lighting of the one-pass
    shaders, decided as they decide it (the sign of normal . (camera - third vertex), in
    float32). `two_sided=False` is pyrender as it is, the mesh uploaded once and lit on
    its front only: the renderer before one pass and two-sided lighting, which
    bench.render times the one-pass renderer against."""
    pyrender = _pyrender()
    rig = get_rig(rig) if isinstance(rig, str) else rig
    scene = pyrender.Scene(bg_color=BACKGROUND, ambient_light=AMBIENT)
    camera = scene.add(_camera())
    light = scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=LIGHT_INTENSITY))
    renderer = _offscreen_renderer(size)
    vertices = _flat_vertices(mesh)
    positions, normals = vertices[:, :3], vertices[:, 3:]
    material = _material()
    if not two_sided:
        scene.add(pyrender.Mesh([pyrender.Primitive(positions, normals, material=material)]))
    colors = np.empty((rig.num_views, size, size, 3), dtype=np.uint8)
    depths = np.empty((rig.num_views, size, size), dtype=np.float32) if depth else None
    for i, direction in enumerate(rig.positions):
        pose = camera_pose(direction, CAMERA_DISTANCE)
        if two_sided:
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
        if two_sided:
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


def _program(vertex: str, fragment: str, num_views: int) -> int:
    from OpenGL import GL as gl
    from OpenGL.GL import shaders

    return shaders.compileProgram(
        shaders.compileShader(_shader_source(vertex, num_views), gl.GL_VERTEX_SHADER),
        shaders.compileShader(_shader_source(fragment, num_views), gl.GL_FRAGMENT_SHADER),
        validate=False,
    )


@dataclass(frozen=True)
class _Cameras:
    """What the shaders need of a rig's cameras, as pyrender computes it: V = inv(pose) in
    float64, the light's direction the camera's -z, then float32 on the way to the GL."""

    views: np.ndarray  # (V, 4, 4) world to camera
    light_directions: np.ndarray  # (V, 3)
    positions: np.ndarray  # (V, 3)
    rays: np.ndarray  # (V, 3, 3) (x, y, -1) at a pixel's centre, x y in NDC, to its ray


@functools.lru_cache(maxsize=16)
def _cameras(rig_positions: bytes, size: int) -> _Cameras:
    directions = np.frombuffer(rig_positions, dtype=np.float64).reshape(-1, 3)
    poses = np.stack([camera_pose(direction, CAMERA_DISTANCE) for direction in directions])
    projection = _camera().get_projection_matrix(width=size, height=size)
    to_camera_ray = np.diag([1 / projection[0, 0], 1 / projection[1, 1], 1.0])
    return _Cameras(
        views=np.linalg.inv(poses).astype(np.float32),
        light_directions=np.ascontiguousarray(-poses[:, :3, 2], np.float32),
        positions=np.ascontiguousarray(poses[:, :3, 3], np.float32),
        rays=(poses[:, :3, :3] @ to_camera_ray).astype(np.float32),
    )


@dataclass
class _SurfaceArrays:
    """A mesh as the surface pass draws it.

    `vertices` (N, 4) float32: x y z and, bit-cast in the last column, the int32 index of
    the face whose provoking vertex it is. `indices` (F, 3) uint32: the faces in their
    order, each corner where the mesh has it, but for a face whose third vertex already
    provokes an earlier face: that vertex is copied for it. So no vertex provokes two faces,
    every face draws the float32 corners that pyrender draws, and a face's index reaches the
    fragments without gl_PrimitiveID (which sends llvmpipe through a slow primitive
    assembler). `faces` (F, 2, 4) float32: per face its normal and its third vertex, the
    values pyrender's vertex stage lights it with."""

    vertices: np.ndarray
    indices: np.ndarray
    faces: np.ndarray


def _surface_arrays(mesh: trimesh.Trimesh) -> _SurfaceArrays:
    positions = mesh.vertices.astype(np.float32)
    indices = np.array(mesh.faces, dtype=np.uint32)
    third = indices[:, 2].copy()
    face_count = len(indices)
    first = np.full(len(positions), face_count, dtype=np.int64)
    np.minimum.at(first, third, np.arange(face_count))  # the first face each vertex provokes
    owns = first < face_count
    copied = np.flatnonzero(first[third] != np.arange(face_count))
    vertices = np.zeros((len(positions) + len(copied), 4), dtype=np.float32)
    vertices[: len(positions), :3] = positions
    vertices[len(positions) :, :3] = positions[third[copied]]
    face_of = vertices.view(np.int32)[:, 3]
    face_of[np.flatnonzero(owns)] = first[owns]
    face_of[len(positions) :] = copied
    indices[copied, 2] = len(positions) + np.arange(len(copied), dtype=np.uint32)
    faces = np.zeros((face_count, 2, 4), dtype=np.float32)
    faces[:, 0, :3] = mesh.face_normals.astype(np.float32)
    faces[:, 1, :3] = positions[third]
    return _SurfaceArrays(vertices, indices, faces)


@functools.cache
def _max_texture_buffer_texels() -> int:
    from OpenGL import GL as gl

    return int(gl.glGetIntegerv(gl.GL_MAX_TEXTURE_BUFFER_SIZE))


def _one_pass_draws(face_count: int) -> bool:
    """Whether the one-pass renderer takes this many faces: two texels each in the face
    buffer, and face index + 1 exact in the surface pass's float32 (below 2^24)."""
    return face_count < 2**24 and 2 * face_count <= _max_texture_buffer_texels()


@dataclass
class _LayeredTarget:
    """Everything the one-pass renderer keeps in this thread's context for one size and
    view count: a layer per view in 2D-array textures, and two programs.

    1. The surface pass draws the mesh once, instanced, view i into layer i: depth, and
       per pixel the face drawn there, plus one (`surfaces`, R32F: exact to 2^24 faces).
    2. The shading pass runs pyrender's lighting once per pixel of each layer, from that
       face and the ray through the pixel (`color`, RGBA8). Lighting every fragment as it
       is drawn, as pyrender does, shades each pixel once per face drawn over it, and each
       face smaller than a pixel as a whole block of them."""

    size: int
    num_views: int
    surface_program: int
    shade_program: int
    surface_uniforms: dict[str, int]
    shade_uniforms: dict[str, int]
    mesh_arrays: int
    screen_arrays: int  # no attributes: the shading pass's triangle comes from gl_VertexID
    vertex_buffer: int
    index_buffer: int
    instance_buffer: int
    face_buffer: int
    face_texture: int
    surface_framebuffer: int
    shade_framebuffer: int
    surfaces: int
    color: int
    depth: int

    @classmethod
    def create(cls, size: int, num_views: int) -> _LayeredTarget:
        from OpenGL import GL as gl

        surface_program = _program("surface.vert", "surface.frag", num_views)
        shade_program = _program("shade.vert", "shade.frag", num_views)
        surface_uniforms = {
            name: gl.glGetUniformLocation(surface_program, name) for name in ("M", "views", "P")
        }
        shade_uniforms = {
            name: gl.glGetUniformLocation(shade_program, name)
            for name in (
                "base_color_factor", "metallic_factor", "roughness_factor", "emissive_factor",
                "n_directional_lights", "light_color", "light_intensity", "light_directions",
                "cam_positions", "ambient_light", "size", "rays", "surfaces", "faces",
            )
        }  # fmt: skip

        mesh_arrays, screen_arrays = gl.glGenVertexArrays(2)
        vertex_buffer, index_buffer, instance_buffer, face_buffer = gl.glGenBuffers(4)
        gl.glBindVertexArray(mesh_arrays)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, vertex_buffer)
        gl.glVertexAttribPointer(0, 3, gl.GL_FLOAT, gl.GL_FALSE, 16, ctypes.c_void_p(0))
        gl.glEnableVertexAttribArray(0)
        gl.glVertexAttribIPointer(1, 1, gl.GL_INT, 16, ctypes.c_void_p(12))
        gl.glEnableVertexAttribArray(1)
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
        gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, index_buffer)  # recorded in the array
        gl.glBindVertexArray(0)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)

        gl.glBindBuffer(gl.GL_TEXTURE_BUFFER, face_buffer)  # a buffer exists once bound
        gl.glBindBuffer(gl.GL_TEXTURE_BUFFER, 0)
        face_texture = gl.glGenTextures(1)
        gl.glBindTexture(gl.GL_TEXTURE_BUFFER, face_texture)
        gl.glTexBuffer(gl.GL_TEXTURE_BUFFER, gl.GL_RGBA32F, face_buffer)
        gl.glBindTexture(gl.GL_TEXTURE_BUFFER, 0)

        surfaces, color, depth = gl.glGenTextures(3)
        for texture, internal, pixel_format, pixel_type in (
            (surfaces, gl.GL_R32F, gl.GL_RED, gl.GL_FLOAT),
            (color, gl.GL_RGBA8, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE),
            (depth, gl.GL_DEPTH_COMPONENT24, gl.GL_DEPTH_COMPONENT, gl.GL_FLOAT),
        ):
            gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, texture)
            gl.glTexImage3D(
                gl.GL_TEXTURE_2D_ARRAY, 0, internal, size, size, num_views, 0,
                pixel_format, pixel_type, None,
            )  # fmt: skip
            gl.glTexParameteri(gl.GL_TEXTURE_2D_ARRAY, gl.GL_TEXTURE_MIN_FILTER, gl.GL_NEAREST)
            gl.glTexParameteri(gl.GL_TEXTURE_2D_ARRAY, gl.GL_TEXTURE_MAG_FILTER, gl.GL_NEAREST)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, 0)
        surface_framebuffer, shade_framebuffer = gl.glGenFramebuffers(2)
        surface_attachments = ((gl.GL_COLOR_ATTACHMENT0, surfaces), (gl.GL_DEPTH_ATTACHMENT, depth))
        shade_attachments = ((gl.GL_COLOR_ATTACHMENT0, color),)
        for framebuffer, attachments in (
            (surface_framebuffer, surface_attachments),
            (shade_framebuffer, shade_attachments),
        ):
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, framebuffer)
            for attachment, texture in attachments:
                gl.glFramebufferTexture(gl.GL_FRAMEBUFFER, attachment, texture, 0)
            status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
            if status != gl.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"layered framebuffer incomplete (GL status {status:#x})")

        # What every render of this size sets alike: pyrender's identity model matrix, the
        # material and the light, the layer size, the texture units.
        gl.glUseProgram(surface_program)
        gl.glUniformMatrix4fv(surface_uniforms["M"], 1, gl.GL_TRUE, np.eye(4, dtype=np.float32))
        projection = _camera().get_projection_matrix(width=size, height=size)
        gl.glUniformMatrix4fv(surface_uniforms["P"], 1, gl.GL_TRUE, projection.astype(np.float32))
        gl.glUseProgram(shade_program)
        u = shade_uniforms
        gl.glUniform4fv(u["base_color_factor"], 1, np.array(BASE_COLOR, dtype=np.float32))
        gl.glUniform1f(u["metallic_factor"], 0.0)
        gl.glUniform1f(u["roughness_factor"], 1.0)
        gl.glUniform3fv(u["emissive_factor"], 1, np.zeros(3, dtype=np.float32))
        gl.glUniform1i(u["n_directional_lights"], 1)
        gl.glUniform3fv(u["light_color"], 1, np.ones(3, dtype=np.float32))
        gl.glUniform1f(u["light_intensity"], LIGHT_INTENSITY)
        gl.glUniform3fv(u["ambient_light"], 1, np.array(AMBIENT, dtype=np.float32))
        gl.glUniform1i(u["size"], size)
        gl.glUniform1i(u["surfaces"], 0)  # texture units
        gl.glUniform1i(u["faces"], 1)
        gl.glUseProgram(0)
        return cls(
            size, num_views, surface_program, shade_program, surface_uniforms, shade_uniforms,
            mesh_arrays, screen_arrays, vertex_buffer, index_buffer, instance_buffer,
            face_buffer, face_texture, surface_framebuffer, shade_framebuffer, surfaces, color,
            depth,
        )  # fmt: skip

    def fits(self, size: int, num_views: int) -> bool:
        return (self.size, self.num_views) == (size, num_views)

    def delete(self) -> None:
        from OpenGL import GL as gl

        gl.glDeleteFramebuffers(2, [self.surface_framebuffer, self.shade_framebuffer])
        gl.glDeleteTextures(4, [self.face_texture, self.surfaces, self.color, self.depth])
        gl.glDeleteBuffers(
            4, [self.vertex_buffer, self.index_buffer, self.instance_buffer, self.face_buffer]
        )
        gl.glDeleteVertexArrays(2, [self.mesh_arrays, self.screen_arrays])
        gl.glDeleteProgram(self.surface_program)
        gl.glDeleteProgram(self.shade_program)

    def render(
        self, mesh: trimesh.Trimesh, rig: Rig, *, depth: bool
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        from OpenGL import GL as gl
        from OpenGL.GL.ARB.clip_control import glClipControl

        size, num_views = self.size, self.num_views
        arrays = _surface_arrays(mesh)
        cameras = _cameras(np.asarray(rig.positions, dtype=np.float64).tobytes(), size)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.vertex_buffer)
        gl.glBufferData(
            gl.GL_ARRAY_BUFFER, arrays.vertices.nbytes, arrays.vertices, gl.GL_STREAM_DRAW
        )
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.face_buffer)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, arrays.faces.nbytes, arrays.faces, gl.GL_STREAM_DRAW)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)
        gl.glBindVertexArray(self.mesh_arrays)  # its element buffer is the index buffer
        gl.glBufferData(
            gl.GL_ELEMENT_ARRAY_BUFFER, arrays.indices.nbytes, arrays.indices, gl.GL_STREAM_DRAW
        )
        gl.glBindVertexArray(0)
        # With the upper-left origin, row 0 of each layer is the image's top row.
        glClipControl(gl.GL_UPPER_LEFT, gl.GL_NEGATIVE_ONE_TO_ONE)
        gl.glViewport(0, 0, size, size)
        gl.glDisable(gl.GL_CULL_FACE)
        gl.glDisable(gl.GL_PROGRAM_POINT_SIZE)
        gl.glPolygonMode(gl.GL_FRONT_AND_BACK, gl.GL_FILL)

        # 1. Surfaces, with the depth test pyrender's forward pass sets. Back faces are
        # drawn, as pyrender draws a double-sided material. Culling them drew closed meshes
        # 1.7x faster, but even among the 143 meshes of bench.corpus that are closed and
        # wound outwards, 8 then rendered visibly otherwise (doors and windows whose shells
        # cross: up to 7,376 pixels of 12 views at 96 px, descriptor cosine down to 0.52)
        # and 73 more by up to 100 pixels, most where a back face ties a front one on an
        # edge.
        gl.glUseProgram(self.surface_program)
        gl.glUniformMatrix4fv(self.surface_uniforms["views"], num_views, gl.GL_TRUE, cameras.views)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.surface_framebuffer)
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthMask(gl.GL_TRUE)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDepthRange(0.0, 1.0)
        gl.glDisable(gl.GL_BLEND)
        gl.glClearColor(0.0, 0.0, 0.0, 0.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glBindVertexArray(self.mesh_arrays)
        gl.glDrawElementsInstanced(
            gl.GL_TRIANGLES, arrays.indices.size, gl.GL_UNSIGNED_INT, None, num_views
        )

        # 2. Shading, with the blend state pyrender sets for an opaque material.
        gl.glUseProgram(self.shade_program)
        u = self.shade_uniforms
        gl.glUniform3fv(u["light_directions"], num_views, cameras.light_directions)
        gl.glUniform3fv(u["cam_positions"], num_views, cameras.positions)
        gl.glUniformMatrix3fv(u["rays"], num_views, gl.GL_TRUE, cameras.rays)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.shade_framebuffer)
        gl.glDisable(gl.GL_DEPTH_TEST)
        gl.glEnable(gl.GL_BLEND)
        gl.glBlendFunc(gl.GL_ONE, gl.GL_ZERO)
        gl.glClearColor(*BACKGROUND)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self.surfaces)
        gl.glActiveTexture(gl.GL_TEXTURE1)
        gl.glBindTexture(gl.GL_TEXTURE_BUFFER, self.face_texture)
        gl.glBindVertexArray(self.screen_arrays)
        gl.glDrawArraysInstanced(gl.GL_TRIANGLES, 0, 3, num_views)

        # pyrender's own renders (the fallback) share this context: leave it as GL's default.
        gl.glBindVertexArray(0)
        gl.glBindTexture(gl.GL_TEXTURE_BUFFER, 0)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, 0)
        gl.glUseProgram(0)
        glClipControl(gl.GL_LOWER_LEFT, gl.GL_NEGATIVE_ONE_TO_ONE)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)

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
    the face's third vertex, GL's provoking vertex, as the shading pass measures it."""
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
