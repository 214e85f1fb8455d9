"""train -> distil -> eval end to end on a tiny synthetic set at 32 x 32, through the CLI,
each step reading what the previous one wrote; and resume after an interruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import renderer
from app.cli import main
from gmvit import Embedder, create_model, load_checkpoint, save_checkpoint
from gmvit.data import synth
from gmvit.data.store import render_store
from gmvit.train import Recipe, multiview_step, runtime, train_student

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
CLASSES = ("bed", "monitor", "toilet")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synth.generate(
        root / "meshes",
        seed=5,
        train_per_class=4,
        test_per_class=2,
        classes=CLASSES,
        progress=False,
    )
    render_store(root / "meshes", root / "views", rig="circle-12", size=SIZE, progress=False)
    return root


def test_train_distill_eval_end_to_end(data, tmp_path):
    views = data / "views"
    recipe = ["--epochs", "1", "--batch-size", "4", "--threads", "2"]
    assert (
        main(
            [
                "train",
                "--data",
                str(views),
                "-o",
                str(tmp_path / "teacher"),
                "--cnn-epochs",
                "1",
                "--cnn-batch-size",
                "16",
                *recipe,
            ]
        )
        == 0
    )
    teacher = load_checkpoint(tmp_path / "teacher" / "best.pt")
    assert teacher.config.variant == "teacher"
    assert (teacher.config.image_size, teacher.config.rig) == (SIZE, "circle-12")
    assert teacher.class_names == list(CLASSES)
    assert teacher.meta["rig"] == "circle-12" and teacher.meta["image_size"] == SIZE
    assert (tmp_path / "teacher" / "cnn-last.pt").exists()
    assert (tmp_path / "teacher" / "gmvit-last.pt").exists()

    assert (
        main(
            [
                "distill",
                "--teacher",
                str(tmp_path / "teacher" / "best.pt"),
                "--student",
                "mini",
                "--data",
                str(views),
                "-o",
                str(tmp_path / "mini"),
                *recipe,
            ]
        )
        == 0
    )
    student = load_checkpoint(tmp_path / "mini" / "best.pt")
    assert student.config.variant == "mini" and student.config.image_size == SIZE
    assert student.meta["teacher"]["model_id"] == teacher.model_id
    history = json.loads((tmp_path / "mini" / "history.json").read_text())
    assert np.isfinite(history["mini"]["history"][0]["loss"])

    report = tmp_path / "eval" / "mini.json"
    assert (
        main(
            [
                "eval",
                "--weights",
                str(tmp_path / "mini" / "best.pt"),
                "--data",
                str(views),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    scores = json.loads(report.read_text())
    assert scores["num_shapes"] == 2 * len(CLASSES)
    for key in ("oa", "macc", "map", "p_at_10"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["params"] == sum(p.numel() for p in student.model.parameters())
    assert scores["ms_per_shape"] > 0
    assert sum(map(sum, scores["confusion"])) == 2 * len(CLASSES)
    assert "| mini |" in report.with_suffix(".md").read_text()
    assert report.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    # The service path: render a mesh at what the model expects, embed it.
    embedder = Embedder(tmp_path / "mini" / "best.pt")
    mesh = next((data / "meshes" / "toilet" / "test").iterdir())
    rendered = renderer.render_file(mesh, rig=embedder.rig, size=embedder.image_size)
    embedding = embedder.embed(rendered)
    assert embedding.descriptors.shape == (1, 512)
    assert np.linalg.norm(embedding.descriptors[0]) == pytest.approx(1.0, abs=1e-5)


def test_no_kd_needs_no_teacher_and_distill_without_one_is_refused(data, tmp_path, capsys):
    views = str(data / "views")
    assert main(["distill", "--student", "mini", "--data", views, "-o", str(tmp_path)]) == 2
    assert "--teacher" in capsys.readouterr().err
    assert (
        main(
            [
                "distill",
                "--student",
                "mini",
                "--no-kd",
                "--data",
                views,
                "-o",
                str(tmp_path),
                "--epochs",
                "1",
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    assert load_checkpoint(tmp_path / "best.pt").meta["no_kd"] is True


def test_an_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    views = data / "views"
    recipe = Recipe(epochs=2, batch_size=4)

    def run(out, **kw):
        return train_student(
            views,
            out,
            variant="mini",
            recipe=recipe,
            rt=runtime("cpu", seed=3, progress=False),
            **kw,
        )

    straight = load_checkpoint(run(tmp_path / "straight"))

    calls = 0

    def interrupting(model, split_data, rt):
        step = multiview_step(split_data, model.config, rt, augment=True)

        def interrupted_step(module, batch, generator):
            nonlocal calls
            calls += 1
            # Inside epoch 2: 9 shapes make 2 batches of 4 (the odd one dropped), and each
            # epoch's BatchNorm pass runs the step on them again (calls 3 and 4).
            if calls == 6:
                raise KeyboardInterrupt
            return step(module, batch, generator)

        return interrupted_step

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", step_factory=interrupting)
    state = torch.load(tmp_path / "resumed" / "mini-last.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = load_checkpoint(run(tmp_path / "resumed", resume=True))
    assert resumed.model_id == straight.model_id  # bit-identical weights


def test_data_parallel_under_torchrun(data, tmp_path):
    """Two CPU processes (gloo) train one student; only rank 0 writes the checkpoint."""
    env = dict(os.environ, PYOPENGL_PLATFORM="osmesa", OMP_NUM_THREADS="1")
    command = [
        str(Path(sys.executable).parent / "torchrun"),
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "app",
        "distill",
        "--student",
        "mini",
        "--no-kd",
        "--data",
        str(data / "views"),
        "-o",
        str(tmp_path),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("best checkpoint") == 1
    checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert checkpoint.meta["data"]["train_shapes"] == 9


def test_contrastive_recipe_on_augmented_copies_through_the_cli(data, tmp_path):
    """Copies rendered by `dataset render --augment`, a label-trained student with the
    instance-contrastive term under bf16 autocast, and a student distilled from it with its
    own term: each records what it did."""
    views = str(tmp_path / "views")
    assert (
        main(
            ["dataset", "render", str(data / "meshes"), "-o", views, "--size", str(SIZE)]
            + ["--augment", "1", "--augment-seed", "3"]
        )
        == 0
    )
    recipe = ["--epochs", "1", "--batch-size", "4", "--threads", "2", "--contrastive", "0.5"]
    first = str(tmp_path / "mini")
    assert (
        main(["train", "--variant", "mini", "--data", views, "-o", first, "--bf16", *recipe]) == 0
    )
    mini = load_checkpoint(Path(first) / "best.pt")
    assert mini.meta["recipe"]["contrastive"] == 0.5
    assert mini.meta["data"]["train_shapes"] == 9 and mini.meta["data"]["train_renders"] == 18
    history = json.loads((Path(first) / "history.json").read_text())["mini"]["history"]
    assert np.isfinite(history[0]["loss"])

    second = str(tmp_path / "simple")
    command = ["distill", "--teacher", f"{first}/best.pt", "--student", "simple"]
    assert main([*command, "--data", views, "-o", second, *recipe]) == 0
    simple = load_checkpoint(Path(second) / "best.pt")
    assert simple.meta["recipe"]["contrastive"] == 0.5
    assert simple.meta["teacher"]["model_id"] == mini.model_id

    # Open set: calibrated on held-out families, stored in the checkpoint, same model id.
    synth.generate(
        tmp_path / "held-out",
        seed=5,
        train_per_class=0,
        test_per_class=2,
        classes=("teapot", "umbrella"),
        progress=False,
    )
    held_out = tmp_path / "held-out-views"
    render_store(tmp_path / "held-out", held_out, rig="circle-12", size=SIZE, progress=False)
    report = tmp_path / "eval.json"
    weights = str(Path(first) / "best.pt")
    evaluate = ["eval", "--weights", weights, "--data", views, "--json", str(report)]
    assert main([*evaluate, "--held-out", str(held_out), "--save-thresholds"]) == 0
    open_set = json.loads(report.read_text())["open_set"]
    assert open_set["held_out_families"] == ["teapot", "umbrella"]
    assert open_set["known_accepted"] >= 0.95 and 0 <= open_set["unknown_refused"] <= 1
    assert 0 <= open_set["auroc_combined"] <= 1
    stored = load_checkpoint(weights)
    assert stored.model_id == mini.model_id
    assert stored.meta["open_set"]["min_probability"] == open_set["thresholds"]["min_probability"]


def test_refit_head_keeps_every_descriptor_and_retrains_only_the_classifier(data, tmp_path, capsys):
    """`gmvit refit-head`: the layers up to f_global keep their weights, so the descriptors
    are the source's bit for bit; the classifier after them moves; the stale open-set
    thresholds go, the source is recorded; data of other classes is refused in one line."""
    views = str(data / "views")
    trained = train_student(
        views,
        tmp_path / "mini",
        variant="mini",
        recipe=Recipe(epochs=1, batch_size=4),
        rt=runtime("cpu", seed=1, progress=False),
    )
    source = load_checkpoint(trained)
    with_thresholds = tmp_path / "source.pt"
    meta = source.meta | {"open_set": {"min_probability": 0.9, "min_similarity": 0.8}}
    save_checkpoint(with_thresholds, source.model, source.class_names, meta)

    out = tmp_path / "refit"
    command = ["refit-head", "--weights", str(with_thresholds), "--data", views, "-o", str(out)]
    assert main([*command, "--epochs", "3", "--batch-size", "4", "--lr", "0.1"]) == 0
    refit = load_checkpoint(out / "best.pt")
    assert refit.model_id != source.model_id
    before, after = source.model.state_dict(), refit.model.state_dict()
    descriptor_part = [k for k in before if not k.startswith("cls_head_finetune.")]
    descriptor_part += [
        k for k in before if k.startswith(("cls_head_finetune.0.", "cls_head_finetune.1."))
    ]
    for name in descriptor_part:
        assert torch.equal(before[name], after[name]), name
    classifier = [
        k for k in before if k.startswith(("cls_head_finetune.4.", "cls_head_finetune.8."))
    ]
    assert any(not torch.equal(before[k], after[k]) for k in classifier)

    test_views = np.stack(
        [
            renderer.render_file(mesh, rig="circle-12", size=SIZE)
            for mesh in sorted((data / "meshes").rglob("test/*.off"))
        ]
    )
    old, new = (
        Embedder(with_thresholds).embed(test_views),
        Embedder(out / "best.pt").embed(test_views),
    )
    assert np.array_equal(old.descriptors, new.descriptors)
    assert not np.array_equal(old.probabilities, new.probabilities)
    assert "open_set" not in refit.meta
    assert refit.meta["head_refit"]["from_model_id"] == source.model_id
    assert refit.meta["head_refit"]["recipe"]["epochs"] == 3
    assert refit.meta["recipe"] == source.meta["recipe"]  # how the network itself was trained

    other = tmp_path / "other.pt"
    model = create_model("mini", 12, 2, image_size=SIZE, rig="circle-12")
    save_checkpoint(other, model, ["lamp", "vase"])
    capsys.readouterr()
    assert (
        main(["refit-head", "--weights", str(other), "--data", views, "-o", str(tmp_path / "x")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("gmvit: error:") and "classes" in err and err.count("\n") == 1
