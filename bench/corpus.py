"""Real meshes no one on this project made, converted once into a cached corpus: test data only.

Sources, all Debian packages that `scripts/setup.sh --bench` fetches with `apt-get download`
and unpacks under `var/bench-data/debian/<package>/` (nothing is downloaded at run time):

- `sweethome3d-furniture` (five .sh3f catalogs) and `sweethome3d` (its default catalog,
  inside sweethome3d.jar): furniture modelled by people outside the project. Pieces whose
  catalog name maps to one of the ten classes (`bench.sh3d.CLASS_RULES`) go to
  `furniture/<class>/`, the others to `shapes/sweethome3d/`; every piece is turned into our
  frame (Z up, front +Y, standing on z = 0).
- `libcgal-demo` (CGAL's data set: scanned and modelled meshes such as animals, statues,
  mechanical parts) and `assimp-testmodels` (the assimp importer's test files): varied
  shapes for instance retrieval, unlabelled, in `shapes/cgal/` and `shapes/assimp/`.

Every mesh goes through the project's own loader (`renderer.load_mesh`); what it refuses,
meshes outside [MIN_FACES, MAX_FACES] faces, and second copies of a shape (same
`fingerprint`: the same model in another format, catalog or tessellation; a labelled copy
is the one kept) are listed in the manifest and left out. The corpus lives in
`<data>/corpus/`:

    furniture/<class>/<name>.off    labelled, ModelNet layout (what `gmvit reindex` reads)
    shapes/<source>/<name>.off      unlabelled
    manifest.json                   every mesh: file, source, origin, label, faces; skipped files
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh
from tqdm import tqdm

import renderer
from bench import sh3d
from renderer.formats import FORMATS_BY_EXTENSION

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "var" / "bench-data"
PACKAGES = ("sweethome3d-furniture", "sweethome3d", "libcgal-demo", "assimp-testmodels")
CORPUS_VERSION = 1
# Meshes beyond this many faces are left out: the bench subdivides every mesh (x4 faces)
# and the service refuses more than 2,000,000.
MAX_FACES = 400_000
# Fewer faces than this is a test primitive (a triangle, a quad), not a shape.
MIN_FACES = 12
_MESH_EXTENSIONS = tuple(FORMATS_BY_EXTENSION)


class MissingDataError(RuntimeError):
    """The Debian packages the corpus is built from are not there."""


@dataclass
class Entry:
    file: str  # relative to the corpus folder
    source: str  # sweethome3d, cgal, assimp
    origin: str  # package file and member it came from
    name: str
    label: str | None
    faces: int


def _package(data_dir: Path, package: str) -> Path:
    return data_dir / "debian" / package


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "mesh"


def sh3d_catalogs(data_dir: Path) -> Iterator[tuple[str, zipfile.ZipFile, str]]:
    """(catalog name, archive, properties member) of every Sweet Home 3D catalog."""
    furniture = _package(data_dir, "sweethome3d-furniture") / "usr/share/sweethome3d/furniture"
    archives = [
        (path.stem, path, "PluginFurnitureCatalog.properties")
        for path in sorted(furniture.glob("*.sh3f"))
    ]
    jar = _package(data_dir, "sweethome3d") / "usr/share/sweethome3d/sweethome3d.jar"
    if jar.is_file():
        member = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"
        archives.append(("default", jar, member))
    for name, path, member in archives:
        with zipfile.ZipFile(path) as archive:
            yield name, archive, member


def _sh3d_meshes(data_dir: Path) -> Iterator[tuple[Entry, trimesh.Trimesh | None, str]]:
    for catalog, archive, member in sh3d_catalogs(data_dir):
        text = archive.read(member).decode("latin-1")
        for piece in sh3d.catalog_pieces(sh3d.read_properties(text)):
            label = sh3d.piece_class(piece.name)
            name = f"{_slug(catalog)}-{piece.number:03d}-{_slug(piece.name)}"
            folder = f"furniture/{label}" if label else "shapes/sweethome3d"
            origin = f"{Path(archive.filename).name}:{piece.model}"
            entry = Entry(f"{folder}/{name}.off", "sweethome3d", origin, piece.name, label, 0)
            try:
                data = archive.read(piece.model)
            except KeyError:
                yield entry, None, "the catalog names a model the archive does not hold"
                continue
            try:
                mesh = renderer.load_mesh(data, filename=Path(piece.model).name)
            except renderer.MeshError as error:
                yield entry, None, str(error)
                continue
            vertices = sh3d.to_our_frame(mesh.vertices, piece.rotation)
            yield entry, trimesh.Trimesh(vertices, mesh.faces, process=False), ""


def _loose_meshes(
    source: str, files: Iterator[tuple[str, str, bytes]]
) -> Iterator[tuple[Entry, trimesh.Trimesh | None, str]]:
    for origin, name, data in files:
        entry = Entry(f"shapes/{source}/{_slug(name)}.off", source, origin, name, None, 0)
        try:
            mesh = renderer.load_mesh(data, filename=Path(name).name)
        except renderer.MeshError as error:
            yield entry, None, str(error)
            continue
        yield entry, mesh, ""


def _cgal_files(data_dir: Path) -> Iterator[tuple[str, str, bytes]]:
    archive = _package(data_dir, "libcgal-demo") / "usr/share/doc/libcgal-dev/data.tar.gz"
    with tarfile.open(archive) as tar:
        for member in tar:
            path = Path(member.name)
            if member.isfile() and path.parts[:2] == ("data", "meshes"):
                if path.suffix.lower() in _MESH_EXTENSIONS:
                    data = tar.extractfile(member).read()
                    yield f"libcgal-demo:{member.name}", path.name, data


def _assimp_files(data_dir: Path) -> Iterator[tuple[str, str, bytes]]:
    models = _package(data_dir, "assimp-testmodels") / "usr/share/assimp/models"
    for path in sorted(models.rglob("*")):
        relative = path.relative_to(models)
        if path.is_file() and path.suffix.lower() in _MESH_EXTENSIONS:
            if relative.parts[0] != "invalid":
                name = "-".join(relative.with_suffix("").parts) + path.suffix.lower()
                yield f"assimp-testmodels:{relative}", name, path.read_bytes()


def build(data_dir: Path = DEFAULT_DATA, *, progress: bool = True) -> Path:
    """Convert every source mesh into `<data_dir>/corpus/` (replacing an older one) and
    return that folder. Raises MissingDataError when a package is missing."""
    missing = [p for p in PACKAGES if not (_package(data_dir, p) / "VERSION").is_file()]
    if missing:
        raise MissingDataError(
            f"the bench's real meshes come from Debian packages not found under "
            f"{data_dir / 'debian'}: {', '.join(missing)}; fetch them once with "
            "`scripts/setup.sh --bench`"
        )
    corpus = data_dir / "corpus"
    staging = data_dir / ".corpus-staging"
    shutil.rmtree(staging, ignore_errors=True)
    kept: dict[tuple, Entry] = {}  # fingerprint -> the mesh kept for it
    skipped: list[dict] = []
    streams = (
        _sh3d_meshes(data_dir),
        _loose_meshes("cgal", _cgal_files(data_dir)),
        _loose_meshes("assimp", _assimp_files(data_dir)),
    )
    with tqdm(desc="corpus", unit="mesh", disable=not progress, leave=False) as bar:
        for stream in streams:
            for entry, mesh, error in stream:
                bar.update()
                if mesh is not None and not MIN_FACES <= len(mesh.faces) <= MAX_FACES:
                    error = f"{len(mesh.faces):,} faces, outside [{MIN_FACES}, {MAX_FACES:,}]"
                if error:
                    skipped.append({"origin": entry.origin, "error": error})
                    continue
                key = fingerprint(mesh)
                twin = kept.get(key)
                if twin is not None and (twin.label or not entry.label):
                    skipped.append({"origin": entry.origin, "error": f"same shape as {twin.file}"})
                    continue
                if twin is not None:  # a labelled copy of an unlabelled mesh replaces it
                    (staging / twin.file).unlink()
                    skipped.append({"origin": twin.origin, "error": f"same shape as {entry.file}"})
                entry.faces = len(mesh.faces)
                path = staging / entry.file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(trimesh.exchange.off.export_off(mesh, digits=6).encode())
                kept[key] = entry
    manifest = {
        "version": CORPUS_VERSION,
        "extensions": list(_MESH_EXTENSIONS),
        "packages": package_versions(data_dir),
        "class_rules": [list(rule) for rule in sh3d.CLASS_RULES],
        "meshes": [asdict(entry) for entry in kept.values()],
        "skipped": skipped,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(corpus, ignore_errors=True)
    staging.rename(corpus)
    return corpus


def fingerprint(mesh: trimesh.Trimesh) -> tuple:
    """What two files of one shape share whatever their format, vertex order or
    tessellation: the normalised mesh's sorted extents and surface area, rounded."""
    normal = renderer.normalize(mesh)
    extents = np.sort(normal.vertices.max(axis=0) - normal.vertices.min(axis=0))
    return (*np.round(extents, 2).tolist(), round(float(normal.area), 1))


def package_versions(data_dir: Path) -> dict[str, str]:
    return {p: (_package(data_dir, p) / "VERSION").read_text().strip() for p in PACKAGES}


def load(data_dir: Path = DEFAULT_DATA, *, progress: bool = True) -> tuple[Path, dict]:
    """The corpus folder and its manifest, built first when missing or outdated: of another
    `CORPUS_VERSION`, or built when the loader read other formats (a new reader turns
    files that were skipped into meshes, and the galleries drawn from the corpus change)."""
    manifest_path = data_dir / "corpus" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    if (
        manifest is None
        or manifest.get("version") != CORPUS_VERSION
        or manifest.get("extensions") != list(_MESH_EXTENSIONS)
    ):
        build(data_dir, progress=progress)
        manifest = json.loads(manifest_path.read_text())
    return manifest_path.parent, manifest


def class_counts(manifest: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for mesh in manifest["meshes"]:
        if mesh["label"]:
            counts[mesh["label"]] = counts.get(mesh["label"], 0) + 1
    return dict(sorted(counts.items()))


def furniture_files(corpus: Path, manifest: dict) -> list[tuple[Path, str]]:
    """(path, class) of every labelled mesh, in manifest order."""
    return [(corpus / m["file"], m["label"]) for m in manifest["meshes"] if m["label"]]
