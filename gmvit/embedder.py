"""The Embedder: rendered views in, descriptors and class probabilities out. What the service calls.

Where the forward runs is `gmvit.runtime`'s business: torch on the CPU (the default) or a
CUDA GPU (`device="cuda"`, bf16 autocast unless `precision="fp32"`), or ONNX Runtime for an
`.onnx` file written by `gmvit export`. The input is built as in training, by
`gmvit.preprocess.to_input` with the checkpoint's config (image size, mean, std).

Thread safety: `embed` may be called from several threads at once. Input checks and
normalisation run in the calling thread; the forward passes of one Embedder are serialised
by a lock, because the runtime already spreads one forward over `threads` cores and
concurrent forwards would only fight over them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from gmvit.checkpoint import Checkpoint
from gmvit.errors import GMViTError
from gmvit.preprocess import to_input
from gmvit.runtime import TorchRuntime, open_model


@dataclass
class Embedding:
    descriptors: np.ndarray  # float32 (B, 512), L2-normalised
    probabilities: np.ndarray  # float32 (B, C), softmax of the logits


class Embedder:
    def __init__(
        self,
        checkpoint: Checkpoint | str | os.PathLike,
        *,
        threads: int | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        precision: str = "auto",
    ) -> None:
        """`checkpoint`: a Checkpoint, its file, or an `.onnx` export of one. `device`:
        "cpu" or "cuda"; `precision`: "fp32", "bf16" or "auto" (bf16 on cuda only)."""
        if batch_size < 1:
            raise GMViTError(f"batch_size must be at least 1, not {batch_size}")
        if threads is not None:
            if threads < 1:
                raise GMViTError(f"threads must be at least 1, not {threads}")
            # Process-wide in torch: set once here, by the owner of the process's model.
            torch.set_num_threads(threads)
        self.runtime, info = open_model(
            checkpoint, device=device, precision=precision, threads=threads
        )
        config = info.config
        self.config = config
        # The torch module where the runtime is torch; None for an ONNX graph.
        self.model = self.runtime.model if isinstance(self.runtime, TorchRuntime) else None
        self.model_id = info.model_id
        self.class_names = info.class_names
        self.open_set = info.open_set
        self.rig = config.rig
        self.image_size = config.image_size
        self.num_views = config.num_views
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def _check(self, views: np.ndarray) -> np.ndarray:
        if not isinstance(views, np.ndarray) or views.dtype != np.uint8:
            kind = getattr(views, "dtype", type(views).__name__)
            raise GMViTError(f"views must be a uint8 numpy array, got {kind}")
        if views.ndim == 4:
            views = views[np.newaxis]
        size, v = self.image_size, self.num_views
        if views.ndim != 5 or views.shape[1:] != (v, size, size, 3):
            raise GMViTError(
                f"views must have shape ({v}, {size}, {size}, 3) or (B, {v}, {size}, {size}, 3) "
                f"for model {self.model_id} (rig {self.rig}), got {views.shape}"
            )
        if views.shape[0] == 0:
            raise GMViTError("no shapes to embed: the batch is empty")
        return views

    def embed(self, views: np.ndarray) -> Embedding:
        """uint8 views (V, H, W, 3) or (B, V, H, W, 3), H = W = image_size -> Embedding of B."""
        views = self._check(views)
        descriptors, probabilities = [], []
        for start in range(0, views.shape[0], self.batch_size):
            x = to_input(torch.from_numpy(views[start : start + self.batch_size]), self.config)
            with self._lock:
                chunk_descriptors, logits = self.runtime.forward(x)
            descriptors.append(chunk_descriptors)
            probabilities.append(torch.softmax(torch.from_numpy(logits), dim=-1).numpy())
        return Embedding(
            descriptors=np.concatenate(descriptors).astype(np.float32, copy=False),
            probabilities=np.concatenate(probabilities).astype(np.float32, copy=False),
        )
