"""The trivial descriptors the bench compares against."""

import numpy as np
import pytest
import trimesh

import renderer
from bench import baselines


def test_pca_eigenvalues_of_a_box_are_its_squared_half_extents_scaled():
    box = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    expected = np.array([16.0, 4.0, 1.0]) / np.linalg.norm([16.0, 4.0, 1.0])
    assert np.allclose(baselines.pca_eigenvalues(box), expected, atol=1e-6)
    turned = box.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(0.7, (1, 2, 3)))
    turned.apply_scale(3.0)
    assert np.allclose(baselines.pca_eigenvalues(turned), expected, atol=1e-6)


def test_d2_histogram_is_a_seeded_distribution_blind_to_rotation():
    mesh = renderer.normalize(trimesh.creation.cylinder(radius=0.3, height=1.5))
    histogram = baselines.d2_histogram(mesh)
    assert histogram.shape == (baselines.D2_BINS,)
    assert histogram.sum() == pytest.approx(1.0)
    assert np.array_equal(histogram, baselines.d2_histogram(mesh))
    turned = mesh.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(1.0, (0, 0, 1)))
    assert np.abs(baselines.d2_histogram(turned) - histogram).max() < 1e-3
    sphere = renderer.normalize(trimesh.creation.icosphere())
    assert np.abs(baselines.d2_histogram(sphere) - histogram).sum() > 0.2


def test_view_pixels_are_the_grey_values_of_every_view():
    views = np.zeros((12, 64, 64, 3), dtype=np.uint8)
    views[3, 10, 20] = 90
    views[5, 0, 0] = (10, 20, 30)  # a colour becomes its grey mean
    pixels = baselines.view_pixels(views)
    assert pixels.shape == (12 * 64 * 64,)
    assert pixels.dtype == np.uint8
    assert pixels.max() == 90 and pixels[3 * 64 * 64 + 10 * 64 + 20] == 90
    assert pixels[5 * 64 * 64] == 20


def test_pixels_are_compared_centred_and_of_unit_length():
    pixels = np.array([[0, 10, 20], [100, 120, 140], [5, 5, 5]], dtype=np.uint8)
    ready = baselines.centred_unit(pixels)
    assert np.allclose(ready[0], ready[1])  # same pattern, other brightness and contrast
    assert np.allclose(ready[0], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2))
    assert np.allclose(ready[2], 0.0)  # a flat image stays at the origin
