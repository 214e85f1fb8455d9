import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DIM = 16


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
