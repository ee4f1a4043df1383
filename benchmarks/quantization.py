"""Which llama.cpp type to run a local model in: speed against fidelity, per type.

For one model of a config, the shipped GGUF and each re-quantized type
(``GGUFSource.requantize``) are measured on the same inputs, on this machine:

- prompt processing and generation speed (tokens/s): a 300-token code prompt,
  then 64 greedy tokens;
- fidelity on Python source that ships with the interpreter (the standard
  library, never seen by the choice): mean negative log-likelihood per token
  (and its change against the shipped file), and how often the type's most
  likely next token is the shipped file's (greedy decoding follows it).

No benchmark answers are used, so a type chosen from this table is not tuned
on HumanEval. Converted files go to the model cache and are reused.

    .venv/bin/python benchmarks/quantization.py --model qwen2.5-coder-0.5b \
        --types Q8_0 Q4_0 [--config local] [--tokens 4096] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any, get_args

import numpy as np
from machine import machine, machine_line

from routerllm.backends.llama_cpp import _silence_llama_cpp, next_token_scores
from routerllm.cli_args import DefaultsHelpFormatter, threads_arg
from routerllm.config import RequantizeType, load_config
from routerllm.exceptions import RouterLLMError
from routerllm.model_files import resolve_gguf

# About a HumanEval request: a 300-token prompt, then 64 greedy tokens.
SPEED_PROMPT_TOKENS = 300
SPEED_NEW_TOKENS = 64
STDLIB_FILES = ("json/decoder.py", "textwrap.py", "heapq.py", "bisect.py", "shlex.py")
CHUNK = 512


def stdlib_text() -> str:
    lib = Path(sysconfig.get_paths()["stdlib"])
    return "\n\n".join((lib / f).read_text(encoding="utf-8") for f in STDLIB_FILES)


def measure(path: Path, text: str, n_tokens: int, threads: int) -> dict[str, Any]:
    from llama_cpp import Llama

    # Speed as the backend runs it (logits for the last token only).
    # n_threads_batch too: llama-cpp-python reads a prompt on a thread a core otherwise
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                verbose=False)  # fmt: skip
    try:
        prompt = llm.tokenize(text.encode())[:SPEED_PROMPT_TOKENS]
        start = time.perf_counter()
        llm.eval(prompt)
        pp = len(prompt) / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(SPEED_NEW_TOKENS):
            llm.eval([llm.sample(temp=0.0)])
        tg = SPEED_NEW_TOKENS / (time.perf_counter() - start)
    finally:
        llm.close()
    llm = Llama(model_path=str(path), n_ctx=CHUNK + 64, n_batch=CHUNK, n_threads=threads,
                n_threads_batch=threads, logits_all=True, verbose=False)  # fmt: skip
    try:
        tokens = llm.tokenize(text.encode())[:n_tokens]
        scores = [
            next_token_scores(llm, tokens[lo : lo + CHUNK + 1])
            for lo in range(0, len(tokens) - 1, CHUNK)
        ]
    finally:
        llm.close()
    return {
        "size_mb": path.stat().st_size / 1e6,
        "prompt_tok_s": pp,
        "gen_tok_s": tg,
        "nll": np.concatenate([nll for nll, _ in scores]),
        "top1": np.concatenate([top for _, top in scores]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--model", required=True)
    ap.add_argument(
        "--types", nargs="+", default=["Q8_0", "Q4_0"], choices=get_args(RequantizeType)
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--tokens", type=int, default=4096, help="standard-library tokens scored")
    ap.add_argument("--threads", type=threads_arg, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.tokens < 2:
        ap.error("--tokens: at least 2 (the first is only context, never scored)")
    try:
        model = load_config(args.config).model(args.model)
        if model.gguf is None:
            raise RouterLLMError(f"model {args.model!r} is not a llama.cpp model")
        _silence_llama_cpp()
        # each type through the config's own resolution: the same cached files the ladder runs
        files = {
            t or "shipped": resolve_gguf(
                model.gguf.model_copy(update={"requantize": t}), model.name
            )
            for t in [None, *args.types]
        }
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = stdlib_text()
    results = {name: measure(path, text, args.tokens, args.threads) for name, path in files.items()}
    ref = results["shipped"]
    rows = []
    for name, r in results.items():
        rows.append({
            "type": name,
            "size_mb": round(r["size_mb"], 1),
            "prompt_tok_s": round(r["prompt_tok_s"], 1),
            "gen_tok_s": round(r["gen_tok_s"], 1),
            "nll": round(float(r["nll"].mean()), 4),
            "nll_change": round(float(r["nll"].mean() - ref["nll"].mean()), 4),
            "top1_agreement": round(float((r["top1"] == ref["top1"]).mean()), 4),
        })  # fmt: skip
    if args.json:
        print(
            json.dumps(
                {"machine": machine(), "model": model.name, "tokens": len(ref["nll"]), "rows": rows}
            )
        )
        return 0
    print(machine_line())
    print(f"{model.name}: {len(ref['nll'])} standard-library tokens, {args.threads} threads")
    print(
        f"{'type':8} {'MB':>7} {'prompt tok/s':>12} {'gen tok/s':>9} {'NLL':>7} {'ΔNLL':>8} {'top-1 same':>10}"
    )
    for r in rows:
        print(f"{r['type']:8} {r['size_mb']:7.0f} {r['prompt_tok_s']:12.0f} {r['gen_tok_s']:9.1f} "
              f"{r['nll']:7.4f} {r['nll_change']:+8.4f} {r['top1_agreement']:10.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
