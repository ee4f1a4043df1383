"""Does calibration's choice of decision rule carry from held-out data to the test set?

On each ../shared/data set (both unless --datasets; test prompts that are also in
train removed), the quality router is trained on 80 % of the training set and
calibrated on the other 20 % to each target, four ways: `lambda` only, `threshold` only, both (the
rule whose best knob meets the target better on the held-out 20 %, the default),
and both with `two_settings` (a cost or quality target met by a random mix of
two knob settings where it falls between them).
Each calibrated router then routes the whole test set. Printed per target and
split seed: the rule chosen, and each way's test quality and mean cost (as a
share of the costliest model's mean cost on the test set), so that the choice can
be judged on prompts it never saw.

    .venv/bin/python benchmarks/decision_rules.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--seeds 0 1 2]
        [--targets max_cost=0.3 max_cost=0.5 quality=0.95] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from outcome_data import add_split_arguments, calibration_split, load_pair
from outcome_data import data_dir as outcome_data_dir

from routerllm.cli_args import DefaultsHelpFormatter
from routerllm.data.outcomes import OutcomeDataset
from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.eval.routing_metrics import evaluate_choices
from routerllm.routers.base import create_router
from routerllm.routers.decision import MODES
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

WAYS: dict[str, dict[str, Any]] = {
    "lambda": {"modes": ("lambda",)},
    "threshold": {"modes": ("threshold",)},
    "both": {"modes": MODES},
    "two settings": {"modes": MODES, "two_settings": True},
}


def one_split(
    train: OutcomeDataset, test: OutcomeDataset, targets: list[str], seed: int, encoder: Any
) -> dict[str, Any]:
    split = calibration_split(train, test, seed)
    router = create_router("quality", split.candidates, seed,
                           encoder=DEFAULT_ENCODER, costs=split.mean_cost.tolist())  # fmt: skip
    assert isinstance(router, OutcomeRouter)
    fit_on, held_out = split.fit_on, split.held_out
    router.fit(None, fit_on.scores, train.models, embeddings=encoder.encode(fit_on.prompts))
    X_held = encoder.encode(held_out.prompts)
    out: dict[str, Any] = {}
    for target in targets:
        row: dict[str, Any] = {}
        for way, how in WAYS.items():
            cal = router.calibrate(X_held, held_out.scores, target, train.models, **how)
            cols = [train.models.index(d.model) for d in router.route_batch(test.prompts)]
            point = evaluate_choices(np.array(cols), test.scores, split.test_costs)
            row[way] = {"rule": cal["mode"], "held_out_quality": cal["quality"],
                        "test_quality": point.quality, "test_cost_share": point.cost / split.top,
                        "fixed_mix": cal["fallback_mix"] is not None,
                        "second_share": cal["second_share"]}  # fmt: skip
        out[target] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_split_arguments(ap, ["max_cost=0.3", "max_cost=0.5", "quality=0.95"])
    args = ap.parse_args()
    root = outcome_data_dir(args)
    if root is None:
        return 2
    encoder = CachedEncoder(create_encoder(DEFAULT_ENCODER))
    results: dict[str, Any] = {}
    for name in args.datasets:
        train, test = load_pair(root, name)
        start = time.perf_counter()
        results[name] = {
            str(s): one_split(train, test, args.targets, s, encoder) for s in args.seeds
        }
        if args.json:
            continue
        print(f"\n== {name}: train {len(train)} (80 % fit, 20 % calibration), test {len(test)}, "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip
        print(
            f"{'target':<14}{'seed':>5}  {'chosen':<10}"
            + "".join(f"{w + ' q / cost':>24}" for w in WAYS)
        )
        for target in args.targets:
            for s in args.seeds:
                r = results[name][str(s)][target]
                cells = "".join(
                    f"{r[w]['test_quality']:>14.4f} / {r[w]['test_cost_share']:>6.1%}"
                    + ("*" if r[w]["fixed_mix"] else "+" if r[w]["second_share"] else " ")
                    for w in WAYS
                )
                print(f"{target:<14}{s:>5}  {r['both']['rule']:<10}{cells}")
        print(
            "(* = calibration fell back to a fixed mix of models, + = it mixed two knob settings)"
        )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
