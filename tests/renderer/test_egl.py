"""The one-pass renderer under EGL, the GPU machine's platform, here on Mesa's llvmpipe.

The same driver behind EGL and OSMesa must give the same bytes: what differs on a GPU is
then only the GL implementation, not our code path (context, framebuffer, orientation).
pyrender's own EGL path is multisampled and so is not what the networks are trained on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import trimesh

from renderer import normalize, render_views
from tests.renderer.meshes import arm_shape

REPO = Path(__file__).resolve().parents[2]

RENDER = """
import sys
import numpy as np
import trimesh
from OpenGL import GL
from renderer import normalize
from renderer.render import render_views, render_views_per_view, _thread_state
from tests.renderer.meshes import arm_shape
meshes = [normalize(arm_shape()), normalize(trimesh.creation.torus(1.0, 0.3))]
one_pass = np.stack([render_views(m, "dodecahedron-20", 64) for m in meshes])
assert _thread_state.layered is not None, "no layered rendering under EGL"
per_view = np.stack([render_views_per_view(m, "dodecahedron-20", 64) for m in meshes])
np.savez(sys.argv[1], one_pass=one_pass, per_view=per_view,
         renderer=GL.glGetString(GL.GL_RENDERER).decode())
"""


def test_one_pass_under_egl_gives_the_osmesa_bytes(tmp_path):
    out = tmp_path / "egl.npz"
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl"}
    result = subprocess.run(
        [sys.executable, "-c", RENDER, str(out)],
        env=env, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    egl = np.load(out)
    assert "llvmpipe" in str(egl["renderer"]), "this test is about Mesa's software driver"
    meshes = [normalize(arm_shape()), normalize(trimesh.creation.torus(1.0, 0.3))]
    osmesa = np.stack([render_views(m, "dodecahedron-20", 64) for m in meshes])
    assert egl["one_pass"].tobytes() == osmesa.tobytes()
    # pyrender under EGL antialiases edges (4x MSAA): same shapes, other edge pixels.
    assert (egl["per_view"] != osmesa).any()
    fg_msaa, fg_osmesa = (egl["per_view"] < 250).any(-1), (osmesa < 250).any(-1)
    assert (fg_msaa & fg_osmesa).sum() / (fg_msaa | fg_osmesa).sum() > 0.9
