"""The append log of one index generation: every add and remove since the last snapshot.

A record is `<u32 payload length><u32 crc32 of payload><payload>`, the payload being
`<u8 op><i64 shape id>` followed, for an add, by the L2-normalised float32 vector. Each
append is written and fsync'd before the caller commits the metadata row, so a record that
reads back intact was fully written; a record cut short by a crash (torn tail) fails its
length or checksum and ends the replay there.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OP_ADD = 1
OP_REMOVE = 2

_HEADER = struct.Struct("<II")
_OP = struct.Struct("<Bq")


@dataclass(frozen=True)
class LogEntry:
    op: int
    shape_id: int
    vector: np.ndarray | None


def encode(op: int, shape_id: int, vector: np.ndarray | None = None) -> bytes:
    payload = _OP.pack(op, shape_id)
    if vector is not None:
        payload += np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_log(path: Path, dim: int, start: int = 0) -> tuple[list[LogEntry], int]:
    """The intact records from byte `start` on, and the offset just after the last one."""
    try:
        data = path.read_bytes()[start:]
    except FileNotFoundError:
        return [], start
    add_size = _OP.size + 4 * dim
    entries: list[LogEntry] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(payload) != length or length < _OP.size or zlib.crc32(payload) != crc:
            break
        op, shape_id = _OP.unpack_from(payload)
        if op == OP_ADD and length == add_size:
            vector = np.frombuffer(payload, dtype="<f4", offset=_OP.size).astype(np.float32)
        elif op == OP_REMOVE and length == _OP.size:
            vector = None
        else:
            break
        entries.append(LogEntry(op, shape_id, vector))
        pos += _HEADER.size + length
    return entries, start + pos


class AppendLog:
    """An fsync'd append-only file; `size` is where the next record starts."""

    def __init__(self, path: Path, valid_size: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.cut(valid_size)

    def cut(self, valid_size: int) -> None:
        """Drop a torn tail after `valid_size`: new records follow the last intact one."""
        if os.fstat(self._fd).st_size != valid_size:
            os.ftruncate(self._fd, valid_size)
            os.fsync(self._fd)
        self.size = valid_size

    def append(self, record: bytes) -> None:
        os.pwrite(self._fd, record, self.size)
        os.fsync(self._fd)
        self.size += len(record)

    def truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
