"""``routerllm humaneval``'s options checked and resolved into an :class:`ExperimentPlan`,
in an order that fails on a bad option before anything loads, on a bad input before any
model runs, and writes nothing: ``humaneval_report.run_experiment`` then runs the plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routerllm.cascade import cascade_pair
from routerllm.checks import MAX_CASCADE_BUDGET, is_integer
from routerllm.config import AppConfig
from routerllm.data.mbpp import load_code_problems
from routerllm.eval.humaneval_run import (
    ALSO_LEARNED,
    GATED_CASCADE,
    LEARNED,
    TRAINED,
    check_systems,
    seeded_subset,
)
from routerllm.eval.sandbox_packages import check_sandbox_packages
from routerllm.exceptions import RouterLLMError
from routerllm.path_checks import refuse_unwritable_folder
from routerllm.routers.calibration import check_two_settings, parse_target

if TYPE_CHECKING:
    from routerllm.data.humaneval import HumanEvalProblem
    from routerllm.eval.transfer import TrainingRun

#: What the run and its report write in ``out``: files, then folders.
_OUTPUT_FILES = ("report.md", "results.json", "quality_energy.png", "requests.sqlite", "results.sqlite")  # fmt: skip
_OUTPUT_FOLDERS = ("outcomes", "carbon")


@dataclass(frozen=True)
class ExperimentPlan:
    """A run's options, checked, with their defaults resolved, and the inputs they name,
    loaded: everything the experiment runs, known good before anything is written."""

    out: Path
    systems: Sequence[str]
    ladder: list[str]  # the config's models, smallest first
    light: str
    medium: str  # the cascades' first model, and the gated cascade's gate reads its states
    heavy: str
    direct: dict[str, str]  # a direct system's name -> its model
    wanted: list[str]  # the models this run generates with
    problems: list[HumanEvalProblem]
    problems_file: str | Path | None
    limit: int | None  # None: the whole set (also for a --limit at or above its size)
    folds: int  # at most one per problem
    trained: bool  # whether a system learns (and is cross-validated)
    seed: int
    style_overrides: dict[str, Any] | None
    progress: bool
    encoder: str | None  # None: the learned routers' own
    calibration: str  # ``max_share=X`` named ``max_share:<largest model>=X``
    two_settings: bool
    cascade_budget: float
    packages: tuple[str, ...]  # what the problems' code may import besides the stdlib
    extra: TrainingRun | None  # the --train-on run

    @property
    def task_ids(self) -> list[str]:
        return [p.task_id for p in self.problems]

    @property
    def prompts(self) -> list[str]:
        return [p.prompt for p in self.problems]


def plan_experiment(
    config: AppConfig,
    out: str | Path,
    systems: Sequence[str],
    limit: int | None,
    folds: int,
    seed: int,
    style_overrides: dict[str, Any] | None,
    progress: bool,
    encoder: str | None,
    calibration: str | None,
    two_settings: bool,
    cascade_budget: float | None,
    problems_file: str | Path | None,
    train_on: str | Path | None,
    sandbox_packages: Sequence[str],
) -> ExperimentPlan:
    """The plan of ``run_experiment``'s arguments, or the error of the first bad one:
    the options first, then what loads (the problems, a --train-on run)."""
    out = Path(out)
    if not config.carbon.enabled:
        raise RouterLLMError(
            "the experiment compares the systems' measured energy: set carbon.enabled: true "
            "in the config (CodeCarbon runs offline)"
        )
    ladder = [m.name for m in config.models_by_size()]
    check_systems(systems, ladder)
    _refuse_unused_options(systems, encoder, calibration, two_settings, cascade_budget)
    calibration = _checked_calibration(calibration, two_settings, ladder)
    cascade_budget = 0.7 if cascade_budget is None else cascade_budget
    if "quality" in systems:  # its quality-energy curve is plotted once everything ran
        from routerllm.eval.plots import require_matplotlib

        require_matplotlib(
            "the quality router's quality-energy curve (quality_energy.png)",
            "leave quality out of --systems",
        )
    if encoder is not None:
        from routerllm.encoders import create_encoder

        create_encoder(encoder)
    if not 0 < cascade_budget <= MAX_CASCADE_BUDGET:
        raise RouterLLMError(
            f"the cascade budget must be > 0 and at most {MAX_CASCADE_BUDGET:g} (a share of the heavy model's "
            f"energy), got {cascade_budget}"
        )
    if not is_integer(folds) or folds < 1:
        raise RouterLLMError(f"folds must be an integer >= 1, got {folds!r}")
    if limit is not None and limit < 1:
        raise RouterLLMError(f"limit must be at least 1 problem, got {limit}")
    light, (medium, heavy) = ladder[0], cascade_pair(ladder)
    direct = {"direct-light": light, "direct-medium": medium, "direct-heavy": heavy}
    # Direct systems need only their own model; every other one needs the whole ladder
    # (a router may pick any model; the learned routers and the gate train on all).
    wanted = (
        ladder
        if any(name not in direct for name in systems)
        else [m for m in ladder if m in {direct[name] for name in systems}]
    )
    # Before the problems and a --train-on run load, not when the run's folder is made.
    refuse_unwritable_folder(out, f"cannot write the results to {out}", "nothing was run")
    packages = check_sandbox_packages(sandbox_packages)  # before any model runs
    every = load_code_problems(
        problems_file, max_prompt_chars=config.limits.max_prompt_chars, packages=packages
    )
    problems = seeded_subset(every, limit, seed)
    # --limit at or above the set's size runs the whole set: not a subset.
    limit = limit if limit is not None and limit < len(every) else None
    trained = any(s in TRAINED for s in systems)
    folds = _checked_folds(systems, folds, len(problems), trained, train_on is not None)
    from routerllm.eval.codegen import build_request, style_for

    for model in wanted:  # bad generation options fail before anything is written
        build_request(problems[0], style_for(model, style_overrides))
    _refuse_blocked_outputs(out)
    extra = None
    if train_on is not None:
        from routerllm.eval.transfer import load_training_run, refuse_other_width

        extra = load_training_run(
            train_on, ladder, medium, {p.task_id for p in problems},
            config=config, exclude_prompts=[p.prompt for p in problems], out=out,
        )  # fmt: skip
        if GATED_CASCADE in systems:  # its gate reads both runs' states, stacked
            refuse_other_width(extra, "--train-on", config.model(medium), f" for this run ({out})")
    return ExperimentPlan(
        out=out, systems=systems, ladder=ladder, light=light, medium=medium, heavy=heavy,
        direct=direct, wanted=wanted, problems=problems, problems_file=problems_file,
        limit=limit, folds=folds, trained=trained, seed=seed, style_overrides=style_overrides,
        progress=progress, encoder=encoder, calibration=calibration, two_settings=two_settings,
        cascade_budget=cascade_budget, packages=packages, extra=extra,
    )  # fmt: skip


def _refuse_unused_options(
    systems: Sequence[str],
    encoder: str | None,
    calibration: str | None,
    two_settings: bool,
    cascade_budget: float | None,
) -> None:
    """An option given that none of the systems uses would be ignored, leaving the user
    believing the systems budgeted or calibrated: refused before anything runs."""
    routers = (*LEARNED, *ALSO_LEARNED)
    for option, given, users in (
        ("--encoder", encoder is not None, TRAINED),
        ("--calibrate", calibration is not None, routers),
        ("--two-settings", two_settings, routers),
        ("--cascade-budget", cascade_budget is not None, (GATED_CASCADE,)),
    ):
        if given and not set(users) & set(systems):
            none = "it is not" if len(users) == 1 else "none of them is"
            raise RouterLLMError(
                f"{option} is for {', '.join(users)}, and {none} among the systems: "
                f"{', '.join(systems)}"
            )


def _checked_calibration(calibration: str | None, two_settings: bool, ladder: list[str]) -> str:
    """The learned routers' calibration target (default ``max_cost=0.7``), checked now,
    not after the generations."""
    calibration = "max_cost=0.7" if calibration is None else calibration
    kind, goal = parse_target(calibration, ladder)
    if two_settings:
        check_two_settings(kind)
    if kind == "max_share":
        # The ladder's largest model, named now: the dearest by measured energy would be
        # known only after the generations (and refused then where two were equally dear).
        calibration = f"max_share:{ladder[-1]}={goal!r}"
    return calibration


def _checked_folds(
    systems: Sequence[str], folds: int, n_problems: int, trained: bool, train_on: bool
) -> int:
    """The cross-validation folds: at most one per problem (leave-one-out), where a
    system learns; a --train-on run where none does is refused."""
    if train_on and not trained:
        raise RouterLLMError(
            "--train-on trains the learned routers and the gated cascade's gate, and none of "
            f"them is among the systems: {', '.join(systems)}"
        )
    if trained:
        least = 1 if train_on else 2  # one fold: train on the other set only
        if folds < least or n_problems < least:
            raise RouterLLMError(
                f"the learned routers need at least {least} cross-validation fold(s) and "
                f"{least} problem(s), got {folds} fold(s) and {n_problems} problem(s): "
                "change --folds or --limit"
            )
        folds = min(folds, n_problems)  # leave-one-out when there are fewer problems
    return folds


def _refuse_blocked_outputs(out: Path) -> None:
    """What the run and its report write must be writable before anything is generated
    (the request log and carbon folder are the run's own, whatever the config says)."""
    for name in _OUTPUT_FILES:
        if (out / name).is_dir():
            raise RouterLLMError(f"{out / name} is a folder, where the run writes a file")
    for name in _OUTPUT_FOLDERS:
        if (out / name).is_file():
            raise RouterLLMError(f"{out / name} is a file, where the run writes a folder")
