"""``compare_routers``'s resamples by hand where a mutation sweep of the paired bootstrap
found them unchecked: each resample's costs drawn with its prompts, the evaluation's own
knob set, and the largest number of resamples allowed."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval import outcome_eval
from routerllm.eval.outcome_eval import RoutingEvaluation, compare_routers
from routerllm.eval.routing_metrics import routing_report, sweep

#: Prompt A: small (cost 1) wrong, big right; prompt B: both right.
SCORES = np.array([[0.0, 1.0], [1.0, 1.0]])


def _evaluation(
    predicted: dict[str, np.ndarray],
    costs: np.ndarray,
    mode: str = "lambda",
    knobs: str | None = None,
) -> RoutingEvaluation:
    decision = np.array([1.0, 5.0])
    curves = {n: sweep(p, SCORES, costs, mode=mode, knobs=knobs, decision_costs=decision)  # type: ignore[arg-type]
              for n, p in predicted.items()}  # fmt: skip
    report = routing_report(curves, SCORES, costs, model_names=["small", "big"])
    return RoutingEvaluation(report, curves, 10, 2, 0, "call", ["small", "big"], SCORES, costs,
                             decision, predicted=predicted, mode=mode, knobs=knobs)  # fmt: skip


def test_each_resample_draws_the_costs_of_the_prompts_it_draws() -> None:
    """Big costs 5 on A and 13 on B. ``good`` predicts the scores (A to big, B to small
    at a middle lambda), ``never`` always prefers small. Seed 2's one resample draws
    (B, A): the test set itself. good's curve (1, 0.5) -> (3, 1) (A on big: (5 + 1) / 2)
    -> (9, 1): AIQ over [1, 9] = (2 x 0.75 + 6) / 8 = 0.9375; never stays at (1, 0.5):
    0.5, a difference of 0.4375. Costs left in the test set's order (A, B) beside the
    drawn scores (B, A) would put A's answer at B's big cost 13: (7, 1), AIQ 0.8125."""
    assert np.random.default_rng(2).integers(0, 2, 2).tolist() == [1, 0]
    costs = np.array([[1.0, 5.0], [1.0, 13.0]])
    ev = _evaluation({"good": SCORES.copy(), "never": np.tile([1.0, 0.0], (2, 1))}, costs)
    assert ev.report["rows"]["good"]["aiq"] == pytest.approx(0.9375)
    out = compare_routers(ev, resamples=1, seed=2)["against"]["never"]
    assert out["aiq_diff"] == pytest.approx(0.4375)
    assert out["aiq_diff_90ci"] == pytest.approx([0.4375, 0.4375])


def test_the_bootstrap_sweeps_the_evaluations_knob_set() -> None:
    """By threshold, ``ranker`` predicts small 0.9001 on A and 0.9002 on B (big 1 on
    both): a threshold in (0.9001, 0.9002] keeps B on small and sends A to big, quality
    1 at cost 3. The grid's thresholds step 0.005 over it (0.900: both on small, 0.905:
    both on big), so an evaluation asked for ``knobs="grid"`` has AIQ (0.5 + 1) / 2 =
    0.75 against never's 0.5, and so must seed 1's resample of the test set itself;
    the exact sweep would add (3, 1): AIQ 0.875, a difference of 0.375."""
    assert sorted(np.random.default_rng(1).integers(0, 2, 2).tolist()) == [0, 1]
    predicted = {"ranker": np.array([[0.9001, 1.0], [0.9002, 1.0]]),
                 "never": np.tile([1.0, 0.0], (2, 1))}  # fmt: skip
    ev = _evaluation(predicted, np.tile([1.0, 5.0], (2, 1)), mode="threshold", knobs="grid")
    out = compare_routers(ev, resamples=1, seed=1)["against"]["never"]
    assert out["aiq_diff"] == pytest.approx(0.25)
    assert out["aiq_diff_90ci"] == pytest.approx([0.25, 0.25])
    exact = _evaluation(predicted, np.tile([1.0, 5.0], (2, 1)), mode="threshold")
    assert compare_routers(exact, resamples=1, seed=1)["against"]["never"]["aiq_diff_90ci"] == (
        pytest.approx([0.375, 0.375])
    )


def test_the_largest_number_of_resamples_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``resamples`` may be MAX_RESAMPLES itself (the CLI's --bootstrap allows it too);
    lowered to 3 here so that the check is quick."""
    monkeypatch.setattr(outcome_eval, "MAX_RESAMPLES", 3)
    ev = _evaluation({"good": SCORES.copy(), "never": np.tile([1.0, 0.0], (2, 1))},
                     np.tile([1.0, 5.0], (2, 1)))  # fmt: skip
    assert compare_routers(ev, resamples=3)["resamples"] == 3
    with pytest.raises(outcome_eval.RouterLLMError, match="from 1 to 3, got 4"):
        compare_routers(ev, resamples=4)


def test_cheaper_to_best_accuracy_is_to_the_best_models_accuracy_not_95_percent() -> None:
    """40 prompts, small (cost 1) wrong on the first 20, big (cost 5) right on all.
    ``almost`` predicts the scores but takes prompt 0 for one small solves: it sends 19 of
    the 20 to big, quality 39/40 at cost 2.9, and reaches big's accuracy 1 only in a
    resample that does not draw prompt 0 (then at less than 5). ``big`` always prefers
    big: it reaches 1 at cost 5 in every resample. So almost is cheaper to the best
    accuracy exactly in the resamples without prompt 0, though cheaper to 95 % of it
    in nearly all (at 2.9 and less against big's 4.6 and more)."""
    scores = np.array([[0.0, 1.0]] * 20 + [[1.0, 1.0]] * 20)
    almost = scores.copy()
    almost[0] = [1.0, 1.0]
    costs = np.tile([1.0, 5.0], (40, 1))
    predicted = {"almost": almost, "big": np.tile([0.0, 1.0], (40, 1))}
    curves = {n: sweep(p, scores, costs, decision_costs=[1.0, 5.0]) for n, p in predicted.items()}
    report = routing_report(curves, scores, costs, model_names=["small", "big"])
    ev = RoutingEvaluation(report, curves, 10, 40, 0, "call", ["small", "big"], scores, costs,
                           np.array([1.0, 5.0]), predicted=predicted)  # fmt: skip
    out = compare_routers(ev, resamples=50, seed=4)["against"]["big"]
    rng = np.random.default_rng(4)
    without_0 = np.array([(rng.integers(0, 40, 40) != 0).all() for _ in range(50)])
    assert out["share_best_accuracy_cheaper"] == pytest.approx(without_0.mean())
    assert 0.2 < without_0.mean() < 0.6  # (39/40)^40 = 0.36 expected
