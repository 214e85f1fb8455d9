"""A mesh and the files it refers to (a glTF's .bin, an OBJ's .mtl, textures, LWO layers).

A mesh arrives alone (bytes), as a path (its folder holds its files), as several uploaded
files, or as a ZIP of them. `Bundle` gives a reader the main file and answers its requests
for the others by name, relative to the main file, confined: no absolute names, no URLs, no
`..` above the bundle's root, no link that leads out of the main file's folder. Everything
read counts against one byte budget, so the size limit applies to the whole.

This runs inside the parser worker (see `renderer.workers`): ZIP archives are opened there
too, under the worker's memory cap.
"""

from __future__ import annotations

import io
import os
import posixpath
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from renderer.errors import (
    FileTooLargeError,
    MalformedMeshError,
    MeshError,
    UnsupportedFormatError,
)
from renderer.formats import FORMATS_BY_EXTENSION, SUPPORTED, extension_of

MAX_MEMBERS = 10_000
_THREEMF_MODEL = "3d/3dmodel.model"
# Files an archiver adds that are never the mesh (macOS resource forks).
_JUNK_PREFIXES = ("__macosx/",)


def safe_name(name: str) -> str | None:
    """`name` as a relative POSIX path inside a bundle, or None when it would leave it
    (absolute, a drive letter, a URL, `..` above the root) or is empty."""
    name = name.replace("\\", "/")
    if not name or "\x00" in name or name.startswith("/") or "://" in name:
        return None
    if len(name) > 1 and name[1] == ":":  # C:/...
        return None
    normal = posixpath.normpath(name)
    if normal in (".", "") or normal == ".." or normal.startswith("../"):
        return None
    return normal


@dataclass
class Bundle:
    """The main file of a mesh, and where the files it names are found.

    `files` holds the other files of an upload (names relative to the bundle's root);
    `folder` is the main file's folder on disk for a load from a path. At most one of the
    two. `budget` is the number of bytes every file read together may have.
    """

    name: str  # the main file's name, relative to the bundle's root
    data: bytes
    budget: int
    files: Mapping[str, bytes] | None = None
    folder: str | None = None
    read_bytes: int = 0

    def __post_init__(self) -> None:
        self.read_bytes = len(self.data)

    def read(self, reference: str) -> bytes | None:
        """The file the main file calls `reference` (a relative URI: percent-escapes
        decoded, relative to the main file's folder), or None."""
        if reference.startswith("data:"):
            return None
        base = posixpath.dirname(self.name)
        return self.open(posixpath.join(base, unquote(reference).replace("\\", "/")))

    def open(self, name: str) -> bytes | None:
        """The file at `name` from the bundle's root, or None if it is missing or would
        leave the bundle."""
        safe = safe_name(name)
        if safe == self.name:
            return self.data
        if safe is None:
            return None
        if self.files is not None:
            data = self._from_files(safe)
        elif self.folder is not None:
            data = self._from_folder(safe)
        else:
            return None  # bytes alone: there is nothing beside them
        if data is None:
            return None
        self.read_bytes += len(data)
        if self.read_bytes > self.budget:
            raise FileTooLargeError(
                f"the mesh and its files are over {self.read_bytes / 2**20:.1f} MiB; "
                f"the limit is {self.budget / 2**20:.1f} MiB"
            )
        return data

    def _from_files(self, name: str) -> bytes | None:
        if name in self.files:
            return self.files[name]
        # Names differ in case between the tool that wrote a file and the disk it went
        # through, and uploads in several parts lose their folders: accept either when
        # exactly one file fits.
        folded = [other for other in self.files if other.lower() == name.lower()]
        if len(folded) == 1:
            return self.files[folded[0]]
        base = posixpath.basename(name)
        same = [other for other in self.files if posixpath.basename(other) == base]
        if len(same) == 1:
            return self.files[same[0]]
        return None

    def _from_folder(self, name: str) -> bytes | None:
        root = os.path.realpath(self.folder)
        path = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            return None  # a link out of the folder, or nothing there
        size = os.path.getsize(path)
        if self.read_bytes + size > self.budget:
            self.read_bytes += size
            raise FileTooLargeError(
                f"the mesh and its files are over {self.read_bytes / 2**20:.1f} MiB; "
                f"the limit is {self.budget / 2**20:.1f} MiB"
            )
        with open(path, "rb") as file:
            return file.read(self.budget + 1)


def main_file(names: list[str], main: str | None = None) -> str:
    """Which of an upload's files is the mesh: `main` if given, else the only file with a
    mesh extension."""
    if main is not None:
        name = safe_name(main)
        if name not in names:
            raise UnsupportedFormatError(f"the upload has no file named {main!r}")
        return name
    meshes = [
        name
        for name in names
        if extension_of(name) in FORMATS_BY_EXTENSION
        and not name.lower().startswith(_JUNK_PREFIXES)
        and not posixpath.basename(name).startswith("._")
    ]
    if len(meshes) == 1:
        return meshes[0]
    if not meshes:
        listed = ", ".join(sorted(names)[:5]) or "nothing"
        raise UnsupportedFormatError(
            f"the upload holds no mesh file ({listed}); send {SUPPORTED} with its files"
        )
    listed = ", ".join(sorted(meshes)[:5])
    raise UnsupportedFormatError(
        f"the upload holds {len(meshes)} meshes ({listed}); send one mesh with its files"
    )


def zip_names(data: bytes, name: str) -> list[str]:
    """The member names of a ZIP archive (read from its directory, nothing unpacked)."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        what = "3MF file" if extension_of(name) == ".3mf" else "ZIP archive"
        raise MalformedMeshError(f"this {what} is truncated or damaged") from None
    if len(names) > MAX_MEMBERS:
        raise UnsupportedFormatError(
            f"this ZIP archive holds {len(names):,} files; the limit is {MAX_MEMBERS:,}"
        )
    return names


def is_3mf(names: list[str]) -> bool:
    return any(name.lower().lstrip("/") == _THREEMF_MODEL for name in names)


def unzip(data: bytes, budget: int) -> dict[str, bytes]:
    """The files of a ZIP archive by safe name (unsafe names are left out); the whole
    unpacked size counts against `budget`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
        declared = sum(info.file_size for info in members)
        if declared > budget:
            raise FileTooLargeError(
                f"this ZIP archive unpacks to {declared / 2**20:.1f} MiB; "
                f"the limit is {budget / 2**20:.1f} MiB"
            )
        files = {}
        for info in members:
            name = safe_name(info.filename)
            if name is not None:
                files[name] = archive.read(info)
        return files
    except MeshError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise MalformedMeshError(f"this ZIP archive is damaged ({exc})"[:200]) from None
