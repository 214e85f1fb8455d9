"""The real app (FastAPI TestClient, real renderer, real index) on a tiny random model at
32 px, so each request renders and embeds in a fraction of a second."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient

import gmvit
from app.main import create_app
from app.settings import Settings
from gmvit.data import synth

API_KEY = "test-key"
TINY_CLASSES = ["box", "cylinder", "sphere"]


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    model = gmvit.create_model("mini", num_views=12, num_classes=3, image_size=32)
    path = tmp_path_factory.mktemp("weights") / "tiny-mini-32.pt"
    gmvit.save_checkpoint(path, model, TINY_CLASSES)
    return path


def off_bytes(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.exchange.off.export_off(mesh, digits=6).encode()


def synth_off(class_name: str, seed: int) -> bytes:
    """One synthetic shape of `class_name` as OFF bytes (different seeds, different files)."""
    return off_bytes(synth.make_shape(class_name, np.random.default_rng(seed)))


def make_settings(root: Path, weights: Path, **overrides) -> Settings:
    values = dict(
        data_dir=root / "var",
        weights=weights,
        api_key=API_KEY,
        read_key=None,
        redis_url=None,
        demo=False,
        allowed_roots=[root / "allowed"],
        workers=1,
        queue=2,
        max_upload_bytes=256 * 1024,
        job_stale_s=5.0,
    )
    values.update(overrides)
    (root / "allowed").mkdir(parents=True, exist_ok=True)
    return Settings(**values)


@pytest.fixture(scope="module")
def app_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app")


@pytest.fixture(scope="module")
def client(app_root: Path, tiny_weights: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(app_root, tiny_weights))) as test_client:
        yield test_client


WRITE = {"X-API-Key": API_KEY}


@contextmanager
def index_write_lock(data_dir: Path) -> Iterator[None]:
    """Hold the index's write lock, as another process would: a reindex cannot commit."""
    (lock,) = (data_dir / "index").glob("*/LOCK")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
