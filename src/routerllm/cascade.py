"""Cascade: keep the routed model's answer when it passes the request's own examples,
else ask the next larger model.

A router decides before any model has answered; a cascade looks at the answer.
For a code request whose function states examples in its docstring (``>>> f(2)``
then ``4``, ``f([1, 2]) == 3``, ...), or a task in prose with such examples of the
function it asks for (``assert f(2) == 4``), the answer is run on those examples in
the sandbox (:mod:`routerllm.eval.prompt_examples`); an answer that fails them goes to
the next larger available model. Requests without such examples are not
escalated, and cost nothing beyond reading the prompt; with an escalation gate
(:mod:`routerllm.gate`), an answer to a function stub without examples is
weighed by the gate like a failed one. On HumanEval this is
the ``cascade`` system of ``routerllm humaneval`` (README, "HumanEval: routed vs
direct").

It runs generated code on this machine: in a separate, limited process (see
:mod:`routerllm.eval.sandbox` for what that does and does not stop), which is
why it is off unless the config's ``cascade.enabled`` is set.
"""

from __future__ import annotations

import builtins
import itertools
import re
import threading
from collections.abc import Sequence

from routerllm.checks import is_positive_number
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.codegen import (
    CHAT_STYLE,
    CODE_START,
    PYTHON_TAGS,
    CodegenStyle,
    defines,
    extract_completion,
    fenced_blocks,
    parse_code,
    without_top_level_scripts,
)
from routerllm.eval.prompt_examples import (
    ParsedPrompt,
    Verification,
    verify_completion,
)
from routerllm.eval.sandbox import run_program
from routerllm.exceptions import PromptError, RouterLLMError


def verify_answer(
    prompt: str, answer: str, timeout_s: float = 5.0, *, stop: threading.Event | None = None
) -> Verification:
    """Check a model's ``answer`` (chat text, a fenced block, or a function body) against
    the examples of the function the ``prompt`` asks for: unverifiable where the prompt
    asks for it in prose and the answer's code blocks are all in another language. Once
    ``stop`` is set (its caller has gone), the sandbox's run is killed at once and the
    check is ``stopped``, unverified."""
    if not isinstance(answer, str):
        raise PromptError(f"the answer to verify must be text, got {type(answer).__name__}")
    if not is_positive_number(timeout_s):
        raise RouterLLMError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
    target = _target(prompt)
    if target is None:
        return Verification("unverifiable", 0, 0, "no function with examples in the request")
    parsed, entry_point = target
    code, defined = parsed.prompt, defines(parsed.prompt, entry_point)
    tags = {lang.lower() for lang, _ in fenced_blocks(answer)}
    if tags and not tags & PYTHON_TAGS and not defined:
        # A task in prose may ask for another language ("a JavaScript function add(a, b)
        # ... add(2, 3) => 5"): an answer in it would fail as Python, at every model.
        return Verification("unverifiable", 0, 0, f"the answer is {min(tags)} code, not Python")
    if not defined and (where := _in_another_language(prompt, answer, entry_point)):
        # Untagged, or a stub's body alone (``function add(a, b) {`` asked): as above.
        return Verification("unverifiable", 0, 0, f"{where} {entry_point} in another language, not Python")  # fmt: skip
    request = HumanEvalProblem("request", code, entry_point, canonical_solution="", test="")
    completion = extract_completion(request, answer, CHAT_STYLE, parsed.tree)
    return _verified(code, entry_point, completion, timeout_s, stop, parsed)


def _in_another_language(prompt: str, answer: str, entry_point: str) -> str:
    """Where a function asked for in prose is declared as another language declares one
    (``function add(a, b) {``, ``fn add(a: i32) -> i32 {``, ``int add(int a) {``, ``const
    add =``: a line that is not Python), in an answer that defines no Python function of
    that name: "the answer declares", else "the request declares" (an answer that goes on
    from a stub in that language); "" where neither does."""
    name = re.escape(entry_point)
    if re.search(rf"\bdef\s+{name}\s*\(", answer):
        return ""
    # bounded, so that a long line of calls is read in linear time
    declared = re.compile(
        rf"\b{name}[ \t]*(?:<[^<>\n]{{0,200}}>[ \t]*)?\([^()\n]*\)[^\n{{}};]{{0,200}}\{{"
        rf"|\b(?:const|let|var)[ \t]+{name}[ \t]*="
    )
    for where, text in (("the answer declares", answer), ("the request declares", prompt)):
        lines = (m.group() for m in re.finditer(r"^.*$", text, re.M) if declared.search(m.group()))
        if any(parse_code(line.strip()) is None for line in lines):
            return where
    return ""


def verify_stub(
    stub: HumanEvalProblem,
    answer: str,
    style: CodegenStyle,
    timeout_s: float = 5.0,
    *,
    stop: threading.Event | None = None,
) -> Verification:
    """Check a model's ``answer`` to a function ``stub`` asked in ``style``
    (:mod:`routerllm.stubs`) on the stub's examples, exactly as the HumanEval
    experiment checks its answers; ``stop`` as for :func:`verify_answer`."""
    completion = extract_completion(stub, answer, style)
    return _verified(stub.prompt, stub.entry_point, completion, timeout_s, stop)


def _verified(
    code: str,
    entry_point: str,
    completion: str,
    timeout_s: float,
    stop: threading.Event | None,
    parsed: ParsedPrompt | None = None,
) -> Verification:
    """``verify_completion``, except that an answer whose run ended before its examples
    were counted (an exception, a hang) is unverifiable where the request's own code does
    not run here either (it imports a module outside the sandbox's standard library, such
    as numpy or the caller's own package): no answer could pass, so none is failed. Both
    runs end once ``stop`` is set: the check is then ``stopped``."""
    check = verify_completion(code, entry_point, completion, timeout_s, stop=stop, parsed=parsed)
    if check.verdict != "failed" or not check.detail:
        return check
    alone = run_program(code, timeout_s=timeout_s, stop=stop)
    if alone.stopped:
        return Verification("unverifiable", 0, check.total, alone.detail, stopped=True)
    if alone.passed:
        return check
    return Verification(
        "unverifiable",
        0,
        check.total,
        f"the request's own code does not run in the sandbox: {alone.detail}",
    )


def function_with_examples(text: str) -> tuple[str, str] | None:
    """In a free-form request (prose, fenced code, or bare code), the code of the last
    top-level function whose docstring gives examples (without the code's top-level demo: calls,
    asserts, loops, ``if __name__ == "__main__":``), and its name; else, for a task stated in
    prose with examples of a function it does not define (MBPP's way: "Write a
    function to ... assert f(2) == 4"), the request as a docstring and that name;
    None when there is neither, or when only methods or nested functions give examples."""
    target = _target(text)
    return None if target is None else (target[0].prompt, target[1])


def _target(text: str) -> tuple[ParsedPrompt, str] | None:
    """:func:`function_with_examples`, its code parsed: the parse its check reads again."""
    if not isinstance(text, str):
        raise PromptError(f"the request must be text, got {type(text).__name__}")
    fenced = [code for _, code in fenced_blocks(text)]
    # Unfenced code after prose: from the first import or def on.
    first_code = re.compile(CODE_START.pattern, re.M).search(text)
    candidates = [*fenced, text, *([text[first_code.start() :]] if first_code else [])]
    inner = False
    # each candidate once (the text is its own code from its first def on, as often): at
    # the prompt limit each parse of 200,000 characters takes ~0.4 s
    for code in dict.fromkeys(candidates):
        if (tree := parse_code(code)) is None:
            continue
        whole = ParsedPrompt(code, tree)
        if not any(whole.may_state_examples(n) for n in whole.function_nodes):
            continue  # without its demo code, none of its functions would have any either
        # The request's own demo code (a main guard reading input(), a print or an assert
        # calling the function) would run in every check, before the answer's definition.
        code = without_top_level_scripts(code, tree) + "\n"
        # the same text (nothing dropped, its lines where they were): the same parse
        same = code.rstrip("\n") == whole.prompt.rstrip("\n")
        parsed = ParsedPrompt(code, tree if same else None)  # once for all its functions
        if (tree := parsed.tree) is None:
            continue
        found = [n for n in parsed.function_nodes if parsed.examples(n.name)]
        if names := [n.name for n in found if n in tree.body]:
            return parsed, names[-1]
        inner = inner or bool(found)
    # The examples call a top-level function: those of a method (``class Solution``) or
    # of a nested function would fail every answer, right or wrong.
    return None if inner else _prose_task(text)


#: The most functions a task in prose is looked at for examples of, the first it calls
#: (builtins aside): a task names a few (MBPP's one, and the helpers its asserts call).
MAX_PROSE_NAMES = 20


def _prose_task(text: str) -> tuple[ParsedPrompt, str] | None:
    # A raw docstring, so the request's backslashes stay text: the "prompt" the
    # answer's code is appended to, as MBPP's prompts are in the HumanEval experiment.
    code = 'r"""\n' + text.replace('"""', "'''") + '\n"""\n'
    parsed = ParsedPrompt(code)
    called = (m.group(1) for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", text))
    names = (name for name in dict.fromkeys(called) if not hasattr(builtins, name))
    # each name tried reads the whole request: 8,000 characters of calls to new names
    # took 2.5 s, the prompt limit's 200,000 would have taken an hour
    for name in itertools.islice(names, MAX_PROSE_NAMES):
        if parsed.examples(name):
            return parsed, name
    return None


def cascade_pair(ladder: Sequence[str]) -> tuple[str, str]:
    """The two models of the cascade the HumanEval experiment measures and ``routerllm
    train-gate`` trains a gate for, from a ladder of at least two (smallest first): the
    model just below the heaviest, then the heaviest, the step a served cascade takes
    (``RoutingScope.larger``), so that a gate trained on a run is one the server can use."""
    if len(ladder) < 2:
        raise RouterLLMError(f"a cascade needs two models, got {list(ladder)}")
    return ladder[-2], ladder[-1]
