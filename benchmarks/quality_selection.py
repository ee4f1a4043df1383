"""How well does the quality router's training-only selection pick among its own
candidates?

Over seeded re-splits of train + (deduplicated) test, for each split it reports the
test AIQ of:

* ``logreg``: the logistic-regression baseline (C = 1, independent per model);
* ``1-SE rule``: the router's pick: the candidate with the best out-of-fold AIQ
  on train if its lead over plain logistic regression exceeds its standard
  error over the folds, else logistic regression (default grid, ``share`` 0);
* ``oof aiq``: the candidate with the best out-of-fold AIQ on train, with the
  default grid and with the multi-task grid (``--shares``);
* ``oof brier`` / ``oof log-loss``: the pick under a proper scoring rule instead,
  a smoother criterion than AIQ;
* ``hindsight``: the candidate that is best *on the test split*. Not a router
  (it looks at the test outcomes): it only shows how much better a perfect
  selection could do, i.e. whether the candidates or the selection are the limit.

    .venv/bin/python benchmarks/quality_selection.py [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--encoder static] [--resplits 10] [--shares 0 3 10 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from outcome_data import (
    add_data_dir_argument,
    add_datasets_argument,
    ci_text,
    load_pair,
    split_intervals,
)
from outcome_data import data_dir as outcome_data_dir

from routerllm.checks import MAX_RESPLITS
from routerllm.cli_args import (
    DefaultsHelpFormatter,
    encoder_arg,
    number_at_least,
    whole_number_arg,
    whole_range,
)
from routerllm.data.outcomes import OutcomeDataset, without
from routerllm.eval.outcome_eval import embed, split_dataset
from routerllm.eval.routing_metrics import routing_report, sweep
from routerllm.routers.base import Candidate
from routerllm.routers.quality import LogisticRouter, QualityRouter

Key = tuple[float, float, int, float]


def brier(pred: np.ndarray, Y: np.ndarray) -> float:
    return -float(np.mean((pred - Y) ** 2))


def log_likelihood(pred: np.ndarray, Y: np.ndarray) -> float:
    p, t = np.clip(pred, 1e-4, 1 - 1e-4), Y >= 0.5
    return float(np.mean(np.where(t, np.log(p), np.log(1 - p))))


def one_split(
    train: OutcomeDataset, test: OutcomeDataset, encoder: str, shares: list[float]
) -> dict[str, float]:
    x_train, x_test = embed([train, test], encoder)
    kind = train.cost_kind()  # per-call cost where the data has it, else model size
    mean_cost = train.cost_matrix(kind).mean(axis=0)
    candidates = [Candidate(m, float(c)) for m, c in zip(train.models, mean_cost, strict=True)]
    router = QualityRouter(candidates, share_grid=shares, costs=mean_cost.tolist())
    # everything in the router's model order (cheapest first), which its costs follow
    order = [train.models.index(name) for name in router.model_names]
    Y, test_scores = train.scores[:, order], test.scores[:, order]
    c_test = test.cost_matrix(kind)[:, order]
    oof = router.out_of_fold(x_train, Y)
    final = router.candidate_predictions(x_train, Y, x_test)
    logreg = LogisticRouter(candidates, costs=mean_cost.tolist())  # C = 1, the baseline
    final_lr = logreg.fit(None, Y, router.model_names, embeddings=x_train).predict(x_test)
    known = router.costs  # what the routers decide by: the training means
    curves = {str(k): sweep(p, test_scores, c_test, decision_costs=known) for k, p in final.items()}
    curves["logreg"] = sweep(final_lr, test_scores, c_test, decision_costs=known)
    rows = routing_report(curves, test_scores, c_test)["rows"]
    test_aiq = {k: rows[str(k)]["aiq"] for k in final}

    def pick(score: Callable[[np.ndarray, np.ndarray], float], keys: list[Key]) -> float:
        return test_aiq[max(keys, key=lambda k: score(oof[k], Y))]

    def one_se(keys: list[Key]) -> float:
        best = max(keys, key=lambda k: router.routing_aiq(oof[k], Y))
        base = (1.0, 0.0, router.k_grid[0], 1.0)
        keep = best != base and not router._clearly_ahead(oof[best], oof[base], Y)
        return test_aiq[base if keep else best]

    default = [k for k in oof if k[1] == 0.0 or k[3] == 0.0]  # share 0 (w = 0 has no logistic)
    return {
        "logreg": rows["logreg"]["aiq"],
        "1-SE rule (the router)": one_se(default),
        "oof aiq, share 0, best": pick(router.routing_aiq, default),
        "oof aiq, all shares": pick(router.routing_aiq, list(oof)),
        "oof brier, all shares": pick(brier, list(oof)),
        "oof log-loss, all shares": pick(log_likelihood, list(oof)),
        "hindsight (not a router)": max(test_aiq.values()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_data_dir_argument(ap)
    add_datasets_argument(ap)
    ap.add_argument("--encoder", type=encoder_arg, default="static")
    ap.add_argument("--resplits", type=whole_number_arg(1, MAX_RESPLITS), default=10, help=f"seeded re-splits of train + test, {whole_range(1, MAX_RESPLITS)}")  # fmt: skip
    ap.add_argument("--shares", type=number_at_least(0), nargs="+", default=[0.0, 3.0, 10.0, 30.0])
    args = ap.parse_args()
    data_dir = outcome_data_dir(args)
    if data_dir is None:
        return 2
    for name in args.datasets:
        start = time.perf_counter()
        train, test = load_pair(data_dir, name)
        pooled = train.concat(test)
        results: dict[str, list[float]] = {}
        test_to_train = 0.0
        for seed in range(1, args.resplits + 1):
            tr, te = split_dataset(pooled, len(test) / len(pooled), seed)
            te, _ = without(te, tr)
            test_to_train = len(te) / len(tr)
            for row, value in one_split(tr, te, args.encoder, args.shares).items():
                results.setdefault(row, []).append(value)
        print(
            f"\n== {name} / {args.encoder}: {args.resplits} re-splits "
            f"(train {len(train)}, test {len(test)}), shares {args.shares}, "
            f"{time.perf_counter() - start:.0f} s"
        )
        print("(90 % t-intervals over the re-splits, corrected for the prompts they share)")
        print(f"{'selection':<30}{'test AIQ':>9}{'- logreg (90% interval)':>34}{'wins':>7}")
        base = np.array(results["logreg"])
        for row, values in results.items():
            v = np.array(values)
            diff = split_intervals(list(v - base), test_to_train)
            print(
                f"{row:<30}{v.mean():>9.4f}{diff['mean']:>+12.4f} ({ci_text(diff['90ci_corrected']):>18})"
                f"{int((v > base).sum()):>4}/{len(v)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
