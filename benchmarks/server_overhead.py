"""How much time the HTTP layer of `routerllm serve` adds to a request.

The same prompts go alternately through the server (urllib, one client, on
127.0.0.1) and through ``RouterLLM.generate`` in the same process, each path first
for every other prompt, to one model
(routing skipped, the model loaded before timing), at temperature 0, so both
paths generate the same tokens. For each request it takes the wall time the
caller saw minus the latency the request reports (routing, loading and
generation, the parts CodeCarbon measures); the server's overhead is the
difference of the two paths' medians. That time is not in any measured
component of the request.

    .venv/bin/python benchmarks/server_overhead.py [--config local] [--model smollm2-135m] [--n 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from machine import print_figures
from scratch_logs import scratch_logs
from served import one_model_config, serving, unavailable

from routerllm.backends.base import GenerationRequest
from routerllm.checks import MAX_BENCHMARK_REQUESTS
from routerllm.cli_args import (
    DefaultsHelpFormatter,
    max_new_tokens_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.system import RouterLLM

TOPICS = ["lists", "dicts", "sets", "tuples", "generators", "decorators", "classes", "closures"]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--model", default="smollm2-135m")
    # at least 2: the p95 needs two
    ap.add_argument("--n", type=whole_number_arg(2, MAX_BENCHMARK_REQUESTS), default=30, help=f"requests per path, {whole_range(2, MAX_BENCHMARK_REQUESTS)}")  # fmt: skip
    ap.add_argument("--max-tokens", type=max_new_tokens_arg, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    prompts = [f"In one sentence, what are Python {TOPICS[i % len(TOPICS)]}? ({i})" for i in range(args.n)]  # fmt: skip
    config = one_model_config(args.config, args.model)
    if config is None:
        return 2
    with scratch_logs(config):
        with RouterLLM(config) as system:
            if unavailable(system, args.model):
                return 2
            with serving(system) as url:
                options = {"max_new_tokens": args.max_tokens, "temperature": 0.0}
                system.generate(GenerationRequest("warm up", **options), model=args.model, tag="bench")  # fmt: skip
                direct, http, latency = [], [], []
                for i, prompt in enumerate(prompts):
                    # each path first for every other prompt: what the first of a pair
                    # pays, or the second is spared, falls on both paths alike
                    for path in ("http", "direct") if i % 2 else ("direct", "http"):
                        if path == "direct":
                            start = time.perf_counter()
                            result = system.generate(GenerationRequest(prompt, **options), model=args.model, tag="bench")  # fmt: skip
                            direct.append(time.perf_counter() - start - result.latency_s)
                            continue
                        body = {"model": args.model, "messages": [{"role": "user", "content": prompt}],
                                "max_tokens": args.max_tokens, "temperature": 0}  # fmt: skip
                        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
                        start = time.perf_counter()
                        with urllib.request.urlopen(request) as answer:
                            facts = json.loads(answer.read())["routerllm"]
                        http.append(time.perf_counter() - start - facts["latency_s"])
                        latency.append(facts["latency_s"])
        row = {
            "model": args.model,
            "requests_per_path": args.n,
            "direct_unmeasured_ms_p50": 1000 * statistics.median(direct),
            "http_unmeasured_ms_p50": 1000 * statistics.median(http),
            "http_unmeasured_ms_p95": 1000 * statistics.quantiles(http, n=20)[-1],
            "server_overhead_ms_p50": 1000 * (statistics.median(http) - statistics.median(direct)),
            "request_latency_s_p50": statistics.median(latency),
        }
        row["overhead_share_of_request"] = row["server_overhead_ms_p50"] / 1000 / row["request_latency_s_p50"]  # fmt: skip
        print_figures(row, args.json, 28)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
