"""Calibration at its boundaries: a share exactly at a ``max_share`` cap, a router that
ties the best fixed mix of single models (exactly, or up to rounding), equally good
settings, a target exactly at a setting or at the mix, two settings' shares, the edges
of a target's range, targets met up to rounding (the 1e-12 slack, a share within 1e-9
of one) and what a fallback mix reaches. Mostly two models, cheap (cost 1) and dear, a
handful of prompts, the predictions given, every expected number worked out by hand. On so few prompts no lead over the fixed mix is
beyond its noise (``signal_se``, tests/test_do_no_harm.py): these ask for any lead
(``signal_se=0``), to check the arithmetic at the boundaries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from routerllm.exceptions import RouterLLMError
from routerllm.routers import create_router
from routerllm.routers.base import Candidate
from routerllm.routers.calibration import best_on_curve, parse_target

# Predictions that send a prompt to dear (whatever the knob that sends any there) or
# keep it on cheap (whatever the knob): the knob's settings send either no prompt to
# dear or exactly the ``to_dear`` ones (or, for the first test, all of them).
TO_DEAR, TO_CHEAP = (0.1, 0.9), (0.9, 0.1)


def calibrated(
    dear_cost: float,
    cheap_solves: list[int],
    to_dear: list[int],
    n: int,
    target: str,
    two_settings: bool = False,
) -> dict[str, Any]:
    """A logreg router over cheap (cost 1) and dear (``dear_cost``) calibrated to
    ``target`` on ``n`` prompts: cheap solves the ``cheap_solves`` ones, dear every one;
    the predictions send the ``to_dear`` prompts to dear."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", dear_cost)], 0, encoder="hashing"
    )
    scores = np.ones((n, 2))
    scores[[i for i in range(n) if i not in cheap_solves], 0] = 0.0
    predicted = np.array([TO_DEAR if i in to_dear else TO_CHEAP for i in range(n)])
    router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), embeddings=np.eye(n)[:2])
    return dict(router.calibrate(np.eye(n), scores, target, predicted=predicted, signal_se=0, two_settings=two_settings))  # type: ignore[attr-defined]  # fmt: skip


def test_a_share_exactly_at_the_cap_meets_a_max_share_target() -> None:
    """``max_share=0.25``: dear serves *at most* 25 % of requests (README, docstring), so
    the setting that sends it one prompt in four, the one cheap fails, is allowed: 1.0
    at (3 + 10) / 4 = 3.25, where sending it none keeps 0.75 at 1."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    scores = np.array([[1, 1], [1, 1], [1, 1], [0, 1]], dtype=float)
    # dear looks a little better on the first three (a knob near 0 sends them all to it),
    # much better on the last one.
    predicted = np.array([[0.9, 0.95], [0.9, 0.95], [0.9, 0.95], [0.1, 0.9]])
    router.fit(None, scores, embeddings=np.eye(4))
    out = router.calibrate(np.eye(4), scores, "max_share=0.25", predicted=predicted, signal_se=0)  # type: ignore[attr-defined]
    assert out["shares"] == {"cheap": 0.75, "dear": 0.25}
    assert (out["quality"], out["cost"]) == (1.0, 3.25)
    assert out["target_reached"] and out["knob_target_reached"]
    # The mix at 3.25 (a quarter dear) keeps 0.75 + 0.25 x 0.25 = 0.8125: the router beats it.
    assert out["fixed_mix_quality"] == pytest.approx(0.8125)
    assert out["beats_fixed_mix"] and out["routes_by"] == "predictions"


@pytest.mark.parametrize(
    ("n", "to_dear", "goal", "quality", "mix"),
    [
        # 8 prompts, 2 to dear: cost 26 / 8 = 3.25, the mix's dear share 2.25 / 9 = 0.25
        # exactly; the knob keeps 3/8, the mix 0.25 + 0.25 x 0.75 = 0.4375.
        (8, [0, 2], 0.25, 0.375, 0.4375),
        # 10 prompts, 3 to dear: cost 3.7, the mix's dear share (3.7 - 1) / 9 = 0.3, which
        # rounds to 0.30000000000000004; the knob keeps 0.3, the mix 0.2 + 0.3 x 0.8 = 0.44.
        (10, [0, 1, 2], 0.3, 0.3, 0.44),
    ],
)
def test_a_fallback_mix_with_a_share_at_the_cap_keeps_a_max_share_target(
    n: int, to_dear: list[int], goal: float, quality: float, mix: float
) -> None:
    """Cheap solves the first two prompts, dear all; the knob sends ``to_dear`` to dear, a
    share of exactly ``goal``, and does worse than the fixed mix at its cost, whose dear
    share is the same: the mix keeps to the cap (at most), so the router falls back to it."""
    out = calibrated(10.0, [0, 1], to_dear, n, f"max_share={goal}")
    assert out["shares"]["dear"] == goal and out["quality"] == pytest.approx(quality)
    assert out["fixed_mix_quality"] == pytest.approx(mix) and not out["beats_fixed_mix"]
    assert out["fallback_mix"] == pytest.approx({"cheap": 1 - goal, "dear": goal})
    assert out["routes_by"] == "fixed mix" and out["target_reached"]


def test_a_router_that_ties_the_fixed_mix_keeps_routing_and_does_not_beat_it() -> None:
    """The router's choices as good as the best fixed mix at their cost, exactly or up to
    rounding, where the knob was chosen: the figures say so. Whether it routes rests on
    the cross-fitted lead (each prompt routed by a knob chosen without it): a tie there
    keeps it routing by its predictions (no harm done) without beating the mix."""
    # Exactly: no prompt may go to dear, so the knob sends all to cheap, 0.5 at cost 1:
    # the mix at cost 1 is cheap alone, 0.5.
    out = calibrated(10.0, [0], [1], 2, "max_share=0")
    assert (out["quality"], out["cost"], out["fixed_mix_quality"]) == (0.5, 1.0, 0.5)
    assert out["lead_over_mix"] == 0.0
    # Cross-fitted, the knob chosen on prompt 0 alone sends prompt 1 to dear (which
    # solves it; the mix at cost 1, cheap, does not): leads 0 and 1, and dear's share
    # breaks the cap on prompts the knob was not chosen on.
    assert out["cross_fitted_quality"] == 1.0 and out["cross_fitted_cost"] == 5.5
    assert out["cross_fitted_lead_over_mix"] == 0.5 and out["beats_fixed_mix"]
    # Every knob sends every prompt to cheap, which solves none: a tie, fold by fold.
    out = calibrated(10.0, [], [], 4, "max_share=0")
    assert out["cross_fitted_lead_over_mix"] == 0.0 and out["cross_fitted_folds"] == 4
    assert out["fallback_mix"] is None and out["routes_by"] == "predictions"
    assert not out["beats_fixed_mix"]
    # Cheap solves nothing, dear all: sending k of n prompts to dear is a point on the
    # segment cheap -> dear, the mix at that cost. 1 of 3 at cost 7/3 (dear 5): 1/3,
    # where the mix's interpolation rounds to 0.33333333333333337, above it.
    out = calibrated(5.0, [], [0], 3, "max_cost=0.5")
    assert out["quality"] == 1 / 3 and out["cost"] == pytest.approx(7 / 3)
    assert out["fixed_mix_quality"] == 0.33333333333333337
    assert out["lead_over_mix"] == pytest.approx(0.0, abs=1e-15)
    # Cross-fitted: prompt 0 to dear by the knob chosen on the other two (cheap for
    # them, and the mix at their cost 1), prompts 1 and 2 to cheap: leads 1, 0, 0.
    assert out["cross_fitted_lead_over_mix"] == pytest.approx(1 / 3)
    assert out["fallback_mix"] is None and out["routes_by"] == "predictions"
    # 1 of 5 at cost 2.8 (dear 10): 0.2, where the mix's rounds to 0.19999999999999996.
    out = calibrated(10.0, [], [0], 5, "max_cost=0.3")
    assert out["quality"] == 0.2 and out["cost"] == pytest.approx(2.8)
    assert out["fixed_mix_quality"] == 0.19999999999999996
    assert out["cross_fitted_lead_over_mix"] == pytest.approx(0.2)
    assert out["fallback_mix"] is None


def test_of_equally_good_settings_within_a_cap_or_budget_the_cheaper_is_taken() -> None:
    """Cheap solves the first three of four prompts; sending the first to dear (cost 10)
    solves no more, 0.75 at (10 + 3) / 4 = 3.25 instead of at 1: within a share of 0.5
    the setting that sends none, at 1 (where the mix is cheap alone, 0.75: no fallback)."""
    out = calibrated(10.0, [0, 1, 2], [0], 4, "max_share=0.5")
    assert (out["quality"], out["cost"]) == (0.75, 1.0)
    assert out["shares"] == {"cheap": 1.0, "dear": 0.0} and out["routes_by"] == "predictions"
    # One setting's rows (knob, cost, quality, shares, mode): equally good, the cheaper.
    same = [(0.0, 2.0, 0.8, None, "lambda"), (1.0, 1.5, 0.8, None, "lambda")]
    assert best_on_curve(same, "max_cost", 3.0, False)[:3] == (True, same[1], None)


def test_a_target_exactly_at_a_setting_of_the_curve_is_met_by_it_alone() -> None:
    """The hull (cost, quality) (1, .2) -> (2, .5) -> (4, .6); (3, .3) is under it."""
    rows = [(k, c, q, None, "lambda") for k, c, q in
            ((0.0, 4.0, 0.6), (0.5, 2.0, 0.5), (1.0, 1.0, 0.2), (2.0, 3.0, 0.3))]  # fmt: skip
    # the quality of a setting: that one, not a mix that gives the next one a share of 1
    assert best_on_curve(rows, "quality", 0.5, True)[:3] == (True, rows[1], None)
    # the cost of the cheapest setting: met by it
    assert best_on_curve(rows, "max_cost", 1.0, True)[:3] == (True, rows[2], None)
    # a hull of one setting meets a lesser quality by itself
    assert best_on_curve(rows[:1], "quality", 0.3, True)[:3] == (True, rows[0], None)


def test_two_settings_share_the_prompts_by_their_weights() -> None:
    """Cheap solves the first two of four prompts, dear (cost 10) all; the knob sends the
    last two to dear: 1.0 at (2 + 20) / 4 = 5.5, or none: 0.5 at 1. A budget of
    0.19 x 10 = 1.9 takes the second setting for (1.9 - 1) / 4.5 = 0.2 of requests:
    quality 0.6, dear's share 0.2 x 0.5 = 0.1. The mix at 1.9 keeps 0.5 + 0.5 x 0.1 =
    0.55: the router routes by its predictions."""
    out = calibrated(10.0, [0, 1], [2, 3], 4, "max_cost=0.19", two_settings=True)
    assert out["second_share"] == pytest.approx(0.2)
    assert (out["quality"], out["cost"]) == pytest.approx((0.6, 1.9))
    assert out["shares"] == pytest.approx({"cheap": 0.9, "dear": 0.1})
    assert out["fixed_mix_quality"] == pytest.approx(0.55) and out["routes_by"] == "predictions"


@pytest.mark.parametrize(
    "target", ["quality=0", "quality=1.01", "max_cost=inf", "max_cost=nan", "max_share=1.01"]
)
def test_a_target_just_outside_its_range_is_refused(target: str) -> None:
    with pytest.raises(RouterLLMError, match="bad calibration target"):
        parse_target(target)


def test_the_edges_of_a_targets_range_are_targets() -> None:
    assert parse_target("max_share=0") == ("max_share", 0.0)
    assert parse_target("max_share:dear=1") == ("max_share:dear", 1.0)
    assert parse_target("quality=1") == ("quality", 1.0)
    assert parse_target("max_cost=1e300") == ("max_cost", 1e300)


def test_of_equally_near_settings_out_of_a_caps_reach_the_cheaper_is_taken() -> None:
    """``max_share:small=0.4`` out of reach: prompt a goes to small whatever the knob.
    Of the settings that send only it there, sending b to mid ((1 + 5) / 2 = 3) and to
    big ((1 + 10) / 2 = 5.5) both solve both prompts: the cheaper is taken."""
    models = [Candidate("small", 1.0), Candidate("mid", 5.0), Candidate("big", 10.0)]
    router = create_router("logreg", models, 0, encoder="hashing")
    scores = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    predicted = np.array([[0.9, 0.1, 0.1], [0.05, 0.7, 0.8]])
    router.fit(None, scores, embeddings=np.eye(2))
    out = router.calibrate(
        np.eye(2), scores, "max_share:small=0.4", predicted=predicted, signal_se=0
    )  # type: ignore[attr-defined]
    assert not out["target_reached"] and out["routes_by"] == "predictions"
    assert (out["quality"], out["cost"]) == (1.0, 3.0)
    assert out["shares"] == {"small": 0.5, "mid": 0.5, "big": 0.0}


@pytest.mark.parametrize("target", ["quality=1", "max_cost=1"])
def test_of_two_rules_that_meet_a_target_equally_well_the_cheaper_is_taken(target: str) -> None:
    """Cheap (cost 1) fails prompt a, solves b; dear (10) solves both. Predicted (cheap,
    dear): a (0.3, 0.35), b (0.6, 0.9). Both prompts solved needs a on dear: lambda ranks
    by the gap (a's 0.05 < b's 0.3), so it sends a there only with b, at cost 10;
    threshold in (0.3, 0.6] sends a alone (a clears it, or nothing does and dear is its
    best), at (10 + 1) / 2 = 5.5. Quality 1 at the least
    cost, or the best quality in the budget of 10 and then the least cost: threshold's."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    scores = np.array([[0.0, 1.0], [1.0, 1.0]])
    router.fit(None, scores, embeddings=np.eye(2))
    predicted = np.array([[0.3, 0.35], [0.6, 0.9]])
    out = router.calibrate(np.eye(2), scores, target, predicted=predicted, signal_se=0)  # type: ignore[attr-defined]
    assert (out["mode"], out["quality"], out["cost"]) == ("threshold", 1.0, 5.5)
    assert 0.3 < out["knob"] <= 0.6 and out["routes_by"] == "predictions"


def test_a_quality_the_fallback_mix_meets_up_to_rounding_is_reached() -> None:
    """Cheap solves the first of five prompts, dear (cost 6) all; the knob sends the first
    three to dear: 0.6 at (3 x 6 + 2) / 5 = 4. The mix at 4 keeps 0.2 + 0.8 x 3 / 5 =
    0.68, computed 0.6799999999999999: quality=0.68 is what the router, drawing from
    that mix, keeps (within the 1e-12 the other targets allow), though its knob does not."""
    out = calibrated(6.0, [0], [0, 1, 2], 5, "quality=0.68")
    assert (out["quality"], out["cost"]) == pytest.approx((0.6, 4.0))
    assert out["fixed_mix_quality"] == 0.6799999999999999 and out["routes_by"] == "fixed mix"
    assert out["target_reached"] and not out["knob_target_reached"]


def test_a_budget_below_the_cheapest_cost_is_not_reached_by_the_fallback_mix() -> None:
    """a and b both cost 1, c 10; b and c solve both prompts, a neither, and the router
    takes a for both whatever the knob: 0 at cost 1, where the mix (b alone) keeps 1, so
    the router falls back to it. A budget of 0.05 x 10 = 0.5 is below any model's cost:
    the mix spends 1 as the knob did, and does not reach it (the quality it keeps is no
    budget met)."""
    models = [Candidate("a", 1.0), Candidate("b", 1.0), Candidate("c", 10.0)]
    router = create_router("logreg", models, 0, encoder="hashing")
    scores = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    router.fit(None, np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]), embeddings=np.eye(2))
    predicted = np.array([[0.9, 0.1, 0.2], [0.9, 0.1, 0.2]])
    out = router.calibrate(np.eye(2), scores, "max_cost=0.05", predicted=predicted, signal_se=0)  # type: ignore[attr-defined]
    assert (out["quality"], out["cost"], out["fixed_mix_quality"]) == (0.0, 1.0, 1.0)
    assert out["fallback_mix"] == {"b": 1.0} and out["routes_by"] == "fixed mix"
    assert not out["target_reached"] and not out["knob_target_reached"]


def test_a_budget_met_up_to_rounding_by_one_setting_is_met() -> None:
    """Cheap solves the last three of five prompts, dear (cost 3) all; the knob sends the
    first two to dear: 1.0 at (2 x 3 + 3) / 5 = 1.8. max_cost=0.6 is a budget of
    0.6 x 3, computed 1.7999999999999998: that setting is within it (the 1e-12 slack),
    not the cheaper one (0.6 at 1)."""
    out = calibrated(3.0, [2, 3, 4], [0, 1], 5, "max_cost=0.6")
    assert (out["quality"], out["cost"]) == (1.0, 1.8) and out["target_reached"]


@pytest.mark.parametrize("two_settings", [False, True])
def test_a_quality_met_up_to_rounding_by_one_setting_is_met(two_settings: bool) -> None:
    """Cheap solves the first of five prompts, dear the first four (the best model, 0.8);
    the knob sends prompts 1 and 2 to dear: 3/5 = 0.6. quality=0.75 asks 0.75 x 0.8,
    computed 0.6000000000000001: met by that setting, within the 1e-12 slack (a second
    setting would take a share of 1.0000000000000002, so none is taken)."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    scores = np.array([[1, 1], [0, 1], [0, 1], [0, 1], [0, 0]], dtype=float)
    predicted = np.array([TO_CHEAP, TO_DEAR, TO_DEAR, TO_CHEAP, TO_CHEAP])
    router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), embeddings=np.eye(5)[:2])
    out = router.calibrate(np.eye(5), scores, "quality=0.75", predicted=predicted, signal_se=0, two_settings=two_settings)  # type: ignore[attr-defined]  # fmt: skip
    assert (out["quality"], out["cost"], out["second_knob"]) == (0.6, 4.6, None)
    assert out["target_reached"] and out["routes_by"] == "predictions"


def test_a_budget_at_the_cheapest_setting_up_to_rounding_is_met_by_two_settings() -> None:
    """Cheap costs 0.1, dear 1; the cheapest setting (all three prompts on cheap) costs
    their mean, computed 0.10000000000000002: a budget of max_cost=0.1 (0.1 x 1) is met
    by it alone, with two settings allowed too."""
    router = create_router(
        "logreg", [Candidate("cheap", 0.1), Candidate("dear", 1.0)], 0, encoder="hashing"
    )
    scores = np.array([[1, 1], [0, 1], [0, 1]], dtype=float)
    predicted = np.array([TO_CHEAP, TO_DEAR, TO_DEAR])
    router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), embeddings=np.eye(3)[:2])
    out = router.calibrate(
        np.eye(3), scores, "max_cost=0.1", predicted=predicted, signal_se=0, two_settings=True
    )  # type: ignore[attr-defined]
    assert out["cost"] == 0.10000000000000002 and out["quality"] == pytest.approx(1 / 3)
    assert out["second_knob"] is None and out["target_reached"]


def test_a_second_setting_within_a_billionth_of_the_whole_share_is_that_setting() -> None:
    """Cheap solves the last three of five prompts, dear (cost 10) all; the settings
    are 0.6 at 1 and 1.0 at (2 x 10 + 3) / 5 = 4.6. A budget of 4.5999999995 would give
    the second one a share of 3.5999999995 / 3.6 = 0.99999999986: within 1e-9 of all
    of it, so it is taken alone (no second knob), at its cost."""
    out = calibrated(10.0, [2, 3, 4], [0, 1], 5, "max_cost=0.45999999995", two_settings=True)
    assert (out["quality"], out["cost"]) == (1.0, 4.6)
    assert out["second_knob"] is None and out["second_share"] == 0.0
