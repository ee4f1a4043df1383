"""Classification losses for the learned routers (MISSION M3.2), selectable by name.

Every loss is called as ``loss(logits, targets, features)``: ``logits`` is
``(n, classes)``, ``targets`` ``(n,)`` class ids and ``features`` ``(n, dim)``
the pooled representation fed to the linear head (only the Inter-Intra family
reads it). Each returns a scalar tensor.

Names for :func:`make_loss`: ``ce``, ``label_smoothing`` (eps 0.1), ``focal``
(gamma 2, alpha 1), ``inter_intra`` (alpha CE + beta inter + gamma intra, all
1.0, margin 1.0) and its ablations ``ce+intra`` and ``ce+inter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from routerllm.checks import is_number
from routerllm.exceptions import RouterLLMError, UnknownNameError, missing_dependency

try:
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover - torch is part of the hf extra
    raise missing_dependency("torch", "hf", e) from e


class CrossEntropyLoss(nn.Module):
    """Mean over samples of -log p_target."""

    def forward(self, logits: Tensor, targets: Tensor, features: Tensor | None = None) -> Tensor:
        return F.cross_entropy(logits, targets)


class LabelSmoothingLoss(nn.Module):
    """Cross-entropy against smoothed targets (the seeds' formula): 1 - eps on the true
    class and eps / (K - 1) on each of the K - 1 others, i.e.
    (1 - eps) * CE + eps * mean over the other classes of -log p_c.

    Not torch's ``label_smoothing``, which puts eps / K on every class, the true one too.
    """

    def __init__(self, eps: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise RouterLLMError(f"label smoothing eps must be in [0, 1), got {eps}")
        self.eps = eps

    def forward(self, logits: Tensor, targets: Tensor, features: Tensor | None = None) -> Tensor:
        log_p = F.log_softmax(logits, dim=-1)
        nll = -log_p.gather(1, targets.unsqueeze(1)).squeeze(1)
        others = max(logits.shape[-1] - 1, 1)
        # A mask, not sum minus target: with logits of 1e4 that subtraction loses digits.
        mask = torch.ones_like(log_p).scatter(1, targets.unsqueeze(1), 0.0)
        rest = -(log_p * mask).sum(dim=-1) / others
        return ((1.0 - self.eps) * nll + self.eps * rest).mean()


class FocalLoss(nn.Module):
    """Mean over samples of -alpha * (1 - p_t)^gamma * log p_t (Lin et al., 2017)."""

    def __init__(self, gamma: float = 2.0, alpha: float = 1.0) -> None:
        super().__init__()
        if not (gamma >= 0.0 and alpha >= 0.0):  # NaN fails too
            raise RouterLLMError(
                f"focal loss needs gamma >= 0 and alpha >= 0, got {gamma}, {alpha}"
            )
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: Tensor, targets: Tensor, features: Tensor | None = None) -> Tensor:
        log_pt = F.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
        # 1 - p_t as -expm1(log p_t) keeps its digits when p_t is near 1; the floor keeps
        # the slope of x^gamma finite at 0 for gamma < 1 (0 * inf: NaN gradients).
        tiny = torch.finfo(log_pt.dtype).tiny
        one_minus_pt = (-torch.expm1(log_pt)).clamp(min=tiny)
        return (-self.alpha * one_minus_pt**self.gamma * log_pt).mean()


def class_centroids(features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(classes present in the batch (sorted), their centroids (k, dim))."""
    present = torch.unique(targets)
    centroids = torch.stack([features[targets == c].mean(dim=0) for c in present])
    return present, centroids


def intra_class_distance(features: Tensor, targets: Tensor) -> Tensor:
    """Mean over the classes in the batch of their samples' mean Euclidean distance to
    the class centroid: (1/C) sum_c (1/|S_c|) sum_{i in S_c} ||f_i - mu_c|| (the seeds'
    formula; every class weighs alike, however many samples it has)."""
    present, centroids = class_centroids(features, targets)
    # Position of each sample's class in `present` (it is sorted).
    slot = torch.searchsorted(present, targets)
    # vector_norm's gradient is 0 (not NaN) at a zero distance: a lone sample is fine.
    distances = torch.linalg.vector_norm(features - centroids[slot], dim=-1)
    per_class = torch.zeros_like(centroids[:, 0]).index_add(0, slot, distances)
    counts = torch.bincount(slot, minlength=len(present)).to(per_class.dtype)
    return (per_class / counts).mean()


def inter_class_hinge(features: Tensor, targets: Tensor, margin: float = 1.0) -> Tensor:
    """Mean over pairs of classes present of max(0, margin - ||mu_i - mu_j||); 0 with < 2 classes."""
    _, centroids = class_centroids(features, targets)
    k = centroids.shape[0]
    if k < 2:
        return features.sum() * 0.0  # keeps the graph (and the dtype/device) intact
    i, j = torch.triu_indices(k, k, offset=1, device=centroids.device)
    distances = torch.linalg.vector_norm(centroids[i] - centroids[j], dim=-1)
    return torch.clamp(margin - distances, min=0.0).mean()


class InterIntraLoss(nn.Module):
    """alpha * CE + beta * inter-class hinge + gamma * intra-class distance.

    A weight of 0 switches its term off (``ce+intra`` and ``ce+inter`` do so).
    """

    def __init__(
        self, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0, margin: float = 1.0
    ) -> None:
        super().__init__()
        # a negative weight leaves the loss no floor, a negative margin a hinge always 0
        weights = {"alpha": alpha, "beta": beta, "gamma": gamma, "margin": margin}
        for key, v in weights.items():
            if not (is_number(v) and 0.0 <= v < math.inf):
                raise RouterLLMError(f"{key} must be a finite number >= 0, got {v!r}")
        self.alpha, self.beta, self.gamma, self.margin = alpha, beta, gamma, margin

    def forward(self, logits: Tensor, targets: Tensor, features: Tensor | None = None) -> Tensor:
        loss = self.alpha * F.cross_entropy(logits, targets)
        if self.beta or self.gamma:
            if features is None:
                raise RouterLLMError("the inter/intra losses need the batch's feature vectors")
            if self.beta:
                loss = loss + self.beta * inter_class_hinge(features, targets, self.margin)
            if self.gamma:
                loss = loss + self.gamma * intra_class_distance(features, targets)
        return loss


def _ce_intra(alpha: float = 1.0, gamma: float = 1.0) -> InterIntraLoss:
    return InterIntraLoss(alpha=alpha, beta=0.0, gamma=gamma)


def _ce_inter(alpha: float = 1.0, beta: float = 1.0, margin: float = 1.0) -> InterIntraLoss:
    return InterIntraLoss(alpha=alpha, beta=beta, gamma=0.0, margin=margin)


_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ce": CrossEntropyLoss,
    "label_smoothing": LabelSmoothingLoss,
    "focal": FocalLoss,
    "inter_intra": InterIntraLoss,
    "ce+intra": _ce_intra,
    "ce+inter": _ce_inter,
}
LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)


def make_loss(name: str, **weights: Any) -> nn.Module:
    """Build a loss by name; ``weights`` override its defaults (e.g. ``gamma=3.0``)."""
    try:
        factory = _LOSSES[name]
    except KeyError:
        raise UnknownNameError("loss", name, list(_LOSSES)) from None
    try:
        return factory(**weights)
    except (TypeError, RouterLLMError) as e:  # an unknown option, or a bad value
        raise RouterLLMError(f"bad options for loss {name!r}: {e}") from e
