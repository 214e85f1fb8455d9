"""Verify an index on disk (`gmvit index check`) and repair what opening refuses to
(`gmvit index repair`). Both hold the index's write lock while they work, so they may run
beside a serving process (its writes wait)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.errors import IndexDamagedError, ShapeIndexError
from index.files import write_atomically
from index.log import AppendLog, final_adds, read_added_blocks
from index.shape_index import _FileLock, _Generation, _read_current
from index.vectors import SnapshotDamaged, VectorSet

# What `repair` may give up, each only when asked: rows whose descriptor is lost, and
# descriptors whose metadata row is lost.
GIVE_UP = {
    "missing": "shapes whose descriptor is lost (their rows are deleted)",
    "unrecorded": "descriptors without a metadata row (they are dropped)",
}


@dataclass
class CheckReport:
    model_dir: Path
    model_id: str
    generation: str | None
    shapes: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def model_dirs(root: Path) -> list[Path]:
    """The per-model folders of an index root (GMVIT_DATA_DIR/index)."""
    return sorted(path.parent for path in Path(root).glob("*/MODEL"))


def indexes_of_other_models(root: Path, model_id: str) -> dict[str, int]:
    """Model id -> shapes, for the indexes under `root` of models other than `model_id`. An
    index is only searched with the model that embedded it, so after new weights (or a new
    descriptor definition) these wait for a reindex. One that cannot be read counts 0."""
    found = {}
    for model_dir in model_dirs(root):
        other = (model_dir / "MODEL").read_text().strip()
        if other == model_id:
            continue
        try:
            found[other] = _count_rows(model_dir / _read_current(model_dir) / "meta.sqlite3")
        except (IndexDamagedError, OSError, sqlite3.DatabaseError):
            found[other] = 0
    return found


def check_index(model_dir: Path) -> CheckReport:
    """Every row has its vector and every vector its row; the snapshot's checksum holds
    and it agrees with the log; the whole log reads intact; SQLite's own check passes."""
    model_dir = Path(model_dir)
    model_id = (model_dir / "MODEL").read_text().strip()
    report = CheckReport(model_dir, model_id, None)
    lock = _FileLock(model_dir / "LOCK")
    try:
        with lock.held():
            _check_live(model_dir, report)
    finally:
        lock.close()
    return report


def _check_live(model_dir: Path, report: CheckReport) -> None:
    try:
        report.generation = _read_current(model_dir)
    except IndexDamagedError as exc:
        report.problems.extend(exc.problems)
        return
    path = model_dir / report.generation
    meta = path / "meta.sqlite3"
    if meta.is_file() and meta.stat().st_size:
        conn = sqlite3.connect(f"file:{meta}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            verdict = str(exc)
        finally:
            conn.close()
        if verdict != "ok":
            report.problems.append(f"meta.sqlite3 fails SQLite's check: {verdict}")
    try:
        dim = _dimension(meta)
        generation = _Generation(path, report.model_id, dim, "Flat", durable=False)
    except (IndexDamagedError, sqlite3.DatabaseError) as exc:
        report.problems.extend(getattr(exc, "problems", [str(exc)]))
        return
    try:
        report.shapes = generation.store.count()
        live_ids = generation.vectors.ids()
        log, factory = generation.log, generation.factory
    finally:
        generation.close()
    # Its vectors go before the snapshot is read again: at 10M vectors each is gigabytes.
    del generation
    _compare_copies(path, dim, factory, log, live_ids, report)


def _dimension(meta: Path) -> int:
    conn = sqlite3.connect(f"file:{meta}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM info WHERE key = 'dim'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(str(meta.parent), [f"meta.sqlite3 is unreadable ({exc})"]) from None
    finally:
        conn.close()
    if row is None:
        raise IndexDamagedError(str(meta.parent), ["meta.sqlite3 holds no index"])
    return int(row[0])


def _compare_copies(
    path: Path, dim: int, factory: str, log: AppendLog, live_ids: np.ndarray, report: CheckReport
) -> None:
    """Both copies of every vector, the snapshot's and the log's, hold the live set. The log
    is read twice and never held: once for where each shape's last add is, then for those
    adds' vectors."""
    if log.epoch is None:
        report.notes.append("legacy file format: upgraded at the next open for writing")
        return
    logged_ids, logged_offsets, scan = final_adds(log.path, dim)
    if scan.damaged_inside:
        report.problems.append(
            f"the log is damaged at byte {scan.damaged[0]} (the snapshot still holds its "
            "vectors: `gmvit index repair` rewrites the log)"
        )
    elif scan.torn_tail:
        report.notes.append("the log ends in a torn record (cut at the next open)")
    lost = len(np.setdiff1d(live_ids, logged_ids))
    if lost and not scan.damaged_inside:
        report.problems.append(f"{lost} live vectors are not in the log")
    unrecorded = len(np.setdiff1d(logged_ids, live_ids))
    if unrecorded:
        report.notes.append(f"{unrecorded} uncommitted adds in the log (dropped at next open)")
    snapshot = path / "vectors.faiss"
    if not snapshot.exists():
        report.notes.append("no snapshot yet (the next snapshot writes one)")
        return
    try:
        vectors, covers = VectorSet.read(snapshot, dim, factory)
    except SnapshotDamaged as exc:
        report.problems.append(f"{exc} (the log still holds its vectors: repair rewrites it)")
        return
    if covers.epoch != log.epoch:
        report.problems.append("the snapshot was taken from another copy of the log")
        return
    # Read in log order (each run of adjacent records in one call), each vector looked up in
    # the snapshot by id: one pread a record in the snapshot's order took 516 s at 10M.
    both = np.isin(logged_ids, vectors.ids())
    differ = 0
    for ids, found in read_added_blocks(log.path, dim, logged_ids[both], logged_offsets[both]):
        # An SQ or PQ snapshot holds codes: the log's vector is compared as stored.
        stored = vectors.stored_vectors(ids)
        differ += int((vectors.as_stored(found) != stored).any(axis=1).sum())
    if differ:
        report.problems.append(f"{differ} vectors differ between the snapshot and the log")


def repair_index(
    model_dir: Path, *, generation: str | None = None, give_up: set[str] = frozenset()
) -> list[str]:
    """Make the index open again; returns what was done. Without `give_up` nothing that an
    open would refuse to lose is lost: the log is rewritten from the verified vectors, the
    snapshot from the log, CURRENT pointed at `generation` when it is damaged."""
    unknown = set(give_up) - set(GIVE_UP)
    if unknown:
        raise ShapeIndexError(f"cannot give up {', '.join(sorted(unknown))}: choose from {GIVE_UP}")
    model_dir = Path(model_dir)
    model_id = (model_dir / "MODEL").read_text().strip()
    done: list[str] = []
    lock = _FileLock(model_dir / "LOCK")
    try:
        with lock.held():
            try:
                name = _read_current(model_dir)
            except IndexDamagedError as exc:
                if generation is None:
                    newest = max((p.name for p in model_dir.glob("gen-*")), default=None)
                    raise ShapeIndexError(
                        f"{'; '.join(exc.problems)}: say which generation is live with "
                        f"--generation (the newest is {newest})"
                    ) from None
                if not (model_dir / generation / "meta.sqlite3").is_file():
                    raise ShapeIndexError(
                        f"{generation} is not a generation of {model_dir}"
                    ) from None
                write_atomically(model_dir / "CURRENT", f"{generation}\n".encode())
                done.append(f"CURRENT now names {generation}")
                name = generation
            path = model_dir / name
            before = _count_rows(path / "meta.sqlite3")
            gen = _Generation(
                path,
                model_id,
                _dimension(path / "meta.sqlite3"),
                "Flat",
                give_up=frozenset(give_up),
            )
            try:
                gen.compact()
                after = gen.store.count()
            finally:
                gen.close()
            if after != before:
                done.append(f"gave up {before - after} shapes without a descriptor")
            done.append(f"rewrote the log and snapshot of {name} ({after} shapes)")
    finally:
        lock.close()
    return done


def _count_rows(meta: Path) -> int:
    conn = sqlite3.connect(f"file:{meta}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM shapes").fetchone()[0]
    finally:
        conn.close()
