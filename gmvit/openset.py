"""Saying "I don't know": an open-set decision from the head and the nearest labelled shapes.

A shape gets a label when the network's head is sure of one of its classes, or, failing
that, when a labelled shape in the index is near it (the neighbours' label); when the head is
unsure and every labelled shape is far, the answer is no label, with the reason. The two
thresholds are chosen on held-out families, shapes of none of the training classes
(`gmvit.data.synth.HELD_OUT`), by `calibrate`: as many of them refused as possible while a
share `known_accept` (95 % by default) of test shapes of the known classes keeps a label.
`gmvit eval --held-out` measures this and stores the thresholds in the checkpoint's meta
(`open_set`), where the service reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gmvit.errors import GMViTError


@dataclass(frozen=True)
class OpenSetThresholds:
    min_probability: float  # the head's top probability at least this: its label
    min_similarity: float  # else the nearest labelled shape's cosine similarity at least this

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> OpenSetThresholds | None:
        """The thresholds a checkpoint's meta holds (`open_set`), or None."""
        stored = meta.get("open_set")
        if not stored:
            return None
        return cls(float(stored["min_probability"]), float(stored["min_similarity"]))


@dataclass(frozen=True)
class Decision:
    label: str | None  # None: "I don't know"
    source: str  # "head", "neighbours" or "unknown"
    reason: str  # one sentence for a person


def decide(
    probabilities: np.ndarray,
    class_names: list[str],
    thresholds: OpenSetThresholds | None,
    neighbour_similarity: float | None = None,
    neighbour_label: str | None = None,
) -> Decision:
    """A label or None for one shape.

    probabilities (C,): the head's softmax over `class_names`; neighbour_similarity: cosine
    similarity of the nearest labelled shape (None when nothing labelled is indexed);
    neighbour_label: the label the nearest labelled shapes vote for. Without thresholds
    (a model never calibrated) the head's top class is the answer, and the reason says so.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(class_names),):
        raise GMViTError(
            f"{probabilities.shape[0] if probabilities.ndim else 0} probabilities for "
            f"{len(class_names)} classes"
        )
    best = int(probabilities.argmax())
    top = float(probabilities[best])
    head = class_names[best]
    if thresholds is None:
        return Decision(
            head,
            "head",
            f"the network's top class ({head} at {top:.2f}); this model has no open-set "
            'thresholds, so it never answers "I don\'t know" (gmvit eval --held-out sets them)',
        )
    if top >= thresholds.min_probability:
        return Decision(
            head,
            "head",
            f"the network is sure: {head} at {top:.2f} >= {thresholds.min_probability:.2f}",
        )
    unsure = f"the network is unsure ({head} at {top:.2f} < {thresholds.min_probability:.2f})"
    if neighbour_similarity is None or neighbour_label is None:
        return Decision(None, "unknown", f"{unsure} and no labelled shape is indexed")
    if neighbour_similarity >= thresholds.min_similarity:
        return Decision(
            neighbour_label,
            "neighbours",
            f"{unsure}, but a labelled shape is near ({neighbour_label} at similarity "
            f"{neighbour_similarity:.2f} >= {thresholds.min_similarity:.2f})",
        )
    return Decision(
        None,
        "unknown",
        f"{unsure} and no labelled shape is near (nearest at similarity "
        f"{neighbour_similarity:.2f} < {thresholds.min_similarity:.2f})",
    )


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Area under the ROC curve of a score meant to be higher for known shapes: the chance
    that a random known shape scores above a random unknown one (ties count half)."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if not len(known) or not len(unknown):
        raise GMViTError("AUROC needs known and unknown shapes")
    above = (known[:, None] > unknown[None, :]).mean()
    ties = (known[:, None] == unknown[None, :]).mean()
    return float(above + ties / 2)


@dataclass
class Calibration:
    thresholds: OpenSetThresholds
    known_accepted: float  # share of known shapes that keep a label
    unknown_refused: float  # share of held-out shapes answered "I don't know"
    auroc_probability: float  # the head's top probability alone
    auroc_similarity: float  # the nearest labelled shape's similarity alone
    auroc_combined: float  # max(probability / t_p, similarity / t_s): the decision's score

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(
    known_probability: np.ndarray,
    known_similarity: np.ndarray,
    unknown_probability: np.ndarray,
    unknown_similarity: np.ndarray,
    known_accept: float = 0.95,
) -> Calibration:
    """Thresholds that refuse the most unknown shapes while at least `known_accept` of the
    known ones keep a label (accepted: probability >= t_p or similarity >= t_s). Candidates
    are the quantiles of the known shapes' scores; ties go to the higher known share."""
    if not 0.0 < known_accept <= 1.0:
        raise GMViTError(f"known_accept must be in (0, 1], not {known_accept}")
    kp, ks = np.asarray(known_probability), np.asarray(known_similarity)
    up, us = np.asarray(unknown_probability), np.asarray(unknown_similarity)
    levels = np.linspace(0.0, 1.0, 101)
    best: tuple[float, float, float, float] | None = None  # refused, accepted, t_p, t_s
    for t_p in np.unique(np.quantile(kp, levels)):
        for t_s in np.unique(np.quantile(ks, levels)):
            accepted = float(np.mean((kp >= t_p) | (ks >= t_s)))
            if accepted < known_accept:
                continue
            refused = float(np.mean((up < t_p) & (us < t_s)))
            if best is None or (refused, accepted) > best[:2]:
                best = (refused, accepted, float(t_p), float(t_s))
    assert best is not None  # the lowest candidates accept every known shape
    refused, accepted, t_p, t_s = best
    thresholds = OpenSetThresholds(min_probability=t_p, min_similarity=t_s)

    def combined(p: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.maximum(p / max(t_p, 1e-12), s / max(t_s, 1e-12))

    return Calibration(
        thresholds=thresholds,
        known_accepted=accepted,
        unknown_refused=refused,
        auroc_probability=auroc(kp, up),
        auroc_similarity=auroc(ks, us),
        auroc_combined=auroc(combined(kp, ks), combined(up, us)),
    )
