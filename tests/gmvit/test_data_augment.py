"""Batch transforms: the mirror augmentation agrees with rendering a mirrored mesh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import renderer
from gmvit import GMViTConfig
from gmvit.data import synth
from gmvit.data.datasets import augment_shapes, mirror_order, stratified_holdout
from gmvit.preprocess import resize_views, to_input


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
