"""The procedural synthetic set: layout, variety and byte-for-byte determinism."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from gmvit.data import synth


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.off"))}


def test_same_seed_writes_same_bytes(tmp_path):
    a = synth.generate(tmp_path / "a", seed=7, train_per_class=2, test_per_class=1, progress=False)
    synth.generate(tmp_path / "b", seed=7, train_per_class=2, test_per_class=1, progress=False)
    synth.generate(tmp_path / "c", seed=8, train_per_class=2, test_per_class=1, progress=False)
    tree_a, tree_b, tree_c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) == len(tree_a) == 10 * 3
    assert tree_a == tree_b
    assert tree_a.keys() == tree_c.keys()
    assert all(tree_a[k] != tree_c[k] for k in tree_a)


def test_modelnet_layout_and_numbering(tmp_path):
    paths = synth.generate(
        tmp_path, seed=0, train_per_class=2, test_per_class=2, classes=("desk",), progress=False
    )
    names = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert names == [
        "desk/train/desk_0001.off",
        "desk/train/desk_0002.off",
        "desk/test/desk_0003.off",
        "desk/test/desk_0004.off",
    ]
    mesh = trimesh.load(paths[0], force="mesh")
    assert len(mesh.faces) > 12


def test_a_shape_does_not_depend_on_how_many_are_made(tmp_path):
    small = synth.generate(
        tmp_path / "s",
        seed=3,
        train_per_class=1,
        test_per_class=0,
        classes=("sofa",),
        progress=False,
    )
    large = synth.generate(
        tmp_path / "l",
        seed=3,
        train_per_class=4,
        test_per_class=0,
        classes=("sofa",),
        progress=False,
    )
    assert small[0].read_bytes() == large[0].read_bytes()


@pytest.mark.parametrize("class_name", synth.CLASSES)
def test_every_family_varies_and_stands_off_centre(class_name):
    meshes = [
        synth.make_shape(class_name, synth.shape_rng(0, class_name, "train", i)) for i in range(6)
    ]
    extents = np.array([m.extents / m.extents.max() for m in meshes])
    assert np.ptp(extents, axis=0).max() > 0.05  # proportions vary
    assert all(m.bounds[0, 2] >= -1e-9 for m in meshes)  # stands on the floor
    centres = np.array([m.bounds.mean(axis=0)[:2] for m in meshes])
    assert np.abs(centres).max() > 0.01
    assert len({len(m.faces) for m in meshes}) > 1  # part counts vary


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic class"):
        synth.make_shape("lamp", np.random.default_rng(0))
    with pytest.raises(ValueError, match="format"):
        synth.generate(tmp_path, seed=0, train_per_class=1, test_per_class=0, fmt="fbx")
