"""The exact threshold sweep (``sweep(..., mode="threshold")``) against brute force ``choose``."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval.exact_sweep import exact_settings, threshold_switches
from routerllm.eval.routing_metrics import DEFAULT_THRESHOLDS, evaluate_choices, sweep
from routerllm.exceptions import RouterLLMError
from routerllm.routers import create_router
from routerllm.routers.base import Candidate
from routerllm.routers.decision import cheapness_rank, choose

from .test_exact_sweep import distinct_points, random_case


def brute_force(
    predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, decision: np.ndarray
) -> tuple[list[tuple[float, float]], list[np.ndarray]]:
    """The points of ``choose`` at every distinct predicted value, one below the lowest
    and one above the highest, ascending, repeats of one choice vector dropped; and
    the choices that make them. The choice changes only at a predicted value (``p >=
    tau``), and at tau = v it is that of the interval just below v up to v."""
    values = np.unique(predicted)
    taus = [values[0] - 1.0, *values, values[-1] + 1.0]
    return distinct_points(predicted, scores, costs, decision, "threshold", taus)


def threshold_case(seed: int, per_prompt: bool, wide: bool) -> tuple[np.ndarray, ...]:
    """``random_case`` (equal predictions on a coarse grid, equal decision costs) and
    prompts whose predictions differ by less than ``choose``'s tie tolerance; ``wide``
    puts some predictions below 0 and above 1."""
    predicted, scores, costs, decision = random_case(seed, per_prompt)
    rng = np.random.default_rng(seed + 100)
    predicted[-6:] = 0.7 + rng.integers(0, 3, (6, predicted.shape[1])) * 1e-14
    if wide:
        predicted[:8] = predicted[:8] * 3.0 - 1.0
    return predicted, scores, costs, decision


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("per_prompt", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_exact_threshold_sweep_equals_brute_force_choose(
    seed: int, per_prompt: bool, wide: bool
) -> None:
    predicted, scores, costs, decision = threshold_case(seed, per_prompt, wide)
    points = sweep(predicted, scores, costs, mode="threshold", decision_costs=decision)
    expected, choices = brute_force(predicted, scores, costs, decision)
    assert len(points) == len(expected) > 1
    assert np.allclose([(p.cost, p.quality) for p in points], expected, rtol=0, atol=1e-12)
    knobs = [p.knob for p in points]
    assert knobs == sorted(knobs) and len(set(knobs)) == len(knobs)
    rank = cheapness_rank(decision)
    _, shares = exact_settings(predicted, scores, costs, decision, rank, "threshold")
    for p, share, ch in zip(points, shares, choices, strict=True):
        # each point's knob makes it: the same choices as brute force's
        assert p.knob is not None
        assert np.array_equal(choose(predicted, decision, "threshold", p.knob), ch)
        # and each model's share of the prompts there (calibration's max_share)
        assert share.tolist() == pytest.approx(np.bincount(ch, minlength=5) / 40, abs=1e-12)


def test_switches_walk_down_each_prompts_records() -> None:
    predicted = np.array([[0.2, 0.6, 0.7], [0.5, 0.5, 0.9], [0.3, 0.8, 0.8]])
    decision = np.broadcast_to([1.0, 2.0, 4.0], (3, 3))
    sw = threshold_switches(predicted, cheapness_rank(decision))
    # above 0.9 every prompt takes its argmax (prompt 2's tie to the cheaper model 1)
    assert sw.start.tolist() == [2, 2, 1]
    # prompt 0's records 0.2, 0.6, 0.7; prompt 1's 0.5, 0.9 (model 1 only ties model 0);
    # prompt 2's 0.3, 0.8 (model 2 only ties model 1)
    assert sw.at.tolist() == [0.6, 0.5, 0.3, 0.2]
    assert sw.prompt.tolist() == [0, 1, 2, 0]
    assert sw.before.tolist() == [2, 2, 1, 1]
    assert sw.after.tolist() == [1, 0, 0, 0]


def test_exact_threshold_points_of_three_prompts_by_hand() -> None:
    predicted = np.array([[0.2, 0.6, 0.7], [0.5, 0.5, 0.9], [0.3, 0.8, 0.8]])
    scores = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    points = sweep(predicted, scores, [1.0, 2.0, 4.0], mode="threshold")
    # breakpoints 0.2, 0.3, 0.5, 0.6 -> tau 0, the midpoints 0.25, 0.4, 0.55, and 1
    assert [p.knob for p in points] == pytest.approx([0.0, 0.25, 0.4, 0.55, 1.0])
    # choices (0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 2, 1), (2, 2, 1)
    expected = [(3 / 3, 1 / 3), (4 / 3, 2 / 3), (5 / 3, 1.0), (8 / 3, 1.0), (10 / 3, 1.0)]
    assert np.allclose([(p.cost, p.quality) for p in points], expected, rtol=0, atol=1e-15)


def test_a_model_within_the_tie_tolerance_of_the_top_wins_above_and_below_it() -> None:
    # Above 0.5 choose's argmax takes the cheap model (1e-14 behind: a tie), at tau =
    # 0.5 only the dear one clears it, below 0.5 - 1e-14 the cheap one again.
    predicted = np.array([[0.5 - 1e-14, 0.5]])
    scores = np.array([[0.0, 1.0]])
    points = sweep(predicted, scores, [1.0, 2.0], mode="threshold")
    assert [(p.cost, p.quality) for p in points] == [(1.0, 0.0), (2.0, 1.0), (1.0, 0.0)]
    assert [p.knob for p in points] == [0.0, 0.5 - 0.5e-14, 1.0]


def test_threshold_knobs_at_the_ends_and_between_adjacent_floats() -> None:
    # Prompt 0's breakpoint -2, prompt 1's 1.5 and the next float up from it (its
    # argmax, 5, the third). Below -2: -2 itself; between -2 and 1.5: -0.25; between
    # the adjacent floats, whose midpoint rounds to 1.5: the upper one (an interval holds
    # its top); above the highest, which is over 1: the highest + 1.
    low, high = 1.5, float(np.nextafter(1.5, 2.0))
    predicted = np.array([[-2.0, 3.0, 3.0], [low, high, 5.0]])
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    costs = [1.0, 2.0, 4.0]
    points = sweep(predicted, scores, costs, mode="threshold")
    assert [p.knob for p in points] == [-2.0, -0.25, high, high + 1.0]
    # choices (0, 0), (1, 0), (1, 1), (1, 2)
    assert [(p.cost, p.quality) for p in points] == [(1.0, 0.5), (1.5, 0.0), (2.0, 0.5), (3.0, 0.0)]
    for p in points:
        assert p.knob is not None
        made = evaluate_choices(choose(predicted, costs, "threshold", p.knob), scores, costs)
        assert (made.cost, made.quality) == (p.cost, p.quality)


def test_no_switch_gives_one_point() -> None:
    # the cheap model is predicted at least as well everywhere: every tau picks it
    predicted = np.array([[0.9, 0.5], [0.5, 0.5]])
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    points = sweep(predicted, scores, [1.0, 2.0], mode="threshold")
    assert [(p.cost, p.quality, p.knob) for p in points] == [(1.0, 0.5, 0.0)]


def test_the_default_threshold_sweep_is_exact_and_grid_the_201_values() -> None:
    rng = np.random.default_rng(3)
    predicted, scores = rng.random((40, 4)), (rng.random((40, 4)) > 0.5).astype(float)
    costs = [1.0, 2.0, 4.0, 8.0]
    default = sweep(predicted, scores, costs, mode="threshold")
    assert default == sweep(predicted, scores, costs, mode="threshold", knobs="exact")
    grid = sweep(predicted, scores, costs, mode="threshold", knobs="grid")
    assert [p.knob for p in grid] == list(DEFAULT_THRESHOLDS)
    # 40 x 4 distinct values, at most one point per breakpoint: many more than the grid's
    # distinct points, and every grid point among them
    exact = {(p.cost, p.quality) for p in default}
    assert len(exact) > len({(p.cost, p.quality) for p in grid})
    for p in grid:
        assert min(abs(p.cost - c) + abs(p.quality - q) for c, q in exact) < 1e-12


def test_named_knob_sets_apply_to_both_modes() -> None:
    one = (np.ones((1, 2)), np.ones((1, 2)), [1.0, 2.0])
    for mode in ("lambda", "threshold"):
        assert len(sweep(*one, mode=mode, knobs="exact")) == 1  # type: ignore[arg-type]
        sweep(*one, mode=mode, knobs="grid")  # type: ignore[arg-type]
        with pytest.raises(RouterLLMError, match="knobs='fine': the named knob sets are 'exact'"):
            sweep(*one, mode=mode, knobs="fine")  # type: ignore[arg-type]


def test_calibration_reaches_a_threshold_the_grid_steps_over() -> None:
    """Cheap's predictions all lie between 0.500 and 0.505, one step of the 201-value
    grid: tau = 0.5 sends every prompt to cheap, 0.505 every one to dear. Cheap fails
    the two prompts it is predicted worst on; a tau in (0.5012, 0.5013] sends just those
    to dear: quality 1 at dear's share 0.5 and cost (1 + 1 + 10 + 10) / 4 = 5.5."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    predicted = np.array([[0.5011, 0.9], [0.5012, 0.9], [0.5013, 0.9], [0.5014, 0.9]])
    router.fit(None, scores, embeddings=np.eye(4))
    out = router.calibrate(  # type: ignore[attr-defined]
        np.eye(4), scores, "max_share=0.5", predicted=predicted, modes=["threshold"], signal_se=0
    )
    assert out["mode"] == "threshold" and 0.5012 < out["knob"] <= 0.5013
    assert out["shares"] == {"cheap": 0.5, "dear": 0.5}
    assert (out["quality"], out["cost"]) == (1.0, 5.5)
    assert out["target_reached"] and out["routes_by"] == "predictions"
    # the knob sends the two prompts cheap fails to dear
    assert choose(predicted, [1.0, 10.0], "threshold", out["knob"]).tolist() == [1, 1, 0, 0]


def test_a_highest_breakpoint_of_exactly_one_gets_a_knob_above_it() -> None:
    # A predicted quality of 1: the dear model's 1, the cheap one's 1e-13 below it (a tie,
    # to the cheap one). Above 1 the cheap one; at tau in (1 - 1e-13, 1] only the dear
    # one clears tau; below it the cheap one again. Above the highest, 1, the knob is
    # 1 + 1 (tau = 1 is the dear one's interval, not above it).
    predicted = np.array([[1.0 - 1e-13, 1.0]])
    scores = np.array([[0.0, 1.0]])
    points = sweep(predicted, scores, [1.0, 2.0], mode="threshold")
    assert [p.knob for p in points] == [0.0, 1.0 - 0.5e-13, 2.0]
    assert [(p.cost, p.quality) for p in points] == [(1.0, 0.0), (2.0, 1.0), (1.0, 0.0)]
    # a wider prediction than 1 on a pricier model: breakpoints 1 (2 -> 1) and 0.2 (1 -> 0)
    predicted = np.array([[0.2, 1.0, 1.5]])
    points = sweep(predicted, np.array([[0.0, 0.0, 1.0]]), [1.0, 2.0, 4.0], mode="threshold")
    assert [(p.knob, p.cost) for p in points] == [(0.0, 1.0), (0.6, 2.0), (2.0, 4.0)]


def test_threshold_knobs_of_huge_breakpoints_neither_round_onto_them_nor_overflow() -> None:
    # Breakpoints 1e308 (1 -> 0) and 1.5e308 (2 -> 1): their midpoint summed first
    # overflows to inf (above every one), and 1.5e308 + 1 rounds to 1.5e308 itself; the
    # knob above the highest is the next float up.
    predicted = np.array([[1e308, 1.5e308, 1.7e308]])
    scores = np.array([[1.0, 0.0, 0.0]])
    costs = [1.0, 2.0, 4.0]
    points = sweep(predicted, scores, costs, mode="threshold")
    above = float(np.nextafter(1.5e308, np.inf))
    assert [p.knob for p in points] == [0.0, 1.25e308, above]
    assert [(p.cost, p.quality) for p in points] == [(1.0, 1.0), (2.0, 0.0), (4.0, 0.0)]
    for p in points:
        assert p.knob is not None
        assert costs[int(choose(predicted, costs, "threshold", p.knob)[0])] == p.cost
