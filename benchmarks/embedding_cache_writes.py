"""Measure what the embedding cache writes to disk against what it keeps.

For each N, N distinct synthetic prompts are encoded through ``CachedEncoder`` into a
fresh cache folder (never the user's ``~/.cache``): the bytes the process wrote (Linux's
``/proc/self/io``: ``write_bytes``, sent to the storage layer, and ``wchar``, passed to
write calls), the write-ahead log's peak size, the cache file's final size, the wall time
of that first (all-miss) pass and of a second (all-hit) pass over the same prompts.
``hashing`` is fast, so the cache's I/O is most of its time; ``minilm`` (the packaged
MiniLM) is run on a smaller N.

    .venv/bin/python benchmarks/embedding_cache_writes.py [--hashing 20000,50000,100000] \\
        [--minilm 5000] [--threads 2] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, machine_line

from routerllm.cli_args import DefaultsHelpFormatter, threads_arg

_WORDS = [
    "write",
    "explain",
    "summarise",
    "translate",
    "prove",
    "function",
    "list",
    "array",
    "string",
    "number",
    "graph",
    "tree",
    "sort",
    "merge",
    "parse",
    "date",
    "time",
    "energy",
    "carbon",
    "model",
    "router",
    "prompt",
    "token",
    "vector",
    "python",
    "rust",
    "sql",
    "query",
    "table",
    "index",
    "cache",
    "disk",
    "memory",
    "thread",
    "process",
    "file",
    "network",
    "why",
    "how",
    "what",
    "when",
    "which",
    "the",
    "a",
    "of",
    "to",
    "in",
    "for",
    "with",
    "on",
    "by",
    "from",
]


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts of 20 to 60 words (~250 characters on average)."""
    rng = np.random.default_rng(seed)
    words = np.array(_WORDS)
    return [
        f"#{i} " + " ".join(words[rng.integers(0, len(words), int(rng.integers(20, 61)))])
        for i in range(n)
    ]


def _io() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/io").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        fields[name] = int(value)
    return fields


class _PeakSize:
    """The largest size ``path`` reached while it ran (sampled every 20 ms)."""

    def __init__(self, path: Path) -> None:
        self.path, self.peak = path, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self._watch_once()

    def __enter__(self) -> _PeakSize:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._watch_once()

    def _watch_once(self) -> None:
        with contextlib.suppress(OSError):  # no WAL yet
            self.peak = max(self.peak, self.path.stat().st_size)


def measure(spec: str, n: int, root: Path) -> dict[str, Any]:
    """One row: ``n`` prompts through a fresh cache of the encoder ``spec``."""
    from routerllm.encoders import CachedEncoder, create_encoder
    from routerllm.encoders.cache import DB_NAME

    folder = root / f"{spec}-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    prompts = make_prompts(n)
    inner = create_encoder(spec)
    inner.encode(prompts[:8])  # loaded before the clock starts
    encoder = CachedEncoder(inner, str(folder))
    db = folder / DB_NAME
    before = _io()
    with _PeakSize(db.with_name(DB_NAME + "-wal")) as wal:
        start = time.perf_counter()
        encoder.encode(prompts)
        first_s = time.perf_counter() - start
    after = _io()
    start = time.perf_counter()
    again = encoder.encode(prompts)
    second_s = time.perf_counter() - start
    assert again.shape == (n, inner.dim)
    encoder.cache.close()
    file_bytes = db.stat().st_size
    written = after["write_bytes"] - before["write_bytes"]
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "encoder": spec,
        "prompts": n,
        "dim": inner.dim,
        "write_bytes": written,
        "wchar": after["wchar"] - before["wchar"],
        "wal_peak_bytes": wal.peak,
        "file_bytes": file_bytes,
        "written_per_stored": round(written / file_bytes, 2),
        "first_pass_s": round(first_s, 2),
        "second_pass_s": round(second_s, 2),
    }


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()] if text.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 20000,50000; got {text!r}") from None  # fmt: skip
    if any(not 1 <= c <= 10_000_000 for c in counts):
        raise argparse.ArgumentTypeError(f"each count must be in 1..10000000, got {text!r}")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--hashing", type=_counts, default=[20_000, 50_000, 100_000], help="prompt counts for the hashing encoder, comma-separated (empty: none)")  # fmt: skip
    ap.add_argument("--minilm", type=_counts, default=[5_000], help="prompt counts for the packaged MiniLM (empty: none)")  # fmt: skip
    ap.add_argument("--threads", type=threads_arg, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="where the caches are made (default: a new temporary folder); on the disk to measure")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="cache-writes-", dir=args.dir))
    try:
        runs = [("hashing", n) for n in args.hashing] + [("minilm", n) for n in args.minilm]
        rows = [measure(spec, n, root) for spec, n in runs]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps({"machine": machine(), "results": rows}, indent=2))
        return 0
    print(machine_line())
    print(
        f"{'encoder':<8} {'prompts':>8} {'written MB':>11} {'wchar MB':>9} {'WAL peak MB':>12} "
        f"{'file MB':>8} {'x file':>7} {'1st pass s':>11} {'2nd pass s':>11}"
    )
    mb = 1e6
    for r in rows:
        print(
            f"{r['encoder']:<8} {r['prompts']:>8,} {r['write_bytes'] / mb:>11.1f} "
            f"{r['wchar'] / mb:>9.1f} {r['wal_peak_bytes'] / mb:>12.1f} "
            f"{r['file_bytes'] / mb:>8.1f} {r['written_per_stored']:>7.1f} "
            f"{r['first_pass_s']:>11.2f} {r['second_pass_s']:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
