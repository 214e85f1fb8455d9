import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DIM = 16


def reindexed(root: Path, factory: str, seed: int, n: int = 600) -> tuple[np.ndarray, list[int]]:
    """An index of `factory` at `root`, built by a reindex of n random unit vectors (drawn
    with `seed`): (the vectors, their shape ids)."""
    from index import ShapeIndex

    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with ShapeIndex.open(root, "m", dim=DIM, factory=factory) as index:
        with index.rebuild() as builder:
            ids = [
                builder.add(v, name=f"b{i}", sha256=f"b{i}", source="reindex")
                for i, v in enumerate(vectors)
            ]
            builder.commit()
    return vectors, ids


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def spawn(code: str, *args: str) -> subprocess.Popen:
    """A child Python process running `code` against this checkout, stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
