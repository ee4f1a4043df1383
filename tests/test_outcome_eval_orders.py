"""``evaluate_routing`` and ``compare_routers`` keeping the data's model order and the
evaluation's decision rule: cases a mutation sweep of outcome_eval.py found unchecked."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.data.outcomes import OutcomeDataset
from routerllm.eval.outcome_eval import RoutingEvaluation, compare_routers, evaluate_routing
from routerllm.eval.routing_metrics import routing_report, sweep


def test_a_data_file_listing_the_dear_model_first_keeps_each_prediction_with_its_model() -> None:
    """Columns "dear" (cost 5, right on every prompt) then "cheap" (cost 1, wrong on
    every one). The router keeps its models smallest first (cheap, dear), so its
    predictions come back in the data's order: at lambda 0 dear on every prompt, quality
    1 at cost 5. Read in the router's order the predictions would swap, and the router
    would send every prompt to cheap: quality 0 only."""

    def data(n: int, offset: int) -> OutcomeDataset:
        prompts = [f"prompt {offset + i}" for i in range(n)]
        return OutcomeDataset(prompts, ["dear", "cheap"], np.tile([1.0, 0.0], (n, 1)),
                              np.tile([5.0, 1.0], (n, 1)))  # fmt: skip

    x = np.random.default_rng(0).normal(size=(12, 3)), np.random.default_rng(1).normal(size=(4, 3))
    ev = evaluate_routing(data(12, 0), data(4, 100), ["knn"], embeddings=x)
    assert {(p.cost, p.quality) for p in ev.curves["knn"]} == {(5.0, 1.0), (1.0, 0.0)}
    assert ev.predicted["knn"][:, 0].min() > ev.predicted["knn"][:, 1].max()


def test_the_bootstrap_sweeps_by_the_evaluations_rule() -> None:
    """Two prompts, small (cost 1) and big (cost 5). ``ranker`` predicts A (0.9, 1.0) and
    B (0.5, 0.55): as lambda rises B, with the smaller gap, goes to small first; as a
    threshold falls A, with the higher small prediction, does. Small is wrong on A and
    right on B, big right on both: lambda's middle point (A big, B small) has quality 1
    at cost 3, the threshold's (A small, B big) 0.5 at cost 3, so a resample drawing both
    prompts has an AIQ that depends on the rule: compare_routers must sweep by the
    evaluation's (threshold), as this recomputation does."""
    scores = np.array([[0.0, 1.0], [1.0, 1.0]])
    costs = np.tile([1.0, 5.0], (2, 1))
    decision = np.array([1.0, 5.0])
    predicted = {
        "ranker": np.array([[0.9, 1.0], [0.5, 0.55]]),
        "never": np.tile([1.0, 0.0], (2, 1)),
    }
    curves = {n: sweep(p, scores, costs, mode="threshold", decision_costs=decision)
              for n, p in predicted.items()}  # fmt: skip
    report = routing_report(curves, scores, costs, model_names=["small", "big"])
    ev = RoutingEvaluation(report, curves, 10, 2, 0, "call", ["small", "big"], scores, costs,
                           decision, predicted=predicted, mode="threshold")  # fmt: skip
    # seed 1's one resample draws A and B (indices 0, 1): the prompts themselves
    out = compare_routers(ev, resamples=1, seed=1)["against"]["never"]
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(1):
        idx = rng.integers(0, 2, 2)
        rows = routing_report(
            {n: sweep(p[idx], scores[idx], costs[idx], mode="threshold", decision_costs=decision)
             for n, p in predicted.items()},
            scores[idx], costs[idx],
        )["rows"]  # fmt: skip
        diffs.append(rows["ranker"]["aiq"] - rows["never"]["aiq"])
    assert out["aiq_diff_90ci"] == pytest.approx(np.percentile(diffs, [5, 95]).tolist())
    assert out["aiq_diff_90ci"] == pytest.approx([out["aiq_diff"]] * 2)
    # and the rule matters here: by lambda the resamples drawing both prompts differ
    lam = {n: sweep(p, scores, costs, decision_costs=decision) for n, p in predicted.items()}
    assert {(p.cost, p.quality) for p in lam["ranker"]} == {(5.0, 1.0), (3.0, 1.0), (1.0, 0.5)}
    assert {(p.cost, p.quality) for p in curves["ranker"]} == {(5.0, 1.0), (3.0, 0.5), (1.0, 0.5)}


def test_the_bootstrap_decides_by_the_training_means_not_the_test_costs() -> None:
    """One test prompt (every resample draws it) on which "a" is right and "b" wrong,
    but "a" costs 5 and "b" 1, while by the training means "a" (1) is the cheaper.
    Deciding by those means, every lambda sweep ends at "a" for a high enough lambda
    (the cheaper model), so both routers reach (5, 1): joined with the cheapest model's
    point (1, 0), AIQ (1/2 x 4) / 4 = 0.5 each, a difference of 0. Deciding by the test
    costs instead, ``tie`` (0.5, 0.5) gives its tie to "b" at every lambda, (1, 0),
    AIQ 0, while ``a_first`` (0.9, 0.1) takes "a" at lambda 0: AIQ 0.5, a difference
    of -0.5 in every resample."""
    scores, costs = np.array([[1.0, 0.0]]), np.array([[5.0, 1.0]])
    decision = np.array([1.0, 5.0])
    predicted = {"tie": np.array([[0.5, 0.5]]), "a_first": np.array([[0.9, 0.1]])}
    curves = {n: sweep(p, scores, costs, decision_costs=decision) for n, p in predicted.items()}
    report = routing_report(curves, scores, costs, model_names=["a", "b"])
    assert [report["rows"][n]["aiq"] for n in predicted] == [0.5, 0.5]
    ev = RoutingEvaluation(report, curves, 10, 1, 0, "call", ["a", "b"], scores, costs,
                           decision, predicted=predicted)  # fmt: skip
    out = compare_routers(ev, resamples=5, seed=0)["against"]["a_first"]
    assert out["aiq_diff"] == 0.0
    assert out["aiq_diff_90ci"] == [0.0, 0.0]
    assert out["share_aiq_higher"] == 0.0
