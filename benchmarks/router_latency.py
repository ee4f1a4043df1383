"""Decision latency of the learned routers on this machine: one prompt at a time
(p50/p95/p99 ms) and batched throughput (prompts/s, batch 64), per encoder.

A decision = encode the prompt + predict + choose. The routers are trained on
synthetic prompts (latency does not depend on what they learned). Embeddings
are NOT cached here: every prompt is encoded, as a new request would be.

    .venv/bin/python benchmarks/router_latency.py [--encoders minilm-static static minilm-onnx minilm] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from machine import machine, machine_line

from routerllm.cli_args import DefaultsHelpFormatter, count_arg, encoder_arg
from routerllm.data.synthetic import generate
from routerllm.eval.classifier_metrics import latency_stats, throughput
from routerllm.routers.base import Candidate, create_router
from routerllm.routers.classifier import EmbeddingClassifierRouter

MODELS = [
    Candidate("light", 0.135, "light"),
    Candidate("medium", 0.49, "medium"),
    Candidate("heavy", 1.54, "heavy"),
]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument(
        "--encoders",
        nargs="+",
        type=encoder_arg,
        default=["minilm-static", "static", "minilm-onnx", "minilm"],
    )
    ap.add_argument("--n", type=count_arg, default=600, help="prompts to time, at most 600")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    items = generate(2000, 0)
    train, held_out = items[:1400], items[1400:]
    if args.n > len(held_out):  # a slice would time fewer, silently
        ap.error(f"--n: at most {len(held_out)}, the synthetic prompts not trained on")
    probe = [i.text for i in held_out[: args.n]]
    # here, not at the top: torch takes seconds to import, and --help or a refused
    # argument should not wait for it
    from routerllm.training.trainer import TrainingArguments

    rng = np.random.default_rng(0)
    outcomes = (rng.random((len(train), 3)) < [0.4, 0.6, 0.8]).astype(float)
    rows = []
    for spec in args.encoders:
        quality = create_router(
            "quality", MODELS, 0, encoder=spec, c_grid=[1.0], k_grid=[20], weights=[0.5], folds=2
        )
        quality.fit([i.text for i in train], outcomes, [m.name for m in MODELS])  # type: ignore[attr-defined]
        clf = EmbeddingClassifierRouter(MODELS, 0, encoder=spec, mode="frozen")
        clf.fit(
            train[:400],
            [],
            TrainingArguments(epochs=1, learning_rate=1e-3, warmup_steps=0, progress=False),
        )
        moe = create_router("moe", MODELS, 0, encoder=spec, epochs=5)
        moe.fit([i.text for i in train], outcomes, [m.name for m in MODELS])  # type: ignore[attr-defined]
        for router in (quality, moe, clf):
            lat = latency_stats(lambda p, r=router: r.route(p), probe)
            rate = throughput(lambda b, r=router: r.route_batch(list(b)), probe, batch_size=64)
            rows.append({"router": router.name, "encoder": spec, "p50_ms": lat.p50_ms, "p95_ms": lat.p95_ms,
                         "p99_ms": lat.p99_ms, "prompts_per_s": rate})  # fmt: skip
    if args.json:
        # the machine and the prompts timed, as the text says them
        print(json.dumps({"machine": machine(), "prompts": len(probe), "results": rows}, indent=2))  # fmt: skip
        return 0
    print(machine_line())
    print(f"{len(probe)} synthetic prompts; targets: p50 <= 5 ms, >= 500 prompts/s")
    print(f"{'router':<12}{'encoder':<14}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'prompts/s':>11}")
    for r in rows:
        print(
            f"{r['router']:<12}{r['encoder']:<14}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['prompts_per_s']:>11.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
