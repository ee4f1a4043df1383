"""Routing metrics on outcome data: operating points, sweeps, hulls and reference rows.

Data: ``scores[i, j]`` in [0, 1] is model j's real outcome on prompt i (1 = correct)
and ``costs[i, j]`` >= 0 the cost of calling model j on prompt i; a vector of m
per-model costs is broadcast to every prompt.

Definitions:

* Operating point of per-prompt choices j_1..j_n: cost = (1/n) sum_i costs[i, j_i],
  quality = (1/n) sum_i scores[i, j_i].
* Model j's point: C_j = mean_i costs[i, j], Q_j = mean_i scores[i, j].
* "Cheaper" between models: on prompt i, lower costs[i, j], then lower C_j, then
  lower column index; between models overall, lower C_j, then lower index.
* best_single = highest Q_j (ties, within 1e-12 relative as in ``argmax_cheapest``,
  -> lower C_j, then higher Q_j, then lower index: qualities that differ only by
  float rounding, 0.1 + 0.2 against 0.3, are a tie); cheapest = lowest C_j (ties ->
  higher Q_j, then lower index); largest = highest size (ties -> cheaper) or a named
  model.
* oracle: on each prompt, the cheapest model among those with the highest score on
  that prompt (the cheapest correct model when one is correct, else the cheapest).
* random: the expected point of a uniform random choice, i.e. the mean of the m
  model points.
* mix_hull: ``upper_hull`` of the m model points, the best quality a fixed random
  mix of single models reaches at mean cost at most c (M3.9).

The curve metrics (AIQ, APGR, CPT, cost-to-accuracy...) are defined in
``routerllm.eval.curves`` and re-exported here; ``routing_report`` computes them all
for every router and reference row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from routerllm.checks import TOO_LARGE, is_finite_number, too_large
from routerllm.encoders.base import text_list
from routerllm.eval.curves import (
    OperatingPoint,
    acc_at_half_best_cost,
    aiq,
    apgr,
    check_points,
    cost_to_accuracy,
    cost_to_accuracy_one_setting,
    cpt,
    first_cost_reaching,
    max_accuracy,
    pgr,
    quality_at,
    router_curve,
    upper_hull,
)
from routerllm.eval.exact_sweep import exact_points
from routerllm.exceptions import RouterLLMError
from routerllm.routers.decision import (
    TIE_TOL,
    argmax_cheapest,
    cheapness_rank,
    choose,
    normalised_costs,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "OperatingPoint",
    "References",
    "acc_at_half_best_cost",
    "aiq",
    "apgr",
    "check_named_knobs",
    "check_outcomes",
    "check_points",
    "cost_to_accuracy",
    "cost_to_accuracy_one_setting",
    "cpt",
    "default_lambdas",
    "evaluate_choices",
    "first_cost_reaching",
    "format_table",
    "max_accuracy",
    "pgr",
    "quality_at",
    "references",
    "router_curve",
    "routing_report",
    "sweep",
    "upper_hull",
]

DEFAULT_THRESHOLDS = np.linspace(0.0, 1.0, 201)
N_LAMBDAS = 200


def check_outcomes(scores: object, costs: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate outcome data; return float arrays ``scores`` and ``costs``, both (n, m).

    Raises RouterLLMError when scores is not a non-empty 2-D array of finite values in
    [0, 1], or costs is neither (m,) nor (n, m) finite values >= 0 (whose total fits a
    float, so that every mean cost is finite).
    """
    try:
        s = np.asarray(scores, dtype=np.float64)
        c = np.asarray(costs, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RouterLLMError(f"scores and costs must be numeric arrays: {e}") from e
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise RouterLLMError(
            f"scores must be a non-empty 2-D array (n_prompts, n_models); got shape {s.shape}"
        )
    if not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0:
        raise RouterLLMError("scores must be finite and within [0, 1]")
    n, m = s.shape
    if c.shape == (m,):
        c = np.broadcast_to(c, (n, m)).copy()
    elif c.shape != (n, m):
        raise RouterLLMError(
            f"costs must have shape ({m},) (one per model) or {(n, m)} like scores; got {c.shape}"
        )
    if not np.all(np.isfinite(c)) or c.min() < 0.0:
        raise RouterLLMError("costs must be finite and >= 0")
    if too_large(c):
        raise RouterLLMError(TOO_LARGE)
    return s, c


def evaluate_choices(choices: object, scores: object, costs: object) -> OperatingPoint:
    """The operating point of per-prompt model choices (column indices), see module doc."""
    s, c = check_outcomes(scores, costs)
    ch = np.asarray(choices)
    if ch.shape != (s.shape[0],) or not np.issubdtype(ch.dtype, np.integer):
        raise RouterLLMError(
            f"choices must be {s.shape[0]} integer model indices (one per prompt); "
            f"got shape {ch.shape}, dtype {ch.dtype}"
        )
    if ch.size and (ch.min() < 0 or ch.max() >= s.shape[1]):
        raise RouterLLMError(f"choices must be model indices in [0, {s.shape[1] - 1}]")
    rows = np.arange(s.shape[0])
    return OperatingPoint(float(c[rows, ch].mean()), float(s[rows, ch].mean()))


def default_lambdas(predicted: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """The default lambda grid: 0 plus 199 log-spaced values.

    With normalised costs c' = costs / max_j C_j, the choice on a prompt can only change
    at a breakpoint lambda = (p_j - p_k) / (c'_j - c'_k) for a pricier model j with a
    higher prediction than k. The grid spans [min breakpoint / 2, 2 * max breakpoint],
    so its last value picks a cheapest model on every prompt. Without breakpoints every
    lambda gives the choices of lambda = 0 and the grid is [0].
    """
    norm = normalised_costs(costs)
    m = costs.shape[1]
    breaks: list[np.ndarray] = []
    for j in range(m):
        for k in range(m):
            dc, dp = norm[:, j] - norm[:, k], predicted[:, j] - predicted[:, k]
            keep = (dc > 0) & (dp > 0)
            breaks.append(dp[keep] / dc[keep])
    found = np.concatenate(breaks)
    if found.size == 0:
        return np.zeros(1)
    grid = np.geomspace(found.min() / 2.0, found.max() * 2.0, N_LAMBDAS - 1)
    return np.concatenate([[0.0], grid])


def check_named_knobs(knobs: object) -> None:
    """A clear error for a named knob set other than ``"exact"`` and ``"grid"``."""
    if isinstance(knobs, str) and knobs not in ("exact", "grid"):
        raise RouterLLMError(
            f"knobs={knobs!r}: the named knob sets are 'exact' and 'grid' (either mode)"
        )


def sweep(
    predicted: object,
    scores: object,
    costs: object,
    mode: Literal["lambda", "threshold"] = "lambda",
    knobs: Sequence[float] | np.ndarray | Literal["exact", "grid"] | None = None,
    decision_costs: object = None,
) -> list[OperatingPoint]:
    """The operating points of a router's predictions over its decision rule's knob.

    ``predicted[i, j]`` is the router's predicted score of model j on prompt i. The
    router decides by ``decision_costs`` d, (m,) or (n, m): what it knows before
    the call is made. By default each model's mean of ``costs``: a call's own cost
    (its answer's length, its measured energy) is known only after the call, so
    deciding by it would credit the router with hindsight. Each point is then
    scored with the calls' real ``costs``.

    * ``mode="lambda"``: on each prompt choose argmax_j predicted[i, j] - lambda *
      d[i, j] / max_k D_k (costs divided by the highest mean model cost so lambda
      is scale-free). By default (``knobs=None`` or ``"exact"``) one point per
      interval between the breakpoints where a choice changes: every point the rule
      can reach (``routerllm.eval.exact_sweep``). ``knobs="grid"`` takes the
      200 values of ``default_lambdas`` instead, which can step over intervals (the
      default before 2026-12-05, kept to compare with figures measured with it).
    * ``mode="threshold"``: on each prompt choose the cheapest model (by d) with
      predicted[i, j] >= tau, or argmax_j predicted[i, j] when none reaches tau. By
      default one point per interval between the predicted values where a choice
      changes, exact as for lambda (since 2026-12-05); ``knobs="grid"`` takes
      ``DEFAULT_THRESHOLDS``, 201 evenly spaced tau in [0, 1], the default before.

    Ties go to the cheaper model. Points are returned in knob order.
    """
    s, c = check_outcomes(scores, costs)
    d = check_outcomes(s, c.mean(axis=0) if decision_costs is None else decision_costs)[1]
    try:
        p = np.asarray(predicted, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RouterLLMError(f"predicted must be a numeric array: {e}") from e
    if p.shape != s.shape:
        raise RouterLLMError(f"predicted must have the shape of scores {s.shape}; got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise RouterLLMError("predicted must be finite")
    if mode not in ("lambda", "threshold"):
        raise RouterLLMError(f"unknown sweep mode {mode!r}; valid modes: lambda, threshold")
    rank = cheapness_rank(d)
    check_named_knobs(knobs)
    if knobs is None or (isinstance(knobs, str) and knobs == "exact"):
        return exact_points(p, s, c, d, rank, mode)
    if isinstance(knobs, str):  # "grid"
        grid = default_lambdas(p, d) if mode == "lambda" else DEFAULT_THRESHOLDS
    else:
        try:
            grid = np.asarray(knobs, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise RouterLLMError(f"knobs must be numbers: {e}") from e
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
            raise RouterLLMError("knobs must be a non-empty 1-D sequence of finite numbers")
    rows = np.arange(s.shape[0])
    choices = [choose(p, d, mode, float(k), rank=rank) for k in grid]
    return [
        OperatingPoint(float(c[rows, ch].mean()), float(s[rows, ch].mean()), float(k))
        for k, ch in zip(grid, choices, strict=True)
    ]


@dataclass(frozen=True)
class References:
    """The reference rows computed from the outcome data alone (see the module doc)."""

    model_names: tuple[str, ...]
    singles: tuple[OperatingPoint, ...]
    best_single: int
    cheapest: int
    largest: int | None
    oracle: OperatingPoint
    random: OperatingPoint
    mix_hull: tuple[OperatingPoint, ...]

    def rows(self) -> dict[str, list[OperatingPoint]]:
        """Reference rows as curves: ``single:<name>`` per model, then the named rows."""
        out = {f"single:{n}": [p] for n, p in zip(self.model_names, self.singles, strict=True)}
        out["best_single"] = [self.singles[self.best_single]]
        out["cheapest"] = [self.singles[self.cheapest]]
        if self.largest is not None:
            out["largest"] = [self.singles[self.largest]]
        out["oracle"] = [self.oracle]
        out["random"] = [self.random]
        out["mix_hull"] = list(self.mix_hull)
        return out


def references(
    scores: object,
    costs: object,
    model_names: Sequence[str] | None = None,
    sizes: Sequence[float] | None = None,
    largest: str | None = None,
) -> References:
    """Compute the reference rows; ``largest`` comes from ``sizes`` or a model name."""
    s, c = check_outcomes(scores, costs)
    m = s.shape[1]
    names = (
        tuple(text_list(model_names, "model_names"))
        if model_names is not None
        else tuple(f"model_{j}" for j in range(m))
    )
    if len(names) != m or len(set(names)) != m:
        raise RouterLLMError(f"model_names must be {m} distinct names (one per column)")
    mean_c, mean_q = c.mean(axis=0), s.mean(axis=0)
    singles = tuple(OperatingPoint(float(x), float(y)) for x, y in zip(mean_c, mean_q, strict=True))
    index = np.arange(m)
    top = mean_q.max()
    tied = mean_q >= top - TIE_TOL * max(1.0, abs(top))
    best = int(np.lexsort((index, -mean_q, mean_c, ~tied))[0])
    cheapest = int(np.lexsort((index, -mean_q, mean_c))[0])
    big: int | None = None
    if sizes is not None and largest is not None:
        raise RouterLLMError("give either sizes or largest, not both")
    if sizes is not None:
        # read once: a generator or other one-pass iterable is checked and used alike
        values = list(sizes) if isinstance(sizes, Iterable) and not isinstance(sizes, str) else None
        if values is None or not all(is_finite_number(v) for v in values):
            raise RouterLLMError(
                f"sizes must be {m} finite numbers (one per model), got {sizes!r}"[:200]
            )
        sz = np.asarray(values, dtype=np.float64)
        if sz.shape != (m,):
            raise RouterLLMError(f"sizes must be {m} finite numbers (one per model)")
        big = int(np.lexsort((index, mean_c, -sz))[0])
    elif largest is not None:
        if largest not in names:
            raise RouterLLMError(f"largest {largest!r} is not a model; valid: {', '.join(names)}")
        big = names.index(largest)
    rank = cheapness_rank(c)
    oracle_choice = argmax_cheapest(s, rank)
    rows = np.arange(s.shape[0])
    oracle = OperatingPoint(
        float(c[rows, oracle_choice].mean()), float(s[rows, oracle_choice].mean())
    )
    random = OperatingPoint(float(mean_c.mean()), float(mean_q.mean()))
    return References(
        names, singles, best, cheapest, big, oracle, random, tuple(upper_hull(singles))
    )


METRICS = (
    "apgr",
    "aiq",
    "cpt50",
    "cpt80",
    "max_accuracy",
    "acc_at_half_best_cost",
    "cost_to_95",
    "cost_to_best_accuracy",
    "cost_to_95_one_setting",
    "cost_to_best_accuracy_one_setting",
)


def _row_metrics(
    points: Sequence[OperatingPoint], refs: References, cost_min: float, cost_max: float
) -> dict[str, float | None]:
    weak, strong = refs.singles[refs.cheapest], refs.singles[refs.best_single]
    return {
        "apgr": apgr(points, weak, strong),
        "aiq": aiq(points, cost_min, cost_max, anchor=weak),
        "cpt50": cpt(points, weak, strong, 0.5),
        "cpt80": cpt(points, weak, strong, 0.8),
        "max_accuracy": max_accuracy(points),
        "acc_at_half_best_cost": acc_at_half_best_cost(points, strong, anchor=weak),
        "cost_to_95": cost_to_accuracy(points, 0.95 * strong.quality, strong.cost, anchor=weak),
        "cost_to_best_accuracy": cost_to_accuracy(points, strong.quality, strong.cost, anchor=weak),
        "cost_to_95_one_setting": cost_to_accuracy_one_setting(
            points, 0.95 * strong.quality, strong.cost, anchor=weak
        ),
        "cost_to_best_accuracy_one_setting": cost_to_accuracy_one_setting(
            points, strong.quality, strong.cost, anchor=weak
        ),
    }


def routing_report(
    routers: Mapping[str, Sequence[OperatingPoint]],
    scores: object,
    costs: object,
    sizes: Sequence[float] | None = None,
    *,
    model_names: Sequence[str] | None = None,
    largest: str | None = None,
) -> dict[str, Any]:
    """Every metric of ``METRICS`` for each router and each reference row.

    Returns ``{"rows": {name: {"kind": "router" | "reference", "n_points": int,
    <metric>: float | None}}, "best_single": {...}, "cheapest": {...}, "oracle": {...},
    "cost_range": [cost_min, cost_max], "notes": [...]}``, where the three model entries
    are ``{"name", "cost", "quality"}`` and the notes say why a metric is None in every
    row (no quality gap between the cheapest and the best model, say). Routers come
    first, then ``References.rows()``.
    Conventions (all rows alike): weak = cheapest model, strong = best single model,
    anchor = the cheapest model's point, AIQ over [cost_min, cost_max] = [cheapest,
    most expensive single model's mean cost]; see ``routerllm.eval.curves``.
    """
    if not isinstance(routers, Mapping):
        raise RouterLLMError(
            f"routers must map each router's name to its operating points, got "
            f"{type(routers).__name__}"
        )
    refs = references(scores, costs, model_names, sizes, largest)
    reference_rows = refs.rows()
    cost_min = min(p.cost for p in refs.singles)
    cost_max = max(p.cost for p in refs.singles)
    rows: dict[str, dict[str, Any]] = {}
    for name, points in routers.items():
        if not isinstance(name, str):
            raise RouterLLMError(f"a router's name must be a string, got {name!r}")
        if name in reference_rows:
            raise RouterLLMError(
                f"router name {name!r} clashes with a reference row; rename the router"
            )
        pts = check_points(points, f"points of router {name!r}")
        rows[name] = {"kind": "router", "n_points": len(pts)}
        rows[name].update(_row_metrics(pts, refs, cost_min, cost_max))
    for name, pts in reference_rows.items():
        rows[name] = {"kind": "reference", "n_points": len(pts)}
        rows[name].update(_row_metrics(pts, refs, cost_min, cost_max))

    def model(j: int) -> dict[str, Any]:
        p = refs.singles[j]
        return {"name": refs.model_names[j], "cost": p.cost, "quality": p.quality}

    return {
        "rows": rows,
        "best_single": model(refs.best_single),
        "cheapest": model(refs.cheapest),
        "oracle": {"name": "oracle", "cost": refs.oracle.cost, "quality": refs.oracle.quality},
        "cost_range": [cost_min, cost_max],
        "notes": _undefined(refs) + _unstable(refs),
    }


#: A quality gap between the best single model and the cheapest under which APGR and CPT
#: are noted as unstable: PGR divides every quality difference by the gap, over 100 times
#: below 0.01 (a point of accuracy), so a router 0.01 above the cheapest model, within the
#: sampling noise of a mean over a few thousand test prompts, reads as recovering the
#: whole gap (a gap of 0.0016 gave the oracle an APGR of 122).
TINY_GAP = 0.01


def _unstable(refs: References) -> list[str]:
    """A note where the quality gap PGR divides by is under ``TINY_GAP``: the figures are
    as defined (PGR is not clipped), but far outside 0 to 1 they say little."""
    strong, weak = refs.singles[refs.best_single], refs.singles[refs.cheapest]
    gap = strong.quality - weak.quality
    if not 0 < gap < TINY_GAP or strong.cost <= weak.cost:
        return []
    return [
        f"apgr, cpt50 and cpt80 are unstable: the best single model "
        f"({refs.model_names[refs.best_single]}) is only {gap:.4f} better than the cheapest "
        f"({refs.model_names[refs.cheapest]}), under {TINY_GAP:g}, and PGR divides every "
        f"quality difference by that gap (x {1 / gap:.0f}): a figure far outside 0 to 1 says "
        f"little"
    ]


def _undefined(refs: References) -> list[str]:
    """Why a metric is None in every row: the test data leaves it undefined (every model
    fails, say), which a bare None (``-``, as for a target never reached) would not tell."""
    strong, weak = refs.singles[refs.best_single], refs.singles[refs.cheapest]
    best = refs.model_names[refs.best_single]
    notes = []
    if refs.best_single == refs.cheapest:  # the only way Q_s - Q_w or C_s - C_w is 0
        notes.append(
            f"apgr, cpt50 and cpt80 are undefined: the best single model ({best}) is also the "
            f"cheapest, so there is no quality gap to recover"
        )
    if strong.cost <= 0:
        notes.append(
            f"the cost_to_* metrics are undefined: the best single model ({best}) costs 0, and "
            f"they are a share of its cost"
        )
    if 0.5 * strong.cost < weak.cost:
        notes.append(
            f"acc_at_half_best_cost is undefined: half the best single model's ({best}) cost is "
            f"below the cheapest model's, where every curve starts"
        )
    if len(refs.singles) > 1 and len({p.cost for p in refs.singles}) == 1:
        # models of one size compared by size, or calls all free: AIQ is Q at that cost,
        # and the anchor there is the best model, which hides a router worse than it
        notes.append(
            f"aiq is the best quality a curve reaches at the one cost every model has "
            f"({weak.cost:g}): there is no cost range to average over, and every curve starts "
            f"at the cheapest model's point ({best}, also the best), so no row's aiq is below "
            f"{best}'s {strong.quality:.3f}; compare max_accuracy"
        )
    return notes


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}%" if metric.startswith("cpt") else f"{value:.3f}"


def format_table(report: Mapping[str, Any]) -> str:
    """An aligned plain-text table of ``routing_report``'s rows ("-" = None)."""
    header = ["name", *METRICS]
    body = [[name, *(_cell(k, row[k]) for k in METRICS)] for name, row in report["rows"].items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])
