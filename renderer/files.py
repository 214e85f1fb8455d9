"""Writing files so that a reader (or a crash) never sees half of one.

The one atomic write of every package above the renderer (gmvit's checkpoints and view
stores, the app's thumbnails, job parts and uploads). index/ keeps its own for its log and
snapshots: it imports nothing of ours.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(
    path: str | os.PathLike, data: bytes | Callable[[BinaryIO], object], *, durable: bool = True
) -> None:
    """Write `data` (bytes, or a function writing to the open file) to a temporary file
    beside `path`, then rename it over `path`. With `durable`, the file and its folder are
    fsync'd, so the new content survives a power cut once this returns; without, a crash
    may leave the old content, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                out.write(data)
            else:
                data(out)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
