"""The training losses against values worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from routerllm.exceptions import RouterLLMError, UnknownNameError
from routerllm.training.losses import (
    LOSS_NAMES,
    inter_class_hinge,
    intra_class_distance,
    make_loss,
)
from routerllm.training.trainer import TrainingArguments

LN2, LN3 = math.log(2.0), math.log(3.0)

# Two samples, two classes.
#   sample 0: logits (0, 0)     -> p = (1/2, 1/2), target 0 -> p_t = 1/2, -log p_t = ln 2
#   sample 1: logits (ln 3, 0)  -> p = (3/4, 1/4), target 1 -> p_t = 1/4, -log p_t = ln 4 = 2 ln 2
LOGITS = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
TARGETS = torch.tensor([0, 1])

# Three samples in 2-d: class 0 at (0, 0) and (0.6, 0), class 1 at (0.3, 0.4).
#   mu_0 = (0.3, 0), mu_1 = (0.3, 0.4), ||mu_0 - mu_1|| = 0.4
#   intra = mean over classes of the mean distance to the centroid (seeds' spec):
#         class 0: (0.3 + 0.3) / 2 = 0.3, class 1: 0 -> (0.3 + 0) / 2 = 0.15
#   inter (margin 1) = max(0, 1 - 0.4) = 0.6   (one pair of classes)
#   zero logits: CE = ln 2 for every sample -> CE = ln 2
FEATURES = torch.tensor([[0.0, 0.0], [0.6, 0.0], [0.3, 0.4]])
FEATURE_TARGETS = torch.tensor([0, 0, 1])
ZERO_LOGITS = torch.zeros(3, 2)


def value(name: str, logits=LOGITS, targets=TARGETS, features=None, **weights) -> float:  # type: ignore[no-untyped-def]
    return float(make_loss(name, **weights)(logits, targets, features))


def test_cross_entropy() -> None:
    # (ln 2 + 2 ln 2) / 2 = 1.5 ln 2
    assert value("ce") == pytest.approx(1.5 * LN2)


def test_label_smoothing() -> None:
    # Seeds' spec: target 1 - eps on the true class, eps / (K - 1) on each other one.
    # Two classes (K - 1 = 1): sample 0: 0.9 ln 2 + 0.1 ln 2                 = ln 2
    # sample 1 (target 1): 0.9 * -ln(1/4) + 0.1 * -ln(3/4) = 1.8 ln 2 + 0.1 (2 ln 2 - ln 3)
    #                                                                        = 2 ln 2 - 0.1 ln 3
    # mean: (3 ln 2 - 0.1 ln 3) / 2                                          = 1.5 ln 2 - 0.05 ln 3
    assert value("label_smoothing") == pytest.approx(1.5 * LN2 - 0.05 * LN3)
    # eps = 0.5: sample 1: 0.5 * 2 ln 2 + 0.5 * (2 ln 2 - ln 3) = 2 ln 2 - 0.5 ln 3
    assert value("label_smoothing", eps=0.5) == pytest.approx(1.5 * LN2 - 0.25 * LN3)
    # eps = 0 is cross-entropy.
    assert value("label_smoothing", eps=0.0) == pytest.approx(1.5 * LN2)
    # Four classes, logits (ln 3, 0, 0, 0): p = (1/2, 1/6, 1/6, 1/6), target 0:
    #   0.9 ln 2 + 3 * (0.1 / 3) ln 6 = 0.9 ln 2 + 0.1 ln 6
    # (torch's label_smoothing, eps / K on every class, would give 0.925 ln 2 + 0.075 ln 6)
    four = torch.tensor([[LN3, 0.0, 0.0, 0.0]])
    assert value("label_smoothing", logits=four, targets=torch.tensor([0])) == pytest.approx(
        0.9 * LN2 + 0.1 * math.log(6.0)
    )


def test_focal() -> None:
    # sample 0: (1 - 1/2)^2 * ln 2 = ln 2 / 4;  sample 1: (1 - 1/4)^2 * 2 ln 2 = 9/8 ln 2
    # mean: (1/4 + 9/8) / 2 ln 2 = 11/16 ln 2
    assert value("focal") == pytest.approx(11 / 16 * LN2)
    # gamma 0 is cross-entropy; alpha scales linearly.
    assert value("focal", gamma=0.0) == pytest.approx(1.5 * LN2)
    assert value("focal", alpha=0.5) == pytest.approx(11 / 32 * LN2)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_focal_gradient_is_finite_on_a_sure_sample(gamma: float) -> None:
    # p_t rounds to 1 in float32 from a logit gap of about 17: (1 - p_t)^gamma with
    # 0 < gamma < 1 has an infinite slope at 0, and 0 * inf gave NaN gradients.
    logits = torch.tensor([[30.0, 0.0, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0]], requires_grad=True)
    make_loss("focal", gamma=gamma)(logits, torch.tensor([0, 1])).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().sum() > 0


def test_focal_refuses_a_negative_gamma_or_alpha() -> None:
    with pytest.raises(RouterLLMError, match="gamma"):
        make_loss("focal", gamma=-1.0)
    with pytest.raises(RouterLLMError, match="alpha"):
        make_loss("focal", alpha=-0.5)


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("inter_intra", {"alpha": "1"}),
        ("inter_intra", {"alpha": math.nan}),
        ("inter_intra", {"beta": math.inf}),
        ("inter_intra", {"gamma": -1.0}),
        ("inter_intra", {"margin": -0.5}),
        ("ce+intra", {"gamma": -1.0}),
        ("ce+inter", {"margin": math.nan}),
    ],
)
def test_inter_intra_refuses_weights_that_are_not_finite_and_non_negative(
    name: str, weights: dict[str, object]
) -> None:
    """Taken as given, they were a TypeError traceback at the first batch (after the
    encoding), "training diverged ... a smaller learning rate" for NaN, a loss with no
    floor (a negative intra weight pushes each class apart without end) or a hinge that
    is always 0 (a negative margin)."""
    key = next(iter(weights))
    with pytest.raises(RouterLLMError, match=rf"bad options for loss '{re.escape(name)}': {key} must be a finite number >= 0, got "):  # fmt: skip
        TrainingArguments(loss=name, loss_options=weights)  # type: ignore[arg-type]


def test_intra_and_inter_terms() -> None:
    assert float(intra_class_distance(FEATURES, FEATURE_TARGETS)) == pytest.approx(0.15)
    assert float(inter_class_hinge(FEATURES, FEATURE_TARGETS)) == pytest.approx(0.6)
    # margin 0.3 < 0.4: the classes are far enough apart, no penalty.
    assert float(inter_class_hinge(FEATURES, FEATURE_TARGETS, margin=0.3)) == 0.0
    # Three classes, one sample each, at (0, 0), (0.6, 0), (0, 0.8):
    #   distances 0.6, 0.8, 1.0 -> hinges 0.4, 0.2, 0 -> mean 0.6 / 3 = 0.2; intra 0
    three = torch.tensor([[0.0, 0.0], [0.6, 0.0], [0.0, 0.8]])
    labels = torch.tensor([2, 0, 1])
    assert float(inter_class_hinge(three, labels)) == pytest.approx(0.2)
    assert float(intra_class_distance(three, labels)) == 0.0
    # One class only: no pair, inter = 0; intra = mean(0.3, 0.3) = 0.3 around (0.3, 0).
    one = FEATURES[:2]
    assert float(inter_class_hinge(one, torch.tensor([1, 1]))) == 0.0
    assert float(intra_class_distance(one, torch.tensor([1, 1]))) == pytest.approx(0.3)


def test_intra_weighs_each_class_alike() -> None:
    # Seeds' spec: intra = (1/C) sum_c (1/|S_c|) sum_{i in S_c} ||f_i - mu_c||, over the
    # classes in the batch. Class 0: four points at distance 1 of their centroid (0, 0) and
    # one on it (mean 4/5); class 1: two points at distance 3 of theirs (10, 0) (mean 3):
    #   intra = (4/5 + 3) / 2 = 1.9  (a mean over the 7 samples would give 10/7)
    points = torch.tensor(
        [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0], [10.0, 3.0], [10.0, -3.0]]
    )
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    assert float(intra_class_distance(points, labels)) == pytest.approx((4 / 5 + 3) / 2)
    # Class 2 absent from a batch with four classes' logits changes nothing.
    assert float(intra_class_distance(points, labels + 2 * (labels == 1))) == pytest.approx(
        (4 / 5 + 3) / 2
    )


def test_inter_intra_family() -> None:
    args = {"logits": ZERO_LOGITS, "targets": FEATURE_TARGETS, "features": FEATURES}
    # ln 2 + 1.0 * 0.6 + 1.0 * 0.15
    assert value("inter_intra", **args) == pytest.approx(LN2 + 0.75)
    # 2 ln 2 + 0.5 * 0.6 + 3 * 0.15 = 2 ln 2 + 0.75
    assert value("inter_intra", **args, alpha=2.0, beta=0.5, gamma=3.0) == pytest.approx(
        2 * LN2 + 0.75
    )
    # margin 2: inter = 2 - 0.4 = 1.6 -> ln 2 + 1.6 + 0.15
    assert value("inter_intra", **args, margin=2.0) == pytest.approx(LN2 + 1.75)
    assert value("ce+intra", **args) == pytest.approx(LN2 + 0.15)
    assert value("ce+inter", **args) == pytest.approx(LN2 + 0.6)
    with pytest.raises(RouterLLMError, match="feature vectors"):
        make_loss("inter_intra")(ZERO_LOGITS, FEATURE_TARGETS)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradients_flow_and_are_finite(name: str) -> None:
    logits = torch.tensor([[0.5, -0.2], [0.1, 0.3], [0.0, 0.0]], requires_grad=True)
    # The lone class-1 sample sits exactly on its centroid: a zero distance must not give NaN.
    features = FEATURES.clone().requires_grad_(True)
    make_loss(name)(logits, FEATURE_TARGETS, features).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    if name in ("inter_intra", "ce+intra", "ce+inter"):
        assert features.grad is not None and torch.isfinite(features.grad).all()
        assert features.grad.abs().sum() > 0


def test_intra_gradient_by_hand() -> None:
    # Two class-0 points at (0, 0) and (2, 0): centroid (1, 0), intra = (1 + 1) / 2 = 1.
    # Moving x0 by d along x changes both distances: |x0 - mu| with mu = (x0 + x1) / 2 is
    # |x0 - x1| / 2 for each point, so intra = |x0 - x1| / 2 and d intra / d x0 = (-1/2, 0).
    points = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    intra = intra_class_distance(points, torch.tensor([0, 0]))
    intra.backward()
    assert intra.item() == pytest.approx(1.0)
    assert points.grad is not None
    assert points.grad.flatten().tolist() == pytest.approx([-0.5, 0.0, 0.5, 0.0])


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="valid names: ce, ce\\+inter, ce\\+intra, focal"):
        make_loss("hinge")
    with pytest.raises(RouterLLMError, match="bad options for loss 'ce'"):
        make_loss("ce", gamma=2.0)
    with pytest.raises(RouterLLMError, match="eps"):
        make_loss("label_smoothing", eps=1.5)
