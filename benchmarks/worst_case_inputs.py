"""The worst time of each parser and pattern on the request path, on prompts crafted
against it, at the prompt limit (``limits.max_prompt_chars``, 200,000 characters); of
the cascade's reading of crafted answers after a request at the limit; and of a real
server's answer to crafted requests.

Each path (the rules router's rules, the override rules' math detection, the function
stub detection, the cascade's code extraction and example reading) is timed once per
crafted prompt (nested quantifiers' near misses, long runs of one character, deep
nesting, many functions or names); its worst is printed, in milliseconds. Each crafted
answer (lines that never compile, many fences, the function restated then unclosed) is
read as the cascade reads it after a request of code at the limit (its parse at hand, as
the cascade's check has it), in milliseconds.
Each crafted request (JSON nested 100,000 deep, a chunked body of 100 MB, a header of
1 MB, 1,000 headers, 104,000 empty turns, 800,000 empty messages, 100,000 stop strings,
max_tokens 10**30, a model name of 1 MB, 200,000 new lines as a raw completion and as a
chat message, 200,000 letters to qwen2.5-coder-0.5b, whose tokenizer recurses once a
letter) is sent to ``routerllm serve``'s app on 127.0.0.1 (``--config``'s models,
this process; ``--no-server``: not started): its status, seconds, and this process's RSS
after it (MB). Run:

    .venv/bin/python benchmarks/worst_case_inputs.py [--chars 200000] [--config local] [--no-server] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from collections.abc import Callable, Iterator

from machine import print_figures

from routerllm.backends.base import GenerationRequest
from routerllm.cascade import function_with_examples
from routerllm.config_sections import LimitsConfig
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.codegen import (
    CHAT_STYLE,
    PREFILL_STYLE,
    CodegenStyle,
    extract_completion,
    fenced_blocks,
    parse_code,
)
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
        "a rule word's first letter": "c " * half,
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


def answers() -> dict[str, tuple[str, CodegenStyle]]:
    """Answers crafted against the search for their code that compiles after the request."""
    never = "    return (x +\n" + "    x +\\\n" * 1000
    decorators = "    y = 1\n" + "    @x\n" * 1000
    return {
        "lines that never compile, chat": (never, CHAT_STYLE),
        "lines that never compile, prefill": (never, PREFILL_STYLE),
        "decorators without a def, chat": (decorators, CHAT_STYLE),
        "3,000 fences, prefill": ("    return (x```\n" * 3000, PREFILL_STYLE),
        "3,000 fences in comments, prefill": ("    # ```\n" * 3000, PREFILL_STYLE),
        "function restated, list unclosed": (
            "def f(x):\n    return [\n" + "        x + 1,\n" * 3000,
            CHAT_STYLE,
        ),  # fmt: skip
    }


def answer_times(n: int) -> dict[str, object]:
    """Each crafted answer's reading (ms) after a request of ``n`` characters of code whose
    last function states an example, as a checked request's does."""
    example = '\ndef f(x):\n    """\n    >>> f(1)\n    2\n    """\n'
    code = "".join(f"x{i:05} = [{i:5}, 1]\n" for i in range((n - len(example)) // 20))
    request = HumanEvalProblem("request", code + example, "f", canonical_solution="", test="")
    tree = parse_code(request.prompt)  # the cascade's check has the request's parse
    figures: dict[str, object] = {}
    for name, (answer, style) in answers().items():
        start = time.perf_counter()
        extract_completion(request, answer, style, tree)
        figures[f"answer: {name} ms"] = (time.perf_counter() - start) * 1000
    return figures


def rss_mb() -> float:
    """This process's resident memory, MB (Linux's /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


def _post(body: bytes, path: str = "/v1/chat/completions", headers: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head.encode() + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _chunked(megabytes: int) -> Iterator[bytes]:
    yield b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"a" * (1 << 16)
    for _ in range(megabytes * 16):
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def requests() -> dict[str, Callable[[], Iterator[bytes]]]:
    """Requests crafted against the server, each as the bytes to send, in pieces."""
    hi = [{"role": "user", "content": "hi"}]

    def chat(**fields: object) -> Callable[[], Iterator[bytes]]:
        body = json.dumps({"model": "auto", **fields}, separators=(",", ":"))  # under the cap
        return lambda: iter([_post(body.encode())])

    return {
        "JSON nested 100,000 deep": lambda: iter([_post(b"[" * 100_000 + b"]" * 100_000)]),
        "chunked body of 100 MB": lambda: _chunked(100),
        "a header of 1 MB": lambda: iter(
            [_post(b"{}", headers=b"X-A: " + b"a" * (1 << 20) + b"\r\n")]
        ),  # fmt: skip
        "1,000 headers": lambda: iter(
            [_post(b"{}", headers=b"".join(b"X-%d: v\r\n" % i for i in range(1000)))]
        ),  # fmt: skip
        "104,000 empty turns": chat(
            messages=[{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]
            * 52_000
            + hi
        ),  # fmt: skip
        "800,000 empty messages": lambda: iter(
            [_post(b'{"messages":[' + b",".join([b"{}"] * 800_000) + b"]}")]
        ),  # fmt: skip
        "100,000 stop strings": chat(messages=hi, stop=[str(i) for i in range(100_000)]),
        "max_tokens 10**30": chat(messages=hi, max_tokens=10**30),
        "a model name of 1 MB": lambda: iter(
            [_post(json.dumps({"model": "m" * (1 << 20), "messages": hi}).encode())]
        ),  # fmt: skip
        "200,000 new lines": lambda: iter(
            [
                _post(
                    json.dumps({"model": "auto", "prompt": "\n" * 199_998 + "hi"}).encode(),
                    "/v1/completions",
                )
            ]
        ),  # fmt: skip
        # a chat message's text is also searched for control-token text
        "200,000 new lines, chat": chat(
            messages=[{"role": "user", "content": "\n" * 199_998 + "hi"}]
        ),  # fmt: skip
        # Qwen2.5's pre-tokenizer recursed once a letter: 30,000 killed the server (SIGSEGV)
        "200,000 letters to qwen2.5-coder-0.5b": lambda: iter(
            [
                _post(
                    json.dumps(
                        {
                            "model": "qwen2.5-coder-0.5b",
                            "messages": [{"role": "user", "content": "a" * 200_000}],
                        }
                    ).encode()
                )
            ]
        ),  # fmt: skip
    }


def _sent(port: int, pieces: Iterator[bytes]) -> tuple[str, float]:
    """The answer's status line's code, and the seconds from the first byte sent to it."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        start, data = time.perf_counter(), b""
        try:
            for piece in pieces:
                sock.sendall(piece)
        except OSError:  # the server closed the connection on a body it refused: its answer came
            pass
        try:
            while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
        except OSError:
            pass
        took = time.perf_counter() - start
    return (data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"), took


def server_times(config_name: str) -> dict[str, object]:
    """Each crafted request's answer from a real server: status, seconds, RSS after (MB);
    then whether a plain request is still answered."""
    from scratch_logs import scratch_logs
    from served import serving

    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    config = load_config(config_name)
    figures: dict[str, object] = {}
    with scratch_logs(config), RouterLLM(config) as system, serving(system) as url:
        port = int(url.split(":")[2].split("/")[0])
        ok = _post(json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode())  # fmt: skip
        figures["server: a plain request"] = _sent(port, iter([ok]))[0]
        figures["server: RSS at start MB"] = rss_mb()
        for name, pieces in requests().items():
            status, took = _sent(port, pieces())
            figures[f"server: {name}"] = f"{status} in {took:.2f} s, RSS {rss_mb():.0f} MB"
        figures["server: a plain request after them"] = _sent(port, iter([ok]))[0]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=LIMIT, help="prompt size (default: the limit)")
    parser.add_argument("--config", default="local", help="the served models' config")
    parser.add_argument("--no-server", action="store_true", help="no crafted requests to a server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"prompt chars": args.chars, **worst_times(args.chars), **answer_times(args.chars)}
    if not args.no_server:
        figures.update(server_times(args.config))
    print_figures(figures, args.json, 48)


if __name__ == "__main__":
    main()
