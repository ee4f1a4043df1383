"""Does the ensemble router (MISSION M3.6) do better than its members, on real outcome data?

On the ../shared/data sets (test prompts that are also in train removed), the
member routers are trained on 80 % of the training set and calibrated on the other
20 % to each target (default ``quality=0.95`` and ``max_cost=0.5``, two of
``decision_rules.py``'s targets; calibrated as ``routerllm train --calibrate`` does),
each split seed on its own: logreg, knn and quality on ``minilm-static``, and logreg
on ``static`` (WordLlama). Two ensembles vote: ``ensemble`` (logreg, knn, quality)
and ``ensemble-b`` (logreg, knn, logreg-static); most votes wins, a tie goes to the
voters with the higher mean confidence (an outcome router's confidence is its
predicted success of its choice). Each member alone and each ensemble route the
whole test set. Printed per target and seed: accuracy (mean score of the chosen
models) and mean cost (a share of the costliest model's mean test cost); how far
each point is above (+) or below (-) the single models' hull on the test set (the
best fixed random mix of single models at that cost, in hindsight: MISSION M3.9)
and each member's own quality-cost curve on the test set (the upper hull of its
knob sweep under both decision rules: the best its predictions reach at that cost,
mixing settings); and how often the members agree. Then the means over the seeds.

    .venv/bin/python benchmarks/ensemble_routing.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--seeds 0 1 2]
        [--targets quality=0.95 max_cost=0.5] [--json]
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
from routerllm.eval.curves import OperatingPoint, quality_at, upper_hull
from routerllm.eval.routing_metrics import evaluate_choices, sweep
from routerllm.routers.base import Router, create_router
from routerllm.routers.decision import MODES
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

#: Each member: (router, encoder). The quality router keeps plain logistic regression
#: unless a blend is clearly ahead on its training data, so a second ensemble takes a
#: member that differs by its encoder instead.
MEMBERS = {
    "logreg": ("logreg", DEFAULT_ENCODER),
    "knn": ("knn", DEFAULT_ENCODER),
    "quality": ("quality", DEFAULT_ENCODER),
    "logreg-static": ("logreg", "static"),
}
ENSEMBLES = {
    "ensemble": ("logreg", "knn", "quality"),
    "ensemble-b": ("logreg", "knn", "logreg-static"),
}


def _above(curve: list[OperatingPoint], point: OperatingPoint) -> float | None:
    """How far ``point`` is above ``curve`` at its cost (None: cheaper than the curve)."""
    at = quality_at(curve, point.cost)
    return None if at is None else point.quality - at


def one_split(
    train: OutcomeDataset, test: OutcomeDataset, targets: list[str], seed: int,
    encoders: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    cost, mean_cost, test_costs, top, candidates, fit_on, held_out = calibration_split(
        train, test, seed
    )
    singles = [evaluate_choices(np.full(len(test), j), test.scores, test_costs)
               for j in range(len(train.models))]  # fmt: skip
    hull = upper_hull(singles)
    members: dict[str, OutcomeRouter] = {}
    held: dict[str, np.ndarray] = {}
    curves: dict[str, list[OperatingPoint]] = {}
    for label, (name, spec) in MEMBERS.items():
        encoder = encoders[spec]
        router = create_router(name, candidates, seed, encoder=spec, costs=mean_cost.tolist())
        assert isinstance(router, OutcomeRouter)
        router.fit(None, fit_on.scores, train.models, embeddings=encoder.encode(fit_on.prompts))
        members[label], held[label] = router, encoder.encode(held_out.prompts)
        order = [router.model_names.index(m) for m in train.models]
        predicted = router.predict(encoder.encode(test.prompts))[:, order]
        points = [p for mode in MODES for p in sweep(predicted, test.scores, test_costs, mode,
                                                        decision_costs=mean_cost)]  # fmt: skip
        curves[label] = upper_hull(points)

    def point(router: Router) -> tuple[OperatingPoint, np.ndarray]:
        cols = np.array([train.models.index(d.model) for d in router.route_batch(test.prompts)])
        return evaluate_choices(cols, test.scores, test_costs), cols

    out: dict[str, Any] = {"cost": cost}
    for target in targets:
        rows: dict[str, Any] = {}
        picks = {}
        for label, router in members.items():
            cal = router.calibrate(held[label], held_out.scores, target, train.models)
            p, picks[label] = point(router)
            rows[label] = {"accuracy": p.quality, "cost_share": p.cost / top, "rule": cal["mode"],
                           "fixed_mix": cal["fallback_mix"] is not None,
                           "vs_own_curve": _above(curves[label], p), "vs_singles": _above(hull, p)}  # fmt: skip
        for name, labels in ENSEMBLES.items():
            voters = [members[label] for label in labels]
            p, chosen = point(create_router("ensemble", candidates, seed, members=voters))
            votes = np.stack([picks[label] for label in labels], axis=1)
            distinct = np.array([len(set(row)) for row in votes])
            split = distinct == len(labels)
            rows[name] = {
                "members": list(labels), "accuracy": p.quality, "cost_share": p.cost / top,
                "vs_member_curves": {n: _above(curves[n], p) for n in labels},
                "vs_singles": _above(hull, p),
                "agree_all": float(np.mean(distinct == 1)),
                "agree_majority": float(np.mean((distinct > 1) & ~split)),
                "split": float(np.mean(split)),
                # on a three-way split the most confident voter's model wins: whose was it
                "split_won_by": {n: int(np.sum(split & (votes[:, k] == chosen)))
                                 for k, n in enumerate(labels)},
            }  # fmt: skip
        out[target] = rows
    return out


def _signed(v: float | None) -> str:
    return "below" if v is None else f"{v:+.4f}"


def print_split(r: dict[str, Any]) -> None:
    print(f"{'router':<14}{'accuracy':>9}{'cost':>8}{'vs singles hull':>17}  vs own curve / the members' curves")  # fmt: skip
    for label in MEMBERS:
        m = r[label]
        rule = m["rule"] + (", fell back to a fixed mix" if m["fixed_mix"] else "")
        print(f"{label:<14}{m['accuracy']:>9.4f}{m['cost_share']:>8.1%}{_signed(m['vs_singles']):>17}  "
              f"{_signed(m['vs_own_curve'])} ({rule})")  # fmt: skip
    for name in ENSEMBLES:
        e = r[name]
        print(f"{name:<14}{e['accuracy']:>9.4f}{e['cost_share']:>8.1%}{_signed(e['vs_singles']):>17}  "
              + ", ".join(f"{n} {_signed(v)}" for n, v in e["vs_member_curves"].items()))  # fmt: skip
    for name in ENSEMBLES:
        e = r[name]
        won = ", ".join(f"{n} {k}" for n, k in e["split_won_by"].items())
        print(f"{name} ({', '.join(e['members'])}): all agree on {e['agree_all']:.1%} of prompts, "
              f"2 of 3 on {e['agree_majority']:.1%}, all differ on {e['split']:.1%} "
              f"(then the most confident won: {won})")  # fmt: skip


def summary(runs: dict[str, Any], target: str) -> None:
    """Means over the seeds."""
    rows = [run[target] for run in runs.values()]

    def mean(get: Any) -> str:
        values = [get(r) for r in rows]
        if any(v is None for v in values):
            return "below"
        return f"{np.mean(values):+.4f}"

    print(f"mean over {len(rows)} seeds, target {target}:")
    for name in (*MEMBERS, *ENSEMBLES):
        acc = np.mean([r[name]["accuracy"] for r in rows])
        cost = np.mean([r[name]["cost_share"] for r in rows])
        line = f"  {name:<14}accuracy {acc:.4f}  cost {cost:6.1%}  vs singles hull {mean(lambda r, n=name: r[n]['vs_singles'])}"  # fmt: skip
        if name in ENSEMBLES:
            line += "  vs the members' curves: " + ", ".join(
                f"{m} {mean(lambda r, n=name, m=m: r[n]['vs_member_curves'][m])}"
                for m in ENSEMBLES[name]
            )
        else:
            line += f"  vs own curve {mean(lambda r, n=name: r[n]['vs_own_curve'])}"
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_split_arguments(ap, ["quality=0.95", "max_cost=0.5"])
    args = ap.parse_args()
    root = outcome_data_dir(args)
    if root is None:
        return 2
    encoders = {spec: CachedEncoder(create_encoder(spec)) for _, spec in MEMBERS.values()}
    results: dict[str, Any] = {}
    for name in args.datasets:
        train, test = load_pair(root, name)
        start = time.perf_counter()
        runs = {str(s): one_split(train, test, args.targets, s, encoders) for s in args.seeds}
        results[name] = runs
        if args.json:
            continue
        cost = next(iter(runs.values()))["cost"]
        print(f"\n== {name}: train {len(train)} (80 % fit, 20 % calibration), test {len(test)}, "
              f"cost = {cost}, {time.perf_counter() - start:.0f} s")  # fmt: skip
        for target in args.targets:
            for seed, run in runs.items():
                print(f"\n-- target {target}, seed {seed}")
                print_split(run[target])
            print()
            summary(runs, target)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
