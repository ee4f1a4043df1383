"""What `routerllm serve`'s `GET /metrics` costs: a scrape's time, and the time each
request's counting adds to it, against one generation's.

The config's ``--model`` entry is copied into ``--models`` models (``<model>-0``, ...),
with hourly and daily CO2 and cost budgets (four windows, whose use each scrape reads
from the request log). ``--rows`` requests per model are logged through the server's
own request log, each counted by ``ServerMetrics`` as a served request is (every model,
component and latency series filled); then ``GET /metrics`` is timed over HTTP on
127.0.0.1 (``--scrapes`` times), and the counting of one logged row
(``ServerMetrics.logged``) in-process. One real generation of ``--model`` (warm,
``--max-tokens``) gives what a request costs beside it.

    .venv/bin/python benchmarks/metrics_cost.py [--config local] [--model smollm2-135m] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
import uuid
from datetime import datetime, timezone

from machine import print_figures
from scratch_logs import scratch_logs
from served import one_model_config, serving, unavailable

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import COMPONENTS, Measurement
from routerllm.cli_args import DefaultsHelpFormatter, max_new_tokens_arg, whole_number_arg
from routerllm.system import RouterLLM


def row(model: str, i: int) -> RequestRecord:
    """A logged request to ``model`` with each component, its figures varied by ``i``."""
    parts = {c: Measurement(c, 0.01 * (i % 7 + 1), 1e-6 * (i % 5 + 1), 5e-8 * (i % 3 + 1), "codecarbon:load-estimate") for c in COMPONENTS}  # fmt: skip
    return RequestRecord(
        id=uuid.uuid4().hex, timestamp=datetime.now(timezone.utc).isoformat(),
        prompt_sha256="0" * 64, prompt_chars=40, model=model, router="rules", confidence=0.9,
        prompt_tokens=20 + i % 9, completion_tokens=30 + i % 11, latency_s=0.05 * (i % 40 + 1),
        cost_usd=1e-6 * (i % 4), components=parts, tag="bench", finish_reason=("stop", "length")[i % 2],
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--models", type=whole_number_arg(1, 100), default=10)
    ap.add_argument("--rows", type=whole_number_arg(1, 10_000), default=200, help="logged requests per model")  # fmt: skip
    ap.add_argument("--scrapes", type=whole_number_arg(2, 1000), default=50)
    ap.add_argument("--max-tokens", type=max_new_tokens_arg, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    config = one_model_config(args.config, args.model)
    if config is None:
        return 2
    entry = config.model(args.model)
    names = [f"{args.model}-{i}" for i in range(args.models)]
    config.models = [entry.model_copy(update={"name": n}) for n in names]
    config.budgets = config.budgets.model_validate({"co2_kg": {"hourly": 10.0, "daily": 100.0}, "cost_usd": {"hourly": 10.0, "daily": 100.0}})  # fmt: skip
    with scratch_logs(config), RouterLLM(config) as system:
        if unavailable(system, names[0]):
            return 2
        with serving(system) as url:
            for i in range(args.rows):
                for name in names:
                    system.log.append(row(name, i))
            base = url.removesuffix("/v1/chat/completions")
            scrapes, size = [], 0
            for _ in range(args.scrapes):
                start = time.perf_counter()
                with urllib.request.urlopen(base + "/metrics") as answer:
                    size = len(answer.read())
                scrapes.append(time.perf_counter() - start)
            records = [row(names[i % len(names)], i) for i in range(10_000)]
            start = time.perf_counter()
            for r in records:  # what the log does beside each row it takes: the server's counting
                for observe in system.log.observers:
                    observe(r)
            counting_s = (time.perf_counter() - start) / len(records)
            options = {"max_new_tokens": args.max_tokens, "temperature": 0.0}
            system.generate(GenerationRequest("warm up", **options), model=names[0], tag="bench")
            generated = system.generate(GenerationRequest("In one sentence, what is a Python list?", **options), model=names[0], tag="bench")  # fmt: skip
    figures = {
        "models": args.models,
        "logged_rows": args.rows * args.models,
        "scrape_bytes": size,
        "scrapes": args.scrapes,
        "scrape_ms_p50": 1000 * statistics.median(scrapes),
        "scrape_ms_p95": 1000 * statistics.quantiles(scrapes, n=20)[-1],
        "requests_counted": len(records),
        "counting_us_per_request": 1e6 * counting_s,
        "generation_s": generated.latency_s,
        "counting_share_of_generation": counting_s / generated.latency_s,
    }
    print_figures(figures, args.json, 30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
