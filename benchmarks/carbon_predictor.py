"""How well the CarbonPredictor predicts a request's energy before it runs, and whether
a per-request CO2 budget holds on real requests.

Part 1, prediction: prompts of three kinds (the demo's, short questions, HumanEval
stubs) go to every model of the ladder in a seeded shuffled order, on a fresh
scratch log, so the predictor starts cold and learns as the log fills. Each
request's ``predicted`` is what RouterLLM predicted before running it from the
requests logged before it. It is compared with what CodeCarbon then measured for
the model's part (loading and generation): the median relative error and the
share of requests that spent no more than predicted (the predictor assumes a
high quantile of the model's output lengths, so it should mostly over-predict).

Part 2, budget: a second RouterLLM on the same log (its predictor learned from
part 1) routes code prompts with a per-request CO2 budget set between what the
two largest models are predicted to emit for them (the geometric mean of their
median predictions). It prints where the requests went, how many spent more than
the budget, and how many it refused (even the smallest model predicted over it: its
fresh RouterLLM predicts each model with its loading, the limit was set for warm ones).

Part 1 runs ``--prompts`` (the three sets by default) on ``--models`` (every model that
can run here by default), and part 2 routes among those models; a smoke run takes seconds with one model, one set and a few
tokens: ``--models smollm2-135m --prompts questions --max-new-tokens 8``.

    .venv/bin/python benchmarks/carbon_predictor.py [--config local] [--models NAME ...]
        [--prompts demo questions humaneval] [--humaneval 8] [--humaneval-start 0]
        [--max-new-tokens 128] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import Counter
from typing import Any

from machine import machine, machine_line
from scratch_logs import scratch_logs

from routerllm.backends.base import GenerationRequest
from routerllm.checks import repeated
from routerllm.cli_args import DefaultsHelpFormatter, max_new_tokens_arg, seed_arg, steps_arg
from routerllm.config import load_config
from routerllm.data.humaneval import load_humaneval
from routerllm.demo import DEMO_PROMPTS
from routerllm.exceptions import BudgetExceededError, RouterLLMError, UnknownNameError
from routerllm.routed_result import RoutedResult
from routerllm.system import RouterLLM

PROMPT_SETS = ("demo", "questions", "humaneval")
QUESTIONS = [
    "What is a Python list?",
    "Name three prime numbers.",
    "What does HTTP stand for?",
    "Give a synonym of 'fast'.",
    "What is the capital of Italy?",
    "Say hello in Spanish.",
]
CODE = [
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Implement a binary search over a sorted Python list and explain its complexity.",
    "Write a Python class for a bank account with deposit, withdraw and balance methods, with tests.",
    "Implement Dijkstra's shortest path algorithm in Python with a heap, and explain it.",
    "Write a Python function that parses a CSV line with quoted fields, and unit tests for it.",
    "Implement a thread-safe LRU cache class in Python with O(1) get and put, and explain the design.",
]


def model_part(result: RoutedResult) -> float:
    """The energy of loading and generation (what the prediction covers)."""
    return sum(m.energy_kwh for name, m in result.components.items() if name != "router_inference")  # fmt: skip


def accuracy(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """Median relative error of predicted vs measured, and the share not over-spent."""
    if not pairs:
        return {"n": 0}
    errors = [abs(p - a) / a for p, a in pairs if a > 0]
    return {
        "n": len(pairs),
        "median_relative_error": statistics.median(errors) if errors else None,
        "spent_at_most_predicted": sum(a <= p for p, a in pairs) / len(pairs),
        "median_predicted_over_measured": statistics.median(p / a for p, a in pairs if a > 0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument(
        "--models", nargs="+", metavar="NAME",
        help="the models of part 1 (default: every model of the config that can run here)",
    )  # fmt: skip
    ap.add_argument("--prompts", nargs="+", choices=list(PROMPT_SETS), default=list(PROMPT_SETS),
                    help="the prompt sets of part 1")  # fmt: skip
    ap.add_argument(
        "--humaneval",
        type=steps_arg,
        default=8,
        help="HumanEval stubs in part 1 (more: all from --humaneval-start)",
    )
    ap.add_argument("--humaneval-start", type=steps_arg, default=0, help="the first stub's index")
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=128)
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.models and (twice := repeated(args.models)):
        ap.error(f"--models names {', '.join(twice)} more than once")
    if twice := repeated(args.prompts):  # a set named twice would run twice
        ap.error(f"--prompts names {', '.join(twice)} more than once")
    if args.prompts == ["humaneval"] and not args.humaneval:
        ap.error("--prompts humaneval with --humaneval 0: no prompt to run")
    problems = load_humaneval()
    if args.humaneval and args.humaneval_start >= len(problems):  # would give no stub at all
        ap.error(f"--humaneval-start: at most {len(problems) - 1} (HumanEval has {len(problems)} problems), got {args.humaneval_start}")  # fmt: skip
    try:
        config = load_config(args.config)
        for name in args.models or ():
            if name not in (names := [m.name for m in config.models]):
                raise UnknownNameError("model", name, names, where="--models")
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with scratch_logs(config):
        config.budgets.co2_kg.per_request = config.budgets.co2_kg.hourly = config.budgets.co2_kg.daily = None  # fmt: skip
        stubs = [p.prompt for p in problems[args.humaneval_start :][: args.humaneval]]
        sets = {"demo": DEMO_PROMPTS, "questions": QUESTIONS, "humaneval": stubs}
        prompts = [p for name in args.prompts for p in sets[name]]
        out: dict[str, Any] = {
            "machine": machine(),
            "max_new_tokens": args.max_new_tokens,
            "prompts": len(prompts),
        }
        with RouterLLM(config) as system:
            try:
                models = system.available_models()
            except RouterLLMError as e:  # none can run here: each model's reason
                print(f"error: {e}", file=sys.stderr)
                return 2
            if args.models:
                if cannot := [m for m in args.models if m not in models]:
                    print(f"error: --models: {', '.join(cannot)} cannot run here (those that can: {', '.join(models)})", file=sys.stderr)  # fmt: skip
                    return 2
                models = [m for m in models if m in args.models]  # in the config's order
            out["models"] = models
            jobs = [(p, m) for p in prompts for m in models]
            random.Random(args.seed).shuffle(jobs)
            cold: dict[str, list[tuple[float, float]]] = {m: [] for m in models}
            learned: dict[str, list[tuple[float, float]]] = {m: [] for m in models}
            for i, (prompt, model) in enumerate(jobs, 1):
                req = GenerationRequest(prompt, max_new_tokens=args.max_new_tokens)
                r = system.generate(req, model=model, tag="bench")
                assert r.predicted is not None
                kind = learned if "latest logged requests" in r.predicted.basis else cold
                kind[model].append((r.predicted.energy_kwh, model_part(r)))
                if not args.json:
                    if i == 1:
                        print(machine_line())
                    print(f"[{i}/{len(jobs)}] {model:<20} predicted {r.predicted.energy_kwh:.2e} kWh, measured {model_part(r):.2e} ({r.completion_tokens} tokens)", flush=True)  # fmt: skip
            out["prediction"] = {
                m: {"cold": accuracy(cold[m]), "learned": accuracy(learned[m])} for m in models
            }
            # a limit between what the two largest models are predicted to emit for these prompts
            medians = [
                statistics.median(
                    p.co2_kg
                    for c in CODE
                    if (
                        p := system.predict(
                            GenerationRequest(c, max_new_tokens=args.max_new_tokens), m
                        )
                    )
                )  # fmt: skip
                for m in models[-2:]
            ]
        limit = (medians[0] * medians[-1]) ** 0.5
        config.budgets.co2_kg.per_request = limit
        if args.models:  # part 2 routes among them alone
            config.models = [m for m in config.models if m.name in models]
        with RouterLLM(config) as system:
            unbudgeted = Counter(system.route(p).model for p in CODE)
            results, refused = [], 0
            for p in CODE:
                try:
                    results.append(system.generate(GenerationRequest(p, max_new_tokens=args.max_new_tokens), tag="bench-budget"))  # fmt: skip
                except BudgetExceededError:  # the budget held: nothing ran
                    refused += 1
        out["budget"] = {
            "per_request_co2_kg": limit,
            "router_chose": dict(unbudgeted),
            "went_to": dict(Counter(r.model for r in results)),
            "over_budget": sum(r.co2_kg > limit for r in results),
            "refused": refused,
            "requests": len(CODE),
            "max_co2_kg": max((r.co2_kg for r in results), default=None),
        }
        if args.json:
            print(json.dumps(out, indent=2))
            return 0
        print(f"\nprediction, before each request, from the requests logged before it ({out['prompts']} prompts x {len(models)} models, max_new_tokens {args.max_new_tokens})")  # fmt: skip
        print(f"{'model':<22}{'phase':<9}{'n':>4}{'median rel. error':>19}{'spent <= predicted':>20}{'pred/measured':>15}")  # fmt: skip
        for m, phases in out["prediction"].items():
            for phase, a in phases.items():
                if a["n"]:
                    print(f"{m:<22}{phase:<9}{a['n']:>4}{a['median_relative_error']:>19.1%}{a['spent_at_most_predicted']:>20.0%}{a['median_predicted_over_measured']:>15.2f}")  # fmt: skip
        b = out["budget"]
        most = "none ran" if b["max_co2_kg"] is None else f"most: {b['max_co2_kg'] * 1000:.3g} g"
        print(
            f"\nbudget: per-request {b['per_request_co2_kg'] * 1000:.3g} g CO2; the router chose {b['router_chose']}, "
            f"the budget sent them to {b['went_to']}; {b['over_budget']} of {b['requests']} over the "
            f"budget, {b['refused']} refused ({most})"
        )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
