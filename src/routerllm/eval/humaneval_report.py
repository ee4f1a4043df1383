"""``routerllm humaneval``: run the experiment and write report.md, results.json,
outcomes/ (an outcome dataset) and quality_energy.png into one directory."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from routerllm.backends.interrupts import deferred_interrupts
from routerllm.carbon.meter import check_country
from routerllm.config import AppConfig, CascadeConfig
from routerllm.eval.contention import contended_generations
from routerllm.eval.humaneval_markdown import report_markdown
from routerllm.eval.humaneval_plan import ExperimentPlan, plan_experiment
from routerllm.eval.humaneval_run import (
    AS_IS,
    CASCADE,
    GATED_CASCADE,
    LEARNED,
    outcome_dataset_texts,
    run_models,
)
from routerllm.eval.humaneval_systems import Answers, SystemsRun, reported_answers, run_systems
from routerllm.eval.paired import RESAMPLES, Target, against_reference
from routerllm.eval.pass_at_k import oracle_pass_at_1
from routerllm.eval.quality_energy import DPI, above_mix, curve_figure
from routerllm.eval.result_store import PACKAGED_SET, ResultStore
from routerllm.eval.sandbox import isolation_text
from routerllm.exceptions import RouterLLMError, os_reason
from routerllm.files import publish, staged
from routerllm.path_checks import file_in_the_way, what_is
from routerllm.routers.outcome import DEFAULT_ENCODER
from routerllm.strict_json import finite, json_text
from routerllm.system import RouterLLM

DEFAULT_SYSTEMS = (
    "direct-heavy", "direct-medium", "direct-light", *AS_IS, *LEARNED, CASCADE, GATED_CASCADE,
)  # fmt: skip


def run_experiment(
    config: AppConfig,
    out: str | Path,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    limit: int | None = None,
    folds: int = 5,
    seed: int = 0,
    style_overrides: dict[str, Any] | None = None,
    progress: bool = True,
    encoder: str | None = None,
    calibration: str | None = None,
    two_settings: bool = False,
    cascade_budget: float | None = None,
    problems_file: str | Path | None = None,
    train_on: str | Path | None = None,
    sandbox_packages: Sequence[str] = (),
    remeasure_contended: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the experiment in ``out`` and write its report there.

    ``encoder`` is the prompt encoder of the learned routers (default: theirs,
    ``minilm-static``) and ``calibration`` the target their knob is calibrated to on
    the training folds (default ``max_cost=0.7``; by a mix of two knob settings with
    ``two_settings``); ``cascade_budget`` is the ``gated-cascade``'s energy budget, a
    share of the heavy model's generation energy (its gate is calibrated to it on the
    training folds; default 0.7). Each of them given where no system uses it is refused. An unnamed ``max_share=X`` caps the ladder's largest model, named
    before anything runs (``max_share:<model>=X`` in the summary). Generation depends on none of them, so a stored run can be
    re-reported with others without generating anything again. ``problems_file`` is a
    HumanEval- or MBPP-format file to run instead of the packaged HumanEval.
    ``train_on`` is the directory of an earlier run on another problem set, whose
    problems join every fold's training problems (``eval/transfer.py``); with
    ``folds=1`` they are the only ones, and every problem here is tested.
    ``sandbox_packages`` are the installed packages the problems' code may import besides
    the standard library (EvalPlus's HumanEval+: numpy), checked in the sandbox first.
    ``remeasure_contended`` generates and measures again the stored answers measured
    while other processes used more than ``CONTENDED_SHARE`` of the machine's CPU."""
    plan = plan_experiment(
        config, out, systems, limit, folds, seed, style_overrides, progress, encoder,
        calibration, two_settings, cascade_budget, problems_file, train_on, sandbox_packages,
    )  # fmt: skip
    with _run_lock(plan.out):  # made only once every argument is known good
        # The experiment's own log and carbon CSV live with its results.
        config.log.path = str(plan.out / "requests.sqlite")
        config.carbon.output_dir = str(plan.out / "carbon")
        config.generation.temperature = 0.0
        start = time.perf_counter()
        store = ResultStore(plan.out / "results.sqlite")
        try:
            _claim_store(store, config, plan)
            # Every answer is asked of a named model: the config's router is not used
            # (nor built: one that learns may not be trained), nor its cascade, which would
            # store a larger model's answer as the named one's (the experiment's cascades
            # are composed from each model's own answers)
            alone = config.model_copy(update={"cascade": CascadeConfig()})
            with RouterLLM(alone, router="largest") as system:
                style_differs = _check_styles(system, store, plan)
                # The gated cascade's gate reads the medium model's own states of the prompts.
                states_of = [plan.medium] if GATED_CASCADE in plan.systems else []
                run_models(system, plan.problems, store, plan.wanted, plan.style_overrides,
                           plan.progress, states_of=states_of, packages=plan.packages,
                           remeasure_contended=remeasure_contended)  # fmt: skip
                answers = reported_answers(store, config, plan)
                run = run_systems(system, store, config, plan, answers)
                method = system.meter.method
                generation_methods = store.methods(answers.models, plan.task_ids)
                contention = contended_generations(store, answers.models, plan.task_ids)
        finally:
            store.close()
        return _write_report(config, plan, answers, run, style_differs, method,
                             generation_methods, start, contention)  # fmt: skip


def _claim_store(store: ResultStore, config: AppConfig, plan: ExperimentPlan) -> None:
    """Before any model runs: a directory holds the run of one problem set only, and its
    CO2 is measured for one country's grid (CodeCarbon's code for it)."""
    store.use_problem_set(
        PACKAGED_SET if plan.problems_file is None else Path(plan.problems_file).name
    )
    store.use_country(check_country(config.carbon.country_iso_code))


def _check_styles(
    system: RouterLLM, store: ResultStore, plan: ExperimentPlan
) -> dict[str, list[str]] | None:
    """Refuse stored answers of the models not run made with other prompting options;
    say where the --train-on run prompted the models otherwise than this run (None: no
    such run)."""
    from routerllm.eval.codegen import style_for

    _check_stored_styles(system, store, [m for m in plan.ladder if m not in plan.wanted],
                         plan.style_overrides)  # fmt: skip
    if plan.extra is None:
        return None
    from routerllm.eval.transfer import say_other_styles

    return say_other_styles(
        plan.extra, {m: dataclasses.asdict(style_for(m, plan.style_overrides, system.manager.backend(m).prefills))
                     for m in plan.ladder}, "--train-on", "this run", "this run's routers and gate",
    )  # fmt: skip


def _write_report(
    config: AppConfig,
    plan: ExperimentPlan,
    answers: Answers,
    run: SystemsRun,
    style_differs: dict[str, list[str]] | None,
    method: str,
    generation_methods: dict[str, Any],
    start: float,
    contention: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The outcome dataset, results.json, quality_energy.png and report.md written; the
    summary (results.json's) returned."""
    out, problems_file, models, extra = plan.out, plan.problems_file, answers.models, plan.extra
    outcomes, loads, scores, energy = (
        answers.outcomes,
        answers.loads,
        answers.scores,
        answers.energy,
    )
    results, curve = run.results, run.curve
    price = config.carbon.electricity_price_usd_per_kwh
    rows = [r.row(price) for r in results.values()]
    against = None
    if "direct-heavy" in results:
        target = Target(energy_share=plan.cascade_budget)
        others = [r for name, r in results.items() if name != "direct-heavy"]
        against = {
            "target": {"margin": target.margin, "energy_share": target.energy_share},
            "resamples": RESAMPLES,
            "systems": against_reference(results["direct-heavy"], others, target, seed=plan.seed),
        }
    summary = {
        "problem_set": str(problems_file) if problems_file else "HumanEval (packaged)",
        "problems": len(plan.problems),
        "limit": plan.limit,
        "folds": plan.folds if plan.trained else None,  # None: nothing was cross-validated
        # how the other run asked the models, and where that is not how this run asks them
        "trained_on": None
        if extra is None
        else {
            "run": extra.source,
            "problems": len(extra),
            "styles": extra.styles,
            "style_differs": style_differs,
        },  # fmt: skip
        "seed": plan.seed,
        "encoder": plan.encoder or DEFAULT_ENCODER,
        "calibration": plan.calibration,
        "two_settings": plan.two_settings,
        "cascade_budget": plan.cascade_budget,
        "models": models,
        "styles": {m: answers.styles[m] for m in models},
        "carbon_method": method,  # this run's meter: its routing (and anything generated now)
        # How the reported generations were measured: stored ones are reused as they were.
        "generation_methods": generation_methods,
        # How each model's stored load was measured (None: stored before it was recorded).
        "load_methods": answers.load_methods,
        # The generations measured while other processes loaded the CPU (cpu_share.py).
        "contended_generations": contention,
        "sandbox": isolation_text()
        + (f", importing {', '.join(plan.packages)}" if plan.packages else ""),
        "sandbox_packages": list(plan.packages),
        "country": config.carbon.country_iso_code,
        "wall_time_s": time.perf_counter() - start,
        # What the stored generations cost, whichever invocation made them.
        "model_time_s": sum(outcomes[m][t].gen_s for m in models for t in plan.task_ids)
        + sum(load[0] for load in loads.values()),
        "oracle_pass@1": oracle_pass_at_1(scores),
        "systems": rows,
        "against_direct_heavy": against,
        "quality_energy_curve": curve,
        "quality_energy_curve_rule": run.curve_rule,
        "quality_energy_curve_above_mix": above_mix(
            curve, scores, energy, models, plan.medium, plan.heavy, answers.generation_measured
        ),  # fmt: skip
    }
    # strict JSON: a figure that is not finite (a bad reading) is null, never NaN, in
    # results.json as in the report and the summary returned
    summary = finite(summary)
    dataset = out / "outcomes" / f"{'humaneval' if problems_file is None else _stem(problems_file)}.json"  # fmt: skip
    texts = outcome_dataset_texts(plan.problems, models, outcomes, {m.name: m.params_b for m in config.models})  # fmt: skip
    writes: dict[Path, Callable[[Path], object]] = {
        dataset: _text(texts[0]),
        dataset.parent / "models.json": _text(texts[1]),
        out / "results.json": _text(json_text(summary, indent=2)),
    }
    if curve:
        figure = curve_figure(curve, rows, run.curve_rule,
                              mix_line={plan.medium, plan.heavy} <= answers.generation_measured)  # fmt: skip
        writes[out / "quality_energy.png"] = lambda tmp: figure.savefig(tmp, dpi=DPI, format="png")
    writes[out / "report.md"] = _text(report_markdown(summary))
    # without a curve, an earlier report's would not be this report's
    stale = [] if curve else [out / "quality_energy.png"]
    _write_together(writes, plan.out / "results.sqlite", stale)
    return summary


def _text(text: str) -> Callable[[Path], object]:
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def _write_together(
    writes: dict[Path, Callable[[Path], object]], store: Path, stale: Sequence[Path] = ()
) -> None:
    """Each file written (``writes``: its path and what writes it) beside its place, and
    only then all of them renamed into place, and the ``stale`` files of the run before
    removed: a write that fails (a full disk, Ctrl-C) replaces none, leaving the report of
    the run before whole, no file of it beside another run's; Ctrl-C during the renames
    is raised once they are done. A rename that fails after
    others (a folder made where a file goes, a disk remounted read-only) is said in one
    error naming which files are this run's and which the run before's; they are not
    renamed back: that would fail as the rename did, and the same command run again
    writes them all (the answers are stored)."""
    # Not shared with files.save_config_and_weights: a router's files are bound by the
    # weights' digest in config.json, so every state between its renames loads and none
    # needs naming; its old weights move aside between renames and its Ctrl-C is raised
    # as SavedThenInterrupted. data.labeled.save_splits is this shape with its own
    # DataError. What is common is the loop of publish() under deferred_interrupts().
    with contextlib.ExitStack() as stack:
        ready = []
        for target, write in writes.items():
            try:
                tmp = stack.enter_context(staged(target))
                write(tmp)
            except OSError as e:
                raise RouterLLMError(
                    f"the report could not be written to {target}: {os_reason(e)}; the answers "
                    f"are stored in {store} and the report there before is as it was: run the "
                    f"same command again once it can be written (nothing is generated again)"
                ) from e
            ready.append((tmp, target))
        # Ctrl-C (or SIGTERM) as they are renamed is raised once all are in place, as a
        # model's save does: raised between two renames, it left this run's files beside
        # the run before's, and nothing said so
        with deferred_interrupts():
            done: list[Path] = []
            for tmp, target in ready:
                try:
                    publish(tmp, target)
                except OSError as e:
                    left = [t for _, t in ready if t not in done and t != target] + list(stale)
                    raise RouterLLMError(_part_way(target, e, done, left, store)) from e
                done.append(target)
            for target in stale:
                try:
                    target.unlink(missing_ok=True)
                except OSError as e:
                    raise RouterLLMError(_part_way(target, e, done, [], store, removal=True)) from e


def _part_way(
    target: Path,
    error: OSError,
    done: Sequence[Path],
    left: Sequence[Path],
    store: Path,
    removal: bool = False,
) -> str:
    """The error of a report whose files were put in place part-way: ``done`` are this
    run's, ``left`` (those that exist) the run before's; named within the run's folder.
    ``removal``: ``target`` is the run before's file that could not be removed."""
    out = store.parent

    def names(paths: Sequence[Path]) -> str:
        return ", ".join(str(p.relative_to(out)) for p in paths)

    new = f"{names(done)} {'is' if len(done) == 1 else 'are'} this run's"
    old = [p for p in left if p.exists()]
    if not done:
        said = "the report there before is as it was"
    else:
        said = new + (f" and {names(old)} the run before's" if old else "")
    failed, can = (
        (f"the run before's {target} could not be removed", "removed")
        if removal
        else (f"the report could not be written to {target}", "written")
    )
    return (
        f"{failed}: {os_reason(error)}; {said}: run the same command again once "
        f"{target.relative_to(out)} can be {can} (the answers are stored in {store}; nothing "
        f"is generated again)"
    )


def _check_stored_styles(
    system: RouterLLM,
    store: ResultStore,
    models: Sequence[str],
    style_overrides: dict[str, Any] | None,
) -> None:
    """Refuse a run whose prompting options differ from those the stored answers of
    ``models`` (the ones it does not run) were made with: they would be reported, and
    written to the outcome data, beside this run's answers. Those of another model file
    are not reported (``run_experiment``), so not compared."""
    from routerllm.eval.codegen import style_for

    for model in models:
        if store.done(model) and store.model_source(model) in (
            None,
            system.config.model(model).source_text(),
        ):
            style = style_for(model, style_overrides, system.manager.backend(model).prefills)
            store.check_style(model, dataclasses.asdict(style))


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """``out``, made if need be, held by this run alone: a second run on it at once would
    mix two runs' answers in one store and write one report over the other."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = (out / ".lock").open("a")
    except OSError as e:
        # A file where --out, or a folder above it, goes: say which, not "[Errno 17]".
        if file := file_in_the_way(out):
            raise RouterLLMError(
                f"cannot write the results to {out}: {file} is {what_is(file)}; give --out a folder"
            ) from e
        raise RouterLLMError(f"cannot write the results to {out}: {e}") from e
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RouterLLMError(
                f"another routerllm humaneval is running on {out}; wait for it to finish "
                f"(then the same command reuses its answers), or use another --out"
            ) from None
        yield


def _stem(path: str | Path) -> str:
    """``mbpp`` for ``mbpp.jsonl`` or ``mbpp.jsonl.gz``: the outcome dataset's name;
    ``problems`` for ``models.jsonl``, whose name the models' metadata beside it takes."""
    stem = Path(path).name.split(".")[0]
    return stem if stem and stem != "models" else "problems"
