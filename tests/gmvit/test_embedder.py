"""The Embedder: uint8 views in, unit descriptors and probabilities out, from many threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from gmvit import Embedder, GMViTConfig, GMViTError, create_model, save_checkpoint
from gmvit.preprocess import to_input

SIZE = 32


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("mini", 12, 4, image_size=SIZE).eval()
    path = tmp_path_factory.mktemp("ckpt") / "mini.pt"
    save_checkpoint(path, model, ["a", "b", "c", "d"])
    return path


def random_views(batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, 12, SIZE, SIZE, 3), dtype=np.uint8)


def test_embed_normalises_and_batches(checkpoint_path):
    embedder = Embedder(checkpoint_path, threads=1, batch_size=2)
    assert embedder.model_id.startswith("mini-")
    assert (embedder.rig, embedder.image_size, embedder.num_views) == ("circle-12", SIZE, 12)
    assert embedder.class_names == ["a", "b", "c", "d"]
    views = random_views(5, 0)
    result = embedder.embed(views)
    assert result.descriptors.shape == (5, 512) and result.descriptors.dtype == np.float32
    assert result.probabilities.shape == (5, 4) and result.probabilities.dtype == np.float32
    assert np.allclose(np.linalg.norm(result.descriptors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)

    # Same numbers as the model on ImageNet-normalised floats, one shape at a time.
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    x = torch.from_numpy(((views / np.float32(255) - mean) / std).astype(np.float32))
    with torch.no_grad():
        expected = embedder.model(x.permute(0, 1, 4, 2, 3)).descriptor.numpy()
    assert np.allclose(result.descriptors, expected, atol=1e-5)
    single = embedder.embed(views[3])
    assert np.allclose(single.descriptors[0], result.descriptors[3], atol=1e-5)


def test_embed_is_thread_safe(checkpoint_path):
    embedder = Embedder(checkpoint_path, batch_size=3)
    batches = [random_views(3, seed) for seed in range(6)]
    serial = [embedder.embed(b).descriptors for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda b: embedder.embed(b).descriptors, batches))
    for one, other in zip(serial, parallel, strict=True):
        assert np.allclose(one, other, atol=1e-6)


def test_embedder_builds_the_input_training_builds(tmp_path):
    """Preprocessing comes from the checkpoint's config: a model trained with its own mean
    and std is served with them, through the function training uses."""
    torch.manual_seed(1)
    model = create_model("mini", 12, 4, image_size=SIZE, mean=(0.9, 0.1, 0.5), std=(0.1, 0.3, 2.0))
    path = tmp_path / "mini.pt"
    save_checkpoint(path, model.eval(), ["a", "b", "c", "d"])
    embedder = Embedder(path, threads=1)
    assert embedder.config.mean == (0.9, 0.1, 0.5) and embedder.config.std == (0.1, 0.3, 2.0)
    views = random_views(3, 7)
    result = embedder.embed(views)
    as_in_training = to_input(torch.from_numpy(views), embedder.config)
    imagenet = to_input(torch.from_numpy(views), GMViTConfig("mini", image_size=SIZE))
    with torch.no_grad():
        expected = embedder.model(as_in_training)
        other = embedder.model(imagenet).descriptor.numpy()
    assert np.allclose(result.descriptors, expected.descriptor.numpy(), atol=1e-5)
    assert np.allclose(result.probabilities, torch.softmax(expected.logits, 1).numpy(), atol=1e-5)
    assert not np.allclose(result.descriptors, other, atol=1e-3)


@pytest.mark.parametrize(
    "views, message",
    [
        (np.zeros((12, 64, 64, 3), np.uint8), r"\(12, 32, 32, 3\)"),
        (np.zeros((20, SIZE, SIZE, 3), np.uint8), r"got \(1, 20, 32, 32, 3\)"),
        (np.zeros((12, SIZE, SIZE, 3), np.float32), "uint8"),
        (np.zeros((0, 12, SIZE, SIZE, 3), np.uint8), "empty"),
        ([[0]], "uint8"),
    ],
)
def test_bad_views_are_refused(checkpoint_path, views, message):
    embedder = Embedder(checkpoint_path)
    with pytest.raises(GMViTError, match=message):
        embedder.embed(views)
