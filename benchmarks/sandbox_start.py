"""What starting a sandboxed program costs, in a small harness and in one holding memory.

``run_program("assert 1 + 1 == 2")`` ``--runs`` times in this process as it is (small),
then again once it holds ``--hold-mb`` MB of touched memory (as a HumanEval run or a
server with a model and torch loaded does), the two alternating round by round, each
first in every other round; per run it prints the wall time, this process's (the
harness's) user and system CPU and its children's (the sandboxed processes'), for each
round and the medians. A start that forks the harness costs more the more it holds (its
page tables copied, then copy-on-write faults); one that vforks does not.

    .venv/bin/python benchmarks/sandbox_start.py [--hold-mb 1500] [--runs 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from machine import machine_line

from routerllm.cli_args import (
    TIMED_REPEATS_RANGE,
    DefaultsHelpFormatter,
    timed_repeats_arg,
    whole_number_arg,
)
from routerllm.eval.sandbox import isolation_text, run_program

PROGRAM = "assert 1 + 1 == 2\n"
MAX_HOLD_MB, MAX_RUNS = 65_536, 1_000
FIELDS = ("wall", "harness user", "harness sys", "child user", "child sys")


def _clock() -> tuple[float, ...]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)  # fmt: skip
    return (time.perf_counter(), own.ru_utime, own.ru_stime, children.ru_utime, children.ru_stime)


def _per_run_ms(runs: int) -> tuple[float, ...]:
    """Each of :data:`FIELDS`, in ms a run, over ``runs`` runs of :data:`PROGRAM`."""
    before = _clock()
    for _ in range(runs):
        result = run_program(PROGRAM)
        if not result.passed:
            raise SystemExit(f"the program did not pass: {result.status} ({result.detail})")
    after = _clock()
    return tuple((b - a) / runs * 1000 for a, b in zip(before, after, strict=True))


def _held(mb: int) -> bytearray:
    """``mb`` MB, every page written: resident, as a loaded model's memory is."""
    memory = bytearray(mb * 2**20)
    for i in range(0, len(memory), 4096):
        memory[i] = 1
    return memory


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--hold-mb", type=whole_number_arg(1, MAX_HOLD_MB), default=1500, help=f"MB the large harness holds, 1 to {MAX_HOLD_MB:,}")  # fmt: skip
    ap.add_argument("--runs", type=whole_number_arg(1, MAX_RUNS), default=20, help=f"programs run in each round, 1 to {MAX_RUNS:,}")  # fmt: skip
    ap.add_argument("--rounds", type=timed_repeats_arg, default=3, help=f"rounds of each, alternating, {TIMED_REPEATS_RANGE}")  # fmt: skip
    args = ap.parse_args()
    print(machine_line())
    print(f"sandbox: {isolation_text()}")
    run_program(PROGRAM)  # probed (once a process) before any round is timed
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = ("small", f"holding {args.hold_mb} MB")
    figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names[:: -1 if round_ % 2 else 1]:
            held = _held(args.hold_mb) if name != "small" else None
            figures[name].append(_per_run_ms(args.runs))
            del held
            line = ", ".join(f"{f} {v:.1f}" for f, v in zip(FIELDS, figures[name][-1], strict=True))  # fmt: skip
            print(f"round {round_ + 1} {name}: ms a run: {line}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, rounds in figures.items():
        medians = [statistics.median(column) for column in zip(*rounds, strict=True)]
        line = ", ".join(f"{f} {v:.1f}" for f, v in zip(FIELDS, medians, strict=True))
        print(f"median {name} ({len(rounds)} rounds of {args.runs}): ms a run: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
