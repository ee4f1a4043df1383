"""Generation speed and measured energy while other processes load the CPU.

One local model (the local ladder's smallest by default) generates the same greedy
answer, measured by CodeCarbon (the config's carbon section; its tracking mode as
given, ``machine`` by default: where CodeCarbon estimates the CPU's power from the
machine's load, others' work is in it) with the machine as it is and with one and two
nice'd busy-loop processes running, at llama.cpp thread counts 1 and 2
(``manager.n_threads``; left out, RouterLLM gives llama.cpp one thread per core,
``os.cpu_count()``). The cells are interleaved, each repeat in another order; the
table gives the median over the repeats of tokens/s, energy per generated token, and
the share of the machine's CPU other processes used during the generation, as the
meter reads it (``carbon/cpu_share.py``; ``contended`` where above its 25 %).

    .venv/bin/python benchmarks/cpu_contention.py [--config local] [--model smollm2-135m] [--tokens 48] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
from typing import Any

from machine import machine, machine_line

from routerllm.backends.base import GenerationRequest, create_backend
from routerllm.carbon.codecarbon_meter import CodeCarbonMeter
from routerllm.carbon.cpu_share import CONTENDED_SHARE
from routerllm.cli_args import DefaultsHelpFormatter, max_new_tokens_arg, whole_number_arg
from routerllm.config import load_config
from routerllm.exceptions import RouterLLMError

PROMPT = "Write a Python function that merges two sorted lists, with a docstring and tests."
#: The busy-loop processes' niceness: below the generation, as nice'd test runs were.
NICENESS = 10


def _spin(stop: Any) -> None:
    """A nice'd busy loop until ``stop`` is set."""
    os.nice(NICENESS)
    n = 0
    while not stop.is_set():
        for _ in range(100_000):
            n += 1


def _cell(backend: Any, meter: CodeCarbonMeter, tokens: int, busy: int) -> dict[str, float]:
    spawn = mp.get_context("spawn")
    stop = spawn.Event()
    spinners = [spawn.Process(target=_spin, args=(stop,)) for _ in range(busy)]
    for p in spinners:
        p.start()
    try:
        request = GenerationRequest(PROMPT, max_new_tokens=tokens, temperature=0.0)
        with meter.measure("llm_inference") as slot:
            done = backend.generate(request)
    finally:
        stop.set()
        for p in spinners:
            p.join(30)
    m = slot.result
    n = max(done.completion_tokens, 1)
    return {
        "tokens": done.completion_tokens,
        "seconds": m.duration_s,
        "tokens_per_s": done.completion_tokens / m.duration_s if m.duration_s else 0.0,
        "kwh_per_token": m.energy_kwh / n,
        # -1: not known (not Linux), so that the median can be taken
        "others_cpu_share": -1.0 if m.others_cpu_share is None else m.others_cpu_share,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--model", default="smollm2-135m", help="the model that generates")
    ap.add_argument("--tokens", type=max_new_tokens_arg, default=48, help="tokens a generation")
    ap.add_argument("--repeats", type=whole_number_arg(1, 10), default=2, help="1 to 10")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        config = load_config(args.config)
        model = config.model(args.model)
        backends = {t: create_backend(model, config.generation, t) for t in (1, 2)}
        for b in backends.values():
            b.load()
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meter = CodeCarbonMeter(config.carbon.country_iso_code, config.carbon.tracking_mode)
    cells: dict[tuple[int, int], list[dict[str, float]]] = {}
    keys = [(threads, busy) for busy in (0, 1, 2) for threads in (1, 2)]
    try:
        for b in backends.values():  # warm: the first generation's set-up is not timed
            b.generate(GenerationRequest(PROMPT, max_new_tokens=4, temperature=0.0))
        for rep in range(args.repeats):
            for threads, busy in keys if rep % 2 == 0 else keys[::-1]:
                cell = _cell(backends[threads], meter, args.tokens, busy)
                cells.setdefault((threads, busy), []).append(cell)
    finally:
        meter.close()
        for b in backends.values():
            b.unload()
    rows = [
        {"n_threads": t, "busy_loops": b, "repeats": len(v),
         **{k: statistics.median(c[k] for c in v) for k in v[0]}}
        for (t, b), v in sorted(cells.items())
    ]  # fmt: skip
    if args.json:  # a share not known (not Linux) is null
        for r in rows:
            r["others_cpu_share"] = None if r["others_cpu_share"] < 0 else r["others_cpu_share"]
        print(json.dumps({"machine": machine(), "model": args.model, "method": meter.method,
                          "default_n_threads": os.cpu_count(), "results": rows}, indent=2))  # fmt: skip
        return 0
    print(machine_line())
    print(f"{args.model} (config {args.config}), {args.tokens} new tokens greedy, measured by "
          f"{meter.method}; default n_threads here: {os.cpu_count()} (os.cpu_count())")  # fmt: skip
    print(f"median of {args.repeats} interleaved repeats; busy loops at nice {NICENESS}")
    print(f"{'n_threads':<10}{'busy loops':<11}{'tokens':>7}{'s':>8}{'tokens/s':>10}"
          f"{'J/token':>10}{'others CPU':>12}")  # fmt: skip
    for r in rows:
        share = r["others_cpu_share"]
        said = "unknown" if share < 0 else f"{share:.0%}" + (" *" if share > CONTENDED_SHARE else "")  # fmt: skip
        print(f"{r['n_threads']:<10}{r['busy_loops']:<11}{r['tokens']:>7.0f}{r['seconds']:>8.2f}"
              f"{r['tokens_per_s']:>10.1f}{r['kwh_per_token'] * 3.6e6:>10.3f}{said:>12}")  # fmt: skip
    print(f"* contended: others used more than {CONTENDED_SHARE:.0%} of the machine's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
