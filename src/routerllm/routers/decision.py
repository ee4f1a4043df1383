"""How a predicted-quality router turns predictions into a choice: one knob.

Shared by the routers (``routers/outcome.py``) and the evaluation sweep
(``eval/routing_metrics.py``), so that what is evaluated is what routes.

* ``lambda``: argmax_j predicted[i, j] - knob * costs[i, j] / max_k C_k
  (C_k = mean cost of model k, so the knob is scale-free);
* ``threshold``: the cheapest model with predicted >= knob, else argmax predicted.

A router whose calibration found no routing signal instead draws from a fixed mix of
models (``mix_choices``).

"Cheaper" on a prompt means lower costs[i, j], then lower mean cost C_j, then
lower column index. Ties go to the cheaper model: a model is tied with the best when its
utility is at most 1e-12 x max(1, |the prompt's highest prediction|) below it, the
difference taken term by term, (p_j - p_t) - knob * (c'_j - c'_t), so that it is as exact
as the predictions are whatever the knob. (Until 2026-12-06 the tolerance was relative to
the best utility itself, which grows with knob x cost: at a knob of 1e13 two models of
one cost predicted 0.9 and 0.5 were "tied", and the cheaper by index won.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from routerllm.exceptions import RouterLLMError

MODES = ("lambda", "threshold")
TIE_TOL = 1e-12


def cheapness_rank(costs: np.ndarray) -> np.ndarray:
    """rank[i, j] = position of model j when prompt i's models are sorted cheapest first."""
    n, m = costs.shape
    index = np.broadcast_to(np.arange(m), (n, m))
    mean = np.broadcast_to(costs.mean(axis=0), (n, m))
    order = np.lexsort((index, mean, costs), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(m), (n, m)), axis=-1)
    return rank


def cheapest_where(mask: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per row, the cheapest column where ``mask`` is True (rows need one True)."""
    return np.argmin(np.where(mask, rank, rank.shape[1]), axis=1)


def tie_tolerance(predicted: np.ndarray) -> np.ndarray:
    """Per row (a column vector), how far behind the best a model's utility may be and
    still tie it: 1e-12 x max(1, |the highest prediction|), whatever the knob."""
    return TIE_TOL * np.maximum(1.0, np.abs(predicted.max(axis=1, keepdims=True)))


def argmax_cheapest(
    predicted: np.ndarray,
    rank: np.ndarray,
    costs: np.ndarray | None = None,
    knob: float = 0.0,
) -> np.ndarray:
    """Per row, argmax_j of predicted - knob * costs (``costs`` (n, m), normalised, or
    none); ties (within ``tie_tolerance``) go to the cheaper model."""
    tol = tie_tolerance(predicted)
    if costs is None or knob == 0.0:
        return cheapest_where(predicted - predicted.max(axis=1, keepdims=True) >= -tol, rank)
    # The utilities themselves round to an ulp of knob x cost (0.002 at 1e13), too coarse
    # to compare; they find a model at the top or within rounding of it, and each model's
    # lead over that one, taken term by term, is exact for equal costs and otherwise
    # rounded in proportion to the terms' difference, which at a near-tie is at most
    # about that of the predictions.
    ref = np.argmax(predicted - knob * costs, axis=1)[:, None]
    lead = (predicted - np.take_along_axis(predicted, ref, axis=1)) - knob * (
        costs - np.take_along_axis(costs, ref, axis=1)
    )
    return cheapest_where(lead >= lead.max(axis=1, keepdims=True) - tol, rank)


def normalised_costs(costs: np.ndarray) -> np.ndarray:
    scale = costs.mean(axis=0).max()
    return costs / scale if scale > 0 else np.zeros_like(costs)


def choose(
    predicted: np.ndarray,
    costs: np.ndarray,
    mode: str,
    knob: float,
    allowed: np.ndarray | None = None,
    rank: np.ndarray | None = None,
) -> np.ndarray:
    """Index of the chosen model for each row of ``predicted`` (n, m).

    ``costs`` is (n, m) or a per-model (m,) vector; ``allowed`` an optional (m,)
    mask of models that may be chosen.
    """
    p = np.asarray(predicted, dtype=np.float64)
    c = np.broadcast_to(np.asarray(costs, dtype=np.float64), p.shape)
    rank = cheapness_rank(c) if rank is None else rank
    if allowed is not None:
        p = np.where(allowed, p, -np.inf)
    if mode == "lambda":
        return argmax_cheapest(p, rank, normalised_costs(c), knob)
    if mode == "threshold":
        ok = p >= knob
        return np.where(ok.any(axis=1), cheapest_where(ok, rank), argmax_cheapest(p, rank))
    raise RouterLLMError(f"unknown decision mode {mode!r}; valid: {', '.join(MODES)}")


def mix_choices(
    prompts: Sequence[str], weights: np.ndarray, seed: int, allowed: np.ndarray | None = None
) -> np.ndarray:
    """Index of the model drawn for each prompt from the mix ``weights`` (m,), renormalised
    over the ``allowed`` models (at least one with weight > 0). The draw is a hash of
    the seed and the prompt: the same prompt always gets the same model, whatever the
    batch, and the shares over many prompts follow the weights."""
    w = np.asarray(weights, dtype=np.float64) * (1.0 if allowed is None else allowed)
    drawn = np.flatnonzero(w > 0)
    cumulative = np.cumsum(w[drawn] / w[drawn].sum())
    cumulative[-1] = 1.0  # draws are < 1: rounding never falls off the end
    return drawn[np.searchsorted(cumulative, prompt_draws(prompts, f"{seed}"), side="right")]


def prompt_draws(prompts: Sequence[str], salt: str) -> np.ndarray:
    """A number in [0, 1) per prompt, a hash of ``salt`` and the prompt: the same
    prompt always draws the same number, whatever the batch."""
    return np.array([
        int.from_bytes(hashlib.sha256(f"{salt}\0{p}".encode()).digest()[:8], "big") / 2.0**64
        for p in prompts
    ])  # fmt: skip


#: How many products ``rowwise_matmul`` holds at once (16 MB of float64).
_PRODUCTS_AT_ONCE = 1 << 21


def rowwise_matmul(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``X @ W``, each entry a sum of its own products in one fixed order. BLAS sums a
    batch's rows, and a matrix's columns, in orders that depend on the batch and the
    columns' places, so a prompt's prediction differed in its last bits with the batch
    it came in (or its model's column), and a near-tie could go either way."""
    X, Wt = np.asarray(X, dtype=np.float64), np.ascontiguousarray(np.asarray(W, dtype=np.float64).T)
    out = np.empty((len(X), Wt.shape[0]))
    step = max(1, _PRODUCTS_AT_ONCE // max(1, Wt.size))
    for start in range(0, len(X), step):
        # numpy sums the contiguous last axis pairwise, entry by entry
        out[start : start + step] = (X[start : start + step, None, :] * Wt[None]).sum(axis=-1)
    return out
