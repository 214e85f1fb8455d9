"""Where an Embedder's forward pass runs: eager torch (CPU or CUDA) or ONNX Runtime (CPU).

- `TorchRuntime`: the model itself, on the CPU or a CUDA GPU. `precision="bf16"` runs it
  under bf16 autocast (the default on a GPU, "auto"); its descriptors stay within
  `BF16_MIN_COSINE` of fp32's (tested on the CPU here, and on a GPU where there is one).
- `OnnxRuntime`: a graph written by `gmvit.export.export_onnx` (fp32, or int8 from
  `quantize_int8`), run by ONNX Runtime on the CPU: the runtime for a small box at the
  edge. The graph carries the model's config, class names and id in its metadata, so an
  `.onnx` file stands in for a checkpoint wherever the Embedder takes one.

Both take the normalised input (B, V, 3, H, W) float32 and give (descriptors, logits) as
float32 numpy arrays on the CPU.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gmvit.checkpoint import Checkpoint, load_checkpoint
from gmvit.errors import GMViTError
from gmvit.model import GMViT, GMViTConfig
from gmvit.openset import OpenSetThresholds

DEVICES = ("cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
# What the tests accept of bf16-autocast descriptors against fp32 ones: the worst cosine
# and the mean (measured on the CPU: 0.989 and 0.999 at worst with the 64 px students shipped
# before; with the 96 px students shipped now, on 100 synthetic test shapes, worst 0.997 and
# mean 0.9998 for simple, 1.000 and 0.99999 for mini).
BF16_MIN_COSINE = 0.98
BF16_MEAN_COSINE = 0.995
ONNX_SUFFIX = ".onnx"
# Keys of the ONNX metadata_props that `gmvit.export` writes.
META_FORMAT, META_CONFIG, META_CLASSES, META_MODEL_ID, META_WEIGHTS, META_OPEN_SET = (
    "gmvit.format",
    "gmvit.config",
    "gmvit.class_names",
    "gmvit.model_id",
    "gmvit.weights",
    "gmvit.open_set",
)
ONNX_FORMAT = "gmvit-onnx-1"


@dataclass(frozen=True)
class ModelInfo:
    config: GMViTConfig
    class_names: list[str]
    model_id: str
    open_set: OpenSetThresholds | None = None  # calibrated by `gmvit eval --held-out`

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> ModelInfo:
        return cls(
            checkpoint.config,
            list(checkpoint.class_names),
            checkpoint.model_id,
            OpenSetThresholds.from_meta(checkpoint.meta),
        )


class Runtime(Protocol):
    description: str

    def forward(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Normalised views (B, V, 3, H, W) float32 -> (descriptors (B, 512), logits)."""
        ...


def open_model(
    source: Checkpoint | str | os.PathLike,
    *,
    device: str = "cpu",
    precision: str = "auto",
    threads: int | None = None,
) -> tuple[Runtime, ModelInfo]:
    """A checkpoint (object or `.pt` file) runs in torch on `device`; an `.onnx` file runs in
    ONNX Runtime on the CPU (`device` must then be "cpu" and `precision` "auto")."""
    if device not in DEVICES:
        raise GMViTError(f"unknown device {device!r}; choose one of {DEVICES}")
    if precision not in PRECISIONS:
        raise GMViTError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if not isinstance(source, Checkpoint) and Path(source).suffix == ONNX_SUFFIX:
        if device != "cpu" or precision != "auto":
            raise GMViTError(
                f"{source} is an ONNX graph, run on the CPU as exported; "
                f"device {device!r} and precision {precision!r} apply to checkpoints"
            )
        runtime = OnnxRuntime(source, threads=threads)
        return runtime, runtime.info
    checkpoint = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    info = ModelInfo.of(checkpoint)
    return TorchRuntime(checkpoint.model, device=device, precision=precision), info


class TorchRuntime:
    def __init__(self, model: GMViT, *, device: str = "cpu", precision: str = "auto") -> None:
        if device == "cuda" and not torch.cuda.is_available():
            raise GMViTError(
                f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA GPU"
            )
        self.device = torch.device(device)
        self.precision = (
            ("bf16" if device == "cuda" else "fp32") if precision == "auto" else precision
        )
        self.model = for_inference(model).to(self.device)
        self.description = f"torch {self.device.type} {self.precision}"

    def forward(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        bf16 = self.precision == "bf16"
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16),
        ):
            out = self.model(x.to(self.device, non_blocking=True))
        descriptor = out.descriptor.float()
        if bf16:  # a unit vector in bf16 is unit to 3 digits: renormalise in fp32
            descriptor = F.normalize(descriptor, dim=-1)
        return descriptor.cpu().numpy(), out.logits.float().cpu().numpy()


def for_inference(model: GMViT) -> GMViT:
    """A copy of `model` in eval mode with every BatchNorm of its CNN folded into the
    convolution before it: the same function to float rounding (descriptors within 1e-6,
    tested), and on this CPU a forward 1.2x-1.4x faster for the students, 1.1x-1.25x for
    the teacher (bench.models). A copy: a model still being trained keeps its BatchNorms."""
    inference = copy.deepcopy(model).eval()
    for block in list(inference.encoder_net_1.modules()):
        for conv_name, norm_name in _conv_then_norm(block):
            conv, norm = getattr(block, conv_name), getattr(block, norm_name)
            setattr(block, conv_name, fuse_conv_bn_eval(conv, norm))
            setattr(block, norm_name, nn.Identity())
    return inference


def _conv_then_norm(block: nn.Module) -> list[tuple[str, str]]:
    """The (conv, batch norm) children of `block` where the norm takes the conv's output:
    in a Sequential, a BatchNorm2d right after a Conv2d (the ResNet trunk, a downsample);
    elsewhere `bnN` after `convN`, as StudentCNN and torchvision's blocks name them."""
    children = dict(block.named_children())
    if isinstance(block, nn.Sequential):
        pairs = pairwise(children)
    else:
        pairs = ((f"conv{name[2:]}", name) for name in children if name.startswith("bn"))
    return [
        (conv, norm)
        for conv, norm in pairs
        if isinstance(children.get(conv), nn.Conv2d) and isinstance(children[norm], nn.BatchNorm2d)
    ]


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise GMViTError(
            "running an .onnx model needs ONNX Runtime, which is not installed: "
            "pip install onnxruntime (scripts/setup.sh installs it)"
        ) from None
    return onnxruntime


class OnnxRuntime:
    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such ONNX model: {path}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own types for a corrupt or foreign file
            raise GMViTError(f"{path} is not a loadable ONNX model: {exc}") from None
        self.info = _model_info(path, self.session.get_modelmeta().custom_metadata_map)
        self.description = f"onnxruntime {ort.__version__} cpu ({path.name})"

    def forward(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        descriptors, logits = self.session.run(
            ["descriptor", "logits"], {"views": x.contiguous().numpy()}
        )
        return descriptors, logits


def _model_info(path: Path, meta: dict[str, str]) -> ModelInfo:
    if meta.get(META_FORMAT) != ONNX_FORMAT:
        raise GMViTError(
            f"{path} was not written by `gmvit export` (no {META_FORMAT}={ONNX_FORMAT} "
            "in its metadata)"
        )
    try:
        config = GMViTConfig.from_dict(json.loads(meta[META_CONFIG]))
        class_names = [str(name) for name in json.loads(meta[META_CLASSES])]
        model_id = meta[META_MODEL_ID]
        open_set = OpenSetThresholds.from_meta(
            {"open_set": json.loads(meta.get(META_OPEN_SET, "null"))}
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise GMViTError(f"{path} has unreadable gmvit metadata: {exc}") from None
    if len(class_names) != config.num_classes:
        raise GMViTError(f"{path}: {len(class_names)} class names for {config.num_classes}")
    return ModelInfo(config, class_names, model_id, open_set)
