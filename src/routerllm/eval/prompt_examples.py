"""The tests a code prompt carries itself: the examples in its docstring.

A request such as HumanEval's ``def will_it_fly(q, w): '''... will_it_fly([3], 5) ➞ True'''``
states what the function must return on a few inputs. Running an answer on
those inputs (in the sandbox) tells, before anyone sees it, whether the answer
is at least consistent with the request: the signal a cascade uses to decide
whether a small model's answer is good enough or the request should go to a
larger model. Only the prompt is read, never a benchmark's hidden tests.

Formats read from the entry point's docstring (from the whole prompt when it states
the task in prose without a ``def`` of the entry point, as MBPP's prompts do):

- doctest: ``>>> f(1, 2)`` then the expected output on the next line(s) (not those
  marked ``# doctest: +SKIP``, nor outputs eliding with ``...``);
- one line (or several on a line, ``f(2) == 4, f(3) == 6``): ``f(args) == value``, ``➞``,
  ``->``, ``=>``, ``=`` or ``returns``
  (``f("5 apples", 19) -> 19 - 5 = 14``: the last ``= value`` counts);
- ``Input: <args>`` then ``Output: <value>`` (``Input: arr = [1, 2], k = 3``
  becomes ``f(arr = [1, 2], k = 3)``);
- prose: ``For lst = [1, 2] the output should be 3`` (the named values are the
  arguments).

Arguments must be literals (``is_happy(abc)`` is skipped: ``abc`` would be read
as a name); a doctest may wrap the call in builtins (``round(f(x), 2)``).

An expected value must be a Python literal; a doctest output that is not one
is compared with the result's ``repr``. Values are compared with ``==``, floats
with a relative and absolute tolerance of 1e-6. A doctest's output may also be what
the call prints (``>>> greet('Bob')`` then ``Hello, Bob!``): as doctest reads it,
the printed text, followed by the result's ``repr`` unless the result is None.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import inspect
import io
import json
import re
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from routerllm.eval.codegen import function_nodes, parse_code
from routerllm.eval.sandbox import run_program
from routerllm.quiet_compile import literal_eval, parse_expression

Verdict = Literal["passed", "failed", "unverifiable"]

_ARROWS = ("==>", "==", "➞", "->", "=>", "returns", "should return", "=")
_RESULT_MARK = "routerllm-examples: "
# Builtins an example may wrap the call in (``round(f(x), 2)``); ``print`` examples
# state printed text, not a value.
_PURE_BUILTINS = set(dir(builtins)) - {
    "print", "input", "open", "exec", "eval", "compile", "__import__", "breakpoint",
    "exit", "quit", "help",
}  # fmt: skip
_INPUT = re.compile(r"^\s*input\s*:\s*(.*)$", re.IGNORECASE)
_OUTPUT = re.compile(r"^\s*output\s*:\s*(.*)$", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")
_PROSE = re.compile(r"^\s*for (.+?)\s+the (?:output|result) should be (.+)$", re.IGNORECASE)
#: What an Input line or a prose example holds (_INPUT, _PROSE), and text changed only in
#: its whitespace does: none in a text, no such example in it.
_MARKERS = re.compile(r"input\s*:|(?:output|result)\s+should\s+be", re.IGNORECASE)


@dataclass(frozen=True)
class PromptExample:
    """``call`` (a Python expression) should give ``expected``: a literal's source, or,
    with ``as_repr``, the text its ``repr`` should print (a doctest output); with
    ``doctest``, what the call prints also counts, as doctest reads its output."""

    call: str
    expected: str
    as_repr: bool = False
    doctest: bool = False


@dataclass(frozen=True)
class Verification:
    """How an answer fared on its prompt's examples; ``stopped``: its run was killed
    before its end by its caller's ``stop`` (``verify_completion``), no verdict on the
    answer ("unverifiable")."""

    verdict: Verdict
    passed: int
    total: int
    detail: str = ""
    stopped: bool = False

    @property
    def unverified(self) -> bool:
        """Not shown correct: the answer failed the examples, or there were none (what
        a gated cascade's gate weighs, :mod:`routerllm.gate`)."""
        return self.verdict != "passed"


def extract_examples(prompt: str, entry_point: str) -> list[PromptExample]:
    """The examples the docstring of ``entry_point`` in ``prompt`` gives, in order, without
    duplicates. Lines that do not parse as one of the module's formats are skipped."""
    return ParsedPrompt(prompt).examples(entry_point)


class ParsedPrompt:
    """A prompt parsed once, its examples read per function from that one parse: a
    request of many functions was parsed again for each (8,000 characters of one-line
    functions took 12 s, the prompt limit's 200,000 would have taken hours)."""

    def __init__(self, prompt: str, tree: ast.Module | None = None) -> None:
        """``tree``: the prompt's parse where its caller has it (parsing 200,000 characters
        of code takes ~0.4 s), else it is parsed here."""
        self.prompt = prompt
        self.tree = tree if tree is not None else parse_code(prompt)
        #: its functions (nested ones too), in ``ast.walk``'s order
        self.function_nodes = function_nodes(self.tree) if self.tree is not None else []
        #: each name's first function in ``ast.walk``'s order, the one its examples are of
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in self.function_nodes:
            self.functions.setdefault(node.name, node)
        self._lines: list[str] | None = None
        self._marked: bool | None = None
        self._examples: dict[str, list[PromptExample]] = {}

    def examples(self, entry_point: str) -> list[PromptExample]:
        """:func:`extract_examples` of ``entry_point``."""
        if entry_point not in self._examples:
            node = self.functions.get(entry_point)
            if not self._may_state_examples(self._docstring_source(entry_point), entry_point):
                self._examples[entry_point] = []
                return []
            text = self._docstring(entry_point)
            params = [] if node is None else [a.arg for a in node.args.args]
            found = _doctest_examples(text, entry_point) or [
                *_line_examples(text, entry_point),
                *_io_examples(text, entry_point),
                *_prose_examples(text, entry_point, params),
            ]
            unique: dict[tuple[str, str], PromptExample] = {}
            for ex in found:
                unique.setdefault((ex.call, ex.expected), ex)
            self._examples[entry_point] = list(unique.values())[:MAX_EXAMPLES]
        return self._examples[entry_point]

    def may_state_examples(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Whether the docstring of the function ``node`` may state examples (False: it
        states none), read without any of the work reading them takes."""
        return self._may_state_examples(self._docstring_source(node), node.name)

    def _may_state_examples(self, text: str, entry_point: str) -> bool:
        """Whether ``text`` (a docstring's source, or a prompt's text) holds a marker each
        format needs: ``>>>``, an Input or prose line's words, or a call of ``entry_point``
        on a line that is not a ``def``. Dedenting and cleaning a docstring adds none: a
        function without them has no examples, and is skipped before any work (a request
        of 10,000 functions without examples took seconds, and each name a task in prose
        calls read the whole request again)."""
        if self._marked is None:  # the whole prompt at once: most have none of these
            self._marked = ">>>" in self.prompt or _MARKERS.search(self.prompt) is not None
        if self._marked and (">>>" in text or _MARKERS.search(text) is not None):
            return True
        call = f"{entry_point}("
        return call in text and any(
            call in line and not line.lstrip().startswith("def ") for line in text.splitlines()
        )

    def _docstring_source(self, of: str | ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        """The text :meth:`_docstring` reads, before it is dedented or cleaned: that of the
        function ``of`` (a name: its first function, as :attr:`functions` maps it), else
        the prompt's text after the ``def`` of that name, else the whole prompt."""
        node = self.functions.get(of) if isinstance(of, str) else of
        if node is None:
            start = self.prompt.find(f"def {of}(")
            return self.prompt[start:] if start >= 0 else self.prompt
        if ast.get_docstring(node, clean=False) is None:  # clean: it is read only if needed
            return ""
        # The source text, not the string's value: doctests write "\n" escapes.
        return self._segment(node.body[0])

    def _docstring(self, entry_point: str) -> str:
        """The entry point's docstring; when the prompt does not parse, its text after the
        ``def``; when it has no ``def`` of the entry point (a task in prose, as MBPP states
        it), the whole prompt."""
        if entry_point not in self.functions:
            start = self.prompt.find(f"def {entry_point}(")
            return textwrap.dedent(self.prompt[start:]) if start >= 0 else self.prompt
        source = self._docstring_source(entry_point)
        if not source:
            return ""
        source = source.lstrip("rRuUbB")
        quote = 3 if source[:3] in ('"""', "'''") else 1
        return inspect.cleandoc(source[quote:-quote])

    def _segment(self, node: ast.expr | ast.stmt) -> str:
        """``ast.get_source_segment(self.prompt, node)``, from lines split once: it splits
        the whole prompt, character by character, at each call."""
        if self._lines is None:  # split at "\n", "\r\n" and "\r" only, kept, as ast does
            self._lines = io.StringIO(self.prompt, newline="").readlines()
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        start, end = node.col_offset, node.end_col_offset
        lines = [line.encode() for line in self._lines[first : last + 1]]
        if first == last:
            return lines[0][start:end].decode()
        return b"".join([lines[0][start:], *lines[1:-1], lines[-1][:end]]).decode()


def examples_program(
    prompt: str, completion: str, examples: list[PromptExample], entry_point: str
) -> str:
    """``prompt + completion``, then every example run in turn (an exception fails that
    example only) and one result line ``routerllm-examples: {"passed": p, "total": n}``.
    The examples call the program's ``entry_point`` with the real builtins, and the
    checking code uses them too: an answer's top-level ``list = [2, 3]`` (its demo) or an
    entry point named like the checker's own helpers (``same``) changes no verdict."""
    cases = repr([(e.call, e.expected, e.as_repr, e.doctest) for e in examples])
    return f"{prompt}{completion}\n\n" + textwrap.dedent(
        f"""
        def _routerllm_examples(scope, cases):
            from builtins import BaseException, all, bool, eval, float, int, isinstance, len, list, repr, tuple, type, zip
            import contextlib, io, math, sys
            def same(a, b):
                if isinstance(a, float) or isinstance(b, float):
                    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
                if isinstance(a, (list, tuple)) and type(a) is type(b):
                    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
                return a == b
            name = {entry_point!r}
            passed = 0
            for call, expected, as_repr, doctest in cases:
                printed = io.StringIO()
                try:
                    with contextlib.redirect_stdout(printed):
                        got = eval(call, {{name: scope[name]}} if name in scope else {{}})
                    ok = repr(got) == expected if as_repr else same(got, eval(expected, {{}}))
                    if doctest and not ok:  # doctest's reading: printed text, then the repr
                        shown = printed.getvalue() + ("" if got is None else repr(got))
                        ok = shown.strip() == expected
                except BaseException:
                    ok = False
                passed += bool(ok)
            sys.stdout.write('\\n{_RESULT_MARK}{{"passed": %d, "total": %d}}\\n' % (passed, len(cases)))

        _routerllm_examples(globals(), {cases})
        """
    )


def verify_completion(
    prompt: str,
    entry_point: str,
    completion: str,
    timeout_s: float = 5.0,
    packages: Sequence[str] = (),
    *,
    stop: threading.Event | None = None,
    parsed: ParsedPrompt | None = None,
) -> Verification:
    """Run ``completion`` on the examples of its prompt in the sandbox: "passed" when it
    gives every expected value, "failed" otherwise (a crash, a hang or a wrong value),
    "unverifiable" when the prompt has no examples or its function is ``async``, or
    when ``stop`` was set (by another thread: its caller has gone) before the run's end,
    which kills it at once (``stopped``). The prompt may import ``packages`` (those
    named for the run: ``run_program``'s). ``parsed``: the prompt's :class:`ParsedPrompt`,
    where its caller has one (a parse of the prompt limit's 200,000 characters takes ~0.4 s)."""
    if parsed is None or parsed.prompt != prompt:
        parsed = ParsedPrompt(prompt)
    examples = parsed.examples(entry_point)
    if not examples:
        return Verification("unverifiable", 0, 0, "no examples in the prompt")
    if isinstance(parsed.functions.get(entry_point), ast.AsyncFunctionDef):
        # Its calls give coroutines, and the sandbox (no sockets) cannot run an event loop.
        return Verification("unverifiable", 0, 0, f"{entry_point} is async: its examples cannot run in the sandbox")  # fmt: skip
    program = examples_program(prompt, completion, examples, entry_point)
    run = run_program(program, timeout_s=timeout_s, packages=packages, stop=stop)
    if run.stopped:
        return Verification("unverifiable", 0, len(examples), run.detail, stopped=True)
    line = run.stdout_tail.rpartition(_RESULT_MARK)[2].strip().splitlines()
    if not line or run.status != "passed":
        return Verification("failed", 0, len(examples), f"{run.status}: {run.detail}")
    counts = _counts(line[0])
    if counts is None or counts[1] != len(examples) or not 0 <= counts[0] <= counts[1]:
        # the answer's code rewrote it (its own sys.stdout): not the checker's count
        return Verification("failed", 0, len(examples), f"not the checker's result line: {line[0][:200]}")  # fmt: skip
    passed, total = counts
    return Verification("passed" if passed == total else "failed", passed, total)


def _counts(line: str) -> tuple[int, int] | None:
    """(passed, total) of a result line, None where it is not two integers."""
    try:
        counts = json.loads(line)
    except ValueError:
        return None
    if not isinstance(counts, dict):
        return None
    passed, total = counts.get("passed"), counts.get("total")
    if type(passed) is not int or type(total) is not int:
        return None
    return passed, total


# -- formats ------------------------------------------------------------------
def _doctest_examples(text: str, entry_point: str) -> list[PromptExample]:
    if ">>>" not in text:  # doctest's parser reads every line of it for none
        return []
    try:
        parsed = doctest.DocTestParser().get_examples(text)
    except ValueError:  # inconsistent indentation in a docstring
        return []
    examples = []
    for ex in parsed:
        call, want = ex.source.strip(), ex.want.strip()
        if not want:  # ">>> f(x) == [1, 2]": the comparison states the value
            call, _, want = (part.strip() for part in call.partition(" == "))
        if not want or not _safe_expression(call, entry_point):
            continue
        if ex.options.get(doctest.SKIP) or _elided(want):  # not run, or not all stated
            continue
        if _is_literal(want):
            examples.append(PromptExample(call, want, doctest=True))
        elif "\n" not in want:
            examples.append(PromptExample(call, want, as_repr=True, doctest=True))
    return examples


def _elided(want: str) -> bool:
    """A doctest output whose ``...`` stands for what it leaves out (doctest's ELLIPSIS:
    ``[0, 1, ..., 361]``), not a value (``'wait...'``)."""
    if "..." not in want:
        return False
    tree = parse_code(want)
    return tree is None or any(
        isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(tree)
    )


#: The most examples of one function that are read (and run): a docstring states a few
#: (8 at most on the 6,705 prompts of HumanEval, RouterBench's MBPP and LLMRouter), and a
#: crafted line of 18,000 at the prompt limit took 1.4 s to read, each parsed three times.
MAX_EXAMPLES = 100


def _line_examples(text: str, entry_point: str) -> list[PromptExample]:
    examples: list[PromptExample] = []
    if f"{entry_point}(" not in text:  # no call to read (each name's pattern costs a compile)
        return examples
    # The entry point's own calls: not another name ending in it (``rect_area(`` for
    # ``area``) or a method (``'banana'.count(``, in a question about Python).
    call_of = re.compile(rf"(?<![\w.]){re.escape(entry_point)}\(")
    calls = f"{entry_point}("
    # only the lines with a call: each of a long prompt's lines was read once per name
    for line in (line for line in text.splitlines() if calls in line):
        if len(examples) >= MAX_EXAMPLES:  # the first ones stated, repeats counted
            break
        line = _without_assert_message(line)
        if line.lstrip().startswith("def "):
            continue
        # Several examples may share a line (``f(2) == 4, f(3) == 6``): each one's
        # expected value ends where the next call starts.
        found = call_of.search(line)
        while found is not None and len(examples) < MAX_EXAMPLES:
            at = found.start()
            end = _closing_paren(line, at + len(entry_point))
            if end < 0:
                break
            call, found = line[at : end + 1], call_of.search(line, end + 1)
            rest = line[end + 1 : found.start() if found else len(line)]
            rest = rest.strip().lstrip("#").strip()
            # all of the joint to the next example, ", and" too, or a comma ending the line
            # (a list of examples, one a line): a lone "4," would be the tuple (4,)
            rest = _without_trailing_joints(rest)
            for arrow in _ARROWS:
                if rest.lower().startswith(arrow):
                    expected = _literal_tail(rest[len(arrow) :])
                    if expected is not None and _literal_call(call):
                        examples.append(PromptExample(call, expected))
                    break
    return examples


def _without_trailing_joints(text: str) -> str:
    """``text`` stripped, without the commas, semicolons and ``and`` words that end it.
    Read from the end, one joint at a time: the pattern that did it,
    ``(?:\\s*(?:[,;]|\\band\\b))+\\s*$``, backtracked quadratically on a long run of
    commas that did not end the line (8,000 took 3.5 s)."""
    end = len(text)
    while True:  # an index, not slices: a slice for each joint of a long run copies it all
        while end and text[end - 1].isspace():
            end -= 1
        if end and text[end - 1] in ",;":
            end -= 1
        elif text[max(end - 3, 0) : end].lower() == "and" and not _WORD_CHAR.match(text[max(end - 4, 0) : end - 3]):  # fmt: skip
            end -= 3
        else:
            return text[:end].strip()


def _without_assert_message(line: str) -> str:
    """``assert f(2) == 4, "wrong"`` as ``assert f(2) == 4``, after prose too ("Your code
    should pass: assert ..."): the message is no part of the expected value (read with
    it, ``4, "wrong"`` is a tuple no answer gives)."""
    start = line.find("assert ")
    if start < 0:  # no parse for it: a long prompt has thousands of lines
        return line
    statement = line[start:].strip()
    tree = parse_code(statement)
    if tree is None or len(tree.body) != 1 or not isinstance(assertion := tree.body[0], ast.Assert):  # fmt: skip
        return line
    if assertion.msg is None:
        return line
    return line[:start] + "assert " + (ast.get_source_segment(statement, assertion.test) or "")


def _io_examples(text: str, entry_point: str) -> list[PromptExample]:
    examples = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not (m := _INPUT.match(line)):
            continue
        args = [m.group(1)]
        for nxt in lines[i + 1 :]:
            if out := _OUTPUT.match(nxt):
                call = f"{entry_point}({' '.join(a.strip() for a in args)})"
                expected = _literal_tail(out.group(1))
                if expected is not None and _literal_call(call):
                    examples.append(PromptExample(call, expected))
                break
            args.append(nxt)
    return examples


def _prose_examples(text: str, entry_point: str, params: list[str]) -> list[PromptExample]:
    """``For lst = [1, 2] the output should be 3`` and ``For s = "ab", c = "a", the result
    should be ('b', False)``: the named values are the arguments."""
    examples = []
    for line in text.splitlines():
        if not (m := _PROSE.match(line)) or (expected := _literal_tail(m.group(2))) is None:
            continue
        parts = m.group(1).split(",")
        # The longest run of "name = value" parts that parses: "N = 1000, the sum is 1".
        for n in range(len(parts), 0, -1):
            call = f"{entry_point}({','.join(parts[:n]).strip()})"
            if _literal_call(call):
                break
        else:
            continue
        node = parse_expression(call).body
        assert isinstance(node, ast.Call)
        names = [k.arg for k in node.keywords]
        if node.args or not names or not set(names) <= set(params):
            if len(params) != 1 or len(names) != 1:
                continue  # cannot tell which argument is which
            call = f"{entry_point}({ast.unparse(node.keywords[0].value)})"
        examples.append(PromptExample(call, expected))
    return examples


def _closing_paren(line: str, open_at: int) -> int:
    depth, quote = 0, ""
    for i in range(open_at, len(line)):
        ch = line[i]
        if quote:
            if ch == quote and line[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _literal_tail(text: str) -> str | None:
    """The literal ``text`` states: all of it, else what follows its last ``=``
    (``19 - 5 - 6 = 8``), trailing comments and full stops removed."""
    text = text.split(" #")[0].strip().rstrip(".").strip()
    for candidate in (text, text.rpartition("=")[2].strip()):
        candidate = {"true": "True", "false": "False"}.get(candidate, candidate)
        if candidate and _is_literal(candidate):
            return candidate
    return None


def _is_literal(text: str) -> bool:
    try:
        literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _safe_expression(text: str, entry_point: str) -> bool:
    """An expression that calls ``entry_point`` and names nothing else but builtins
    (``round(find_zero([1, 2]), 2)``)."""
    try:
        tree = parse_expression(text)
    except SyntaxError:
        return False
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return entry_point in names and names <= {entry_point, *_PURE_BUILTINS}


def _literal_call(text: str) -> bool:
    """``text`` is one call whose arguments are all literals (``f([1, 2], k=3)``, not
    ``is_happy(abc)``, whose unquoted string would be read as a name)."""
    try:
        node = parse_expression(text).body
    except SyntaxError:
        return False
    if not isinstance(node, ast.Call):
        return False
    values = [*node.args, *(k.value for k in node.keywords)]
    return all(_is_literal(ast.unparse(v)) for v in values)
