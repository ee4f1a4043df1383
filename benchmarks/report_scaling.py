"""How long `routerllm report` takes, and how much memory it holds, as the request log grows.

It logs a few hundred synthetic requests (several models, routers, tags and days,
cache hits, unmeasured and estimated energy, generations measured while other processes
used 0 to 90 % of the CPU, 7 in 10 of them over 25 %) through ``RequestLog``, copies their
rows until the log holds each size (in a temporary folder), and times
``logged_report`` on it (the median of ``--repeat`` runs), with the peak of the
memory Python allocated during one run (tracemalloc). With ``--process``, it times
``routerllm report --json`` on it in a process of its own instead, as a user runs it
(imports included): the medians of its CPU time (user + system) and wall time over
``--repeat`` runs, and the largest peak resident memory (RSS) of them. With
``--phases``, where a report's CPU time goes, in this process (the medians of
``--repeat`` runs of each): SQLite's reading of the report's rows, fetched and nothing
done with them; the checks for damaged rows; the rows as ``LogFigures.add`` takes them
(those two and Python's cutting of each row); the whole report. ``--time-order``: the
log copied in time order first, as a server appends its requests (the copies of a seed
request otherwise lie far apart in the file, each read a page of its own).

    .venv/bin/python benchmarks/report_scaling.py [--sizes 10000 50000 100000] [--repeat 3] [--process] [--phases] [--time-order] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from machine import machine, machine_line

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import CACHED, Measurement
from routerllm.carbon.report import logged_report
from routerllm.carbon.request_log import RequestLog
from routerllm.checks import MAX_BENCHMARK_LOG_ROWS
from routerllm.cli_args import (
    TIMED_REPEATS_RANGE,
    DefaultsHelpFormatter,
    timed_repeats_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.config import AppConfig, load_config

SEED_ROWS = 500
MODELS = ("tiny-light", "tiny-medium", "tiny-heavy")


def seed_records(rng: np.random.Generator, n: int) -> list[RequestRecord]:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    prompts = [f"{i:064x}" for i in range(n // 5)]
    out = []
    for i in range(n):
        cached = rng.random() < 0.2
        method = str(rng.choice(["codecarbon:measured", "codecarbon:load-estimate", "none"]))

        def part(name: str, kwh: float, cached: bool = cached, method: str = method, k: int = i) -> Measurement:  # fmt: skip
            spent = method if name == "router_inference" or not cached else CACHED
            # a generation's share of the CPU others used (none drawn from rng: the seed's
            # other figures are those drawn before it was logged)
            busy = k % 10 / 10 if name == "llm_inference" and not cached else None
            return Measurement(name, float(rng.random()), kwh, kwh * 0.05, spent, busy)

        out.append(
            RequestRecord(
                id=f"seed-{i}",
                timestamp=(start + timedelta(hours=i * 240 / n)).isoformat(),
                prompt_sha256=str(rng.choice(prompts)),
                prompt_chars=int(rng.integers(10, 500)),
                model=str(rng.choice(MODELS)),
                router=str(rng.choice(["rules", "fixed"])),
                confidence=float(rng.random()),
                prompt_tokens=int(rng.integers(5, 200)),
                completion_tokens=int(rng.integers(1, 128)),
                latency_s=float(rng.exponential(1.5)),
                cost_usd=0.0,
                components={
                    "router_inference": part("router_inference", float(rng.random() * 1e-7)),
                    "model_loading": part(
                        "model_loading", 0.0 if cached else float(rng.random() * 1e-5)
                    ),  # fmt: skip
                    "llm_inference": part(
                        "llm_inference", 0.0 if cached else float(rng.random() * 1e-4)
                    ),  # fmt: skip
                },
                tag=str(rng.choice(["", "server", "demo"])),
                finish_reason=str(rng.choice(["stop", "length"])),
            )
        )
    return out


def grow(path: Path, rows: int) -> None:
    """Copy the log's rows (new ids, the same times) until it holds ``rows`` requests: the
    first ``min(have, rows - have)`` rows at a time, so the log doubles in a step. Copying
    500 seed rows a step, each step scanning the whole log for them, took 15 minutes and
    more to reach 1,000,000 (2 shared cores): quadratic in the size."""
    db = sqlite3.connect(path)
    # the log's columns as they are, not as written here: a fixed list of 15 failed once
    # the log gained its grid columns ("table requests has 18 columns but 15 values")
    rest = ", ".join(r[1] for r in db.execute("PRAGMA table_info(requests)") if r[1] != "id")
    with db:
        have = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        while have < rows:
            take = min(have, rows - have)
            suffix = f"-{have}"  # a suffix no earlier step used: each step's size differs
            db.execute(
                f"INSERT INTO requests (id, {rest}) SELECT id || ?, {rest} FROM requests ORDER BY rowid LIMIT ?",  # fmt: skip
                (suffix, take),
            )
            db.execute(  # the copied requests' components, each found by its primary key
                "INSERT INTO components SELECT c.request_id || ?, c.component, c.duration_s, c.energy_kwh, c.co2_kg, c.method FROM (SELECT id FROM requests ORDER BY rowid LIMIT ?) r JOIN components c ON c.request_id = r.id",  # fmt: skip
                (suffix, take),
            )
            have += take
    db.close()


def in_time_order(path: Path) -> Path:
    """A copy of the log at ``path`` in time order beside it (its requests, then their
    components and their CPU shares, each in its request's order), as a server appends them; the log ``grow``
    grows further is left as it is, so each size holds the same requests either way."""
    ordered = path.with_name("ordered.sqlite")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ordered}{suffix}").unlink(missing_ok=True)
    with RequestLog(ordered):  # the same schema, empty
        pass
    db = sqlite3.connect(ordered)
    db.execute("ATTACH ? AS old", (str(path),))
    with db:
        db.execute("INSERT INTO main.requests SELECT * FROM old.requests ORDER BY timestamp, rowid")  # fmt: skip
        db.execute("INSERT INTO main.components SELECT c.* FROM old.requests r JOIN old.components c ON c.request_id = r.id ORDER BY r.timestamp, r.rowid, c.component")  # fmt: skip
        # the components' CPU shares too: the predictor counts the contended ones (a copy
        # without them was told apart by its report's predictor figures from 2026-12-07)
        db.execute("INSERT INTO main.cpu_shares SELECT s.* FROM old.requests r JOIN old.cpu_shares s ON s.request_id = r.id ORDER BY r.timestamp, r.rowid, s.component")  # fmt: skip
    db.execute("DETACH old")
    db.close()
    return ordered


def cpu_seconds() -> tuple[float, float]:
    """This process's CPU seconds so far: user, and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def spent_since(start: tuple[float, float]) -> tuple[float, float]:
    """The CPU seconds (user + system, system) spent since ``cpu_seconds()`` gave ``start``.
    The two are taken apart and then summed, so the system share is never over the whole
    by a rounding (totals subtracted gave 0.0035989999999 of CPU beside 0.003599 of system)."""
    user, system = cpu_seconds()
    spent_system = system - start[1]
    return (user - start[0]) + spent_system, spent_system


def phases(config: AppConfig, log_path: Path) -> dict[str, tuple[float, float]]:
    """The CPU seconds (user + system, system) of each phase of a report of the log at
    ``log_path``: ``sql``, the report's query, its rows fetched and nothing done with them;
    ``checks``, the checks for damaged rows; ``read``, the rows ``LogFigures.add`` takes
    (both, and Python's cutting of each row); ``report``, the whole ``logged_report``."""
    from routerllm.carbon import log_scan

    out = {}
    queries: list[str] = []
    stream = log_scan._stream

    def kept(log: RequestLog, sql: str, args: list[object]) -> Iterator[tuple[Any, ...]]:
        queries.append(sql)  # the report's query, timed alone below
        return stream(log, sql, args)

    with RequestLog(log_path, read_only=True) as log:
        log_scan._stream = kept
        try:
            start = cpu_seconds()
            for _ in log.report_rows():
                pass
            out["read"] = spent_since(start)
        finally:
            log_scan._stream = stream
        start = cpu_seconds()
        cursor = log._db.execute(queries[0])
        while cursor.fetchmany(log_scan.CHUNK):
            pass
        out["sql"] = spent_since(start)
        start = cpu_seconds()
        log_scan._check_numbers(log, "", [], ("", []))
        out["checks"] = spent_since(start)
    start = cpu_seconds()
    logged_report(config, log_path=log_path)
    out["report"] = spent_since(start)
    return {k: out[k] for k in PHASES}


#: ``phases``' keys, in the order they are printed.
PHASES = ("sql", "checks", "read", "report")


#: Starts the command it is given, its stdout to /dev/null, and prints its exit status,
#: CPU seconds and ``ru_maxrss``: a small process between the caller and the report.
#: A child's ``ru_maxrss`` counts the memory of the process it was started from (Linux
#: keeps the high-water mark of the memory it had before its ``exec``): the report's peak
#: read 3,562 MB when the benchmark ran inside a test process that had loaded models.
_LAUNCHER = (
    "import os, sys\n"
    "null = os.open(os.devnull, os.O_WRONLY)\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])\n"
    "_, status, u = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), u.ru_utime + u.ru_stime, u.ru_maxrss)\n"
)


def report_process(config_path: Path) -> tuple[float, float, float]:
    """The CPU seconds (user + system), wall seconds and peak RSS (MB) of one
    ``routerllm report --json`` process on the config's log (POSIX: ``os.wait4``), started
    from a small launcher process, so that its peak is its own (``_LAUNCHER``; its wall
    seconds include the launcher's start, about 0.02 s)."""
    command = [sys.executable, "-m", "routerllm", "report", "--config", str(config_path), "--json"]
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, *command]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a full pipe stops the child
        start = time.perf_counter()
        done = subprocess.run(launcher, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
        wall = time.perf_counter() - start
        returncode, cpu, maxrss = (
            done.stdout.split() if done.returncode == 0 else (done.returncode, 0, 0)
        )
        if int(returncode):
            err.seek(0)
            raise SystemExit(f"routerllm report failed ({returncode}): {err.read().decode(errors='replace')[-800:]}")  # fmt: skip
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    return float(cpu), wall, int(maxrss) / (1e6 if sys.platform == "darwin" else 1e3)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    # at least its seed rows, the requests the log is seeded with
    ap.add_argument("--sizes", type=whole_number_arg(SEED_ROWS, MAX_BENCHMARK_LOG_ROWS), nargs="+", default=[10_000, 50_000, 100_000], help=f"requests in the log, {whole_range(SEED_ROWS, MAX_BENCHMARK_LOG_ROWS)}")  # fmt: skip
    ap.add_argument(
        "--repeat",
        type=timed_repeats_arg,
        default=3,
        help=f"timed reports at each size, the median reported, {TIMED_REPEATS_RANGE}",
    )
    ap.add_argument(
        "--process",
        action="store_true",
        help="time `routerllm report --json` in a process of its own: CPU s, wall s, peak RSS",
    )
    ap.add_argument(
        "--phases",
        action="store_true",
        help="where a report's CPU time goes: SQLite's reading, the checks, the rows, the whole report",
    )
    ap.add_argument(
        "--time-order",
        action="store_true",
        help="copy the log in time order first, as a server appends its requests",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.process and args.phases:
        ap.error("--process and --phases time different things: give one")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log_path = folder / "requests.sqlite"
        models = [
            {
                "name": n,
                "backend": "llama_cpp",
                "tier": t,
                "params_b": p,
                "memory_gb": 0.1,
                "gguf": {"path": str(folder / f"{n}.gguf")},
            }  # fmt: skip
            for n, t, p in zip(MODELS, ("light", "medium", "heavy"), (0.1, 0.5, 1.5), strict=True)
        ]
        # the report's config; with --time-order, its log is the copy in time order
        timed_log = folder / "ordered.sqlite" if args.time_order else log_path
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump({"models": models, "router": {"name": "rules"}, "log": {"path": str(timed_log)}, "cache": {"enabled": False}, "carbon": {"output_dir": str(folder / "carbon")}}), encoding="utf-8")  # fmt: skip
        config = load_config(config_path)
        with RequestLog(log_path) as log:
            for r in seed_records(np.random.default_rng(0), SEED_ROWS):
                log.append(r)
        for size in sorted(args.sizes):
            grow(log_path, size)
            if args.time_order:
                in_time_order(log_path)
            if args.phases:
                logged_report(config, log_path=timed_log)  # its imports, not timed
                phase_runs = [phases(config, timed_log) for _ in range(args.repeat)]
                results.append({"rows": size, **{k: {"cpu_s": statistics.median(r[k][0] for r in phase_runs), "system_s": statistics.median(r[k][1] for r in phase_runs)} for k in PHASES}})  # fmt: skip
                continue
            if args.process:
                runs = [report_process(config_path) for _ in range(args.repeat)]
                cpu, wall, rss = zip(*runs, strict=True)
                results.append({"rows": size, "cpu_s": statistics.median(cpu), "wall_s": statistics.median(wall), "peak_rss_mb": max(rss)})  # fmt: skip
                continue
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                logged_report(config, log_path=timed_log)
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            logged_report(config, log_path=timed_log)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results.append(
                {"rows": size, "seconds": statistics.median(times), "peak_mb": peak / 1e6}
            )
    if args.json:
        # the machine and the repeats behind each median, as the text says them
        print(json.dumps({"machine": machine(), "repeat": args.repeat, "process": args.process, "phases": args.phases, "time_order": args.time_order, "results": results}, indent=2))  # fmt: skip
    elif args.phases:
        print(machine_line())
        order = (
            "copied in time order" if args.time_order else "as grown: a request's copies far apart"
        )
        print(f"CPU s (user + system; system in brackets) of each phase of a report in this process, the medians of {args.repeat}; the log {order}")  # fmt: skip
        print(f"{'rows':>8}" + "".join(f"{k:>16}" for k in PHASES))
        for res in results:
            print(f"{res['rows']:>8}" + "".join(f"{res[k]['cpu_s']:>8.2f} ({res[k]['system_s']:>5.2f})" for k in PHASES))  # fmt: skip
        print("sql: SQLite's reading, rows fetched and nothing done; checks: for damaged rows; read: both, and each row cut for LogFigures.add; report: the whole report")  # fmt: skip
    elif args.process:
        print(machine_line())
        print(f"a `routerllm report --json` process: CPU s (user + system) and wall s the medians of {args.repeat}, peak RSS MB the largest")  # fmt: skip
        print(f"{'rows':>8}{'CPU s':>9}{'wall s':>9}{'peak RSS MB':>13}")
        for r in results:
            print(f"{r['rows']:>8}{r['cpu_s']:>9.2f}{r['wall_s']:>9.2f}{r['peak_rss_mb']:>13.1f}")
    else:
        print(machine_line())
        print(f"report s: the median of {args.repeat} reports; peak MB: one more report's (tracemalloc)")  # fmt: skip
        print(f"{'rows':>8}{'report s':>10}{'peak MB':>9}")
        for r in results:
            print(f"{r['rows']:>8}{r['seconds']:>10.2f}{r['peak_mb']:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
