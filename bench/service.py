"""Latency and throughput of the service's /classify and /search over loopback.

Starts a real `gmvit serve` (uvicorn, in-process jobs) on a free port with a fresh data
dir, lets it index the synthetic demo set, then sends held-out synthetic meshes from 1, 4
and 16 concurrent clients (one HTTP connection each). Reports client-side p50/p99
latency, throughput, and the server's own stage timings (`timings_ms` of each answer,
averaged). The server runs with GMVIT_QUEUE large enough that no request is refused, so
the 16-client rows measure queueing, not 503s. Then runs `bench.index` (vector search
latency and recall@10 of Flat and HNSW).

    python -m bench.service [--requests 24] [--workers 2] [--index-sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from bench import index as index_bench
from bench.server import serving

CONCURRENCY = (1, 4, 16)
STAGES = ("read", "queue", "render", "embed", "search", "preview")


def _queries(data_dir: Path) -> list[tuple[str, bytes]]:
    examples = sorted((data_dir / "demo" / "examples").glob("*.off"))
    return [(path.name, path.read_bytes()) for path in examples]


def _run_level(
    url: str, route: str, clients: int, requests: int, queries: list[tuple[str, bytes]]
) -> dict:
    latencies: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                name, data = queries[n % len(queries)]
                start = time.perf_counter()
                response = http.post(route, files={"file": (name, data)}, data={"top_k": 5})
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    for stage, ms in response.json()["timings_ms"].items():
                        stages[stage].append(ms)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000.0
    return {
        "route": route,
        "clients": clients,
        "requests": len(latencies),
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "throughput": len(latencies) / wall,
        "stages": {stage: float(np.mean(values)) for stage, values in stages.items()},
    }


def markdown(rows: list[dict]) -> str:
    head = (
        "| route | clients | requests | p50 ms | p99 ms | req/s | "
        + " | ".join(f"{s} ms" for s in STAGES)
        + " |"
    )
    lines = [head, "|" + "---|" * (6 + len(STAGES))]
    for row in rows:
        stages = " | ".join(
            f"{row['stages'][s]:.1f}" if s in row["stages"] else "-" for s in STAGES
        )
        lines.append(
            f"| {row['route']} | {row['clients']} | {row['requests']} | {row['p50']:.0f} "
            f"| {row['p99']:.0f} | {row['throughput']:.2f} | {stages} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24, help="per route and level")
    parser.add_argument("--workers", type=int, default=2, help="GMVIT_WORKERS of the server")
    parser.add_argument("--index-sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-index", action="store_true", help="only the service part")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gmvit-bench-") as tmp:
        data_dir = Path(tmp) / "var"
        # A waiting room large enough that no request is refused: 16 clients queue, not 503.
        with serving(data_dir, workers=args.workers, queue=32, demo="true") as server:
            server.wait_for_job()
            ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
            queries = _queries(data_dir)
            # One untimed round: the renderer's parser processes and GL contexts start.
            _run_level(server.url, "/classify", args.workers, args.workers * 2, queries)
            rows = [
                _run_level(server.url, route, clients, max(args.requests, 2 * clients), queries)
                for route in ("/classify", "/search")
                for clients in CONCURRENCY
            ]

    table = markdown(rows)
    print(
        f"model {ready['model_id']}{' (random weights)' if ready['random_weights'] else ''}, "
        f"{ready['shapes']} shapes indexed, server GMVIT_WORKERS={args.workers}, "
        f"{os.cpu_count()} CPUs, {len(queries)} distinct query meshes; latency is the "
        "client's, stages are the server's means\n"
    )
    print(table)
    print()
    if not args.skip_index:
        index_bench.main(["--sizes", *map(str, args.index_sizes)])
    return table


if __name__ == "__main__":
    main()
