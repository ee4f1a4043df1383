"""Prompts crafted to make the request path's parsers and patterns slow (catastrophic
backtracking, one parse per function or per name): each is read within a time bound
far above what it now takes (milliseconds), far under what it took (seconds to hours
at the prompt limit): README, "Cascade: check the answer, escalate when it fails"."""

from __future__ import annotations

import ast
import dataclasses
import re
import time

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.cascade import function_with_examples, verify_answer
from routerllm.config_sections import LimitsConfig
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.demo import DEMO_PROMPTS
from routerllm.eval.codegen import (
    CHAT_STYLE,
    PREFILL_STYLE,
    CodegenStyle,
    extract_completion,
    function_nodes,
)
from routerllm.eval.prompt_examples import MAX_EXAMPLES, ParsedPrompt
from routerllm.overrides import asks_for_math
from routerllm.routers.base import Candidate
from routerllm.routers.rules import Rule, RuleBasedRouter, default_rules
from routerllm.stubs import stub_of

from .test_multilingual_routing import SAME_REQUESTS

#: The server's prompt limit (``limits.max_prompt_chars``): the worst inputs' size
LIMIT: int = LimitsConfig.model_fields["max_prompt_chars"].default

#: CPU seconds one check may take on a crafted prompt (CPU, not wall time: on a loaded CI
#: machine the waits for a core would count): generous, far under what it took before.
BOUND_S = 2.0


def _timed_check(prompt: str) -> tuple[str, float]:
    start = time.process_time()
    check = verify_answer(prompt, "def f(x):\n    return x\n")
    return check.verdict, time.process_time() - start


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
    start = time.process_time()
    assert function_with_examples(prompt) is None
    assert time.process_time() - start < BOUND_S


# -- the answer's side: a model's answer is untrusted too ------------------------------
#: A request of 5,000 characters of code, its last function stating an example, as a
#: checked request's does; its answers of 1,000 lines. Each cut of an answer is compiled
#: with it (~0.05 s here): 1,000 took minutes, 16 now take a second (at the prompt limit,
#: 200,000 characters, each compile takes 0.5 s: it was hours).
ANSWER_BOUND_S = 10.0
_LONG_PROMPT = "".join(f"x{i:05} = [{i:5}, 1]\n" for i in range(250)) + (
    '\ndef f(x):\n    """\n    >>> f(1)\n    2\n    """\n'
)
_REQUEST = HumanEvalProblem("request", _LONG_PROMPT, "f", canonical_solution="", test="")


def _timed_extraction(answer: str, style: CodegenStyle) -> float:
    start = time.process_time()
    extract_completion(_REQUEST, answer, style)
    return time.process_time() - start


def test_an_answer_whose_lines_never_compile_is_not_compiled_with_the_prompt_once_per_line() -> None:  # fmt: skip
    # each trailing line cut off was compiled again with the whole request
    for answer in ("    return (x +\n" + "    x +\\\n" * 1000, "    y = 1\n" + "    @x\n" * 1000):
        for style in (CHAT_STYLE, PREFILL_STYLE):
            assert _timed_extraction(answer, style) < ANSWER_BOUND_S, (answer[:20], style.name)


def test_an_answer_restating_the_function_then_lines_that_never_compile() -> None:
    # each cut of the answer's own code was compiled: quadratic in the answer's length
    answer = "def f(x):\n    return [\n" + "        x + 1,\n" * 3000
    assert _timed_extraction(answer, CHAT_STYLE) < ANSWER_BOUND_S


def test_a_prefilled_answer_of_many_fences_is_not_compiled_with_the_prompt_once_per_fence() -> None:  # fmt: skip
    # each fence was a cut compiled (and tokenized) with the whole request
    for answer in ("    return (x```\n" * 3000, "    '```'\n" * 3000, "    # ```\n" * 3000):
        assert _timed_extraction(answer, PREFILL_STYLE) < ANSWER_BOUND_S, answer[:20]


def test_a_request_of_code_without_a_def_is_not_parsed_to_look_for_a_stub() -> None:
    # every request's stub detection parsed the whole prompt: 200,000 characters of data
    # that is valid Python (a JSON or list pasted to ask about) took 0.6 s, for no stub
    prompt = "x = [1, 2]\n" * 18_000
    start = time.process_time()
    assert stub_of(GenerationRequest(prompt=prompt)) is None
    assert time.process_time() - start < 0.1


def test_stub_detection_decides_as_the_parse_does() -> None:
    # the pre-check only skips prompts without the keyword: a stub is still one
    stub = 'import math\n\n\ndef area(r):\n    """Area of a circle.\n    >>> area(1)\n    3.14\n    """\n'
    found = stub_of(GenerationRequest(prompt=stub))
    assert found is not None and found.entry_point == "area"
    assert stub_of(GenerationRequest(prompt="async  def  f():\n    'doc'\n")) is not None
    assert stub_of(GenerationRequest(prompt="Define a function, default args.")) is None


# -- many functions at the prompt limit: one parse, no per-function work without examples
#: 200,000 characters (the prompt limit) of functions whose docstrings state no example
_FUNCTIONS = "".join(f'def a{i}():\n    "x"\n' for i in range(11_000))[:199_000]
_FUNCTIONS = _FUNCTIONS[: _FUNCTIONS.rfind("def ")]
#: ~0.2 s and ~0.6 s now (2 loaded cores): 1.6-2.3 s and 3.5-4.3 s before
UNPARSED_BOUND_S, PARSED_BOUND_S = 1.0, 2.0


def test_a_request_of_functions_that_do_not_parse_is_not_read_once_per_name_it_calls() -> None:
    # a task in prose is looked for among the first 20 names the request calls, each a
    # read of the whole text: 200,000 characters took 6 s; each line's assert looked
    # for by parsing it, with or without "assert" in it
    prompt = _FUNCTIONS.replace("\n    ", "\n")  # unindented docstrings: no parse
    verdict, took = _timed_check(prompt)
    assert verdict == "unverifiable" and took < UNPARSED_BOUND_S, took


def test_a_request_of_many_functions_at_the_limit_is_parsed_once() -> None:
    # each candidate (the text, and the same text from its first def) was parsed three
    # times, every function's docstring read, then the names it calls as above: 3.5-4.3 s
    # (8.8 s in a process holding other parses: the garbage collector walks them all)
    verdict, took = _timed_check(_FUNCTIONS)
    assert verdict == "unverifiable" and took < PARSED_BOUND_S, took


def test_the_last_of_many_functions_is_checked_on_its_examples() -> None:
    prompt = _FUNCTIONS + 'def f(x):\n    """\n    >>> f(1)\n    2\n    """\n'
    assert function_with_examples(prompt) == (prompt, "f")
    check = verify_answer(prompt, "def f(x):\n    return x + 1\n")
    assert (check.verdict, check.passed, check.total) == ("passed", 1, 1)


def test_a_walk_of_statements_finds_the_functions_ast_walk_finds_in_its_order() -> None:
    source = (
        "def a():\n    def b(): pass\n    return [lambda: 1]\n"
        "class C:\n    def m(self):\n        def n(): pass\n"
        "try:\n    def t(): pass\nexcept E:\n    def h(): pass\nelse:\n    def e(): pass\n"
        "finally:\n    def f(): pass\n"
        "match x:\n    case 1:\n        async def k(): pass\n"
        "if y:\n    def a(): pass\nelse:\n    for i in z:\n        def w(): pass\n"
    )
    tree = ast.parse(source)
    walked = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert function_nodes(tree) == walked and len(walked) == 11


def test_a_long_run_of_digits_is_read_once_for_a_chinese_operator_word() -> None:
    # each digit of the run started a number that ran to the run's end, then backtracked
    # (the Chinese operators' numbers had no boundary before them): 20,000 digits took
    # ~7 s, the prompt limit's 200,000 minutes
    start = time.process_time()
    assert not asks_for_math("1" * 20_000)
    assert time.process_time() - start < 1.0
    assert asks_for_math("x 12乘以7") and asks_for_math("a12 加 7") and asks_for_math("3+4")


# -- the rules router: every rule's words tried at every place -------------------------
#: CPU seconds one route may take at the prompt limit: ~0.2 s now (2 loaded cores),
#: 1.0-2.0 s before (each rule's ~100 words tried at every place, read twice per route)
ROUTE_BOUND_S = 0.75


def _rule_samples() -> list[str]:
    """Texts holding each rule's words: each word alternative as written (its classes and
    repeats read once), in three cases, alone, inside a word, and glued to another."""
    samples = []
    for rule in default_rules(factored=False):
        for alternative in re.split(r"\||\(\?", rule.pattern.pattern):
            word = re.sub(r"\[\^?(.)[^\]]*\]", r"\1", alternative)
            word = re.sub(r"\\d\+?", "12", re.sub(r"\\w\*", "ab", word)).replace("\\", "")
            word = re.sub(r"[()?*+!<=:]", "", word)
            for w in (word, word.upper(), word.title()):
                samples += [w, f"x {w}.", f"a{w}s", f"{w}{w} {w}-{w}", f"1. {w}\n2) {w}"]
    return samples


def _rule_texts() -> list[str]:
    """Texts to compare two forms of the rules on: the demo's prompts, HumanEval's, each
    rule's words in three cases, requests in 9 languages, characters with case beside
    the words."""
    texts = [*DEMO_PROMPTS, *(p.prompt for p in load_humaneval()), *_rule_samples()]
    texts += ["\u212a\u017f \u0130 \u0131 ß ẞ É", "\n\x0c1. x", " \r 1) x"]
    texts += [text for request in SAME_REQUESTS for text in request]  # in 9 languages
    texts += [
        "analiza",
        "que analiza",
        "QUE ANALIZA",
        "Oi",
        "OI",
        "oI",
        "レコード",
        "コード",
        "間違い",
    ]
    return texts


def _same_matches(pairs: list[tuple[Rule, Rule]], texts: list[str]) -> None:
    for rule, other in pairs:
        # the whole rule (a prompt with East Asian script), and its spaced words (one without)
        for found, wanted in ((rule.pattern, other.pattern), (rule.spaced, other.spaced)):
            for text in texts:
                # where each match is (its words' own groups are numbered in another order)
                spans = [m.span() for m in found.finditer(text)]
                assert spans == [m.span() for m in wanted.finditer(text)], (rule.name, text[:60])  # fmt: skip


def test_the_rules_factored_find_the_matches_their_words_as_written_find() -> None:
    # the router counts a rule's matches
    pairs = list(zip(default_rules(), default_rules(factored=False), strict=True))
    assert sum(f.pattern.pattern != w.pattern.pattern for f, w in pairs) == 5  # all but one
    _same_matches(pairs, _rule_texts())


def test_the_rules_word_boundaries_matched_case_aside_find_what_folding_them_found() -> None:
    """The classes of the rules' word boundaries are matched case aside by themselves
    (``(?-i:...)``), not folded character by character as the rest of a rule (0.24 s of
    CPU to compile the rules, now 0.10 s): the same matches, with a letter of any case
    (or one whose case folds to another script's) beside a rule's words."""
    from routerllm.routers import rules

    def folded(pattern: re.Pattern[str]) -> re.Pattern[str]:
        text = pattern.pattern.replace(rules._SPACED_WORD, f"[^\\W{rules._CJK}{rules._HANGUL}]")
        text = text.replace(f"(?-i:[{rules._HANGUL}])", f"[{rules._HANGUL}]")
        assert "(?-i:[" not in text
        return re.compile(text, pattern.flags)

    pairs = [
        (rule, dataclasses.replace(rule, pattern=folded(rule.pattern), spaced=folded(rule.spaced)))
        for rule in default_rules()
    ]
    cased = [chr(c) for c in range(0x20, 0x2C00) if chr(c).lower() != chr(c).upper()]
    texts = [f"{c}hello{c} what is{c} {c}translate {c}번역{c}" for c in cased]
    _same_matches(pairs, _rule_texts() + texts)


def test_a_route_at_the_prompt_limit_does_not_try_every_word_at_every_place() -> None:
    router = RuleBasedRouter([Candidate("light", 0.5, "light"), Candidate("heavy", 7.0, "heavy")])
    for prompt in ("(" * LIMIT, "~~~\n" * (LIMIT // 4), "c " * (LIMIT // 2)):
        start = time.process_time()
        router.route(prompt)
        took = time.process_time() - start
        assert took < ROUTE_BOUND_S, (prompt[:4], took)


# -- the answer's side at the prompt limit ----------------------------------------------
#: A request of 200,000 characters of code (the prompt limit), its last function stating
#: an example, as the benchmark's; its parse, as the cascade has it
_LIMIT_PROMPT = "".join(f"x{i:05} = [{i:5}, 1]\n" for i in range((LIMIT - 60) // 20)) + (
    '\ndef f(x):\n    """\n    >>> f(1)\n    2\n    """\n'
)
#: CPU seconds one extraction may take after it: 0.03 s now, 0.2-6.4 s before (each cut
#: compiled with the whole request, 0.16 s a compile)
LIMIT_ANSWER_BOUND_S = 1.0


@pytest.mark.parametrize(
    ("answer", "style"),
    [
        ("    return (x +\n" + "    x +\\\n" * 1000, CHAT_STYLE),
        ("    y = 1\n" + "    @x\n" * 1000, CHAT_STYLE),
        ("    return (x```\n" * 3000, PREFILL_STYLE),
        ("    # ```\n" * 3000, PREFILL_STYLE),
        ("def f(x):\n    return [\n" + "        x + 1,\n" * 3000, CHAT_STYLE),
    ],
    ids=["never compiles", "decorators", "fences", "fences in comments", "restated"],
)
def test_an_answer_after_a_request_at_the_limit_is_not_compiled_with_all_of_it(
    answer: str, style: CodegenStyle
) -> None:
    request = HumanEvalProblem("request", _LIMIT_PROMPT, "f", canonical_solution="", test="")
    tree = ast.parse(_LIMIT_PROMPT)
    start = time.process_time()
    extract_completion(request, answer, style, tree)
    took = time.process_time() - start
    assert took < LIMIT_ANSWER_BOUND_S, took


def test_an_answer_of_megabytes_is_read_within_the_compile_budget() -> None:
    # a remote model may answer far past its max tokens: lines that never compile, each
    # cut compiled alone (64 of them, 2 MB each) took minutes
    answer = "def f(x):\n" + "    x = (1 +\\\n" * 150_000
    start = time.process_time()
    completion = extract_completion(_REQUEST, answer, CHAT_STYLE)
    assert time.process_time() - start < 4 * LIMIT_ANSWER_BOUND_S
    assert completion == "\n" + answer.strip("\n") + "\n"  # the most literal: its check fails


def test_a_line_of_thousands_of_examples_is_read_to_the_first_hundred() -> None:
    # 18,000 examples on one line at the prompt limit took 1.4 s to read (each parsed three
    # times), and each would have run in the sandbox; a docstring states a few
    prompt = "".join(f"f({i}) == {i + 1}, " for i in range(12_000))[:LIMIT]
    start = time.process_time()
    target = function_with_examples(prompt)
    assert time.process_time() - start < 1.0
    assert target is not None
    parsed = ParsedPrompt(target[0])
    assert len(parsed.examples("f")) == MAX_EXAMPLES
    assert parsed.examples("f")[-1].call == f"f({MAX_EXAMPLES - 1})"
    # the edge: as many as the bound, all read; one a line, the same
    for n in (MAX_EXAMPLES, MAX_EXAMPLES + 1):
        lines = "Write f.\n" + "".join(f"assert f({i}) == {i}\n" for i in range(n))
        assert len(ParsedPrompt(lines).examples("f")) == MAX_EXAMPLES
    assert len(ParsedPrompt("Write f.\nassert f(1) == 1\nassert f(2) == 2\n").examples("f")) == 2
