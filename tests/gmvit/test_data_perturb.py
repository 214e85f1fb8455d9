"""Perturbed copies of a mesh: each operation does what it says, draws are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from gmvit.data import perturb, synth


@pytest.fixture(scope="module")
def chair() -> trimesh.Trimesh:
    return synth.make_shape("chair", synth.shape_rng(0, "chair", "train", 1))


def test_a_turn_about_z_keeps_heights_and_distances_from_the_axis(chair):
    turned = perturb.rotate_z(chair, 123.0)
    np.testing.assert_allclose(turned.vertices[:, 2], chair.vertices[:, 2])
    np.testing.assert_allclose(
        np.linalg.norm(turned.vertices[:, :2], axis=1),
        np.linalg.norm(chair.vertices[:, :2], axis=1),
    )
    quarter = perturb.rotate_z(
        trimesh.Trimesh([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 1, 2]]), 90
    )
    np.testing.assert_allclose(quarter.vertices[0], [0.0, 1.0, 0.0], atol=1e-12)


def test_a_mirror_image_faces_outwards(chair):
    mirrored = perturb.mirror(chair)
    np.testing.assert_allclose(mirrored.vertices, chair.vertices * [1, -1, 1])
    assert mirrored.volume == pytest.approx(chair.volume)  # rewound: volume stays positive
    assert mirrored.volume > 0


def test_retessellation_keeps_the_surface_and_noise_moves_every_vertex(chair):
    finer = perturb.subdivide(chair)
    assert len(finer.faces) == 4 * len(chair.faces)
    assert finer.area == pytest.approx(chair.area)
    sphere = trimesh.creation.icosphere(subdivisions=3)
    coarser = perturb.decimate(sphere, 0.5)
    assert 0.4 * len(sphere.faces) <= len(coarser.faces) <= 0.6 * len(sphere.faces)
    assert coarser.area == pytest.approx(sphere.area, rel=0.05)
    # A mesh split at every face (as exporters split it along seams and sharp edges) is
    # decimated as one surface, not torn into pieces collapsed one by one.
    soup = sphere.copy()
    soup.unmerge_vertices()
    torn = perturb.decimate(soup, 0.5)
    assert 0.4 * len(soup.faces) <= len(torn.faces) <= 0.6 * len(soup.faces)
    assert torn.area == pytest.approx(sphere.area, rel=0.05)
    np.testing.assert_allclose(torn.bounds, sphere.bounds, atol=0.05)
    # A low-poly mesh is refined before decimation: its parts stay, its triangles change.
    few = perturb.decimate(chair, 0.5)
    assert len(few.faces) >= perturb.DECIMATE_MIN_FACES // 2
    np.testing.assert_allclose(few.bounds, chair.bounds, atol=0.02 * np.linalg.norm(chair.extents))
    noisy = perturb.jitter(chair, 0.002, np.random.default_rng(0))
    moved = noisy.vertices - chair.vertices
    diagonal = np.linalg.norm(chair.extents)
    assert (np.linalg.norm(moved, axis=1) > 0).all()
    assert np.linalg.norm(moved, axis=1).mean() < 0.01 * diagonal
    # Vertices at one position (split along sharp edges) move together: no cracks.
    _, where = np.unique(chair.vertices, axis=0, return_inverse=True)
    for group in np.unique(where):
        np.testing.assert_array_equal(
            moved[where == group], moved[where == group][:1].repeat((where == group).sum(), 0)
        )
    with pytest.raises(ValueError, match="keep"):
        perturb.decimate(sphere, 0.0)


def test_a_drawn_perturbation_is_reproducible_and_recorded(chair):
    draws = [perturb.Perturbation.draw(np.random.default_rng([0, i])) for i in range(40)]
    assert draws[7] == perturb.Perturbation.draw(np.random.default_rng([0, 7]))
    assert perturb.Perturbation(**draws[7].to_dict()) == draws[7]
    assert {d.retessellate for d in draws} == {"subdivide", "decimate", None}
    assert {d.mirror for d in draws} == {True, False}
    assert len({d.degrees for d in draws}) == 40  # any angle, not a few steps
    noisy = [d for d in draws if d.sigma > 0]
    assert noisy and all(d.noise_faces >= 2**10 for d in noisy)
    assert all(d.noise_faces == 0 for d in draws if d.sigma == 0)
    before = chair.vertices.copy()
    one = draws[0].apply(chair, np.random.default_rng(1))
    assert np.array_equal(one.vertices, draws[0].apply(chair, np.random.default_rng(1)).vertices)
    assert np.array_equal(chair.vertices, before)  # the source mesh is left alone


def test_noise_falls_on_a_surface_as_fine_as_a_real_mesh(chair):
    # The synthetic families have a few hundred faces; a noisy copy is refined first, so its
    # noise crumples a fine surface as it would a real mesh's.
    assert len(chair.faces) < 2000
    copy = perturb.Perturbation(0.0, False, None, 1.0, 0.002, 20_000)
    noisy = copy.apply(chair, np.random.default_rng(0))
    assert 20_000 <= len(noisy.faces) < 4 * 20_000
    np.testing.assert_allclose(
        noisy.bounds, chair.bounds, atol=0.02 * np.linalg.norm(chair.extents)
    )
    # Without noise nothing is refined: a finer flat surface renders as the coarse one.
    assert len(perturb.Perturbation(0.0, False, None, 1.0, 0.0, 0).apply(chair, None).faces) == len(
        chair.faces
    )
    # Refinement stops before passing the face budget.
    assert perturb.refine(chair, 10**9).faces.shape[0] <= perturb.MAX_SUBDIVIDE_FACES
    assert perturb.refine(chair, 10).faces.shape[0] == len(chair.faces)
