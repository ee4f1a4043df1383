"""Whether the cuts of one model's answer compile after the request, without compiling
the whole request again for each.

Reading an answer (:mod:`routerllm.eval.answer_extraction`) looks for its code that
compiles after the request: its trailing prose or truncated lines trimmed, a prefilled
answer cut at a fence. Each cut was compiled with the whole request: at the prompt limit
(200,000 characters) each compile took 0.3-0.6 s, and a crafted answer's 16 cuts held a
worker for 4-10 s. A :class:`CutCompiler` compiles a cut after the request's last
top-level statement alone, from the line that statement starts on: the code before it is
whole statements, which a cut after them cannot change, so the cut compiles after the
request where it compiles after that statement, and its syntax error is on the same line
(counted from the request's first). That is not so where a ``global`` statement at the
module's level, or a ``from __future__`` import, ties the cut to the statements before:
a request with such a ``global``, and a cut naming ``global`` or ``__future__``, are
compiled whole, as before; the request's own ``__future__`` imports are compiled with the
cut. Where the code before the last statement does not compile (``return`` at the top
level, say), no program made of the request compiles: its check finds the request's
own code does not run, whatever was cut.

And all the compiles of one answer, alone or after the request, stop at
``MAX_COMPILED_CHARS`` characters: past them a cut counts as not compiling, so that an
answer of megabytes (a remote model's) or one crafted against the search is read in
bounded time.
"""

from __future__ import annotations
import __future__

import ast
import functools
import io
from dataclasses import dataclass

from routerllm.quiet_compile import compile_code, parse_module

#: The most characters the compiles of one answer's cuts take in all (each cut counted
#: with what it is compiled after): past them, a cut counts as not compiling.
MAX_COMPILED_CHARS = 500_000


@dataclass(frozen=True)
class _Tail:
    """Where a request's last top-level statement starts: its offset, the request's lines
    before it, and the compiler flags of the request's ``__future__`` imports."""

    start: int = 0
    lines_before: int = 0
    flags: int = 0


class CutCompiler:
    """Compiles the cuts of one answer to ``prompt``, alone (:meth:`alone`) or after the
    prompt (:meth:`after_prompt`), within ``MAX_COMPILED_CHARS``. ``tree``: ``prompt``
    parsed, where the caller has it (else it is parsed here, once, on the first cut
    compiled after it)."""

    def __init__(self, prompt: str, tree: ast.Module | None = None) -> None:
        self.prompt = prompt
        self.spent = 0
        self._tree = tree
        self._tail: _Tail | None = None

    @property
    def exhausted(self) -> bool:
        """Whether the budget of characters is spent: no more cuts are compiled."""
        return self.spent >= MAX_COMPILED_CHARS

    def alone(self, source: str) -> int | None:
        """None where ``source`` compiles, else the line (from 1) of its syntax error, 0
        where that is not known (past the budget: not compiled)."""
        return self._error_line(source, 0)

    def after_prompt(self, code: str) -> int | None:
        """:meth:`alone` of ``prompt + code``, from the prompt's last statement on where
        that is the same."""
        tail = self._tail_of_prompt()
        if tail.start and ("global" in code or "__future__" in code):
            tail = _Tail(flags=tail.flags)
        error = self._error_line(self.prompt[tail.start :] + code, tail.flags)
        return error + tail.lines_before if error else error

    def _error_line(self, source: str, flags: int) -> int | None:
        if self.exhausted:
            return 0
        self.spent += len(source)
        return error_line(source, flags)

    def _tail_of_prompt(self) -> _Tail:
        if self._tail is None:
            self._tail = _parsed_tail(self.prompt) if self._tree is None else _tail(self.prompt, self._tree)  # fmt: skip
            self._tree = None  # not kept past its use
        return self._tail


def parse_code(text: str) -> ast.Module | None:
    """``text`` parsed as Python, or None where it is not Python. Besides syntax errors,
    CPython's parser gives up with MemoryError on some prose (a long run of bare words)
    and RecursionError on deep nesting: text a user may send is not code either."""
    try:
        return parse_module(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # ValueError: a null byte
        return None


def error_line(source: str, flags: int = 0) -> int | None:
    """None where ``source`` compiles (with the compiler ``flags`` of ``__future__``
    features), else the line (from 1) its syntax error is on, 0 where that is not known."""
    # compile, not just ast.parse: a body left at column 0 parses as module code,
    # but its `return` does not compile outside the function.
    try:
        compile_code(source, flags)
    except SyntaxError as e:
        return e.lineno or 0
    except ValueError:  # a null byte: no cut past it compiles
        return source.count("\n", 0, source.find("\0")) + 1 if "\0" in source else 0
    except (RecursionError, MemoryError):
        return 0
    return None


@functools.lru_cache(maxsize=8)
def _parsed_tail(prompt: str) -> _Tail:
    """:func:`_tail` of ``prompt``, parsed here: once for the answers of one request (each
    model's in a cascade, a stub's check and its completion)."""
    return _tail(prompt, parse_code(prompt))


def _tail(prompt: str, tree: ast.Module | None) -> _Tail:
    """Where ``prompt``'s last top-level statement that starts a line starts; the start
    (the whole prompt) where it does not parse, or a ``global`` statement runs at its
    module's level."""
    if tree is None or not tree.body or any(isinstance(n, ast.Global) for n in _module_level(tree)):  # fmt: skip
        return _Tail()
    flags = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                flags |= getattr(getattr(__future__, alias.name, None), "compiler_flag", 0)
    for node in reversed(tree.body):
        decorators = getattr(node, "decorator_list", [])
        if decorators or node.col_offset == 0:  # a decorator's @ starts its line
            first = min([node.lineno, *(d.lineno for d in decorators)])
            break
    else:
        return _Tail(flags=flags)
    # the lines as the parser counts them: "\n", "\r\n" and "\r" end one
    lines = io.StringIO(prompt, newline="").readlines()
    return _Tail(sum(map(len, lines[: first - 1])), first - 1, flags)


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """The statements of ``tree`` that run in its module's scope: not in a function's or a
    class's body."""
    found: list[ast.stmt] = []
    level: list[ast.AST] = list(tree.body)
    while level:
        found.extend(n for n in level if isinstance(n, ast.stmt))
        below: list[ast.AST] = []
        for node in level:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, list):
                    below.extend(v for v in value if isinstance(v, ast.stmt | ast.excepthandler | ast.match_case))  # fmt: skip
        level = below
    return found
