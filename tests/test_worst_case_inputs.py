"""Prompts crafted to make the request path's parsers and patterns slow (catastrophic
backtracking, one parse per function or per name): each is read within a time bound
far above what it now takes (milliseconds), far under what it took (seconds to hours
at the prompt limit): README, "Cascade: check the answer, escalate when it fails"."""

from __future__ import annotations

import time

from routerllm.cascade import function_with_examples, verify_answer

#: Seconds one check may take on a crafted prompt: generous, for a loaded CI machine.
BOUND_S = 2.0


def _timed_check(prompt: str) -> tuple[str, float]:
    start = time.perf_counter()
    check = verify_answer(prompt, "def f(x):\n    return x\n")
    return check.verdict, time.perf_counter() - start


def test_a_request_of_many_functions_is_parsed_once_not_once_per_function() -> None:
    # 8,000 characters of one-line functions took 12 s (a parse of the whole request
    # for each function): 200,000 would take hours
    prompt = "".join(f'def a{i}():\n    "x"\n' for i in range(500))
    verdict, took = _timed_check(prompt)
    assert verdict == "unverifiable" and took < BOUND_S, took


def test_a_request_calling_many_names_is_not_read_once_per_name() -> None:
    # every name called was tried in turn, each a read of the whole request: 8,000
    # characters of calls to new names took 2.5 s
    prompt = "Write it. " + " ".join(f"a{i}(" for i in range(2000))
    verdict, took = _timed_check(prompt)
    assert verdict == "unverifiable" and took < BOUND_S, took


def test_a_long_run_of_commas_after_an_example_call_does_not_backtrack() -> None:
    # a call followed by 8,000 commas took 3.5 s (the joints' pattern backtracked
    # quadratically): 200,000 would take half an hour
    prompt = "f(1) " + "," * 8_000 + "x"
    start = time.perf_counter()
    assert function_with_examples(prompt) is None
    assert time.perf_counter() - start < BOUND_S
