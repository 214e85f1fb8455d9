"""ShapeIndex: a durable, multi-process FAISS index of shape descriptors with metadata.

Layout under `root` (the app passes GMVIT_DATA_DIR/index)::

    root/<model-slug>/MODEL             the model id whose descriptors live here
    root/<model-slug>/LOCK              flock'd by every writer (any process on this host)
    root/<model-slug>/counters.sqlite3  shape ids and generation numbers, never reused
    root/<model-slug>/CURRENT           "gen-000007": the live generation, replaced atomically
    root/<model-slug>/gen-000007/
        meta.sqlite3                    shapes(id, name, label, sha256, source, model_id,
                                        added_at, updated_at) + info(model_id, dim, factory)
        vectors.faiss                   snapshot: FAISS IDMap2,<factory> (tmp, fsync, rename)
        log                             adds and removes since that snapshot (fsync'd)
        BUILDING                        only while an IndexBuilder is writing the generation

Commit discipline. The SQLite row is the commit point; the vectors follow it:
- add: allocate an id, append the vector to the log and fsync, then INSERT the row and
  commit (WAL, synchronous=FULL). Only then is the add acknowledged.
- remove: DELETE the row and commit, then append a remove record to the log.
- open: load the snapshot, replay the log up to its last intact record (a torn tail is cut
  off), then reconcile with SQLite: vectors without a row (an add that crashed before its
  commit, or a remove that crashed before its log record) are dropped. A row without a
  vector cannot happen (its vector was fsync'd first); one found anyway is deleted.
- snapshot: write vectors.faiss to a temporary file, fsync, rename, fsync the directory,
  then truncate the log. Replaying a log whose records are already in the snapshot is
  harmless: ids are never reused, so a present id is skipped.

Removal. Flat removes vectors for real. HNSW cannot: its removed ids are tombstones that
every search filters out with a FAISS IDSelector, and the next snapshot re-adds the live
vectors to a fresh graph. Index types that need training (IVF, PQ) are refused.

Label filter. A label held by at least a quarter of the shapes is over-fetched (k times
2 x total/matching, growing 4x until k match) and filtered. For a rarer label, its ids come
from SQLite: up to EXACT_SCAN_MAX of them are scored exactly, more go to FAISS as an
IDSelectorBatch, and a short answer (HNSW walking past a sparse filter) falls back to exact
scoring. Either way k hits come back whenever k matching shapes exist.

Several processes. Writers (ShapeIndex.add/remove/snapshot, IndexBuilder.commit) hold the
LOCK flock, so writes of all processes on one host are serialised; on a shared data dir
across machines the filesystem must honour flock (local disks, NFSv4 do). Every call
compares the stat of CURRENT, of the log and of the snapshot with what this process last
saw (three stat calls); if another process wrote, the index catches up under the lock:
the new log tail is replayed, or the whole generation is reloaded when CURRENT changed
(a committed rebuild) or the snapshot was rewritten. `reload_if_changed()` does the same
check on demand. Threads share one ShapeIndex safely: every call holds its RLock.

Rebuilds. `rebuild()` returns an IndexBuilder writing a new generation beside the live
one, with ids from the same counter. `commit()` takes the lock, copies over the shapes
that were added to the live generation while the build ran (all of them with
keep_existing=True), writes the snapshot, and renames CURRENT: a reader sees the old
generation or the new one, never half. `abort()` (or a builder whose process died: its
BUILDING flock is free, and the next open removes it) leaves the old generation serving.
The generation replaced by a commit is kept until the following commit, for readers that
still have it open.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import IndexError_, ModelMismatchError
from index.log import OP_ADD, OP_REMOVE, AppendLog, encode, read_log
from index.store import Counters, MetadataStore, ShapeRecord
from index.vectors import VectorSet, fsync_dir, make_faiss_index, normalize, write_atomically

log = logging.getLogger(__name__)

# A log longer than this many records is folded into a snapshot by the next add.
SNAPSHOT_EVERY = 10_000
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


def _read_current(model_dir: Path) -> str:
    return (model_dir / "CURRENT").read_text().strip()


class _Generation:
    """One generation directory opened for reading and writing (caller holds the locks)."""

    def __init__(
        self, path: Path, model_id: str, dim: int, factory: str, *, durable: bool = True
    ) -> None:
        self.path = path
        self.dim = dim
        self.store = MetadataStore(path / "meta.sqlite3", durable=durable)
        info = self.store.info()
        if not info:
            self.store.set_info({"model_id": model_id, "dim": str(dim), "factory": factory})
            info = self.store.info()
        if info["model_id"] != model_id:
            raise ModelMismatchError(str(path), info["model_id"], model_id)
        if int(info["dim"]) != dim:
            raise IndexError_(f"the index at {path} holds {info['dim']}-d vectors, not {dim}-d")
        self.factory = info["factory"]
        for stale in path.glob(".vectors.faiss.tmp-*"):
            stale.unlink()  # a snapshot cut short by a crash (we hold the lock)
        snapshot = path / "vectors.faiss"
        if snapshot.exists():
            self.vectors = VectorSet.read(snapshot, dim, self.factory)
        else:
            self.vectors = VectorSet(dim, self.factory)
        entries, valid_size = read_log(path / "log", dim)
        self.log = AppendLog(path / "log", valid_size)
        self.log_records = len(entries)
        self._apply(entries)
        self._reconcile()

    def _apply(self, entries: list) -> None:
        for entry in entries:
            ids = np.array([entry.shape_id], dtype=np.int64)
            if entry.op == OP_ADD:
                self.vectors.add(ids, entry.vector.reshape(1, -1))
            elif entry.op == OP_REMOVE:
                self.vectors.remove(ids)

    def _reconcile(self) -> None:
        rows = self.store.ids()
        present = self.vectors.ids()
        orphans = np.setdiff1d(present, rows)
        if len(orphans):
            self.vectors.remove(orphans)
        missing = np.setdiff1d(rows, present)
        if len(missing):
            log.warning("%s: %d metadata rows had no vector; removed", self.path, len(missing))
            self.store.delete(missing.tolist())

    def catch_up(self) -> None:
        """Replay what another process appended to the log since we last read it."""
        entries, valid_size = read_log(self.path / "log", self.dim, start=self.log.size)
        self.log.cut(valid_size)
        self.log_records += len(entries)
        # Vectors of adds whose row is missing belong to a writer that crashed before its
        # commit (it held the lock we hold now): skip them, as a full open would.
        rows = set(self.store.get_many([e.shape_id for e in entries if e.op == OP_ADD]))
        self._apply([e for e in entries if e.op != OP_ADD or e.shape_id in rows])

    def add(self, record: ShapeRecord, vector: np.ndarray) -> None:
        self.log.append(encode(OP_ADD, record.id, vector))
        self.store.insert([record])
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
        self.vectors.write(self.path / "vectors.faiss")
        self.log.truncate()
        self.log_records = 0

    def state_key(self) -> tuple:
        return (_stat_key(self.path / "log"), _stat_key(self.path / "vectors.faiss"))

    def close(self) -> None:
        self.log.close()
        self.store.close()


class ShapeIndex:
    """Shapes (descriptor + metadata) of one model. Create with `ShapeIndex.open`."""

    def __init__(self, model_dir: Path, model_id: str, dim: int, factory: str) -> None:
        self.model_id = model_id
        self.dim = dim
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
    ) -> ShapeIndex:
        if not model_id or not model_id.strip():
            raise IndexError_("a model id is required to open an index")
        if dim < 1:
            raise IndexError_(f"the descriptor dimension must be positive, got {dim}")
        make_faiss_index(dim, factory)  # refuses unusable factories before touching disk
        model_dir = Path(root) / model_slug(model_id)
        model_dir.mkdir(parents=True, exist_ok=True)
        return cls(model_dir, model_id, dim, factory)

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
        if not (self._dir / "CURRENT").exists():
            name = f"gen-{self._counters.allocate('generation'):06d}"
            (self._dir / name).mkdir()
            _Generation(self._dir / name, self.model_id, self.dim, self._requested_factory).close()
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
        self._remember()

    def _remember(self) -> None:
        self._seen = (_stat_key(self._dir / "CURRENT"), *self._gen.state_key())

    def _current_key(self) -> tuple:
        return (_stat_key(self._dir / "CURRENT"), *self._gen.state_key())

    def _catch_up(self) -> None:
        """Bring this process's view up to date with the disk; the caller holds the lock."""
        key = self._current_key()
        if key == self._seen:
            return
        current, log_key, snapshot_key = key
        if (
            current == self._seen[0]
            and snapshot_key == self._seen[2]
            and log_key is not None
            and log_key[1] >= self._gen.log.size
        ):
            self._gen.catch_up()
            self._remember()
        else:
            self._load()

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
            raise IndexError_("the index is closed")

    # -- writes ----------------------------------------------------------------------

    def add(
        self,
        vector: np.ndarray,
        *,
        name: str,
        sha256: str,
        source: str = "upload",
        label: str | None = None,
    ) -> ShapeRecord:
        """Add one shape; it is on disk (and survives kill -9) once this returns."""
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
            gen.add(record, unit)
            self._wrote_log = True
            if gen.log_records >= SNAPSHOT_EVERY:
                gen.snapshot()
        return record

    def remove(self, shape_id: int) -> bool:
        with self._writing() as gen:
            removed = gen.remove(int(shape_id))
            self._wrote_log |= removed
            return removed

    def snapshot(self) -> None:
        """Fold the log into vectors.faiss (written atomically) and truncate the log."""
        with self._writing() as gen:
            gen.snapshot()

    def close(self) -> None:
        with self._lock:
            if self._gen is None:
                return
            with self._file_lock.held():
                if self._wrote_log:
                    self._catch_up()
                    if self._gen.log_records:
                        self._gen.snapshot()
                self._gen.close()
                self._gen = None
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
            raise IndexError_(f"k must be at least 1, got {k}")
        query = normalize(vector, self.dim)
        with self._reading() as gen:
            if label is None:
                pairs = gen.vectors.search(query, k, exclude=exclude)
            else:
                pairs = self._search_label(gen, query, k, label, exclude)
            records = gen.store.get_many([i for i, _ in pairs])
        return [SearchHit(i, score, records[i]) for i, score in pairs if i in records]

    @staticmethod
    def _search_label(
        gen: _Generation, query: np.ndarray, k: int, label: str, exclude: int | None
    ) -> list[tuple[int, float]]:
        """A label held by a large share of the shapes is cheapest to over-fetch and filter;
        a rarer one goes to FAISS as the set of its ids (or is scored exactly)."""
        matching = gen.store.count(label=label)
        total = len(gen.vectors)
        if matching * 4 >= total:
            fetch = k * 2 * -(-total // max(matching, 1))
            while True:
                pairs = gen.vectors.search(query, min(fetch, total), exclude=exclude)
                labels = gen.store.get_many([i for i, _ in pairs])
                hits = [(i, s) for i, s in pairs if i in labels and labels[i].label == label]
                if len(hits) >= k:
                    return hits[:k]
                if fetch >= total:
                    break
                fetch *= 4
        return gen.vectors.search(query, k, allowed=gen.store.ids(label=label), exclude=exclude)

    def list(
        self, *, label: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[ShapeRecord]:
        if offset < 0 or limit < 0:
            raise IndexError_("offset and limit must not be negative")
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

    def rebuild(self, *, keep_existing: bool = False) -> IndexBuilder:
        """A builder for a new generation, with the factory given to `open`."""
        with self._lock:
            self._check_open()
            return IndexBuilder(
                self._dir, self.model_id, self.dim, self._requested_factory, keep_existing
            )


class IndexBuilder:
    """Writes a new generation beside the live one; `commit` swaps it in atomically.

    The builder writes without fsync per shape (nothing is acknowledged before commit);
    `commit` makes everything durable before CURRENT points at it.
    """

    def __init__(
        self, model_dir: Path, model_id: str, dim: int, factory: str, keep_existing: bool
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.factory = factory
        self._dir = model_dir
        self._keep_existing = keep_existing
        self._file_lock = _FileLock(model_dir / "LOCK")
        self._counters = Counters(model_dir / "counters.sqlite3")
        with self._file_lock.held():
            self._first_id = self._counters.peek("shape")
            self.generation = f"gen-{self._counters.allocate('generation'):06d}"
            self._path = model_dir / self.generation
            self._path.mkdir()
            self._building_fd = os.open(self._path / "BUILDING", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._building_fd, fcntl.LOCK_EX)
        self._gen = _Generation(self._path, model_id, dim, factory, durable=False)
        self._pending: list[tuple[ShapeRecord, np.ndarray]] = []
        self._next_id = 0
        self._end_id = 0
        self._shas: set[str] = set()
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
            self._pending.append((record, unit))
            self._shas.add(sha256)
            if len(self._pending) >= 1024:
                self._flush(built=True)
            return record.id

    def _flush(self, *, built: bool) -> None:
        if not self._pending:
            return
        records = [r for r, _ in self._pending]
        self._gen.store.insert(records, built=built)
        self._gen.vectors.add(
            np.array([r.id for r in records], dtype=np.int64),
            np.stack([v for _, v in self._pending]),
        )
        self._pending = []

    def _check_building(self) -> None:
        if self._state != "building":
            raise IndexError_(f"this index builder is already {self._state}")

    def commit(self) -> None:
        """Make the new generation live; readers see the old one or the new one, never half."""
        with self._lock:
            self._check_building()
            self._flush(built=True)
            with self._file_lock.held():
                live_name = _read_current(self._dir)
                self._carry_over(self._dir / live_name)
                self._gen.snapshot()
                self._gen.store.make_durable()
                self._gen.close()
                os.unlink(self._path / "BUILDING")
                fsync_dir(self._path)
                write_atomically(self._dir / "CURRENT", f"{self.generation}\n".encode())
                self._remove_old_generations(keep={self.generation, live_name})
            self._release("committed")

    def _carry_over(self, live_path: Path) -> None:
        """Copy the live generation's shapes added during the build (or all of them)."""
        live = _Generation(live_path, self.model_id, self.dim, "Flat")
        try:
            records = (
                live.store.all() if self._keep_existing else live.store.added_since(self._first_id)
            )
            for record in records:
                vector = live.vectors.vector(record.id)
                if record.sha256 not in self._shas and vector is not None:
                    self._pending.append((record, vector))
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
