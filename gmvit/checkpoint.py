"""Our checkpoint format: one file with weights, config, class names and the model id.

The file is a `torch.save`d dict of plain types and tensors, so it loads with
`weights_only=True` (no pickled code runs). The model id is
`<variant>-d<descriptor version>-<12 hex digits>`, the hex digits a SHA-256 over the config
and every tensor of the state_dict: two files have the same id only if they compute the same
descriptor, and the index refuses vectors made under another id.

Files of format version 1 (ids `<variant>-<12 hex>`, written before the descriptor was
versioned) still load: their hash is checked as written, and they get the id of what this
code computes from them, under the current descriptor version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gmvit.errors import GMViTError
from gmvit.model import DESCRIPTOR_VERSION, GMViT, GMViTConfig
from renderer.files import write_atomic

FORMAT = "gmvit-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class Checkpoint:
    model: GMViT  # in eval mode, on the CPU
    config: GMViTConfig
    class_names: list[str]
    model_id: str
    meta: dict[str, Any] = field(default_factory=dict)


def content_hash(config: dict[str, Any], state_dict: dict[str, Tensor]) -> str:
    """sha256[:12] of a config (as a dict) and the weights (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def model_id(config: GMViTConfig, state_dict: dict[str, Tensor]) -> str:
    """`<variant>-d<DESCRIPTOR_VERSION>-<content hash>`: what this code computes from them."""
    return f"{config.variant}-d{DESCRIPTOR_VERSION}-{content_hash(config.to_dict(), state_dict)}"


def save_checkpoint(
    path: str | os.PathLike,
    model: GMViT,
    class_names: list[str],
    meta: dict[str, Any] | None = None,
) -> str:
    """Write `model` to `path` atomically and return its model id.

    `meta` (training recipe, scores, source) must hold only plain values: str, numbers,
    bools, None, lists and dicts of them. It is not part of the model id; the descriptor
    version the file was written under is added to it (`descriptor_version`).
    """
    config = model.config
    class_names = [str(name) for name in class_names]
    if len(class_names) != config.num_classes:
        raise GMViTError(
            f"{len(class_names)} class names for a model with {config.num_classes} classes"
        )
    try:
        # Plain JSON values only: the file must load with `weights_only=True`.
        meta = json.loads(json.dumps(dict(meta or {}) | {"descriptor_version": DESCRIPTOR_VERSION}))
    except (TypeError, ValueError) as exc:
        raise GMViTError(f"checkpoint meta must hold plain JSON values: {exc}") from None
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    identity = model_id(config, state)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "class_names": class_names,
        "model_id": identity,
        "meta": meta,
        "state_dict": state,
    }
    write_atomic(path, lambda out: torch.save(payload, out))
    return identity


def read_torch_file(path: str, kind: str) -> Any:
    """`torch.load` of an untrusted file on the CPU, never running pickled code; a missing
    or foreign file is a GMViTError saying it is not `kind`."""
    if os.path.isdir(path):
        raise GMViTError(f"{path} is a folder, not {kind}")
    if not os.path.isfile(path):
        raise GMViTError(f"no such checkpoint file: {path}")
    if os.path.getsize(path) == 0:
        raise GMViTError(f"{path} is not {kind}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not its own
        raise GMViTError(f"{path} is not {kind}: {_torch_load_reason(exc)}") from None


def _torch_load_reason(exc: Exception) -> str:
    """One line of why torch.load refused a file. Its weights-only refusal runs to a dozen
    lines and advises loading with weights_only=False, which would run the file's code."""
    text = str(exc).strip()
    if text.startswith("Weights only load failed"):
        return "torch cannot read it as plain tensors and types (pickled code is never run here)"
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a file written by `save_checkpoint`; the model comes back in eval mode on the CPU."""
    path = os.fspath(path)
    payload = read_torch_file(path, "a gmvit checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GMViTError(
            f"{path} is not a gmvit checkpoint (a published GMViT state_dict must first be "
            "converted with `gmvit convert`)"
        )
    if payload.get("version") not in READABLE_VERSIONS:
        raise GMViTError(f"{path}: unsupported checkpoint version {payload.get('version')!r}")
    config = GMViTConfig.from_dict(payload["config"])
    state = payload["state_dict"]
    # The hash as the file was written (its config as stored), whatever its version.
    written = str(payload["model_id"]).rsplit("-", 1)[-1]
    actual = content_hash(payload["config"], state)
    if actual != written:
        raise GMViTError(
            f"{path} is damaged: its weights hash to {actual}, the file says {payload['model_id']}"
        )
    identity = model_id(config, state)
    model = GMViT(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise GMViTError(f"{path}: weights do not fit the config: {exc}") from None
    return Checkpoint(
        model=model.eval(),
        config=config,
        class_names=list(payload["class_names"]),
        model_id=identity,
        meta=dict(payload["meta"]),
    )
