"""The micro-batcher in front of the Embedder: concurrent calls share one forward pass
and get exactly what a call of their own would have given."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import gmvit
from app.batcher import BatchingEmbedder
from gmvit.errors import GMViTError


class CountingEmbedder:
    """The real Embedder, counting its forward passes and the shapes in each; its first
    pass waits for `release`, so the calls behind it queue up meanwhile."""

    def __init__(self, embedder: gmvit.Embedder) -> None:
        self.inner = embedder
        self.batches: list[int] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.model_id, self.class_names = embedder.model_id, embedder.class_names
        self.open_set = embedder.open_set
        self.rig, self.image_size, self.num_views = (
            embedder.rig,
            embedder.image_size,
            embedder.num_views,
        )

    def embed(self, views: np.ndarray) -> gmvit.Embedding:
        self.entered.set()
        self.release.wait(60)
        self.batches.append(len(views))
        return self.inner.embed(views)


@pytest.fixture
def model(tiny_weights) -> CountingEmbedder:
    return CountingEmbedder(gmvit.Embedder(tiny_weights, threads=1))


def views(model: CountingEmbedder, seed: int) -> np.ndarray:
    shape = (model.num_views, model.image_size, model.image_size, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_concurrent_calls_share_a_forward_and_get_their_own_rows(model) -> None:
    batcher = BatchingEmbedder(model, max_batch=8, max_wait_ms=0)
    inputs = [views(model, seed) for seed in range(6)]
    alone = [model.inner.embed(v) for v in inputs]
    try:
        first = batcher.submit(inputs[0])
        assert model.entered.wait(60)  # the first pass started (and waits)
        rest = [batcher.submit(v) for v in inputs[1:]]
        assert batcher.waiting == 5  # queued behind it
        model.release.set()
        together = [first.result(60), *(future.result(60) for future in rest)]
    finally:
        model.release.set()
        batcher.close()
    assert model.batches == [1, 5]  # the five waiting shared one pass
    for mine, own in zip(together, alone, strict=True):
        np.testing.assert_allclose(mine.descriptors, own.descriptors, atol=1e-5)
        np.testing.assert_allclose(mine.probabilities, own.probabilities, atol=1e-5)


def test_a_bad_call_fails_alone(model) -> None:
    batcher = BatchingEmbedder(model, max_batch=4, max_wait_ms=0)
    bad = np.zeros((model.num_views, 5, 5, 3), np.uint8)
    try:
        first = batcher.submit(views(model, 0))
        assert model.entered.wait(60)  # the first pass started (and waits)
        good, refused = batcher.submit(views(model, 1)), batcher.submit(bad)
        assert batcher.waiting == 2  # both queued behind it
        model.release.set()
        first.result(60)
        assert good.result(60).descriptors.shape == (1, 512)
        with pytest.raises(GMViTError):
            refused.result(60)
    finally:
        model.release.set()
        batcher.close()


def test_a_submitted_shape_leaves_its_caller_free_until_it_wants_the_row(model) -> None:
    batcher = BatchingEmbedder(model, max_batch=4, max_wait_ms=0)
    shape = views(model, 7)
    try:
        future = batcher.submit(shape)  # returns while the forward waits for `release`
        assert model.entered.wait(60) and not future.done()
        model.release.set()
        mine = future.result(60)
    finally:
        model.release.set()
        batcher.close()
    own = model.inner.embed(shape)
    np.testing.assert_allclose(mine.descriptors, own.descriptors, atol=1e-5)
