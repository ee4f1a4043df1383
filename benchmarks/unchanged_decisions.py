"""What the request path decides on real prompts, saved before a change to its patterns or
parsers (``--save``) and compared after it (``--compare``): a change made for speed on
crafted inputs (``benchmarks/worst_case_inputs.py``) must decide nothing differently.

Recorded: the rules router's decision (its complexity score, the rules that fired, the
model and confidence of a light/medium/heavy ladder), the overrides' math detection
(``asks_for_math``), the function whose examples the cascade checks and those examples, on
the demo's prompts, HumanEval's 164, 5,000 synthetic ones (seed 0) and the prompts of the
routing-outcome sets in ``--data-dir`` (LLMRouter's JSON, RouterBench's MBPP CSV; skipped,
and said, where absent); and the cascade's reading of
HumanEval's 164 canonical solutions answered in each prompting style (chat: fenced,
after prose, followed by prose, the body alone, truncated; prefill and complete: the
body, cut at a fence or a stop, followed by prose, truncated): the completion
``extract_completion`` reads and the code ``stubs.completed`` gives back. It prints how many of each were recorded
and, with ``--compare``, how many differ (the first few shown); and what the change costs:
the rules router's ``route_batch`` of all the prompts, ``--repeats`` times, and the math
detection's, in CPU ms a prompt (CPU time, which other work on a shared machine stretches
less than wall time). Run:

    .venv/bin/python benchmarks/unchanged_decisions.py [--save FILE] [--compare FILE] [--data-dir ../shared/data] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from machine import machine_line
from outcome_data import DATASETS, add_data_dir_argument

from routerllm.cascade import function_with_examples
from routerllm.cli_args import count_arg
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.demo import DEMO_PROMPTS
from routerllm.eval.codegen import (
    CHAT_STYLE,
    COMPLETE_STYLE,
    PREFILL_STYLE,
    CodegenStyle,
    extract_completion,
)
from routerllm.eval.prompt_examples import extract_examples
from routerllm.overrides import asks_for_math
from routerllm.routers.base import Candidate
from routerllm.routers.rules import RuleBasedRouter
from routerllm.stubs import completed

FENCE = "```"


def real_prompts(data_dir: Path) -> Iterator[tuple[str, str]]:
    """(where, prompt): the demo's, HumanEval's, 5,000 synthetic ones, then each outcome
    file's found."""
    from routerllm.data.outcome_files import load_outcomes
    from routerllm.data.synthetic import generate

    yield from ((f"demo {i}", p) for i, p in enumerate(DEMO_PROMPTS))
    yield from ((p.task_id, p.prompt) for p in load_humaneval())
    yield from ((f"synthetic {i}", item.text) for i, item in enumerate(generate(5000, 0)))
    for name, files in DATASETS.items():
        for file in files:
            if not (data_dir / file).is_file():
                print(f"no {data_dir / file}: its prompts are not compared", file=sys.stderr)
                continue
            prompts = load_outcomes(data_dir / file).prompts
            yield from ((f"{name}/{file} {i}", p) for i, p in enumerate(prompts))


def ladder_router() -> RuleBasedRouter:
    """The rules router on a light/medium/heavy ladder."""
    models = [
        Candidate(f"m-{t}", size, t)
        for t, size in (("light", 0.5), ("medium", 1.5), ("heavy", 7.0))
    ]
    return RuleBasedRouter(models)


def request_decisions(prompts: list[tuple[str, str]]) -> dict[str, object]:
    """Each prompt's rules-router decision and math detection, the function whose
    examples the cascade would check (``function_with_examples``), and those examples."""
    router = ladder_router()
    out: dict[str, object] = {}
    for where, prompt in prompts:
        decision = router.route(prompt)
        rules = [*router.analyse(prompt), decision.model, decision.confidence, decision.reason]
        rules.append(asks_for_math(prompt))
        target = function_with_examples(prompt)
        examples = [] if target is None else extract_examples(*target)
        out[where] = [rules, target, [dataclasses.astuple(e) for e in examples]]
    return out


def answers(problem: HumanEvalProblem) -> dict[str, tuple[str, CodegenStyle]]:
    """A problem's canonical solution answered as models answer, in each style."""
    body, whole = problem.canonical_solution, problem.prompt + problem.canonical_solution
    cut = body.rstrip().splitlines()
    half_body = "\n".join(cut[: max(1, len(cut) // 2)])
    prose = "\nThis works because it checks each case.\nIt is O(n) overall.\n"
    return {
        "chat: fenced function": (f"{FENCE}python\n{whole}{FENCE}", CHAT_STYLE),
        "chat: after prose, prose after": (
            f"Here it is:\n{FENCE}python\n{whole}{FENCE}\n{prose}",
            CHAT_STYLE,
        ),  # fmt: skip
        "chat: the body fenced": (f"{FENCE}python\n{body}{FENCE}", CHAT_STYLE),
        "chat: unfenced, prose after": (whole + prose, CHAT_STYLE),
        "chat: truncated": (f"{FENCE}python\n{whole[: len(whole) * 3 // 4]}", CHAT_STYLE),
        "chat: the body, truncated": (f"{FENCE}python\n{half_body}", CHAT_STYLE),
        "prefill: the body, fenced": (f"{body}{FENCE}", PREFILL_STYLE),
        "prefill: a fence glued": (f"{body.rstrip()}{FENCE}\nExplanation.", PREFILL_STYLE),
        "prefill: prose after": (body + prose, PREFILL_STYLE),
        "prefill: truncated": (body[: len(body) * 2 // 3], PREFILL_STYLE),
        "prefill: stripped": (body.strip() + f"\n{FENCE}", PREFILL_STYLE),
        "complete: the body, a stop after": (
            body + "\n\ndef check():\n    pass\n",
            COMPLETE_STYLE,
        ),  # fmt: skip
        "complete: prose after": (body + prose, COMPLETE_STYLE),
        "complete: truncated": (half_body, COMPLETE_STYLE),
        "complete: fenced": (f"{FENCE}python\n{whole}{FENCE}", COMPLETE_STYLE),
    }


def extractions() -> dict[str, object]:
    """Each HumanEval problem's answers, as the cascade and the stub completion read them."""
    out: dict[str, object] = {}
    for problem in load_humaneval():
        for name, (text, style) in answers(problem).items():
            out[f"{problem.task_id} {name}"] = [
                extract_completion(problem, text, style),
                completed(problem, text, style),
            ]
    return out


def timing(prompts: list[str], repeats: int) -> str:
    """The rules router's ``route_batch`` of ``prompts`` (fastest and median of ``repeats``
    runs) and the math detection's, in CPU ms a prompt."""
    router, runs = ladder_router(), []
    for _ in range(repeats):
        start = time.process_time()
        router.route_batch(prompts)
        runs.append((time.process_time() - start) * 1000 / len(prompts))
    start = time.process_time()
    for prompt in prompts:
        asks_for_math(prompt)
    math_ms = (time.process_time() - start) * 1000 / len(prompts)
    return (
        f"{len(prompts)} prompts: route_batch {min(runs):.3f} CPU ms a prompt (fastest of "
        f"{repeats}; median {statistics.median(runs):.3f}), math detection {math_ms:.3f} ms"
    )


def differences(saved: dict[str, object], now: dict[str, object]) -> list[str]:
    """The keys whose values differ (or that only one side has)."""
    return [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", type=Path, help="write the decisions to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare the decisions with this file's")
    add_data_dir_argument(parser)
    parser.add_argument("--repeats", type=count_arg, default=5, help="timed runs of route_batch")
    args = parser.parse_args()
    prompts = list(real_prompts(Path(args.data_dir)))
    print(machine_line())
    print(timing([p for _, p in prompts], args.repeats))
    # JSON's lists for tuples: a saved file's values compare equal to this run's
    now = json.loads(json.dumps({"requests": request_decisions(prompts), "extractions": extractions()}))  # fmt: skip
    for part, values in now.items():
        print(f"{part}: {len(values)} recorded")
    if args.save:
        args.save.write_text(json.dumps(now, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"saved to {args.save}")
    if args.compare:
        saved = json.loads(args.compare.read_text(encoding="utf-8"))
        changed = 0
        for part, values in now.items():
            diff = differences(saved.get(part, {}), values)
            changed += len(diff)
            print(f"{part}: {len(diff)} of {len(values)} differ from {args.compare}")
            for key in diff[:5]:
                print(f"  {key}: {saved.get(part, {}).get(key)!r:.300} -> {values.get(key)!r:.300}")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
