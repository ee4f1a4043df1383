"""What reading a model's hidden state of the prompt costs (``prompt_state=True``):
the same HumanEval requests generated in three passes, without it, with it, and
without it again on the model loaded anew (the callback stays with the model's
context once attached: a third pass on the same model ran with it too, and the
cost was halved), timed by the backend. The cost is the middle pass against the
mean of the other two. Also checks that the answers are the same.

    .venv/bin/python benchmarks/prompt_state_cost.py [--model qwen2.5-coder-0.5b] [--n 24]
        [--max-new-tokens N] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from machine import machine_line

from routerllm.backends import create_backend
from routerllm.cli_args import DefaultsHelpFormatter, count_arg, max_new_tokens_arg, threads_arg
from routerllm.config import load_config
from routerllm.data.humaneval import load_humaneval
from routerllm.eval.codegen import build_request, style_for
from routerllm.exceptions import RouterLLMError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument(
        "--n",
        type=count_arg,
        default=24,
        help="HumanEval problems (the first n; more than 164: all)",
    )
    ap.add_argument(
        "--max-new-tokens",
        type=max_new_tokens_arg,
        help="the most tokens per answer (default: the model's prompting style's, "
        f"{style_for(DEFAULT_MODEL).max_new_tokens} for {DEFAULT_MODEL})",
    )
    ap.add_argument(
        "--threads",
        type=threads_arg,
        help="llama.cpp's threads (default: one a core, as the ladder's models run)",
    )
    args = ap.parse_args()
    overrides = {} if args.max_new_tokens is None else {"max_new_tokens": args.max_new_tokens}
    style = style_for(args.model, overrides)
    config = load_config("local")
    config.generation.temperature = 0.0
    problems = load_humaneval()[: args.n]
    requests = [build_request(p, style) for p in problems]
    try:
        backend = create_backend(config.model(args.model), config.generation, args.threads)
        backend.generate(requests[0])  # load and warm up
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    passes = []
    for state in (False, True, False):
        if passes and not state:  # the callback off: the model loaded again, and warmed up
            backend.unload()
            backend.generate(requests[0])
        outs = [backend.generate(dataclasses.replace(r, prompt_state=state)) for r in requests]
        passes.append(outs)
    plain_s = (sum(o.latency_s for o in passes[0]) + sum(o.latency_s for o in passes[2])) / 2
    state_s = sum(o.latency_s for o in passes[1])
    same = [sum(a.text == b.text for a, b in zip(passes[0], p, strict=True)) for p in passes[1:]]
    print(machine_line())
    tokens = max(o.completion_tokens for p in passes for o in p)
    print(
        f"{args.model}, {len(problems)} problems, max_new_tokens {style.max_new_tokens} "
        f"(longest answer: {tokens} tokens)"
    )
    first, last = (sum(o.latency_s for o in p) for p in (passes[0], passes[2]))
    print(f"  without the prompt state: {plain_s:.1f} s (passes 1 and 3: {first:.1f}, {last:.1f})")
    print(f"  with the prompt state:    {state_s:.1f} s  ({state_s / plain_s:.3f}x)")
    print(
        f"  same answer as pass 1: pass 2 (with) {same[0]}/{len(problems)}, pass 3 (without) {same[1]}/{len(problems)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
