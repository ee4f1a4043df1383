"""How much of the routing result is the features and the regulariser: logistic
regression (the ``logreg`` router) over a grid of C on static, MiniLM and both
embeddings concatenated, on both ../shared/data sets, in one run.

For each setting it prints the test AIQ, the cost to reach 95 % and 100 % of the
best single model's accuracy, and the 5-fold out-of-fold AIQ on the training
data (what a selection that never looks at the test set would see), so one can
tell a real difference from the noise of one test split.

    .venv/bin/python benchmarks/routing_features.py [--data-dir ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from outcome_data import DATASETS, add_data_dir_argument, load_pair
from outcome_data import data_dir as outcome_data_dir

from routerllm.cli_args import DefaultsHelpFormatter
from routerllm.data.outcomes import OutcomeDataset
from routerllm.eval.outcome_eval import embed, evaluate_routing
from routerllm.routers.quality import QualityRouter

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FEATURES = ("static", "minilm", "static+minilm")


def features(
    train: OutcomeDataset, test: OutcomeDataset
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    by_encoder = {}
    for encoder in ("static", "minilm"):
        x_train, x_test = embed([train, test], encoder)
        by_encoder[encoder] = (np.asarray(x_train), np.asarray(x_test))
    both = tuple(np.hstack([by_encoder["static"][i], by_encoder["minilm"][i]]) for i in (0, 1))
    return {**by_encoder, "static+minilm": (both[0], both[1])}


def out_of_fold_aiq(data: OutcomeDataset, x_train: np.ndarray, c: float) -> float:
    """The out-of-fold AIQ the quality router's own selection computes, for one C."""
    from routerllm.routers.base import Candidate

    mean_cost = data.cost_matrix().mean(axis=0)  # per-call cost, else model size
    router = QualityRouter(
        [Candidate(m, float(c_)) for m, c_ in zip(data.models, mean_cost, strict=True)],
        c_grid=(c,),
        k_grid=(10,),
        weights=(1.0,),
        costs=mean_cost.tolist(),
    )
    router.fit(None, data.scores, data.models, embeddings=x_train)
    return float(router.selection["oof_aiq"])


def run(data_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in DATASETS:
        # Loaded once: every setting below trains and tests on these same datasets.
        train, test = load_pair(data_dir, name)
        feats = features(train, test)
        rows = []
        for feature in FEATURES:
            x_train, x_test = feats[feature]
            for c in C_GRID:
                ev = evaluate_routing(
                    train,
                    test,
                    ("logreg",),
                    embeddings=(x_train, x_test),
                    router_options={"logreg": {"C": c}},
                )
                row = ev.report["rows"]["logreg"]
                rows.append(
                    {
                        "features": feature,
                        "C": c,
                        "aiq": row["aiq"],
                        "cost_to_95": row["cost_to_95"],
                        "cost_to_best_accuracy": row["cost_to_best_accuracy"],
                        "oof_aiq": out_of_fold_aiq(train, x_train, c),
                    }
                )
        results[name] = rows
    return results


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_data_dir_argument(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data_dir = outcome_data_dir(args)
    if data_dir is None:
        return 2
    results = run(data_dir)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, rows in results.items():
        print(f"\n== {name}: logistic regression, test split vs 5-fold out-of-fold on train")
        print(
            f"{'features':<15}{'C':>6}{'AIQ':>8}{'cost->95%':>11}{'cost->100%':>12}{'OOF AIQ':>9}"
        )
        for r in rows:
            print(
                f"{r['features']:<15}{r['C']:>6g}{r['aiq']:>8.4f}{_pct(r['cost_to_95']):>11}"
                f"{_pct(r['cost_to_best_accuracy']):>12}{r['oof_aiq']:>9.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
