"""The HumanEval experiment on a tiny problem set with real tiny GGUF models:
resumable generation, composition of systems, report and outcome dataset."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.carbon.meter import Measurement
from routerllm.carbon.report_text import counted
from routerllm.config import AppConfig
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.cascade_gate import state_predictions
from routerllm.eval.cross_validation import cross_validated, fold_ids, fold_routers
from routerllm.eval.humaneval_markdown import CARBON_METHODS
from routerllm.eval.humaneval_report import report_markdown, run_experiment
from routerllm.eval.humaneval_run import (
    SystemResult,
    compose,
    outcome_dataset_texts,
    problems_subset,
    run_models,
)
from routerllm.eval.result_store import Outcome, ResultStore
from routerllm.eval.transfer import load_training_run
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.system import RouterLLM

from .conftest import every_block_read_at, no_block_read_as_contended


def write_outcome_dataset(path: Path, problems: Any, models: list[str], outcomes: Any, sizes: dict[str, float]) -> None:  # fmt: skip
    """The outcome dataset a run writes (``outcome_dataset_texts``), with its models.json."""
    rows, names = outcome_dataset_texts(problems, models, outcomes, sizes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rows, encoding="utf-8")
    (path.parent / "models.json").write_text(names, encoding="utf-8")


def test_compose_adds_measured_parts_by_hand() -> None:
    outcomes = {
        "s": {
            "a": Outcome(True, 1.0, 1e-6, 4e-7, 10, "passed"),
            "b": Outcome(False, 2.0, 2e-6, 8e-7, 20, "failed"),
        },
        "l": {
            "a": Outcome(True, 5.0, 9e-6, 3e-6, 30, "passed"),
            "b": Outcome(True, 6.0, 1e-5, 4e-6, 40, "passed"),
        },
    }
    loads = {"s": (0.5, 1e-7, 5e-8), "l": (3.0, 2e-6, 1e-6)}
    r = compose("mix", ["s", "l"], outcomes, ["a", "b"], loads, router=(0.01, 1e-9, 5e-10))
    assert r.passed == [True, True]
    assert r.gen_kwh == pytest.approx(1e-6 + 1e-5) and r.load_kwh == pytest.approx(1e-7 + 2e-6)
    assert r.problem_kwh == [1e-6, 1e-5]
    row = r.row(price_per_kwh=0.2)
    assert row["pass@1"] == 1.0 and row["model_distribution"] == {"l": 0.5, "s": 0.5}
    assert row["energy_kwh"] == pytest.approx(1e-6 + 1e-5 + 1e-7 + 2e-6 + 1e-9)
    assert row["cost_usd"] == pytest.approx(row["energy_kwh"] * 0.2)
    assert row["co2_per_correct_kg"] == pytest.approx(r.co2_kg / 2)
    assert row["router_share_of_co2"] == pytest.approx(5e-10 / r.co2_kg)


def test_a_results_json_component_has_the_names_of_route_json_and_the_server() -> None:
    """results.json named a component's figures ``s`` and ``kwh``, where ``route --json``,
    ``report --json`` and the server's ``routerllm`` field name them ``duration_s`` and
    ``energy_kwh`` (``Measurement.as_dict``): one script could not read both."""
    r = SystemResult("direct-light", ["m", "m"], [True, False], 2.0, 3e-4, 1e-4,
                     0.5, 2e-6, 1e-6, 4.0, 5e-5, 2e-5)  # fmt: skip
    components = r.row(price_per_kwh=0.2)["components"]
    unknown = {"others_cpu_share": None, "contended": False}  # no share stored
    assert components == {
        "router_inference": {"duration_s": 0.5, "energy_kwh": 2e-6, "co2_kg": 1e-6, **unknown},
        "model_loading": {"duration_s": 4.0, "energy_kwh": 5e-5, "co2_kg": 2e-5, **unknown},
        "llm_inference": {"duration_s": 2.0, "energy_kwh": 3e-4, "co2_kg": 1e-4, **unknown},
    }
    common = Measurement("llm_inference", 2.0, 3e-4, 1e-4, "codecarbon:measured").as_dict()
    assert components["llm_inference"] == common
    # with its generations' CPU shares: their mean weighted by time, as route --json's
    busy = {"a": Outcome(True, 1.0, 1e-6, 4e-7, 10, "passed", others_cpu_share=0.9),
            "b": Outcome(False, 3.0, 2e-6, 8e-7, 20, "failed", others_cpu_share=0.1),
            "c": Outcome(False, 2.0, 2e-6, 8e-7, 20, "failed")}  # fmt: skip
    row = compose("busy", ["s"] * 3, {"s": busy}, ["a", "b", "c"], {}).row(0.2)
    shared = Measurement("llm_inference", 6.0, 5e-6, 2e-6, "codecarbon:measured", 0.3).as_dict()
    assert row["components"]["llm_inference"] == pytest.approx(shared, rel=1e-12)
    assert (
        row["components"]["llm_inference"]["contended"] is True
    )  # (0.9 x 1 s + 0.1 x 3 s) / 4 s > 25 %


def test_a_rows_figures_per_correct_answer_per_kwh_and_per_request_by_hand() -> None:
    """Two of four correct: the figures per correct answer divide by 2, not by the 4
    requests; mean time and totals add the router, the loading and the generation."""
    r = SystemResult("mix", ["a", "b", "a", "a"], [True, False, True, False],
                     2.0, 3e-4, 1e-4, 0.5, 2e-6, 1e-6, 1.5, 5e-5, 2e-5)  # fmt: skip
    row = r.row(price_per_kwh=0.2)
    assert (row["correct"], row["total"], row["pass@1"]) == (2, 4, 0.5)
    assert row["model_distribution"] == {"a": 0.75, "b": 0.25}
    assert row["mean_time_s"] == pytest.approx((2.0 + 0.5 + 1.5) / 4)
    assert row["energy_kwh"] == pytest.approx(3.52e-4)
    assert row["co2_kg"] == pytest.approx(1.21e-4)
    assert row["cost_usd"] == pytest.approx(3.52e-4 * 0.2)
    assert row["co2_per_correct_kg"] == pytest.approx(1.21e-4 / 2)
    assert row["correct_per_kwh"] == pytest.approx(2 / 3.52e-4)
    assert row["router_share_of_co2"] == pytest.approx(1e-6 / 1.21e-4)


def test_generation_resumes_after_an_interruption(tiny_config: AppConfig, tmp_path: Path) -> None:
    problems = problems_subset(4, 0)
    models = [m.name for m in tiny_config.models_by_size()]
    store = ResultStore(tmp_path / "results.sqlite")
    seen: list[str] = []

    def stop_after_three(row: dict[str, object]) -> None:
        seen.append(f"{row['model']}/{row['task_id']}")
        if len(seen) == 3:
            raise KeyboardInterrupt

    with RouterLLM(tiny_config) as system, pytest.raises(KeyboardInterrupt):
        run_models(
            system,
            problems,
            store,
            models,
            style_overrides={"max_new_tokens": 8},
            progress=False,
            on_row=stop_after_three,
        )
    assert sum(len(store.done(m)) for m in models) == 3  # everything finished is kept
    again: list[str] = []
    with RouterLLM(tiny_config) as system:
        run_models(system, problems, store, models, {"max_new_tokens": 8}, progress=False,
                   on_row=lambda row: again.append(f"{row['model']}/{row['task_id']}"))  # fmt: skip
    assert len(again) == 12 - 3 and not set(again) & set(seen)
    assert all(len(store.done(m)) == 4 for m in models)
    assert store.styles()[models[0]]["max_new_tokens"] == 8
    # The same prompting under another label (e.g. from --mode) is the same experiment.
    relabelled = {"max_new_tokens": 8, "name": "relabelled"}
    with RouterLLM(tiny_config) as system:
        run_models(system, problems, store, models, relabelled, progress=False,
                   on_row=lambda row: again.append("rerun"))  # fmt: skip
    assert "rerun" not in again
    # Resuming with another prompting style would mix two experiments in one table.
    with (
        RouterLLM(tiny_config) as system,
        pytest.raises(RouterLLMError, match="another prompting style.*differs in max_new_tokens"),
    ):
        run_models(system, problems, store, models, {"max_new_tokens": 16}, progress=False)
    # A store whose prompting was never recorded (an older version) is not reused either.
    store.db.execute("DELETE FROM styles")
    with RouterLLM(tiny_config) as system, pytest.raises(RouterLLMError, match="do not record"):
        run_models(system, problems, store, models, {"max_new_tokens": 8}, progress=False)
    store.close()


def test_fold_routers_calibrate_on_out_of_fold_predictions(tiny_config: AppConfig) -> None:
    """Each fold's router never sees its test problems, and the training problems'
    predictions to calibrate on come from routers that did not see them either: a
    1-nearest-neighbour router repeats its training outcomes on its own training
    problems, but not out of fold."""
    rng = np.random.default_rng(0)
    prompts = [f"task {i}: " + " ".join(rng.choice(list("abcdefgh"), 6)) for i in range(20)]
    models = ["tiny-light", "tiny-medium", "tiny-heavy"]
    scores = (rng.random((20, 3)) < [0.3, 0.5, 0.8]).astype(float)
    with RouterLLM(tiny_config) as system:
        folds = list(fold_routers("knn", system, prompts, scores, np.ones((20, 3)), models, 4, 0,
                                  "hashing", {"k": 1}))  # fmt: skip
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(20))
    for f in folds:
        assert not set(f.train) & set(f.test) and f.oof_train.shape == (len(f.train), 3)
        order = [f.router.model_names.index(m) for m in models]
        assert np.array_equal(f.router.predict(f.X[f.train])[:, order], scores[f.train])
        assert not np.array_equal(f.oof_train, scores[f.train])


def test_cross_validated_routers_know_only_their_training_costs(tiny_config: AppConfig) -> None:
    """The costs each problem's router decides by (returned for the quality-energy
    curve) are its training folds' per-model means, never the problem's own cost,
    which is measured only once the model has answered."""
    rng = np.random.default_rng(1)
    prompts = [f"task {i}: " + " ".join(rng.choice(list("abcdefgh"), 6)) for i in range(20)]
    models = ["tiny-light", "tiny-medium", "tiny-heavy"]
    scores = (rng.random((20, 3)) < [0.3, 0.5, 0.8]).astype(float)
    costs = rng.random((20, 3)) * [1.0, 2.0, 4.0]
    args = (prompts, scores, costs, models, 4, 0, "hashing")
    with RouterLLM(tiny_config) as system:
        cv = cross_validated("knn", system, *args)
        folds = list(fold_routers("knn", system, *args))
    for f in folds:
        assert np.allclose(cv.known[f.test], costs[f.train].mean(axis=0))
    assert not np.allclose(cv.known, costs)
    # Each problem's policy: one model for sure, or a fixed mix's probabilities.
    assert np.allclose(cv.policy.sum(axis=1), 1.0) and 0 <= cv.mixed_folds <= 4
    chosen = cv.policy[np.arange(20), [models.index(c) for c in cv.choices]]
    assert np.all(chosen > 0)


def test_routers_know_the_mean_of_measured_energies_not_a_failed_measurements_zero(
    tiny_config: AppConfig,
) -> None:
    """An answer CodeCarbon failed to measure is stored as 0 kWh; a fold's router took
    it into its model's mean energy, which made that model look cheaper than it is. Its
    mean is over the measured answers; a model with none measured is refused, said."""
    prompts = [f"task {i}: write a function" for i in range(8)]
    models = ["tiny-light", "tiny-medium", "tiny-heavy"]
    scores = np.tile([0.0, 1.0, 1.0], (8, 1))
    costs = np.tile([1.0, 2.0, 4.0], (8, 1))
    measured = np.ones((8, 3), dtype=bool)
    measured[::2, 2] = False  # heavy's every other answer: CodeCarbon failed
    costs[~measured] = 0.0  # as the store holds such an answer
    args = (prompts, scores, costs, models, 2, 0, "hashing")
    with RouterLLM(tiny_config) as system:
        cv = cross_validated("knn", system, *args, measured=measured)
        assert np.allclose(cv.known, [1.0, 2.0, 4.0])  # by hand: heavy's measured all 4.0
        measured[:, 0] = False
        with pytest.raises(RouterLLMError, match="tiny-light's generation energy was measured on none"):  # fmt: skip
            cross_validated("knn", system, *args, measured=measured)


def test_state_predictions_learn_the_relation_among_failed_answers() -> None:
    """Where the second model's success rises with a state feature over all problems
    but falls with it among those the first model failed (the problems the gate
    decides on), the gate's predictions follow the failed ones, learned on the
    training folds only; the training problems' predictions are out of fold."""
    rng = np.random.default_rng(0)
    n = 120
    states = rng.normal(size=(n, 3))
    failed = rng.random(n) < 0.35
    solved = np.where(failed, states[:, 0] < 0, states[:, 0] > -1).astype(float)
    seen, predicted = [], np.zeros(n)
    for tr, te, p_train, p_test in state_predictions(states, solved, failed, 4, 0):
        assert not set(tr) & set(te) and len(p_train) == len(tr)
        p = p_test()
        assert p.shape == (len(te),) and np.all((p >= 0) & (p <= 1))
        f = failed[te]
        assert np.corrcoef(states[te][f, 0], p[f])[0, 1] < -0.5
        seen += te.tolist()
        predicted[te] = p
    assert sorted(seen) == list(range(n))
    # over the failed problems, the ones the second model solves rank first (ROC AUC)
    hit, miss = predicted[failed & (solved == 1)], predicted[failed & (solved == 0)]
    assert (hit[:, None] > miss[None, :]).mean() > 0.8
    # nothing to learn (one label everywhere): a constant, no error
    for _, _, p_train, p_test in state_predictions(states[:8], np.ones(8), failed[:8], 2, 0):
        assert np.all(p_test() == 1.0) and np.all(p_train == 1.0)


def test_experiment_writes_report_results_and_outcomes(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    summary = run_experiment(
        tiny_config, out, limit=6, folds=2, style_overrides={"max_new_tokens": 8}, progress=False
    )
    names = [r["system"] for r in summary["systems"]]
    assert names == [
        "direct-heavy",
        "direct-medium",
        "direct-light",
        "random",
        "rules",
        "complexity",
        "quality",
        "logreg",
        "knn",
        "cascade",
        "gated-cascade",
    ]
    for r in summary["systems"]:
        assert r["total"] == 6 and 0 <= r["pass@1"] <= 1
        assert r["energy_kwh"] > 0 and set(r["components"]) == {
            "router_inference",
            "model_loading",
            "llm_inference",
        }
    direct = {r["system"]: r for r in summary["systems"]}
    assert direct["direct-heavy"]["model_distribution"] == {"tiny-heavy": 1.0}
    report = (out / "report.md").read_text()
    assert "| direct-heavy |" in report and "cross-validation" in report
    # what the sandbox enforced here, not "no network" where it could not make sure
    from routerllm.eval.sandbox import isolation_text

    assert f"time and memory limits; {isolation_text()})" in report
    assert summary["sandbox"] == isolation_text()
    # every other system against direct-heavy, with paired-bootstrap intervals
    against = summary["against_direct_heavy"]
    assert against["target"] == {"margin": 0.02, "energy_share": 0.7}
    assert list(against["systems"]) == names[1:]
    for name, a in against["systems"].items():
        assert a["pass@1_diff"] == pytest.approx(
            direct[name]["pass@1"] - direct["direct-heavy"]["pass@1"]
        )
        assert a["energy_share"] == pytest.approx(
            direct[name]["energy_kwh"] / direct["direct-heavy"]["energy_kwh"]
        )
        lo, hi = a["energy_share_90ci"]
        assert lo <= hi and 0 <= a["resamples_meeting_target"] <= 1
    assert "Against direct-heavy, on the same problems" in report
    assert "| cascade | " in report.split("Against direct-heavy")[1]
    # each fold's calibration chose a decision rule; the curve is drawn in the usual one
    rules = direct["quality"]["decision_rules"]
    assert len(rules) == 2 and set(rules) <= {"lambda", "threshold"}
    assert summary["quality_energy_curve_rule"] in rules
    assert "quality: decision rule chosen per fold: " in report
    # the curve against the mix of direct-medium and direct-heavy, recomputed from its points
    from routerllm.eval.curves import OperatingPoint, share_above_line

    ends = [OperatingPoint(direct[n]["components"]["llm_inference"]["energy_kwh"], direct[n]["pass@1"]) for n in ("direct-medium", "direct-heavy")]  # fmt: skip
    curve = [OperatingPoint(c, q) for c, q in summary["quality_energy_curve"]]
    above = summary["quality_energy_curve_above_mix"]
    if ends[1].cost > ends[0].cost:
        assert above == pytest.approx(share_above_line(curve, *ends)) and 0 <= above <= 1
        assert f"random mix) over {above:.0%} of the generation energy between them" in report
    else:  # the tiny heavy model may spend less than the medium one: no range between them
        assert above is None and "random mix) over" not in report
    # tinycoder's gibberish fails the examples: the cascade asks the heavy model again
    verdicts = direct["cascade"]["verdicts"]
    assert sum(verdicts.values()) == 6 and verdicts["failed"] >= 1
    assert direct["cascade"]["escalated"] == verdicts["failed"] / 6
    assert direct["cascade"]["energy_kwh"] > direct["direct-medium"]["energy_kwh"]
    assert "by the heavy model (both generations counted)" in report
    # The gated cascade escalates only what its cross-validated gate lets through.
    gated = direct["gated-cascade"]
    assert gated["verdicts"] == verdicts and gated["gate"]["budget"] == 0.7
    assert len(gated["gate"]["thresholds"]) == 2  # one per fold
    # its gate weighs every unverified answer: failed, or to a prompt without examples
    unverified = verdicts["failed"] + verdicts["unverifiable"]
    assert gated["escalated"] == (unverified - gated["gate"]["withheld"]) / 6
    assert "energy budget of 70%" in report
    # what the cascade spends besides generating (checks, loading) counts against it
    assert gated["gate"]["overhead_kwh_per_problem"] > 0
    assert "less what the cascade spends besides generating" in report
    # its gate read the medium model's own states of the prompts, stored as generated
    assert "hidden state of the prompt" in report
    store = ResultStore(out / "results.sqlite")
    ids = [p.task_id for p in problems_subset(6, 0)]
    assert store.prompt_states("tiny-medium", ids).shape[0] == 6
    assert store.prompt_states("tiny-heavy", ids) is None
    # what the stored generations and loads cost, and the best model per problem
    stored = {m.name: store.outcomes(m.name) for m in tiny_config.models}
    assert summary["model_time_s"] == pytest.approx(
        sum(o.gen_s for m in stored for o in stored[m].values())
        + sum(store.load_of(m)[0] for m in stored)  # type: ignore[index]
    )
    assert summary["oracle_pass@1"] == pytest.approx(
        sum(any(stored[m][t].passed for m in stored) for t in ids) / 6
    )
    # a stored run without them (made before states were kept) gates on the quality router
    with store.db:
        store.db.execute("DELETE FROM prompt_states WHERE task_id = ?", (ids[0],))
    store.close()
    older = run_experiment(tiny_config, out, systems=["gated-cascade"], limit=6, folds=2,
                           style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    assert "quality router" in older["systems"][0]["gate"]["predictor"]
    # the mixture-of-experts router runs when named, cross-validated like the others
    moe = run_experiment(tiny_config, out, systems=["moe"], limit=6, folds=2,
                         style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    (row,) = moe["systems"]
    assert (row["system"], row["total"], len(row["decision_rules"])) == ("moe", 6, 2)
    assert set(row["model_distribution"]) <= {m.name for m in tiny_config.models}
    # ... and over a range of budgets, each calibrated on the training folds
    budgets = [b for b, _, _ in gated["gate"]["curve"]]
    assert budgets == sorted(budgets) and 0.7 in budgets
    medium_kwh, heavy_kwh = (direct[f"direct-{m}"]["components"]["llm_inference"]["energy_kwh"] for m in ("medium", "heavy"))  # fmt: skip
    for _, kwh, pass1 in gated["gate"]["curve"]:
        assert medium_kwh <= kwh <= medium_kwh + heavy_kwh
        assert 0 <= pass1 <= 1
    assert 0 < summary["model_time_s"] <= summary["wall_time_s"]
    assert json.loads((out / "results.json").read_text())["problems"] == 6
    data = load_outcomes(out / "outcomes" / "humaneval.json")
    assert len(data) == 6 and data.models == sorted(
        direct["direct-heavy"]["model_distribution"]
    ) + ["tiny-light", "tiny-medium"]
    # each call's cost is its measured generation energy, the experiment's cost
    assert data.cost_kind() == "call"
    heavy = data.models.index(next(iter(direct["direct-heavy"]["model_distribution"])))
    assert data.cost_matrix()[:, heavy].sum() == pytest.approx(
        direct["direct-heavy"]["components"]["llm_inference"]["energy_kwh"]
    )
    (out / "quality_energy.png").write_bytes(b"\x89PNG an earlier report's curve")
    # a second run reuses every stored generation
    again = run_experiment(
        tiny_config,
        out,
        systems=["direct-light"],
        limit=6,
        folds=2,
        style_overrides={"max_new_tokens": 8},
        progress=False,
    )
    assert again["systems"][0]["total"] == 6
    # without the quality router there is no curve: the first report's plot is not kept
    assert not again["quality_energy_curve"] and not (out / "quality_energy.png").exists()
    with pytest.raises(RouterLLMError, match="unknown systems"):
        run_experiment(tiny_config, out, systems=["magic"], limit=2)
    with pytest.raises(RouterLLMError, match="cascade budget must be > 0"):
        run_experiment(tiny_config, out, systems=["gated-cascade"], limit=2, cascade_budget=0)
    with pytest.raises(RouterLLMError, match="and at most 10"):
        run_experiment(tiny_config, out, systems=["gated-cascade"], limit=2, cascade_budget=1e300)
    with pytest.raises(RouterLLMError, match="folds must be an integer >= 1, got -2"):
        run_experiment(tiny_config, out, systems=["direct-light"], limit=2, folds=-2)
    unmetered = tiny_config.model_copy(deep=True)
    unmetered.carbon.enabled = False  # every energy would be 0, every share 0 / 0
    with pytest.raises(RouterLLMError, match="set carbon.enabled: true"):
        run_experiment(unmetered, tmp_path / "unmetered", systems=["direct-light"], limit=1)
    assert not (tmp_path / "unmetered").exists()
    with pytest.raises(RouterLLMError, match=r"got 5 fold\(s\) and 1 problem"):
        run_experiment(tiny_config, out, systems=["gated-cascade"], limit=1, folds=5)
    with pytest.raises(RouterLLMError, match="at least 1 problem"):
        run_experiment(tiny_config, out, systems=["direct-light"], limit=0)
    with pytest.raises(RouterLLMError, match=r"got 5 fold\(s\) and 1 problem"):
        run_experiment(tiny_config, out, systems=["knn"], limit=1, folds=5)
    with pytest.raises(RouterLLMError, match=r"got 1 fold\(s\) and 3 problem"):
        run_experiment(tiny_config, out, systems=["quality"], limit=3, folds=1)


def test_report_states_a_fixed_mix_and_its_expectation() -> None:
    row = {
        "system": "quality", "pass@1": 0.5, "correct": 2, "total": 4,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 1e-3, "co2_kg": 4e-4,
        "cost_usd": 1e-4, "co2_per_correct_kg": 2e-4, "correct_per_kwh": 2000.0,
        "router_share_of_co2": 0.001,
        "components": {c: {"energy_kwh": 1e-4} for c in ("router_inference", "model_loading", "llm_inference")},
        "fixed_mix": {"folds": 2, "expected_pass@1": 0.625, "expected_generation_kwh": 9e-4},
    }  # fmt: skip
    summary = {
        "problems": 4, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": 5, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.75, "systems": [row], "styles": {},
    }  # fmt: skip
    text = report_markdown(summary)
    assert "in 2 of 5 folds" in text and "pass@1 0.625 at 9.000e-04 kWh" in text


def test_a_rows_figures_where_nothing_was_solved_or_spent_by_hand() -> None:
    """The edges of the row's divisions: 1 of 3 solved is 1/3, unrounded; none solved has
    no CO2 per correct solution (null) and 0 correct per kWh; a system that spent a known
    0 kWh has no correct per kWh (null, not 0: it solved one) and a 0 router share."""
    third = SystemResult("third", ["a", "b", "a"], [True, False, False], 3.0, 3e-4, 1e-4).row(0.2)
    assert third["pass@1"] == pytest.approx(1 / 3, rel=1e-12)
    assert third["model_distribution"] == pytest.approx({"a": 2 / 3, "b": 1 / 3}, rel=1e-12)
    none = SystemResult("none", ["a"] * 3, [False] * 3, 3.0, 3e-4, 1e-4).row(0.2)
    assert none["co2_per_correct_kg"] is None and none["correct_per_kwh"] == 0.0
    free = SystemResult("free", ["a", "a"], [True, False], 1.0, 0.0, 0.0).row(0.2)
    assert (free["energy_kwh"], free["co2_per_correct_kg"]) == (0.0, 0.0)
    assert free["correct_per_kwh"] is None and free["router_share_of_co2"] == 0.0


def test_a_row_nulls_only_the_component_codecarbon_failed_on() -> None:
    """The generation measured, the routing not: the system's totals are known (the
    unmeasured part counted as nothing), its routing component and router share null."""
    r = SystemResult("mix", ["a", "b"], [True, False], 2.0, 3e-4, 1e-4, 0.5, 0.0, 0.0)
    r.count("llm_inference", True)
    r.count("router_inference", False)
    row = r.row(price_per_kwh=0.2)
    assert row["energy_kwh"] == pytest.approx(3e-4) and row["co2_kg"] == pytest.approx(1e-4)
    assert row["components"]["router_inference"] == {"energy_kwh": None, "co2_kg": None, "duration_s": 0.5, "others_cpu_share": None, "contended": False}  # fmt: skip
    assert row["components"]["llm_inference"]["energy_kwh"] == 3e-4
    assert row["router_share_of_co2"] is None


def test_compose_loads_a_model_chosen_twice_once_by_hand() -> None:
    """One model answers both problems: its load is paid once, not once a request, and
    the CO2 is the answers' CO2 (4e-7 + 8e-7 kg), not their energy."""
    outcomes = {"s": {"a": Outcome(True, 1.0, 1e-6, 4e-7, 10, "passed"),
                      "b": Outcome(False, 2.0, 2e-6, 8e-7, 20, "failed")}}  # fmt: skip
    r = compose("twice", ["s", "s"], outcomes, ["a", "b"], {"s": (0.5, 1e-7, 5e-8)})
    assert (r.load_s, r.load_kwh, r.load_co2) == (0.5, 1e-7, 5e-8)
    assert r.gen_co2 == pytest.approx(1.2e-6) and r.co2_kg == pytest.approx(1.25e-6)
    assert r.row(0.2)["mean_time_s"] == pytest.approx((1.0 + 2.0 + 0.5) / 2)


def test_reports_row_and_component_breakdown_of_a_system_by_hand() -> None:
    """The table shows correct/total (2/4, not 4/2) and the breakdown names its parts in
    the order of its heading: router inference / model loading / generation."""
    r = SystemResult("mix", ["a", "b", "a", "a"], [True, False, True, False],
                     2.0, 3e-4, 1e-4, 0.5, 2e-6, 1e-6, 1.5, 5e-5, 2e-5)  # fmt: skip
    summary = {
        "problems": 4, "limit": None, "models": ["a", "b"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": None, "calibration": None, "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.75, "systems": [r.row(price_per_kwh=0.2)],
        "styles": {},
    }  # fmt: skip
    text = report_markdown(summary)
    assert (
        "| mix | 0.500 | 2/4 | a 75%, b 25% | 1.00 | 3.520e-04 | 1.210e-04 | 7.04e-05 | 6.05e-05 "
        "| 5682 | 0.83% |" in text
    )
    assert "- mix: 2.00e-06 / 5.00e-05 / 3.00e-04" in text
    assert "Oracle (best model per problem) pass@1: 0.750." in text


def test_report_counts_one_of_a_kind_in_the_singular() -> None:
    """A --limit 1 run's report read "1 problems", "all 1 generations", "1 prompts had
    none" and "of the 1 unverified answers"."""
    row = {
        "system": "gated-cascade", "pass@1": 1.0, "correct": 1, "total": 1,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 1e-3, "co2_kg": 4e-4,
        "cost_usd": 1e-4, "co2_per_correct_kg": 4e-4, "correct_per_kwh": 1000.0,
        "router_share_of_co2": 0.001, "escalated": 0.0,
        "components": {c: {"energy_kwh": 1e-4} for c in ("router_inference", "model_loading", "llm_inference")},
        "verdicts": {"passed": 0, "unverifiable": 1, "failed": 0},
        "gate": {"predictor": "logistic", "budget": 0.7, "overhead_kwh_per_problem": 1e-5, "withheld": 1},
    }  # fmt: skip
    summary = {
        "problems": 1, "limit": 1, "models": ["m"], "carbon_method": "x", "country": "USA",
        "generation_methods": {"x": 1}, "encoder": "static", "folds": 1,
        "trained_on": {"problems": 1, "run": "runs/other"}, "calibration": "max_cost=0.7",
        "wall_time_s": 1.0, "model_time_s": 1.0, "oracle_pass@1": 1.0, "systems": [row],
        "styles": {},
    }  # fmt: skip
    text = report_markdown(summary)
    assert text.count("1 problem of HumanEval (packaged) (a seeded subset, --limit)") == 1
    assert "CodeCarbon `x` (the 1 generation, country USA)" in text
    assert "trained only on the 1 problem of the run in runs/other" in text
    assert "0 passed them, 1 prompt had none, 0 failed" in text
    assert "it withheld 1 of the 1 unverified answer. " in text
    assert not re.search(r"\b1 (problems|generations|prompts|unverified answers)\b", text)
    summary |= {"problems": 2, "generation_methods": {"x": 2}}
    row["verdicts"] = {"passed": 0, "unverifiable": 2, "failed": 1}
    text = report_markdown(summary)
    assert "2 problems of" in text and "(all 2 generations, country USA)" in text
    assert "2 prompts had none, 1 failed" in text and "of the 3 unverified answers. " in text


@pytest.mark.parametrize(
    ("method", "says", "not_said"),
    [
        # on a GPU machine without CPU counters the CPU is still estimated: not all read
        ("codecarbon:measured", "the CPU's share is still an estimate from its load", "found no"),
        ("codecarbon:load-estimate", "an estimate from CPU load", "TDP"),
        ("codecarbon:tdp-estimate", "an estimate from the CPU's TDP alone", "from CPU load"),
        # a remote model's generations: "how they were measured is not recorded" until 2026-12-03
        ("estimate:per-token", "per-token figures in the config", "not recorded"),
    ],
)
def test_report_states_how_codecarbon_measured(method: str, says: str, not_said: str) -> None:
    """Whatever the method, the report said "on machines without RAPL counters this is
    an estimate from CPU load": false of a constant TDP figure, and beside the point of
    counters read on Windows or macOS."""
    summary = {
        "problems": 1, "limit": None, "models": ["m"], "carbon_method": method, "country": "USA",
        "encoder": "static", "folds": 5, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 1.0, "systems": [], "styles": {},
    }  # fmt: skip
    line = next(x for x in report_markdown(summary).splitlines() if x.startswith("Energy and CO2"))
    assert says in line and not_said not in line and "RAPL counters this" not in line


def test_the_report_describes_learned_routers_only_where_it_has_some() -> None:
    """A run of direct systems only (--systems direct-heavy,direct-medium) said "Learned
    routers: ... 5-fold cross-validation over problems; decision rule ... calibrated to
    max_cost=0.7", of routers it never trained."""

    def row(system: str) -> dict[str, object]:
        return {
            "system": system, "pass@1": 0.5, "correct": 1, "total": 2,
            "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 1e-3,
            "co2_kg": 4e-4, "cost_usd": 1e-4, "co2_per_correct_kg": 4e-4, "correct_per_kwh": 1000.0,
            "router_share_of_co2": 0.0,
            "components": {c: {"energy_kwh": 1e-4} for c in ("router_inference", "model_loading", "llm_inference")},
        }  # fmt: skip

    summary = {
        "problems": 2, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": 5, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.5, "styles": {},
        "systems": [row("direct-heavy"), row("direct-medium"), row("rules"), row("cascade")],
    }  # fmt: skip
    text = report_markdown(summary)
    assert "Learned routers" not in text and "cross-validation" not in text
    for learned in ("quality", "moe", "gated-cascade"):
        text = report_markdown(summary | {"systems": [row("direct-heavy"), row(learned)]})
        assert "Learned routers: `static` prompt embeddings, 5-fold cross-validation" in text
    # --calibrate and --two-settings are refused without a learned router: a run whose only
    # trained system is the gated cascade said its routers' decision rule was calibrated
    gate_only = report_markdown(summary | {"systems": [row("direct-heavy"), row("gated-cascade")]})
    line = next(x for x in gate_only.splitlines() if x.startswith("Learned routers"))
    assert "decision rule" not in line and "max_cost=0.7" not in line
    assert line.endswith("5-fold cross-validation over problems.")
    text = report_markdown(summary | {"systems": [row("gated-cascade"), row("knn")]})
    assert "knob calibrated to `max_cost=0.7`" in text


def test_the_report_states_how_the_reused_generations_were_measured(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A second run reuses the stored generations as they were measured (perhaps on
    another machine); the report stated only this run's meter's method as theirs."""
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    first = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    now = first["carbon_method"]
    assert first["generation_methods"] == {now: 2}
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Energy and CO2" in x)
    assert f"CodeCarbon `{now}` (all 2 generations, country FRA)" in line
    other = next(m for m in ("codecarbon:tdp-estimate", "codecarbon:measured") if m != now)
    store = ResultStore(out / "results.sqlite")
    with store.db:  # one answer measured elsewhere, another way
        store.db.execute("UPDATE generations SET method = ? WHERE rowid = 1", (other,))
    store.close()
    again = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["carbon_method"] == now  # this run's meter, which measured the routing
    assert again["generation_methods"] == {now: 1, other: 1}
    assert json.loads((out / "results.json").read_text())["generation_methods"] == {
        now: 1,
        other: 1,
    }
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Energy and CO2" in x)
    assert f"`{other}` for 1: " in line and f"`{now}` for 1: " in line
    assert "the 2 generations were measured with CodeCarbon" in line
    assert f"this run's routing with `{now}`" in line


def test_fold_ids_keep_another_sets_problems_out_of_every_test_fold() -> None:
    fold = fold_ids(5, 2, 0, train_only=3)
    assert sorted(fold[:5].tolist()) == [0, 0, 0, 1, 1] and fold[5:].tolist() == [-1, -1, -1]
    assert fold_ids(5, 2, 0).tolist() == fold[:5].tolist()  # the tested problems' folds unchanged


def test_routers_and_gate_train_on_another_problem_sets_run(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    rows = [
        {"text": f"Write a function that adds {i}.", "code": f"def add_{i}(x):\n    return x + {i}",
         "task_id": i, "test_setup_code": "", "test_list": [f"assert add_{i}(1) == {i + 1}"]}
        for i in range(6)
    ]  # fmt: skip
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    short = {"max_new_tokens": 8}
    other = run_experiment(tiny_config, tmp_path / "mbpp", systems=["gated-cascade"], folds=2,
                           style_overrides=short, progress=False, problems_file=mbpp)  # fmt: skip
    assert other["problems"] == 6 and other["problem_set"] == str(mbpp)
    assert "6 problems of " + str(mbpp) in (tmp_path / "mbpp" / "report.md").read_text()
    assert len(load_outcomes(tmp_path / "mbpp" / "outcomes" / "mbpp.json")) == 6
    systems = ["quality", "knn", "gated-cascade"]
    # one fold: trained on the other set only, every HumanEval problem tested
    alone = run_experiment(tiny_config, tmp_path / "he", systems=systems, limit=4, folds=1,
                           style_overrides=short, progress=False, train_on=tmp_path / "mbpp")  # fmt: skip
    assert alone["trained_on"] == {"run": str(tmp_path / "mbpp"), "problems": 6,
                                   "styles": alone["styles"], "style_differs": {}}  # fmt: skip
    by_name = {r["system"]: r for r in alone["systems"]}
    assert all(r["total"] == 4 for r in alone["systems"])
    assert len(by_name["gated-cascade"]["gate"]["thresholds"]) == 1
    assert "hidden state" in by_name["gated-cascade"]["gate"]["predictor"]
    assert all(0 <= p <= 1 for _, _, p in by_name["gated-cascade"]["gate"]["curve"])
    assert "trained only on the 6 problems" in (tmp_path / "he" / "report.md").read_text()
    # two folds: the other set joins each fold's training problems
    joined = run_experiment(tiny_config, tmp_path / "he", systems=systems, limit=4, folds=2,
                            style_overrides=short, progress=False, train_on=tmp_path / "mbpp")  # fmt: skip
    assert (
        len({r["system"]: r for r in joined["systems"]}["gated-cascade"]["gate"]["thresholds"]) == 2
    )
    assert "joined by the 6 problems" in (tmp_path / "he" / "report.md").read_text()
    # mistakes are clear errors, before anything is generated
    with pytest.raises(RouterLLMError, match="this run's own --out"):
        run_experiment(tiny_config, tmp_path / "he", systems=systems, limit=4, folds=1,
                       style_overrides=short, progress=False, train_on=tmp_path / "he")  # fmt: skip
    with pytest.raises(RouterLLMError, match="also in this run"):
        run_experiment(tiny_config, tmp_path / "he2", systems=systems, limit=4, folds=1,
                       style_overrides=short, progress=False, train_on=tmp_path / "he")  # fmt: skip
    with pytest.raises(RouterLLMError, match="no results.sqlite there"):
        run_experiment(tiny_config, tmp_path / "x", systems=systems, limit=4,
                       train_on=tmp_path / "nothing")  # fmt: skip
    with pytest.raises(RouterLLMError, match="none of them is among the systems"):
        run_experiment(tiny_config, tmp_path / "x", systems=["direct-light"], limit=4,
                       train_on=tmp_path / "mbpp")  # fmt: skip
    assert not (tmp_path / "x").exists()
    with pytest.raises(RouterLLMError, match=r"at least 2 cross-validation fold\(s\)"):
        run_experiment(tiny_config, tmp_path / "x", systems=systems, limit=4, folds=1)


def _row(model: str, task_id: str, passed: bool) -> dict[str, object]:
    return {"model": model, "task_id": task_id, "raw": "x", "completion": "x",
            "prompt_tokens": 3, "completion_tokens": 1, "gen_s": 0.1, "gen_kwh": 1e-6,
            "gen_co2": 4e-7, "method": "test", "status": "passed" if passed else "failed",
            "detail": "", "passed": int(passed)}  # fmt: skip


def test_stored_answers_are_never_reused_for_another_version_of_a_problem(
    tmp_path: Path,
) -> None:
    first, second = problems_subset(2, 0)
    store = ResultStore(tmp_path / "results.sqlite")
    store.add_problems([first, second])
    store.add(_row("m", first.task_id, True))
    store.add_problems([first, second])  # the same problems: resumed
    # Same task_id, stronger tests (as HumanEval+ to HumanEval): the verdict is stale.
    stronger = dataclasses.replace(first, test=first.test + "\n    assert True\n")
    with pytest.raises(RouterLLMError, match=r"1 problem\(s\) \(HumanEval/.*another version"):
        store.add_problems([stronger, second])
    reworded = dataclasses.replace(first, prompt=first.prompt + "# v2\n")
    with pytest.raises(RouterLLMError, match="another version"):
        store.add_problems([reworded])
    # A problem without a stored answer may change: nothing of it is kept.
    store.add_problems([first, dataclasses.replace(second, prompt=second.prompt + "# v2\n")])
    assert store.outcomes("m")[first.task_id].passed
    store.close()


def test_an_unreadable_results_store_is_a_clear_error_and_stays_as_it_was(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"not a database, but someone's file" * 40)
    with pytest.raises(RouterLLMError, match="results store .* cannot be opened"):
        run_experiment(tiny_config, out, systems=["direct-light"], limit=1, progress=False)
    with pytest.raises(RouterLLMError, match="results store .* cannot be opened"):
        run_experiment(tiny_config, tmp_path / "x", systems=["quality"], limit=2, folds=1,
                       progress=False, train_on=out)  # fmt: skip
    assert (out / "results.sqlite").read_bytes() == b"not a database, but someone's file" * 40


def test_options_that_would_fail_after_generating_fail_before(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    with pytest.raises(RouterLLMError, match="unknown model 'nomodel' in target"):
        run_experiment(tiny_config, out, systems=["quality"], limit=2, folds=2,
                       calibration="max_share:nomodel=0.3", progress=False)  # fmt: skip
    # two settings for a share target: refused when the first fold calibrated (until
    # 2026-12-05), once the generations were done
    with pytest.raises(RouterLLMError, match="a max_share target is met by one setting"):
        run_experiment(tiny_config, out, systems=["quality"], limit=2, folds=2,
                       calibration="max_share=0.3", two_settings=True, progress=False)  # fmt: skip
    with pytest.raises(RouterLLMError, match="max_new_tokens must be positive"):
        run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                       style_overrides={"max_new_tokens": 0}, progress=False)  # fmt: skip
    strict = tiny_config.model_copy(deep=True)
    strict.limits.max_prompt_chars = 100  # every HumanEval prompt is longer
    with pytest.raises(RouterLLMError, match="over the limit of 100"):
        run_experiment(strict, out, systems=["direct-light"], limit=1, progress=False)
    assert not out.exists()


def test_training_on_a_run_of_other_models_says_so(tiny_config: AppConfig, tmp_path: Path) -> None:
    (problem,) = problems_subset(1, 0)
    store = ResultStore(tmp_path / "other" / "results.sqlite")
    store.add_problems([problem])
    store.add(_row("someone-elses-model", problem.task_id, True))
    store.close()
    ladder = [m.name for m in tiny_config.models_by_size()]
    with pytest.raises(RouterLLMError, match="made with other models \\(someone-elses-model\\)"):
        load_training_run(tmp_path / "other", ladder, ladder[1], set())
    store = ResultStore(tmp_path / "stopped" / "results.sqlite")  # stopped after one model
    store.add_problems([problem])
    store.add(_row(ladder[0], problem.task_id, True))
    store.close()
    with pytest.raises(
        RouterLLMError,
        match=f"no generations of {ladder[1]}, {ladder[2]}; finish that run first, with systems",
    ):
        load_training_run(tmp_path / "stopped", ladder, ladder[1], set())


def test_train_gate_on_a_run_without_the_states_says_what_run_it_needs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A run of the direct systems of the gate's two models has all their answers but
    not the medium model's states; it was told to finish itself, which could never add
    them: the stored answers are reused as they are."""
    from routerllm.eval.transfer import gate_from_run

    ladder = [m.name for m in tiny_config.models_by_size()]
    run = tmp_path / "run"
    run_experiment(tiny_config, run, systems=["direct-heavy", "direct-medium"], limit=4, folds=2,
                   style_overrides={"max_new_tokens": 4}, progress=False)  # fmt: skip
    needed = "make a new run with that system: routerllm humaneval --systems gated-cascade"
    with pytest.raises(RouterLLMError, match=needed):
        gate_from_run(run, ladder, 0.7, folds=2)
    run_experiment(tiny_config, run, systems=["gated-cascade"], limit=4, folds=2,
                   style_overrides={"max_new_tokens": 4}, progress=False)  # fmt: skip
    with pytest.raises(RouterLLMError, match=needed):  # finishing it did not help, as said
        gate_from_run(run, ladder, 0.7, folds=2)
    # Answers missing for some problems: it names the system that makes what is needed.
    problems = problems_subset(2, 0)
    store = ResultStore(tmp_path / "half" / "results.sqlite")
    store.add_problems(problems)
    for m in ladder[1:]:
        store.add(_row(m, problems[0].task_id, True))
    store.close()
    with pytest.raises(
        RouterLLMError,
        match=f"no generations of {ladder[1]} for 1 of its 2 problems; finish that run first: "
        "routerllm humaneval on all of them, with the gated-cascade system",
    ):
        gate_from_run(tmp_path / "half", ladder, 0.7, folds=2)


def test_a_store_from_before_fingerprints_is_upgraded_and_still_checked(tmp_path: Path) -> None:
    import sqlite3

    (problem,) = problems_subset(1, 0)
    path = tmp_path / "results.sqlite"
    old = sqlite3.connect(path)  # the problems table as RouterLLM made it before 2026-12-01
    old.execute(
        "CREATE TABLE problems (task_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, "
        "entry_point TEXT NOT NULL)"
    )
    old.execute("INSERT INTO problems VALUES (?, ?, ?)", (problem.task_id, problem.prompt, "f"))
    old.commit()
    old.close()
    store = ResultStore(path)
    store.add(_row("m", problem.task_id, True))
    # Its stored prompt and entry point are still compared; no fingerprint to compare.
    with pytest.raises(RouterLLMError, match="another version"):
        store.add_problems([problem])  # entry point "f" was stored
    with store.db:
        store.db.execute("UPDATE problems SET entry_point = ?", (problem.entry_point,))
    store.add_problems([problem])  # same prompt and entry point: resumed, now fingerprinted
    assert store.db.execute("SELECT fingerprint FROM problems").fetchone()[0]
    store.close()


def _foreign_sqlite(path: Path, with_run_tables: bool = False) -> bytes:
    """Another program's SQLite file (``with_run_tables``: one that an older RouterLLM
    had already added its tables to); returns its bytes."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE foo (bar TEXT)")
    db.execute("INSERT INTO foo VALUES ('keep me')")
    if with_run_tables:
        from routerllm.eval.result_store import SCHEMA

        db.executescript(SCHEMA)
    db.commit()
    db.close()
    return path.read_bytes()


def test_another_programs_sqlite_file_is_refused_as_a_results_store_untouched(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    before = _foreign_sqlite(out / "results.sqlite")
    refused = r"he/results.sqlite is not a RouterLLM humaneval run \(unexpected tables: foo\); use another --out"
    with pytest.raises(RouterLLMError, match=refused):
        ResultStore(out / "results.sqlite")
    with pytest.raises(RouterLLMError, match=refused):
        run_experiment(tiny_config, out, systems=["direct-light"], limit=1, progress=False)
    assert (out / "results.sqlite").read_bytes() == before
    # ... also one an older RouterLLM already added its tables to (which reads as a newer
    # RouterLLM's run, a table more: both are said)
    mixed = _foreign_sqlite(tmp_path / "mixed" / "results.sqlite", with_run_tables=True)
    with pytest.raises(RouterLLMError, match=r"has foo, .*a newer RouterLLM made it .*or another program added to it"):  # fmt: skip
        ResultStore(tmp_path / "mixed" / "results.sqlite")
    assert (tmp_path / "mixed" / "results.sqlite").read_bytes() == mixed
    # ... and one whose table is named like a run's, with other columns
    import sqlite3

    named = sqlite3.connect(tmp_path / "named.sqlite")
    named.execute("CREATE TABLE problems (id INTEGER, title TEXT)")
    named.commit()
    named.close()
    with pytest.raises(RouterLLMError, match=r"unexpected tables: problems\)"):
        ResultStore(tmp_path / "named.sqlite")
    # An empty (0-byte) file holds nothing: it becomes a new store.
    (tmp_path / "empty.sqlite").touch()
    store = ResultStore(tmp_path / "empty.sqlite")
    store.add(_row("m", "t", True))
    assert store.models() == ["m"]
    store.close()


def test_a_store_path_may_be_a_str_but_not_a_directory(tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "runs.sqlite"))
    store.add(_row("m", "t", True))
    assert store.path == tmp_path / "runs.sqlite" and store.models() == ["m"]
    store.close()
    with pytest.raises(RouterLLMError, match="is a directory"):
        ResultStore(tmp_path)
    with pytest.raises(RouterLLMError, match="must be a str or a Path"):
        ResultStore(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"status": None}, "status None"),
        ({"passed": "no"}, "passed 'no'"),
        ({"passed": 2}, "passed 2"),
        ({"gen_kwh": "lots"}, "gen_kwh 'lots'"),
        ({"gen_s": float("nan")}, "gen_s nan"),
        ({"completion_tokens": 1.5}, "completion_tokens 1.5"),
        ({"task_id": None}, "task_id None"),
        ({"model": " "}, r"model ' ' \(needs a non-empty text\)"),
        ({"status": "bogus"}, "status 'bogus' .needs one of passed, failed, timeout"),
    ],
)
def test_a_bad_row_never_reaches_the_store(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.add(_row("m", "t1", True), [1.0, 2.0])
    with pytest.raises(RouterLLMError, match=f"bad generation row, nothing stored: {named}"):
        store.add({**_row("m", "t2", True), **change}, [3.0, 4.0])
    with pytest.raises(RouterLLMError, match="missing task_id, raw"):
        store.add({"model": "m"})
    with pytest.raises(RouterLLMError, match="finite numbers >= 0"):
        store.add_load("m", "x", "y", "z")  # type: ignore[arg-type]
    assert store.done("m") == {"t1"} and store.load_of("m") is None
    assert store.prompt_states("m", ["t1"]).tolist() == [[1.0, 2.0]]
    # numpy's numbers and bools are numbers and bools; stored as Python's own
    store.add({**_row("m", "t3", False), "passed": np.bool_(True), "gen_s": np.float32(0.5),
               "prompt_tokens": np.int64(3)})  # fmt: skip
    store.add_load("m", np.float64(1.5), 0.0, 0)
    assert store.outcomes("m")["t3"].passed is True and store.load_of("m") == (1.5, 0.0, 0.0)
    store.close()


def test_prompt_states_of_another_width_are_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.add(_row("m", "t1", True), [1.0, 2.0])
    store.add(_row("other", "t1", True), [1.0, 2.0, 3.0])  # another model, its own width
    with pytest.raises(RouterLLMError, match="is 1 wide, but its stored ones are 2 wide"):
        store.add(_row("m", "t4", True), [1.0])
    with pytest.raises(RouterLLMError, match="finite numbers"):
        store.add(_row("m", "t4", True), [1.0, float("nan")])
    assert store.done("m") == {"t1"}
    assert store.prompt_states("m", ["t1"]).shape == (1, 2)
    store.add(_row("m", "t1", True), [5.0])  # replacing the only state may change its width
    assert store.prompt_states("m", ["t1"]).tolist() == [[5.0]]
    store.close()


def test_reading_a_run_never_writes_to_it_and_a_foreign_file_is_named_as_such(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    from routerllm.eval.transfer import gate_from_run

    ladder = [m.name for m in tiny_config.models_by_size()]
    before = _foreign_sqlite(tmp_path / "other" / "results.sqlite")
    not_a_run = r"--train-on .*other: .*is not a RouterLLM humaneval run \(unexpected tables: foo\); give --train-on"
    with pytest.raises(RouterLLMError, match=not_a_run):
        load_training_run(tmp_path / "other", ladder, ladder[1], set())
    with pytest.raises(RouterLLMError, match=not_a_run.replace("--train-on", "--run")):
        gate_from_run(tmp_path / "other", ladder, 0.7)
    with pytest.raises(RouterLLMError, match=not_a_run):
        run_experiment(tiny_config, tmp_path / "he", systems=["quality"], limit=2, folds=1,
                       progress=False, train_on=tmp_path / "other")  # fmt: skip
    assert (tmp_path / "other" / "results.sqlite").read_bytes() == before
    # A text file: the option it was given to is named, not --out.
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "results.sqlite").write_text("not a db\n")
    with pytest.raises(RouterLLMError, match="cannot be opened .*; give --train-on") as e:
        load_training_run(tmp_path / "txt", ladder, ladder[1], set())
    assert "another --out" not in str(e.value) and "move it away" not in str(e.value)
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "results.sqlite").touch()
    with pytest.raises(
        RouterLLMError, match=r"not a RouterLLM humaneval run \(it holds no tables\)"
    ):
        load_training_run(tmp_path / "zero", ladder, ladder[1], set(), option="--run")
    assert (tmp_path / "zero" / "results.sqlite").read_bytes() == b""
    # A run of the first version (generations and loads only) is read as it is.
    import sqlite3

    first = tmp_path / "first" / "results.sqlite"
    first.parent.mkdir()
    db = sqlite3.connect(first)
    db.executescript(
        "CREATE TABLE generations (model TEXT NOT NULL, task_id TEXT NOT NULL, raw TEXT NOT NULL, "
        "completion TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, gen_s REAL, "
        "gen_kwh REAL, gen_co2 REAL, method TEXT, status TEXT NOT NULL, detail TEXT, "
        "passed INTEGER NOT NULL, PRIMARY KEY (model, task_id));"
        "CREATE TABLE loads (model TEXT PRIMARY KEY, load_s REAL, load_kwh REAL, load_co2 REAL);"
    )
    db.execute("INSERT INTO generations VALUES (:model, :task_id, :raw, :completion, "
               ":prompt_tokens, :completion_tokens, :gen_s, :gen_kwh, :gen_co2, :method, :status, "
               ":detail, :passed)", _row(ladder[1], "t", True))  # fmt: skip
    db.commit()
    db.close()
    old = first.read_bytes()
    with pytest.raises(RouterLLMError, match="does not record its prompts"):
        load_training_run(first.parent, ladder, ladder[1], set())
    assert first.read_bytes() == old
    # A complete run is read, and stays byte for byte as it was.
    problems = problems_subset(2, 0)
    store = ResultStore(tmp_path / "run" / "results.sqlite")
    store.add_problems(problems)
    for m in ladder:
        for p in problems:
            store.add(_row(m, p.task_id, m == ladder[-1]))
    store.close()
    written = (tmp_path / "run" / "results.sqlite").read_bytes()
    run = load_training_run(tmp_path / "run", ladder, ladder[1], set())
    assert run.task_ids == [p.task_id for p in problems] and run.medium_states is None
    assert run.scores[:, -1].tolist() == [1.0, 1.0] and run.medium_style is None
    assert (tmp_path / "run" / "results.sqlite").read_bytes() == written


def test_a_run_directory_holds_the_run_of_one_problem_set(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    from routerllm.eval.result_store import PACKAGED_SET, SCHEMA

    out = tmp_path / "he"
    short = {"max_new_tokens": 8}
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                   style_overrides=short, progress=False)  # fmt: skip
    # A subset of the same set, larger or smaller, is the same set.
    again = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["problems"] == 2
    report = (out / "report.md").read_text()
    stored = (out / "results.sqlite").read_bytes()
    rows = [{"prompt": "def f(x):\n    \"\"\"x + 1\"\"\"\n", "entry_point": "f",
             "canonical_solution": "    return x + 1\n", "task_id": "mine/0",
             "test": "def check(candidate):\n    assert candidate(1) == 2\n"}]  # fmt: skip
    other = tmp_path / "mine.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        RouterLLMError,
        match=r"he/results.sqlite holds a run of HumanEval \(packaged\), not of mine.jsonl; "
        "use a new --out directory",
    ):
        run_experiment(tiny_config, out, systems=["direct-light"], style_overrides=short,
                       progress=False, problems_file=other)  # fmt: skip
    assert (out / "report.md").read_text() == report
    assert (out / "results.sqlite").read_bytes() == stored
    store = ResultStore(out / "results.sqlite")
    assert store.problem_set() == PACKAGED_SET
    store.close()
    # A store from before sets were recorded, with answers, accepts any set, as it did.
    import sqlite3

    older = tmp_path / "older.sqlite"
    db = sqlite3.connect(older)
    db.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS meta")[0])
    db.commit()
    db.close()
    store = ResultStore(older)
    store.add(_row("m", "t", True))
    store.use_problem_set("mine.jsonl")
    store.use_problem_set(PACKAGED_SET)
    assert store.problem_set() is None
    store.close()


def test_direct_systems_generate_with_their_own_model_only(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    short = {"max_new_tokens": 8}
    light = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    store = ResultStore(out / "results.sqlite")
    assert store.models() == ["tiny-light"]  # the other two never ran
    store.close()
    assert light["models"] == ["tiny-light"] and set(light["styles"]) == {"tiny-light"}
    assert load_outcomes(out / "outcomes" / "humaneval.json").models == ["tiny-light"]
    # A system that may route anywhere runs the whole ladder; later direct-only
    # reports keep every model whose answers are all stored.
    run_experiment(tiny_config, out, systems=["random"], limit=2, style_overrides=short,
                   progress=False)  # fmt: skip
    again = run_experiment(tiny_config, out, systems=["direct-heavy"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["models"] == ["tiny-light", "tiny-medium", "tiny-heavy"]
    assert len(load_outcomes(out / "outcomes" / "humaneval.json").models) == 3


def test_stored_answers_of_other_prompting_options_are_refused_for_models_not_run(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A run that does not need a model still reports its stored answers (and writes them
    to the outcome data): made with other prompting options, they were reported beside
    this run's (the light model's 8-token answers beside the heavy model's 16-token ones,
    in one oracle and one outcome dataset). Refused, before any model runs."""
    out = tmp_path / "he"
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                   style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(
        RouterLLMError,
        match=r"results of 'tiny-light' .*another prompting style .*differs in max_new_tokens\); "
        r"continue with the same options, or use a new --out directory",
    ):
        run_experiment(tiny_config, out, systems=["direct-heavy"], limit=1,
                       style_overrides={"max_new_tokens": 16}, progress=False)  # fmt: skip
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # nothing generated, recorded or reported
    # The same options: the light model's stored answers are reported beside the heavy's.
    same = run_experiment(tiny_config, out, systems=["direct-heavy"], limit=1,
                          style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    assert same["models"] == ["tiny-light", "tiny-heavy"]


def test_a_run_measured_on_another_countrys_grid_is_refused(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A stored answer's CO2 is its energy at the grid of the country it was measured for:
    under another carbon.country_iso_code, the report called FRA's figures USA's ("all
    N generations, country USA") and priced new answers beside them at another grid.
    Refused before any model runs; the country is compared as CodeCarbon knows it."""
    out = tmp_path / "he"
    short = {"max_new_tokens": 8}
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1, style_overrides=short,
                   progress=False)  # fmt: skip
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    usa = tiny_config.model_copy(deep=True)
    usa.carbon.country_iso_code = "USA"
    with pytest.raises(
        RouterLLMError,
        match=r"he/results.sqlite were measured for carbon.country_iso_code FRA, not USA: .*"
        r"set carbon.country_iso_code: FRA in the config, or use a new --out directory",
    ):
        run_experiment(usa, out, systems=["direct-light", "direct-heavy"], limit=1,
                       style_overrides=short, progress=False)  # fmt: skip
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # nothing generated, recorded or reported
    tiny_config.carbon.country_iso_code = "fra"
    again = run_experiment(tiny_config, out, systems=["direct-heavy"], limit=1,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["country"] == "fra" and again["models"] == ["tiny-light", "tiny-heavy"]
    # A store from before countries were recorded, with answers: not known, so any.
    store = ResultStore(tmp_path / "older.sqlite")
    store.add(_row("m", "t", True))
    store.use_country("USA")
    store.use_country("FRA")
    assert store.country() is None
    store.close()


def test_a_run_never_builds_the_configs_router(tiny_config: AppConfig, tmp_path: Path) -> None:
    # every answer is asked of a named model: a config naming a router that learns,
    # without its folder, is no reason to refuse the run
    tiny_config.router.name = "knn"
    out = tmp_path / "he"
    report = run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                            style_overrides={"max_new_tokens": 4}, progress=False)  # fmt: skip
    assert report["models"] == ["tiny-light"]


def test_a_second_run_on_the_same_out_at_once_is_refused(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """Two runs at once would mix their answers in one store (each passes the style check
    before the other stores anything) and write one report over the other."""
    import fcntl

    out = tmp_path / "he"
    out.mkdir()
    with (out / ".lock").open("a") as held:  # what a running `routerllm humaneval` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RouterLLMError, match="another routerllm humaneval is running on"):
            run_experiment(tiny_config, out, systems=["direct-light"], limit=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing else was written
    # 8 tokens: a run once the lock is free is what is checked (512 took 19 s of CPU)
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                   style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    assert (out / "report.md").is_file()


def test_stored_answers_of_another_model_file_are_not_reused(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    import shutil

    # 8 tokens an answer: which file made the stored answers is what is checked, not
    # their length (512 by default: 19 s of CPU a run, against 1 s)
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    run = functools.partial(run_experiment, limit=1, style_overrides=short, progress=False)
    run(tiny_config, out, systems=["direct-light"])
    swapped = tiny_config.model_copy(deep=True)
    light = swapped.models_by_size()[0]
    other = tmp_path / "other.gguf"
    shutil.copy(light.gguf.path, other)  # type: ignore[union-attr]
    light.gguf.path = str(other)  # type: ignore[union-attr]
    before = (out / "results.sqlite").read_bytes()
    with pytest.raises(RouterLLMError, match=f"results of '{light.name}' .*another model file"):
        run(swapped, out, systems=["direct-light"])
    assert (out / "results.sqlite").read_bytes() == before
    # Nor reported as its own by a run that does not need it: its stored answers were
    # made with the other file (they were, in the report's models and outcome data).
    heavy = run(swapped, out, systems=["direct-heavy"])
    assert heavy["models"] == ["tiny-heavy"] and set(heavy["styles"]) == {"tiny-heavy"}
    assert load_outcomes(out / "outcomes" / "humaneval.json").models == ["tiny-heavy"]
    again = run(tiny_config, out, systems=["direct-heavy"])
    assert again["models"] == ["tiny-light", "tiny-heavy"]  # its own file: reported again


def test_report_paths_blocked_by_a_folder_or_file_are_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    # The run's own request log and carbon folder too: they said "log.path" and
    # "carbon.output_dir", settings of the config that the run replaces; and its store,
    # which said "give the path of a file" (the run names it, from --out).
    blocks = (("report.md", Path.mkdir), ("outcomes", Path.touch), ("requests.sqlite", Path.mkdir), ("carbon", Path.touch), ("results.sqlite", Path.mkdir))  # fmt: skip
    for blocked, make in blocks:
        out = tmp_path / blocked.replace(".", "_")
        out.mkdir()
        make(out / blocked)
        with pytest.raises(RouterLLMError, match=f"{blocked} is a (folder|file), where the run writes"):  # fmt: skip
            run_experiment(tiny_config, out, systems=["direct-light"], limit=1, progress=False)
        assert not (out / "results.sqlite").is_file()


def test_the_outcomes_of_a_model_under_100k_parameters_are_readable(tmp_path: Path) -> None:
    """models.json held the size 5e-05 as "5e-05B", which eval-routing and train
    refused: "size '5e-05B' is not a size in billions"."""
    problems = [HumanEvalProblem(f"t/{i}", f"def f{i}():\n", f"f{i}", "", "") for i in range(2)]
    outcomes = {m: {p.task_id: Outcome(True, 1.0, 1e-6, 1e-7, 5, "passed") for p in problems}
                for m in ("tiny", "small")}  # fmt: skip
    path = tmp_path / "outcomes" / "humaneval.json"
    write_outcome_dataset(
        path, problems, ["tiny", "small"], outcomes, {"tiny": 5e-05, "small": 0.5}
    )
    data = load_outcomes(path)  # models in sorted order
    assert (data.models, data.sizes().tolist()) == (["small", "tiny"], [0.5, 5e-05])  # type: ignore[union-attr]


def test_an_unmeasured_answers_cost_is_null_in_the_outcomes_and_read_as_the_models_mean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """outcomes/humaneval.json gave an answer CodeCarbon failed to measure a cost of 0
    kWh, which eval-routing read as a real cost: it is null there, and read as the mean of
    its model's measured costs, said in a warning."""
    problems = [HumanEvalProblem(f"t/{i}", f"def f{i}():\n", f"f{i}", "", "") for i in range(3)]
    outcomes = {
        "small": {p.task_id: Outcome(True, 1.0, 1e-6 * (i + 1), 1e-7, 5, "passed", 3, "codecarbon:rapl")
                  for i, p in enumerate(problems)},
        "tiny": {p.task_id: Outcome(False, 1.0, 2e-6, 1e-7, 5, "failed", 3, "codecarbon:rapl")
                 for p in problems},
    }  # fmt: skip
    failed = Outcome(True, 1.0, 0.0, 0.0, 5, "passed", 3, "codecarbon:failed")
    outcomes["small"]["t/1"] = failed
    path = tmp_path / "outcomes" / "humaneval.json"
    write_outcome_dataset(path, problems, ["small", "tiny"], outcomes, {"small": 0.5, "tiny": 0.1})
    assert [r["costs"]["small"] for r in json.loads(path.read_text())] == [1e-6, None, 3e-6]
    data = load_outcomes(path)
    np.testing.assert_allclose(data.cost_matrix(), [[1e-6, 2e-6], [2e-6, 2e-6], [3e-6, 2e-6]])
    assert "1 cost(s) not measured (null): small's 1" in caplog.text
    # a model with no cost measured has none to stand in for them: refused, said
    outcomes["small"] = dict.fromkeys(outcomes["small"], failed)
    write_outcome_dataset(path, problems, ["small", "tiny"], outcomes, {"small": 0.5, "tiny": 0.1})
    with pytest.raises(DataError, match="no measured cost for small"):
        load_outcomes(path)


def _two_problems(path: Path) -> Path:
    """Two HumanEval-format problems (f0, f1: x + i) written to ``path``."""
    rows = [{"prompt": f"def f{i}(x):\n    \"\"\"x + {i}\"\"\"\n", "entry_point": f"f{i}",
             "canonical_solution": f"    return x + {i}\n", "task_id": f"mine/{i}",
             "test": f"def check(candidate):\n    assert candidate(1) == {1 + i}\n"}
            for i in range(2)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_limit_at_or_above_the_sets_size_runs_the_full_set_not_a_subset(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    problems = _two_problems(tmp_path / "mine.jsonl")
    out = tmp_path / "he"
    for limit, subset in ((2, False), (5, False), (1, True)):
        summary = run_experiment(tiny_config, out, systems=["direct-light"], limit=limit,
                                 style_overrides={"max_new_tokens": 8}, progress=False,
                                 problems_file=problems)  # fmt: skip
        assert summary["limit"] == (limit if subset else None)
        assert ("a seeded subset" in (out / "report.md").read_text()) == subset


def test_a_problem_file_named_models_keeps_its_outcomes_beside_the_models_json(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """The outcome dataset was named after the problem file: from ``models.jsonl`` it was
    outcomes/models.json, which the models' metadata then overwrote, losing the outcomes."""
    problems = _two_problems(tmp_path / "models.jsonl")
    run_experiment(tiny_config, tmp_path / "run", systems=["direct-light"],
                   style_overrides={"max_new_tokens": 8}, progress=False,
                   problems_file=problems)  # fmt: skip
    data = load_outcomes(tmp_path / "run" / "outcomes" / "problems.json")
    assert len(data) == 2 and data.models == ["tiny-light"]
    assert list(json.loads((tmp_path / "run" / "outcomes" / "models.json").read_text())) == [
        "tiny-light"
    ]


def test_training_on_a_run_of_another_model_file_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A run whose model of a name was another file (another quantisation, another
    model): its outcomes, energies and states are not this model's to train on."""
    ladder = [m.name for m in tiny_config.models_by_size()]
    heavy = ladder[-1]
    problems = [
        HumanEvalProblem(f"Other/{i}", f"def f{i}(x):\n    '''Add {i}.'''\n", f"f{i}", "", "")
        for i in range(4)
    ]
    store = ResultStore(tmp_path / "other" / "results.sqlite")
    for m in ladder:
        source = tiny_config.model(m).source_text()
        store.use_model_source(m, source.replace(".gguf", "-q4.gguf") if m == heavy else source)
    store.add_problems(problems)
    for m in ladder:
        for p in problems:
            store.add(_row(m, p.task_id, m == heavy))
    store.close()
    out = tmp_path / "he"
    with pytest.raises(
        RouterLLMError, match=f"--train-on .*other: its {heavy} was another model file"
    ):
        run_experiment(tiny_config, out, systems=["knn"], limit=2, folds=1,
                       style_overrides={"max_new_tokens": 8}, progress=False,
                       train_on=tmp_path / "other")  # fmt: skip
    assert not out.exists()


def test_the_report_states_how_the_models_loads_were_measured(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """results.json and report.md said how the generations were measured, never the
    models' loads (a --limit run's included): the store's loads had no method."""
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    first = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    now, models = first["carbon_method"], first["models"]
    assert first["load_methods"] == {m: now for m in models} and models
    assert json.loads((out / "results.json").read_text())["load_methods"] == first["load_methods"]
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Energy and CO2" in x)
    assert f"Model loads: {', '.join(models)} measured by `{now}`. " in line
    # A load measured another way is explained; one stored before methods were, said so.
    other = next(m for m in ("codecarbon:tdp-estimate", "codecarbon:measured") if m != now)
    store = ResultStore(out / "results.sqlite")
    with store.db:
        store.db.execute("UPDATE loads SET method = ?", (other,))
    store.close()
    run_experiment(tiny_config, out, systems=["direct-light"], limit=2, style_overrides=short,
                   progress=False)  # fmt: skip
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Energy and CO2" in x)
    assert f"measured by `{other}` ({CARBON_METHODS[other]})" in line
    store = ResultStore(out / "results.sqlite")
    with store.db:
        store.db.execute("UPDATE loads SET method = NULL")
    store.close()
    again = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["load_methods"] == {m: None for m in models}
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Energy and CO2" in x)
    assert "measured in a way not recorded (stored by an older RouterLLM)" in line


def test_a_store_from_before_load_methods_is_upgraded_its_loads_kept(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "results.sqlite"
    old = sqlite3.connect(path)  # the loads table as RouterLLM made it before 2026-12-03
    old.execute("CREATE TABLE loads (model TEXT PRIMARY KEY, load_s REAL, load_kwh REAL, load_co2 REAL)")  # fmt: skip
    old.execute("INSERT INTO loads VALUES ('m', 1.0, 2e-6, 1e-6)")
    old.commit()
    old.close()
    store = ResultStore(path)
    assert store.load_of("m") == (1.0, 2e-6, 1e-6) and store.load_methods(["m", "n"]) == {"m": None}
    store.add_load("n", 0.5, 1e-6, 5e-7, "codecarbon:measured")
    assert store.load_methods(["n", "m"]) == {"n": "codecarbon:measured", "m": None}
    with pytest.raises(RouterLLMError, match="method 3: nothing was stored"):
        store.add_load("k", 0.5, 1e-6, 5e-7, 3)  # type: ignore[arg-type]
    store.close()


def test_ctrl_c_while_the_curve_is_plotted_leaves_the_plot_there_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """humaneval wrote quality_energy.png straight to its place: Ctrl-C (a real SIGINT,
    pressed once the pixels are written, before the file's end) left one cut short."""
    pytest.importorskip("matplotlib")
    import signal

    from PIL import ImageFile

    from routerllm.eval.quality_energy import plot_curve

    out = tmp_path / "quality_energy.png"
    plot_curve([(1.0, 0.5), (2.0, 0.7)], [], out)
    before, real = out.read_bytes(), ImageFile._save

    def pressing(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ImageFile, "_save", pressing)
    with pytest.raises(KeyboardInterrupt):
        plot_curve([(1.0, 0.4), (3.0, 0.9)], [], out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_write_failing_part_way_leaves_each_report_file_as_it_was(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.json, report.md and the outcome dataset were written in place: a disk
    filling up (or Ctrl-C) part-way left them cut short, and eval-routing or a reader of
    results.json then read half a file."""
    import errno

    out, short = tmp_path / "he", {"max_new_tokens": 8}
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1, style_overrides=short,
                   progress=False)  # fmt: skip
    written = [out / "results.json", out / "report.md", out / "outcomes" / "humaneval.json",
               out / "outcomes" / "models.json"]  # fmt: skip
    real = Path.write_text
    for target in written:
        before = target.read_bytes()

        def filling_up(
            path: Path, data: str, *args: object, name: str = target.name, **kwargs: object
        ) -> int:
            if name not in path.name:
                return real(path, data, *args, **kwargs)  # type: ignore[arg-type]
            real(path, data[: len(data) // 2], *args, **kwargs)  # type: ignore[arg-type]
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(Path, "write_text", filling_up)
            with pytest.raises(RouterLLMError, match=f"{target.name}: no space left on device"):
                run_experiment(tiny_config, out, systems=["direct-light"], limit=1,
                               style_overrides=short, progress=False)  # fmt: skip
        assert target.read_bytes() == before, target.name  # whole, as it was
        assert not list(out.rglob("*.partial"))


def test_a_full_disk_as_the_report_is_written_leaves_every_report_file_of_the_run_before(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each report file was renamed into place as soon as it was written: a disk that
    filled up at report.md (the last) left this run's results.json and outcome data beside
    the run before's report.md, two runs' figures that disagree, and the CLI said only
    "[Errno 28] No space left on device", naming no file."""
    import errno

    out, short = tmp_path / "he", {"max_new_tokens": 8}
    run_experiment(tiny_config, out, systems=["direct-light"], limit=1, style_overrides=short,
                   progress=False)  # fmt: skip
    files = [out / "results.json", out / "report.md", out / "outcomes" / "humaneval.json",
             out / "outcomes" / "models.json"]  # fmt: skip
    before = {f: f.read_bytes() for f in files}
    real = Path.write_text

    def full_at_the_report(path: Path, data: str, *args: object, **kwargs: object) -> int:
        if "report.md" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full_at_the_report)
    refused = r"the report could not be written to .*he/report.md: no space left on device; the answers are stored in .*he/results.sqlite"  # fmt: skip
    with pytest.raises(RouterLLMError, match=refused):
        run_experiment(tiny_config, out, systems=["direct-light", "direct-heavy"], limit=1,
                       style_overrides=short, progress=False)  # fmt: skip
    assert {f: f.read_bytes() for f in files} == before  # the run before's, all of them
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        [".lock", "results.sqlite", "requests.sqlite", "humaneval.json", "models.json",
         "results.json", "report.md", *(p.name for p in (out / "carbon").iterdir())]
    )  # fmt: skip
    monkeypatch.undo()  # room again: the same command writes the report, generating nothing
    again = run_experiment(tiny_config, out, systems=["direct-light", "direct-heavy"], limit=1,
                           style_overrides=short, progress=False)  # fmt: skip
    assert [r["system"] for r in again["systems"]] == ["direct-light", "direct-heavy"]
    assert json.loads((out / "results.json").read_text()) == again


def test_a_rename_failing_part_way_names_the_files_of_each_run_in_one_line(
    tiny_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's files are renamed into place one after another: one rename failing
    after others (here a folder made where results.json goes once the run had checked
    there was none, which os.replace cannot replace) ended `routerllm humaneval` in an
    OSError traceback, and the folder held this run's outcome data beside the run
    before's report.md, nothing said which."""
    from routerllm.eval import humaneval_report

    from .conftest import cli_in_process

    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "1",
            "--max-new-tokens", "8", "--systems"]  # fmt: skip
    assert cli_in_process(*argv, "direct-light").returncode == 0
    report, dataset = (out / "report.md").read_bytes(), out / "outcomes" / "humaneval.json"
    real = humaneval_report.report_markdown

    def then_a_folder_in_the_way(summary: dict[str, Any]) -> str:
        (out / "results.json").unlink()  # by another process, as the models ran
        (out / "results.json").mkdir()
        (out / "results.json" / "kept.txt").write_text("not a report")
        return real(summary)

    monkeypatch.setattr(humaneval_report, "report_markdown", then_a_folder_in_the_way)
    failed = cli_in_process(*argv, "direct-light,direct-heavy")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    # the lines before it are the generations' progress
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: the report could not be written to {out / 'results.json'}: ")
    assert line.endswith(
        "; outcomes/humaneval.json, outcomes/models.json are this run's and report.md the "
        f"run before's: run the same command again once results.json can be written (the "
        f"answers are stored in {out / 'results.sqlite'}; nothing is generated again)"
    ), line
    assert "tiny-heavy" in dataset.read_text() and (out / "report.md").read_bytes() == report
    assert not list(out.rglob("*.partial"))
    monkeypatch.undo()
    (out / "results.json" / "kept.txt").unlink()
    (out / "results.json").rmdir()
    assert cli_in_process(*argv, "direct-light,direct-heavy").returncode == 0
    assert not list(out.rglob("*.partial"))
    assert "direct-heavy" in (out / "report.md").read_text()
    # a run without a curve removes the run before's plot, last: said the same way
    plot = out / "quality_energy.png"

    def then_a_folder_for_the_plot(summary: dict[str, Any]) -> str:
        plot.mkdir()
        (plot / "kept.txt").write_text("not a plot")
        return real(summary)

    monkeypatch.setattr(humaneval_report, "report_markdown", then_a_folder_for_the_plot)
    failed = cli_in_process(*argv, "direct-light")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: the run before's {plot} could not be removed: is a directory; "
        "outcomes/humaneval.json, outcomes/models.json, results.json, report.md are this "
        "run's: run the same command again once quality_energy.png can be removed (the "
        f"answers are stored in {out / 'results.sqlite'}; nothing is generated again)"
    )


def test_ctrl_c_between_the_report_renames_finishes_them_then_says_interrupted(
    tiny_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's files are renamed into place one after another: Ctrl-C (a real
    SIGINT) once the first was renamed stopped the run there, leaving this run's outcome
    data beside the run before's results.json and report.md, and the CLI said only
    "interrupted; finished answers are kept". Now the renames finish, then the interrupt
    is said; one pressed before the first rename leaves every file of the run before."""
    import os
    import signal

    from routerllm.cli import EXIT_INTERRUPTED
    from routerllm.eval import humaneval_report

    from .conftest import cli_in_process

    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "1",
            "--max-new-tokens", "8", "--systems"]  # fmt: skip
    assert cli_in_process(*argv, "direct-light").returncode == 0
    files = [out / "outcomes" / "humaneval.json", out / "outcomes" / "models.json",
             out / "results.json", out / "report.md"]  # fmt: skip
    before = {f: f.read_bytes() for f in files}
    said = (f"interrupted; finished answers are kept in {out}: run the same command again to "
            "continue the run")  # fmt: skip
    real_markdown = humaneval_report.report_markdown

    def pressed_as_the_report_is_written(summary: dict[str, Any]) -> str:
        os.kill(os.getpid(), signal.SIGINT)  # the last file staged, none renamed yet
        return real_markdown(summary)

    with monkeypatch.context() as m:
        m.setattr(humaneval_report, "report_markdown", pressed_as_the_report_is_written)
        early = cli_in_process(*argv, "direct-light,direct-heavy")
    assert early.returncode == EXIT_INTERRUPTED, early.stderr
    assert early.stderr.strip().splitlines()[-1] == said
    assert {f: f.read_bytes() for f in files} == before  # all the run before's
    assert not list(out.rglob("*.partial"))
    real_publish, renamed = humaneval_report.publish, []

    def pressed_after_the_first_rename(tmp: Path, target: Path) -> None:
        real_publish(tmp, target)
        renamed.append(target)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(humaneval_report, "publish", pressed_after_the_first_rename)
    late = cli_in_process(*argv, "direct-light,direct-heavy")
    assert late.returncode == EXIT_INTERRUPTED, late.stderr
    assert late.stderr.strip().splitlines()[-1] == said
    assert renamed == files  # every file renamed: all this run's
    assert all(f.read_bytes() != before[f] for f in files)
    assert "direct-heavy" in (out / "report.md").read_text()
    assert [r["system"] for r in json.loads((out / "results.json").read_text())["systems"]] == [
        "direct-light", "direct-heavy"
    ]  # fmt: skip
    assert not list(out.rglob("*.partial"))


def test_a_run_without_a_system_that_learns_records_no_folds(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """results.json recorded "folds": 5 for a run of direct, rule-based and cascade
    systems, which cross-validate nothing; the report of such a run says nothing of folds."""
    out = tmp_path / "he"
    summary = run_experiment(tiny_config, out, systems=["direct-light", "rules", "cascade"],
                             limit=2, style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    assert summary["folds"] is None
    assert json.loads((out / "results.json").read_text())["folds"] is None
    assert not re.search(r"\bfolds?\b", (out / "report.md").read_text())  # "folder" is no fold
    # a run with a system that learns records the folds it used (fewer with few problems)
    learned = run_experiment(tiny_config, out, systems=["knn"], limit=2, folds=5, progress=False,
                             style_overrides={"max_new_tokens": 8}, encoder="hashing")  # fmt: skip
    assert learned["folds"] == 2
    assert json.loads((out / "results.json").read_text())["folds"] == 2
    assert "2-fold cross-validation" in (out / "report.md").read_text()


def test_a_system_named_twice_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """run_experiment cross-validated a system named twice twice, and reported one row
    (the command line's --systems already refused it)."""
    out = tmp_path / "he"
    with pytest.raises(RouterLLMError, match="systems name quality more than once"):
        run_experiment(tiny_config, out, systems=["quality", "rules", "quality"], limit=2,
                       progress=False)  # fmt: skip
    assert not out.exists()


def test_a_model_that_cannot_run_is_refused_before_any_model_generates(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """The heavy model's file gone: the light and medium models answered every problem
    first, then the run stopped at the heavy one (hours into a full run). A run that
    needs nothing of it, every answer stored, still reports."""
    import shutil

    config = tiny_config.model_copy(deep=True)
    heavy = config.models_by_size()[-1]
    copy = tmp_path / "heavy.gguf"
    shutil.copy(heavy.gguf.path, copy)  # type: ignore[union-attr]
    heavy.gguf.path = str(copy)  # type: ignore[union-attr]
    out, short = tmp_path / "he", {"max_new_tokens": 4}
    run_experiment(config, out, systems=["rules"], limit=1, style_overrides=short, progress=False)
    copy.unlink()
    again = run_experiment(config, out, systems=["rules"], limit=1, style_overrides=short,
                           progress=False)  # fmt: skip
    assert again["models"] == ["tiny-light", "tiny-medium", "tiny-heavy"]
    before = (out / "results.sqlite").read_bytes()
    with pytest.raises(RouterLLMError, match=f"model 'tiny-heavy' cannot run here .*{copy}"):
        run_experiment(config, out, systems=["rules"], limit=2, style_overrides=short,
                       progress=False)  # fmt: skip
    assert (out / "results.sqlite").read_bytes() == before  # nothing generated, nor recorded


def test_report_of_a_reference_that_spent_nothing_shows_no_share() -> None:
    row = {
        "system": "direct-heavy", "pass@1": 0.5, "correct": 1, "total": 2,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 0.0, "co2_kg": 0.0,
        "cost_usd": 0.0, "co2_per_correct_kg": 0.0, "correct_per_kwh": None,
        "router_share_of_co2": 0.0,
        "components": {c: {"energy_kwh": 0.0} for c in ("router_inference", "model_loading", "llm_inference")},
    }  # fmt: skip
    against = {"target": {"margin": 0.02, "energy_share": 0.7}, "resamples": 2000,
               "systems": {"light": {"pass@1_diff": -0.5, "pass@1_diff_90ci": [-1.0, 0.0],
                                     "energy_share": None, "energy_share_90ci": None,
                                     "meets_target": None, "resamples_meeting_target": None}}}  # fmt: skip
    summary = {
        "problems": 2, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": None, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.5, "systems": [row], "styles": {},
        "against_direct_heavy": against,
    }  # fmt: skip
    text = report_markdown(summary)
    assert "| light | -0.500 | -1.000..+0.000 | - | - | - | - |" in text
    assert "direct-heavy spent no measured energy" in text


def test_report_of_a_system_that_spent_nothing_names_it_not_direct_heavy() -> None:
    """direct-heavy measured, the light system at 0 kWh (CodeCarbon failed on each of its
    answers): no share and no target for it, said of it, not of direct-heavy."""
    from routerllm.eval.humaneval_run import SystemResult
    from routerllm.eval.paired import Target, against_reference

    heavy = SystemResult(
        "direct-heavy", ["h"] * 2, [True, False], 1.0, 2.0, 1.0, problem_kwh=[1.0, 1.0]
    )
    light = SystemResult("light", ["l"] * 2, [False, False], 1.0, 0.0, 0.0, problem_kwh=[0.0, 0.0])
    against = {"target": {"margin": 0.02, "energy_share": 0.7}, "resamples": 100,
               "systems": against_reference(heavy, [light], Target(), resamples=100)}  # fmt: skip
    summary = {
        "problems": 2, "limit": None, "models": ["l", "h"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": None, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.5, "styles": {},
        "systems": [r.row(0.15) | {"router_share_of_co2": 0.0} for r in (heavy, light)],
        "against_direct_heavy": against,
    }  # fmt: skip
    text = report_markdown(summary)
    assert "| light | -0.500 | -1.000..+0.000 | - | - | - | - |" in text
    assert "light: no measured energy" in text
    assert "direct-heavy spent no measured energy" not in text


def _one_system_summary(**row: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's summary of one system on 2 problems, 5 kWh, 2 kg CO2 (``row`` overrides its
    figures), and that system's row, for ``report_markdown``."""
    row = {
        "system": "s", "pass@1": row.get("correct", 0) / 2, "correct": 0, "total": 2,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 5.0, "co2_kg": 2.0,
        "cost_usd": 0.75, "co2_per_correct_kg": None, "correct_per_kwh": 0.0,
        "router_share_of_co2": 0.0,
        "components": {c: {"energy_kwh": 0.0} for c in ("router_inference", "model_loading", "llm_inference")},
    } | row  # fmt: skip
    summary = {
        "problems": 2, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": None, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": row["pass@1"], "systems": [row], "styles": {},
    }  # fmt: skip
    return row, summary


def test_report_shows_fewer_than_one_correct_per_kwh_as_it_is_not_as_zero() -> None:
    """1 problem solved for 5 kWh is 0.2 correct per kWh: the table said 0, as a system
    that solved nothing."""
    row, summary = _one_system_summary(
        system="big", correct=1, co2_per_correct_kg=2.0, correct_per_kwh=0.2
    )
    assert "| 2.00e+00 | 0.2 | 0.00% |" in report_markdown(summary)
    row |= {"correct_per_kwh": 0.125}
    assert "| 2.00e+00 | 0.125 | 0.00% |" in report_markdown(summary)
    row |= {"correct_per_kwh": 2.5}
    assert "| 2.00e+00 | 2.5 | 0.00% |" in report_markdown(summary)
    row |= {"correct_per_kwh": 1234.4}
    assert "| 2.00e+00 | 1234 | 0.00% |" in report_markdown(summary)


def test_report_says_why_a_system_has_no_co2_per_correct_solution() -> None:
    """A system that solved nothing has no CO2 per correct solution (undefined, null in
    results.json): the table gave '-', as it gave for a CO2 not measured, saying neither."""
    row, summary = _one_system_summary(
        system="tiny", correct=0, co2_per_correct_kg=None, correct_per_kwh=0.0
    )
    assert "| 7.50e-01 | none solved | 0 | 0.00% |" in report_markdown(summary)
    row |= {"correct": 1, "pass@1": 0.5, "energy_kwh": None, "co2_kg": None, "cost_usd": None,
            "correct_per_kwh": None, "router_share_of_co2": None}  # fmt: skip
    assert "| not measured | not measured | not measured | not measured | - |" in report_markdown(
        summary
    )


def test_training_on_a_run_that_shares_a_prompt_or_is_this_runs_own_out_is_refused(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """Leakage under another name: a problem of this run stored under another task_id
    (a renumbered copy of the set) would be trained on and tested; and this run's own
    --out is not an earlier run, whatever its problems. Both refused before anything runs."""
    ladder = [m.name for m in tiny_config.models_by_size()]
    mine = problems_subset(2, 0)
    renamed = dataclasses.replace(mine[1], task_id="Copy/7", prompt=mine[1].prompt + "  \n")
    others = [p for p in problems_subset(None, 0) if p.task_id not in {q.task_id for q in mine}]
    store = ResultStore(tmp_path / "copy" / "results.sqlite")
    store.add_problems([others[0], renamed])
    for m in ladder:
        for p in (others[0], renamed):
            store.add(_row(m, p.task_id, True))
    store.close()
    with pytest.raises(RouterLLMError, match=r"1 of its problems \(Copy/7\) has the prompt of"):
        run_experiment(tiny_config, tmp_path / "he", systems=["quality"], limit=2, folds=1,
                       progress=False, train_on=tmp_path / "copy")  # fmt: skip
    assert not (tmp_path / "he").exists()
    # this run's own folder, holding other problems of the same set than this run's
    with pytest.raises(RouterLLMError, match="is this run's own --out"):
        run_experiment(tiny_config, tmp_path / "copy", systems=["quality"], limit=1, seed=5,
                       folds=1, progress=False, train_on=tmp_path / "copy" / ".")  # fmt: skip


def test_each_models_answers_are_its_own_whatever_the_configs_cascade(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """The experiment asks each model by name and composes its cascades from the stored
    answers. With the config's cascade on (as a served config has it, ``cascade: {enabled:
    true, gate: ...}``), tinycoder's failed answers were escalated: tiny-heavy's answer
    was stored, measured and checked as tiny-light's."""
    from routerllm.carbon.request_log import RequestLog

    tiny_config.cascade.enabled = True
    out = tmp_path / "he"
    run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                   style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    log = RequestLog(out / "requests.sqlite", out / "carbon" / "emissions.csv")
    try:
        records = list(log.records())
    finally:
        log.close()
    assert [r.model for r in records] == ["tiny-light", "tiny-light"]
    assert all(r.escalated == {} for r in records)
    assert tiny_config.cascade.enabled  # the caller's config is left as it was


@pytest.mark.parametrize(
    ("stored", "tested", "refused"),
    [
        ("def area(r):\n    \"\"\"The circle's area.\"\"\"\n", "def area(r):\n  \"\"\"The circle's area.\"\"\"", True),
        ("def AREA(R):\n    \"\"\"THE CIRCLE'S AREA.\"\"\"\n", "def area(r):\n    \"\"\"The circle's area.\"\"\"\n", True),
        ("def prix(x):\n    \"\"\"Le prix du cafe\u0301.\"\"\"\n", "def prix(x):\n    \"\"\"Le prix du caf\u00e9.\"\"\"\n", True),
        ("def gross(x):\n    \"\"\"STRASSE\"\"\"\n", "def gross(x):\n    \"\"\"straße\"\"\"\n", True),
        ("def area(r):\n    \"\"\"The square's area.\"\"\"\n", "def area(r):\n    \"\"\"The circle's area.\"\"\"\n", False),
    ],
)  # fmt: skip
def test_a_training_runs_prompt_is_a_test_prompt_whatever_its_case_spacing_or_accent_form(
    tiny_config: AppConfig, tmp_path: Path, stored: str, tested: str, refused: bool
) -> None:
    """--train-on compared prompts with whitespace collapsed but case kept: a copy of a
    tested problem in upper case, or with its accents decomposed (NFD, as a macOS file
    or some web forms write them), was trained on (until 2026-12-05). The default
    encoder reads them as the same prompt (MiniLM's tokeniser lowercases, and Unicode
    says the two forms are one text), so they are the same problem; another word is not."""
    ladder = [m.name for m in tiny_config.models_by_size()]
    problem = dataclasses.replace(problems_subset(1, 0)[0], task_id="Copy/7", prompt=stored)
    store = ResultStore(tmp_path / "run" / "results.sqlite")
    store.add_problems([problem])
    for m in ladder:
        store.add(_row(m, problem.task_id, True))
    store.close()
    args = (tmp_path / "run", ladder, ladder[1], {"HumanEval/0"})
    if not refused:
        assert load_training_run(*args, exclude_prompts=[tested]).task_ids == ["Copy/7"]
        return
    with pytest.raises(RouterLLMError, match=r"1 of its problems \(Copy/7\) has the prompt of"):
        load_training_run(*args, exclude_prompts=[tested])


def test_energy_codecarbon_failed_to_measure_is_null_in_results_json_not_zero(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.json gave 0 kWh (and $0, and a share of 0 % of direct-heavy's energy) for
    answers CodeCarbon failed to measure, where every other JSON output says null; and it
    was written with Python's NaN, which no JSON parser reads, where a reading was one."""
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    systems = ["direct-heavy", "direct-light", "random"]
    run_experiment(tiny_config, out, systems=systems, limit=2, style_overrides=short, progress=False)  # fmt: skip
    # The light model's answers and load as a run stores them where CodeCarbon failed.
    store = ResultStore(out / "results.sqlite")
    with store.db:
        store.db.execute("UPDATE generations SET gen_kwh = 0, gen_co2 = 0, method = "
                         "'codecarbon:failed' WHERE model = 'tiny-light'")  # fmt: skip
        store.db.execute("UPDATE loads SET load_kwh = 0, load_co2 = 0, method = "
                         "'codecarbon:failed' WHERE model = 'tiny-light'")  # fmt: skip
    store.close()
    # A bad reading of the router's inference (NaN): nothing here makes CodeCarbon give one.
    from routerllm.eval import humaneval_systems

    real = humaneval_systems.measured_routing

    def nan_reading(*args: Any) -> Any:
        choices, routing = real(*args)
        return choices, dataclasses.replace(routing, energy_kwh=float("nan"), co2_kg=float("nan"))

    monkeypatch.setattr(humaneval_systems, "measured_routing", nan_reading)
    run_experiment(tiny_config, out, systems=systems, limit=2, style_overrides=short, progress=False)  # fmt: skip

    def refuse(token: str) -> None:
        raise AssertionError(f"results.json holds {token}, which JSON parsers refuse")

    data = json.loads((out / "results.json").read_text(), parse_constant=refuse)
    rows = {r["system"]: r for r in data["systems"]}
    light, heavy = rows["direct-light"], rows["direct-heavy"]
    for key in ("energy_kwh", "co2_kg", "cost_usd", "co2_per_correct_kg", "correct_per_kwh",
                "router_share_of_co2"):  # fmt: skip
        assert light[key] is None, key
    assert heavy["energy_kwh"] > 0 and heavy["cost_usd"] > 0
    for component in ("model_loading", "llm_inference"):
        assert light["components"][component]["energy_kwh"] is None
        assert light["components"][component]["duration_s"] > 0
        assert heavy["components"][component]["energy_kwh"] > 0
    # a direct system routes nothing: its routing spent a real 0, not an unmeasured one
    assert light["components"]["router_inference"]["energy_kwh"] == 0.0
    # not a share of 0 % that meets the target
    assert data["against_direct_heavy"]["systems"]["direct-light"]["energy_share"] is None
    assert rows["random"]["components"]["router_inference"]["energy_kwh"] is None
    report = (out / "report.md").read_text()
    assert "| direct-light | " in report and "nan" not in report
    line = next(x for x in report.splitlines() if x.startswith("| direct-light |"))
    assert "| not measured | not measured | not measured | not measured | - | - |" in line
    assert "- direct-light: 0.00e+00 / not measured / not measured" in report


def test_the_curve_above_the_mix_of_medium_and_heavy_by_hand() -> None:
    """Issue #4's target: the quality router's curve above the straight line from
    direct-medium (2 kWh, pass@1 0.5) to direct-heavy (4 kWh, 0.7). The curve (2, 0.4),
    (3, 0.65), (4, 0.7) is below it at 2 and crosses at 2 + 2/3, is above up to 4 where
    it meets it: above over (4 - 2 - 2/3) / 2 = 2/3 of the range."""
    from routerllm.eval.quality_energy import above_mix

    models = ["light", "medium", "heavy"]
    scores = np.zeros((10, 3))
    scores[:5, 1], scores[:7, 2] = 1, 1
    energy = np.tile([0.1, 0.2, 0.4], (10, 1))
    curve = [(2.0, 0.4), (3.0, 0.65), (4.0, 0.7)]
    assert above_mix(curve, scores, energy, models, "medium", "heavy") == pytest.approx(2 / 3)
    assert above_mix([], scores, energy, models, "medium", "heavy") is None
    # no range between them (the heavy model spent less): no share, not an error
    assert above_mix(curve, scores, energy[:, ::-1], models, "medium", "heavy") is None
    # nor where they spent the same (a line of zero length), not the curves' error
    same = np.tile([0.1, 0.4, 0.4], (10, 1))
    assert above_mix(curve, scores, same, models, "medium", "heavy") is None
    assert above_mix(curve, scores, energy, ["light", "heavy"], "medium", "heavy") is None


def test_no_share_above_the_mix_where_medium_or_heavy_generation_was_not_measured() -> None:
    """A model whose every answer CodeCarbon failed to measure has 0 kWh in the energy
    matrix (results.json says null, and the plot draws no mix line to it), yet the share
    above the mix was computed against a line from 0 kWh: a figure of a line that is not
    known. The same curve with both ends measured keeps its share."""
    from routerllm.eval.quality_energy import above_mix

    models = ["light", "medium", "heavy"]
    scores = np.zeros((10, 3))
    scores[:5, 1], scores[:7, 2] = 1, 1
    energy = np.tile([0.1, 0.0, 0.4], (10, 1))  # medium's answers: codecarbon:failed
    curve = [(2.0, 0.4), (3.0, 0.65), (4.0, 0.7)]
    args = (curve, scores, energy, models, "medium", "heavy")
    assert above_mix(*args, measured={"light", "heavy"}) is None
    assert above_mix(*args, measured={"light", "medium"}) is None
    assert above_mix(*args, measured=set(models)) is not None  # a measured 0 is a 0


def test_an_unnamed_share_target_caps_the_ladders_largest_model(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """``max_share=X`` capped the model dearest by the energy measured in the generations,
    known only after them, and was refused then where several were equally dear; in a
    ladder it caps the largest model, named before anything runs."""
    summary = run_experiment(tiny_config, tmp_path / "he", systems=["quality"], limit=3, folds=3,
                             calibration="max_share=0.3", progress=False,
                             style_overrides={"max_new_tokens": 4})  # fmt: skip
    assert summary["calibration"] == "max_share:tiny-heavy=0.3"


def test_a_curve_that_cannot_be_plotted_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib, the quality router's curve failed once everything was run."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / "he"
    with pytest.raises(RouterLLMError, match=r"matplotlib.*routerllm\[learn\].*quality"):
        run_experiment(tiny_config, out, systems=["quality"], limit=2, folds=2, progress=False)
    assert not out.exists()


def test_a_curve_point_that_chose_an_unmeasured_answer_has_no_energy() -> None:
    """Threshold sweep over 3 problems, light (1 kWh an answer) and heavy (4 kWh), deciding
    by known costs 1 and 2: the settings choose LLL, LLH, LHH and HHH. Light's answer to
    problem 1 was not measured (CodeCarbon failed): LLL and LLH counted it as 0 kWh (2 and
    5 kWh, not 3 and 6), figures of an energy nobody knows; their energy is None, the
    others' stay measured sums."""
    from routerllm.eval.quality_energy import quality_energy_curve

    predicted = np.array([[0.9, 0.95], [0.4, 0.8], [0.2, 0.6]])
    scores = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    energy = np.array([[1.0, 4.0], [0.0, 4.0], [1.0, 4.0]])  # light on problem 1: failed
    known = np.tile([1.0, 2.0], (3, 1))
    measured = np.ones((3, 2), dtype=bool)
    measured[1, 0] = False
    curve = quality_energy_curve(predicted, scores, energy, known, "threshold", measured)
    assert curve == [(9.0, pytest.approx(2 / 3)), (12.0, pytest.approx(2 / 3)),
                     (None, pytest.approx(1 / 3))]  # fmt: skip
    # every answer measured: every setting's sum, as before
    every = quality_energy_curve(predicted, scores, energy + [[0, 0], [1, 0], [0, 0]], known,
                                 "threshold", np.ones((3, 2), dtype=bool))  # fmt: skip
    assert [c for c, _ in every] == [3.0, 6.0, 9.0, 12.0]


def test_no_expected_energy_where_the_draw_may_pick_an_unmeasured_answer() -> None:
    """Expected kWh over a router's draws: 0.5 * 1 + 0.5 * 4 + 1 + 4 = 7.5 where the
    answers it may draw were measured; light's answer to problem 2, never drawn, does not
    matter; light's to problem 1, drawn for sure, makes the expectation unknown (None),
    not 7.5 - 1 with its 0 kWh."""
    from routerllm.eval.quality_energy import expected_kwh

    policy = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    energy = np.array([[1.0, 4.0], [1.0, 4.0], [0.0, 4.0]])
    measured = np.ones((3, 2), dtype=bool)
    measured[2, 0] = False
    assert expected_kwh(policy, energy, measured) == pytest.approx(7.5)
    measured[1, 0], energy[1, 0] = False, 0.0
    assert expected_kwh(policy, energy, measured) is None


def test_no_share_above_the_mix_where_a_curve_point_has_no_energy() -> None:
    """A point of unknown energy may be a corner of the curve's hull: without it the
    share above the mix is a figure of another curve."""
    from routerllm.eval.quality_energy import above_mix

    models = ["light", "medium", "heavy"]
    scores = np.zeros((10, 3))
    scores[:5, 1], scores[:7, 2] = 1, 1
    energy = np.tile([0.1, 0.2, 0.4], (10, 1))
    curve: list[tuple[float | None, float]] = [(2.0, 0.4), (4.0, 0.7), (None, 0.65)]
    assert above_mix(curve, scores, energy, models, "medium", "heavy") is None


def test_report_says_an_expectation_over_unmeasured_answers_is_not_measured() -> None:
    row = {
        "system": "quality", "pass@1": 0.5, "correct": 2, "total": 4,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 1e-3, "co2_kg": 4e-4,
        "cost_usd": 1e-4, "co2_per_correct_kg": 2e-4, "correct_per_kwh": 2000.0,
        "router_share_of_co2": 0.001, "decision_rules": ["threshold"],
        "components": {c: {"energy_kwh": 1e-4} for c in ("router_inference", "model_loading", "llm_inference")},
        "fixed_mix": {"folds": 2, "expected_pass@1": 0.625, "expected_generation_kwh": None},
    }  # fmt: skip
    summary = {
        "problems": 4, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": 5, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.75, "systems": [row], "styles": {},
        "quality_energy_curve": [[3.0, 0.5], [None, 0.25], [None, 0.75]],
        "quality_energy_curve_rule": "threshold", "quality_energy_curve_above_mix": None,
    }  # fmt: skip
    text = report_markdown(summary)
    assert "pass@1 0.625 at an energy not measured" in text and "None" not in text
    assert (
        "Of the 3 points of its quality-energy curve over the knob, 2 chose an answer whose energy was not measured"
        in text
    )


def test_the_curve_of_a_run_with_an_unmeasured_answer_has_no_energy_there(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """One problem's answers as a run stores them where CodeCarbon failed: every setting of
    the quality router's knob chooses one of them, so no point of its curve has a known
    energy (results.json said 0 kWh for that answer, and drew the curve with it), nor the
    share above the mix; the direct systems' rows keep the convention of the carbon line
    (the measured parts added up) and the plot is still drawn, without the curve."""
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    systems = ["direct-medium", "direct-heavy", "quality"]
    kwargs: dict[str, Any] = {"systems": systems, "limit": 4, "folds": 2, "progress": False}
    run_experiment(tiny_config, out, style_overrides=short, **kwargs)
    store = ResultStore(out / "results.sqlite")
    (task,) = store.db.execute("SELECT MIN(task_id) FROM generations").fetchone()
    with store.db:
        store.db.execute("UPDATE generations SET gen_kwh = 0, gen_co2 = 0, method = "
                         "'codecarbon:failed' WHERE task_id = ?", (task,))  # fmt: skip
    store.close()
    run_experiment(tiny_config, out, style_overrides=short, **kwargs)

    def refuse(token: str) -> None:
        raise AssertionError(f"results.json holds {token}")

    data = json.loads((out / "results.json").read_text(), parse_constant=refuse)
    assert data["quality_energy_curve"] and all(c is None for c, _ in data["quality_energy_curve"])
    assert data["quality_energy_curve_above_mix"] is None
    heavy = next(r for r in data["systems"] if r["system"] == "direct-heavy")
    assert heavy["components"]["llm_inference"]["energy_kwh"] > 0
    n = len(data["quality_energy_curve"])
    assert (
        f"{counted(n, 'point')} of its quality-energy curve over the knob, {n} chose an answer "
        "whose energy was not measured" in (out / "report.md").read_text()
    )
    assert (out / "quality_energy.png").read_bytes().startswith(b"\x89PNG")


def _encoder_builds(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The metered component each encoder is built under from now on (None: outside
    every metered block), watched on the real meter and the real ``create_encoder``."""
    import contextlib

    from routerllm import encoders
    from routerllm.carbon.codecarbon_meter import CodeCarbonMeter

    current: list[str] = []
    built: list[str | None] = []
    real_measure, real_create = CodeCarbonMeter.measure, encoders.create_encoder

    @contextlib.contextmanager
    def measure(self: CodeCarbonMeter, component: str) -> Any:
        current.append(component)
        try:
            with real_measure(self, component) as slot:
                yield slot
        finally:
            current.pop()

    def create(spec: str = "minilm") -> Any:
        built.append(current[-1] if current else None)
        return real_create(spec)

    monkeypatch.setattr(CodeCarbonMeter, "measure", measure)
    monkeypatch.setattr(encoders, "create_encoder", create)
    return built


def test_the_complexity_routers_one_time_load_is_loading_not_its_first_requests_routing(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its classifier and encoder (WordLlama: 0.65 s here, a routing then 1 ms) were
    built by the first prompt routed, inside the metered router inference: the report
    gave a load as per-request routing. They are loading, as each model's first load."""
    built = _encoder_builds(monkeypatch)
    out = tmp_path / "he"
    summary = run_experiment(tiny_config, out, systems=["complexity"], limit=2,
                             style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    assert built == ["model_loading"]
    system = summary["systems"][0]
    # the loads of the models it chose (it is billed no other's; summed over every model,
    # the comparison failed where it chose fewer, 0.81 against 1.20 s, 2026-12-07)
    store = ResultStore(out / "results.sqlite")
    models_load_s = sum(store.load_of(m)[0] for m in system["model_distribution"])  # type: ignore[index]
    store.close()
    loading = system["components"]["model_loading"]
    assert loading["duration_s"] > models_load_s and loading["energy_kwh"] > 0


def test_cross_validated_routers_build_their_encoder_once_as_loading(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each fold's router but the first built its own encoder as it routed its test
    problems, inside the metered router inference (a MiniLM: seconds a fold); the
    first one's build, made as it trained, was counted nowhere."""
    rng = np.random.default_rng(1)
    prompts = [f"task {i}: " + " ".join(rng.choice(list("abcdefgh"), 6)) for i in range(12)]
    models = ["tiny-light", "tiny-medium", "tiny-heavy"]
    scores = (rng.random((12, 3)) < [0.3, 0.5, 0.8]).astype(float)
    built = _encoder_builds(monkeypatch)
    with RouterLLM(tiny_config) as system:
        cv = cross_validated("knn", system, prompts, scores, np.ones((12, 3)), models, 3, 0,
                             "hashing")  # fmt: skip
    assert built == ["model_loading"]
    assert cv.encoder_load[0] > 0 and cv.encoder_load_measured


def test_training_on_a_run_of_another_prompting_style_is_said_and_recorded(
    tiny_config: AppConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Which model solves which problem depends on how it was asked: a --train-on run made
    in another mode mixes two experiments. Not refused (more training data may be meant),
    but said in one line naming both styles, and recorded beside trained_on."""
    from routerllm.eval.codegen import style_for

    ladder = [m.name for m in tiny_config.models_by_size()]
    tested = {q.task_id for q in problems_subset(2, 0)}  # once: each call loads the set
    others = [p for p in problems_subset(None, 0) if p.task_id not in tested][:4]
    for name, mode in (("complete", "complete"), ("same", "chat")):
        store = ResultStore(tmp_path / name / "results.sqlite")
        store.add_problems(others)
        for m in ladder:
            store.use_style(
                m, dataclasses.asdict(style_for(m, {"mode": mode, "max_new_tokens": 8}))
            )
            for p in others:
                store.add(_row(m, p.task_id, m != ladder[0]))
        store.close()
    out = tmp_path / "he"
    with caplog.at_level(logging.WARNING, logger="routerllm"):
        summary = run_experiment(tiny_config, out, systems=["knn"], limit=2, folds=1,
                                 style_overrides={"max_new_tokens": 8}, progress=False,
                                 train_on=tmp_path / "complete")  # fmt: skip
    said = [r.getMessage() for r in caplog.records if "prompting style" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], said
    assert (
        f"--train-on {tmp_path / 'complete'} was made in another prompting style: it asked {', '.join(ladder)} in complete mode "
        f"(max_new_tokens 8), this run in chat mode (max_new_tokens 8): differs in "
        f"instruction, mode, stop" in said[0]
    )
    trained_on = summary["trained_on"]
    assert {m: s["mode"] for m, s in trained_on["styles"].items()} == dict.fromkeys(ladder, "complete")  # fmt: skip
    assert trained_on["style_differs"] == dict.fromkeys(ladder, ["instruction", "mode", "stop"])
    assert json.loads((out / "results.json").read_text())["trained_on"] == trained_on
    report = (out / "report.md").read_text()
    assert f"its answers asked in another prompting style ({', '.join(ladder)} in complete mode" in report  # fmt: skip
    # the same style (the stored answers reused): nothing said, and the report says so
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="routerllm"):
        same = run_experiment(tiny_config, out, systems=["knn"], limit=2, folds=1,
                              style_overrides={"max_new_tokens": 8}, progress=False,
                              train_on=tmp_path / "same")  # fmt: skip
    assert not [r for r in caplog.records if "prompting style" in r.getMessage()]
    assert same["trained_on"]["style_differs"] == {}
    assert "in this run's prompting style" in (out / "report.md").read_text()


def test_an_answer_the_request_log_could_not_take_is_stored_and_said_so(
    tiny_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's disk full once an answer was generated: the run stopped saying "the
    answer was produced but could not be logged", and did not keep it (a rerun generated
    it again). A failing write is injected at the log's boundary: nothing real can fill
    a disk in a test."""
    import sqlite3
    from contextlib import closing

    from routerllm.carbon.request_log import RequestLog

    from .conftest import cli_in_process

    insert, calls = RequestLog._insert, []

    def full_at_the_second(log: RequestLog, record: Any) -> None:
        calls.append(record.id)
        if len(calls) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        insert(log, record)

    monkeypatch.setattr(RequestLog, "_insert", full_at_the_second)
    no_block_read_as_contended(monkeypatch)  # its stderr is read whole
    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "2",
            "--systems", "direct-light", "--max-new-tokens", "8", "--json"]  # fmt: skip
    stopped = cli_in_process(*argv)
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr
    [line] = stopped.stderr.strip().splitlines()
    store = ResultStore(out / "results.sqlite", read_only=True)
    try:
        second = store.problems()[1][0]  # the problems are recorded in the order answered
        assert len(store.done("tiny-light")) == 2  # the unlogged answer is kept
    finally:
        store.close()
    assert line == (
        f"error: the answer was produced but could not be logged to {out / 'requests.sqlite'} "
        f"(log.path): database or disk is full; tiny-light's answer to {second} is stored in "
        f"{out / 'results.sqlite'} all the same: run the same command again, once the log can "
        f"be written, to continue the run"
    )
    monkeypatch.undo()
    again = cli_in_process(*argv)
    assert again.returncode == 0, again.stderr
    with closing(sqlite3.connect(out / "requests.sqlite")) as db:  # nothing generated again
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone() == (1,)
    # the store's disk full too: said, not that the answer is stored
    monkeypatch.setattr(RequestLog, "_insert", full_at_the_second)

    def full(store: ResultStore, *args: Any) -> None:
        raise store._unwritable(sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(ResultStore, "add", full)
    del calls[1:]  # the next answer is the one the log cannot take
    both = cli_in_process(*[a if a != "2" else "3" for a in argv])  # a third problem
    [line] = both.stderr.strip().splitlines()
    assert both.returncode == 2 and line == (
        f"error: the answer was produced but could not be logged to {out / 'requests.sqlite'} "
        f"(log.path): database or disk is full; nor could it be stored: results store "
        f"{out / 'results.sqlite'} could not be written (database or disk is full); the "
        f"answers stored so far are kept: run the same command again once that is fixed"
    )


def test_a_router_s_share_too_small_for_the_table_is_not_shown_as_0() -> None:
    """The rules router's 9.6e-9 kWh of routing beside 3.3e-4 kWh of generation (a
    `humaneval --limit 2` on the tiny models) read "0.00%", as direct-heavy's, which routes
    nothing: now "<0.01%"; a share of nothing stays "0.00%"."""
    _, summary = _one_system_summary(router_share_of_co2=2.9e-5)
    assert "| none solved | 0 | <0.01% |" in report_markdown(summary)
    _, summary = _one_system_summary(router_share_of_co2=0.0)
    assert "| none solved | 0 | 0.00% |" in report_markdown(summary)


def test_answers_measured_under_contention_are_named_and_remeasured_on_request(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer generated while other processes loaded the CPU is named in results.json
    and report.md (its energy includes their work); --remeasure-contended generates and
    measures it again; a store from before the CPU share was recorded still reports."""
    from routerllm.carbon import cpu_share

    # every block too short to tell, however busy this machine is: the shares stored are
    # those the test writes (tests/test_cpu_share.py measures real ones)
    monkeypatch.setattr(cpu_share, "MIN_CPU_S", float("inf"))
    out, short = tmp_path / "he", {"max_new_tokens": 8}
    first = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert first["contended_generations"] == {"above_share": 0.25, "generations": [], "not_recorded": 2}  # fmt: skip
    store = ResultStore(out / "results.sqlite")
    model, first_ids = "tiny-light", [t for t, _, _ in store.problems()]
    task_id = first_ids[0]
    with store.db:  # as a run on a busy machine stores it: 5 s, 63 % of the CPU others'
        store.db.execute("UPDATE generations SET gen_s = 5.0 WHERE model = ? AND task_id = ?", (model, task_id))  # fmt: skip
        store.db.execute("INSERT INTO cpu_contention VALUES (?, ?, 0.63)", (model, task_id))
        store.db.execute("INSERT INTO cpu_contention VALUES (?, ?, 0.1)", (model, first_ids[1]))
    store.close()
    again = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert again["contended_generations"]["generations"] == [
        {"model": model, "task_id": task_id, "others_cpu_share": 0.63}
    ] and again["contended_generations"]["not_recorded"] == 0  # fmt: skip
    saved = json.loads((out / "results.json").read_text())
    assert saved["contended_generations"] == again["contended_generations"]
    # its system's generation component says so, as route --json's does: the answers'
    # shares weighted by their times; its loading's, too short to tell here, has none
    (direct,) = saved["systems"]
    generation = direct["components"]["llm_inference"]
    other_s = generation["duration_s"] - 5.0  # the other answer's time
    share = (0.63 * 5.0 + 0.1 * other_s) / (5.0 + other_s)
    assert generation["others_cpu_share"] == pytest.approx(share, rel=1e-12) and share > 0.25
    assert generation["contended"] is True
    for part in ("router_inference", "model_loading"):
        assert (direct["components"][part]["others_cpu_share"], direct["components"][part]["contended"]) == (None, False)  # fmt: skip
    line = next(x for x in (out / "report.md").read_text().splitlines() if "under contention" in x)
    assert "1 generation ran while other processes used more than 25% of the machine's CPU" in line
    assert f"{model} {task_id} (63%)" in line and "`--remeasure-contended`" in line
    assert ResultStore(out / "results.sqlite").outcomes(model)[task_id].gen_s == 5.0  # reused
    remeasured = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                                style_overrides=short, progress=False, remeasure_contended=True)  # fmt: skip
    store = ResultStore(out / "results.sqlite")
    assert store.outcomes(model)[task_id].gen_s < 5.0  # generated and measured again
    assert store.others_cpu_shares([model], first_ids) == {(model, task_id): None, (model, first_ids[1]): 0.1}  # fmt: skip
    with store.db:  # as a store made before the CPU share was recorded
        store.db.execute("DROP TABLE cpu_contention")
    store.close()
    assert remeasured["contended_generations"]["generations"] == []
    assert "under contention" not in (out / "report.md").read_text()
    older = run_experiment(tiny_config, out, systems=["direct-light"], limit=2,
                           style_overrides=short, progress=False)  # fmt: skip
    assert older["contended_generations"] == {"above_share": 0.25, "generations": [], "not_recorded": 2}  # fmt: skip


def test_loading_and_routing_say_they_were_measured_under_contention_as_generation_does(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.json's routing and loading components gave ``others_cpu_share`` null and
    ``contended`` false whatever the machine's load, as the store kept no share of a
    model's load (and the routing's, measured as the report is made, was dropped): a
    loading among busy processes read as a quiet one. The store keeps the load's share
    now, and the run's routing gives its own; report.md names the contended components.
    A store made before keeps its loads, whose share reads as not known."""
    out, short, systems = tmp_path / "he", {"max_new_tokens": 8}, ["direct-light", "random"]
    every_block_read_at(monkeypatch, 0.8)
    run_experiment(tiny_config, out, systems=systems, limit=2, style_overrides=short, progress=False)  # fmt: skip
    rows = {r["system"]: r["components"] for r in json.loads((out / "results.json").read_text())["systems"]}  # fmt: skip
    # (two answers' blocks weighted by their times: 0.8 to the last bit or so)
    for system, part in [("direct-light", "model_loading"), ("direct-light", "llm_inference"),
                         ("random", "router_inference"), ("random", "model_loading"),
                         ("random", "llm_inference")]:  # fmt: skip
        assert rows[system][part]["others_cpu_share"] == pytest.approx(0.8), (system, part)
        assert rows[system][part]["contended"] is True, (system, part)
    # a direct system routes nothing: no block, no share
    assert rows["direct-light"]["router_inference"]["others_cpu_share"] is None
    breakdown = (out / "report.md").read_text().split("Component breakdown")[1]
    line = next(x for x in breakdown.splitlines() if x.startswith("- random: "))
    assert line.endswith(" (measured under contention: router inference 80%, model loading 80%, generation 80%)"), line  # fmt: skip
    line = next(x for x in breakdown.splitlines() if x.startswith("- direct-light: "))
    assert line.endswith(" (measured under contention: model loading 80%, generation 80%)"), line
    assert "with `--remeasure-contended` on a quiet machine to load and measure it again" in breakdown  # fmt: skip
    # reported again on a quieter machine: the stored load keeps its share, the routing,
    # measured now, has this run's
    every_block_read_at(monkeypatch, 0.1)
    run_experiment(tiny_config, out, systems=systems, limit=2, style_overrides=short, progress=False)  # fmt: skip
    rows = {r["system"]: r["components"] for r in json.loads((out / "results.json").read_text())["systems"]}  # fmt: skip
    # a weighted mean of the vocabulary read's 0.8 and the load's: 0.8 to a rounding
    assert rows["direct-light"]["model_loading"]["others_cpu_share"] == pytest.approx(0.8)
    assert rows["random"]["router_inference"]["others_cpu_share"] == 0.1
    assert rows["random"]["router_inference"]["contended"] is False
    store = ResultStore(out / "results.sqlite")
    assert store.load_shares(["tiny-light", "unknown"]) == pytest.approx(
        {"tiny-light": 0.8}
    )  # loaded models only
    with store.db:  # as a store made before the loads' shares were recorded
        store.db.execute("DROP TABLE load_contention")
    store.close()
    older = ResultStore(out / "results.sqlite", read_only=True)  # as --train-on reads it
    assert older.load_shares(["tiny-light"]) == {"tiny-light": None}
    older.close()
    run_experiment(tiny_config, out, systems=systems, limit=2, style_overrides=short, progress=False)  # fmt: skip
    rows = {r["system"]: r["components"] for r in json.loads((out / "results.json").read_text())["systems"]}  # fmt: skip
    loading = rows["direct-light"]["model_loading"]
    assert (loading["others_cpu_share"], loading["contended"]) == (None, False)
    assert loading["energy_kwh"] > 0  # the load itself kept


def test_a_learned_routers_routing_and_encoder_build_give_their_cpu_share(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folds' routing and the encoder's build, measured as the report is made, give
    the share of the machine's CPU other processes used (their blocks together)."""
    rng = np.random.default_rng(1)
    prompts = [f"task {i}: " + " ".join(rng.choice(list("abcdefgh"), 6)) for i in range(12)]
    scores = (rng.random((12, 3)) < [0.3, 0.5, 0.8]).astype(float)
    every_block_read_at(monkeypatch, 0.6)
    with RouterLLM(tiny_config) as system:
        cv = cross_validated("knn", system, prompts, scores, np.ones((12, 3)),
                             ["tiny-light", "tiny-medium", "tiny-heavy"], 3, 0, "hashing")  # fmt: skip
    assert cv.router_share == pytest.approx(0.6) and cv.encoder_load_share == 0.6


def test_a_models_load_with_a_bad_cpu_share_is_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    for bad in (1.5, -0.1, float("nan"), "high"):
        with pytest.raises(RouterLLMError, match="others_cpu_share"):
            store.add_load("m", 1.0, 1e-6, 1e-7, "codecarbon:measured", bad)  # type: ignore[arg-type]
    assert store.load_of("m") is None  # nothing stored
    store.add_load("m", 1.0, 1e-6, 1e-7, "codecarbon:measured", 0.5)
    store.add_load("n", 1.0, 1e-6, 1e-7)  # left out: not known
    assert store.load_shares(["m", "n", "o"]) == {"m": 0.5, "n": None}
    store.add_load("m", 2.0, 1e-6, 1e-7, "codecarbon:measured")  # loaded again: replaced
    assert store.load_shares(["m"]) == {"m": None}
    with store.db:  # a share edited out of range by hand is refused as the store opens
        store.db.execute("INSERT INTO load_contention VALUES ('n', 7)")
    store.close()
    with pytest.raises(RouterLLMError, match="load_contention of n: others_cpu_share is 7"):
        ResultStore(tmp_path / "results.sqlite")


def test_a_generation_row_with_a_bad_cpu_share_is_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    for bad in (1.5, -0.1, float("nan"), "high"):
        with pytest.raises(RouterLLMError, match="others_cpu_share"):
            store.add(_row("m", "t", True) | {"others_cpu_share": bad})
    store.add(_row("m", "t", True) | {"others_cpu_share": 0.5})
    store.add(_row("m", "u", True))  # left out: not known
    assert store.others_cpu_shares(["m"], ["t", "u"]) == {("m", "t"): 0.5, ("m", "u"): None}
    store.close()


def _load_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "'s load was measured while" in r.getMessage()]  # fmt: skip


def test_a_load_measured_under_contention_is_warned_once_and_remeasured_on_request(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A model's load stored while other processes used more than 25 % of the CPU was
    neither said nor measured again: --remeasure-contended regenerated the contended
    answers only, and the first load stored stayed for good. Now the run warns of it once
    (the answers' warning is said once besides), and --remeasure-contended measures it
    again: in the load of a model that answers, or by loading one with no answer to give;
    one measured under contention again is stored so, and said again; an uncontended
    load, or one whose share is not known (an older store), is not loaded again."""
    light, medium = "tiny-light", "tiny-medium"
    models, problems, short = [light, medium], problems_subset(1, 0), {"max_new_tokens": 4}
    store = ResultStore(tmp_path / "results.sqlite")
    caplog.set_level(logging.WARNING, logger="routerllm.eval.humaneval_run")

    def run(share: float, remeasure: bool = True) -> list[str]:
        """A run with every block read at ``share``: the models that answered."""
        caplog.clear()
        every_block_read_at(monkeypatch, share)
        answered: list[str] = []
        with RouterLLM(tiny_config) as system:
            run_models(system, problems, store, models, short, progress=False,
                       on_row=lambda row: answered.append(row["model"]),
                       remeasure_contended=remeasure)  # fmt: skip
            assert system.manager.loaded_models == []  # each unloaded after it ran
        return answered

    assert run(0.8, remeasure=False) == models
    # the two loads and answers were contended: one warning for each kind
    assert _load_warnings(caplog) == [
        f"{light}'s load was measured while other processes used 80% of the machine's CPU "
        f"(above 25%): its measured energy includes their work, and it ran slower; every "
        f"system that loads it counts that load (its model_loading in results.json and "
        f"report.md's component breakdown). Once the machine is quiet, run the same command "
        f"with --remeasure-contended to load and measure again every load stored so (said "
        f"once a run for the loads)"
    ]
    assert len([r for r in caplog.records if "'s answer to " in r.getMessage()]) == 1
    assert store.load_shares(models) == pytest.approx({light: 0.8, medium: 0.8})
    # the medium model's answer measured again on a quieter moment: it has none to give now
    with store.db:
        store.db.execute("UPDATE cpu_contention SET others_cpu_share = 0.1 WHERE model = ?", (medium,))  # fmt: skip
    answer = store.outcomes(medium)
    first = {m: store.load_of(m) for m in models}
    method = store.load_methods(models)
    # remeasured while the machine is still busy: stored as measured, and said again
    assert run(0.6) == [light]
    assert store.load_shares(models) == {light: 0.6, medium: 0.6}
    second = {m: store.load_of(m) for m in models}
    assert all(second[m] != first[m] for m in models)  # measured again, both
    assert store.load_methods(models) == method  # by the same meter
    assert store.outcomes(medium) == answer  # nothing generated
    assert len(_load_warnings(caplog)) == 1 and "used 60% of" in _load_warnings(caplog)[0]
    # on a quiet machine: measured again, nothing said
    assert run(0.1) == [light]
    assert store.load_shares(models) == {light: 0.1, medium: 0.1}
    assert all(store.load_of(m) not in (first[m], second[m]) for m in models)
    assert _load_warnings(caplog) == []
    assert store.load_methods(models) == method
    # uncontended: nothing answers, nothing is loaded again
    quiet = {m: store.load_of(m) for m in models}
    assert run(0.9) == [] and {m: store.load_of(m) for m in models} == quiet
    # a store made before the loads' shares were recorded: its loads' are not known, and
    # such a load is not loaded again (its answers' are not either)
    with store.db:
        store.db.execute("UPDATE load_contention SET others_cpu_share = 0.9")
        store.db.execute("UPDATE cpu_contention SET others_cpu_share = 0.1")
    store.db.execute("DROP TABLE load_contention")
    store.close()
    store = ResultStore(tmp_path / "results.sqlite")
    assert store.load_shares(models) == {light: None, medium: None}
    assert run(0.9) == [] and {m: store.load_of(m) for m in models} == quiet
    store.close()


def test_a_remeasured_load_interrupted_or_failing_keeps_the_stored_one(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--remeasure-contended replaces a stored load only once the new one is stored: a
    Ctrl-C or a failure as a model loads (one with answers to give, one with none) leaves
    the old load and its share; a model that cannot run here is refused first."""
    import shutil

    from routerllm.backends.llama_cpp import LlamaCppBackend
    from routerllm.exceptions import BackendError

    light, medium = "tiny-light", "tiny-medium"
    models, problems, short = [light, medium], problems_subset(1, 0), {"max_new_tokens": 4}
    config = tiny_config.model_copy(deep=True)
    copy = tmp_path / "medium.gguf"
    shutil.copy(config.model(medium).gguf.path, copy)  # type: ignore[union-attr]
    config.model(medium).gguf.path = str(copy)  # type: ignore[union-attr]
    store = ResultStore(tmp_path / "results.sqlite")
    every_block_read_at(monkeypatch, 0.8)
    with RouterLLM(config) as system:
        run_models(system, problems, store, models, short, progress=False)
    with store.db:  # the light model has an answer to give again, the medium one none
        store.db.execute("UPDATE cpu_contention SET others_cpu_share = 0.1 WHERE model = ?", (medium,))  # fmt: skip
    stored = {m: store.load_of(m) for m in models}
    every_block_read_at(monkeypatch, 0.1)
    real_load = LlamaCppBackend.load

    def stopped_at(model: str, error: BaseException) -> Any:
        def load(self: LlamaCppBackend) -> None:
            if self.config.name == model:
                raise error
            real_load(self)

        return load

    # (the medium model run alone: the light one, run first, would store its new load)
    for model, error, raised in [
        (light, KeyboardInterrupt(), KeyboardInterrupt),
        (medium, KeyboardInterrupt(), KeyboardInterrupt),
        (medium, BackendError("llama.cpp could not load it"), RouterLLMError),
    ]:
        monkeypatch.setattr(LlamaCppBackend, "load", stopped_at(model, error))
        with RouterLLM(config) as system, pytest.raises(raised) as caught:
            run_models(system, problems, store, models if model == light else [medium], short,
                       progress=False, remeasure_contended=True)  # fmt: skip
        assert {m: store.load_of(m) for m in models} == stored, (model, error)
        assert store.load_shares(models) == pytest.approx({light: 0.8, medium: 0.8}), (model, error)
    assert str(caught.value) == (
        "tiny-medium failed to load as --remeasure-contended measured its load again "
        "(llama.cpp could not load it); its stored load is kept"
    )
    monkeypatch.setattr(LlamaCppBackend, "load", real_load)
    copy.unlink()  # its file gone: refused before any model runs
    before = store.path.read_bytes()
    with RouterLLM(config) as system, pytest.raises(RouterLLMError, match=rf"model 'tiny-medium' cannot run here .*{copy}.*--remeasure-contended is to load it to measure again its stored load"):  # fmt: skip
        run_models(system, problems, store, models, short, progress=False,
                   remeasure_contended=True)  # fmt: skip
    assert store.path.read_bytes() == before
    store.close()
