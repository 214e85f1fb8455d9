"""The model and the index a service process (server or worker) works with.

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
from app.batcher import BatchingEmbedder
from app.settings import DEFAULT_WEIGHTS, Settings
from gmvit.data import synth
from index import ShapeIndex

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


def load_embedder(settings: Settings, weights: Path | None = None) -> BatchingEmbedder:
    """The model to serve (`weights`, default `weights_path(settings)`) on GMVIT_DEVICE at
    GMVIT_PRECISION, behind a micro-batcher (`GMVIT_EMBED_BATCH`, `..._WAIT_MS`)."""
    embedder = gmvit.Embedder(
        weights or weights_path(settings),
        threads=settings.threads,
        device=settings.device,
        precision=settings.precision,
    )
    return BatchingEmbedder(
        embedder, max_batch=settings.embed_batch, max_wait_ms=settings.embed_wait_ms
    )


def open_index(settings: Settings, model_id: str) -> ShapeIndex:
    return ShapeIndex.open(
        settings.index_root,
        model_id,
        factory=settings.index_factory,
        ef_search=settings.index_ef_search,
        nprobe=settings.index_nprobe,
    )


def import_thumbnails(settings: Settings, index: ShapeIndex) -> None:
    """Move the thumbnails of a data dir from before they lived in the index
    (DATA_DIR/thumbs/<id>.png) into it, once; files of shapes that are gone are dropped."""
    folder = settings.data_path / "thumbs"
    if not folder.is_dir():
        return
    moved = 0
    for path in folder.glob("*.png"):
        if path.stem.isdigit() and index.set_thumbnail(int(path.stem), path.read_bytes()):
            moved += 1
        path.unlink()
    folder.rmdir()
    log.info("moved %d thumbnails from %s into the index", moved, folder)
