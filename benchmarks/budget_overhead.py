"""What the budgets' window sums cost a request, as a day's traffic grows.

A log holding ``size`` requests spread over the last day (rows copied in a temporary
folder) gets ``--requests`` more, one at a time through ``RequestLog.append``; before
each, the budgets' check asks what the hourly and daily windows spent. Timed two ways in
the same run: ``RequestLog.spent`` (each window's last sum moved), and the window summed
whole, as every check did until 2026-12-04. The median ms a check (both windows).
Then the daily window is made spent, and a refused request's retry time is timed
(``CarbonBudget.choose``, reading the window's oldest rows only), against reading the
whole window's spending, as each refusal did until 2026-12-04 (median of 5).

    .venv/bin/python benchmarks/budget_overhead.py [--sizes 10000 100000 500000] [--requests 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from machine import machine, machine_line

from routerllm.carbon.budget import CarbonBudget
from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import Measurement
from routerllm.carbon.request_log import RequestLog
from routerllm.checks import MAX_BENCHMARK_LOG_ROWS, MAX_TIMED_CHECKS
from routerllm.cli_args import DefaultsHelpFormatter, whole_number_arg, whole_range
from routerllm.config import BudgetConfig
from routerllm.exceptions import BudgetExceededError

WINDOWS = (timedelta(hours=1), timedelta(days=1))
#: refused requests timed, and reads of the whole window beside them
REFUSALS = 5
COLUMNS = "prompt_sha256, prompt_chars, model, router, confidence, prompt_tokens, completion_tokens, latency_s, energy_kwh, co2_kg, cost_usd, tag, finish_reason"  # fmt: skip
WHOLE = "SELECT COALESCE(SUM(co2_kg), 0), COALESCE(SUM(cost_usd), 0) FROM requests WHERE timestamp >= ? AND timestamp <= ?"  # fmt: skip


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _record(when: datetime) -> RequestRecord:
    generation = Measurement("llm_inference", 1.0, 2e-6, 1e-6, "codecarbon:measured")
    return RequestRecord(
        id=uuid.uuid4().hex, timestamp=_when(when), prompt_sha256="0" * 64, prompt_chars=40,
        model="m", router="rules", confidence=1.0, prompt_tokens=20, completion_tokens=10,
        latency_s=1.0, cost_usd=1e-5, components={"llm_inference": generation},
        tag="bench", finish_reason="stop",
    )  # fmt: skip


def _log(folder: Path, size: int, now: datetime) -> RequestLog:
    log = RequestLog(folder / "requests.sqlite")
    log.append(_record(now - timedelta(days=2)))
    db = log._db  # noqa: SLF001 - set-up only: copies of the logged row
    with db:
        db.executemany(
            f"INSERT INTO requests (id, timestamp, {COLUMNS}) SELECT ?, ?, {COLUMNS} FROM requests LIMIT 1",  # fmt: skip
            (
                (f"copy{i}", _when(now - timedelta(seconds=86_000 * i / size))) for i in range(size)
            ),  # fmt: skip
        )
    return log


def measure(size: int, requests: int) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    out = {}
    for way in ("moved", "summed_whole"):
        with tempfile.TemporaryDirectory() as tmp:
            log = _log(Path(tmp), size, now)
            times = []
            for i in range(requests):
                at = now + timedelta(seconds=0.1 * (i + 1))
                start = time.perf_counter()
                for width in WINDOWS:
                    if way == "moved":
                        log.spent(_when(at - width), _when(at))
                    else:
                        log._db.execute(WHOLE, (_when(at - width), _when(at))).fetchone()  # noqa: SLF001
                times.append(time.perf_counter() - start)
                log.append(_record(at))
            if way == "moved":
                out.update(_refusal(log, now + timedelta(seconds=0.1 * requests)))
            log.close()
        out[f"{way}_ms"] = statistics.median(times) * 1000
    return out


def _refusal(log: RequestLog, now: datetime) -> dict[str, float]:
    """The ms a refused request's retry time takes, and reading the whole window."""
    spent = log.spent(_when(now - WINDOWS[1]), _when(now)).co2_kg
    config = BudgetConfig.model_validate({"co2_kg": {"daily": spent * 0.999}})
    budget = CarbonBudget(config, log, lambda: now)
    refusal, whole = [], []
    for _ in range(REFUSALS):
        start = time.perf_counter()
        try:
            budget.choose("m", [], False, lambda m: None, {}, budget.status())
        except BudgetExceededError:
            refusal.append(time.perf_counter() - start)
        start = time.perf_counter()
        list(log.spending(_when(now - WINDOWS[1])))
        whole.append(time.perf_counter() - start)
    assert len(refusal) == REFUSALS, "the daily window was not spent"
    return {"refusal_ms": statistics.median(refusal) * 1000, "read_whole_window_ms": statistics.median(whole) * 1000}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter)  # fmt: skip
    ap.add_argument("--sizes", nargs="+", type=whole_number_arg(1, MAX_BENCHMARK_LOG_ROWS), default=[10_000, 100_000, 500_000], help=f"requests in the day's log, {whole_range(1, MAX_BENCHMARK_LOG_ROWS)}")  # fmt: skip
    ap.add_argument("--requests", type=whole_number_arg(1, MAX_TIMED_CHECKS), default=200, help=f"checks timed per size, {whole_range(1, MAX_TIMED_CHECKS)}")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = {size: measure(size, args.requests) for size in args.sizes}
    if args.json:
        # the machine and the counts behind each median, as the text says them
        print(json.dumps({"machine": machine(), "checks_timed": args.requests, "refusals_timed": REFUSALS, "sizes": rows}))  # fmt: skip
        return 0
    print(machine_line())
    print(f"medians: of {args.requests} checks a size (both windows each), of {REFUSALS} refusals and whole-window reads")  # fmt: skip
    print(f"{'requests in the day':>20} {'check: moved ms':>16} {'summed whole ms':>16} {'refusal ms':>11} {'read whole window ms':>21}")  # fmt: skip
    for size, r in rows.items():
        print(f"{size:>20,} {r['moved_ms']:>16.3f} {r['summed_whole_ms']:>16.3f} {r['refusal_ms']:>11.3f} {r['read_whole_window_ms']:>21.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
