"""A benchmark takes the bounded options ``routerllm`` bounds with the same parsers: until
2026-12-06 ``benchmarks/loss_ablation.py --epochs 10000000000`` trained "forever" where
``routerllm train`` refuses it in one line, and a --seed numpy refuses failed after the
benchmark's work had begun. Each script is run as a user runs it; its parser refuses
the value before any work (nothing on stdout, in a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from routerllm.checks import (
    MAX_BENCHMARK_LOG_ROWS,
    MAX_BENCHMARK_REQUESTS,
    MAX_ENCODER_PROMPTS,
    MAX_EPOCHS,
    MAX_GATE_FOLDS,
    MAX_NEW_TOKENS,
    MAX_RESPLITS,
    MAX_SEED,
    MAX_SYNTHETIC_PROMPTS,
    MAX_TIMED_CHECKS,
    MAX_TIMED_REPEATS,
    MIN_GATE_FOLDS,
)

from .conftest import benchmark_in_process

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "option", "low", "high"),
    [
        ("loss_ablation", "--epochs", 1, MAX_EPOCHS),
        ("carbon_predictor", "--seed", 0, MAX_SEED),
        ("synthetic_data", "--seed", 0, MAX_SEED),
        ("server_overhead", "--max-tokens", 1, MAX_NEW_TOKENS),
        ("streaming", "--max-tokens", 1, MAX_NEW_TOKENS),
        # until 2026-12-06 unbounded: a huge count ran for ever, or (synthetic_data) failed
        # with a traceback, as did --n 0 (ZeroDivisionError) and -1
        ("synthetic_data", "--n", 40, MAX_SYNTHETIC_PROMPTS),
        ("report_scaling", "--repeat", 1, MAX_TIMED_REPEATS),
        ("encoder_latency", "--repeats", 1, MAX_TIMED_REPEATS),
        ("sandbox_overhead", "--rounds", 1, MAX_TIMED_REPEATS),
        # --n 1000000000 built its prompts first: a MemoryError
        ("server_overhead", "--n", 2, MAX_BENCHMARK_REQUESTS),
        ("streaming", "--n", 1, MAX_BENCHMARK_REQUESTS),
        # --n 1000000000: the templates' DataError, a traceback; fewer ran on for minutes
        ("train_default_complexity", "--n", 1, MAX_SYNTHETIC_PROMPTS),
        ("loss_ablation", "--n", 1, MAX_SYNTHETIC_PROMPTS),
        # a log grown, 500 rows a statement, until Ctrl-C
        ("report_scaling", "--sizes", 500, MAX_BENCHMARK_LOG_ROWS),
        ("budget_overhead", "--sizes", 1, MAX_BENCHMARK_LOG_ROWS),
    ],
)
def test_a_value_beyond_the_clis_bound_is_refused_in_one_line_before_any_work(
    script: str, option: str, low: int, high: int
) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), option, str(high + 1)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"{script}.py: error: argument {option}: {high + 1} is out of range: give {low:,} to "
        f"{high:,}"
    )


def test_synthetic_data_refuses_too_few_prompts_to_split_in_one_line() -> None:
    """--n 0 and --n 3 left the test split empty: ZeroDivisionError, a traceback."""
    for n in ("0", "39"):
        out = subprocess.run(
            [sys.executable, str(BENCHMARKS / "synthetic_data.py"), "--n", n],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines()[-1] == (
            f"synthetic_data.py: error: argument --n: {n} is out of range: give 40 to "
            f"{MAX_SYNTHETIC_PROMPTS:,}"
        )


#: Counts bounded since the second pass of 2026-12-06, each run in this process (a
#: second each, not two): a few zeros too many ran until Ctrl-C, or (``--prompts``) built
#: its prompts until a MemoryError.
IN_PROCESS = [
    ("quality_selection", "--resplits", 1, MAX_RESPLITS),
    ("routing_targets", "--resplits", 0, MAX_RESPLITS),
    ("serving_gate", "--folds", MIN_GATE_FOLDS, MAX_GATE_FOLDS),
    ("encoder_latency", "--prompts", 1, MAX_ENCODER_PROMPTS),
    ("budget_overhead", "--requests", 1, MAX_TIMED_CHECKS),
]


@pytest.mark.parametrize(("script", "option", "low", "high"), IN_PROCESS)
def test_a_count_beyond_its_bound_is_refused_in_one_line_and_its_help_says_it(
    script: str, option: str, low: int, high: int, tmp_path: Path
) -> None:
    # serving_gate's --run is required: given, so that the count is what is refused
    needed = ["--run", str(tmp_path / "run")] if script == "serving_gate" else []
    for outside in (low - 1, high + 1, 10**30):
        out = benchmark_in_process(script, *needed, option, str(outside))
        assert (out.returncode, out.stdout) == (2, ""), out.stderr[-500:]
        assert out.stderr.strip().splitlines()[-1] == (
            f"{script}.py: error: argument {option}: {outside} is out of range: give "
            f"{low:,} to {high:,}"
        )
    help_text = " ".join(benchmark_in_process(script, "--help").stdout.split())
    # the option's own entry: from its name to the next option's
    entry = help_text.split(f" {option} ", 1)[1].split(" --", 1)[0]
    assert f"{low:,} to {high:,}" in entry, entry
