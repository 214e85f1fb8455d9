"""A damaged index is recovered from its other copy, or refused with nothing changed:
opening never deletes a shape."""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from index import IndexDamagedError, ShapeIndex, ShapeIndexError
from index.check import check_index, repair_index
from index.log import (
    HEADER_SIZE,
    OP_ADD,
    AppendLog,
    encode,
    iter_log,
    read_header,
    scan_log,
    write_log,
)
from index.vectors import make_faiss_index
from tests.index.conftest import DIM, reindexed

N = 12


def fill(root: Path, rng: np.random.Generator, n: int = N, *, close: bool = True) -> dict:
    """An index with n shapes; closed (snapshot written) or left open like a crash."""
    index = ShapeIndex.open(root, "m", dim=DIM)
    vectors = {}
    for i in range(n):
        record = index.add(rng.normal(size=DIM), name=f"s{i}", sha256=f"h{i}", label="l")
        vectors[record.id] = index.vector(record.id)
    if close:
        index.close()
    else:
        del index  # crashed: never closed, so no snapshot; its SQLite handles go now, not
        gc.collect()  # at some later collection in the middle of the test
    return vectors


def generation(root: Path) -> Path:
    return root / "m" / (root / "m" / "CURRENT").read_text().strip()


def flip(path: Path, at: int, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, at + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def fingerprint(root: Path) -> dict[str, str]:
    """The bytes of every file that holds data (not the lock, not SQLite's shared-memory
    index, which any reader rewrites)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "LOCK" and not path.name.endswith("-shm")
    }


def assert_serves(root: Path, vectors: dict) -> None:
    with ShapeIndex.open(root, "m", dim=DIM) as index:
        assert index.count() == index.vector_count() == len(vectors)
        for shape_id, vector in vectors.items():
            np.testing.assert_allclose(index.vector(shape_id), vector, atol=1e-6)
            assert index.search(vector, k=1)[0].id == shape_id


def assert_refused(root: Path, *words: str) -> None:
    before = fingerprint(root)
    with pytest.raises(IndexDamagedError) as refused:
        ShapeIndex.open(root, "m", dim=DIM)
    for word in words:
        assert word in str(refused.value)
    assert "gmvit index repair" in str(refused.value)
    assert fingerprint(root) == before, "a refused open changed files"


def test_a_lost_snapshot_is_rebuilt_from_the_log(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    (generation(tmp_path) / "vectors.faiss").unlink()
    assert_serves(tmp_path, vectors)
    assert (generation(tmp_path) / "vectors.faiss").exists()


def test_a_lost_snapshot_is_rebuilt_from_the_log_without_the_removed_shapes(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        for shape_id in (2, 7):
            assert index.remove(shape_id)
            del vectors[shape_id]
    (generation(tmp_path) / "vectors.faiss").unlink()
    epoch = read_header(generation(tmp_path) / "log")[0]
    assert_serves(tmp_path, vectors)
    # Replayed as the log says: no vector without its row was found, so nothing compacted.
    assert read_header(generation(tmp_path) / "log")[0] == epoch


def test_flipped_snapshot_bytes_fail_the_checksum_and_the_log_rebuilds_it(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    snapshot = generation(tmp_path) / "vectors.faiss"
    flip(snapshot, snapshot.stat().st_size // 2)  # inside the stored vectors
    assert_serves(tmp_path, vectors)


def test_a_damaged_log_record_the_snapshot_covers_is_found_by_check_and_repaired(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    assert check_index(tmp_path / "m").ok
    log = generation(tmp_path) / "log"
    flip(log, log.stat().st_size // 2)
    assert_serves(tmp_path, vectors)  # open reads only the log past the snapshot
    report = check_index(tmp_path / "m")
    assert not report.ok and "log is damaged" in report.problems[0]
    assert report.shapes == N
    assert repair_index(tmp_path / "m") == [
        f"rewrote the log and snapshot of gen-000001 ({N} shapes)"
    ]
    assert check_index(tmp_path / "m").ok
    assert_serves(tmp_path, vectors)


def test_a_lost_log_is_rewritten_from_the_snapshot(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    (generation(tmp_path) / "log").unlink()
    assert_serves(tmp_path, vectors)
    assert len(scan_log(generation(tmp_path) / "log", DIM).entries) == N


def test_a_damaged_record_no_snapshot_covers_refuses_and_changes_nothing(tmp_path, rng):
    vectors = fill(tmp_path, rng, close=False)  # a crash: no snapshot holds these adds
    log = generation(tmp_path) / "log"
    original = log.read_bytes()
    flip(log, len(original) // 2)
    assert_refused(tmp_path, "log is damaged", "shapes have no descriptor")
    assert not check_index(tmp_path / "m").ok
    log.write_bytes(original)  # put back, everything is there
    assert_serves(tmp_path, vectors)


def test_a_lost_metadata_file_refuses(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    meta = generation(tmp_path) / "meta.sqlite3"
    saved = meta.read_bytes()
    meta.unlink()
    assert_refused(tmp_path, "meta.sqlite3) is missing")
    meta.write_bytes(b"")
    assert_refused(tmp_path, "meta.sqlite3) is empty")
    meta.write_bytes(saved)
    assert_serves(tmp_path, vectors)


def test_an_older_metadata_file_refuses(tmp_path, rng):
    fill(tmp_path, rng, n=2)
    meta = generation(tmp_path) / "meta.sqlite3"
    older = meta.read_bytes()
    fill(tmp_path, rng, n=30)
    meta.write_bytes(older)
    assert_refused(tmp_path, "30 descriptors have no metadata row")
    with pytest.raises(IndexDamagedError):
        repair_index(tmp_path / "m")  # nothing is given up unless asked
    assert "gave up" not in " ".join(repair_index(tmp_path / "m", give_up={"unrecorded"}))
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert index.count() == index.vector_count() == 2


@pytest.mark.parametrize("current", ["", "gen-9\n", None])
def test_a_garbled_or_lost_current_refuses_and_names_the_generations(tmp_path, rng, current):
    vectors = fill(tmp_path, rng)
    name = generation(tmp_path).name
    pointer = tmp_path / "m" / "CURRENT"
    if current is None:
        pointer.unlink()
    else:
        pointer.write_text(current)
    assert_refused(tmp_path, "CURRENT", name)
    assert not check_index(tmp_path / "m").ok
    with pytest.raises(ShapeIndexError, match=f"--generation \\(the newest is {name}\\)"):
        repair_index(tmp_path / "m")  # which generation is for the operator to say
    assert repair_index(tmp_path / "m", generation=name)[0] == f"CURRENT now names {name}"
    assert_serves(tmp_path, vectors)


def test_lost_counters_never_hand_out_an_id_twice(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    (tmp_path / "m" / "counters.sqlite3").unlink()
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        record = index.add(rng.normal(size=DIM), name="new", sha256="new")
    assert record.id > max(vectors)


def make_legacy(root: Path) -> None:
    """Rewrite the closed index at `root` as the previous release left it: a snapshot of
    raw FAISS bytes (no header, no checksum) and an empty log without a header."""
    gen = generation(root)
    with ShapeIndex.open(root, "m", dim=DIM) as index:
        ids = np.array([r.id for r in index.list(limit=1000)], dtype=np.int64)
        vectors = np.stack([index.vector(i) for i in ids])
    faiss_index = make_faiss_index(DIM, "Flat")
    faiss_index.add_with_ids(vectors, ids)
    (gen / "vectors.faiss").write_bytes(faiss.serialize_index(faiss_index).tobytes())
    (gen / "log").write_bytes(b"")


def test_a_legacy_index_opens_and_is_upgraded(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    make_legacy(tmp_path)
    assert_serves(tmp_path, vectors)
    assert len(scan_log(generation(tmp_path) / "log", DIM).entries) == N  # the whole history


def test_a_legacy_index_without_its_snapshot_refuses(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    make_legacy(tmp_path)
    snapshot = generation(tmp_path) / "vectors.faiss"
    saved = tmp_path / "saved.faiss"
    shutil.move(snapshot, saved)
    assert_refused(tmp_path, "snapshot (vectors.faiss) is missing", f"{N} shapes")
    os.replace(saved, snapshot)
    assert_serves(tmp_path, vectors)


def test_repair_gives_up_lost_descriptors_only_when_asked(tmp_path, rng):
    fill(tmp_path, rng, close=False)
    log = generation(tmp_path) / "log"
    flip(log, log.stat().st_size - 40)  # the last add's vector: that shape is lost
    with pytest.raises(IndexDamagedError, match="1 shapes have no descriptor"):
        repair_index(tmp_path / "m")
    done = repair_index(tmp_path / "m", give_up={"missing"})
    assert done[0] == "gave up 1 shapes without a descriptor"
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert index.count() == index.vector_count() == N - 1


def test_a_crash_between_a_compactions_log_and_its_snapshot_keeps_the_trained_index(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=2)
    index = ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8")
    index.remove(ids[0])
    del index  # crashed in a compaction (of a log grown past its live shapes, a repair):
    gc.collect()
    # it wrote the new log (a new epoch, one add per live shape), not yet its snapshot.
    log = generation(tmp_path) / "log"
    live = [(e.shape_id, e.vector) for e in iter_log(log, DIM) if e.op == OP_ADD]
    write_log(log, iter([(i, v) for i, v in live if i != ids[0]]))
    for _ in range(2):  # recovered, then as written by the recovery
        with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8", nprobe=16) as index:
            assert index.count() == index.vector_count() == 599
            stored = np.stack([index.vector(i) for i in ids[1:]])
            # SQ8 codes, not a Flat index of the whole vectors: near, not equal.
            error = np.abs(stored - vectors[1:]).max()
            assert 1e-4 < error < 0.05
            assert index.search(vectors[7], k=1)[0].id == ids[7]


def test_a_trained_index_that_lost_its_snapshot_is_trained_again_not_kept_in_fp32(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=8)
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        index.remove(ids[0])
    (generation(tmp_path) / "vectors.faiss").unlink()  # and with it the IVF's training
    for _ in range(2):  # recovered, then as written by the recovery
        with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8", nprobe=16) as index:
            assert index.count() == index.vector_count() == 599 and index.vector(ids[0]) is None
            stored = np.stack([index.vector(i) for i in ids[1:]])
            # SQ8 codes, not a Flat index of the whole vectors: near, not equal.
            assert 1e-4 < np.abs(stored - vectors[1:]).max() < 0.05
            assert index.search(vectors[7], k=1)[0].id == ids[7]
    assert check_index(tmp_path / "m").ok


def test_a_lost_snapshot_too_small_to_train_again_keeps_its_shapes_exact(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=9)
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        for shape_id in ids[10:]:
            index.remove(shape_id)  # 10 shapes left: too few for 16 inverted lists
    (generation(tmp_path) / "vectors.faiss").unlink()
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="IVF16,SQ8") as index:
        assert index.count() == index.vector_count() == 10
        stored = np.stack([index.vector(i) for i in ids[:10]])
        np.testing.assert_allclose(stored, vectors[:10], atol=1e-6)  # whole, not codes


def test_a_log_of_another_copy_that_falls_short_gives_way_to_the_snapshot(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    log = generation(tmp_path) / "log"
    adds = [(e.shape_id, e.vector) for e in iter_log(log, DIM) if e.op == OP_ADD]
    write_log(log, iter(adds[: N // 2]))  # a new epoch, half the shapes
    assert_serves(tmp_path, vectors)  # from the snapshot, read again after the log's replay
    assert len(list(iter_log(log, DIM))) == N  # rewritten from the snapshot


def test_check_holds_a_lossy_snapshot_to_its_log_by_the_codes_it_stores(tmp_path):
    vectors, ids = reindexed(tmp_path, "IVF16,SQ8", seed=3)
    report = check_index(tmp_path / "m")
    assert report.ok, report.problems  # SQ8 codes are not the log's vectors, yet agree
    # One record of the log rewritten with another vector, checksum and all.
    record = encode(OP_ADD, ids[5], -vectors[5])
    with open(generation(tmp_path) / "log", "r+b") as log:
        log.seek(HEADER_SIZE + 5 * len(record))
        log.write(record)
    problems = check_index(tmp_path / "m").problems
    assert problems == ["1 vectors differ between the snapshot and the log"]


def test_check_holds_each_shape_to_its_last_record_in_the_log(tmp_path, rng):
    vectors = fill(tmp_path, rng)
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        index.remove(2)
        index.remove(7)
    assert check_index(tmp_path / "m").ok  # removed shapes are in the log, not live
    log = AppendLog(generation(tmp_path) / "log")
    log.append(encode(OP_ADD, 1000, vectors[1]))  # an add that crashed before its commit
    log.close()
    report = check_index(tmp_path / "m")
    assert report.ok and report.notes == ["1 uncommitted adds in the log (dropped at next open)"]
    log = AppendLog(generation(tmp_path) / "log")
    log.append(encode(OP_ADD, 4, -vectors[4]))  # a later add of a live shape wins
    log.close()
    problems = check_index(tmp_path / "m").problems
    assert problems == ["1 vectors differ between the snapshot and the log"]
