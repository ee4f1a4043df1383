"""A researcher's own outcome files, odd but valid: what loads is read as written, and
the metrics on it are the README's (hand-computed here)."""

from __future__ import annotations

import csv
from pathlib import Path

from routerllm.data.outcome_files import load_outcomes


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
