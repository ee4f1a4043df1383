"""How many times a `routerllm` command asks llama.cpp for a vocabulary's control texts
(``llama_prompt.control_texts``: a call per token, 33-38 ms of CPU for SmolLM2's 49,152,
80-140 ms for Qwen2.5's 151,936), and the CPU those reads took: ``route`` (one prompt),
``demo`` and ``serve`` up to its first answer, each a new process as a user starts it,
a harness in it counting every read (and its thread's CPU) and writing them at exit.
Each command is run ``--runs`` times "cold" (the control-text cache's file,
``$ROUTERLLM_CACHE/control_texts.json``, removed before: a machine's first process, or
one after llama.cpp changed) and as often "kept" (the file a run before left). With
``--src DIR`` the commands run another source tree's code (a checkout's ``src/``, on
PYTHONPATH: the commit before, ``git archive``), to compare. With ``--header-cost``, what
keying them by the vocabulary costs where a GGUF's header is read (not kept): the CPU of
reading each of the models' GGUF headers (those a count opens and a load reads) with
the vocabulary's digest (``gguf_header.vocab_digest``), of the digest within that read,
and of the read without it, alternately, medians of ``--runs`` (at least 5), in this
process.

    .venv/bin/python benchmarks/control_text_reads.py [--config local] [--runs 3] [--max-new-tokens 1] [--src DIR] [--commands route,demo,serve] [--header-cost] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from machine import machine, machine_line

from routerllm.cli_args import (
    MAX_NEW_TOKENS_RANGE,
    TIMED_REPEATS_RANGE,
    DefaultsHelpFormatter,
    max_new_tokens_arg,
    timed_repeats_arg,
)

PROMPT = "what is a python list?"
#: The harness each command's process starts with: every read counted, with its
#: thread's CPU, and written to $CONTROL_READS_OUT at exit (and at SIGTERM: ``serve``).
HARNESS = r"""
import atexit, json, os, signal, sys, time
from routerllm.backends import llama_prompt
_reads = []
_read = llama_prompt.control_texts
def _counted(model):
    cpu = time.thread_time()
    texts = _read(model)
    _reads.append([model.n_vocab(), time.thread_time() - cpu])
    return texts
llama_prompt.control_texts = _counted
def _write():
    with open(os.environ["CONTROL_READS_OUT"], "w", encoding="utf-8") as out:
        json.dump(_reads, out)
atexit.register(_write)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
from routerllm.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _env(src: Path | None, out: Path) -> dict[str, str]:
    env = {**os.environ, "CONTROL_READS_OUT": str(out)}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    return env


def _cache_file() -> Path:
    from routerllm.paths import cache_root

    return cache_root() / "control_texts.json"


def _reads(out: Path) -> list[list[float]]:
    reads: list[list[float]] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return reads


def _command(argv: list[str], cwd: Path, src: Path | None) -> list[list[float]]:
    """The reads of one process of ``routerllm argv``: (tokens, CPU seconds) each."""
    out = cwd / "reads.json"
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, *argv], cwd=cwd, env=_env(src, out),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"routerllm {' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-600:]}")  # fmt: skip
    return _reads(out)


def _serve(config: str, cwd: Path, src: Path | None) -> list[list[float]]:
    """The reads of `routerllm serve` from its start to its first answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = cwd / "reads.json"
    child = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "serve", "--config", config, "--port", str(port)],
        cwd=cwd, env=_env(src, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        while True:
            if child.poll() is not None:
                raise SystemExit(f"routerllm serve ended ({child.returncode}) before answering")
            try:
                request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
                with urllib.request.urlopen(request, timeout=300) as answer:
                    answer.read()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    return _reads(out)


def _header_costs(config: str, runs: int) -> dict[str, dict[str, float]]:
    """CPU ms (medians of ``runs``) of reading each llama.cpp model's GGUF headers (the
    file a count opens, the file its load reads) with the vocabulary's digest, of the
    digest within it, and of the read without it."""
    from unittest import mock

    from routerllm import gguf_header
    from routerllm.config import load_config
    from routerllm.model_files import resolve_gguf, vocab_file

    digest = gguf_header._vocab_digest
    spent: list[float] = []

    def timed_digest(*args: Any) -> str | None:
        start = time.process_time()
        try:
            return digest(*args)
        finally:
            spent.append(time.process_time() - start)

    costs: dict[str, dict[str, float]] = {}
    for model in load_config(config).models:
        if model.backend != "llama_cpp" or model.gguf is None:
            continue
        files = {vocab_file(model.gguf, model.name), resolve_gguf(model.gguf, model.name)}
        for path in sorted(f for f in files if f is not None):
            with path.open("rb") as f:  # into the page cache before it is timed
                gguf_header._read_header(f)
            cpu: dict[str, list[float]] = {"with digest": [], "without": []}
            for _ in range(runs):  # alternately
                for kind, patched in (("with digest", timed_digest), ("without", lambda *a: None)):  # fmt: skip
                    with mock.patch.object(gguf_header, "_vocab_digest", patched), path.open("rb") as f:  # fmt: skip
                        start = time.process_time()
                        gguf_header._read_header(f)
                        cpu[kind].append(time.process_time() - start)
            costs[path.name] = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
            costs[path.name]["digest"] = statistics.median(spent) * 1e3
            spent.clear()
    return costs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter)  # fmt: skip
    ap.add_argument("--config", default="local", help="the config's path or packaged name; its models must run here")  # fmt: skip
    ap.add_argument("--runs", type=timed_repeats_arg, default=3, help=f"processes of each command, cold and kept each, {TIMED_REPEATS_RANGE}")  # fmt: skip
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=1, help=f"route's and demo's --max-new-tokens, {MAX_NEW_TOKENS_RANGE}")  # fmt: skip
    ap.add_argument("--src", metavar="DIR", help="run this source tree's code (a checkout's src/, on PYTHONPATH)")  # fmt: skip
    ap.add_argument("--commands", default="route,demo,serve", help="the commands run, comma-separated (none: '')")  # fmt: skip
    ap.add_argument("--header-cost", action="store_true", help="also the CPU of reading the models' GGUF headers with the vocabulary's digest and without (this tree)")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    config = str(Path(args.config).resolve()) if Path(args.config).is_file() else args.config
    src = Path(args.src).resolve() if args.src else None
    if src is not None and not (src / "routerllm" / "cli.py").is_file():
        raise SystemExit(f"--src {args.src}: no routerllm/cli.py there")
    tokens = ["--max-new-tokens", str(args.max_new_tokens)]
    every: dict[str, list[str] | None] = {
        "route": ["route", PROMPT, "--config", config, *tokens],
        "demo": ["demo", "--config", config, *tokens],
        "serve": None,  # up to its first answer
    }
    asked = [c for c in args.commands.split(",") if c]
    if unknown := [c for c in asked if c not in every]:
        raise SystemExit(f"--commands: {', '.join(unknown)} not one of {', '.join(every)}")
    commands = {c: every[c] for c in asked}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="control-reads-") as scratch:
        cwd = Path(scratch)
        for name, argv in commands.items():
            for state in ("cold", "kept"):
                runs = []
                for _ in range(args.runs):
                    if state == "cold":
                        _cache_file().unlink(missing_ok=True)
                    runs.append(_serve(config, cwd, src) if argv is None else _command(argv, cwd, src))  # fmt: skip
                counts = [len(r) for r in runs]
                cpus = [sum(c for _, c in r) * 1e3 for r in runs]
                figures[f"{name} {state}"] = {
                    "reads": counts,
                    "reads_cpu_ms_median": statistics.median(cpus),
                    "reads_cpu_ms": [round(c, 1) for c in cpus],
                    "tokens_read": sorted({int(t) for r in runs for t, _ in r}),
                }
    source = str(src) if src else "this tree"
    headers = _header_costs(config, max(5, args.runs)) if args.header_cost else {}
    if args.json:
        print(json.dumps({"source": source, "figures": figures, "header_cpu_ms": headers, "machine": machine()}, indent=2))  # fmt: skip
        return 0
    print(machine_line())
    print(f"source: {source}; load average {os.getloadavg()[0]:.1f} at the end")
    if figures:
        print(f"{'command':<12} {'reads (each run)':<18} {'CPU of reads, ms (median; each)':<40} vocabularies read (tokens)")  # fmt: skip
        for key, f in figures.items():
            each = ", ".join(f"{c:.0f}" for c in f["reads_cpu_ms"])
            print(f"{key:<12} {str(f['reads']):<18} {f['reads_cpu_ms_median']:>6.0f} ({each}){'':<10} {f['tokens_read']}")  # fmt: skip
    if headers:
        print("\nGGUF header read, CPU ms (medians): with the vocabulary's digest, the digest in it, without")  # fmt: skip
        for name, cost in headers.items():
            print(f"  {name:<40} {cost['with digest']:>7.1f} {cost['digest']:>7.1f} {cost['without']:>7.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
