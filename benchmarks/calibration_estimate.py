"""Calibration's figures against prompts it never saw: how far the held-out figures at
the chosen knob (``quality``, ``lead_over_mix``: measured where the knob was chosen)
overstate what the router does on new prompts, against the cross-fitted ones
(``cross_fitted_quality``, ``cross_fitted_lead_over_mix``: each held-out prompt routed
by a knob chosen without it), and which fall-back rule does best on new prompts.

Generated outcome data, where the truth is known: 4 models (costs 1, 3, 10, 30); of
the prompts, a share ``--signals`` follow a keyword (those naming "kernel" solved by
the two cheapest models, the others by the dearest, the third by chance), the rest
are solved by each model at its own rate (0.35, 0.5, 0.65, 0.75) at random, which
no prompt tells. ``--train`` prompts (20 % held out to calibrate on) and 2,000 new
ones per seed; the quality router with the hashing encoder. Real data (``--data-dir``,
where present): each ../shared/data set's quality router (``minilm-static``) trained on
80 % of train and calibrated on the other 20 % per split seed, the test set untouched.

Printed per data set and target, means over the seeds: the knob's quality on the
held-out prompts, cross-fitted and on the new prompts (with the bias and RMSE of each
estimate), its lead over the best fixed mix of single models at its cost the same
three ways; then for each fall-back rule (the held-out lead over 2 standard errors,
calibration's until 2026-12-07; the cross-fitted lead over 0, 1 and 2 standard errors)
how often it falls back and the new prompts' quality of the router as it then routes
(the knob, or the mix: its expected quality), and that minus the mix's (its gain);
and calibration's mean time.

    .venv/bin/python benchmarks/calibration_estimate.py [--signals 0 0.25 0.5 1]
        [--train 300] [--seeds 0 1 2 3 4 5 6 7 8 9] [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--real-seeds 0 1 2]
        [--targets max_cost=0.5 quality=0.95] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, machine_line
from outcome_data import add_data_dir_argument, add_datasets_argument, calibration_split, load_pair

from routerllm.cli_args import DefaultsHelpFormatter, calibration_target_arg, seed_arg
from routerllm.data.outcomes import OutcomeDataset
from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.eval.curves import mix_at
from routerllm.eval.outcome_eval import outcome_candidates, split_dataset
from routerllm.eval.routing_metrics import evaluate_choices
from routerllm.routers.base import create_router
from routerllm.routers.calibration import ahead_of_mix
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

MODELS = ["tiny", "small", "mid", "big"]
COSTS = np.array([1.0, 3.0, 10.0, 30.0])
ACCURACY = np.array([0.35, 0.5, 0.65, 0.75])
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "omega",
    "river",
    "stone",
    "cloud",
    "paper",
    "glass",
    "table",
    "orange",
    "violet",
]
NEW_PROMPTS = 2000
#: name -> (which lead, standard errors): the fall-back rules compared
RULES = {
    "held-out > 2 SE": ("held_out", 2.0),
    "cross-fit > 0": ("cross_fitted", 0.0),
    "cross-fit > 1 SE": ("cross_fitted", 1.0),
    "cross-fit > 2 SE": ("cross_fitted", 2.0),
}


def generated(signal: float, n: int, rng: np.random.Generator) -> OutcomeDataset:
    """``n`` prompts, a share ``signal`` of them with outcomes a keyword decides."""
    kernel, follows = rng.random(n) < 0.5, rng.random(n) < signal
    scores = (rng.random((n, 4)) < ACCURACY).astype(float)
    scores[follows] = 0.0
    scores[follows & kernel, :2] = 1.0
    scores[follows & ~kernel, 3] = 1.0
    scores[follows, 2] = rng.random(int(follows.sum())) < 0.5
    prompts = [
        f"q{i} " + " ".join(rng.choice(WORDS, 8)) + (" kernel" if k else "")
        for i, k in enumerate(kernel)
    ]
    costs = np.broadcast_to(COSTS, scores.shape).copy()
    return OutcomeDataset(prompts, MODELS, scores, costs=costs)


def measure(
    router: OutcomeRouter,
    held: tuple[np.ndarray, OutcomeDataset],
    test: OutcomeDataset,
    costs: np.ndarray,
    target: str,
) -> dict[str, Any]:
    """Calibrate ``router`` on ``held`` (embeddings, data); the knob's and the fixed
    mix's figures on the new prompts ``test`` (``costs``: their per-call costs)."""
    x_held, held_out = held
    if test.models != held_out.models:
        raise SystemExit(f"the test set's models {test.models} are not the training set's")
    scores = test.scores
    start = time.process_time()
    cal = router.calibrate(x_held, held_out.scores, target, held_out.models)
    seconds = time.process_time() - start
    router.set_mix(None)  # the knob's own choices on the new prompts
    names = router.model_names
    chosen = np.array([held_out.models.index(d.model) for d in router.route_batch(test.prompts)])
    knob = evaluate_choices(chosen, scores, costs)
    held_costs = np.broadcast_to(
        router.costs[[names.index(m) for m in held_out.models]], held_out.scores.shape
    )
    singles = [evaluate_choices(np.full(len(held_out), j), held_out.scores, held_costs)
               for j in range(len(held_out.models))]  # fmt: skip
    weights = mix_at(singles, cal["cost"])  # the mix calibration compares the knob with
    drawn = (
        math.nan if weights is None else sum(w * scores[:, j].mean() for j, w in weights.items())
    )
    return {
        "held_out": cal["quality"], "cross_fitted": cal["cross_fitted_quality"],
        "test": knob.quality, "test_cost": knob.cost,
        "lead": {"held_out": cal["lead_over_mix"], "cross_fitted": cal["cross_fitted_lead_over_mix"],
                 "test": knob.quality - drawn},
        "se": {"held_out": cal["lead_standard_error"], "cross_fitted": cal["cross_fitted_lead_standard_error"]},
        "mix_test": drawn, "falls_back": cal["routes_by"] == "fixed mix", "seconds": seconds,
    }  # fmt: skip


def rules(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each fall-back rule's share of fallbacks and the new prompts' quality (and gain
    over the mix) of the router as it then routes. Runs without a mix route."""
    out = {}
    for name, (which, se) in RULES.items():
        routes = [
            np.isnan(r["mix_test"]) or ahead_of_mix(r["lead"][which], r["se"][which], se)
            for r in runs
        ]
        quality = [r["test"] if go else r["mix_test"] for r, go in zip(runs, routes, strict=True)]
        gain = [r["lead"]["test"] if go else 0.0 for r, go in zip(runs, routes, strict=True)]
        out[name] = {"falls_back": 1 - float(np.mean(routes)), "quality": float(np.mean(quality)),
                     "gain": float(np.nanmean(gain))}  # fmt: skip
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    test = np.array([r["test"] for r in runs])
    out: dict[str, Any] = {"runs": len(runs), "test_quality": float(test.mean())}
    for which in ("held_out", "cross_fitted"):
        error = np.array([r[which] for r in runs]) - test
        lead = np.array([r["lead"][which] - r["lead"]["test"] for r in runs])
        out[which] = {"quality": float(np.mean([r[which] for r in runs])),
                      "bias": float(error.mean()), "rmse": float(np.sqrt((error**2).mean())),
                      "lead": float(np.nanmean([r["lead"][which] for r in runs])),
                      "lead_bias": float(np.nanmean(lead))}  # fmt: skip
    out["test_lead"] = float(np.nanmean([r["lead"]["test"] for r in runs]))
    out["rules"] = rules(runs)
    out["calibrate_cpu_s"] = float(np.mean([r["seconds"] for r in runs]))
    return out


def calibrated_runs(
    router: OutcomeRouter,
    held: tuple[np.ndarray, OutcomeDataset],
    test: OutcomeDataset,
    costs: np.ndarray,
    targets: list[str],
    runs: dict[str, list[dict[str, Any]]],
) -> None:
    """``measure`` the fitted ``router`` at each target, appended to ``runs[target]``."""
    for target in targets:
        runs.setdefault(target, []).append(measure(router, held, test, costs, target))


def generated_runs(
    signal: float, train: int, seeds: list[int], targets: list[str]
) -> dict[str, list[dict[str, Any]]]:
    encoder = create_encoder("hashing")
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        data, test = generated(signal, train, rng), generated(signal, NEW_PROMPTS, rng)
        fit_on, held_out = split_dataset(data, 0.2, seed)
        router = create_router("quality", outcome_candidates(data, COSTS), seed,
                               encoder="hashing", costs=COSTS.tolist())  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        router.fit_dataset(fit_on, encoder.encode(fit_on.prompts))
        held = (encoder.encode(held_out.prompts), held_out)
        calibrated_runs(router, held, test, test.cost_matrix("call"), targets, runs)
    return runs


def real_runs(
    root: Path, name: str, seeds: list[int], targets: list[str], encoder: Any
) -> dict[str, list[dict[str, Any]]]:
    train, test = load_pair(root, name)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        split = calibration_split(train, test, seed)
        router = create_router("quality", split.candidates, seed, encoder=DEFAULT_ENCODER,
                               costs=split.mean_cost.tolist())  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        router.fit_dataset(split.fit_on, encoder.encode(split.fit_on.prompts))
        held = (encoder.encode(split.held_out.prompts), split.held_out)
        calibrated_runs(router, held, test, split.test_costs, targets, runs)
    return runs


def show(title: str, s: dict[str, Any]) -> None:
    h, c = s["held_out"], s["cross_fitted"]
    print(f"{title}: {s['runs']} runs; knob quality held-out {h['quality']:.4f} (bias "
          f"{h['bias']:+.4f}, RMSE {h['rmse']:.4f}), cross-fitted {c['quality']:.4f} (bias "
          f"{c['bias']:+.4f}, RMSE {c['rmse']:.4f}), new prompts {s['test_quality']:.4f}; "
          f"lead over the mix held-out {h['lead']:+.4f}, cross-fitted {c['lead']:+.4f}, new "
          f"prompts {s['test_lead']:+.4f}; calibration {s['calibrate_cpu_s']:.2f} CPU s")  # fmt: skip
    for name, r in s["rules"].items():
        print(f"    {name:<17} falls back {r['falls_back']:>5.0%}, new prompts' quality "
              f"{r['quality']:.4f}, gain over the mix {r['gain']:+.4f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--signals", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=list(range(10)))
    add_data_dir_argument(ap)
    add_datasets_argument(ap)
    ap.add_argument("--real-seeds", type=seed_arg, nargs="+", default=[0, 1, 2])
    ap.add_argument("--targets", nargs="+", type=calibration_target_arg,
                    default=["max_cost=0.5", "quality=0.95"])  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    if not args.json:
        print(machine_line())
    for signal in args.signals:
        by_target = generated_runs(signal, args.train, args.seeds, args.targets)
        for target, runs in by_target.items():
            key = f"generated signal {signal:g}, {args.train} prompts, {target}"
            results[key] = summary(runs)
            if not args.json:
                show(key, results[key])
    root = Path(args.data_dir)
    if root.is_dir():
        encoder = CachedEncoder(create_encoder(DEFAULT_ENCODER))
        for name in args.datasets:
            by_target = real_runs(root, name, args.real_seeds, args.targets, encoder)
            for target, runs in by_target.items():
                key = f"{name}, {target}"
                results[key] = summary(runs)
                if not args.json:
                    show(key, results[key])
    elif not args.json:
        print(f"no outcome data at {root}: generated data only (give --data-dir)")
    if args.json:
        print(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
