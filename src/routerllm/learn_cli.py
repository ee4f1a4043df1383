"""The learning commands of ``routerllm``: generate-data, train, test, eval-routing.

Thin: each parses its arguments, calls the library, and prints a table or one
JSON object. Registered on the main parser by ``routerllm.cli``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routerllm.checks import repeated
from routerllm.cli import emit
from routerllm.data.labeled import CLASS_NAMES, CLASS_TIERS, LabeledPrompt, load_json
from routerllm.exceptions import DataError, RouterLLMError

log = logging.getLogger(__name__)

OUTCOME_ROUTERS = ("quality", "logreg", "knn", "feedback", "policy")
#: What ``eval-routing`` compares unless told (the feedback router learns online:
#: ``benchmarks/feedback_learning.py`` evaluates that; the policy router sees two
#: models only and trails these on both outcome sets: ``--routers ...,policy``).
EVALUATED_ROUTERS = ("quality", "logreg", "knn")


# -- argument types (argparse turns their errors into a usage error, exit 2) ---
def seed_arg(text: str) -> int:
    """Every ``--seed``: an integer numpy, scikit-learn and torch all accept."""
    from routerllm.checks import MAX_SEED, is_seed

    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not is_seed(seed):
        raise argparse.ArgumentTypeError(f"{text} is out of range: give 0 to {MAX_SEED}")
    return seed


def positive_number(text: str) -> float:
    """A finite number > 0 (``float`` alone lets through nan, inf and negatives)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


# -- output paths: checked before any work, never written over an input -------
def _refuse_overwriting(
    option: str, outputs: Sequence[Path], inputs: Sequence[tuple[str, Path]]
) -> None:
    """A clear error when an output path (given by ``option``) is, or links to, an input."""
    for out in outputs:
        for name, given in inputs:
            try:
                same = out.exists() and given.exists() and os.path.samefile(out, given)
            except OSError:
                same = False
            if same:
                raise RouterLLMError(
                    f"writing {out} would overwrite the {name} input {given}: "
                    f"choose another {option}"
                )


def _check_plot(path: Path, inputs: Sequence[tuple[str, Path]]) -> None:
    from routerllm.eval.plots import check_png_path

    check_png_path(path, "--plot")
    _refuse_overwriting("--plot", [path], inputs)


def _splits(path: str, val: str | None) -> tuple[list[LabeledPrompt], list[LabeledPrompt]]:
    """A labelled file (+ optional val file), or a directory holding train.json and val.json."""
    p = Path(path)
    if p.is_dir():
        train = load_json(p / "train.json")
        return train, load_json(p / "val.json") if (p / "val.json").exists() else []
    return load_json(p), load_json(val) if val else []


def _train_inputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    data = Path(args.data)
    if data.is_dir():
        inputs = [("--data", data / "train.json"), ("--data", data / "val.json")]
    else:
        inputs = [("--data", data)]
    return inputs + ([("--val", Path(args.val))] if args.val else [])


# -- generate-data ------------------------------------------------------------
def cmd_generate_data(args: argparse.Namespace) -> int:
    from routerllm.data.labeled import SPLIT_FILES, refuse_replacing_splits, save_json

    out = Path(args.out)
    splits = [out / f"{k}.json" for k in SPLIT_FILES]
    if args.tiny_codes:  # said first: more to the point than "already holds"
        _refuse_overwriting("--out", splits, [("--tiny-codes", Path(args.tiny_codes))])
    refuse_replacing_splits(out, args.overwrite, "--out", "--overwrite")
    if args.tiny_codes:
        from routerllm.data.tiny_codes import load_tiny_codes

        ds = load_tiny_codes(args.tiny_codes, args.seed)
        parts = {"full": ds.full, "train": ds.train, "val": ds.val, "test": ds.test}
        classes = {i.label for i in ds.full}
        if short := [k for k, v in parts.items() if {i.label for i in v} != classes]:
            # as --n's minimum does for the synthetic data: no split without a class
            raise DataError(
                f"{args.tiny_codes}: {len(ds.full) // len(classes)} prompt(s) per class after "
                f"balancing leave the {' and '.join(short)} split(s) without every class; give "
                f"a file with at least 10 usable rows for each audience"
            )
        paths = {k: str(save_json(v, out / f"{k}.json")) for k, v in parts.items()}
        counts = {k: len(v) for k, v in parts.items()}
        extra = {"rows_read": ds.rows_read, "dropped": ds.dropped, "duplicates": ds.duplicates}
    else:
        from routerllm.data.synthetic import MIN_DATASET_SIZE, write_dataset

        if args.n < MIN_DATASET_SIZE:
            raise DataError(
                f"--n {args.n} is too small: use at least {MIN_DATASET_SIZE} so every split "
                f"holds every class"
            )

        written = write_dataset(out, args.n, args.seed, overwrite=args.overwrite)
        paths = {k: str(v) for k, v in written.paths.items()}
        counts, extra = dict(written.counts), {}
    text = "\n".join(f"{k:<6}{counts[k]:>8}  {paths[k]}" for k in paths)
    emit(args, {"paths": paths, "counts": counts, **extra}, text)
    return 0


# -- train --------------------------------------------------------------------
#: ``routerllm train`` options that only one kind of router uses, with their defaults.
CLASSIFIER_OPTIONS = {
    "--val": None, "--mode": "frozen", "--loss": "ce", "--use-inter-intra-loss": False,
    "--epochs": 3, "--batch-size": 16, "--learning-rate": None, "--warmup-steps": None,
    "--resume": False,
}  # fmt: skip
OUTCOME_OPTIONS = {
    "--cost": "auto",
    "--decision": None,
    "--calibrate": None,
    "--two-settings": False,
}
#: ``routerllm train`` options of the policy router only: its reference models.
POLICY_OPTIONS = ("--medium-model", "--large-model")


def _train_options(args: argparse.Namespace) -> None:
    """Refuse options the router does not use (a silently ignored --calibrate would
    leave the user believing the router calibrated), then fill in the defaults."""
    classifier = args.router == "classifier"
    own, other = (
        (CLASSIFIER_OPTIONS, OUTCOME_OPTIONS)
        if classifier
        else (OUTCOME_OPTIONS, CLASSIFIER_OPTIONS)
    )
    # ``is``: an explicit 0 (``--epochs 0``) is given too, though it equals False
    unused = [f for f in other if (v := getattr(args, _dest(f))) is not None and v is not False]
    if unused:
        kind = f"outcome routers ({', '.join(OUTCOME_ROUTERS)})" if classifier else "the classifier"
        one = len(unused) == 1
        raise RouterLLMError(
            f"{', '.join(unused)} {'is' if one else 'are'} for {kind}; router {args.router!r} "
            f"does not use {'it' if one else 'them'}"
        )
    for flag, default in own.items():
        if getattr(args, _dest(flag)) is None:
            setattr(args, _dest(flag), default)
    if args.router != "policy" and (
        given := [f for f in POLICY_OPTIONS if getattr(args, _dest(f))]
    ):
        raise RouterLLMError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the policy router; "
            f"router {args.router!r} does not use {'it' if len(given) == 1 else 'them'}"
        )


def _dest(flag: str) -> str:
    """``--batch-size`` -> ``batch_size``, argparse's attribute for the flag."""
    return flag.lstrip("-").replace("-", "_")


def _check_out_folder(out: Path) -> None:
    """Fail now, not after the training: ``out`` must be a folder (or creatable as
    one) holding no other tool's files."""
    from routerllm.files import refuse_foreign_folder
    from routerllm.routers.base import is_saved_router

    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise RouterLLMError(f"--out {out}: {existing} is a file; give a folder for the router")
    refuse_foreign_folder(out, is_saved_router, "RouterLLM router")


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.router != "classifier" and args.router not in OUTCOME_ROUTERS:
        raise RouterLLMError(
            f"router {args.router!r} is not trainable; trainable: classifier, {', '.join(OUTCOME_ROUTERS)}"
        )
    _train_options(args)
    if args.val and Path(args.data).is_dir():
        raise RouterLLMError(
            f"--val {args.val} with a --data folder: the folder's val.json is the validation "
            f"split; give --data {Path(args.data) / 'train.json'} --val {args.val} to use another"
        )
    written = [out / "config.json", out / "weights.npz", out / "checkpoints" / "checkpoint.pt"]
    _refuse_overwriting("--out", written, _train_inputs(args))
    _check_out_folder(out)
    for path in written:  # now, not after an epoch of training
        if path.is_dir():
            raise RouterLLMError(f"--out {out}: {path} is a folder, where a file will be written")
        if path.parent.exists() and not path.parent.is_dir():
            raise RouterLLMError(f"--out {out}: {path.parent} is a file, where a folder goes")
    payload = (
        _train_classifier(args) if args.router == "classifier" else _train_outcome_router(args)
    )
    text = "\n".join(f"{k}: {v}" for k, v in payload.items() if k != "history")
    emit(args, payload, text)
    return 0


def _train_classifier(args: argparse.Namespace) -> dict[str, Any]:
    from routerllm.config import load_config
    from routerllm.routers.classifier import EmbeddingClassifierRouter
    from routerllm.training.trainer import TrainingArguments

    train, val = _splits(args.data, args.val)
    config = load_config(args.config)
    loss = "inter_intra" if args.use_inter_intra_loss else args.loss
    default_lr = 2e-5 if args.mode == "full" else 1e-3
    lr = default_lr if args.learning_rate is None else args.learning_rate
    # The seeds' 100 warmup steps, but never more than a tenth of a short run
    # (TrainingArguments rejects a non-positive batch size or epoch count).
    steps = max(args.epochs, 0) * -(-len(train) // max(args.batch_size, 1))
    warmup = args.warmup_steps if args.warmup_steps is not None else min(100, steps // 10)
    out = Path(args.out)
    encoder = {"encoder": args.encoder} if args.encoder else {}  # else the router's default
    router = EmbeddingClassifierRouter(config.models, args.seed, mode=args.mode, **encoder)
    targs = TrainingArguments(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=lr, warmup_steps=warmup,
        loss=loss, seed=args.seed, output_dir=str(out / "checkpoints"), progress=not args.json,
    )  # fmt: skip
    if args.resume and not (out / "checkpoints" / "checkpoint.pt").exists():
        log.warning("--resume: no checkpoint in %s; training from the first epoch", out)
    history = router.fit(train, val, targs, resume=args.resume)
    router.save(out)
    return {
        "router": "classifier", "out": str(out), "mode": args.mode, "encoder": router.spec, "loss": loss,
        "learning_rate": lr, "train_size": len(train), "val_size": len(val),
        "best_epoch": history.best_epoch, "best_val_accuracy": history.best_val_accuracy,
        "epochs_run": history.epochs_run, "history": [r.__dict__ for r in history.records],
    }  # fmt: skip


def _train_outcome_router(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from routerllm.data.outcomes import load_outcomes
    from routerllm.encoders import CachedEncoder, create_encoder
    from routerllm.eval.outcome_eval import outcome_candidates, split_dataset
    from routerllm.routers.base import create_router
    from routerllm.routers.calibration import parse_target
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
    router = create_router(
        args.router,
        candidates,
        args.seed,
        encoder=encoder_spec,
        mode=args.decision or "lambda",
        costs=costs.tolist(),
        **references,
    )
    assert isinstance(router, OutcomeRouter)
    if args.two_settings and not args.calibrate:
        raise RouterLLMError("--two-settings is a way to --calibrate: give a target too")
    if args.calibrate:
        parse_target(args.calibrate, router.model_names)  # before the fit, not after
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
    payload["knob"] = float(np.float64(router.knob))
    return payload


# -- test -----------------------------------------------------------------------
def cmd_test(args: argparse.Namespace) -> int:
    import numpy as np

    from routerllm.config import load_config
    from routerllm.eval.classifier_metrics import (
        classification_report,
        latency_stats,
        peak_memory,
        throughput,
    )
    from routerllm.routers.base import create_router, load_router

    config = load_config(args.config)
    items = load_json(args.data)
    if not items:
        raise DataError(f"{args.data} holds no prompts")
    prompts = [i.text for i in items]

    def load_and_predict() -> tuple[Any, Any, bool]:
        """The router, its predictions, and whether they are classes (else decisions)."""
        if args.router_model:
            router = load_router(args.router_model, config.models)
        else:
            router = create_router(args.router_type, config.models, args.seed)
        proba_fn = getattr(router, "predict_proba", None)
        if router.name == "classifier" and proba_fn is not None:
            return router, proba_fn(prompts), True
        return router, router.route_batch(prompts), False

    # Loading counts: a router's memory is mostly its weights (torch's allocations
    # are invisible to tracemalloc; the resident set sees them).
    (router, predicted, by_class), memory = peak_memory(load_and_predict)
    truth: list[Any] = [i.label for i in items]
    if by_class:
        pred: list[Any] = [int(p) for p in np.argmax(predicted, axis=1)]
        labels: list[Any] = list(range(len(CLASS_NAMES)))
        target = "class"
    else:  # routers without classes are scored on the tier they pick
        tier = {m.name: m.tier for m in router.models}
        pred = [tier[d.model] for d in predicted]
        truth = [CLASS_TIERS[t] for t in truth]
        labels = ["light", "medium", "heavy"]
        target = "tier"
    report = classification_report(truth, pred, labels)
    sample = prompts[: min(len(prompts), 200)]
    latency = latency_stats(lambda p: router.route(p), sample)
    rate = throughput(lambda batch: router.route_batch(list(batch)), prompts, batch_size=64)
    payload = {
        "router": router.name, "target": target, "n": len(items), **report,
        "confusion": np.asarray(report["confusion"]).tolist(),
        "per_class": {str(k): v.__dict__ for k, v in report["per_class"].items()},
        "latency_ms": latency.__dict__, "throughput_per_s": rate, "memory": memory.__dict__,
    }  # fmt: skip
    lines = [
        f"router {router.name} on {len(items)} prompts ({target} accuracy)",
        f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}",
        f"latency per prompt p50 {latency.p50_ms:.2f} ms  p95 {latency.p95_ms:.2f} ms  p99 {latency.p99_ms:.2f} ms",
        f"throughput {rate:.0f} prompts/s (batch 64)",
        f"peak memory (loading the router and predicting {len(items)} prompts): "
        + (
            f"+{memory.rss_peak_increase_bytes / 1e6:.1f} MB resident"
            if memory.rss_peak_increase_bytes is not None
            else "resident set unknown here"
        )
        + f", of which {memory.python_peak_bytes / 1e6:.1f} MB through Python's allocators",
        "per class: "
        + "  ".join(f"{lab}: F1 {sc.f1:.3f}" for lab, sc in report["per_class"].items()),
        "confusion matrix (rows = true): " + ", ".join(map(str, report["labels"])),
        *("  " + " ".join(f"{int(v):>6}" for v in row) for row in report["confusion"]),
    ]
    emit(args, payload, "\n".join(lines))
    return 0


def name_list(text: str, option: str) -> list[str]:
    """A comma-separated list of names; a clear error when it names none, or one twice."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise RouterLLMError(f"{option} names nothing (give comma-separated names)")
    if twice := repeated(names):
        raise RouterLLMError(f"{option} names {', '.join(twice)} more than once")
    return names


# -- eval-routing -------------------------------------------------------------------
def cmd_eval_routing(args: argparse.Namespace) -> int:
    from routerllm.eval.outcome_eval import (
        MAX_RESAMPLES,
        compare_routers,
        evaluate_routing,
        plot,
    )
    from routerllm.eval.routing_metrics import format_table
    from routerllm.routers.outcome import DEFAULT_ENCODER

    routers = name_list(args.routers, "--routers")
    encoder = args.encoder or DEFAULT_ENCODER
    if args.test and args.test_fraction is not None:
        raise RouterLLMError("--test-fraction splits --data when there is no --test; give one")
    fraction = 0.2 if args.test_fraction is None else args.test_fraction
    if not 0 <= args.bootstrap <= MAX_RESAMPLES or (args.bootstrap and len(routers) < 2):
        raise RouterLLMError(
            "--bootstrap N compares the first of --routers with the others over N resamples: "
            f"N must be 0 to {MAX_RESAMPLES:,} and there must be two routers or more (got "
            f"{args.bootstrap}, routers {','.join(routers)})"
        )
    if args.plot:
        given = [("--data", Path(args.data))] + ([("--test", Path(args.test))] if args.test else [])
        # Each data file may come with the models.json beside it (sizes and prices).
        inputs = given + [(f"{o} models", p.with_name("models.json")) for o, p in given]
        _check_plot(Path(args.plot), inputs)
    ev = evaluate_routing(
        args.data,
        args.test,
        routers,
        encoder,
        args.cost,
        fraction,
        args.seed,
        args.decision,
    )
    payload = ev.as_dict()
    if args.plot:
        payload["plot"] = str(
            plot(ev, args.plot, f"{Path(args.data).name}: quality vs {ev.cost_kind} cost")
        )
    lines = []
    if args.bootstrap:
        payload["bootstrap"] = compared = compare_routers(ev, args.bootstrap, args.seed)
        ref = compared["reference"]
        lines.append(
            f"{ref} against the others, paired bootstrap over {args.bootstrap} resamples of the test "
            "prompts (90% intervals; the routers are not retrained):"
        )
        for name, c in compared["against"].items():
            lo, hi = c["aiq_diff_90ci"]
            lines.append(
                f"  vs {name}: AIQ {c['aiq_diff']:+.4f} ({lo:+.4f}..{hi:+.4f}), higher in "
                f"{c['share_aiq_higher']:.1%} of resamples; reaches the best single model's "
                f"accuracy cheaper in {c['share_best_accuracy_cheaper']:.1%}"
            )
    text = "\n".join([
        f"train {ev.train_size} prompts, test {ev.test_size} (removed {ev.removed_overlap} also in train); "
        f"cost = {ev.cost_kind}; encoder {encoder}",
        format_table(ev.report),
        *lines,
        *([f"plot: {payload['plot']}"] if args.plot else []),
    ])  # fmt: skip
    emit(args, payload, text)
    return 0


def _train_interrupted(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    # training.trainer.TrainingInterrupted says which epochs its checkpoint holds.
    saved, checkpoint = getattr(error, "saved_epoch", 0), getattr(error, "checkpoint", None)
    if saved:
        return (
            f"interrupted: epochs 1-{saved} are saved in {checkpoint}; rerun the same "
            f"command with --resume to continue after epoch {saved}"
        )
    return (
        "interrupted before a first epoch was saved: nothing to resume (a router saved "
        f"in {args.out} before is unchanged)"
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    gen = sub.add_parser(
        "generate-data", parents=[common], help="write the synthetic (or tiny-codes) dataset splits"
    )
    gen.add_argument("--out", required=True, help="directory for full/train/val/test.json")
    gen.add_argument(
        "--n", type=int, default=10_000, help="synthetic samples (balanced over 4 classes)"
    )
    gen.add_argument("--seed", type=seed_arg, default=0)
    gen.add_argument(
        "--tiny-codes", metavar="FILE", help="build from a local nampdn-ai/tiny-codes file instead"
    )
    gen.add_argument(
        "--overwrite", action="store_true", help="replace split files already in --out"
    )
    gen.set_defaults(func=cmd_generate_data)

    tr = sub.add_parser(
        "train", parents=[common], help="train a router (classifier on labels, or outcome routers)"
    )
    tr.add_argument(
        "--router",
        default="classifier",
        help="classifier | quality | logreg | knn | feedback | policy",
    )
    tr.add_argument(
        "--data",
        required=True,
        help="labelled JSON or a generate-data directory; outcome file for "
        "quality/logreg/knn/feedback/policy",
    )
    tr.add_argument("--val", help="validation file (classifier)")
    tr.add_argument("--out", required=True, help="directory to save the router into")
    tr.add_argument(
        "--encoder",
        default=None,
        help="minilm | minilm-onnx | minilm-static | static | hashing | hf:<id or path>; default: minilm (classifier), minilm-static (outcome routers)",
    )
    tr.add_argument(
        "--mode",
        choices=["frozen", "full"],
        help="classifier: train the head only (default), or fine-tune the encoder",
    )
    tr.add_argument(
        "--loss",
        help="classifier: ce (default) | label_smoothing | focal | inter_intra | ce+intra | ce+inter",
    )
    tr.add_argument(
        "--use-inter-intra-loss", action="store_true", help="same as --loss inter_intra"
    )
    tr.add_argument("--epochs", type=int, help="classifier: default 3")
    tr.add_argument("--batch-size", type=int, help="classifier: default 16")
    tr.add_argument(
        "--learning-rate", type=float, default=None, help="default 2e-5 (full), 1e-3 (frozen)"
    )
    tr.add_argument(
        "--warmup-steps", type=int, default=None, help="default 100, at most 10%% of all steps"
    )
    tr.add_argument(
        "--resume", action="store_true", help="continue after the last finished epoch in --out"
    )
    tr.add_argument("--seed", type=seed_arg, default=0)
    tr.add_argument("--cost", help="outcome routers: auto (default) | call | size | price")
    tr.add_argument(
        "--decision",
        choices=["lambda", "threshold"],
        help="outcome routers' decision rule (default: lambda; with --calibrate, the one "
        "that meets the target better on the held-out split)",
    )
    tr.add_argument(
        "--calibrate",
        metavar="TARGET",
        help="e.g. max_share=0.3, quality=0.95 or max_cost=0.7, on a 20%% held-out split",
    )
    tr.add_argument(
        "--two-settings",
        action="store_true",
        default=None,
        help="with --calibrate max_cost=X or quality=X: meet the target by a random mix of two "
        "knob settings where it falls between them",
    )
    for flag, role in (("--medium-model", "medium"), ("--large-model", "large")):
        tr.add_argument(
            flag,
            metavar="MODEL",
            help=f"policy router: the {role} reference model of the 9-cell labels, a model of "
            "--data (default: the best model of the cheaper half; the best model overall)",
        )
    tr.set_defaults(func=cmd_train, interrupted=_train_interrupted)

    te = sub.add_parser(
        "test", parents=[common], help="classifier metrics of a router on a labelled split"
    )
    te.add_argument(
        "--data", required=True, help="labelled JSON (e.g. test.json from generate-data)"
    )
    group = te.add_mutually_exclusive_group(required=True)
    group.add_argument("--router-model", help="directory of a saved router")
    group.add_argument("--router-type", help="a router by name (rules, random, complexity, ...)")
    te.add_argument("--seed", type=seed_arg, default=0)
    te.set_defaults(func=cmd_test)

    ev = sub.add_parser(
        "eval-routing", parents=[common], help="quality-cost metrics of routers on outcome data"
    )
    ev.add_argument(
        "--data",
        required=True,
        help="outcome data to train on (RouterBench CSV or {question, scores} JSON)",
    )
    ev.add_argument("--test", help="held-out outcome data (default: a seeded split of --data)")
    ev.add_argument(
        "--test-fraction",
        type=float,
        help="share of --data held out when there is no --test (default: 0.2)",
    )
    ev.add_argument("--routers", default=",".join(EVALUATED_ROUTERS))
    ev.add_argument(
        "--encoder",
        default=None,
        help="minilm-static (default) | static | minilm | minilm-onnx | hashing | hf:<id>",
    )
    ev.add_argument("--cost", default="auto", help="auto | call | size | price")
    ev.add_argument("--decision", default="lambda", choices=["lambda", "threshold"])
    ev.add_argument("--plot", metavar="PNG", help="write the quality-cost curves here")
    ev.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="compare the first router with the others over N resamples of the test prompts",
    )
    ev.add_argument("--seed", type=seed_arg, default=0)
    ev.set_defaults(func=cmd_eval_routing)
