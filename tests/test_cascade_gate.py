"""The gated cascade's gate in ``routerllm humaneval`` and ``routerllm train-gate`` with
answers whose energy CodeCarbon failed to measure (stored as 0 kWh, not known): hand-made
problems, no model run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from routerllm.carbon.units import energy
from routerllm.config import AppConfig
from routerllm.data.humaneval import load_humaneval
from routerllm.eval import prompt_examples
from routerllm.eval.cascade_gate import CURVE_BUDGETS, budget_gate
from routerllm.eval.cascade_overhead import Checks, FirstAnswers, Gate
from routerllm.eval.prompt_examples import Verification
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError
from routerllm.gate import EscalationGate
from routerllm.system import RouterLLM

from .test_result_store import ROW

MODELS = ["tiny-medium", "tiny-heavy"]
FIRST_KWH, THEN_KWH = 1e-5, 4e-5  # every measured answer's: the fold means, whatever the fold


def _problems(n: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """The heavy model's success falls with state feature 0 among unverified answers;
    each model spends the same energy on every problem."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, 3))
    unverified = rng.random(n) < 0.5
    then = np.where(unverified, states[:, 0] < 0, True).astype(float)
    return {
        "states": states,
        "scores": np.column_stack([(~unverified).astype(float), then]),
        "energy": np.tile([FIRST_KWH, THEN_KWH], (n, 1)),
        "tokens": np.column_stack([rng.integers(50, 300, n), rng.integers(20, 400, n)]).astype(float),
        "unverified": unverified,
    }  # fmt: skip


def _gate(
    system: RouterLLM,
    p: dict[str, np.ndarray],
    budget: float,
    measured: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The gated cascade's escalations (unverified and allowed) and what it says of itself."""
    prompts = [f"task {i}" for i in range(len(p["scores"]))]
    gate = budget_gate(system, prompts, p["scores"], p["energy"], MODELS, *MODELS, 2, 0, None,
                       budget, p["tokens"], p["states"], measured=measured)  # fmt: skip
    allowed, _, about = gate(p["unverified"], [1e-7] * 2)
    return p["unverified"] & allowed, about["gate"]


def test_the_gate_neither_fits_nor_budgets_an_unmeasured_answer_as_free(
    tiny_config: AppConfig,
) -> None:
    """An answer CodeCarbon failed to measure is stored as 0 kWh: the gate's energy model
    was fitted to it, its threshold chosen with it (an escalation that cost nothing) and
    its curve summed it. The energy model fits the measured answers only, the threshold
    reads an unmeasured one as its model's mean measured energy on the training folds,
    and a point of the curve that spends an unmeasured answer has no energy (None)."""
    p = _problems()
    with RouterLLM(tiny_config) as system:
        # every answer measured: as each model spends the same on every problem, its
        # mean measured energy on any training folds is what it spent on the others
        reference = {b: _gate(system, p, b) for b in CURVE_BUDGETS}
        # heavy's answers the gate escalates at a larger budget only, and some it never gets
        unknown = np.zeros_like(p["energy"], dtype=bool)
        unknown[np.flatnonzero(reference[1.0][0] & ~reference[0.5][0])[:2], 1] = True
        unknown[np.flatnonzero(~p["unverified"])[:3], 1] = True
        for stored in (0.0, 1.0):  # what the store holds for them does not matter
            energy = np.where(unknown, stored, p["energy"])
            escalated, about = _gate(system, p | {"energy": energy}, 0.7, ~unknown)
            assert np.array_equal(escalated, reference[0.7][0])
            assert about["thresholds"] == pytest.approx(reference[0.7][1]["thresholds"])
            for (b, kwh, pass1), (_, ref_kwh, ref_pass1) in zip(
                about["curve"], reference[0.7][1]["curve"], strict=True
            ):
                assert pass1 == ref_pass1
                # None exactly where the gate at that budget escalates an unmeasured answer
                spends_unknown = bool((reference[b][0] & unknown[:, 1]).any())
                assert (kwh is None) == spends_unknown, b
                assert spends_unknown or kwh == pytest.approx(ref_kwh)
            assert any(kwh is None for _, kwh, _ in about["curve"])
            assert any(kwh is not None for _, kwh, _ in about["curve"])
        # the first model answers every problem: every point spends its unmeasured answer
        first_unknown = np.zeros_like(unknown)
        first_unknown[0, 0] = True
        _, about = _gate(system, p | {"energy": np.where(first_unknown, 0.0, p["energy"])}, 0.7,
                         ~first_unknown)  # fmt: skip
        assert [kwh for _, kwh, _ in about["curve"]] == [None] * len(CURVE_BUDGETS)
        assert about["thresholds"] == pytest.approx(reference[0.7][1]["thresholds"])


def test_a_gate_whose_heavy_model_was_measured_on_no_training_problem_is_refused(
    tiny_config: AppConfig,
) -> None:
    p = _problems()
    measured = np.ones_like(p["energy"], dtype=bool)
    measured[:, 1] = False
    with (
        RouterLLM(tiny_config) as system,
        pytest.raises(RouterLLMError, match="tiny-heavy's generation energy was measured on none"),
    ):
        _gate(system, p | {"energy": np.where(measured, p["energy"], 0.0)}, 0.7, measured)


def test_a_trained_gate_neither_fits_nor_budgets_an_unmeasured_answer_as_free() -> None:
    """train-gate's gate, as the experiment's: fitted on the measured answers, its
    threshold chosen with an unmeasured one read as its model's mean measured energy."""
    p = _problems(60)
    unknown = np.zeros_like(p["energy"], dtype=bool)
    unknown[:10, 1] = unknown[10:13, 0] = True

    def fit(energy: np.ndarray, measured: np.ndarray | None) -> EscalationGate:
        return EscalationGate.fit(
            *MODELS, p["states"], p["scores"], energy, p["tokens"], p["unverified"], 0.5,
            folds=4, seed=0, measured=measured,
        )  # fmt: skip

    reference = fit(p["energy"], None)
    for stored in (0.0, 1.0):
        gate = fit(np.where(unknown, stored, p["energy"]), ~unknown)
        assert gate.threshold == pytest.approx(reference.threshold)
        np.testing.assert_allclose(gate.calibration["kwh"], p["energy"])
        np.testing.assert_allclose(gate.energy.coef, reference.energy.coef, atol=1e-12)
        assert gate.on_training() == pytest.approx(reference.on_training())
    unknown[:, 0] = True
    with pytest.raises(RouterLLMError, match="tiny-medium's generation energy was measured on none"):  # fmt: skip
        fit(np.where(unknown, 0.0, p["energy"]), ~unknown)


def _one_system_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A four-problem run's summary for ``report_markdown`` holding the one system ``row``."""
    return {
        "problems": 4, "limit": None, "models": ["m"], "carbon_method": "x", "country": "USA",
        "encoder": "static", "folds": 2, "calibration": "max_cost=0.7", "wall_time_s": 1.0,
        "model_time_s": 1.0, "oracle_pass@1": 0.75, "systems": [row], "styles": {},
    }  # fmt: skip


def test_train_gate_reads_a_runs_unmeasured_answer_as_its_models_mean(tmp_path: Path) -> None:
    """A run's answer CodeCarbon failed on (stored as 0 kWh, method codecarbon:failed):
    train-gate calibrated its gate with it as free; a run whose first model was measured
    on none is refused, before its answers are checked."""
    from routerllm.eval.transfer import gate_from_run

    problems, ladder = load_humaneval()[:6], ["medium", "heavy"]
    store = ResultStore(tmp_path / "results.sqlite")
    store.add_problems(problems)
    for i, p in enumerate(problems):
        for m in ladder:
            failed = m == "heavy" and i == 0
            row = ROW | {"model": m, "task_id": p.task_id, "gen_kwh": 0.0 if failed else 2e-5 * (i + 1),
                         "gen_co2": 0.0 if failed else 1e-6,
                         "method": "codecarbon:failed" if failed else "estimate"}  # fmt: skip
            store.add(row, [float(i), 1.0 - i] if m == "medium" else None)
    store.close()
    gate = gate_from_run(tmp_path, ladder, 0.6, folds=2)
    # by hand: heavy's measured 4e-5 .. 1.2e-4 on the others, their mean 8e-5
    np.testing.assert_allclose(gate.calibration["kwh"][:, 1], [8e-5, 4e-5, 6e-5, 8e-5, 1e-4, 1.2e-4])  # fmt: skip
    assert gate.about["unmeasured"] == 1
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        db.execute("UPDATE generations SET gen_kwh = 0, gen_co2 = 0, method = 'codecarbon:failed' "
                   "WHERE model = 'medium'")  # fmt: skip
    db.close()
    with (
        mock.patch.object(prompt_examples, "verify_completion", side_effect=AssertionError("checked")),
        pytest.raises(RouterLLMError, match="medium's generation energy was measured on none of the 6 training problems"),
    ):  # fmt: skip
        gate_from_run(tmp_path, ladder, 0.6, folds=2)


def test_report_says_which_points_of_the_gates_curve_spent_an_unmeasured_answer() -> None:
    from routerllm.eval.humaneval_report import report_markdown

    row = {
        "system": "gated-cascade", "pass@1": 0.5, "correct": 2, "total": 4,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": 1e-3, "co2_kg": 4e-4,
        "cost_usd": 1e-4, "co2_per_correct_kg": 2e-4, "correct_per_kwh": 2000.0,
        "router_share_of_co2": 0.001, "escalated": 0.25,
        "components": {c: {"energy_kwh": 1e-4} for c in ("router_inference", "model_loading", "llm_inference")},
        "verdicts": {"passed": 2, "unverifiable": 0, "failed": 2},
        "gate": {"predictor": "logistic", "budget": 0.7, "overhead_kwh_per_problem": 1e-5,
                 "withheld": 1, "curve": [[0.4, 1e-3, 0.5], [0.45, None, 0.75], [0.5, None, 0.75]]},
    }  # fmt: skip
    text = report_markdown(_one_system_summary(row))
    assert (
        "Of the 3 points of its curve over budgets, 2 spent an answer whose energy was not "
        "measured (CodeCarbon failed): their energy is not given, nor drawn." in text
    )
    assert "None" not in text
    row["gate"]["curve"] = [[0.4, 1e-3, 0.5]]
    assert "its curve over budgets" not in report_markdown(_one_system_summary(row))


def _fail_once(meter: Any) -> None:
    """The next block ``meter`` (a CodeCarbonMeter) measures fails, as a power counter
    that cannot be read makes it: injected where CodeCarbon reads the hardware."""
    tracker = meter._tracker
    real = tracker._measure_power_and_energy

    def unreadable(*args: object) -> object:
        tracker._measure_power_and_energy = real  # once
        raise PermissionError(13, "Permission denied", "/sys/class/powercap/intel-rapl:0/energy_uj")  # fmt: skip

    tracker._measure_power_and_energy = unreadable


def test_the_gated_cascade_budgets_an_unmeasured_overhead_at_the_first_models_power(
    tiny_config: AppConfig,
) -> None:
    """The checks CodeCarbon failed to measure, and the medium model's load it failed on
    (0 kWh stored), were told to the gate as a 0 kWh overhead (a looser budget), and
    results.json gave that 0 as measured. The gate is told their durations at the medium
    model's mean measured power over its answers; results.json gives the overhead as
    null, with the budgeted figure and the parts not measured."""
    from routerllm.eval.humaneval_run import cascade
    from routerllm.eval.result_store import Outcome

    problems = load_humaneval()[:4]
    ids = [p.task_id for p in problems]
    # medium's measured answers: 7e-5 kWh in 4 s; its last one CodeCarbon failed on,
    # its 9 s not counted in the power
    seconds, kwh = [2.0, 1.0, 1.0, 9.0], [3e-5, 1e-5, 3e-5, 0.0]
    outcomes = {
        "tiny-medium": {t: Outcome(False, s, e, e / 2, 5, "failed", 3, "codecarbon:failed" if e == 0 else "codecarbon:measured")
                        for t, s, e in zip(ids, seconds, kwh, strict=True)},
        "tiny-heavy": {t: Outcome(True, 3.0, 1e-4, 5e-5, 5, "passed", 3, "codecarbon:measured") for t in ids},
    }  # fmt: skip
    told: list[list[float]] = []

    def decide(unverified: np.ndarray, overhead_kwh: list[float]) -> Any:
        told.append(overhead_kwh)
        return np.zeros(len(unverified), dtype=bool), (0.0, 0.0, 0.0, None), {"gate": {}}

    # one fold, trained by 2 problems of another set: their checks (5 s, CodeCarbon
    # failed) and medium's answers to them (6e-5 kWh in 2 s) are what it budgets by
    train = FirstAnswers(np.full(2, -1), np.array([2e-5, 4e-5]), np.ones(2), np.ones(2, bool))
    gate = Gate(np.zeros(4, dtype=int), 1, decide, (Checks(2, 5.0, 0.0, 0.0, False), train))
    loads = {"tiny-medium": (2.0, 0.0, 0.0), "tiny-heavy": (4.0, 2e-5, 1e-5)}
    completions = {t: "    return None\n" for t in ids}
    with RouterLLM(tiny_config) as system:
        _fail_once(system.meter)  # the checks' block
        result = cascade(system, problems, completions, *MODELS, outcomes, loads, gate,
                         measured_loads={"tiny-heavy"})  # fmt: skip
    power = 6e-5 / 2.0  # the training answers', not the tested ones' (7e-5 kWh in 4 s)
    assert told == [[pytest.approx(5.0 * power / 2 + 2.0 * power / 4)]]
    about = result.extra["gate"]
    assert about["overhead_kwh_per_problem"] is None
    assert about["budgeted_overhead_kwh_per_problem"] == told[0]
    assert about["overhead_unmeasured"] == [
        "the checks", "the checks of the problems that only train", "loading tiny-medium"
    ]  # fmt: skip
    # measured: told as it is, nothing estimated; the run's own overhead over its problems
    gate = Gate(np.array([0, 1, 0, 1]), 2, decide)
    with RouterLLM(tiny_config) as system:
        result = cascade(system, problems, completions, *MODELS, outcomes, loads, gate)
    measured = (result.router_kwh + 0.0) / 4
    assert len(told[1]) == 2 and min(told[1]) > 0
    # each fold's is the other fold's checks over its 2 problems: their mean is the run's
    assert sum(told[1]) / 2 == pytest.approx(measured)
    about = result.extra["gate"]
    assert about["overhead_kwh_per_problem"] == pytest.approx(measured)
    assert about["overhead_unmeasured"] == []


def test_report_says_the_gates_overhead_was_not_measured_and_what_it_budgeted() -> None:
    from routerllm.eval.humaneval_report import report_markdown

    gate = {"predictor": "logistic", "budget": 0.7, "overhead_kwh_per_problem": None,
            "budgeted_overhead_kwh_per_problem": 3e-6, "withheld": 1, "curve": [],
            "overhead_unmeasured": ["the checks", "loading tiny-medium"]}  # fmt: skip
    row = {
        "system": "gated-cascade", "pass@1": 0.5, "correct": 2, "total": 4,
        "model_distribution": {"m": 1.0}, "mean_time_s": 1.0, "energy_kwh": None, "co2_kg": None,
        "cost_usd": None, "co2_per_correct_kg": None, "correct_per_kwh": None,
        "router_share_of_co2": None, "escalated": 0.25,
        "components": {c: {"energy_kwh": None} for c in ("router_inference", "model_loading", "llm_inference")},
        "verdicts": {"passed": 2, "unverifiable": 0, "failed": 2}, "gate": gate,
    }  # fmt: skip
    text = report_markdown(_one_system_summary(row))
    assert (
        "(the checks, and loading the medium model: not measured for the checks and loading "
        "tiny-medium (CodeCarbon failed), budgeted at 3.00e-06 kWh a problem reading their "
        "duration at the medium model's mean measured power)" in text
    )
    gate |= {"overhead_kwh_per_problem": 3e-6, "overhead_unmeasured": []}
    assert "(the checks, and loading the medium model: 3.00e-06 kWh a problem)" in report_markdown(_one_system_summary(row))  # fmt: skip


def test_train_gate_neither_budgets_nor_prints_unmeasured_energy_as_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train-gate saved a check_kwh of 0 where CodeCarbon failed to measure the checks
    (the gate's budget then covered generation alone), and printed its energy share on
    the training problems as measured where it read unmeasured answers as their model's
    mean. The checks are read at the first model's mean measured power over its answers,
    and the share is unknown (null), its estimate printed as one."""
    from routerllm.carbon.codecarbon_meter import CodeCarbonMeter
    from routerllm.eval.transfer import gate_from_run

    problems, ladder = load_humaneval()[:6], ["medium", "heavy"]
    store = ResultStore(tmp_path / "results.sqlite")
    store.add_problems(problems)
    for i, p in enumerate(problems):
        for m in ladder:
            # medium: 2e-5 kWh in 0.5 s each (4e-5 kWh/s); its first answer not measured
            failed = i == 0
            row = ROW | {"model": m, "task_id": p.task_id, "gen_s": 0.5 if m == "medium" else 1.0,
                         "gen_kwh": 0.0 if failed else 2e-5 * (i + 1 if m == "heavy" else 1),
                         "gen_co2": 0.0 if failed else 1e-6,
                         "method": "codecarbon:failed" if failed else "estimate"}  # fmt: skip
            store.add(row, [float(i), 1.0 - i] if m == "medium" else None)
    store.close()
    # checks kept by another test of these answers would not be run, nor their block fail
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    meter = CodeCarbonMeter("FRA")
    try:
        _fail_once(meter)  # the checks' block
        verdicts = iter(["failed", "passed"] * 3)  # unverified: every other answer
        with mock.patch.object(prompt_examples, "verify_completion",
                               side_effect=lambda *_: Verification(next(verdicts), 0, 1)):  # fmt: skip
            gate = gate_from_run(tmp_path, ladder, 0.6, folds=2, meter=meter)
    finally:
        meter.close()
    assert gate.check_kwh > 0
    assert gate.about["unmeasured"] == 2 and gate.about["check_kwh_estimated"] is True
    seen = gate.on_training()
    assert seen["energy_share"] is None and seen["estimated_energy_share"] > 0
    from routerllm.humaneval_cli import train_gate_text

    text = train_gate_text(gate, seen, str(tmp_path), str(tmp_path / "gate"), counted=True)
    # in the unit a person reads, as every other figure: "12.3 mWh", not "1.23e-05 kWh"
    assert f"answers included ({energy(gate.check_kwh)} a request, not measured" in text
    assert "not measured (CodeCarbon failed): read from their duration at medium's mean measured power" in text  # fmt: skip
    assert (
        f"at an unknown share of its energy ({seen['estimated_energy_share']:.1%} reading the 2 "
        "answers CodeCarbon failed to measure as their model's mean measured energy, and the "
        "checks at medium's mean measured power, as the threshold does)" in text
    )


def test_each_point_of_the_gates_curve_sums_what_its_escalations_spend_and_solve(
    tiny_config: AppConfig,
) -> None:
    """At each budget, the curve's kWh is every problem's first answer (1e-5 kWh) plus the
    heavy model's (4e-5 kWh) on each escalated one, and its pass@1 the first model's
    solves kept plus the heavy model's on the escalated ones, over the 40 problems."""
    p = _problems()
    n = len(p["scores"])
    with RouterLLM(tiny_config) as system:
        escalated, about = _gate(system, p, 0.7)
        # withheld: the unverified answers the gate kept from the heavy model
        assert about["withheld"] == int(p["unverified"].sum() - escalated.sum())
        counts = set()
        for b, kwh, pass1 in about["curve"]:
            escalated, _ = _gate(system, p, b)
            counts.add(int(escalated.sum()))
            assert kwh == pytest.approx(n * FIRST_KWH + escalated.sum() * THEN_KWH), b
            solved = np.where(escalated, p["scores"][:, 1], p["scores"][:, 0])
            assert pass1 == pytest.approx(solved.sum() / n), b
    assert len(counts) > 1  # the budgets escalate more or fewer answers


def test_the_gates_curve_is_over_the_tested_problems_only(tiny_config: AppConfig) -> None:
    """Another set's problems (the last 10 of 40) train every fold's predictor and
    threshold and are never tested: a point of the curve is over the 30 tested
    problems, their pass@1 out of 30 (not 40) and their generation kWh (1e-5 each and
    4e-5 each escalated), not the training-only problems'."""
    p, n = _problems(), 30
    prompts = [f"task {i}" for i in range(len(p["scores"]))]
    with RouterLLM(tiny_config) as system:
        gate = budget_gate(system, prompts, p["scores"], p["energy"], MODELS, *MODELS, 2, 0,
                           None, 0.7, p["tokens"], p["states"], p["unverified"][n:])  # fmt: skip
        allowed, _, about = gate(p["unverified"][:n], [1e-7] * 2)
    escalated = p["unverified"][:n] & allowed
    [(kwh, pass1)] = [(kwh, pass1) for b, kwh, pass1 in about["gate"]["curve"] if b == 0.7]
    solved = np.where(escalated, p["scores"][:n, 1], p["scores"][:n, 0]).sum()
    assert 0 < solved < n and escalated.sum() > 0  # a point that tells the counts apart
    assert pass1 == pytest.approx(solved / n)
    assert kwh == pytest.approx(n * FIRST_KWH + escalated.sum() * THEN_KWH)


def test_the_quality_routers_gate_never_reads_an_unmeasured_answers_stored_energy(
    tiny_config: AppConfig,
) -> None:
    """Without prompt states the gate predicts by the quality router, whose candidate
    choice weighs each model's mean energy on the training folds: it averaged every
    answer's stored kWh, an unmeasured one's 0 (or whatever the store held) with them,
    where the gate's own energy model and threshold read the measured ones only.

    Each router is trained with the same costs whatever the store holds: where the gate's
    decisions alone were compared, the bug showed only where the costs changed the
    candidate a fold chose (with 3 folds here, not 2). Two folds train 6 routers a gate,
    not 12, each choosing among 56 candidates: the test took 17.7 s of CPU with 3 folds
    (marked slow), 11.0 s with 2 (2026-12-07)."""
    from routerllm.routers.quality import QualityRouter

    models = ["tiny-light", *MODELS]
    rng = np.random.default_rng(5)
    p = _problems(30, seed=5)
    light = (rng.random(30) < 0.3).astype(float)
    scores = np.column_stack([light, p["scores"]])
    energy = np.column_stack([np.full(30, 2e-6), p["energy"]]) * rng.uniform(0.5, 1.5, (30, 3))
    prompts = [f"task {i}: " + " ".join(rng.choice(list("abcdwxyz"), 5)) for i in range(30)]
    unknown = np.zeros_like(energy, dtype=bool)
    unknown[rng.permutation(30)[:12], 0] = True  # light's answers CodeCarbon failed on
    seen, costs = [], []
    fit = QualityRouter._fit

    def fit_seen(router: QualityRouter, X: np.ndarray, Y: np.ndarray) -> None:
        costs[-1].append(router.costs.copy())
        fit(router, X, Y)

    with (
        RouterLLM(tiny_config) as system,
        mock.patch.object(QualityRouter, "_fit", autospec=True, side_effect=fit_seen),
    ):
        for stored in (0.0, 1e-3):  # what the store holds for them does not matter
            costs.append([])
            gate = budget_gate(system, prompts, scores, np.where(unknown, stored, energy), models,
                               *MODELS, 2, 0, "hashing:32", 0.6, p["tokens"], measured=~unknown)  # fmt: skip
            allowed, _, about = gate(p["unverified"], [1e-7] * 2)
            seen.append((allowed, about["gate"]["thresholds"]))
    assert about["gate"]["predictor"] == "the quality router, from the prompt's embedding"
    assert len(costs[0]) == len(costs[1]) == 2 + 2 * 2  # each fold's, and its inner folds'
    np.testing.assert_array_equal(costs[0], costs[1])
    assert np.array_equal(seen[0][0], seen[1][0])
    assert seen[0][1] == pytest.approx(seen[1][1])


def test_each_folds_threshold_is_chosen_with_its_own_overhead(tiny_config: AppConfig) -> None:
    """Fold 0 told its checks cost nothing, fold 1 that they cost 1 kWh a problem (far over
    0.7 x the heavy model's 4e-5 kWh a problem): fold 1 escalates nothing (no threshold),
    fold 0 keeps one; were fold 0's overhead read for both, both would have one."""
    p = _problems()
    prompts = [f"task {i}" for i in range(len(p["scores"]))]
    with RouterLLM(tiny_config) as system:
        gate = budget_gate(system, prompts, p["scores"], p["energy"], MODELS, *MODELS, 2, 0, None,
                           0.7, p["tokens"], p["states"])  # fmt: skip
        allowed, _, about = gate(p["unverified"], [0.0, 1.0])
    first, second = about["gate"]["thresholds"]
    assert first is not None and second is None
    assert not allowed[gate.fold == 1].any() and allowed[gate.fold == 0].any()


def test_a_test_problem_scored_exactly_at_its_folds_threshold_is_escalated(
    tiny_config: AppConfig,
) -> None:
    """The heavy model solves every problem and every answer has the same tokens: every
    score is 1 / the same expected kWh, the threshold that score (escalating every
    unverified training answer spends 0.25 + 0.5 of the heavy model's energy, within
    1.0), and each test fold's unverified answers, scored exactly at it, go up (>=, as
    the served gate decides)."""
    p = _problems()
    p["scores"][:, 1] = 1.0
    p["tokens"][:] = [100.0, 200.0]
    with RouterLLM(tiny_config) as system:
        escalated, about = _gate(system, p, 1.0)
    assert all(t is not None for t in about["thresholds"])
    assert np.array_equal(escalated, p["unverified"])
