"""PNG view sets in the spec's layout, read as data sets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gmvit.data.datasets import MultiViewDataset, open_split
from gmvit.errors import GMViTError


def _write_set(root, num_views, names, size=8, seed=0):
    """`names`: {(class, split): shape count}; returns the views written, by (class, split)."""
    rng = np.random.default_rng(seed)
    written = {}
    for (class_name, split), count in names.items():
        folder = root / class_name / split
        folder.mkdir(parents=True)
        written[class_name, split] = []
        for s in range(count):
            views = rng.integers(0, 256, (num_views, size, size, 3), dtype=np.uint8)
            for v in range(num_views):
                Image.fromarray(views[v]).save(folder / f"{class_name}_{s + 1:04d}_{v + 1:03d}.png")
            written[class_name, split].append(views)
    return written


@pytest.mark.parametrize("num_views, rig", [(12, "circle-12"), (20, "dodecahedron-20")])
def test_views_of_a_shape_are_read_in_sorted_order(tmp_path, num_views, rig):
    written = _write_set(
        tmp_path, num_views, {("bed", "train"): 2, ("sofa", "train"): 1, ("sofa", "test"): 1}
    )
    train = open_split(tmp_path, "train")
    assert (train.num_views, train.rig, train.size) == (num_views, rig, 8)
    assert train.classes == ["bed", "sofa"]
    assert list(train.labels) == [0, 0, 1]
    assert np.array_equal(train.load(1), written["bed", "train"][1])
    assert np.array_equal(train.load(2), written["sofa", "train"][0])
    views, label = MultiViewDataset(open_split(tmp_path, "test"))[0]
    assert label == 1 and np.array_equal(views.numpy(), written["sofa", "test"][0])


def test_a_count_that_is_not_whole_shapes_is_refused(tmp_path):
    _write_set(tmp_path, 12, {("bed", "train"): 1})
    (tmp_path / "bed" / "train" / "bed_0001_001.png").rename(tmp_path / "bed" / "train" / "x.png")
    (tmp_path / "bed" / "train" / "bed_0001_002.png").unlink()
    with pytest.raises(GMViTError, match="views per shape|multiple of 12"):
        open_split(tmp_path, "train")
    with pytest.raises(GMViTError, match="multiple of 12"):
        open_split(tmp_path, "train", num_views=12)


def test_unnumbered_names_need_the_view_count(tmp_path):
    folder = tmp_path / "bed" / "train"
    folder.mkdir(parents=True)
    for i in range(24):
        Image.new("RGB", (8, 8), (i, i, i)).save(folder / f"view-{chr(97 + i)}.png")
    with pytest.raises(GMViTError, match="cannot tell how many views"):
        open_split(tmp_path, "train")
    assert len(open_split(tmp_path, "train", num_views=12)) == 2
