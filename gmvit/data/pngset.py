"""Pre-rendered PNG view sets in the layout of GMVIT_SPEC.md.

`<root>/<class>/{train,test}/*.png`, the views of one shape adjacent in sorted order: 12
views per shape for circle-12 sets, 20 for dodecahedron-20 sets. The view count is taken
from the file names when they end in a view number (`chair_0001_003.png`,
`chair_0001.obj.shaded_v003.png`), otherwise it must be given.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gmvit.errors import GMViTError
from renderer.layout import SPLITS, split_classes
from renderer.rigs import RIG_FOR_VIEWS

_VIEW_NUMBER = re.compile(r"\d+(?=\.png$)", re.IGNORECASE)


@dataclass(frozen=True)
class PngShape:
    class_name: str
    label: int
    files: tuple[Path, ...]  # the views in rig order

    @property
    def name(self) -> str:
        return self.files[0].name


def _shape_key(path: Path) -> str:
    """The file's path without its trailing view number."""
    return str(path.parent / _VIEW_NUMBER.sub("", path.name))


def _infer_num_views(files: list[Path]) -> int | None:
    sizes = set(Counter(_shape_key(f) for f in files).values())
    if len(sizes) == 1 and (n := sizes.pop()) in RIG_FOR_VIEWS:
        return n
    return None


class PngViewSet:
    """A PNG view set opened for reading; `load(shape)` gives uint8 (V, H, W, 3)."""

    def __init__(self, root: str | Path, num_views: int | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise GMViTError(f"view set folder {self.root} does not exist")
        self.classes = split_classes(self.root)
        files = {
            (c, s): sorted((self.root / c / s).glob("*.png"))
            for c in self.classes
            for s in SPLITS
            if (self.root / c / s).is_dir()
        }
        all_files = [f for group in files.values() for f in group]
        if not all_files:
            raise GMViTError(f"no PNG views under {self.root}/<class>/{{train,test}}/")
        if num_views is None:
            num_views = _infer_num_views(all_files)
            if num_views is None:
                raise GMViTError(
                    f"cannot tell how many views per shape {self.root} holds from the file "
                    f"names; give the number of views ({sorted(RIG_FOR_VIEWS)})"
                )
        if num_views not in RIG_FOR_VIEWS:
            raise GMViTError(
                f"a view set has {sorted(RIG_FOR_VIEWS)} views per shape, not {num_views}"
            )
        self.num_views = num_views
        self.rig = RIG_FOR_VIEWS[num_views]
        self._shapes: dict[str, list[PngShape]] = {s: [] for s in SPLITS}
        for (class_name, split), group in files.items():
            if len(group) % num_views:
                raise GMViTError(
                    f"{self.root / class_name / split} holds {len(group)} PNG files, "
                    f"not a multiple of {num_views} views"
                )
            label = self.classes.index(class_name)
            for start in range(0, len(group), num_views):
                chunk = tuple(group[start : start + num_views])
                self._shapes[split].append(PngShape(class_name, label, chunk))
        with Image.open(all_files[0]) as first:
            self.size = first.size[0]

    def shapes(self, split: str) -> list[PngShape]:
        if split not in self._shapes:
            raise GMViTError(f"unknown split {split!r}; choose one of {SPLITS}")
        return self._shapes[split]

    def load(self, shape: PngShape) -> np.ndarray:
        views = []
        for path in shape.files:
            with Image.open(path) as image:
                image = image.convert("RGB")
                if image.size != (self.size, self.size):
                    image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
                views.append(np.asarray(image, dtype=np.uint8))
        return np.stack(views)
