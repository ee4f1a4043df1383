"""How a predicted-quality router turns predictions into a choice: one knob.

Shared by the routers (``routers/quality.py``) and the evaluation sweep
(``eval/routing_metrics.py``), so that what is evaluated is what routes.

* ``lambda``: argmax_j predicted[i, j] - knob * costs[i, j] / max_k C_k
  (C_k = mean cost of model k, so the knob is scale-free);
* ``threshold``: the cheapest model with predicted >= knob, else argmax predicted.

"Cheaper" on a prompt means lower costs[i, j], then lower mean cost C_j, then
lower column index; ties in utility (within 1e-12 relative) go to the cheaper model.
"""

from __future__ import annotations

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


def argmax_cheapest(values: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per row, argmax of ``values``; ties (within 1e-12 relative) go to the cheaper model."""
    top = values.max(axis=1, keepdims=True)
    tied = values >= top - TIE_TOL * np.maximum(1.0, np.abs(top))
    return cheapest_where(tied, rank)


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
        return argmax_cheapest(p - knob * normalised_costs(c), rank)
    if mode == "threshold":
        ok = p >= knob
        return np.where(ok.any(axis=1), cheapest_where(ok, rank), argmax_cheapest(p, rank))
    raise RouterLLMError(f"unknown decision mode {mode!r}; valid: {', '.join(MODES)}")
