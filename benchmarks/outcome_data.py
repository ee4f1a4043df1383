"""The two routing-outcome sets in ../shared/data that the routing benchmarks read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from routerllm.cli_args import calibration_target_arg, seed_arg

if TYPE_CHECKING:
    from routerllm.data.outcomes import OutcomeDataset
    from routerllm.routers.base import Candidate

#: name -> (train file, test file), relative to the data directory.
DATASETS = {
    "llmrouter": ("llmrouter/train.json", "llmrouter/test.json"),
    "routerbench_mbpp": ("routerbench_mbpp/train.csv", "routerbench_mbpp/test.csv"),
}
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def add_data_dir_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))


def add_datasets_argument(ap: argparse.ArgumentParser, default: list[str] | None = None) -> None:
    """``--datasets``: the sets to run (``default``: all); ``data_dir`` then checks only
    their files."""
    ap.add_argument(
        "--datasets", nargs="+", choices=list(DATASETS), default=default or list(DATASETS)
    )


def add_split_arguments(ap: argparse.ArgumentParser, targets: list[str]) -> None:
    """The options of a benchmark that trains and calibrates routers on each dataset,
    once per split seed: ``--data-dir --datasets --seeds --targets --json``."""
    add_data_dir_argument(ap)
    add_datasets_argument(ap)
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=[0, 1, 2])
    ap.add_argument("--targets", nargs="+", type=calibration_target_arg, default=targets)
    ap.add_argument("--json", action="store_true")


def data_dir(args: argparse.Namespace) -> Path | None:
    """The data directory, or None (with a message on stderr) when it, or a file of a
    dataset the benchmark reads (``args.datasets``, else all), is missing: found now,
    not after minutes spent on the sets before it."""
    path = Path(args.data_dir)
    if not path.is_dir():
        print(f"no outcome data at {path} (give --data-dir)", file=sys.stderr)
        return None
    names = getattr(args, "datasets", None) or list(DATASETS)
    missing = [file for name in names for file in DATASETS[name] if not (path / file).is_file()]
    if missing:
        leave_out = ", or leave its set out of --datasets" if hasattr(args, "datasets") else ""
        print(f"no {', '.join(missing)} in {path} (give --data-dir{leave_out})", file=sys.stderr)
        return None
    return path


def load_pair(data_dir: Path, name: str) -> tuple[OutcomeDataset, OutcomeDataset]:
    """A dataset's train and test sets, without the test prompts that are also in train."""
    from routerllm.data.outcome_files import load_outcomes
    from routerllm.data.outcomes import without

    train_path, test_path = (data_dir / p for p in DATASETS[name])
    train = load_outcomes(train_path)
    test, _ = without(load_outcomes(test_path), train)
    return train, test


def mean_ci90(values: np.ndarray, test_to_train: float = 0.0) -> tuple[float, float, float]:
    """Mean of per-split differences and its two-sided 90 % Student-t interval.

    With ``test_to_train`` = 0 the interval treats the splits as independent samples,
    which re-splits of one data set are not (their training and test sets share
    prompts), so it is too narrow. Nadeau and Bengio's correction (2003, "Inference for
    the generalization error") for J re-splits with n_test / n_train = ``test_to_train``
    widens the variance of the mean from s^2 / J to (1 / J + n_test / n_train) s^2: a
    heuristic, not an exact interval, but the usual honest one for resampled splits.
    NaN bounds below two splits."""
    from scipy.stats import t

    d = np.asarray(values, dtype=float)
    if len(d) < 2:
        return float(d.mean()), float("nan"), float("nan")
    half = float(t.ppf(0.95, len(d) - 1) * d.std(ddof=1) * np.sqrt(1 / len(d) + test_to_train))
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def split_intervals(values: list[float], test_to_train: float) -> dict[str, Any]:
    """The mean of ``values`` over re-splits, its 90 % t-interval as if the splits were
    independent (``90ci``) and corrected for their shared data (``90ci_corrected``):
    [lo, hi], or None below two splits (never NaN, which is not JSON)."""
    d = np.array(values, dtype=float)
    mean, lo, hi = mean_ci90(d)
    _, clo, chi = mean_ci90(d, test_to_train)
    if len(d) < 2:
        return {"mean": mean, "90ci": None, "90ci_corrected": None}
    return {"mean": mean, "90ci": [lo, hi], "90ci_corrected": [clo, chi]}


def ci_text(ci: list[float] | None, digits: int = 4) -> str:
    """``lo..hi`` with signs, or ``-`` where there is no interval (one split)."""
    return "-" if ci is None else f"{ci[0]:+.{digits}f}..{ci[1]:+.{digits}f}"


class Split(NamedTuple):
    """What a benchmark that calibrates routers needs of one split seed: the cost kind,
    each model's mean training cost (what routers decide by), the test calls' costs and
    the costliest model's mean of them, the routers' view of the models, and the 80 %
    of train they are fitted on and the 20 % they are calibrated on."""

    cost: str
    mean_cost: np.ndarray
    test_costs: np.ndarray
    top: float
    candidates: list[Candidate]
    fit_on: OutcomeDataset
    held_out: OutcomeDataset


def calibration_split(train: OutcomeDataset, test: OutcomeDataset, seed: int) -> Split:
    from routerllm.eval.outcome_eval import outcome_candidates, split_dataset

    cost = train.cost_kind("auto")
    mean_cost = train.cost_matrix(cost).mean(axis=0)
    test_costs = test.cost_matrix(cost)
    fit_on, held_out = split_dataset(train, 0.2, seed)
    top = float(test_costs.mean(axis=0).max())
    return Split(cost, mean_cost, test_costs, top, outcome_candidates(train, mean_cost), fit_on, held_out)  # fmt: skip
