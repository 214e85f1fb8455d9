"""The append log of one index generation: every add and remove of the generation's life.

The log is the generation's history, never truncated by a snapshot (the snapshot only saves
replaying it), so a lost or damaged snapshot is rebuilt from the log and every vector lives
in two files.

File: a header `GMVLOG01` + a 16-byte epoch (random, new whenever the file is rewritten, so
a snapshot can tell which log its offset refers to), then records. A record is
`<u32 payload length><u32 crc32 of payload><payload>`, the payload being `<u8 op><i64 shape
id>` followed, for an add, by the L2-normalised float32 vector. Each append is written and
fsync'd before the caller commits the metadata row, so a record that reads back intact was
fully written; a record cut short by a crash (torn tail) fails its length or checksum.

Logs written before the header existed (no magic) are read as "legacy": their records start
at byte 0 and a legacy snapshot covers everything before them.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import ShapeIndexError
from index.files import atomic_file

OP_ADD = 1
OP_REMOVE = 2

MAGIC = b"GMVLOG01"
HEADER_SIZE = len(MAGIC) + 16

_RECORD = struct.Struct("<II")
_OP = struct.Struct("<Bq")
_READ_CHUNK = 8 * 2**20
# Records a scan hands its `apply` at a time.
APPLY_BATCH = 4096


@dataclass(frozen=True)
class LogEntry:
    op: int
    shape_id: int
    vector: np.ndarray | None
    offset: int  # where its record starts in the file


@dataclass(frozen=True)
class LogScan:
    """What reading a log from some offset found: every intact record (or how many, where
    they went to the scan's `apply` instead), also past damage."""

    entries: list[LogEntry]  # empty where they went to `apply`
    end: int  # the offset just after the last intact record
    size: int  # the file's size
    damaged: list[int]  # offsets of bad records (a run of bad bytes counts once)
    applied: int = 0  # intact records handed to `apply`

    @property
    def count(self) -> int:
        """The intact records read."""
        return len(self.entries) + self.applied

    @property
    def torn_tail(self) -> bool:
        """Bad bytes only after the last intact record: an append cut short by a crash."""
        return self.end < self.size and not self.damaged_inside

    @property
    def damaged_inside(self) -> bool:
        """Bad bytes with intact records after them: not a crash, the file was damaged."""
        return bool(self.damaged) and self.damaged[0] < self.end


def encode(op: int, shape_id: int, vector: np.ndarray | None = None) -> bytes:
    payload = _OP.pack(op, shape_id)
    if vector is not None:
        payload += np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


def read_header(path: Path) -> tuple[bytes | None, int]:
    """(epoch, offset of the first record); epoch None for a legacy or missing log."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEADER_SIZE)
    except FileNotFoundError:
        return None, 0
    if len(head) == HEADER_SIZE and head.startswith(MAGIC):
        return head[len(MAGIC) :], HEADER_SIZE
    return None, 0


def _decode(payload: bytes, dim: int, offset: int) -> LogEntry | None:
    op, shape_id = _OP.unpack_from(payload)
    if op == OP_ADD and len(payload) == _OP.size + 4 * dim:
        vector = np.frombuffer(payload, dtype="<f4", offset=_OP.size).astype(np.float32)
        return LogEntry(op, shape_id, vector, offset)
    if op == OP_REMOVE and len(payload) == _OP.size:
        return LogEntry(op, shape_id, None, offset)
    return None


def _add_record(dim: int) -> np.dtype:
    """An add record of `dim`-d vectors as a numpy record: every one has this size."""
    return np.dtype(
        [("length", "<u4"), ("crc", "<u4"), ("op", "u1"), ("id", "<i8"), ("vector", "<f4", dim)]
    )


def _parse_adds(data: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """`data`, a whole number of add-record sizes, as records, and which are intact adds
    (length, op and checksum hold)."""
    record = _add_record(dim)
    records = np.frombuffer(data, dtype=record)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(len(records), record.itemsize)
    good = (records["length"] == record.itemsize - _RECORD.size) & (records["op"] == OP_ADD)
    crcs = records["crc"].tolist()
    good &= np.fromiter(
        (zlib.crc32(row[_RECORD.size :]) == crc for row, crc in zip(raw, crcs, strict=True)),
        dtype=bool,
        count=len(records),
    )
    return records, good


def _records(path: Path, start: int, dim: int) -> Iterator[tuple[int, LogEntry | None]]:
    """(offset, entry) of each record from `start`, entry None where the record is bad;
    after a bad record, the next offsets at which an intact record parses are tried."""
    max_payload = _OP.size + 4 * dim
    with open(path, "rb") as file:
        file.seek(start)
        buffer = b""
        base = start
        eof = False
        pos = 0
        while True:
            if len(buffer) - pos < _RECORD.size + max_payload and not eof:
                chunk = file.read(_READ_CHUNK)
                eof = not chunk
                buffer = buffer[pos:] + chunk
                base += pos
                pos = 0
            if len(buffer) - pos < _RECORD.size:
                return
            length, crc = _RECORD.unpack_from(buffer, pos)
            payload = buffer[pos + _RECORD.size : pos + _RECORD.size + length]
            entry = None
            if _OP.size <= length <= max_payload and len(payload) == length:
                if zlib.crc32(payload) == crc:
                    entry = _decode(payload, dim, base + pos)
            yield base + pos, entry
            pos += _RECORD.size + length if entry is not None else 1


def scan_log(
    path: Path,
    dim: int,
    start: int | None = None,
    *,
    apply: Callable[[list[LogEntry]], None] | None = None,
) -> LogScan:
    """Every intact record from `start` (default: the first record), skipping over bad
    bytes to the next intact record, and where the bad bytes were. With `apply`, the
    records go to it in order, APPLY_BATCH at a time, and are not kept: a whole log is
    replayed without holding it (20 GiB at 10M vectors of 512-d)."""
    if not path.exists():
        return LogScan([], start or 0, start or 0, [])
    size = path.stat().st_size
    first = read_header(path)[1] if start is None else start
    entries: list[LogEntry] = []
    applied = 0
    end = first
    damaged: list[int] = []
    in_damage = False
    for offset, entry in _records(path, first, dim):
        if entry is None:
            if not in_damage:
                damaged.append(offset)
            in_damage = True
            continue
        in_damage = False
        entries.append(entry)
        end = offset + _RECORD.size + _OP.size + (4 * dim if entry.vector is not None else 0)
        if apply is not None and len(entries) == APPLY_BATCH:
            apply(entries)
            applied, entries = applied + len(entries), []
    if apply is not None and entries:
        apply(entries)
        applied, entries = applied + len(entries), []
    return LogScan(entries, end, size, damaged, applied)


def iter_log(path: Path, dim: int) -> Iterator[LogEntry]:
    """Every intact record from the first, one at a time (bad bytes skipped, as by
    `scan_log`): a whole log read without holding it."""
    if path.exists():
        for _, entry in _records(path, read_header(path)[1], dim):
            if entry is not None:
                yield entry


def final_adds(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray, LogScan]:
    """(ids, offsets) of the shapes whose last record in the log is an add (what replaying
    the whole log leaves), ids sorted, and the scan that found them. 17 bytes a record in
    memory, not the 2 KiB of its vector."""
    ids, offsets, adds = array("q"), array("q"), array("b")

    def note(entries: list[LogEntry]) -> None:
        ids.extend(entry.shape_id for entry in entries)
        offsets.extend(entry.offset for entry in entries)
        adds.extend(entry.op == OP_ADD for entry in entries)

    scan = scan_log(path, dim, apply=note)
    # Each shape's first record in the reversed log is its last one.
    shapes, first = np.unique(np.frombuffer(ids, dtype=np.int64)[::-1], return_index=True)
    last = len(ids) - 1 - first
    added = np.frombuffer(adds, dtype=np.int8)[last] == 1
    return shapes[added], np.frombuffer(offsets, dtype=np.int64)[last[added]], scan


def read_added_vectors(path: Path, dim: int, offsets: np.ndarray) -> np.ndarray:
    """The vectors of the add records that start at these offsets (as a scan's entries give
    them), in the order asked, each record verified again; ShapeIndexError if one is not an
    intact add. Read in file order, each run of adjacent records in one call (up to
    APPLY_BATCH of them): a few of a large log's vectors without reading the rest, and all
    of them at the speed of reading it."""
    size = _add_record(dim).itemsize
    offsets = np.asarray(offsets, dtype=np.int64)
    order = np.argsort(offsets, kind="stable")
    ordered = offsets[order]
    gaps = np.flatnonzero(np.diff(ordered) != size) + 1
    cuts = np.union1d(gaps, np.arange(APPLY_BATCH, len(ordered), APPLY_BATCH))
    vectors = np.empty((len(offsets), dim), dtype=np.float32)
    with open(path, "rb") as file:
        for run in np.split(np.arange(len(ordered)), cuts):
            if not len(run):
                continue
            start = int(ordered[run[0]])
            data = os.pread(file.fileno(), len(run) * size, start)
            whole = len(data) // size
            records, good = _parse_adds(data[: whole * size], dim)
            if whole < len(run) or not good.all():
                bad = int(np.argmin(good)) if not good.all() else whole
                raise ShapeIndexError(f"{path}: no intact add record at byte {start + bad * size}")
            vectors[order[run]] = records["vector"]
    return vectors


def read_added_blocks(
    path: Path, dim: int, ids: np.ndarray, offsets: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of these shapes, each vector read from the add record at its offset
    (as `final_adds` gives them), in log order, APPLY_BATCH shapes at a time: a whole
    log's survivors streamed, never held."""
    in_log_order = np.argsort(offsets, kind="stable")
    for start in range(0, len(in_log_order), APPLY_BATCH):
        part = in_log_order[start : start + APPLY_BATCH]
        yield ids[part], read_added_vectors(path, dim, offsets[part])


def write_log(path: Path, entries: Iterable[tuple[int, np.ndarray]]) -> tuple[bytes, int]:
    """Write a new log holding one add per (id, vector), atomically (tmp, fsync, rename);
    returns its epoch and size."""
    epoch = uuid.uuid4().bytes
    with atomic_file(path) as out:
        out.write(MAGIC + epoch)
        for shape_id, vector in entries:
            out.write(encode(OP_ADD, int(shape_id), vector))
        size = out.tell()
    return epoch, size


class AddsFile:
    """A log that holds adds only (an IndexBuilder's, a compacted one), read by record
    number: every add record has the same size, so record i starts at a known offset. What
    a reindex commit trains on and streams into the trained index, never holding every
    vector at once. Each record read is verified; ShapeIndexError if one does not hold up."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._record = _add_record(dim)
        epoch, self._first = read_header(path)
        body = path.stat().st_size - self._first
        if epoch is None or body % self._record.itemsize:
            raise ShapeIndexError(f"{path} is not a log of {dim}-d adds only")
        self.count = body // self._record.itemsize

    def __len__(self) -> int:
        return self.count

    def blocks(self, size: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every record in order, at most `size` at a time."""
        with open(self.path, "rb") as file:
            file.seek(self._first)
            for start in range(0, self.count, size):
                want = min(size, self.count - start) * self._record.itemsize
                yield self._verified(file.read(want))

    def take(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the records at these record numbers (sorted: read in order)."""
        itemsize = self._record.itemsize
        with open(self.path, "rb") as file:
            data = b"".join(
                os.pread(file.fileno(), itemsize, self._first + int(n) * itemsize) for n in numbers
            )
        return self._verified(data)

    def _verified(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        if len(data) % self._record.itemsize:
            raise ShapeIndexError(f"{self.path} changed while it was read")
        records, good = _parse_adds(data, self.dim)
        if not good.all():
            raise ShapeIndexError(f"{self.path} holds a damaged or non-add record")
        return records["id"].astype(np.int64), records["vector"].astype(np.float32)


class AppendLog:
    """An fsync'd append-only file; `size` is where the next record starts. Opening reads
    its header and size only: the file is not created or changed until a write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self.size = path.stat().st_size if path.exists() else 0
        self.epoch, self.first_record = read_header(path)

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def cut(self, valid_size: int) -> None:
        """Drop a torn tail after `valid_size`: new records follow the last intact one."""
        if self.size != valid_size or os.fstat(self._open()).st_size != valid_size:
            os.ftruncate(self._open(), valid_size)
            os.fsync(self._open())
        self.size = valid_size

    def append(self, records: bytes, *, sync: bool = True) -> None:
        """Write `records` at the end; with `sync`, durable once this returns (else once
        `sync()` has been called: a builder's writes, acknowledged only at its commit)."""
        os.pwrite(self._open(), records, self.size)
        if sync:
            os.fsync(self._fd)
        self.size += len(records)

    def sync(self) -> None:
        os.fsync(self._open())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
