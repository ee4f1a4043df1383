"""A researcher's own outcome files, odd but valid: what loads is read as written, and
the metrics on it are the README's (hand-computed here)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.curves import OperatingPoint
from routerllm.eval.routing_metrics import routing_report


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_prompt_that_is_a_list_of_numbers_is_kept_as_written(tmp_path: Path) -> None:
    # RouterBench writes a prompt as a list literal of strings, which is unwrapped; a
    # prompt of one's own that is itself a list ("[3, 1, 2]", to sort) is text, as a
    # router is asked it
    rows = [["[3, 1, 2]", 1, 0.1], ["[[1], 2] flatten", 0, 0.1], ["['Sort it', 'fast']", 1, 0.1],
            ["['x', 2]", 0, 0.1]]  # fmt: skip
    path = write_csv(tmp_path / "own.csv", ["prompt", "m", "m|total_cost"], rows)
    assert load_outcomes(path).prompts == [
        "[3, 1, 2]", "[[1], 2] flatten", "Sort it\nfast", "['x', 2]"
    ]  # fmt: skip


def test_a_prompt_too_deep_for_pythons_parser_is_read_as_written(tmp_path: Path) -> None:
    deep = "[" + "1+" * 50_000 + "1]"  # ast.literal_eval: RecursionError
    path = write_csv(tmp_path / "deep.csv", ["prompt", "m", "m|total_cost"], [[deep, 1, 0.1]])
    assert load_outcomes(path).prompts == [deep]


def test_models_of_one_cost_say_that_aiq_is_floored_at_the_best_model() -> None:
    # Four 7B models compared by size (or every call free): no cost range to average
    # over, and every curve starts at the cheapest model's point, which among models of
    # one cost is the best: a router worse than it showed its AIQ, without a word
    scores = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # a 0.75, b 0.5
    worse = [OperatingPoint(7.0, 0.5)]  # a router that always picks b
    report = routing_report({"router": worse}, scores, [7.0, 7.0], model_names=["a", "b"])
    row = report["rows"]["router"]
    assert row["max_accuracy"] == 0.5 and row["aiq"] == 0.75  # as defined: Q(7) on the hull
    assert report["notes"][-1] == (
        "aiq is the best quality a curve reaches at the one cost every model has (7): "
        "there is no cost range to average over, and every curve starts at the cheapest "
        "model's point (a, also the best), so no row's aiq is below a's 0.750; compare "
        "max_accuracy"
    )
