"""How the mixture-of-experts router's defaults were chosen: on the training files only.

The seed's settings (sparse top-2 gates; gates adjusted by 0.5 quality + 0.3
carbon + 0.2 cost) against the alternatives, on seeded 80/20 re-splits of each
set's *training* file (the test files are never read): for each variant, the AIQ
of its knob sweep on the held-out 20 % (``lambda`` rule, ``minilm-static``),
with logistic regression as the reference. The router's defaults are the variant
with the best mean here on both sets; ``benchmarks/learned_routers.py`` then
measures them on the test files.

    .venv/bin/python benchmarks/moe_defaults.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--seeds 1 2 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from machine import machine, machine_line
from outcome_data import DATASETS, add_data_dir_argument, add_datasets_argument
from outcome_data import data_dir as outcome_data_dir

from routerllm.cli_args import DefaultsHelpFormatter, seed_arg
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.outcome_eval import embed, evaluate_routing, split_dataset
from routerllm.registry import ROUTERS

SEED_WEIGHTS = {"quality_weight": 0.5, "carbon_weight": 0.3, "cost_weight": 0.2}
QUALITY_ONLY = {"quality_weight": 1.0, "carbon_weight": 0.0, "cost_weight": 0.0}
NO_ADJUSTMENT = {"quality_weight": 0.0, "carbon_weight": 0.0, "cost_weight": 0.0}
#: label -> the router's options; top_k None: every expert (dense gates)
VARIANTS = {
    "seed: top-2, .5/.3/.2": {"top_k": 2, **SEED_WEIGHTS},
    "dense, .5/.3/.2": {"top_k": None, **SEED_WEIGHTS},
    "top-2, quality only": {"top_k": 2, **QUALITY_ONLY},
    "dense, quality only": {"top_k": None, **QUALITY_ONLY},
    "top-2, no adjustment": {"top_k": 2, **NO_ADJUSTMENT},
    "dense, no adjustment": {"top_k": None, **NO_ADJUSTMENT},
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_data_dir_argument(ap)
    add_datasets_argument(ap)
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=[1, 2, 3])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = outcome_data_dir(args)
    if root is None:
        return 2
    names = {f"moe-{i}": label for i, label in enumerate(VARIANTS)}
    options = {name: VARIANTS[label] for name, label in names.items()}
    # one registry name per variant, so one evaluation runs them all
    variants = {name: "routerllm.routers.moe:MoERouter" for name in names}
    results: dict[str, Any] = {}
    if not args.json:
        print(machine_line())  # its run's seconds hold for this machine
    for dataset in args.datasets:
        full = load_outcomes(root / DATASETS[dataset][0])
        aiq: dict[str, list[float]] = {"logreg": [], **{label: [] for label in VARIANTS}}
        start = time.perf_counter()
        for seed in args.seeds:
            train, held = split_dataset(full, 0.2, seed)
            with ROUTERS.added(variants):
                ev = evaluate_routing(
                    train, held, routers=["logreg", *names], seed=seed,
                    embeddings=tuple(embed([train, held], "minilm-static")),  # type: ignore[arg-type]
                    router_options=options,
                )  # fmt: skip
            aiq["logreg"].append(ev.report["rows"]["logreg"]["aiq"])
            for name, label in names.items():
                aiq[label].append(ev.report["rows"][name]["aiq"])
        results[dataset] = aiq
        if args.json:
            continue
        print(f"\n== {dataset}: training file {len(full)} prompts, 80/20 re-splits, seeds "
              f"{args.seeds}, {time.perf_counter() - start:.0f} s")  # fmt: skip
        print(f"{'variant':<24}{'mean AIQ':>10}   per seed")
        for label, values in aiq.items():
            print(f"{label:<24}{np.mean(values):>10.4f}   " + " ".join(f"{v:.4f}" for v in values))
    if args.json:
        # the machine its run's seconds hold for, beside the data sets' results
        print(json.dumps({"machine": machine(), **results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
