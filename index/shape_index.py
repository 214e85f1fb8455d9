"""ShapeIndex: a durable, multi-process FAISS index of shape descriptors with metadata.

Layout under `root` (the app passes GMVIT_DATA_DIR/index)::

    root/<model-slug>/MODEL             the model id whose descriptors live here
    root/<model-slug>/LOCK              flock'd by every writer (any process on this host)
    root/<model-slug>/counters.sqlite3  shape ids and generation numbers, never reused
    root/<model-slug>/CURRENT           "gen-000007": the live generation, replaced atomically
    root/<model-slug>/gen-000007/
        meta.sqlite3                    shapes(id, name, label, sha256, source, model_id,
                                        added_at, updated_at) + info(model_id, dim, factory)
        log                             every add and remove of the generation (fsync'd,
                                        checksummed records; see index.log)
        vectors.faiss                   snapshot: FAISS IDMap2,<factory> with a header naming
                                        the log offset it covers and a checksum
        BUILDING                        only while an IndexBuilder is writing the generation

Commit discipline. The SQLite row is the commit point; the vectors follow it:
- add: allocate an id, append the vector to the log and fsync, then INSERT the row and
  commit (WAL, synchronous=FULL). Only then is the add acknowledged.
- remove: DELETE the row and commit, then append a remove record to the log.
- snapshot: write vectors.faiss (tmp, fsync, rename, fsync the directory), covering the
  log up to its current end. The log is NOT truncated: it keeps the generation's whole
  history, so every vector is in two files and either can rebuild the other. A log mostly
  made of removed shapes is rewritten (compacted: one add per live vector, a new epoch)
  before its snapshot.
- open never deletes data. It loads the snapshot (if its checksum holds and it belongs to
  this log), replays the log after it, skipping over bad bytes to every intact record, and
  then checks that every metadata row has its vector. If one has not, or many vectors have
  no row (an older meta.sqlite3), or the metadata or CURRENT is missing or garbled, it
  raises IndexDamagedError and changes nothing. Otherwise it heals what is safe: vectors
  without a row (adds that crashed before their commit, never acknowledged) are dropped, a
  torn log tail is cut, a damaged or missing snapshot is rebuilt from the log, a damaged
  log is rewritten from the vectors. `gmvit index check` verifies a data dir without
  opening it for writing; `gmvit index repair` chooses what to give up when open refuses.

Removal. Flat removes vectors for real. HNSW and IVF cannot: their removed ids are
tombstones that every search filters out with a FAISS IDSelector until the next snapshot.
There an IVF drops them from its inverted lists in place; an HNSW graph is rebuilt from
its live vectors (a lossy one from the log's, by a compaction), its training kept.

Label filter. A label held by at least a quarter of the shapes is over-fetched (k times
2 x total/matching, growing 4x until k match) and filtered. For a rarer label, its ids come
from SQLite: up to EXACT_SCAN_MAX of them are scored exactly, more go to FAISS as an
IDSelectorBatch, and a short answer (HNSW walking past a sparse filter) falls back to exact
scoring. Either way k hits come back whenever k matching shapes exist.

Several processes. Writers (ShapeIndex.add/remove/snapshot, IndexBuilder.commit) hold the
LOCK flock, so writes of all processes on one host are serialised; on a shared data dir
across machines the filesystem must honour flock (local disks, NFSv4 do). Every call
compares the stat of CURRENT and of the log with what this process last saw (two stat
calls); if another process wrote, the index catches up under the lock: the new log tail
is replayed, or the whole generation is reloaded when CURRENT changed (a committed
rebuild) or the log was rewritten. `reload_if_changed()` does the same check on demand.
Threads share one ShapeIndex safely: every call holds its RLock.

Rebuilds. `rebuild(since=...)` returns an IndexBuilder writing a new generation beside
the live one, with ids from the same counter; it appends every shape to the new log as it
goes (fsync'd at the commit), and into the index unless the factory needs training.
`commit()` takes the lock, copies over the shapes added to the live generation with an id of
at least `since` (a reindex job passes `next_shape_id()` from when it was submitted, so every
shape acknowledged while it ran is kept; all of them with keep_existing=True), trains an IVF,
PQ or SQ factory on a sample of the log and streams the log into it, writes the snapshot, and
renames CURRENT: a reader sees the old generation or the new one, never half. `abort()` (or a
builder whose process died: its BUILDING flock is free, and the next open removes it)
leaves the old generation serving.
The generation replaced by a commit is kept until the following commit, for readers that
still have it open.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import IndexDamagedError, ModelMismatchError, ShapeIndexError
from index.files import fsync_dir, write_atomically
from index.log import (
    APPLY_BATCH,
    HEADER_SIZE,
    OP_ADD,
    OP_REMOVE,
    AddsFile,
    AppendLog,
    LogEntry,
    LogScan,
    encode,
    final_adds,
    read_added_blocks,
    read_added_vectors,
    scan_log,
    write_log,
)
from index.store import Counters, MetadataStore, ShapeRecord
from index.vectors import (
    HNSW_EF_SEARCH,
    IVF_NPROBE,
    SearchKnobs,
    Snapshot,
    SnapshotDamaged,
    VectorSet,
    make_faiss_index,
    normalize,
    trained_vectors,
    training_sample,
)

log = logging.getLogger(__name__)

# After this many records past the snapshot, the next add writes a new snapshot.
SNAPSHOT_EVERY = 10_000
# A crashed add leaves at most one vector without a row; more than this many at an open
# means the metadata lost rows (e.g. an older meta.sqlite3 put back): refuse, do not drop.
MAX_UNCOMMITTED_ADDS = 16
# The generation's info key that says its factory was trained (by its reindex commit): the
# training lives in the snapshot only, so a generation that lost it trains again.
TRAINED = "trained"
_NO_LOG = LogScan([], 0, 0, [])
# An IndexBuilder reserves shape ids in blocks of this size.
_ID_BLOCK = 256


@dataclass(frozen=True)
class SearchHit:
    id: int
    score: float
    record: ShapeRecord


def model_slug(model_id: str) -> str:
    """The directory name for a model id (other characters become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:120] or "model"


class _FileLock:
    """An exclusive flock on a file, re-entrant within its owner (who holds a thread lock)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._depth = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


_GENERATION_NAME = re.compile(r"gen-\d{6}")


def _never_written(generation: Path) -> bool:
    """A generation no shape was ever added to: no snapshot and no log record."""
    log_file = generation / "log"
    return not (generation / "vectors.faiss").exists() and (
        not log_file.exists() or log_file.stat().st_size <= HEADER_SIZE
    )


def _read_current(model_dir: Path) -> str:
    """The live generation's name; IndexDamagedError (naming the generations there are)
    if CURRENT is missing, garbled or points at nothing."""
    try:
        name = (model_dir / "CURRENT").read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        name = ""
    if _GENERATION_NAME.fullmatch(name) and (model_dir / name).is_dir():
        return name
    present = sorted(p.name for p in model_dir.glob("gen-*") if not (p / "BUILDING").exists())
    raise IndexDamagedError(
        str(model_dir),
        [
            f"CURRENT {'names ' + repr(name) if name else 'is empty or missing'}, not a "
            f"generation of this index (generations present: {', '.join(present) or 'none'})"
        ],
    )


class _Generation:
    """One generation directory opened for reading and writing (caller holds the locks).

    Opening verifies before it changes anything: every metadata row must have its vector
    (from the snapshot, or replayed from the log, which holds the generation's whole history)
    and at most a crash's worth of vectors may lack a row. Then it heals what is safe to heal
    (a torn log tail, a snapshot rebuilt from the log, a log rewritten around damage) and
    otherwise raises IndexDamagedError without touching a file.
    """

    def __init__(
        self,
        path: Path,
        model_id: str,
        dim: int,
        factory: str,
        *,
        durable: bool = True,
        create: bool = False,
        give_up: frozenset[str] = frozenset(),
    ) -> None:
        self.path = path
        self.dim = dim
        meta = path / "meta.sqlite3"
        if not create:
            if not meta.is_file():
                raise IndexDamagedError(str(path), ["its metadata (meta.sqlite3) is missing"])
            if meta.stat().st_size == 0:
                raise IndexDamagedError(str(path), ["its metadata (meta.sqlite3) is empty"])
        try:
            self.store = MetadataStore(meta, durable=durable, create=create)
        except sqlite3.DatabaseError as exc:
            raise IndexDamagedError(
                str(path), [f"its metadata (meta.sqlite3) is unreadable ({exc})"]
            ) from None
        if create:
            write_log(path / "log", [])
        try:
            info = self.store.info()
            if create and not info:
                self.store.set_info({"model_id": model_id, "dim": str(dim), "factory": factory})
                info = self.store.info()
            if not info:
                raise IndexDamagedError(str(path), ["its metadata (meta.sqlite3) holds no index"])
            if info["model_id"] != model_id:
                raise ModelMismatchError(str(path), info["model_id"], model_id)
            if int(info["dim"]) != dim:
                raise ShapeIndexError(
                    f"the index at {path} holds {info['dim']}-d vectors, not {dim}-d"
                )
            self.factory = info["factory"]
            for stale in path.glob(".*.tmp-*"):
                stale.unlink()  # a snapshot or log rewrite cut short by a crash (we hold the lock)
            self.log = AppendLog(path / "log")
            self._load_vectors(durable, give_up)
        except BaseException:
            self.store.close()
            if hasattr(self, "log"):
                self.log.close()
            raise

    # -- opening -----------------------------------------------------------------------

    def _load_vectors(self, durable: bool, give_up: frozenset[str]) -> None:
        """Take the vectors from the first source that has one for every row: the snapshot
        plus the log after it, the whole log, or the snapshot alone (its log lost)."""
        notes: list[str] = []
        snapshot_path = self.path / "vectors.faiss"
        covers: Snapshot | None = None
        from_snapshot: VectorSet | None = None  # read once: at 10M vectors it is gigabytes
        if snapshot_path.exists():
            try:
                from_snapshot, covers = VectorSet.read(snapshot_path, self.dim, self.factory)
            except SnapshotDamaged as exc:
                notes.append(f"its snapshot is damaged ({exc})")
        elif self.log.epoch is None:
            notes.append("its snapshot (vectors.faiss) is missing")
        # Legacy files (from before logs kept the whole history) are upgraded once verified.
        legacy = self.log.epoch is None or (covers is not None and covers.epoch is None)
        matches = covers is not None and (
            covers.epoch is None
            or (covers.epoch == self.log.epoch and covers.log_offset <= self.log.size)
        )
        if covers is not None and not matches:
            notes.append("its snapshot was taken from another copy of the log")

        # (name, from the snapshot?, log offset to replay from, or None for no replay)
        sources: list[tuple[str, bool, int | None]] = []
        if matches:
            offset = self.log.first_record if covers.epoch is None else covers.log_offset
            sources.append(("snapshot", True, offset))
        if self.log.epoch is not None:
            sources.append(("log", False, self.log.first_record))
        if covers is not None and not matches:
            sources.append(("snapshot alone", True, None))

        rows = self.store.ids()
        self.vectors, scan, source = VectorSet(self.dim, self.factory), _NO_LOG, "none"
        for name, use_snapshot, offset in sources:
            source = name
            if use_snapshot:  # one source at most: "snapshot" or "snapshot alone"
                if from_snapshot is None:  # released while the log was replayed
                    from_snapshot = VectorSet.read(snapshot_path, self.dim, self.factory)[0]
                self.vectors, from_snapshot = from_snapshot, None
            else:
                self.vectors = self._replay_target(
                    from_snapshot if from_snapshot is not None else self.vectors
                )
                from_snapshot = None  # not held beside the replay: read again if needed
            if offset is None:
                scan = _NO_LOG
            elif use_snapshot:
                scan = scan_log(self.log.path, self.dim, offset, apply=self._apply)
            else:
                scan = self._fill_from_log()
            if not len(np.setdiff1d(rows, self.vectors.ids())):
                break
        missing = np.setdiff1d(rows, self.vectors.ids())
        orphans = np.setdiff1d(self.vectors.ids(), rows)
        if scan.damaged_inside:
            notes.append(f"its log is damaged at byte {scan.damaged[0]}")
        if len(missing) and "missing" not in give_up:
            shown = ", ".join(str(i) for i in missing[:5].tolist())
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise IndexDamagedError(
                str(self.path),
                [*notes, f"{len(missing)} shapes have no descriptor (ids {shown}{more})"],
            )
        if len(orphans) > MAX_UNCOMMITTED_ADDS and "unrecorded" not in give_up:
            raise IndexDamagedError(
                str(self.path),
                [
                    *notes,
                    f"{len(orphans)} descriptors have no metadata row: meta.sqlite3 looks "
                    "older than the log (restored from a backup?)",
                ],
            )

        # Safe from here: every row has its vector, or the caller gave those rows up.
        # Vectors without a row are adds that crashed before their commit (never
        # acknowledged), or what the caller gave up.
        if len(missing):
            log.warning("%s: gave up %d shapes without a descriptor", self.path, len(missing))
            self.store.delete(missing.tolist())
        if len(orphans):
            self.vectors.remove(orphans)
        self.log_records = scan.count
        if not durable:
            return
        for note in notes:
            log.warning("%s: %s; recovered from the other copy", self.path, note)
        if legacy or scan.damaged_inside or source == "snapshot alone" or len(orphans):
            self.compact()  # a new log with one add per live vector, and its snapshot
        elif source == "log" and (covers is not None or notes or self.log_records):
            self.snapshot()  # the snapshot was damaged, stale or never written
        elif scan.torn_tail:
            self.log.cut(scan.end)

    def _replay_target(self, trained: VectorSet) -> VectorSet:
        """Where the log is replayed: an empty index of the factory or, for a factory that
        needs training, an empty copy of `trained` (the snapshot's index), whose training
        holds even where its vectors do not (a crash between a compaction's new log and
        its snapshot): replayed into a Flat index, such a generation stayed exact, in
        fp32, until the next reindex."""
        fresh = VectorSet(self.dim, self.factory)
        return trained.emptied() if fresh.staged and not trained.staged else fresh

    def _fill_from_log(self) -> LogScan:
        """Replay the whole log into the empty `self.vectors`: the shapes whose last record
        is an add, in log order, through `VectorSet.fill` (an IVF's lists allocated once at
        their final size; added one batch at a time, they grew by doubling: 9.9 GiB against
        6.7 to reopen 10M vectors of IVF4096,SQ8 after a crash in a compaction). A
        generation whose training was lost with its snapshot is trained again first."""
        ids, offsets, scan = final_adds(self.log.path, self.dim)

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            return read_added_blocks(self.log.path, self.dim, ids, offsets)

        if self.vectors.staged and self.store.info().get(TRAINED) == "yes":
            # Its training was lost with its snapshot: trained again as its reindex commit
            # trained it, on a sample of the log; a Flat index would hold every vector in
            # fp32 (20 GiB at 10M) until the next reindex.
            sample = read_added_vectors(self.log.path, self.dim, offsets[training_sample(len(ids))])
            try:
                self.vectors = trained_vectors(self.dim, self.factory, sample, blocks)
                return scan
            except ShapeIndexError as exc:
                log.warning("%s: kept exact (Flat) until a reindex: %s", self.path, exc)
        self.vectors.fill(blocks)
        return scan

    def _apply(self, entries: list[LogEntry]) -> None:
        """Replay log entries in order, each run of adds in one call to the index."""
        adds: list[LogEntry] = []
        for entry in entries:
            if entry.op == OP_ADD:
                adds.append(entry)
                continue
            self._add_entries(adds)
            adds = []
            if entry.op == OP_REMOVE:
                self.vectors.remove(np.array([entry.shape_id], dtype=np.int64))
        self._add_entries(adds)

    def _add_entries(self, adds: list[LogEntry]) -> None:
        if adds:
            ids = np.array([entry.shape_id for entry in adds], dtype=np.int64)
            self.vectors.add(ids, np.stack([entry.vector for entry in adds]))

    def catch_up(self) -> None:
        """Replay what another process appended to the log since we last read it."""
        scan = scan_log(self.log.path, self.dim, start=self.log.size)
        self.log.cut(scan.end)  # a torn tail of a writer that crashed (we hold the lock)
        self.log_records += len(scan.entries)
        # Vectors of adds whose row is missing belong to a writer that crashed before its
        # commit (it held the lock we hold now): skip them, as a full open would.
        rows = set(self.store.get_many([e.shape_id for e in scan.entries if e.op == OP_ADD]))
        self._apply([e for e in scan.entries if e.op != OP_ADD or e.shape_id in rows])

    # -- writing -----------------------------------------------------------------------

    def add(self, record: ShapeRecord, vector: np.ndarray, thumbnail: bytes | None) -> None:
        self.log.append(encode(OP_ADD, record.id, vector))
        self.store.insert([record], thumbnails={record.id: thumbnail} if thumbnail else None)
        self.log_records += 1
        self.vectors.add(np.array([record.id], dtype=np.int64), vector.reshape(1, -1))

    def remove(self, shape_id: int) -> bool:
        if not self.store.delete([shape_id]):
            return False
        self.log.append(encode(OP_REMOVE, shape_id))
        self.log_records += 1
        self.vectors.remove(np.array([shape_id], dtype=np.int64))
        return True

    def snapshot(self) -> None:
        """Save replaying the log so far: vectors.faiss, covering the log up to its end.
        A log mostly made of removed shapes is rewritten first (compact), and so is the log
        of a lossy HNSW index with removed shapes (only the log's vectors can rebuild it)."""
        lossy_removals = self.vectors.has_tombstones and not self.vectors.drops_tombstones
        if lossy_removals or self.log_records > 2 * len(self.vectors) + SNAPSHOT_EVERY:
            self.compact()
            return
        self.vectors.write(self.path / "vectors.faiss", Snapshot(self.log.epoch, self.log.size))
        self.log_records = 0

    def compact(self) -> None:
        """Rewrite the log as one add per live vector (a new epoch), then snapshot it. Where
        the index keeps only codes of the vectors (PQ, SQ), the vectors are the old log's
        own; removed ones leave an IVF in place, a lossy HNSW graph by a rebuild from the
        new log. Both logs and the index are streamed, so a compaction never holds every
        vector in fp32."""
        blocks = self.vectors.live_chunks() if self.vectors.exact else self._logged_live_blocks()
        rows = (row for ids, block in blocks for row in zip(ids, block, strict=True))
        epoch, size = write_log(self.log.path, rows)
        self.log.close()
        self.log = AppendLog(self.log.path)
        self.log_records = 0
        if self.vectors.has_tombstones and not self.vectors.drops_tombstones:
            self.vectors = self.vectors.rebuilt(AddsFile(self.log.path, self.dim).blocks)
        self.vectors.write(self.path / "vectors.faiss", Snapshot(epoch, size))

    def _logged_live_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every live shape, in log order, each vector as the shape's last
        record in the log holds it (what a replay and `gmvit index check` take); a live
        shape the log lacks (its log was rebuilt from the snapshot) gets the index's
        reconstruction, after them."""
        live = self.vectors.ids()
        ids, offsets, _ = final_adds(self.log.path, self.dim)
        logged = np.isin(ids, live)
        yield from read_added_blocks(self.log.path, self.dim, ids[logged], offsets[logged])
        unlogged = np.setdiff1d(live, ids[logged])
        for start in range(0, len(unlogged), APPLY_BATCH):
            part = unlogged[start : start + APPLY_BATCH]
            yield part, self.vectors.stored_vectors(part)

    def state_key(self) -> tuple | None:
        """Changes whenever another process appends to or rewrites the log."""
        key = _stat_key(self.path / "log")
        return None if key is None else key[:2]

    def close(self) -> None:
        self.log.close()
        self.store.close()


class ShapeIndex:
    """Shapes (descriptor + metadata) of one model. Create with `ShapeIndex.open`."""

    def __init__(
        self,
        model_dir: Path,
        model_id: str,
        dim: int,
        factory: str,
        knobs: SearchKnobs = SearchKnobs(),
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.knobs = knobs
        self._requested_factory = factory
        self._dir = model_dir
        self._lock = threading.RLock()
        self._file_lock = _FileLock(model_dir / "LOCK")
        self._counters = Counters(model_dir / "counters.sqlite3")
        self._gen: _Generation | None = None
        self._gen_name = ""
        self._seen: tuple = ()
        self._wrote_log = False  # close() snapshots only what this process appended
        try:
            with self._file_lock.held():
                self._claim_model_dir()
                self._remove_dead_builds()
                self._load()
        except BaseException:
            self._counters.close()
            self._file_lock.close()
            raise

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        model_id: str,
        *,
        dim: int = 512,
        factory: str = "Flat",
        ef_search: int = HNSW_EF_SEARCH,
        nprobe: int = IVF_NPROBE,
    ) -> ShapeIndex:
        """`factory`: the FAISS index of new generations (one that needs training, IVF or
        PQ, is trained when a rebuild commits; exact until then). Search-time settings:
        `ef_search` (HNSW's candidate list), `nprobe` (IVF's lists probed)."""
        if not model_id or not model_id.strip():
            raise ShapeIndexError("a model id is required to open an index")
        if dim < 1:
            raise ShapeIndexError(f"the descriptor dimension must be positive, got {dim}")
        for name, value in (("ef_search", ef_search), ("nprobe", nprobe)):
            if value < 1:
                raise ShapeIndexError(f"{name} must be at least 1, got {value}")
        make_faiss_index(dim, factory)  # refuses unusable factories before touching disk
        model_dir = Path(root) / model_slug(model_id)
        model_dir.mkdir(parents=True, exist_ok=True)
        return cls(model_dir, model_id, dim, factory, SearchKnobs(ef_search, nprobe))

    # -- state -----------------------------------------------------------------------

    @property
    def factory(self) -> str:
        """The live generation's factory (a rebuild uses the one given to `open`)."""
        return self._gen.factory

    @property
    def generation(self) -> str:
        return self._gen_name

    def _claim_model_dir(self) -> None:
        model_file = self._dir / "MODEL"
        if model_file.exists():
            stored = model_file.read_text().strip()
            if stored != self.model_id:
                raise ModelMismatchError(str(self._dir), stored, self.model_id)
        else:
            write_atomically(model_file, f"{self.model_id}\n".encode())
        if not (self._dir / "CURRENT").exists() and all(
            _never_written(path) for path in self._dir.glob("gen-*")
        ):
            # A new index (or one whose first start crashed before CURRENT was written).
            name = f"gen-{self._counters.allocate('generation'):06d}"
            (self._dir / name).mkdir()
            _Generation(
                self._dir / name, self.model_id, self.dim, self._requested_factory, create=True
            ).close()
            fsync_dir(self._dir)
            write_atomically(self._dir / "CURRENT", f"{name}\n".encode())

    def _remove_dead_builds(self) -> None:
        for marker in self._dir.glob("gen-*/BUILDING"):
            fd = os.open(marker, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live builder holds it
            finally:
                os.close(fd)
            log.warning("removing %s, left by a builder that died", marker.parent)
            shutil.rmtree(marker.parent, ignore_errors=True)

    def _load(self) -> None:
        """(Re)open the live generation; the caller holds the file lock."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        self._gen_name = _read_current(self._dir)
        self._gen = _Generation(self._dir / self._gen_name, self.model_id, self.dim, "Flat")
        # Ids are never reused, even if counters.sqlite3 was lost or put back from a backup.
        self._counters.ensure_above("shape", self._gen.store.max_id())
        self._remember()

    def _remember(self) -> None:
        self._seen = self._current_key()

    def _current_key(self) -> tuple:
        return (_stat_key(self._dir / "CURRENT"), self._gen.state_key())

    def _catch_up(self) -> None:
        """Bring this process's view up to date with the disk; the caller holds the lock."""
        key = self._current_key()
        if key == self._seen:
            return
        current, log_key = key
        if (
            current == self._seen[0]
            and log_key is not None
            and self._seen[1] is not None
            and log_key[0] == self._seen[1][0]
            and log_key[1] >= self._gen.log.size
        ):
            self._gen.catch_up()  # the same log file, grown: replay its new records
            self._remember()
        else:
            self._load()  # a committed rebuild, or the log rewritten (compacted)

    def reload_if_changed(self) -> bool:
        """Catch up with writes of other processes (a committed rebuild included)."""
        with self._lock:
            if self._current_key() == self._seen:
                return False
            with self._file_lock.held():
                self._catch_up()
            return True

    @contextmanager
    def _reading(self) -> Iterator[_Generation]:
        with self._lock:
            self._check_open()
            if self._current_key() != self._seen:
                with self._file_lock.held():
                    self._catch_up()
            yield self._gen

    @contextmanager
    def _writing(self) -> Iterator[_Generation]:
        with self._lock:
            self._check_open()
            with self._file_lock.held():
                self._catch_up()
                yield self._gen
                self._remember()

    def _check_open(self) -> None:
        if self._gen is None:
            raise ShapeIndexError("the index is closed")

    # -- writes ----------------------------------------------------------------------

    def add(
        self,
        vector: np.ndarray,
        *,
        name: str,
        sha256: str,
        source: str = "upload",
        label: str | None = None,
        thumbnail: bytes | None = None,
    ) -> ShapeRecord:
        """Add one shape (and its thumbnail, a PNG); it is on disk, and survives kill -9,
        once this returns."""
        unit = normalize(vector, self.dim)
        with self._writing() as gen:
            now = time.time()
            record = ShapeRecord(
                id=self._counters.allocate("shape"),
                name=name,
                label=label,
                sha256=sha256,
                source=source,
                model_id=self.model_id,
                added_at=now,
                updated_at=now,
            )
            gen.add(record, unit, thumbnail)
            self._wrote_log = True
            if gen.log_records >= SNAPSHOT_EVERY:
                self._snapshot(gen)
        return record

    def add_if_new(
        self,
        vector: np.ndarray,
        *,
        name: str,
        sha256: str,
        source: str = "upload",
        label: str | None = None,
        thumbnail: bytes | None = None,
    ) -> tuple[ShapeRecord, bool]:
        """Add a shape unless one with the same sha256 is indexed: (the new shape, True),
        or (the one there was, False). One step under the write lock, so two processes
        adding the same file at once get one shape."""
        with self._writing() as gen:
            existing = gen.store.find_sha256(sha256)
            if existing is not None:
                return existing, False
            record = self.add(
                vector, name=name, sha256=sha256, source=source, label=label, thumbnail=thumbnail
            )
            return record, True

    def set_thumbnail(self, shape_id: int, png: bytes) -> bool:
        """Store a thumbnail for an indexed shape (False: no such shape)."""
        with self._writing() as gen:
            if gen.store.get(int(shape_id)) is None:
                return False
            gen.store.set_thumbnail(int(shape_id), png)
            return True

    def remove(self, shape_id: int) -> bool:
        with self._writing() as gen:
            removed = gen.remove(int(shape_id))
            self._wrote_log |= removed
            return removed

    def snapshot(self) -> None:
        """Fold the log into vectors.faiss (written atomically) and truncate the log."""
        with self._writing() as gen:
            self._snapshot(gen)

    def _snapshot(self, gen: _Generation) -> None:
        """A snapshot that fails half-way (a full disk; a failed allocation while an IVF
        drops its tombstones in place) may leave the index in memory half-changed: the next
        read or write reopens the generation from disk, whose log holds every write
        acknowledged."""
        try:
            gen.snapshot()
        except BaseException:
            self._seen = (None, None)
            raise

    def close(self) -> None:
        """Snapshot what this process wrote, then release every file. A snapshot that
        fails (a full disk) is raised, but the files are released all the same: the log
        already holds every acknowledged write, and the next open replays it."""
        with self._lock:
            if self._gen is None:
                return
            try:
                with self._file_lock.held():
                    try:
                        if self._wrote_log:
                            self._catch_up()
                            if self._gen.log_records:
                                self._snapshot(self._gen)
                    finally:
                        self._gen.close()
                        self._gen = None
            finally:
                self._counters.close()
                self._file_lock.close()

    def __enter__(self) -> ShapeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------

    def get(self, shape_id: int) -> ShapeRecord | None:
        with self._reading() as gen:
            return gen.store.get(int(shape_id))

    def vector(self, shape_id: int) -> np.ndarray | None:
        with self._reading() as gen:
            return gen.vectors.vector(int(shape_id))

    def thumbnail(self, shape_id: int) -> bytes | None:
        """The PNG stored with the shape, if any."""
        return self.thumbnails([shape_id]).get(int(shape_id))

    def thumbnails(self, shape_ids: list[int]) -> dict[int, bytes]:
        """The PNGs stored with these shapes, by id (a shape without one is left out)."""
        with self._reading() as gen:
            return gen.store.thumbnails([int(i) for i in shape_ids])

    def find_sha256(self, sha256: str) -> ShapeRecord | None:
        with self._reading() as gen:
            return gen.store.find_sha256(sha256)

    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        label: str | None = None,
        exclude: int | None = None,
    ) -> list[SearchHit]:
        """The k most similar shapes (cosine), best first, optionally only with `label`."""
        if k < 1:
            raise ShapeIndexError(f"k must be at least 1, got {k}")
        query = normalize(vector, self.dim)
        with self._reading() as gen:
            if label is None:
                pairs = gen.vectors.search(query, k, exclude=exclude, knobs=self.knobs)
            else:
                pairs = self._search_label(gen, query, k, label, exclude, self.knobs)
            records = gen.store.get_many([i for i, _ in pairs])
        return [SearchHit(i, score, records[i]) for i, score in pairs if i in records]

    @staticmethod
    def _search_label(
        gen: _Generation,
        query: np.ndarray,
        k: int,
        label: str,
        exclude: int | None,
        knobs: SearchKnobs,
    ) -> list[tuple[int, float]]:
        """A label held by a large share of the shapes is cheapest to over-fetch and filter;
        a rarer one goes to FAISS as the set of its ids (or is scored exactly)."""
        matching = gen.store.count(label=label)
        total = len(gen.vectors)
        if matching * 4 >= total:
            fetch = k * 2 * -(-total // max(matching, 1))
            while True:
                pairs = gen.vectors.search(query, min(fetch, total), exclude=exclude, knobs=knobs)
                labels = gen.store.get_many([i for i, _ in pairs])
                hits = [(i, s) for i, s in pairs if i in labels and labels[i].label == label]
                if len(hits) >= k:
                    return hits[:k]
                if fetch >= total:
                    break
                fetch *= 4
        return gen.vectors.search(
            query, k, allowed=gen.store.ids(label=label), exclude=exclude, knobs=knobs
        )

    def list(
        self, *, label: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[ShapeRecord]:
        if offset < 0 or limit < 0:
            raise ShapeIndexError("offset and limit must not be negative")
        with self._reading() as gen:
            return gen.store.list(label=label, offset=offset, limit=limit)

    def count(self, *, label: str | None = None) -> int:
        with self._reading() as gen:
            return gen.store.count(label=label)

    def vector_count(self) -> int:
        """Vectors in FAISS (tombstones excluded); equals count() on a consistent index."""
        with self._reading() as gen:
            return len(gen.vectors)

    def labels(self) -> dict[str, int]:
        with self._reading() as gen:
            return gen.store.labels()

    # -- rebuilds --------------------------------------------------------------------

    def next_shape_id(self) -> int:
        """A lower bound on the id of every shape acknowledged from now on: one more than
        the largest id committed so far (adds allocate and commit under the write lock, so
        an add still in flight has a larger id). A reindex job records it when it is
        submitted; see `rebuild`. Does not wait for the write lock."""
        with self._reading() as gen:
            return gen.store.max_id() + 1

    def rebuild(self, *, since: int | None = None, keep_existing: bool = False) -> IndexBuilder:
        """A builder for a new generation, with the factory given to `open`. Its commit
        carries over every shape added to the live index with an id of at least `since`
        (default: `next_shape_id()` now), or all of them with `keep_existing`."""
        with self._lock:
            self._check_open()
            return IndexBuilder(
                self._dir, self.model_id, self.dim, self._requested_factory, since, keep_existing
            )


class IndexBuilder:
    """Writes a new generation beside the live one; `commit` swaps it in atomically.

    The builder writes without fsync per shape (nothing is acknowledged before commit);
    `commit` makes everything durable before CURRENT points at it.
    """

    def __init__(
        self,
        model_dir: Path,
        model_id: str,
        dim: int,
        factory: str,
        since: int | None,
        keep_existing: bool,
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.factory = factory
        self._dir = model_dir
        self._keep_existing = keep_existing
        self._file_lock = _FileLock(model_dir / "LOCK")
        self._counters = Counters(model_dir / "counters.sqlite3")
        with self._file_lock.held():
            self._first_id = self._counters.peek("shape") if since is None else since
            self.generation = f"gen-{self._counters.allocate('generation'):06d}"
            self._path = model_dir / self.generation
            self._path.mkdir()
            self._building_fd = os.open(self._path / "BUILDING", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._building_fd, fcntl.LOCK_EX)
        self._gen = _Generation(self._path, model_id, dim, factory, durable=False, create=True)
        self._pending: list[tuple[ShapeRecord, np.ndarray, bytes | None]] = []
        self._next_id = 0
        self._end_id = 0
        # hash() of every sha256 added, what the carry-over skips: 8 bytes a shape, where a
        # set of the strings held about 140 (1.4 GiB at 10M shapes). Two files whose
        # hashes collide (odds of about 1 in 2**64 / shapes) would lose the carried one.
        self._sha_hashes = array("q")
        self._state = "building"
        self._lock = threading.Lock()

    def add(
        self,
        vector: np.ndarray,
        *,
        name: str,
        sha256: str,
        source: str,
        label: str | None = None,
        thumbnail: bytes | None = None,
    ) -> int:
        unit = normalize(vector, self.dim)
        with self._lock:
            self._check_building()
            if self._next_id == self._end_id:
                self._next_id = self._counters.allocate("shape", _ID_BLOCK)
                self._end_id = self._next_id + _ID_BLOCK
            now = time.time()
            record = ShapeRecord(
                self._next_id, name, label, sha256, source, self.model_id, now, now
            )
            self._next_id += 1
            self._pending.append((record, unit, thumbnail))
            self._sha_hashes.append(hash(sha256))
            if len(self._pending) >= 1024:
                self._flush(built=True)
            return record.id

    def _flush(self, *, built: bool) -> None:
        """Write the pending shapes: their rows, their adds to the generation's log (made
        durable by the commit) and, unless the factory waits for its training, the index."""
        if not self._pending:
            return
        records = [r for r, _, _ in self._pending]
        thumbnails = {r.id: png for r, _, png in self._pending if png}
        ids = np.array([r.id for r in records], dtype=np.int64)
        vectors = np.stack([v for _, v, _ in self._pending])
        self._gen.store.insert(records, built=built, thumbnails=thumbnails)
        self._gen.log.append(
            b"".join(encode(OP_ADD, i, v) for i, v in zip(ids.tolist(), vectors, strict=True)),
            sync=False,
        )
        self._gen.log_records += len(records)
        if not self._gen.vectors.staged:
            self._gen.vectors.add(ids, vectors)
        self._pending = []

    def _check_building(self) -> None:
        if self._state != "building":
            raise ShapeIndexError(f"this index builder is already {self._state}")

    def commit(self) -> None:
        """Make the new generation live; readers see the old one or the new one, never half."""
        with self._lock:
            self._check_building()
            self._flush(built=True)
            with self._file_lock.held():
                live_name = _read_current(self._dir)
                self._carry_over(self._dir / live_name)
                self._gen.log.sync()  # every shape of the new generation, durable
                if self._gen.vectors.staged:  # IVF, PQ, SQ: trained now, from the log
                    self._gen.vectors = self._trained_from_log()
                    self._gen.store.set_info({TRAINED: "yes"})
                self._gen.snapshot()
                self._gen.store.make_durable()
                self._gen.close()
                os.unlink(self._path / "BUILDING")
                fsync_dir(self._path)
                write_atomically(self._dir / "CURRENT", f"{self.generation}\n".encode())
                self._remove_old_generations(keep={self.generation, live_name})
            self._release("committed")

    def _trained_from_log(self) -> VectorSet:
        """The factory trained on a sample of the log's vectors, then every vector streamed
        in from the log: a commit holds the trained index, never every vector in fp32."""
        adds = AddsFile(self._gen.log.path, self.dim)
        sample = adds.take(training_sample(len(adds)))[1]
        return trained_vectors(self.dim, self.factory, sample, adds.blocks)

    def _carry_over(self, live_path: Path) -> None:
        """Copy the live generation's shapes added during the build (or all of them)."""
        live = _Generation(live_path, self.model_id, self.dim, "Flat")
        try:
            records = (
                live.store.all() if self._keep_existing else live.store.added_since(self._first_id)
            )
            rebuilt = np.isin(
                np.fromiter((hash(r.sha256) for r in records), np.int64, len(records)),
                np.frombuffer(self._sha_hashes, dtype=np.int64),
            )
            records = [r for r, done in zip(records, rebuilt.tolist(), strict=True) if not done]
            thumbnails = live.store.thumbnails([r.id for r in records])
            for record in records:
                vector = live.vectors.vector(record.id)
                if vector is not None:
                    self._pending.append((record, vector, thumbnails.get(record.id)))
            self._flush(built=False)
        finally:
            live.close()

    def _remove_old_generations(self, keep: set[str]) -> None:
        for path in self._dir.glob("gen-*"):
            if path.name not in keep and not (path / "BUILDING").exists():
                shutil.rmtree(path, ignore_errors=True)

    def abort(self) -> None:
        """Drop the new generation; the live one keeps serving."""
        with self._lock:
            if self._state != "building":
                return
            self._gen.close()
            shutil.rmtree(self._path, ignore_errors=True)
            self._release("aborted")

    def _release(self, state: str) -> None:
        self._state = state
        os.close(self._building_fd)
        self._counters.close()
        self._file_lock.close()

    def __enter__(self) -> IndexBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
