"""Tokens a character of real answers against their prompts', per local model: how
well each estimate of an answer without ``usage`` (``estimate:from-text``) counts it.

Each model of a config answers the first ``--n`` HumanEval prompts (chat, greedy,
``--max-new-tokens``) through llama-cpp-python; llama.cpp counts each prompt's tokens
(chat template included) and each answer's. The predictor's prompt line (tokens =
base + per-char x characters, fitted as ``CarbonPredictor`` fits a log) and each
answer's tokens a character are printed, then the error of each estimate of an
answer's tokens from its text (estimate / real, summed over the answers):

- ``prompt_rate``: the text's characters at the prompt line's tokens a character
  (before 2026-12-07),
- ``learned``: at the completion tokens a character of the model's other answers
  (leave-one-out: what its logged answers with usage teach),
- ``no_history``: at ``COMPLETION_TOKENS_PER_CHAR_GUESS`` (no answer logged).

    .venv/bin/python benchmarks/answer_tokens_per_char.py [--config local] [--n 20] [--max-new-tokens 128] [--json]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from machine import print_figures

from routerllm.carbon.predictor import nonnegative_fit
from routerllm.carbon.text_rates import COMPLETION_TOKENS_PER_CHAR_GUESS
from routerllm.checks import MAX_BENCHMARK_REQUESTS
from routerllm.cli_args import DefaultsHelpFormatter, max_new_tokens_arg, whole_number_arg
from routerllm.config import load_config
from routerllm.data.humaneval import load_humaneval
from routerllm.model_files import resolve_gguf


def answers(path: str, prompts: list[str], max_new_tokens: int) -> list[tuple[int, int, int, int]]:
    """(prompt chars, prompt tokens, answer chars, answer tokens) of each prompt's answer."""
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=2048, verbose=False, seed=0)
    rows = []
    for prompt in prompts:
        out = llm.create_chat_completion(
            [{"role": "user", "content": prompt}], max_tokens=max_new_tokens, temperature=0.0
        )
        text = out["choices"][0]["message"]["content"] or ""
        usage = out["usage"]
        rows.append((len(prompt), usage["prompt_tokens"], len(text), usage["completion_tokens"]))
    return rows


def errors(rows: list[tuple[int, int, int, int]]) -> dict[str, float]:
    """Each estimate's total over the real total (1 = exact; < 1 undercounts)."""
    chars, prompt, out_chars, out = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    _, per_char = nonnegative_fit(np.ones_like(chars), chars, prompt)
    real = out.sum()
    learned = [
        math.ceil((out.sum() - out[i]) / (out_chars.sum() - out_chars[i]) * out_chars[i])
        for i in range(len(rows))
    ]
    return {
        "prompt_tokens_per_char": float(per_char),
        "answer_tokens_per_char": float(real / out_chars.sum()),
        "answer_over_prompt_rate": float(real / out_chars.sum() / per_char),
        "prompt_rate": sum(math.ceil(per_char * c) for c in out_chars) / real,
        "learned": sum(learned) / real,
        "no_history": sum(math.ceil(COMPLETION_TOKENS_PER_CHAR_GUESS * c) for c in out_chars)
        / real,
        "learned_worst_answer": float(min(e / r for e, r in zip(learned, out, strict=True))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument(
        "--n",
        type=whole_number_arg(2, MAX_BENCHMARK_REQUESTS),
        default=20,
        help="HumanEval prompts per model",
    )
    ap.add_argument("--max-new-tokens", type=max_new_tokens_arg, default=128)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    config = load_config(args.config)
    prompts = [p.prompt for p in load_humaneval()[: args.n]]
    figures: dict[str, object] = {"answers_per_model": len(prompts)}
    for model in config.models:
        if model.backend != "llama_cpp" or model.gguf is None:
            continue
        rows = answers(str(resolve_gguf(model.gguf, model.name)), prompts, args.max_new_tokens)
        for key, value in errors(rows).items():
            figures[f"{model.name}.{key}"] = value
    print_figures(figures, args.json, 48)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
