"""What train-gate's checks of a run's answers cost a call, and a second call on the same run.

``gate_from_run`` (what ``routerllm train-gate --run DIR`` runs, without the config's
checks and the save) is called twice on the run in ``--run`` (a ``routerllm humaneval``
run with the gated-cascade system), the store of checks empty before the first
(``$ROUTERLLM_CACHE`` a folder of this script's own, removed afterwards). For each call it
prints the wall time, this process's CPU time, the sandboxed programs' CPU time (the
children's), how many programs the sandbox started, the time spent checking the answers
(``verify_completion``: its share of the call's wall time), the checks kept from an
earlier call and the checks' kWh a request the gate is given. With ``--codecarbon``
the checks are measured by CodeCarbon, as train-gate measures them (the country USA);
else not measured, as with carbon tracking off. Run it with an older source tree first
on ``PYTHONPATH`` (a checkout's ``src``) to time a second call that checks every answer
again, as every call did before 2026-12-08.

    .venv/bin/python benchmarks/train_gate_checks.py --run DIR [--ladder qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--folds 5] [--codecarbon]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from machine import machine_line

from routerllm.carbon.meter import CarbonMeter, NullMeter
from routerllm.cli_args import GATE_FOLDS_RANGE, DefaultsHelpFormatter, gate_folds_arg
from routerllm.eval import prompt_examples, sandbox


class _Tally:
    """The programs the sandbox starts, and the wall time spent checking answers."""

    def __init__(self) -> None:
        self.programs, self.checks_s = 0, 0.0

    def counting(self, start: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.programs += 1
            return start(*args, **kwargs)

        return counted

    def timing(self, check: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return check(*args, **kwargs)
            finally:
                self.checks_s += time.perf_counter() - began

        return timed


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--run", required=True, help="a routerllm humaneval run's folder (--out)")
    ap.add_argument("--ladder", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"],
                    help="the run's models, smallest first: the gate's are the last two")  # fmt: skip
    ap.add_argument("--folds", type=gate_folds_arg, default=5, help=f"the gate's folds, {GATE_FOLDS_RANGE}")  # fmt: skip
    ap.add_argument("--codecarbon", action="store_true", help="measure the checks with CodeCarbon")  # fmt: skip
    args = ap.parse_args()
    from routerllm.eval.transfer import gate_from_run

    tally = _Tally()
    sandbox._start = tally.counting(sandbox._start)  # type: ignore[method-assign]
    prompt_examples.verify_completion = tally.timing(prompt_examples.verify_completion)  # type: ignore[method-assign]
    meter: CarbonMeter = NullMeter()
    if args.codecarbon:
        from routerllm.carbon.codecarbon_meter import CodeCarbonMeter

        meter = CodeCarbonMeter("USA")
    print(machine_line())
    print(f"run: {args.run}, gate from {args.ladder[-2]} to {args.ladder[-1]}, "
          f"{args.folds} folds, checks measured with: {meter.method}")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="train-gate-checks-") as cache:
            os.environ["ROUTERLLM_CACHE"] = cache
            for call in ("first", "second"):
                tally.programs, tally.checks_s = 0, 0.0
                wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu_s()
                gate = gate_from_run(args.run, args.ladder, 0.7, args.folds, meter=meter)
                wall = time.perf_counter() - wall
                cpu, children = time.process_time() - cpu, _children_cpu_s() - children
                print(
                    f"{call} call: {wall:.2f} s wall, {cpu:.2f} s CPU here, {children:.2f} s "
                    f"CPU in sandboxed programs; {tally.programs} programs run for "
                    f"{gate.about['problems']} answers, checks {tally.checks_s:.2f} s "
                    f"({tally.checks_s / wall:.0%} of the wall time); "
                    f"{gate.about.get('checks_kept', 'none (no store)')} checks kept; "
                    f"check_kwh {gate.check_kwh:.3e} a request; threshold {gate.threshold:.6g}"
                )
    finally:
        meter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
