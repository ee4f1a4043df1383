"""Time to the first text of a streamed answer, against the whole answer's time.

The same prompts go alternately to `routerllm serve` (in this process, on
127.0.0.1, one urllib client) streamed (``"stream": true``) and not, each kind first
for every other prompt, to one model
(routing skipped, the model loaded before timing), at temperature 0, so both
requests generate the same tokens. For each it takes the time to the first
content chunk (streamed) and to the answer's end (both): the streamed total
against the plain one is what streaming costs the generation.

    .venv/bin/python benchmarks/streaming.py [--config local] [--model smollm2-135m] [--n 5] [--max-tokens 128] [--json]
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


def _timed(url: str, body: dict[str, object]) -> tuple[float | None, float, str]:
    """(seconds to the first content piece or None unstreamed, seconds to the end, text)."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
    start, first, text = time.perf_counter(), None, ""
    with urllib.request.urlopen(request) as answer:
        if not body.get("stream"):
            text = json.loads(answer.read())["choices"][0]["message"]["content"]
            return None, time.perf_counter() - start, text
        for line in answer:
            data = line.decode().strip().removeprefix("data: ")
            if not data or data == "[DONE]":
                continue
            choices = json.loads(data)["choices"]  # the usage chunk has none
            if choices and (piece := choices[0]["delta"].get("content")):
                first = first if first is not None else time.perf_counter() - start
                text += piece
    return first, time.perf_counter() - start, text


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=whole_number_arg(1, MAX_BENCHMARK_REQUESTS), default=5, help=f"requests of each kind, {whole_range(1, MAX_BENCHMARK_REQUESTS)}")  # fmt: skip
    ap.add_argument("--max-tokens", type=max_new_tokens_arg, default=128)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    prompts = [f"Explain what Python {TOPICS[i % len(TOPICS)]} are. ({i})" for i in range(args.n)]
    config = one_model_config(args.config, args.model)
    if config is None:
        return 2
    with scratch_logs(config), RouterLLM(config) as system:
        if unavailable(system, args.model):
            return 2
        with serving(system) as url:
            options = {"max_new_tokens": args.max_tokens, "temperature": 0.0}
            system.generate(GenerationRequest("warm up", **options), model=args.model, tag="bench")
            first, streamed, plain, same = [], [], [], 0
            for i, prompt in enumerate(prompts):
                body: dict[str, object] = {"model": args.model, "messages": [{"role": "user", "content": prompt}],
                                           "max_tokens": args.max_tokens, "temperature": 0}  # fmt: skip
                # each kind first for every other prompt: what the first of a pair pays,
                # or the second is spared, falls on both sides of the ratio alike
                if i % 2:
                    at, total, pieces = _timed(url, {**body, "stream": True})
                    _, whole, text = _timed(url, body)
                else:
                    _, whole, text = _timed(url, body)
                    at, total, pieces = _timed(url, {**body, "stream": True})
                plain.append(whole)
                streamed.append(total)
                first.append(at if at is not None else total)
                same += pieces == text
    row = {
        "model": args.model,
        "requests_of_each_kind": args.n,
        "max_tokens": args.max_tokens,
        "first_text_s_p50": statistics.median(first),
        "streamed_total_s_p50": statistics.median(streamed),
        "plain_total_s_p50": statistics.median(plain),
        "streamed_over_plain": statistics.median(streamed) / statistics.median(plain),
        "same_text": f"{same}/{args.n}",
    }
    print_figures(row, args.json, 24)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
