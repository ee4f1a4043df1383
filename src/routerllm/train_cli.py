"""``routerllm train``: a classifier on labelled prompts, or an outcome router on
outcome data. Thin, as the other learning commands (``learn_cli``): it checks its
arguments, calls the library, and prints a table or one JSON object."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from routerllm.checks import repeated
from routerllm.cli import emit
from routerllm.cli_args import (
    COSTS_HELP,
    ENCODERS_HELP,
    EPOCHS_RANGE,
    LEARNING_RATE_RANGE,
    SEED_HELP,
    calibration_target_arg,
    encoder_arg,
    option_arg,
    refuse_overwriting,
    seed_arg,
)
from routerllm.data import COST_KINDS
from routerllm.data.labeled import LabeledPrompt, load_json
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.files import SavedThenInterrupted
from routerllm.train_options import (
    CLASSIFIER_LOSSES,
    SET_BY_FLAGS,
    TRAINABLE,
    check_train_options,
    read_classifier_numbers,
)

log = logging.getLogger(__name__)


def _check_out_folder(out: Path, overwrite: bool) -> None:
    """Fail now, not after the training: ``out`` must be a writable folder (or creatable
    as one) holding no other tool's files, nor, unless ``overwrite``, the router a system
    learns into from feedback (its ``router.path``: training would replace all it
    learned)."""
    from routerllm.files import PRESENCE_FILE, refuse_foreign_folder
    from routerllm.path_checks import file_in_the_way, refuse_unwritable_folder, what_is
    from routerllm.routers.base import is_saved_router

    if (file := file_in_the_way(out)) is not None:
        raise RouterLLMError(
            f"--out {out}: {file} is {what_is(file)}; give a folder for the router"
        )
    refuse_unwritable_folder(out, f"--out {out}", "nothing was trained")
    refuse_foreign_folder(out, is_saved_router, "RouterLLM router")
    if not overwrite and (out / PRESENCE_FILE).exists():
        raise RouterLLMError(
            f"--out {out} holds a router that a system learns into from feedback (its "
            f"router.path, with router.learn: true): training would replace what it learned; "
            f"give another --out, or --overwrite to replace it (nothing was changed)"
        )


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_train_options(args)
    if args.val and Path(args.data).is_dir():
        raise RouterLLMError(
            f"--val {args.val} with a --data folder: the folder's val.json is the validation "
            f"split; give --data {Path(args.data) / 'train.json'} --val {args.val} to use another"
        )
    written = [out / "config.json", out / "weights.npz", _checkpoint(out)]
    refuse_overwriting("--out", written, _train_inputs(args))
    _check_out_folder(out, args.overwrite)
    for path in written:  # now, not after an epoch of training
        if path.is_dir():
            raise RouterLLMError(f"--out {out}: {path} is a folder, where a file will be written")
        if path.parent.exists() and not path.parent.is_dir():
            raise RouterLLMError(f"--out {out}: {path.parent} is a file, where a folder goes")
    if args.router == "classifier" and not args.resume and not args.overwrite:
        _refuse_replacing_an_unfinished_run(out)
    if args.router == "classifier" and args.resume:
        _refuse_resuming_into_another_router(out)
    payload = (
        _train_classifier(args) if args.router == "classifier" else _train_outcome_router(args)
    )
    emit(args, payload, _text(payload))
    return 0


def _text(payload: dict[str, Any]) -> str:
    """One ``name: value`` line per field (not the classifier's epoch ``history``); a
    table of fields (``calibration``) one indented line per field, as ``--json`` names them."""
    lines = []
    for k, v in payload.items():
        if k == "history":
            continue
        if k == "calibration":
            lines += [f"{k}:", *(f"  {name}: {value}" for name, value in v.items())]
        else:
            lines.append(f"{k}: {v}")
    return "\n".join(lines)


def _refuse_replacing_an_unfinished_run(out: Path) -> None:
    """Training afresh replaces the checkpoint in ``out`` at its first epoch: refuse that
    where the checkpoint is of a run that did not finish (fewer epochs than it was asked
    for, or no router saved in ``out``: stopped as it saved), since those epochs are all
    that run made. A SIGKILL (the OOM killer, a reboot) leaves no message that says to
    rerun with --resume."""
    checkpoint = _checkpoint(out)
    if not checkpoint.is_file():
        return
    from routerllm.routers.base import saved_router_name
    from routerllm.training.checkpoint import checkpoint_progress

    if (progress := checkpoint_progress(checkpoint)) is None:
        return  # unreadable: nothing in it to keep, and the trainer replaces it
    done, asked = progress
    # another router saved in ``out`` since (a quality one) is not the classifier's
    saved = saved_router_name(out / "config.json") == "classifier"
    if (asked is None or done >= asked) and saved:
        return  # finished: its router is saved; retraining replaces both, as documented
    raise RouterLLMError(
        f"--out {out} holds the checkpoint of a training run that did not finish "
        f"({checkpoint}: epochs 1-{done}{'' if asked is None else f' of {asked}'}): rerun the "
        f"command with --resume to continue after epoch {done}, or with --overwrite to train "
        f"from scratch, replacing them (nothing was changed)"
    )


def _refuse_resuming_into_another_router(out: Path) -> None:
    """``--resume`` where ``out`` holds no checkpoint but another kind of router: the run
    to continue is in another folder (a typo), and training from scratch, as --resume
    does where it finds no checkpoint, would replace that router."""
    from routerllm.routers.base import saved_router_name

    if _checkpoint(out).exists():
        return
    kind = saved_router_name(out / "config.json")
    if kind is not None and kind != "classifier":
        raise RouterLLMError(
            f"--resume: --out {out} holds no classifier checkpoint to continue, but a saved "
            f"{kind!r} router, which training would replace; give the --out of the run to "
            f"resume, or leave out --resume to replace it (nothing was changed)"
        )


def _train_classifier(args: argparse.Namespace) -> dict[str, Any]:
    from routerllm.config import load_config

    train, val = _splits(args.data, args.val)
    files = [path for _, path in _train_inputs(args)]  # the training file first
    _warn_about_labels(train, val, files[0], files[-1])
    config = load_config(args.config)
    # torch (seconds) once the data and config are read: a mistake in them is said at once
    from routerllm.routers.classifier import EmbeddingClassifierRouter
    from routerllm.training.trainer import TrainingArguments, TrainingInterrupted

    loss = "inter_intra" if args.use_inter_intra_loss else args.loss
    default_lr = 2e-5 if args.mode == "full" else 1e-3
    lr = default_lr if args.learning_rate is None else args.learning_rate
    out = Path(args.out)
    encoder = {"encoder": args.encoder} if args.encoder else {}  # else the router's default
    router = EmbeddingClassifierRouter(config.models, args.seed, mode=args.mode, **encoder)
    targs = TrainingArguments(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=lr,
        warmup_steps=args.warmup_steps, loss=loss, seed=args.seed, output_dir=str(out / "checkpoints"), progress=not args.json,
    )  # fmt: skip
    if args.resume and not _checkpoint(out).exists():
        log.warning("--resume: no checkpoint in %s; training from the first epoch", out)
    history = router.fit(train, val, targs, resume=args.resume)
    try:
        router.save(out)
    except SavedThenInterrupted:
        raise
    except KeyboardInterrupt as e:  # every epoch is in the checkpoint: a resume just saves
        raise TrainingInterrupted(args.epochs, _checkpoint(out)) from e
    return {
        "router": "classifier", "out": str(out), "mode": args.mode, "encoder": router.spec, "loss": loss,
        "learning_rate": lr, "train_size": len(train), "val_size": len(val),
        "best_epoch": history.best_epoch, "best_val_accuracy": history.best_val_accuracy,
        "epochs_run": history.epochs_run, "history": [r.__dict__ for r in history.records],
    }  # fmt: skip


def _train_outcome_router(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from routerllm.data.outcome_files import load_outcomes
    from routerllm.encoders import CachedEncoder, create_encoder
    from routerllm.eval.outcome_eval import outcome_candidates, split_dataset
    from routerllm.routers.base import create_router
    from routerllm.routers.calibration import capped_model, check_two_settings, parse_target
    from routerllm.routers.decision import MODES
    from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

    data = load_outcomes(args.data)
    if args.router == "policy":  # now, not after the embedding
        from routerllm.data.policy_labels import check_model_count, check_reference

        check_model_count(data.models)
        for name in (args.medium_model, args.large_model):
            check_reference(data.models, name)
    cost = data.cost_kind(args.cost)
    costs = data.cost_matrix(cost).mean(axis=0)
    candidates = outcome_candidates(data, costs)
    encoder_spec = args.encoder or DEFAULT_ENCODER
    references = (
        {"medium_model": args.medium_model, "large_model": args.large_model}
        if args.router == "policy"
        else {}
    )
    options = dict(args.option)
    if flagged := [k for k in options if k in SET_BY_FLAGS]:
        raise RouterLLMError(
            f"--option {flagged[0]} is set by {SET_BY_FLAGS[flagged[0]]}; use that instead"
        )
    if "loaded_from" in options:  # load_router's (the folder its saves merge with), no option
        from routerllm.registry import ROUTERS
        from routerllm.routers.option_types import unknown_options

        raise unknown_options(ROUTERS.get(args.router), ["loaded_from"])
    if twice := repeated([k for k, _ in args.option]):
        raise RouterLLMError(f"--option gives {', '.join(twice)} more than once")
    router = create_router(
        args.router,
        candidates,
        args.seed,
        encoder=encoder_spec,
        mode=args.decision,  # None: the router's own default
        costs=costs.tolist(),
        **references,
        **options,
    )
    assert isinstance(router, OutcomeRouter)
    if args.two_settings and not args.calibrate:
        raise RouterLLMError("--two-settings is a way to --calibrate: give a target too")
    if args.calibrate:
        if args.decision is not None and args.decision not in MODES:
            raise RouterLLMError(
                f"--decision {args.decision} has no knob to calibrate; with --calibrate give "
                f"{' or '.join(MODES)}, or leave --decision out (the better of them)"
            )
        kind, goal = parse_target(args.calibrate, router.model_names)  # before the fit, not after
        capped_model(kind, goal, router.model_names, router.costs)
        if args.two_settings:
            check_two_settings(kind)
    fit_on, held_out = data, None
    if args.calibrate:
        try:
            fit_on, held_out = split_dataset(data, 0.2, args.seed)
        except DataError:
            raise RouterLLMError(
                f"--calibrate sets the knob on 20 % of --data, held out of the training, and "
                f"{len(data)} prompt(s) cannot be split so: give more data, or leave out "
                f"--calibrate"
            ) from None
    encoder = CachedEncoder(create_encoder(encoder_spec))
    router.fit_dataset(fit_on, encoder.encode(fit_on.prompts))
    payload: dict[str, Any] = {
        "router": args.router, "out": str(args.out), "train_size": len(fit_on), "models": data.models,
        "cost": cost, "selection": {k: v for k, v in router.selection.items() if k != "candidates"},
    }  # fmt: skip
    if held_out is not None:
        X = encoder.encode(held_out.prompts)
        modes = [args.decision] if args.decision else MODES  # no rule given: the better one
        payload["calibration"] = router.calibrate(
            X, held_out.scores, args.calibrate, data.models, modes=modes,
            two_settings=args.two_settings,
        )  # fmt: skip
        payload["calibration_size"] = len(held_out)
    router.save(args.out)
    payload["mode"], payload["knob"] = router.mode, float(np.float64(router.knob))
    return payload


def _splits(path: str, val: str | None) -> tuple[list[LabeledPrompt], list[LabeledPrompt]]:
    """A labelled file (+ optional val file), or a directory holding train.json and val.json."""
    p = Path(path)
    if p.is_dir():
        train = _prompts(p / "train.json")
        return train, _prompts(p / "val.json") if (p / "val.json").exists() else []
    return _prompts(p), _prompts(Path(val)) if val else []


def _prompts(path: Path) -> list[LabeledPrompt]:
    """A labelled file that holds prompts: an empty validation file would silently keep
    the last epoch instead of the best one."""
    items = load_json(path)
    if not items:
        raise DataError(f"{path} holds no prompts; give a file with labelled prompts")
    return items


def _warn_about_labels(
    train: list[LabeledPrompt], val: list[LabeledPrompt], train_file: Path, val_file: Path
) -> None:
    """Warnings, as for outcome data's repeats: a prompt of the training data labelled
    more than once differently (case, spaces and Unicode form folded, as ``overlap`` compares them),
    a class no training prompt has, and validation prompts that are also training ones."""
    from routerllm.data.labeled import CLASS_NAMES, NUM_CLASSES
    from routerllm.data.outcomes import normalise

    labels: dict[str, dict[int, str]] = {}
    for item in train:
        labels.setdefault(normalise(item.text), {}).setdefault(item.label, item.text)
    if differ := [seen for seen in labels.values() if len(seen) > 1]:
        (a, text), (b, _) = list(differ[0].items())[:2]
        log.warning(
            "%s: %d prompt(s) given more than once with different labels (case, spaces and "
            "Unicode form folded), e.g. %.60r (labels %d and %d): the classifier is trained on both",
            train_file, len(differ), text, a, b,
        )  # fmt: skip
    if missing := sorted(set(range(NUM_CLASSES)) - {item.label for item in train}):
        log.warning(
            "%s: no training prompt of class(es) %s: the classifier will never predict them",
            train_file, ", ".join(f"{c} ({CLASS_NAMES[c]})" for c in missing),
        )  # fmt: skip
    if shared := sum(normalise(item.text) in labels for item in val):
        log.warning(
            "%s: %d of its %d prompts are also in the training data (case, spaces and "
            "Unicode form folded): the validation accuracy that picks the best epoch is partly measured "
            "on trained prompts",
            val_file, shared, len(val),
        )  # fmt: skip


def _train_inputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    data = Path(args.data)
    if data.is_dir():
        inputs = [("--data", data / "train.json"), ("--data", data / "val.json")]
    else:
        inputs = [("--data", data)]
    return inputs + ([("--val", Path(args.val))] if args.val else [])


def _checkpoint(out: Path) -> Path:
    """The classifier's training checkpoint in ``--out`` (``training.checkpoint.CHECKPOINT_NAME``
    in ``output_dir``, given as ``out/checkpoints``)."""
    return out / "checkpoints" / "checkpoint.pt"


def _train_interrupted(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    if isinstance(error, SavedThenInterrupted):  # as its files were renamed in place
        return f"interrupted once router {args.router!r} was saved in {args.out}: it is saved whole"
    if args.router != "classifier":  # no epochs in a checkpoint, no --resume: a rerun starts over
        return (
            f"interrupted: router {args.router!r} was not saved (one saved in {args.out} "
            "before is unchanged); rerun the command to train it"
        )
    # training.trainer.TrainingInterrupted says which epochs its checkpoint holds.
    saved, checkpoint = getattr(error, "saved_epoch", 0), getattr(error, "checkpoint", None)
    if saved and saved >= args.epochs:  # trained; the router's save was stopped (it is atomic)
        return (
            f"interrupted before the router was saved (one saved in {args.out} before is "
            f"unchanged): all {saved} epochs are saved in {checkpoint}; rerun the same command "
            "with --resume to save it without training again"
        )
    if saved:
        return (
            f"interrupted: epochs 1-{saved} are saved in {checkpoint}; rerun the same "
            f"command with --resume to continue after epoch {saved}"
        )
    checkpoint = _checkpoint(Path(args.out))
    if getattr(args, "resume", False) and checkpoint.exists():
        # Stopped before the loop resumed (reading the data, embedding it): the
        # checkpoint's epochs are still there.
        return (
            f"interrupted before training resumed: {checkpoint} is unchanged; rerun the same "
            f"command (with --resume) to continue after its last finished epoch"
        )
    return (
        "interrupted before a first epoch was saved: nothing to resume (a router saved "
        f"in {args.out} before is unchanged)"
    )


def add_train_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    tr = sub.add_parser(
        "train",
        parents=[common],
        help="train a router (classifier on labels, or outcome routers)",
        epilog="examples and details: README.md, 'Learned routers'",
    )
    tr.add_argument(
        "--router",
        default="classifier",
        choices=TRAINABLE,
        help="classifier (default) | quality | logreg | knn | feedback | policy | moe",
    )
    tr.add_argument(
        "--data",
        required=True,
        help="labelled JSON or a generate-data directory; outcome file for "
        "quality/logreg/knn/feedback/policy/moe",
    )
    tr.add_argument(
        "--val",
        metavar="FILE",
        help="classifier: labelled validation file, the best epoch kept by its accuracy "
        "(default: val.json of a --data directory; else none: the last epoch is kept)",
    )
    tr.add_argument("--out", required=True, metavar="DIR", help="directory to save the router into")
    tr.add_argument(
        "--encoder",
        default=None,
        type=encoder_arg,
        help=f"{ENCODERS_HELP} (default: minilm for the classifier, minilm-static for outcome "
        "routers)",
    )
    tr.add_argument(
        "--mode",
        choices=["frozen", "full"],
        help="classifier: train the head only (default), or fine-tune the encoder",
    )
    tr.add_argument(
        "--loss",
        choices=CLASSIFIER_LOSSES,
        help="classifier: ce (default) | label_smoothing | focal | inter_intra | ce+intra | ce+inter",
    )
    tr.add_argument(
        "--use-inter-intra-loss", action="store_true", help="same as --loss inter_intra"
    )
    # read in check_train_options (CLASSIFIER_NUMBERS), once known to be the classifier's
    tr.add_argument("--epochs", metavar="N", help=f"classifier: {EPOCHS_RANGE}, default 3")
    tr.add_argument("--batch-size", metavar="N", help="classifier: prompts a step (more than the training prompts: all of them), default 16")  # fmt: skip
    tr.add_argument(
        "--learning-rate",
        metavar="RATE",
        help=f"classifier: {LEARNING_RATE_RANGE}, default 2e-5 (full), 1e-3 (frozen)",
    )
    tr.add_argument(
        "--warmup-steps",
        metavar="N",
        help="classifier: optimiser steps of linear warmup, default 100 but at most 10%% of all "
        "steps",
    )
    tr.add_argument(
        "--resume",
        action="store_true",
        help="classifier: continue after the last finished epoch of the checkpoint in --out",
    )
    tr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the router in --out though a system learns into it from feedback, "
        "or (classifier) the checkpoint there of a training run that did not finish",
    )
    tr.add_argument("--seed", type=seed_arg, default=0, help=SEED_HELP)
    tr.add_argument("--cost", choices=COST_KINDS, help=f"outcome routers: {COSTS_HELP}")
    tr.add_argument(
        "--decision",
        choices=["lambda", "threshold", "argmax"],
        help="outcome routers' decision rule (default: lambda, for the policy router argmax, "
        "its most likely policy; with --calibrate, of lambda and threshold the one that "
        "meets the target better on the held-out split)",
    )
    tr.add_argument(
        "--calibrate",
        type=calibration_target_arg,
        metavar="TARGET",
        help="outcome routers: set the decision rule's knob on a 20%% held-out split of --data "
        "to meet a target, a fraction: quality=X (of the best model's mean score), max_cost=X "
        "(of the costliest model's cost) or max_share[:MODEL]=X (of the requests MODEL may "
        "take; default: the dearest model), e.g. quality=0.95 (default: no calibration)",
    )
    tr.add_argument(
        "--two-settings",
        action="store_true",
        default=None,
        help="outcome routers, with --calibrate max_cost=X or quality=X: meet the target by a "
        "random mix of two knob settings where it falls between them",
    )
    for flag, role, default in (
        (
            "--medium-model",
            "medium",
            "the best of the cheaper half by mean cost, the large one left out",
        ),
        ("--large-model", "large", "the best model on --data, a named medium one left out"),
    ):
        tr.add_argument(
            flag,
            metavar="MODEL",
            help=f"policy router: the {role} reference model of the 9-cell labels, a model of "
            f"--data (default: {default})",
        )
    tr.add_argument(
        "--option",
        action="append",
        type=option_arg,
        metavar="KEY=VALUE",
        help="outcome routers: a router option, repeatable (e.g. moe: hidden=[256,128], "
        "top_k=2, epochs=50; knn: k=20; logreg: C=0.5); the value is read as JSON, else "
        "as text",
    )
    tr.set_defaults(
        func=cmd_train, interrupted=_train_interrupted, check_ranges=read_classifier_numbers
    )
