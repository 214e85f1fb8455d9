"""The published GMViT code, as far as we need it: its checkpoints and its per-shape way.

`load_reference` reads the authors' `model.t7` state_dicts. Our module names are theirs, so
the mapping is short and explicit: strip a DataParallel `module.` prefix, drop the teacher's
`encoder_net_2.*` (the single-view classifier's fc, unused by forward), and accept a file
without BatchNorm's `num_batches_tracked` counters (older PyTorch did not save them; they
do not change what the model computes).

`group_views_per_shape` and `forward_per_shape` compute one shape at a time with Python
loops over shapes, bins and views, as the published code does. They are the oracle the
tests hold the batched model to, and the baseline `bench/models.py` times it against;
`spread_scores` gives a random model the varied groups a trained one has, for both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from gmvit.checkpoint import read_torch_file
from gmvit.errors import GMViTError
from gmvit.model import WIDTH, GMViT, GMViTOutput, ViewGroups, create_model

DATA_PARALLEL_PREFIX = "module."
UNUSED_TEACHER_PREFIX = "encoder_net_2."
OPTIONAL_SUFFIX = ".num_batches_tracked"


def read_state_dict(source: str | os.PathLike | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state_dict from a mapping or a `torch.save`d file (read without running pickled code)."""
    if isinstance(source, Mapping):
        state = source
    else:
        state = read_torch_file(os.fspath(source), "a PyTorch state_dict file")
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise GMViTError("expected a state_dict: a mapping of parameter names to tensors")
    return dict(state)


def published_to_ours(state: Mapping[str, Tensor], variant: str) -> dict[str, Tensor]:
    """Rename the published key names to ours (the identity, after the two rules above)."""
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(DATA_PARALLEL_PREFIX):
            key = key[len(DATA_PARALLEL_PREFIX) :]
        if variant == "teacher" and key.startswith(UNUSED_TEACHER_PREFIX):
            continue
        renamed[key] = value
    return renamed


def load_reference(
    path_or_state_dict: str | os.PathLike | Mapping[str, Tensor],
    variant: str,
    num_views: int,
    num_classes: int,
    **config: object,
) -> GMViT:
    """Our GMViT, in eval mode, holding the weights of a published checkpoint.

    `config` takes further `GMViTConfig` fields (`cnn="resnet34"` for such a teacher,
    `group_bins`, `image_size`). A file that does not fit is refused with a GMViTError
    naming the first missing and the first unexpected key, or the first wrong shape.
    """
    model = create_model(variant, num_views, num_classes, **config)
    state = published_to_ours(read_state_dict(path_or_state_dict), variant)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (first: {missing[0]!r})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (first: {unexpected[0]!r})")
        raise GMViTError(
            f"the checkpoint is not a GMViT-{variant} for {num_views} views and "
            f"{num_classes} classes: keys {'; '.join(problems)}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise GMViTError(
                f"the checkpoint is not a GMViT-{variant} for {num_views} views and "
                f"{num_classes} classes: {key!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict({**expected, **state}, strict=True)
    return model.eval()


def group_views_per_shape(
    features: Tensor, scores: Tensor, group_bins: int, positions: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """One shape, the published way: features (V, D), scores (V,) -> groups (G, D), (G, 3)."""
    interval = 1.0 / group_bins
    members: list[list[int]] = [[] for _ in range(group_bins)]
    for g in range(group_bins):
        for v, score in enumerate(scores):
            if g * interval <= score < (g + 1) * interval:
                members[g].append(v)
    groups = [features[m].max(dim=0).values for m in members if m]
    grouped = torch.stack(groups) if groups else features.new_zeros(0, features.shape[1])
    if positions is None:
        return grouped, None
    means = [positions[m].mean(dim=0) for m in members if m]
    return grouped, torch.stack(means) if means else positions.new_zeros(0, 3)


def pad_groups(per_shape: list[tuple[Tensor, Tensor | None]], group_bins: int) -> ViewGroups:
    """Per-shape groups -> the padded batch layout of `gmvit.model.group_views`."""
    features, positions, masks = [], [], []
    for grouped, pos in per_shape:
        pad = group_bins - grouped.shape[0]
        features.append(F.pad(grouped, (0, 0, 0, pad)))
        if pos is not None:
            positions.append(F.pad(pos, (0, 0, 0, pad)))
        masks.append(torch.arange(group_bins) < grouped.shape[0])
    return ViewGroups(
        torch.stack(features), torch.stack(positions) if positions else None, torch.stack(masks)
    )


def forward_per_shape(model: GMViT, views: Tensor) -> GMViTOutput:
    """`model(views)` computed as the published code does: each shape's groups on their own.

    The CNN and the view-level ViT run on the batch (as published); scores, grouping, the
    group-level ViT and the max over groups run shape by shape with no padding or mask.
    """
    model.check_views(views)
    b, v = views.shape[:2]
    bins = model.config.group_bins
    # The CNN as published: on NCHW images (our model feeds it channels-last).
    f_cnn = model.encoder_net_1(views.flatten(0, 1)).flatten(1)
    if model.config.variant == "mini":
        x = model.mlp1(f_cnn.view(b, v, WIDTH))
        f_vit1 = model.norm(x)
        att = model.view_scores(f_vit1)
        pooled = []
        for xx, aa in zip(x, att, strict=True):
            grouped, _ = group_views_per_shape(xx, aa, bins)
            pooled.append(grouped.max(dim=0).values)
        f_vit2 = model.norm(model.mlp2(torch.stack(pooled)))
        feature = f_vit2
    else:
        f_vit1 = model.view_features(f_cnn)
        scores, features, f_vit2_rows = [], [], []
        for xx in f_vit1:
            att_one = model.view_scores(xx.unsqueeze(0))
            grouped, pos = group_views_per_shape(xx, att_one[0], bins, model.positions)
            y = torch.cat([model.cls_token_2, grouped.unsqueeze(0)], dim=1)
            p = torch.cat([model.cls_pos_2, model.pos_embed_2(pos).unsqueeze(0)], dim=1)
            y = model.norm(model.blocks_2(y, p))
            f_vit2_one = y[:, 1:].max(dim=1).values
            scores.append(att_one)
            f_vit2_rows.append(f_vit2_one)
            features.append(torch.cat([y[:, 0], f_vit2_one], dim=-1))
        att = torch.cat(scores)
        f_vit2 = torch.cat(f_vit2_rows)
        feature = torch.cat(features)
    f_global, logits = model.head(feature)
    return GMViTOutput.from_stages(f_cnn, f_vit1, att, f_vit2, f_global, logits)


def spread_scores(model: GMViT, views: Tensor) -> None:
    """Aim the score layer along the views' main direction of variation.

    Random weights put all views of a shape in one bin; after this, the shapes of `views`
    spread over many bins and differ in group count, as with a trained model, so that a
    comparison or timing of the grouping exercises padding and the group-level stage.
    """
    layer = model.attention if model.config.variant == "mini" else model.attention[0]
    with torch.no_grad():
        f_vit1 = model(views).f_vit1
        centred = f_vit1.view(views.shape[0], views.shape[1], -1)
        centred = (centred - centred.mean(dim=1, keepdim=True)).flatten(0, 1)
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        projected = f_vit1 @ direction
        layer.weight.copy_(direction * 1.5 / projected.std())
        layer.bias.fill_(-1.5 * projected.mean().item() / projected.std().item())
