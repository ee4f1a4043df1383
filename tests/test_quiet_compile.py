r"""Code RouterLLM did not write, compiled by its checks (an answer read and run on its
request's examples, a stub found and its answer checked, a docstring's examples read, the
HumanEval, MBPP and RouterBench files loaded), gives none of the warnings Python's compiler
gives about it (``0in x``: "invalid decimal literal"; ``"\d"``: "invalid escape
sequence"; ``x is 1``): not on stderr, and not as errors where the user made warnings
errors, before or after importing routerllm, so each check's verdict is the same. The
user's own warnings, and those of code compiled under another name, are untouched, and no
filter list is swapped per compile (the server and the cascade compile in threads).

Imports only what the checks' callers use: the module that compiles the code
(``routerllm.quiet_compile``) is the implementation's."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.cascade import verify_answer, verify_stub
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.data.mbpp import load_mbpp
from routerllm.data.routerbench_csv import load_routerbench_csv
from routerllm.eval.codegen import CHAT_STYLE, PREFILL_STYLE, extract_completion
from routerllm.eval.cut_compiler import error_line
from routerllm.eval.prompt_examples import Verification, extract_examples
from routerllm.exceptions import RouterLLMError
from routerllm.stubs import stub_of

#: A request stating an example, and an answer that Python 3.11 warns about ("invalid
#: decimal literal", a SyntaxWarning) with demo code that reads stdin: dropped where the
#: answer compiles, it fails the check where it is kept.
PROMPT = 'def add(a, b):\n    """The sum.\n    >>> add(2, 2)\n    4\n    """\n'
ANSWER = (
    "```python\ndef add(a, b):\n    return a + b if 0in [0] else 0\n\n"
    "print(add(int(input()), 2))\n```"
)
#: A stub whose docstring holds an invalid escape sequence ("\d": a DeprecationWarning in
#: Python 3.11, a SyntaxWarning from 3.12), and a prefilled answer's body, its fence glued.
STUB = (
    'def digits(s):\n    """The digits of s, as re.findall("\\d", s) finds them.\n'
    "    >>> digits('a1b2')\n    ['1', '2']\n    \"\"\"\n"
)
BODY = "    return [c for c in s if c.isdigit()]```"
#: A docstring whose example's call holds one.
ESCAPED = 'def count(s):\n    """Backslashes.\n    >>> count("a\\d")\n    1\n    """\n'
#: A warned answer compiled alone: `is` with a literal (a warning of the compile proper).
WARNED = "x = 1 if 0in [0] else 2\ny = x is 1\n"

#: What each check gives, where these warnings change nothing.
EXPECTED: dict[str, Any] = {
    "extract_completion": "\ndef add(a, b):\n    return a + b if 0in [0] else 0\n",
    "verify_answer": ["passed", 1, 1],
    "stub_of": "digits",
    "verify_stub": ["passed", 1, 1],
    "extract_examples": [['count("a\\d")', "1"]],
    "error_line": None,
    "load_humaneval": ["t/{tag}"],
    "load_mbpp": [["Mbpp/{tag}", "count_digits"]],
    "load_routerbench_csv": ['Match "\\d+" here'],
}


def verdicts(folder: Path, tag: str) -> dict[str, Any]:
    """Each check's verdict on the code above (a check's clear error, where it refuses it);
    ``tag`` names the problems of the files written in ``folder`` (a file's problems, once
    checked, are not checked again in a process)."""
    problem = HumanEvalProblem("request", PROMPT, "add", canonical_solution="", test="")
    stub = HumanEvalProblem("request", STUB, "digits", canonical_solution="", test="")
    checks: dict[str, Callable[[], Any]] = {
        "extract_completion": lambda: extract_completion(problem, ANSWER, CHAT_STYLE),
        "verify_answer": lambda: _verdict(verify_answer(PROMPT, ANSWER)),
        "stub_of": lambda: getattr(stub_of(GenerationRequest(prompt=STUB)), "entry_point", None),
        "verify_stub": lambda: _verdict(verify_stub(stub, BODY, PREFILL_STYLE)),
        "extract_examples": lambda: [
            [e.call, e.expected] for e in extract_examples(ESCAPED, "count")
        ],  # fmt: skip
        "error_line": lambda: error_line(WARNED),
        "load_humaneval": lambda: [
            p.task_id for p in load_humaneval(_humaneval_file(folder, tag))
        ],  # fmt: skip
        "load_mbpp": lambda: [
            [p.task_id, p.entry_point] for p in load_mbpp(_mbpp_file(folder, tag))
        ],  # fmt: skip
        "load_routerbench_csv": lambda: load_routerbench_csv(_routerbench_file(folder)).prompts,
    }
    found = {}
    for name, check in checks.items():
        try:
            found[name] = check()
        except RouterLLMError as e:
            found[name] = f"refused: {e}"
    return found


def _verdict(check: Verification) -> list[object]:
    return [check.verdict, check.passed, check.total]


def expected(tag: str) -> dict[str, Any]:
    return json.loads(json.dumps(EXPECTED).replace("{tag}", tag))


def _humaneval_file(folder: Path, tag: str) -> Path:
    test = (
        "def check(candidate):\n    assert candidate(2, 2) is not 5\n"
        '    assert "\\d" not in str(candidate(1, 2))\n    assert candidate(1, 2) == 3\n'
    )
    row = {"task_id": f"t/{tag}", "prompt": PROMPT, "canonical_solution": "    return a + b\n", "test": test, "entry_point": "add"}  # fmt: skip
    path = folder / "humaneval.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def _mbpp_file(folder: Path, tag: str) -> Path:
    row = {
        "task_id": tag,
        "text": "Write a function to count the digits in a string.",
        "code": 'import re\r\ndef count_digits(s):\r\n  return len(re.findall(r"[0-9]", s))',
        "test_setup_code": "",
        "test_list": ['assert count_digits("a\\d1") == 1', 'assert count_digits("12") == 2'],
        "challenge_test_list": [],
    }
    path = folder / "mbpp.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def _routerbench_file(folder: Path) -> Path:
    path = folder / "routerbench.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["prompt", "m", "m|total_cost"], ["['Match \"\\d+\" here']", 1, 0.5]])  # fmt: skip
    return path


@contextlib.contextmanager
def _users_filter(action: str) -> Iterator[list[warnings.WarningMessage]]:
    """The warnings recorded while ``warnings.simplefilter(action)`` holds. ResourceWarning
    aside: pytest's log file handler (of /dev/null) is still open as the process exits, and
    the filters Python read last are the ones used then, this test's."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter(action)
        warnings.simplefilter("ignore", ResourceWarning)
        yield seen


@pytest.mark.parametrize("option", ["default", "error"])
def test_a_users_warning_option_neither_shows_an_answers_warnings_nor_changes_a_verdict(
    tmp_path: Path, option: str
) -> None:
    """``python -W default`` shows every warning (the DeprecationWarning of "\\d" too, which
    Python 3.11 hides by default); ``-W error`` makes each an error, from the start."""
    tests, src = Path(__file__).parent, Path(__file__).parents[1] / "src"
    code = (
        f"import json, sys; sys.path[:0] = [{str(tests)!r}]\n"
        "from pathlib import Path\nfrom test_quiet_compile import verdicts\n"
        f"print(json.dumps(verdicts(Path({str(tmp_path)!r}), 'cli')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-W", option, "-c", code],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr == ""
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == expected("cli")


@pytest.mark.parametrize("action", ["always", "error"])
def test_filters_the_user_sets_after_import_neither_show_nor_raise_an_answers_warnings(
    tmp_path: Path, action: str
) -> None:
    """A ``warnings.simplefilter`` set after routerllm was imported, and after its checks
    ran once, goes before the filters they put first: the checks still give their verdicts,
    warning nothing; the user's own warnings, and code the user compiles, still warn or
    raise."""
    assert error_line(WARNED) is None  # a check ran before the user's filter
    with _users_filter(action) as seen:
        assert verdicts(tmp_path, action) == expected(action)
        assert [str(w.message) for w in seen] == []
        if action == "error":
            with pytest.raises(SyntaxError, match="invalid decimal literal"):
                compile(WARNED, "<mine>", "exec")
            with pytest.raises(SyntaxWarning, match="mine"):
                warnings.warn("mine", SyntaxWarning, stacklevel=1)
        else:
            compile(WARNED, "<mine>", "exec")
            warnings.warn("mine", SyntaxWarning, stacklevel=1)
            assert [str(w.message) for w in seen] == [
                "invalid decimal literal",
                '"is" with a literal. Did you mean "=="?',
                "mine",
            ]


def test_a_filter_of_some_messages_put_first_neither_shows_nor_raises_them() -> None:
    """A filter of some messages only may act on the answers' warnings: put before
    routerllm's, it is followed by them again at the next compile."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("ignore")  # the answers' warnings ignored: whatever filters
        assert error_line(WARNED) is None
        warnings.filterwarnings("error", message="invalid decimal", category=SyntaxWarning)
        warnings.filterwarnings("always", message='"is" with', category=SyntaxWarning)
        assert error_line(WARNED) is None
        assert seen == []
        with pytest.raises(SyntaxError, match="invalid decimal literal"):
            compile(WARNED, "<mine>", "exec")


def test_checks_in_threads_swap_no_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiles in many threads at once hide nothing of the user's, print nothing, and
    leave the process's list of filters as it was: the same list, its filters the same
    once routerllm's are in it (``warnings.catch_warnings`` swaps the list for its block,
    and another thread's warnings are filtered by that list meanwhile)."""

    def swapped(*args: object, **kwargs: object) -> None:
        raise AssertionError("warnings.catch_warnings used in a check")

    with _users_filter("always") as seen:
        assert error_line(WARNED) is None
        filters, before = warnings.filters, list(warnings.filters)
        lines: list[int | None] = []

        def compiles() -> None:
            lines.extend(error_line(WARNED) for _ in range(50))

        with monkeypatch.context() as patch:  # undone before pytest reports (it uses it)
            patch.setattr(warnings, "catch_warnings", swapped)
            threads = [threading.Thread(target=compiles) for _ in range(8)]
            for thread in threads:
                thread.start()
            for _ in range(50):
                warnings.warn("mine", UserWarning, stacklevel=1)
            for thread in threads:
                thread.join()
        assert lines == [None] * 400
        assert warnings.filters is filters and warnings.filters == before
        assert [str(w.message) for w in seen] == ["mine"] * 50
