"""Routing metrics against hand-computed values (arithmetic in the comments)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.eval.curves import mix_at, share_above_line
from routerllm.eval.routing_metrics import (
    OperatingPoint,
    acc_at_half_best_cost,
    aiq,
    apgr,
    cost_to_accuracy,
    cost_to_accuracy_one_setting,
    cpt,
    default_lambdas,
    evaluate_choices,
    first_cost_reaching,
    format_table,
    max_accuracy,
    pgr,
    quality_at,
    references,
    routing_report,
    sweep,
    upper_hull,
)
from routerllm.exceptions import RouterLLMError

P = OperatingPoint

# Two models, 4 prompts. weak W costs 1, strong S costs 3.
#   W correct on p0, p1          -> Q_W = 2/4 = 0.5,  C_W = 1
#   S correct on p0, p1, p2      -> Q_S = 3/4 = 0.75, C_S = 3
# Oracle: p0 W, p1 W, p2 S, p3 (none correct) W -> cost (1+1+3+1)/4 = 1.5, quality 0.75.
# Share of the strong cost s = (c - 1) / 2; PGR = (Q - 0.5) / 0.25.
TWO = np.array([[1, 1], [1, 1], [0, 1], [0, 0]], dtype=float)
TWO_COSTS = [1.0, 3.0]
W, S = P(1.0, 0.5), P(3.0, 0.75)

# Three models, 5 prompts, costs A=1, B=2, C=5.
#   A correct on p0          -> Q_A = 0.2
#   B correct on p0, p1      -> Q_B = 0.4
#   C correct on p0, p1, p2  -> Q_C = 0.6  (best single)
# B lies above the line A->C (at c=2 that line is 0.2 + 0.4*1/4 = 0.3 < 0.4): on the hull.
# Oracle: p0 A, p1 B, p2 C, p3 A, p4 A -> cost (1+2+5+1+1)/5 = 2, quality 3/5 = 0.6.
THREE = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=float)
THREE_COSTS = [1.0, 2.0, 5.0]
A, B, C = P(1.0, 0.2), P(2.0, 0.4), P(5.0, 0.6)


def close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) < 1e-9


# --- operating points and sweeps ---------------------------------------------------------


def test_evaluate_choices_with_per_prompt_costs() -> None:
    costs = np.array([[1.0, 4.0], [2.0, 6.0], [1.0, 2.0], [3.0, 3.0]])
    point = evaluate_choices(np.array([0, 1, 1, 0]), TWO, costs)
    # cost (1 + 6 + 2 + 3)/4 = 3; quality (1 + 1 + 1 + 0)/4 = 0.75
    assert point == P(3.0, 0.75)


def test_lambda_sweep_of_a_perfect_predictor() -> None:
    # One breakpoint, 1.5 (see below): the exact sweep's knobs are 0 and 2 x 1.5.
    points = sweep(TWO, TWO, TWO_COSTS, mode="lambda")
    # lambda = 0: argmax of the real scores, ties (p0, p1, p3) -> the cheaper W = the oracle.
    # Above the breakpoint the cheapest model everywhere.
    assert [(p.cost, p.quality) for p in points] == [(1.5, 0.75), (1.0, 0.5)]
    # (the switch is where W falls the tie tolerance, 1e-12, behind: (1 - 1e-12) / (2 / 3))
    assert [p.knob for p in points] == [0.0, pytest.approx(2 * (1 - 1e-12) * 1.5, rel=1e-15)]
    grid = sweep(TWO, TWO, TWO_COSTS, mode="lambda", knobs="grid")
    assert len(grid) == 200 and grid[0].knob == 0.0
    assert (grid[0].cost, grid[0].quality) == (1.5, 0.75)
    assert (grid[-1].cost, grid[-1].quality) == (1.0, 0.5)
    assert {(p.cost, p.quality) for p in grid} == {(1.5, 0.75), (1.0, 0.5)}


def test_default_lambda_grid_spans_the_breakpoints() -> None:
    # Normalised costs: 1/3 and 3/3. Only p2 has the pricier S predicted higher:
    # breakpoint (1 - 0) / (1 - 1/3) = 1.5 -> grid 0, then 0.75 ... 3.0.
    grid = default_lambdas(TWO, np.tile(TWO_COSTS, (4, 1)))
    assert grid.shape == (200,) and grid[0] == 0.0
    assert np.isclose(grid[1], 0.75) and np.isclose(grid[-1], 3.0)
    # No pricier model predicted higher anywhere: every lambda gives the same choices.
    assert list(default_lambdas(np.array([[1.0, 0.0]]), np.array([[1.0, 2.0]]))) == [0.0]


def test_threshold_sweep() -> None:
    points = sweep(TWO, TWO, TWO_COSTS, mode="threshold", knobs=[0.0, 0.5, 1.0])
    # tau = 0: W (predicted 0 or 1 >= 0) is the cheapest everywhere -> (1, 0.5).
    # tau = 0.5 and 1: p0, p1 -> W; p2 -> S; p3 none reaches tau -> argmax tie -> W: the oracle.
    assert [(p.cost, p.quality, p.knob) for p in points] == [
        (1.0, 0.5, 0.0),
        (1.5, 0.75, 0.5),
        (1.5, 0.75, 1.0),
    ]
    # By default one point per interval: p2's only switch is at 0 (S, a record above W,
    # down to W), so tau <= 0 and tau > 0 (knobs 0 and 1) are the two above.
    assert sweep(TWO, TWO, TWO_COSTS, mode="threshold") == points[::2]
    assert len(sweep(TWO, TWO, TWO_COSTS, mode="threshold", knobs="grid")) == 201


def test_ties_go_to_the_cheaper_model() -> None:
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    # Equal predictions on both prompts -> the cheaper model 1 (cost 1 vs 2) everywhere.
    predicted = np.full((2, 2), 0.5)
    [point] = sweep(predicted, scores, [2.0, 1.0], knobs=[0.0])
    assert (point.cost, point.quality) == (1.0, 0.5)
    # Deciding by per-prompt costs, equal on prompt 0 -> the lower mean cost decides
    # (model 1: mean 1.5 vs 2).
    costs = np.array([[2.0, 2.0], [2.0, 1.0]])
    [point] = sweep(predicted, scores, costs, knobs=[0.0], decision_costs=costs)
    assert (point.cost, point.quality) == ((2.0 + 1.0) / 2, 0.5)


def test_the_sweep_decides_by_costs_known_before_the_call() -> None:
    # Model 0 is cheaper on average (2 vs 2.5) but dearer than model 1 on prompt 1.
    scores = np.array([[1.0, 1.0], [1.0, 1.0]])
    costs = np.array([[1.0, 3.0], [3.0, 2.0]])
    predicted = np.full((2, 2), 0.5)
    # By default each model's mean cost: model 0 everywhere, scored by the real costs.
    [point] = sweep(predicted, scores, costs, mode="threshold", knobs=[0.4])
    assert (point.cost, point.quality) == ((1.0 + 3.0) / 2, 1.0)
    # Deciding by each call's own cost (hindsight) would pick model 1 on prompt 1.
    [point] = sweep(predicted, scores, costs, mode="threshold", knobs=[0.4], decision_costs=costs)
    assert (point.cost, point.quality) == ((1.0 + 2.0) / 2, 1.0)
    # A per-model vector is what a router's ``costs`` are.
    [point] = sweep(
        predicted, scores, costs, mode="threshold", knobs=[0.4], decision_costs=[3.0, 1.0]
    )
    assert (point.cost, point.quality) == ((3.0 + 2.0) / 2, 1.0)


def test_zero_costs_do_not_crash_the_lambda_sweep() -> None:
    points = sweep(TWO, TWO, [0.0, 0.0])
    # Costs all 0: the utility is the prediction; ties -> lower index W.
    assert {(p.cost, p.quality) for p in points} == {(0.0, 0.75)}


# --- hull and interpolation --------------------------------------------------------------


def test_upper_hull_drops_inner_collinear_and_decreasing_points() -> None:
    points = [
        P(2.0, 0.4),
        P(1.0, 0.2),
        P(1.0, 0.1),  # same cost, worse
        P(3.0, 0.3),  # under the hull
        P(3.5, 0.5),  # on the segment (2, 0.4) -> (5, 0.6): 0.4 + 0.2*1.5/3 = 0.5
        P(5.0, 0.6),
        P(6.0, 0.55),  # after the peak: the running max keeps 0.6
    ]
    assert upper_hull(points) == [A, B, C]


def test_quality_at() -> None:
    hull = [A, B, C]
    assert quality_at(hull, 0.5) is None  # before the first point
    assert close(quality_at(hull, 1.5), 0.3)  # (0.2 + 0.4) / 2
    assert close(quality_at(hull, 3.5), 0.5)  # 0.4 + 0.2 * 1.5 / 3
    assert close(quality_at(hull, 9.0), 0.6)  # flat after the last point
    assert close(first_cost_reaching(hull, 0.5), 3.5)
    assert first_cost_reaching(hull, 0.61) is None
    assert first_cost_reaching(hull, 0.1) == 1.0


# --- references --------------------------------------------------------------------------


def test_references_three_models() -> None:
    refs = references(THREE, THREE_COSTS, ["a", "b", "c"], sizes=[1.0, 7.0, 13.0])
    assert refs.singles == (A, B, C)
    assert (refs.best_single, refs.cheapest, refs.largest) == (2, 0, 2)
    assert refs.oracle == P(2.0, 0.6)
    # random = mean of the three points: ((1+2+5)/3, (0.2+0.4+0.6)/3) = (8/3, 0.4)
    assert close(refs.random.cost, 8 / 3) and close(refs.random.quality, 0.4)
    assert refs.mix_hull == (A, B, C)
    assert references(THREE, THREE_COSTS, ["a", "b", "c"], largest="b").largest == 1
    # Largest tie: a and c are both 13B -> the cheaper a (cost 1 against 5).
    assert references(THREE, THREE_COSTS, sizes=[13.0, 7.0, 13.0]).largest == 0
    # sizes read once: a generator works as a list does
    assert references(THREE, THREE_COSTS, sizes=(x for x in (1.0, 20.0, 13.0))).largest == 1


def test_reference_ties() -> None:
    # Equal qualities (0.5, 0.5) and costs (1, 1): every tie ends at the lower index 0.
    # Oracle: p0 (both correct, same cost) -> 0, p1 (none) -> 0, p2 -> 0, p3 -> 1:
    # cost 1, quality (1 + 0 + 1 + 1)/4 = 0.75.
    scores = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    refs = references(scores, [1.0, 1.0])
    assert refs.best_single == 0 and refs.cheapest == 0
    assert refs.oracle == P(1.0, 0.75)
    # Cheapest tie (cost 1 vs 1) -> the better model 1, which is also the best single.
    refs = references(np.array([[1.0, 1.0], [0.0, 1.0]]), [1.0, 1.0])
    assert refs.best_single == 1 and refs.cheapest == 1
    # best_single tie (0.5 vs 0.5) -> the cheaper model 1 (cost 1 vs 2).
    refs = references(np.array([[1.0, 1.0], [0.0, 0.0]]), [2.0, 1.0])
    assert refs.best_single == 1 and refs.cheapest == 1
    assert refs.oracle == P(1.0, 0.5)  # both prompts -> model 1 (cheaper)


def test_best_single_tie_within_float_rounding() -> None:
    # Both models score 0.1 on average (0.3 over 3 prompts), but in floats big's
    # 0.1 + 0.2 = 0.30000000000000004 beats small's 0.3 by 3e-17: a tie, so the
    # best single model is the cheaper small, which is also the cheapest: no gap.
    scores = [[0.1, 0.3], [0.2, 0.0], [0.0, 0.0]]
    report = routing_report({}, scores, [10.0, 1.0], model_names=["big", "small"])
    assert report["best_single"] == report["cheapest"]
    assert report["best_single"]["name"] == "small"
    # Oracle: p0 small (0.3), p1 big (0.2), p2 none -> small: cost (1 + 10 + 1)/3 = 4.
    oracle = report["rows"]["oracle"]
    assert close(report["oracle"]["cost"], 4.0)
    # No gap to recover (PGR was divided by 3e-17: APGR 2e15).
    assert oracle["apgr"] is None and oracle["cpt50"] is None and oracle["cpt80"] is None
    # Quality 0.1 is reached at the anchor, small's cost 1: 1.0 of small's cost, not
    # 0.1 of big's.
    assert close(oracle["cost_to_best_accuracy"], 1.0)
    assert report["notes"][0].startswith("apgr, cpt50 and cpt80 are undefined")


# --- curve metrics: two models -----------------------------------------------------------


def test_perfect_router_two_models() -> None:
    points = sweep(TWO, TWO, TWO_COSTS)
    # Curve: (1, 0.5) -> (1.5, 0.75), flat after. s = (c-1)/2, so for s <= 0.25 the
    # quality is 0.5 + 0.5*(2s) and PGR = 4s; PGR = 1 after.
    # APGR = 0.25*1/2 + 0.75*1 = 0.875 (the corner s = 0.25 is on the grid: exact).
    assert close(apgr(points, W, S), 0.875)
    assert close(pgr(points, W, S, 0.125), 0.5)
    assert close(cpt(points, W, S, 0.5), 12.5)  # 4s = 0.5 -> s = 0.125
    assert close(cpt(points, W, S, 0.8), 20.0)  # 4s = 0.8 -> s = 0.2
    # AIQ over [1, 3]: (0.5+0.75)/2*0.5 + 0.75*1.5 = 0.3125 + 1.125 = 1.4375; / 2
    assert close(aiq(points, 1.0, 3.0, anchor=W), 0.71875)


def test_random_mixing_diagonal_two_models() -> None:
    points = [W, S]  # every random mix of W and S lies on this segment
    # Q(c) = 0.5 + 0.125*(c-1) and c = 1 + 2s, so PGR(s) = s.
    assert close(apgr(points, W, S), 0.5)
    assert close(cpt(points, W, S, 0.5), 50.0)
    assert close(cpt(points, W, S, 0.8), 80.0)
    assert close(aiq(points, 1.0, 3.0, anchor=W), 0.625)  # (0.5 + 0.75)/2


def test_router_worse_than_mixing_two_models() -> None:
    # A router that sends to S exactly where it does not help: predicted S - W =
    # [0.1, 0.05, -0.4, 0.4]. Its points all have quality 0.5: (2.5, .5), (2, .5), (1.5, .5), (1, .5).
    predicted = np.array([[0.5, 0.6], [0.5, 0.55], [0.5, 0.1], [0.5, 0.9]])
    points = sweep(predicted, TWO, TWO_COSTS)
    assert {(p.cost, p.quality) for p in points} == {(2.5, 0.5), (2.0, 0.5), (1.5, 0.5), (1.0, 0.5)}
    assert close(apgr(points, W, S), 0.0)
    assert cpt(points, W, S, 0.5) is None
    assert close(aiq(points, 1.0, 3.0, anchor=W), 0.5)
    # One point (2, 0.5625) under the diagonal (0.625 there): curve (1, .5) -> (2, .5625), flat.
    # s <= 0.5: Q = 0.5 + 0.0625*2s -> PGR = 0.5s; then PGR = 0.0625/0.25 = 0.25.
    # APGR = integral 0..0.5 of 0.5s (0.0625) + 0.5 * 0.25 (0.125) = 0.1875.
    under = [P(2.0, 0.5625)]
    assert close(apgr(under, W, S), 0.1875)
    assert cpt(under, W, S, 0.5) is None
    # AIQ: (0.5+0.5625)/2*1 + 0.5625*1 = 1.09375; / 2
    assert close(aiq(under, 1.0, 3.0, anchor=W), 0.546875)


def test_apgr_is_the_exact_area_when_a_corner_falls_between_grid_points() -> None:
    # weak (0, 0), strong (1, 1): s = c, PGR = Q. One point (0.005, 1): PGR = 200s up to
    # s = 0.005, then 1. Area = 0.005 * 1/2 + 0.995 * 1 = 0.9975 (a trapezoid rule on
    # s = 0, 0.01, ..., 1 gives 0.01 * 1/2 + 0.99 = 0.995).
    weak, strong = P(0.0, 0.0), P(1.0, 1.0)
    assert close(apgr([P(0.005, 1.0)], weak, strong), 0.9975)
    # A corner at s = 1/3: PGR = 2s up to 1/3, then 2/3. Area = 1/9 + 4/9 = 5/9.
    assert close(apgr([P(1 / 3, 2 / 3)], weak, strong), 5 / 9)
    # The oracle row on outcome data: 200 prompts, the strong model (cost 1 a call, the
    # weak one 0) alone solves one: the oracle is (0.005, 0.005), the strong model
    # (1, 0.005): PGR = 200s up to s = 0.005, then 1, as above.
    scores = np.zeros((200, 2))
    scores[0, 1] = 1.0
    oracle = routing_report({}, scores, [0.0, 1.0])["rows"]["oracle"]
    assert close(oracle["apgr"], 0.9975)
    assert close(oracle["cpt50"], 0.25)  # 200s = 0.5


# --- curve metrics: three models ---------------------------------------------------------


def test_three_model_metrics() -> None:
    mix, oracle = [A, B, C], [P(2.0, 0.6)]
    # AIQ over [1, 5], mix hull: (0.2+0.4)/2*1 + (0.4+0.6)/2*3 = 0.3 + 1.5 = 1.8; / 4
    assert close(aiq(mix, 1.0, 5.0, anchor=A), 0.45)
    # Oracle: (0.2+0.6)/2*1 + 0.6*3 = 0.4 + 1.8 = 2.2; / 4
    assert close(aiq(oracle, 1.0, 5.0, anchor=A), 0.55)
    # APGR mix: c = 1 + 4s, gap 0.4. s <= 0.25: PGR = 2s; s >= 0.25: PGR = 0.5 + (4s-1)/6.
    # Area 0.0625 + [0.375 + (1/6)(2s^2 - s) from 0.25 to 1 = 0.1875] = 0.625.
    assert close(apgr(mix, A, C), 0.625)
    assert close(cpt(mix, A, C, 0.5), 25.0)
    assert close(cpt(mix, A, C, 0.8), 70.0)  # 0.5 + (4s-1)/6 = 0.8 -> s = 0.7
    assert close(apgr(oracle, A, C), 0.875)  # PGR = 4s up to s = 0.25, then 1
    # Cost to 95% of Q_C: target 0.57. Mix: 0.4 + (0.2/3)(c-2) = 0.57 -> c = 4.55 -> /5.
    assert close(cost_to_accuracy(mix, 0.95 * 0.6, 5.0, anchor=A), 0.91)
    # Oracle: 0.2 + 0.4(c-1) = 0.57 -> c = 1.925 -> /5 = 0.385; Q_C at c = 2 -> 0.4.
    assert close(cost_to_accuracy(oracle, 0.57, 5.0, anchor=A), 0.385)
    assert close(cost_to_accuracy(oracle, 0.6, 5.0, anchor=A), 0.4)
    assert cost_to_accuracy([A, B], 0.6, 5.0, anchor=A) is None
    # At half the best cost (2.5): mix 0.4 + (0.2/3)*0.5; C alone 0.2 + 0.1*1.5 = 0.35.
    assert close(acc_at_half_best_cost(mix, C, anchor=A), 0.4 + 0.2 / 6)
    assert close(acc_at_half_best_cost([C], C, anchor=A), 0.35)
    assert max_accuracy([A, B]) == 0.4


def test_routing_report_three_models() -> None:
    # A perfect predictor. Breakpoints: p1 B over A at lambda = 1 / ((2-1)/5) = 5, p2 C over A
    # at 1 / ((5-1)/5) = 1.25. Points: lambda < 1.25 the oracle (2, 0.6); 1.25..5 B on p1
    # only: ((1+2+1+1+1)/5, 2/5) = (1.2, 0.4); above 5 all A (1, 0.2).
    router = sweep(THREE, THREE, THREE_COSTS)
    assert {(round(p.cost, 9), p.quality) for p in router} == {(2.0, 0.6), (1.2, 0.4), (1.0, 0.2)}
    report = routing_report({"perfect": router}, THREE, THREE_COSTS, model_names=["a", "b", "c"])
    assert report["best_single"] == {"name": "c", "cost": 5.0, "quality": 0.6}
    assert report["oracle"] == {"name": "oracle", "cost": 2.0, "quality": 0.6}
    assert report["cost_range"] == [1.0, 5.0]
    assert report["notes"] == []  # every metric is defined
    rows = report["rows"]
    assert list(rows)[0] == "perfect" and rows["perfect"]["kind"] == "router"
    # Its curve (1, .2) -> (1.2, .4) -> (2, .6), flat: better than the oracle point alone.
    # AIQ: 0.2*0.3 + 0.8*0.5 + 3*0.6 = 0.06 + 0.4 + 1.8 = 2.26; / 4 = 0.565.
    # s = (c-1)/4, corners at s = 0.05 and 0.25 (on the grid). PGR = 10s up to 0.05 (0.5),
    # linear to 1 at 0.25, then 1: APGR = 0.05*0.5/2 + 0.2*(0.5+1)/2 + 0.75 = 0.9125.
    perfect = rows["perfect"]
    assert close(perfect["aiq"], 0.565) and close(perfect["apgr"], 0.9125)
    assert close(perfect["cpt50"], 5.0) and close(rows["oracle"]["aiq"], 0.55)
    # 95 % of 0.6 = 0.57: on the hull 85 % of the way from (1.2, .4) to (2, .6), at
    # cost 1.88 = 0.376 of c's; one setting must take the (2, .6) point: 0.4.
    assert close(perfect["cost_to_95"], 0.376) and close(perfect["cost_to_95_one_setting"], 0.4)
    assert close(perfect["cost_to_best_accuracy_one_setting"], 0.4)
    mix = rows["mix_hull"]
    assert close(mix["aiq"], 0.45) and close(mix["apgr"], 0.625)
    assert close(mix["cpt50"], 25.0) and close(mix["cpt80"], 70.0)
    assert close(mix["cost_to_95"], 0.91) and close(mix["cost_to_best_accuracy"], 1.0)
    # Without mixing, only c itself reaches 0.57.
    assert close(mix["cost_to_95_one_setting"], 1.0)
    assert rows["single:a"]["cost_to_95_one_setting"] is None
    # The cheapest model alone: flat 0.2, PGR 0 everywhere.
    cheap = rows["single:a"]
    assert close(cheap["apgr"], 0.0) and cheap["cpt50"] is None and cheap["cost_to_95"] is None
    # Random (8/3, 0.4): curve (1, 0.2) -> (8/3, 0.4), flat. AIQ over [1, 5]:
    # (0.2+0.4)/2*(5/3) + 0.4*(7/3) = 0.5 + 14/15 = 43/30; / 4 = 43/120.
    assert close(rows["random"]["aiq"], 43 / 120)
    table = format_table(report)
    assert table.splitlines()[0].split()[:3] == ["name", "apgr", "aiq"]
    assert "perfect" in table and "25.0%" in table and len(table.splitlines()) == 2 + len(rows)


# --- degenerate inputs -------------------------------------------------------------------


def test_one_model() -> None:
    scores = np.array([[1.0], [0.0]])
    report = routing_report({"only": sweep(scores, scores, [2.0])}, scores, [2.0])
    row = report["rows"]["only"]
    # Q_strong == Q_weak: no gap -> None; AIQ over [2, 2] = Q(2) = 0.5.
    assert row["apgr"] is None and row["cpt50"] is None and row["cpt80"] is None
    assert close(row["aiq"], 0.5) and close(row["cost_to_best_accuracy"], 1.0)
    assert row["acc_at_half_best_cost"] is None  # cost 1 is below every point
    assert [n.split(":")[0] for n in report["notes"]] == [
        "apgr, cpt50 and cpt80 are undefined",
        "acc_at_half_best_cost is undefined",
    ]  # why, for every row alike


def test_equal_scores_give_no_gap() -> None:
    scores = np.full((3, 2), 0.5)
    report = routing_report({}, scores, [1.0, 4.0])
    assert report["best_single"]["name"] == "model_0"  # tie -> cheaper
    row = report["rows"]["mix_hull"]
    assert row["apgr"] is None and row["cpt50"] is None
    assert close(row["aiq"], 0.5) and close(row["cost_to_95"], 1.0)
    assert report["notes"] == [
        "apgr, cpt50 and cpt80 are undefined: the best single model (model_0) is also the "
        "cheapest, so there is no quality gap to recover",
        "acc_at_half_best_cost is undefined: half the best single model's (model_0) cost is "
        "below the cheapest model's, where every curve starts",
    ]
    # Different models, same quality: weak = strong = the cheaper one.
    assert apgr([P(1.0, 0.5)], P(1.0, 0.5), P(2.0, 0.5)) is None
    assert pgr([P(1.0, 0.5)], P(1.0, 0.5), P(2.0, 0.5), 0.5) is None


def test_aiq_below_the_first_point_counts_as_zero() -> None:
    # Curve starts at c = 2 (no anchor); over [1, 3]: 0 on [1, 2] + 0.5 on [2, 3] -> 0.5/2.
    assert close(aiq([P(2.0, 0.5)], 1.0, 3.0), 0.25)


def test_aiq_over_subnormal_cost_differences_is_a_number() -> None:
    # Cheapest model (0, 0), best (5e-324, 1): the rise's slope, 1 / 5e-324, overflowed
    # to inf and inf * 0 made AIQ NaN. Over [0, 1]: 5e-324 * 0.5 + (1 - 5e-324) * 1 = 1.
    assert close(aiq([P(5e-324, 1.0)], 0.0, 1.0, anchor=P(0.0, 0.0)), 1.0)
    # Over the models' own range [0, 5e-324] Q rises linearly from 0 to 1: mean 0.5
    # (the area, 2.5e-324, underflowed to 0 before it was divided by the range).
    report = routing_report({}, np.array([[0.0, 1.0], [0.0, 1.0]]), [0.0, 5e-324])
    assert close(report["rows"]["mix_hull"]["aiq"], 0.5)
    assert close(report["rows"]["best_single"]["aiq"], 0.5)
    assert close(report["rows"]["cheapest"]["aiq"], 0.0)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "costs", "message"),
    [
        (np.array([1.0, 0.0]), [1.0], "2-D"),
        (np.zeros((0, 2)), [1.0, 2.0], "non-empty"),
        (np.array([[1.5, 0.0]]), [1.0, 2.0], r"\[0, 1\]"),
        (np.array([[np.nan, 0.0]]), [1.0, 2.0], "finite"),
        (TWO, [1.0, 2.0, 3.0], "one per model"),
        (TWO, [-1.0, 2.0], ">= 0"),
        (TWO, "abc", "numeric"),
        # finite, but every mean cost overflowed to inf: a message about inf points
        (TWO, [1.0, 1e308], "costs are too large: their total is beyond a float's range"),
    ],
)
def test_bad_outcomes(scores: object, costs: object, message: str) -> None:
    with pytest.raises(RouterLLMError, match=message):
        references(scores, costs)


def test_bad_arguments() -> None:
    with pytest.raises(RouterLLMError, match="shape of scores"):
        sweep(np.zeros((4, 3)), TWO, TWO_COSTS)
    with pytest.raises(RouterLLMError, match="unknown sweep mode"):
        sweep(TWO, TWO, TWO_COSTS, mode="best")  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="knobs"):
        sweep(TWO, TWO, TWO_COSTS, knobs=[])
    with pytest.raises(RouterLLMError, match="integer model indices"):
        evaluate_choices([0, 1], TWO, TWO_COSTS)
    with pytest.raises(RouterLLMError, match=r"model indices in \[0, 1\]"):
        evaluate_choices(np.array([0, 1, 2, 0]), TWO, TWO_COSTS)
    with pytest.raises(RouterLLMError, match="at least one"):
        upper_hull([])
    with pytest.raises(RouterLLMError, match="OperatingPoint"):
        upper_hull([(1.0, 0.5)])  # type: ignore[list-item]
    for points in (W, None, "ab"):  # a lone point, nothing, a string
        with pytest.raises(RouterLLMError, match="must be a list of OperatingPoint values"):
            aiq(points, 1.0, 3.0)  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="finite numbers as cost and quality"):
        aiq([P("1", 0.5)], 1.0, 3.0)  # type: ignore[arg-type]
    pts, strong = [W, P(2.0, 0.7)], P(3.0, 0.8)
    for call, name in [
        (lambda: aiq(pts, "1", 3.0), "cost_min"),  # type: ignore[arg-type]
        (lambda: pgr(pts, W, strong, float("nan")), "share"),
        (lambda: cpt(pts, W, strong, "0.5"), "x"),  # type: ignore[arg-type]
        (lambda: cost_to_accuracy(pts, "0.7", 3.0), "target"),  # type: ignore[arg-type]
        (lambda: cost_to_accuracy_one_setting(pts, 0.7, None), "reference_cost"),  # type: ignore[arg-type]
        (lambda: quality_at(upper_hull(pts), float("inf")), "cost"),
    ]:
        with pytest.raises(RouterLLMError, match=f"^{name} must be a finite number"):
            call()
    S, C = np.array([[1, 0], [0, 1], [1, 1.0]]), [1.0, 5.0]
    for routers in ([("r", pts)], None):
        with pytest.raises(RouterLLMError, match="routers must map each router's name"):
            routing_report(routers, S, C)  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="a router's name must be a string"):
        routing_report({5: pts}, S, C)  # type: ignore[dict-item]
    with pytest.raises(RouterLLMError, match=r"sizes must be 2 finite numbers .*got \['7B'"):
        references(S, C, sizes=["7B", "13B"])  # type: ignore[list-item]
    with pytest.raises(RouterLLMError, match="model_names must be a list of strings"):
        references(S, C, model_names="ab")
    with pytest.raises(RouterLLMError, match="cost_min <= cost_max"):
        aiq([W], 3.0, 1.0)
    with pytest.raises(RouterLLMError, match="clashes"):
        routing_report({"oracle": [W]}, TWO, TWO_COSTS)
    with pytest.raises(RouterLLMError, match="distinct names"):
        references(TWO, TWO_COSTS, ["a"])
    with pytest.raises(RouterLLMError, match="not both"):
        references(TWO, TWO_COSTS, sizes=[1, 2], largest="model_0")
    with pytest.raises(RouterLLMError, match="valid: model_0, model_1"):
        references(TWO, TWO_COSTS, largest="huge")


# --- plot --------------------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path: object) -> None:
    pytest.importorskip("matplotlib")
    from pathlib import Path

    from routerllm.eval.plots import plot_quality_cost

    refs = references(THREE, THREE_COSTS, ["a", "b", "c"])
    out = plot_quality_cost(
        {"perfect": sweep(THREE, THREE, THREE_COSTS)}, refs, Path(str(tmp_path)) / "q" / "c.png"
    )
    data = out.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case", ["equal costs", "zero costs", "one model", "spread costs"])
def test_every_curve_the_legend_names_is_drawn(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where every model costs the same (or there is one model), each curve is one
    point: drawn as a line from it to itself, the routers' curves and the mix of single
    models were invisible, named in the legend only."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from routerllm.eval.plots import plot_quality_cost

    scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    costs = {"equal costs": [2.0, 2.0], "zero costs": [0.0, 0.0], "spread costs": [1.0, 3.0]}
    if case == "one model":
        scores, cost = scores[:, :1], [1.0]
    else:
        cost = costs[case]
    names = ["a", "b"][: scores.shape[1]]
    drawn: list[Figure] = []
    real = Figure.savefig

    def keeping(self: Figure, *args: Any, **kwargs: Any) -> None:
        drawn.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keeping)
    predicted = scores[:, ::-1].copy()  # a router that errs: its point is not the best's
    curves = {"knn": sweep(predicted, scores, cost), "logreg": sweep(scores, scores, cost)}
    plot_quality_cost(curves, references(scores, cost, names), tmp_path / "c.png")
    (figure,) = drawn
    (ax,) = figure.axes
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["knn", "logreg", "mix of single models", "oracle", "random"]
    for handle, label in zip(handles, labels, strict=True):
        box = handle.get_window_extent(renderer)
        assert box.width > 0 or box.height > 0, f"{label} is not drawn"


def test_ctrl_c_while_a_plot_is_written_leaves_the_plot_there_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while eval-routing --plot wrote its PNG left a PNG cut short in place of
    the plot there before. Ctrl-C (a real SIGINT) is pressed once the image's pixels
    are written, before the file's end."""
    pytest.importorskip("matplotlib")
    from PIL import ImageFile

    from routerllm.eval.plots import plot_quality_cost

    refs = references(THREE, THREE_COSTS, ["a", "b", "c"])
    curves = {"perfect": sweep(THREE, THREE, THREE_COSTS)}
    out = plot_quality_cost(curves, refs, tmp_path / "c.png")
    before = out.read_bytes()
    real = ImageFile._save

    def pressing(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ImageFile, "_save", pressing)
    with pytest.raises(KeyboardInterrupt):
        plot_quality_cost(curves, refs, out, title="another title")
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_mix_at_gives_the_hull_vertices_around_a_cost() -> None:
    # C (2, 0.6) lies below the segment A (1, 0.5) - B (3, 0.9) (0.7 at cost 2): not a vertex.
    points = [P(1.0, 0.5), P(3.0, 0.9), P(2.0, 0.6)]
    assert mix_at(points, 2.0) == {0: 0.5, 1: 0.5}
    weights = mix_at(points, 2.5)
    assert weights is not None and weights.keys() == {0, 1} and np.isclose(weights[1], 0.75)
    assert mix_at(points, 1.0) == {0: 1.0}  # a vertex: that point alone
    assert mix_at(points, 9.0) == {1: 1.0}  # past the best point: the best point
    assert mix_at(points, 0.5) is None  # below the cheapest point


# --- the curve against the straight line between two models (issue #4) -----------------

LINE = (P(0.0, 0.0), P(1.0, 1.0))  # e.g. direct-medium and direct-heavy


@pytest.mark.parametrize(
    ("points", "share"),
    [
        ([P(0.0, 0.0), P(0.5, 0.5), P(1.0, 1.0)], 0.0),  # exactly on the line
        ([P(0.0, 0.0), P(0.5, 0.6), P(1.0, 1.0)], 1.0),  # above between the models
        ([P(0.5, 0.6)], 0.1),  # one point: the curve starts there, flat to 0.6
        ([P(0.5, 0.4), P(0.5, 0.6), P(0.5, 0.2)], 0.1),  # duplicate costs: the best one
        ([P(0.0, 0.2), P(1.0, 0.8)], 0.5),  # crosses at 0.5
        ([P(0.0, 0.0), P(0.25, 0.1), P(1.0, 1.0)], 0.0),  # below everywhere
        ([P(2.0, 1.0)], 0.0),  # beyond the range: undefined inside it
        ([P(-1.0, 0.5)], 0.5),  # flat 0.5 over the whole range
    ],
)
def test_share_of_the_range_above_the_line(points: list[P], share: float) -> None:
    assert share_above_line(points, *LINE) == pytest.approx(share)


def test_the_line_needs_two_costs_in_order() -> None:
    with pytest.raises(RouterLLMError, match="start.cost < end.cost"):
        share_above_line([P(0.5, 0.5)], P(1.0, 1.0), P(1.0, 0.5))


# --- boundaries the hand-computed cases above leave open ---------------------------------


def test_a_target_reached_within_float_rounding_is_reached() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 is the quality 0.3 asked for, 4e-17 over it.
    assert first_cost_reaching([P(1.0, 0.3)], 0.1 + 0.2) == 1.0
    assert close(cost_to_accuracy([P(1.0, 0.3)], 0.1 + 0.2, 2.0), 0.5)


def test_cpt_beyond_the_strong_models_cost_is_none() -> None:
    # Curve W (1, .5) -> (5, .75): PGR(s) = s/2 over s = (c-1)/2 in [0, 2].
    # PGR 0.8 needs s = 1.6, past the strong model's cost: None, not 100 %.
    far = [P(5.0, 0.75)]
    assert cpt(far, W, S, 0.8) is None
    assert close(cpt(far, W, S, 0.5), 100.0)  # s = 1 exactly: still counted


def test_cpt_of_a_router_cheaper_than_the_cheapest_model_is_zero() -> None:
    # A point at cost 0.5 (below C_W = 1) already at Q_S: s = (0.5 - 1)/2 < 0 -> 0 %.
    assert close(cpt([P(0.5, 0.75)], W, S, 0.5), 0.0)


def test_max_accuracy_is_the_best_point_in_any_order() -> None:
    assert max_accuracy([B, A]) == 0.4
    assert max_accuracy([C, A, B]) == 0.6


def test_cost_to_accuracy_of_a_free_reference_is_none() -> None:
    assert cost_to_accuracy([A], 0.1, 0.0) is None
    assert cost_to_accuracy_one_setting([A], 0.1, 0.0) is None


def test_one_setting_takes_the_cheapest_point_that_reaches_the_target() -> None:
    # B (2, .4) and C (5, .6) reach 0.3: the cheaper B, 2/5 of C's cost.
    assert close(cost_to_accuracy_one_setting([C, A, B], 0.3, 5.0), 0.4)
    # The anchor A (1, .2) is a setting too: 0.2 at cost 1 -> 1/5.
    assert close(cost_to_accuracy_one_setting([C], 0.2, 5.0, anchor=A), 0.2)


def test_half_the_best_cost_at_the_cheapest_models_cost_is_defined() -> None:
    # Costs 1 and 2: half of 2 is the cheapest model's cost, where its curve starts.
    # Q_0 = 0.5, Q_1 = 1: the curve is (1, .5) -> (2, 1), Q(1) = 0.5.
    scores = np.array([[1.0, 1.0], [0.0, 1.0]])
    report = routing_report({}, scores, [1.0, 2.0])
    assert report["notes"] == []
    assert close(report["rows"]["mix_hull"]["acc_at_half_best_cost"], 0.5)


def test_aiq_runs_to_the_most_expensive_model_not_the_best() -> None:
    # model_1 costs 4 and never solves anything; model_0 (cost 1, Q 0.5) is best and
    # cheapest. AIQ is over [1, 4], the models' whole cost range.
    scores = np.array([[1.0, 0.0], [0.0, 0.0]])
    report = routing_report({}, scores, [1.0, 4.0])
    assert report["cost_range"] == [1.0, 4.0]
    # Random (2.5, 0.25) lies under the anchor (1, .5): the curve is flat 0.5 over [1, 4].
    assert close(report["rows"]["random"]["aiq"], 0.5)


def test_sweep_ties_in_cost_go_to_the_lower_index() -> None:
    # Equal costs, equal predictions: model 0, which solves both prompts.
    scores = np.array([[1.0, 0.0], [1.0, 0.0]])
    [point] = sweep(np.full((2, 2), 0.5), scores, [1.0, 1.0], knobs=[0.0])
    assert point.quality == 1.0


def test_predictions_equal_up_to_float_rounding_are_a_tie() -> None:
    # 0.1 + 0.2 against 0.3 on the dearer model 0: a tie, so the cheaper model 1.
    scores = np.array([[1.0, 0.0]])
    predicted = np.array([[0.1 + 0.2, 0.3]])
    [point] = sweep(predicted, scores, [2.0, 1.0], knobs=[0.0])
    assert (point.cost, point.quality) == (1.0, 0.0)


# --- cases the mutation sweep of curves.py found open (2026-12-05) -----------------------


def test_a_flat_top_ends_the_curve_at_its_cheaper_end() -> None:
    # (1, .5) and (2, .5): both are the highest quality. The curve ends at the first,
    # (1, .5), and is flat from there: the best mix at cost at most 1.5 is (1, .5) alone,
    # not half of each (the same 0.5, at mean cost 0.5*1 + 0.5*2 = 1.5).
    points = [P(1.0, 0.5), P(2.0, 0.5)]
    assert upper_hull(points) == [P(1.0, 0.5)]
    assert mix_at(points, 1.5) == {0: 1.0}


def test_aiq_of_a_curve_that_starts_before_cost_min() -> None:
    # A router cheaper than the cheapest model (per-prompt costs make that possible).
    # Curve (0, 0) -> (2, 1): Q(c) = c/2. Over [1, 2]: mean of c/2 = (0.5 + 1)/2 = 0.75
    # (only the part of the piece inside [1, 2] counts, from Q(1) = 0.5, not Q(0) = 0).
    assert close(aiq([P(0.0, 0.0), P(2.0, 1.0)], 1.0, 2.0), 0.75)
    # Curve (0.5, .9) alone (the anchor (1, .5) is below it): flat 0.9 on [1, 3], AIQ 0.9
    # (the flat tail over [1, 3] only: 2/2 * 0.9, not (3 - 0.5)/2 * 0.9 = 1.125).
    assert close(aiq([P(0.5, 0.9)], 1.0, 3.0, anchor=P(1.0, 0.5)), 0.9)


def test_aiq_over_one_cost_below_the_curve_is_zero() -> None:
    # a == b == 1, below the curve's first point (2, .5): Q(1) is undefined, counts as 0.
    assert aiq([P(2.0, 0.5)], 1.0, 1.0) == 0.0


def test_no_cost_gap_between_weak_and_strong_leaves_pgr_undefined() -> None:
    # Strong (1, .75) costs what weak (1, .5) costs: s = (c - 1)/(1 - 1) is undefined.
    same_cost = P(1.0, 0.75)
    assert apgr([W], W, same_cost) is None
    assert pgr([W], W, same_cost, 0.5) is None
    assert cpt([W, same_cost], W, same_cost, 0.5) is None


def test_a_target_met_within_the_slack_at_a_vertex_costs_that_vertex() -> None:
    # Curve (1, .3) -> (2, .3 + 1e-12); target .3 + 1.5e-12 is 0.5e-12 above b's quality,
    # inside the 1e-12 slack: reached at b, cost 2. Interpolating without the clamp
    # would read frac = 1.5e-12 / 1e-12 = 1.5 and a cost of 1 + 1.5 * 1 = 2.5, past b.
    hull = [P(1.0, 0.3), P(2.0, 0.3 + 1e-12)]
    assert first_cost_reaching(hull, 0.3 + 1.5e-12) == 2.0


def test_a_free_best_model_leaves_the_cost_to_metrics_undefined_and_says_why() -> None:
    # Both models cost 0; model_0 (Q 0.5) beats model_1 (Q 0): best = cheapest = model_0.
    report = routing_report({}, np.array([[1.0, 0.0], [0.0, 0.0]]), [0.0, 0.0])
    assert report["rows"]["mix_hull"]["cost_to_95"] is None
    assert [n.split(":")[0] for n in report["notes"]] == [
        "apgr, cpt50 and cpt80 are undefined",
        "the cost_to_* metrics are undefined",
        "aiq is the best quality a curve reaches at the one cost every model has (0)",
    ]


def test_a_tiny_quality_gap_is_noted_as_making_pgr_unstable() -> None:
    """PGR divides by the gap between the best single model and the cheapest: 1,000
    prompts, a (cost 1) solves the first 500, b (cost 5) those and one more (a gap of
    0.001), c (cost 3) the other 499. The oracle's APGR is then in the hundreds, by the
    formula (PGR is not clipped), and a note says why; a gap of 0.01 gets none."""
    scores = np.zeros((1000, 3))
    scores[:500, :2] = 1.0
    scores[500, 1] = 1.0
    scores[501:, 2] = 1.0
    report = routing_report({}, scores, [1.0, 5.0, 3.0], model_names=["a", "b", "c"])
    # The oracle (1.0 at cost (500 + 5 + 3 x 499) / 1000 = 2.002): its curve from a's (1, .5),
    # flat from there; mean Q over [1, 5] = (1.002 x .75 + 2.998) / 4 = .937375
    assert report["rows"]["oracle"]["apgr"] == pytest.approx((0.937375 - 0.5) / 0.001)
    assert report["notes"] == [
        "apgr, cpt50 and cpt80 are unstable: the best single model (b) is only 0.0010 better "
        "than the cheapest (a), under 0.01, and PGR divides every quality difference by that "
        "gap (x 1000): a figure far outside 0 to 1 says little"
    ]
    scores[501:510, 1] = 1.0  # a gap of 0.01: the oracle's APGR 43.7, no note
    assert routing_report({}, scores, [1.0, 5.0, 3.0])["notes"] == []
