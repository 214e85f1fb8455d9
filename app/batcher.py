"""Concurrent embeds share forward passes.

Requests (and reindex chunks) render their views on their own threads, then hand them
to `BatchingEmbedder.submit` and go on: the first shape to arrive waits at most
`max_wait_ms` for others, up to `max_batch` shapes go through the network in one forward,
and each caller gets its own row back. Under load the forward runs on full batches; alone,
a shape waits no longer than `max_wait_ms`.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from gmvit import Embedder, Embedding


@dataclass
class _Call:
    views: np.ndarray  # (V, H, W, 3) of one shape
    result: Future


class BatchingEmbedder:
    """An `Embedder` for many threads at once: one shape per `submit`, batched underneath."""

    def __init__(self, embedder: Embedder, *, max_batch: int, max_wait_ms: float) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.model_id = embedder.model_id
        self.class_names = embedder.class_names
        self.open_set = embedder.open_set
        self.rig = embedder.rig
        self.image_size = embedder.image_size
        self.num_views = embedder.num_views
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="embed-batcher", daemon=True)
        self._thread.start()

    def submit(self, views: np.ndarray) -> Future[Embedding]:
        """The embedding of one shape's views (V, H, W, 3), to come: computed with whatever
        other shapes arrive within `max_wait_ms`. The caller's thread is free meanwhile."""
        call = _Call(views, Future())
        self._calls.put(call)
        return call.result

    @property
    def waiting(self) -> int:
        """Calls queued for the next forward pass."""
        return self._calls.qsize()

    def _serve(self) -> None:
        while (first := self._calls.get()) is not None:
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while len(batch) < self.max_batch:
                try:
                    call = self._calls.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if call is None:
                    stop = True
                    break
                batch.append(call)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Call]) -> None:
        try:
            out = self.embedder.embed(np.stack([call.views for call in batch]))
        except Exception as exc:  # a bad call fails alone, the others are run again
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
            else:
                for call in batch:
                    self._run([call])
            return
        for row, call in enumerate(batch):
            call.result.set_result(
                Embedding(out.descriptors[row : row + 1], out.probabilities[row : row + 1])
            )

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join()
