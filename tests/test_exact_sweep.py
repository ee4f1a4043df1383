"""The exact lambda sweep (``sweep(..., knobs="exact")``) against brute force ``choose``."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval.exact_sweep import exact_settings, lambda_switches
from routerllm.eval.routing_metrics import OperatingPoint, evaluate_choices, sweep
from routerllm.routers.decision import cheapness_rank, choose, normalised_costs


def brute_force(
    predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, decision: np.ndarray
) -> list[tuple[float, float]]:
    """The points of ``choose`` at 0, at the midpoint between every two sorted pairwise
    breakpoints and at twice the highest, in ascending knob order, repeats of one
    choice vector dropped."""
    norm = normalised_costs(decision)
    m = predicted.shape[1]
    breaks = [
        (predicted[:, j] - predicted[:, k])[keep] / (norm[:, j] - norm[:, k])[keep]
        for j in range(m)
        for k in range(m)
        if (keep := (norm[:, j] > norm[:, k]) & (predicted[:, j] > predicted[:, k])).any()
    ]
    b = np.unique(np.concatenate(breaks)) if breaks else np.zeros(0)
    knobs = [0.0, *((b[:-1] + b[1:]) / 2), *([2 * b[-1]] if b.size else [])]
    return distinct_points(predicted, scores, costs, decision, "lambda", knobs)[0]


def distinct_points(
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    decision: np.ndarray,
    mode: str,
    knobs: list[float],
) -> tuple[list[tuple[float, float]], list[np.ndarray]]:
    """The (cost, quality) points of ``choose`` at ``knobs`` in their order, repeats of one
    choice vector dropped, and the choices that make them."""
    choices: list[np.ndarray] = []
    for k in knobs:
        ch = choose(predicted, decision, mode, float(k))
        if not choices or not np.array_equal(ch, choices[-1]):
            choices.append(ch)
    points = [evaluate_choices(ch, scores, costs) for ch in choices]
    return [(p.cost, p.quality) for p in points], choices


def random_case(seed: int, per_prompt: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n, m = 40, 5
    # predictions on a coarse grid on half the prompts: equal scores, collinear points
    predicted = rng.random((n, m))
    predicted[: n // 2] = rng.integers(0, 5, (n // 2, m)) / 4
    scores = (rng.random((n, m)) < 0.5).astype(float)
    costs = rng.random((n, m)) * 3
    # whole-number decision costs: equal costs on a prompt and between models
    decision = (
        rng.integers(1, 4, (n, m)).astype(float)
        if per_prompt
        else np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    )
    return predicted, scores, costs, np.broadcast_to(decision, (n, m)).copy()


@pytest.mark.parametrize("per_prompt", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_exact_sweep_equals_brute_force_choose(seed: int, per_prompt: bool) -> None:
    predicted, scores, costs, decision = random_case(seed, per_prompt)
    points = sweep(predicted, scores, costs, knobs="exact", decision_costs=decision)
    expected = brute_force(predicted, scores, costs, decision)
    assert len(points) == len(expected)
    assert np.allclose([(p.cost, p.quality) for p in points], expected, rtol=0, atol=1e-12)
    # each point's knob makes it
    knobs = [p.knob for p in points]
    assert knobs == sorted(knobs) and knobs[0] == 0.0
    _, shares = exact_settings(predicted, scores, costs, decision, cheapness_rank(decision))
    for p, share in zip(points, shares, strict=True):
        chosen = choose(predicted, decision, "lambda", p.knob)
        made = evaluate_choices(chosen, scores, costs)
        assert made.cost == pytest.approx(p.cost, abs=1e-12)
        assert made.quality == pytest.approx(p.quality, abs=1e-12)
        # and each model's share of the prompts there (calibration's max_share)
        assert share.tolist() == pytest.approx(np.bincount(chosen, minlength=5) / 40, abs=1e-12)


def test_switches_follow_each_prompts_hull() -> None:
    # costs 1, 2, 4 -> d' = 0.25, 0.5, 1 (divided by the highest mean cost)
    predicted = np.array([[0.2, 0.6, 0.7], [0.5, 0.5, 0.9], [0.1, 0.3, 0.7]])
    decision = np.broadcast_to([1.0, 2.0, 4.0], (3, 3))
    sw = lambda_switches(predicted, decision, cheapness_rank(decision))
    assert sw.start.tolist() == [0, 0, 0]
    # prompt 0: 0 -> 1 at 0.4 / 0.25, 1 -> 2 at 0.1 / 0.5; prompt 1: model 1 ties model 0
    # (never chosen), 0 -> 2 at 0.4 / 0.75; prompt 2: the three are collinear, at 0.8.
    # Each switch is where the cheaper model falls more than the tolerance (1e-12)
    # behind: 1e-12 / 0.25 below 1.6, and so on. On prompt 2 model 0 falls 1e-12 behind
    # model 2 at 0.8 - 1e-12 / 0.75, model 1 behind model 2 at 0.8 - 1e-12 / 0.5: between
    # them model 1 is the cheapest one tied with the best, and choose gives it to model 1
    tol = 1e-12
    at = [
        1.6 - tol / 0.25,
        0.8 - tol / 0.75,
        0.8 - tol / 0.5,
        0.4 / 0.75 - tol / 0.75,
        0.2 - tol / 0.5,
    ]
    assert sw.at.tolist() == pytest.approx(at, rel=1e-15)
    assert sw.prompt.tolist() == [0, 2, 2, 1, 0]
    assert sw.before.tolist() == [0, 0, 1, 0, 1]
    assert sw.after.tolist() == [1, 1, 2, 2, 2]
    assert choose(predicted, decision, "lambda", 0.8 - 1.6e-12).tolist()[2] == 1
    assert choose(predicted, decision, "lambda", 0.8).tolist()[2] == 0


def test_exact_points_of_two_prompts_by_hand() -> None:
    predicted = np.array([[0.2, 0.6, 0.7], [0.5, 0.5, 0.9]])
    scores = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    costs = np.array([1.0, 2.0, 4.0])
    # breakpoints 1.6, 0.533, 0.2 -> knobs 0, (0.2 + 0.533) / 2, (0.533 + 1.6) / 2, 3.2
    points = sweep(predicted, scores, costs, knobs="exact")
    assert [p.knob for p in points] == pytest.approx([0.0, 0.55 / 1.5, 3.2 / 3, 3.2])
    # choices (2, 2), (1, 2), (1, 0), (0, 0)
    assert [(p.cost, p.quality) for p in points] == [(4.0, 1.0), (3.0, 1.0), (1.5, 1.0), (1.0, 0.5)]


def test_the_grid_steps_over_a_narrow_interval_the_exact_sweep_keeps() -> None:
    # Costs 0, 1, 2 -> d' = 0, 0.5, 1. Prompt 2's middle model wins only for lambda in
    # (1.5, 1.501): prompts 0 and 1 put breakpoints at 0.001 and 1000, which spaces the
    # log grid's values 8 % apart, none in that interval.
    costs = np.array([0.0, 1.0, 2.0])
    predicted = np.array([[0.0, 0.0005, -1.0], [0.0, 500.0, -1.0], [0.0, 0.7505, 1.5005]])
    scores = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    grid = sweep(predicted, scores, costs, knobs="grid")
    exact = sweep(predicted, scores, costs, knobs="exact")
    assert max(p.quality for p in grid) == pytest.approx(2 / 3)
    assert np.allclose([(p.cost, p.quality) for p in exact], [
        (4 / 3, 2 / 3),  # lambda below 0.001: models 1, 1, 2
        (1.0, 2 / 3),  # models 0, 1, 2
        (2 / 3, 1.0),  # lambda in (1.5, 1.501): models 0, 1, 1
        (1 / 3, 2 / 3),  # models 0, 1, 0
        (0.0, 2 / 3),  # above 1000: models 0, 0, 0
    ], rtol=0, atol=1e-15)  # fmt: skip


def test_no_breakpoint_gives_the_choice_of_lambda_zero() -> None:
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    predicted = np.array([[0.9, 0.5], [0.5, 0.5]])  # the cheaper model is never worse
    assert sweep(predicted, scores, [1.0, 2.0], knobs="exact") == [OperatingPoint(1.0, 0.5, 0.0)]
    assert sweep(predicted, scores, [0.0, 0.0], knobs="exact") == [OperatingPoint(0.0, 0.5, 0.0)]
    # a pricier model ahead by less than choose's tie tolerance is never chosen
    tied = np.array([[0.5, 0.5 + 1e-13], [0.5, 0.5]])
    assert sweep(tied, scores, [1.0, 2.0], knobs="exact") == [OperatingPoint(1.0, 0.5, 0.0)]


def test_the_default_lambda_sweep_is_exact() -> None:
    rng = np.random.default_rng(3)
    predicted, scores = rng.random((40, 4)), (rng.random((40, 4)) > 0.5).astype(float)
    costs = [1.0, 2.0, 4.0, 8.0]
    assert sweep(predicted, scores, costs) == sweep(predicted, scores, costs, knobs="exact")
    assert sweep(predicted, scores, costs) != sweep(predicted, scores, costs, knobs="grid")


def test_a_chain_of_breakpoints_within_the_merge_tolerance_is_one_and_no_knob_falls_in_it() -> None:
    # A cheap model (cost 0, predicted 0) and a dear one (cost 1, predicted lambda_i):
    # prompt i switches at lambda_i exactly. Breakpoints 1 + 2e-9, 1 + 1.2e-9, 1 + 0.4e-9
    # and 1 are each within 1e-9 of the next: one group, 2e-9 wide, with 1 + 3.2e-9 above
    # it and 1 - 1.5e-9 below it more than 1e-9 apart. A knob between two groups is the
    # midpoint of the gap, never inside the group, where only some of its prompts switched.
    at = np.array([1 + 3.2e-9, 1 + 2e-9, 1 + 1.2e-9, 1 + 0.4e-9, 1.0, 1 - 1.5e-9])
    predicted = np.column_stack([np.zeros(6), at])
    outcomes = np.broadcast_to([0.0, 1.0], (6, 2))  # the dear model's share, as cost and quality
    points = sweep(predicted, outcomes, outcomes, knobs="exact", decision_costs=outcomes)
    # each switch is where the cheap model's utility falls 1e-12 (the tolerance) behind
    edge = at - 1e-12
    assert [p.knob for p in points] == [
        0.0,
        (edge[4] + edge[5]) / 2,
        (edge[0] + edge[1]) / 2,
        2 * edge[0],
    ]
    # dear on all six, on 1 + 3.2e-9 .. 1's five, on 1 + 3.2e-9's alone, on none
    assert [(p.cost, p.quality) for p in points] == [(k / 6, k / 6) for k in (6, 5, 1, 0)]
    for p in points:
        assert p.knob is not None
        dear = choose(predicted, outcomes, "lambda", p.knob).sum()
        assert (dear / 6, dear / 6) == (p.cost, p.quality)


def test_a_pricier_model_within_the_absolute_tie_tolerance_below_one_is_never_chosen() -> None:
    # choose's tolerance is 1e-12 x max(1, |top|): 0.8e-12 ahead of 0.5 is a tie, though
    # more than 1e-12 x 0.5
    scores = np.array([[1.0, 0.0]])
    tied = np.array([[0.5, 0.5 + 0.8e-12]])
    assert choose(tied, [1.0, 2.0], "lambda", 0.0).tolist() == [0]
    assert sweep(tied, scores, [1.0, 2.0], knobs="exact") == [OperatingPoint(1.0, 1.0, 0.0)]
