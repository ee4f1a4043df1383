"""Calibration's estimate of what its knob does on new prompts: cross-fitting.

Calibration picks the best of many knob settings on the held-out prompts, so the
quality (and the lead over the fixed mix) it measures there at that knob is biased
upwards: the winner's curse. Here the held-out prompts are dealt into ``folds``
(every copy of a question in one fold); each fold is routed with the rule and knob
chosen the same way on the other folds, and its prompts' outcomes are pooled: each
prompt is scored by a knob chosen without it. This estimates the choosing procedure
on a little less data (4/5 of it by default), so if anything it is a little
pessimistic; the router keeps the knob chosen on all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The cross-fitting folds of calibration's held-out prompts (fewer where there are
#: fewer questions).
FOLDS = 5

#: ``choose(rows)``: (target met, the setting chosen on those held-out rows, (a second
#: setting, its share) or None), as ``calibration.choose_setting`` returns it.
Chooser = Callable[[np.ndarray], tuple[bool, Any, "tuple[Any, float] | None"]]


@dataclass(frozen=True)
class CrossFitted:
    """Held-out prompts each routed by a knob chosen without them: the mean ``quality``
    and ``cost`` of the router's choices, the mean quality of the best fixed mix of
    single models at the cost each knob had where it was chosen (``mix_quality``), and
    the router's ``lead`` over that mix with its standard error ``noise`` (over the
    prompts, paired). Without a mix to compare with (a budget below the cheapest model),
    ``mix_quality`` and ``lead`` are nan; ``noise`` is inf below two prompts."""

    quality: float
    cost: float
    mix_quality: float
    lead: float
    noise: float
    folds: int


def fold_of(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold: its group's (``groups``: a group id per row, copies of one
    question alike), the groups dealt at random (seeded) into ``folds`` folds or as many
    as there are groups."""
    ids, inverse = np.unique(groups, return_inverse=True)
    dealt = np.random.default_rng(seed).permutation(len(ids)) % max(1, min(folds, len(ids)))
    return np.asarray(dealt[inverse.reshape(-1)], dtype=int)


def row_groups(embeddings: np.ndarray | None, n: int) -> np.ndarray:
    """A group id per held-out row: rows with identical embeddings (copies of one
    prompt) alike, else each its own (no embeddings: given predictions)."""
    if embeddings is None or len(embeddings) != n:
        return np.arange(n)
    flat = np.ascontiguousarray(np.asarray(embeddings).reshape(n, -1))
    _, inverse = np.unique(flat, axis=0, return_inverse=True)
    return np.asarray(inverse.reshape(-1), dtype=int)


def cross_fit(
    choose: Chooser,
    routed: Callable[[np.ndarray, Any, Any], tuple[np.ndarray, np.ndarray]],
    scores: np.ndarray,
    costs: np.ndarray,
    fold: np.ndarray,
) -> CrossFitted:
    """Cross-fit calibration over the folds ``fold`` (one per held-out row of ``scores``
    and ``costs``): ``choose(rows)`` picks the setting on the other folds' rows,
    ``routed(rows, pick, second)`` gives each of a fold's rows its expected outcome and
    cost at that setting. A single fold (one question) leaves nothing to choose on
    without it: nan quality, cost and lead."""
    from routerllm.eval.curves import mix_at
    from routerllm.eval.routing_metrics import evaluate_choices

    n, m = scores.shape
    quality, spent = np.full(n, math.nan), np.full(n, math.nan)
    drawn = np.full(n, math.nan)
    folds = np.unique(fold)
    for f in folds if len(folds) > 1 else []:
        on, off = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        _, pick, second = choose(on)
        quality[off], spent[off] = routed(off, pick, second)
        singles = [evaluate_choices(np.full(len(on), j), scores[on], costs[on]) for j in range(m)]
        weights = mix_at(singles, pick[1])
        if weights is not None:
            drawn[off] = sum(w * scores[off, j] for j, w in weights.items())
    lead = (quality - drawn)[~np.isnan(drawn)]
    noise = float(lead.std(ddof=1) / math.sqrt(len(lead))) if len(lead) > 1 else math.inf
    return CrossFitted(
        quality=float(quality.mean()),
        cost=float(spent.mean()),
        mix_quality=float(drawn.mean()) if len(lead) == n else math.nan,
        lead=float(lead.mean()) if len(lead) else math.nan,
        noise=noise,
        folds=len(folds) if len(folds) > 1 else 0,
    )
