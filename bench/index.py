"""Search latency and recall@10 of the shape index's vector layer, Flat against ANN
indexes (HNSW, and IVF with flat, SQ8 or PQ codes, trained on a sample of the vectors as a
reindex commit trains them).

Synthetic 512-d descriptors shaped like real ones (clusters of shapes of one class around
a centre, L2-normalised), at 10k, 100k and 1M vectors, or 10M: the vectors are generated,
added and scored chunk by chunk, so nothing but the index holds them all. Queries are
held-out vectors of the same distribution, searched one at a time as the service does
(`VectorSet.search`, the code `ShapeIndex.search` runs). Recall@10 is measured against
exact search (chunked, beside the build). An HNSW index is built with each
`--ef-construction` and searched with each `--ef-search` value (the
`GMVIT_INDEX_EF_SEARCH` setting), an IVF index with each `--nprobe`
(`GMVIT_INDEX_NPROBE`): one row each, recall against latency. An ANN build that runs past
`--build-budget-s` stops there and is measured at the size it reached: the table says so.
`MiB` is the index's serialised size, `RSS GiB` the bench process's resident memory once
the index is built. Flat is built up to `--flat-max` vectors.

    python -m bench.index [--sizes 10000 100000 1000000] [--queries 200]
        [--ann HNSW32 IVF1024,Flat IVF1024,PQ64] [--ef-construction 40 160]
        [--ef-search 64 256] [--nprobe 8 32]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from index.vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    IVF_NPROBE,
    TRAIN_SAMPLE,
    SearchKnobs,
    VectorSet,
    make_faiss_index,
    needs_training,
    train_index,
)

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


@dataclass(frozen=True)
class Collection:
    """A reproducible stream of descriptors: the first n are the same for every n."""

    centres: np.ndarray
    rng_state: dict

    def chunks(self, n: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first id, vectors) of the first n descriptors, `_CHUNK` at a time."""
        rng = np.random.default_rng()
        rng.bit_generator.state = self.rng_state
        for start in range(0, n, _CHUNK):
            # Whole chunks, the last one cut: the same draws whatever n is.
            yield start, synthetic_descriptors(_CHUNK, rng, self.centres)[: n - start]


def exact_top_k(collection: Collection, n: int, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of each query's k best inner products among the first n descriptors."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for start, block in collection.chunks(n):
        scores = np.concatenate([best_scores, queries @ block.T], axis=1)
        ids = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(start, start + len(block)), scores[:, k:].shape)],
            axis=1,
        )
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_ids = np.take_along_axis(ids, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_ids, order, axis=1)


@dataclass
class Row:
    vectors: int
    factory: str
    build_s: float
    mib: float
    rss_gib: float
    p50_ms: dict[int, float]  # per OpenMP thread count
    p99_ms: dict[int, float]
    recall: float
    note: str = ""


def _resident_gib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def _build(
    factory: str, collection: Collection, size: int, budget_s: float, ef_construction: int
) -> tuple[VectorSet, float, int]:
    """The factory's index of the first `size` descriptors (trained first on up to
    TRAIN_SAMPLE of them, when it needs training), built until `budget_s` runs out. The
    seconds are those of training and adding, not of generating the descriptors."""
    seconds = 0.0
    if needs_training(DIM, factory):
        sample = np.concatenate([b for _, b in collection.chunks(min(size, TRAIN_SAMPLE))])
        start = time.perf_counter()
        index = train_index(DIM, factory, sample)
        seconds += time.perf_counter() - start
        del sample
    else:
        index = make_faiss_index(DIM, factory, ef_construction)
    vectors = VectorSet(DIM, factory, index)
    added = 0
    for lo, block in collection.chunks(size):
        start = time.perf_counter()
        vectors.add(np.arange(lo, lo + len(block), dtype=np.int64), block)
        seconds += time.perf_counter() - start
        added = lo + len(block)
        if seconds > budget_s:
            break
    return vectors, seconds, added


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


def _builds(factory: str, ef_constructions: Sequence[int]) -> list[tuple[str, int]]:
    """(name, efConstruction) of each build of the factory."""
    if factory.startswith("HNSW"):
        return [(f"{factory} (efConstruction {efc})", efc) for efc in ef_constructions]
    return [(factory, HNSW_EF_CONSTRUCTION)]


def _settings(factory: str, ef_searches: Sequence[int], nprobes: Sequence[int]):
    """(row suffix, knobs) for each search-time setting of the factory."""
    if factory.startswith("HNSW"):
        return [(f", efSearch {ef}", SearchKnobs(ef_search=ef)) for ef in ef_searches]
    if factory.startswith("IVF"):
        return [(f", nprobe {n}", SearchKnobs(nprobe=n)) for n in nprobes]
    return [("", SearchKnobs())]


def run(
    sizes: Sequence[int],
    n_queries: int,
    factories: Sequence[str],
    budget_s: float,
    seed: int,
    ef_searches: Sequence[int] = (HNSW_EF_SEARCH,),
    nprobes: Sequence[int] = (IVF_NPROBE,),
    ef_constructions: Sequence[int] = (HNSW_EF_CONSTRUCTION,),
    flat_max: int = 1_000_000,
) -> list[Row]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = synthetic_descriptors(n_queries, rng, centres)
    collection = Collection(centres, rng.bit_generator.state)
    thread_counts = sorted({1, faiss.omp_get_max_threads()})
    rows: list[Row] = []
    for size in sorted(sizes):
        truth = exact_top_k(collection, size, queries, K)
        exact = ("Flat",) if size <= flat_max else ()
        for factory in (*exact, *factories):
            for name, efc in _builds(factory, ef_constructions):
                vectors, build_s, reached = _build(
                    factory, collection, size, float("inf") if factory == "Flat" else budget_s, efc
                )
                mib = vectors.serialized_bytes() / 2**20
                rss = _resident_gib()
                reached_truth = (
                    truth if reached == size else exact_top_k(collection, reached, queries, K)
                )
                for suffix, knobs in _settings(factory, ef_searches, nprobes):
                    row = Row(reached, name + suffix, build_s, mib, rss, {}, {}, 0.0)
                    if reached < size:
                        row.note = f"build stopped at {reached:,} of {size:,} after {build_s:.0f} s"
                    for threads in thread_counts:
                        found, times = _measure(vectors, queries, K, threads, knobs)
                        row.p50_ms[threads] = float(np.percentile(times, 50) * 1e3)
                        row.p99_ms[threads] = float(np.percentile(times, 99) * 1e3)
                    row.recall = _recall(found, reached_truth, K)
                    rows.append(row)
                del vectors
    return rows


def markdown(rows: list[Row]) -> str:
    threads = sorted(rows[0].p50_ms)
    timing_heads = " | ".join(f"p50 ms ({t} thr) | p99 ms ({t} thr)" for t in threads)
    lines = [
        f"| vectors | index | build s | MiB | RSS GiB | {timing_heads} | recall@10 | note |",
        "|---:|---|---:|---:|---:|" + "---:|---:|" * len(threads) + "---:|---|",
    ]
    flat_p50 = {r.vectors: r.p50_ms[1] for r in rows if r.factory == "Flat"}
    for r in rows:
        note = r.note
        if r.factory != "Flat" and r.vectors in flat_p50:
            ratio = flat_p50[r.vectors] / r.p50_ms[1]
            note = (note + "; " if note else "") + f"p50 (1 thr) {ratio:.1f}x Flat's speed"
        timings = " | ".join(f"{r.p50_ms[t]:.2f} | {r.p99_ms[t]:.2f}" for t in threads)
        lines.append(
            f"| {r.vectors:,} | {r.factory} | {r.build_s:.1f} | {r.mib:.0f} | {r.rss_gib:.1f} "
            f"| {timings} | {r.recall:.3f} | {note} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ann", nargs="+", default=["HNSW32"], help="FAISS factories of the ANN indexes"
    )
    parser.add_argument("--build-budget-s", type=float, default=1800.0, help="per ANN build")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ef-construction",
        type=int,
        nargs="+",
        default=[HNSW_EF_CONSTRUCTION],
        help="HNSW graphs to build",
    )
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[HNSW_EF_SEARCH], help="HNSW values to time"
    )
    parser.add_argument(
        "--nprobe", type=int, nargs="+", default=[IVF_NPROBE], help="IVF values to time"
    )
    parser.add_argument(
        "--flat-max", type=int, default=1_000_000, help="largest size with a Flat row"
    )
    args = parser.parse_args(argv)
    rows = run(
        args.sizes,
        args.queries,
        args.ann,
        args.build_budget_s,
        args.seed,
        args.ef_search,
        args.nprobe,
        args.ef_construction,
        args.flat_max,
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
