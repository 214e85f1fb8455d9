"""The real server on a damaged data dir: what the other copy holds is recovered, what is
lost makes it refuse to start (saying how to recover), and `gmvit index check/repair`
work on it. Nothing acknowledged is ever deleted by a start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from gmvit.data import synth
from tests.app.conftest import off_bytes
from tests.e2e.conftest import GMVIT, KEY, REPO, Process, Server, free_port, service_env
from tests.polling import wait_until

pytestmark = pytest.mark.slow


def live_generation(data_dir: Path) -> Path:
    (model_dir,) = (data_dir / "index").glob("*/MODEL")
    return model_dir.parent / (model_dir.parent / "CURRENT").read_text().strip()


def flip(path: Path, at: int, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, at + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def gmvit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GMVIT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_damaged_index_is_recovered_or_refused_never_emptied(tmp_path) -> None:
    env = service_env(tmp_path / "var")
    meshes = {
        f"d{i}.off": off_bytes(synth.make_shape(label, np.random.default_rng(500 + i)))
        for i, label in enumerate(synth.CLASSES[:8])
    }
    server = Server(env, tmp_path / "server-1.log")
    try:
        shapes = {}
        for name, data in meshes.items():
            added = server.http.post("/shapes", files={"file": (name, data)}, headers=KEY)
            assert added.status_code == 201, added.text
            shapes[name] = added.json()["shape"]
    finally:
        server.stop()

    def serves_everything(log: str) -> None:
        restarted = Server(env, tmp_path / log)
        try:
            page = restarted.http.get("/shapes", params={"limit": 100}).json()
            assert {s["id"]: s for s in page["shapes"]} == {s["id"]: s for s in shapes.values()}
            for name, data in meshes.items():
                hits = restarted.http.post(
                    "/search", files={"file": (name, data)}, data={"top_k": 1}
                ).json()["results"]
                assert hits[0]["id"] == shapes[name]["id"]
                assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        finally:
            restarted.stop()

    # The snapshot lost: rebuilt from the log.
    (live_generation(tmp_path / "var") / "vectors.faiss").unlink()
    serves_everything("server-2.log")

    # Flipped bytes inside the snapshot's vectors: its checksum fails, the log rebuilds it.
    snapshot = live_generation(tmp_path / "var") / "vectors.faiss"
    flip(snapshot, snapshot.stat().st_size // 2)
    serves_everything("server-3.log")

    # CURRENT emptied: the server refuses to start and says how to recover.
    generation = live_generation(tmp_path / "var")
    (generation.parent / "CURRENT").write_text("")
    refused = Process([*GMVIT, "serve", "--port", str(free_port())], env, tmp_path / "server-4.log")
    wait_until(lambda: not refused.alive(), 120, "the server giving up")
    assert refused.popen.returncode != 0
    assert "gmvit index repair" in refused.output() and "CURRENT" in refused.output()
    # The reason in one line: no traceback of the lifespan that refused.
    assert "cannot start: " in refused.output() and "Traceback" not in refused.output()
    check = gmvit(env, "index", "check")
    assert check.returncode == 1 and "DAMAGED" in check.stdout and "CURRENT" in check.stdout
    repair = gmvit(env, "index", "repair")
    assert repair.returncode == 2 and f"--generation (the newest is {generation.name})" in (
        repair.stderr
    )
    repair = gmvit(env, "index", "repair", "--generation", generation.name)
    assert repair.returncode == 0, repair.stderr
    assert gmvit(env, "index", "check").returncode == 0
    serves_everything("server-5.log")

    # The metadata lost: no empty index is served in its place.
    (live_generation(tmp_path / "var") / "meta.sqlite3").rename(tmp_path / "meta.saved")
    refused = Process([*GMVIT, "serve", "--port", str(free_port())], env, tmp_path / "server-6.log")
    wait_until(lambda: not refused.alive(), 120, "the server giving up")
    assert "meta.sqlite3) is missing" in refused.output()
    (tmp_path / "meta.saved").rename(live_generation(tmp_path / "var") / "meta.sqlite3")
    serves_everything("server-7.log")
