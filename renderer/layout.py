"""The ModelNet folder layout: the one reading of a folder of meshes, for gmvit's data
sets, the server's reindex jobs and the command line alike.

    <root>/<class>/{train,test}/<file>   a labelled mesh of one split
    <root>/<class>/<file>                a labelled mesh, no split
    <root>/<file>                        a mesh without label or split

Deeper folders are fine: a file's class is the folder right above it (above its split
folder, if it has one). A file is a mesh when the renderer knows its extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from renderer.formats import accepted_extensions

SPLITS: tuple[str, ...] = ("train", "test")
MESH_EXTENSIONS: tuple[str, ...] = tuple(accepted_extensions())
# Files a mesh names beside it: glTF buffers and images, OBJ materials. Not meshes, but
# they travel with their mesh (an upload) and are not failures when they do.
SIDE_FILE_EXTENSIONS = frozenset(
    {".bin", ".mtl", ".png", ".jpg", ".jpeg", ".webp", ".ktx2", ".tga", ".bmp", ".dds"}
)


@dataclass(frozen=True)
class MeshFile:
    path: Path
    label: str | None  # the class folder's name
    split: str | None  # "train", "test", or None outside split folders


def is_mesh_file(path: Path) -> bool:
    return path.suffix.lower() in MESH_EXTENSIONS and path.is_file()


def is_side_file(path: Path) -> bool:
    return path.suffix.lower() in SIDE_FILE_EXTENSIONS and path.is_file()


def split_classes(root: Path) -> list[str]:
    """The classes of `<root>/<class>/{train,test}/`: the sorted names of the folders of
    `root` that hold a split folder."""
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SPLITS)
    )


def place(path: Path, root: Path) -> MeshFile:
    """Where a file under `root` sits in the layout."""
    parents = path.relative_to(root).parts[:-1]
    split = parents[-1] if parents and parents[-1] in SPLITS else None
    if split is not None:
        parents = parents[:-1]
    return MeshFile(path, parents[-1] if parents else None, split)


def mesh_files(root: str | Path) -> list[MeshFile]:
    """Every mesh file under `root` (sorted by path), placed in the layout."""
    root = Path(root)
    return [place(path, root) for path in sorted(root.rglob("*")) if is_mesh_file(path)]
