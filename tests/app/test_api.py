"""The HTTP API through FastAPI's TestClient: real rendering, embedding and index."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from fastapi.testclient import TestClient

import gmvit
from app.main import create_app
from tests.app.conftest import API_KEY, TINY_CLASSES, WRITE, make_settings, synth_off
from tests.polling import wait_job

CHAIR = synth_off("chair", 1)
MONITOR = synth_off("monitor", 2)
TABLE = synth_off("table", 3)


def add(client: TestClient, data: bytes, name: str, label: str | None = None) -> dict:
    fields = {"label": label} if label else {}
    response = client.post("/shapes", files={"file": (name, data)}, data=fields, headers=WRITE)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/classify",
        "/search",
        "/shapes",
        "/shapes/{shape_id}",
        "/shapes/{shape_id}/thumbnail.png",
        "/reindex",
        "/jobs/{job_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    assert "multipart/form-data" in paths["/classify"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_openapi_documents_the_errors_and_keys_as_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    error = {"$ref": "#/components/schemas/ErrorOut"}
    invalid = {
        key: op["responses"]["422"] for key, op in operations.items() if "422" in op["responses"]
    }
    assert ("DELETE", "/jobs/{job_id}") in invalid and ("POST", "/classify") in invalid
    for key, response in invalid.items():
        assert response["content"]["application/json"]["schema"] == error, key
    # What the service answers for a bad field is what the document says: one sentence.
    answer = client.get("/shapes", params={"limit": "many"})
    assert answer.status_code == 422 and set(answer.json()) == {"detail"}
    assert isinstance(answer.json()["detail"], str)

    assert operations["GET", "/shapes"]["security"] == [{"ReadKey": []}, {}]  # key optional
    assert operations["POST", "/search"]["security"] == [{"ReadKey": []}, {}]
    assert operations["POST", "/shapes"]["security"] == [{"WriteKey": []}]
    assert operations["DELETE", "/jobs/{job_id}"]["security"] == [{"WriteKey": []}]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] and body["model_loaded"] and body["index_open"]
    assert body["jobs_backend"] == "in-process" and body["redis_reachable"] is None


def test_writes_need_the_api_key(client: TestClient) -> None:
    for method, path, kwargs in (
        ("POST", "/shapes", {"files": {"file": ("c.off", CHAIR)}}),
        ("DELETE", "/shapes/1", {}),
        ("POST", "/reindex", {"data": {"folder": "/tmp"}}),
        ("DELETE", "/jobs/abc", {}),
    ):
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = client.request(method, path, headers=headers, **kwargs)
            assert response.status_code == 401, (method, path, response.text)
            assert "X-API-Key" in response.json()["detail"]
    # Reads stay open without a read key.
    assert client.get("/shapes").status_code == 200


def test_writes_are_refused_when_the_server_has_no_key(tmp_path, tiny_weights) -> None:
    settings = make_settings(tmp_path, tiny_weights, api_key=None)
    with TestClient(create_app(settings)) as client:
        response = client.post("/shapes", files={"file": ("c.off", CHAIR)}, headers=WRITE)
        assert response.status_code == 401
        assert "no API key configured" in response.json()["detail"]


def test_a_read_key_closes_reads(tmp_path, tiny_weights) -> None:
    settings = make_settings(tmp_path, tiny_weights, read_key="reader")
    with TestClient(create_app(settings)) as client:
        assert client.get("/shapes").status_code == 401
        assert "reads need a key" in client.get("/shapes").json()["detail"]
        assert client.get("/shapes", headers={"X-API-Key": "reader"}).status_code == 200
        assert client.get("/shapes", headers={"X-API-Key": API_KEY}).status_code == 200
        assert client.post("/classify", files={"file": ("c.off", CHAIR)}).status_code == 401
        assert client.get("/healthz").status_code == 200
        # The read key does not allow writes.
        write = client.post(
            "/shapes", files={"file": ("c.off", CHAIR)}, headers={"X-API-Key": "reader"}
        )
        assert write.status_code == 401
        # No shared cache may hand a thumbnail to someone without the key.
        added = client.post("/shapes", files={"file": ("c.off", CHAIR)}, headers=WRITE).json()
        thumbnail = client.get(added["shape"]["thumbnail_url"], headers={"X-API-Key": "reader"})
        assert thumbnail.headers["cache-control"].startswith("private")


def test_add_is_idempotent_by_content_and_the_shape_can_be_read_back(client) -> None:
    first = client.post(
        "/shapes", files={"file": ("my chair.off", CHAIR)}, data={"label": "seat"}, headers=WRITE
    )
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["duplicate"] is False
    shape_id = created["id"]
    assert created["shape"]["name"] == "my chair.off"
    assert created["shape"]["label"] == "seat"

    again = client.post(
        "/shapes", files={"file": ("other name.off", CHAIR)}, data={"label": "x"}, headers=WRITE
    )
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True and again.json()["id"] == shape_id

    shape = client.get(f"/shapes/{shape_id}").json()
    assert shape["source"] == "upload" and len(shape["sha256"]) == 64
    thumbnail = client.get(shape["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"
    assert thumbnail.content.startswith(b"\x89PNG")

    page = client.get("/shapes", params={"label": "seat"}).json()
    assert page["total"] == 1 and [s["id"] for s in page["shapes"]] == [shape_id]

    assert client.delete(f"/shapes/{shape_id}", headers=WRITE).json() == {
        "id": shape_id,
        "deleted": True,
    }
    assert client.get(f"/shapes/{shape_id}").status_code == 404
    assert client.get(f"/shapes/{shape_id}/thumbnail.png").status_code == 404
    gone = client.delete(f"/shapes/{shape_id}", headers=WRITE)
    assert gone.status_code == 404 and "not found" in gone.json()["detail"]


def test_search_by_file_and_by_id_with_label_filter(client: TestClient) -> None:
    ids = {
        label: add(client, data, f"{label}.off", label)["id"]
        for label, data in (("s-chair", CHAIR), ("s-monitor", MONITOR), ("s-table", TABLE))
    }
    by_file = client.post("/search", files={"file": ("q.off", MONITOR)}, data={"top_k": 3})
    assert by_file.status_code == 200, by_file.text
    results = by_file.json()["results"]
    assert results[0]["id"] == ids["s-monitor"]
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert {"render", "embed", "search", "total"} <= set(by_file.json()["timings_ms"])

    by_id = client.post("/search", data={"shape_id": ids["s-chair"], "top_k": 100}).json()
    assert ids["s-chair"] not in [hit["id"] for hit in by_id["results"]]

    filtered = client.post(
        "/search", data={"shape_id": ids["s-chair"], "top_k": 5, "label": "s-table"}
    ).json()["results"]
    assert [hit["id"] for hit in filtered] == [ids["s-table"]]

    assert client.post("/search", data={"shape_id": 10**9}).status_code == 404
    both = client.post("/search", files={"file": ("q.off", CHAIR)}, data={"shape_id": 1})
    assert both.status_code == 400
    assert client.post("/search", data={}).status_code == 400


def test_classify_answers_with_head_vote_and_views(client: TestClient) -> None:
    bed = synth_off("bed", 4)
    add(client, bed, "bed.off", "c-bed")
    response = client.post("/classify", files={"file": ("b.off", bed)}, data={"top_k": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in ("box", "cylinder", "sphere")
    # A model never calibrated for the open set answers with its head, and says so.
    assert body["label_source"] == "head" and "no open-set thresholds" in body["reason"]
    assert len(body["probabilities"]) == 3  # the tiny model has 3 classes
    assert sum(p["probability"] for p in body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert body["neighbors"]["k"] == 1
    assert body["neighbors"]["label"] == "c-bed"  # the same file is its own neighbour
    assert body["neighbors"]["votes"] == {"c-bed": 1}
    assert body["views_png"].startswith("data:image/png;base64,")


def test_classify_says_i_dont_know_when_the_head_is_unsure_and_no_labelled_shape_is_near(
    tmp_path,
) -> None:
    torch.manual_seed(0)
    model = gmvit.create_model("mini", num_views=12, num_classes=3, image_size=32)
    weights = tmp_path / "calibrated.pt"
    # Thresholds as `gmvit eval --held-out` stores them: this head is never sure (no
    # probability reaches 1.01); a labelled shape counts only when it is the same shape.
    thresholds = {"min_probability": 1.01, "min_similarity": 0.9999}
    gmvit.save_checkpoint(weights, model, TINY_CLASSES, meta={"open_set": thresholds})
    bed, chair = synth_off("bed", 4), synth_off("chair", 5)

    def classify(client: TestClient, data: bytes) -> dict:
        response = client.post("/classify", files={"file": ("m.off", data)}, data={"top_k": 1})
        assert response.status_code == 200, response.text
        return response.json()

    with TestClient(create_app(make_settings(tmp_path, weights))) as client:
        alone = classify(client, bed)
        assert alone["label"] is None and alone["label_source"] == "unknown"
        assert "no labelled shape is indexed" in alone["reason"]
        assert alone["probabilities"]  # the head's classes are still shown
        add(client, bed, "bed.off", "c-bed")
        again = classify(client, bed)
        assert again["label"] == "c-bed" and again["label_source"] == "neighbours"
        other = classify(client, chair)
        similarity = other["neighbors"]["shapes"][0]["score"]
        assert similarity < thresholds["min_similarity"], similarity  # the bed is not this chair
        assert other["label"] is None and "no labelled shape is near" in other["reason"]


def test_new_weights_leave_the_old_index_alone_and_ask_for_a_reindex(
    tmp_path, tiny_weights
) -> None:
    with TestClient(create_app(make_settings(tmp_path, tiny_weights))) as client:
        add(client, synth_off("bed", 4), "bed.off", "bed")
        old_id = client.get("/readyz").json()["model_id"]
    torch.manual_seed(1)
    model = gmvit.create_model("mini", num_views=12, num_classes=3, image_size=32)
    new_weights = tmp_path / "new.pt"
    gmvit.save_checkpoint(new_weights, model, TINY_CLASSES)
    with TestClient(create_app(make_settings(tmp_path, new_weights))) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["shapes"] == 0 and ready["model_id"] != old_id
        assert f"{old_id} (1 shapes)" in ready["detail"] and "gmvit reindex" in ready["detail"]
        add(client, synth_off("chair", 5), "chair.off", "chair")
        assert client.get("/readyz").json()["detail"] is None  # a new collection is started
    with TestClient(create_app(make_settings(tmp_path, tiny_weights))) as client:
        assert client.get("/shapes").json()["total"] == 1  # the old index, untouched


@pytest.mark.parametrize(
    ("data", "name", "status", "words"),
    [
        (b"this is not a mesh at all", "junk.bin", 422, "not supported"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image.off", 422, "PNG image"),
        (CHAIR[: len(CHAIR) // 2], "truncated.off", 422, ""),
        (
            b"OFF\n3 1 0\n0 0 0\nnan 1 0\n0 0 1\n3 0 1 2\n",
            "nan.off",
            422,
            "NaN",
        ),
        (b"", "empty.off", 400, "empty"),
    ],
)
def test_bad_uploads_get_a_4xx_with_a_message(client, data, name, status, words) -> None:
    response = client.post("/classify", files={"file": (name, data)})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert words.lower() in detail.lower()


def test_a_zip_archive_is_read_as_a_mesh_with_its_files(client: TestClient) -> None:
    def zipped(name: str, data: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, data)
        return buffer.getvalue()

    response = client.post("/classify", files={"file": ("chair.zip", zipped("chair.off", CHAIR))})
    assert response.status_code == 200, response.text
    response = client.post("/classify", files={"file": ("notes.zip", zipped("a.txt", b"hi"))})
    assert response.status_code == 422
    assert "no mesh file" in response.json()["detail"]


def test_oversized_uploads_are_refused_with_413(client: TestClient) -> None:
    limit = 256 * 1024
    # Within the multipart slack: the handler counts the file itself.
    just_over = b"OFF\n" + b"0" * limit
    response = client.post("/classify", files={"file": ("big.off", just_over)})
    assert response.status_code == 413
    assert "256 KiB" in response.json()["detail"]
    # Far over: refused from Content-Length before the body is read.
    far_over = b"OFF\n" + b"0" * (4 * limit)
    response = client.post("/classify", files={"file": ("huge.off", far_over)})
    assert response.status_code == 413
    assert "GMVIT_MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_a_body_without_length_is_counted_as_it_streams(client: TestClient) -> None:
    def chunks():
        for _ in range(64):
            yield b"x" * (64 * 1024)

    response = client.post(
        "/classify",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert response.status_code == 413
    assert "GMVIT_MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_validation_errors_are_one_line_messages(client: TestClient) -> None:
    response = client.post("/classify", data={"top_k": "500"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "file: Field required" in detail and "top_k" in detail
    listing = client.get("/shapes", params={"limit": 0})
    assert listing.status_code == 422 and "limit" in listing.json()["detail"]


def test_metrics_report_routes_stages_and_index(client: TestClient) -> None:
    client.post("/classify", files={"file": ("c.off", CHAIR)})
    text = client.get("/metrics").text
    assert 'gmvit_request_seconds_count{method="POST",route="/classify",status="2xx"}' in text
    assert 'gmvit_stage_seconds_count{stage="render"}' in text
    assert 'gmvit_stage_seconds_count{stage="embed"}' in text
    assert "gmvit_index_shapes " in text
    assert "gmvit_pool_admitted 0.0" in text


def test_the_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "drop-zone" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_absurd_input_gets_a_4xx_never_a_500(client: TestClient, app_root) -> None:
    too_big = "99999999999999999999"
    assert client.get(f"/shapes/{too_big}").status_code == 422
    assert client.get(f"/shapes/{too_big}/thumbnail.png").status_code == 422
    assert client.delete(f"/shapes/{too_big}", headers=WRITE).status_code == 422
    assert client.get("/shapes", params={"offset": too_big}).status_code == 422
    assert client.post("/search", data={"shape_id": too_big}).status_code == 422
    assert client.get("/jobs/" + "x" * 65).status_code == 422
    mesh = synth_off("chair", 3)
    long_name = client.post(
        "/reindex", files=[("files", ("a" * 256 + ".off", mesh))], headers=WRITE
    )
    assert long_name.status_code == 400 and "255 bytes" in long_name.json()["detail"]
    # A NUL in a part's file name: refused, or (where the client drops it) indexed.
    nul = client.post("/reindex", files=[("files", ("a\x00b.off", mesh))], headers=WRITE)
    assert nul.status_code in (202, 400), nul.text
    if nul.status_code == 202:
        assert wait_job(client, nul.json()["id"])["state"] == "succeeded"
    nul_folder = client.post(
        "/reindex", data={"folder": f"{app_root}/allowed/x\x00y"}, headers=WRITE
    )
    assert nul_folder.status_code in (400, 403), nul_folder.text
    # A file and a folder of the same name are both kept; a file that is not a mesh is a
    # failure the job lists, not a file that vanishes.
    files = [
        ("files", ("a", mesh)),
        ("files", ("a/x.off", synth_off("sofa", 4))),
        ("files", ("notes.txt", b"hello")),
    ]
    job = client.post("/reindex", files=files, headers=WRITE)
    assert job.status_code == 202, job.text
    done = wait_job(client, job.json()["id"])
    assert done["state"] == "succeeded", done
    assert {f["file"] for f in done["failures"]} >= {"notes.txt"}
    assert not list((app_root / "var" / "jobs").iterdir())  # no job folder left behind


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/healthz", "/shapes", "/static/app.js"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
