"""MBPP problems from a local file, as :class:`HumanEvalProblem` s the experiment runs.

No package ships MBPP, so the user gives the file: Google's ``mbpp.jsonl`` (one
problem a line: ``text, code, task_id, test_setup_code, test_list``) or its
hand-checked ``sanitized-mbpp.json`` (a JSON list; ``prompt`` instead of ``text``,
plus ``test_imports``). Each problem becomes a HumanEval-format problem the way
EvalPlus's MBPP+ writes it: the prompt is a docstring with the task and its first
test, which names the function and shows one example (the cascade reads it)::

    \"\"\"
    Write a function to find the similar elements from the given two tuple lists.
    assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)
    \"\"\"

the answer defines the function, and ``check`` runs every test of ``test_list``
(``challenge_test_list`` is not used, as in the paper's evaluation).
:func:`load_code_problems` reads either benchmark's file by its fields (JSON Lines or
a JSON array, gzipped or not, for both).
"""

from __future__ import annotations

import ast
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from routerllm.data.humaneval import (
    MAX_PROMPT_CHARS,
    HumanEvalProblem,
    can_fail,
    checked_problems,
    humaneval_problems,
    packaged_path,
    read_rows,
)
from routerllm.exceptions import DataError
from routerllm.quiet_compile import parse_module

log = logging.getLogger(__name__)

# Fields only one of the two formats has ("prompt" and "task_id" are in both).
_MBPP_FIELDS = ("text", "code", "test_list", "test_setup_code", "test_imports")
_HUMANEVAL_FIELDS = ("entry_point", "canonical_solution", "test")


def load_code_problems(
    path: str | Path | None = None,
    *,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    packages: Collection[str] = (),
) -> list[HumanEvalProblem]:
    """The problems of ``path``: a HumanEval(+)-format file or an MBPP file, told apart
    by their fields; None is the packaged HumanEval. A prompt longer than
    ``max_prompt_chars`` (the config's ``limits.max_prompt_chars``) is refused, as is
    code that imports a module outside the standard library and ``packages``."""
    path = packaged_path() if path is None else Path(path)
    rows = read_rows(path)
    if _is_mbpp(rows):
        return _mbpp(path, rows, max_prompt_chars, packages)
    return humaneval_problems(path, rows, max_prompt_chars, packages)


def load_mbpp(path: str | Path, packages: Collection[str] = ()) -> list[HumanEvalProblem]:
    """The problems of an MBPP ``mbpp.jsonl`` or ``sanitized-mbpp.json`` file, in file order;
    their code may import the standard library and ``packages`` (those the sandbox is given).

    A problem whose tests call no function its reference code defines (a handful
    in MBPP test a class or a lambda) has no entry point for the answer to define:
    it is left out, and a warning counts them."""
    path = Path(path)
    return _mbpp(path, read_rows(path), MAX_PROMPT_CHARS, packages)


def _is_mbpp(rows: list[tuple[str, Any]]) -> bool:
    """Whether the rows' fields are more MBPP's than HumanEval's, counted over all rows, so
    that one broken row (the first, say) does not decide the format the errors speak of."""
    found = Counter(k for _, row in rows if isinstance(row, dict) for k in row)
    mbpp = sum(found[k] for k in _MBPP_FIELDS)
    return mbpp > 0 and mbpp >= sum(found[k] for k in _HUMANEVAL_FIELDS)


def _mbpp(
    path: Path, rows: list[tuple[str, Any]], max_prompt_chars: int, packages: Collection[str] = ()
) -> list[HumanEvalProblem]:
    problems, skipped = [], []
    for n, (where, row) in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: {where} is not a JSON object")
        text = row.get("text", row.get("prompt"))
        tests, code = row.get("test_list"), row.get("code")
        if (
            not isinstance(text, str)
            or not isinstance(code, str)
            or not _strings(tests)
            or not tests
        ):
            raise DataError(
                f"{path}: {where} lacks a task (text or prompt), code or a non-empty test_list; "
                f"fields found: {', '.join(row)}"
            )
        setup = [_code(path, where, row, k) for k in ("test_imports", "test_setup_code")]
        entry_point = _entry_point(code, tests)
        if entry_point is None:
            skipped.append(str(row.get("task_id", n)))
            continue
        setup_code = "\n".join(filter(None, setup))
        task_id = f"Mbpp/{row.get('task_id', n)}"
        if (blind := _test_without_assert(tests)) is not None:
            raise DataError(
                f"{path}: task_id {task_id!r}: test {blind} of test_list has no assert: "
                "what it computes is thrown away, and every answer passes it"
            )
        problems.append(_problem(task_id, text, code, tests, setup_code, entry_point))
    if skipped:
        log.warning(
            "%s: left out %d problem(s) whose tests call no function the reference code "
            "defines (task_id %s)", path, len(skipped), ", ".join(skipped),
        )  # fmt: skip
    return checked_problems(path, problems, "MBPP ", max_prompt_chars, packages)


def _test_without_assert(tests: list[str]) -> int | None:
    """The number (from 1) of the first test that cannot fail (a bare ``f(x) == y``); a
    test that does not parse is left to the check of the whole test, which names it."""
    for n, test in enumerate(tests, 1):
        try:
            tree = parse_module(test.replace("\r\n", "\n").strip())
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if not can_fail(tree):
            return n
    return None


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _code(path: Path, where: str, row: dict[str, Any], field: str) -> str:
    """The setup code of ``field``: absent or null is none; a list holds one line an item
    (``test_imports`` in sanitized-mbpp.json); a string, which is unambiguous, is
    taken as the code itself (as ``test_setup_code`` always is)."""
    value = row.get(field)
    if value is None:
        return ""
    if isinstance(value, str):
        value = [value]
    if not _strings(value):
        raise DataError(f"{path}: {where}: {field} must be a string or a list of strings")
    return "\n".join(s.replace("\r\n", "\n") for s in value if s)


def _problem(
    task_id: str, text: str, code: str, tests: list[str], setup_code: str, entry_point: str
) -> HumanEvalProblem:
    body = textwrap.indent("\n".join(t.replace("\r\n", "\n").strip() for t in tests), "    ")
    doc = f"{' '.join(text.split())}\n{tests[0].strip()}"
    quote = "'''" if '"""' in doc and "'''" not in doc else '"""'
    # Raw where the task holds a backslash: the docstring is the test's source as it is
    # (r"\x" would be no Python, and '\n' a line break, in a plain one).
    raw = "r" if "\\" in doc else ""
    if quote in doc:  # both kinds of triple quote in the task: its double quotes escaped
        doc = doc.replace('"', '\\"')
    return HumanEvalProblem(
        task_id=task_id,
        prompt=f"{raw}{quote}\n{doc}\n{quote}\n",
        entry_point=entry_point,
        canonical_solution=code.replace("\r\n", "\n"),
        # The tests call the function by name; bound before ``check`` is defined, so
        # that a function itself named ``check`` is not shadowed by the harness's.
        test=(
            f"{setup_code}\n\n\n_mbpp_entry_point = {entry_point}\n\n\n"
            f"def check(candidate):\n    {entry_point} = _mbpp_entry_point\n{body}\n"
        ),
    )


def _entry_point(code: str, tests: list[str]) -> str | None:
    """The function the tests call that the reference code defines at its top level
    (the first such call, in the first test that makes one)."""
    try:
        defined = [
            node.name
            for node in parse_module(code.replace("\r\n", "\n")).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not Python 3, too deep
        defined = re.findall(r"^def\s+(\w+)\s*\(", code, re.M)
    for test in tests:
        called = re.findall(r"([A-Za-z_]\w*)\s*\(", test)
        for name in called:
            if name in defined:
                return name
    return None
