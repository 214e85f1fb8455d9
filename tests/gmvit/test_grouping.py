"""Batched grouping gives the numbers of the published per-shape grouping, pattern by pattern."""

from __future__ import annotations

import pytest
import torch

from gmvit.model import group_views, masked_max
from gmvit.reference import group_views_per_shape, pad_groups
from renderer.rigs import get_rig

BINS = 12


def edge(g: int) -> float:
    return g * (1.0 / BINS)


def patterns(num_views: int) -> dict[str, list[float]]:
    """Score vectors (one shape each) that exercise the grouping rules."""
    gen = torch.Generator().manual_seed(num_views)
    own_bins = [(g + 0.5) / BINS for g in torch.randperm(BINS, generator=gen).tolist()]
    return {
        "all in one bin": [0.51] * num_views,
        "all in the lowest bin": [0.001 * i for i in range(num_views)],
        "all in the top bin": [0.999 - 0.001 * i for i in range(num_views)],
        "every view its own bin": (own_bins + [0.97] * num_views)[:num_views],
        "empty bins between full ones": [(0.02, 0.55, 0.97)[i % 3] for i in range(num_views)],
        "two far apart bins, interleaved": [0.1 if i % 2 else 0.9 for i in range(num_views)],
        "scores on bin edges": [edge(i % BINS) for i in range(num_views)],
        "random": torch.rand(num_views, generator=gen).tolist(),
        "random, wide": torch.sigmoid(6 * torch.randn(num_views, generator=gen)).tolist(),
        "saturated views drop out": [1.0 if i < 3 else 0.3 + 0.01 * i for i in range(num_views)],
    }


@pytest.mark.parametrize("num_views", [12, 20])
@pytest.mark.parametrize("with_positions", [True, False])
def test_batched_grouping_equals_per_shape_oracle(num_views, with_positions):
    rig = "circle-12" if num_views == 12 else "dodecahedron-20"
    positions = torch.tensor(get_rig(rig).positions, dtype=torch.float32)
    named = patterns(num_views)
    scores = torch.tensor(list(named.values()), dtype=torch.float32)
    features = torch.randn(len(named), num_views, 64, generator=torch.Generator().manual_seed(1))
    pos = positions if with_positions else None

    batched = group_views(features, scores, BINS, pos)
    per_shape = [
        group_views_per_shape(f, s, BINS, pos) for f, s in zip(features, scores, strict=True)
    ]
    oracle = pad_groups(per_shape, BINS)

    for i, name in enumerate(named):
        assert torch.equal(batched.mask[i], oracle.mask[i]), name
        assert torch.allclose(batched.features[i], oracle.features[i], atol=1e-5), name
        if with_positions:
            assert torch.allclose(batched.positions[i], oracle.positions[i], atol=1e-5), name
        else:
            assert batched.positions is None
    counts = dict(zip(named, batched.mask.sum(1).tolist(), strict=True))
    # The patterns do what their names say (else the comparison above proves little).
    assert counts["all in one bin"] == 1
    assert counts["every view its own bin"] == min(num_views, BINS)
    assert counts["empty bins between full ones"] == 3
    assert counts["scores on bin edges"] == BINS


def test_groups_keep_ascending_bin_order_and_take_max_and_mean():
    features = torch.tensor([[[1.0, 5.0], [4.0, 0.0], [2.0, 2.0], [3.0, 9.0]]])
    scores = torch.tensor([[0.9, 0.1, 0.92, 0.15]])  # bins 10, 1, 11, 1
    positions = torch.tensor([[0.0, 0, 0], [2, 0, 0], [4, 4, 4], [0, 2, 0]])
    groups = group_views(features, scores, BINS, positions)
    assert groups.mask[0].tolist() == [True] * 3 + [False] * (BINS - 3)
    assert groups.features[0, :3].tolist() == [[4.0, 9.0], [1.0, 5.0], [2.0, 2.0]]
    assert groups.positions[0, :3].tolist() == [[1.0, 1.0, 0.0], [0, 0, 0], [4, 4, 4]]
    assert not groups.features[0, 3:].any()


def test_shape_with_no_group_gets_zero_not_nan():
    features = torch.randn(2, 12, 8)
    scores = torch.ones(2, 12)
    scores[1, 0] = 0.5
    groups = group_views(features, scores, BINS)
    assert groups.mask.sum(1).tolist() == [0, 1]
    pooled = masked_max(groups.features, groups.mask)
    assert torch.equal(pooled[0], torch.zeros(8))
    assert torch.equal(pooled[1], features[1, 0])


def test_gradient_reaches_group_members_only():
    features = torch.randn(1, 12, 4, requires_grad=True)
    scores = torch.full((1, 12), 0.5)
    scores[0, 0] = 1.0  # in no group
    groups = group_views(features, scores, BINS)
    masked_max(groups.features, groups.mask).sum().backward()
    grad = features.grad[0]
    assert torch.isfinite(grad).all()
    assert not grad[0].any()
    assert grad.sum().item() == pytest.approx(4.0)
