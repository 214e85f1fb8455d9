"""Waiting for asynchronous work in tests: a condition, or a job of the API to end.

`http` is anything with `.get(path)` answering JSON: FastAPI's TestClient or an
`httpx.Client` with a base URL, so in-process and end-to-end tests poll alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 120.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout_s} s")


def wait_job(http: Any, job_id: str, timeout_s: float = 300.0) -> dict:
    """Poll `GET /jobs/{id}` until the job is no longer queued or running; its last answer."""
    last: dict = {}

    def ended() -> bool:
        answer = http.get(f"/jobs/{job_id}")
        if answer.status_code == 503:  # busy, or its job queue away for a while: ask again
            return False
        last.update(answer.json())
        return last["state"] not in ("queued", "running")

    wait_until(ended, timeout_s, f"job {job_id} ending")
    return last
