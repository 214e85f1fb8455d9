"""The real-mesh corpus converter, on tiny packages made here in the layout of Debian's."""

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

import renderer
from bench import corpus

CATALOG = """# a test catalog
id=Test
name#1=Chair
category#1=Living room
model#1=/test/chair/chair.obj
name#2=Table \\
    lamp
model#2=/test/lamp.obj
name#3=Sofa
model#3=/test/sofa.obj
modelRotation#3=1 0 0 0 0 1 0 -1 0
name#4=Bed
model#4=/test/missing.obj
name#5=Desk
model#5=/test/broken.obj
"""


def box(extents, centre) -> trimesh.Trimesh:
    return trimesh.creation.box(extents, trimesh.transformations.translation_matrix(centre))


def obj(*parts: trimesh.Trimesh) -> bytes:
    return trimesh.exchange.obj.export_obj(trimesh.util.concatenate(parts)).encode()


def chair_y_up() -> trimesh.Trimesh:
    """A seat and a back at the rear (-z), Sweet Home 3D's frame: y up, front +z."""
    return trimesh.util.concatenate(
        [box((0.5, 0.1, 0.5), (0, 0.45, 0)), box((0.5, 0.6, 0.05), (0, 0.8, -0.225))]
    )


def sofa_z_up() -> trimesh.Trimesh:
    """Saved z up with its back at +y (front -y), as a modelRotation of 90 degrees fixes."""
    return trimesh.util.concatenate(
        [box((2.0, 0.9, 0.4), (0, 0, 0.2)), box((2.0, 0.2, 0.5), (0, 0.35, 0.65))]
    )


def write_packages(data: Path, skip: str | None = None) -> None:
    debian = data / "debian"
    for package in corpus.PACKAGES:
        if package != skip:
            (debian / package).mkdir(parents=True)
            (debian / package / "VERSION").write_text("1.0-test\n")
    furniture = debian / "sweethome3d-furniture/usr/share/sweethome3d/furniture"
    if skip != "sweethome3d-furniture":
        furniture.mkdir(parents=True)
        with zipfile.ZipFile(furniture / "Test.sh3f", "w") as archive:
            archive.writestr("PluginFurnitureCatalog.properties", CATALOG)
            archive.writestr("test/chair/chair.obj", obj(chair_y_up()))
            archive.writestr("test/lamp.obj", obj(trimesh.creation.cone(0.2, 0.5)))
            archive.writestr("test/sofa.obj", obj(sofa_z_up()))
            archive.writestr("test/broken.obj", b"v 0 0 0\nf 1 2 3\n")
    jar_dir = debian / "sweethome3d/usr/share/sweethome3d"
    if skip != "sweethome3d":
        jar_dir.mkdir(parents=True)
        with zipfile.ZipFile(jar_dir / "sweethome3d.jar", "w") as jar:
            jar.writestr(
                "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties",
                "name#1=Bath\nmodel#1=/res/bath.obj\n",
            )
            jar.writestr("res/bath.obj", obj(box((0.7, 0.6, 1.6), (0, 0.3, 0))))
    cube = box((1, 1, 1), (0, 0, 0))
    cgal = debian / "libcgal-demo/usr/share/doc/libcgal-dev"
    if skip != "libcgal-demo":
        cgal.mkdir(parents=True)
        with tarfile.open(cgal / "data.tar.gz", "w:gz") as tar:
            for name, mesh in (("cube.off", cube), ("triangle.off", None)):
                text = (
                    trimesh.exchange.off.export_off(mesh)
                    if mesh is not None
                    else "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
                )
                info = tarfile.TarInfo(f"data/meshes/{name}")
                info.size = len(text.encode())
                tar.addfile(info, io.BytesIO(text.encode()))
    models = debian / "assimp-testmodels/usr/share/assimp/models"
    if skip != "assimp-testmodels":
        (models / "STL").mkdir(parents=True)
        (models / "invalid").mkdir()
        bigger = cube.copy()
        bigger.apply_scale(3.0)
        bigger.apply_translation((5, 5, 5))
        (models / "STL" / "Cube.stl").write_bytes(trimesh.exchange.stl.export_stl(bigger))
        (models / "invalid" / "bad.stl").write_bytes(b"solid nothing\n")
        sphere = trimesh.creation.icosphere(2)
        (models / "STL" / "ball.stl").write_bytes(trimesh.exchange.stl.export_stl(sphere))


@pytest.fixture
def built(tmp_path) -> tuple[Path, dict]:
    write_packages(tmp_path)
    return corpus.load(tmp_path, progress=False)


def test_furniture_is_labelled_and_stands_z_up_with_its_front_to_plus_y(built):
    folder, manifest = built
    assert corpus.class_counts(manifest) == {"bathtub": 1, "chair": 1, "sofa": 1}
    chair = renderer.load_mesh(folder / "furniture/chair/test-001-chair.off")
    assert chair.vertices[:, 2].min() == pytest.approx(0.0)
    assert chair.vertices[:, 2].max() == pytest.approx(1.1 - 0.4)  # up was y
    back = chair.vertices[chair.vertices[:, 2] > 0.5]
    assert (back[:, 1] < 0).all()  # the back was at -z: behind is -y
    sofa = renderer.load_mesh(folder / "furniture/sofa/test-003-sofa.off")
    assert np.allclose(np.ptp(sofa.vertices, axis=0), (2.0, 0.9, 0.9))  # z up after rotation
    assert (sofa.vertices[sofa.vertices[:, 2] > 0.5][:, 1] < 0).all()  # back to -y
    bath = renderer.load_mesh(folder / "furniture/bathtub/default-001-bath.off")
    assert np.allclose(np.ptp(bath.vertices, axis=0), (0.7, 1.6, 0.6))


def test_other_pieces_and_loose_meshes_are_unlabelled_shapes(built):
    folder, manifest = built
    files = {m["file"]: m for m in manifest["meshes"]}
    assert files["shapes/sweethome3d/test-002-table-lamp.off"]["label"] is None
    assert files["shapes/sweethome3d/test-002-table-lamp.off"]["name"] == "Table lamp"
    assert "shapes/cgal/cube-off.off" in files
    assert "shapes/assimp/stl-ball-stl.off" in files
    assert all((folder / name).is_file() for name in files)
    assert manifest["packages"]["libcgal-demo"] == "1.0-test"


def test_broken_missing_tiny_and_duplicate_meshes_are_listed_and_left_out(built):
    _, manifest = built
    skipped = {s["origin"]: s["error"] for s in manifest["skipped"]}
    assert "does not hold" in skipped["Test.sh3f:test/missing.obj"]
    assert "Test.sh3f:test/broken.obj" in skipped
    assert "faces" in skipped["libcgal-demo:data/meshes/triangle.off"]
    # the same cube, scaled and moved, saved as STL by another package
    assert skipped["assimp-testmodels:STL/Cube.stl"] == "same shape as shapes/cgal/cube-off.off"
    assert not any("invalid" in m["origin"] for m in manifest["meshes"])
    assert len(manifest["meshes"]) == 6


def test_the_corpus_is_built_once(built, tmp_path):
    folder, _ = built
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    again, manifest = corpus.load(tmp_path, progress=False)
    assert again == folder and (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_a_corpus_built_when_the_loader_read_other_formats_is_built_again(built, tmp_path):
    folder, manifest = built
    older = manifest | {"extensions": [e for e in manifest["extensions"] if e != ".stl"]}
    (folder / "manifest.json").write_text(json.dumps(older))
    _, again = corpus.load(tmp_path, progress=False)
    assert again["extensions"] == manifest["extensions"]
    assert again["meshes"] == manifest["meshes"]


def test_a_missing_package_says_what_to_run(tmp_path):
    write_packages(tmp_path, skip="libcgal-demo")
    with pytest.raises(corpus.MissingDataError, match=r"libcgal-demo.*scripts/setup.sh --bench"):
        corpus.load(tmp_path, progress=False)
    assert not (tmp_path / "corpus").exists()
