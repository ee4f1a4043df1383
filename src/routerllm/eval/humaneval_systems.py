"""The systems of ``routerllm humaneval`` composed from the models' stored answers: the
answers reported, then each system in turn (a model alone, a cascade, the gated cascade,
a router used as it is, a learned router cross-validated); ``humaneval_report`` writes
what they give."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.carbon.meter import is_measured
from routerllm.config import AppConfig
from routerllm.eval.cascade_gate import budget_gate
from routerllm.eval.cascade_overhead import Checks, FirstAnswers
from routerllm.eval.cross_validation import cross_validated
from routerllm.eval.humaneval_plan import ExperimentPlan
from routerllm.eval.humaneval_run import (
    AS_IS,
    CASCADE,
    GATED_CASCADE,
    Gate,
    SystemResult,
    cascade,
    compose,
    measured_routing,
    measured_warm_up,
    spent,
)
from routerllm.eval.quality_energy import expected_kwh, quality_energy_curve
from routerllm.eval.result_store import Outcome, ResultStore
from routerllm.eval.transfer import TrainingRun
from routerllm.eval.weights_identity import changed_weights
from routerllm.exceptions import RouterLLMError
from routerllm.log_repeats import warnings_once
from routerllm.routers.base import create_router
from routerllm.system import RouterLLM


@dataclass(frozen=True)
class Answers:
    """The reported models' stored answers, per problem in the plan's order."""

    models: list[str]
    styles: dict[str, dict[str, Any]]
    outcomes: dict[str, dict[str, Outcome]]
    loads: dict[str, tuple[float, float, float]]  # seconds, kWh, kg CO2
    load_methods: dict[str, str | None]
    measured_loads: set[str]
    #: the share of the machine's CPU other processes used as each stored load was
    #: measured (None: not known), for the models with one
    load_shares: dict[str, float | None]
    scores: np.ndarray  # (n, m) passed
    energy: np.ndarray  # (n, m) generation kWh
    # False: CodeCarbon failed on that answer, whose 0 kWh is not known
    measured: np.ndarray  # (n, m)
    # The ends of the medium-heavy mixing line: a model's total with an answer
    # not measured is not known (its row adds up the measured ones, as it says).
    generation_measured: set[str]


def reported_answers(store: ResultStore, config: AppConfig, plan: ExperimentPlan) -> Answers:
    """Reported: the models run now, and any other whose answers are all stored, made
    with the file the config names now, holding the weights it held then (another file's,
    or other weights', are not its own)."""
    task_ids, ladder, wanted = plan.task_ids, plan.ladder, plan.wanted
    stored = [m for m in ladder if m not in wanted and (
        store.done(m) >= set(task_ids)
        and store.model_source(m) in (None, config.model(m).source_text())
    )]  # fmt: skip
    changed, _ = changed_weights(store, config, stored)  # its file now holds other weights
    models = [m for m in ladder if m in wanted or (m in stored and m not in changed)]
    styles = store.styles()
    outcomes = {m: store.outcomes(m) for m in models}
    loads = {m: load for m in models if (load := store.load_of(m)) is not None}
    load_methods = store.load_methods(models)
    # not CodeCarbon failing's 0 kWh, which results.json gives as null
    measured_loads = {
        m for m, (_, kwh, co2) in loads.items()
        if is_measured(load_methods.get(m), kwh, co2)
    }  # fmt: skip
    scores = np.array([[float(outcomes[m][t].passed) for m in models] for t in task_ids])
    energy = np.array([[outcomes[m][t].gen_kwh for m in models] for t in task_ids])
    measured = np.array([[outcomes[m][t].measured for m in models] for t in task_ids])
    generation_measured = {m for i, m in enumerate(models) if measured[:, i].all()}
    return Answers(models, styles, outcomes, loads, load_methods, measured_loads,
                   store.load_shares(models), scores, energy, measured, generation_measured)  # fmt: skip


@dataclass(frozen=True)
class _TrainingSet:
    """What the learned routers and the gate train on: this run's problems, then another
    problem set's run (--train-on) appended: it trains, it is never tested."""

    n_extra: int
    prompts: list[str]
    scores: np.ndarray
    energy: np.ndarray
    measured: np.ndarray


def _training_set(plan: ExperimentPlan, answers: Answers) -> _TrainingSet:
    extra = plan.extra
    if extra is None:
        return _TrainingSet(0, plan.prompts, answers.scores, answers.energy, answers.measured)
    extra_measured = np.ones_like(extra.energy, dtype=bool) if extra.measured is None else extra.measured  # fmt: skip
    return _TrainingSet(
        len(extra), plan.prompts + extra.prompts, np.vstack([answers.scores, extra.scores]),
        np.vstack([answers.energy, extra.energy]), np.vstack([answers.measured, extra_measured]),
    )  # fmt: skip


@dataclass
class SystemsRun:
    """Each system's result, and the quality router's quality-energy curve (empty: none)."""

    results: dict[str, SystemResult] = field(default_factory=dict)
    curve: list[tuple[float | None, float]] = field(default_factory=list)
    curve_rule: str = "lambda"


def run_systems(
    system: RouterLLM, store: ResultStore, config: AppConfig, plan: ExperimentPlan,
    answers: Answers,
) -> SystemsRun:  # fmt: skip
    """Each system composed from the models' stored answers, in the order named."""
    run = SystemsRun()
    train = _training_set(plan, answers)
    for name in plan.systems:
        # once per fold, a router's warnings (trained on one problem, calibrated to a
        # fixed mix) said once with their count
        with warnings_once(f"in the folds of system {name!r}"):
            if name in plan.direct:
                run.results[name] = compose(
                    name, [plan.direct[name]] * len(plan.problems), answers.outcomes,
                    plan.task_ids, answers.loads, measured_loads=answers.measured_loads,
                    load_shares=answers.load_shares,
                )  # fmt: skip
            elif name in (CASCADE, GATED_CASCADE):
                gate = None
                if name == GATED_CASCADE:
                    gate = _gate(system, store, plan, answers, train)
                run.results[name] = cascade(
                    system, plan.problems, store.completions(plan.medium), plan.medium,
                    plan.heavy, answers.outcomes, answers.loads, gate, name,
                    answers.measured_loads, plan.packages, answers.load_shares,
                )  # fmt: skip
            elif name in AS_IS:
                run.results[name] = _as_is(system, config, plan, answers, name)
            else:
                _learned(system, plan, answers, train, name, run)
    return run


def _gate(
    system: RouterLLM, store: ResultStore, plan: ExperimentPlan, answers: Answers,
    train: _TrainingSet,
) -> Gate:  # fmt: skip
    """The gated cascade's gate, per fold, on the medium model's tokens and states of the
    prompts (both runs', stacked, with a --train-on run). The --train-on run's answers
    are checked here, measured: they train every fold, its checks' energy too."""
    medium, task_ids, extra, outcomes = plan.medium, plan.task_ids, plan.extra, answers.outcomes
    tokens = np.array([[outcomes[medium][t].prompt_tokens,
                        outcomes[medium][t].completion_tokens] for t in task_ids])  # fmt: skip
    states = store.prompt_states(medium, task_ids)
    unverified_extra, train_only = None, None
    if extra is not None:
        tokens = np.vstack([tokens, extra.medium_tokens])
        if states is not None and extra.medium_states is not None:
            _refuse_other_states(extra.source, medium, extra.medium_states, plan.out, states)
            states = np.vstack([states, extra.medium_states])
        else:
            states = None
        with system.meter.measure("router_inference") as slot:
            unverified_extra = extra.unverified(packages=plan.packages)
        train_only = (Checks.of(slot.result, len(extra)), _medium_answers(extra, plan))
    gate = budget_gate(system, train.prompts, train.scores, train.energy, answers.models,
                       medium, plan.heavy, plan.folds, plan.seed, plan.encoder,
                       plan.cascade_budget, tokens, states, unverified_extra, train.measured)  # fmt: skip
    return dataclasses.replace(gate, train_only=train_only)


def _medium_answers(extra: TrainingRun, plan: ExperimentPlan) -> FirstAnswers:
    """The medium model's answers in the --train-on run (fold -1: they only train)."""
    k = plan.ladder.index(plan.medium)
    if extra.seconds is None:
        raise RouterLLMError(f"--train-on {extra.source}: its generation times are not known")
    measured = np.ones(len(extra), dtype=bool) if extra.measured is None else extra.measured[:, k]
    return FirstAnswers(np.full(len(extra), -1), extra.energy[:, k], extra.seconds[:, k], measured)


def _as_is(
    system: RouterLLM, config: AppConfig, plan: ExperimentPlan, answers: Answers, name: str
) -> SystemResult:
    """A router used as it is (not trained here), its loading and routing measured."""
    router = create_router(name, config.models, plan.seed)
    # its classifier and encoder: loaded once, not by the first request
    load = measured_warm_up(system, router, plan.prompts[0])
    choices, routing = measured_routing(system, router, plan.prompts)
    result = compose(name, choices, answers.outcomes, plan.task_ids, answers.loads,
                     spent(routing), routing.measured, answers.measured_loads,
                     answers.load_shares, routing.others_cpu_share)  # fmt: skip
    result.add_load(spent(load), load.measured, load.others_cpu_share)
    return result


def _learned(
    system: RouterLLM, plan: ExperimentPlan, answers: Answers, train: _TrainingSet,
    name: str, run: SystemsRun,
) -> None:  # fmt: skip
    """A learned router, cross-validated: its result in ``run``, and the quality router's
    curve."""
    scores, energy, measured = answers.scores, answers.energy, answers.measured
    cv = cross_validated(
        name, system, train.prompts, train.scores, train.energy, answers.models, plan.folds,
        plan.seed, plan.encoder, plan.calibration, train.n_extra, plan.two_settings,
        train.measured,
    )  # fmt: skip
    result = run.results[name] = compose(
        name, cv.choices, answers.outcomes, plan.task_ids, answers.loads, cv.router_cost,
        cv.router_measured, answers.measured_loads, answers.load_shares, cv.router_share,
    )  # fmt: skip
    result.add_load(cv.encoder_load, cv.encoder_load_measured, cv.encoder_load_share)
    result.extra = {"decision_rules": cv.rules}
    expected = {
        "expected_pass@1": float((cv.policy * scores).sum() / len(plan.task_ids)),
        "expected_generation_kwh": expected_kwh(cv.policy, energy, measured),
    }
    if cv.mixed_folds:
        result.extra["fixed_mix"] = {"folds": cv.mixed_folds, **expected}
    if cv.two_setting_folds:
        result.extra["two_settings"] = {"folds": cv.two_setting_folds, **expected}
    if name == "quality":
        run.curve_rule = cv.rule
        run.curve = quality_energy_curve(cv.predicted, scores, energy, cv.known, cv.rule, measured)


def _refuse_other_states(
    source: str, medium: str, theirs: np.ndarray, out: Path, ours: np.ndarray
) -> None:
    """Refuse a --train-on run whose states of the prompts are not as wide as this run's,
    where its GGUF's header could not tell before generating (``refuse_other_width``)."""
    if theirs.shape[1] != ours.shape[1]:
        raise RouterLLMError(
            f"--train-on {source} stored {medium}'s {theirs.shape[1]}-wide states of the "
            f"prompts, and this run ({out}) {ours.shape[1]}-wide ones: the run was made with "
            f"another model file; train on a run of this config's models (this run's answers "
            f"are kept)"
        )
