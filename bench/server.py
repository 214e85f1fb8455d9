"""A real `gmvit serve` for the benchmarks: a subprocess on a free loopback port.

    with serving(data_dir, demo="true", workers=2) as server:
        job = server.wait_for_job()          # the demo job, or any job by id
        httpx.post(f"{server.url}/classify", files=...)

Settings are passed as `GMVIT_*` variables (keyword `demo` -> `GMVIT_DEMO`); nothing of
the caller's own `GMVIT_*` environment leaks in. The server's log goes to
`<data_dir>/server.log` and its last lines are in the error when it dies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
FINISHED = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    api_key: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"the server exited with code {self.process.returncode}:\n" + "\n".join(tail)
            )

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """Until /readyz answers 200 (the model loaded and the index open)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # still starting
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")

    def wait_for_job(
        self, job_id: str | None = None, timeout_s: float = 3600.0, poll_s: float = 0.5
    ) -> dict:
        """Poll a job (by default the newest) every `poll_s` until it ends; return it if it
        succeeded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if job_id is None:
                    jobs = httpx.get(f"{self.url}/jobs", headers=self.headers, timeout=10).json()
                    job = jobs["jobs"][0] if jobs["jobs"] else None
                else:
                    job = httpx.get(
                        f"{self.url}/jobs/{job_id}", headers=self.headers, timeout=10
                    ).json()
            except httpx.TransportError:
                job = None  # still starting
            if job is not None and job["state"] in FINISHED:
                if job["state"] != "succeeded":
                    raise RuntimeError(f"the {job['kind']} job {job['state']}: {job['error']}")
                return job
            time.sleep(poll_s)
        raise RuntimeError(f"the server's job did not finish within {timeout_s:.0f} s")

    def reindex(self, folder: Path) -> dict:
        """Replace the collection with the meshes of a server-side folder; wait for it."""
        response = httpx.post(
            f"{self.url}/reindex", data={"folder": str(folder)}, headers=self.headers, timeout=60
        )
        response.raise_for_status()
        return self.wait_for_job(response.json()["id"])


@contextmanager
def serving(data_dir: Path, code: Path = REPO, **settings: object) -> Iterator[Server]:
    """Run `gmvit serve` of the checkout at `code` (this one by default: another one to
    compare with) with GMVIT_DATA_DIR=data_dir and the given settings until the block
    ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMVIT_")}
    env["PYOPENGL_PLATFORM"] = os.environ.get("PYOPENGL_PLATFORM", "osmesa")
    env["PYTHONPATH"] = str(code)
    env["GMVIT_DATA_DIR"] = str(data_dir)
    env.update({f"GMVIT_{key.upper()}": str(value) for key, value in settings.items()})
    port = free_port()
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=code,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, env.get("GMVIT_API_KEY"))
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
