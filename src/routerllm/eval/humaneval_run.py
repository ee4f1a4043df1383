"""HumanEval end to end: every local model on every problem, tests really run,
energy really measured; then direct, random, rule-based and learned routed
systems compared on the same problems.

How the systems are built (and why it is honest): generation is greedy and
seeded, so a model gives the same answer to the same problem whichever system
sent it there. Each model therefore runs each problem once (phase 1, stored
as it completes, resumable); a routed system's result on a problem is the
result of the model its router picked, plus the router's own measured
inference, plus one measured load of each model it used. Learned routers are
trained and tested with k-fold cross-validation over problems (no router is
tested on a problem it was trained on); their training data are the per-model
outcomes of phase 1, also written as an outcome dataset that
``routerllm eval-routing`` reads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.carbon.meter import Measurement, weighted_cpu_share
from routerllm.checks import repeated
from routerllm.data.humaneval import MAX_PROMPT_CHARS, HumanEvalProblem
from routerllm.data.mbpp import load_code_problems
from routerllm.eval.cascade_overhead import Checks, FirstAnswers, Gate, gate_overhead
from routerllm.eval.contention import (
    REMEASURE_OPTION,
    contended_load_warning,
    contended_warning,
    remeasured_load,
)
from routerllm.eval.result_store import Outcome, ResultStore
from routerllm.eval.weights_identity import changed_weights, record_weights, refuse_changed
from routerllm.exceptions import RequestLogError, RouterLLMError, csv_only_warning
from routerllm.progress import progress as show_progress
from routerllm.system import RouterLLM

log = logging.getLogger(__name__)

LEARNED = ("quality", "logreg", "knn")
#: Learned routers run when named in --systems only: the mixture of experts (M3.4).
ALSO_LEARNED = ("moe",)
#: The medium model answers; an answer that fails its prompt's own examples goes to the heavy one.
CASCADE = "cascade"
#: The cascade within an energy budget: a failed answer goes to the heavy model only
#: where its gate lets it (``eval/cascade_gate.py``).
GATED_CASCADE = "gated-cascade"
#: Routers used as they come (no training on HumanEval): ``complexity`` is the
#: packaged classifier trained on the synthetic categories.
AS_IS = ("random", "rules", "complexity")
#: The systems trained on the run's problems (cross-validated over them).
TRAINED = (*LEARNED, *ALSO_LEARNED, GATED_CASCADE)
#: Every system the experiment runs: what ``--systems`` may name.
SYSTEMS = ("direct-light", "direct-medium", "direct-heavy", *AS_IS, *LEARNED, *ALSO_LEARNED, CASCADE, GATED_CASCADE)  # fmt: skip


def run_models(
    system: RouterLLM,
    problems: Sequence[HumanEvalProblem],
    store: ResultStore,
    models: Sequence[str],
    style_overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    states_of: Sequence[str] = (),
    packages: Sequence[str] = (),
    remeasure_contended: bool = False,
) -> None:
    """Phase 1: each model on each problem not yet in the store (generation, tests, energy).

    Each model is prompted in its default style (``codegen.style_for``) with
    ``style_overrides`` (e.g. ``{"mode": "chat", "max_new_tokens": 256}``) applied.
    The models in ``states_of`` also return their hidden state of each prompt, read
    while generating (``GenerationRequest.prompt_state``), which is stored with it.
    ``packages`` may be imported by the tests besides the standard library. With
    ``remeasure_contended`` the stored answers measured while other processes used more
    than ``CONTENDED_SHARE`` of the CPU are generated and measured again, each replaced
    as its new one is stored, and so are the stored loads measured so: a model that loads
    to answer has that load stored in place of its contended one, and one with no answer
    to give is loaded to measure it (:func:`remeasured_load`). A load stored with a
    contended share, as an answer stored so, is warned about once a run."""
    from routerllm.eval.codegen import build_request, extract_completion, style_for
    from routerllm.eval.sandbox import check_problem

    styles = {m: style_for(m, style_overrides, system.manager.backend(m).prefills) for m in models}
    # One query per model, not one per problem.
    done = {m: store.done(m) for m in models}
    # the models whose stored load was measured under contention, measured again
    reload: set[str] = set()
    if remeasure_contended:
        from routerllm.carbon.cpu_share import contended

        shares = store.others_cpu_shares(models, [p.task_id for p in problems])
        for (m, task_id), share in shares.items():
            if contended(share):
                done[m].discard(task_id)
        # a load whose share is not known (stored before 2026-12-07) is not reloaded
        reload = {m for m, share in store.load_shares(models).items() if contended(share)}
    pending = {m: [p for p in problems if p.task_id not in done[m]] for m in models}
    # A model with answers to give must be able to run, before any model gives one: the
    # heavy one's missing file, found after the others' hours of answers, stopped the run.
    for model in models:
        runs = pending[model] or model in reload
        if not runs or (reason := system.manager.availability(model)) is None:
            continue
        if pending[model]:
            raise RouterLLMError(
                f"model {model!r} cannot run here ({reason}), and {len(pending[model])} "
                f"problem(s) need its answer; nothing was generated: fix the config, or leave "
                f"out the systems that need it"
            )
        if model in reload:
            raise RouterLLMError(
                f"model {model!r} cannot run here ({reason}), and {REMEASURE_OPTION} is to "
                f"load it to measure again its stored load, measured under contention; nothing "
                f"was generated: fix the config, or run without {REMEASURE_OPTION} (its stored "
                f"load is kept)"
            )
    # checked before anything is recorded: the same file name may hold other weights now
    changed, unchanged = changed_weights(store, system.config, models)
    refuse_changed(store, changed)
    for model in models:
        store.use_model_source(model, system.config.model(model).source_text())
    record_weights(store, unchanged)
    store.add_problems(problems)
    for model in models:
        store.use_style(model, dataclasses.asdict(styles[model]))
    # the model named from the first line on: its load (minutes) is said, not an empty log
    running = [m for m in models if pending[m] or m in reload]
    bar = show_progress(
        total=sum(len(v) for v in pending.values()),
        desc="HumanEval generations",
        unit="gen",
        enabled=progress,
        postfix={"model": running[0]} if running else None,
    )
    warned = False  # a generation measured under contention: said once a run
    load_warned = False  # a load stored as measured under contention: said once a run
    csv_warned = False  # an answer only the emissions CSV missed: said once a run

    def stored_load(model: str, loading: Measurement) -> None:
        nonlocal load_warned
        store.add_load(model, loading.duration_s, loading.energy_kwh, loading.co2_kg,
                       loading.method, loading.others_cpu_share)  # fmt: skip
        reload.discard(model)  # measured again once a run
        if loading.contended and not load_warned:
            load_warned = True
            log.warning(contended_load_warning(model, loading.others_cpu_share))

    try:
        for model in models:
            if pending[model] or model in reload:
                bar.set_postfix(model=model)
            if not pending[model] and model in reload:  # loaded to measure its load alone
                stored_load(model, remeasured_load(system, model))
            style = styles[model]
            for problem in pending[model]:
                request = build_request(problem, style)
                if model in states_of:
                    request = dataclasses.replace(request, prompt_state=True)
                unlogged: RequestLogError | None = None
                try:
                    result = system.generate(request, model=model, tag=f"humaneval:{model}")
                except RequestLogError as e:
                    if e.result is None:
                        raise
                    # generated, measured and paid for: stored, then the run stops, unless
                    # its row is in the log and only the emissions CSV missed it (warned)
                    result, unlogged = e.result, e
                loading = result.components["model_loading"]
                if loading.duration_s > 0 and (model in reload or store.load_of(model) is None):
                    stored_load(model, loading)
                completion = extract_completion(problem, result.text, style)
                check = check_problem(problem, completion, packages=packages)
                gen = result.components["llm_inference"]
                row = {
                    "model": model, "task_id": problem.task_id, "raw": result.text, "completion": completion,
                    "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                    "gen_s": gen.duration_s, "gen_kwh": gen.energy_kwh, "gen_co2": gen.co2_kg,
                    "method": gen.method, "status": check.status, "detail": check.detail,
                    "passed": int(check.status == "passed"), "others_cpu_share": gen.others_cpu_share,
                }  # fmt: skip
                try:
                    store.add(row, result.prompt_state)
                except RouterLLMError as e:  # a full disk may be the store's too
                    if unlogged is None:
                        raise
                    raise RouterLLMError(f"{unlogged}; nor could it be stored: {e}") from e
                if unlogged is not None and unlogged.logged:  # in the log: the run goes on
                    if not csv_warned:
                        csv_warned = True
                        log.warning(f"{csv_only_warning(unlogged)} ({CSV_SAID_ONCE})")
                elif unlogged is not None:
                    raise RequestLogError(
                        f"{unlogged}; {model}'s answer to {problem.task_id} is stored in "
                        f"{store.path} all the same: run the same command again, once the log "
                        f"can be written, to continue the run"
                    ) from unlogged
                if gen.contended and not warned:
                    warned = True
                    log.warning(contended_warning(model, problem.task_id, gen.others_cpu_share))
                if on_row:
                    on_row(row)
                bar.update(1)
            system.manager.unload(model)
    finally:  # on Ctrl-C too: the bar ends its line before the "interrupted" message
        bar.close()


#: How the run's one warning of an answer only the emissions CSV missed ends: the answers
#: after it that the CSV misses are in the request log too (one the log itself cannot
#: take stops the run, as before).
CSV_SAID_ONCE = "said once a run: the answers after it that the emissions CSV cannot record are in the request log too"  # fmt: skip


# -- systems ------------------------------------------------------------------
@dataclass
class SystemResult:
    name: str
    choices: list[str]  # model per problem
    passed: list[bool]
    gen_s: float
    gen_kwh: float
    gen_co2: float
    router_s: float = 0.0
    router_kwh: float = 0.0
    router_co2: float = 0.0
    load_s: float = 0.0
    load_kwh: float = 0.0
    load_co2: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # Each problem's generation energy (both generations of an escalated problem).
    problem_kwh: list[float] = field(default_factory=list)
    #: The components whose energy was measured, and those that ran under the meter with
    #: none of their parts measured (CodeCarbon failed): their energy and CO2 are null in
    #: ``row``, not a 0 kWh that reads as free. A component in neither spent nothing
    #: metered (a direct system's routing), or was given as plain figures.
    measured: set[str] = field(default_factory=set)
    unmeasured: set[str] = field(default_factory=set)
    #: Per component, its measured blocks as (seconds, share of the machine's CPU other
    #: processes used, None: not known): the generations' and the models' loads as their
    #: store recorded them, the routing's and a router's own load as this run measured them.
    #: Its component's ``others_cpu_share`` in ``row``, as in ``route --json``.
    cpu_blocks: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)

    def add_load(
        self, load: tuple[float, float, float], measured: bool, share: float | None = None
    ) -> None:
        """Add a one-time load (s, kWh, kg CO2) to its loading: a model's, or its router's
        (an encoder, a classifier), which no single request's routing pays in a server;
        ``share``: the share of the machine's CPU other processes used meanwhile."""
        self.load_s += load[0]
        self.load_kwh += load[1]
        self.load_co2 += load[2]
        self.count("model_loading", measured)
        self.cpu_block("model_loading", load[0], share)

    def cpu_block(self, component: str, seconds: float, share: float | None) -> None:
        """A measured block of ``component``: ``seconds`` long, other processes using
        ``share`` of the machine's CPU meanwhile (None: not known)."""
        self.cpu_blocks.setdefault(component, []).append((seconds, share))

    def generated(self, outcome: Outcome) -> None:
        """Count ``outcome``'s generation as measured (or not), and its CPU share."""
        self.count("llm_inference", outcome.measured)
        self.cpu_block("llm_inference", outcome.gen_s, outcome.others_cpu_share)

    def count(self, component: str, measured: bool) -> None:
        """Record that a part of ``component`` was (or was not) measured: a component is
        measured where any of its parts was (the others counted as spending nothing, as
        the report's carbon line says)."""
        if measured:
            self.measured.add(component)
            self.unmeasured.discard(component)
        elif component not in self.measured:
            self.unmeasured.add(component)

    @property
    def energy_known(self) -> bool:
        """Whether its total energy and CO2 are known: a component was measured, or none
        went unmeasured, and no reading was NaN (a bad one)."""
        figures = math.isfinite(self.energy_kwh) and math.isfinite(self.co2_kg)
        return figures and (bool(self.measured) or not self.unmeasured)

    @property
    def energy_kwh(self) -> float:
        return self.gen_kwh + self.router_kwh + self.load_kwh

    @property
    def co2_kg(self) -> float:
        return self.gen_co2 + self.router_co2 + self.load_co2

    def row(self, price_per_kwh: float) -> dict[str, Any]:
        """Its line of results.json: an energy or CO2 not measured, and the figures
        computed from one, are None (null), never 0 or a division by zero."""
        n, correct = len(self.passed), int(sum(self.passed))
        total_s = self.gen_s + self.router_s + self.load_s
        dist = {m: self.choices.count(m) / n for m in sorted(set(self.choices))}
        known = self.energy_known
        kwh, co2 = (self.energy_kwh, self.co2_kg) if known else (None, None)
        router_known = known and "router_inference" not in self.unmeasured
        return {
            "system": self.name, "pass@1": correct / n, "correct": correct, "total": n,
            "model_distribution": dist, "mean_time_s": total_s / n, "energy_kwh": kwh,
            "co2_kg": co2, "cost_usd": None if kwh is None else kwh * price_per_kwh,
            "co2_per_correct_kg": co2 / correct if co2 is not None and correct else None,
            "correct_per_kwh": correct / kwh if kwh else None,
            # Named as a component of route --json and the server's (Measurement.as_dict).
            "components": {
                "router_inference": self._component("router_inference", self.router_s, self.router_kwh, self.router_co2),
                "model_loading": self._component("model_loading", self.load_s, self.load_kwh, self.load_co2),
                "llm_inference": self._component("llm_inference", self.gen_s, self.gen_kwh, self.gen_co2),
            },
            "router_share_of_co2": (self.router_co2 / co2 if co2 else 0.0) if router_known and co2 is not None else None,
            **self.extra,
        }  # fmt: skip

    def _component(self, name: str, s: float, kwh: float, co2: float) -> dict[str, Any]:
        from routerllm.carbon.cpu_share import contended

        known = name not in self.unmeasured
        share = weighted_cpu_share(self.cpu_blocks.get(name, ()))
        return {
            "energy_kwh": kwh if known else None,
            "co2_kg": co2 if known else None,
            "duration_s": s,
            "others_cpu_share": share,
            "contended": contended(share),
        }


def compose(
    name: str,
    choices: Sequence[str],
    outcomes: dict[str, dict[str, Outcome]],
    task_ids: Sequence[str],
    loads: dict[str, tuple[float, float, float]],
    router: tuple[float, float, float] | None = None,
    router_measured: bool = True,
    measured_loads: Collection[str] | None = None,
    load_shares: Mapping[str, float | None] | None = None,
    router_share: float | None = None,
) -> SystemResult:
    """A system's result from the models it chose: their measured runs + one load each,
    + its ``router``'s measured inference where it has one. ``measured_loads`` are the
    models whose stored load was measured (None: every one); ``load_shares`` the share of
    the machine's CPU other processes used as each stored load was measured, and
    ``router_share`` as the router's inference was (None, or a model left out: not known)."""
    picked = [outcomes[m][t] for m, t in zip(choices, task_ids, strict=True)]
    used = set(choices)
    result = SystemResult(
        name, list(choices), [o.passed for o in picked],
        sum(o.gen_s for o in picked), sum(o.gen_kwh for o in picked), sum(o.gen_co2 for o in picked),
        *(router or (0.0, 0.0, 0.0)),
        sum(loads.get(m, (0, 0, 0))[0] for m in used),
        sum(loads.get(m, (0, 0, 0))[1] for m in used),
        sum(loads.get(m, (0, 0, 0))[2] for m in used),
        problem_kwh=[o.gen_kwh for o in picked],
    )  # fmt: skip
    for o in picked:
        result.generated(o)
    for m in used & set(loads):
        result.count("model_loading", measured_loads is None or m in measured_loads)
        result.cpu_block("model_loading", loads[m][0], (load_shares or {}).get(m))
    if router is not None:
        result.count("router_inference", router_measured)
        result.cpu_block("router_inference", router[0], router_share)
    return result


def cascade(
    system: RouterLLM,
    problems: Sequence[HumanEvalProblem],
    completions: Mapping[str, str],
    first: str,
    then: str,
    outcomes: dict[str, dict[str, Outcome]],
    loads: dict[str, tuple[float, float, float]],
    gate: Gate | None = None,
    name: str = CASCADE,
    measured_loads: Collection[str] | None = None,
    packages: Sequence[str] = (),
    load_shares: Mapping[str, float | None] | None = None,
) -> SystemResult:
    """``first`` answers every problem; its answer is run on the examples of the prompt's
    docstring (``eval/prompt_examples.py``: the prompt only, never the hidden tests), and
    a problem whose answer fails them is answered again by ``then``; an answer to a
    prompt without examples is kept. With a ``gate``, the gate decides instead, for
    every unverified answer (failed, or without examples), which ones ``then`` gets,
    told what the cascade spends a problem besides generating (the measured checks,
    and loading ``first``, which ``then`` alone would not load) so that its budget
    covers them: the checks are measured a cross-validation fold at a time
    (``gate.fold``), and each fold's gate is told those of its training problems only
    (:func:`routerllm.eval.cascade_overhead.gate_overhead`). Both generations of an
    escalated problem are paid for; the measured cost of checking the answers (every
    fold's), and of the gate, is the cascade's routing cost. The check imports the
    ``packages`` named for the run, which a prompt may import. ``load_shares``: as
    :func:`compose` takes them."""
    from routerllm.eval.prompt_examples import verify_completion

    fold = np.zeros(len(problems), dtype=int) if gate is None else np.asarray(gate.fold)
    if len(fold) != len(problems):
        raise RouterLLMError(f"the gate has folds for {len(fold)} problems, not {len(problems)}")
    # A block per fold: a fold's gate budgets the checks of its training problems only.
    verdicts: list[Any] = [None] * len(problems)
    blocks: dict[int, Checks] = {}
    for f in np.unique(fold):
        idx = np.flatnonzero(fold == f)
        with system.meter.measure("router_inference") as slot:
            for i in idx:
                p = problems[int(i)]
                verdicts[i] = verify_completion(
                    p.prompt, p.entry_point, completions[p.task_id], packages=packages
                )
        blocks[int(f)] = Checks.of(slot.result, len(idx))
    cost = np.array([[b.seconds, b.kwh, b.co2] for b in blocks.values()]).sum(axis=0)
    routing = [(b.seconds, b.others_cpu_share) for b in blocks.values()]
    router_measured = any(b.measured for b in blocks.values())
    failed = np.array([v.verdict == "failed" for v in verdicts])
    about: dict[str, Any]
    escalated, about = failed, {}
    if gate is not None:
        unverified = np.array([v.unverified for v in verdicts])
        load_measured = measured_loads is None or first in measured_loads
        load = (*loads[first][:2], load_measured) if first in loads else None
        overhead = gate_overhead(first, blocks | _train_only_checks(gate), load,
                                 _first_answers(gate, [outcomes[first][p.task_id] for p in problems]),
                                 gate.folds)  # fmt: skip
        allowed, gate_cost, about = gate(unverified, overhead.budgeted_kwh)
        if "gate" in about:
            about["gate"] |= overhead.about()
        escalated, cost = unverified & allowed, cost + gate_cost[:3]
        routing.append((gate_cost[0], gate_cost[3]))
        router_measured = router_measured or bool(gate_cost[1] or gate_cost[2])
    task_ids = [p.task_id for p in problems]
    answered = compose(
        name, [then if e else first for e in escalated], outcomes, task_ids, loads,
        (float(cost[0]), float(cost[1]), float(cost[2])), router_measured, measured_loads,
        load_shares, weighted_cpu_share(routing),
    )  # fmt: skip
    # The first model's answers that were replaced were generated too.
    replaced = [outcomes[first][t] for t, e in zip(task_ids, escalated, strict=True) if e]
    answered.gen_s += sum(o.gen_s for o in replaced)
    answered.gen_kwh += sum(o.gen_kwh for o in replaced)
    answered.gen_co2 += sum(o.gen_co2 for o in replaced)
    for o in replaced:
        answered.generated(o)
    answered.problem_kwh = [
        kwh + (outcomes[first][t].gen_kwh if e else 0.0)
        for kwh, t, e in zip(answered.problem_kwh, task_ids, escalated, strict=True)
    ]
    if replaced and first not in answered.choices and first in loads:  # still loaded once
        answered.add_load(loads[first], measured_loads is None or first in measured_loads,
                          (load_shares or {}).get(first))  # fmt: skip
    counts = {
        v: sum(x.verdict == v for x in verdicts) for v in ("passed", "failed", "unverifiable")
    }
    answered.extra = {"escalated": float(escalated.mean()), "verdicts": counts, **about}
    return answered


def _train_only_checks(gate: Gate) -> dict[int, Checks]:
    return {} if gate.train_only is None else {-1: gate.train_only[0]}


def _first_answers(gate: Gate, tested: Sequence[Outcome]) -> FirstAnswers:
    """The first model's answers by fold: the tested problems', then (fold -1) those to
    the problems that only train."""
    answers = FirstAnswers(
        np.asarray(gate.fold), np.array([o.gen_kwh for o in tested]),
        np.array([o.gen_s for o in tested]), np.array([o.measured for o in tested], dtype=bool),
    )  # fmt: skip
    if gate.train_only is None:
        return answers
    extra = gate.train_only[1]
    return FirstAnswers(*(np.concatenate([a, b]) for a, b in zip(
        (answers.fold, answers.kwh, answers.seconds, answers.measured),
        (extra.fold, extra.kwh, extra.seconds, extra.measured), strict=True)))  # fmt: skip


def measured_warm_up(system: RouterLLM, router: Any, prompt: str) -> Measurement:
    """Load what ``router`` loads on its first call (``Router.warm_up``), measured as
    loading (what it spent, whether its energy was measured, the share of the machine's
    CPU other processes used meanwhile). Done before :func:`measured_routing`, whose
    first request would pay for it otherwise."""
    with system.meter.measure("model_loading") as slot:
        router.warm_up(prompt)
    return slot.result


def measured_routing(
    system: RouterLLM, router: Any, prompts: Sequence[str]
) -> tuple[list[str], Measurement]:
    """Route prompts one by one, as a server would, measuring the router's inference:
    the choices, and the measurement of their routing."""
    with system.meter.measure("router_inference") as slot:
        choices = [router.route(p).model for p in prompts]
    return choices, slot.result


def spent(m: Measurement) -> tuple[float, float, float]:
    """What ``m`` spent as :class:`SystemResult` adds it up: seconds, kWh, kg CO2."""
    return m.duration_s, m.energy_kwh, m.co2_kg


def check_systems(names: Sequence[str], ladder: Sequence[str]) -> None:
    if bad := [n for n in names if n not in SYSTEMS]:
        raise RouterLLMError(f"unknown systems {bad}; valid: {', '.join(sorted(SYSTEMS))}")
    if twice := repeated(names):  # each would be run again, and reported once
        raise RouterLLMError(f"the systems name {', '.join(twice)} more than once")
    if len(ladder) < 3:
        raise RouterLLMError("the HumanEval experiment needs a light, a medium and a heavy model")


def problems_subset(
    limit: int | None,
    seed: int,
    path: str | Path | None = None,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
) -> list[HumanEvalProblem]:
    """The problems of ``path`` (HumanEval or MBPP format; default: the packaged
    HumanEval), or a seeded subset of ``limit`` of them; a longer prompt than
    ``max_prompt_chars`` (the config's limit) is refused before anything runs."""
    return seeded_subset(load_code_problems(path, max_prompt_chars=max_prompt_chars), limit, seed)


def seeded_subset(
    problems: list[HumanEvalProblem], limit: int | None, seed: int
) -> list[HumanEvalProblem]:
    """A seeded subset of ``limit`` of ``problems``, in their order; all of them where
    ``limit`` is None or not below their number."""
    if limit is not None and limit < len(problems):
        idx = sorted(np.random.default_rng(seed).choice(len(problems), size=limit, replace=False))
        problems = [problems[i] for i in idx]
    return problems


def outcome_dataset_texts(problems: Sequence[HumanEvalProblem], models: Sequence[str],
                          outcomes: dict[str, dict[str, Outcome]], sizes: dict[str, float]) -> tuple[str, str]:  # fmt: skip
    """The per-model outcomes in the ``{question, scores}`` format eval-routing reads,
    each call's cost its measured generation energy (kWh), the cost the experiment's
    routers are calibrated on; null where CodeCarbon failed to measure it (not its 0 kWh,
    which the loader would read as a real cost). Then the models' ``models.json``."""
    rows = [
        {
            "question": p.prompt,
            "scores": {m: float(outcomes[m][p.task_id].passed) for m in models},
            "costs": {
                m: o.gen_kwh if (o := outcomes[m][p.task_id]).measured else None for m in models
            },
        }
        for p in problems
    ]
    return json.dumps(rows, indent=1), json.dumps(
        {m: {"size": f"{sizes[m]}B"} for m in models}, indent=1
    )
