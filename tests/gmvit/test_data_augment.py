"""Batch transforms: the mirror augmentation agrees with rendering a mirrored mesh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import renderer
from gmvit import GMViTConfig
from gmvit.data import synth
from gmvit.data.datasets import (
    PairedViewDataset,
    ViewSplit,
    augment_shapes,
    mirror_order,
    stratified_holdout,
    turn_orders,
)
from gmvit.data.perturb import rotate_z
from gmvit.preprocess import resize_views, to_input
from gmvit.train import Recipe, TrainData


@pytest.mark.parametrize("rig", ["circle-12", "dodecahedron-20"])
def test_mirror_order_is_an_involution_onto_mirrored_cameras(rig):
    order = mirror_order(rig)
    positions = renderer.get_rig(rig).positions
    assert sorted(order) == list(range(len(order)))
    assert np.array_equal(order[order], np.arange(len(order)))
    assert np.allclose(positions[order], positions * [1, -1, 1])


@pytest.mark.parametrize("rig", ["circle-12", "dodecahedron-20"])
def test_mirrored_views_are_the_views_of_the_mirrored_mesh(rig):
    mesh = renderer.normalize(synth.make_shape("chair", synth.shape_rng(0, "chair", "train", 2)))
    mirrored = mesh.copy()
    mirrored.apply_transform(np.diag([1.0, -1.0, 1.0, 1.0]))
    views = renderer.render_views(mesh, rig, 48)
    expected = renderer.render_views(mirrored, rig, 48)
    flipped = views[mirror_order(rig)][:, :, ::-1]
    # Same picture up to rasterisation at silhouette edges.
    assert np.mean(np.abs(flipped.astype(int) - expected.astype(int)) > 40) < 0.01
    other = views[:, :, ::-1]  # flipped without reordering: wrong cameras
    assert np.mean(np.abs(other.astype(int) - expected.astype(int)) > 40) > 0.01


def test_augmentation_keeps_shape_and_is_seeded():
    config = GMViTConfig("mini", image_size=16)
    views = to_input(torch.randint(0, 256, (4, 12, 16, 16, 3), dtype=torch.uint8), config)
    a = augment_shapes(views, "circle-12", torch.Generator().manual_seed(3))
    b = augment_shapes(views, "circle-12", torch.Generator().manual_seed(3))
    assert a.shape == views.shape and torch.equal(a, b)
    assert not torch.equal(a, views)


def test_to_input_normalises_as_the_config_says_and_resizes():
    white = torch.full((2, 12, 8, 8, 3), 255, dtype=torch.uint8)
    x = to_input(white, GMViTConfig("mini", image_size=8))
    assert x.shape == (2, 12, 3, 8, 8)
    assert torch.allclose(
        x[0, 0, :, 0, 0],
        (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]),
    )
    grey = GMViTConfig("mini", image_size=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    x = to_input(white, grey)
    assert x.shape == (2, 12, 3, 4, 4)
    assert torch.allclose(x[0, 0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    assert resize_views(white, 4).shape == (2, 12, 4, 4, 3)


def test_holdout_takes_a_share_of_every_class():
    labels = np.repeat([0, 1, 2], [10, 20, 1])
    train, val = stratified_holdout(labels, 0.1, seed=0)
    assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == 31
    assert np.bincount(labels[val], minlength=3).tolist() == [1, 2, 0]
    assert train.tolist() == stratified_holdout(labels, 0.1, seed=0)[0].tolist()


@pytest.mark.parametrize(("rig", "turns"), [("circle-12", 12), ("dodecahedron-20", 2)])
def test_turned_views_are_the_views_of_the_turned_mesh(rig, turns):
    """A shape turned about +Z by one of the rig's symmetric angles renders as a
    permutation of its views, exactly: the normaliser's centre and scale turn with it."""
    orders = turn_orders(rig)
    assert orders.shape == (turns, renderer.get_rig(rig).num_views)
    assert np.array_equal(orders[0], np.arange(orders.shape[1]))
    chair = synth.make_shape("chair", synth.shape_rng(0, "chair", "train", 2))
    views = renderer.render_views(renderer.normalize(chair), rig, 48)
    step = 360 / turns
    for k in {1, turns // 2, turns - 1}:
        turned = renderer.render_views(renderer.normalize(rotate_z(chair, k * step)), rig, 48)
        assert np.array_equal(views[orders[k]], turned), k
    off_grid = renderer.render_views(renderer.normalize(rotate_z(chair, step / 2)), rig, 48)
    assert not any(np.array_equal(views[order], off_grid) for order in orders)


def test_pairs_are_two_renders_of_one_shape_and_cover_every_render():
    labels = np.repeat([0, 1], 6)
    shape_ids = np.repeat([10, 11, 12, 13], 3)  # three renders per shape
    split = ViewSplit(
        classes=["a", "b"],
        rig="circle-12",
        num_views=12,
        size=2,
        labels=labels,
        names=[str(i) for i in range(12)],
        load=lambda i: np.full((12, 2, 2, 3), i, dtype=np.uint8),
        shape_ids=shape_ids,
        copies=np.tile([0, 1, 2], 4),
    )
    pairs = PairedViewDataset(split, np.arange(12), seed=0)
    assert len(pairs) == 8  # ceil(3 / 2) pairs per shape
    seen = set()
    for i in range(len(pairs)):
        views, label, shape = pairs[i]
        a, b = int(views[0, 0, 0, 0, 0]), int(views[1, 0, 0, 0, 0])
        assert shape_ids[a] == shape_ids[b] == shape and labels[a] == label
        seen |= {a, b}
    assert seen == set(range(12))
    first = pairs.pairs.copy()
    pairs.set_epoch(1)
    assert not np.array_equal(first, pairs.pairs)
    pairs.set_epoch(0)
    assert np.array_equal(first, pairs.pairs)


def test_renders_of_one_shape_stay_on_one_side_of_the_holdout():
    shape_ids = np.repeat(np.arange(20), 3)
    split = ViewSplit(
        classes=["a", "b"],
        rig="circle-12",
        num_views=12,
        size=2,
        labels=(shape_ids >= 10).astype(np.int64),
        names=[""] * 60,
        load=lambda i: np.zeros((12, 2, 2, 3), np.uint8),
        shape_ids=shape_ids,
        copies=np.tile([0, 1, 2], 20),
    )
    data = TrainData.from_split(split, val_fraction=0.2, seed=0)
    assert not set(shape_ids[data.train_idx]) & set(shape_ids[data.val_idx])
    assert len(data.val_idx) == 4 and (split.copies[data.val_idx] == 0).all()
    assert len(data.train_idx) == 16 * 3
    # A recipe may take fewer of the copies the store holds (an ablation on one store).
    assert (split.copies[data.train_rows(Recipe(copies=1))] <= 1).all()
    assert len(data.train_rows(Recipe(copies=0))) == 16
    assert len(data.train_rows(Recipe())) == 16 * 3
