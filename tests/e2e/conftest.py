"""Real processes over loopback: `gmvit serve` (uvicorn), `redis-server`, `gmvit worker`.

Every server gets its own data dir and a free 127.0.0.1 port; the model is the shipped
GMViT-mini when `weights/` has it (or $GMVIT_E2E_WEIGHTS), else the random 64 px fallback
the service makes itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import DEFAULT_WEIGHTS
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
GMVIT = [sys.executable, "-m", "app"]  # the `gmvit` command of this checkout
API_KEY = "e2e-key"
KEY = {"X-API-Key": API_KEY}
# A trained checkpoint: $GMVIT_E2E_WEIGHTS (to try a candidate), else the shipped one.
TRAINED_WEIGHTS = os.environ.get("GMVIT_E2E_WEIGHTS") or (
    str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else None
)
# Held-out classification with the random fallback works by the neighbour vote on classes
# that look very different; a trained model tells more of them apart.
if TRAINED_WEIGHTS:
    E2E_CLASSES: tuple[str, ...] = ("bed", "chair", "monitor", "table", "toilet")
else:
    E2E_CLASSES = ("chair", "monitor", "night_stand", "toilet")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process with its output in a log file (shown when something fails)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path = REPO):
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        """Everything the process printed so far (its whole log)."""
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        """The end of the log, for assertion messages."""
        return self.output()[-chars:]

    def signal(self, number: int) -> None:
        """Send a signal to the whole process group (e.g. SIGSTOP to freeze it)."""
        os.killpg(self.popen.pid, number)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group: no cleanup runs anywhere."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._out.close()

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()


def service_env(data_dir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMVIT_")}
    env.update(
        PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "osmesa"),
        GMVIT_DATA_DIR=str(data_dir),
        GMVIT_API_KEY=API_KEY,
        GMVIT_DEMO="false",
        GMVIT_WORKERS="2",
        GMVIT_THREADS="1",
    )
    if TRAINED_WEIGHTS:
        env["GMVIT_WEIGHTS"] = TRAINED_WEIGHTS
    env.update({f"GMVIT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class Server(Process):
    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                *GMVIT,
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env,
            log,
        )
        self.http = httpx.Client(base_url=self.url, timeout=120.0)
        wait_ready(self, self.url)

    def stop(self) -> None:
        self.http.close()
        super().stop()

    def kill9(self) -> None:
        self.http.close()
        super().kill9()


def wait_ready(process: Process, url: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"the server exited:\n{process.tail()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server was not ready in {timeout_s} s:\n{process.tail()}")


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<root>/<class>/{train,test}/*.off`: 3 training and 1 held-out shape per class."""
    from gmvit.data import synth

    root = tmp_path_factory.mktemp("allowed") / "synth"
    synth.generate(
        root, seed=7, train_per_class=3, test_per_class=1, classes=E2E_CLASSES, progress=False
    )
    return root


def train_only(synthetic_set: Path, dest: Path) -> Path:
    """A copy of the training split alone, for reindexing (the test split stays held out)."""
    for path in synthetic_set.glob("*/train/*.off"):
        target = dest / path.relative_to(synthetic_set)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return dest


def held_out(synthetic_set: Path) -> list[tuple[str, Path]]:
    return [(path.parent.parent.name, path) for path in sorted(synthetic_set.glob("*/test/*"))]


def start_redis(port: int, folder: Path, *, append_only: bool = False) -> Process:
    """A real redis-server on 127.0.0.1:`port`, answering when this returns; with
    `append_only`, every write is in its append-only file (fsync'd) under `folder`."""
    import redis

    process = Process(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if append_only else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(folder),
        ],
        dict(os.environ),
        folder / "redis.log",
    )
    client = redis.Redis(port=port)
    try:
        wait_until(lambda: _pings(client), 30, "redis-server answering")
    finally:
        client.close()
    return process


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port, no persistence, gone after the session."""
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.stop()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
