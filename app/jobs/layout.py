"""Where a job's files are: the folder it reads (confined to the allowed roots), the
uploaded batch it was given, and its own working folder under DATA_DIR/jobs/<id>/."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path, PurePosixPath

from renderer.files import write_atomic
from renderer.layout import mesh_files

__all__ = [
    "FolderRefused",
    "JobFolders",
    "mesh_files",
    "resolve_folder",
    "save_upload",
    "upload_path",
]

# A file name longer than this (in bytes) cannot be stored on common filesystems.
MAX_NAME_BYTES = 255


class FolderRefused(ValueError):
    """A reindex folder outside the allowed roots, missing, or not a folder (HTTP 403)."""


def resolve_folder(folder: str | Path, allowed_roots: list[Path]) -> Path:
    """`folder` with symlinks and `..` resolved, if it lies under one of the allowed roots."""
    if not allowed_roots:
        raise FolderRefused(
            "reindexing server-side folders is disabled: set GMVIT_ALLOWED_ROOTS on the server"
        )
    if "\x00" in str(folder):
        raise FolderRefused("a folder name cannot contain a NUL character")
    resolved = Path(folder).expanduser().resolve()
    roots = [Path(root).expanduser().resolve() for root in allowed_roots]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise FolderRefused(
            f"{folder} is outside the folders this server may read (GMVIT_ALLOWED_ROOTS)"
        )
    if not resolved.is_dir():
        raise FolderRefused(f"{folder} is not a folder on the server")
    return resolved


def upload_path(index: int, filename: str | None) -> PurePosixPath:
    """A safe relative path for an uploaded file of a batch: its folders kept (they carry
    the labels), `..`, absolute parts and empty names dropped; ValueError for a name no
    filesystem can store (NUL, a part over 255 bytes)."""
    name = (filename or "").replace("\\", "/")
    if "\x00" in name:
        raise ValueError(f"file {index}: a file name cannot contain a NUL character")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".", "..", "/")]
    for part in parts:
        if len(part.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"file {index}: a name in {name[:80]!r}... is over 255 bytes")
    return PurePosixPath(*parts) if parts else PurePosixPath(f"file-{index:05d}")


def save_upload(root: Path, number: int, filename: str | None, data: bytes) -> None:
    """Store file `number` of an uploaded batch under `root` (never outside it). A name
    that clashes with a file or folder already stored gets the file's number in front."""
    relative = upload_path(number, filename)
    target = root / relative
    while target.exists() or any(parent.is_file() for parent in target.parents):
        relative = PurePosixPath(f"{number}-{relative.as_posix().replace('/', '_')}")
        target = root / relative
    write_atomic(target, data, durable=False)


class JobFolders:
    """DATA_DIR/jobs/<id>/: a job's uploaded files, parts and thumbnails, removed when the
    job ends. Folders of in-process jobs carry a lock held by the process running them, so
    a restarted server (or another replica on the same data dir) removes only the folders
    of jobs that died with their process, never those of a job still running."""

    OWNER = ".in-process"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, int] = {}

    def path(self, job_id: str) -> Path:
        return self.root / job_id

    def create(self, job_id: str, *, in_process: bool) -> Path:
        folder = self.path(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        if in_process and job_id not in self._held:
            fd = os.open(folder / self.OWNER, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held[job_id] = fd
        return folder

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.path(job_id), ignore_errors=True)
        fd = self._held.pop(job_id, None)
        if fd is not None:
            os.close(fd)

    def sweep_dead_in_process(self) -> list[str]:
        """Remove the folders of in-process jobs whose process is gone; their ids."""
        swept = []
        for marker in self.root.glob(f"*/{self.OWNER}"):
            fd = os.open(marker, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            finally:
                os.close(fd)
            shutil.rmtree(marker.parent, ignore_errors=True)
            swept.append(marker.parent.name)
        return swept
