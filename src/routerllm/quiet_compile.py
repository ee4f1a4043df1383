r"""Code RouterLLM did not write (a model's answer, a request, a dataset's problems) parsed
and compiled without the warnings Python's compiler gives about it.

Python warns about some code it compiles: ``0in x``, ``1if x else y`` ("invalid decimal
literal"), ``x is 1``, ``assert (x, "why")`` (SyntaxWarning), ``"\d"`` ("invalid escape
sequence": a DeprecationWarning before Python 3.12, a SyntaxWarning since). Said about a
model's answer they are noise on the user's stderr, or a server's log, that hides the
user's own warnings; and where warnings are errors (``-W error``, a
``warnings.simplefilter("error")``) the compiler raises them as a ``SyntaxError``: an
answer that compiles counted as one that does not, a check's verdict changed.
``warnings.catch_warnings`` would hide them, but it swaps the process's list of filters
for its block, and the server and the cascade compile in threads.

So every such compile is made here, under the file name :data:`FILENAME`, and the filters
:data:`IGNORED` (one per category) ignore those warnings from that file name alone:
neither the user's warnings nor those of code compiled under any other name are hidden.
They are put in front of the other filters on the first compile, and again on a later
compile where a filter put before them since (a user's ``simplefilter("error")``, pytest's
per test) would act on these warnings: ``warnings.filterwarnings`` moves them to the
front once, nothing is swapped per call. A ``SyntaxError`` that a filter put before them
while the code compiled (another thread's) made of a warning is met by compiling again.
"""

from __future__ import annotations

import ast
import functools
import re
import threading
import warnings
from types import CodeType
from typing import Any

#: The file name the code is compiled under: the warnings ignored are this name's alone.
FILENAME = "<routerllm-foreign-code>"

#: The categories of the warnings ignored: the compiler's own, and the DeprecationWarning
#: of an invalid escape sequence before Python 3.12.
IGNORED = (SyntaxWarning, DeprecationWarning)

# What `warnings` takes for the warning's module: the file name, ".py" dropped
_MODULE = re.escape(FILENAME) + r"\Z"
# held while the filters are put in front: two threads at once would each add them
_PUTTING = threading.Lock()


def compile_code(source: str | ast.Module, flags: int = 0) -> CodeType:
    """``compile(source, FILENAME, "exec")`` with the compiler ``flags`` of ``__future__``
    features, none inherited, its warnings ignored; raises as ``compile`` does. The code
    is compiled to be checked, not run: run, the warnings it gave would be ignored too."""
    code: CodeType = _compiled(source, "exec", flags)
    return code


def parse_module(source: str) -> ast.Module:
    """``ast.parse(source)``, its warnings ignored; raises as ``ast.parse`` does."""
    tree: ast.Module = _compiled(source, "exec", ast.PyCF_ONLY_AST)
    return tree


def parse_expression(source: str) -> ast.Expression:
    """``ast.parse(source, mode="eval")``, its warnings ignored."""
    tree: ast.Expression = _compiled(source, "eval", ast.PyCF_ONLY_AST)
    return tree


def literal_eval(text: str) -> Any:
    """``ast.literal_eval(text)``, its warnings ignored; raises as it does."""
    return ast.literal_eval(parse_expression(text.lstrip(" \t")))  # as literal_eval strips


def _compiled(source: str | ast.Module, mode: str, flags: int) -> Any:
    """``compile`` under :data:`FILENAME`, none of the caller's ``__future__`` features
    inherited; compiled again where a filter put before :data:`IGNORED`'s while it compiled
    (another thread's) made a warning of it a ``SyntaxError``."""
    for _ in range(2):
        _ignore_warnings()
        try:
            return compile(source, FILENAME, mode, flags=flags, dont_inherit=True)
        except SyntaxError:
            if _ignored():  # the code's own error, not a warning raised as one
                raise
    return compile(source, FILENAME, mode, flags=flags, dont_inherit=True)


def _ignore_warnings() -> None:
    """Put :data:`IGNORED`'s filters in front, where they are not the first to act on
    :data:`FILENAME`'s warnings."""
    if _ignored():
        return
    with _PUTTING:
        if not _ignored():
            for category in IGNORED:
                warnings.filterwarnings("ignore", category=category, module=_MODULE)


def _ignored() -> bool:
    """Whether the first filter that acts on each of :data:`IGNORED`'s categories of
    warnings from :data:`FILENAME` ignores them. A filter of some messages or lines only
    may act on them: one that ignores them is passed over, any other is not ignoring."""
    filters = warnings.filters[:]  # one copy: another thread may change the list
    if set(filters[: len(IGNORED)]) == _own_filters():  # as they were put: first
        return True
    pending = set(IGNORED)
    for action, message, category, module, lineno in filters:
        if not _matches(module):
            continue
        acted = {c for c in pending if issubclass(c, category)}
        if not acted:
            continue
        if action != "ignore":
            return False
        if message is None and not lineno:  # it ignores all of them
            pending -= acted
            if not pending:
                return True
    return False


@functools.cache
def _own_filters() -> frozenset[tuple[Any, ...]]:
    """The filters :func:`_ignore_warnings` puts first, as ``warnings.filterwarnings``
    writes them."""
    return frozenset(("ignore", None, c, re.compile(_MODULE), 0) for c in IGNORED)


def _matches(module: str | re.Pattern[str] | None) -> bool:
    """Whether a filter's ``module`` matches :data:`FILENAME`'s warnings, as ``warnings``
    matches it (a plain string, of its own defaults, exactly)."""
    if module is None:
        return True
    if isinstance(module, str):
        return module == FILENAME
    return module.match(FILENAME) is not None
