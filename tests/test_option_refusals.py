"""Every bounded option of every command is refused the same way when out of range:
argparse's usage line, then ``routerllm COMMAND: error: argument --X: ...``, exit 2,
before any work. Until 2026-12-06 ``demo --repeats 101``, ``serve --port 70000``,
``serve --max-waiting -1``, ``eval-routing --bootstrap 20000``, ``generate-data --n 10``
and train's classifier numbers (``--epochs 0``) were checked by their command: a bare
``error:`` line, exit 1, no usage, unlike ``--max-new-tokens 0``."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerllm.checks import (
    MAX_CASCADE_BUDGET,
    MAX_EPOCHS,
    MAX_NEW_TOKENS,
    MAX_PORT,
    MAX_RESAMPLES,
    MAX_SEED,
    MAX_SYNTHETIC_PROMPTS,
)
from routerllm.demo_cli import MAX_REPEATS

from .conftest import cli_in_process

#: (command and its required arguments, the option and value out of range, the end of
#: the error line). ``{tmp}`` is the test's folder: nothing may appear in it.
CASES = [
    (["demo"], ["--repeats", "0"], "argument --repeats: 0 is out of range: give 1 to 100"),
    (
        ["demo"],
        ["--repeats", str(MAX_REPEATS + 1)],
        "argument --repeats: 101 is out of range: give 1 to 100",
    ),
    (["demo"], ["--max-new-tokens", "0"], f"give 1 to {MAX_NEW_TOKENS:,}"),
    (["route", "x"], ["--max-new-tokens", "0"], f"give 1 to {MAX_NEW_TOKENS:,}"),
    (
        ["serve"],
        ["--port", str(MAX_PORT + 1)],
        f"argument --port: 65536 is out of range: give 0 to {MAX_PORT:,}",
    ),
    (["serve"], ["--port", "-1"], "argument --port: -1 is out of range"),
    (
        ["serve"],
        ["--max-waiting", "-1"],
        "argument --max-waiting: -1 is out of range: give a whole number >= 0",
    ),
    (
        ["serve"],
        ["--max-connections-per-client", "-1"],
        "argument --max-connections-per-client: -1 is out of range: give a whole number >= 0",
    ),
    (
        ["generate-data", "--out", "{tmp}/d"],
        ["--n", "10"],
        "argument --n: 10 is out of range: give 40 to 1,000,000",
    ),
    (
        ["generate-data", "--out", "{tmp}/d"],
        ["--n", str(MAX_SYNTHETIC_PROMPTS + 1)],
        "argument --n: 1000001 is out of range: give 40 to 1,000,000",
    ),
    (
        ["generate-data", "--out", "{tmp}/d", "--tiny-codes", "{tmp}/t.jsonl"],
        ["--n", "0"],
        "argument --n: 0 is out of range: give a whole number >= 3",
    ),
    (
        ["generate-data", "--out", "{tmp}/d"],
        ["--seed", str(MAX_SEED + 1)],
        f"give 0 to {MAX_SEED:,}",
    ),
    (
        ["train", "--data", "{tmp}/d.json", "--out", "{tmp}/o"],
        ["--epochs", "0"],
        f"argument --epochs: 0 is out of range: give 1 to {MAX_EPOCHS:,}",
    ),
    (
        ["train", "--data", "{tmp}/d.json", "--out", "{tmp}/o"],
        ["--batch-size", "0"],
        "argument --batch-size: 0 is out of range",
    ),
    (
        ["train", "--data", "{tmp}/d.json", "--out", "{tmp}/o"],
        ["--learning-rate", "0"],
        "argument --learning-rate: 0 must be a finite number > 0",
    ),
    (
        ["train", "--data", "{tmp}/d.json", "--out", "{tmp}/o"],
        ["--warmup-steps", "-1"],
        "argument --warmup-steps: -1 is out of range",
    ),
    (
        ["test", "--data", "{tmp}/d.json", "--router-type", "rules"],
        ["--seed", "-1"],
        "argument --seed: -1 is out of range",
    ),
    (
        ["eval-routing", "--data", "{tmp}/d.json"],
        ["--bootstrap", str(MAX_RESAMPLES + 1)],
        f"argument --bootstrap: 10001 is out of range: give 0 to {MAX_RESAMPLES:,}",
    ),
    (
        ["eval-routing", "--data", "{tmp}/d.json"],
        ["--bootstrap", "-1"],
        "argument --bootstrap: -1 is out of range",
    ),
    (
        ["eval-routing", "--data", "{tmp}/d.json"],
        ["--test-fraction", "1"],
        "argument --test-fraction: 1 must be a number between 0 and 1",
    ),
    (["humaneval", "--out", "{tmp}/h"], ["--limit", "0"], "argument --limit: 0 is out of range"),
    (["humaneval", "--out", "{tmp}/h"], ["--folds", "0"], "argument --folds: 0 is out of range"),
    (
        ["humaneval", "--out", "{tmp}/h"],
        ["--cascade-budget", "0"],
        "argument --cascade-budget: 0 must be a finite number > 0",
    ),
    # until 2026-12-07 refused by the run's plan, after the imports: a bare error line
    (
        ["humaneval", "--out", "{tmp}/h"],
        ["--cascade-budget", f"{MAX_CASCADE_BUDGET + 1:g}"],
        f"argument --cascade-budget: 11 is out of range: give a number > 0 and at most {MAX_CASCADE_BUDGET:g}",
    ),
    (
        ["train-gate", "--run", "{tmp}/r", "--out", "{tmp}/g"],
        ["--folds", "1"],
        "argument --folds: 1 is out of range",
    ),
    (
        ["train-gate", "--run", "{tmp}/r", "--out", "{tmp}/g"],
        ["--budget", "0"],
        "argument --budget: 0 must be a finite number > 0",
    ),
]


@pytest.mark.parametrize(
    ("command", "option", "said"), CASES, ids=[f"{c[0]} {' '.join(o)}" for c, o, _ in CASES]
)
def test_an_out_of_range_option_is_a_usage_error_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    option: list[str],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # a log or output a command would start lands here
    (tmp_path / "t.jsonl").write_text("")  # a --tiny-codes file that is there
    before = sorted(tmp_path.iterdir())
    argv = [a.format(tmp=tmp_path) for a in command] + option
    proc = cli_in_process(*argv)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[0].startswith(f"usage: routerllm {command[0]} "), proc.stderr
    assert lines[-1].startswith(f"routerllm {command[0]}: error: "), proc.stderr
    assert lines[-1].endswith(said) or said in lines[-1], proc.stderr
    assert proc.stdout == "" and sorted(tmp_path.iterdir()) == before
