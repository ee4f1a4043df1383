"""A cut of an answer compiled after the request's last statement alone says what compiling
it after the whole request says (whether it compiles, and the line of its error), on
HumanEval's requests and answers cut as the extraction cuts them, and on the requests
where the statements before tie the cut to them; and all compiles of one answer stop at
the budget."""

from __future__ import annotations

import pytest

from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.eval import cut_compiler
from routerllm.eval.cut_compiler import MAX_COMPILED_CHARS, CutCompiler, error_line, parse_code


@pytest.fixture(scope="module")
def problems() -> list[HumanEvalProblem]:
    return load_humaneval()


def _cuts(problem: HumanEvalProblem) -> list[str]:
    """What an extraction compiles after a HumanEval prompt: its solution's body, each of
    its line cuts, re-indented, run past its end into prose, and restated as a function."""
    lines = problem.canonical_solution.rstrip().splitlines()
    cuts = ["\n".join(lines[:end]) + "\n" for end in range(1, len(lines) + 1)]
    cuts += [problem.canonical_solution + "Here it is.\nIt works.\n", "\n".join(line.strip() for line in lines)]  # fmt: skip
    cuts += ["    " + c for c in cuts[:3]] + ["\n" + problem.prompt + problem.canonical_solution]
    cuts += [lines[0] + "```", lines[0] + "  # ```", lines[0] + "  # (", "    return (\n"]
    return cuts


def test_a_cut_after_the_last_statement_compiles_as_after_the_whole_request(
    problems: list[HumanEvalProblem],
) -> None:
    compared = 0
    for problem in problems:
        compiler = CutCompiler(problem.prompt)
        for cut in _cuts(problem):
            assert compiler.after_prompt(cut) == error_line(problem.prompt + cut), (problem.task_id, cut)  # fmt: skip
            compared += 1
    assert compared > 2000 and compiler.spent < MAX_COMPILED_CHARS


def test_a_cut_is_compiled_after_the_last_statement_only() -> None:
    prompt = "x = [1, 2]\n" * 1000 + 'def f(x):\n    """>>> f(1)\n    2\n    """\n'
    compiler = CutCompiler(prompt)
    assert compiler.after_prompt("    return x\n") is None
    assert compiler.spent < 100  # the last statement and the cut: not the 11,000 before
    # an error's line is counted from the request's first
    assert compiler.after_prompt("    return (\n") == error_line(prompt + "    return (\n") == 1005


@pytest.mark.parametrize(
    ("prompt", "cut"),
    [
        # a global at the module's level in the cut: a name the code before bound
        ("x = 1\ndef f():\n    'doc'\n", "global x\n"),
        ("x = 1\ndef f():\n    'doc'\n", "    return 1\nglobal x\nx = 2\n"),
        # ... or in the request: a cut then annotating its name
        ("global x\ndef f():\n    'doc'\n", "x: int = 1\n"),
        ("if 1:\n    global x\ndef f():\n    'doc'\n", "x: int = 1\n"),
        # a future import: legal only at the start of the program
        ('"""doc"""\nimport os\n"""more"""\n', "from __future__ import annotations\n"),
        # the request's future imports hold for the cut
        (
            "from __future__ import annotations\ndef f():\n    'doc'\n",
            "    def g(x: (yield)): pass\n",
        ),  # fmt: skip
        ("def f():\n    'doc'\n", "    def g(x: (yield)): pass\n"),
        # its last statements share a line, one on a line another statement started
        ("import os\nx = (1,\n  2); y = 3\n", "z = 4\n"),
        ("import os\nx = 1; y = 2\n", "  z\n"),
        # a decorated function: from its first decorator
        ("import os\n@staticmethod\n@property\ndef f():\n    'doc'\n", "    return 1\n"),
        ("import os\n@staticmethod\n@property\ndef f():\n    'doc'\n", "    return (\n"),
        # lines ended by "\r" and "\r\n", as the parser counts them
        ("import os\r\rx = 1\r\ndef f():\r    'doc'\r", "    return (\n"),
        # a def at column 0 in a string is no statement
        (
            'import os\ns = """\ndef g():\n"""\ndef f():\n    """\ndef h():\n    """\n',
            "    return (\n",
        ),  # fmt: skip
        # a request that does not parse, or holds no statement
        ("def f(:\n", "    return 1\n"),
        ("# nothing\n", "    return 1\n"),
        ("", "return 1\n"),
    ],
)
def test_a_cut_tied_to_the_statements_before_compiles_as_after_the_whole_request(
    prompt: str, cut: str
) -> None:
    assert CutCompiler(prompt).after_prompt(cut) == error_line(prompt + cut)


def test_a_request_is_parsed_once_for_the_answers_it_gets() -> None:
    prompt = "y = 2\n" * 10 + "def f():\n    'doc'\n"
    cut_compiler._parsed_tail.cache_clear()
    for _ in range(3):
        CutCompiler(prompt).after_prompt("    return 1\n")
    assert cut_compiler._parsed_tail.cache_info().misses == 1
    # a caller's own parse is used as it is
    assert CutCompiler(prompt, parse_code(prompt)).after_prompt("    return (\n") == 13


def test_the_compiles_of_one_answer_stop_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cut_compiler, "MAX_COMPILED_CHARS", 60)
    compiler = CutCompiler("def f():\n    'doc'\n")
    assert compiler.alone("x = 1\n" * 9) is None and not compiler.exhausted  # 54 characters
    assert compiler.alone("x = (\n") == 1  # crosses the budget: still compiled
    assert compiler.exhausted and compiler.spent == 60
    assert compiler.alone("x = 1\n") == 0 and compiler.after_prompt("    return 1\n") == 0
