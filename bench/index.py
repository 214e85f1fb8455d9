"""Search latency and recall@10 of the shape index's vector layer, Flat against ANN
indexes (HNSW, and IVF with flat, SQ8 or PQ codes, trained as a reindex commit trains them).

Synthetic 512-d descriptors shaped like real ones (clusters of shapes of one class around
a centre, L2-normalised), at 10k, 100k and 1M vectors. Queries are held-out vectors of the
same distribution, searched one at a time as the service does (`VectorSet.search`, the
code `ShapeIndex.search` runs). Recall@10 is measured against exact (Flat) search. An HNSW
build that runs past `--hnsw-budget-s` stops there and is measured at the size it reached:
the table says so. An HNSW index is searched with each `--ef-search` value (the
`GMVIT_INDEX_EF_SEARCH` setting), an IVF index with each `--nprobe` (`GMVIT_INDEX_NPROBE`):
one row each, recall against latency. `MiB` is the index's serialised size.

    python -m bench.index [--sizes 10000 100000 1000000] [--queries 200]
        [--ann HNSW32 IVF1024,Flat IVF1024,PQ64] [--ef-search 64 256] [--nprobe 8 32]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from index.vectors import HNSW_EF_SEARCH, IVF_NPROBE, SearchKnobs, VectorSet

DIM = 512
_CHUNK = 50_000
K = 10


def synthetic_descriptors(
    n: int, rng: np.random.Generator, centres: np.ndarray, spread: float = 0.7
) -> np.ndarray:
    """Unit vectors around unit `centres`; `spread` is the norm of the noise added."""
    sigma = spread / np.sqrt(DIM)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        picks = rng.integers(0, len(centres), stop - start)
        noise = rng.standard_normal((stop - start, DIM), np.float32)
        block = centres[picks] + sigma * noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


@dataclass
class Row:
    vectors: int
    factory: str
    build_s: float
    mib: float
    p50_ms: dict[int, float]  # per OpenMP thread count
    p99_ms: dict[int, float]
    recall: float
    note: str = ""


def _build(factory: str, data: np.ndarray, budget_s: float) -> tuple[VectorSet, float, int]:
    vectors = VectorSet(DIM, factory)
    start = time.perf_counter()
    added = 0
    for lo in range(0, len(data), _CHUNK):
        hi = min(len(data), lo + _CHUNK)
        vectors.add(np.arange(lo, hi, dtype=np.int64), data[lo:hi])
        added = hi
        if time.perf_counter() - start > budget_s:
            break
    vectors = vectors.trained()  # IVF/PQ: as a reindex commit trains it
    return vectors, time.perf_counter() - start, added


def _measure(
    vectors: VectorSet, queries: np.ndarray, k: int, threads: int, knobs: SearchKnobs
) -> tuple[list, np.ndarray]:
    """Search one query at a time with `threads` OpenMP threads; returns ids and seconds."""
    default = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        return _timed_searches(vectors, queries, k, knobs)
    finally:
        faiss.omp_set_num_threads(default)


def _timed_searches(
    vectors: VectorSet, queries: np.ndarray, k: int, knobs: SearchKnobs
) -> tuple[list, np.ndarray]:
    results, times = [], []
    for query in queries:
        t0 = time.perf_counter()
        hits = vectors.search(query, k, knobs=knobs)
        times.append(time.perf_counter() - t0)
        results.append([i for i, _ in hits])
    return results, np.array(times)


def _recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    return float(
        np.mean(
            [len(set(f[:k]) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)]
        )
    )


def _settings(factory: str, ef_searches: Sequence[int], nprobes: Sequence[int]):
    """(row name, knobs) for each search-time setting of the factory."""
    if factory.startswith("HNSW"):
        return [(f"{factory}, efSearch {ef}", SearchKnobs(ef_search=ef)) for ef in ef_searches]
    if factory.startswith("IVF"):
        return [(f"{factory}, nprobe {n}", SearchKnobs(nprobe=n)) for n in nprobes]
    return [(factory, SearchKnobs())]


def run(
    sizes: Sequence[int],
    n_queries: int,
    factories: Sequence[str],
    budget_s: float,
    seed: int,
    ef_searches: Sequence[int] = (HNSW_EF_SEARCH,),
    nprobes: Sequence[int] = (IVF_NPROBE,),
) -> list[Row]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = synthetic_descriptors(n_queries, rng, centres)
    data = synthetic_descriptors(max(sizes), rng, centres)
    thread_counts = sorted({1, faiss.omp_get_max_threads()})
    rows: list[Row] = []
    for size in sorted(sizes):
        for factory in ("Flat", *factories):
            vectors, build_s, reached = _build(
                factory, data[:size], float("inf") if factory == "Flat" else budget_s
            )
            mib = vectors.serialized_bytes() / 2**20
            exact = faiss.IndexFlatIP(DIM)
            exact.add(data[:reached])
            _, truth = exact.search(queries, K)
            del exact
            for name, knobs in _settings(factory, ef_searches, nprobes):
                row = Row(reached, name, build_s, mib, {}, {}, 0.0)
                if reached < size:
                    row.note = f"build stopped at {reached:,} of {size:,} after {build_s:.0f} s"
                for threads in thread_counts:
                    found, times = _measure(vectors, queries, K, threads, knobs)
                    row.p50_ms[threads] = float(np.percentile(times, 50) * 1e3)
                    row.p99_ms[threads] = float(np.percentile(times, 99) * 1e3)
                row.recall = _recall(found, truth, K)
                rows.append(row)
            del vectors
    return rows


def markdown(rows: list[Row]) -> str:
    threads = sorted(rows[0].p50_ms)
    timing_heads = " | ".join(f"p50 ms ({t} thr) | p99 ms ({t} thr)" for t in threads)
    lines = [
        f"| vectors | index | build s | MiB | {timing_heads} | recall@10 | note |",
        "|---:|---|---:|---:|" + "---:|---:|" * len(threads) + "---:|---|",
    ]
    flat_p50 = {r.vectors: r.p50_ms[1] for r in rows if r.factory == "Flat"}
    for r in rows:
        note = r.note
        if r.factory != "Flat" and r.vectors in flat_p50:
            ratio = flat_p50[r.vectors] / r.p50_ms[1]
            note = (note + "; " if note else "") + f"p50 (1 thr) {ratio:.1f}x Flat's speed"
        timings = " | ".join(f"{r.p50_ms[t]:.2f} | {r.p99_ms[t]:.2f}" for t in threads)
        lines.append(
            f"| {r.vectors:,} | {r.factory} | {r.build_s:.1f} | {r.mib:.0f} | {timings} "
            f"| {r.recall:.3f} | {note} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ann", nargs="+", default=["HNSW32"], help="FAISS factories of the ANN indexes"
    )
    parser.add_argument("--hnsw-budget-s", type=float, default=600.0, help="per ANN build")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[HNSW_EF_SEARCH], help="HNSW values to time"
    )
    parser.add_argument(
        "--nprobe", type=int, nargs="+", default=[IVF_NPROBE], help="IVF values to time"
    )
    args = parser.parse_args(argv)
    rows = run(
        args.sizes,
        args.queries,
        args.ann,
        args.hnsw_budget_s,
        args.seed,
        args.ef_search,
        args.nprobe,
    )
    table = markdown(rows)
    print(
        f"FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, "
        f"{args.queries} queries one at a time, k={K}, {DIM}-d, build with all threads\n"
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
