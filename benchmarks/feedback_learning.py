"""Does the feedback router (MISSION M3.5) learn online from bandit feedback?

On each ../shared/data set (test prompts also in train removed), per seed:

1. warm start: a ``FeedbackRouter`` is fitted on a seeded random ``--warm`` prompts
   of the training set, with every model's outcome (full information);
2. stream: the rest of the training set arrives one prompt at a time in a seeded
   random order; the router routes it (``route``: Thompson sampling with
   ``--explore``, lambda rule at the fixed ``--knob``), sees the outcome of the
   model it chose and nothing else, and learns it (``learn``);
3. at checkpoints of the stream, its posterior mean is evaluated on the test set:
   AIQ over the knob sweep, and accuracy and mean cost at ``--knob``.

References on the same test set: the router frozen at its warm start (checkpoint
0), the same router fitted with full information on the whole training set,
``logreg`` fitted offline on the whole training set with full information (the
upper reference), the best single model and a uniform random choice. During the
stream, the mean reward of the router's choices (score, cost as a share of the
costliest model's mean cost, and utility = score - knob x that share, what the
lambda rule maximises) against the frozen warm start and against always sending
every prompt to the single model with the best mean score on the training set
(hindsight) or the best utility there.

    .venv/bin/python benchmarks/feedback_learning.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--seeds 0 1 2] [--knob 0.1]
        [--explore 0.1] [--ridge 3] [--warm N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from machine import machine, machine_line
from outcome_data import (
    add_data_dir_argument,
    add_datasets_argument,
    load_pair,
)
from outcome_data import data_dir as outcome_data_dir
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from routerllm.cli_args import (
    DefaultsHelpFormatter,
    count_arg,
    encoder_arg,
    number_at_least,
    seed_arg,
)
from routerllm.data.outcomes import OutcomeDataset
from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.eval.outcome_eval import outcome_candidates
from routerllm.eval.routing_metrics import evaluate_choices, routing_report, sweep
from routerllm.routers.base import create_router
from routerllm.routers.decision import choose
from routerllm.routers.feedback import MIN_RIDGE, FeedbackRouter
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

#: Per data set: warm-start size and stream checkpoints (None: the whole stream).
PLAN: dict[str, tuple[int, list[int | None]]] = {
    "llmrouter": (200, [0, 500, 1000, 2000, None]),
    "routerbench_mbpp": (50, [0, 100, None]),
}


class TestSet:
    """The test outcomes and embeddings, and how a router's predictions score on them."""

    def __init__(self, test: OutcomeDataset, X: np.ndarray, cost: str, mean_cost: np.ndarray):
        self.data, self.X, self.mean_cost = test, X, mean_cost
        self.costs = test.cost_matrix(cost)
        self.sizes = test.sizes()

    def figures(self, predicted: np.ndarray, knob: float) -> dict[str, float]:
        """AIQ of ``predicted`` (columns in the data's order) over its knob sweep, and at
        ``knob`` the accuracy, the cost share (of the best single model's) and the utility
        (accuracy - knob x cost / the costliest model's mean cost)."""
        curve = sweep(predicted, self.data.scores, self.costs, decision_costs=self.mean_cost)
        report = self.report({"router": curve})
        point = evaluate_choices(
            choose(predicted, self.mean_cost, "lambda", knob), self.data.scores, self.costs
        )
        return {
            "aiq": report["rows"]["router"]["aiq"],
            "accuracy": point.quality,
            "cost_share": point.cost / report["best_single"]["cost"],
            "utility": point.quality - knob * point.cost / report["cost_range"][1],
        }

    def report(self, curves: dict[str, Any]) -> dict[str, Any]:
        sizes = None if self.sizes is None else [float(s) for s in self.sizes]
        return routing_report(
            curves, self.data.scores, self.costs, sizes, model_names=self.data.models
        )


def predictions(router: OutcomeRouter, X: np.ndarray, models: list[str]) -> np.ndarray:
    """The router's predicted success on ``X``, columns in the data's model order."""
    return router.predict(X)[:, [router.model_names.index(m) for m in models]]


def new_router(
    train: OutcomeDataset, mean_cost: np.ndarray, seed: int, args: argparse.Namespace, name: str
) -> OutcomeRouter:
    options: dict[str, Any] = {"encoder": args.encoder, "costs": mean_cost.tolist(), "knob": args.knob}  # fmt: skip
    if name == "feedback":
        options |= {"explore": args.explore, "ridge": args.ridge}
    router = create_router(name, outcome_candidates(train, mean_cost), seed, **options)
    assert isinstance(router, OutcomeRouter)
    return router


def one_seed(
    train: OutcomeDataset,
    X_train: np.ndarray,
    test: TestSet,
    seed: int,
    args: argparse.Namespace,
    warm_size: int,
    checkpoints: list[int],
) -> dict[str, Any]:
    mean_cost = test.mean_cost
    top = float(mean_cost.max())
    order = np.random.default_rng(seed).permutation(len(train))
    warm, stream = order[:warm_size], order[warm_size:]
    router = new_router(train, mean_cost, seed, args, "feedback")
    assert isinstance(router, FeedbackRouter)
    router.fit(None, train.scores[warm], train.models, embeddings=X_train[warm])
    column = {m: train.models.index(m) for m in train.models}
    # the frozen warm start routes the stream greedily (exploring cannot help it)
    frozen = choose(
        predictions(router, X_train[stream], train.models), mean_cost, "lambda", args.knob
    )
    costs = train.cost_matrix(train.cost_kind("auto"))
    chosen = np.empty(len(stream), dtype=int)
    at: dict[int, dict[str, float]] = {}
    start = time.perf_counter()
    for t, i in enumerate(stream):
        if t in checkpoints:
            at[t] = test.figures(predictions(router, test.X, train.models), args.knob)
        model = router.route(train.prompts[i]).model
        chosen[t] = column[model]
        router.learn([train.prompts[i]], [model], [float(train.scores[i, chosen[t]])])
    at[len(stream)] = test.figures(predictions(router, test.X, train.models), args.knob)
    seconds = time.perf_counter() - start

    def reward(choices: np.ndarray) -> dict[str, float]:
        score = train.scores[stream, choices]
        share = costs[stream, choices] / top
        return {
            "score": float(score.mean()),
            "cost_share": float(share.mean()),
            "utility": float((score - args.knob * share).mean()),
        }

    def gained(a: int, b: int) -> float:
        """The learning router's mean utility minus the frozen one's on stream[a:b]."""
        rows = stream[a:b]
        won = train.scores[rows, chosen[a:b]] - args.knob * costs[rows, chosen[a:b]] / top
        kept = train.scores[rows, frozen[a:b]] - args.knob * costs[rows, frozen[a:b]] / top
        return float((won - kept).mean())

    ends = sorted(at)
    utility = train.scores.mean(axis=0) - args.knob * costs.mean(axis=0) / top
    best, best_utility = int(np.argmax(train.scores.mean(axis=0))), int(np.argmax(utility))
    return {
        "checkpoints": at,
        "stream_seconds": seconds,
        "stream": {
            "feedback": reward(chosen),
            "frozen warm start": reward(frozen),
            f"always {train.models[best]} (best score)": reward(np.full(len(stream), best)),
            f"always {train.models[best_utility]} (best utility)": reward(
                np.full(len(stream), best_utility)
            ),
            "random": {  # the expected reward of a uniform choice
                "score": float(train.scores[stream].mean()),
                "cost_share": float((costs[stream] / top).mean()),
                "utility": float((train.scores[stream] - args.knob * costs[stream] / top).mean()),
            },
        },
        "gain_by_segment": {
            f"{a + 1}-{b}": gained(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)
        },
        "counts": dict(zip(router.model_names, router.counts.tolist(), strict=True)),
    }


def run(
    name: str, args: argparse.Namespace, pair: tuple[OutcomeDataset, OutcomeDataset]
) -> dict[str, Any]:
    train, test_data = pair
    encoder = CachedEncoder(create_encoder(args.encoder))
    X_train, X_test = encoder.encode(train.prompts), encoder.encode(test_data.prompts)
    cost = train.cost_kind("auto")
    mean_cost = train.cost_matrix(cost).mean(axis=0)
    test = TestSet(test_data, X_test, cost, mean_cost)
    warm_size, plan = PLAN[name]
    warm_size = args.warm or warm_size
    n_stream = len(train) - warm_size
    checkpoints = sorted({n_stream if c is None else min(c, n_stream) for c in plan})
    full: dict[str, dict[str, float]] = {}
    for ref in ("logreg", "feedback"):
        router = new_router(train, mean_cost, 0, args, ref)
        router.fit(None, train.scores, train.models, embeddings=X_train)
        full[ref] = test.figures(predictions(router, X_test, train.models), args.knob)
    refs = test.report({})
    best = refs["best_single"]
    references = {
        f"best single ({best['name']})": {
            "aiq": refs["rows"]["best_single"]["aiq"], "accuracy": best["quality"], "cost_share": 1.0,
            "utility": best["quality"] - args.knob * best["cost"] / refs["cost_range"][1],
        },
        "random": {
            "aiq": refs["rows"]["random"]["aiq"],
            "accuracy": float(test_data.scores.mean()),
            "cost_share": float(test.costs.mean() / best["cost"]),
            "utility": float(test_data.scores.mean() - args.knob * test.costs.mean() / refs["cost_range"][1]),
        },
    }  # fmt: skip
    # One prompt at a time is small linear algebra: a BLAS thread pool only contends
    # for the 2 cores (measured: 10x slower with 2 threads while another job runs).
    with threadpool_limits(1, "blas"):
        seeds = [
            one_seed(train, X_train, test, seed, args, warm_size, checkpoints)
            for seed in args.seeds
        ]
    return {
        "train_size": len(train), "test_size": len(test_data), "warm": warm_size,
        "stream": n_stream, "cost": cost, "knob": args.knob, "explore": args.explore,
        "ridge": args.ridge, "encoder": args.encoder, "full_information": full,
        "references": references, "seed_values": list(args.seeds), "seeds": seeds,
    }  # fmt: skip


def _ms(values: list[float], pct: bool = False) -> str:
    a = np.array(values) * (100 if pct else 1)
    return f"{a.mean():.1f} +- {a.std():.1f} %" if pct else f"{a.mean():.4f} +- {a.std():.4f}"


def show(name: str, r: dict[str, Any]) -> None:
    print(
        f"\n== {name}: train {r['train_size']} (warm start {r['warm']}, stream {r['stream']}), "
        f"test {r['test_size']}, cost = {r['cost']}, knob {r['knob']:g}, explore "
        f"{r['explore']:g}, ridge {r['ridge']:g}, {r['encoder']}, seeds {r['seed_values']}"
    )
    print(f"{'test set':<54}{'AIQ':>18}{'accuracy at knob':>20}{'cost at knob':>18}{'utility at knob':>20}")  # fmt: skip
    for t in r["seeds"][0]["checkpoints"]:
        rows = [s["checkpoints"][t] for s in r["seeds"]]
        label = "frozen warm start (= after 0)" if t == 0 else f"feedback after {t} streamed"
        print(
            f"{label:<54}{_ms([x['aiq'] for x in rows]):>18}{_ms([x['accuracy'] for x in rows]):>20}"
            f"{_ms([x['cost_share'] for x in rows], True):>18}{_ms([x['utility'] for x in rows]):>20}"
        )
    fixed = {f"{k}, full information, all train": v for k, v in r["full_information"].items()}
    for label, x in {**fixed, **r["references"]}.items():
        print(
            f"{label:<54}{x['aiq']:>18.4f}{x['accuracy']:>20.4f}{100 * x['cost_share']:>16.1f} %"
            f"{x['utility']:>20.4f}"
        )
    print(
        "(cost: share of the best single model's mean cost on the test set; utility = "
        "accuracy - knob x cost / the costliest model's)"
    )
    print(f"\n{'stream, mean per prompt':<54}{'score':>18}{'cost share':>20}{'utility':>18}")
    for label in r["seeds"][0]["stream"]:
        rows = [s["stream"][label] for s in r["seeds"]]
        print(
            f"{label:<54}{_ms([x['score'] for x in rows]):>18}"
            f"{_ms([x['cost_share'] for x in rows], True):>20}{_ms([x['utility'] for x in rows]):>18}"
        )
    print(
        "(cost share: of the costliest model's mean cost; utility = score - knob x cost share; "
        f"stream {np.mean([s['stream_seconds'] for s in r['seeds']]):.0f} s a seed)"
    )
    print("utility gained over the frozen warm start, by part of the stream: " + ", ".join(
        f"prompts {part} {_ms([s['gain_by_segment'][part] for s in r['seeds']])}"
        for part in r["seeds"][0]["gain_by_segment"]
    ))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_data_dir_argument(ap)
    add_datasets_argument(ap, list(PLAN))
    ap.add_argument("--seeds", nargs="+", type=seed_arg, default=[0, 1, 2])
    # the router's defaults; it refuses the others, but only once the data is embedded
    ap.add_argument("--knob", type=number_at_least(0), default=0.1)
    ap.add_argument("--explore", type=number_at_least(0), default=0.1)
    ap.add_argument("--ridge", type=number_at_least(MIN_RIDGE), default=3.0)
    ap.add_argument(
        "--warm", type=count_arg, default=None, help="warm-start size (default per set)"
    )
    ap.add_argument("--encoder", type=encoder_arg, default=DEFAULT_ENCODER)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data_path = outcome_data_dir(args)
    if data_path is None:
        return 2
    pairs = {name: load_pair(data_path, name) for name in args.datasets}
    for name, (train, _) in pairs.items():
        # a warm start of the whole training set streams nothing: a table of nan
        if (warm := args.warm or PLAN[name][0]) >= len(train):
            given = f"argument --warm: {warm}" if args.warm else f"the default --warm {warm}"
            ap.error(
                f"{given} leaves no prompt to stream: {name} has {len(train)} training "
                f"prompts; give at most {len(train) - 1}"
            )
    results = {name: run(name, args, pairs[name]) for name in args.datasets}
    if args.json:
        # the machine its stream's seconds hold for, beside the data sets' results
        print(json.dumps({"machine": machine(), **results}, indent=2, default=float))
        return 0
    print(machine_line())  # its stream's seconds hold for this machine
    for name, r in results.items():
        show(name, r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
