"""The index's atomic writes: a reader (or a crash) sees a file's old bytes or its new ones.

index/ imports nothing of ours, so it keeps these beside renderer.files rather than
importing them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content into; on leaving the block it is fsync'd and
    renamed over `path` (an error leaves `path` as it was). Large content is written as it
    is produced, never held whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the file's content by `data`, atomically."""
    with atomic_file(path) as out:
        out.write(data)
