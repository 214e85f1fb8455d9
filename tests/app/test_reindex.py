"""POST /reindex run in-process: folders under the allowed roots, uploads, failures, cancel."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.jobs import JobFolders
from app.jobs.runner import ReindexTarget, _describe_all
from app.main import create_app
from gmvit import Embedding
from tests.app.conftest import WRITE, index_write_lock, make_settings, synth_off
from tests.polling import wait_job, wait_until

JOB_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reindex")


@pytest.fixture(scope="module")
def client(root: Path, tiny_weights: Path):
    with TestClient(create_app(make_settings(root, tiny_weights))) as test_client:
        yield test_client


def write_set(folder: Path, shapes: dict[str, int], seed: int = 0) -> None:
    for number, (label, count) in enumerate(shapes.items()):
        for i in range(count):
            path = folder / label / "train" / f"{label}_{i + 1:04d}.off"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(synth_off(label, 1000 * seed + 10 * number + i))


def labels(client: TestClient) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for shape in client.get("/shapes", params={"limit": 1000}).json()["shapes"]:
        counts[shape["label"]] = counts.get(shape["label"], 0) + 1
    return counts


def test_a_folder_replaces_the_index_with_labels_from_class_folders(client, root) -> None:
    old = client.post("/shapes", files={"file": ("old.off", synth_off("bed", 99))}, headers=WRITE)
    assert client.get(old.json()["shape"]["thumbnail_url"]).status_code == 200
    folder = root / "allowed" / "set-a"
    write_set(folder, {"chair": 2, "monitor": 2})
    (folder / "README.txt").write_text("not a mesh, not counted")
    (folder / "loose.off").write_bytes(synth_off("toilet", 5))  # no class folder: no label

    response = client.post("/reindex", data={"folder": str(folder)}, headers=WRITE)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"], timeout_s=JOB_TIMEOUT_S)
    assert job["state"] == "succeeded", job
    assert (job["done"], job["total"], job["indexed"], job["failed"]) == (5, 5, 5, 0)
    assert labels(client) == {"chair": 2, "monitor": 2, None: 1}
    names = {s["name"] for s in client.get("/shapes").json()["shapes"]}
    assert "chair/train/chair_0001.off" in names and "loose.off" in names
    for shape in client.get("/shapes").json()["shapes"]:
        assert client.get(shape["thumbnail_url"]).status_code == 200
    # The replaced shape's thumbnail went with it.
    assert client.get(old.json()["shape"]["thumbnail_url"]).status_code == 404


def test_uploaded_files_keep_their_folders_and_never_escape(client, root) -> None:
    files = [
        ("files", ("sofa/train/a.off", synth_off("sofa", 1))),
        ("files", ("sofa/b.off", synth_off("sofa", 2))),
        ("files", ("../../escape/c.off", synth_off("desk", 3))),
        ("files", ("junk/d.off", b"OFF\n3 1 0\n0 0 0\n")),
        ("files", ("zz/e.off", synth_off("sofa", 1))),  # identical to a.off
    ]
    response = client.post("/reindex", files=files, headers=WRITE)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"], timeout_s=JOB_TIMEOUT_S)
    assert job["state"] == "succeeded", job
    assert job["indexed"] == 3 and job["failed"] == 2
    failures = {failure["file"]: failure["error"] for failure in job["failures"]}
    assert set(failures) == {"junk/d.off", "zz/e.off"}
    assert "identical to sofa/train/a.off" in failures["zz/e.off"]
    assert labels(client) == {"sofa": 2, "escape": 1}
    assert not (root / "escape").exists() and not (root / "var" / "escape").exists()
    # The uploaded copies (and the job's parts) are deleted once the job is done.
    assert not list((root / "var" / "jobs").iterdir())


def test_folders_outside_the_allowed_roots_are_refused(client, root) -> None:
    outside = root / "outside"
    write_set(outside, {"bed": 1})
    link = root / "allowed" / "link-out"
    link.symlink_to(outside, target_is_directory=True)
    for folder, words in (
        (str(outside), "outside the folders"),
        (str(root / "allowed" / ".." / "outside"), "outside the folders"),
        (str(link), "outside the folders"),
        ("/etc", "outside the folders"),
        (str(root / "allowed" / "missing"), "not a folder"),
    ):
        response = client.post("/reindex", data={"folder": folder}, headers=WRITE)
        assert response.status_code == 403, (folder, response.text)
        assert words in response.json()["detail"]
    neither = client.post("/reindex", data={}, headers=WRITE)
    assert neither.status_code == 400


def test_a_link_to_a_file_outside_is_a_failure_not_a_read(client, root) -> None:
    secret = root / "secret.off"
    secret.write_bytes(synth_off("dresser", 7))
    folder = root / "allowed" / "with-link"
    write_set(folder, {"table": 1}, seed=3)
    os.symlink(secret, folder / "table" / "train" / "sneaky.off")
    job = wait_job(
        client,
        client.post("/reindex", data={"folder": str(folder)}, headers=WRITE).json()["id"],
        timeout_s=JOB_TIMEOUT_S,
    )
    assert job["state"] == "succeeded", job
    assert job["indexed"] == 1
    assert job["failures"] == [
        {"file": "table/train/sneaky.off", "error": job["failures"][0]["error"]}
    ]
    assert "outside the allowed folders" in job["failures"][0]["error"]


def test_a_job_with_nothing_indexable_fails_and_the_old_index_keeps_serving(client, root):
    before = labels(client)
    folder = root / "allowed" / "all-junk"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "bad.off").write_bytes(b"OFF\nnot numbers\n")
    job = wait_job(
        client,
        client.post("/reindex", data={"folder": str(folder)}, headers=WRITE).json()["id"],
        timeout_s=JOB_TIMEOUT_S,
    )
    assert job["state"] == "failed"
    assert "no file could be indexed" in job["error"]
    assert labels(client) == before

    empty = root / "allowed" / "empty"
    empty.mkdir()
    job = wait_job(
        client,
        client.post("/reindex", data={"folder": str(empty)}, headers=WRITE).json()["id"],
        timeout_s=JOB_TIMEOUT_S,
    )
    assert job["state"] == "failed" and "no mesh files" in job["error"]
    assert labels(client) == before


def test_a_queued_job_can_be_cancelled(client, root) -> None:
    before = labels(client)
    folder = root / "allowed" / "set-b"
    write_set(folder, {"bathtub": 4}, seed=5)
    # The first job cannot end while the lock is held, so the second is still queued.
    with index_write_lock(root / "var"):
        first = client.post("/reindex", data={"folder": str(folder)}, headers=WRITE).json()
        second = client.post("/reindex", data={"folder": str(folder)}, headers=WRITE).json()
        cancelled = client.delete(f"/jobs/{second['id']}", headers=WRITE)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert wait_job(client, first["id"], timeout_s=JOB_TIMEOUT_S)["state"] == "succeeded"
    assert wait_job(client, second["id"], timeout_s=JOB_TIMEOUT_S)["state"] == "cancelled"
    assert labels(client) == {"bathtub": 4} != before
    assert client.get("/jobs/nope").status_code == 404
    assert [job["id"] for job in client.get("/jobs").json()["jobs"]][:2] == [
        second["id"],
        first["id"],
    ]


class HeldForwards:
    """A batcher whose forwards wait until `hold` shapes are in (later ones go at once):
    with one render thread, they are only ever all in if the thread goes on rendering while
    earlier shapes wait."""

    rig, image_size = "circle-12", 32

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.waiting: list[Future] = []
        self.lock = threading.Lock()

    def submit(self, views: np.ndarray) -> Future:
        future: Future = Future()
        with self.lock:
            self.waiting.append(future)
            if len(self.waiting) >= self.hold:
                for number, waiting in enumerate(self.waiting):
                    if not waiting.done():
                        waiting.set_result(Embedding(np.full((1, 4), number), np.ones((1, 2))))
        return future


def test_a_reindex_thread_renders_on_while_the_shapes_it_drew_wait_for_a_forward(
    tmp_path,
) -> None:
    files = []
    for i in range(2):
        files.append((tmp_path / f"shape{i}.off", None))
        files[-1][0].write_bytes(synth_off("chair", 50 + i))
    settings = make_settings(tmp_path, tmp_path / "unused.pt", reindex_threads=1)
    batcher = HeldForwards(hold=3)
    target = ReindexTarget(settings, batcher, None, JobFolders(tmp_path / "jobs"))
    assert target.threads == 1
    consumer = ThreadPoolExecutor(1)
    try:
        # The one thread draws both files (a window of two); their forward waits for a
        # third shape. The thread must not be stuck in the first shape's forward meanwhile.
        drawn = consumer.submit(lambda: list(_describe_all(files, target, [tmp_path])))
        wait_until(lambda: len(batcher.waiting) == 2, 120, "the second file drawn")
        batcher.submit(np.zeros((12, 32, 32, 3), np.uint8))  # the third shape
        results = drawn.result(timeout=120)
    finally:
        while len(batcher.waiting) < batcher.hold:  # nothing is left waiting, even on failure
            batcher.submit(np.zeros((12, 32, 32, 3), np.uint8))
        consumer.shutdown()
        target.close()
    assert [float(described.descriptor[0]) for _, _, (described, _, _) in results] == [0, 1]
    assert all(thumbnail.startswith(b"\x89PNG") for _, _, (_, _, thumbnail) in results)
