"""The thread stack llama.cpp's tokenizer needs for a run of one kind of character, and
what tokenizing a long text on a thread of its own costs (``llama_prompt.tokenized``).

For each kind of character (letters, spaces, new lines, digits, punctuation, CJK,
emoji, short words), the least stack (KiB) that tokenizes ``--chars`` of them with the
GGUF's vocabulary, found by bisection, each try in a process of its own (a stack too
small kills it), and the bytes a character that makes. Then, in this process: the
microseconds of a thread started and joined with the stack of the longest text
(``with_stack``), of a short prompt tokenized (on the caller's thread, as before), of a
text just over ``ON_CALLERS_STACK`` tokenized on the caller's thread and on a thread of
its own, and the wall and CPU seconds of 200,000 "a" (the prompt limit), which need ~65
MB of stack. ``--gguf``: the local ladder's Qwen2.5-Coder 0.5B by default. Run:

    .venv/bin/python benchmarks/tokenizer_stack.py [--gguf PATH] [--chars 10000,40000] [--no-search] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine import print_figures

from routerllm.backends.llama_prompt import (
    ON_CALLERS_STACK,
    STACK_BASE,
    STACK_PER_CHAR,
    _tokenized,
    tokenized,
    vocab_only,
)
from routerllm.backends.thread_stack import with_stack
from routerllm.config import load_config
from routerllm.model_files import header_file

KINDS = {
    "letters": "a",
    "spaces": " ",
    "new lines": "\n",
    "digits": "7",
    "punctuation": "!",
    "CJK": "\u4e2d",
    "emoji": "\U0001f600",
    "short words": "ab ",
}

# one try: the text tokenized on a thread with the stack asked (KiB); "ok" where it lived
_TRY = """
import sys, threading
from pathlib import Path
from routerllm.backends.llama_prompt import _tokenized, vocab_only
model = vocab_only(Path(sys.argv[1]))
text = (sys.argv[2] * int(sys.argv[3])).encode()
threading.stack_size(int(sys.argv[4]) << 10)
thread = threading.Thread(target=lambda: _tokenized(model, text, False, True))
thread.start(); thread.join()
print("ok")
"""


def _lives(gguf: Path, char: str, n: int, kib: int) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", _TRY, str(gguf), char, str(n), str(kib)],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0 and proc.stdout.strip() == "ok"


def least_stack_kib(gguf: Path, char: str, n: int) -> int:
    """The least stack (KiB, to 2%) that tokenizes ``char * n``; 64 where that does."""
    low, high = 64, 1 << 20
    if _lives(gguf, char, n, low):
        return low
    while high - low > max(16, low // 50):
        mid = (low + high) // 2
        low, high = (low, mid) if _lives(gguf, char, n, mid) else (mid, high)
    return high


def _us(call: Callable[[], object], repeats: int) -> float:
    """The median microseconds of ``call()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def costs(gguf: Path) -> dict[str, object]:
    model = vocab_only(gguf)
    try:
        figures: dict[str, object] = {}
        longest = STACK_BASE + STACK_PER_CHAR * 200_000
        figures["thread with a stack for 200,000 chars, started and joined, us"] = _us(
            lambda: with_stack(lambda: None, longest), 200
        )
        short = b"Write a Python function that returns the sum of a list of numbers."
        figures["a short prompt tokenized (caller's thread), us"] = _us(
            lambda: tokenized(model, short, True, True), 2000
        )
        just_over = b"word " * (ON_CALLERS_STACK // 5 + 1)
        figures[f"{len(just_over):,} chars of words on the caller's thread, us"] = _us(
            lambda: _tokenized(model, just_over, True, True), 200
        )
        figures[f"{len(just_over):,} chars of words on a thread of their own, us"] = _us(
            lambda: tokenized(model, just_over, True, True), 200
        )
        limit = b"a" * 200_000
        wall, cpu = time.perf_counter(), time.process_time()
        n = len(tokenized(model, limit, True, True))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        figures["200,000 'a' tokenized (tokens, wall s, CPU s)"] = f"{n}, {wall:.3f}, {cpu:.3f}"
        return figures
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, help="a GGUF (default: the local Qwen2.5-Coder 0.5B)")
    parser.add_argument("--chars", default="10000,40000", help="run lengths searched")
    parser.add_argument("--no-search", action="store_true", help="no stack search, costs only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    gguf = args.gguf
    if gguf is None:
        source = load_config("local").model("qwen2.5-coder-0.5b").gguf
        gguf = None if source is None else header_file(source, "qwen2.5-coder-0.5b")
    if gguf is None or not Path(gguf).is_file():
        sys.exit("error: no GGUF here: give --gguf, or assemble the local ladder's models")
    figures: dict[str, object] = {"gguf": str(gguf)}
    if not args.no_search:
        for kind, char in KINDS.items():
            for n in (int(c) for c in args.chars.split(",")):
                kib = least_stack_kib(gguf, char, n)
                figures[f"{kind} x {n:,}: least stack KiB, bytes a char"] = (
                    f"{kib}, {kib * 1024 / n:.0f}" if kib > 64 else "<= 64"
                )
    figures.update(costs(gguf))
    print_figures(figures, args.json, 64)


if __name__ == "__main__":
    main()
