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
:func:`load_code_problems` reads either benchmark's file by its fields.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import textwrap
from pathlib import Path
from typing import Any

from routerllm.data.humaneval import HumanEvalProblem, checked_problems, load_humaneval
from routerllm.exceptions import DataError

log = logging.getLogger(__name__)


def load_code_problems(path: str | Path | None = None) -> list[HumanEvalProblem]:
    """The problems of ``path``: a HumanEval(+)-format file or an MBPP file, told apart
    by their fields; None is the packaged HumanEval."""
    if path is None:
        return load_humaneval()
    path = Path(path)
    rows = _rows(path)
    if rows and isinstance(rows[0], dict) and "test_list" in rows[0]:
        return _mbpp(path, rows)
    return load_humaneval(path)


def load_mbpp(path: str | Path) -> list[HumanEvalProblem]:
    """The problems of an MBPP ``mbpp.jsonl`` or ``sanitized-mbpp.json`` file, in file order.

    A problem whose tests call no function its reference code defines (a handful
    in MBPP test a class or a lambda) has no entry point for the answer to define:
    it is left out, and a warning counts them."""
    path = Path(path)
    return _mbpp(path, _rows(path))


def _rows(path: Path) -> list[Any]:
    """The file's JSON rows: a JSON list, or JSON lines (``.gz`` files go to the HumanEval
    loader, which reads them)."""
    if path.name.lower().endswith(".gz"):
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"problem file not found: {path}") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read problems ({e})") from e
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
            return rows if isinstance(rows, list) else []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise DataError(f"{path}: not JSON lines or a JSON list ({e})") from e


def _mbpp(path: Path, rows: list[Any]) -> list[HumanEvalProblem]:
    problems, skipped = [], []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: problem {n} is not a JSON object")
        text = row.get("text", row.get("prompt"))
        tests, code = row.get("test_list"), row.get("code")
        if (
            not isinstance(text, str)
            or not isinstance(code, str)
            or not _strings(tests)
            or not tests
        ):
            raise DataError(
                f"{path}: problem {n} lacks a task (text or prompt), code or a non-empty test_list; "
                f"fields found: {', '.join(row)}"
            )
        entry_point = _entry_point(code, tests)
        if entry_point is None:
            skipped.append(str(row.get("task_id", n)))
            continue
        problems.append(_problem(row, n, text, code, tests, entry_point))
    if skipped:
        log.warning(
            "%s: left out %d problem(s) whose tests call no function the reference code "
            "defines (task_id %s)", path, len(skipped), ", ".join(skipped),
        )  # fmt: skip
    return checked_problems(path, problems, "MBPP ")


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _problem(
    row: dict[str, Any], n: int, text: str, code: str, tests: list[str], entry_point: str
) -> HumanEvalProblem:
    setup = [*row.get("test_imports", []), row.get("test_setup_code", "")]
    setup_code = "\n".join(s.replace("\r\n", "\n") for s in setup if isinstance(s, str) and s)
    body = textwrap.indent("\n".join(t.replace("\r\n", "\n").strip() for t in tests), "    ")
    return HumanEvalProblem(
        task_id=f"Mbpp/{row.get('task_id', n)}",
        prompt=f'"""\n{" ".join(text.split())}\n{tests[0].strip()}\n"""\n',
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
            for node in ast.parse(code.replace("\r\n", "\n")).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
    except SyntaxError:
        defined = re.findall(r"^def\s+(\w+)\s*\(", code, re.M)
    for test in tests:
        called = re.findall(r"([A-Za-z_]\w*)\s*\(", test)
        for name in called:
            if name in defined:
                return name
    return None
