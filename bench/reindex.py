"""Reindex throughput through the real server: files per second of a `POST /reindex` of a
folder of synthetic meshes, from submit to the job's end (commit included).

Each checkout given (`--code`, this one by default) serves the same weights on its own
data dir with in-process jobs; the checkouts take turns, `--rounds` times each, so that
every ratio compares runs of one sitting on the same machine.

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.reindex --code ../old . [--files 120]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.server import REPO, serving
from gmvit.data import synth

DEFAULT_WEIGHTS = REPO / "weights" / "gmvit-mini-synth10.pt"


def reindex_seconds(code: Path, data_dir: Path, folder: Path, weights: Path, workers: int) -> float:
    with serving(
        data_dir,
        code=code,
        api_key="bench",
        demo="false",
        weights=weights,
        allowed_roots=folder.parent,
        workers=workers,
    ) as server:
        server.wait_ready()
        start = time.perf_counter()
        response = httpx.post(
            f"{server.url}/reindex", data={"folder": str(folder)}, headers=server.headers
        )
        response.raise_for_status()
        # A fine poll: a job of a few seconds must not be rounded up to the next half second.
        server.wait_for_job(response.json()["id"], poll_s=0.02)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, nargs="+", default=[REPO])
    parser.add_argument("--files", type=int, default=120, help="meshes in the folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--workers", type=int, default=2, help="GMVIT_WORKERS of the servers")
    args = parser.parse_args()
    per_class = max(1, args.files // len(synth.CLASSES))
    with tempfile.TemporaryDirectory(prefix="gmvit-reindex-") as tmp:
        folder = Path(tmp) / "allowed" / "meshes"
        synth.generate(folder, seed=3, train_per_class=per_class, test_per_class=0, progress=False)
        files = per_class * len(synth.CLASSES)
        seconds: dict[Path, list[float]] = {code: [] for code in args.code}
        for round_no in range(args.rounds):
            for number, code in enumerate(args.code):
                data_dir = Path(tmp) / f"var-{number}-{round_no}"
                seconds[code].append(
                    reindex_seconds(code, data_dir, folder, args.weights, args.workers)
                )
    first = statistics.median(seconds[args.code[0]])
    print(
        f"{files} files, weights {args.weights.name}, GMVIT_WORKERS={args.workers}, "
        f"{args.rounds} rounds (median)\n"
    )
    print("| checkout | seconds | files/s | speed vs the first |")
    print("|---|---:|---:|---:|")
    for code, times in seconds.items():
        median = statistics.median(times)
        print(f"| {code} | {median:.1f} | {files / median:.2f} | {first / median:.2f}x |")


if __name__ == "__main__":
    main()
