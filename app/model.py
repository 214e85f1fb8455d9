"""The model and index a service process works with.

The shipped weights are the default. While that file does not exist yet (a fresh checkout
before training), the service runs on a randomly initialised GMViT-mini at a small image
size, saved once under the data dir so every process (server, workers) and every restart
shares the same model id and therefore the same index. Its labels are meaningless; the
neighbour vote over indexed shapes still works.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gmvit
from app.settings import DEFAULT_WEIGHTS, Settings
from gmvit.data import synth

log = logging.getLogger("gmvit.app")

RANDOM_IMAGE_SIZE = 64
RANDOM_RIG = "circle-12"


def random_weights_path(settings: Settings) -> Path:
    return settings.data_path / "models" / f"random-mini-{RANDOM_IMAGE_SIZE}px.pt"


def _ensure_random_weights(path: Path) -> Path:
    if not path.exists():
        import torch

        torch.manual_seed(0)
        model = gmvit.create_model(
            "mini",
            num_views=12,
            num_classes=len(synth.CLASSES),
            image_size=RANDOM_IMAGE_SIZE,
            rig=RANDOM_RIG,
        )
        # Written atomically; two processes racing here write the same seeded model.
        gmvit.save_checkpoint(path, model, list(synth.CLASSES), meta={"random_init": True})
    return path


def weights_path(settings: Settings) -> Path:
    """The checkpoint to serve: GMVIT_WEIGHTS, or the random fallback while the default
    weights are missing (a loud warning). A missing non-default file is an error."""
    path = settings.weights.expanduser()
    if path.exists():
        return path
    if path.resolve() != DEFAULT_WEIGHTS:
        raise gmvit.GMViTError(f"weights file {path} not found (GMVIT_WEIGHTS)")
    fallback = _ensure_random_weights(random_weights_path(settings))
    log.warning(
        "\n%s\nWARNING: %s does not exist yet; serving a RANDOMLY INITIALISED GMViT-mini "
        "(%s px).\nIts class labels are meaningless; search and the neighbour vote still "
        "work on what you index.\nSet GMVIT_WEIGHTS to a trained checkpoint.\n%s",
        "!" * 78,
        path,
        RANDOM_IMAGE_SIZE,
        "!" * 78,
    )
    return fallback


def load_embedder(settings: Settings) -> gmvit.Embedder:
    return gmvit.Embedder(weights_path(settings), threads=settings.threads)


def open_index(settings: Settings, model_id: str):
    import index

    return index.ShapeIndex.open(settings.index_root, model_id, factory=settings.index_factory)
