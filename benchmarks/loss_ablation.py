"""Loss ablation (MISSION M7): CE vs CE+intra vs CE+inter vs full Inter-Intra,
same seeds, fine-tuning the packaged MiniLM (the inter/intra terms act on the
encoder's pooled features, so a frozen encoder would make them constants).

Two tasks, each run for every loss and seed, reported as mean +- std:

* synthetic: the 4-class synthetic dataset (``--n`` prompts, 70/15/15);
* outcome: RouterBench MBPP from ../shared/data, labelled per prompt with the
  cheapest of three models spanning the cost range that solves it
  (mistral-7b < mixtral-8x7b < gpt-4), or a 4th class "none solves" (routed to
  the cheapest); reported as accuracy and as the routing point it gives on the
  test prompts (mean per-call cost and mean score).

    .venv/bin/python benchmarks/loss_ablation.py [--seeds 0 1 2] [--n 1200] [--epochs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from outcome_data import DATASETS

from routerllm.checks import MAX_SYNTHETIC_PROMPTS
from routerllm.cli_args import (
    DefaultsHelpFormatter,
    count_arg,
    epochs_arg,
    learning_rate_arg,
    seed_arg,
    steps_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.data.labeled import LabeledPrompt
from routerllm.data.synthetic import generate, split
from routerllm.eval.classifier_metrics import accuracy, macro_f1
from routerllm.routers.base import Candidate
from routerllm.routers.classifier import EmbeddingClassifierRouter

LOSSES = ("ce", "ce+intra", "ce+inter", "inter_intra")
LADDER = ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview")
MODELS = [Candidate(f"class{i}", float(i + 1)) for i in range(4)]


def outcome_task(
    data_dir: Path,
) -> tuple[list[LabeledPrompt], list[LabeledPrompt], list[LabeledPrompt], Any]:
    from routerllm.data.outcome_files import load_outcomes
    from routerllm.data.outcomes import without
    from routerllm.eval.outcome_eval import split_dataset

    train_file, test_file = DATASETS["routerbench_mbpp"]
    train = load_outcomes(data_dir / train_file).restrict_models(list(LADDER))
    test = load_outcomes(data_dir / test_file).restrict_models(list(LADDER))
    test, _ = without(test, train)

    def labels(d: Any) -> list[LabeledPrompt]:
        out = []
        for prompt, row in zip(d.prompts, d.scores, strict=True):
            solved = np.flatnonzero(row >= 0.5)
            out.append(LabeledPrompt(prompt, int(solved[0]) if len(solved) else 3))
        return out

    fit, val = split_dataset(train, 0.15, 0)
    return labels(fit), labels(val), labels(test), test


def run_one(train: list[LabeledPrompt], val: list[LabeledPrompt], test: list[LabeledPrompt], loss: str,
            seed: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    # here, not at the top: torch takes seconds to import, and --help or a refused
    # argument should not wait for it
    from routerllm.training.trainer import TrainingArguments

    router = EmbeddingClassifierRouter(
        MODELS, seed, encoder="minilm", mode="full", max_length=args.max_length
    )
    targs = TrainingArguments(
        epochs=args.epochs, batch_size=16, learning_rate=args.learning_rate, warmup_steps=args.warmup,
        loss=loss, seed=seed, max_length=args.max_length, progress=False,
    )  # fmt: skip
    start = time.perf_counter()
    history = router.fit(train, val, targs)
    pred = np.argmax(router.predict_proba([p.text for p in test]), axis=1)
    truth = [p.label for p in test]
    return {
        "accuracy": accuracy(truth, pred), "macro_f1": macro_f1(truth, pred, list(range(4))),
        "best_epoch": history.best_epoch, "seconds": time.perf_counter() - start, "pred": pred.tolist(),
    }  # fmt: skip


def summarize(runs: list[dict[str, Any]], key: str) -> str:
    v = np.array([r[key] for r in runs])
    return f"{v.mean():.4f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=whole_number_arg(1, MAX_SYNTHETIC_PROMPTS), default=1200, help=f"synthetic prompts, {whole_range(1, MAX_SYNTHETIC_PROMPTS)}")  # fmt: skip
    ap.add_argument("--epochs", type=epochs_arg, default=2)
    ap.add_argument("--learning-rate", type=learning_rate_arg, default=5e-5)
    # as train --warmup-steps: used as given, so one longer than the run keeps the rate below its value
    ap.add_argument("--warmup", type=steps_arg, default=20, help="optimiser steps the rate warms up over (more than the run's: it never reaches --learning-rate)")  # fmt: skip
    # token_limit cuts it to the encoder's positions: a larger one reads what 512 reads
    ap.add_argument("--max-length", type=count_arg, default=64, help="tokens of each prompt read (at most MiniLM's 512 positions)")  # fmt: skip
    ap.add_argument(
        "--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    ap.add_argument(
        "--tasks", nargs="+", choices=("synthetic", "outcome"), default=["synthetic", "outcome"]
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Found missing now, not after the synthetic task's training.
    mbpp = [Path(args.data_dir) / file for file in DATASETS["routerbench_mbpp"]]
    if "outcome" in args.tasks and not all(file.is_file() for file in mbpp):
        print(
            f"no outcome data at {args.data_dir} (give --data-dir, or --tasks synthetic)",
            file=sys.stderr,
        )
        return 2
    tasks: dict[str, tuple[Any, ...]] = {}
    if "synthetic" in args.tasks:
        train, val, test = split(generate(args.n, 0), (0.7, 0.15, 0.15), 0)
        if not (val and test):  # found now, not after the first training
            ap.error(f"--n {args.n}: too few prompts to leave any for validation and test; give more")  # fmt: skip
        tasks["synthetic"] = (train, val, test, None)
    if "outcome" in args.tasks:
        tasks["outcome"] = outcome_task(Path(args.data_dir))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task, (train, val, test, outcome_test) in tasks.items():
        results[task] = {}
        for loss in LOSSES:
            runs = []
            for seed in args.seeds:
                r = run_one(train, val, test, loss, seed, args)
                if outcome_test is not None:  # the routing point the predicted classes give
                    choice = np.minimum(np.array(r["pred"]), 2) * (np.array(r["pred"]) != 3)
                    rows = np.arange(len(choice))
                    costs = outcome_test.cost_matrix("call")
                    r["route_cost"] = float(costs[rows, choice].mean())
                    r["route_quality"] = float(outcome_test.scores[rows, choice].mean())
                runs.append(r)
            results[task][loss] = runs
    if args.json:
        print(json.dumps({t: {name: [{k: v for k, v in r.items() if k != "pred"} for r in rs] for name, rs in d.items()}
                          for t, d in results.items()}, indent=2))  # fmt: skip
        return 0
    print(
        f"seeds {args.seeds}; MiniLM fine-tuned {args.epochs} epochs, lr {args.learning_rate}, max_length {args.max_length}"
    )
    for task, by_loss in results.items():
        sizes = tasks[task]
        print(f"\n== {task}: train {len(sizes[0])}, val {len(sizes[1])}, test {len(sizes[2])}")
        extra = task == "outcome"
        print(
            f"{'loss':<14}{'accuracy':>20}{'macro F1':>20}"
            + (f"{'route cost $':>22}{'route quality':>20}" if extra else "")
            + f"{'s/run':>8}"
        )
        for loss, runs in by_loss.items():
            line = f"{loss:<14}{summarize(runs, 'accuracy'):>20}{summarize(runs, 'macro_f1'):>20}"
            if extra:
                c = np.array([r["route_cost"] for r in runs])
                line += f"{c.mean():>14.6f} +- {c.std(ddof=1) if len(c) > 1 else 0:.6f}{summarize(runs, 'route_quality'):>20}"
            line += f"{np.mean([r['seconds'] for r in runs]):>8.0f}"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
