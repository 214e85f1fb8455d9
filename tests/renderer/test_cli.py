"""`gmvit render` as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.renderer.meshes import arm_shape

ROOT = Path(__file__).resolve().parents[2]


def _gmvit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_writes_a_grid_and_one_png_per_view_with_depth(tmp_path):
    mesh_path = tmp_path / "arm.ply"
    mesh_path.write_bytes(arm_shape().export(file_type="ply"))
    grid, views_dir = tmp_path / "grid.png", tmp_path / "views"
    result = _gmvit(
        "render", str(mesh_path), "--rig", "dodecahedron-20", "--size", "32",
        "-o", str(grid), "--views-dir", str(views_dir), "--depth",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(grid).size == (5 * 32, 4 * 32)
    assert Image.open(tmp_path / "grid-depth.png").size == (5 * 32, 4 * 32)
    names = sorted(p.name for p in views_dir.iterdir())
    assert names == [f"depth_{i:02d}.png" for i in range(20)] + [
        f"view_{i:02d}.png" for i in range(20)
    ]
    view = np.array(Image.open(views_dir / "view_00.png"))
    assert view.shape == (32, 32, 3) and (view < 250).any() and (view == 255).any()
    depth = np.array(Image.open(views_dir / "depth_00.png"))
    assert depth.dtype in (np.uint16, np.int32) and depth.max() > 0
    assert ((depth > 0) == (view < 250).any(axis=-1)).mean() > 0.95


def test_a_bad_file_is_one_line_on_stderr_and_exit_2(tmp_path):
    bad = tmp_path / "broken.off"
    bad.write_bytes(b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n")
    result = _gmvit("render", str(bad), "-o", str(tmp_path / "grid.png"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "vertex 9" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "grid.png").exists()
