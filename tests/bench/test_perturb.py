"""The perturbations of the descriptor bench do what they say, and only that."""

import numpy as np
import pytest
import trimesh

from bench import perturb
from gmvit.data.perturb import DECIMATE_MIN_FACES, diagonal


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    mesh.apply_scale((2.0, 1.0, 0.5))
    mesh.apply_translation((0.3, -0.2, 1.0))
    return mesh


def test_rotation_keeps_heights_and_distances_from_the_axis(sphere):
    turned = perturb.rotation(sphere, rng())
    before, after = sphere.vertices, turned.vertices
    assert np.allclose(after[:, 2], before[:, 2])
    assert np.allclose(np.hypot(*after[:, :2].T), np.hypot(*before[:, :2].T))
    assert not np.allclose(after, before)  # it did turn
    assert np.array_equal(turned.faces, sphere.faces)
    assert np.allclose(perturb.rotation(sphere, rng()).vertices, after)  # seeded


def test_mirror_flips_handedness_and_keeps_faces_outwards(sphere):
    chiral = np.array([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    tetra = trimesh.Trimesh(chiral, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], process=False)
    mirrored = perturb.mirror(tetra, rng())
    edges = lambda m: m.vertices[1:] - m.vertices[0]  # noqa: E731
    assert np.linalg.det(edges(tetra)) == pytest.approx(-np.linalg.det(edges(mirrored)))
    assert tetra.volume > 0 and mirrored.volume == pytest.approx(tetra.volume)
    assert np.allclose(perturb.mirror(mirrored, rng()).vertices, tetra.vertices)
    assert perturb.mirror(sphere, rng()).volume == pytest.approx(sphere.volume)


def test_noise_is_a_fifth_of_a_percent_of_the_size_after_scale_and_shift(sphere):
    noisy = perturb.noise(sphere, rng())
    # undo the similarity: noisy = s * (v + jitter) + t, solved by least squares
    design = np.column_stack(
        [sphere.vertices.ravel(), np.tile(np.eye(3), (len(sphere.vertices), 1))]
    )
    (scale, *shift), *_ = np.linalg.lstsq(design, noisy.vertices.ravel(), rcond=None)
    jitter = (noisy.vertices - shift) / scale - sphere.vertices
    assert 0.5 <= scale <= 2.0
    assert jitter.std() / diagonal(sphere) == pytest.approx(0.002, rel=0.1)


def test_noise_moves_coincident_vertices_together():
    box = trimesh.creation.box()
    unmerged = trimesh.Trimesh(
        box.vertices[box.faces].reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False
    )
    noisy = perturb.noise(unmerged, rng())
    corners = np.unique(noisy.vertices.round(12), axis=0)
    assert len(corners) == 8  # still a closed box: each corner moved as one


def test_subdivision_keeps_the_surface(sphere):
    finer = perturb.subdivision(sphere, rng())
    assert len(finer.faces) == 4 * len(sphere.faces)
    assert finer.area == pytest.approx(sphere.area)
    assert np.allclose(finer.bounds, sphere.bounds)


def test_decimation_halves_a_dense_mesh(sphere):
    coarse = perturb.decimation(sphere, rng())
    assert len(coarse.faces) == pytest.approx(len(sphere.faces) / 2, abs=4)
    assert coarse.area == pytest.approx(sphere.area, rel=0.05)


def test_decimation_retriangulates_a_box_instead_of_deleting_it():
    box = trimesh.creation.box(extents=(1.0, 0.2, 2.0))
    changed = perturb.decimation(box, rng())
    assert len(changed.faces) >= DECIMATE_MIN_FACES / 2
    assert not np.array_equal(changed.faces, box.faces)
    assert np.allclose(changed.bounds, box.bounds)
    assert changed.area == pytest.approx(box.area, rel=1e-3)
