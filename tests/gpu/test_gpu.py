"""The GPU path: the Embedder on CUDA (fp32 and bf16) and rendering under EGL.

Runs only where torch sees a CUDA GPU (skipped elsewhere, e.g. on the 2-core CI machine).
An EGL machine needs the Debian packages docs/networks.md lists; without them the EGL test
fails with the loader's message rather than skipping, so a GPU run notices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gmvit import Embedder, load_checkpoint
from gmvit.runtime import BF16_MEAN_COSINE, BF16_MIN_COSINE
from tests.gmvit.test_runtime import cosines

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "weights"
SIZE = load_checkpoint(WEIGHTS / "gmvit-mini-synth10.pt").config.image_size  # the students'

# Renders the synthetic test shapes in a fresh interpreter: the GL platform is chosen
# when pyrender is first imported, so OSMesa and EGL cannot share a process.
RENDER = """
import json, sys
import numpy as np
from gmvit.data.synth import CLASSES, make_shape, shape_rng
from renderer import normalize, render_views
size = int(sys.argv[2])
views = [render_views(normalize(make_shape(n, shape_rng(7, n, "test", 0))), "circle-12", size)
         for n in CLASSES]
np.save(sys.argv[1], np.stack(views))
"""


def render(platform: str, size: int, out: Path) -> np.ndarray:
    env = {**os.environ, "PYOPENGL_PLATFORM": platform}
    result = subprocess.run(
        [sys.executable, "-c", RENDER, str(out), str(size)],
        env=env, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"rendering under {platform} failed:\n{result.stderr}"
    return np.load(out)


@pytest.fixture(scope="module")
def osmesa_views(tmp_path_factory) -> np.ndarray:
    return render("osmesa", SIZE, tmp_path_factory.mktemp("osmesa") / "views.npy")


@pytest.mark.parametrize("variant", ["mini", "simple"])
def test_the_embedder_on_cuda_matches_the_cpu(variant, osmesa_views):
    weights = WEIGHTS / f"gmvit-{variant}-synth10.pt"
    cpu = Embedder(weights).embed(osmesa_views)
    fp32 = Embedder(weights, device="cuda", precision="fp32").embed(osmesa_views)
    # cuDNN may use TF32 for convolutions: close to the CPU, not equal.
    assert cosines(cpu.descriptors, fp32.descriptors).min() >= 0.999
    auto = Embedder(weights, device="cuda")
    assert auto.runtime.description == "torch cuda bf16"
    bf16 = auto.embed(osmesa_views)
    similarity = cosines(cpu.descriptors, bf16.descriptors)
    assert similarity.min() >= BF16_MIN_COSINE and similarity.mean() >= BF16_MEAN_COSINE
    assert (bf16.probabilities.argmax(1) == cpu.probabilities.argmax(1)).mean() >= 0.9


def test_egl_renders_what_osmesa_renders(osmesa_views, tmp_path):
    egl = render("egl", SIZE, tmp_path / "egl.npy")
    assert egl.shape == osmesa_views.shape and egl.dtype == np.uint8
    # Two GL implementations: the same silhouettes and shading up to rounding and the
    # pixels on edges, not the same bytes.
    fg_egl, fg_osmesa = (egl < 250).any(-1), (osmesa_views < 250).any(-1)
    iou = (fg_egl & fg_osmesa).sum() / (fg_egl | fg_osmesa).sum()
    assert iou >= 0.97, f"silhouettes differ: IoU {iou:.3f}"
    both = fg_egl & fg_osmesa
    difference = np.abs(egl.astype(int) - osmesa_views.astype(int)).max(-1)[both]
    assert np.median(difference) <= 1, json.dumps(np.bincount(difference).tolist())
