"""The bench's scores against tiny cases computed by hand."""

import numpy as np
import pytest

from bench import metrics


def test_target_ranks_count_ties_against_the_target():
    distances = np.array([[0.1, 0.5, 0.3], [0.2, 0.2, 0.9], [0.7, 0.4, 0.6]])
    ranks = metrics.target_ranks(distances, np.array([0, 1, 2]))
    # row 0: nearest; row 1: tied with item 0, so second; row 2: item 1 is nearer
    assert ranks.tolist() == [0, 1, 1]


def test_a_descriptor_that_maps_everything_to_one_point_finds_nothing():
    ranks = metrics.target_ranks(np.zeros((4, 4)), np.arange(4))
    assert metrics.top_k(ranks, 1) == 0.0
    assert metrics.top_k(ranks, 4) == 1.0


def test_top_k():
    ranks = np.array([0, 0, 3, 7])
    assert metrics.top_k(ranks, 1) == 0.5
    assert metrics.top_k(ranks, 5) == 0.75


def test_average_precision_by_hand():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert metrics.average_precision([True, False, True]) == pytest.approx(5 / 6)
    # a third relevant item never retrieved counts zero
    assert metrics.average_precision([True, False, True], 3) == pytest.approx(5 / 9)
    assert metrics.average_precision([False, True]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.average_precision([False, False])


def test_precision_at():
    assert metrics.precision_at([True, False, True, True], 2) == 0.5
    assert metrics.precision_at([True], 10) == pytest.approx(0.1)
