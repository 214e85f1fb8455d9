"""Where the Embedder's forward runs: torch fp32/bf16, an ONNX export (fp32, int8), the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gmvit import Embedder, GMViTError, create_model, load_checkpoint, save_checkpoint
from gmvit.runtime import BF16_MEAN_COSINE, BF16_MIN_COSINE, for_inference

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "weights"
# The tolerances docs/networks.md states for the exports, against eager torch fp32.
ONNX_FP32_ATOL = 1e-4
INT8_MIN_COSINE = 0.98
INT8_MEAN_COSINE = 0.99


@pytest.fixture(scope="module")
def rendered() -> np.ndarray:
    """Synthetic shapes (not the calibration ones) rendered as the shipped students see
    them: their rig and image size."""
    from gmvit.data.synth import CLASSES, make_shape, shape_rng
    from renderer import normalize, render_views

    config = load_checkpoint(WEIGHTS / "gmvit-mini-synth10.pt").config
    return np.stack(
        [
            render_views(
                normalize(make_shape(name, shape_rng(7, name, "test", 0))),
                config.rig,
                config.image_size,
            )
            for name in CLASSES
        ]
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize(("variant", "cnn"), [("mini", None), ("teacher", "resnet18")])
def test_the_served_model_has_its_batch_norms_folded_and_computes_the_same(variant, cnn):
    torch.manual_seed(0)
    model = create_model(variant, 12, 10, image_size=32, **({"cnn": cnn} if cnn else {}))
    norms = [m for m in model.encoder_net_1.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:  # statistics as training leaves them, not the identity of a new net
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    served = for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in served.encoder_net_1.modules())
    assert len(norms) == (4 if cnn is None else 20)
    kept = [m for m in model.encoder_net_1.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert kept == norms  # a copy was folded: the model goes on training with its own
    x = torch.randn(2, 12, 3, 32, 32)
    with torch.inference_mode():
        expected, got = model(x), served(x)
    torch.testing.assert_close(got.descriptor, expected.descriptor, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["mini", "simple"])
def test_bf16_autocast_keeps_descriptors_close_to_fp32(variant, rendered):
    weights = WEIGHTS / f"gmvit-{variant}-synth10.pt"
    fp32 = Embedder(weights).embed(rendered)
    bf16_embedder = Embedder(weights, precision="bf16")
    assert bf16_embedder.runtime.description == "torch cpu bf16"
    bf16 = bf16_embedder.embed(rendered)
    similarity = cosines(fp32.descriptors, bf16.descriptors)
    assert similarity.min() >= BF16_MIN_COSINE and similarity.mean() >= BF16_MEAN_COSINE
    np.testing.assert_allclose(np.linalg.norm(bf16.descriptors, axis=1), 1.0, atol=1e-5)


def test_unknown_or_missing_devices_are_clear_errors():
    weights = WEIGHTS / "gmvit-mini-synth10.pt"
    with pytest.raises(GMViTError, match="unknown device 'tpu'"):
        Embedder(weights, device="tpu")
    with pytest.raises(GMViTError, match="unknown precision 'fp8'"):
        Embedder(weights, precision="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(GMViTError, match="sees no CUDA GPU"):
            Embedder(weights, device="cuda")


@pytest.fixture(scope="module")
def simple_20_export(tmp_path_factory) -> tuple[Path, Path]:
    """A random GMViT-simple on 20 views exported through the API (fp32)."""
    from gmvit.export import export_onnx

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("simple20")
    checkpoint = folder / "simple.pt"
    save_checkpoint(checkpoint, create_model("simple", 20, 5, image_size=32).eval(), list("abcde"))
    export_onnx(checkpoint, folder / "simple.onnx")
    return checkpoint, folder / "simple.onnx"


def test_an_exported_graph_runs_the_batched_grouping_as_torch_does(simple_20_export):
    checkpoint, graph = simple_20_export
    torch_embedder = Embedder(checkpoint, batch_size=7)
    onnx_embedder = Embedder(graph, batch_size=7)
    assert onnx_embedder.model is None and "onnxruntime" in onnx_embedder.runtime.description
    assert (onnx_embedder.model_id, onnx_embedder.class_names) == (
        torch_embedder.model_id,
        torch_embedder.class_names,
    )
    assert (onnx_embedder.rig, onnx_embedder.num_views, onnx_embedder.image_size) == (
        "dodecahedron-20",
        20,
        32,
    )
    views = np.random.default_rng(0).integers(0, 256, (9, 20, 32, 32, 3), dtype=np.uint8)
    # Shapes whose views fall in different numbers of score bins, so that the padding and
    # masks of the batched grouping matter (a batch of 7, then one of 2, then single shapes).
    x = torch.from_numpy(views[:7]).permute(0, 1, 4, 2, 3).float()
    with torch.inference_mode():
        scores = torch_embedder.model(x).att
    groups = {len(torch.unique((s * 12).floor())) for s in scores}
    assert len(groups) > 1, f"every shape has {groups} groups: the test needs varied ones"
    expected = torch_embedder.embed(views)
    got = onnx_embedder.embed(views)
    np.testing.assert_allclose(got.descriptors, expected.descriptors, atol=ONNX_FP32_ATOL)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=ONNX_FP32_ATOL)
    one = onnx_embedder.embed(views[4])
    np.testing.assert_allclose(one.descriptors[0], expected.descriptors[4], atol=ONNX_FP32_ATOL)


@pytest.fixture(scope="module")
def mini_exports(tmp_path_factory) -> Path:
    """The shipped GMViT-mini through `gmvit export` (fp32 and int8), as a user runs it."""
    folder = tmp_path_factory.mktemp("mini")
    result = subprocess.run(
        [
            sys.executable, "-m", "app", "export", str(WEIGHTS / "gmvit-mini-synth10.pt"),
            "-o", str(folder / "mini.onnx"), "--calibration-shapes", "1",
        ],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "mini.onnx: mini-" in result.stdout and "mini.int8.onnx: mini-" in result.stdout
    return folder


def test_the_exported_student_and_its_int8_copy_agree_with_torch(mini_exports, rendered):
    weights = WEIGHTS / "gmvit-mini-synth10.pt"
    expected = Embedder(weights).embed(rendered)
    fp32 = Embedder(mini_exports / "mini.onnx")
    int8 = Embedder(mini_exports / "mini.int8.onnx")
    assert fp32.model_id == Embedder(weights).model_id
    assert int8.model_id == fp32.model_id + "-int8"
    # The open-set thresholds travel with the graph, so an .onnx says "I don't know" alike.
    assert fp32.open_set == int8.open_set == Embedder(weights).open_set is not None
    got = fp32.embed(rendered)
    np.testing.assert_allclose(got.descriptors, expected.descriptors, atol=ONNX_FP32_ATOL)
    quantised = int8.embed(rendered)
    similarity = cosines(quantised.descriptors, expected.descriptors)
    assert similarity.min() >= INT8_MIN_COSINE and similarity.mean() >= INT8_MEAN_COSINE
    size = (mini_exports / "mini.onnx").stat().st_size
    assert (mini_exports / "mini.int8.onnx").stat().st_size < size / 3


def test_running_an_export_without_onnxruntime_says_what_to_install(mini_exports, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(GMViTError, match="needs ONNX Runtime.*pip install onnxruntime"):
        Embedder(mini_exports / "mini.onnx")


def test_a_foreign_onnx_file_is_refused(tmp_path, mini_exports):
    import onnx

    graph = onnx.load(mini_exports / "mini.onnx")
    del graph.metadata_props[:]
    onnx.save(graph, tmp_path / "plain.onnx")
    with pytest.raises(GMViTError, match="not written by `gmvit export`"):
        Embedder(tmp_path / "plain.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(GMViTError, match="not a loadable ONNX model"):
        Embedder(tmp_path / "junk.onnx")
    with pytest.raises(GMViTError, match="run on the CPU as exported"):
        Embedder(mini_exports / "mini.onnx", precision="bf16")


def test_gmvit_export_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    from app.cli import main

    assert main(["export", str(tmp_path / "none.pt"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "gmvit: error: no such checkpoint file" in capsys.readouterr().err
    weights = str(WEIGHTS / "gmvit-mini-synth10.pt")
    assert main(["export", weights, "-o", str(tmp_path / "m.txt")]) == 2
    assert "gmvit: error: the output must end in .onnx" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
