"""Redis taken away in the middle of a reindex, then brought back (with its append-only
file, as a compose deployment would): the server answers JSON 503s meanwhile, the worker
does not die, the chunk it was running runs again, and the job ends as if nothing
happened."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.conftest import GMVIT, KEY, Process, Server, free_port, service_env, start_redis
from tests.polling import wait_job, wait_until

pytestmark = pytest.mark.slow


def test_a_redis_outage_loses_no_job_and_no_worker(tmp_path, synthetic_set) -> None:
    port = free_port()
    (tmp_path / "redis").mkdir()
    redis_server = start_redis(port, tmp_path / "redis", append_only=True)
    allowed = tmp_path / "allowed"
    for copy in range(2):
        shutil.copytree(synthetic_set, allowed / "set" / f"copy{copy}")
    env = service_env(
        tmp_path / "var",
        redis_url=f"redis://127.0.0.1:{port}/0",
        allowed_roots=allowed,
        job_stale_s=3,
        reindex_chunk=4,
    )
    worker = Process([*GMVIT, "worker"], env, tmp_path / "worker.log")
    server = None
    try:
        wait_until(lambda: "Listening on" in worker.output(), 180, "the worker listening")
        server = Server(env, tmp_path / "server.log")
        job = server.http.post("/reindex", data={"folder": str(allowed / "set")}, headers=KEY)
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        wait_until(
            lambda: server.http.get(f"/jobs/{job_id}").json()["done"] >= 1,
            120,
            "the reindex under way",
        )

        redis_server.kill9()
        for method, path, data in (
            ("GET", "/jobs", None),
            ("GET", f"/jobs/{job_id}", None),
            ("POST", "/reindex", {"folder": str(allowed / "set")}),
        ):
            answer = server.http.request(method, path, data=data, headers=KEY)
            assert answer.status_code == 503, (path, answer.text)
            assert "Redis" in answer.json()["detail"] and answer.headers["Retry-After"]
        ready = server.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis_reachable"] is False
        # Busy, our loop reconnects; idle in RQ's dequeue, RQ's own loop retries.
        wait_until(
            lambda: any(
                seen in worker.output() for seen in ("reconnecting", "could not connect to Redis")
            ),
            120,
            "the worker seeing the outage",
        )
        assert worker.alive(), worker.tail()

        redis_server = start_redis(port, tmp_path / "redis", append_only=True)
        final = wait_job(server.http, job_id, timeout_s=300)
        assert final["state"] == "succeeded", (final, worker.tail())
        assert final["done"] == final["total"] == final["indexed"] + final["failed"]
        wait_until(lambda: server.http.get("/readyz").status_code == 200, 60, "ready again")
        assert server.http.get("/readyz").json()["workers"] == 1
        assert worker.alive()
    finally:
        if server is not None:
            server.stop()
        worker.stop()
        redis_server.stop()
