"""Rendered-view stores: real OSMesa renders, failures listed, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gmvit.data import synth
from gmvit.data.datasets import open_split
from gmvit.data.store import DONE, ViewStore, render_store
from gmvit.errors import GMViTError

ROOT = Path(__file__).resolve().parents[2]
SIZE = 16


@pytest.fixture(scope="module")
def meshes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("meshes")
    synth.generate(
        root,
        seed=1,
        train_per_class=3,
        test_per_class=1,
        classes=("chair", "monitor"),
        progress=False,
    )
    # Not a mesh: must be listed as failed, not stop the run.
    (root / "chair" / "train" / "chair_9999.off").write_text("OFF\nthis is not a mesh\n")
    return root


@pytest.fixture(scope="module")
def store(meshes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store")
    render_store(meshes, out, rig="circle-12", size=SIZE, progress=False)
    return out


def test_store_holds_every_mesh_once_with_its_manifest(meshes, store):
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["rig"] == "circle-12" and manifest["size"] == SIZE
    assert manifest["classes"] == ["chair", "monitor"]
    assert manifest["counts"] == {"train": 7, "test": 2}
    assert manifest["complete"] and manifest["failed"] == 1
    failed = [s for s in manifest["shapes"] if s["status"] == "failed"]
    assert failed[0]["source"] == "chair/train/chair_9999.off"
    assert failed[0]["error"]  # the renderer's message, kept for the user

    views = ViewStore(store).views("train")
    assert views.shape == (7, 12, SIZE, SIZE, 3) and views.dtype == np.uint8
    train = open_split(store, "train")
    assert len(train) == 6  # the failed mesh is skipped
    assert list(train.labels) == [0, 0, 0, 1, 1, 1]
    import renderer

    first = renderer.render_file(meshes / train.names[0], rig="circle-12", size=SIZE)
    assert np.array_equal(train.load(0), first)
    assert (train.load(0) < 255).any()  # something was drawn


def test_an_interrupted_render_resumes_without_redoing_rows(meshes, store, tmp_path):
    out = tmp_path / "store"
    # The render is killed (SIGKILL, no clean-up) as it starts its fourth training mesh:
    # at a fixed point, so how fast the machine renders cannot change what is tested.
    killed_at = 3
    script = f"""
import os, signal
from gmvit.data import store

render_one = store._render_task

def render_or_die(task):
    if task[:2] == ("train", {killed_at}):
        os.kill(os.getpid(), signal.SIGKILL)
    return render_one(task)

store._render_task = render_or_die
store.render_store({str(meshes)!r}, {str(out)!r}, rig="circle-12", size={SIZE}, progress=False)
"""
    env = dict(os.environ, PYOPENGL_PLATFORM="osmesa")
    process = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=600
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()
    done = np.load(out / "done-train.npy")
    assert list(np.flatnonzero(done == DONE)) == list(range(killed_at))
    # Mark what the killed run finished; a resumed run must leave those rows alone.
    views = np.load(out / "views-train.npy", mmap_mode="r+")
    finished = np.flatnonzero(done == DONE)
    views[finished] = 7
    views.flush()
    del views
    with pytest.raises(GMViTError, match="incomplete"):
        ViewStore(out)

    manifest = render_store(meshes, out, rig="circle-12", size=SIZE, progress=False)
    assert manifest["complete"] and manifest["failed"] == 1
    resumed = np.load(out / "views-train.npy")
    reference = np.load(store / "views-train.npy")
    assert (resumed[finished] == 7).all()
    others = np.setdiff1d(np.arange(len(done)), finished)
    assert np.array_equal(resumed[others], reference[others])
    assert np.array_equal(np.load(out / "views-test.npy"), np.load(store / "views-test.npy"))


def test_parallel_render_matches_serial(meshes, store, tmp_path):
    render_store(meshes, tmp_path, rig="circle-12", size=SIZE, jobs=2, progress=False)
    for split in ("train", "test"):
        assert np.array_equal(
            np.load(tmp_path / f"views-{split}.npy"), np.load(store / f"views-{split}.npy")
        )


def test_a_different_render_into_the_same_folder_is_refused(meshes, store):
    with pytest.raises(GMViTError, match="different render"):
        render_store(meshes, store, rig="circle-12", size=SIZE * 2, progress=False)


def test_a_store_lit_one_sided_is_not_resumed_with_two_sided_views(meshes, tmp_path):
    """A store rendered before lighting was recorded was lit one-sided: finishing it with
    today's two-sided views would mix two renders in one training set."""
    manifest = render_store(meshes, tmp_path, rig="circle-12", size=SIZE, progress=False)
    assert manifest["lighting"] == "two-sided"
    path = tmp_path / "manifest.json"
    older = json.loads(path.read_text())
    del older["lighting"]
    path.write_text(json.dumps(older))
    with pytest.raises(GMViTError, match="different render .* lit one-sided"):
        render_store(meshes, tmp_path, rig="circle-12", size=SIZE, progress=False)


def test_a_folder_that_is_not_modelnet_is_refused(tmp_path):
    with pytest.raises(GMViTError, match="ModelNet layout"):
        render_store(tmp_path, tmp_path / "out", size=SIZE, progress=False)


def test_augmented_copies_are_rows_of_their_shape_with_their_perturbation(meshes, store, tmp_path):
    manifest = render_store(
        meshes, tmp_path / "aug", rig="circle-12", size=SIZE, augment=2, progress=False
    )
    assert manifest["augment"] == {"copies": 2, "seed": 0}
    assert manifest["counts"] == {"train": 21, "test": 2}  # 7 training meshes x 3, test alone
    train = [s for s in manifest["shapes"] if s["split"] == "train"]
    for shape in range(7):
        rows = [s for s in train if s["shape"] == shape]
        assert [s["copy"] for s in rows] == [0, 1, 2]
        assert len({s["source"] for s in rows}) == 1
        assert "perturbation" not in rows[0]
        assert all(0 <= s["perturbation"]["degrees"] < 360 for s in rows[1:])
    test = [s for s in manifest["shapes"] if s["split"] == "test"]
    assert [s["copy"] for s in test] == [0, 0] and "perturbation" not in test[0]

    split = open_split(tmp_path / "aug", "train")
    plain = open_split(store, "train")
    assert split.shape_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5, 6, 6, 6]
    assert split.copies.tolist() == [0, 1, 2] * 6  # shape 3 is the file that fails
    # Copy 0 is the mesh as it is, rendered as without copies; the others differ from it.
    first = split.load(0)
    assert np.array_equal(first, plain.load(0))
    assert not np.array_equal(first, split.load(1))

    # The same command again is a resume; other copies into the same folder are refused.
    again = render_store(
        meshes, tmp_path / "aug", rig="circle-12", size=SIZE, augment=2, progress=False
    )
    assert again["shapes"] == manifest["shapes"]
    with pytest.raises(GMViTError, match="different render"):
        render_store(meshes, tmp_path / "aug", rig="circle-12", size=SIZE, augment=1)
    # Copies drawn by another recipe (a store rendered before the draw changed) are too.
    path = tmp_path / "aug" / "manifest.json"
    older = json.loads(path.read_text())
    del older["shapes"][1]["perturbation"]["noise_faces"]
    path.write_text(json.dumps(older))
    with pytest.raises(GMViTError, match="different render"):
        render_store(meshes, tmp_path / "aug", rig="circle-12", size=SIZE, augment=2)
