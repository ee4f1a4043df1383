"""The worst time of each parser and pattern on the request path, on prompts crafted
against it, at the prompt limit (``limits.max_prompt_chars``, 200,000 characters).

Each path (the rules router's rules, the override rules' math detection, the function
stub detection, the cascade's code extraction and example reading) is timed once per
crafted prompt (nested quantifiers' near misses, long runs of one character, deep
nesting, many functions or names); its worst is printed, in milliseconds. Run:

    .venv/bin/python benchmarks/worst_case_inputs.py [--chars 200000] [--json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from machine import print_figures

from routerllm.backends.base import GenerationRequest
from routerllm.cascade import function_with_examples
from routerllm.config_sections import LimitsConfig
from routerllm.eval.codegen import fenced_blocks, parse_code
from routerllm.overrides import asks_for_math
from routerllm.routers.base import Candidate
from routerllm.routers.rules import RuleBasedRouter
from routerllm.stubs import stub_of

LIMIT: int = LimitsConfig.model_fields["max_prompt_chars"].default


def _numbered(pattern: str, n: int) -> str:
    """``pattern % i`` for i = 0, 1, ... joined up to ``n`` characters."""
    parts, size, i = [], 0, 0
    while size < n:
        parts.append(pattern % i)
        size, i = size + len(parts[-1]), i + 1
    return "".join(parts)[:n]


def crafted(n: int) -> dict[str, str]:
    """Prompts of ``n`` characters, each a worst case of some path."""
    half = n // 2
    return {
        "newlines": "\n" * (n - 1) + "x",
        "spaces": " " * (n - 1) + "x",
        "digits": "1" * n,
        "digit then spaces": "1" + " " * (n - 2) + "x",
        "words": "a " * half,
        "def without parens": "def " + "a" * (n - 4),
        "backticks": "`" * n,
        "fences": ("```x\n" * (n // 5))[:n],
        "tildes": ("~~~\n" * (n // 4))[:n],
        "parens": "(" * n,
        "brackets": "[" * n,
        "balanced parens": "(" * half + ")" * half,
        "unary minus": "-" * (n - 1) + "1",
        "sums": ("1+" * half)[: n - 1] + "1",
        "comparisons": ("1<" * half)[: n - 1] + "1",
        "attributes": "a" + ".a" * (half - 1),
        "calls": "f" + "()" * (half - 1),
        "many functions": _numbered("def a%d():\n    'x'\n", n),
        "many names called": _numbered("a%d( ", n),
        "commas after a call": "f(1) " + "," * (n - 6) + "x",
        "input lines": _numbered("Input: %d\n", n),
        "doctests": _numbered(">>> f(%d)\n", n),
        "examples on one line": ("f(1) == 2, " * (n // 11))[:n],
    }


def paths() -> dict[str, Callable[[str], object]]:
    models = [
        Candidate(f"m-{t}", size, t)
        for t, size in (("light", 0.5), ("medium", 1.5), ("heavy", 7.0))
    ]
    router = RuleBasedRouter(models)
    return {
        "rules router": router.route,
        "math detection (overrides)": asks_for_math,
        "fenced blocks": fenced_blocks,
        "parse as Python": parse_code,
        "function stub detection": lambda p: stub_of(GenerationRequest(prompt=p)),
        "cascade: function with examples": function_with_examples,
    }


def worst_times(n: int) -> dict[str, object]:
    """Each path's worst time (ms) over the crafted prompts, and which prompt it was."""
    figures: dict[str, object] = {}
    prompts = crafted(n)
    for name, call in paths().items():
        worst, which = 0.0, ""
        for shape, prompt in prompts.items():
            start = time.perf_counter()
            call(prompt)
            took = (time.perf_counter() - start) * 1000
            if took > worst:
                worst, which = took, shape
        figures[f"{name} ms"] = worst
        figures[f"{name} worst prompt"] = which
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=LIMIT, help="prompt size (default: the limit)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"prompt chars": args.chars, **worst_times(args.chars)}
    print_figures(figures, args.json, 40)


if __name__ == "__main__":
    main()
