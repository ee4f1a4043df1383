"""An earlier run as training data: for the experiment's routers and gate, or for a
serving cascade's gate.

``routerllm humaneval --train-on DIR`` adds the problems of an earlier run in
``DIR`` (e.g. MBPP, run with ``--problems mbpp.jsonl --out DIR``) to the training
problems of every cross-validation fold; they are never tested. With
``--folds 1`` they are the only training problems and every problem of this run
is a test problem: a router or gate designed and trained on one benchmark,
judged on another it never saw. ``routerllm train-gate --run DIR`` trains the
serving cascade's escalation gate on every problem of a run (:func:`gate_from_run`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.data.outcomes import normalise
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError
from routerllm.path_checks import what_is

if TYPE_CHECKING:
    from routerllm.carbon.meter import CarbonMeter
    from routerllm.config import AppConfig, ModelConfig
    from routerllm.eval.kept_checks import CheckedAnswers
    from routerllm.eval.weights_identity import Weights
    from routerllm.gate import EscalationGate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    """What an earlier run in ``source`` measured, in ladder order: training data only."""

    source: str
    task_ids: list[str]
    prompts: list[str]
    entry_points: list[str]
    scores: np.ndarray  # (e, m) passed, per model
    energy: np.ndarray  # (e, m) generation kWh, per model
    medium_tokens: np.ndarray  # (e, 2) the medium model's prompt and answer tokens
    medium_completions: list[str]
    medium_states: np.ndarray | None  # (e, d) its hidden states of the prompts, if stored
    medium_style: dict[str, Any] | None = None  # how the run prompted it
    #: (e, m) whether each energy was measured (False: CodeCarbon failed, its 0 kWh not
    #: known); None: every one was
    measured: np.ndarray | None = None
    #: (e, m) generation seconds, per model (what an unmeasured check is read by)
    seconds: np.ndarray | None = None
    #: where each model's weights came from (``ModelConfig.source_text``), where recorded
    sources: dict[str, str] = field(default_factory=dict)
    #: how the run prompted each model (``CodegenStyle`` as its store records it), where recorded
    styles: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the weights each model's files hold (``weights_identity``): those the run's answers
    #: were made with, as its store records them, or, given the config, as they are now
    #: (checked to be the recorded ones, their stat now; a run stored before 2026-12-06
    #: records none)
    weights: dict[str, Weights] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.task_ids)

    def unverified(
        self, idx: Iterable[int] | None = None, packages: Sequence[str] = ()
    ) -> np.ndarray:
        """Whether the medium model's answer is unverified (it fails its prompt's own
        examples, the cascade's check, or the prompt has none), per problem (of the
        problems ``idx`` only, when given); the check imports ``packages``."""
        from routerllm.eval.prompt_examples import verify_completion

        chosen = range(len(self)) if idx is None else idx
        verdicts = [
            verify_completion(
                self.prompts[i], self.entry_points[i], self.medium_completions[i], packages=packages
            )
            for i in chosen
        ]
        return np.array([v.unverified for v in verdicts], dtype=bool)

    def checked(
        self, idx: Iterable[int], meter: CarbonMeter, packages: Sequence[str] = ()
    ) -> CheckedAnswers:
        """:meth:`unverified` of the problems ``idx``, the checks run now measured by
        ``meter``, those checked before on this machine with a meter of its method read
        from the store of checks, billed what measuring them cost then
        (:mod:`routerllm.eval.kept_checks`)."""
        from routerllm.eval.kept_checks import check_answers

        idx = list(idx)
        return check_answers(
            [self.prompts[i] for i in idx], [self.entry_points[i] for i in idx],
            [self.medium_completions[i] for i in idx], meter, packages,
        )  # fmt: skip


def refuse_missing_run(
    run_dir: str | Path, option: str = "--train-on", out: str | Path | None = None
) -> Path:
    """The ``results.sqlite`` of the run in ``run_dir``, or the error that says why there
    is none (``option`` names where the run was given; ``out``, this run's own folder, is
    refused). Cheap: a command checks it before it loads what the run's work needs."""
    path = Path(run_dir) / "results.sqlite"
    if out is not None and Path(run_dir).resolve() == Path(out).resolve():
        raise RouterLLMError(
            f"{option} {run_dir} is this run's own --out: train on an earlier run of another "
            f"problem set, in another folder"
        )
    # the run's results.sqlite itself, most likely, or a named pipe
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        here = f", here {Path(run_dir).parent}" if Path(run_dir).name == path.name else ""
        raise RouterLLMError(
            f"{option} {run_dir} is {what_is(Path(run_dir))}: give the folder of a routerllm "
            f"humaneval run (the --out it was given){here}"
        )
    if not path.exists() and not path.is_symlink():  # else the store says what it is
        # --train-on's run is on another problem set; train-gate's --run, HumanEval's own
        problems = "--problems FILE " if option == "--train-on" else ""
        raise RouterLLMError(
            f"{option} {run_dir}: no results.sqlite there; make that run first "
            f"(routerllm humaneval {problems}--out {run_dir})"
        )
    return path


def load_training_run(
    run_dir: str | Path,
    ladder: list[str],
    medium: str,
    exclude: set[str],
    option: str = "--train-on",
    systems: str = "systems that use every model (the default ones)",
    config: AppConfig | None = None,
    exclude_prompts: Collection[str] = (),
    out: str | Path | None = None,
) -> TrainingRun:
    """The run stored in ``run_dir`` (its ``results.sqlite``), which must hold every
    model of ``ladder`` on every one of its problems; problems whose task_id is in
    ``exclude`` (this run's own) are refused, so nothing is both trained and tested,
    and so are those whose prompt is one of ``exclude_prompts`` (this run's, compared
    with case, whitespace and Unicode form folded, ``outcomes.normalise``: the same
    problem under another task_id), and ``run_dir``
    when it is ``out``, this run's own folder.
    With ``config``, a run whose model of a name was another file than the config's
    (``ModelConfig.source_text``), or whose file, at the same path, held other weights
    (``weights_identity``), is refused: its outcomes are not this model's; the weights
    the files hold are in ``TrainingRun.weights``.
    ``option`` names where the run was given, and ``systems`` what a run must be made
    with to hold what is needed, in error messages."""
    path = refuse_missing_run(run_dir, option, out)
    # Read-only: a run given as training data is an input, never written to.
    store = ResultStore(path, read_only=True, option=option)
    try:
        problems = store.problems()
        if not store.models():  # problems are recorded before their first answer
            raise RouterLLMError(
                f"{option} {run_dir}: the run holds no answers yet; finish it first (the same "
                f"routerllm humaneval command resumes it)"
            )
        if not problems:
            raise RouterLLMError(
                f"{option} {run_dir}: the run does not record its prompts (an older RouterLLM "
                f"made it); run the same routerllm humaneval command on it again (nothing is "
                f"regenerated) to record them"
            )
        ids = [t for t, _, _ in problems]
        if shared := sorted(set(ids) & exclude):
            raise RouterLLMError(
                f"{option} {run_dir}: {len(shared)} of its problems are also in this run "
                f"({', '.join(shared[:3])}...); train on another problem set"
            )
        # Folded as a router's encoder folds them: a refused run costs a rerun with
        # another set; a missed copy is a tested prompt trained on, a figure that lies.
        tested = {normalise(p) for p in exclude_prompts}
        if copies := [(t, p) for t, p, _ in problems if normalise(p) in tested]:
            raise RouterLLMError(
                f"{option} {run_dir}: {len(copies)} of its problems ("
                f"{', '.join(t for t, _ in copies[:3])}{', ...' if len(copies) > 3 else ''}) "
                f"{'has' if len(copies) == 1 else 'have'} the prompt of a problem of this run "
                f"under another task_id; train on another problem set"
            )
        outcomes = {m: store.outcomes(m) for m in ladder}
        absent = [m for m in ladder if not outcomes[m]]
        if absent and len(absent) < len(ladder):  # the run stopped before these models
            raise RouterLLMError(
                f"{option} {run_dir}: it has no generations of {', '.join(absent)}; finish "
                f"that run first, with {systems}"
            )
        if absent:
            raise RouterLLMError(
                f"{option} {run_dir}: it was made with other models "
                f"({', '.join(store.models()) or 'none'}) "
                f"and has no generations of {', '.join(absent)}; train on a run of this "
                f"config's ladder"
            )
        for m in ladder:
            if missing := [t for t in ids if t not in outcomes[m]]:
                raise RouterLLMError(
                    f"{option} {run_dir}: it has no generations of {m} for {len(missing)} of its "
                    f"{len(ids)} problems; finish that run first: routerllm humaneval on all of "
                    f"them, with {systems}, resumes it"
                )
        from routerllm.eval.weights_identity import recorded_weights

        recorded = {m: s for m in ladder if (s := store.model_source(m)) is not None}
        weights = {m: w for m in ladder if (w := recorded_weights(store, m)) is not None}
        if config is not None:
            weights |= _refuse_other_models(store, config, ladder, recorded, f"{option} {run_dir}")  # fmt: skip
        completions = store.completions(medium)
        styles = store.styles()
        return TrainingRun(
            source=str(run_dir),
            task_ids=ids,
            prompts=[p for _, p, _ in problems],
            entry_points=[e for _, _, e in problems],
            scores=np.array([[float(outcomes[m][t].passed) for m in ladder] for t in ids]),
            energy=np.array([[outcomes[m][t].gen_kwh for m in ladder] for t in ids]),
            measured=np.array([[outcomes[m][t].measured for m in ladder] for t in ids]),
            seconds=np.array([[outcomes[m][t].gen_s for m in ladder] for t in ids]),
            medium_tokens=np.array(
                [
                    [outcomes[medium][t].prompt_tokens, outcomes[medium][t].completion_tokens]
                    for t in ids
                ]
            ),
            medium_completions=[completions[t] for t in ids],
            medium_states=store.prompt_states(medium, ids),
            medium_style=styles.get(medium),
            sources=recorded,
            styles={m: styles[m] for m in ladder if m in styles},
            weights=weights,
        )
    finally:
        store.close()


def _refuse_other_models(
    store: ResultStore, config: AppConfig, ladder: list[str], recorded: Mapping[str, str], run: str
) -> dict[str, Weights]:
    """Refuse the run (``store``, given as ``run``) whose model of a name was another file
    than ``config``'s (its ``recorded`` sources), or whose file, at the same path, held
    other weights: the answers are another model's. The other weights are no experiment
    of the user's to mix in (as another prompting style may be): a file written again
    under its name, a package upgraded, would train on answers the weights now never gave.
    The weights of the models whose files' stat is not the recorded one, or whose weights
    the run does not record, as they are now (``changed_weights``)."""
    from routerllm.eval.weights_identity import changed_weights

    now = {m: config.model(m).source_text() for m in ladder}
    if other := [m for m in recorded if recorded[m] != now[m]]:
        raise RouterLLMError(
            f"{run}: its {', '.join(other)} {'was' if len(other) == 1 else 'were'} another "
            f"model file (or quantisation) than this config's, so its outcomes and energies "
            f"are not this model's to train on; train on a run of this config's models"
        )
    # a run stored before its weights were recorded (2026-12-06) records none: not refused
    changed, same = changed_weights(store, config, ladder)
    for name, weights in changed.items():
        files = ", ".join(weights.files)
        raise RouterLLMError(
            f"{run}: its {name!r} answers were made with other weights than {files} "
            f"{'holds' if len(weights.files) == 1 else 'hold'} now (another sha256, same file "
            f"name), so its outcomes and energies are not this model's to train on; put back "
            f"the file that run was made with, or make that run again with this one"
        )
    return same


def say_other_styles(
    run: TrainingRun,
    ours: Mapping[str, Mapping[str, Any]],
    option: str,
    here: str,
    trains: str,
    remedy: str = "train on a run made with the same prompting options",
) -> dict[str, list[str]]:
    """Warn, in one line, where ``run`` (given as ``option``) asked a model of ``ours``
    (how ``here`` asks each) in another style: its answers train ``trains`` all the same
    (more training data may be meant), two experiments mixed; ``remedy`` says how to
    keep them apart. Returns the fields that differ, per model (``style_diff.other_styles``)."""
    from routerllm.eval.style_diff import differences_text, other_styles

    if differs := other_styles(run.styles, ours):
        log.warning(
            "%s %s was made in another prompting style: it asked %s; its answers train %s "
            "all the same, two experiments mixed (which model solves a problem depends on how "
            "it was asked): %s to keep them apart",
            option, run.source, differences_text(run.styles, ours, differs, here), trains, remedy,
        )  # fmt: skip
    return differs


def refuse_other_width(run: TrainingRun, option: str, model: ModelConfig, here: str = "") -> None:
    """Refuse ``run`` (given as ``option``) whose stored states of the prompts, ``model``'s,
    are not as wide as ``model``'s GGUF gives (``here``: for what, in the message): the
    file at the configured path was replaced since the run, whose source is that path,
    so its states are another model's. A run without states, or a GGUF whose header
    does not say, passes."""
    from routerllm.model_header import other_state_width

    if run.medium_states is None:
        return
    width = run.medium_states.shape[1]
    if (other := other_state_width(model, width)) is not None:
        raise RouterLLMError(
            f"{option} {run.source} stored {model.name}'s {width}-wide states of the prompts, "
            f"and {other}{here}: the run was made with another model file; train on a run of "
            f"this config's models"
        )


def gate_from_run(
    run_dir: str | Path,
    ladder: list[str],
    budget: float,
    folds: int = 5,
    seed: int = 0,
    only: Collection[str] | None = None,
    meter: CarbonMeter | None = None,
    config: AppConfig | None = None,
) -> EscalationGate:
    """An escalation gate for the serving cascade (``routerllm train-gate``), trained on
    the problems of the run in ``run_dir`` (those whose task_id is in ``only``, when
    given: the others are held out): from the medium model of ``ladder``, whose states
    of the prompts the run stored, to the heavy one, within ``budget``. Checking the
    medium model's answers is measured by ``meter`` (not measured without one): the
    checks' energy counts against the budget. With ``config`` (the serving config), a run
    whose model of a name was another file than the config's, or other weights at its
    path (:func:`load_training_run`), is refused: a system of that config would refuse
    its gate, or serve it on states it never learned; so is one whose stored states are
    not as wide as the GGUF of the config's first model gives. The gate records its two
    models' files and weights (``TrainingRun.weights``): a system whose files hold others
    refuses it (:mod:`routerllm.served_gate`). A run that asked the
    second model otherwise than a system of that config asks it is warned about: a
    served gate asks its first model as the run did, the second one in its own style."""
    from routerllm.carbon.meter import CODECARBON_FAILED, NullMeter
    from routerllm.cascade import cascade_pair
    from routerllm.gate import EscalationGate, known_kwh, refuse_unmeasured
    from routerllm.gate_models import kwh_at_measured_power, require_scikit_learn

    first, then = cascade_pair(ladder)
    require_scikit_learn()  # said before the answers are checked, not after
    # Only the gate's two models: the others' answers are not needed (a run of
    # --systems direct-medium,direct-heavy lacks them, and lacks what is: the states).
    systems = f"the gated-cascade system (a default one), which stores {first}'s state of each prompt"  # fmt: skip
    run = load_training_run(run_dir, [first, then], first, set(), "--run", systems, config)
    if run.medium_states is None:
        # Its stored answers of the first model are reused, never asked again with the
        # state read: running the gated-cascade system into the same run cannot add them.
        raise RouterLLMError(
            f"--run {run_dir}: its generations of {first} were made without reading {first}'s "
            f"state of each prompt (made before 2026-12-01, or without the gated-cascade "
            f"system), and a run reuses them as they are; make a new run with that system: "
            f"routerllm humaneval --systems gated-cascade --out NEW_DIR"
        )
    if config is not None:
        from routerllm.served_gate import STYLE_ADVICE, served_style

        refuse_other_width(run, "--run", config.model(first))
        served = {then: served_style(config.model(then))}
        say_other_styles(run, served, "--run", "a system of this config", "the gate",
                         STYLE_ADVICE)  # fmt: skip
    idx = np.array([i for i, t in enumerate(run.task_ids) if only is None or t in only], dtype=int)
    if len(idx) < 2 * folds:
        raise RouterLLMError(
            f"--run {run_dir} has {len(idx)} problems to train on; a gate needs at least "
            f"{2 * folds} ({folds} folds of 2) to be trained and calibrated"
        )
    # Refused before the answers are checked (seconds each in the sandbox), not at the fit.
    measured = None if run.measured is None else run.measured[idx]
    refuse_unmeasured(then, known_kwh(first, then, run.energy[idx], measured)[:, 1])
    # the held-out problems are not checked; those checked before are billed as measured then
    checks = run.checked(idx, meter or NullMeter())
    unverified, now = checks.unverified, checks.now
    # CodeCarbon failed (not carbon tracking off, whose checks are not counted, as said):
    # their 0 kWh would loosen the budget, so they are read at first's measured power
    estimated = now is not None and not now.measured and now.method == CODECARBON_FAILED
    check_kwh = checks.kept_kwh + (0.0 if now is None else now.energy_kwh)
    if now is not None and estimated:
        check_kwh = checks.kept_kwh + kwh_at_measured_power(
            now.duration_s, run.energy[idx, 0], _seconds(run)[idx, 0],
            None if measured is None else measured[:, 0], first, f"the checks of {first}'s answers",
        )  # fmt: skip
    about = {"run": str(run_dir), "problems": len(idx), "unverified": int(unverified.sum()),
             "folds": folds, "seed": seed, "style": run.medium_style,
             "sources": run.sources, "styles": run.styles,
             "weights": {m: asdict(w) for m, w in run.weights.items()},
             "unmeasured": 0 if measured is None else int((~measured).sum()),
             "check_kwh_estimated": estimated, "checks_kept": checks.kept}  # fmt: skip
    return EscalationGate.fit(
        first, then, run.medium_states[idx].astype(float), run.scores[idx],
        run.energy[idx], run.medium_tokens[idx].astype(float), unverified, budget, folds,
        seed, about, check_kwh / len(idx), measured,
    )  # fmt: skip


def _seconds(run: TrainingRun) -> np.ndarray:
    if run.seconds is None:  # a TrainingRun made by hand, without them
        raise RouterLLMError(f"--run {run.source}: its generation times are not known")
    return run.seconds
