"""BatchNorm statistics recomputed after an epoch: the plain average over the batches."""

from __future__ import annotations

import torch
from torch import nn

from gmvit.train import recompute_batchnorm


def test_recomputed_statistics_are_the_average_over_the_batches_and_momentum_is_kept():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net[1].running_mean.fill_(7.0)  # stale averages from before, to be replaced
    batches = [torch.randn(8, 3) * (i + 1) + i for i in range(5)]
    recompute_batchnorm(net, batches, net)
    with torch.no_grad():
        outputs = [net[0](batch) for batch in batches]
    norm = net[1]
    expected_mean = torch.stack([out.mean(0) for out in outputs]).mean(0)
    expected_var = torch.stack([out.var(0) for out in outputs]).mean(0)  # unbiased, as BN keeps
    torch.testing.assert_close(norm.running_mean, expected_mean)
    torch.testing.assert_close(norm.running_var, expected_var)
    assert norm.momentum == 0.1 and int(norm.num_batches_tracked) == len(batches)
