"""Loading every format, and a typed error for every kind of broken or hostile file."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

import renderer
from renderer import (
    BadFaceIndexError,
    CompressedContentError,
    DegenerateMeshError,
    EmptyMeshError,
    FileTooLargeError,
    LoadLimits,
    LoadTimeoutError,
    MalformedMeshError,
    MeshError,
    NoFacesError,
    NonFiniteError,
    SceneTooComplexError,
    TooManyFacesError,
    UnsupportedFormatError,
    load_mesh,
    normalize,
)
from renderer.workers import parser_pool
from tests.polling import wait_until
from tests.renderer.meshes import (
    SCENE_BOUNDS,
    SCENE_FACES,
    glb_with_extension,
    make_glb,
    nested_glb,
    two_part_scene,
)


def _exports() -> dict[str, bytes]:
    scene = two_part_scene()
    flat = scene.to_mesh()
    gltf = trimesh.exchange.gltf.export_gltf(scene, embed_buffers=True)
    return {
        "obj": scene.export(file_type="obj").encode(),
        "stl-binary": flat.export(file_type="stl"),
        "stl-ascii": flat.export(file_type="stl_ascii").encode(),
        "ply-binary": flat.export(file_type="ply", encoding="binary"),
        "ply-ascii": flat.export(file_type="ply", encoding="ascii"),
        "glb": scene.export(file_type="glb"),
        "gltf-embedded": gltf["model.gltf"],
        "3mf": scene.export(file_type="3mf"),
        "off": flat.export(file_type="off").encode(),
    }


EXPORTS = _exports()
EXTENSIONS = {"stl-binary": "stl", "stl-ascii": "stl", "ply-binary": "ply", "ply-ascii": "ply"}
EXTENSIONS.update({"gltf-embedded": "gltf"})


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_every_format_loads_from_unnamed_bytes_with_transforms_applied(kind):
    mesh = load_mesh(EXPORTS[kind])
    assert len(mesh.faces) == SCENE_FACES
    np.testing.assert_allclose(mesh.bounds, SCENE_BOUNDS, atol=1e-6)


@pytest.mark.parametrize("kind", ["obj", "stl-binary", "3mf", "gltf-embedded"])
def test_every_format_loads_from_a_path(tmp_path, kind):
    path = tmp_path / f"shape.{EXTENSIONS.get(kind, kind)}"
    path.write_bytes(EXPORTS[kind])
    mesh = load_mesh(path)
    np.testing.assert_allclose(mesh.bounds, SCENE_BOUNDS, atol=1e-6)


def test_content_wins_over_a_wrong_extension():
    mesh = load_mesh(EXPORTS["ply-binary"], filename="really.obj")
    assert len(mesh.faces) == SCENE_FACES


def test_modelnet_glued_off_header_and_polygons_are_fanned():
    # ModelNet's broken first line: counts glued to the keyword; one quad, one triangle.
    data = b"OFF5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n4 0 1 2 3\n3 0 1 4\n"
    mesh = load_mesh(data)
    assert len(mesh.faces) == 3
    assert mesh.area == pytest.approx(1.0 + 0.5)


def test_off_with_comments_and_colours():
    data = (
        b"COFF\n# a comment\n3 1 0\n"
        b"0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 255 255\n3 0 1 2\n"
    )
    assert load_mesh(data).area == pytest.approx(0.5)


def _turned(mesh: trimesh.Trimesh, degrees: float) -> trimesh.Trimesh:
    turned = mesh.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(np.radians(degrees), [0, 0, 1]))
    return turned


def test_normalize_fits_the_unit_sphere_and_follows_a_turn_about_the_up_axis():
    # The rule used to be the bounding box's centre, which moves (and the scale with it)
    # when a shape turns about +Z: now the centre and the scale turn with the shape, so
    # normalising and turning commute, whatever the angle.
    mesh = load_mesh(EXPORTS["off"])
    mesh.apply_transform(trimesh.transformations.translation_matrix([3.0, -2.0, 0.5]))
    normal = normalize(mesh)
    assert np.linalg.norm(normal.vertices, axis=1).max() == pytest.approx(1.0)
    z = normal.vertices[:, 2]
    assert z.min() == pytest.approx(-z.max())
    for degrees in (30.0, 77.7, 180.0, 301.5):
        np.testing.assert_allclose(
            normalize(_turned(mesh, degrees)).vertices,
            _turned(normal, degrees).vertices,
            atol=1e-12,
        )
    # Mirrored, scaled and moved alike.
    mirrored = mesh.copy()
    mirrored.apply_transform(np.diag([1.0, -1.0, 1.0, 1.0]) * [2.5, 2.5, 2.5, 1.0])
    np.testing.assert_allclose(
        normalize(mirrored).vertices, normal.vertices * [1.0, -1.0, 1.0], atol=1e-12
    )


def test_normalize_centres_an_axis_aligned_box_as_its_bounding_box_did():
    box = trimesh.creation.box(extents=[2.0, 0.5, 1.0])
    box.apply_translation([10.0, 20.0, 30.0])
    normal = normalize(box)
    np.testing.assert_allclose(normal.bounds.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 50, 5000])
def test_enclosing_circle_is_the_smallest_that_encloses(count):
    points = np.random.default_rng(count).normal(size=(count, 2)) * [3.0, 1.0] + 7.0
    centre, radius = renderer.loading.enclosing_circle(points)
    distances = np.linalg.norm(points - centre, axis=1)
    assert distances.max() == pytest.approx(radius, abs=1e-9)
    # Smallest: at least two points on the circle, and no centre a step away does better.
    assert (np.abs(distances - radius) < 1e-9).sum() >= min(2, count)
    for direction in np.random.default_rng(0).normal(size=(16, 2)):
        moved = centre + 1e-4 * direction / np.linalg.norm(direction)
        assert np.linalg.norm(points - moved, axis=1).max() >= radius - 1e-12


def test_enclosing_circle_of_points_on_a_line_or_on_one_spot():
    line = np.stack([np.linspace(0, 1, 9), np.linspace(0, 2, 9)], axis=1)
    centre, radius = renderer.loading.enclosing_circle(line)
    np.testing.assert_allclose(centre, [0.5, 1.0])
    assert radius == pytest.approx(np.hypot(1, 2) / 2)
    centre, radius = renderer.loading.enclosing_circle(np.ones((5, 2)))
    np.testing.assert_allclose(centre, [1.0, 1.0])
    assert radius == 0.0


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG")
    return out.getvalue()


def _zip_of_text() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a mesh")
    return out.getvalue()


TRIANGLE = "0 0 0\n1 0 0\n0 1 0\n"
BROKEN: dict[str, tuple[bytes, str | None, type[MeshError]]] = {
    "png image": (_png(), "shape.obj", UnsupportedFormatError),
    "zip archive": (_zip_of_text(), None, UnsupportedFormatError),
    "random junk": (np.random.default_rng(0).bytes(2000), None, UnsupportedFormatError),
    "unknown extension": (b"\x00\x01\x02 not a mesh", "shape.xyz", UnsupportedFormatError),
    "truncated fbx": (b"Kaydara FBX Binary  \x00", "shape.fbx", MalformedMeshError),
    "truncated off": (f"OFF\n3 1 0\n{TRIANGLE}".encode(), None, MalformedMeshError),
    "garbage off": (b"OFF\n3 1 0\n0 0 zero\n1 0 0\n0 1 0\n3 0 1 2\n", None, MalformedMeshError),
    "truncated binary stl": (EXPORTS["stl-binary"][:-30], "shape.stl", MalformedMeshError),
    "truncated ply": (EXPORTS["ply-binary"][:-30], None, MalformedMeshError),
    "truncated glb": (EXPORTS["glb"][:-40], None, MalformedMeshError),
    "truncated 3mf": (EXPORTS["3mf"][:-100], "shape.3mf", MalformedMeshError),
    "point cloud ply": (
        trimesh.PointCloud(np.eye(3)).export(file_type="ply"),
        None,
        NoFacesError,
    ),
    "obj line set": (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\nl 2 3\n", None, NoFacesError),
    "off without faces": (f"OFF\n3 0 0\n{TRIANGLE}".encode(), None, NoFacesError),
    "empty off": (b"OFF\n0 0 0\n", None, EmptyMeshError),
    "empty file": (b"", "shape.stl", EmptyMeshError),
    "nan vertex": (b"OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n", None, NonFiniteError),
    "inf vertex": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 inf 0\n3 0 1 2\n", None, NonFiniteError),
    "face past the vertices": (
        f"OFF\n3 1 0\n{TRIANGLE}3 0 1 7\n".encode(),
        None,
        BadFaceIndexError,
    ),
    "negative face index": (f"OFF\n3 1 0\n{TRIANGLE}3 0 -1 2\n".encode(), None, BadFaceIndexError),
    "collinear triangle": (
        b"OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n",
        None,
        DegenerateMeshError,
    ),
    "one point": (b"OFF\n3 1 0\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n", None, DegenerateMeshError),
    "gltf without its buffer": (
        trimesh.exchange.gltf.export_gltf(trimesh.Scene(trimesh.creation.box()))["model.gltf"],
        None,
        MalformedMeshError,
    ),
    "meshopt glb": (glb_with_extension("EXT_meshopt_compression"), None, CompressedContentError),
    "gltf 1.0 glb": (
        make_glb({"asset": {"version": "1.0"}}, version=1),
        None,
        UnsupportedFormatError,
    ),
    "gltf 1.0 json": (
        b'{"asset": {"version": "1.0"}, "meshes": {"box": {}}}',
        "box.gltf",
        UnsupportedFormatError,
    ),
    "2,000 nested nodes": (nested_glb(2000), None, SceneTooComplexError),
    "a node cycle": (
        make_glb(
            {
                "asset": {"version": "2.0"},
                "nodes": [{"children": [1]}, {"children": [0]}],
                "scenes": [{"nodes": [0]}],
            }
        ),
        None,
        MalformedMeshError,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_file_gets_its_own_typed_error(case):
    data, filename, error = BROKEN[case]
    with pytest.raises(error) as caught:
        load_mesh(data, filename=filename)
    assert type(caught.value) is error
    assert str(caught.value), "the message must say what is wrong"


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.off"
    path.write_bytes(EXPORTS["off"])
    limits = LoadLimits(max_bytes=100)
    with pytest.raises(FileTooLargeError, match="limit"):
        load_mesh(path, limits=limits)
    with pytest.raises(FileTooLargeError):
        load_mesh(EXPORTS["off"], limits=limits)


@pytest.mark.parametrize("kind", ["off", "stl-binary", "ply-binary", "obj"])
def test_more_faces_than_the_limit(kind):
    with pytest.raises(TooManyFacesError, match="limit"):
        load_mesh(EXPORTS[kind], limits=LoadLimits(max_faces=SCENE_FACES - 1))


def _big_obj() -> bytes:
    return trimesh.creation.icosphere(subdivisions=7).export(file_type="obj").encode()


def test_a_load_past_the_time_limit_is_stopped_and_the_next_load_works():
    with pytest.raises(LoadTimeoutError, match="limit"):
        load_mesh(_big_obj(), limits=LoadLimits(timeout_s=0.001))
    assert len(load_mesh(EXPORTS["off"]).faces) == SCENE_FACES


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_parser_that_dies_mid_load_is_a_malformed_file_and_is_replaced():
    data = _big_obj()
    load_mesh(EXPORTS["off"])  # a warm worker
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_mesh(data)
        except MeshError as exc:
            outcome.append(exc)

    pids = parser_pool().worker_pids()
    idle = {pid: cpu_ticks(pid) for pid in pids}
    thread = threading.Thread(target=load)
    thread.start()
    # An idle worker uses no CPU: once one does, it is parsing this file (for seconds).
    wait_until(lambda: any(cpu_ticks(pid) > idle[pid] for pid in pids), 120, "a busy parser")
    for pid in pids:
        os.kill(pid, 9)  # what a segfault in a parser looks like from outside
    thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], MalformedMeshError)
    assert len(load_mesh(EXPORTS["off"]).faces) == SCENE_FACES


def test_a_decompression_bomb_hits_the_memory_cap_cleanly():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("3D/3dmodel.model", "w") as member:
            block = b" " * 2**20
            for _ in range(768):
                member.write(block)
    limits = LoadLimits(max_memory=640 * 2**20)
    with pytest.raises(FileTooLargeError, match="memory"):
        load_mesh(out.getvalue(), filename="bomb.3mf", limits=limits)
    assert len(load_mesh(EXPORTS["off"]).faces) == SCENE_FACES


def test_the_worker_is_reused():
    load_mesh(EXPORTS["off"])
    before = set(parser_pool().worker_pids())
    for _ in range(5):
        load_mesh(EXPORTS["off"])
    assert set(parser_pool().worker_pids()) == before


def test_errors_are_value_errors_and_exported():
    assert issubclass(MeshError, ValueError)
    for name in ("UnsupportedFormatError", "LoadTimeoutError", "CompressedContentError"):
        assert issubclass(getattr(renderer, name), MeshError)
