"""A model's answer read as the completion to test (:mod:`routerllm.eval.codegen`'s
other half: how the request asked for it is there).

In "prefill" and "complete" modes the answer continues the prompt (:func:`continuation`);
a chat answer's code is picked out of its fenced blocks (:func:`pick_code`). The
completion is ``"\\n" + code`` where the code defines the entry point (its demo code
dropped: :func:`without_top_level_scripts`), else a function body; the first candidate
for which ``prompt + completion`` compiles wins (the rules in full: the docstring of
:mod:`routerllm.eval.codegen`).
"""

from __future__ import annotations

import ast
import itertools
import re
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING

from routerllm.backends.base import cut_at_stop
from routerllm.eval.cut_compiler import CutCompiler, parse_code
from routerllm.quiet_compile import parse_module

if TYPE_CHECKING:
    from routerllm.data.humaneval import HumanEvalProblem
    from routerllm.eval.codegen import CodegenStyle


def extract_completion(
    problem: HumanEvalProblem, text: str, style: CodegenStyle, tree: ast.Module | None = None
) -> str:
    """The completion to pass to ``problem.program(completion)`` for a model's answer.

    In "prefill" mode the answer continues the prompt (a function body) and
    is cut at the first stop sequence or fence (:func:`continuation`); so is an answer without a code fence
    in "complete" mode. Any other answer is read as chat: the
    first fenced block (tagged python/py or untagged) that defines the entry
    point (with a body: not the stub quoted back; where it only quotes the stub, the first
    block after it), else the first such block, else the whole text. Code that defines
    the entry point becomes ``"\\n" + code`` (top-level calls, asserts, loops
    and ``if __name__ == ...`` blocks removed), anything else a function body.
    ``tree``: ``problem.prompt`` parsed, where the caller has it (:class:`CutCompiler`'s).
    """
    compiler = CutCompiler(problem.prompt, tree)
    if continues_prompt(style, text):
        code = continuation(style, text, problem.prompt, compiler)
    else:
        code = pick_code(text, problem.entry_point)
    return _completion_from_code(problem, code, compiler)


def continuation(
    style: CodegenStyle, text: str, prompt: str, compiler: CutCompiler | None = None
) -> str:
    """The code of an answer that continues ``prompt``: ``text`` up to the first stop
    sequence, and in "prefill" mode up to the first fence that closes the block the prefix
    opened, on a line of its own or glued to the code (small models write
    ``"    return 'NO'```"``, which the stop ``"\\n```"`` misses: the answer ran on into
    prose). A fence in a string or a comment is code: cut there, the body would not
    compile, or would end in the comment. ``compiler``: the one the answer's other cuts
    are compiled by, where there is one."""
    code = cut_at_stop(text, style.stop)
    if style.mode != "prefill":
        return code
    compiler = compiler if compiler is not None else CutCompiler(prompt)
    # the first MAX_CUTS fences only (an answer of 2,000 fences took minutes after a
    # 20,000-character prompt, when each cut was compiled with the whole prompt)
    for fence in itertools.islice(re.finditer("```", code), MAX_CUTS):
        cut = code[: fence.start()]
        if compiler.after_prompt(cut) is None and not _ends_in_comment(compiler, cut):
            return cut
    return code


def _ends_in_comment(compiler: CutCompiler, cut: str) -> bool:
    """Whether the prompt and ``cut``, which compile, end in a comment: where they do, a
    bracket added at their end is in the comment, and they still compile; elsewhere the
    bracket is never closed. Compiled, not tokenized: Python's tokenizer took 25 times as
    long."""
    last = cut[cut.rfind("\n") + 1 :] if "\n" in cut else compiler.prompt[compiler.prompt.rfind("\n") + 1 :] + cut  # fmt: skip
    return "#" in last and compiler.after_prompt(cut + "(") is None


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def function_nodes(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions of ``tree`` in ``ast.walk``'s order (breadth first), from a walk of its
    statements alone: a function is a statement, in a statement's (or an ``except``'s, or a
    ``case``'s) block, never in an expression, whose nodes ``ast.walk`` took 0.6 s to visit
    in 200,000 characters of code."""
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    level: list[ast.AST] = [tree]
    while level:
        below: list[ast.AST] = []
        for node in level:
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, list):
                    below.extend(item for item in value if isinstance(item, _BLOCKS))
        found.extend(n for n in below if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        level = below
    return found


def continues_prompt(style: CodegenStyle, text: str) -> bool:
    """Whether an answer ``text`` asked in ``style`` continues the prompt (a function
    body), rather than being a chat answer to read the code out of."""
    return style.mode == "prefill" or (style.mode == "complete" and FENCE.search(text) is None)


#: A fenced code block: (language tag, code) in groups 1-2 for backtick fences, 3-4 for
#: ``~~~`` ones (:func:`fenced_blocks` reads either). Backtick fences need not start a
#: line: small models write "Here: ```python" and "return x```"; tilde ones must (``~~~x``
#: is Python). An unclosed block runs to the end.
FENCE = re.compile(
    r"```[ \t]*([\w+#.-]*)[^\n]*(?:\n|\Z)(.*?)(?:```|\Z)"
    r"|^[ \t]*~~~[ \t]*([\w+#.-]*)[^\n]*(?:\n|\Z)(.*?)(?:^[ \t]*~~~|\Z)",
    re.S | re.M,
)
#: Fence tags of Python code (untagged included).
PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


def pick_code(text: str, entry_point: str) -> str:
    """The code in a chat answer: a fenced block if there is one, else the text.

    An unclosed fence (the answer ran out of tokens) runs to the end of the text. An
    answer that starts with code and whose first fence is a bare one is read as
    started inside a block (opened by a response prefix, or by the prompt), that fence
    closing it, unless only the plain reading finds a block defining ``entry_point``.
    """
    readings = ["```\n" + text, text] if _starts_in_block(text) else [text]
    picks = [_picked(reading, entry_point) for reading in readings]
    return next((code for code, defines in picks if defines), picks[0][0])


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of ``text``, in order, as (language tag, code)."""
    return [
        (m.group(1), m.group(2)) if m.group(2) is not None else (m.group(3), m.group(4))
        for m in FENCE.finditer(text)
    ]


def _picked(text: str, entry_point: str) -> tuple[str, bool]:
    """:func:`pick_code` of one reading of ``text``, and whether it defines the entry point."""
    blocks = [(lang.lower(), code) for lang, code in fenced_blocks(text)]
    if not blocks:
        return text, False
    python = [code for lang, code in blocks if lang in PYTHON_TAGS] or [c for _, c in blocks]
    defining = [code for code in python if defines(code, entry_point)]
    # "You asked for: <the stub> Here is the solution: <the function>"
    solved = [code for code in defining if not _restates_stub(code, entry_point)]
    if defining and not solved:
        # "You asked for: <the stub> Here is the body: <the body>": a stub never passes
        stub_at = python.index(defining[0])
        solved = [code for code in python[stub_at + 1 :] if code.strip() and code not in defining]
    return (solved or defining or python)[0], bool(defining)


def _restates_stub(code: str, entry_point: str) -> bool:
    """Whether ``code`` defines ``entry_point`` with no body but a docstring (or ``pass``,
    ``...``, imports): the request's stub, quoted back."""
    tree = parse_code(textwrap.dedent(_expand_leading_tabs(code)))
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            return all(
                isinstance(s, ast.Pass | ast.Import | ast.ImportFrom)  # HumanEval/115 imports
                or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                for s in node.body
            )
    return False


def _starts_in_block(text: str) -> bool:
    """Whether ``text`` is code up to its first fence, a bare ``"```"`` that closes it."""
    fence = FENCE.search(text)
    if fence is None or fence.group(2) is None or fence.group(1):
        return False
    before = text[: fence.start()]
    first = next((line for line in before.splitlines() if line.strip()), "")
    if not (first[:1] in (" ", "\t") or CODE_START.match(first)):
        return False
    return parse_code(textwrap.dedent(_expand_leading_tabs(before))) is not None


def defines(code: str, entry_point: str) -> bool:
    """Whether ``code`` defines ``entry_point`` at its top level (a later ``def``
    at top level is what replaces the prompt's stub)."""
    pattern = rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\("
    return re.search(pattern, textwrap.dedent(code), re.M) is not None


#: The most cuts of one answer compiled with the whole prompt while looking for one that
#: compiles (a body's lines trimmed from the end, or its code cut at a fence), and four
#: times as many of an answer restating the function (compiled alone): past them the most
#: literal candidate is kept, and its check fails on it. Each cut was compiled in turn:
#: 2,000 lines that never compile took minutes after a 20,000-character prompt, hours at
#: the prompt limit. An answer's prose is cut off in one or two (a syntax error's line
#: says where to cut next); a truncated block in one a line.
MAX_CUTS = 16


def _completion_from_code(problem: HumanEvalProblem, code: str, compiler: CutCompiler) -> str:
    if not defines(code, problem.entry_point):
        return _body(problem.prompt, code, compiler)
    first = None
    for candidate in _redefinitions(code, problem.entry_point, compiler):
        if first is None:
            first = candidate
        if compiler.after_prompt(candidate) is None:
            return candidate
    return first if first is not None else ""


def _next_end(error_line: int | None, first_line: int, end: int) -> int:
    """The next (shorter) number of lines to try, where the cut of ``end`` lines, its first
    on line ``first_line`` of what was compiled, failed on ``error_line``: the lines up to
    the error, where it is before the cut's last line (a cut that still holds the error's
    line fails there too), else one line fewer."""
    at = (error_line or 0) - first_line  # the error's line's index in the cut
    return at + 1 if 0 <= at < end - 1 else end - 1


#: Where code starts in a line: an import, a def, a class or a decorator.
CODE_START = re.compile(r"^(?:from\s+\S+\s+import\s|import\s|(?:async\s+)?def\s|class\s|@)")


def _redefinitions(code: str, entry_point: str, compiler: CutCompiler) -> Iterator[str]:
    """``"\\n" + code`` candidates, most literal first: as given, then without the
    prose before the first import/def, each trimmed of trailing lines (prose,
    truncation) as far as needed but never past the entry point's ``def``."""
    lines = _expand_leading_tabs(textwrap.dedent(code)).strip("\n").splitlines()
    starts = [0]
    first_code = next((i for i, line in enumerate(lines) if CODE_START.match(line)), None)
    if first_code:
        starts.append(first_code)
    for start in starts:
        end = len(lines)
        for _ in range(4 * MAX_CUTS):
            if end <= start or compiler.exhausted:
                break
            source = "\n".join(lines[start:end])
            if not defines(source, entry_point):
                break
            if (error := compiler.alone(source)) is None:
                yield "\n" + without_top_level_scripts(source) + "\n"
                break
            end = start + _next_end(error, 1, end - start)
    yield "\n" + "\n".join(lines) + "\n"


def without_top_level_scripts(source: str, tree: ast.Module | None = None) -> str:
    """Drop the answer's demo code: top-level expressions (``print(...)``), asserts,
    loops, ``if __name__ == "__main__":`` blocks and statements that read ``input()``
    (and those that use what it read), which are no part of a
    solution and may fail, print, or never end; and ``from __future__`` imports,
    which are only legal at the top of the program, not after the prompt. ``tree``:
    ``source`` parsed, where the caller has it."""
    tree = tree if tree is not None else parse_module(source)
    lines = source.splitlines()
    drop: set[int] = set()
    keep: set[int] = set()
    from_stdin: set[str] = set()  # names the dropped statements that read input() bound
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        span = range(first - 1, node.end_lineno or node.lineno)
        (drop if _is_script(node) or _reads_stdin(node, from_stdin) else keep).update(span)
    kept = [line for i, line in enumerate(lines) if i not in drop or i in keep]
    return "\n".join(kept).strip("\n")


def _reads_stdin(node: ast.stmt, from_stdin: set[str]) -> bool:
    """Whether ``node`` is demo code that reads stdin (``n = int(input())``), which the
    tests do not give (an EOFError), or uses what such code read (``r = f(n)``); the
    names it binds are added to ``from_stdin``. Definitions and imports are never."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom):  # fmt: skip
        return False
    names = [n for n in ast.walk(node) if isinstance(n, ast.Name)]
    calls_input = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "input"
        for n in ast.walk(node)
    )
    if not calls_input and not any(isinstance(n.ctx, ast.Load) and n.id in from_stdin for n in names):  # fmt: skip
        return False
    from_stdin.update(n.id for n in names if isinstance(n.ctx, ast.Store))
    return True


def _is_script(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Expr, ast.Assert, ast.For, ast.AsyncFor, ast.While)):
        return True
    if isinstance(node, ast.ImportFrom):
        return node.module == "__future__"
    return isinstance(node, ast.If) and "__name__" in ast.dump(node.test)


def _body(prompt: str, code: str, compiler: CutCompiler) -> str:
    """The first of :func:`_bodies`' candidates for which ``prompt`` and it compile, else
    the first; its trimmed ones tried where the last cut's error says (MAX_CUTS in all)."""
    variants = list(_bodies(code))
    if variants in ([], [""]):  # nothing indented to read as a body
        return ""
    errors = [compiler.after_prompt(variant.rstrip() + "\n") for variant in variants]
    if None in errors:
        return variants[errors.index(None)].rstrip() + "\n"
    first_line = prompt.count("\n") + 1  # the body's first line, in what is compiled
    cuts = MAX_CUTS  # for all the variants together
    for variant, error in zip(variants, errors, strict=True):
        lines = variant.splitlines()
        end = min(len(lines) - 1, _next_end(error, first_line, len(lines)))
        while end >= 1 and cuts > 0 and not compiler.exhausted:
            candidate = "\n".join(lines[:end]).rstrip() + "\n"
            if (error := compiler.after_prompt(candidate)) is None:
                return candidate
            end, cuts = _next_end(error, first_line, end), cuts - 1
    return variants[0].rstrip() + "\n"


def _bodies(code: str) -> Iterator[str]:
    """Function-body candidates, most literal first: as given (a continuation is
    already indented), re-indented by four spaces, with only the first line's
    indentation lost, from the first indented line on (prose before it); each then
    trimmed of trailing lines (prose, truncation) by :func:`_body`. A body must start
    indented, or it would end the function."""
    code = _expand_leading_tabs(code.strip("\n"))
    if not code.strip():
        yield ""
        return
    lines = code.splitlines()
    variants = [code, textwrap.indent(textwrap.dedent(code), "    ")]
    if len(lines) > 1 and lines[0] == lines[0].lstrip():
        # The answer was stripped: only its first line lost its indentation.
        variants.append("    " + code)
    first_indented = next((i for i, line in enumerate(lines) if line[:1] == " "), 0)
    if first_indented:
        # Prose before an indented body: "Here is the body:\n    return x".
        variants.append("\n".join(lines[first_indented:]))
    yield from (v for v in variants if v[:1] in (" ", "\t"))


def _expand_leading_tabs(code: str) -> str:
    return "\n".join(
        line[: len(line) - len(line.lstrip())].expandtabs(4) + line.lstrip()
        for line in code.splitlines()
    )
