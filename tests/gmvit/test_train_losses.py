"""The distillation loss against a hand computation, and the evaluation scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmvit.distill import distillation_loss
from gmvit.evaluate import classification_scores, retrieval_scores
from gmvit.model import GMViTOutput
from gmvit.train import instance_contrastive_loss


def _outputs(rng: np.random.Generator, b: int, v: int, c: int) -> GMViTOutput:
    def t(*shape):
        return torch.from_numpy(rng.normal(size=shape)).double()

    f_global = t(b, 512)
    return GMViTOutput(
        f_cnn=t(b * v, 512),
        f_vit1=t(b * v, 512),
        att=torch.sigmoid(t(b, v)),
        f_vit2=t(b, 512),
        f_global=f_global,
        logits=3 * t(b, c),
        descriptor=f_global,
    )


def test_distillation_loss_is_the_spec_formula():
    rng = np.random.default_rng(0)
    b, v, c = 3, 12, 5
    student, teacher = _outputs(rng, b, v, c), _outputs(rng, b, v, c)
    labels = torch.tensor([0, 4, 2])
    total, parts = distillation_loss(student, teacher, labels)

    expected = 0.0
    for name in ("f_cnn", "f_vit1", "att", "f_vit2", "f_global"):
        s, t = getattr(student, name).numpy(), getattr(teacher, name).numpy()
        mse = ((s - t) ** 2).sum() / s.size
        assert parts[name] == pytest.approx(mse, rel=1e-9)
        expected += mse
    kl = 0.0
    ce = 0.0
    for i in range(b):
        zs, zt = student.logits[i].numpy(), teacher.logits[i].numpy()
        ps = np.exp(zs / 5) / np.exp(zs / 5).sum()
        pt = np.exp(zt / 5) / np.exp(zt / 5).sum()
        kl += sum(pt[k] * (math.log(pt[k]) - math.log(ps[k])) for k in range(c))
        ce += -(zs[labels[i]] - math.log(np.exp(zs).sum()))
    kl, ce = kl / b, ce / b
    assert parts["kl"] == pytest.approx(kl, rel=1e-9)
    assert parts["ce"] == pytest.approx(ce, rel=1e-9)
    assert float(total) == pytest.approx(expected + 0.7 * kl + 0.3 * ce, rel=1e-9)


def test_distillation_loss_of_a_perfect_copy_is_its_label_loss():
    rng = np.random.default_rng(1)
    out = _outputs(rng, 2, 12, 4)
    labels = torch.tensor([1, 3])
    total, parts = distillation_loss(out, out, labels)
    assert parts["kl"] == pytest.approx(0.0, abs=1e-12)
    assert float(total) == pytest.approx(0.3 * parts["ce"], rel=1e-9)


def test_retrieval_scores_by_hand():
    # Four shapes on a line: 0 and 1 are class A, 2 and 3 class B.
    angles = np.array([0.0, 0.5, 0.6, 1.5])
    descriptors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 1, 1])
    mean_ap, p1 = retrieval_scores(descriptors, labels, k=1)
    # Query 0: ranks 1(A) 2(B) 3(B) -> AP 1. Query 1: 2(B) 0(A) 3 -> AP 1/2.
    # Query 2: 1(A) 0(A) 3(B) -> AP 1/3. Query 3: 2(B) -> AP 1.
    assert mean_ap == pytest.approx((1 + 0.5 + 1 / 3 + 1) / 4)
    assert p1 == pytest.approx((1 + 0 + 0 + 1) / 4)


def test_classification_scores_by_hand():
    labels = np.array([0, 0, 0, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 0, 2])
    oa, macc, confusion = classification_scores(predicted, labels, num_classes=4)
    assert oa == pytest.approx(4 / 6)
    assert macc == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)  # class 3 absent: not averaged
    assert confusion[0].tolist() == [2, 1, 0, 0] and confusion.sum() == 6


def test_instance_contrastive_loss_by_hand():
    """NT-Xent written out for four renders of two shapes (one partner each), and a shape
    with no partner in the batch left out as an anchor but kept as a negative."""
    rng = np.random.default_rng(4)
    features = torch.from_numpy(rng.normal(size=(5, 8)))
    shapes = torch.tensor([7, 3, 7, 3, 9])
    tau = 0.5
    z = features / features.norm(dim=1, keepdim=True)
    expected = []
    for anchor, partner in ((0, 2), (2, 0), (1, 3), (3, 1)):
        others = [j for j in range(5) if j != anchor]
        denominator = sum(math.exp(float(z[anchor] @ z[j]) / tau) for j in others)
        expected.append(-(float(z[anchor] @ z[partner]) / tau - math.log(denominator)))
    loss = instance_contrastive_loss(features, shapes, tau)
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-6)


def test_instance_contrastive_loss_prefers_renders_of_one_shape_together():
    rng = np.random.default_rng(5)
    centres = torch.from_numpy(rng.normal(size=(6, 16)))
    shapes = torch.arange(6).repeat_interleave(2)
    together = centres.repeat_interleave(2, dim=0) + 0.01 * torch.randn(12, 16).double()
    scattered = torch.from_numpy(rng.normal(size=(12, 16)))
    assert instance_contrastive_loss(together, shapes, 0.1) < 0.1
    assert instance_contrastive_loss(scattered, shapes, 0.1) > 1.0
    assert float(instance_contrastive_loss(scattered, torch.arange(12), 0.1)) == 0.0
