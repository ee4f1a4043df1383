"""Measure each configured local model: load time, decode speed, energy per token, memory.

Runs every model of a config on the same fixed prompts through the real
RouterLLM path (model forced, CodeCarbon on) and prints one row per model.
The figures in configs/local.yaml come from this script.

    .venv/bin/python benchmarks/measure_local_models.py [--config local] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

from machine import machine, machine_line
from scratch_logs import scratch_logs

from routerllm.backends.base import GenerationRequest
from routerllm.cli_args import DefaultsHelpFormatter, max_new_tokens_arg
from routerllm.config import load_config
from routerllm.exceptions import RouterLLMError
from routerllm.system import RouterLLM

PROMPTS = [
    "Write a Python function that reverses a linked list.",
    "Explain what a hash map is and when to use one.",
    "Write a short story about a robot learning to paint.",
    "Implement binary search in Python and give its complexity.",
]


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=128)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        config = load_config(args.config)
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with scratch_logs(config, prefix="routerllm-measure-"):
        config.generation.temperature = 0.0
        rows = []
        with RouterLLM(config) as system:
            try:
                system.available_models()  # none: each model's reason, not an empty table
            except RouterLLMError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            method = system.meter.method
            for model in config.models_by_size():
                reason = system.manager.availability(model.name)
                if reason:
                    print(f"{model.name}: unavailable ({reason})", file=sys.stderr)
                    continue
                before = rss_gb()
                results = [
                    system.generate(
                        GenerationRequest(p, max_new_tokens=args.max_new_tokens), model=model.name
                    )
                    for p in PROMPTS
                ]
                peak = rss_gb()
                gen = [r.components["llm_inference"] for r in results]
                load = results[0].components["model_loading"]
                out_tokens = sum(r.completion_tokens for r in results)
                in_tokens = sum(r.prompt_tokens for r in results)
                gen_s = sum(m.duration_s for m in gen)
                gen_kwh = sum(m.energy_kwh for m in gen)
                rows.append(
                    {
                        "model": model.name,
                        "load_s": load.duration_s,
                        "load_kwh": load.energy_kwh,
                        "prompt_tokens": in_tokens,
                        "completion_tokens": out_tokens,
                        "decode_tok_per_s": out_tokens / gen_s,  # prompt processing included
                        # per generated token, prompt processing included (the config's unit)
                        "energy_per_token_kwh": gen_kwh / out_tokens,
                        "co2_per_token_kg": sum(m.co2_kg for m in gen) / out_tokens,
                        "peak_rss_growth_gb": max(0.0, peak - before),
                    }
                )
                system.manager.unload(model.name)
        if args.json:
            print(json.dumps({"machine": machine(), "method": method, "models": rows}, indent=2))
            return 0
        print(machine_line())
        print(
            f"carbon method: {method}; {len(PROMPTS)} prompts x {args.max_new_tokens} max new tokens, greedy"
        )
        print(
            f"{'model':<22}{'load s':>8}{'load kWh':>11}{'decode tok/s':>13}{'kWh/token':>11}"
            f"{'mgCO2/token':>12}{'RSS +GB':>9}"
        )
        for r in rows:
            print(
                f"{r['model']:<22}{r['load_s']:>8.2f}{r['load_kwh']:>11.2e}{r['decode_tok_per_s']:>13.1f}"
                f"{r['energy_per_token_kwh']:>11.2e}{r['co2_per_token_kg'] * 1e6:>12.4f}"
                f"{r['peak_rss_growth_gb']:>9.2f}"
            )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
