"""``evaluate_routing``/``split_dataset``/``compare_routers``: arguments checked before any
work, and the paired bootstrap of routers on hand-made outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.data.outcomes import OutcomeDataset, overlap
from routerllm.eval.outcome_eval import (
    RoutingEvaluation,
    compare_routers,
    evaluate_routing,
    split_dataset,
)
from routerllm.eval.routing_metrics import routing_report, sweep
from routerllm.exceptions import RouterLLMError


def outcomes(n: int, offset: int = 0) -> OutcomeDataset:
    rng = np.random.default_rng(offset)
    scores = (rng.random((n, 2)) > 0.5).astype(float)
    prompts = [f"prompt {offset + i}" for i in range(n)]
    return OutcomeDataset(prompts, ["small", "big"], scores, np.tile([1.0, 5.0], (n, 1)))


def test_a_router_list_with_its_options_is_evaluated() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    ev = evaluate_routing(outcomes(30), outcomes(10, 100), routers=["knn"], embeddings=x,
                          router_options={"knn": {"k": 3}}, seed=np.int64(1))  # fmt: skip
    assert ev.train_size == 30 and ev.test_size == 10 and list(ev.curves) == ["knn"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"routers": "knn"}, "routers must be a list of strings, not a single string"),
        ({"routers": [5]}, r"routers\[0\] is int"),
        ({"test_fraction": "0.2"}, "test fraction must be between 0 and 1, got '0.2'"),
        ({"test_fraction": float("nan")}, "test fraction must be between 0 and 1"),
        ({"seed": -1}, "seed must be an integer"),
        ({"seed": "a"}, "seed must be an integer"),
        ({"router_options": [1]}, "router_options must map router names"),
        ({"router_options": {"knn": 5}}, "router_options must map router names"),
        ({"router_options": {"logreg": {"C": 1}}}, "router_options for 'logreg', which is not"),
        ({"data": None}, "outcome file must be a str or a Path"),
        (
            {"mode": "threshold", "knobs": "fine"},
            "knobs='fine': the named knob sets are 'exact' and 'grid' \\(either mode\\)",
        ),
        ({"knobs": "all"}, "knobs='all'"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"data": outcomes(30), "routers": ["knn"], "encoder": "no-such-encoder"}
    # the encoder is never built: the arguments are refused first
    with pytest.raises(RouterLLMError, match=match):
        evaluate_routing(**{**args, **kwargs})


def test_the_exact_sweep_is_what_an_evaluation_asked_for_keeps() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    ev = evaluate_routing(outcomes(30), outcomes(10, 100), ["knn", "logreg"], embeddings=x,
                          knobs="exact")  # fmt: skip
    assert ev.knobs == "exact"
    for name, p in ev.predicted.items():
        exact = sweep(p, ev.test_scores, ev.test_costs, knobs="exact", decision_costs=[1.0, 5.0])
        assert ev.curves[name] == exact


def test_split_dataset_checks_its_arguments() -> None:
    train, test = split_dataset(outcomes(10), 0.2, np.int64(3))
    assert (len(train), len(test)) == (8, 2)
    for data, fraction, seed, match in (
        (outcomes(10), 0.2, "x", "seed must be an integer"),
        (outcomes(10), None, 0, "test fraction must be between 0 and 1"),
        (None, 0.2, 0, "splits an OutcomeDataset"),
        (outcomes(1), 0.2, 0, "leaves nothing to test on with 1 prompt$"),  # not "1 prompts"
        (outcomes(2), 0.9, 0, "leaves nothing to train on with 2 prompts$"),
    ):
        with pytest.raises(RouterLLMError, match=match):
            split_dataset(data, fraction, seed)  # type: ignore[arg-type]


def _signal_data(n: int, offset: int) -> tuple[OutcomeDataset, np.ndarray]:
    """The cheap model solves exactly the prompts whose first feature is positive, the
    expensive one every prompt: a router that reads that feature is perfect."""
    x = np.random.default_rng(offset).normal(size=(n, 3))
    scores = np.column_stack([x[:, 0] > 0, np.ones(n)]).astype(float)
    prompts = [f"prompt {offset + i}" for i in range(n)]
    return OutcomeDataset(prompts, ["small", "big"], scores, np.tile([1.0, 5.0], (n, 1))), x


def test_a_router_that_reads_the_signal_beats_one_that_cannot_in_every_resample() -> None:
    (train, x_train), (test, x_test) = _signal_data(200, 0), _signal_data(80, 1000)
    ev = evaluate_routing(train, test, ["logreg", "knn"], embeddings=(x_train, x_test))
    # kNN on the other two features only: blind to the signal
    ev_blind = evaluate_routing(train, test, ["knn"], embeddings=(x_train[:, 1:], x_test[:, 1:]))
    ev.predicted["blind"] = ev_blind.predicted["knn"]
    ev.report["rows"]["blind"] = ev_blind.report["rows"]["knn"]
    out = compare_routers(ev, resamples=50, seed=3)
    assert out["reference"] == "logreg" and out["resamples"] == 50
    assert list(out["against"]) == ["knn", "blind"]
    b = out["against"]["blind"]
    assert b["aiq_diff"] == pytest.approx(
        ev.report["rows"]["logreg"]["aiq"] - ev_blind.report["rows"]["knn"]["aiq"]
    )
    lo, hi = b["aiq_diff_90ci"]
    assert 0 < lo <= b["aiq_diff"] <= hi
    assert b["share_aiq_higher"] == 1.0 and b["share_best_accuracy_cheaper"] == 1.0
    # the same seed gives the same resamples; the reference can be any evaluated router
    assert compare_routers(ev, resamples=50, seed=3) == out
    flipped = compare_routers(ev, resamples=50, seed=3, reference="blind")["against"]["logreg"]
    assert flipped["aiq_diff_90ci"] == pytest.approx([-hi, -lo])
    assert flipped["share_aiq_higher"] == 0.0


def test_precomputed_embeddings_follow_the_test_prompts_that_are_kept() -> None:
    """Test prompts also in the training data are removed, and so are their rows of
    precomputed embeddings (they raised 'predicted must have the shape of scores')."""
    (train, x_train), (test, x_test) = _signal_data(60, 0), _signal_data(30, 1000)
    # Its first 5 prompts are training prompts, as 119 of LLMRouter's test file are.
    shared = OutcomeDataset(
        train.prompts[:5] + test.prompts[5:], test.models, test.scores, test.costs
    )
    ev = evaluate_routing(train, shared, ["knn"], embeddings=(x_train, x_test))
    rest = evaluate_routing(
        train, test.subset(list(range(5, 30))), ["knn"], embeddings=(x_train, x_test[5:])
    )
    assert (ev.test_size, ev.removed_overlap) == (25, 5)
    np.testing.assert_array_equal(ev.predicted["knn"], rest.predicted["knn"])
    assert ev.report == rest.report
    with pytest.raises(RouterLLMError, match="29 test rows for 30 test prompts"):
        evaluate_routing(train, test, ["knn"], embeddings=(x_train, x_test[1:]))
    with pytest.raises(RouterLLMError, match="give a test set with them"):
        evaluate_routing(train, None, ["knn"], embeddings=(x_train, x_test))


def test_a_router_against_itself_differs_by_nothing() -> None:
    (train, x_train), (test, x_test) = _signal_data(60, 0), _signal_data(30, 1000)
    ev = evaluate_routing(train, test, ["knn"], embeddings=(x_train, x_test))
    ev.predicted["copy"] = ev.predicted["knn"]
    ev.report["rows"]["copy"] = ev.report["rows"]["knn"]
    c = compare_routers(ev, resamples=20)["against"]["copy"]
    assert c["aiq_diff"] == 0 and c["aiq_diff_90ci"] == [0, 0]
    assert c["share_aiq_higher"] == 0 and c["share_best_accuracy_cheaper"] == 0


def test_compare_routers_checks_its_arguments() -> None:
    (train, x_train), (test, x_test) = _signal_data(40, 0), _signal_data(20, 1000)
    one = evaluate_routing(train, test, ["knn"], embeddings=(x_train, x_test))
    with pytest.raises(RouterLLMError, match="at least two evaluated routers"):
        compare_routers(one)
    two = evaluate_routing(train, test, ["knn", "logreg"], embeddings=(x_train, x_test))
    for kwargs, match in (
        ({"reference": "quality"}, "reference 'quality' was not evaluated; evaluated: knn, logreg"),
        ({"resamples": 0}, "resamples must be a whole number from 1 to 10,000, got 0"),
        ({"resamples": 10_001}, "resamples must be a whole number from 1 to 10,000"),
        ({"resamples": True}, "resamples must be a whole number"),
        ({"seed": -1}, "seed must be an integer"),
    ):
        with pytest.raises(RouterLLMError, match=match):
            compare_routers(two, **kwargs)


def test_a_test_file_without_its_own_models_json_takes_the_training_datas_sizes(
    tmp_path: Path,
) -> None:
    def write(path: Path, offset: int) -> Path:
        items = [{"question": f"prompt {offset + i}", "scores": {"small": i % 2, "big": 1}}
                 for i in range(12)]  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(items), encoding="utf-8")
        return path

    train = write(tmp_path / "shared" / "train.json", 0)
    (tmp_path / "shared" / "models.json").write_text(
        json.dumps({"small": {"size": "1B"}, "big": {"size": "70B"}})
    )
    test = write(tmp_path / "mine" / "test.json", 100)  # no models.json beside it
    ev = evaluate_routing(train, test, ["knn"], encoder="hashing")
    assert ev.cost_kind == "size"
    assert dict(zip(ev.models, ev.test_costs[0].tolist(), strict=True)) == {"small": 1, "big": 70}


def test_a_test_set_whose_model_names_differ_in_case_or_spaces_says_which() -> None:
    train, test = outcomes(20), outcomes(10, 100)
    test = OutcomeDataset(test.prompts, ["Small ", "big"], test.scores, test.costs)
    with pytest.raises(
        RouterLLMError,
        match=r"has no scores for small, .*; it names 'Small ' for 'small': rename to match",
    ):
        evaluate_routing(train, test, ["knn"], encoder="no-such-encoder")


def _curve_q(points: list[tuple[float, float]], c: float) -> float:
    """The best quality a random mix of two of ``points`` reaches at mean cost at most
    ``c``, by brute force (nan below the cheapest point)."""
    best = max((q for x, q in points if x <= c), default=float("nan"))
    for xa, qa in points:
        for xb, qb in points:
            if xa <= c < xb:
                best = max(best, qa + (qb - qa) * (c - xa) / (xb - xa))
    return best


def _own_report(
    predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, decide: np.ndarray
) -> dict[str, Any]:
    """The lambda sweep, reference rows and metrics, recomputed from their definitions."""
    n, m = scores.shape
    mean_c, mean_q = costs.mean(0), scores.mean(0)
    cheapest = min(range(m), key=lambda j: (mean_c[j], -mean_q[j], j))
    top = mean_q.max()
    best = min((j for j in range(m) if mean_q[j] >= top - 1e-12),
               key=lambda j: (mean_c[j], -mean_q[j], j))  # fmt: skip
    oracle = [min(range(m), key=lambda j: (-scores[i, j], costs[i, j], mean_c[j], j)) for i in range(n)]  # fmt: skip
    norm = decide / decide.max() if decide.max() > 0 else decide
    points = []
    for lam in [0.0, *np.geomspace(1e-4, 1e4, 400)]:
        pick = [min(range(m), key=lambda j: (-(predicted[i, j] - lam * norm[j]), decide[j], j)) for i in range(n)]  # fmt: skip
        points.append((float(np.mean([costs[i, j] for i, j in enumerate(pick)])),
                       float(np.mean([scores[i, j] for i, j in enumerate(pick)]))))  # fmt: skip
    weak, strong = (mean_c[cheapest], mean_q[cheapest]), (mean_c[best], mean_q[best])
    pts = sorted({*points, weak})  # the few distinct points: the brute force stays fast
    lo, hi = mean_c.min(), mean_c.max()
    grid = np.linspace(lo, hi, 2001)
    aiq = float(np.mean([_curve_q(pts, c) for c in grid])) if hi > lo else _curve_q(pts, lo)
    own: dict[str, Any] = {"aiq": aiq, "max_accuracy": max(q for _, q in points)}
    gap = (strong[0] - weak[0], strong[1] - weak[1])
    if gap[0] > 0 and gap[1] > 0:
        # the curve is linear between the points' costs: the trapezoid rule on them is exact
        knots = sorted({weak[0], strong[0], *(x for x, _ in pts if weak[0] < x < strong[0])})
        pgr = [(_curve_q(pts, c) - weak[1]) / gap[1] for c in knots]
        own["apgr"] = float(np.trapezoid(pgr, knots)) / gap[0]
    else:
        own["apgr"] = None
    return {"row": own, "cheapest": cheapest, "best": best,
            "oracle": (np.mean(costs[range(n), oracle]), np.mean(scores[range(n), oracle]))}  # fmt: skip


@pytest.mark.parametrize(
    "case", ["random", "ties", "one model", "all zero", "equal costs", "zero costs"]
)
def test_eval_routing_figures_match_a_recomputation_from_their_definitions(case: str) -> None:
    """The report of ``evaluate_routing`` on small random outcome sets against an
    independent brute-force recomputation (the sweep's points, the references, AIQ,
    APGR, max accuracy) with ties in scores and costs and the degenerate cases."""
    rng = np.random.default_rng(len(case))
    m = 1 if case == "one model" else 3
    n_train, n_test = 24, 15
    scores = (rng.random((n_train + n_test, m)) < np.linspace(0.3, 0.8, m)).astype(float)
    costs = np.round(rng.random((n_train + n_test, m)) * 3, 1) + np.arange(m)
    if case == "ties":
        scores[:, -1] = scores[:, 0]
        costs[:, 1] = costs[:, 0]
    if case == "all zero":
        scores[:] = 0.0
    if case == "equal costs":
        costs[:] = 2.0
    if case == "zero costs":
        costs[:] = 0.0
    names = [f"m{j}" for j in range(m)]
    data = [
        OutcomeDataset([f"prompt {i}" for i in part], names, scores[part], costs[part])
        for part in (np.arange(n_train), np.arange(n_train, n_train + n_test))
    ]
    x = rng.normal(size=(n_train, 4)), rng.normal(size=(n_test, 4))
    ev = evaluate_routing(data[0], data[1], routers=["knn"], embeddings=x, cost="call")
    test_s, test_c = scores[n_train:], costs[n_train:]
    # the decisions use the training data's mean costs: give my sweep those, score on test's
    own = _own_report(ev.predicted["knn"], test_s, test_c, costs[:n_train].mean(0))
    report = ev.as_dict()
    assert report["cheapest"]["name"] == names[own["cheapest"]]
    assert report["best_single"]["name"] == names[own["best"]]
    assert report["oracle"]["cost"] == pytest.approx(own["oracle"][0])
    assert report["oracle"]["quality"] == pytest.approx(own["oracle"][1])
    row = report["routers"]["knn"]
    assert row["max_accuracy"] == pytest.approx(own["row"]["max_accuracy"])
    assert row["aiq"] == pytest.approx(own["row"]["aiq"], abs=2e-3)
    if own["row"]["apgr"] is None:
        assert row["apgr"] is None
    else:
        assert row["apgr"] == pytest.approx(own["row"]["apgr"], abs=1e-6)
    json.dumps(report, allow_nan=False)  # what --json prints: no NaN


def test_routers_decide_by_the_training_datas_mean_costs() -> None:
    """Model a costs 1 a call in training and 3 on the test prompts, b the reverse.
    Both solve every prompt, so the router predicts 1 for each everywhere and every
    lambda ties (or favours) the one cheaper by what it knows: a, at the test's cost 3
    (deciding by the test's costs, known only after the calls, would pick b at 1)."""

    def data(n: int, offset: int, costs: list[float]) -> OutcomeDataset:
        prompts = [f"prompt {offset + i}" for i in range(n)]
        return OutcomeDataset(prompts, ["a", "b"], np.ones((n, 2)), np.tile(costs, (n, 1)))

    x = np.random.default_rng(0).normal(size=(12, 3)), np.random.default_rng(1).normal(size=(4, 3))
    ev = evaluate_routing(data(12, 0, [1.0, 3.0]), data(4, 100, [3.0, 1.0]), ["knn"], embeddings=x)
    assert ev.decision_costs.tolist() == [1.0, 3.0]
    assert {(p.cost, p.quality) for p in ev.curves["knn"]} == {(3.0, 1.0)}


def _two_routers_on_ten_prompts() -> RoutingEvaluation:
    """10 test prompts: on 8 both models (small, cost 1; big, cost 5) are right, on the
    last 2 only big. ``good`` predicts the scores, ``never`` always prefers small."""
    scores = np.array([[1.0, 1.0]] * 8 + [[0.0, 1.0]] * 2)
    costs = np.tile([1.0, 5.0], (10, 1))
    predicted = {"good": scores.copy(), "never": np.tile([1.0, 0.0], (10, 1))}
    curves = {n: sweep(p, scores, costs, decision_costs=[1.0, 5.0]) for n, p in predicted.items()}
    report = routing_report(curves, scores, costs, model_names=["small", "big"])
    return RoutingEvaluation(report, curves, 10, 10, 0, "call", ["small", "big"], scores, costs,
                             np.array([1.0, 5.0]), predicted=predicted)  # fmt: skip


def test_the_bootstrap_of_two_routers_by_hand() -> None:
    """In a resample drawing k of the 2 big-only prompts (f = k/10): small scores 1 - f,
    big 1. ``good`` sends exactly those k to big: its curve is (1, 1-f) -> (1 + 4f, 1),
    flat after; AIQ over [1, 5] = (4f (1 - f/2) + (4 - 4f)) / 4 = 1 - f^2/2. ``never``
    stays at (1, 1-f): AIQ 1 - f. So the AIQ difference is f - f^2/2 (0.18 at f = 0.2,
    the test set itself), and where f > 0 good reaches big's accuracy at (1 + 4f)/5 of
    its cost and never does not (an infinite cost): good is cheaper. Where f = 0 both
    score 1 at small's cost: a tie, neither higher nor cheaper."""
    ev = _two_routers_on_ten_prompts()
    out = compare_routers(ev, resamples=400, seed=5)["against"]["never"]
    assert out["aiq_diff"] == pytest.approx(0.2 - 0.2**2 / 2)
    rng = np.random.default_rng(5)
    f = np.array([(rng.integers(0, 10, 10) >= 8).sum() / 10 for _ in range(400)])
    diffs = f - f**2 / 2
    # the 90 % interval: the 5th and 95th percentiles; here the 95th is k = 4's 0.32 and
    # the 97.5th k = 5's 0.375, so a 95 % interval would differ
    assert out["aiq_diff_90ci"] == pytest.approx(np.percentile(diffs, [5, 95]).tolist())
    assert out["aiq_diff_90ci"] != pytest.approx(np.percentile(diffs, [2.5, 97.5]).tolist())
    assert out["share_aiq_higher"] == pytest.approx((f > 0).mean())
    assert out["share_best_accuracy_cheaper"] == pytest.approx((f > 0).mean())
    assert 0.8 < (f > 0).mean() < 0.95  # 1 - 0.8^10 = 0.89 expected


def _repeated_samples(questions: int, samples: int) -> OutcomeDataset:
    """Each question sampled ``samples`` times (its copies differ in case and spaces),
    with scores that differ between samples: outcome data as a sampling run writes it."""
    rng = np.random.default_rng(7)
    n = questions * samples
    prompts = [(f"Question {i % questions}" if i % 2 else f" question  {i % questions}")
               for i in range(n)]  # fmt: skip
    scores = (rng.random((n, 2)) > 0.5).astype(float)
    return OutcomeDataset(prompts, ["small", "big"], scores, np.tile([1.0, 5.0], (n, 1)))


def test_split_dataset_keeps_every_copy_of_a_question_on_one_side() -> None:
    """A question sampled several times is held out whole: split by position, 10
    questions x 6 samples put copies on both sides, and eval-routing then removed every
    test copy as seen in training ("every test prompt also appears in the training
    data"), or, with fewer repeats, tested on the questions that happened to be unique."""
    data = _repeated_samples(10, 6)
    for seed in range(5):
        train, test = split_dataset(data, 0.2, seed)
        assert not overlap(test, train)
        assert (len(train), len(test)) == (48, 12)
    ev = evaluate_routing(data, None, ["knn"], encoder="hashing", seed=3)
    assert (ev.train_size, ev.test_size, ev.removed_overlap) == (48, 12, 0)
    with pytest.raises(RouterLLMError, match="1 distinct question"):
        split_dataset(_repeated_samples(1, 6), 0.2, 0)


def test_split_dataset_without_repeated_questions_is_the_seeded_permutation() -> None:
    """Figures measured before questions were kept together are measured again alike."""
    data = outcomes(30)
    order = np.random.default_rng(4).permutation(30)
    train, test = split_dataset(data, 0.2, 4)
    assert train.prompts == [data.prompts[i] for i in order[:24]]
    assert test.prompts == [data.prompts[i] for i in order[24:]]


def test_a_test_models_the_training_data_lacks_are_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The routers choose among the training data's models: a test file's extra model was
    dropped without a word."""
    train, test = outcomes(30), outcomes(10, 100)
    extra = OutcomeDataset(test.prompts, ["small", "big", "huge"],
                           np.hstack([test.scores, np.ones((10, 1))]),
                           np.tile([1.0, 5.0, 20.0], (10, 1)), source="test.json")  # fmt: skip
    x = np.random.default_rng(0).normal(size=(30, 4)), np.random.default_rng(1).normal(size=(10, 4))
    with caplog.at_level("WARNING", logger="routerllm"):
        ev = evaluate_routing(train, extra, ["knn"], embeddings=x)
    assert ev.models == ["small", "big"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "test.json: left out huge, which the training data (outcome dataset) does not have: "
        "the routers choose among the training data's models"
    ]
