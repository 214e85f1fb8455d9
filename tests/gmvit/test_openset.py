"""The open-set decision and its calibration, on small made-up scores."""

from __future__ import annotations

import numpy as np
import pytest

from gmvit.errors import GMViTError
from gmvit.openset import OpenSetThresholds, auroc, calibrate, decide

NAMES = ["bed", "chair", "table"]
THRESHOLDS = OpenSetThresholds(min_probability=0.6, min_similarity=0.7)


def test_a_sure_head_names_its_class():
    decision = decide(np.array([0.1, 0.8, 0.1]), NAMES, THRESHOLDS, 0.1, "bed")
    assert (decision.label, decision.source) == ("chair", "head")
    assert "0.80 >= 0.60" in decision.reason


def test_an_unsure_head_defers_to_a_near_labelled_shape():
    decision = decide(np.array([0.4, 0.35, 0.25]), NAMES, THRESHOLDS, 0.9, "lamp")
    assert (decision.label, decision.source) == ("lamp", "neighbours")
    assert "0.90 >= 0.70" in decision.reason


def test_unsure_and_far_is_i_dont_know_with_the_reason():
    decision = decide(np.array([0.4, 0.35, 0.25]), NAMES, THRESHOLDS, 0.5, "lamp")
    assert (decision.label, decision.source) == (None, "unknown")
    assert "bed at 0.40 < 0.60" in decision.reason and "0.50 < 0.70" in decision.reason
    alone = decide(np.array([0.4, 0.35, 0.25]), NAMES, THRESHOLDS)
    assert alone.label is None and "no labelled shape is indexed" in alone.reason
    with pytest.raises(GMViTError, match="2 probabilities for 3 classes"):
        decide(np.array([0.5, 0.5]), NAMES, THRESHOLDS)


def test_thresholds_round_trip_through_meta():
    meta = {"open_set": THRESHOLDS.to_dict() | {"auroc_combined": 0.9}}
    assert OpenSetThresholds.from_meta(meta) == THRESHOLDS
    assert OpenSetThresholds.from_meta({}) is None


def test_auroc_by_hand():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5, 0.9]), np.array([0.5, 0.1])) == pytest.approx(0.875)
    # pairs (0.9, 0.1) (0.9, 0.85) (0.8, 0.1) won; (0.8, 0.85) lost: 3 / 4
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.85])) == pytest.approx(0.75)
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5
    with pytest.raises(GMViTError):
        auroc(np.array([]), np.array([1.0]))


def test_calibration_keeps_the_known_share_and_refuses_the_most_unknowns():
    rng = np.random.default_rng(0)
    known_p, known_s = rng.uniform(0.5, 1.0, 200), rng.uniform(0.6, 1.0, 200)
    unknown_p, unknown_s = rng.uniform(0.2, 0.7, 100), rng.uniform(0.3, 0.75, 100)
    result = calibrate(known_p, known_s, unknown_p, unknown_s, known_accept=0.95)
    t = result.thresholds
    accepted = np.mean((known_p >= t.min_probability) | (known_s >= t.min_similarity))
    refused = np.mean((unknown_p < t.min_probability) & (unknown_s < t.min_similarity))
    assert accepted == pytest.approx(result.known_accepted) and accepted >= 0.95
    assert refused == pytest.approx(result.unknown_refused) and refused > 0.5
    # No threshold pair from the same candidates does better on both counts.
    for t_p in np.quantile(known_p, [0.1, 0.3, 0.5]):
        for t_s in np.quantile(known_s, [0.1, 0.3, 0.5]):
            if np.mean((known_p >= t_p) | (known_s >= t_s)) >= 0.95:
                assert np.mean((unknown_p < t_p) & (unknown_s < t_s)) <= refused
    assert 0.5 < result.auroc_combined <= 1.0
    assert result.auroc_probability == pytest.approx(auroc(known_p, unknown_p))
