"""Measure the packaged encoders: per-text latency and batched throughput.

For each encoder (minilm, minilm-onnx, minilm-static, static) on ~200 varied prompts, in one
process: load time, p50/p95 latency of encoding one text at a time, and
throughput when encoding all of them in batches of 64. Thread count is fixed
(default 2) so figures compare across machines. ``--long`` times instead one long
prompt (10 KB, 100 KB, 1 MB of words, and of one word) through minilm and minilm-onnx,
tokenized as they are (only the prefix whose 256 tokens are kept) and whole.

    .venv/bin/python benchmarks/encoder_latency.py [--threads 2] [--repeats 3] [--long] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np
from machine import machine, machine_line

from routerllm.checks import MAX_ENCODER_PROMPTS
from routerllm.cli_args import (
    TIMED_REPEATS_RANGE,
    DefaultsHelpFormatter,
    threads_arg,
    timed_repeats_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.encoders.base import Encoder

SPECS = ("minilm", "minilm-onnx", "minilm-static", "static")

_TASKS = [
    "Write a Python function that {}.",
    "Explain in simple terms {}.",
    "Fix the bug in this code, which {}:\n```python\ndef f(xs):\n    return [x for x in xs if x]\n```",
    "Give three bullet points on {}.",
    "Translate to French: {}.",
    "Prove or disprove: {}.",
    "{}?",
    "Summarise the following paragraph in one sentence. {}",
]
_TOPICS = [
    "reverses a linked list",
    "how a hash map handles collisions",
    "parses ISO 8601 dates without external libraries",
    "why the sky is blue",
    "the difference between TCP and UDP",
    "the sum of two odd numbers is even",
    "what is the capital of Australia",
    "merges two sorted arrays in linear time",
    "the causes of the French Revolution",
    "how vaccines train the immune system",
    "computes the Levenshtein distance between two strings",
    "the trade-offs of microservices versus a monolith",
    "every prime greater than 3 is of the form 6k plus or minus 1",
    "a haiku about autumn rain",
    "retries an HTTP request with exponential backoff",
    "how photosynthesis stores energy",
    "the main ideas of Keynesian economics",
    "validates an email address with a regular expression",
    "the plot of Hamlet",
    "sorts a dictionary by value",
    "how gradient descent finds a minimum",
    "implements an LRU cache",
    "why the square root of 2 is irrational",
    "the history of the printing press",
    "reads a CSV file and prints the average of a column",
]
_FILLER = (
    "The committee met on Tuesday to review the quarterly results, which showed steady "
    "growth in every region except the north, where supply problems delayed two product "
    "launches and forced a revision of the annual forecast. "
)


def make_prompts(n: int = 200, seed: int = 0) -> list[str]:
    """n varied prompts (code, maths, general, long summaries), reproducible from the seed."""
    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(n):
        task = _TASKS[i % len(_TASKS)]
        topic = _TOPICS[int(rng.integers(len(_TOPICS)))]
        text = task.format(topic)
        if task.startswith("Summarise"):
            text += " " + _FILLER * int(rng.integers(1, 6))
        prompts.append(text)
    return prompts


def build(spec: str, threads: int) -> Encoder:
    from routerllm.encoders import create_encoder
    from routerllm.encoders.minilm import MiniLMEncoder, OnnxMiniLMEncoder

    if spec == "minilm":
        return MiniLMEncoder(threads=threads)
    if spec == "minilm-onnx":
        return OnnxMiniLMEncoder(threads=threads)
    return create_encoder(spec)  # static tables: no threads


def measure(spec: str, prompts: list[str], threads: int, repeats: int) -> dict[str, Any]:
    start = time.perf_counter()
    encoder = build(spec, threads)
    encoder.encode(prompts[:8])  # loads lazily-loaded models and warms caches
    load_s = time.perf_counter() - start
    single_ms = []
    for text in prompts:
        t0 = time.perf_counter()
        encoder.encode([text])
        single_ms.append((time.perf_counter() - t0) * 1000)
    batch_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        encoder.encode(prompts, batch_size=64)
        batch_s.append(time.perf_counter() - t0)
    return {
        "encoder": spec,
        "dim": encoder.dim,
        "load_s": round(load_s, 3),
        "p50_ms": round(float(np.percentile(single_ms, 50)), 3),
        "p95_ms": round(float(np.percentile(single_ms, 95)), 3),
        "batch64_texts_per_s": round(len(prompts) / statistics.median(batch_s), 1),
    }


LONG_SIZES = (10_000, 100_000, 1_000_000)


def measure_long(spec: str, threads: int, repeats: int) -> list[dict[str, Any]]:
    """Median ms to encode one long prompt, as the encoder does (a prefix tokenized) and
    with the whole text tokenized (the prefix cutter switched off)."""
    encoder = build(spec, threads)
    encoder.encode(["warm up"])
    rows = []
    for kind, unit in (("words", _FILLER), ("one word", "x")):
        for size in LONG_SIZES:
            text = (unit * (size // len(unit) + 1))[:size]
            row: dict[str, Any] = {"encoder": spec, "prompt": kind, "chars": size}
            cutter = encoder._cutter  # type: ignore[attr-defined]
            for name, active in (("cut_ms", cutter), ("whole_ms", None)):
                encoder._cutter = active  # type: ignore[attr-defined]
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    encoder.encode([text])
                    times.append((time.perf_counter() - t0) * 1000)
                row[name] = round(statistics.median(times), 1)
            encoder._cutter = cutter  # type: ignore[attr-defined]
            rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--threads", type=threads_arg, default=2)
    ap.add_argument(
        "--repeats",
        type=timed_repeats_arg,
        default=3,
        help=f"batched runs; the median is reported, {TIMED_REPEATS_RANGE}",
    )
    ap.add_argument("--prompts", type=whole_number_arg(1, MAX_ENCODER_PROMPTS), default=200, help=f"prompts timed, {whole_range(1, MAX_ENCODER_PROMPTS)}")  # fmt: skip
    ap.add_argument("--long", action="store_true", help="time long prompts (see above)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    # OpenMP/BLAS pools of the libraries the encoders import later (torch) follow these.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.long:
        long_rows = [
            r
            for s in ("minilm", "minilm-onnx")
            for r in measure_long(s, args.threads, args.repeats)
        ]
        if args.json:
            print(json.dumps({"machine": machine(), "threads": args.threads, "results": long_rows}, indent=2))  # fmt: skip
            return 0
        print(machine_line())
        print(f"one long prompt, {args.threads} threads, median of {args.repeats}")
        w = name_width(long_rows)
        print(f"{'encoder':<{w}} {'prompt':<9} {'chars':>9} {'prefix ms':>10} {'whole ms':>9}")
        for r in long_rows:
            print(
                f"{r['encoder']:<{w}} {r['prompt']:<9} {r['chars']:>9,} {r['cut_ms']:>10.1f} "
                f"{r['whole_ms']:>9.1f}"
            )
        return 0
    prompts = make_prompts(args.prompts)
    rows = [measure(spec, prompts, args.threads, args.repeats) for spec in SPECS]
    context = {
        "prompts": len(prompts),
        "mean_prompt_chars": round(statistics.mean(len(p) for p in prompts)),
        "threads": args.threads,
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps({"machine": machine(), "context": context, "results": rows}, indent=2))  # fmt: skip
        return 0
    print(machine_line())
    print(
        f"{context['prompts']} prompts (mean {context['mean_prompt_chars']} chars), "
        f"{args.threads} threads; texts/s @64: the median of {args.repeats} batched runs"
    )
    print("\n".join(latency_table(rows)))
    return 0


def latency_table(rows: list[dict[str, Any]]) -> list[str]:
    """The header and one line per encoder of ``measure``'s rows, the first column as
    wide as the longest name."""
    w = name_width(rows)
    lines = [
        f"{'encoder':<{w}} {'dim':>4} {'load s':>7} {'p50 ms':>8} {'p95 ms':>8} {'texts/s @64':>12}"
    ]
    for r in rows:
        lines.append(
            f"{r['encoder']:<{w}} {r['dim']:>4} {r['load_s']:>7.2f} {r['p50_ms']:>8.3f} "
            f"{r['p95_ms']:>8.3f} {r['batch64_texts_per_s']:>12.1f}"
        )
    return lines


def name_width(rows: list[dict[str, Any]]) -> int:
    """The width of the encoder column: its header's or the longest name's."""
    return max(len("encoder"), *(len(r["encoder"]) for r in rows))


if __name__ == "__main__":
    raise SystemExit(main())
