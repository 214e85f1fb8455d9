"""Acknowledged writes survive a real kill -9; a torn log tail is tolerated."""

import os
import signal

import numpy as np

from index import ShapeIndex
from index.log import OP_ADD, encode
from tests.index.conftest import DIM, spawn

ADDER = f"""
import sys
import numpy as np
from index import ShapeIndex

index = ShapeIndex.open(sys.argv[1], "m", dim={DIM})
rng = np.random.default_rng(1)
for i in range(100_000):
    record = index.add(rng.normal(size={DIM}), name=f"s{{i}}", sha256=f"h{{i}}")
    if i % 3 == 0:
        index.remove(record.id)
        print(f"removed {{record.id}}", flush=True)
    else:
        print(f"added {{record.id}}", flush=True)
"""


def test_every_acknowledged_write_survives_kill_9(tmp_path):
    child = spawn(ADDER, str(tmp_path))
    added, removed = set(), set()
    try:
        while len(added) + len(removed) < 150:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            verb, shape_id = line.split()
            (added if verb == "added" else removed).add(int(shape_id))
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    # Lines written before the kill but not yet read are acknowledged writes too.
    for line in child.stdout.read().splitlines():
        verb, shape_id = line.split()
        (added if verb == "added" else removed).add(int(shape_id))
    assert child.returncode == -signal.SIGKILL
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert all(index.get(i) is not None for i in added)
        assert all(index.vector(i) is not None for i in added)
        assert all(index.get(i) is None and index.vector(i) is None for i in removed)
        # At most the one write in flight at the kill may exist beyond the acknowledged.
        assert len(added) <= index.count() <= len(added) + 1
        assert index.count() == index.vector_count()
        hit = index.search(index.vector(min(added)), k=1)[0]
        assert hit.id == min(added)


def test_torn_log_tail_is_ignored_and_cut_off(tmp_path, rng):
    # A crash is an index never closed (close would snapshot).
    crashed = ShapeIndex.open(tmp_path, "m", dim=DIM)
    kept = [crashed.add(rng.normal(size=DIM), name=f"s{i}", sha256=f"h{i}") for i in range(5)]
    generation = tmp_path / "m" / crashed.generation
    with open(generation / "log", "ab") as log:
        log.write(encode(OP_ADD, 999, np.ones(DIM, np.float32))[:-7])
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert [index.get(r.id) for r in kept] == kept
        assert index.count() == index.vector_count() == 5
    crashed = ShapeIndex.open(tmp_path, "m", dim=DIM)
    later = crashed.add(rng.normal(size=DIM), name="later", sha256="later")
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        # The record after the cut tail replays: the tail was truncated, not appended past.
        assert index.get(later.id) == later and index.vector(later.id) is not None
        assert index.count() == index.vector_count() == 6


def test_a_logged_vector_without_its_row_is_dropped(tmp_path, rng):
    """An add killed between its log fsync and its SQLite commit was never acknowledged."""
    crashed = ShapeIndex.open(tmp_path, "m", dim=DIM)
    record = crashed.add(rng.normal(size=DIM), name="s", sha256="h")
    crashed._gen.log.append(encode(OP_ADD, 12345, np.ones(DIM, np.float32)))
    with ShapeIndex.open(tmp_path, "m", dim=DIM) as index:
        assert index.vector(12345) is None
        assert index.count() == index.vector_count() == 1
        assert index.get(record.id) == record


def test_snapshot_then_log_replays_after_a_crash(tmp_path, rng):
    crashed = ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW32")
    first = [crashed.add(rng.normal(size=DIM), name=f"a{i}", sha256=f"a{i}") for i in range(8)]
    log = tmp_path / "m" / crashed.generation / "log"
    before = log.stat().st_size
    crashed.snapshot()
    assert log.stat().st_size == before  # the log keeps the history the snapshot covers
    crashed.remove(first[0].id)
    second = [crashed.add(rng.normal(size=DIM), name=f"b{i}", sha256=f"b{i}") for i in range(4)]
    with ShapeIndex.open(tmp_path, "m", dim=DIM, factory="HNSW32") as index:
        assert index.count() == index.vector_count() == 11
        assert index.vector(first[0].id) is None
        assert all(index.vector(r.id) is not None for r in first[1:] + second)
