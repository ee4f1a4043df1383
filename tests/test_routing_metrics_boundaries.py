"""Routing-metric cases a mutation sweep of curves.py and routing_metrics.py found open
(2026-12-06): each test kills mutants that every other metric test let through.
Expected values are computed by hand in the comments."""

from __future__ import annotations

import numpy as np

from routerllm.eval.curves import (
    OperatingPoint,
    aiq,
    apgr,
    cost_to_accuracy_one_setting,
    cpt,
    pgr,
)
from routerllm.eval.routing_metrics import format_table, references, routing_report

P = OperatingPoint
W, S = P(1.0, 0.5), P(3.0, 0.75)  # weak: cost 1, Q 0.5; strong: cost 3, Q 0.75


def close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) < 1e-9


def test_a_curve_segment_that_crosses_the_ranges_end_counts_up_to_it_only() -> None:
    """A router past the strong model's cost: its curve's last segment runs beyond the
    range AIQ and APGR integrate over. Only the part inside counts, up to Q at the
    range's end (the mutants integrated the whole segment, took the segment's end
    quality, or ran APGR's range to the router's last point)."""
    # Curve (1, 0) -> (3, 1): Q(c) = (c - 1)/2. Over [1, 2]: Q from 0 to 0.5, mean 0.25
    # (the whole segment would give (3 - 1)/(2 - 1) x 0.5 = 1.0; its end quality 1 at c = 2,
    # (0 + 1)/2 = 0.5).
    assert close(aiq([P(3.0, 1.0)], 1.0, 2.0, anchor=P(1.0, 0.0)), 0.25)
    # Curve W (1, .5) -> (4, .9): Q(c) = 0.5 + (0.4/3)(c - 1), Q(3) = 0.5 + 0.8/3.
    # Mean of Q over [C_w, C_s] = [1, 3]: 0.5 + (0.4/3) x 1 = 0.5 + 0.4/3.
    # APGR = (0.4/3) / (0.75 - 0.5) = 1.6/3 = 8/15 (over [1, 4] it would be
    # (0.5 + 0.2 - 0.5)/0.25 = 0.8).
    assert close(apgr([P(4.0, 0.9)], W, S), 8 / 15)


def test_pgr_is_read_on_the_curve_with_the_weak_model() -> None:
    # One point (2, .75): with the weak model W the curve is (1, .5) -> (2, .75).
    # s = 0.25 -> c = 1 + 0.25 x 2 = 1.5, Q = 0.625, PGR = 0.125/0.25 = 0.5. Without W
    # the curve starts at 2 and PGR at c = 1.5 would be None.
    assert close(pgr([P(2.0, 0.75)], W, S, 0.25), 0.5)


def test_cpt_reached_at_the_strong_models_cost_up_to_rounding_is_100() -> None:
    """A router's mean cost is summed in another order than the model's own mean cost,
    so a point "at C_s" can be an ulp past it (it is for 187 of 200 random 1000 x 3
    cost tables: ``c[rows, ch].mean()`` against ``c.mean(axis=0)[j]``)."""
    past = float(np.nextafter(3.0, 4.0))  # 3 + 4.4e-16
    # Curve W (1, .5) -> (past, .625): PGR 0.5 first at c = past, s = (2 + 4.4e-16)/2 =
    # 1 + 2.2e-16: within the 1e-12 slack, so 100 %, clamped to exactly 100.0 (not None,
    # and not 100.00000000000003).
    assert cpt([P(past, 0.625)], W, S, 0.5) == 100.0


def test_one_setting_reaches_a_target_within_float_rounding() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 is the quality 0.3 asked for, 4e-17 over it: the
    # point (1, .3) reaches it, at 1/2 of the reference cost 2 (as cost_to_accuracy does).
    assert close(cost_to_accuracy_one_setting([P(1.0, 0.3)], 0.1 + 0.2, 2.0), 0.5)


def test_every_row_is_scored_with_the_cheapest_models_point() -> None:
    """The anchor (the cheapest model's point) joins every row's curve and is a setting
    of its own for the one-setting figures; a row whose points lie past it, here the
    best model's own row, was only checked through AIQ and cost_to_best_accuracy."""
    # 25 prompts: a (cost 1) solves 24, b (cost 2) all: weak a (1, .96), strong b (2, 1).
    scores = np.zeros((25, 2))
    scores[:24, 0] = 1.0
    scores[:, 1] = 1.0
    report = routing_report({}, scores, [1.0, 2.0], model_names=["a", "b"])
    assert report["notes"] == []
    row = report["rows"]["single:b"]
    # Curve (1, .96) -> (2, 1): Q(c) = 0.96 + 0.04 (c - 1).
    # AIQ over [1, 2]: (0.96 + 1)/2 = 0.98; APGR = (0.98 - 0.96)/0.04 = 0.5.
    assert close(row["aiq"], 0.98) and close(row["apgr"], 0.5)
    # CPT: PGR(s) = s, so 50 % and 80 %.
    assert close(row["cpt50"], 50.0) and close(row["cpt80"], 80.0)
    # Half of b's cost is a's, 1: Q(1) = 0.96 (b's point alone starts at 2: None).
    assert close(row["acc_at_half_best_cost"], 0.96)
    # 95 % of 1 = 0.95: a's 0.96 already reaches it, at cost 1 = 0.5 of b's, on the hull
    # and as one setting (b's own point: 1.0); 100 % only at b itself: 1.0.
    assert close(row["cost_to_95"], 0.5) and close(row["cost_to_95_one_setting"], 0.5)
    assert close(row["cost_to_best_accuracy"], 1.0)
    assert close(row["cost_to_best_accuracy_one_setting"], 1.0)
    assert row["max_accuracy"] == 1.0
    # The table prints 3 decimals (and CPT as a percentage with 1).
    cells = next(ln for ln in format_table(report).splitlines() if ln.startswith("single:b"))
    assert cells.split()[1:4] == ["0.500", "0.980", "50.0%"]


def test_the_strong_model_is_the_best_one_not_the_largest() -> None:
    # THREE-like data: a (cost 1) solves p0, b (cost 2) p0-p1, c (cost 5) p0-p2, but b is
    # the largest (13 B). Strong = the best single model c (5, .6) all the same, weak a
    # (1, .2): c's own row is the line a -> c, PGR(s) = s, APGR 0.5 and CPT(80 %) 80 %
    # (against b (2, .4), strong, c's row would be flat at .6 from cost 5: s = 4 > 1).
    scores = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=float)
    report = routing_report(
        {}, scores, [1.0, 2.0, 5.0], sizes=[1.0, 13.0, 7.0], model_names=["a", "b", "c"]
    )
    assert report["best_single"]["name"] == "c"
    row = report["rows"]["single:c"]
    assert close(row["apgr"], 0.5) and close(row["cpt80"], 80.0)
    assert report["rows"]["largest"]["max_accuracy"] == 0.4  # b's row


def test_largest_ties_go_to_the_cheaper_model_then_the_lower_index() -> None:
    scores = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=float)
    # a and c are both 13 B; c costs 1 against a's 5: c (index 2), not the lower index 0.
    assert references(scores, [5.0, 2.0, 1.0], sizes=[13.0, 1.0, 13.0]).largest == 2
    # Equal sizes and costs: the lower index.
    assert references(scores, [1.0, 1.0, 1.0], sizes=[1.0, 13.0, 13.0]).largest == 1


def test_best_single_among_float_ties_at_one_cost_is_the_higher_quality() -> None:
    # Equal costs; Q_0 = (0.3 + 0)/3 = 0.09999999999999999, Q_1 = (0.1 + 0.2)/3 =
    # 0.10000000000000002: a tie (within 1e-12), same cost, so the higher Q_1 is both
    # the best and the cheapest (ties -> higher Q): no gap, and the note says so. Had the
    # best been model_0, best != cheapest and APGR would be None with no note.
    scores = [[0.3, 0.1], [0.0, 0.2], [0.0, 0.0]]
    report = routing_report({}, scores, [1.0, 1.0])
    assert report["best_single"]["name"] == report["cheapest"]["name"] == "model_1"
    assert report["notes"][0].startswith("apgr, cpt50 and cpt80 are undefined")


def test_the_mix_hull_row_holds_only_the_hull_vertices() -> None:
    # a (1, .2), b (4, .4), c (5, .6): at cost 4 the line a -> c is 0.2 + 0.4 x 3/4 = 0.5
    # > 0.4, so b is under the hull, which is a -> c: two points, b not among them.
    scores = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=float)
    refs = references(scores, [1.0, 4.0, 5.0])
    assert refs.mix_hull == (P(1.0, 0.2), P(5.0, 0.6))
    assert routing_report({}, scores, [1.0, 4.0, 5.0])["rows"]["mix_hull"]["n_points"] == 2


def test_a_quality_gap_of_exactly_tiny_gap_gets_no_note() -> None:
    # 100 prompts: a (cost 1) solves none, b (cost 2) one: gap 0.01 - 0 = 0.01 exactly,
    # not under TINY_GAP (0.01): no note. (The other test's "gap of 0.01" is
    # 0.51 - 0.5 = 0.010000000000000009, which a <= would also pass.)
    scores = np.zeros((100, 2))
    scores[0, 1] = 1.0
    assert routing_report({}, scores, [1.0, 2.0])["notes"] == []


def test_the_cheapest_model_alone_is_a_setting_that_reaches_the_best_accuracy() -> None:
    # model_0 (cost 1, Q .5) is best and cheapest; model_1 (cost 4) solves nothing. The
    # random row's point (2.5, .25) never reaches 0.5, but its anchor, model_0 alone,
    # does at cost 1: 1/1 = 1.0 (without the anchor: None).
    report = routing_report({}, np.array([[1.0, 0.0], [0.0, 0.0]]), [1.0, 4.0])
    assert close(report["rows"]["random"]["cost_to_best_accuracy_one_setting"], 1.0)
