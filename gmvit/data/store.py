"""Rendered-view stores: every mesh of a ModelNet-layout folder rendered once, kept as uint8.

Layout of a store directory:

    manifest.json        rig, size, lighting, classes, augment (copies per training mesh,
                         seed), and one entry per row (split, row, class, label, source
                         file relative to the mesh root, shape, copy, perturbation,
                         status, error)
    views-<split>.npy    (N, V, H, W, 3) uint8, one row per mesh of the split (a .npy
                         memmap: training reads it without loading it all)
    done-<split>.npy     (N,) int8 per row: 0 to do, 1 rendered, 2 failed
    failures.jsonl       one line per failed mesh, appended as it fails

Rendering is resumable: a row is marked done only after its views are flushed, so after an
interruption `render_store` picks up the rows still at 0. Meshes that fail are recorded
with their error and skipped by the datasets; they never stop the run.

Augmented copies (`augment=K`): every training mesh is rendered K more times, each copy a
random `gmvit.data.perturb.Perturbation` (a turn about +Z by any angle, maybe mirrored,
re-tessellated, noisy) recorded in its entry. `shape` numbers the source meshes of a split
and `copy` the renders of one (0 = the file as it is), so two rows of one `shape` are the
same object: the positive pairs of an instance-contrastive loss. Test meshes get no copies.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gmvit.data.perturb import Perturbation
from gmvit.errors import GMViTError
from renderer.files import write_atomic
from renderer.layout import SPLITS, is_mesh_file, split_classes
from renderer.render import LIGHTING
from renderer.rigs import get_rig

MANIFEST = "manifest.json"
FAILURES = "failures.jsonl"
STORE_FORMAT = "gmvit-view-store/1"

TODO, DONE, FAILED = 0, 1, 2


@dataclass(frozen=True)
class MeshEntry:
    split: str
    row: int  # row in views-<split>.npy
    class_name: str
    label: int
    source: str  # path relative to the mesh root, POSIX separators
    shape: int = -1  # index of the source mesh in its split; -1: the same as row
    copy: int = 0  # 0: the mesh as it is; k > 0: its k-th perturbed copy
    perturbation: dict | None = None  # Perturbation.to_dict() of a copy

    def record(self) -> dict:
        """The entry as the manifest keeps it (status added later)."""
        entry = {
            "split": self.split,
            "row": self.row,
            "class": self.class_name,
            "label": self.label,
            "source": self.source,
            "shape": self.row if self.shape < 0 else self.shape,
            "copy": self.copy,
        }
        if self.perturbation is not None:
            entry["perturbation"] = self.perturbation
        return entry


def find_meshes(root: str | Path) -> tuple[list[str], list[MeshEntry]]:
    """Classes (sorted folder names) and the meshes of `<root>/<class>/{train,test}/*`
    in a fixed order: split, class, file name."""
    root = Path(root)
    if not root.is_dir():
        raise GMViTError(f"mesh folder {root} does not exist")
    classes = split_classes(root)
    if not classes:
        raise GMViTError(
            f"{root} is not in the ModelNet layout <root>/<class>/{{train,test}}/<mesh files>"
        )
    entries: list[MeshEntry] = []
    for split in SPLITS:
        row = 0
        for label, class_name in enumerate(classes):
            folder = root / class_name / split
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if is_mesh_file(path):
                    source = path.relative_to(root).as_posix()
                    entries.append(MeshEntry(split, row, class_name, label, source))
                    row += 1
    if not entries:
        raise GMViTError(f"no mesh files under {root}/<class>/{{train,test}}/")
    return classes, entries


def with_copies(entries: list[MeshEntry], copies: int, seed: int) -> list[MeshEntry]:
    """Each training entry followed by `copies` perturbed copies of it, rows renumbered
    (shape `i` of a split holds rows i*(copies+1) ... i*(copies+1)+copies). Copy k of shape
    i draws its perturbation from a generator seeded by (seed, i, k), whatever else changes."""
    if copies < 0:
        raise GMViTError(f"the number of augmented copies must be 0 or more, not {copies}")
    out: list[MeshEntry] = []
    rows = dict.fromkeys(SPLITS, 0)
    for shape_index, entry in enumerate(e for e in entries if e.split == "train"):
        for copy in range(copies + 1):
            perturbation = None
            if copy:
                rng = np.random.default_rng([seed, shape_index, copy])
                perturbation = Perturbation.draw(rng).to_dict()
            out.append(
                replace(
                    entry,
                    row=rows["train"],
                    shape=shape_index,
                    copy=copy,
                    perturbation=perturbation,
                )
            )
            rows["train"] += 1
    out.extend(e for e in entries if e.split != "train")
    return out


def _views_path(store: Path, split: str) -> Path:
    return store / f"views-{split}.npy"


def _done_path(store: Path, split: str) -> Path:
    return store / f"done-{split}.npy"


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())


# Worker side: one renderer per process, set up lazily by the first task it gets.
def _render_task(
    task: tuple[str, int, str, str, int, dict | None, list[int]],
) -> tuple[str, int, np.ndarray | str]:
    split, row, path, rig, size, perturbation, noise_seed = task
    import renderer  # imported here so the parent process never opens a GL context

    try:
        mesh = renderer.load_mesh(path)
        if perturbation is not None:
            mesh = Perturbation(**perturbation).apply(mesh, np.random.default_rng(noise_seed))
        views = renderer.render_views(renderer.normalize(mesh), rig, size)
    except Exception as exc:  # any failure of one mesh is recorded, never fatal
        return split, row, f"{type(exc).__name__}: {exc}"
    return split, row, np.ascontiguousarray(views, dtype=np.uint8)


def render_store(
    mesh_root: str | Path,
    out_dir: str | Path,
    *,
    rig: str = "circle-12",
    size: int = 224,
    jobs: int = 1,
    augment: int = 0,
    augment_seed: int = 0,
    progress: bool = True,
) -> dict:
    """Render every mesh under `mesh_root` into the store at `out_dir`, each training mesh
    also as `augment` perturbed copies; resume if the store already holds part of the same
    render. Returns the manifest."""
    try:
        num_views = get_rig(rig).num_views
    except ValueError as exc:
        raise GMViTError(str(exc)) from None
    if size < 8:
        raise GMViTError(f"image size must be at least 8 pixels, not {size}")
    mesh_root, out = Path(mesh_root), Path(out_dir)
    classes, entries = find_meshes(mesh_root)
    entries = with_copies(entries, augment, augment_seed)
    manifest = {
        "format": STORE_FORMAT,
        "rig": rig,
        "num_views": num_views,
        "size": size,
        "lighting": LIGHTING,
        "mesh_root": str(mesh_root.resolve()),
        "classes": classes,
        "counts": {s: sum(e.split == s for e in entries) for s in SPLITS},
        "augment": {"copies": augment, "seed": augment_seed},
        "shapes": [e.record() | {"status": "todo"} for e in entries],
    }
    out.mkdir(parents=True, exist_ok=True)
    views, done = _open_for_writing(out, manifest)

    todo = [e for e in entries if done[e.split][e.row] == TODO]
    tasks = [
        (
            e.split,
            e.row,
            str(mesh_root / e.source),
            rig,
            size,
            e.perturbation,
            [augment_seed, e.row],
        )
        for e in todo
    ]
    bar = tqdm(
        total=len(entries),
        initial=len(entries) - len(todo),
        desc="render",
        unit="mesh",
        disable=not progress,
    )
    sources = {(e.split, e.row): e.source for e in entries}
    with open(out / FAILURES, "a") as failures:
        for split, row, result in _run(tasks, jobs):
            if isinstance(result, str):
                source = sources[(split, row)]
                failures.write(
                    json.dumps({"split": split, "row": row, "source": source, "error": result})
                    + "\n"
                )
                failures.flush()
                done[split][row] = FAILED
            else:
                if result.shape != (num_views, size, size, 3):
                    raise GMViTError(
                        f"renderer returned views of shape {result.shape}, "
                        f"expected {(num_views, size, size, 3)}"
                    )
                views[split][row] = result
                views[split].flush()  # views on disk before the row is marked done
                done[split][row] = DONE
            done[split].flush()
            bar.update(1)
    bar.close()
    return _finish_manifest(out, manifest, done)


def _run(tasks: list, jobs: int) -> Iterator[tuple[str, int, np.ndarray | str]]:
    if jobs <= 1 or len(tasks) <= 1:
        yield from map(_render_task, tasks)
        return
    # A render process can die (killed for memory, a crash in the GL driver). Its pool is
    # then broken: start a new one and carry on; a mesh that was being rendered during two
    # such deaths is recorded as failed, so no single mesh can stop the run.
    pending = list(reversed(tasks))
    suspects: set[tuple[str, int]] = set()
    while pending:
        # spawn, not fork: a forked child must never inherit a GL context.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            running: dict = {}
            try:
                while pending or running:
                    while pending and len(running) < 2 * jobs:
                        task = pending.pop()
                        running[pool.submit(_render_task, task)] = task
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        result = future.result()  # raises while the task is still running
                        del running[future]
                        yield result
            except BrokenProcessPool:
                for task in running.values():
                    key = (task[0], task[1])
                    if key in suspects:
                        yield task[0], task[1], "the render process died twice on this mesh"
                    else:
                        suspects.add(key)
                        pending.append(task)


def _open_for_writing(out: Path, manifest: dict) -> tuple[dict, dict]:
    """Memmaps of views and done flags, new or reopened when the same render is resumed."""
    previous = out / MANIFEST
    if previous.exists():
        old = json.loads(previous.read_text())
        # A store written before copies existed has none; one written before lighting was
        # recorded was lit one-sided.
        old.setdefault("augment", {"copies": 0, "seed": 0})
        old.setdefault("lighting", "one-sided")
        keys = ("rig", "size", "lighting", "classes", "counts", "augment")
        same = all(old.get(k) == manifest[k] for k in keys) and [
            (s["source"], s.get("perturbation")) for s in old.get("shapes", [])
        ] == [(s["source"], s.get("perturbation")) for s in manifest["shapes"]]
        if not same:
            raise GMViTError(
                f"{out} already holds a different render (rig {old.get('rig')}, size "
                f"{old.get('size')}, lit {old['lighting']}, {len(old.get('shapes', []))} "
                "meshes); choose another output folder or delete it"
            )
    _write_json(previous, manifest | {"complete": False})
    shape = (manifest["num_views"], manifest["size"], manifest["size"], 3)
    views, done = {}, {}
    for split, count in manifest["counts"].items():
        vpath, dpath = _views_path(out, split), _done_path(out, split)
        if vpath.exists() and dpath.exists():
            views[split] = np.load(vpath, mmap_mode="r+")
            done[split] = np.load(dpath, mmap_mode="r+")
        else:
            views[split] = np.lib.format.open_memmap(
                vpath, mode="w+", dtype=np.uint8, shape=(count, *shape)
            )
            done[split] = np.lib.format.open_memmap(dpath, mode="w+", dtype=np.int8, shape=(count,))
    return views, done


def _finish_manifest(out: Path, manifest: dict, done: dict) -> dict:
    errors: dict[tuple[str, int], str] = {}
    failures = out / FAILURES
    if failures.exists():
        for line in failures.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                errors[(item["split"], item["row"])] = item["error"]
    for shape in manifest["shapes"]:
        flag = int(done[shape["split"]][shape["row"]])
        shape["status"] = {TODO: "todo", DONE: "ok", FAILED: "failed"}[flag]
        if flag == FAILED:
            shape["error"] = errors.get((shape["split"], shape["row"]), "unknown error")
    manifest["failed"] = sum(s["status"] == "failed" for s in manifest["shapes"])
    manifest["complete"] = all(s["status"] != "todo" for s in manifest["shapes"])
    _write_json(out / MANIFEST, manifest)
    return manifest


class ViewStore:
    """A rendered store opened for reading: `views(split)` is a read-only memmap, `shapes`
    lists the usable rows (rendered, not failed) of a split."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            raise GMViTError(f"{self.path} is not a view store (no {MANIFEST})")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != STORE_FORMAT:
            raise GMViTError(f"{manifest_path} is not a {STORE_FORMAT} manifest")
        if not self.manifest.get("complete"):
            raise GMViTError(
                f"the render in {self.path} is incomplete; run `gmvit dataset render` again "
                "to finish it"
            )
        self.rig: str = self.manifest["rig"]
        self.size: int = self.manifest["size"]
        self.num_views: int = self.manifest["num_views"]
        self.classes: list[str] = self.manifest["classes"]

    def views(self, split: str) -> np.ndarray:
        if split not in self.manifest["counts"]:
            raise GMViTError(
                f"unknown split {split!r}; the store has {list(self.manifest['counts'])}"
            )
        return np.load(_views_path(self.path, split), mmap_mode="r")

    def shapes(self, split: str) -> list[dict]:
        return [s for s in self.manifest["shapes"] if s["split"] == split and s["status"] == "ok"]

    def failures(self) -> list[dict]:
        return [s for s in self.manifest["shapes"] if s["status"] == "failed"]
