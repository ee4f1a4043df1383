"""Measure each configured local model: load time, decode speed, energy per token, memory.

Runs every model of a config on the same fixed prompts through the real
RouterLLM path (model forced, CodeCarbon on) and prints one row per model.
Then each model reads long prompts of a few lengths (``--prompt-tokens``, at most
half its context) for a few new tokens, and the energy and time of all its requests
are fitted per prompt token and per output token (non-negative least squares, as
the CarbonPredictor fits a model's log): the config's ``energy_per_prompt_token_kwh``
and ``energy_per_token_kwh``. The figures in configs/local.yaml come from this script.

    .venv/bin/python benchmarks/measure_local_models.py [--config local] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from typing import Any

import numpy as np
from machine import machine, machine_line
from scratch_logs import scratch_logs

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.predictor import CarbonPredictor, nonnegative_fit
from routerllm.cli_args import (
    DefaultsHelpFormatter,
    max_new_tokens_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.config import load_config
from routerllm.config_sections import MAX_CONTEXT_LENGTH, BudgetConfig
from routerllm.exceptions import RouterLLMError
from routerllm.routed_result import RoutedResult
from routerllm.system import RouterLLM

PROMPTS = [
    "Write a Python function that reverses a linked list.",
    "Explain what a hash map is and when to use one.",
    "Write a short story about a robot learning to paint.",
    "Implement binary search in Python and give its complexity.",
]


#: New tokens asked after each long prompt: enough to end it, few enough that reading
#: the prompt is most of the request.
LONG_PROMPT_NEW_TOKENS = 8


def long_prompt(tokens: int, index: int) -> str:
    """About ``tokens`` tokens of code (about 4 characters a token) and a question on it;
    each ``index`` starts differently, so no request reads another's prompt."""
    lines = [f"# listing {index}"]
    i = 0
    while sum(len(line) + 1 for line in lines) < 4 * tokens:
        lines.append(f"def step_{index}_{i}(x):\n    return x * {i + 3} + {index + i}\n")
        i += 1
    return "\n".join(lines) + "\nWhat does the last function above return for x = 2?"


def fitting(system: RouterLLM, model: str, tokens: int, index: int) -> GenerationRequest:
    """A long prompt of about ``tokens`` tokens as ``model`` reads it (chat template
    included; counted by its GGUF's vocabulary), at most half its configured context:
    code reads about 2 characters a token on SmolLM2's vocabulary, not 4."""
    goal = min(tokens, system.config.model(model).context_length // 2)
    target = goal
    for _ in range(4):
        request = GenerationRequest(long_prompt(target, index), max_new_tokens=LONG_PROMPT_NEW_TOKENS)  # fmt: skip
        counted = system.manager.prompt_tokens_now(model, request)
        if counted is None or abs(counted - goal) <= 0.05 * goal:
            break
        target = max(1, int(target * goal / counted))
    return request


def fitted_rates(prompt: list[int], output: list[int], y: list[float]) -> tuple[float, float]:
    """``y`` per prompt token and per output token (non-negative least squares)."""
    return nonnegative_fit(np.array(prompt), np.array(output), np.array(y))


def long_prompt_figures(
    system: RouterLLM, model: str, results: list[RoutedResult], lengths: list[int]
) -> dict[str, Any]:
    """``model`` reads a long prompt of each of ``lengths``; fitted over those and
    ``results`` (the fixed prompts'): kWh and seconds per prompt and per output token.
    The longest prompt's cold-start prediction (the config's figures, no history) as the
    config gives them and without its figures per prompt token, and what it spent."""
    if not lengths:
        return {}
    asked = [fitting(system, model, n, i) for i, n in enumerate(lengths)]
    longs = [system.generate(request, model=model) for request in asked]
    every = results + longs
    tokens = [r.prompt_tokens for r in every], [r.completion_tokens for r in every]
    kwh_p, kwh_o = fitted_rates(*tokens, [r.components["llm_inference"].energy_kwh for r in every])
    s_p, s_o = fitted_rates(*tokens, [r.components["llm_inference"].duration_s for r in every])
    at = max(range(len(longs)), key=lambda i: longs[i].prompt_tokens)
    longest, prompt = longs[at], asked[at].prompt
    cfg = system.config
    unpriced = cfg.model_copy(update={"models": [m.model_copy(update={"energy_per_prompt_token_kwh": None, "co2_per_prompt_token_kg": None}) for m in cfg.models]})  # fmt: skip
    cold = [
        CarbonPredictor(c).predict(
            model, len(prompt), LONG_PROMPT_NEW_TOKENS, prompt_tokens=longest.prompt_tokens
        )  # fmt: skip
        for c in (cfg, unpriced)
    ]
    return {
        "long_prompt_tokens": [r.prompt_tokens for r in longs],
        "fitted_kwh_per_prompt_token": kwh_p,
        "fitted_kwh_per_output_token": kwh_o,
        "prompt_tok_per_s": 1 / s_p if s_p > 0 else None,
        "output_tok_per_s": 1 / s_o if s_o > 0 else None,
        "longest_prompt": {
            "prompt_tokens": longest.prompt_tokens,
            "completion_tokens": longest.completion_tokens,
            "measured_kwh": longest.components["llm_inference"].energy_kwh,
            "predicted_kwh": cold[0].energy_kwh if cold[0] else None,
            "predicted_kwh_without_prompt_figures": cold[1].energy_kwh if cold[1] else None,
        },
    }


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=128)
    ap.add_argument(
        "--prompt-tokens",
        type=whole_number_arg(1, MAX_CONTEXT_LENGTH),
        nargs="*",
        default=[250, 1000, 2000],
        help=f"lengths of the long prompts read per model, {whole_range(1, MAX_CONTEXT_LENGTH)} "
        "(at most half its context is read); none: no per-prompt-token fit",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        config = load_config(args.config)
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with scratch_logs(config, prefix="routerllm-measure-"):
        config.generation.temperature = 0.0
        # every request measured: the packaged per-request CO2 budget refused a long prompt
        # on a model whose first 4 requests could not tell its prompt from its output costs
        config.budgets = BudgetConfig()
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
                        **long_prompt_figures(system, model.name, results, args.prompt_tokens),
                    }
                )
                system.manager.unload(model.name)
        if args.json:
            conditions = {
                "prompts": len(PROMPTS),
                "max_new_tokens": args.max_new_tokens,
            }  # as the text says them
            print(json.dumps({"machine": machine(), "method": method, **conditions, "models": rows}, indent=2))  # fmt: skip
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
        if not args.prompt_tokens:
            return 0
        print(
            f"fitted over the {len(PROMPTS)} prompts above and {len(args.prompt_tokens)} long ones "
            f"({LONG_PROMPT_NEW_TOKENS} new tokens each); non-negative least squares"
        )
        print(
            f"{'model':<22}{'long prompts (tokens)':>24}{'kWh/prompt tok':>16}{'kWh/output tok':>16}"
            f"{'prompt tok/s':>14}{'output tok/s':>14}"
        )
        for r in rows:
            print(
                f"{r['model']:<22}{', '.join(map(str, r['long_prompt_tokens'])):>24}"
                f"{r['fitted_kwh_per_prompt_token']:>16.2e}{r['fitted_kwh_per_output_token']:>16.2e}"
                f"{_rate(r['prompt_tok_per_s']):>14}{_rate(r['output_tok_per_s']):>14}"
            )
        print("the longest prompt, predicted from the config's figures (no history) and spent:")
        print(f"{'model':<22}{'tokens':>14}{'predicted kWh':>15}{'without prompt fig.':>21}{'spent kWh':>11}")  # fmt: skip
        for r in rows:
            x = r["longest_prompt"]
            print(
                f"{r['model']:<22}{x['prompt_tokens']:>8} + {x['completion_tokens']:<3}"
                f"{_kwh(x['predicted_kwh']):>15}{_kwh(x['predicted_kwh_without_prompt_figures']):>21}"
                f"{x['measured_kwh']:>11.2e}"
            )
        return 0


def _kwh(kwh: float | None) -> str:
    return "-" if kwh is None else f"{kwh:.2e}"


def _rate(tok_per_s: float | None) -> str:
    return "-" if tok_per_s is None else f"{tok_per_s:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
