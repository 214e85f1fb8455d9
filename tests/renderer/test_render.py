"""Rendering checked as geometry: where the cameras are, what each view sees."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from renderer import RIGS, camera_pose, get_rig, normalize, render_file, render_views, view_grid
from renderer.render import CAMERA_DISTANCE, SPHERE_FILL, YFOV, render_views_per_view
from renderer.rigs import up_vector
from tests.renderer.meshes import arm_shape, noisy_thin_pane, open_mixed_winding

S3 = math.sqrt(3)
P = (1 + math.sqrt(5)) / 2
SPEC = {
    "circle-12": [
        (1, 0, S3 / 3), (S3 / 2, -1 / 2, S3 / 3), (1 / 2, -S3 / 2, S3 / 3), (0, -1, S3 / 3),
        (-1 / 2, -S3 / 2, S3 / 3), (-S3 / 2, -1 / 2, S3 / 3), (-1, 0, S3 / 3),
        (-S3 / 2, 1 / 2, S3 / 3), (-1 / 2, S3 / 2, S3 / 3), (0, 1, S3 / 3),
        (1 / 2, S3 / 2, S3 / 3), (S3 / 2, 1 / 2, S3 / 3),
    ],
    "dodecahedron-20": [
        (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1), (-1, 1, 1), (-1, 1, -1), (-1, -1, 1),
        (-1, -1, -1), (0, 1 / P, P), (0, 1 / P, -P), (0, -1 / P, P), (0, -1 / P, -P),
        (P, 0, 1 / P), (P, 0, -1 / P), (-P, 0, 1 / P), (-P, 0, -1 / P), (1 / P, P, 0),
        (-1 / P, P, 0), (1 / P, -P, 0), (-1 / P, -P, 0),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SPEC))
def test_rig_positions_are_the_spec_and_cameras_sit_on_them(name):
    rig = get_rig(name)
    np.testing.assert_allclose(rig.positions, np.array(SPEC[name]), rtol=0, atol=1e-15)
    for position in rig.positions:
        pose = camera_pose(position, CAMERA_DISTANCE)
        unit = position / np.linalg.norm(position)
        np.testing.assert_allclose(pose[:3, 3], CAMERA_DISTANCE * unit, atol=1e-12)
        np.testing.assert_allclose(pose[:3, 2], unit, atol=1e-12)  # looks along -z: at 0
        np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
        assert pose[2, 1] > 0, "world +Z must point up in the image"


def test_up_vector_rule():
    np.testing.assert_allclose(up_vector(np.array([1.0, 0, 0])), [0, 0, 1], atol=1e-12)
    # Looking straight down +-Z, +Z cannot point up: +Y does.
    np.testing.assert_allclose(up_vector(np.array([0, 0, 1.0])), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(up_vector(np.array([0, 0, -1.0])), [0, 1, 0], atol=1e-12)


def _foreground(views: np.ndarray) -> np.ndarray:
    return (views < 250).any(axis=-1)


def test_a_sphere_renders_as_a_centred_disc_of_the_expected_area():
    sphere = normalize(trimesh.creation.icosphere(subdivisions=5))
    views = render_views(sphere, "dodecahedron-20", 224)
    # The camera model: the unit sphere's silhouette has radius SPHERE_FILL * size / 2,
    # derived here from the distance and field of view rather than taken on trust.
    radius = 112 * math.tan(math.asin(1 / CAMERA_DISTANCE)) / math.tan(YFOV / 2)
    assert radius == pytest.approx(SPHERE_FILL * 112)
    expected = math.pi * radius**2
    for mask in _foreground(views):
        assert mask.sum() == pytest.approx(expected, rel=0.02)
        rows, cols = np.nonzero(mask)
        assert rows.mean() == pytest.approx(111.5, abs=0.5)
        assert cols.mean() == pytest.approx(111.5, abs=0.5)


def _expected_silhouette(mesh: trimesh.Trimesh, pose: np.ndarray, size: int) -> np.ndarray:
    """Rasterise the mesh's projected triangles with an independent pinhole model, 4x
    supersampled; a pixel is inside when at least half of it is covered."""
    world_to_camera = np.linalg.inv(pose)
    points = mesh.vertices @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    fine = 4 * size
    focal = (fine / 2) / math.tan(YFOV / 2)
    cols = fine / 2 + focal * points[:, 0] / -points[:, 2]
    rows = fine / 2 - focal * points[:, 1] / -points[:, 2]
    image = Image.new("L", (fine, fine), 0)
    draw = ImageDraw.Draw(image)
    for face in mesh.faces:
        draw.polygon([(cols[k] - 0.5, rows[k] - 0.5) for k in face], fill=1)
    coverage = np.array(image, dtype=np.float64).reshape(size, 4, size, 4).mean(axis=(1, 3))
    return coverage >= 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("name", sorted(RIGS))
def test_view_i_looks_from_direction_i(name):
    shape = normalize(arm_shape())
    rig = get_rig(name)
    size = 96
    rendered = _foreground(render_views(shape, rig, size))
    expected = [
        _expected_silhouette(shape, camera_pose(p, CAMERA_DISTANCE), size) for p in rig.positions
    ]
    for i, mask in enumerate(rendered):
        scores = [_iou(mask, other) for other in expected]
        assert scores[i] > 0.9, f"view {i} does not match camera {i}: IoU {scores[i]:.3f}"
        assert int(np.argmax(scores)) == i


def test_same_file_renders_identically_twice():
    data = arm_shape().export(file_type="ply")
    first = render_file(data, rig="circle-12", size=64)
    second = render_file(data, rig="circle-12", size=64)
    assert first.dtype == np.uint8 and first.shape == (12, 64, 64, 3)
    assert first.tobytes() == second.tobytes()


def test_two_threads_render_safely_and_identically():
    shape = normalize(arm_shape())
    expected = {size: render_views(shape, "circle-12", size) for size in (48, 64)}
    results: dict[int, list[np.ndarray]] = {48: [], 64: []}
    errors: list[BaseException] = []

    def work(size: int) -> None:
        try:
            for _ in range(3):
                results[size].append(render_views(shape, "circle-12", size))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(size,)) for size in (48, 64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for size, runs in results.items():
        assert len(runs) == 3
        for views in runs:
            assert views.tobytes() == expected[size].tobytes()


def test_depth_maps_measure_distance_along_the_camera_axis():
    sphere = normalize(trimesh.creation.icosphere(subdivisions=4))
    views, depths = render_views(sphere, "circle-12", 64, depth=True)
    assert depths.dtype == np.float32 and depths.shape == (12, 64, 64)
    background = ~_foreground(views)
    assert (depths[background] == 0).all()
    # The sphere's nearest point is CAMERA_DISTANCE - 1 in front of every camera.
    centre = depths[:, 31:33, 31:33]
    np.testing.assert_allclose(centre, CAMERA_DISTANCE - 1, atol=0.01)


def test_view_grid_places_and_labels_views_in_order():
    views = np.full((12, 20, 30, 3), 255, dtype=np.uint8)
    for i in range(12):
        views[i, 10:, :, :] = i * 20  # a grey level per view in the bottom half
    plain = np.array(view_grid(views, labels=False))
    assert plain.shape == (3 * 20, 4 * 30, 3)
    for i in range(12):
        row, col = divmod(i, 4)
        np.testing.assert_array_equal(
            plain[row * 20 : (row + 1) * 20, col * 30 : (col + 1) * 30], views[i]
        )
    labelled = np.array(view_grid(views))
    red = (labelled[..., 0] > 150) & (labelled[..., 1] < 100)
    assert red[:10, :30].any() and red[40:50, 90:120].any()
    assert not ((plain[..., 0] > 150) & (plain[..., 1] < 100)).any()


def test_the_thread_renderer_is_reused_without_piling_up_shader_programs():
    # Regression: under OSMesa, pyrender compiled and kept a new shader program on every
    # render (see renderer.render._ProgramsByContextAddress).
    from renderer.render import _thread_state

    shape = normalize(arm_shape())
    render_views_per_view(shape, "circle-12", 32)
    offscreen = _thread_state.renderer
    programs = len(offscreen._renderer._program_cache._program_cache)
    assert programs > 0
    for _ in range(3):
        render_views_per_view(shape, "circle-12", 32)
    assert _thread_state.renderer is offscreen
    assert len(offscreen._renderer._program_cache._program_cache) == programs


# Meshes on which an earlier one-pass renderer went wrong: the UV sphere's pole and its
# rows of edges through pixel centres (fill rule), the torus's depth ties (depth bits);
# and meshes whose back faces show, lit two-sided.
ONE_PASS_CASES = [
    ("uv sphere", "circle-12", 64),
    ("uv sphere", "dodecahedron-20", 224),
    ("torus", "circle-12", 224),
    ("arm", "dodecahedron-20", 96),
    ("open, mixed winding", "dodecahedron-20", 96),
    ("noisy thin pane", "circle-12", 128),
]


def _mesh(name: str) -> trimesh.Trimesh:
    if name == "uv sphere":
        return normalize(trimesh.creation.uv_sphere(count=[50, 50]))
    if name == "torus":
        return normalize(trimesh.creation.torus(1.0, 0.3))
    if name == "open, mixed winding":
        return normalize(open_mixed_winding())
    if name == "noisy thin pane":
        return normalize(noisy_thin_pane())
    return normalize(arm_shape())


def test_a_face_seen_from_behind_is_lit_as_seen_from_the_front():
    """A single-sided square in the plane y = 0, its normal +Y: circle-12's view 9 looks at
    its front from +Y, view 3 at its back from -Y, as a mirror image."""
    square = trimesh.Trimesh(
        [[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]],
        [[0, 2, 1], [0, 3, 2]],
        process=False,
    )
    assert square.face_normals[:, 1].min() == 1.0
    views = render_views(square, "circle-12", 64)
    front, back = views[9], views[3]
    assert (front < 255).any(axis=-1).sum() > 400
    assert back.tobytes() == front[:, ::-1].tobytes()  # not the ambient grey of an unlit face


def test_vertex_noise_on_a_thin_shell_does_not_turn_it_to_speckle():
    """Noise thicker than the pane interleaves its two sides. Lit one-sided, the faces seen
    from behind came out at the ambient grey (69): a quarter of the pane's pixels."""
    noisy, clean = (
        render_views(normalize(m), "circle-12", 64)
        for m in (noisy_thin_pane(), trimesh.creation.box(extents=[1.0, 0.002, 1.0]))
    )
    grey = noisy[..., 0][(noisy < 255).any(axis=-1)]
    assert grey.size > 5000
    assert (grey < 100).mean() < 0.02
    assert abs(grey.mean() - clean[..., 0][(clean < 255).any(axis=-1)].mean()) < 3


def _assert_views_of_the_reference(views: np.ndarray, reference: np.ndarray) -> None:
    """The one-pass renderer's documented difference from pyrender's: a colour value here
    and there one grey level apart (pyrender interpolates three copies of a face's normal,
    which rounds it in the last bit; the shading pass takes the face's own). Across 120
    real meshes, 60 values in 142 million differ; 1 in 10,000 is the bound."""
    assert views.shape == reference.shape and views.dtype == reference.dtype == np.uint8
    difference = np.abs(views.astype(np.int16) - reference)
    assert difference.max() <= 1
    assert np.count_nonzero(difference) <= difference.size // 10_000


@pytest.mark.parametrize(("name", "rig", "size"), ONE_PASS_CASES)
def test_one_pass_gives_the_views_of_one_render_per_view(name, rig, size):
    from renderer.render import _thread_state

    mesh = _mesh(name)
    views, depths = render_views(mesh, rig, size, depth=True)
    assert _thread_state.layered is not None, "this GL should render all views in one pass"
    # pyrender's per-view renders share the context: the one-pass state must not leak.
    expected_views, expected_depths = render_views_per_view(mesh, rig, size, depth=True)
    _assert_views_of_the_reference(views, expected_views)
    assert depths.shape == expected_depths.shape and depths.dtype == np.float32
    assert depths.tobytes() == expected_depths.tobytes()
    assert render_views(mesh, rig, size).tobytes() == views.tobytes()


def test_the_surface_pass_gets_each_face_with_its_own_provoking_vertex():
    """Every face is drawn with the mesh's float32 corners, in order; its last corner is a
    vertex that provokes no other face and carries the face's index (how the surface pass
    knows a pixel's face without gl_PrimitiveID)."""
    from renderer.render import _surface_arrays

    mesh = normalize(arm_shape())
    arrays = _surface_arrays(mesh)
    corners = arrays.vertices[:, :3][arrays.indices]
    assert corners.tobytes() == mesh.vertices.astype(np.float32)[mesh.faces].tobytes()
    provoking = arrays.indices[:, 2]
    assert len(np.unique(provoking)) == len(mesh.faces)
    face_of = arrays.vertices.view(np.int32)[:, 3]
    assert (face_of[provoking] == np.arange(len(mesh.faces))).all()
    assert len(arrays.vertices) < 3 * len(mesh.faces)  # corners shared where they can be
    assert (arrays.faces[:, 0, :3] == mesh.face_normals.astype(np.float32)).all()
    assert (arrays.faces[:, 1, :3] == corners[:, 2]).all()


def test_a_mesh_beyond_the_face_buffer_renders_one_view_at_a_time(monkeypatch):
    from renderer import render

    def one_pass(*args, **kwargs):
        raise AssertionError("the one-pass renderer was used")

    shape = normalize(arm_shape())
    render_views(shape, "circle-12", 32)  # this thread's one-pass target exists
    monkeypatch.setattr(render, "_max_texture_buffer_texels", lambda: len(shape.faces))
    monkeypatch.setattr(render._LayeredTarget, "render", one_pass)
    assert render_views(shape, "circle-12", 32).tobytes() == (
        render_views_per_view(shape, "circle-12", 32).tobytes()
    )


def test_the_one_pass_target_is_made_once_per_size_and_rig():
    from renderer.render import _thread_state

    shape = normalize(arm_shape())
    render_views(shape, "circle-12", 40)
    target = _thread_state.layered
    render_views(shape, "circle-12", 40)
    assert _thread_state.layered is target
    twenty = render_views(shape, "dodecahedron-20", 40)
    assert _thread_state.layered is not target and _thread_state.layered.num_views == 20
    _assert_views_of_the_reference(twenty, render_views_per_view(shape, "dodecahedron-20", 40))
