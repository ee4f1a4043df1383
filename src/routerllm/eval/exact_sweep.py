"""Exact sweeps: every operating point a decision rule (``routers.decision.choose``)
can reach, one per interval between the knob values where some prompt's choice
changes, from running sums over every prompt's switches sorted by knob, in
O(K log K) for K switches, where a fixed grid can step over intervals and lose
their points.

Lambda: on prompt i the rule picks argmax_j p_ij - lambda * d'_ij, d' the decision
costs divided by the highest mean model cost, the cheapest (``cheapness_rank``) of the
models tied with the best: those at most t = 1e-12 x max(1, |max_j p_ij|) behind every
other model (``decision.tie_tolerance``). Model j is within t of model l while
(p_j - p_l + t) - lambda * (d'_j - d'_l) >= 0: for all lambda or none where their
costs are equal, else on one side of an edge lambda = (p_j - p_l + t) / (d'_j - d'_l).
So each model is tied with the best on one interval of lambda, its band (possibly
empty), and the choice changes only at the bands' ends, at most 2m of them: a
prompt's walk takes, between two ends, the cheapest model whose band holds the
interval. (Without ties the choice walks up the upper convex hull of the prompt's
(d', p) points, switching t / (d'_b - d'_a) below each hull breakpoint; until
2026-12-06 the sweep walked that hull and disagreed with ``choose`` on chains of
models each within t of the next.) A band holds its ends; at lambda = 0 that is the
point lambda = 0 itself, elsewhere a knob is never at an end, where the rule's value is
exactly the tolerance and either side is rounding. Ends within 1e-9 relative of each
other are one (two prompts' float roundings of one value).

Threshold: on prompt i the rule picks the cheapest model with p_ij >= tau, else
argmax_j p_ij (ties, within 1e-12, to the cheaper). Its choice changes only at tau
equal to a "record": a model's prediction higher than every cheaper model's. As tau
falls from +inf the choice goes from the argmax to the priciest record at its value,
then down the records, each one from tau = its value (a breakpoint belongs to the
interval below it). ``choose`` compares ``p >= tau`` exactly, so only equal
breakpoints are one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerllm.eval.curves import OperatingPoint
from routerllm.exceptions import RouterLLMError
from routerllm.routers.decision import MODES, argmax_cheapest, normalised_costs, tie_tolerance

#: Breakpoints closer than this (relative) are one.
MERGE_TOL = 1e-9


@dataclass(frozen=True)
class Switches:
    """Each prompt's choice above every breakpoint and its switches below it.

    ``start[i]`` is prompt i's choice for a knob above its highest breakpoint; switch
    k moves prompt ``prompt[k]`` from model ``before[k]`` to ``after[k]`` as the knob
    falls past ``at[k]`` (below it for lambda, but at 0 itself, to it for a threshold;
    a prompt's switches at one value in their order). Switches are
    sorted by decreasing ``at``.
    """

    start: np.ndarray
    at: np.ndarray
    prompt: np.ndarray
    before: np.ndarray
    after: np.ndarray


#: ``lambda_switches`` walks blocks of this many (prompt, model, model) entries'
#: prompts (4,333 prompts of 11 models): a block's arrays, a few MB, stay small
#: whatever the data's size, and the numpy calls per block are few.
_ENTRIES_AT_ONCE = 1 << 19


def lambda_switches(
    predicted: np.ndarray, decision_costs: np.ndarray, rank: np.ndarray
) -> Switches:
    """Every prompt's walk through its models' tie bands (see the module doc),
    vectorised over prompts: ``predicted`` and ``decision_costs`` are (n, m) arrays,
    ``rank`` their ``cheapness_rank``."""
    p = np.asarray(predicted, dtype=np.float64)
    d = normalised_costs(np.asarray(decision_costs, dtype=np.float64))
    n, m = p.shape
    step = max(1, _ENTRIES_AT_ONCE // (m * m))
    parts = [
        _band_walk(p[i : i + step], d[i : i + step], rank[i : i + step], i)
        for i in range(0, n, step)
    ]
    start, at, prompt, before, after = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.argsort(-at, kind="stable")  # a prompt's switches at one value keep their order
    return Switches(start, at[order], prompt[order], before[order], after[order])


def _band_walk(
    p: np.ndarray, d: np.ndarray, rank: np.ndarray, first: int
) -> tuple[np.ndarray, ...]:
    """``lambda_switches`` of the prompts ``first``.. (p, d, rank a block of rows):
    their choices above every edge and (at, prompt, before, after) of each switch,
    in each prompt's order of decreasing lambda."""
    n, m = p.shape
    tol = tie_tolerance(p)
    # j ties or beats l at lambda iff slack - lambda * dd >= 0, below: so j is in its
    # band [low, high] when lambda is at least the edges of its dearer rivals (dd < 0),
    # at most those of its cheaper ones (dd > 0), and a rival of equal cost (dd == 0,
    # j itself too) leaves it out at every lambda if it leads by more. One rival at a
    # time: (n, m) arrays, which numpy runs through faster than one (n, m, m).
    low, high = np.zeros((n, m)), np.full((n, m), np.inf)
    never = np.zeros((n, m), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for rival in range(m):
            slack = (p - p[:, rival, None]) + tol
            dd = d - d[:, rival, None]
            edge = slack / dd
            np.maximum(low, np.where(dd < 0, edge, 0.0), out=low)
            np.minimum(high, np.where(dd > 0, edge, np.inf), out=high)
            never |= (dd == 0) & (slack < 0)
    never |= low > high
    low[never], high[never] = np.inf, -np.inf
    # the edges inside [0, inf) as the walk's stops, in decreasing order, clipped to 0
    # (where -1 marks none); with two stops at 0, the last interval is lambda = 0 itself
    stops = np.concatenate(
        [
            np.where(np.isfinite(low) & (low > 0), low, -1.0),
            np.where(np.isfinite(high) & (high >= 0), high, -1.0),
            np.zeros((n, 2)),
        ],
        axis=1,
    )
    stops = np.maximum(-np.sort(-stops, axis=1), 0.0)
    # most models' bands are empty (off the hull): the block's rows need only as many
    # stops as the one with the most edges, and the two at 0
    stops = stops[:, : int((stops > 0).sum(axis=1).max()) + 2]
    above = np.concatenate([np.full((n, 1), np.inf), stops[:, :-1]], axis=1)
    # on the interval (stops[s], above[s]) the cheapest model whose band holds it
    small = np.int16 if m < np.iinfo(np.int16).max else np.int64
    cheapest = np.full(stops.shape, m, dtype=small)
    for j in range(m):
        inside = (low[:, j, None] <= stops) & (high[:, j, None] >= above)
        np.minimum(cheapest, np.where(inside, rank[:, j, None].astype(small), m), out=cheapest)
    choice = np.take_along_axis(np.argsort(rank, axis=1), cheapest, axis=1)
    moved = choice[:, :-1] != choice[:, 1:]
    row, s = np.nonzero(moved)  # row-major: each prompt's switches in decreasing lambda
    return choice[:, 0], stops[row, s], row + first, choice[row, s], choice[row, s + 1]


def threshold_switches(predicted: np.ndarray, rank: np.ndarray) -> Switches:
    """Every prompt's walk down its records (see the module doc), vectorised over
    prompts: ``predicted`` is an (n, m) array, ``rank`` the ``cheapness_rank`` of its
    decision costs."""
    p = np.asarray(predicted, dtype=np.float64)
    n, m = p.shape
    rows = np.arange(n)
    order = np.argsort(rank, axis=1)  # each prompt's models, cheapest first
    ps = np.take_along_axis(p, order, axis=1)
    cheaper_max = np.full((n, m), -np.inf)
    cheaper_max[:, 1:] = np.maximum.accumulate(ps, axis=1)[:, :-1]
    record = ps > cheaper_max
    # the place of each place's next record (m: none), from a right-to-left running min
    places = np.where(record, np.arange(m), m)
    following = np.full((n, m), m)
    following[:, :-1] = np.minimum.accumulate(places[:, ::-1], axis=1)[:, ::-1][:, 1:]
    # below each record but the priciest, its next record gives way to it
    down = record & (following < m)
    row, col = np.nonzero(down)
    # above every value the argmax wins (ties within choose's tolerance to the cheaper),
    # which is a record but maybe not the priciest: the priciest takes over at its value
    start = argmax_cheapest(p, rank)
    top_place = np.argmax(ps == ps.max(axis=1, keepdims=True), axis=1)
    top = order[rows, top_place]
    jump = np.flatnonzero(start != top)
    at = np.concatenate([ps[jump, top_place[jump]], ps[row, col]])
    prompt = np.concatenate([jump, row])
    before = np.concatenate([start[jump], order[row, following[row, col]]])
    after = np.concatenate([top[jump], order[row, col]])
    ranked = np.argsort(-at, kind="stable")
    return Switches(start, at[ranked], prompt[ranked], before[ranked], after[ranked])


def _groups(at: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(index of the last switch, lowest value) of each group of equal breakpoints
    in ``at`` (sorted decreasing; within ``tol`` relative, for positive values)."""
    if at.size == 0:
        return np.zeros(0, dtype=np.int64), at
    new = np.ones(at.size, dtype=bool)
    new[1:] = at[1:] < at[:-1] * (1.0 - tol)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, at.size - 1)
    return last, at[last]


def _lambda_knobs(at: np.ndarray) -> np.ndarray:
    """One knob per interval between the breakpoints ``at`` (sorted decreasing),
    ascending: 0, the midpoint of each gap, and twice the highest breakpoint (as
    ``default_lambdas`` ends)."""
    if at.size == 0:
        return np.zeros(1)
    last, low = _groups(at, MERGE_TOL)
    high = at[np.append(0, last[:-1] + 1)]  # each group's highest value
    middles = (low[:-1] + high[1:]) / 2.0
    return np.concatenate([[0.0], middles[::-1], [2.0 * at[0]]])


def _threshold_knobs(at: np.ndarray) -> np.ndarray:
    """One tau per interval between the breakpoints ``at`` (sorted decreasing),
    ascending: min(0, the lowest), the midpoint of each gap (where two breakpoints are
    adjacent floats, whose midpoint rounds to one of them, the higher: an interval
    holds its top), and above the highest 1 (the default grid's last value) where it
    is below 1, else the highest + 1 (the next float where that rounds to it). No
    breakpoint: 0, as every tau gives one choice."""
    if at.size == 0:
        return np.zeros(1)
    values = at[_groups(at, 0.0)[0]][::-1]  # distinct, ascending
    low, high = values[:-1], values[1:]
    middles = low / 2.0 + high / 2.0  # cannot overflow; one rounded to low or below: high
    middles = np.where(middles > low, middles, high)
    highest = float(values[-1])
    above = 1.0 if highest < 1.0 else max(highest + 1.0, float(np.nextafter(highest, np.inf)))
    return np.concatenate([[min(0.0, float(values[0]))], middles, [above]])


def exact_points(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    decision_costs: np.ndarray,
    rank: np.ndarray,
    mode: str = "lambda",
) -> list[OperatingPoint]:
    """The operating point of every interval between ``mode``'s breakpoints, in
    ascending knob order (each point's knob makes it); arrays already checked, all
    (n, m)."""
    return exact_settings(predicted, scores, costs, decision_costs, rank, mode)[0]


def exact_settings(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    decision_costs: np.ndarray,
    rank: np.ndarray,
    mode: str = "lambda",
) -> tuple[list[OperatingPoint], np.ndarray]:
    """``exact_points`` and, row k for its point k, the share of prompts each model
    gets there: a (points, m) array, as calibration needs to meet a ``max_share``."""
    if mode == "lambda":
        sw = lambda_switches(predicted, decision_costs, rank)
        return _walk(sw, _groups(sw.at, MERGE_TOL)[0], _lambda_knobs(sw.at), scores, costs)
    if mode == "threshold":
        sw = threshold_switches(predicted, rank)
        return _walk(sw, _groups(sw.at, 0.0)[0], _threshold_knobs(sw.at), scores, costs)
    raise RouterLLMError(f"unknown decision mode {mode!r}; valid: {', '.join(MODES)}")


def _walk(
    sw: Switches, last: np.ndarray, knobs: np.ndarray, scores: np.ndarray, costs: np.ndarray
) -> tuple[list[OperatingPoint], np.ndarray]:
    """``exact_settings`` from the switches ``sw``, ``last`` the index of each group's
    last switch and ``knobs`` one per interval, ascending: running sums of the cost,
    the score and each model's prompts, read after each group."""
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
    sums = np.vstack([start, start + np.cumsum(steps, axis=0)[last]])[::-1] / n
    points = [
        OperatingPoint(float(c), float(s), float(k))
        for c, s, k in zip(sums[:, 0], sums[:, 1], knobs, strict=True)
    ]
    return points, sums[:, 2:]
