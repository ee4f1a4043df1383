"""Outcome datasets, the kNN / logistic / quality routers, calibration and eval-routing,
on small outcome data written by the tests (real files, real encoders)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.data.outcome_files import load_outcomes
from routerllm.data.outcomes import OutcomeDataset, overlap, without
from routerllm.eval.outcome_eval import evaluate_routing, plot
from routerllm.eval.routing_metrics import METRICS
from routerllm.exceptions import DataError, ModelUnavailableError, RouterLLMError
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.decision import choose, mix_choices
from routerllm.routers.quality import QualityRouter, fit_logistic

from .conftest import rewrite_weights

MODELS = ["small", "mid", "big"]
SIZES = {"small": 1.0, "mid": 8.0, "big": 70.0}


def make_rows(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Easy prompts (small model solves them) and hard ones (only big does)."""
    rng = np.random.default_rng(seed)
    prompts, scores = [], []
    for i in range(n):
        hard = i % 2 == 1
        topic = rng.choice(["graphs", "parsers", "caches", "queues", "matrices"])
        if hard:
            prompts.append(
                f"prove the amortized complexity bound of a concurrent {topic} variant {seed}-{i}"
            )
            scores.append([0.0, float(rng.random() < 0.3), 1.0])
        else:
            prompts.append(f"hello, define the word {topic} simply please {seed}-{i}")
            scores.append([1.0, 1.0, 1.0])
    return prompts, np.array(scores)


def write_json(path: Path, prompts: list[str], scores: np.ndarray) -> Path:
    path.write_text(json.dumps([
        {"question": p, "scores": dict(zip(MODELS, map(float, s), strict=True))}
        for p, s in zip(prompts, scores, strict=True)
    ]), encoding="utf-8")  # fmt: skip
    (path.parent / "models.json").write_text(json.dumps({
        m: {"size": f"{SIZES[m]:g}B", "input_price": SIZES[m] / 10, "output_price": SIZES[m] / 10}
        for m in MODELS
    }))  # fmt: skip
    return path


def write_csv(path: Path, prompts: list[str], scores: np.ndarray) -> Path:
    cols = ["sample_id", "prompt", "eval_name", *MODELS]
    cols += [f"{m}|model_response" for m in MODELS] + [f"{m}|total_cost" for m in MODELS]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i, (p, s) in enumerate(zip(prompts, scores, strict=True)):
            w.writerow(
                [
                    i,
                    repr([p]),
                    "t",
                    *s,
                    *(f"answer {m}" for m in MODELS),
                    *(SIZES[m] / 1000 for m in MODELS),
                ]
            )
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    train_p, train_s = make_rows(200, 0)
    test_p, test_s = make_rows(60, 1)
    test_p[:5] = train_p[:5]  # 5 leaked questions the evaluation must drop
    return {
        "train_json": write_json(tmp_path / "train.json", train_p, train_s),
        "test_json": write_json(tmp_path / "test.json", test_p, test_s),
        "train_csv": write_csv(tmp_path / "train.csv", train_p, train_s),
        "test_csv": write_csv(tmp_path / "test.csv", test_p, test_s),
    }


def test_loaders_agree_and_find_overlap(files: dict[str, Path]) -> None:
    js, cs = load_outcomes(files["train_json"]), load_outcomes(files["train_csv"])
    assert js.prompts == cs.prompts and len(js) == 200
    assert js.models == sorted(MODELS) and cs.models == MODELS
    np.testing.assert_array_equal(js.restrict_models(MODELS).scores, cs.scores)
    assert js.sizes() is not None and list(js.sizes()) == [70.0, 8.0, 1.0]  # type: ignore[arg-type]
    np.testing.assert_allclose(cs.cost_matrix()[0], [0.001, 0.008, 0.07])
    assert cs.responses is not None and cs.responses[0][2] == "answer big"
    np.testing.assert_allclose(js.cost_matrix("price")[0], [7.0, 0.8, 0.1])
    assert (cs.cost_kind(), js.cost_kind(), js.cost_kind("price")) == ("call", "size", "price")
    test = load_outcomes(files["test_json"])
    assert overlap(test, js) == [0, 1, 2, 3, 4]
    kept, removed = without(test, js)
    assert removed == 5 and len(kept) == 55
    # Pooled (e.g. for repeated re-splits): rows appended, columns in the first's order.
    pooled = cs.concat(load_outcomes(files["test_csv"]))
    assert len(pooled) == 260 and pooled.models == MODELS
    assert pooled.costs is not None and pooled.responses is not None
    mixed = cs.concat(test)  # the JSON set has no per-call costs or responses
    assert mixed.costs is None and mixed.responses is None
    np.testing.assert_array_equal(mixed.scores[200:], test.restrict_models(MODELS).scores)


def test_overlap_folds_case_as_unicode_does(tmp_path: Path) -> None:
    """A prompt seen in training in another case is found, as Unicode folds case:
    until 2026-12-05 ``lower()`` kept "Straße" and "STRASSE" apart."""
    train = OutcomeDataset(["Wie lang ist die Straße?", "hi"], ["m"], np.ones((2, 1)))
    test = OutcomeDataset(["WIE LANG IST DIE  STRASSE?", "bye"], ["m"], np.ones((2, 1)))
    assert overlap(test, train) == [0]


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_outcomes(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('[{"q": 1}]')
    with pytest.raises(DataError, match="question"):
        load_outcomes(tmp_path / "bad.json")
    (tmp_path / "null.json").write_text(
        '[{"question": "ok", "scores": {"m": 1}}, {"question": null, "scores": {"m": 0}}]'
    )
    with pytest.raises(DataError, match="item 2 has no `question` text"):
        load_outcomes(tmp_path / "null.json")  # not the prompt "None"
    (tmp_path / "null.json").unlink()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a RouterBench CSV"):
        load_outcomes(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="unknown outcome format"):
        load_outcomes(tmp_path / "x.parquet")
    with pytest.raises(
        DataError, match=r"is a directory: pass one outcome file \(here: bad.csv, bad.json\)"
    ):
        load_outcomes(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("header.csv", "prompt,a,a|total_cost\n", "no data rows"),
        (
            "short.csv",
            "prompt,a,a|total_cost\nhi,1\n",
            "data row 1: fewer cells than the header has columns",
        ),
        ("text.csv", "prompt,a,a|total_cost\nhi,yes,0.1\n", "`a` is 'yes', not a number"),
        ("noscore.csv", "prompt,a|total_cost\nhi,0.1\n", "no score column for a"),
        ("range.csv", "prompt,a,a|total_cost\nhi,7,0.1\n", r"scores must be numbers in \[0, 1\]"),
        (  # where it is: one NaN among thousands of prompts cannot be found otherwise
            "nan.json",
            '[{"question": "hi", "scores": {"a": 1, "b": 0}},'
            ' {"question": "ho", "scores": {"a": 0, "b": NaN}}]',
            r"item 2: `scores` of b is nan, not a number in \[0, 1\] \(1 = solved; 1 such value",
        ),  # fmt: skip
        (
            "cost.csv",
            "prompt,a,a|total_cost,b,b|total_cost\nhi,1,0.1,1,2\nho,1,-3,0,nan\n",
            r"costs must be non-negative numbers; prompt 2 has -3 for a \(2 such value",
        ),
        ("list.json", '[{"question": "hi", "scores": [1, 0]}]', "`scores` mapping"),
        (
            "somecosts.json",
            '[{"question": "a", "scores": {"m": 1}, "costs": {"m": 2}},'
            ' {"question": "b", "scores": {"m": 0}}]',
            r"1 of 2 items have `costs` \(item 2 has none\)",
        ),
        (  # the item is named: in a file of thousands, "some item" cannot be fixed
            "nocost.json",
            '[{"question": "a", "scores": {"m": 1, "n": 0}, "costs": {"m": 2, "n": 1}},'
            ' {"question": "b", "scores": {"m": 1, "n": 0}, "costs": {"m": 2}}]',
            r"nocost.json, item 2: `costs` needs a number for each of m, n, got \{'m': 2\}",
        ),
        (
            "listcost.json",
            '[{"question": "a", "scores": {"m": 1, "n": 0}, "costs": [2, 1]}]',
            r"listcost.json, item 1: `costs` needs a number for each of m, n, got \[2, 1\]",
        ),
        (
            "negcost.json",
            '[{"question": "a", "scores": {"m": 1}, "costs": {"m": -1}}]',
            "item 1: `costs` of m is -1, not a finite non-negative number",
        ),  # fmt: skip
        (  # a NaN cost is a bad value, not a null one (not measured): not read as a mean
            "nancost.json",
            '[{"question": "a", "scores": {"m": 1}, "costs": {"m": NaN}},'
            ' {"question": "b", "scores": {"m": 0}, "costs": {"m": 2}}]',
            r"item 1: `costs` of m is nan, not a finite non-negative number",
        ),  # fmt: skip
        (
            "hugecost.json",
            '[{"question": "a", "scores": {"m": 1}, "costs": {"m": 1e308}},'
            ' {"question": "b", "scores": {"m": 0}, "costs": {"m": 1e308}}]',
            "costs are too large: their total is beyond a float's range",
        ),  # fmt: skip
        (  # an integer no float holds: an OverflowError traceback
            "bigint.json",
            '[{"question": "a", "scores": {"m": 1}, "costs": {"m": 1' + "0" * 400 + "}}]",
            r"`costs` of m is 10000000000000000000\.\.\., too large a number",
        ),
        (
            "bigscore.json",
            '[{"question": "a", "scores": {"m": 1' + "0" * 400 + "}}]",
            r"too large a number",
        ),
    ],
)
def test_malformed_outcome_values_are_clear_errors(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        load_outcomes(tmp_path / name)


def test_per_call_costs_in_the_json_format(tmp_path: Path) -> None:
    path = tmp_path / "energy.json"
    path.write_text(json.dumps([
        {"question": "a", "scores": {"s": 1, "b": 1}, "costs": {"s": 1e-5, "b": 4e-5}},
        {"question": "b", "scores": {"s": 0, "b": 1}, "costs": {"s": 2e-5, "b": 9e-5}},
    ]))  # fmt: skip
    data = load_outcomes(path)
    assert data.cost_kind() == "call"  # auto: the calls' own costs, as RouterBench's CSV
    np.testing.assert_allclose(data.cost_matrix(), [[4e-5, 1e-5], [9e-5, 2e-5]])  # b, s
    assert data.subset([1]).costs.tolist() == [[9e-5, 2e-5]]  # type: ignore[union-attr]


def test_malformed_model_metadata_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text('[{"question": "hi", "scores": {"a": 1}}]')
    with pytest.raises(DataError, match="metadata file not found"):
        load_outcomes(data, tmp_path / "typo.json")
    for meta, message in [
        ('{"a": {"size": "1.2.3B"}}', "size '1.2.3B' is not a size in billions"),
        ('{"a": {"input_price": "cheap"}}', "price 'cheap' is not a finite non-negative number"),
        ('{"a": {"output_price": Infinity}}', "price inf is not a finite non-negative number"),
        ('{"a": {"output_price": true}}', "price True is not a finite"),
    ]:
        (tmp_path / "models.json").write_text(meta)
        with pytest.raises(DataError, match=message):
            load_outcomes(data)


def test_a_routerbench_csv_takes_sizes_and_prices_from_a_models_json(tmp_path: Path) -> None:
    # as the "size unknown ... give each a size in a models.json beside the data" error says
    data = tmp_path / "d.csv"
    data.write_text("prompt,s,s|total_cost,b,b|total_cost\nhi,0,0.1,1,2\nho,1,0.1,1,3\n")
    meta = {"s": {"size": "1B", "input_price": 0.1, "output_price": 0.3},
            "b": {"size": "70B", "input_price": 1, "output_price": 3}}  # fmt: skip
    (tmp_path / "models.json").write_text(json.dumps(meta))
    loaded = load_outcomes(data)
    assert loaded.sizes().tolist() == [1, 70]  # type: ignore[union-attr]
    np.testing.assert_allclose(loaded.cost_matrix("price"), [[0.2, 2.0]] * 2)
    (tmp_path / "models.json").rename(tmp_path / "sizes.json")
    assert load_outcomes(data, tmp_path / "sizes.json").sizes().tolist() == [1, 70]  # type: ignore[union-attr]
    with pytest.raises(DataError, match="metadata file not found"):
        load_outcomes(data, tmp_path / "typo.json")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            '[{"question": "hi", "scores": {"a": true}}]',
            r"d\.json, item 1: `scores` of a is True, not a number",
        ),
        (
            '[{"question": "hi", "scores": {"a": 1}}, {"question": "ho", "scores": {"a": "0.5"}}]',
            r"item 2: `scores` of a is '0\.5', not a number",
        ),
        ('[{"question": "hi", "scores": {"a": 1}, "costs": {"a": "3"}}]', "`costs` of a is '3'"),
        (
            '[{"question": "hi", "scores": {"a": 1}}, {"question": " ", "scores": {"a": 0}}]',
            "item 2 has an empty `question`",
        ),
        ('[{"question": "hi", "scores": {"": 1}}]', "a model's name is empty"),
    ],
)
def test_outcome_json_values_of_the_wrong_kind_are_refused(
    tmp_path: Path, items: str, message: str
) -> None:
    data = tmp_path / "d.json"
    data.write_text(items)
    with pytest.raises(DataError, match=message):
        load_outcomes(data)


def test_an_unknown_cost_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text('[{"question": "hi", "scores": {"a": 1}}]')
    with pytest.raises(DataError, match="unknown cost kind 'magic'; valid: auto, call, size"):
        load_outcomes(tmp_path / "ok.json").cost_kind("magic")


def test_decision_rules_by_hand() -> None:
    pred = np.array([[0.9, 0.95, 0.99], [0.2, 0.5, 0.9]])
    costs = np.array([1.0, 8.0, 70.0])
    # lambda 0: the best predicted model; large lambda: the cheapest
    assert list(choose(pred, costs, "lambda", 0.0)) == [2, 2]
    assert list(choose(pred, costs, "lambda", 100.0)) == [0, 0]
    # lambda 0.5 (costs / 70): row 0: 0.9-0.007 > 0.95-0.057 > 0.99-0.5 -> 0;
    # row 1: 0.2-0.007=0.193 < 0.5-0.057=0.443 > 0.9-0.5=0.4 -> 1
    assert list(choose(pred, costs, "lambda", 0.5)) == [0, 1]
    # threshold 0.8: cheapest with p >= 0.8
    assert list(choose(pred, costs, "threshold", 0.8)) == [0, 2]
    assert list(choose(pred, costs, "threshold", 0.999)) == [2, 2]  # none clears: argmax
    assert list(choose(pred, costs, "lambda", 0.0, allowed=np.array([True, True, False]))) == [1, 1]
    with pytest.raises(RouterLLMError, match="unknown decision mode"):
        choose(pred, costs, "vibes", 0.0)


@pytest.mark.parametrize("name", ["knn", "logreg", "quality"])
def test_routers_learn_who_solves_what(name: str, files: dict[str, Path], tmp_path: Path) -> None:
    data = load_outcomes(files["train_json"])
    candidates = [Candidate(m, SIZES[m]) for m in data.models]
    options = (
        {"c_grid": [1.0], "k_grid": [5, 10], "weights": [0.0, 0.5, 1.0], "folds": 3}
        if name == "quality"
        else {}
    )
    router = create_router(
        name, candidates, 0, encoder="hashing", mode="lambda", knob=0.3, **options
    )
    with pytest.raises(RouterLLMError, match="not trained"):
        router.route("hello")
    router.fit(data.prompts, data.scores, data.models)
    easy, hard = (
        "hello, define the word graphs simply please",
        "prove the amortized complexity bound of a concurrent caches variant",
    )
    assert router.route(easy).model == "small"
    assert router.route(hard).model == "big"
    pred = router.predict_prompts([easy, hard])
    assert (
        pred[0, router.model_names.index("small")]
        > 0.8
        > pred[1, router.model_names.index("small")]
    )
    router.save(tmp_path / name)
    again = load_router(tmp_path / name, candidates)
    np.testing.assert_array_equal(again.predict_prompts([easy, hard]), pred)  # type: ignore[attr-defined]
    assert (
        again.route(hard).model == "big"
        and again.route(hard, allowed=["small", "mid"]).model == "mid"
    )
    # a config's options may not swap the encoder its weights were learned on
    assert load_router(tmp_path / name, candidates, {"encoder": "hashing", "knob": 0.5}).knob == 0.5  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match=r"^encoder: the router saved in .* was trained with encoder 'hashing'; to use another, train it again"):  # fmt: skip
        load_router(tmp_path / name, candidates, {"encoder": "static"})


def test_shared_logistic_regressions() -> None:
    """share -> 0 is the independent fit (scikit-learn's); a large share pools the
    models' labels: on few prompts it recovers their common direction better."""
    rng = np.random.default_rng(0)
    true = np.array([1.5, -1.0, 0.0, 0.5])
    X = rng.normal(size=(80, 4))
    T = np.stack(
        [rng.random(80) < 1 / (1 + np.exp(-(X @ true + a))) for a in (-1.0, 0.0, 1.0)]
        + [np.ones(80, dtype=bool)],  # always solved
        axis=1,
    )
    W_ind, b_ind = fit_logistic(X, T, 0.1, 0)
    W_tiny, b_tiny = fit_logistic(X, T, 0.1, 0, share=1e-9)
    np.testing.assert_allclose(W_tiny, W_ind, atol=2e-3)
    np.testing.assert_allclose(b_tiny, b_ind, atol=2e-3)
    assert not W_ind[:, 3].any() and b_ind[3] == pytest.approx(np.log(0.999 / 0.001))
    W_pool, b_pool = fit_logistic(X, T, 0.1, 0, share=1e6)
    assert not W_pool[:, 3].any() and b_pool[3] == b_ind[3]

    def spread(W: np.ndarray) -> float:  # the models' disagreement, relative to their mean
        mean = W[:, :3].mean(axis=1, keepdims=True)
        return float(np.linalg.norm(W[:, :3] - mean) / np.linalg.norm(mean))

    def worst_fit(W: np.ndarray) -> float:
        return min(float(np.corrcoef(W[:, j], true)[0, 1]) for j in range(3))

    assert spread(W_pool) < 0.6 * spread(W_ind)
    assert worst_fit(W_pool) > worst_fit(W_ind)


def test_an_uncalibrated_threshold_router_takes_the_cheapest_likely_model(
    files: dict[str, Path],
) -> None:
    """Before calibration, ``threshold`` means the cheapest model more likely than not to
    succeed (knob 0.5), not the cheapest model always (knob 0)."""
    data = load_outcomes(files["train_json"])
    candidates = [Candidate(m, SIZES[m]) for m in data.models]
    router = create_router("logreg", candidates, 0, encoder="hashing", mode="threshold")
    assert router.knob == 0.5  # type: ignore[attr-defined]
    assert create_router("logreg", candidates, 0, encoder="hashing").knob == 0.0  # type: ignore[attr-defined]
    router.fit(data.prompts, data.scores, data.models)
    easy = "hello, define the word graphs simply please"
    hard = "prove the amortized complexity bound of a concurrent caches variant"
    assert [d.model for d in router.route_batch([easy, hard])] == ["small", "big"]


def test_calibration_chooses_the_decision_rule() -> None:
    """Of lambda and threshold, calibration keeps the rule whose knob meets the target
    best on the held-out data, and routes by it; ``modes`` restricts the choice."""
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router("logreg", candidates, 0, encoder="hashing")
    rng = np.random.default_rng(1)
    X = router.embed([f"task number {i} of the day" for i in range(300)])  # type: ignore[attr-defined]
    router.fit(None, (rng.random((300, 3)) < 0.5).astype(float), MODELS, embeddings=X)
    # The small model never solves anything; the mid one solves the prompts whose
    # (noisy) predicted success is high. The big one always solves, and its predicted
    # success varies at random: the difference of two predictions (lambda) is noisier
    # than the mid model's alone (threshold), whose first clear knob routes the rest.
    n = 300
    mid_p = rng.random(n)
    scores = np.column_stack([np.zeros(n), (rng.random(n) < mid_p).astype(float), np.ones(n)])
    predicted = np.column_stack([np.full(n, 0.01), mid_p, rng.uniform(0.5, 1.0, n)])
    both = router.calibrate(X, scores, "max_cost=0.6", MODELS, predicted=predicted)  # type: ignore[attr-defined]
    only_lambda = router.calibrate(
        X, scores, "max_cost=0.6", MODELS, predicted=predicted, modes=["lambda"]
    )  # type: ignore[attr-defined]
    assert only_lambda["mode"] == "lambda" and router.mode == "lambda"  # type: ignore[attr-defined]
    assert both["mode"] == "threshold" and both["quality"] > only_lambda["quality"]
    again = router.calibrate(X, scores, "max_cost=0.6", MODELS, predicted=predicted)  # type: ignore[attr-defined]
    assert again == both and router.options["mode"] == "threshold"  # type: ignore[attr-defined]
    assert "(threshold " in router.route_batch(["a prompt"])[0].reason
    with pytest.raises(RouterLLMError, match="unknown decision mode"):
        router.calibrate(X, scores, "max_cost=0.6", MODELS, predicted=predicted, modes=["greedy"])  # type: ignore[attr-defined]
    for modes in (None, "lambda", []):
        with pytest.raises(RouterLLMError, match="modes must be a list of decision modes"):
            router.calibrate(X, scores, "max_cost=0.6", MODELS, predicted=predicted, modes=modes)  # type: ignore[attr-defined]
    with pytest.raises(
        RouterLLMError, match=r"predictions must be probabilities of success, in \[0, 1\]"
    ):
        router.calibrate(X, scores, "max_cost=0.6", MODELS, predicted=predicted * 50 - 20)  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match="model_names must be a list of model names, got 5"):
        router.calibrate(X, scores, "max_cost=0.6", 5)  # type: ignore[attr-defined]


def test_an_unreachable_quality_takes_the_rule_that_comes_nearest() -> None:
    """No rule keeps the quality asked: calibration keeps the rule whose best setting
    comes nearest (the best quality), not the cheaper rule's lesser best."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    X = np.eye(7)
    # Columns cheap, dear. w: only dear solves it, its predictions close (lambda sends it to
    # cheap first); p, p2: only cheap does; x: only dear does, clearly predicted; the
    # three v: only dear does, but cheap looks better (always cheap). dear alone: 5/7.
    scores = np.array([[0, 1], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1]], dtype=float)
    predicted = np.array(
        [[0.3, 0.4], [0.6, 0.8], [0.6, 0.8], [0.1, 0.9], [0.95, 0.5], [0.95, 0.5], [0.95, 0.5]]
    )
    router.fit(None, scores, embeddings=X)
    # lambda's best (knob between 0.2 / 0.9 and 0.8 / 0.9): p, p2 and x solved, at a
    # mean cost of (10 + 6 x 1) / 7; threshold's (knob in (0.3, 0.6]): w too, at
    # (2 x 10 + 5) / 7. Both are short of 5/7.
    out = router.calibrate(X, scores, "quality=1.0", predicted=predicted, signal_se=0)  # type: ignore[attr-defined]
    assert not out["target_reached"] and out["mode"] == "threshold"
    assert (out["quality"], out["cost"]) == pytest.approx((4 / 7, 25 / 7))
    assert 0.3 < out["knob"] <= 0.6 and out["fallback_mix"] is None
    lam = router.calibrate(
        X, scores, "quality=1.0", predicted=predicted, modes=["lambda"], signal_se=0
    )  # type: ignore[attr-defined]
    assert (lam["quality"], lam["cost"]) == pytest.approx((3 / 7, 16 / 7))


def test_quality_router_grid(files: dict[str, Path]) -> None:
    data = load_outcomes(files["train_json"])
    candidates = [Candidate(m, SIZES[m]) for m in data.models]
    router = create_router(
        "quality", candidates, 0, encoder="hashing",
        c_grid=[1.0], share_grid=[0.0, 10.0], k_grid=[5], weights=[0.0, 1.0], folds=3,
    )  # fmt: skip
    router.fit(data.prompts, data.scores, data.models)
    assert isinstance(router, QualityRouter)
    tried = {(c["share"], c["w"]) for c in router.selection["candidates"]}
    assert tried == {(0.0, 0.0), (0.0, 1.0), (10.0, 1.0)}  # w = 0: the share is irrelevant
    assert router.share == router.selection["share"] in (0.0, 10.0)
    state = router.state()
    state.pop("share")  # a checkpoint written before the share option
    again = QualityRouter(candidates, encoder="hashing")
    again.set_state(state)
    assert again.share == 0.0
    for bad in ({"share_grid": []}, {"share_grid": [-1.0]}, {"c_grid": [0.0]}):
        with pytest.raises(RouterLLMError, match="quality router"):
            create_router("quality", candidates, 0, encoder="hashing", **bad)


def calibration_setup(
    files: dict[str, Path],
) -> tuple[list[Candidate], Any, OutcomeDataset, np.ndarray]:
    """A logistic router trained on the training file, the test file to calibrate on,
    and its embeddings."""
    data = load_outcomes(files["train_json"])
    candidates = [Candidate(m, SIZES[m]) for m in data.models]
    router = create_router("logreg", candidates, 0, encoder="hashing")
    router.fit(data.prompts, data.scores, data.models)
    val = load_outcomes(files["test_json"])
    return candidates, router, val, router.embed(val.prompts)  # type: ignore[attr-defined]


def test_calibration_targets(files: dict[str, Path]) -> None:
    _, router, val, X = calibration_setup(files)
    share = router.calibrate(X, val.scores, "max_share=0.2", val.models)  # type: ignore[attr-defined]
    assert share["shares"]["big"] <= 0.2 and share["target_reached"]
    keep = router.calibrate(X, val.scores, "quality=0.95", val.models)  # type: ignore[attr-defined]
    best = val.scores.mean(axis=0).max()
    assert keep["quality"] >= 0.95 * best and keep["target_reached"]
    assert keep["cost"] < SIZES["big"] * 0.8  # routing sends the easy half to the small model
    assert keep["beats_fixed_mix"]
    assert router.knob == keep["knob"]
    budget = router.calibrate(X, val.scores, "max_cost=0.5", val.models)  # type: ignore[attr-defined]
    assert budget["cost"] <= 0.5 * SIZES["big"] and budget["target_reached"]
    # the best quality within the budget: no cheaper knob does better
    cheap = router.calibrate(X, val.scores, "max_cost=0.05", val.models)  # type: ignore[attr-defined]
    assert cheap["cost"] <= budget["cost"] and cheap["quality"] <= budget["quality"]
    assert budget["quality"] > cheap["quality"]
    with pytest.raises(RouterLLMError, match="5 embeddings for 60 outcome rows"):
        router.calibrate(X[:5], val.scores, "quality=0.9", val.models)  # type: ignore[attr-defined]
    for target in ("cheap please", "quality=2", "max_share=-1", "max_cost=0", "quality:big=0.9"):
        with pytest.raises(RouterLLMError, match="bad calibration target"):
            router.calibrate(X, val.scores, target, val.models)  # type: ignore[attr-defined]
    # Calibrated on given predictions (e.g. out-of-fold ones) instead of its own: with
    # the outcomes themselves as predictions, the same quality costs no more.
    told = router.calibrate(X, val.scores, "quality=0.95", val.models, predicted=val.scores)  # type: ignore[attr-defined]
    assert told["target_reached"] and told["cost"] <= keep["cost"]
    with pytest.raises(RouterLLMError, match="predictions for outcomes"):
        router.calibrate(X, val.scores, "quality=0.95", val.models, predicted=val.scores[:2])  # type: ignore[attr-defined]


def test_the_best_point_of_a_curve_may_mix_two_settings() -> None:
    from routerllm.routers.calibration import best_on_curve as _on_curve

    none = np.zeros(1)
    # Settings (knob, cost, quality): the hull is (1, .2) -> (2, .5) -> (4, .6); (3, .3) is under it.
    rows = [(k, c, q, none, "lambda") for k, c, q in
            ((0.0, 4.0, 0.6), (0.5, 2.0, 0.5), (1.0, 1.0, 0.2), (2.0, 3.0, 0.3))]  # fmt: skip
    ok, a, second, cost, quality = _on_curve(rows, "max_cost", 3.0, True)
    assert ok and a[0] == 0.5 and second is not None and second[0][0] == 0.0
    assert second[1] == pytest.approx(0.5) and (cost, quality) == pytest.approx((3.0, 0.55))
    ok, a, second, cost, quality = _on_curve(rows, "quality", 0.35, True)  # half way from .2 to .5
    assert ok and (a[0], second[0][0], second[1]) == (1.0, 0.5, pytest.approx(0.5))  # type: ignore[index]
    assert (cost, quality) == pytest.approx((1.5, 0.35))
    assert _on_curve(rows, "max_cost", 10.0, True)[:3] == (True, rows[0], None)  # the best, alone
    assert _on_curve(rows, "max_cost", 2.0, True)[:3] == (True, rows[1], None)  # exactly a setting
    assert _on_curve(rows, "quality", 0.1, True)[:3] == (True, rows[2], None)  # the cheapest does
    assert _on_curve(rows, "max_cost", 0.5, True)[:3] == (False, rows[2], None)  # the cheapest
    assert _on_curve(rows, "quality", 0.7, True)[:3] == (False, rows[0], None)  # the best
    # One setting only: the best within the budget, the cheapest reaching the quality.
    assert _on_curve(rows, "max_cost", 3.0, False)[:3] == (True, rows[1], None)
    assert _on_curve(rows, "quality", 0.35, False)[:3] == (True, rows[1], None)


def _calibrated_on_two_prompts(scores: np.ndarray, target: str) -> dict[str, Any]:
    """A logreg router over small, mid and big (costs 1, 5, 10) calibrated to ``target``
    on two prompts with ``scores``, its predictions fixed: prompt a's small 0.9, prompt
    b's mid 0.7 and big 0.8."""
    router = create_router(
        "logreg", [Candidate(m, c) for m, c in zip(MODELS, (1.0, 5.0, 10.0), strict=True)], 0,
        encoder="hashing",
    )  # fmt: skip
    predicted = np.array([[0.9, 0.1, 0.1], [0.05, 0.7, 0.8]])
    router.fit(None, scores, embeddings=np.eye(2))
    return dict(router.calibrate(np.eye(2), scores, target, predicted=predicted, signal_se=0))  # type: ignore[attr-defined]


def test_a_target_out_of_reach_takes_the_best_of_equally_near_settings() -> None:
    """Where no setting meets the target, the nearest one, and of equally near ones the
    best: the cheapest of the best quality, the best quality of the cheapest."""
    from routerllm.routers.calibration import best_on_curve as _on_curve

    none = np.zeros(1)
    rows = [(k, c, q, none, "lambda") for k, c, q in
            ((0.0, 4.0, 0.6), (1.0, 2.0, 0.6), (2.0, 1.0, 0.2), (3.0, 1.0, 0.3))]  # fmt: skip
    for two in (False, True):
        assert _on_curve(rows, "quality", 0.7, two)[:2] == (False, rows[1])
        assert _on_curve(rows, "max_cost", 0.5, two)[:2] == (False, rows[3])
    # max_share:small=0.4 cannot be met: prompt a goes to small whatever the knob. Of
    # the settings that send only it there, the best sends b to mid (knob 0 sends it to
    # big, which fails it): lambda between 0.2 and 1.625, threshold in (0.05, 0.7].
    out = _calibrated_on_two_prompts(np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]), "max_share:small=0.4")  # fmt: skip
    assert not out["target_reached"] and out["fallback_mix"] is None
    assert (out["quality"], out["cost"]) == (1.0, 3.0)
    assert out["shares"] == {"small": 0.5, "mid": 0.5, "big": 0.0}


def test_calibration_to_a_budget_mixes_two_settings_and_routes_by_them(
    files: dict[str, Path],
) -> None:
    _, router, val, X = calibration_setup(files)
    result = router.calibrate(
        X, val.scores, "max_cost=0.5", val.models, modes=["lambda"], two_settings=True
    )  # type: ignore[attr-defined]
    # The budget falls between two settings: a share of requests takes the second one,
    # and the expected cost is the budget itself.
    assert result["second_knob"] is not None and 0 < result["second_share"] < 1
    assert result["cost"] == pytest.approx(0.5 * SIZES["big"])
    assert router.options["second_share"] == result["second_share"]
    # Routing many requests by the mix: the share drawn to the second setting follows it.
    prompts = [f"request {i}" for i in range(2000)]
    reasons = [d.reason for d in router.route_batch(prompts)]
    second = np.mean([f"(lambda {result['second_knob']:g};" in r for r in reasons])
    assert second == pytest.approx(result["second_share"], abs=0.04)
    assert all(
        f"take {result['second_knob']:g} and the rest {result['knob']:g}" in r for r in reasons
    )
    # Saved and loaded, it routes the same way.
    again = load_router(router.save(files["train_json"].parent / "mixed"), router.models)
    assert [d.model for d in again.route_batch(prompts[:200])] == [
        d.model for d in router.route_batch(prompts[:200])
    ]
    single = router.calibrate(X, val.scores, "max_cost=0.5", val.models, modes=["lambda"])  # type: ignore[attr-defined]
    assert single["second_knob"] is None and single["cost"] <= result["cost"]
    assert single["quality"] <= result["quality"]
    with pytest.raises(RouterLLMError, match="a max_share target is met by one setting"):
        router.calibrate(X, val.scores, "max_share=0.3", val.models, two_settings=True)  # type: ignore[attr-defined]
    # A target met by one setting exactly sets no second one.
    one = router.calibrate(
        X, val.scores, "max_cost=1", val.models, modes=["lambda"], two_settings=True
    )  # type: ignore[attr-defined]
    assert one["second_knob"] is None and router.options["second_share"] == 0.0


def test_calibration_falls_back_to_the_best_fixed_mix(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Do no harm (MISSION M3.9): a router whose choices do worse than a fixed random mix
    of the single models at the same cost draws from that mix; one that does better routes."""
    candidates, router, val, X = calibration_setup(files)
    # Predictions with no signal: half the prompts, easy and hard alike, look solvable
    # by the big model only, the other half by the small one: 0.75 at a mean cost of
    # 35.5, where a random mix of the mid and big models reaches about 0.8.
    col = {m: val.models.index(m) for m in MODELS}
    to_big = (np.arange(len(val)) // 2) % 2 == 0  # one easy and one hard prompt in each pair
    blind = np.zeros(val.scores.shape)
    blind[to_big, col["big"]] = blind[~to_big, col["small"]] = 1.0
    out = router.calibrate(X, val.scores, "max_cost=0.6", val.models, predicted=blind)  # type: ignore[attr-defined]
    mix = out["fallback_mix"]
    assert (
        not out["beats_fixed_mix"] and mix is not None and out["fixed_mix_quality"] > out["quality"]
    )
    assert set(mix) <= set(MODELS) and np.isclose(sum(mix.values()), 1.0)
    assert np.isclose(sum(w * SIZES[m] for m, w in mix.items()), out["cost"])  # the same cost
    chosen = [d.model for d in router.route_batch(val.prompts)]
    assert set(chosen) == set(mix) and "fixed mix" in router.route(val.prompts[0]).reason
    # One draw per prompt, whatever the batch, and saved with the router.
    assert [d.model for d in router.route_batch(val.prompts[::-1])][::-1] == chosen
    router.save(tmp_path / "mixed")
    assert [
        d.model for d in load_router(tmp_path / "mixed", candidates).route_batch(val.prompts)
    ] == chosen
    # One of the mix's models unavailable: the other serves them all, and the reason says so.
    one, gone = sorted(mix)
    alone = router.route_batch(val.prompts, allowed=[m for m in MODELS if m != gone])
    assert {d.model for d in alone} == {one}
    assert f"drawn from the fixed mix {one} 100% (of its models that may serve)" in alone[0].reason
    # None of the mix's models available: back to the predictions.
    others = [m for m in MODELS if m not in mix]
    assert {d.model for d in router.route_batch(val.prompts, allowed=others)} <= set(others)
    # Predictions as good as the outcomes beat every mix: the router routes again.
    told = router.calibrate(X, val.scores, "max_cost=0.6", val.models, predicted=val.scores)  # type: ignore[attr-defined]
    assert told["beats_fixed_mix"] and told["fallback_mix"] is None and router.mix is None  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match="bad mix"):
        create_router("logreg", candidates, 0, encoder="hashing", mix={"huge": 1.0})


def test_a_target_the_fallback_mix_reaches_is_reported_reached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The knob falls short of the quality asked, the fixed mix the router falls back to
    does not: the router, drawing from that mix, reaches the target; the report and a
    warning say that the mix, not the router's predictions, routes and reaches it."""
    router = create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 10.0)], 0, encoder="hashing"
    )
    # cheap solves only the first prompt, dear all four (cheap 0.25 at 1, dear 1.0 at 10).
    # The predictions send the first two to dear, the last two to cheap, whatever the
    # knob: 0.5 at (2 x 10 + 2) / 4 = 5.5 at best, where a half-half mix of cheap and
    # dear (the same cost) keeps 0.25 + 0.75 x 4.5 / 9 = 0.625.
    scores = np.array([[1, 1], [0, 1], [0, 1], [0, 1]], dtype=float)
    predicted = np.array([[0.2, 0.9], [0.2, 0.9], [0.9, 0.2], [0.9, 0.2]])
    router.fit(None, scores, embeddings=np.eye(4))
    # quality=0.625: exactly the mix's, which reaches it.
    for target, reached in (("quality=0.6", True), ("quality=0.625", True), ("quality=0.7", False)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="routerllm.routers.calibration"):
            out = router.calibrate(np.eye(4), scores, target, predicted=predicted, signal_se=0)  # type: ignore[attr-defined]
        assert (out["quality"], out["cost"]) == pytest.approx((0.5, 5.5))
        assert out["fixed_mix_quality"] == pytest.approx(0.625)
        assert out["fallback_mix"] == pytest.approx({"cheap": 0.5, "dear": 0.5})
        assert out["target_reached"] is reached
        # The knob alone reaches neither: said apart from what the mix reaches.
        assert out["knob_target_reached"] is False and out["routes_by"] == "fixed mix"
        [warning] = [r.getMessage() for r in caplog.records]
        assert "not by the prompt" in warning and "cheap 50%, dear 50%" in warning
        assert ("reached by the fixed mix only" in warning) is reached
    # max_share:small=0.4 out of the knob's reach (the first prompt always goes to small),
    # not of the mix's: 0.5 at (1 + 10) / 2 = 5.5 (the second to big) is below the
    # mix of mid (0.5 at 5) and big (1.0 at 10) at 5.5, 0.9 mid and 0.1 big: 0.55.
    # Cross-fitted, each prompt routed by a knob chosen on the other alone, the router
    # ties the mix found there (0.5 each): a tie keeps it routing (signal_se 0), and its
    # own choices do not reach the target.
    out = _calibrated_on_two_prompts(np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]), "max_share:small=0.4")  # fmt: skip
    assert out["shares"]["small"] == 0.5 and out["fixed_mix_quality"] == pytest.approx(0.55)
    assert out["lead_over_mix"] == pytest.approx(-0.05)
    assert out["cross_fitted_lead_over_mix"] == 0.0 and out["fallback_mix"] is None
    assert not out["target_reached"] and not out["knob_target_reached"]
    # The router's own choices reach a target: the report says it routes by them.
    routed = router.calibrate(np.eye(4), scores, "quality=0.6", predicted=scores, signal_se=0)  # type: ignore[attr-defined]
    assert routed["knob_target_reached"] and routed["routes_by"] == "predictions"


def test_mix_choices_follow_the_weights_per_prompt() -> None:
    prompts = [f"prompt {i}" for i in range(4000)]
    weights = np.array([0.2, 0.0, 0.8])
    picks = mix_choices(prompts, weights, seed=0)
    assert 1 not in picks and abs(float(np.mean(picks == 2)) - 0.8) < 0.03
    assert np.array_equal(mix_choices(prompts[::-1], weights, seed=0)[::-1], picks)
    assert not np.array_equal(mix_choices(prompts, weights, seed=1), picks)  # seeded
    only_first = mix_choices(prompts[:50], weights, 0, allowed=np.array([True, True, False]))
    assert set(only_first.tolist()) == {0}  # renormalised over the allowed models


def test_quality_router_on_a_single_prompt_is_plain_logistic_regression() -> None:
    """Nothing to cross-validate on: no selection, no crash."""
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router("quality", candidates, 0, encoder="hashing")
    X = np.ones((1, 4), np.float32)
    router.fit(None, np.array([[0.0, 1.0, 1.0]]), MODELS, embeddings=X)
    assert router.selection["oof_aiq"] is None and (router.C, router.w) == (1.0, 1.0)  # type: ignore[attr-defined]
    small, mid, _ = router.predict(X)[0]  # type: ignore[attr-defined]
    assert small < 0.5 < mid


@pytest.mark.parametrize("name", ["knn", "logreg", "quality", "moe", "policy"])
def test_a_router_trained_on_a_single_prompt_says_so(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One prompt still trains (a small problem set's fold may have no more): every
    prompt is predicted its outcomes (the MoE: gates on the models that solved it, the
    same choice for every prompt; the policy router: complex, medium small failed and
    large mid solved), and a warning says so (the policy router's, which overrides fit,
    said nothing); two prompts, no warning."""
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    X = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], np.float32)
    one = create_router(name, candidates, 0, encoder="hashing")
    with caplog.at_level("WARNING", logger="routerllm.routers.outcome"):
        one.fit(None, np.array([[0.0, 1.0, 1.0]]), MODELS, embeddings=X[:1])
    assert [r.getMessage() for r in caplog.records] == [
        f"router {name!r} is trained on a single prompt: it cannot tell prompts apart and "
        "routes every prompt by that one's outcomes; train it on more to route by the prompt"
    ]
    predicted = one.predict(X)  # type: ignore[attr-defined]
    if name == "moe":
        assert (predicted[:, 0] == 0).all() and (predicted.argmax(axis=1) == predicted[0].argmax()).all()  # fmt: skip
    elif name == "policy":
        np.testing.assert_allclose(predicted, [[0.0, 1.0, 0.0]] * 2, atol=1e-3)
    else:
        np.testing.assert_allclose(predicted, [[0.0, 1.0, 1.0]] * 2, atol=1e-3)
    caplog.clear()
    with caplog.at_level("WARNING", logger="routerllm.routers.outcome"):
        two = create_router(name, candidates, 0, encoder="hashing")
        two.fit(None, np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), MODELS, embeddings=X)
    assert caplog.records == []


def test_evaluate_routing_end_to_end(files: dict[str, Path], tmp_path: Path) -> None:
    ev = evaluate_routing(
        files["train_csv"], files["test_csv"], routers=["logreg", "knn"], encoder="hashing",
        router_options={"knn": {"k": 5}},
    )  # fmt: skip
    assert ev.removed_overlap == 5 and ev.test_size == 55 and ev.cost_kind == "call"
    out = ev.as_dict()
    for name in ("logreg", "knn", "oracle", "best_single", "random", "cheapest"):
        assert name in out["routers"]
    row = out["routers"]["logreg"]
    assert set(row) >= set(METRICS)
    # Half the prompts are easy (the 1/70-cost model solves them): a perfect router
    # reaches the big model's quality at ~half its cost, so PGR(s) = min(1, 2s) and
    # APGR ~ 0.75 (a bit more via the mid model). Random mixing would give 0.5.
    assert row["apgr"] > 0.7 and row["cost_to_best_accuracy"] < 0.7
    assert out["best_single"]["name"] == "big"
    # Loaded datasets work as well as files; no test set: a seeded held-out split.
    pooled = load_outcomes(files["train_csv"]).concat(load_outcomes(files["test_csv"]))
    split = evaluate_routing(pooled, routers=["logreg"], encoder="hashing", test_fraction=0.25)
    assert split.train_size + split.test_size + split.removed_overlap == 260
    for bad, message in (
        (0.0, "between 0 and 1"),
        (1.5, "between 0 and 1"),
        (0.001, "nothing to test on"),
    ):
        with pytest.raises(DataError, match=message):
            evaluate_routing(pooled, routers=["logreg"], encoder="hashing", test_fraction=bad)
    png = plot(ev, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every router eval-routing takes is named, not only the three it compares by default
    valid = "use one of quality, logreg, knn, feedback, moe, policy$"
    with pytest.raises(DataError, match=f"'rules' does not learn from outcome data; {valid}"):
        evaluate_routing(
            files["train_csv"], files["test_csv"], routers=["rules"], encoder="hashing"
        )


def test_quality_router_leaves_plain_logistic_regression_only_for_a_clear_lead() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 8)).astype(np.float32)
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router("quality", candidates, 0, encoder="hashing", folds=4)
    assert isinstance(router, QualityRouter)
    # The small model solves two opposite quadrants (XOR): no linear model sees it,
    # nearest neighbours do, on every fold.
    small = (X[:, 0] > 0) == (X[:, 1] > 0)
    Y = np.stack([small, small | (rng.random(240) < 0.5), np.ones(240, bool)], axis=1)
    router.fit(None, Y.astype(float), MODELS, embeddings=X)
    assert not router.selection["kept_baseline"] and router.w < 1.0
    # Outcomes that follow a logistic model: a variant of it scores best out of fold
    # by a hair, not by its standard error, so plain logistic regression is kept
    # (seed 4: on seeds 0-7 a variant comes first on all but 3 and 7, clearly on the rest).
    rng = np.random.default_rng(4)
    X = rng.normal(size=(240, 8)).astype(np.float32)
    z = 2 * (X[:, :1] + 0.5 * X[:, 1:2]) + [[-2.0, 0.0, 3.0]]
    Y = (rng.random((240, 3)) < 1 / (1 + np.exp(-z))).astype(float)
    router.fit(None, Y, MODELS, embeddings=X)
    top = max(router.selection["candidates"], key=lambda c: c["oof_aiq"])
    assert (top["C"], top["w"]) != (1.0, 1.0)
    assert router.selection["kept_baseline"] and (router.C, router.w) == (1.0, 1.0)
    # The rule itself, on predictions made by hand (columns small, mid, big).
    fold = router._fold_of(240)
    truth = Y.astype(float)
    informed = np.where(truth, 0.9, 0.1)
    blind = np.broadcast_to(truth.mean(axis=0), truth.shape).copy()
    assert router._clearly_ahead(informed, blind, truth)  # ahead on every fold
    assert not router._clearly_ahead(blind, informed, truth)
    lucky = blind.copy()
    lucky[fold == 0] = informed[fold == 0]  # ahead on one fold, behind on another
    lucky[fold == 1] = 1.0 - informed[fold == 1]
    assert not router._clearly_ahead(lucky, blind, truth)
    assert not router._clearly_ahead(blind, blind, truth)  # no lead at all


def test_saving_never_loses_the_previous_router(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidates, router, val, X = calibration_setup(files)
    folder = router.save(tmp_path / "r")
    before = router.predict(X)

    def interrupted(f: Any, **arrays: Any) -> None:
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        create_router("logreg", candidates, 1, encoder="hashing").fit(
            val.prompts, val.scores, val.models
        ).save(folder)  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json", "weights.npz"]
    np.testing.assert_array_equal(load_router(folder, candidates).predict(X), before)  # type: ignore[attr-defined]
    # A router without weights saved over a learned one leaves no stale weights behind.
    create_router("smallest", candidates).save(folder)
    assert load_router(folder, candidates).name == "smallest"
    assert not (folder / "weights.npz").exists()


def test_unusable_router_paths_are_clear_errors(files: dict[str, Path], tmp_path: Path) -> None:
    candidates, router, _, _ = calibration_setup(files)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in (a_file, a_file / "sub"):
        with pytest.raises(RouterLLMError, match="cannot save the router"):
            router.save(target)
    with pytest.raises(RouterLLMError, match="is a file: a saved router is the folder"):
        load_router(a_file, candidates)
    folder = router.save(tmp_path / "r")
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(RouterLLMError, match="format 99 by a newer RouterLLM"):
        load_router(folder, candidates)
    (folder / "config.json").write_text(json.dumps({**meta, "options": [1]}))
    with pytest.raises(RouterLLMError, match="config.json is corrupt"):
        load_router(folder, candidates)
    del meta["weights_sha256"]  # as saved before the digest was recorded
    (folder / "config.json").write_text(json.dumps(meta))
    np.savez(folder / "weights.npz", W=np.zeros((4, 3)))  # no "b"
    with pytest.raises(RouterLLMError, match="weights.npz is corrupt: no array 'b'"):
        load_router(folder, candidates)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"W": np.zeros((4, 2)), "b": np.zeros(2)},
            r"array 'W' has shape \(4, 2\), expected \(n, 3\)",
        ),
        (
            {"W": np.zeros(4), "b": np.zeros(3)},
            r"array 'W' has shape \(4\), expected \(n, 3\)",
        ),
        (
            {"W": np.zeros((4, 3)), "b": np.zeros((1, 3))},
            r"array 'b' has shape \(1, 3\), expected \(3\)",
        ),
        (
            {"W": np.full((4, 3), np.nan), "b": np.zeros(3)},
            "array 'W' holds values that are not finite",
        ),
        (
            {"X": np.zeros((5, 4)), "Y": np.full((5, 3), 7.0)},
            r"outcomes \(Y\) must lie in \[0, 1\]",
        ),
        (
            {"X": np.zeros((5, 4)), "Y": np.zeros((4, 3))},
            r"5 embedding rows \(X\) for 4 outcome rows",
        ),
    ],
)
def test_saved_weights_that_do_not_fit_are_refused_when_loaded(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    name = "knn" if "X" in arrays else "logreg"
    folder = tmp_path / "r"
    create_router(name, models, encoder="hashing").fit(  # type: ignore[attr-defined]
        *make_rows(20, 0)
    ).save(folder)
    meta = json.loads((folder / "config.json").read_text())
    np.savez(folder / "weights.npz", **arrays)  # type: ignore[arg-type]
    del meta["weights_sha256"]  # as a router saved before digests, so the arrays are read
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError, match=f"weights.npz does not fit the router: {message}"):
        load_router(folder, models)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("w", np.array([0.5, 0.5]), r"array 'w' must hold one number, a number in \[0, 1\]; got shape \(2,\)"),
        ("w", np.array(5.0), r"array 'w' must hold one number, a number in \[0, 1\]; got 5$"),
        ("k", np.array([5]), r"array 'k' must hold one number, a whole number >= 1; got shape \(1,\)"),
        ("k", np.array(2.5), r"array 'k' must hold one number, a whole number >= 1; got 2.5$"),
        ("C", np.array(-1.0), r"array 'C' must hold one number, a number > 0; got -1$"),
        ("share", np.ones((1, 1)), r"array 'share' must hold one number, a number >= 0; got shape"),
    ],
)  # fmt: skip
def test_a_saved_quality_routers_settings_that_are_not_one_number_in_range_are_refused(
    tmp_path: Path, key: str, value: np.ndarray, message: str
) -> None:
    # A 1-element array was a TypeError traceback; a blend weight w of 5 loaded and
    # routed by 5 * logistic - 4 * kNN.
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    folder = tmp_path / "r"
    router = create_router("quality", models, encoder="hashing", k_grid=[3], folds=2)
    router.fit(*make_rows(20, 0)).save(folder)  # type: ignore[attr-defined]
    with np.load(folder / "weights.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(folder / "weights.npz", **{**arrays, key: value})  # type: ignore[arg-type]
    meta = json.loads((folder / "config.json").read_text())
    del meta["weights_sha256"]  # as a router saved before digests, so the arrays are read
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError, match=f"weights.npz does not fit the router: {message}"):
        load_router(folder, models)


@pytest.mark.parametrize("name", ["knn", "logreg", "quality"])
def test_a_saved_router_keeps_each_models_predictions_when_the_config_sorts_them_otherwise(
    tmp_path: Path, name: str
) -> None:
    prompts = [f"prompt number {i} about topic {i % 4}" for i in range(30)]
    Y = np.tile([1.0, 0.0, 0.0], (30, 1))  # only "small" ever solves
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router(name, models, encoder="hashing").fit(prompts, Y, MODELS)  # type: ignore[attr-defined]
    expected = router.route(prompts[3]).scores
    router.save(tmp_path / "r")
    # The same models with other sizes (e.g. sized by cost in the data, by parameters
    # in the config): the config's order is now mid, big, small.
    resized = [Candidate("small", 100.0), Candidate("mid", 8.0), Candidate("big", 70.0)]
    loaded = load_router(tmp_path / "r", resized)
    assert loaded.model_names == ["mid", "big", "small"]
    assert loaded.route(prompts[3]).scores == pytest.approx(expected)
    assert loaded.route(prompts[3]).scores["small"] > 0.5


@pytest.mark.parametrize("name", ["knn", "logreg", "quality", "feedback", "moe"])
@pytest.mark.parametrize(
    "edit",
    [lambda m: m[::-1], lambda m: ["mid", "small", "big"], lambda m: ["other", *m[1:]]],
    ids=["reversed", "swapped", "renamed"],
)
def test_a_saved_routers_models_edited_in_its_config_json_are_refused_not_swapped(
    tmp_path: Path, name: str, edit: Any
) -> None:
    # The digest covered the weights only: config.json's models reversed by hand loaded,
    # and the prompts that only "small" solves went to "big" without a word ("small"
    # renamed "other", another model of the config: to "other").
    prompts = [f"prompt number {i} about topic {i % 4}" for i in range(30)]
    Y = np.tile([1.0, 0.0, 0.0], (30, 1))  # only "small" ever solves
    models = [Candidate(m, SIZES[m]) for m in MODELS] + [Candidate("other", 0.5)]
    router = create_router(name, models[:3], encoder="hashing").fit(prompts, Y, MODELS)  # type: ignore[attr-defined]
    folder = router.save(tmp_path / "r")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["format_version"] == 2  # its weights name their models
    (folder / "config.json").write_text(json.dumps({**meta, "models": edit(MODELS)}))
    with pytest.raises(
        RouterLLMError,
        match=r"config.json's models \(.*\) do not match the weights it was saved with, which "
        r"are for small, mid, big in that order .*put that list back in config.json, or train",
    ):
        load_router(folder, models)
    # a router saved before the weights named their models (format 1) still loads
    (folder / "config.json").write_text(json.dumps({**meta, "format_version": 1}))
    rewrite_weights(folder, lambda a: {k: v for k, v in a.items() if k != "_model_names"})
    assert load_router(folder, models).route(prompts[3]).scores == pytest.approx(
        router.route(prompts[3]).scores
    )


@pytest.mark.parametrize(
    "names", [np.array(1.0), np.array("small"), np.array([MODELS]), np.arange(3)],
    ids=["number", "one-name", "2-d", "numbers"],
)  # fmt: skip
def test_a_saved_routers_model_names_array_that_is_not_a_list_of_names_is_refused(
    tmp_path: Path, names: np.ndarray
) -> None:
    # A 0-d _model_names (a number) was a traceback: 'float' object is not iterable
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    folder = (
        create_router("knn", models, encoder="hashing").fit(*make_rows(20, 0)).save(tmp_path / "r")
    )  # type: ignore[attr-defined]
    rewrite_weights(folder, lambda a: {**a, "_model_names": names})
    with pytest.raises(
        RouterLLMError,
        match=r"r/weights.npz is corrupt: its _model_names array is not a list of model names "
        r"\(shape .*\): save or train the router again",
    ):
        load_router(folder, models)


@pytest.mark.parametrize("name", ["knn", "logreg", "quality", "feedback", "policy", "moe"])
def test_a_saved_routers_unknown_encoder_is_refused_when_loaded_naming_its_config(
    tmp_path: Path, name: str
) -> None:
    # It loaded, and the first prompt routed failed with "unknown encoder 'minlm'", naming
    # neither the folder nor its config.json (a user's config names no encoder)
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    data = load_outcomes(write_json(tmp_path / "train.json", *make_rows(24, 0)))
    router = create_router(
        name, models, encoder="hashing", **({"epochs": 1} if name == "moe" else {})
    )
    folder = router.fit_dataset(data).save(tmp_path / "r")  # type: ignore[attr-defined]
    meta = json.loads((folder / "config.json").read_text())
    meta["options"]["encoder"] = "minlm"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, models)
    assert str(err.value).startswith(
        f"bad {folder}/config.json: unknown encoder 'minlm' (did you mean 'minilm'?); valid"
    )


def test_a_router_whose_weights_do_not_run_over_the_models_is_saved_in_format_1(
    tmp_path: Path,
) -> None:
    """Format 2 names the models a router's weights run over; one whose weights do not
    (rules) was saved in format 2 too, which every older RouterLLM refused for nothing."""
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    folder = create_router("rules", models).save(tmp_path / "r")  # type: ignore[attr-defined]
    assert json.loads((folder / "config.json").read_text())["format_version"] == 1
    assert load_router(folder, models).route("Write a quicksort").model in MODELS


def test_an_untrained_router_is_not_saved_over_a_trained_one(tmp_path: Path) -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    folder = (
        create_router("knn", models, encoder="hashing")
        .fit(*make_rows(20, 0))
        .save(  # type: ignore[attr-defined]
            tmp_path / "r"
        )
    )
    saved = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(RouterLLMError, match="router 'knn' is not trained .*nothing saved"):
        create_router("knn", models, encoder="hashing").save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == saved


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([Candidate("a", 1.0), Candidate("a", 7.0)], "model names must be distinct: a given twice"),
        ([Candidate("a", float("nan")), Candidate("b", 7.0)], "model 'a': params_b .* got nan"),
        ([Candidate("a", -50.0), Candidate("b", 7.0)], "model 'a': params_b .* got -50.0"),
        (
            [Candidate("a", 1.0, tier="HEAVY")],
            "model 'a': tier must be one of light, medium, heavy",
        ),
        ([Candidate("", 1.0)], "a model's name must be a non-empty string"),
    ],
)
def test_bad_model_descriptions_are_refused(models: list[Candidate], message: str) -> None:
    for name in ("knn", "rules"):
        with pytest.raises(RouterLLMError, match=message):
            create_router(name, models)


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (np.ones((20, 4)) * 1e300, "too large for float32"),
        (np.zeros((20, 0)), r"width >= 1\), got shape \(20, 0\)"),
        (np.ones((20, 4)) + 1j, "complex values"),
    ],
)
def test_embeddings_a_router_cannot_use_are_refused(embeddings: np.ndarray, message: str) -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    Y = make_rows(20, 0)[1]
    for name in ("knn", "logreg", "quality"):
        with pytest.raises(RouterLLMError, match=message):
            create_router(name, models, encoder="hashing").fit(None, Y, embeddings=embeddings)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("knn", {"k": 0}, "k must be >= 1"),
        ("knn", {"k": "5"}, "option 'k' must be an integer, got \"5\""),
        ("knn", {"k": 2.5}, "option 'k' must be an integer, got 2.5"),
        ("logreg", {"C": "1"}, "option 'C' must be a number"),
        ("knn", {"mode": True}, "option 'mode' must be a string or null, got true"),
        ("knn", {"knob": float("nan")}, "knob must be a finite number"),
        ("knn", {"costs": [1.0, -1.0, 2.0]}, "costs must be non-negative"),
        ("knn", {"second_share": 2.0}, r"second_share must be a number in \[0, 1\]"),
        ("logreg", {"second_share": 0.5}, "second_knob must be a finite number, got None"),
        ("knn", {"encoder": None}, "option 'encoder' must be a string, got null"),
        ("quality", {"knob": "x"}, "option 'knob' must be a number or null"),
        ("logreg", {"C": 0}, "C must be a number > 0"),
        ("quality", {"weights": [2.0, -1.0]}, r"weights in \[0, 1\]"),
        ("quality", {"folds": 1}, "folds must be >= 2"),
        ("quality", {"c_grid": [float("nan")]}, "C must be > 0"),
        ("random", {"seed": -1}, "seed must be an integer >= 0"),
        ("rules", {"thresholds": [0.6, 0.2]}, "thresholds ascending"),
        ("rules", {"thresholds": "ab"}, "thresholds are two complexities in"),
        (
            "knn",
            {"costs": [True, False, True]},
            "option 'costs' must be an array of numbers or null",
        ),
        ("knn", {"costs": ["1", "2", "3"]}, "option 'costs' must be an array of numbers"),
        ("knn", {"mix": {"small": True}}, "option 'mix' must be an object of numbers or null"),
        ("quality", {"k_grid": ["10"]}, "option 'k_grid' must be an array of integers"),
        (
            "quality",
            {"k_grid": [10.7]},
            r"option 'k_grid' must be an array of integers, got \[10.7\]",
        ),
        (
            "quality",
            {"c_grid": [True]},
            "option 'c_grid' must be an array of numbers, got \\[true\\]",
        ),
        ("logreg", {"C": 10**400}, "too large"),
        ("knn", {"knob": 10**400}, "too large"),
    ],
)
def test_bad_router_options_are_clear_errors(
    name: str, options: dict[str, Any], message: str
) -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    seed = options.pop("seed", 0)
    with pytest.raises(RouterLLMError, match=f"bad options for router '{name}': .*{message}"):
        create_router(name, models, seed, **options)


def test_numpy_numbers_are_options_of_their_kind() -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    knn = create_router("knn", models, k=np.int64(5), knob=np.float32(0.5))
    assert knn.options["k"] == 5 and knn.options["knob"] == 0.5
    assert create_router("logreg", models, C=np.float64(0.3)).options["C"] == 0.3
    quality = create_router("quality", models, k_grid=(np.int64(5), 10), costs=np.arange(1.0, 4))
    assert quality.options["k_grid"] == [5, 10] and quality.options["costs"] == [1.0, 2.0, 3.0]


def test_a_missing_model_keeps_its_kind_through_create_router() -> None:
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    with pytest.raises(ModelUnavailableError, match="model directory not found"):
        create_router("classifier", models, mode="full", encoder="hf:/nonexistent/x")


def test_a_max_share_target_of_equally_dear_models_names_one() -> None:
    """``max_share=X`` caps the dearest model: where several are equally dear (all
    models the same cost, say), which one it caps would be a guess, so it is refused
    before anything is set, naming them; ``max_share:<model>=X`` caps the one named."""
    router = create_router(
        "logreg", [Candidate(m, c) for m, c in zip(MODELS, (1.0, 5.0, 5.0), strict=True)], 0,
        encoder="hashing",
    )  # fmt: skip
    scores = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    predicted = np.array([[0.9, 0.5, 0.5], [0.1, 0.8, 0.7], [0.1, 0.3, 0.9], [0.1, 0.9, 0.2]])
    router.fit(None, scores, embeddings=np.eye(4))
    before = dict(router.options)
    with pytest.raises(
        RouterLLMError, match=r"mid and big are equally the dearest .*max_share:big=0.3"
    ):
        router.calibrate(np.eye(4), scores, "max_share=0.3", predicted=predicted)  # type: ignore[attr-defined]
    assert router.options == before
    out = router.calibrate(np.eye(4), scores, "max_share:big=0.25", predicted=predicted)  # type: ignore[attr-defined]
    assert out["target_reached"] and out["shares"]["big"] <= 0.25


@pytest.mark.parametrize("name", ["knn", "quality", "policy"])
@pytest.mark.parametrize("given", [None, "train.json", Path("train.json"), [["p", 1.0]]])
def test_fit_dataset_given_no_outcome_dataset_says_what_it_takes(
    tmp_path: Path, name: str, given: Any
) -> None:
    # A file's path given where its loaded data goes, the natural slip, was a bare
    # AttributeError: 'str' object has no attribute 'prompts'
    models = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router(name, models, encoder="hashing")
    with pytest.raises(RouterLLMError) as err:
        router.fit_dataset(given)  # type: ignore[attr-defined]
    message = str(err.value)
    assert message.startswith("fit_dataset takes an OutcomeDataset"), message
    assert type(given).__name__ in message
    if isinstance(given, str | Path):
        assert f"load_outcomes({str(given)!r})" in message
    assert not router.is_trained


@pytest.mark.parametrize("name", ["logreg", "policy"])
@pytest.mark.parametrize(
    ("rows", "scores", "error"),
    [(2, [[1.0, 0.0, 1.0]], r"^need one embedding row per outcome row, got shapes \(2, 8\) and \(1, 3\)$"),
     (1, [[1.0, 2.0, 0.0]], r"^outcome scores must be numbers in \[0, 1\] \(1 = solved\)$")],
)  # fmt: skip
def test_fit_refuses_rows_that_do_not_match_or_scores_that_are_not_outcomes(
    name: str, rows: int, scores: list[list[float]], error: str
) -> None:
    """The outcome routers and the policy router, which overrides ``fit``, refuse alike."""
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router(name, candidates, 0, encoder="hashing:8")
    embeddings = np.ones((rows, 8), dtype=np.float32)
    with pytest.raises(RouterLLMError, match=error):
        router.fit(None, np.array(scores), MODELS, embeddings=embeddings)


@pytest.mark.parametrize("name", ["quality", "logreg", "knn"])
def test_unnamed_outcome_columns_of_models_given_in_another_order_are_refused(name: str) -> None:
    """fit's columns default to the router's models: their order as given, the docstring
    said, but the router keeps them smallest first, so scores listed as the models were
    given (big, small) were learned swapped, silently."""
    big_first = [Candidate("big", 7.0), Candidate("small", 0.5)]
    router: Any = create_router(name, big_first, encoder="hashing")
    X, Y = np.eye(4), np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    with pytest.raises(RouterLLMError, match=r"^fit: name the outcome columns \(model_names\): the router's models were given as big, small and it keeps them smallest first, small, big"):  # fmt: skip
        router.fit(None, Y, embeddings=X)
    router.fit(None, Y, ["big", "small"], embeddings=X)  # named: big's column is read as big's
    assert router.predict(X).shape == (4, 2) and router.model_names == ["small", "big"]
    # the order it keeps, given so: nothing to guess
    create_router(name, big_first[::-1], encoder="hashing").fit(None, Y, embeddings=X)  # type: ignore[attr-defined]


def test_one_setting_at_the_budget_or_quality_asked_is_taken() -> None:
    from routerllm.routers.calibration import best_on_curve, parse_target

    # rows: (knob, cost, quality, choices, mode)
    rows = [(0.0, 1.0, 0.5, None, "lambda"), (1.0, 2.0, 0.8, None, "lambda")]
    # A setting costing exactly the budget fits it: the better one.
    assert best_on_curve(rows, "max_cost", 2.0, False)[1][0] == 1.0
    # Two equally cheap settings meet a quality: the better of them.
    same = [(0.0, 2.0, 0.9, None, "lambda"), (1.0, 2.0, 0.95, None, "lambda")]
    assert best_on_curve(same, "quality", 0.85, False)[1][0] == 1.0
    # All of the best model's quality is a target.
    assert parse_target("quality=1") == ("quality", 1.0)


def test_knn_predicts_many_prompts_in_bounded_memory() -> None:
    """kNN compared every test prompt with every training prompt at once: 24 bytes a pair
    (similarity, its negation, argpartition's int64 index), 192 MB for 2,000 prompts
    against 4,000 here, so about 38 GB for eval-routing's 20,000 test prompts of 100,000
    against 80,000. It takes them in slices now, with the same predictions as brute force."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(4000, 8)), rng.normal(size=(2000, 8))
    y = (rng.random((4000, 2)) > 0.5).astype(float)
    router = create_router("knn", [Candidate("a", 1.0), Candidate("b", 2.0)], k=5)
    router.fit(None, y, ["a", "b"], embeddings=x_train)
    tracemalloc.start()
    try:
        predicted = router.predict(x_test)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"

    def unit(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    sims = unit(x_test[:200]) @ unit(x_train).T
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(predicted[:200], y[nearest].mean(axis=1), atol=1e-6)


def _sampled_questions(
    questions: int, samples: int, seed: int
) -> tuple[OutcomeDataset, np.ndarray]:
    """Each question sampled ``samples`` times (copies in other case and spaces, read alike
    by an encoder: one embedding row), its outcomes the same on every copy: the small
    model solves it where x0 > 0, except on a third of the questions, at random (what no
    router can learn, only memorise); mid on half of the rest; big on each."""
    rng = np.random.default_rng(seed)
    X_q = rng.normal(size=(questions, 8)).astype(np.float32)
    small = (X_q[:, 0] > 0) ^ (rng.random(questions) < 1 / 3)
    Y_q = np.stack([small, small | (rng.random(questions) < 0.5), np.ones(questions, bool)], 1)
    of = np.repeat(np.arange(questions), samples)
    prompts = [f"Question {q}" if i % 2 else f"  question {q} " for i, q in enumerate(of)]
    data = OutcomeDataset(
        prompts, MODELS, Y_q[of].astype(float), np.tile([1.0, 8.0, 70.0], (len(of), 1))
    )
    return data, X_q[of]


def test_the_quality_router_keeps_every_copy_of_a_question_in_one_fold() -> None:
    """Its candidates are scored out of fold: with folds by position, a copy held out of
    a fold was found by kNN (k = 1) in the fold's training part, so memorising looked
    perfect and was chosen over logistic regression, which generalises (on new questions
    it routes better: checked here)."""
    data, X = _sampled_questions(60, 4, 0)
    candidates = [Candidate(m, SIZES[m]) for m in MODELS]
    router = create_router("quality", candidates, 0, encoder="hashing", c_grid=[1.0],
                           k_grid=[1], weights=[0.0, 1.0], folds=4, costs=[1.0, 8.0, 70.0])  # fmt: skip
    assert isinstance(router, QualityRouter)
    router.fit_dataset(data, X)
    by_w = {c["w"]: c["oof_aiq"] for c in router.selection["candidates"]}
    assert router.w == 1.0  # logistic regression, not the memorising kNN
    assert by_w[1.0] > by_w[0.0]
    fold = router._fold_of(len(data))
    assert all(len(set(fold[4 * q : 4 * q + 4])) == 1 for q in range(60))
    new, X_new = _sampled_questions(200, 1, 1)
    predicted = router.candidate_predictions(X, data.scores, X_new)
    aiq = {w: router.routing_aiq(p, new.scores) for (_, _, _, w), p in predicted.items()}
    assert aiq[1.0] > aiq[0.0]


def test_the_quality_router_without_repeated_questions_chooses_as_by_position(
    files: dict[str, Path],
) -> None:
    """No question given twice: the folds are the seeded permutation's by position, as
    before questions were kept together, and so is every candidate's figure and the choice."""
    data = load_outcomes(files["train_json"])
    candidates = [Candidate(m, SIZES[m]) for m in data.models]
    options: dict[str, Any] = {
        "encoder": "hashing",
        "k_grid": [1, 5],
        "weights": [0.0, 0.5, 1.0],
        "folds": 3,
    }
    X = create_router("quality", candidates, 2, **options).embed(data.prompts)  # type: ignore[attr-defined]
    by_question = create_router("quality", candidates, 2, **options)
    by_question.fit_dataset(data, X)  # type: ignore[attr-defined]
    by_position = create_router("quality", candidates, 2, **options)
    by_position.fit(None, data.scores, data.models, embeddings=X)  # type: ignore[attr-defined]
    assert by_question.selection == by_position.selection
    expected = np.random.default_rng(2).permutation(len(data)) % 3
    assert np.array_equal(by_question._fold_of(len(data)), expected)  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match="fit: 3 questions for 200 rows of outcomes"):
        by_position.fit(None, data.scores, data.models, X, questions=data.prompts[:3])  # type: ignore[attr-defined]
