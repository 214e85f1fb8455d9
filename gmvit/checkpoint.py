"""Our checkpoint format: one file with weights, config, class names and the model id.

The file is a `torch.save`d dict of plain types and tensors, so it loads with
`weights_only=True` (no pickled code runs). The model id is `<variant>-<12 hex digits>`, a
SHA-256 over the config and every tensor of the state_dict: two files have the same id only
if they compute the same thing, and the index refuses vectors made under another id.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gmvit.errors import GMViTError
from gmvit.model import GMViT, GMViTConfig

FORMAT = "gmvit-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    model: GMViT  # in eval mode, on the CPU
    config: GMViTConfig
    class_names: list[str]
    model_id: str
    meta: dict[str, Any] = field(default_factory=dict)


def model_id(config: GMViTConfig, state_dict: dict[str, Tensor]) -> str:
    """`<variant>-<sha256[:12]>` of the config and the weights (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{config.variant}-{digest.hexdigest()[:12]}"


def save_checkpoint(
    path: str | os.PathLike,
    model: GMViT,
    class_names: list[str],
    meta: dict[str, Any] | None = None,
) -> str:
    """Write `model` to `path` atomically and return its model id.

    `meta` (training recipe, scores, source) must hold only plain values: str, numbers,
    bools, None, lists and dicts of them.
    """
    config = model.config
    class_names = [str(name) for name in class_names]
    if len(class_names) != config.num_classes:
        raise GMViTError(
            f"{len(class_names)} class names for a model with {config.num_classes} classes"
        )
    try:
        # Plain JSON values only: the file must load with `weights_only=True`.
        meta = json.loads(json.dumps(dict(meta or {})))
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
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ckpt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return identity


def read_torch_file(path: str, kind: str) -> Any:
    """`torch.load` of an untrusted file on the CPU, never running pickled code; a missing
    or foreign file is a GMViTError saying it is not `kind`."""
    if not os.path.isfile(path):
        raise GMViTError(f"no such checkpoint file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not its own
        raise GMViTError(f"{path} is not {kind}: {exc}") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a file written by `save_checkpoint`; the model comes back in eval mode on the CPU."""
    path = os.fspath(path)
    payload = read_torch_file(path, "a gmvit checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GMViTError(
            f"{path} is not a gmvit checkpoint (a published GMViT state_dict must first be "
            "converted with `gmvit convert`)"
        )
    if payload.get("version") != VERSION:
        raise GMViTError(f"{path}: unsupported checkpoint version {payload.get('version')!r}")
    config = GMViTConfig.from_dict(payload["config"])
    state = payload["state_dict"]
    identity = model_id(config, state)
    if identity != payload["model_id"]:
        raise GMViTError(
            f"{path} is damaged: its weights hash to {identity}, the file says "
            f"{payload['model_id']}"
        )
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
