"""The formats of the real world: the format table, meshes with their files (glTF .bin,
LightWave scenes), ZIP and multi-file uploads, confinement, Draco, up axes, face budgets
and bounded scene graphs."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import DracoPy
import numpy as np
import pytest
import trimesh

from renderer import (
    FORMATS,
    FileTooLargeError,
    LoadLimits,
    MalformedMeshError,
    MeshError,
    SceneTooComplexError,
    TooManyFacesError,
    UnsupportedFormatError,
    accepted_extensions,
    load_bundle,
    load_mesh,
)
from renderer.bundle import Bundle, safe_name
from renderer.formats import FORMATS_BY_EXTENSION, detect_format
from renderer.workers import ParserPool
from tests.renderer.meshes import Z_UP_TO_Y_UP, chair, glb_parts, make_glb

CORPUS = Path("/usr/share/assimp/models")
CHAIR = chair()


def corpus(relative: str) -> Path:
    path = CORPUS / relative
    assert path.is_file(), f"{path} is missing: `scripts/setup.sh --test` installs the corpus"
    return path


def gltf_files(mesh: trimesh.Trimesh, transform: np.ndarray | None = None) -> dict[str, bytes]:
    """A .gltf with its geometry in a separate .bin, as exporters write them."""
    scene = trimesh.Scene()
    scene.add_geometry(mesh, transform=transform)
    files = trimesh.exchange.gltf.export_gltf(scene)
    return {
        "chair.gltf": files["model.gltf"],
        **{k: v for k, v in files.items() if k != "model.gltf"},
    }


def write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def assert_chair_stands(mesh: trimesh.Trimesh) -> None:
    """Same extents as the Z-up chair: legs down, back up (not lying on its back)."""
    np.testing.assert_allclose(np.ptp(mesh.bounds, axis=0), np.ptp(CHAIR.bounds, axis=0), atol=1e-5)


# ------------------------------------------------------------------ the table


def test_one_entry_per_format_and_every_extension_has_one_format():
    names = [fmt.name for fmt in FORMATS]
    assert len(names) == len(set(names))
    extensions = [ext for fmt in FORMATS for ext in fmt.extensions]
    assert len(extensions) == len(set(extensions))
    assert all(ext.startswith(".") and ext == ext.lower() for ext in extensions)
    assert accepted_extensions() == sorted(set(extensions) | {".zip", ".zae"})


def test_the_readme_table_is_the_format_table():
    from renderer.formats import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "stale README: print(renderer.formats.markdown_table())"


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("FBX/spider.fbx", "fbx"),
        ("Collada/duck.dae", "dae"),
        ("BLEND/box.blend", "blend"),
        ("BLEND/BlenderDefault_250_Compressed.blend", "blend"),
        ("X/test.x", "x"),
        ("LWO/LWO2/boxuv.lwo", "lwo"),
        ("AC/Wuson.ac", "ac"),
        ("MD2/sydney.md2", "md2"),
        ("IFC/AC14-FZK-Haus.ifc", "ifc"),
        ("NFF/NFF/cylinder.nff", "nff"),  # starts with "f 1 ...", which OBJ sniffs as a face
    ],
)
def test_real_files_are_recognised_by_content_and_by_name(relative, expected):
    data = corpus(relative).read_bytes()
    assert detect_format(data, corpus(relative).name) == expected
    if FORMATS[[f.name for f in FORMATS].index(expected)].sniff is not None:
        assert detect_format(data) == expected  # without a name too


# ------------------------------------------------------------------ glTF as shipped


def test_a_gltf_with_its_bin_loads_from_a_path_and_stands_z_up(tmp_path):
    # Y-up, as glTF requires and as exporters write: the Z-up chair turned Y-up.
    write(tmp_path, gltf_files(CHAIR, Z_UP_TO_Y_UP))
    mesh = load_mesh(tmp_path / "chair.gltf")
    assert len(mesh.faces) == len(CHAIR.faces)
    assert_chair_stands(mesh)
    assert mesh.bounds[0][2] == pytest.approx(0.0, abs=1e-6)  # the feet are at the bottom


def test_a_gltf_alone_says_where_its_geometry_went():
    files = gltf_files(CHAIR)
    with pytest.raises(MalformedMeshError, match=r"\.bin.*a \.zip, or several files"):
        load_mesh(files["chair.gltf"], filename="chair.gltf")


def test_a_zip_of_the_gltf_and_its_files_loads():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in gltf_files(CHAIR, Z_UP_TO_Y_UP).items():
            archive.writestr(f"model/{name}", data)
        archive.writestr("__MACOSX/model/._chair.gltf", b"junk")
    mesh = load_mesh(out.getvalue(), filename="upload.zip")
    assert_chair_stands(mesh)


def test_several_files_load_as_one_mesh_by_name_or_by_the_only_mesh_among_them():
    files = {**gltf_files(CHAIR, Z_UP_TO_Y_UP), "texture.png": b"\x89PNG not needed"}
    assert_chair_stands(load_bundle(files))
    assert_chair_stands(load_bundle(files, "chair.gltf"))
    with pytest.raises(UnsupportedFormatError, match="2 meshes"):
        load_bundle({**files, "other.obj": b"v 0 0 0\n"})
    with pytest.raises(UnsupportedFormatError, match="no mesh file"):
        load_bundle({"readme.txt": b"hello"})


def test_the_size_limit_counts_a_mesh_with_all_its_files(tmp_path):
    files = gltf_files(CHAIR)
    main = len(files["chair.gltf"])
    limits = LoadLimits(max_bytes=main + 10)  # the .gltf fits, the .gltf and its .bin do not
    with pytest.raises(FileTooLargeError, match="its files"):
        write(tmp_path, files)
        load_mesh(tmp_path / "chair.gltf", limits=limits)
    with pytest.raises(FileTooLargeError):
        load_bundle(files, limits=limits)


@pytest.mark.parametrize("uri", ["../outside.bin", "/etc/passwd", "file:///etc/passwd", "link.bin"])
def test_a_gltf_reads_nothing_outside_its_folder(tmp_path, uri):
    folder = tmp_path / "model"
    folder.mkdir()
    files = gltf_files(CHAIR)
    write(folder, files)
    document = json.loads(files["chair.gltf"])
    (tmp_path / "outside.bin").write_bytes(files[document["buffers"][0]["uri"]])
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")  # a link out of the folder
    document["buffers"][0]["uri"] = uri
    (folder / "chair.gltf").write_text(json.dumps(document))
    with pytest.raises(MalformedMeshError, match="not beside it"):
        load_mesh(folder / "chair.gltf")


def test_percent_escaped_uris_and_subfolders_resolve(tmp_path):
    files = gltf_files(CHAIR)
    write(tmp_path, files)
    document = json.loads(files["chair.gltf"])
    write(tmp_path, {"data files/geometry one.bin": files[document["buffers"][0]["uri"]]})
    document["buffers"][0]["uri"] = "data%20files/geometry%20one.bin"
    write(tmp_path, {"chair.gltf": json.dumps(document).encode()})
    assert len(load_mesh(tmp_path / "chair.gltf").faces) == len(CHAIR.faces)


def test_bundle_names_never_leave_the_bundle(tmp_path):
    assert safe_name("a/./b/../c.bin") == "a/c.bin"
    for name in ("../x", "a/../../x", "/etc/passwd", "C:/x", "http://host/x", "", "a\x00b"):
        assert safe_name(name) is None, name
    (tmp_path / "inner").mkdir()
    (tmp_path / "secret").write_bytes(b"secret")
    bundle = Bundle("inner/main.obj", b"v", budget=100, folder=str(tmp_path / "inner"))
    assert bundle.read("../secret") is None
    assert bundle.open("/" + str(tmp_path / "secret")) is None


def test_draco_compressed_gltf_is_decoded():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    encoded = DracoPy.encode(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    document = {
        "asset": {"version": "2.0"},
        "extensionsUsed": ["KHR_draco_mesh_compression"],
        "extensionsRequired": ["KHR_draco_mesh_compression"],
        "buffers": [{"byteLength": len(encoded)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(encoded)}],
        "accessors": [
            {"componentType": 5126, "count": len(mesh.vertices), "type": "VEC3"},
            {"componentType": 5125, "count": 3 * len(mesh.faces), "type": "SCALAR"},
        ],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": 0},
                        "indices": 1,
                        "extensions": {
                            "KHR_draco_mesh_compression": {
                                "bufferView": 0,
                                "attributes": {"POSITION": 0},
                            }
                        },
                    }
                ]
            }
        ],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    loaded = load_mesh(make_glb(document, encoded))
    assert len(loaded.faces) == len(mesh.faces)
    np.testing.assert_allclose(np.linalg.norm(loaded.vertices, axis=1), 1.0, atol=1e-3)


def test_the_draco_sample_of_the_corpus_renders_as_its_uncompressed_twin():
    draco = load_mesh(corpus("glTF2/draco/2CylinderEngine.gltf"))
    plain = load_mesh(corpus("glTF2/2CylinderEngine-glTF-Binary/2CylinderEngine.glb"))
    np.testing.assert_allclose(draco.bounds, plain.bounds, rtol=1e-3, atol=1e-2)


# ------------------------------------------------------------------ assimp's formats


def collada(mesh: trimesh.Trimesh, up_axis: str, unit: float) -> bytes:
    """A minimal Collada file holding `mesh`, in `up_axis` and `unit` metres."""
    positions = " ".join(f"{v:.6f}" for v in mesh.vertices.reshape(-1))
    indices = " ".join(str(i) for i in mesh.faces.reshape(-1))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1">
  <asset><unit meter="{unit}"/><up_axis>{up_axis}</up_axis></asset>
  <library_geometries><geometry id="g"><mesh>
    <source id="p"><float_array id="pa" count="{mesh.vertices.size}">{positions}</float_array>
      <technique_common><accessor source="#pa" count="{len(mesh.vertices)}" stride="3">
        <param name="X" type="float"/><param name="Y" type="float"/><param name="Z" type="float"/>
      </accessor></technique_common></source>
    <vertices id="v"><input semantic="POSITION" source="#p"/></vertices>
    <triangles count="{len(mesh.faces)}"><input semantic="VERTEX" source="#v" offset="0"/>
      <p>{indices}</p></triangles>
  </mesh></geometry></library_geometries>
  <library_visual_scenes><visual_scene id="s"><node id="n">
    <instance_geometry url="#g"/></node></visual_scene></library_visual_scenes>
  <scene><instance_visual_scene url="#s"/></scene>
</COLLADA>""".encode()


@pytest.mark.parametrize(("up_axis", "vertices"), [("Z_UP", CHAIR.vertices), ("Y_UP", None)])
def test_a_collada_chair_stands_whichever_up_axis_and_unit_it_declares(up_axis, vertices):
    if vertices is None:  # the same chair written Y-up
        vertices = trimesh.transform_points(CHAIR.vertices, Z_UP_TO_Y_UP)
    data = collada(trimesh.Trimesh(vertices, CHAIR.faces, process=False), up_axis, unit=0.01)
    mesh = load_mesh(data)  # by content: no name needed
    assert len(mesh.faces) == len(CHAIR.faces)
    np.testing.assert_allclose(np.ptp(mesh.bounds, axis=0) / np.ptp(mesh.bounds, axis=0).max(),
                               np.ptp(CHAIR.bounds, axis=0) / np.ptp(CHAIR.bounds, axis=0).max(),
                               atol=1e-5)  # fmt: skip


def test_real_figures_stand_on_their_feet():
    """Figures taller than wide, in formats that turn Y-up (Collada, Quake) and in those
    that keep Z-up (Blender, trueSpace, Valve SMD, Half-Life)."""
    figures = ("Collada/human.zae", "MD2/sydney.md2", "MD2/faerie.md2", "BLEND/HUMAN.blend",
               "COB/dwarf.cob", "SMD/holy_grailref.smd", "MDL/MDL (HL1)/man.mdl")  # fmt: skip
    for relative in figures:
        extents = np.ptp(load_mesh(corpus(relative)).bounds, axis=0)
        assert extents[2] > max(extents[0], extents[1]), (relative, extents)


def test_a_lightwave_scene_reads_its_objects_from_its_folder_only(tmp_path):
    scene = corpus("LWS/move_x_oldformat_56.lws").read_text()
    cube = corpus("LWS/simple_cube.lwo").read_bytes()
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "cube.lwo").write_bytes(cube)
    (tmp_path / "outside.lwo").write_bytes(cube)
    (inner / "here.lws").write_text(scene.replace("simple_cube.lwo", "cube.lwo"))
    assert len(load_mesh(inner / "here.lws").faces) == 12
    for reference in ("../outside.lwo", str(tmp_path / "outside.lwo")):
        (inner / "out.lws").write_text(scene.replace("simple_cube.lwo", reference))
        with pytest.raises(MeshError):
            load_mesh(inner / "out.lws")


# ------------------------------------------------------------------ bounded work


def test_a_mesh_instanced_past_the_face_limit_is_refused_before_it_is_built():
    document, binary = glb_parts(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"))
    mesh = document["nodes"][document["scenes"][0]["nodes"][0]]["mesh"]
    document["nodes"] = [{"mesh": mesh, "translation": [i, 0, 0]} for i in range(1000)]
    document["scenes"] = [{"nodes": list(range(1000))}]
    with pytest.raises(TooManyFacesError, match="places 12,000 faces"):
        load_mesh(make_glb(document, binary), limits=LoadLimits(max_faces=10_000))
    assert len(load_mesh(make_glb(document, binary)).faces) == 12_000


def test_deep_scenes_and_huge_node_counts_are_refused():
    from tests.renderer.meshes import nested_glb

    assert len(load_mesh(nested_glb(50)).faces) == 12
    with pytest.raises(SceneTooComplexError, match="deeper than 40"):
        load_mesh(nested_glb(50), limits=LoadLimits(max_depth=40))
    with pytest.raises(SceneTooComplexError, match="more than 20 nodes"):
        load_mesh(nested_glb(50), limits=LoadLimits(max_nodes=20))


def test_meshes_past_the_face_budget_are_simplified_in_the_worker():
    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20,480 faces
    data = sphere.export(file_type="ply")
    mesh = load_mesh(data, limits=LoadLimits(render_faces=2_000))
    assert 1_000 < len(mesh.faces) <= 2_000
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 1.0, atol=0.02)
    # A triangle soup (every face its own three vertices, as STL stores them) too.
    soup = trimesh.Trimesh(sphere.triangles.reshape(-1, 3), np.arange(3 * 20480).reshape(-1, 3))
    mesh = load_mesh(soup.export(file_type="stl"), limits=LoadLimits(render_faces=2_000))
    assert 1_000 < len(mesh.faces) <= 2_000


def test_meshes_within_the_budget_are_untouched():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    mesh = load_mesh(sphere.export(file_type="off").encode(), limits=LoadLimits(render_faces=1280))
    np.testing.assert_array_equal(mesh.faces, sphere.faces)
    np.testing.assert_allclose(mesh.vertices, sphere.vertices, rtol=0, atol=1e-7)


def test_a_worker_left_large_after_a_request_is_replaced():
    data = trimesh.creation.box().export(file_type="off").encode()
    from renderer.formats import detect_format as detect
    from renderer.parsing import LoadRequest

    request = LoadRequest(data, detect(data), LoadLimits())
    lean = ParserPool(size=1, max_rss=1)  # every worker is "too large" after its request
    roomy = ParserPool(size=1)
    try:
        lean.parse(request)
        assert lean.worker_pids() == []
        roomy.parse(request)
        first = roomy.worker_pids()
        roomy.parse(request)
        assert roomy.worker_pids() == first and len(first) == 1
    finally:
        lean.close()
        roomy.close()


def test_zip_archives_are_bounded_and_named_in_errors():
    def archive(files: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=compression) as zipped:
            for name, data in files.items():
                zipped.writestr(name, data)
        return out.getvalue()

    with pytest.raises(UnsupportedFormatError, match="no mesh file"):
        load_mesh(archive({"readme.txt": b"hi"}))
    bomb = archive({"a.obj": b"v 0 0 0\n" + b" " * (8 * 2**20)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(FileTooLargeError, match="unpacks to"):
        load_mesh(bomb, limits=LoadLimits(max_bytes=2**20))
    with pytest.raises(UnsupportedFormatError, match="ZIP archive inside"):
        load_mesh(archive({"inner.obj": archive({"a.obj": b"v 0 0 0\n"})}))


def test_the_cli_prints_one_line_whatever_a_library_warns(tmp_path):
    from tests.renderer.test_cli import _gmvit

    document, binary = glb_parts(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"))
    accessor = document["accessors"][
        document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    ]
    start = document["bufferViews"][accessor["bufferView"]].get("byteOffset", 0)
    patched = bytearray(binary)
    patched[start : start + 12] = np.full(3, np.inf, dtype=np.float32).tobytes()
    path = tmp_path / "infinite.glb"  # one vertex at infinity, as BoxWithInfinites.glb has
    path.write_bytes(make_glb(document, bytes(patched)))
    result = _gmvit("render", str(path), "-o", str(tmp_path / "grid.png"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gmvit: error: 1 of 8 vertices have NaN or infinite coordinates"
    ], result.stderr


def test_every_extension_of_the_table_reaches_its_reader():
    """A name alone (content without magic) picks the table's entry for every extension."""
    for extension, fmt in FORMATS_BY_EXTENSION.items():
        assert detect_format(b"\x01\x02 nothing to sniff", f"x{extension}") == fmt.name
