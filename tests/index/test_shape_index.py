import os
import threading

import faiss
import numpy as np
import pytest

from index import ModelMismatchError, ShapeIndex, ShapeIndexError
from index import vectors as index_vectors
from index.check import check_index
from index.log import (
    APPLY_BATCH,
    OP_ADD,
    OP_REMOVE,
    AppendLog,
    encode,
    read_added_vectors,
    read_header,
    scan_log,
    write_log,
)
from index.vectors import HNSW_EF_CONSTRUCTION, VectorSet, train_index
from tests.index.conftest import DIM, reindexed


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


def test_factories_faiss_does_not_know_are_refused(tmp_path):
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


def test_ef_search_trades_hnsw_recall_for_speed(tmp_path):
    # Unit vectors in few dimensions, many of them: a small candidate list misses true
    # neighbours, a large one finds (nearly) all. FAISS builds HNSW deterministically.
    rng = np.random.default_rng(0)
    data = rng.normal(size=(800, DIM)).astype(np.float32)
    queries = rng.normal(size=(40, DIM)).astype(np.float32)
    truth = np.argsort(
        -(queries / np.linalg.norm(queries, axis=1, keepdims=True))
        @ (data / np.linalg.norm(data, axis=1, keepdims=True)).T,
        axis=1,
    )[:, :10]
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW8") as index:
        ids = [index.add(v, name=f"s{i}", sha256=f"h{i}").id for i, v in enumerate(data)]
    recall = {}
    for ef in (10, 400):
        with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW8", ef_search=ef) as index:
            assert index.knobs.ef_search == ef
            found = [{h.id for h in index.search(q, k=10)} for q in queries]
        recall[ef] = np.mean(
            [len(f & {ids[j] for j in t}) / 10 for f, t in zip(found, truth, strict=True)]
        )
    assert recall[400] >= 0.95 and recall[10] < recall[400]
    with pytest.raises(ShapeIndexError, match="ef_search must be at least 1"):
        ShapeIndex.open(tmp_path, "m", dim=DIM, ef_search=0)


def test_hnsw_graphs_are_built_with_our_ef_construction_also_after_a_reopen(tmp_path, rng):
    # FAISS's default (40) leaves clustered descriptors a graph whose recall never
    # reaches 0.95 at 1M vectors; the snapshot must keep ours for what is added later.
    def ef_construction(index: ShapeIndex) -> int:
        vectors = index._gen.vectors._index
        return faiss.downcast_index(faiss.downcast_index(vectors).index).hnsw.efConstruction

    assert HNSW_EF_CONSTRUCTION > 40
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW8") as index:
        index.add(rng.normal(size=DIM), name="a", sha256="a")
        assert ef_construction(index) == HNSW_EF_CONSTRUCTION
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW8") as index:
        assert index._gen.vectors.factory == "HNSW8" and index.count() == 1
        assert ef_construction(index) == HNSW_EF_CONSTRUCTION


def test_live_chunks_walk_the_live_vectors_in_order_without_tombstones(rng):
    vectors = VectorSet(DIM, "HNSW8")
    data = rng.normal(size=(10, DIM)).astype(np.float32)
    vectors.add(np.arange(10, dtype=np.int64), data)
    vectors.remove(np.array([3, 7]))  # HNSW cannot remove: tombstones
    chunks = list(vectors.live_chunks(4))
    assert [len(ids) for ids, _ in chunks] == [3, 3, 2]  # 4 stored each, less tombstones
    ids = np.concatenate([ids for ids, _ in chunks])
    walked = np.concatenate([block for _, block in chunks])
    assert ids.tolist() == [0, 1, 2, 4, 5, 6, 8, 9]
    np.testing.assert_array_equal(walked, data[ids])


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,PQ8"])
def test_a_factory_that_needs_training_is_trained_by_a_rebuild(tmp_path, factory):
    rng = np.random.default_rng(5)
    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory=factory, nprobe=16)
    early = index.add(rng.normal(size=DIM), name="early", sha256="early")  # exact until trained
    assert index.search(index.vector(early.id), k=1)[0].id == early.id
    vectors = rng.normal(size=(600, DIM)).astype(np.float32)
    with index.rebuild(keep_existing=True) as builder:
        ids = [
            builder.add(v, name=f"b{i}", sha256=f"b{i}", source="reindex")
            for i, v in enumerate(vectors)
        ]
        builder.commit()
    assert index.factory == factory and index.count() == 601
    hits = [index.search(v, k=1)[0].id for v in vectors[:50]]  # nprobe = every list
    assert np.mean([hit == i for hit, i in zip(hits, ids, strict=False)]) >= 0.9
    index.remove(ids[0])
    assert index.get(ids[0]) is None and index.vector_count() == 600
    index.close()
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory=factory) as again:
        assert again.count() == again.vector_count() == 600
        # The log keeps every vector whole, even where the index keeps only its codes.
        np.testing.assert_allclose(
            scan_log_vector(tmp_path, ids[1]), vectors[1] / np.linalg.norm(vectors[1]), atol=1e-6
        )


def scan_log_vector(root, shape_id: int) -> np.ndarray:
    """A shape's vector as the live generation's log holds it."""
    from index.log import OP_ADD, scan_log

    model_dir = root / "m"
    log = model_dir / (model_dir / "CURRENT").read_text().strip() / "log"
    entries = scan_log(log, DIM).entries
    return next(e.vector for e in entries if e.op == OP_ADD and e.shape_id == shape_id)


def test_too_few_vectors_to_train_fail_the_rebuild_clearly(tmp_path):
    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF64,Flat")
    with index.rebuild() as builder:
        builder.add(np.ones(DIM), name="x", sha256="x", source="reindex")
        with pytest.raises(ShapeIndexError, match="cannot be trained on 1 vectors"):
            builder.commit()
    assert index.count() == 0
    index.close()


def test_an_adds_file_reads_a_log_of_adds_by_record_and_refuses_damage(tmp_path, rng):
    from index.log import AddsFile, write_log

    vectors = rng.normal(size=(7, DIM)).astype(np.float32)
    write_log(tmp_path / "log", zip(range(10, 17), vectors, strict=True))
    adds = AddsFile(tmp_path / "log", DIM)
    assert len(adds) == 7
    blocks = list(adds.blocks(3))
    assert [len(ids) for ids, _ in blocks] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in blocks]), np.arange(10, 17))
    np.testing.assert_array_equal(np.concatenate([v for _, v in blocks]), vectors)
    ids, taken = adds.take(np.array([1, 5]))
    assert ids.tolist() == [11, 15]
    np.testing.assert_array_equal(taken, vectors[[1, 5]])
    data = bytearray((tmp_path / "log").read_bytes())
    data[-5] ^= 0xFF  # inside the last vector
    (tmp_path / "log").write_bytes(bytes(data))
    with pytest.raises(ShapeIndexError, match="damaged"):
        list(AddsFile(tmp_path / "log", DIM).blocks())
    with open(tmp_path / "log", "ab") as log:
        log.write(b"\0" * 17)  # a remove record's size: no longer a log of adds only
    with pytest.raises(ShapeIndexError, match="adds only"):
        AddsFile(tmp_path / "log", DIM)


def test_a_damaged_build_log_fails_the_commit_and_the_live_index_keeps_serving(tmp_path, rng):
    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8")
    live = index.add(rng.normal(size=DIM), name="live", sha256="live")
    with index.rebuild() as builder:
        for i, vector in enumerate(rng.normal(size=(1100, DIM))):  # past one flush of 1024
            builder.add(vector, name=f"b{i}", sha256=f"b{i}", source="reindex")
        log = tmp_path / "m" / builder.generation / "log"
        data = bytearray(log.read_bytes())
        data[len(data) // 2] ^= 0xFF
        log.write_bytes(bytes(data))
        with pytest.raises(ShapeIndexError, match="damaged"):
            builder.commit()
    assert index.count() == 1 and index.search(index.vector(live.id), k=1)[0].id == live.id
    index.close()


def test_a_snapshot_header_holds_the_length_and_checksum_of_the_faiss_payload(tmp_path, rng):
    import struct
    import zlib

    from index.vectors import SNAPSHOT_MAGIC, Snapshot

    vectors = VectorSet(DIM, "HNSW8")
    vectors.add(np.arange(50, dtype=np.int64), rng.normal(size=(50, DIM)).astype(np.float32))
    vectors.write(tmp_path / "vectors.faiss", Snapshot(b"e" * 16, 123))
    data = (tmp_path / "vectors.faiss").read_bytes()
    magic, epoch, offset, crc, length = struct.unpack_from("<8s16sQIQ", data)
    payload = data[struct.calcsize("<8s16sQIQ") :]
    assert (magic, epoch, offset) == (SNAPSHOT_MAGIC, b"e" * 16, 123)
    assert payload == faiss.serialize_index(vectors._index).tobytes()
    assert (crc, length) == (zlib.crc32(payload), len(payload))
    again, covers = VectorSet.read(tmp_path / "vectors.faiss", DIM, "HNSW8")
    assert covers == Snapshot(b"e" * 16, 123) and len(again) == 50


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,SQ8"])
def test_every_shape_of_a_trained_ivf_index_gives_back_its_own_vector(tmp_path, factory):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(700, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory=factory, nprobe=16)
    with index.rebuild() as builder:
        ids = [
            builder.add(v, name=f"b{i}", sha256=f"b{i}", source="reindex", label="built")
            for i, v in enumerate(vectors[:600])
        ]
        builder.commit()
    # Shapes added one by one into the trained index, as the service adds uploads.
    ids += [
        index.add(v, name=f"a{i}", sha256=f"a{i}", label="added").id
        for i, v in enumerate(vectors[600:])
    ]
    for reopened in (False, True):
        if reopened:
            index.close()
            index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory=factory, nprobe=16)
        stored = np.stack([index.vector(i) for i in ids])
        assert (np.argmax(stored @ vectors.T, axis=1) == np.arange(700)).all()
        if factory.endswith("Flat"):
            np.testing.assert_allclose(stored, vectors, atol=1e-6)
        # A rare label is scored exactly from the stored vectors.
        hit = index.search(vectors[650], k=1, label="added")[0]
        assert hit.id == ids[650] and hit.score > 0.95
    index.close()


def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8"])
def test_an_ivf_filled_with_its_lists_sized_first_is_the_index_plain_adds_give(rng, factory):
    vectors = _unit_rows(rng, 700)
    ids = rng.permutation(5000)[:700].astype(np.int64)  # the caller's ids, not 0, 1, ...
    trained = train_index(DIM, factory, vectors)
    reads = []

    def blocks():
        reads.append(None)
        return ((ids[s : s + 64], vectors[s : s + 64]) for s in range(0, len(ids), 64))

    filled = VectorSet(DIM, factory, faiss.clone_index(trained))
    filled.fill(blocks)
    assert len(reads) == 2  # assigned, then added to lists of their final size
    added = VectorSet(DIM, factory, faiss.clone_index(trained))
    for block_ids, block in blocks():
        added.add(block_ids, block)
    assert len(filled) == 700 and 123 not in filled and int(ids[5]) in filled
    # The same lists, codes, ids and direct map, byte for byte.
    assert bytes(faiss.serialize_index(filled._index)) == bytes(faiss.serialize_index(added._index))
    query = vectors[17]
    assert filled.search(query, 5) == added.search(query, 5)
    np.testing.assert_array_equal(filled.vector(int(ids[17])), added.vector(int(ids[17])))


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,SQ8"])
def test_a_rebuilt_ivf_keeps_the_training_and_leaves_the_index_it_came_from_whole(rng, factory):
    vectors = _unit_rows(rng, 600)
    ids = np.arange(600, dtype=np.int64)
    trained = train_index(DIM, factory, vectors)
    original = VectorSet(DIM, factory, faiss.clone_index(trained))
    original.fill(lambda: iter([(ids, vectors)]))
    before = bytes(faiss.serialize_index(original._index))
    fresh = original.rebuilt(lambda: iter([(ids[100:], vectors[100:])]))
    assert bytes(faiss.serialize_index(original._index)) == before
    expected = VectorSet(DIM, factory, faiss.clone_index(trained))
    expected.fill(lambda: iter([(ids[100:], vectors[100:])]))
    assert bytes(faiss.serialize_index(fresh._index)) == bytes(
        faiss.serialize_index(expected._index)
    )
    del original  # each index frees its own lists, once
    assert fresh.search(vectors[200], 1)[0][0] == 200 and 50 not in fresh


def test_a_scan_that_applies_hands_every_record_over_in_order_and_keeps_none(tmp_path, rng):
    vectors = _unit_rows(rng, 2 * APPLY_BATCH + 5)
    path = tmp_path / "log"
    write_log(path, zip(range(len(vectors)), vectors, strict=True))
    log = AppendLog(path)
    log.append(encode(OP_REMOVE, 3))
    log.close()
    batches: list[list] = []
    scan = scan_log(path, DIM, apply=lambda entries: batches.append(list(entries)))
    assert [len(b) for b in batches] == [APPLY_BATCH, APPLY_BATCH, 6]
    handed = [entry for batch in batches for entry in batch]
    assert [e.shape_id for e in handed] == [*range(len(vectors)), 3]
    assert handed[-1].op == OP_REMOVE and handed[7].op == OP_ADD
    np.testing.assert_array_equal(handed[7].vector, vectors[7])
    assert scan.entries == [] and scan.count == len(vectors) + 1
    assert scan.end == scan.size and not scan.damaged


def test_vectors_are_read_back_by_the_offsets_a_scan_gives(tmp_path, rng):
    vectors = _unit_rows(rng, 40)
    path = tmp_path / "log"
    write_log(path, zip(range(40), vectors, strict=True))
    log = AppendLog(path)
    log.append(encode(OP_REMOVE, 3))
    log.close()
    entries = scan_log(path, DIM).entries
    asked = [entries[i].offset for i in (30, 2, 17)]
    np.testing.assert_array_equal(
        read_added_vectors(path, DIM, np.array(asked)), vectors[[30, 2, 17]]
    )
    for not_an_add in (entries[-1].offset, entries[5].offset + 1):  # a removal; mid-record
        with pytest.raises(ShapeIndexError, match=f"no intact add record at byte {not_an_add}"):
            read_added_vectors(path, DIM, np.array([not_an_add]))
    every = rng.permutation(40)  # adjacent records, read in runs
    offsets = np.array([entries[i].offset for i in every])
    np.testing.assert_array_equal(read_added_vectors(path, DIM, offsets), vectors[every])
    data = bytearray(path.read_bytes())
    data[entries[20].offset + 30] ^= 0xFF  # inside record 20's vector: its checksum fails
    path.write_bytes(bytes(data))
    with pytest.raises(ShapeIndexError, match=f"no intact add record at byte {entries[20].offset}"):
        read_added_vectors(path, DIM, offsets)


def test_an_id_met_twice_in_one_add_is_added_once(rng):
    vectors = VectorSet(DIM, "Flat")
    data = _unit_rows(rng, 3)
    vectors.add(np.array([5, 6, 5], dtype=np.int64), data)
    assert len(vectors) == 2 and vectors._index.ntotal == 2
    np.testing.assert_allclose(vectors.vector(5), data[0], atol=1e-6)  # the first one


def test_a_fill_whose_blocks_change_between_its_two_reads_is_refused(rng):
    vectors = _unit_rows(rng, 300)
    reads = []

    def blocks():
        reads.append(None)
        first = 0 if len(reads) == 1 else 1000  # the second read gives other ids
        return iter([(np.arange(first, first + 300, dtype=np.int64), vectors)])

    filled = VectorSet(DIM, "IVF16,Flat", train_index(DIM, "IVF16,Flat", vectors))
    with pytest.raises(ShapeIndexError, match="changed between two reads"):
        filled.fill(blocks)


def test_a_fill_that_meets_an_id_twice_keeps_it_once(rng):
    vectors = _unit_rows(rng, 300)

    def blocks():  # a replayed log: the first 100 adds come again
        ids = np.arange(300, dtype=np.int64)
        return iter([(ids, vectors), (ids[:100], vectors[:100])])

    filled = VectorSet(DIM, "IVF16,SQ8", train_index(DIM, "IVF16,SQ8", vectors))
    filled.fill(blocks)
    assert len(filled) == 300 and filled._index.ntotal == 300


def test_an_ivf_index_written_with_faiss_broken_hash_table_is_mended_when_read(rng):
    vectors = rng.normal(size=(600, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 1600, dtype=np.int64)
    written = faiss.index_factory(DIM, "IDMap2,IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    written.train(vectors)
    # What this package did before: FAISS then files the adds under wrong keys.
    faiss.extract_index_ivf(written.index).set_direct_map_type(faiss.DirectMap.Hashtable)
    written.add_with_ids(vectors, ids)
    read = VectorSet(DIM, "IVF16,Flat", faiss.deserialize_index(faiss.serialize_index(written)))
    stored = np.stack([read.vector(int(i)) for i in ids])
    np.testing.assert_allclose(stored, vectors, atol=1e-6)


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8"])
def test_an_ivf_drops_its_tombstones_in_place_as_if_it_held_only_the_survivors(rng, factory):
    data = _unit_rows(rng, 2000)
    ids = np.arange(100, 2100, dtype=np.int64)
    vectors = VectorSet(DIM, factory, train_index(DIM, factory, data))
    survivors = vectors.emptied()
    vectors.fill(lambda: [(ids, data)])
    index = vectors._index
    doomed = ids[rng.random(len(ids)) < 0.3]
    vectors.remove(doomed)
    assert vectors.has_tombstones and vectors.drops_tombstones
    vectors.drop_tombstones()
    assert vectors._index is index and not vectors.has_tombstones  # no second index
    live = ~np.isin(ids, doomed)
    survivors.fill(lambda: [(ids[live], data[live])])
    assert bytes(faiss.serialize_index(index)) == bytes(faiss.serialize_index(survivors._index))
    assert len(vectors) == live.sum() and int(doomed[0]) not in vectors
    kept = int(ids[live][7])
    np.testing.assert_array_equal(vectors.vector(kept), survivors.vector(kept))
    assert vectors.search(data[live][7], 1)[0][0] == kept


def test_a_removal_from_a_lossy_ivf_index_leaves_it_in_place_and_keeps_its_log(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=5)
    log = tmp_path / "m" / (tmp_path / "m" / "CURRENT").read_text().strip() / "log"
    epoch = read_header(log)[0]
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        stored = index.vector(ids[1])
        index.remove(ids[0])
        index.snapshot()
        assert read_header(log)[0] == epoch  # the removal was appended, the log not rewritten
        np.testing.assert_array_equal(index.vector(ids[1]), stored)
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        assert index.count() == index.vector_count() == 599 and index.vector(ids[0]) is None
        np.testing.assert_array_equal(index.vector(ids[1]), stored)
        assert index.search(vectors[7], k=1)[0].id == ids[7]
    assert check_index(tmp_path / "m").ok


def test_a_snapshot_that_fails_half_way_through_dropping_tombstones_is_not_served(
    tmp_path, monkeypatch
):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=6)

    def empties_one_list_then_fails(index, doomed):
        ivf, lists = index_vectors._array_lists(index)
        busiest = max(range(ivf.nlist), key=lists.list_size)
        lists.resize(busiest, 0)  # as far as a failed allocation may leave it
        raise MemoryError

    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        index.remove(ids[0])
        with monkeypatch.context() as patched:
            patched.setattr(index_vectors, "_drop_from_lists", empties_one_list_then_fails)
            with pytest.raises(MemoryError):
                index.snapshot()
        # Reopened from disk: every shape but the removed one is found again.
        assert index.vector_count() == 599 and index.vector(ids[0]) is None
        found = [index.search(vector, k=1)[0].id for vector in vectors[1:]]
        assert found == ids[1:]
        index.snapshot()
    assert check_index(tmp_path / "m").ok


def test_a_close_whose_snapshot_fails_still_releases_every_file(tmp_path, rng, monkeypatch):
    """A full disk at close: the error is raised, no file is left open, and the next open
    has every acknowledged shape from the log."""
    from index import shape_index

    def disk_full(generation):
        raise OSError(28, "No space left on device")

    def files_open_under(root) -> list[str]:
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except FileNotFoundError:  # the listing's own descriptor, closed since
                pass
        return [t for t in targets if t.startswith(str(root))]

    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory="Flat")
    vectors = _unit_rows(rng, 20)
    ids = [index.add(v, name=f"s{i}", sha256=f"s{i}").id for i, v in enumerate(vectors)]
    assert files_open_under(tmp_path)
    monkeypatch.setattr(shape_index._Generation, "snapshot", disk_full)
    with pytest.raises(OSError, match="No space left"):
        index.close()
    assert files_open_under(tmp_path) == []
    monkeypatch.undo()
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="Flat") as index:
        assert [index.search(v, k=1)[0].id for v in vectors] == ids


def test_a_lossy_index_whose_log_was_lost_is_compacted_from_its_codes(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=4)
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        index.remove(ids[0])
    generation = tmp_path / "m" / (tmp_path / "m" / "CURRENT").read_text().strip()
    (generation / "log").unlink()
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        assert index.count() == index.vector_count() == 599
        logged = np.stack([scan_log_vector(tmp_path, i) for i in ids[1:]])
        # The rewritten log holds the codes' reconstructions: near, not equal.
        assert (np.argmax(logged @ vectors.T, axis=1) == np.arange(1, 600)).all()
