"""Nothing acknowledged is lost: crash and fault rounds against the real server.

Each round starts `gmvit serve` on a data dir, has a client add shapes (distinct meshes)
and counts the writes the server acknowledged (201); then something goes wrong; then a
server restarted on the same data dir must hold every acknowledged shape, with its
record and its thumbnail. Rounds:

- `kill -9 amid adds`: the server is killed while a client adds shapes;
- `kill -9 amid a reindex`: killed while a reindex job runs and shapes are added;
- `adds during a reindex`: shapes added while a reindex runs, which then commits;
- `snapshot lost`, `snapshot bytes flipped`, `log bytes flipped`: the generation's
  files damaged between two runs (the other copy must recover them).

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.reliability [--rounds 3] [--code DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import trimesh

from bench.server import REPO, Server, serving
from gmvit.data import synth

KEY = "bench-key"


def mesh(seed: int) -> bytes:
    shape = synth.make_shape(synth.CLASSES[seed % len(synth.CLASSES)], np.random.default_rng(seed))
    return trimesh.exchange.off.export_off(shape, digits=6).encode()


class Adder:
    """Adds distinct shapes in a thread until stopped; remembers what was acknowledged."""

    def __init__(self, server: Server, first_seed: int) -> None:
        self.server = server
        self.acknowledged: list[dict] = []
        self._seed = first_seed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=60) as http:
            while not self._stop.is_set():
                self._seed += 1
                try:
                    answer = http.post(
                        "/shapes",
                        files={"file": (f"r{self._seed}.off", mesh(self._seed))},
                        headers={"X-API-Key": KEY},
                    )
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if answer.status_code == 201:
                    self.acknowledged.append(answer.json()["shape"])

    def wait_for(self, count: int) -> None:
        while len(self.acknowledged) < count and self._thread.is_alive():
            self._thread.join(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)


def missing(server: Server, acknowledged: list[dict]) -> int:
    """How many acknowledged shapes the server does not serve as they were acknowledged."""
    page = httpx.get(f"{server.url}/shapes", params={"limit": 1000}, timeout=60).json()
    present = {shape["id"]: shape for shape in page["shapes"]}
    lost = 0
    for shape in acknowledged:
        thumbnail = httpx.get(f"{server.url}{shape['thumbnail_url']}", timeout=60)
        lost += present.get(shape["id"]) != shape or thumbnail.status_code != 200
    return lost


def ready(server: Server) -> Server:
    server.wait_ready()
    return server


def kill_amid_adds(
    data_dir: Path, rng: random.Random, round_no: int, code: Path
) -> tuple[int, int]:
    with serving(data_dir, code=code, api_key=KEY, demo="false") as server:
        adder = Adder(ready(server), 10_000 * round_no)
        adder.wait_for(rng.randint(3, 12))
        server.process.kill()
        adder.stop()
    with serving(data_dir, code=code, api_key=KEY, demo="false") as server:
        return len(adder.acknowledged), missing(ready(server), adder.acknowledged)


def _reindexing(
    data_dir: Path, rng: random.Random, round_no: int, code: Path, *, kill: bool
) -> tuple[int, int]:
    """Shapes added while a reindex of a fresh synthetic folder runs; then the server is
    killed (`kill`), or the job commits."""
    folder = data_dir.parent / f"allowed-{round_no}"
    synth.generate(folder, seed=round_no, train_per_class=4, test_per_class=0, progress=False)
    settings = {"api_key": KEY, "demo": "false", "allowed_roots": folder.parent}
    with serving(data_dir, code=code, **settings) as server:
        ready(server)
        job = httpx.post(
            f"{server.url}/reindex", data={"folder": str(folder)}, headers=server.headers
        )
        job.raise_for_status()
        adder = Adder(server, 10_000 * round_no)
        adder.wait_for(rng.randint(2, 8))
        if kill:
            server.process.kill()
        adder.stop()
        if not kill:
            server.wait_for_job(job.json()["id"])
            return len(adder.acknowledged), missing(server, adder.acknowledged)
    with serving(data_dir, code=code, **settings) as server:
        return len(adder.acknowledged), missing(ready(server), adder.acknowledged)


def kill_amid_reindex(
    data_dir: Path, rng: random.Random, round_no: int, code: Path
) -> tuple[int, int]:
    return _reindexing(data_dir, rng, round_no, code, kill=True)


def adds_during_reindex(
    data_dir: Path, rng: random.Random, round_no: int, code: Path
) -> tuple[int, int]:
    return _reindexing(data_dir, rng, round_no, code, kill=False)


def _damaged(damage: Callable[[Path], None]):
    def round_(data_dir: Path, rng: random.Random, round_no: int, code: Path) -> tuple[int, int]:
        with serving(data_dir, code=code, api_key=KEY, demo="false") as server:
            adder = Adder(ready(server), 10_000 * round_no)
            adder.wait_for(rng.randint(3, 12))
            adder.stop()
        (model_dir,) = (data_dir / "index").glob("*/MODEL")
        live = model_dir.parent / (model_dir.parent / "CURRENT").read_text().strip()
        damage(live)
        with serving(data_dir, code=code, api_key=KEY, demo="false") as server:
            return len(adder.acknowledged), missing(ready(server), adder.acknowledged)

    return round_


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


SCENARIOS: dict[str, Callable[[Path, random.Random, int, Path], tuple[int, int]]] = {
    "kill -9 amid adds": kill_amid_adds,
    "kill -9 amid a reindex (adds meanwhile)": kill_amid_reindex,
    "adds during a reindex that commits": adds_during_reindex,
    "snapshot lost": _damaged(lambda gen: (gen / "vectors.faiss").unlink()),
    "snapshot bytes flipped": _damaged(lambda gen: _flip(gen / "vectors.faiss")),
    "log bytes flipped (covered by the snapshot)": _damaged(lambda gen: _flip(gen / "log")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to try")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("| scenario | rounds | acknowledged writes | lost |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="gmvit-reliability-") as tmp:
        for number, (name, scenario) in enumerate(SCENARIOS.items()):
            acknowledged = lost = 0
            for round_no in range(args.rounds):
                data_dir = Path(tmp) / f"s{number}-r{round_no}" / "var"
                tried, gone = scenario(data_dir, rng, round_no + 1, args.code)
                acknowledged += tried
                lost += gone
            print(f"| {name} | {args.rounds} | {acknowledged} | {lost} |", flush=True)


if __name__ == "__main__":
    main()
