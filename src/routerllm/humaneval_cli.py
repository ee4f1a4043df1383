"""The HumanEval commands of ``routerllm``: humaneval (the experiment, routed vs
direct) and train-gate (the serving cascade's gate, from a run). Registered on
the main parser by ``routerllm.cli``; thin, as ``learn_cli``'s commands are.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routerllm.checks import MAX_CASCADE_BUDGET
from routerllm.cli import emit
from routerllm.cli_args import (
    ENCODERS_HELP,
    GATE_FOLDS_RANGE,
    MAX_NEW_TOKENS_RANGE,
    SEED_HELP,
    calibration_target_arg,
    count_arg,
    encoder_arg,
    gate_folds_arg,
    max_new_tokens_arg,
    name_list,
    names_from,
    positive_number,
    positive_number_at_most,
    seed_arg,
)
from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.gate import EscalationGate


# -- humaneval ------------------------------------------------------------------------
def _humaneval_interrupted(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    from routerllm.eval.store_file import holds_answers

    store = Path(args.out) / "results.sqlite"
    # Stopped while the problems or a --train-on run loaded, there is no store to keep.
    if not store.is_file():
        return (
            f"interrupted; nothing was run yet ({args.out} holds no results): run the same "
            "command again to start the run"
        )
    if holds_answers(store) is False:  # made, but stopped before (or in) its first answer
        return (
            f"interrupted before any answer was finished ({args.out} holds none): run the "
            "same command again to start the run"
        )
    return (
        f"interrupted; finished answers are kept in {args.out}: run the same command again "
        "to continue the run"
    )


def cmd_humaneval(args: argparse.Namespace) -> int:
    from routerllm.config import load_config
    from routerllm.eval.humaneval_report import DEFAULT_SYSTEMS, run_experiment

    systems = name_list(args.systems, "--systems") if args.systems is not None else DEFAULT_SYSTEMS
    packages = () if args.sandbox_packages is None else name_list(args.sandbox_packages, "--sandbox-packages")  # fmt: skip
    overrides = {
        k: v
        for k, v in (("mode", args.mode), ("max_new_tokens", args.max_new_tokens))
        if v is not None
    }
    summary = run_experiment(
        load_config(args.config), args.out, systems, args.limit, args.folds, args.seed,
        overrides, progress=not args.json, encoder=args.encoder, calibration=args.calibrate,
        two_settings=args.two_settings,
        cascade_budget=args.cascade_budget, problems_file=args.problems, train_on=args.train_on,
        sandbox_packages=packages, remeasure_contended=args.remeasure_contended,
    )  # fmt: skip
    text = (Path(args.out) / "report.md").read_text(encoding="utf-8")
    written = ["report.md", "results.json", "outcomes/"]
    written += ["quality_energy.png"] if summary["quality_energy_curve"] else []
    emit(args, summary, text + f"\nwritten to {args.out}/ ({', '.join(written)})")
    return 0


def cmd_train_gate(args: argparse.Namespace) -> int:
    from routerllm.carbon.meter import NOT_MEASURED, create_meter
    from routerllm.config import load_config
    from routerllm.eval.transfer import gate_from_run, refuse_missing_run
    from routerllm.gate import EscalationGate

    config = load_config(args.config)
    ladder = [m.name for m in config.models_by_size()]
    if len(ladder) < 2:
        raise RouterLLMError("a gate decides escalations between two models; the config has one")
    EscalationGate.check_saveable(Path(args.out))
    refuse_missing_run(args.run, "--run")  # before CodeCarbon's probe and scikit-learn load
    meter = create_meter(config.carbon)
    try:
        gate = gate_from_run(
            args.run, ladder, args.budget, args.folds, args.seed, meter=meter, config=config
        )
    finally:
        meter.close()
    gate.save(args.out)
    seen = gate.on_training()
    emit(args, _gate_payload(gate, seen, args.out),
         train_gate_text(gate, seen, args.run, args.out, meter.method != NOT_MEASURED))  # fmt: skip
    return 0


def train_gate_text(
    gate: EscalationGate, seen: dict[str, Any], run: str, out: str, counted: bool
) -> str:
    """train-gate's lines: the gate, what it does on its training problems (``seen``:
    ``on_training``), and where it is saved; ``counted``: whether carbon tracking was on."""
    from routerllm.carbon.report_text import counted as count
    from routerllm.carbon.units import energy
    from routerllm.gate import percent

    threshold = (
        "none (escalates nothing)" if math.isinf(gate.threshold) else f"{gate.threshold:.4g}"
    )
    power = f"{gate.first}'s mean measured power"
    if not counted:
        checks = f"checking {gate.first}'s answers not counted (carbon tracking is off in the config)"  # fmt: skip
    elif gate.about.get("check_kwh_estimated"):
        checks = (
            f"checking {gate.first}'s answers included ({energy(gate.check_kwh)} a request, not "
            f"measured (CodeCarbon failed): read from their duration at {power})"
        )
    else:
        checks = f"checking {gate.first}'s answers included ({energy(gate.check_kwh)} a request)"
    if seen["energy_share"] is not None:
        share = f"at {seen['energy_share']:.1%} of its energy"
    else:
        read = [f"the checks at {power}"] if gate.about.get("check_kwh_estimated") else []
        if n := int(gate.about.get("unmeasured") or 0):
            read.insert(0, f"the {count(n, 'answer')} CodeCarbon failed to measure as their model's mean measured energy")  # fmt: skip
        share = (
            f"at an unknown share of its energy ({seen['estimated_energy_share']:.1%} reading "
            f"{', and '.join(read)}, as the threshold does)"
        )
    return (
        f"gate from {gate.first} to {gate.then}, trained on {count(int(seen['problems']), 'problem')} of "
        f"{run} ({seen['unverified']} unverified answers: failed, or without examples), budget {percent(gate.budget)} of "
        f"{gate.then}'s generation energy, {checks}; threshold {threshold}\n"
        f"on those problems (out-of-fold predictions, which the threshold was chosen on: "
        f"optimistic): escalates {seen['escalated']} of the "
        f"{seen['unverified']} unverified answers, pass@1 {seen['pass@1']:.3f} ({gate.then} alone: "
        f"{seen['then_pass@1']:.3f}) {share}\n"
        f"saved to {out}; serve with the config's cascade: {{enabled: true, gate: {out}}}"
    )  # fmt: skip


def _gate_payload(gate: EscalationGate, seen: dict[str, Any], out: str) -> dict[str, Any]:
    return {"first": gate.first, "then": gate.then, "budget": gate.budget, "check_kwh": gate.check_kwh,
            "check_kwh_estimated": bool(gate.about.get("check_kwh_estimated")),
            "threshold": None if math.isinf(gate.threshold) else gate.threshold,
            "training": seen, "out": str(out)}  # fmt: skip


def _gate_not_saved(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    # as train's line for an outcome router: EscalationGate.save is atomic
    from routerllm.files import SavedThenInterrupted

    if isinstance(error, SavedThenInterrupted):  # as its files were renamed in place
        return f"interrupted once the gate was saved in {args.out}: it is saved whole"
    return (
        f"interrupted: the gate was not saved (one saved in {args.out} before is unchanged); "
        "rerun the command to train it"
    )


def _systems_arg(text: str) -> str:
    """``--systems``: each a system of the experiment, refused before any is run."""
    from routerllm.eval.humaneval_run import SYSTEMS

    return names_from(SYSTEMS, "a system of the experiment")(text)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    he = sub.add_parser(
        "humaneval",
        parents=[common],
        help="HumanEval pass@1 and energy: routed vs direct",
        epilog="examples and details: README.md, 'HumanEval: routed vs direct'",
    )
    he.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory for results (resumable) and the report",
    )
    he.add_argument(
        "--systems",
        type=_systems_arg,
        help="comma-separated; default: direct-heavy,direct-medium,direct-light,random,rules,complexity,quality,logreg,knn,cascade,gated-cascade; also moe (the mixture-of-experts router, cross-validated like the learned routers)",
    )
    he.add_argument(
        "--limit",
        type=count_arg,
        metavar="N",
        help="a seeded subset of N problems (all of them when N is not fewer; default: all)",
    )
    he.add_argument(
        "--problems",
        metavar="FILE",
        help="run these problems instead of the packaged HumanEval: a HumanEval-format jsonl(.gz) "
        "whose code imports only the standard library and the --sandbox-packages (EvalPlus's "
        "HumanEval+ tests import numpy) or MBPP's mbpp.jsonl / sanitized-mbpp.json",
    )
    he.add_argument(
        "--sandbox-packages",
        metavar="NAMES",
        help="comma-separated installed packages the tests may import besides the standard "
        "library, e.g. numpy for HumanEval+; only these are linked into the sandbox "
        "(default: none)",
    )
    he.add_argument(
        "--folds",
        type=count_arg,
        default=5,
        metavar="N",
        help="cross-validation folds for learned routers (1 with --train-on: train on that run only; "
        "at most one a problem: more are leave-one-out; default: 5)",
    )
    he.add_argument(
        "--train-on",
        metavar="DIR",
        help="an earlier run on another problem set (e.g. --problems mbpp.jsonl --out DIR) whose "
        "problems join every fold's training problems, never tested",
    )
    he.add_argument(
        "--max-new-tokens",
        type=max_new_tokens_arg,
        default=None,
        metavar="N",
        help=f"most tokens each answer may generate, for every model, {MAX_NEW_TOKENS_RANGE} "
        "(default: each model's "
        "code style's, 512 on the local ladder)",
    )
    he.add_argument(
        "--mode",
        choices=("chat", "complete", "prefill"),
        help="prompting mode for every model (default: each model's own, prefill for the local ladder)",
    )
    he.add_argument(
        "--encoder",
        type=encoder_arg,
        help=f"prompt encoder of the learned routers: {ENCODERS_HELP} (default: minilm-static)",
    )
    he.add_argument(
        "--calibrate",
        type=calibration_target_arg,
        metavar="TARGET",
        help="target the learned routers' decision rule and knob are set to on the training "
        "folds, a fraction: quality=X (of the best model's pass rate), max_cost=X (an energy "
        "budget, of the costliest model's energy) or max_share[:MODEL]=X (of the requests "
        "MODEL may take; MODEL by default the ladder's largest) (default: max_cost=0.7, the "
        "budget of --cascade-budget's default)",
    )
    he.add_argument(
        "--two-settings",
        action="store_true",
        help="let --calibrate meet a max_cost or quality target by a random mix of two knob settings",
    )
    he.add_argument(
        "--cascade-budget",
        type=positive_number_at_most(MAX_CASCADE_BUDGET),
        metavar="X",
        help="energy budget of the gated-cascade system, a fraction of the heavy model's "
        f"generation energy (0.7: 70%%; at most {MAX_CASCADE_BUDGET:g}) that the cascade's checks and its first "
        "model's loading count against; its gate is calibrated to it on the training folds "
        "(default: 0.7)",
    )
    he.add_argument(
        "--remeasure-contended",
        action="store_true",
        # the share is cpu_share.CONTENDED_SHARE's (tests/test_cpu_share.py): importing
        # routerllm.carbon here would load the config's code as the CLI starts
        help="generate and measure again the stored answers that were measured while other "
        "processes used more than 25%% of the machine's CPU (report.md names them), and load "
        "and measure again the models' stored loads measured so; each stored answer or load "
        "is kept until its new one is stored",
    )
    he.add_argument("--seed", type=seed_arg, default=0, help=SEED_HELP)
    he.set_defaults(func=cmd_humaneval, interrupted=_humaneval_interrupted)

    tg = sub.add_parser(
        "train-gate",
        parents=[common],
        help="train the serving cascade's escalation gate on a humaneval run",
        epilog="details: README.md, 'The gated cascade, served within an energy budget'",
    )
    tg.add_argument(
        "--run", required=True, metavar="DIR", help="directory of a routerllm humaneval run"
    )
    tg.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory to save the gate into (serve it with --gate DIR or cascade.gate)",
    )
    tg.add_argument(
        "--budget",
        type=positive_number,
        default=0.7,
        metavar="X",
        help="energy budget, a fraction of the larger model's generation energy (0.7: 70%%) "
        "that checking the answers counts against (default: 0.7)",
    )
    tg.add_argument(
        "--folds",
        type=gate_folds_arg,
        default=5,
        metavar="N",
        help=f"folds of the out-of-fold predictions the threshold is chosen on, "
        f"{GATE_FOLDS_RANGE} (default: 5)",
    )
    tg.add_argument("--seed", type=seed_arg, default=0, help=SEED_HELP)
    tg.set_defaults(func=cmd_train_gate, interrupted=_gate_not_saved)
