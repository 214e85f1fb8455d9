"""Rebuilds in another process: commit swaps generations atomically, abort changes nothing."""

import os
import signal

import pytest

from index import ShapeIndex, ShapeIndexError
from tests.index.conftest import DIM, spawn

BUILDER = f"""
import sys
import numpy as np
from index import ShapeIndex

root, action, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
index = ShapeIndex.open(root, "m", dim={DIM}, factory=sys.argv[4])
builder = index.rebuild()
rng = np.random.default_rng(7)
for i in range(count):
    shape_id = builder.add(rng.normal(size={DIM}), name=f"new{{i}}", sha256=f"new{{i}}",
                           source="reindex", label="new")
    print(shape_id, flush=True)
if action == "commit":
    builder.commit()
elif action == "abort":
    builder.abort()
else:
    print("built", flush=True)
    sys.stdin.read()  # wait to be killed mid-build
index.close()
"""


def _run_builder(root, action: str, count: int, factory: str = "Flat") -> list[int]:
    child = spawn(BUILDER, str(root), action, str(count), factory)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return [int(line) for line in out.split()]


@pytest.fixture
def live(tmp_path, rng):
    index = ShapeIndex.open(tmp_path, "m", dim=DIM)
    old = [
        index.add(rng.normal(size=DIM), name=f"old{i}", sha256=f"old{i}", label="old")
        for i in range(6)
    ]
    yield index, old
    index.close()


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_commit_in_another_process_is_seen_by_the_live_index(tmp_path, live, factory):
    index, old = live
    before = index.generation
    new_ids = _run_builder(tmp_path, "commit", 20, factory)
    assert index.count() == 20  # the next call notices CURRENT and switches
    assert index.generation != before and index.factory == factory
    assert index.labels() == {"new": 20}
    assert all(index.get(r.id) is None for r in old)
    assert min(new_ids) > max(r.id for r in old)  # ids are never reused
    query = index.vector(new_ids[3])
    assert index.search(query, k=1)[0].id == new_ids[3]
    assert index.vector_count() == 20


def test_abort_in_another_process_leaves_the_old_index_serving(tmp_path, live):
    index, old = live
    before = index.generation
    _run_builder(tmp_path, "abort", 10)
    assert index.reload_if_changed() is False
    assert index.generation == before and index.count() == 6
    assert sorted(p.name for p in (tmp_path / "m").glob("gen-*")) == [before]


def test_a_builder_killed_mid_build_changes_nothing_and_is_cleaned_up(tmp_path, live):
    index, old = live
    child = spawn(BUILDER, str(tmp_path), "hang", "10", "Flat")
    child.stdin = None
    lines = [child.stdout.readline() for _ in range(11)]
    assert lines[-1].strip() == "built"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(list((tmp_path / "m").glob("gen-*"))) == 2
    assert index.count() == 6 and index.labels() == {"old": 6}
    ShapeIndex.open(tmp_path, "m", dim=DIM).close()  # an open sweeps dead builds
    assert [p.name for p in (tmp_path / "m").glob("gen-*")] == [index.generation]


def test_adds_during_a_build_are_carried_into_the_new_generation(tmp_path, live, rng):
    index, old = live
    builder = index.rebuild()
    built = [
        builder.add(rng.normal(size=DIM), name=f"b{i}", sha256=f"b{i}", source="reindex")
        for i in range(5)
    ]
    during = index.add(rng.normal(size=DIM), name="during", sha256="during", label="old")
    index.remove(old[0].id)
    builder.commit()
    assert index.get(during.id) == during and index.vector(during.id) is not None
    assert all(index.get(i) is not None for i in built)
    assert index.get(old[1].id) is None  # a rebuild replaces what was there before it
    assert index.count() == index.vector_count() == 6
    with pytest.raises(ShapeIndexError, match="already committed"):
        builder.add(rng.normal(size=DIM), name="late", sha256="late", source="reindex")


def test_keep_existing_rebuild_re_embeds_and_keeps_the_rest(tmp_path, live, rng):
    index, old = live
    with index.rebuild(keep_existing=True) as builder:
        replaced = builder.add(rng.normal(size=DIM), name="old0", sha256="old0", source="reindex")
        builder.commit()
    assert index.count() == 6
    assert index.find_sha256("old0").id == replaced
    assert all(index.get(r.id) == r for r in old[1:])


def test_a_rebuild_keeps_what_was_added_since_its_job_was_submitted(tmp_path, live, rng):
    """A reindex job records next_shape_id() when it is submitted and builds much later:
    shapes added in between (while its files render) are kept by its commit."""
    index, old = live
    submitted = index.next_shape_id()
    early = index.add(rng.normal(size=DIM), name="early", sha256="early", label="x")
    with index.rebuild(since=submitted) as builder:
        builder.add(rng.normal(size=DIM), name="b", sha256="b", source="reindex")
        late = index.add(rng.normal(size=DIM), name="late", sha256="late", label="x")
        builder.commit()
    assert index.get(early.id) == early and index.get(late.id) == late
    assert index.vector(early.id) is not None and index.vector(late.id) is not None
    assert all(index.get(r.id) is None for r in old)
    assert index.count() == index.vector_count() == 3
