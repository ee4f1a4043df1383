"""How long `routerllm report` takes, and how much memory it holds, as the request log grows.

It logs a few hundred synthetic requests (several models, routers, tags and days,
cache hits, unmeasured and estimated energy, generations measured while other processes
used 0 to 90 % of the CPU, 7 in 10 of them over 25 %) through ``RequestLog``, copies their
rows until the log holds each size (in a temporary folder), and times
``logged_report`` on it (the median of ``--repeat`` runs), with the peak of the
memory Python allocated during one run (tracemalloc). With ``--process``, it times
``routerllm report --json`` on it in a process of its own instead, as a user runs it
(imports included): the medians of its CPU time (user + system) and wall time over
``--repeat`` runs, and the largest peak resident memory (RSS) of them.

    .venv/bin/python benchmarks/report_scaling.py [--sizes 10000 50000 100000] [--repeat 3] [--process] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
from routerllm.config import load_config

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


def report_process(config_path: Path) -> tuple[float, float, float]:
    """The CPU seconds (user + system), wall seconds and peak RSS (MB) of one
    ``routerllm report --json`` process on the config's log (POSIX: ``os.wait4``)."""
    command = [sys.executable, "-m", "routerllm", "report", "--config", str(config_path), "--json"]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a full pipe stops the child
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode:
            err.seek(0)
            raise SystemExit(f"routerllm report failed ({child.returncode}): {err.read().decode(errors='replace')[-800:]}")  # fmt: skip
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    rss_mb = usage.ru_maxrss / (1e6 if sys.platform == "darwin" else 1e3)
    return usage.ru_utime + usage.ru_stime, wall, rss_mb


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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
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
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump({"models": models, "router": {"name": "rules"}, "log": {"path": str(log_path)}, "cache": {"enabled": False}, "carbon": {"output_dir": str(folder / "carbon")}}), encoding="utf-8")  # fmt: skip
        config = load_config(config_path)
        with RequestLog(log_path) as log:
            for r in seed_records(np.random.default_rng(0), SEED_ROWS):
                log.append(r)
        for size in sorted(args.sizes):
            grow(log_path, size)
            if args.process:
                runs = [report_process(config_path) for _ in range(args.repeat)]
                cpu, wall, rss = zip(*runs, strict=True)
                results.append({"rows": size, "cpu_s": statistics.median(cpu), "wall_s": statistics.median(wall), "peak_rss_mb": max(rss)})  # fmt: skip
                continue
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                logged_report(config, log_path=log_path)
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            logged_report(config, log_path=log_path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results.append(
                {"rows": size, "seconds": statistics.median(times), "peak_mb": peak / 1e6}
            )
    if args.json:
        # the machine and the repeats behind each median, as the text says them
        print(json.dumps({"machine": machine(), "repeat": args.repeat, "process": args.process, "results": results}, indent=2))  # fmt: skip
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
