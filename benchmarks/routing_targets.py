"""Issue #3 targets on real outcome data: the quality-aware router vs the
logistic-regression and kNN baselines, on both ../shared/data sets, in one run.

* LLMRouter: train.json -> test.json with the test questions that also appear
  in train removed; cost = model size (B params).
* RouterBench MBPP: train.csv -> test.csv (overlap removed too); cost = the
  per-call USD cost in the data.

Every router sees the same embeddings (cached; by default both the static
encoder, the routers' default, and MiniLM) and the same lambda sweep. A paired bootstrap
over test prompts (``compare_routers``, as ``eval-routing --bootstrap``) gives the 90%
interval of each AIQ difference and the share of resamples each comparison wins, so noise
is visible.

    .venv/bin/python benchmarks/routing_targets.py [--data-dir ../shared/data] [--encoders static minilm]
        [--bootstrap 200] [--resplits N] [--train-size N] [--json]

``--train-size N`` trains every router on a seeded random N prompts of each
training set (the test sets stay whole): how the comparison changes with the
amount of outcome data, e.g. LLMRouter cut to MBPP's 299 training prompts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from outcome_data import (
    DATASETS,
    add_data_dir_argument,
    add_datasets_argument,
    ci_text,
    load_pair,
    split_intervals,
)
from outcome_data import data_dir as outcome_data_dir

from routerllm.checks import MAX_RESPLITS
from routerllm.cli_args import DefaultsHelpFormatter, encoder_arg, whole_number_arg, whole_range
from routerllm.data.outcome_files import load_outcomes
from routerllm.data.outcomes import OutcomeDataset
from routerllm.eval.outcome_eval import (
    MAX_RESAMPLES,
    compare_routers,
    evaluate_routing,
    split_dataset,
)

ROUTERS = ("quality", "logreg", "knn")


def subsample(data: OutcomeDataset, size: int | None, seed: int) -> OutcomeDataset:
    """A seeded random ``size`` prompts of ``data`` (all of it when ``size`` is None)."""
    if size is None or size >= len(data):
        return data
    return data.subset(np.sort(np.random.default_rng(seed).permutation(len(data))[:size]))


def run(
    name: str,
    data_dir: Path,
    encoder: str,
    n_boot: int,
    train_size: int | None = None,
) -> dict[str, Any]:
    train_path, test_path = (data_dir / p for p in DATASETS[name])
    train = subsample(load_outcomes(train_path), train_size, 0)
    start = time.perf_counter()
    ev = evaluate_routing(train, test_path, ROUTERS, encoder)
    result = ev.as_dict()
    result["seconds"] = time.perf_counter() - start
    result["bootstrap"] = compare_routers(ev, n_boot)["against"] if n_boot else {}
    rows = result["routers"]
    result["targets"] = {
        b: {
            "aiq": rows["quality"]["aiq"] > rows[b]["aiq"],
            "cost_to_best_accuracy": _lower(
                rows["quality"]["cost_to_best_accuracy"], rows[b]["cost_to_best_accuracy"]
            ),
        }
        for b in ROUTERS[1:]
    }
    return result


def _lower(a: float | None, b: float | None) -> bool:
    return a is not None and (b is None or a < b)


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.4f}"


def resplits(
    name: str,
    data_dir: Path,
    encoder: str,
    n: int,
    train_size: int | None = None,
) -> dict[str, Any]:
    """The same comparison over ``n`` seeded re-splits of train + (deduplicated) test,
    each with the original test size: the spread over training sets as well as
    test sets, which a bootstrap of one test split does not show. Each mean comes with
    two 90 % Student-t intervals (``mean_ci90``): one that treats the splits as
    independent, which they are not (they share prompts), so it is too narrow, and
    one corrected for that overlap (Nadeau and Bengio); None below two splits."""
    train, test = load_pair(data_dir, name)
    pooled = train.concat(test)
    diffs: dict[str, list[tuple[float, bool, bool, bool]]] = {b: [] for b in ROUTERS[1:]}
    aiqs: dict[str, list[float]] = {r: [] for r in ROUTERS}
    test_to_train = 0.0
    for seed in range(1, n + 1):
        split_train, split_test = split_dataset(pooled, len(test) / len(pooled), seed)
        split_train = subsample(split_train, train_size, seed)
        test_to_train = len(split_test) / len(split_train)
        ev = evaluate_routing(split_train, split_test, ROUTERS, encoder, seed=seed)
        rows = ev.report["rows"]
        q = rows["quality"]
        for r in ROUTERS:
            aiqs[r].append(rows[r]["aiq"])
        for b in diffs:
            diffs[b].append(
                (
                    q["aiq"] - rows[b]["aiq"],
                    q["aiq"] > rows[b]["aiq"],
                    _lower(q["cost_to_best_accuracy"], rows[b]["cost_to_best_accuracy"]),
                    q["cost_to_best_accuracy"] == rows[b]["cost_to_best_accuracy"],
                )
            )
    out: dict[str, Any] = {}
    for b, values in diffs.items():
        ci = split_intervals([v[0] for v in values], test_to_train)
        out[b] = {
            "aiq_diff_mean": ci["mean"],
            "aiq_diff_90ci": ci["90ci"],
            "aiq_diff_90ci_corrected": ci["90ci_corrected"],
            "aiq_wins": int(sum(v[1] for v in values)),
            "aiq_ties": int(sum(abs(v[0]) < 1e-12 for v in values)),  # e.g. the same choice
            "cost_to_best_wins": int(sum(v[2] for v in values)),
            "cost_to_best_ties": int(sum(v[3] for v in values)),  # e.g. neither reaches it
            "splits": len(values),
        }
    # Each router's own AIQ over the splits (mean and 90 % intervals), to compare encoders.
    out["aiq"] = {r: split_intervals(v, test_to_train) for r, v in aiqs.items()}
    out["test_to_train"] = test_to_train
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    add_data_dir_argument(ap)
    ap.add_argument("--encoders", nargs="+", type=encoder_arg, default=["static", "minilm"])
    add_datasets_argument(ap)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument(
        "--resplits",
        type=whole_number_arg(0, MAX_RESPLITS),
        default=0,
        help=f"also compare over N re-splits of train + test, {whole_range(0, MAX_RESPLITS)}",
    )
    ap.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="train on a random N prompts of each training set (all of it where N is not fewer)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.train_size is not None and args.train_size < 10:
        ap.error("--train-size must be at least 10")
    if not 1 <= args.bootstrap <= MAX_RESAMPLES:
        ap.error(f"--bootstrap: 1 to {MAX_RESAMPLES:,} resamples")
    data_dir = outcome_data_dir(args)
    if data_dir is None:
        return 2
    results = {
        f"{name} / {enc}": run(name, data_dir, enc, args.bootstrap, args.train_size)
        | {"encoder": enc}
        | (
            {"resplits": resplits(name, data_dir, enc, args.resplits, args.train_size)}
            if args.resplits
            else {}
        )
        for enc in args.encoders
        for name in args.datasets
    }
    if args.json:
        print(json.dumps(results, indent=2, default=float))
        return 0
    for name, r in results.items():
        print(
            f"\n== {name}: train {r['train_size']}, test {r['test_size']} (removed {r['removed_overlap']} "
            f"also in train), cost = {r['cost']}, encoder {r['encoder']}, {r['seconds']:.0f} s"
        )
        print(f"best single: {r['best_single']['name']} quality {r['best_single']['quality']:.3f}")
        print(
            f"{'router':<22}{'AIQ':>8}{'APGR':>8}{'CPT50':>8}{'CPT80':>8}{'maxacc':>8}{'acc@½':>8}{'cost→95%':>10}{'cost→100%':>11}"
            f"{'one setting: →95%':>19}{'→100%':>8}"
        )
        for row_name, row in r["routers"].items():
            if row_name.startswith("single:"):
                continue
            print(
                f"{row_name:<22}{_fmt(row['aiq']):>8}{_fmt(row['apgr']):>8}{_fmt(row['cpt50'] and row['cpt50'] / 100, True):>8}"
                f"{_fmt(row['cpt80'] and row['cpt80'] / 100, True):>8}{_fmt(row['max_accuracy']):>8}"
                f"{_fmt(row['acc_at_half_best_cost']):>8}{_fmt(row['cost_to_95'], True):>10}{_fmt(row['cost_to_best_accuracy'], True):>11}"
                f"{_fmt(row['cost_to_95_one_setting'], True):>19}{_fmt(row['cost_to_best_accuracy_one_setting'], True):>8}"
            )
        if r["selection"].get("quality"):
            print(f"quality router's own choice (5-fold on train): {r['selection']['quality']}")
        for b, t in r["targets"].items():
            ci = r["bootstrap"].get(b, {})
            print(
                f"quality vs {b}: AIQ better: {t['aiq']}; cost to best accuracy lower: {t['cost_to_best_accuracy']}"
                + (
                    f"; 90% paired-bootstrap interval of AIQ diff {ci['aiq_diff_90ci'][0]:+.4f}..{ci['aiq_diff_90ci'][1]:+.4f}, "
                    f"AIQ higher in {ci['share_aiq_higher']:.1%} of resamples, best accuracy "
                    f"reached cheaper in {ci['share_best_accuracy_cheaper']:.1%}"
                    if ci
                    else ""
                )
            )
        splits = r.get("resplits", {})
        for b, rs in ((b, splits[b]) for b in ROUTERS[1:] if b in splits):
            print(
                f"over {rs['splits']} re-splits, quality vs {b}: AIQ diff {rs['aiq_diff_mean']:+.4f} "
                f"(90% t-interval {ci_text(rs['aiq_diff_90ci_corrected'])} corrected for the "
                f"data the splits share; {ci_text(rs['aiq_diff_90ci'])} if they were "
                f"independent), AIQ better in {rs['aiq_wins']} "
                f"(equal in {rs['aiq_ties']}), "
                f"cost to best accuracy lower in {rs['cost_to_best_wins']} "
                f"(equal in {rs['cost_to_best_ties']}, e.g. neither reaches it)"
            )
        if splits:
            print("mean AIQ over the re-splits (90% t-interval corrected for shared data): " + ", ".join(
                f"{name} {a['mean']:.4f} ({ci_text(a['90ci_corrected'])})"
                for name, a in splits["aiq"].items()
            ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
