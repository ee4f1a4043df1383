"""Calibration: an outcome router's decision rule and knob set from a target.

A target (``parse_target``) is a budget (``max_cost``), a quality to keep
(``quality``) or a cap on a model's share (``max_share``). The router's
predictions on held-out prompts are swept over each rule's knob (every setting the
rule can reach, ``eval/exact_sweep.py``); the best point
for the target is one setting, or with ``two_settings`` a random mix of two
neighbouring settings on the rule's curve (``best_on_curve``). Where a fixed
random mix of single models does better at the same cost, the router draws from
that mix instead (MISSION M3.9).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.blas_threads import one_thread
from routerllm.checks import is_finite_number
from routerllm.data.outcomes import scores_are_outcomes
from routerllm.exceptions import RouterLLMError
from routerllm.routers.decision import MODES, cheapness_rank

if TYPE_CHECKING:
    from routerllm.routers.cross_fit import CrossFitted
    from routerllm.routers.outcome import OutcomeRouter

log = logging.getLogger(__name__)

#: How many standard errors the router's cross-fitted lead over the best fixed mix must
#: exceed before calibration keeps it routing by the prompt (``calibrate(signal_se=)``'s
#: default; benchmarks/calibration_estimate.py weighs 0, 1, 1.5 and 2).
SIGNAL_SE = 2.0


def calibrate(
    router: OutcomeRouter,
    embeddings: np.ndarray | Sequence[str] | None,
    scores: np.ndarray,
    target: str,
    model_names: Sequence[str] | None,
    predicted: np.ndarray | None,
    modes: Sequence[str],
    two_settings: bool,
    signal_se: float = SIGNAL_SE,
) -> dict[str, Any]:
    """``OutcomeRouter.calibrate`` (see there): set ``router``'s decision rule, knob
    (and second knob, or fallback mix) from ``target`` on held-out outcomes."""
    from routerllm.eval.curves import mix_at, quality_at, upper_hull
    from routerllm.eval.routing_metrics import evaluate_choices
    from routerllm.routers.cross_fit import FOLDS, cross_fit, fold_of, row_groups

    router._check_fitted()
    Y = router._columns(scores, model_names)
    X: np.ndarray | None = None  # the held-out prompts' embeddings, where given
    if len(Y) == 0 or not scores_are_outcomes(Y):
        raise RouterLLMError(
            "calibrate needs held-out outcome scores: numbers in [0, 1] (1 = solved)"
        )
    if predicted is None:
        if embeddings is None:
            raise RouterLLMError(
                "calibrate needs the held-out prompts or their embeddings (or predicted)"
            )
        if not isinstance(embeddings, str | np.ndarray) and all(
            isinstance(p, str) for p in embeddings
        ):
            embeddings = router.embed(embeddings)  # prompts, as fit takes them
        X = router.check_embeddings(embeddings)
        if len(X) != len(Y):
            raise RouterLLMError(f"{len(X)} embeddings for {len(Y)} outcome rows")
        with one_thread():  # as the router was fitted: its knob not a matter of BLAS threads
            pred = router.predict(X)
    else:
        pred = router._columns(predicted, model_names, "predictions")
        if pred.shape != Y.shape:
            raise RouterLLMError(f"{pred.shape} predictions for outcomes of shape {Y.shape}")
        if not scores_are_outcomes(pred):
            raise RouterLLMError("predictions must be probabilities of success, in [0, 1]")
    costs = np.broadcast_to(router.costs, Y.shape)
    kind, goal = parse_target(target, router.model_names)
    capped = capped_model(kind, goal, router.model_names, router.costs)
    if two_settings:
        check_two_settings(kind)
    if not (is_finite_number(signal_se) and signal_se >= 0):
        raise RouterLLMError(
            f"signal_se must be a number of standard errors >= 0, got {signal_se!r}"
        )
    if isinstance(modes, str) or not isinstance(modes, Sequence) or not modes:
        raise RouterLLMError(f"modes must be a list of decision modes ({', '.join(MODES)})")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise RouterLLMError(
            f"unknown decision mode(s) {unknown} to calibrate (a knob of): {', '.join(MODES)}"
        )
    rank = cheapness_rank(costs)
    capped_j = None if capped is None else router.model_names.index(capped)
    top = float(router.costs.max())

    def choose(on: np.ndarray) -> tuple[bool, Row, tuple[Row, float] | None]:
        rows = knob_rows(pred[on], Y[on], costs[on], rank[on], modes)
        return choose_setting(rows, Y[on], kind, goal, capped_j, top, modes, two_settings)

    everything = np.arange(len(Y))
    ok, pick, second = choose(everything)
    router.knob, router.mode = pick[0], pick[4]
    router.options.update(knob=router.knob, mode=router.mode)
    router.set_second_knob(
        None if second is None else second[0][0], 0.0 if second is None else second[1]
    )
    shares = {n: float(pick[3][j]) for j, n in enumerate(router.model_names)}
    if second is not None:
        row, s = second
        shares = {n: (1 - s) * v + s * float(row[3][j]) for j, (n, v) in enumerate(shares.items())}
    singles = [evaluate_choices(np.full(len(Y), j), Y, costs) for j in range(Y.shape[1])]
    mix = quality_at(upper_hull(singles), pick[1])
    weights = mix_at(singles, pick[1])
    # Do no harm (M3.9): a router not ahead of the best fixed mix at the same cost by more
    # than signal_se standard errors of that lead routes by that mix. The knob is the best
    # of many settings on these very prompts: without any signal it still leads there by
    # luck (lead_over_mix), so the lead that decides is cross-fitted, each prompt routed
    # by a knob chosen without it (since 2026-12-07; signal_se 0: only a router behind
    # the mix falls back).
    lead, noise = lead_over_mix(pred, Y, costs, rank, pick, second, weights)
    fold = fold_of(row_groups(X, len(Y)), FOLDS, 0 if router.seed is None else router.seed)
    fitted = cross_fit(
        choose,
        lambda on, a, b: routed_outcomes(pred[on], Y[on], costs[on], rank[on], a, b),
        Y,
        costs,
        fold,
    )
    beats_mix = weights is None or ahead_of_mix(fitted.lead, fitted.noise, signal_se)
    if keeps_routing(fitted.lead, fitted.noise, signal_se):
        weights = None
    if weights is not None and kind == "quality" and mix is not None and ok:  # not lose it
        weights = _mix_for_quality(singles, weights, mix, goal * float(Y.mean(axis=0).max()))
        mix = sum(w * singles[i].quality for i, w in weights.items())
    # A mix that would break the share target is no fallback; one at the cap keeps to it
    # (at most), also where its weight rounds above it ((3.7 - 1) / 9 for 0.3).
    if weights is not None and capped_j is not None and weights.get(capped_j, 0.0) > goal + 1e-12:
        weights = None
    router.set_mix(
        None if weights is None else {router.model_names[i]: w for i, w in weights.items()}
    )
    knob_reached = bool(ok)  # by the router's own choices, before any fallback
    if weights is not None and mix is not None:  # the router draws from the mix: its target
        # A share the mix keeps to (checked above), a quality it reaches or not (it may
        # where the knob fell short, and the knob's lead may have been luck); a budget it
        # spends as the knob did.
        ok = ok or kind.startswith("max_share")
        if kind == "quality":
            ok = mix >= goal * float(Y.mean(axis=0).max()) - 1e-12
        mix_cost = sum(w * singles[i].cost for i, w in weights.items())
        _warn_of_fallback(
            router,
            target,
            fitted,
            (signal_se, len(Y)),
            (mix, mix_cost),
            bool(ok),
            knob_reached,
        )
    return {
        "knob": router.knob,
        "mode": router.mode,
        "second_knob": router.second_knob,
        "second_share": router.second_share,
        "cost": pick[1],
        "quality": pick[2],
        "shares": shares,
        "target_reached": bool(ok),
        "knob_target_reached": knob_reached,
        "routes_by": "predictions" if weights is None else "fixed mix",
        "beats_fixed_mix": beats_mix,
        "fixed_mix_quality": mix,
        "lead_over_mix": lead,
        "lead_standard_error": noise,
        "cross_fitted_quality": fitted.quality,
        "cross_fitted_cost": fitted.cost,
        "cross_fitted_fixed_mix_quality": fitted.mix_quality,
        "cross_fitted_lead_over_mix": fitted.lead,
        "cross_fitted_lead_standard_error": fitted.noise,
        "cross_fitted_folds": fitted.folds,
        "fallback_mix": router.options["mix"],
    }


#: A knob setting a rule can reach: (knob, cost, quality, each model's share of the
#: prompts, mode), its figures on the prompts it was swept on.
Row = tuple[float, float, float, np.ndarray, str]


def knob_rows(
    pred: np.ndarray, Y: np.ndarray, costs: np.ndarray, rank: np.ndarray, modes: Sequence[str]
) -> list[Row]:
    """Every setting each rule of ``modes`` can reach on these prompts (``sweep``'s default)."""
    from routerllm.eval.exact_sweep import exact_settings

    rows: list[Row] = []
    for mode in dict.fromkeys(modes):
        points, at = exact_settings(pred, Y, costs, costs, rank, mode)
        rows += [
            (float(p.knob or 0.0), p.cost, p.quality, sh, mode)
            for p, sh in zip(points, at, strict=True)
        ]
    return rows


def choose_setting(
    rows: list[Row],
    Y: np.ndarray,
    kind: str,
    goal: float,
    capped: int | None,
    top_cost: float,
    modes: Sequence[str],
    two_settings: bool,
) -> tuple[bool, Row, tuple[Row, float] | None]:
    """The setting of ``rows`` (swept on outcomes ``Y``) that meets the target best:
    (target met, the setting, with its cost and quality where a second setting shares
    the prompts, (that second setting, its share) or None). ``capped``: the column a
    ``max_share`` target caps; ``top_cost``: the costliest model's, a budget's unit."""
    if kind.startswith("max_share"):
        assert capped is not None
        fits = [r for r in rows if float(r[3][capped]) <= goal]
        pick = (
            max(fits, key=lambda r: (r[2], -r[1]))
            if fits  # else the least share, then the best quality, then the least cost
            else min(rows, key=lambda r: (float(r[3][capped]), -r[2], r[1]))
        )
        return bool(fits), pick, None
    # max_cost, quality: the best point of a mode's curve, maybe between two knobs
    value = goal * (top_cost if kind == "max_cost" else float(Y.mean(axis=0).max()))
    picks = [
        best_on_curve([r for r in rows if r[4] == m], kind, value, two_settings)
        for m in dict.fromkeys(modes)
    ]
    # The target met, then (a budget) the best quality or (a quality) the least cost;
    # where no rule meets it, the rule that comes nearest: the least cost over the
    # budget, the best quality short of the quality asked.
    cheaper_first = (kind == "max_cost") != any(p[0] for p in picks)
    ok, one, second, cost, quality = max(
        picks, key=lambda p: (p[0], -p[3], p[4]) if cheaper_first else (p[0], p[4], -p[3])
    )
    return ok, (one[0], cost, quality, one[3], one[4]), second


def lead_over_mix(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    rank: np.ndarray,
    pick: Any,
    second: tuple[Any, float] | None,
    weights: dict[int, float] | None,
) -> tuple[float, float]:
    """How far the router's choices at ``pick`` (and ``second``, its other setting with
    that share of the prompts) lead the fixed mix ``weights`` of single models on these
    outcomes, and the standard error of that lead: the mean and the sample standard
    deviation over sqrt(n) of the per-prompt differences (paired: the same prompts).
    (nan, nan) where there is no mix (a budget below the cheapest model)."""
    if weights is None:
        return math.nan, math.nan
    routed, _ = routed_outcomes(predicted, scores, costs, rank, pick, second)
    drawn = sum(w * scores[:, j] for j, w in weights.items())
    lead = routed - drawn
    if len(lead) < 2:
        return float(lead.mean()), math.inf  # one prompt tells nothing of the noise
    return float(lead.mean()), float(lead.std(ddof=1) / math.sqrt(len(lead)))


def routed_outcomes(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    rank: np.ndarray,
    pick: Any,
    second: tuple[Any, float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each prompt's outcome and cost where the router chooses at setting ``pick`` (and
    ``second``, its other setting with that share of the prompts: their expectation)."""
    from routerllm.routers.decision import choose

    rows = np.arange(len(scores))
    at = choose(predicted, costs, pick[4], pick[0], rank=rank)
    routed, spent = scores[rows, at], costs[rows, at]
    if second is not None:
        row, share = second
        other = choose(predicted, costs, row[4], row[0], rank=rank)
        routed = (1 - share) * routed + share * scores[rows, other]
        spent = (1 - share) * spent + share * costs[rows, other]
    return routed, spent


def ahead_of_mix(lead: float, noise: float, signal_se: float) -> bool:
    """Whether the router's ``lead`` over the fixed mix exceeds ``signal_se`` standard
    errors ``noise`` (and 1e-12, rounding): the evidence of a routing signal that
    calibration asks before it routes by the prompt. Calibration weighs the cross-fitted
    lead (``cross_fit``), each held-out prompt routed by a knob chosen without it: the
    lead where the knob was chosen is the best of many settings (and of two rules), and
    on outcomes the prompt says nothing of it reached 1.5 standard errors (300 generated
    prompts, 60 held out; tests/test_do_no_harm.py)."""
    return bool(lead > max(signal_se * noise if signal_se > 0 else 0.0, 1e-12))


def keeps_routing(lead: float, noise: float, signal_se: float) -> bool:
    """Whether calibration keeps a router with this cross-fitted ``lead`` (standard error
    ``noise``) routing by its predictions, where a fixed mix to fall back to is found:
    ahead of the mix by more than ``signal_se`` standard errors, or with ``signal_se``
    0 not behind it (a tie keeps routing)."""
    return ahead_of_mix(lead, noise, signal_se) or (signal_se == 0 and lead >= -1e-12)


def _mix_for_quality(
    singles: Sequence[Any], weights: dict[int, float], mix: float, needed: float
) -> dict[int, float]:
    """The fallback for a quality target the knob reached: the mix at the knob's cost
    where it reaches the quality ``needed`` too, else the cheapest mix that does (the
    knob's lead there may have been luck), else (none does) the mix at the knob's cost."""
    from routerllm.eval.curves import first_cost_reaching, mix_at, upper_hull

    if mix >= needed - 1e-12:
        return weights
    cost = first_cost_reaching(upper_hull(singles), needed)
    return weights if cost is None else (mix_at(singles, cost) or weights)


def _warn_of_fallback(
    router: OutcomeRouter,
    target: str,
    fitted: CrossFitted,
    held_out: tuple[float, int],
    mix: tuple[float, float],
    reached: bool,
    knob_reached: bool,
) -> None:
    """Say that the router now draws from the fixed mix, not by the prompt, why (its
    cross-fitted lead over the mix at its cost, within the noise), and whether the target
    is reached by the mix only: ``target_reached`` alone would not tell. ``held_out``:
    (the standard errors asked, the held-out prompts); ``mix``: the mix's (quality, cost)."""
    assert router.mix is not None
    shares = ", ".join(
        f"{n} {w:.0%}" for n, w in zip(router.model_names, router.mix, strict=True) if w > 0
    )
    if reached and not knob_reached:
        outcome = (
            f"target {target} is reached by the fixed mix only, not by the router's own choices"
        )
    elif reached:
        outcome = f"target {target} is reached"
    else:
        outcome = f"target {target} is not reached"
    signal_se, n = held_out
    if math.isinf(fitted.noise) and n == 1:  # no spread to weigh a lead by
        why = f"on {n} held-out prompt, too few to tell a routing signal from luck"
    elif math.isinf(fitted.noise):  # copies of one question: no knob chosen without them
        why = (
            f"on {n} held-out prompts of too few questions to choose a knob without each and "
            f"tell a routing signal from luck"
        )
    else:
        why = (
            f"each of the {n} held-out prompts routed by a knob chosen without it (quality "
            f"{fitted.quality:.4g} at cost {fitted.cost:.4g}), the router leads the best fixed "
            f"random mix of single models by {fitted.lead:.3g}, not more than {signal_se:g} "
            f"times its standard error {fitted.noise:.3g}: no routing signal"
        )
    log.warning(
        "calibration: router %r's choices: %s. It now routes by drawing from a fixed mix "
        "(%s: quality %.4g at cost %.4g on the held-out prompts), not by the prompt; %s",
        router.name, why, shares, mix[0], mix[1], outcome,
    )  # fmt: skip


def best_on_curve(
    rows: list[Any], kind: str, value: float, two_settings: bool
) -> tuple[bool, Any, tuple[Any, float] | None, float, float]:
    """The best point for a ``max_cost`` (``value`` = the budget) or ``quality``
    (``value`` = the quality needed) target among one rule's knob settings ``rows``
    (knob, cost, quality, shares, mode): on their upper hull, a setting or a random
    mix of two neighbouring ones (only the best single setting unless
    ``two_settings``). Returns (target met, first row, (second row, its share) or
    None, cost, quality); when the target cannot be met, the cheapest setting (a
    budget) or the best one (a quality)."""
    from routerllm.eval.curves import OperatingPoint, upper_hull

    if not two_settings:
        if kind == "max_cost":
            fits = [r for r in rows if r[1] <= value + 1e-12]
            one = max(fits, key=lambda r: (r[2], -r[1])) if fits else _cheapest(rows)
        else:
            fits = [r for r in rows if r[2] >= value - 1e-12]
            one = min(fits, key=lambda r: (r[1], -r[2])) if fits else _best(rows)
        return bool(fits), one, None, one[1], one[2]

    row_at = {(r[1], r[2]): r for r in rows}
    hull = [
        row_at[(p.cost, p.quality)] for p in upper_hull([OperatingPoint(r[1], r[2]) for r in rows])
    ]
    at = 1 if kind == "max_cost" else 2  # the coordinate the target is on
    if kind == "max_cost" and hull[0][1] > value + 1e-12:
        one = _cheapest(rows)
        return False, one, None, one[1], one[2]
    if kind == "quality" and hull[-1][2] < value - 1e-12:
        top = hull[-1]
        return False, top, None, top[1], top[2]
    if kind == "max_cost":
        i = max(k for k, r in enumerate(hull) if r[1] <= value + 1e-12)
        a, b = hull[i], hull[i + 1] if i + 1 < len(hull) else None
    else:
        i = min(k for k, r in enumerate(hull) if r[2] >= value - 1e-12)
        a, b = (hull[i], None) if i == 0 else (hull[i - 1], hull[i])
    if b is None or abs(a[at] - value) <= 1e-12:
        return True, a, None, a[1], a[2]
    share = (value - a[at]) / (b[at] - a[at])
    if share >= 1 - 1e-9:
        return True, b, None, b[1], b[2]
    cost, quality = (a[k] + share * (b[k] - a[k]) for k in (1, 2))
    return True, a, (b, share), cost, quality


def _cheapest(rows: list[Any]) -> Any:
    """The cheapest of the knob settings ``rows``, the best quality among equally cheap."""
    return min(rows, key=lambda r: (r[1], -r[2]))


def _best(rows: list[Any]) -> Any:
    """The best-quality knob setting of ``rows``, the cheapest among equally good."""
    return max(rows, key=lambda r: (r[2], -r[1]))


def check_two_settings(kind: str) -> None:
    """A clear error for two settings asked of a target they do not meet (``max_share``)."""
    if kind.startswith("max_share"):
        raise RouterLLMError(
            "two settings meet a max_cost or quality target; a max_share target is met by "
            "one setting: leave out two_settings (--two-settings)"
        )


def capped_model(kind: str, goal: float, models: Sequence[str], costs: np.ndarray) -> str | None:
    """The model a ``max_share`` target caps: the one it names, else the dearest by
    ``costs``; a clear error where several are equally the dearest. None for other targets."""
    if not kind.startswith("max_share"):
        return None
    if named := kind.partition(":")[2]:
        return named
    dearest = [n for n, c in zip(models, costs, strict=True) if c == max(costs)]
    if len(dearest) > 1:
        names = ", ".join(dearest[:-1]) + f" and {dearest[-1]}"
        raise RouterLLMError(
            f"max_share={goal:g} caps the dearest model, but {names} are equally the dearest "
            f"(cost {max(costs):g}): name the one to cap, e.g. max_share:{dearest[-1]}={goal:g}"
        )
    return dearest[0]


def parse_target(target: str, models: Sequence[str] | None = None) -> tuple[str, float]:
    """``"quality=0.95"`` -> ``("quality", 0.95)``; a clear error for anything else,
    including a ``max_share:<model>`` naming none of ``models`` (when given)."""
    kind, _, value = str(target).partition("=")
    base, _, model = kind.partition(":")
    try:
        goal = float(value)
    except ValueError:
        goal = math.nan
    in_range = {
        "quality": 0 < goal <= 1,
        "max_share": 0 <= goal <= 1,
        "max_cost": 0 < goal < math.inf,
    }
    if not in_range.get(base, False) or (model and base != "max_share"):
        raise RouterLLMError(
            f"bad calibration target {target!r}: use max_share[:<model>]=X (a share in [0, 1]), "
            f"quality=X (a fraction in (0, 1]) or max_cost=X (> 0), e.g. max_share=0.3 or "
            f"quality=0.95"
        )
    if model and models is not None and model not in models:
        raise RouterLLMError(f"unknown model {model!r} in target; valid: {', '.join(models)}")
    return kind, goal
