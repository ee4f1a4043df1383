"""The exact lambda sweep: every operating point the lambda rule can reach.

On prompt i the lambda rule (``routers.decision.choose``) picks argmax_j p_ij -
lambda * d'_ij, d' the decision costs divided by the highest mean model cost. As
lambda falls from +inf to 0 the choice walks up the upper convex hull of the
prompt's (d', p) points, cheapest first: it changes only at the hull's breakpoints
lambda = (p_b - p_a) / (d'_b - d'_a), at most m - 1 of them. Sweeping every prompt's
switches in decreasing lambda, with running sums of the real cost and score, gives
one operating point per interval between breakpoints in O(K log K) for K switches,
where a fixed grid (``default_lambdas``) can step over intervals and lose their
points.

Ties follow ``choose``: at a breakpoint, and between models of equal predicted score,
the cheaper model wins (``cheapness_rank``), so a breakpoint belongs to the interval
above it. Breakpoints within 1e-9 relative of each other are one (two prompts'
float roundings of one value), which ``choose``'s 1e-12 tie tolerance also reads as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerllm.eval.curves import OperatingPoint
from routerllm.routers.decision import TIE_TOL, argmax_cheapest, normalised_costs

#: Breakpoints closer than this (relative) are one.
MERGE_TOL = 1e-9


@dataclass(frozen=True)
class Switches:
    """Each prompt's choice above every breakpoint and its switches below it.

    ``start[i]`` is prompt i's choice for lambda above its highest breakpoint; switch
    k moves prompt ``prompt[k]`` from model ``before[k]`` to ``after[k]`` as lambda
    falls below ``at[k]``. Switches are sorted by decreasing ``at``.
    """

    start: np.ndarray
    at: np.ndarray
    prompt: np.ndarray
    before: np.ndarray
    after: np.ndarray


def lambda_switches(
    predicted: np.ndarray, decision_costs: np.ndarray, rank: np.ndarray
) -> Switches:
    """Every prompt's hull walk (see the module doc), vectorised over prompts:
    ``predicted`` and ``decision_costs`` are (n, m) arrays, ``rank`` their
    ``cheapness_rank``."""
    p = np.asarray(predicted, dtype=np.float64)
    d = normalised_costs(np.asarray(decision_costs, dtype=np.float64))
    rows = np.arange(p.shape[0])
    lowest = d == d.min(axis=1, keepdims=True)
    current = argmax_cheapest(np.where(lowest, p, -np.inf), rank)
    start = current.copy()
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(p.shape[1] - 1):
        pw, dw = p[rows, current][:, None], d[rows, current][:, None]
        dp, dd = p - pw, d - dw
        # a pricier model with a higher score (beyond choose's tie tolerance)
        higher = (dd > 0) & (dp > TIE_TOL * np.maximum(1.0, np.abs(pw)))
        ratio = np.where(higher, dp / np.where(higher, dd, 1.0), -np.inf)
        best = ratio.max(axis=1)
        moving = np.isfinite(best)
        if not moving.any():
            break
        # models on one line cross at one lambda: below it the one with the highest
        # score (the priciest) wins; float rounding of that one value leaves steps
        # apart by an ulp, one group in ``_groups``
        nxt = argmax_cheapest(np.where(ratio == best[:, None], p, -np.inf), rank)
        found.append((best[moving], rows[moving], current[moving], nxt[moving]))
        current = np.where(moving, nxt, current)
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return Switches(start, np.zeros(0), empty, empty, empty)
    at, prompt, before, after = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.argsort(-at, kind="stable")
    return Switches(start, at[order], prompt[order], before[order], after[order])


def _groups(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the last switch, lowest value) of each group of equal breakpoints
    in ``at`` (sorted decreasing)."""
    new = np.ones(at.size, dtype=bool)
    new[1:] = at[1:] < at[:-1] * (1.0 - MERGE_TOL)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, at.size - 1)
    return last, at[last]


def _knobs(at: np.ndarray) -> np.ndarray:
    """One knob per interval between the breakpoints ``at`` (sorted decreasing),
    ascending: 0, the midpoint of each gap, and twice the highest breakpoint (as
    ``default_lambdas`` ends)."""
    if at.size == 0:
        return np.zeros(1)
    last, low = _groups(at)
    high = at[np.append(0, last[:-1] + 1)]  # each group's highest value
    middles = (low[:-1] + high[1:]) / 2.0
    return np.concatenate([[0.0], middles[::-1], [2.0 * at[0]]])


def exact_points(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    decision_costs: np.ndarray,
    rank: np.ndarray,
) -> list[OperatingPoint]:
    """The operating point of every interval between breakpoints, in ascending knob
    order (the knobs of ``_knobs``); arrays already checked, all (n, m)."""
    return exact_settings(predicted, scores, costs, decision_costs, rank)[0]


def exact_settings(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    decision_costs: np.ndarray,
    rank: np.ndarray,
) -> tuple[list[OperatingPoint], np.ndarray]:
    """``exact_points`` and, row k for its point k, the share of prompts each model
    gets there: a (points, m) array, as calibration needs to meet a ``max_share``."""
    sw = lambda_switches(predicted, decision_costs, rank)
    knobs = _knobs(sw.at)
    n, m = scores.shape
    rows = np.arange(n)
    start = np.concatenate([
        [costs[rows, sw.start].sum(), scores[rows, sw.start].sum()],
        np.bincount(sw.start, minlength=m),
    ])  # fmt: skip
    # each switch's change to the sums of cost, score and each model's prompts
    steps = np.zeros((sw.at.size, 2 + m))
    steps[:, 0] = costs[sw.prompt, sw.after] - costs[sw.prompt, sw.before]
    steps[:, 1] = scores[sw.prompt, sw.after] - scores[sw.prompt, sw.before]
    switch = np.arange(sw.at.size)
    steps[switch, 2 + sw.before] = -1.0  # before != after: one move per switch
    steps[switch, 2 + sw.after] = 1.0
    last = _groups(sw.at)[0] if sw.at.size else np.zeros(0, dtype=np.int64)
    sums = np.vstack([start, start + np.cumsum(steps, axis=0)[last]])[::-1] / n
    points = [
        OperatingPoint(float(c), float(s), float(k))
        for c, s, k in zip(sums[:, 0], sums[:, 1], knobs, strict=True)
    ]
    return points, sums[:, 2:]
