"""What one of the sandbox's namespaces costs: ``check_many`` on HumanEval's canonical solutions.

All 164 canonical solutions go through ``check_many(..., workers=2)`` with the isolation
probed on this machine, and again with one namespace given up (``--without``: the mount
namespace by default; ``own_users``: the uid of each program's own, every program then
``nobody``; ``all``: every one and the uids, as before 2026-12-05), the two alternating
round by round, each first in every other round, so that the machine's load falls on
both; it prints each round and the medians. The uids are made as root only; an ordinary
user makes the namespaces in a user namespace where the kernel allows one (``all`` gives
that up too).

    .venv/bin/python benchmarks/sandbox_overhead.py [--without mountns|pidns|netns|ipcns|own_users|all] [--rounds 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

from machine import machine_line

from routerllm.cli_args import (
    TIMED_REPEATS_RANGE,
    DefaultsHelpFormatter,
    count_arg,
    timed_repeats_arg,
)
from routerllm.data.humaneval import load_humaneval
from routerllm.eval import sandbox

#: The namespaces of ``_Isolation`` that ``--without`` may give up, and its own uids.
_NAMESPACES = ("mountns", "pidns", "netns", "ipcns", "own_users")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--without", choices=(*_NAMESPACES, "all"), default="mountns")
    ap.add_argument("--rounds", type=timed_repeats_arg, default=6, help=f"runs of each, alternating, {TIMED_REPEATS_RANGE}")  # fmt: skip
    # a pool makes a thread only for a check waiting: more than 164 run no more at once
    ap.add_argument("--workers", type=count_arg, default=2, help="checks run at once (at most one a problem: 164)")  # fmt: skip
    args = ap.parse_args()
    executable, probed = sandbox._interpreter(sys.executable)
    variants = {
        "probed": probed,
        f"without {args.without}": dataclasses.replace(
            probed,
            **dict.fromkeys(
                (*_NAMESPACES, "userns") if args.without == "all" else [args.without], False
            ),
        ),
    }
    items = [(problem, None) for problem in load_humaneval()]
    print(machine_line())
    print(f"probed isolation: {probed} ({executable})")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        # first in one round, second in the next: a load that rises within each round
        # falls on both alike
        order = list(variants.items())[:: -1 if round_ % 2 else 1]
        for name, isolation in order:
            sandbox._interpreter = lambda _, isolation=isolation: (executable, isolation)  # type: ignore[assignment]
            start = time.perf_counter()
            results = sandbox.check_many(items, workers=args.workers)
            times[name].append(time.perf_counter() - start)
            passed = sum(result.passed for result in results)
            print(
                f"round {round_ + 1} {name}: {times[name][-1]:.2f} s, {passed}/{len(items)} passed"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, seconds in times.items():
        print(f"median {name}: {statistics.median(seconds):.2f} s ({len(seconds)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
