"""The learned routers on real outcome data: the policy router (MISSION M3.8) and the
mixture-of-experts router (M3.4) against the quality and logreg routers.

On the ../shared/data sets (LLMRouter: test prompts also in train removed;
RouterBench MBPP: the official split), for each split seed each router is trained
on 80 % of the training set (``minilm-static``) and calibrated on the other 20 %
to each target (``max_cost=0.5``, ``quality=0.95``), as ``routerllm train
--calibrate`` does. Printed per dataset, as means over the seeds (and their spread):

* AIQ of each router's knob sweep on the test set (``lambda`` rule, as
  ``routerllm eval-routing`` reports it);
* at each target, test accuracy (mean score of the chosen models), mean cost (a
  share of the costliest model's mean test cost), and whether calibration fell
  back to the best fixed mix (M3.9);
* each router's training time (seconds, mean over the seeds);
* the policy router's label distribution (the 9-cell matrix on its training
  prompts; RouterBench has answer texts, so IDK can occur there; LLMRouter has
  none) and its reference models; the share of test prompts whose most likely
  policy is each policy, and the accuracy, cost and share of test prompts routed
  to each model at each target and uncalibrated (its default ``argmax`` rule);
* the mixture-of-experts router's best epoch (on its own 10 % of the fit prompts).

Nothing is tuned on the test sets.

    .venv/bin/python benchmarks/learned_routers.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--seeds 0 1 2]
        [--routers policy moe quality logreg] [--targets max_cost=0.5 quality=0.95] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from machine import machine, machine_line
from outcome_data import add_split_arguments, calibration_split, load_pair
from outcome_data import data_dir as outcome_data_dir

from routerllm.cli_args import DefaultsHelpFormatter
from routerllm.data.outcomes import OutcomeDataset
from routerllm.data.policy_labels import POLICIES
from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.eval.routing_metrics import evaluate_choices, routing_report, sweep
from routerllm.registry import ROUTERS as REGISTRY
from routerllm.routers.base import create_router
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter
from routerllm.routers.policy import PolicyRouter

ROUTERS = ["policy", "moe", "quality", "logreg"]


def routed(
    router: OutcomeRouter, test: OutcomeDataset, test_costs: np.ndarray, top: float, mix: bool
) -> dict[str, Any]:
    """The router's accuracy, cost (a share of the costliest model's) and model shares
    on the test set; ``mix``: whether calibration fell back to the fixed mix."""
    chosen = [d.model for d in router.route_batch(test.prompts)]
    cols = np.array([test.models.index(m) for m in chosen])
    p = evaluate_choices(cols, test.scores, test_costs)
    return {
        "accuracy": p.quality, "cost_share": p.cost / top, "fixed_mix": mix,
        "model_shares": {m: float(np.mean(cols == j)) for j, m in
                         enumerate(test.models) if np.any(cols == j)},
    }  # fmt: skip


def one_split(
    train: OutcomeDataset,
    test: OutcomeDataset,
    routers: list[str],
    targets: list[str],
    seed: int,
    encoder: Any,
) -> dict[str, Any]:
    cost, mean_cost, test_costs, top, candidates, fit_on, held_out = calibration_split(
        train, test, seed
    )
    x_fit, x_held, x_test = (encoder.encode(d.prompts) for d in (fit_on, held_out, test))
    out: dict[str, Any] = {"cost": cost, "routers": {}}
    curves = {}
    for name in routers:
        router = create_router(name, candidates, seed, encoder=DEFAULT_ENCODER,
                               costs=mean_cost.tolist())  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        start = time.perf_counter()
        router.fit_dataset(fit_on, x_fit)
        fit_seconds = time.perf_counter() - start
        order = [router.model_names.index(m) for m in train.models]
        predicted = router.predict(x_test)[:, order]
        curves[name] = sweep(predicted, test.scores, test_costs, "lambda", decision_costs=mean_cost)
        row: dict[str, Any] = {"fit_seconds": fit_seconds}
        if isinstance(router, PolicyRouter):  # before calibration: the seed's argmax rule
            row["uncalibrated"] = routed(router, test, test_costs, top, False)
        for target in targets:
            cal = router.calibrate(x_held, held_out.scores, target, train.models)
            row[target] = routed(router, test, test_costs, top, cal["fallback_mix"] is not None)
        if isinstance(router, PolicyRouter):
            best = router.policy_probabilities(x_test).argmax(axis=1)
            out["policy"] = {
                "labels": router.selection["labels"],
                "medium_model": router.medium_model, "large_model": router.large_model,
                "predicted_policy_shares": {p: float(np.mean(best == k))
                                            for k, p in enumerate(POLICIES)},
            }  # fmt: skip
        if name == "moe":
            row["best_epoch"] = router.selection["best_epoch"]
        out["routers"][name] = row
    sizes = train.sizes()
    report = routing_report(curves, test.scores, test_costs,
                            None if sizes is None else [float(s) for s in sizes],
                            model_names=train.models)  # fmt: skip
    for name in routers:
        out["routers"][name]["aiq"] = float(report["rows"][name]["aiq"])
    out["best_single"] = report["best_single"]
    return out


def _mean_sd(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f} ±{v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


def print_summary(runs: dict[str, Any], routers: list[str], targets: list[str]) -> None:
    rows = list(runs.values())
    print(f"{'router':<9}{'AIQ':>16}" + "".join(
        f"{t + ' acc':>26}{'cost':>9}{'mix':>5}" for t in targets) + f"{'fit s':>8}")  # fmt: skip
    for router in routers:
        line = f"{router:<9}{_mean_sd([r['routers'][router]['aiq'] for r in rows]):>16}"
        for t in targets:
            cells = [r["routers"][router][t] for r in rows]
            line += f"{_mean_sd([c['accuracy'] for c in cells]):>26}"
            line += f"{np.mean([c['cost_share'] for c in cells]):>9.1%}"
            line += f"{sum(c['fixed_mix'] for c in cells):>3}/{len(cells)}"
        line += f"{np.mean([r['routers'][router]['fit_seconds'] for r in rows]):>8.1f}"
        print(line)
    if "moe" in routers:
        epochs = [r["routers"]["moe"]["best_epoch"] for r in rows]
        print(f"moe: best epoch per seed {epochs}")
    if "policy" not in routers:
        return
    for seed, r in runs.items():
        pol = r["policy"]
        labels = ", ".join(f"{p} {n}" for p, n in pol["labels"].items())
        shares = ", ".join(f"{p} {v:.1%}" for p, v in pol["predicted_policy_shares"].items())
        print(f"seed {seed}: references medium {pol['medium_model']}, large {pol['large_model']}; "
              f"labels {labels}; test prompts by most likely policy: {shares}")  # fmt: skip
        for t in ["uncalibrated", *targets]:
            cell = r["routers"]["policy"][t]
            print(f"    policy router at {t}: accuracy {cell['accuracy']:.4f}, cost "
                  f"{cell['cost_share']:.1%}; " + ", ".join(
                f"{m} {v:.1%}" for m, v in cell["model_shares"].items()))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_split_arguments(ap, ["max_cost=0.5", "quality=0.95"])
    outcome_routers = [n for n in REGISTRY if issubclass(REGISTRY.get(n), OutcomeRouter)]
    ap.add_argument("--routers", nargs="+", choices=outcome_routers, default=ROUTERS)
    args = ap.parse_args()
    root = outcome_data_dir(args)
    if root is None:
        return 2
    encoder = CachedEncoder(create_encoder(DEFAULT_ENCODER))
    results: dict[str, Any] = {}
    if not args.json:
        print(machine_line())  # its training seconds hold for this machine
    for name in args.datasets:
        train, test = load_pair(root, name)
        start = time.perf_counter()
        runs = {
            str(s): one_split(train, test, args.routers, args.targets, s, encoder)
            for s in args.seeds
        }
        results[name] = runs
        if args.json:
            continue
        first = next(iter(runs.values()))
        print(f"\n== {name}: train {len(train)} (80 % fit, 20 % calibration), test {len(test)}, "
              f"cost = {first['cost']}, best single {first['best_single']['name']}, "
              f"{time.perf_counter() - start:.0f} s; means ± sd over seeds {args.seeds}")  # fmt: skip
        print_summary(runs, args.routers, args.targets)
    if args.json:
        # the machine its training seconds hold for, beside the data sets' results
        print(json.dumps({"machine": machine(), **results}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
