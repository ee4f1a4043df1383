"""The decision rule's cost order, cost scale and tie tolerance at their edges, and the
exact sweep reading them as ``choose`` does: cases a mutation sweep of decision.py and
exact_sweep.py found unchecked. Every expected value worked out by hand."""

from __future__ import annotations

import numpy as np

from routerllm.eval.routing_metrics import OperatingPoint, sweep
from routerllm.routers.decision import cheapness_rank, choose, normalised_costs


def test_equal_costs_on_a_prompt_go_by_the_models_mean_cost_then_their_index() -> None:
    # model 0 costs 3 on prompt 1, model 1 costs 1: means 2 and 1. On prompt 0 they cost
    # 1 each: model 1, whose mean is lower, is the cheaper one there, though its index
    # is higher. With a third prompt costing 2 and 4 the means are equal (6 / 3 each):
    # on prompt 0 the lower index, model 0, is then the cheaper.
    costs = np.array([[1.0, 1.0], [3.0, 1.0]])
    assert cheapness_rank(costs).tolist() == [[1, 0], [1, 0]]
    assert cheapness_rank(np.array([[1.0, 1.0], [3.0, 1.0], [2.0, 4.0]])).tolist() == [
        [0, 1],  # means 2 and 2: the index decides
        [1, 0],
        [0, 1],
    ]
    # equal predictions on prompt 0: a tie, which the cheaper (model 1) wins, by either rule
    predicted = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert choose(predicted, costs, "lambda", 0.0).tolist() == [1, 1]
    assert choose(predicted, costs, "threshold", 0.2).tolist() == [1, 1]


def test_costs_are_scaled_by_the_highest_mean_model_cost_not_the_highest_cost() -> None:
    # per-prompt costs [[1, 2], [1, 6]]: means 1 and 4, so d' = costs / 4 (the highest
    # single cost, 6, is not the scale)
    costs = np.array([[1.0, 2.0], [1.0, 6.0]])
    assert normalised_costs(costs).tolist() == [[0.25, 0.5], [0.25, 1.5]]
    # prompt 0, predicted (0, 1): at lambda 5 utilities 0 - 5 x 0.25 = -1.25 and
    # 1 - 5 x 0.5 = -1.5: the cheap model (costs / 6 would give -0.83 and -0.67: dear)
    predicted = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert choose(predicted, costs, "lambda", 5.0).tolist()[0] == 0


def test_costs_all_zero_leave_lambda_to_the_predictions() -> None:
    # no cost to weigh (every cost 0): whatever lambda, the better predicted model
    predicted = np.array([[0.2, 0.9]])
    assert choose(predicted, [0.0, 0.0], "lambda", 1.0).tolist() == [1]
    scores = np.array([[0.0, 1.0]])
    assert sweep(predicted, scores, [0.0, 0.0], knobs="exact") == [OperatingPoint(0.0, 1.0, 0.0)]


def test_the_tie_tolerance_above_one_is_relative() -> None:
    # predictions 1000 and 1000 + 5e-10: 5e-10 is within 1e-12 x 1000 = 1e-9, a tie the
    # cheaper model wins, by either rule, above every threshold too
    predicted = np.array([[1000.0, 1000.0 + 5e-10]])
    assert choose(predicted, [1.0, 2.0], "lambda", 0.0).tolist() == [0]
    assert choose(predicted, [1.0, 2.0], "threshold", 2000.0).tolist() == [0]
    assert choose(np.array([[1000.0, 1000.0 + 2e-9]]), [1.0, 2.0], "lambda", 0.0).tolist() == [1]


def test_a_pricier_model_exactly_the_tolerance_ahead_never_switches_in_the_exact_sweep() -> None:
    # dear predicted 1e-12 above cheap's 0: choose reads 0 >= 1e-12 - 1e-12 x 1 as a tie
    # at every lambda (the gap only shrinks as lambda grows), so the sweep has one point,
    # cheap on the prompt, and no switch at lambda = 1e-12 / 0.5
    predicted, scores = np.array([[0.0, 1e-12]]), np.array([[1.0, 0.0]])
    assert choose(predicted, [1.0, 2.0], "lambda", 0.0).tolist() == [0]
    assert sweep(predicted, scores, [1.0, 2.0], knobs="exact") == [OperatingPoint(1.0, 1.0, 0.0)]


def test_a_huge_knob_does_not_tie_equal_cost_models_predicted_apart() -> None:
    # Equal costs: the knob x cost term is the same for both, so at any knob the one
    # predicted better (0.9, model 1) has the higher utility. The tolerance was
    # 1e-12 x |top utility| ~ 1e-12 x 1e13 = 10 at knob 1e13, which read 0.9 and 0.5
    # as tied and gave the prompt to model 0 (the cheaper by index).
    predicted = np.array([[0.5, 0.9], [0.5, 0.5 + 1e-9]])
    for knob in (0.0, 1.0, 1e9, 1e13):
        assert choose(predicted, [1.0, 1.0], "lambda", knob).tolist() == [1, 1], knob
    # nearly equal costs (4 ulps apart): at 1e13 the cost term differs by 1e13 x 8.9e-16,
    # less than the 0.4 the predictions differ by, so model 1 is still the better
    dear = float(np.nextafter(np.nextafter(1.0, 2.0), 2.0))
    dear = float(np.nextafter(np.nextafter(dear, 2.0), 2.0))
    assert choose(predicted[:1], [1.0, dear], "lambda", 1e13).tolist() == [1]
    # and by more than it: the cheaper model, as the utilities say
    assert choose(predicted[:1], [1.0, 1.0 + 1e-13], "lambda", 1e13).tolist() == [0]


def test_a_tie_within_the_rounding_of_the_utilities_still_goes_to_the_cheaper_model() -> None:
    # p = 0.5 and 0.75 at a knob where their utilities are equal but for rounding: the
    # knob is 0.25 over the two normalised costs' difference, ~2.5e-14, so ~1e13
    costs = [1.0, 1.0 + 2.5e-14]
    d = normalised_costs(np.array([costs]))[0]
    knob = 0.25 / (d[1] - d[0])
    assert 9e12 < knob < 1.1e13
    predicted = np.array([[0.5, 0.75]])
    assert choose(predicted, costs, "lambda", knob).tolist() == [0]
    # a little below it the dearer model's 0.25 lead wins, a little above the cheaper
    assert choose(predicted, costs, "lambda", knob * (1 - 1e-9)).tolist() == [1]
    assert choose(predicted, costs, "lambda", knob * (1 + 1e-9)).tolist() == [0]
    # three collinear models (d = 0.25, 0.5, 1) at their common breakpoint 0.8: utilities
    # -0.1 each, but for rounding; the cheapest wins
    three = np.array([[0.1, 0.3, 0.7]])
    assert choose(three, [1.0, 2.0, 4.0], "lambda", 0.8).tolist() == [0]
