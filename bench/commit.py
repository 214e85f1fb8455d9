"""Peak memory and time of a reindex commit into a factory that needs training, of
opening and checking what it committed, and of reopening it after a crash in a compaction.

An `IndexBuilder` is given `--vectors` random unit descriptors (as a reindex's parts
give them), then commits: the factory is trained on a sample of the generation's log and
every vector is streamed into it from the log, then the snapshot is written. Then one shape
is removed and the index snapshotted: an IVF drops the shape from its inverted lists in
place (a lossy HNSW would be compacted: the log rewritten and the index rebuilt from it).
The process's peak resident size is read from getrusage before and after each step. A
child process then opens the index, as a serving process does after a reindex, and reports
its own peak; another runs `gmvit index check` on it, which must find nothing. Last, a
child removes one more shape and dies (no close, so no snapshot), the log is rewritten as
a compaction (of a log grown past its live shapes, or a repair) writes it first (one add
per live shape, a new epoch), and a fresh process opens what that crash leaves: the
snapshot no longer matches the log, so the log is replayed into the snapshot's trained
index.

    python -m bench.commit [--vectors 1000000] [--factory IVF1024,SQ8]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index import ShapeIndex
from index.log import OP_ADD, OP_REMOVE, iter_log, write_log

DIM = 512
_BLOCK = 10_000
# A step in a child process, timed, its peak read from VmHWM: getrusage's ru_maxrss survives
# fork and exec, so a child would report its parent's peak.
_MEASURED = """
import json, re, sys, time
from pathlib import Path
start = time.perf_counter()
{step}
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 2**20
print(json.dumps({{"peak": peak, "seconds": seconds, **result}}))
"""
_OPEN = _MEASURED.format(
    step="""
from index import ShapeIndex
with ShapeIndex.open(sys.argv[1], "bench", dim=int(sys.argv[2]), factory=sys.argv[3]) as index:
    result = {"count": index.vector_count()}
"""
)
_CHECK = _MEASURED.format(
    step="""
from index.check import check_index
result = {"problems": check_index(Path(sys.argv[1]) / "bench").problems}
"""
)

_CRASH = """
import os, sys
from index import ShapeIndex
index = ShapeIndex.open(sys.argv[1], "bench", dim=int(sys.argv[2]), factory=sys.argv[3])
index.remove(index.list(limit=1)[0].id)
os._exit(0)
"""


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _commit(root: str, vectors: int, factory: str) -> tuple[float, ...]:
    """Build and commit, then remove one shape and snapshot; (peak GiB before the commit,
    peak GiB after, commit seconds, peak GiB after the removal's snapshot, its seconds)."""
    rng = np.random.default_rng(0)
    with ShapeIndex.open(root, "bench", dim=DIM, factory=factory) as index:
        builder = index.rebuild()
        for start in range(0, vectors, _BLOCK):
            for offset, vector in enumerate(rng.standard_normal((_BLOCK, DIM), np.float32)):
                number = start + offset
                if number < vectors:
                    builder.add(vector, name=f"s{number}", sha256=f"{number:064x}", source="bench")
        before = _peak_gib()
        start_s = time.perf_counter()
        builder.commit()
        committed, commit_s = _peak_gib(), time.perf_counter() - start_s
        del builder
        index.remove(index.list(limit=1)[0].id)
        start_s = time.perf_counter()
        index.snapshot()
        return before, committed, commit_s, _peak_gib(), time.perf_counter() - start_s


def _child(code: str, root: str, factory: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, root, str(DIM), factory],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _crash_in_a_compaction(root: str, factory: str) -> None:
    """Remove a shape in a process that then dies, and write the log as a compaction
    writes it first; the compaction's snapshot is never written."""
    _child(_CRASH, root, factory)
    model_dir = Path(root) / "bench"
    log = model_dir / (model_dir / "CURRENT").read_text().strip() / "log"
    removed = {entry.shape_id for entry in iter_log(log, DIM) if entry.op == OP_REMOVE}
    write_log(
        log,
        (
            (entry.shape_id, entry.vector)
            for entry in iter_log(log, DIM)
            if entry.op == OP_ADD and entry.shape_id not in removed
        ),
    )


def _done(step: str, peak: float, seconds: float) -> None:
    """Each step as it ends, on stderr: a 10M run takes most of an hour, and a late step
    that fails (a full disk) keeps the earlier ones."""
    print(f"{step}: peak {peak:.2f} GiB, {seconds:.0f} s", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--factory", default="IVF1024,SQ8")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gmvit-commit-") as tmp:
        before, after, seconds, after_removal, removal_s = _commit(tmp, args.vectors, args.factory)
        _done("commit", after, seconds)
        _done("after a removal", after_removal, removal_s)
        gc.collect()  # the builder's index is gone before the child opens the new one
        opened = json.loads(_child(_OPEN, tmp, args.factory))
        _done("open", opened["peak"], opened["seconds"])
        checked = json.loads(_child(_CHECK, tmp, args.factory))
        _done("check", checked["peak"], checked["seconds"])
        _crash_in_a_compaction(tmp, args.factory)
        recovered = json.loads(_child(_OPEN, tmp, args.factory))
    if checked["problems"]:
        raise SystemExit(f"`gmvit index check` found: {'; '.join(checked['problems'])}")
    for step, result, removed in (("open", opened, 1), ("recovery", recovered, 2)):
        if result["count"] != args.vectors - removed:
            raise SystemExit(
                f"after the {step} the index holds {result['count']} of "
                f"{args.vectors - removed} vectors"
            )
    raw = args.vectors * DIM * 4 / 2**30
    table = "\n".join(
        [
            "| vectors | factory | fp32 GiB | peak GiB before commit | peak GiB | commit s "
            "| after a removal: peak GiB | snapshot s | open: peak GiB | open s "
            "| check: peak GiB | s | open after a crash in a compaction: peak GiB | s |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {args.vectors:,} | {args.factory} | {raw:.2f} | {before:.2f} | {after:.2f} "
            f"| {seconds:.0f} | {after_removal:.2f} | {removal_s:.0f} | {opened['peak']:.2f} "
            f"| {opened['seconds']:.0f} | {checked['peak']:.2f} | {checked['seconds']:.0f} "
            f"| {recovered['peak']:.2f} | {recovered['seconds']:.0f} |",
        ]
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
