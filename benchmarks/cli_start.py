"""What a `routerllm` command costs before and after its work, by phase.

Each run is a new process, in an empty scratch folder (its request log there), as a user
runs the command; a harness in it stamps the wall and CPU time (``time.process_time``:
user + system, all threads) at each phase: the interpreter's start, the imports (every
``import`` of the command, wherever it runs, counted apart from the phase it runs in,
the largest named), the config, the system (router, request log, the models' check),
CodeCarbon's tracker (its data: pandas and the CSV tables; the CPU's TDP lookup; its
other probes: RAPL, GPU, RAM, the first task), the routing, the model's loading and its
generation (CodeCarbon's measured blocks), the request log's write, and the exit (from
the command's return: threads joined, ``atexit`` hooks, the process's end, as the
parent saw it). ``route`` is run ``--runs`` times, then ``models`` and ``report`` (on
the log those runs wrote) as often, and ``serve`` up to its first answer (``--serve``).
The medians are printed, each beside the count of runs it is of. With ``--compare``
every run is made twice, alternately each first, the second with CodeCarbon's data read
as before 2026-12-07 (pandas, no kept TDP), or with ``--before-src DIR`` another source
tree's code (the commit before, checked out: ``git archive``): the old path beside the
new, in one run. With ``--compare-header-cache`` every run is made three times, of the
GGUF headers the models' check reads (``gguf_header_cache``; the phase "GGUF headers"):
"kept", read from the cache a process before kept; "cold", the cache's file removed
before the run (each header read and kept, as a machine's first process does); "off",
each header read from its file and none kept (as before 2026-12-07's cache).

Each command is run once, untimed, before its timed runs (the kept TDP and headers
written, the files in the page cache, the modules compiled). Where the environment asks
Python to write no compiled modules (``PYTHONDONTWRITEBYTECODE``, as this project's
machines do) and names no folder for them (``PYTHONPYCACHEPREFIX``), every process
compiled every module it imported from its source, RouterLLM's own (0.3-0.4 s of CPU
for ``route``'s at load 6, 2026-12-08) and the packages' too where they had none beside
them: a cost an installed package does not have (pip compiles it as it installs) nor
the test suite (``dev.py test`` keeps them in ``.venv/pycache``). The processes then
keep theirs in a folder of the run's (the untimed runs compile them; ``serve``'s server,
which no other command imports, its first timed run); ``--compile-each``
leaves the environment as it is, every module compiled in every process (as this
script measured before 2026-12-08).

    .venv/bin/python benchmarks/cli_start.py [--config local] [--runs 5] [--max-new-tokens 8] [--compare] [--before-src DIR] [--compare-header-cache] [--serve] [--compile-each] [--json]
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
from collections.abc import Mapping
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
#: The imports printed by command, those of most CPU (all in --json).
TOP_IMPORTS = 8
#: The phases in the order a command goes through them.
ORDER = [
    "interpreter", "imports", "config", "route command", "system", "manager", "models' check",
    "GGUF headers", "router", "tracker", "tracker: hardware probe", "tracker: cpu TDP lookup",
    "tracker: data (pandas, CSV)", "router_inference", "request (unmeasured)", "model_loading",
    "llm_inference", "log write", "models", "report", "other (cli)", "exit", "total",
]  # fmt: skip
#: The harness each run's process starts with: it stamps spans (wrapped functions) and
#: imports, and writes them to $CLI_START_OUT from the last ``atexit`` hook to run.
HARNESS = r'''
import builtins, importlib, json, os, sys, time, atexit
_t0 = (time.time(), time.perf_counter(), time.process_time())
_spans, _stack, _imports, _by_root = [], [], [0.0, 0.0], {}
_real_import, _real_import_module = builtins.__import__, importlib.import_module

def _clock():
    return time.perf_counter(), time.process_time()

_nested = []  # the import calls under way: the time of the imports within each

def _counted_import(real):
    """Every import timed: the outermost ones' sum is the imports' phase (taken out of
    the spans they ran in); each module root is given its own time, less that of the
    imports within it (pandas' own, not numpy's within it)."""
    def counted(name, *args, **kwargs):
        level = args[3] if len(args) > 3 else kwargs.get("level", 0)
        root = name.split(".")[0]
        if not name or level:  # relative: its package's
            root = (((args[0] if args else None) or {}).get("__package__") or "(relative)").split(".")[0]
        wall, cpu = _clock()
        _nested.append([0.0, 0.0])
        try:
            return real(name, *args, **kwargs)
        finally:
            inner = _nested.pop()
            dw, dc = _clock()
            dw, dc = dw - wall, dc - cpu
            w, c = _by_root.get(root, (0.0, 0.0))
            _by_root[root] = (w + dw - inner[0], c + dc - inner[1])
            if _nested:
                _nested[-1][0] += dw; _nested[-1][1] += dc
            else:
                _imports[0] += dw; _imports[1] += dc
                for span in _stack:  # imports are their own phase: not their span's
                    span[3] += dw; span[4] += dc
    return counted

builtins.__import__ = _counted_import(_real_import)
importlib.import_module = _counted_import(_real_import_module)

def _push(name):
    span = [name, *_clock(), 0.0, 0.0, _stack[-1][0] if _stack else None]
    _stack.append(span)
    return span

def _pop(span):
    _stack.remove(span)
    w, c = _clock()
    _spans.append((span[0], w - span[1], c - span[2], span[3], span[4], span[5]))

def _span(name, fn):
    def spanned(*args, **kwargs):
        span = _push(name)
        try:
            return fn(*args, **kwargs)
        finally:
            _pop(span)
    return spanned

def _measured(fn):  # CodeCarbonMeter.measure: a context manager, spanned by component
    import contextlib
    @contextlib.contextmanager
    def measure(self, component):
        span = _push(component)
        try:
            with fn(self, component) as slot:
                yield slot
        finally:
            _pop(span)
    return measure

_WRAP = {
    "routerllm.config": [("load_config", None, "config")],
    "routerllm.system": [("RouterLLM", "__init__", "system"), ("build_router", None, "router"),
                         ("create_meter", None, "tracker"), ("RouterLLM", "generate_batch", "request (unmeasured)")],
    "routerllm.manager": [("LLMManager", "__init__", "manager"), ("LLMManager", "runnable_models", "models' check")],
    "routerllm.gguf_header": [("_read_file", None, "GGUF headers")],
    "routerllm.route_cli": [("cmd_route", None, "route command")],
    "routerllm.carbon.request_log": [("RequestLog", "append", "log write")],
    "routerllm.report_cli": [("cmd_report", None, "report"), ("cmd_models", None, "models")],
    "codecarbon.core.cpu": [("TDP", "__init__", "tracker: cpu TDP lookup")],
    "codecarbon.core.resource_tracker": [("ResourceTracker", "set_CPU_GPU_ram_tracking", "tracker: hardware probe")],
}
_OLD = os.environ.get("CLI_START_OLD") == "1"

def _patch(module):
    if module.__name__ == "routerllm.gguf_header_cache" and os.environ.get("CLI_START_HEADERS") == "off":
        module.kept = lambda path, stamp: None  # each header read from its file, none kept
        module.keep = lambda path, stamp, header: None
    for attr, method, name in _WRAP.get(module.__name__, ()):
        owner = getattr(module, attr) if method else module
        key = method or attr
        setattr(owner, key, _span(name, getattr(owner, key)))
    if module.__name__ == "codecarbon.input" and importlib.util.find_spec("routerllm.carbon.codecarbon_data") is None:
        # a tree from before it: CodeCarbon's own loader spanned (nothing checks its code)
        module._load_static_data = _span("tracker: data (pandas, CSV)", module._load_static_data)
    if module.__name__ == "routerllm.carbon.codecarbon_meter":
        module.CodeCarbonMeter.measure = _measured(module.CodeCarbonMeter.measure)
        given = getattr(module, "read_json_data_alone", lambda: False)
        if _OLD:
            import contextlib
            given = lambda: False
            module.registry_tdp_from_cache = contextlib.nullcontext
        def data_spanned():  # CodeCarbon's loader spanned where it is in use
            from codecarbon import input as cc_input
            done = given()
            name = "tracker: data (pandas, CSV)"
            if done:
                cc_input._CACHE._load_all = _span(name, cc_input._CACHE._load_all)
            elif not cc_input._STATIC_DATA_LOADED:
                cc_input._load_static_data = _span(name, cc_input._load_static_data)
            return done
        module.read_json_data_alone = data_spanned

class _AfterImport:
    """Wraps the functions of _WRAP as each module is first executed."""
    def find_spec(self, name, path=None, target=None):
        if name not in _WRAP and name not in ("routerllm.carbon.codecarbon_meter", "codecarbon.input", "routerllm.gguf_header_cache"):
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            _patch(module)
        spec.loader.exec_module = exec_module
        return spec

import importlib.util
sys.meta_path.insert(0, _AfterImport())

_returned = []

def _write():
    with open(os.environ["CLI_START_OUT"], "w") as f:
        json.dump({"start": list(_t0), "returned": _returned, "spans": _spans,
                   "imports": _imports, "by_root": _by_root}, f)

atexit.register(_write)  # first registered, last run: after CodeCarbon's and the others'
sys.argv = ["routerllm", *sys.argv[1:]]
from routerllm import cli as _cli
_run = _cli._run
def _timed_run(args, closing):
    try:
        return _run(args, closing)
    finally:
        _returned.extend(_clock())
_cli._run = _timed_run
_cli.main()
'''


#: The environment of the path before (``--compare``): CodeCarbon's data read with
#: pandas, or the source tree of ``--before-src`` on PYTHONPATH.
BEFORE: dict[str, str] = {"CLI_START_OLD": "1"}
#: The paths of ``--compare-header-cache``: the GGUF headers read from the cache, read and
#: kept (its file removed before the run), read and not kept.
HEADER_PATHS: dict[str, dict[str, str]] = {
    "kept": {},
    "cold": {"CLI_START_HEADERS": "cold"},
    "off": {"CLI_START_HEADERS": "off"},
}


#: The children's compiled modules: kept in this folder (``PYTHONPYCACHEPREFIX``) where the
#: environment would have each process compile every module again (set by ``main``).
COMPILED: dict[str, str] = {}


def compiled_once(environ: Mapping[str, str], folder: Path) -> dict[str, str]:
    """The environment's settings of compiled modules for the children: a folder to keep
    them in, where ``PYTHONDONTWRITEBYTECODE`` is set and ``PYTHONPYCACHEPREFIX`` is not
    (each process compiled every module it imported); none where they are kept already."""
    if not environ.get("PYTHONDONTWRITEBYTECODE") or environ.get("PYTHONPYCACHEPREFIX"):
        return {}
    return {"PYTHONPYCACHEPREFIX": str(folder)}


def _env(path: dict[str, str], out: Path) -> dict[str, str]:
    env = {**os.environ, "CLI_START_OUT": str(out), "CLI_START_OLD": "0", "CLI_START_HEADERS": "kept", **COMPILED, **path}  # fmt: skip
    if COMPILED:  # written there: the setting that has no module written goes
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run_child(argv: list[str], cwd: Path, path: dict[str, str]) -> dict[str, Any]:
    """One process of ``routerllm argv`` on ``path`` (its environment): the harness's
    stamps, the parent's total."""
    out = cwd / "stamps.json"
    env = _env(path, out)
    if path.get("CLI_START_HEADERS") == "cold":
        from routerllm.gguf_header_cache import cache_file

        cache_file().unlink(missing_ok=True)
    started, wall = time.time(), time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", HARNESS, *argv], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    total_wall = time.perf_counter() - wall
    if child.returncode != 0:
        raise SystemExit(f"routerllm {' '.join(argv)} failed ({child.returncode}): {err.decode()[-600:]}")  # fmt: skip
    stamps = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return _phases(stamps, started, total_wall, usage.ru_utime + usage.ru_stime)


def _phases(stamps: dict[str, Any], started: float, total_wall: float, total_cpu: float) -> dict[str, tuple[float, float]]:  # fmt: skip
    """(wall, cpu) seconds by phase: each span's own, less the spans within it and the
    imports it ran (the imports are a phase of their own)."""
    t0_epoch, t0_wall, t0_cpu = stamps["start"]
    phases: dict[str, list[float]] = {"interpreter": [t0_epoch - started, t0_cpu]}
    for name, wall, cpu, imp_wall, imp_cpu, parent in stamps["spans"]:
        own = phases.setdefault(name, [0.0, 0.0])
        own[0] += wall - imp_wall
        own[1] += cpu - imp_cpu
        if parent is not None:  # its imports are already out of its parent's time
            phases.setdefault(parent, [0.0, 0.0])
            phases[parent][0] -= wall - imp_wall
            phases[parent][1] -= cpu - imp_cpu
    phases["imports"] = list(stamps["imports"])
    if stamps["returned"]:
        returned_wall, returned_cpu = stamps["returned"]
        covered = [sum(p[i] for n, p in phases.items() if n != "interpreter") for i in (0, 1)]
        # what no stamp covers before the command returned (parsing, printing...)
        phases["other (cli)"] = [returned_wall - t0_wall - covered[0], returned_cpu - t0_cpu - covered[1]]  # fmt: skip
        # threads joined, atexit hooks, the process's end, as the parent saw it
        phases["exit"] = [total_wall - (t0_epoch - started) - (returned_wall - t0_wall), total_cpu - returned_cpu]  # fmt: skip
    phases["total"] = [total_wall, total_cpu]
    for root, (wall, cpu) in stamps["by_root"].items():
        phases[f"  import {root}"] = [wall, cpu]
    return {k: (v[0], v[1]) for k, v in phases.items()}


def _serve_first_answer(config: str, cwd: Path, path: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds from `routerllm serve`'s start to its first answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _env(path, cwd / "serve.json")
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "serve", "--config", config, "--port", str(port)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        while True:
            if child.poll() is not None:
                raise SystemExit(f"routerllm serve ended ({child.returncode}) before answering")
            try:
                request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
                with urllib.request.urlopen(request, timeout=120) as answer:
                    answer.read()
                break
            except OSError:
                time.sleep(0.05)
        wall = time.perf_counter() - start
        fields = (
            Path(f"/proc/{child.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        )
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter)  # fmt: skip
    ap.add_argument("--config", default="local", help="the config's path or packaged name; its models must run here")  # fmt: skip
    ap.add_argument("--runs", type=timed_repeats_arg, default=5, help=f"processes of each command (each path), {TIMED_REPEATS_RANGE}")  # fmt: skip
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=8, help=f"route's --max-new-tokens, {MAX_NEW_TOKENS_RANGE}")  # fmt: skip
    ap.add_argument("--compare", action="store_true", help="each run also on the path before 2026-12-07 (CodeCarbon's data with pandas), alternately")  # fmt: skip
    ap.add_argument("--before-src", metavar="DIR", help="with --compare: the path before is this source tree's (a checkout's src/, on PYTHONPATH), not this one's with CodeCarbon's data read with pandas")  # fmt: skip
    ap.add_argument("--compare-header-cache", action="store_true", help="each run three times: the GGUF headers read from the cache (kept), read and kept (cold), read and not kept (off), alternately")  # fmt: skip
    ap.add_argument("--serve", action="store_true", help="also `serve` up to its first answer (Linux: its CPU read from /proc)")  # fmt: skip
    ap.add_argument("--compile-each", action="store_true", help="with PYTHONDONTWRITEBYTECODE set: every module compiled in every process, as the environment asks (else each is compiled once, kept in a folder of the run's)")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    config = str(Path(args.config).resolve()) if Path(args.config).is_file() else args.config
    if args.before_src:
        if not (Path(args.before_src) / "routerllm" / "cli.py").is_file():
            ap.error(
                f"--before-src {args.before_src}: no routerllm/cli.py there (give a checkout's src/)"
            )
        BEFORE.update(PYTHONPATH=str(Path(args.before_src).resolve()), CLI_START_OLD="0")
    if args.compare and args.compare_header_cache:
        ap.error("--compare and --compare-header-cache: one comparison a run")
    envs: dict[str, dict[str, str]] = {"new": {}, "old": BEFORE} if args.compare else {"new": {}}
    envs = HEADER_PATHS if args.compare_header_cache else envs
    paths = list(envs)
    commands = {
        "route": [
            "route",
            PROMPT,
            "--config",
            config,
            "--max-new-tokens",
            str(args.max_new_tokens),
        ],
        "models": ["models", "--config", config],
        "report": ["report", "--config", config],
    }
    runs: dict[str, dict[str, list[dict[str, tuple[float, float]]]]] = {}
    served: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="routerllm-cli-start-") as scratch:
        cwd = Path(scratch)
        if not args.compile_each:
            COMPILED.update(compiled_once(os.environ, cwd / "pycache"))
        # not timed: the kept TDP and headers written, the files in the page cache, the
        # modules compiled (each command's own too)
        for argv in commands.values():
            for path in paths:
                _run_child(argv, cwd, envs[path])
        for command, argv in commands.items():
            runs[command] = {p: [] for p in paths}
            for i in range(args.runs):
                for path in paths[:: -1 if i % 2 else 1]:
                    runs[command][path].append(_run_child(argv, cwd, envs[path]))
        if args.serve:
            for i in range(args.runs):
                for path in paths[:: -1 if i % 2 else 1]:
                    served[path].append(_serve_first_answer(config, cwd, envs[path]))
    figures: dict[str, Any] = {
        "runs": args.runs,
        "load_before": load,
        "load_after": os.getloadavg(),
        "compiled_modules": "kept by the run (compiled once)"
        if COMPILED
        else (
            "compiled in every process (PYTHONDONTWRITEBYTECODE)"
            if os.environ.get("PYTHONDONTWRITEBYTECODE")
            and not os.environ.get("PYTHONPYCACHEPREFIX")
            else "kept as the environment keeps them"
        ),
    }
    for command, by_path in runs.items():
        figures[command] = {p: _medians(r) for p, r in by_path.items()}
    if args.serve:
        figures["serve_first_answer"] = {
            p: {"wall_s": statistics.median(w for w, _ in s), "cpu_s": statistics.median(c for _, c in s)}
            for p, s in served.items()
        }  # fmt: skip
    if args.json:
        print(json.dumps({**figures, "machine": machine()}, indent=2))
        return 0
    print(machine_line())
    compared = f" and path ({', '.join(paths)}: alternately)" if len(paths) > 1 else ""
    print(f"medians of {args.runs} processes a command{compared}; "  # fmt: skip
          f"load {load[0]:.2f} before, {figures['load_after'][0]:.2f} after; seconds, wall / CPU (user+sys)")  # fmt: skip
    print(f"compiled modules: {figures['compiled_modules']}")
    for command in runs:
        print(f"\n{command}")
        names = list(dict.fromkeys(n for p in paths for n in figures[command][p]))
        imports = sorted((n for n in names if n.startswith(" ")), key=lambda n: -max(figures[command][p].get(n, {"cpu_s": 0.0})["cpu_s"] for p in paths))  # fmt: skip
        phases = sorted((n for n in names if not n.startswith(" ")), key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))  # fmt: skip
        names = phases + imports[:TOP_IMPORTS]
        for name in names:
            cells = "   ".join(_cell(p, figures[command][p].get(name)) for p in paths)
            print(f"  {name:<32} {cells}")
    if args.serve:
        print("\nserve, to its first answer")
        for p, f in figures["serve_first_answer"].items():
            print(f"  {p}: {f['wall_s']:.3f} / {f['cpu_s']:.3f}")
    return 0


def _cell(path: str, figure: dict[str, float] | None) -> str:
    if figure is None:  # not in this path's runs (an import it does not make)
        return f"{path} {'-':>7} / {'-':>7}"
    return f"{path} {figure['wall_s']:7.3f} / {figure['cpu_s']:7.3f}"


def _medians(runs: list[dict[str, tuple[float, float]]]) -> dict[str, dict[str, float]]:
    # a phase or import one run did not have counts 0 s there (a module one run imported)
    names = list(dict.fromkeys(n for r in runs for n in r))
    return {
        n: {"wall_s": statistics.median(r.get(n, (0.0, 0.0))[0] for r in runs),
            "cpu_s": statistics.median(r.get(n, (0.0, 0.0))[1] for r in runs)}
        for n in names
    }  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
