"""Reindex jobs through Redis and a real RQ worker process (`gmvit worker`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    GMVIT,
    KEY,
    TRAINED_WEIGHTS,
    Process,
    Server,
    held_out,
    service_env,
    train_only,
)
from tests.polling import wait_job, wait_until

pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.allowed = root / "allowed"
        self.allowed.mkdir()
        self.env = service_env(
            root / "var",
            redis_url=redis_url,
            allowed_roots=self.allowed,
            job_stale_s=3,
            reindex_chunk=4,
        )
        self.server = Server(self.env, root / "server.log")
        self.started = 0
        self.workers = [self.start_worker(), self.start_worker()]

    def start_worker(self) -> Process:
        self.started += 1
        worker = Process(
            [*GMVIT, "worker"],
            self.env,
            self.root / f"worker-{self.started}.log",
        )
        wait_until(
            lambda: "Listening on" in worker.output() or not worker.alive(),
            180,
            "the worker listening",
        )
        assert worker.alive(), worker.output()
        return worker

    def shapes(self) -> list[dict]:
        return self.server.http.get("/shapes", params={"limit": 1000}).json()["shapes"]

    def reindex(self, folder: Path) -> dict:
        response = self.server.http.post("/reindex", data={"folder": str(folder)}, headers=KEY)
        assert response.status_code == 202, response.text
        return response.json()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("redis-stack"), redis_url)
    yield stack
    for worker in stack.workers:
        worker.stop()
    stack.server.stop()


def test_readiness_reports_redis(stack: Stack) -> None:
    ready = stack.server.http.get("/readyz").json()
    assert ready["jobs_backend"] == "redis" and ready["redis_reachable"] is True


def test_workers_share_a_reindex_and_held_out_shapes_get_their_classes(
    stack, synthetic_set
) -> None:
    folder = train_only(synthetic_set, stack.allowed / "train")
    job = wait_job(stack.server.http, stack.reindex(folder)["id"])
    assert job["state"] == "succeeded", (job, [w.output() for w in stack.workers])
    assert job["indexed"] == job["total"] == len(list(folder.glob("*/train/*.off")))
    # Chunks of 4 files: both workers took some (the server ran none).
    assert all("rq_chunk" in worker.output() for worker in stack.workers)

    for label, path in held_out(synthetic_set):
        with path.open("rb") as mesh:
            classify = stack.server.http.post(
                "/classify", files={"file": (path.name, mesh)}, data={"top_k": 1}
            )
        assert classify.status_code == 200, classify.text
        assert classify.json()["neighbors"]["label"] == label, (path, classify.json()["neighbors"])
        if TRAINED_WEIGHTS:  # the head was trained on these classes; random weights' was not
            assert classify.json()["label"] == label, (path, classify.json()["probabilities"])
        with path.open("rb") as mesh:
            search = stack.server.http.post(
                "/search", files={"file": (path.name, mesh)}, data={"top_k": 3}
            )
        results = search.json()["results"]
        assert len(results) == 3 and results[0]["label"] == label, results
        assert stack.server.http.get(results[0]["thumbnail_url"]).status_code == 200


def test_cancelling_a_running_reindex_keeps_the_old_index(stack, synthetic_set) -> None:
    before = stack.shapes()
    assert before
    folder = stack.allowed / "bigger"
    for copy in range(2):
        shutil.copytree(synthetic_set, folder / f"copy{copy}")
    job = stack.reindex(folder)
    wait_until(
        lambda: stack.server.http.get(f"/jobs/{job['id']}").json()["done"] >= 1,
        120,
        "the reindex under way",
    )
    cancelled = stack.server.http.delete(f"/jobs/{job['id']}", headers=KEY)
    assert cancelled.status_code == 200
    final = wait_job(stack.server.http, job["id"])
    assert final["state"] == "cancelled" and final["done"] < final["total"]
    assert stack.shapes() == before


def test_a_worker_killed_mid_reindex_leaves_the_old_index_serving(stack, synthetic_set) -> None:
    before = stack.shapes()
    added = stack.server.http.post(
        "/shapes",
        files={"file": ("extra.off", next(synthetic_set.glob("*/test/*")).read_bytes())},
        headers=KEY,
    )
    assert added.status_code == 201, added.text
    acknowledged = before + [added.json()["shape"]]

    folder = stack.allowed / "bigger"
    job = stack.reindex(folder)
    wait_until(
        lambda: stack.server.http.get(f"/jobs/{job['id']}").json()["done"] >= 4,
        120,
        "the reindex under way",
    )
    stack.workers[0].kill9()
    # The other worker finishes the remaining chunks; the dead one's never ends.
    lost = wait_job(stack.server.http, job["id"], timeout_s=180)
    assert lost["state"] == "failed" and "no heartbeat" in lost["error"]
    assert stack.shapes() == acknowledged

    # Restarted: the dead build is cleaned up, the old index still answers, a new job works.
    stack.workers[0] = stack.start_worker()
    probe = stack.server.http.post("/search", data={"shape_id": acknowledged[0]["id"]})
    assert probe.status_code == 200 and probe.json()["results"]
    again = wait_job(stack.server.http, stack.reindex(stack.allowed / "train")["id"])
    assert again["state"] == "succeeded", (again, [w.output() for w in stack.workers])
    # A reindex replaces the collection with the folder's shapes.
    names = sorted(shape["name"] for shape in stack.shapes())
    assert names == sorted(
        p.relative_to(stack.allowed / "train").as_posix()
        for p in (stack.allowed / "train").glob("*/train/*.off")
    )
