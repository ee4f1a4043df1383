"""The learning commands of ``routerllm``: generate-data, train (``train_cli``), test,
eval-routing.

Thin: each parses its arguments, calls the library, and prints a table or one
JSON object. Registered on the main parser by ``routerllm.cli``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from routerllm.checks import MAX_RESAMPLES, MAX_SYNTHETIC_PROMPTS
from routerllm.cli import emit, nothing_written, require_stdout
from routerllm.cli_args import (
    BOOTSTRAP_RANGE,
    COSTS_HELP,
    ENCODERS_HELP,
    ROUTERS_BY_NAME,
    SEED_HELP,
    SEED_RANGE,
    check_plot,
    encoder_arg,
    fraction_arg,
    name_list,
    names_from,
    refuse_overwriting,
    seed_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.data import COST_KINDS
from routerllm.data.labeled import CLASS_NAMES, CLASS_TIERS, load_json
from routerllm.eval import LEARNED_ROUTERS
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.registry import ROUTERS
from routerllm.train_cli import add_train_parser
from routerllm.train_options import OUTCOME_ROUTERS

log = logging.getLogger(__name__)


# -- generate-data ------------------------------------------------------------
def _check_n(args: argparse.Namespace) -> None:
    """``--n``'s range, which depends on ``--tiny-codes``: synthetic, enough prompts that
    every split holds every class and at most what it makes in minutes; from tiny-codes,
    a cap on its rows (a large one costs no time), one prompt per audience at least."""
    if args.n is None:
        return
    if args.tiny_codes:
        from routerllm.data.tiny_codes import AUDIENCE_CLASSES

        low, high = len(set(AUDIENCE_CLASSES.values())), None  # one per audience
    else:
        from routerllm.data.synthetic import MIN_DATASET_SIZE

        low, high = MIN_DATASET_SIZE, MAX_SYNTHETIC_PROMPTS
    if args.n < low or (high is not None and args.n > high):
        within = whole_range(low, high) if high is not None else f"a whole number >= {low}"
        raise argparse.ArgumentTypeError(f"argument --n: {args.n} is out of range: give {within}")


def cmd_generate_data(args: argparse.Namespace) -> int:
    from routerllm.data.labeled import SPLIT_FILES, refuse_replacing_splits, save_splits

    out = Path(args.out)
    splits = [out / f"{k}.json" for k in SPLIT_FILES]
    if args.tiny_codes:  # said first: more to the point than "already holds"
        refuse_overwriting("--out", splits, [("--tiny-codes", Path(args.tiny_codes))])
    refuse_replacing_splits(out, args.overwrite, "--out", "--overwrite")
    if args.tiny_codes:
        from routerllm.data.tiny_codes import AUDIENCE_CLASSES, load_tiny_codes

        # --n caps it, balanced (the real file holds 1.6M rows); without it, every usable row
        per_class = None if args.n is None else args.n // len(set(AUDIENCE_CLASSES.values()))
        ds = load_tiny_codes(args.tiny_codes, args.seed, max_per_class=per_class)
        parts = {"full": ds.full, "train": ds.train, "val": ds.val, "test": ds.test}
        classes = {i.label for i in ds.full}
        if short := [k for k, v in parts.items() if {i.label for i in v} != classes]:
            # as --n's minimum does for the synthetic data: no split without a class
            capped = per_class is not None and per_class < min(ds.class_counts_before.values())
            remedy = (
                f"--n {10 * len(classes)} or more"
                if capped
                else "a file with at least 10 usable rows for each audience"
            )
            raise DataError(
                f"{args.tiny_codes}: {len(ds.full) // len(classes)} prompt(s) per class after "
                f"balancing leave the {' and '.join(short)} split(s) without every class; give "
                f"{remedy}"
            )
        paths = {k: str(v) for k, v in save_splits(parts, out).items()}
        counts = {k: len(v) for k, v in parts.items()}
        extra = {
            "rows_read": ds.rows_read,
            "without_prompt": ds.without_prompt,
            "dropped": ds.dropped,
            "duplicates": ds.duplicates,
        }
    else:
        from routerllm.data.synthetic import write_dataset

        args.n = 10_000 if args.n is None else args.n  # its range: _check_n's
        written = write_dataset(out, args.n, args.seed, overwrite=args.overwrite)
        paths = {k: str(v) for k, v in written.paths.items()}
        counts, extra = dict(written.counts), {}
    text = "\n".join(f"{k:<6}{counts[k]:>8}  {paths[k]}" for k in paths)
    if extra:  # where the rows of the tiny-codes file went
        text += (
            f"\n{extra['rows_read']} rows read: {extra['without_prompt']} without a prompt, "
            f"{extra['dropped']} of other audiences, {extra['duplicates']} repeats, the rest "
            "balanced over the audiences"
        )
    emit(args, {"paths": paths, "counts": counts, **extra}, text)
    return 0


def _splits_kept(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    from routerllm.backends.interrupts import failure_of

    # a split that could not be renamed in place: its error says which files are new
    if isinstance(failure := failure_of(error), DataError):
        return f"interrupted as it failed: {failure}"
    # data.labeled.save_splits writes the four splits all or none
    return (
        f"interrupted: {args.out} holds the split files it held before (or, stopped as they "
        "were put in place, all four new ones; never a mix); rerun the command to write them"
    )


# -- test -----------------------------------------------------------------------
#: ``test`` times the routing of the data's first prompts, one at a time, after a few
#: untimed calls (on its first prompts, which are then timed too).
LATENCY_PROMPTS, LATENCY_WARMUP = 200, 3


def cmd_test(args: argparse.Namespace) -> int:
    import numpy as np

    from routerllm import blas_threads
    from routerllm.carbon.report_text import counted
    from routerllm.config import load_config
    from routerllm.eval.classifier_metrics import (
        classification_report,
        latency_stats,
        peak_memory,
        throughput,
    )
    from routerllm.routers.base import create_router, train_first
    from routerllm.routers.saved import load_router

    config = load_config(args.config)
    items = load_json(args.data)
    if not items:
        raise DataError(f"{args.data} holds no prompts")
    prompts = [i.text for i in items]

    def load() -> Any:
        """The router, with what it loads on its first prompt (an encoder) loaded."""
        if args.router_model:
            router = load_router(args.router_model, config.models)
        else:
            router = create_router(args.router_type, config.models, args.seed)
            if not router.is_trained:  # its own message speaks of fit(), not of the CLI
                raise RouterLLMError(
                    train_first(args.router_type, "test it with --router-model DIR")
                )
        router.warm_up(prompts[0])
        return router

    def predict(router: Any) -> tuple[Any, bool]:
        """Its predictions, and whether they are classes (else decisions)."""
        proba_fn = getattr(router, "predict_proba", None)
        if router.name == "classifier" and proba_fn is not None:
            return proba_fn(prompts), True
        return router.route_batch(prompts), False

    # Loading counts in the resident set: a router's memory is mostly its weights and
    # libraries (torch's allocations are invisible to tracemalloc, which traces only
    # the predictions: under it, the load would take four times as long).
    router, (predicted, by_class), memory = peak_memory(predict, load)
    truth: list[Any] = [i.label for i in items]
    notes: list[str] = []
    if by_class:
        pred: list[Any] = [int(p) for p in np.argmax(predicted, axis=1)]
        # The router's own classes, which may be more (class_tiers given) or fewer than
        # the data's: a 6-class router's class 5 was refused as "not in the given labels".
        classes = int(predicted.shape[1])
        labels: list[Any] = list(range(max(classes, len(CLASS_NAMES))))
        if beyond := sorted({t for t in truth if t >= classes}):
            notes.append(
                f"the data's classes {', '.join(map(str, beyond))} are not among the router's "
                f"{classes} classes (0-{classes - 1}): it can never predict them"
            )
        target = "class"
    else:  # routers without classes are scored on the tier they pick
        tier = {m.name: m.tier for m in router.models}
        pred = [tier[d.model] for d in predicted]
        truth = [CLASS_TIERS[t] for t in truth]
        labels = ["light", "medium", "heavy"]
        target = "tier"
    # Only the classes the file or the router has: one in neither (class 1 in a
    # tiny-codes split) would count F1 0 into the macro F1 (0.75 for a perfect router).
    labels = [label for label in labels if label in {*truth, *pred}]
    report = classification_report(truth, pred, labels)
    sample = prompts[:LATENCY_PROMPTS]
    # timed as an open RouterLLM decides, numpy's BLAS on one thread (blas_threads.py):
    # with the libraries' own threads, the figures were not a served router's
    let_go = blas_threads.hold_one_thread(router)
    try:
        latency = latency_stats(lambda p: router.route(p), sample, warmup=LATENCY_WARMUP)
        rate = throughput(lambda batch: router.route_batch(list(batch)), prompts, batch_size=64)  # fmt: skip
    finally:
        let_go()
    payload = {
        "router": router.name, "target": target, "n": len(items), **report,
        "confusion": np.asarray(report["confusion"]).tolist(),
        "per_class": {str(k): v.__dict__ for k, v in report["per_class"].items()},
        "latency_ms": latency.__dict__, "throughput_per_s": rate, "memory": memory.__dict__,
        "notes": notes,
    }  # fmt: skip
    lines = [
        f"router {router.name} on {counted(len(items), 'prompt')} ({target} accuracy)",
        f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}",
        f"latency per prompt ({counted(latency.n, 'prompt')} routed one at a time, after "
        f"{counted(latency.warmup, 'untimed call')}): p50 {latency.p50_ms:.2f} ms  "
        f"p95 {latency.p95_ms:.2f} ms  p99 {latency.p99_ms:.2f} ms",
        f"throughput {rate:.0f} prompts/s (batch 64)",
        f"peak memory (loading the router and predicting {counted(len(items), 'prompt')}): "
        + (
            f"+{memory.rss_peak_increase_bytes / 1e6:.1f} MB resident"
            if memory.rss_peak_increase_bytes is not None
            else "resident set unknown here"
        )
        + f", of which {memory.python_peak_bytes / 1e6:.1f} MB allocated through Python "
        "while predicting",
        "per class: "
        + "  ".join(f"{lab}: F1 {sc.f1:.3f}" for lab, sc in report["per_class"].items()),
        "confusion matrix (rows = true): " + ", ".join(map(str, report["labels"])),
        *("  " + " ".join(f"{int(v):>6}" for v in row) for row in report["confusion"]),
        *(f"note: {note}" for note in notes),
    ]
    emit(args, payload, "\n".join(lines))
    return 0


# -- eval-routing -------------------------------------------------------------------
def cmd_eval_routing(args: argparse.Namespace) -> int:
    from routerllm.eval.outcome_eval import (
        compare_routers,
        evaluate_routing,
        plot,
    )
    from routerllm.eval.routing_metrics import format_table
    from routerllm.routers.outcome import DEFAULT_ENCODER

    if not args.plot:  # the figures printed are all it gives
        require_stdout("the figures would be printed")
    routers = name_list(args.routers, "--routers")
    encoder = args.encoder or DEFAULT_ENCODER
    if args.test and args.test_fraction is not None:
        raise RouterLLMError("--test-fraction splits --data when there is no --test; give one")
    fraction = 0.2 if args.test_fraction is None else args.test_fraction
    if args.bootstrap and len(routers) < 2:  # its range: its argument type's
        raise RouterLLMError(
            "--bootstrap N compares the first of --routers with the others over N resamples: "
            f"there must be two routers or more (got routers {','.join(routers)})"
        )
    if args.plot:
        given = [("--data", Path(args.data))] + ([("--test", Path(args.test))] if args.test else [])
        # Each data file may come with the models.json beside it (sizes and prices).
        inputs = given + [(f"{o} models", p.with_name("models.json")) for o, p in given]
        check_plot(Path(args.plot), inputs)
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
        f"train {_prompts(ev.train_size)}, test {ev.test_size} (removed {ev.removed_overlap} also in train); "
        f"cost = {ev.cost_kind}; encoder {encoder}",
        format_table(ev.report),
        *(f"note: {note}" for note in ev.report["notes"]),
        *lines,
        *([f"plot: {payload['plot']}"] if args.plot else []),
    ])  # fmt: skip
    emit(args, payload, text)
    return 0


def _plot_kept(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    if not args.plot:
        return nothing_written(args, error)
    # eval.plots writes the PNG atomically
    return (
        f"interrupted: {args.plot} holds the plot it held before, if any (or, stopped as it "
        "was put in place, the whole new one; never part of one); rerun the command to write it"
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser, output: argparse.ArgumentParser) -> None:
    """The learning commands; ``common`` gives those that read a config ``--config``, and
    ``output`` (``--json``, ``-v``) those that read none (generate-data, eval-routing: a
    ``--config`` there would be silently unused)."""
    gen = sub.add_parser(
        "generate-data",
        parents=[output],
        help="write the synthetic (or tiny-codes) dataset splits",
        epilog="examples: README.md, 'Learned routers'",
    )
    gen.add_argument(
        "--out", required=True, metavar="DIR", help="directory for full/train/val/test.json"
    )
    gen.add_argument(
        "--n",
        type=int,
        help="labelled prompts, balanced over the classes (synthetic: default 10000, 40 to "
        f"{MAX_SYNTHETIC_PROMPTS:,}; with --tiny-codes: at most this many, default every "
        "usable row)",
    )
    gen.add_argument("--seed", type=seed_arg, default=0, help=SEED_HELP)
    gen.add_argument(
        "--tiny-codes",
        metavar="FILE",
        help="build from a local nampdn-ai/tiny-codes file instead (.jsonl, .jsonl.gz, .json, "
        ".csv or .parquet)",
    )
    gen.add_argument(
        "--overwrite", action="store_true", help="replace split files already in --out"
    )
    gen.set_defaults(func=cmd_generate_data, interrupted=_splits_kept, check_ranges=_check_n)

    add_train_parser(sub, common)

    te = sub.add_parser(
        "test",
        parents=[common],
        help="classifier metrics of a router on a labelled split",
        epilog="examples: README.md, 'Learned routers'",
    )
    te.add_argument(
        "--data", required=True, help="labelled JSON (e.g. test.json from generate-data)"
    )
    group = te.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--router-model",
        metavar="DIR",
        help="directory of a saved router (routerllm train --out); or --router-type",
    )
    group.add_argument(
        "--router-type",
        metavar="NAME",
        choices=ROUTERS.names(),  # the learning ones are refused with how to train them
        help=f"a router that needs no training, by name: {ROUTERS_BY_NAME}; or --router-model",
    )
    te.add_argument(
        "--seed",
        type=seed_arg,
        default=0,
        help=f"random seed, of the random router, {SEED_RANGE} (default: 0)",
    )
    te.set_defaults(func=cmd_test, interrupted=nothing_written)

    ev = sub.add_parser(
        "eval-routing",
        parents=[output],
        help="quality-cost metrics of routers on outcome data",
        epilog="examples and details: README.md, 'Learned routers'",
    )
    ev.add_argument(
        "--data",
        required=True,
        help="outcome data to train on (RouterBench .csv, or {question, scores} .json or .jsonl)",
    )
    ev.add_argument("--test", help="held-out outcome data (default: a seeded split of --data)")
    ev.add_argument(
        "--test-fraction",
        type=fraction_arg,
        metavar="X",
        help="fraction of --data held out, between 0 and 1; not with --test (default: 0.2)",
    )
    ev.add_argument(
        "--routers",
        default=",".join(LEARNED_ROUTERS),
        type=names_from(OUTCOME_ROUTERS, "an outcome router"),
        help="comma-separated outcome routers: quality, logreg, knn, feedback, policy, moe "
        "(default: %(default)s)",
    )
    ev.add_argument(
        "--encoder",
        default=None,
        type=encoder_arg,
        help=f"{ENCODERS_HELP} (default: minilm-static)",
    )
    ev.add_argument("--cost", default="auto", choices=COST_KINDS, help=COSTS_HELP)
    ev.add_argument(
        "--decision",
        default="lambda",
        choices=["lambda", "threshold"],
        help="decision rule (default: lambda)",
    )
    ev.add_argument(
        "--plot", metavar="PNG", help="write the quality-cost curves here (needs matplotlib)"
    )
    ev.add_argument(
        "--bootstrap",
        type=whole_number_arg(0, MAX_RESAMPLES),
        default=0,
        metavar="N",
        help="compare the first router with the others over N resamples of the test prompts, "
        f"{BOOTSTRAP_RANGE} (default: 0, no comparison)",
    )
    ev.add_argument("--seed", type=seed_arg, default=0, help=SEED_HELP)
    ev.set_defaults(func=cmd_eval_routing, interrupted=_plot_kept)


def _prompts(n: int) -> str:
    return f"{n} prompt{'' if n == 1 else 's'}"
