"""Meshes as people send them, to the real server: a .glb, a .zip of a .gltf and its
files, several `file` parts in one request, the formats of the real world, hostile scenes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trimesh

from tests.e2e.conftest import KEY, Server, service_env
from tests.renderer.corpus import ROOT as CORPUS
from tests.renderer.meshes import Z_UP_TO_Y_UP, chair, nested_glb

pytestmark = pytest.mark.slow


def gltf_parts() -> dict[str, bytes]:
    scene = trimesh.Scene()
    scene.add_geometry(chair(), transform=Z_UP_TO_Y_UP)
    files = trimesh.exchange.gltf.export_gltf(scene)
    return {"chair.gltf": files.pop("model.gltf"), **files}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("formats")
    server = Server(service_env(root / "var", workers=2, queue=4), root / "server.log")
    yield server
    server.stop()


def test_a_glb_a_zip_and_several_parts_are_one_mesh_each(server: Server) -> None:
    parts = gltf_parts()
    scene = trimesh.Scene()
    scene.add_geometry(chair(), transform=Z_UP_TO_Y_UP)
    glb = scene.export(file_type="glb")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in parts.items():
            zipped.writestr(f"chair/{name}", data)
    several = [("file", (name, data)) for name, data in parts.items()]

    response = server.http.post("/classify", files={"file": ("chair.glb", glb)})
    assert response.status_code == 200, response.text
    response = server.http.post("/search", files=several)
    assert response.status_code == 200, response.text
    added = server.http.post(
        "/shapes", files={"file": ("chair.zip", archive.getvalue())}, headers=KEY
    )
    assert added.status_code == 201, added.text
    again = server.http.post(
        "/shapes", files={"file": ("chair.zip", archive.getvalue())}, headers=KEY
    )
    assert again.status_code == 200 and again.json()["duplicate"], again.text
    by_parts = server.http.post("/shapes", files=several, headers=KEY)
    assert by_parts.status_code == 201, by_parts.text
    assert by_parts.json()["shape"]["name"] == "chair.gltf"
    # All three views of the same chair: the same shape to the model.
    hits = server.http.post("/search", files={"file": ("chair.glb", glb)}).json()["results"]
    assert {hit["id"] for hit in hits[:2]} == {added.json()["id"], by_parts.json()["id"]}
    assert hits[0]["score"] > 0.999


def test_parts_that_do_not_make_one_mesh_are_a_4xx_with_a_message(server: Server) -> None:
    parts = gltf_parts()
    cases = {
        "the .gltf without its .bin": [("file", ("chair.gltf", parts["chair.gltf"]))],
        "two meshes": [("file", ("a.off", b"OFF\n0 0 0\n")), ("file", ("b.off", b"OFF\n"))],
        "two files of one name": [("file", ("x.bin", b"1")), ("file", ("x.bin", b"2"))],
        "no mesh among them": [("file", ("a.txt", b"1")), ("file", ("b.png", b"2"))],
    }
    for case, files in cases.items():
        response = server.http.post("/classify", files=files)
        assert 400 <= response.status_code < 500, (case, response.text)
        assert len(response.json()["detail"]) > 10, case
    assert server.http.get("/healthz").status_code == 200


def test_a_deep_hostile_scene_is_refused_and_holds_no_slot(server: Server) -> None:
    response = server.http.post(
        "/classify", files={"file": ("deep.glb", nested_glb(2000, box_on_every_node=True))}
    )
    assert response.status_code == 422 and "deeper than" in response.json()["detail"]
    ready = server.http.get("/readyz")
    assert ready.status_code == 200


def test_one_real_file_of_every_corpus_format_gets_an_answer(server: Server) -> None:
    """One file per extension of the corpus: an answer (200 or a 4xx), never a 5xx, and the
    server still serves."""
    assert CORPUS.is_dir(), f"{CORPUS} is missing: `scripts/setup.sh --test` installs it"
    firsts: dict[str, Path] = {}
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.suffix and path.suffix.lower() not in firsts:
            firsts[path.suffix.lower()] = path
    answered = {}
    for extension, path in firsts.items():
        response = server.http.post("/classify", files={"file": (path.name, path.read_bytes())})
        assert response.status_code in (200, 413, 422), (path, response.text)
        answered[extension] = response.status_code
    assert sum(code == 200 for code in answered.values()) >= 30, answered
    assert server.http.get("/readyz").status_code == 200
