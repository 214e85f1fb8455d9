"""A checkpoint as an ONNX graph for ONNX Runtime on a CPU, in fp32 and int8.

`export_onnx` traces the model (torch.export, so the batched grouping with its padding and
masks becomes graph ops; the batch size stays free) into one self-contained `.onnx` file
whose outputs are `descriptor` (B, 512) and `logits` (B, C), and whose metadata holds the
config, the class names and the model id: `gmvit.Embedder` opens the file like a
checkpoint. The export is checked against torch on a random batch before it is kept.

`quantize_int8` writes a statically quantised copy (QDQ, weights int8 per channel,
activations uint8 with ranges calibrated on rendered views): the convolutions and linear
layers run in int8; LayerNorm, attention's softmax and the grouping stay in fp32. Its
model id is the checkpoint's with `-int8` appended, because its descriptors differ (a
little) from the fp32 ones and an index must not mix the two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gmvit.checkpoint import Checkpoint, load_checkpoint
from gmvit.errors import GMViTError
from gmvit.model import GMViT, GMViTConfig
from gmvit.preprocess import to_input
from gmvit.runtime import (
    META_CLASSES,
    META_CONFIG,
    META_FORMAT,
    META_MODEL_ID,
    META_OPEN_SET,
    META_WEIGHTS,
    ONNX_FORMAT,
    ModelInfo,
    OnnxRuntime,
)
from renderer.files import write_atomic

INT8_SUFFIX = "-int8"
# An fp32 export must give torch's descriptors to this (max absolute difference).
EXPORT_TOLERANCE = 1e-4
# The ops quantised to int8; the others (LayerNorm, softmax, the grouping) stay fp32:
# quantising them too cost GMViT-simple's descriptors 0.92 worst-case cosine to fp32.
QUANTISED_OPS = ("Conv", "Gemm", "MatMul")


class _DescriptorAndLogits(nn.Module):
    """What the Embedder needs of GMViT's six outputs, as a graph's two."""

    def __init__(self, model: GMViT) -> None:
        super().__init__()
        self.model = model

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(views)
        return out.descriptor, out.logits


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise GMViTError(
            "exporting needs the onnx and onnxscript packages, which are not installed: "
            "pip install onnx onnxscript onnxruntime (scripts/setup.sh installs them)"
        ) from None
    return onnx


def export_onnx(source: Checkpoint | str | os.PathLike, path: str | os.PathLike) -> ModelInfo:
    """Write `source` (a checkpoint or its file) to `path` as a self-contained fp32 ONNX
    graph; returns what the graph's metadata says about it."""
    onnx = _import_onnx()
    checkpoint = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    model = checkpoint.model.eval()
    config = checkpoint.config
    size = config.image_size
    # Two shapes, so that the traced graph does not specialise the batch to one.
    example = torch.randn(
        2, config.num_views, 3, size, size, generator=torch.Generator().manual_seed(0)
    )
    batch = torch.export.Dim("batch", min=1, max=65536)
    with tempfile.TemporaryDirectory(prefix="gmvit-export-") as tmp:
        traced = Path(tmp) / "model.onnx"
        try:
            with _quiet_exporter():
                torch.onnx.export(
                    _DescriptorAndLogits(model).eval(),
                    (example,),
                    traced,
                    dynamo=True,
                    external_data=False,
                    input_names=["views"],
                    output_names=["descriptor", "logits"],
                    dynamic_shapes=({0: batch},),
                    verbose=False,
                )
        except ImportError as exc:  # onnxscript, which the exporter needs
            raise GMViTError(f"exporting needs onnxscript: {exc}") from None
        graph = onnx.load(traced)
    info = ModelInfo.of(checkpoint)
    _write_with_metadata(graph, path, info, weights="fp32")
    _check_against_torch(path, model, example)
    return info


def quantize_int8(
    fp32_path: str | os.PathLike, path: str | os.PathLike, calibration: np.ndarray
) -> ModelInfo:
    """Write an int8 copy of the fp32 export at `fp32_path` to `path`. `calibration`:
    network inputs (N, V, 3, H, W) float32, e.g. `Embedder.preprocess` of rendered views;
    a few dozen shapes set the activation ranges."""
    onnx = _import_onnx()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    info = OnnxRuntime(fp32_path).info
    expected = (info.config.num_views, 3, info.config.image_size, info.config.image_size)
    if calibration.ndim != 5 or calibration.shape[1:] != expected or len(calibration) == 0:
        raise GMViTError(f"calibration inputs must be (N, {', '.join(map(str, expected))})")

    class Shapes(CalibrationDataReader):
        def __init__(self) -> None:
            self._shapes: Iterator[np.ndarray] = iter(calibration.astype(np.float32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            shape = next(self._shapes, None)
            return None if shape is None else {"views": shape[np.newaxis]}

    with tempfile.TemporaryDirectory(prefix="gmvit-int8-") as tmp:
        prepared, quantised = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # Folds and fuses before the ranges are measured (symbolic shape inference fails
        # on the exporter's graphs and is not needed: the shapes are static but the batch).
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantised),
            Shapes(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=list(QUANTISED_OPS),
        )
        graph = onnx.load(quantised)
    int8 = dataclasses.replace(info, model_id=info.model_id + INT8_SUFFIX)
    _write_with_metadata(graph, path, int8, weights="int8")
    return int8


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes that are no news here: torchvision ops it cannot register
    (torchvision is not installed beside this torch) and deprecations inside torch."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def _write_with_metadata(graph, path: str | os.PathLike, info: ModelInfo, weights: str):
    meta = {
        META_FORMAT: ONNX_FORMAT,
        META_CONFIG: json.dumps(info.config.to_dict(), sort_keys=True),
        META_CLASSES: json.dumps(info.class_names),
        META_MODEL_ID: info.model_id,
        META_WEIGHTS: weights,
    }
    if info.open_set is not None:
        meta[META_OPEN_SET] = json.dumps(info.open_set.to_dict())
    del graph.metadata_props[:]
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    write_atomic(path, graph.SerializeToString())


def _check_against_torch(path: str | os.PathLike, model: GMViT, example: torch.Tensor) -> None:
    with torch.inference_mode():
        expected = model(example).descriptor.numpy()
    got, _ = OnnxRuntime(path).forward(example)
    error = float(np.abs(got - expected).max())
    if error > EXPORT_TOLERANCE:
        os.unlink(path)
        raise GMViTError(
            f"the ONNX export computes other descriptors than torch (max difference {error:.2e})"
        )


def synthetic_calibration(config: GMViTConfig, shapes_per_class: int = 3, seed: int = 0):
    """Network inputs (N, V, 3, H, W) for `quantize_int8`: shapes of the synthetic set
    (`gmvit.data.synth`, no download) rendered with the model's rig and size."""
    from gmvit.data.synth import CLASSES, make_shape, shape_rng
    from renderer import normalize, render_views

    views = [
        render_views(
            normalize(make_shape(name, shape_rng(seed, name, "train", index))),
            config.rig,
            config.image_size,
        )
        for name in CLASSES
        for index in range(shapes_per_class)
    ]
    return to_input(torch.from_numpy(np.stack(views)), config).numpy()
