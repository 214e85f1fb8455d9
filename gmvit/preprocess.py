"""From rendered uint8 views to the network's input, as the checkpoint's config says.

The preprocessing a model needs (image size, mean, std; and the rig its views come from)
lives in its `GMViTConfig`, as timm keeps it in a pretrained config: training, evaluation
and the service's Embedder all build their input with `to_input(views, config)`, so what a
model was trained on and what it is served cannot drift apart.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputSpec(Protocol):
    """What `to_input` reads from a config (a `GMViTConfig` has it)."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def to_input(views: Tensor, spec: InputSpec) -> Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, S, S): resized to `spec.image_size` (bilinear,
    antialiased) and normalised with `spec.mean` and `spec.std`."""
    size = spec.image_size
    lead = views.shape[:-3]
    x = views.reshape(-1, *views.shape[-3:]).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    mean = x.new_tensor(spec.mean).view(1, 3, 1, 1)
    std = x.new_tensor(spec.std).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.reshape(*lead, 3, size, size)


def resize_views(views: Tensor, size: int) -> Tensor:
    """uint8 (..., H, W, 3) -> uint8 (..., size, size, 3), resized as `to_input` resizes."""
    if views.shape[-3] == size and views.shape[-2] == size:
        return views
    lead = views.shape[:-3]
    x = views.reshape(-1, *views.shape[-3:]).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return x.reshape(*lead, size, size, 3)
