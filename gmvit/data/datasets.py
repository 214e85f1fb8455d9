"""Torch datasets over rendered views, and the batch transforms training shares.

Datasets yield uint8 views; conversion to the network's input (`gmvit.preprocess.to_input`)
and augmentation run on whole batches, which is far cheaper than per item on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gmvit.data.pngset import PngViewSet
from gmvit.data.store import MANIFEST, ViewStore
from gmvit.errors import GMViTError
from renderer.rigs import get_rig


@dataclass
class ViewSplit:
    """One split of a view data set, whatever its storage."""

    classes: list[str]
    rig: str
    num_views: int
    size: int
    labels: np.ndarray  # (N,) int64
    names: list[str]  # source of each shape, for reports
    load: Callable[[int], np.ndarray]  # i -> uint8 (V, H, W, 3)
    # Rows that render one source mesh share a shape id; copy 0 is the mesh as it is.
    shape_ids: np.ndarray | None = None  # (N,) int64; None: every row its own shape
    copies: np.ndarray | None = None  # (N,) int64; None: all 0

    def __post_init__(self) -> None:
        if self.shape_ids is None:
            self.shape_ids = np.arange(len(self.labels), dtype=np.int64)
        if self.copies is None:
            self.copies = np.zeros(len(self.labels), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)


def open_split(path: str | Path, split: str, num_views: int | None = None) -> ViewSplit:
    """A split of a rendered store (a folder with manifest.json) or of a PNG view set."""
    path = Path(path)
    if (path / MANIFEST).exists():
        store = ViewStore(path)
        if num_views is not None and num_views != store.num_views:
            raise GMViTError(f"{path} holds {store.num_views} views per shape, not {num_views}")
        shapes = store.shapes(split)
        views = store.views(split)
        rows = [s["row"] for s in shapes]
        return ViewSplit(
            classes=store.classes,
            rig=store.rig,
            num_views=store.num_views,
            size=store.size,
            labels=np.array([s["label"] for s in shapes], dtype=np.int64),
            names=[s["source"] for s in shapes],
            load=lambda i: np.array(views[rows[i]]),
            shape_ids=np.array([s.get("shape", s["row"]) for s in shapes], dtype=np.int64),
            copies=np.array([s.get("copy", 0) for s in shapes], dtype=np.int64),
        )
    if path.is_dir() and any(path.glob("*/*/*.png")):
        pngs = PngViewSet(path, num_views)
        items = pngs.shapes(split)
        return ViewSplit(
            classes=pngs.classes,
            rig=pngs.rig,
            num_views=pngs.num_views,
            size=pngs.size,
            labels=np.array([s.label for s in items], dtype=np.int64),
            names=[s.name for s in items],
            load=lambda i: pngs.load(items[i]),
        )
    if path.is_dir() and any(path.glob("*/*/*.off")):
        raise GMViTError(
            f"{path} holds meshes, not views; render it first: gmvit dataset render {path} -o CACHE"
        )
    raise GMViTError(f"{path} is neither a rendered view store nor a PNG view set")


class MultiViewDataset(Dataset):
    """(uint8 views (V, H, W, 3), label) per shape."""

    def __init__(self, split: ViewSplit, indices: np.ndarray | None = None) -> None:
        self.split = split
        self.indices = np.arange(len(split)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        j = int(self.indices[i])
        return torch.from_numpy(self.split.load(j)), int(self.split.labels[j])


class PairedViewDataset(Dataset):
    """Two renders of one shape per item: (uint8 views (2, V, H, W, 3), label, shape id).

    An epoch pairs the rows of every shape among themselves at random (a shape with an odd
    number of rows pairs its last one with another of its rows; a shape of one row, with
    itself, to be told apart by the online augmentation), so it holds as many renders as
    the rows of `indices`, the same as a `MultiViewDataset` epoch. `set_epoch` draws the
    pairing from (seed, epoch), so a resumed run pairs as the straight one did.
    """

    renders_per_item = 2

    def __init__(self, split: ViewSplit, indices: np.ndarray, seed: int) -> None:
        self.split = split
        self.seed = seed
        indices = np.sort(np.asarray(indices))
        shapes = split.shape_ids[indices]
        self.groups = [indices[shapes == shape] for shape in np.unique(shapes)]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        pairs = []
        for rows in self.groups:
            rows = rng.permutation(rows)
            if len(rows) % 2:
                rows = np.append(rows, rows[int(rng.integers(max(1, len(rows) - 1)))])
            pairs.append(rows.reshape(-1, 2))
        self.pairs = np.concatenate(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        a, b = (int(j) for j in self.pairs[i])
        views = np.stack([self.split.load(a), self.split.load(b)])
        return torch.from_numpy(views), int(self.split.labels[a]), int(self.split.shape_ids[a])


class SingleViewDataset(Dataset):
    """(uint8 view (H, W, 3), label) per (shape, view): stage 1 of the teacher."""

    def __init__(self, split: ViewSplit, indices: np.ndarray | None = None) -> None:
        self.split = split
        self.indices = np.arange(len(split)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices) * self.split.num_views

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        j = int(self.indices[i // self.split.num_views])
        view = self.split.load(j)[i % self.split.num_views]
        return torch.from_numpy(np.ascontiguousarray(view)), int(self.split.labels[j])


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): `fraction` of every class held out, at least
    one shape per class when fraction > 0."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(1, round(fraction * len(members))) if fraction > 0 else 0
        count = min(count, len(members) - 1)
        val.extend(members[:count])
        train.extend(members[count:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def mirror_order(rig: str) -> np.ndarray:
    """The view permutation of a mirrored shape: reflecting the world in the plane y = 0
    sends camera i to the camera at positions[i] * (1, -1, 1), whose view of the mirrored
    shape is view i flipped left-right."""
    positions = get_rig(rig).positions
    mirrored = positions * np.array([1.0, -1.0, 1.0])
    distance = np.linalg.norm(positions[None, :, :] - mirrored[:, None, :], axis=-1)
    order = distance.argmin(axis=1)
    if not np.allclose(distance[np.arange(len(order)), order], 0, atol=1e-9):
        raise GMViTError(f"camera rig {rig!r} is not symmetric under y -> -y")
    return order


def turn_orders(rig: str) -> np.ndarray:
    """(T, V): the view permutations of a shape turned about +Z by each angle that maps the
    rig's cameras onto themselves, in increasing angle from 0 (12 for circle-12: row k is a
    turn by 30k degrees, counter-clockwise seen from above; 2 for dodecahedron-20).

    Turning a shape by R puts in view i what camera R^-1 positions[i] saw, so views[order]
    are the turned shape's views: exactly so for a mesh that `renderer.normalize` centred
    (its centre turns with it; lights and up vectors go with the cameras)."""
    positions = get_rig(rig).positions
    azimuth = np.arctan2(positions[:, 1], positions[:, 0])
    level = np.isclose(positions[:, 2], positions[0, 2])
    orders = []
    for angle in np.unique(np.round((azimuth[level] - azimuth[0]) % (2 * np.pi), 9)):
        c, s = np.cos(-angle), np.sin(-angle)
        back = positions @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
        distance = np.linalg.norm(back[:, None, :] - positions[None, :, :], axis=-1)
        order = distance.argmin(axis=1)
        if np.allclose(distance[np.arange(len(order)), order], 0, atol=1e-9):
            orders.append(order)
    return np.stack(orders)


def augment_shapes(
    views: Tensor, rig: str, generator: torch.Generator, *, max_shift: float = 1 / 16
) -> Tensor:
    """Label-preserving augmentation of float views (B, V, 3, H, W): each shape turned about
    +Z by one of the rig's symmetric angles (views reordered, `turn_orders`), mirrored with
    probability 1/2 (views flipped and reordered so each still matches its camera), then
    shifted by up to `max_shift` of the image in x and y, all its views alike."""
    b, _, _, h, w = views.shape
    orders = torch.from_numpy(turn_orders(rig))
    turns = orders[torch.randint(len(orders), (b,), generator=generator)]  # (B, V)
    out = views.gather(1, turns.view(b, -1, 1, 1, 1).expand_as(views)).clone()
    flip = torch.rand(b, generator=generator) < 0.5
    if flip.any():
        order = torch.from_numpy(mirror_order(rig))
        out[flip] = out[flip][:, order].flip(-1)
    limit = max(1, int(round(max_shift * min(h, w))))
    shifts = torch.randint(-limit, limit + 1, (b, 2), generator=generator)
    for i in range(b):
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        if dy or dx:
            out[i] = _shift(out[i], dy, dx)
    return out


def augment_views(views: Tensor, generator: torch.Generator) -> Tensor:
    """Single-view augmentation of float views (N, 3, H, W): random horizontal flip."""
    flip = torch.rand(views.shape[0], generator=generator) < 0.5
    out = views.clone()
    out[flip] = out[flip].flip(-1)
    return out


def _shift(x: Tensor, dy: int, dx: int) -> Tensor:
    """Translate (..., H, W) by (dy, dx) pixels, filling with the border colour."""
    h, w = x.shape[-2:]
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
    padded = F.pad(x.reshape(-1, 1, h, w), pad, mode="replicate").reshape(
        *x.shape[:-2], -1, w + abs(dx)
    )
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]
