"""A procedural stand-in for ModelNet: parametric families of shapes under ModelNet40's
class names, written in the ModelNet layout so the real data set drops in unchanged.

Class sets (`CLASS_SETS`):
- `modelnet10` (`CLASSES`, the default): ten furniture classes built from boxes,
  cylinders and rounded blocks (`modelnet10.py`): the service's demo set, the tests and the
  shipped weights are made from them.
- `modelnet40` (`MODELNET40`): those ten and thirty more, built from surfaces of
  revolution, sweeps, extruded outlines, rounded boxes and capsules, each family with
  sub-styles and uneven tessellation (`furniture.py`, `vessels.py`, `things.py`).
- `held-out` (`HELD_OUT`): families that are none of the forty (teapot, umbrella, ...),
  for open-set tests only: never part of a training set, and refused in one request
  together with training classes.

Confusable pairs of ModelNet40 are kept confusable on purpose (desk/table,
dresser/night_stand/tv_stand, bed/sofa/bench, flower_pot/plant/vase, cup/bowl/vase).
Every shape gets a small random rotation about +Z and an off-centre placement, so nothing
downstream may rely on meshes being centred or axis-aligned.

Determinism: shape `i` of class `c` in split `s` is drawn from its own generator seeded by
(seed, c, s, i), so the same seed writes the same bytes whatever the requested counts or
class set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh
from tqdm import tqdm

from gmvit.data.synth import furniture, held_out, modelnet10, things, vessels
from gmvit.data.synth.parts import Family, stand
from renderer.layout import SPLITS

CLASSES: tuple[str, ...] = (
    "bathtub",
    "bed",
    "chair",
    "desk",
    "dresser",
    "monitor",
    "night_stand",
    "sofa",
    "table",
    "toilet",
)

# The thirty ModelNet40 classes beyond ModelNet10, in the order their seeds were given:
# append new classes at the end of a tuple here, never reorder, or old seeds change.
_MORE_40: tuple[str, ...] = (
    "airplane",
    "bench",
    "bookshelf",
    "bottle",
    "bowl",
    "car",
    "cone",
    "cup",
    "curtain",
    "door",
    "flower_pot",
    "glass_box",
    "guitar",
    "keyboard",
    "lamp",
    "laptop",
    "mantel",
    "person",
    "piano",
    "plant",
    "radio",
    "range_hood",
    "sink",
    "stairs",
    "stool",
    "tent",
    "tv_stand",
    "vase",
    "wardrobe",
    "xbox",
)

MODELNET40: tuple[str, ...] = tuple(sorted(CLASSES + _MORE_40))

HELD_OUT: tuple[str, ...] = (
    "anchor",
    "bicycle",
    "dumbbell",
    "fan",
    "hourglass",
    "ladder",
    "teapot",
    "umbrella",
)

CLASS_SETS: dict[str, tuple[str, ...]] = {
    "modelnet10": CLASSES,
    "modelnet40": MODELNET40,
    "held-out": HELD_OUT,
}


FORMATS: tuple[str, ...] = ("off", "obj", "stl", "ply")

MIN_FACES = 200  # beyond ModelNet10's ten, no shape has fewer faces

_FAMILIES: dict[str, Family] = {
    **modelnet10.FAMILIES,
    **furniture.FAMILIES,
    **vessels.FAMILIES,
    **things.FAMILIES,
    **held_out.FAMILIES,
}
_SEED_IDS: dict[str, int] = {c: i for i, c in enumerate(CLASSES + _MORE_40 + HELD_OUT)}


def resolve_classes(classes: str | Sequence[str]) -> tuple[str, ...]:
    """Class names from a set name (`modelnet10`, `modelnet40`, `held-out`), a comma list
    of class names, or a sequence of class names; duplicates dropped, order kept.
    Held-out classes never come in one request with training classes."""
    if isinstance(classes, str):
        if classes in CLASS_SETS:
            return CLASS_SETS[classes]
        classes = [name.strip() for name in classes.split(",") if name.strip()]
    names = tuple(dict.fromkeys(classes))
    if not names:
        raise ValueError("no classes requested")
    unknown = [name for name in names if name not in _FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown synthetic classes {', '.join(unknown)}; choose a set "
            f"({', '.join(CLASS_SETS)}) or names from modelnet40 and held-out"
        )
    held = [name for name in names if name in HELD_OUT]
    if held and len(held) < len(names):
        raise ValueError(
            f"held-out classes ({', '.join(held)}) are for open-set tests and cannot be "
            "mixed with training classes; generate them into a folder of their own"
        )
    return names


def make_shape(class_name: str, rng: np.random.Generator) -> trimesh.Trimesh:
    """One random member of `class_name`'s family, standing on z = 0 (Z up), rotated a
    little about +Z and placed off-centre."""
    try:
        family = _FAMILIES[class_name]
    except KeyError:
        raise ValueError(
            f"unknown synthetic class {class_name!r}; choose one of {MODELNET40 + HELD_OUT}"
        ) from None
    parts = family(rng)
    if class_name not in CLASSES:  # the ten are left as their families build them
        parts = stand(_at_least(parts, MIN_FACES))
    mesh = _join(parts)
    angle = float(rng.uniform(-np.pi / 12, np.pi / 12))
    offset = rng.uniform(-0.3, 0.3, size=3) * (1.0, 1.0, 0.0)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, (0, 0, 1)))
    mesh.apply_translation(offset)
    return mesh


def _at_least(parts: list[trimesh.Trimesh], faces: int) -> list[trimesh.Trimesh]:
    """The parts, the largest by area subdivided until they have `faces` faces together:
    a floor on face counts that also leaves a shape finely meshed in one place only."""
    parts = list(parts)
    while sum(len(p.faces) for p in parts) < faces:
        largest = int(np.argmax([p.area for p in parts]))
        parts[largest] = parts[largest].subdivide()
    return parts


def _join(parts: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    """One mesh of all the parts' vertices and faces, in order, without zero-area faces:
    what `trimesh.util.concatenate` makes, minus the visuals and attributes it also joins
    at a cost that dominates shapes of many parts."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    vertices = np.vstack([p.vertices for p in parts])
    faces = np.vstack([p.faces + offset for p, offset in zip(parts, offsets, strict=True)])
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    mesh.update_faces(mesh.nondegenerate_faces())
    return mesh


def shape_rng(seed: int, class_name: str, split: str, index: int) -> np.random.Generator:
    """The generator of one shape: independent of how many others are made."""
    return np.random.default_rng([seed, _SEED_IDS[class_name], SPLITS.index(split), index])


def shape_path(root: Path, class_name: str, split: str, index: int, fmt: str = "off") -> Path:
    """ModelNet layout: `<root>/<class>/<split>/<class>_NNNN.<fmt>`, numbered from 1 and
    continuing across splits as ModelNet does (test numbers follow train numbers)."""
    return Path(root) / class_name / split / f"{class_name}_{index:04d}.{fmt}"


def _encode(mesh: trimesh.Trimesh, fmt: str) -> bytes:
    if fmt == "off":
        return trimesh.exchange.off.export_off(mesh, digits=6).encode()
    data = mesh.export(file_type=fmt)
    return data.encode() if isinstance(data, str) else bytes(data)


def generate(
    out_dir: str | Path,
    *,
    seed: int,
    train_per_class: int,
    test_per_class: int,
    fmt: str = "off",
    progress: bool = True,
    classes: str | Sequence[str] = CLASSES,
) -> list[Path]:
    """Write the synthetic set in the ModelNet layout and return the written paths
    (class-major, train before test). `classes` is what `resolve_classes` takes.
    Same seed, same bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; choose one of {FORMATS}")
    if train_per_class < 0 or test_per_class < 0:
        raise ValueError("shape counts must be zero or more")
    classes = resolve_classes(classes)
    root = Path(out_dir)
    jobs = [
        (class_name, split, index)
        for class_name in classes
        for split, count in (("train", train_per_class), ("test", test_per_class))
        for index in range(count)
    ]
    written: list[Path] = []
    for class_name, split, index in tqdm(
        jobs, desc="synth", unit="shape", disable=not progress, leave=False
    ):
        number = index + 1 + (train_per_class if split == "test" else 0)
        mesh = make_shape(class_name, shape_rng(seed, class_name, split, index))
        path = shape_path(root, class_name, split, number, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encode(mesh, fmt))
        written.append(path)
    return written
