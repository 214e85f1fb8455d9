import threading

import numpy as np
import pytest

from index import ModelMismatchError, ShapeIndex, ShapeIndexError
from tests.index.conftest import DIM


def _fill(index: ShapeIndex, rng: np.random.Generator, n: int, rare_every: int = 0) -> list:
    records = []
    for i in range(n):
        label = "rare" if rare_every and i % rare_every == 0 else "common"
        records.append(
            index.add(rng.normal(size=DIM), name=f"shape{i}", sha256=f"sha{i}", label=label)
        )
    return records


def test_add_get_list_count_labels_and_sha_lookup(tmp_path, rng):
    with ShapeIndex.open(tmp_path, "mini@1", dim=DIM) as index:
        records = _fill(index, rng, 30, rare_every=10)
        assert len({r.id for r in records}) == 30
        assert index.count() == 30 == index.vector_count()
        assert index.labels() == {"common": 27, "rare": 3}
        assert index.count(label="rare") == 3
        assert index.get(records[4].id) == records[4]
        assert index.find_sha256("sha7") == records[7]
        assert index.find_sha256("nope") is None
        page = index.list(offset=10, limit=5)
        assert [r.id for r in page] == [r.id for r in records[10:15]]
        assert [r.name for r in index.list(label="rare")] == ["shape0", "shape10", "shape20"]
        assert records[0].model_id == "mini@1" and records[0].source == "upload"


def test_search_is_cosine_and_excludes_and_removes(tmp_path, rng):
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        records = _fill(index, rng, 40)
        target = records[5]
        stored = index.vector(target.id)
        assert np.isclose(np.linalg.norm(stored), 1.0, atol=1e-5)
        hits = index.search(stored * 7.0, k=5)
        assert hits[0].id == target.id and np.isclose(hits[0].score, 1.0, atol=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].record == target
        assert target.id not in [h.id for h in index.search(stored, k=5, exclude=target.id)]
        assert index.remove(target.id) is True
        assert index.remove(target.id) is False
        assert index.get(target.id) is None and index.vector(target.id) is None
        assert target.id not in [h.id for h in index.search(stored, k=40)]
        assert len(index.search(stored, k=100)) == 39


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_label_filter_returns_k_hits_of_a_rare_label(tmp_path, rng, factory):
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory=factory) as index:
        _fill(index, rng, 300, rare_every=25)  # 12 rare among 300
        hits = index.search(rng.normal(size=DIM), k=10, label="rare")
        assert len(hits) == 10 and {h.record.label for h in hits} == {"rare"}
        assert len(index.search(rng.normal(size=DIM), k=50, label="rare")) == 12
        assert index.search(rng.normal(size=DIM), k=5, label="absent") == []
        query = rng.normal(size=DIM)
        common = index.search(query, k=10, label="common")
        assert len(common) == 10 and {h.record.label for h in common} == {"common"}
        if factory == "Flat":
            ranking = [h for h in index.search(query, k=300) if h.record.label == "common"]
            assert [h.id for h in common] == [h.id for h in ranking[:10]]


def test_hnsw_removal_uses_tombstones_until_the_snapshot(tmp_path, rng):
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW32") as index:
        assert index.factory == "HNSW32"
        records = _fill(index, rng, 60)
        query = index.vector(records[0].id)
        index.remove(records[0].id)
        assert records[0].id not in [h.id for h in index.search(query, k=60)]
        assert len(index.search(query, k=60)) == 59
        index.snapshot()
        assert index.vector_count() == index.count() == 59
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW32") as index:
        assert index.vector_count() == index.count() == 59
        assert records[0].id not in [h.id for h in index.search(query, k=60)]


@pytest.mark.parametrize(
    "vector, message",
    [
        (np.zeros(DIM + 1), "shape"),
        (np.full(DIM, np.nan), "NaN"),
        (np.zeros(DIM), "zero length"),
        (np.array(["a"] * DIM), "numeric"),
    ],
)
def test_bad_vectors_are_refused_with_a_clear_error(tmp_path, vector, message):
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        with pytest.raises(ShapeIndexError, match=message):
            index.add(vector, name="x", sha256="x")
        with pytest.raises(ShapeIndexError, match=message):
            index.search(vector)
        assert index.count() == 0


def test_another_model_id_is_refused_naming_both(tmp_path, rng):
    with ShapeIndex.open(tmp_path, "gmvit-mini/ab12", dim=DIM) as index:
        _fill(index, rng, 2)
    # Both ids map to the directory gmvit-mini_ab12: the stored id decides.
    with pytest.raises(ModelMismatchError, match="'gmvit-mini/ab12'.*'gmvit-mini_ab12'"):
        ShapeIndex.open(tmp_path, "gmvit-mini_ab12", dim=DIM)
    with pytest.raises(ShapeIndexError, match="16-d"):
        ShapeIndex.open(tmp_path, "gmvit-mini/ab12", dim=DIM * 2)


def test_factories_that_need_training_are_refused(tmp_path):
    with pytest.raises(ShapeIndexError, match="needs training"):
        ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,Flat")
    with pytest.raises(ShapeIndexError, match="cannot build"):
        ShapeIndex.open(tmp_path, "m", dim=DIM, factory="NoSuchIndex")


def test_sixteen_threads_adding_leave_a_consistent_index(tmp_path):
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        ids: list[int] = []

        def worker(seed: int) -> None:
            local = np.random.default_rng(seed)
            for i in range(10):
                record = index.add(local.normal(size=DIM), name=f"{seed}-{i}", sha256=f"{seed}-{i}")
                ids.append(record.id)
                index.search(local.normal(size=DIM), k=3)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 160
        assert index.count() == index.vector_count() == 160
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert index.count() == index.vector_count() == 160
        assert all(index.vector(i) is not None for i in ids)


def test_two_writers_on_one_generation_see_each_other(tmp_path, rng):
    """Two ShapeIndex objects stand for two processes (separate flocks and SQLite handles)."""
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as a, ShapeIndex.open(tmp_path, "m", dim=DIM) as b:
        from_a = a.add(rng.normal(size=DIM), name="a", sha256="a")
        assert b.search(a.vector(from_a.id), k=1)[0].id == from_a.id  # log tail replayed
        from_b = b.add(rng.normal(size=DIM), name="b", sha256="b")
        b.snapshot()
        assert a.vector(from_b.id) is not None  # snapshot rewritten: reloaded
        a.remove(from_b.id)
        assert b.vector(from_b.id) is None and b.count() == b.vector_count() == 1
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert index.count() == index.vector_count() == 1
