"""The descriptor bench's instance-retrieval loop, on three synthetic shapes and the
shipped weights (render and embed as the service does; seconds)."""

from pathlib import Path

import numpy as np
import pytest
import trimesh

import gmvit
from app import rerank
from bench import descriptor, metrics, perturb
from gmvit.data import synth

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "gmvit-mini-synth10.pt"


def test_distances_are_euclidean():
    rng = np.random.default_rng(0)
    gallery, queries = rng.normal(size=(5, 7)), rng.normal(size=(3, 7))
    expected = np.linalg.norm(queries[:, None] - gallery[None], axis=-1)
    assert np.allclose(descriptor._distances(gallery, queries), expected, atol=1e-5)


@pytest.mark.skipif(not WEIGHTS.exists(), reason="needs the shipped weights")
def test_instance_retrieval_finds_subdivided_copies_of_distinct_shapes(tmp_path):
    files = []
    for name in ("chair", "bed", "monitor"):
        mesh = synth.make_shape(name, synth.shape_rng(0, name, "test", 0))
        files.append(tmp_path / f"{name}.off")
        files[-1].write_bytes(trimesh.exchange.off.export_off(mesh).encode())
    embedders = {"mini": gmvit.Embedder(WEIGHTS, threads=1)}
    result = descriptor.instance_retrieval(files, embedders, seed=0, desc="test")
    assert result["meshes"] == 3
    assert list(result["perturbations"]) == list(perturb.PERTURBATIONS)
    subdivided = result["perturbations"]["subdivision"]
    # the same surface renders the same views: every view-based method finds it first
    assert subdivided["pixels"]["top1"] == 1.0
    assert subdivided["mini"]["top1"] == 1.0
    assert subdivided["mini /search"]["top1"] == 1.0
    assert subdivided["failed"] == []
    for row in result["perturbations"].values():
        for method in ("mini", "mini /search", *descriptor.BASELINES):
            assert 0.0 <= row[method]["top1"] <= row[method]["top5"] == 1.0


def test_the_synthetic_gallery_is_seed_0s_test_split_and_the_index_its_training_split(tmp_path):
    test = descriptor.labelled_files(descriptor.synth_folder(tmp_path, ["chair"], "test", 2))
    train = descriptor.labelled_files(descriptor.synth_folder(tmp_path, ["chair"], "train", 2))
    assert [label for _, label in test + train] == ["chair"] * 4
    for files, split in ((test, "test"), (train, "train")):
        for index, (path, _) in enumerate(files):
            expected = synth.make_shape("chair", synth.shape_rng(0, "chair", split, index))
            mesh = trimesh.load(path, process=False)
            assert np.allclose(mesh.vertices, expected.vertices, atol=1e-5)


def test_search_ranks_settle_only_near_ties_and_by_the_views():
    """Query 0's target is second by the descriptor, within the margin of the first, and
    its views are the query's: /search finds it first. Query 1's target is second too, but
    out of the margin: it stays second whatever its views."""
    margin = descriptor.RERANK_MARGIN
    rng = np.random.default_rng(0)
    signatures = rng.uniform(0, 255, (3, 12, rerank.SIGNATURE_PX**2)).astype(np.float32)
    cosine = np.array([[1.0 - margin / 2, 1.0, 0.5], [0.5, 1.0, 1.0 - 4 * margin]])
    distances = np.sqrt(2.0 - 2.0 * cosine)
    targets = np.array([0, 2])
    queries = signatures[[0, 2]]
    ranks = descriptor.search_ranks(distances, targets, signatures, queries, "circle-12")
    assert list(ranks) == [0, 1]
    assert list(metrics.target_ranks(distances, targets)) == [1, 1]
