"""Requests that are a bare Python function stub, asked the way code is asked.

``routerllm route "$(cat task.py)"``, where ``task.py`` ends in a function whose body
is its docstring (HumanEval's form), asks for that function's body. Sent as written,
an instruct model answers in chat: it restates the function, with prose around it.
Asked in its code style instead (:mod:`routerllm.eval.codegen`: for the local ladder
"prefill", the answer made to start with the stub so the model writes only the
body), the same models answered the same 33 HumanEval problems far more cheaply and
better (README, "Function stubs"). So such a request is asked of each model in its
style (:func:`styled`; the request's own settings, where it gives any, win), its
answer is checked the way the HumanEval experiment checks it (``cascade.verify_stub``),
and the caller gets the completed function (:func:`completed`). A request that sets
``raw`` or ``response_prefix`` is already asked in a chosen way and is left alone,
as is every request when the config's ``generation.complete_stubs`` is off.
"""

from __future__ import annotations

import ast
import dataclasses
import re

from routerllm.backends.base import GenerationRequest
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.codegen import (
    CodegenStyle,
    build_request,
    continuation,
    continues_prompt,
    parse_code,
)

_OWN_SETTINGS = (
    *("max_new_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty"),
    "system",
)
"""Request fields that, when the caller set them, replace the style's."""

_DEF = re.compile(r"\bdef\b")


def stub_of(request: GenerationRequest) -> HumanEvalProblem | None:
    """The function ``request`` asks to complete, when its whole prompt is Python code
    whose last statement is a function whose body ends in its docstring, on lines of its
    own, with at most imports before it; else None (prose, fenced code, a function with
    a body, a request already asked in a chosen way, or a conversation's later turn)."""
    if request.raw or request.response_prefix or request.history:
        return None
    # A function stub holds the keyword: a prompt without it is no stub, and is not parsed
    # (every request's: 200,000 characters of data that is Python, a pasted list, took 0.6 s).
    if _DEF.search(request.prompt) is None:
        return None
    tree = parse_code(request.prompt)
    last = tree.body[-1] if tree is not None and tree.body else None
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    *before, doc = last.body
    if not (
        isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
        and doc.lineno > last.lineno  # `def f(): "doc"` leaves no line to continue
        and all(isinstance(s, ast.Import | ast.ImportFrom) for s in before)  # HumanEval/115
    ):
        return None
    # Ending in a newline, as HumanEval's do: `"$(cat task.py)"` drops the file's last one,
    # and a body appended to the docstring's closing line would not compile.
    prompt = request.prompt if request.prompt.endswith("\n") else request.prompt.rstrip() + "\n"
    return HumanEvalProblem("request", prompt, last.name, canonical_solution="", test="")


def styled(request: GenerationRequest, stub: HumanEvalProblem, style: CodegenStyle) -> GenerationRequest:  # fmt: skip
    """``request`` as ``style`` asks for ``stub``, with the settings the caller gave
    (its ``seed`` too: a style has none)."""
    asked = build_request(stub, style)
    own = {f: v for f in _OWN_SETTINGS if (v := getattr(request, f)) is not None}
    return dataclasses.replace(
        asked,
        **own,
        stop=request.stop or asked.stop,
        prompt_state=request.prompt_state,
        seed=request.seed,
    )


def completed(stub: HumanEvalProblem, text: str, style: CodegenStyle) -> str:
    """What the caller gets for a model's answer ``text``: the completed function where
    the model continued the stub (cut at the style's stop), else its answer as it is."""
    if continues_prompt(style, text):
        return stub.prompt + continuation(style, text, stub.prompt)
    return text
