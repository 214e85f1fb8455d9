"""bench/index.py: the streamed ground truth and the rows it measures against it."""

from __future__ import annotations

import faiss
import numpy as np

from bench import index as bench_index


def _collection(seed: int = 0) -> bench_index.Collection:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, bench_index.DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return bench_index.Collection(centres, rng.bit_generator.state)


def test_a_collection_streams_the_same_prefix_for_every_size(monkeypatch):
    monkeypatch.setattr(bench_index, "_CHUNK", 300)
    collection = _collection()
    short = np.concatenate([block for _, block in collection.chunks(700)])
    long = np.concatenate([block for _, block in collection.chunks(1000)])
    assert short.shape == (700, bench_index.DIM)
    np.testing.assert_array_equal(short, long[:700])
    np.testing.assert_allclose(np.linalg.norm(long, axis=1), 1.0, rtol=1e-5)


def test_chunked_exact_search_finds_what_one_flat_index_finds(monkeypatch):
    monkeypatch.setattr(bench_index, "_CHUNK", 300)
    collection = _collection(1)
    data = np.concatenate([block for _, block in collection.chunks(1000)])
    queries = data[[3, 517, 998]] + 0.01
    flat = faiss.IndexFlatIP(bench_index.DIM)
    flat.add(data)
    _, expected = flat.search(queries, 10)
    found = bench_index.exact_top_k(collection, 1000, queries, 10)
    np.testing.assert_array_equal(found, expected)
    assert set(found[:, 0].tolist()) == {3, 517, 998}


def test_rows_recall_against_exact_search():
    rows = bench_index.run(
        sizes=[2000],
        n_queries=20,
        factories=["IVF16,Flat", "HNSW16"],
        budget_s=float("inf"),
        seed=0,
        ef_searches=[200],
        nprobes=[1, 16],
        ef_constructions=[40],
    )
    recall = {row.factory: row.recall for row in rows}
    assert recall["Flat"] == 1.0
    # Probing all 16 lists is an exhaustive search; one list misses neighbours.
    assert recall["IVF16,Flat, nprobe 16"] == 1.0
    assert recall["IVF16,Flat, nprobe 1"] < 1.0
    assert recall["HNSW16 (efConstruction 40), efSearch 200"] > 0.9
    assert {row.vectors for row in rows} == {2000}
    table = bench_index.markdown(rows)
    assert "IVF16,Flat, nprobe 16" in table
