"""Decision latency on a busy machine: thread pools as they are, or limited to one.

The default learned router (quality, on `minilm-static`) and the rules router (a
reference that does no matrix work) decide one prompt at a time (p50/p95 ms) and in
batches of 64 (prompts/s), (1) on the machine as it is and (2) while llama.cpp
generates on the local ladder's smallest model in another process (a server routing
the next request while it answers one), each with the BLAS thread pools as numpy
loaded them and limited to one thread as an open ``RouterLLM`` holds them
(``routerllm.blas_threads``, around the timed calls). The
configurations are interleaved, each repeat in another order; the table gives the
median over the repeats. The quality router is trained on synthetic prompts, as in
`router_latency.py`: latency does not depend on what it learned.

    .venv/bin/python benchmarks/busy_routing.py [--n 200] [--repeats 3] [--config local] [--model smollm2-135m] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from machine import machine, machine_line

from routerllm.blas_threads import hold_one_thread
from routerllm.cli_args import DefaultsHelpFormatter, count_arg, whole_number_arg
from routerllm.config import load_config
from routerllm.data.synthetic import generate
from routerllm.eval.classifier_metrics import latency_stats, throughput
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import Candidate, create_router

MODELS = [
    Candidate("light", 0.135, "light"),
    Candidate("medium", 0.49, "medium"),
    Candidate("heavy", 1.54, "heavy"),
]
PROMPT = "Write a Python function that merges two sorted lists, with tests and a docstring."


def _generate_while(config: str, model: str, go: Any, stop: Any, ready: Any, idle: Any) -> None:
    """The load: ``model`` generating, 32 tokens at a time, while ``go`` is set."""
    from routerllm.backends.base import GenerationRequest, create_backend

    loaded = load_config(config)
    try:  # a model that cannot run (its file missing): one line, then the parent's
        backend = create_backend(loaded.model(model), loaded.generation, loaded.manager.n_threads)  # fmt: skip
        backend.generate(GenerationRequest("warm up", max_new_tokens=4, temperature=0.0))
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return
    ready.set()
    while not stop.is_set():
        if go.is_set():
            idle.clear()
            backend.generate(GenerationRequest(PROMPT, max_new_tokens=32, temperature=0.7))
        else:
            idle.set()
            time.sleep(0.01)


class _Holder:
    """What holds the limit here, as an open ``RouterLLM`` does."""


@contextlib.contextmanager
def one_thread(limit: bool) -> Iterator[None]:
    """The BLAS thread pools at one thread, as an open ``RouterLLM`` holds them
    (``routerllm.blas_threads``), or left as they are."""
    if not limit:
        yield
        return
    holder = _Holder()  # alive while timed: the limit is let go when it is collected
    let_go = hold_one_thread(holder)
    try:
        yield
    finally:
        let_go()


def _switch_cost(repeats: int = 2000) -> dict[str, float]:
    """Microseconds one ``threadpool_limits(1)`` costs, entered and left, and one with
    a ``ThreadpoolController`` made once (its ``limit``)."""
    from threadpoolctl import ThreadpoolController, threadpool_limits

    controller = ThreadpoolController()
    costs = {}
    for name, make in (
        ("threadpool_limits_us", lambda: threadpool_limits(limits=1)),
        ("controller_limit_us", lambda: controller.limit(limits=1)),
    ):
        start = time.perf_counter()
        for _ in range(repeats):
            with make():
                pass
        costs[name] = (time.perf_counter() - start) / repeats * 1e6
    return costs


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--n", type=count_arg, default=200, help="prompts to time, at most 600")
    ap.add_argument("--repeats", type=whole_number_arg(1, 20), default=3, help="1 to 20")
    ap.add_argument("--config", default="local")
    ap.add_argument("--model", default="smollm2-135m", help="the model that generates")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:  # before the router trains, and in this process: the generating one's is a traceback
        load_config(args.config).model(args.model)
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    items = generate(2000, 0)
    train, held_out = items[:1400], items[1400:]
    if args.n > len(held_out):
        ap.error(f"--n: at most {len(held_out)}, the synthetic prompts not trained on")
    probe = [i.text for i in held_out[: args.n]]
    outcomes = (np.random.default_rng(0).random((len(train), 3)) < [0.4, 0.6, 0.8]).astype(float)
    quality = create_router(
        "quality",
        MODELS,
        0,
        encoder="minilm-static",
        c_grid=[1.0],
        k_grid=[20],
        weights=[0.5],
        folds=2,  # fmt: skip
    )
    quality.fit([i.text for i in train], outcomes, [m.name for m in MODELS])  # type: ignore[attr-defined]
    routers = [create_router("rules", MODELS, 0), quality]

    spawn = mp.get_context("spawn")  # a fresh process: none of this one's thread pools
    go, stop, ready, idle = spawn.Event(), spawn.Event(), spawn.Event(), spawn.Event()
    worker = spawn.Process(target=_generate_while, args=(args.config, args.model, go, stop, ready, idle))  # fmt: skip
    worker.start()
    while not ready.wait(1):
        if not worker.is_alive():  # its error (an unavailable model) is on stderr
            print(f"error: {args.model} did not start generating (above)", file=sys.stderr)
            return 2
    cells: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    loads = [os.getloadavg()[0]]
    try:
        for rep in range(args.repeats):
            for busy in (rep % 2 == 1, rep % 2 == 0):  # each first in every other repeat
                if busy:
                    go.set()
                    time.sleep(0.5)  # the generation under way
                else:
                    go.clear()
                    idle.wait(30)
                for limit in (False, True) if rep % 2 == 0 else (True, False):
                    for router in routers if rep % 2 == 0 else routers[::-1]:
                        with one_thread(limit):
                            lat = latency_stats(router.route, probe)
                            rate = throughput(router.route_batch, probe, 64)
                        key = (router.name, "generating" if busy else "as it is", "1" if limit else "as is")  # fmt: skip
                        cells.setdefault(key, []).append({"p50_ms": lat.p50_ms, "p95_ms": lat.p95_ms, "prompts_per_s": rate})  # fmt: skip
            loads.append(os.getloadavg()[0])
    finally:
        stop.set()
        go.clear()
        worker.join(60)
    from threadpoolctl import threadpool_info

    pools = [f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()]
    rows: list[dict[str, Any]] = [
        {"router": k[0], "load": k[1], "blas_threads": k[2], "repeats": len(v),
         **{m: statistics.median(c[m] for c in v) for m in ("p50_ms", "p95_ms", "prompts_per_s")},
         "p50_ms_range": [min(c["p50_ms"] for c in v), max(c["p50_ms"] for c in v)]}
        for k, v in sorted(cells.items())
    ]  # fmt: skip
    costs = _switch_cost()
    if args.json:
        print(json.dumps({"machine": machine(), "prompts": len(probe), "thread_pools": pools,
                          "load_average_1min": loads, **costs, "results": rows}, indent=2))  # fmt: skip
        return 0
    print(machine_line())
    print(f"thread pools as loaded: {', '.join(pools)}; 1-min load average {min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    print(f"{len(probe)} synthetic prompts; generating: {args.model} (config {args.config}) in another process")  # fmt: skip
    print(f"median of {args.repeats} interleaved repeats (range: their p50s)")
    print(f"{'router':<9}{'load':<12}{'BLAS threads':<14}{'p50 ms':>8}{'(range)':>14}{'p95 ms':>8}{'prompts/s (64)':>16}")  # fmt: skip
    for r in rows:
        low, high = r["p50_ms_range"]
        print(f"{r['router']:<9}{r['load']:<12}{r['blas_threads']:<14}{r['p50_ms']:>8.2f}{f'{low:.2f}-{high:.2f}':>14}{r['p95_ms']:>8.2f}{r['prompts_per_s']:>16.0f}")  # fmt: skip
    print(f"threadpool_limits(1) entered and left: {costs['threadpool_limits_us']:.1f} us; "
          f"a ThreadpoolController's limit(1): {costs['controller_limit_us']:.1f} us")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
