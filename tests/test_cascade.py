"""The cascade: an answer that fails its request's own examples goes to the next larger
model (real tiny GGUF models, real sandbox, real CodeCarbon)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.cascade import cascade_pair, function_with_examples, verify_answer
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import RouterLLMError
from routerllm.routing_scope import RoutingScope
from routerllm.system import RouterLLM

from .conftest import (
    StopAfter,
    cli_in_process,
    corrupt_gguf,
    tiny_config_dict,
    tiny_model,
    write_config,
)

REQUEST = '''Complete this function:

```python
def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
```'''


QUOTED = f"You asked for:\n{REQUEST.partition(':')[2].strip()}\nSolved:"


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```", "passed"),
        ("Here it is:\n```\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```", "passed"),
        ("    return a + b", "passed"),  # a bare body
        ("```python\ndef add(a, b):\n    return a * b\n```", "failed"),
        ("I cannot help with that.", "failed"),
        # the stub quoted back, then the answer's own function
        (f"{QUOTED}\n```python\ndef add(a, b):\n    return a + b\n```", "passed"),
        (f"{QUOTED}\n```python\ndef add(a, b):\n    return a - b\n```", "failed"),
    ],
)
def test_verify_answer_reads_chat_answers(answer: str, verdict: str) -> None:
    assert verify_answer(REQUEST, answer).verdict == verdict


def test_unfenced_code_after_prose_keeps_its_imports() -> None:
    request = (
        "Please write this:\nfrom typing import List\n\n"
        'def total(xs: List[int]) -> int:\n    """\n    >>> total([1, 2])\n    3\n    """\n'
    )
    assert verify_answer(request, "    return sum(xs)").verdict == "passed"
    assert verify_answer(request, "    return 0").verdict == "failed"


@pytest.mark.parametrize(
    "demo",
    [
        'if __name__ == "__main__":\n    print(add(int(input()), 1))\n',  # no stdin to read
        "assert add(2, 3) == 5\n",  # would run on the stub, before the answer's definition
    ],
)
def test_the_requests_own_demo_code_is_not_run(demo: str) -> None:
    request = REQUEST.removesuffix("```") + "\n" + demo + "```"
    assert verify_answer(request, "```python\ndef add(a, b):\n    return a + b\n```").verdict == "passed"  # fmt: skip
    assert verify_answer(request, "    return a + b").verdict == "passed"  # a bare body
    assert verify_answer(request, "    return a * b").verdict == "failed"


def test_requests_without_examples_are_unverifiable() -> None:
    assert verify_answer("Translate 'hello' to French.", "Bonjour").verdict == "unverifiable"
    plain = "def f(x):\n    '''Double x.'''\n"
    assert verify_answer(plain, "    return 2 * x").verdict == "unverifiable"
    # prose that CPython's parser gives up on with MemoryError instead of a SyntaxError
    assert verify_answer("word " * 2000, "word").verdict == "unverifiable"


METHOD = '''class Solution:
    def twoSum(self, nums: list[int], target: int) -> list[int]:
        """
        Input: nums = [2, 7, 11, 15], target = 9
        Output: [0, 1]
        """
'''
NESTED = '''def outer(x):
    def helper(y):
        """>>> helper(2)
        4
        """
        return y * 2
    return helper(x)
'''
METHOD_ANSWER = "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]"


@pytest.mark.parametrize(
    ("request_", "solution"),
    [
        (METHOD, METHOD_ANSWER),
        (f"Solve this:\n```python\n{METHOD}```", METHOD_ANSWER),
        (NESTED, "def outer(x):\n    return x * 2"),
    ],
)
def test_examples_of_a_method_or_a_nested_function_are_not_checked(
    request_: str, solution: str
) -> None:
    """The checks call a top-level function: a right answer would fail them too."""
    answer = f"```python\n{solution}\n```"
    assert verify_answer(request_, answer).verdict == "unverifiable"
    # a top-level function with examples next to them is still checked
    request_ = f'{METHOD}{NESTED}\ndef add(a, b):\n    """>>> add(2, 3)\n    5\n    """\n'
    assert verify_answer(request_, "```python\ndef add(a, b):\n    return a - b\n```").verdict == "failed"  # fmt: skip


def test_a_request_whose_own_code_does_not_run_in_the_sandbox_is_unverifiable(
    tiny_config: AppConfig,
) -> None:
    # the sandbox has the standard library only: no answer could pass these examples
    for module in ("numpy as np", "myproject.text"):
        request = REQUEST.replace("```python\n", f"```python\nimport {module}\n\n")
        check = verify_answer(request, "    return a + b")
        assert check.verdict == "unverifiable" and "No module named" in check.detail
    # an answer that crashes on a request that runs still fails
    assert verify_answer(REQUEST, "    return a +").verdict == "failed"
    assert verify_answer(REQUEST, "    import numpy\n    return a + b").verdict == "failed"
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system:
        result = system.generate(request, model="tiny-light")
        assert result.model == "tiny-light" and "escalated" not in result.reason


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_the_experiments_cascade_is_the_step_a_served_cascade_takes(tmp_path: Path, n: int) -> None:  # fmt: skip
    """A gate trained on a run (train-gate) must be one the server can use: its first
    model escalates to the next larger one, on any ladder (a 5-model one too)."""
    data = tiny_config_dict(tmp_path)
    data["models"] = [dict(data["models"][0], name=f"m{i}", params_b=0.1 * (i + 1)) for i in range(n)]  # fmt: skip
    config = load_config(write_config(tmp_path, data))
    ladder = [m.name for m in config.models_by_size()]
    first, then = cascade_pair(ladder)
    assert then == ladder[-1] and RoutingScope(config, lambda: ladder).larger(first)[0] == then
    with pytest.raises(RouterLLMError, match="a cascade needs two models"):
        cascade_pair(ladder[:1])


def test_the_larger_models_skip_unavailable_ones(tiny_config: AppConfig) -> None:
    def larger(available: list[str], model: str) -> list[str]:
        return RoutingScope(tiny_config, lambda: available).larger(model)

    assert larger(["tiny-light", "tiny-heavy"], "tiny-light") == ["tiny-heavy"]
    assert larger(["tiny-light", "tiny-medium"], "tiny-medium") == []


def test_a_model_of_the_same_size_is_neither_larger_nor_smaller(tmp_path: Path) -> None:
    """Two models of one tier and size (mistral-7b and codellama-7b in the development
    config): the cascade escalated from one to the other, and a budget near its limit
    stepped "one model smaller" from the second to the first, which saves nothing."""
    models = tiny_config_dict(tmp_path)["models"]
    twin = tiny_model("tiny-medium-2", "medium", 0.5)
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[*models[:2], twin, models[2]])))  # fmt: skip
    every = [m.name for m in config.models]
    scope = RoutingScope(config, lambda: every)
    assert scope.larger("tiny-medium") == scope.larger("tiny-medium-2") == ["tiny-heavy"]
    assert RoutingScope(config, lambda: ["tiny-medium", "tiny-medium-2"]).larger("tiny-medium") == []  # fmt: skip
    assert scope.smaller("tiny-medium-2") == scope.smaller("tiny-medium") == ["tiny-light"]
    assert scope.smaller("tiny-heavy") == ["tiny-medium", "tiny-medium-2", "tiny-light"]


def test_failed_answers_escalate_up_the_ladder_and_every_attempt_is_paid_for(
    tiny_config: AppConfig,
) -> None:
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system:
        # tinycoder writes gibberish: each answer fails the examples, up to the largest model
        result = system.generate(REQUEST, model="tiny-light")
        assert result.model == "tiny-heavy"
        assert (
            "tiny-light's answer failed 2 of the request's 2 examples, escalated to tiny-medium"
            in result.reason
        )
        assert "escalated to tiny-heavy" in result.reason
        # three generations, three loads and two checks in one request
        gen = result.components["llm_inference"]
        assert gen.duration_s > 0 and result.components["router_inference"].duration_s > 0
        assert result.cost_usd == pytest.approx(
            result.energy_kwh * system.config.carbon.electricity_price_usd_per_kwh
        )
        plain = system.generate("Translate 'hello' to French.", model="tiny-light")
        assert plain.model == "tiny-light" and "escalated" not in plain.reason
        logged = list(system.log.records())
        assert [r.model for r in logged] == ["tiny-heavy", "tiny-light"]
        assert logged[0].co2_kg == pytest.approx(result.co2_kg)
        # logged with what the first two models spent, so that tiny-heavy's own is known
        earlier = logged[0].escalated["llm_inference"]
        own = logged[0].own("llm_inference")
        assert own is not None and 0 < earlier.duration_s < gen.duration_s
        assert own.duration_s == pytest.approx(gen.duration_s - earlier.duration_s)
        assert logged[1].escalated == {}
    tiny_config.cascade.enabled = False
    with RouterLLM(tiny_config) as system:
        assert system.generate(REQUEST, model="tiny-light").model == "tiny-light"


def test_reports_of_results_and_records_agree_with_the_logged_report(tmp_path: Path) -> None:
    """``summarize`` of the results (or of the logged records) compared escalated requests
    with the largest model counting the first models' answers as the largest model's own
    work: its estimate disagreed with ``routerllm report``'s on the same requests."""
    from routerllm.carbon.report import logged_report, summarize

    data = tiny_config_dict(tmp_path, cascade={"enabled": True}, cache={"enabled": True})
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        results = [system.generate(REQUEST, model="tiny-light") for _ in range(2)]
        results.append(system.generate("Say hi.", model="tiny-heavy"))
        records = list(system.log.records())
    escalated, cached = results[0], results[1]
    assert escalated.model == "tiny-heavy" and escalated.escalated == records[0].escalated != {}
    assert cached.cached_from == escalated.request_id and cached.escalated == {}
    logged = logged_report(config).versus_largest
    assert logged is not None
    for vs in (summarize(results, config.models).versus_largest, summarize(records, config.models).versus_largest):  # fmt: skip
        assert vs is not None and vs["method"] == logged["method"]
        for key in ("estimated_energy_kwh", "estimated_co2_kg", "actual_co2_kg", "co2_saved_fraction"):  # fmt: skip
            assert vs[key] == pytest.approx(logged[key], rel=1e-12), key


def test_a_failing_larger_model_keeps_the_answer_in_hand(tmp_path: Path, tiny_gguf: Path) -> None:
    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    data["models"][2]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate(REQUEST, model="tiny-medium")
        assert result.model == "tiny-medium" and result.text
        assert "escalated to tiny-heavy, which failed" in result.reason
        assert "kept tiny-medium's answer" in result.reason
        assert [r.model for r in system.log.records()] == ["tiny-medium"]
        # tiny-heavy's failed load is paid for: the part besides tiny-medium's own
        (row,) = system.log.records()
        failed_load = row.escalated["model_loading"]
        assert failed_load.duration_s > 0 and failed_load.energy_kwh > 0


def test_a_larger_model_that_fails_to_load_is_named_by_the_report(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cascade whose larger model's file is corrupt keeps the answer in hand: the failed
    load was logged in the escalated part, but neither the log's load_errors nor the
    report's failed_loads named tiny-heavy, so nothing told the user it cannot load. Now
    it is named as a failed load (its energy that load's), the answering model is not,
    and neither counts it as a load."""
    from routerllm import manager as manager_module
    from routerllm.carbon.report import logged_report

    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    data["models"][2]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    config = load_config(write_config(tmp_path, data))
    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with RouterLLM(config) as system:
        for minutes in (1, 0, 0):  # its load tried again a minute on, then not within it
            assert system.generate(REQUEST, model="tiny-medium").model == "tiny-medium"
            clock[0] += minutes * manager_module.RECHECK_S
        rows = list(system.log.records())
        # within the minute after a failed load, the cascade does not step up to it
        assert rows[2].load_error == "" and rows[2].escalated == {}
        rows = rows[:2]
    for row in rows:
        assert row.finish_reason != "error" and "corrupt" in row.load_error
        assert row.load_error_model == "tiny-heavy"
        assert row.load_error_kwh == row.escalated["model_loading"].energy_kwh > 0
    recs = logged_report(config).recommendations
    (r,) = [x for x in recs if x.kind == "failed_loads"]
    assert r.evidence["model"] == "tiny-heavy" and r.evidence["failed_loads"] == 2
    assert r.evidence["loading_energy_kwh"] == pytest.approx(sum(x.load_error_kwh or 0 for x in rows))  # fmt: skip
    assert r.evidence["error"] == rows[1].load_error and r.evidence["last_failed"] == rows[1].timestamp  # fmt: skip
    assert r.message.startswith("tiny-heavy failed to load in 2 requests (no answer from it, a cascade kept a smaller model's in 2; ")  # fmt: skip
    assert r.evidence["kept_answers"] == 2
    assert not [x for x in recs if x.kind == "model_loading"]


@pytest.fixture
def templated_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[str], str]]:
    """``uncounted_parts`` of the tiny GGUF with a chat template that writes 40 words
    before each message."""
    from .conftest import WITHIN_KEY_VALUES, gguf_with_chat_template, packages_of_parts

    template = "{% for message in messages %}{{ 'pad ' * 40 + message['content'] }}{% endfor %}"
    gguf = gguf_with_chat_template(tmp_path / "t.gguf", template)
    yield from packages_of_parts(tmp_path, gguf, monkeypatch, first=WITHIN_KEY_VALUES)


def test_a_larger_model_that_loads_then_fails_is_paid_for(
    tmp_path: Path, templated_parts: tuple[list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny-heavy loaded, then refused the prompt: its load was in no figure of the request
    from routerllm.config import GGUFSource

    # REQUEST is 62 tokens as tiny-medium reads it, which 80 would hold; tiny-heavy's chat
    # template writes 40 words more before it: found too long only once it is loaded, as
    # its GGUF is split parts not yet assembled whose first part ends within its
    # key-values (nothing counts the prompt before the load; a model counted so is
    # refused unloaded since 2026-12-07)
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    names, sha = templated_parts
    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    data["models"][2]["context_length"] = 80
    data["models"][2]["gguf"] = GGUFSource(parts=names, sha256=sha).model_dump(exclude_none=True)
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        system.generate("hi", model="tiny-medium")  # loaded: this request loads only tiny-heavy
        result = system.generate(REQUEST, model="tiny-medium")
        assert result.model == "tiny-medium" and "which failed (prompt is 101 tokens with the model's chat template" in result.reason  # fmt: skip
        assert system.manager.backend("tiny-heavy").loaded
        loading = result.components["model_loading"]
        assert loading.duration_s > 0
        assert result.cost_usd == pytest.approx(
            result.energy_kwh * system.config.carbon.electricity_price_usd_per_kwh
        )
        row = list(system.log.records())[-1]
        assert row.components["model_loading"] == loading
        # not tiny-medium's own load: the part of the models besides the answering one
        assert row.escalated == {"model_loading": loading}
        own = row.own("model_loading")
        assert own is not None and own.duration_s == 0


@pytest.mark.parametrize("trained", [32, 62])
def test_a_larger_model_whose_gguf_context_cannot_hold_the_prompt_is_not_loaded(
    tmp_path: Path, trained: int
) -> None:
    """tiny-heavy is configured for 512 tokens, but its GGUF was trained for 32: REQUEST,
    62 tokens as tiny-medium read it, cannot fit. Until 2026-12-04 the cascade loaded it
    (its load paid for) only for it to refuse the prompt, then kept tiny-medium's answer;
    now it keeps that answer without loading tiny-heavy, and the reason says why. A
    context of exactly the prompt's 62 tokens leaves no room for an answer either."""
    from .conftest import gguf_with_context_length

    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    data["models"][2]["gguf"] = {"path": str(gguf_with_context_length(tmp_path / "short.gguf", trained))}  # fmt: skip
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        system.generate("hi", model="tiny-medium")  # loaded: this request loads nothing
        result = system.generate(REQUEST, model="tiny-medium")
        assert result.model == "tiny-medium" and result.prompt_tokens == 62
        assert result.reason.endswith(
            "tiny-medium's answer failed 2 of the request's 2 examples, not escalated to "
            "tiny-heavy: the prompt, 62 tokens as tiny-medium read it, leaves no room for an "
            f"answer in its context of {trained} tokens, its GGUF's, under the configured 512"
        )
        assert not system.manager.backend("tiny-heavy").loaded
        assert result.components["model_loading"].duration_s == 0
        row = list(system.log.records())[-1]
        assert row.escalated == {} and row.load_error == ""


SHORT_MEDIUM = "the prompt, 62 tokens as tiny-light read it, leaves no room for an answer in its context of 32 tokens, its GGUF's, under the configured 512"  # fmt: skip


def test_the_step_up_passes_a_larger_model_too_short_for_the_prompt_to_a_longer_one(
    tmp_path: Path,
) -> None:
    """tiny-medium's GGUF was trained for 32 tokens, tiny-heavy's for 2048: tiny-light's
    failed answer to REQUEST (62 tokens) goes to tiny-heavy, past tiny-medium, which is
    not loaded. Until 2026-12-04 the step-up stopped at tiny-medium and kept tiny-light's
    answer, though tiny-heavy could hold the prompt."""
    from .conftest import gguf_with_context_length

    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    data["models"][1]["gguf"] = {"path": str(gguf_with_context_length(tmp_path / "short.gguf", 32))}  # fmt: skip
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate(REQUEST, model="tiny-light")
        assert result.model == "tiny-heavy"
        assert (
            "tiny-light's answer failed 2 of the request's 2 examples, escalated to tiny-heavy "
            f"(past tiny-medium: {SHORT_MEDIUM})" in result.reason
        )
        assert not system.manager.backend("tiny-medium").loaded
        row = list(system.log.records())[-1]
        assert row.model == "tiny-heavy" and row.load_error == ""
        assert row.escalated["llm_inference"].duration_s > 0  # tiny-light's answer, paid for


def test_no_step_up_where_no_larger_models_context_holds_the_prompt(tmp_path: Path) -> None:
    from .conftest import gguf_with_context_length

    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    short = {"path": str(gguf_with_context_length(tmp_path / "short.gguf", 32))}
    data["models"][1]["gguf"] = data["models"][2]["gguf"] = short
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate(REQUEST, model="tiny-light")
        assert result.model == "tiny-light"
        assert result.reason.endswith(
            "tiny-light's answer failed 2 of the request's 2 examples, not escalated to "
            "tiny-medium nor tiny-heavy: the prompt, 62 tokens as tiny-light read it, leaves no "
            "room for an answer in their contexts (tiny-medium: 32 tokens, its GGUF's, under "
            "the configured 512; tiny-heavy: 32 tokens, its GGUF's, under the configured 512)"
        )
        assert system.manager.loaded_models == ["tiny-light"]


def test_a_larger_model_that_fails_while_generating_is_paid_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tiny-heavy fails partway through its generation (reading the prompt state fails
    once it read the prompt): the answer in hand is kept, and the generation tiny-heavy
    did is paid for, as the part besides tiny-medium's own. Until 2026-12-03 it was in
    no figure of the request."""
    from routerllm.backends.llama_state import PromptState

    read = PromptState._read
    data = tiny_config_dict(tmp_path, cascade={"enabled": True})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        heavy = system.manager.backend("tiny-heavy")

        def failing(self: PromptState, tensor: int, ask: bool) -> bool:
            if self._llm is heavy._llm:  # type: ignore[attr-defined]
                raise ValueError("unexpected tensor")
            return read(self, tensor, ask)

        monkeypatch.setattr(PromptState, "_read", failing)
        request = GenerationRequest(REQUEST, prompt_state=True)
        result = system.generate(request, model="tiny-medium")
        assert result.model == "tiny-medium" and "which failed (reading the prompt state failed" in result.reason  # fmt: skip
        row = list(system.log.records())[-1]
        failed = row.escalated["llm_inference"]  # tiny-heavy's generation
        assert failed.duration_s > 0 and failed.energy_kwh > 0
        assert row.components["llm_inference"].energy_kwh > failed.energy_kwh  # and its own
        own = row.own("llm_inference")
        assert own is not None and own.energy_kwh == pytest.approx(
            row.components["llm_inference"].energy_kwh - failed.energy_kwh
        )
        assert result.cost_usd == pytest.approx(
            result.energy_kwh * system.config.carbon.electricity_price_usd_per_kwh
        )


def test_cli_route_cascade_flag(tiny_config_path: Path) -> None:
    run = cli_in_process("route", REQUEST, "--config", str(tiny_config_path), "--model",
                         "tiny-medium", "--cascade", "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["model"] == "tiny-heavy" and "escalated to tiny-heavy" in out["reason"]


def test_a_task_in_prose_with_asserts_is_checked_on_them() -> None:
    """MBPP's way of asking: no function to complete, an assert naming the one to write."""
    request = (
        "Write a function to find the shared elements of two tuples.\n"
        "Your code should pass: assert similar_elements((3, 4, 5), (5, 7, 4)) == (4, 5)\n"
        "Use sets. A backslash \\N stays text."
    )
    good = "```python\ndef similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n```"
    bad = "```python\ndef similar_elements(a, b):\n    return a\n```"
    assert verify_answer(request, good).verdict == "passed"
    assert verify_answer(request, bad).verdict == "failed"
    assert verify_answer(request, "I do not know.").verdict == "failed"
    # builtins called in prose are not the function asked for
    assert verify_answer("Explain why len([1, 2]) == 2.", "Because.").verdict == "unverifiable"


def test_a_question_about_a_method_call_is_not_a_task() -> None:
    """'banana'.count(...) is str's method, not a function the request asks for."""
    question = "I expected 'banana'.count('ana') == 2\nbut Python says 1. Why?"
    answer = "str.count counts non-overlapping occurrences."
    assert verify_answer(question, answer).verdict == "unverifiable"


def test_an_answer_in_another_language_to_a_task_in_prose_is_unverifiable() -> None:
    """The task may ask for it: checked as Python, every model's answer would fail."""
    request = "Write a JavaScript function add(a, b).\nadd(2, 3) => 5"
    js = "```javascript\nfunction add(a, b) {\n  return a + b;\n}\n```"
    check = verify_answer(request, js)
    assert check.verdict == "unverifiable" and "javascript" in check.detail
    python = "```python\ndef add(a, b):\n    return a - b\n```"
    assert verify_answer(request, python).verdict == "failed"
    # a function stub in Python is asked for in Python
    assert verify_answer(REQUEST, js).verdict == "failed"


#: A function stub in JavaScript whose comment states examples: the prose reading finds them.
JS_STUB = """/**
 * Add two numbers.
 * add(2, 3) === 5
 * add(-1, 1) === 0
 */
function add(a, b) {
"""


def test_an_untagged_answer_in_another_language_is_unverifiable_too(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A right answer to a JavaScript stub in an untagged block (or bare, or just its body)
    was run as Python, failed (an IndentationError), and went up the whole ladder."""
    prose = "Write a JavaScript function add(a, b).\nadd(2, 3) => 5"
    js = "function add(a, b) {\n  return a + b;\n}\n"
    for request, answer in (
        (JS_STUB, f"```\n{js}```"),
        (JS_STUB, js),
        (JS_STUB, "  return a + b;\n}\n"),  # the stub's body, as a completion goes on
        (prose, f"```\n{js}```"),
        (prose, "const add = (a, b) => a + b;"),
        (prose, "```\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```"),
        (prose, "```\nint add(int a, int b) {\n    return a + b;\n}\n```"),
    ):
        check = verify_answer(request, answer)
        assert check.verdict == "unverifiable", (request, answer, check)
        assert "not Python" in check.detail
    # a Python answer to either is still checked, and broken Python still fails
    assert verify_answer(JS_STUB, "```\ndef add(a, b):\n    return a - b\n```").verdict == "failed"
    assert verify_answer(prose, "```\ndef add(a, b):\n    return a + b\n```").verdict == "passed"
    assert verify_answer(prose, "```\nreturn a +\n```").verdict == "failed"
    # prose that names the function, and Python with a call and a brace on one line, are
    # no declaration in another language: a Python task's answer without the function fails
    python_task = "Write a python function add(a, b) that adds.\nadd(2, 3) == 5"
    for answer in ("The function add(a, b) cannot be written.", "x = add(2, 3) or {}"):
        assert verify_answer(python_task, answer).verdict == "failed", answer
    # served: the JavaScript answer stays with the model that wrote it
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system:
        backend = system.manager.backend("tiny-light")
        real = backend.generate
        monkeypatch.setattr(backend, "generate", lambda r: replace(real(r), text=f"```\n{js}```"))  # fmt: skip
        result = system.generate(JS_STUB, model="tiny-light")
    assert result.model == "tiny-light" and "escalated" not in result.reason, result.reason


def test_the_cascade_escalates_within_the_budgets_size_cap(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path, cascade={"enabled": True}, budgets={"max_params_b": 0.6})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate(REQUEST, model="tiny-light")  # both answers fail their examples
        assert result.model == "tiny-medium" and "escalated to tiny-medium" in result.reason
        assert "tiny-heavy" not in result.reason


def test_a_prefilled_answer_is_checked_with_its_opening_fence(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose answer starts with a code fence (``response_prefix``): the model's
    text is the code, the closing fence and some prose, which read alone (a block opened
    by the closing fence) was the prose, failed, and escalated a correct answer."""
    answer = (
        "def add(a: int, b: int) -> int:\n    return a + b\n```\n\nThis adds the two numbers.\n"
    )
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system:
        backend = system.manager.backend("tiny-light")
        real = backend.generate
        monkeypatch.setattr(backend, "generate", lambda r: replace(real(r), text=answer))
        request = GenerationRequest(REQUEST, response_prefix="```python\n")
        result = system.generate(request, model="tiny-light")
    assert result.model == "tiny-light" and "escalated" not in result.reason


def test_the_check_of_an_answer_that_passes_is_paid_for_as_routing(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer that passes its examples is kept, but its check ran: its time (and
    energy) is the request's router_inference, as a failed answer's check's is (a passed
    check's was dropped). The answer sleeps 0.3 s in each example, so the check does."""
    answer = "```python\ndef add(a: int, b: int) -> int:\n    import time\n    time.sleep(0.3)\n    return a + b\n```\n"  # fmt: skip
    tiny_config.cascade.enabled = True
    # the check took 1.0-1.5 s on 2 shared cores (2 examples, a sandbox each): the default
    # 5 s timed it out under 4x that load, and the passing answer was escalated
    tiny_config.cascade.timeout_s = 60
    with RouterLLM(tiny_config) as system:
        backend = system.manager.backend("tiny-light")
        real = backend.generate
        monkeypatch.setattr(backend, "generate", lambda r: replace(real(r), text=answer))
        result = system.generate(REQUEST, model="tiny-light")
    assert result.model == "tiny-light" and "escalated" not in result.reason
    assert result.components["router_inference"].duration_s >= 0.3


def test_an_answer_cancelled_half_way_is_neither_checked_nor_escalated(
    tiny_config: AppConfig,
) -> None:
    """Its caller (the server's client) has gone: a larger model's answer would reach
    nobody either, and was paid for."""
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system, cancellable(StopAfter(3)):
        result = system.generate(REQUEST, model="tiny-light")
        assert (result.model, result.finish_reason, result.completion_tokens) == ("tiny-light", CANCELLED, 3)  # fmt: skip
        assert "escalated" not in result.reason and "examples" not in result.reason
        assert [(r.model, r.finish_reason) for r in system.log.records()] == [("tiny-light", CANCELLED)]  # fmt: skip


def test_no_larger_model_is_loaded_for_a_caller_gone_once_the_answer_failed(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first answer was whole, then the caller left (the check runs after it): the
    next model was loaded and run for nobody, until its first token."""
    import routerllm.cascade

    tiny_config.cascade.enabled = True
    tiny_config.cache.enabled = True
    stop, check = threading.Event(), routerllm.cascade.verify_answer

    def checked_as_the_caller_leaves(*args: Any, **kwargs: Any) -> Any:
        verdict = check(*args, **kwargs)
        stop.set()
        return verdict

    monkeypatch.setattr(routerllm.cascade, "verify_answer", checked_as_the_caller_leaves)
    with RouterLLM(tiny_config) as system:
        with cancellable(stop):
            result = system.generate(REQUEST, model="tiny-light")
        assert (result.model, result.finish_reason) == ("tiny-light", "length")
        assert "failed 2 of the request's 2 examples, not escalated to tiny-medium: the caller has gone" in result.reason  # fmt: skip
        assert system.manager.loaded_models == ["tiny-light"]
        # not cached: a later request's answer goes up the ladder, as the cascade says
        assert system.generate(REQUEST, model="tiny-light").model == "tiny-heavy"


def test_an_answer_whose_caller_left_as_it_finished_is_not_checked(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller left as the first answer finished: its examples were still run in the
    sandbox (up to cascade.timeout_s) for nobody, the next request waiting behind it.
    Unchecked, the answer is not cached: a later request is checked and escalated."""
    import routerllm.cascade
    from routerllm.backends.llama_cpp import LlamaCppBackend

    tiny_config.cascade.enabled = True
    tiny_config.cache.enabled = True
    stop, generate, checked = threading.Event(), LlamaCppBackend.generate, []

    def answered_as_the_caller_leaves(self: Any, request: Any) -> Any:
        completion = generate(self, request)
        stop.set()
        return completion

    monkeypatch.setattr(LlamaCppBackend, "generate", answered_as_the_caller_leaves)
    monkeypatch.setattr(routerllm.cascade, "verify_answer", lambda *a, **k: checked.append(a))
    with RouterLLM(tiny_config) as system:
        with cancellable(stop):
            result = system.generate(REQUEST, model="tiny-light")
        assert not checked and result.model == "tiny-light"
        assert "not checked, nor escalated to tiny-medium: the caller has gone" in result.reason
        monkeypatch.undo()
        assert system.generate(REQUEST, model="tiny-light").model == "tiny-heavy"


#: A function stub (``generation.complete_stubs``: checked by ``verify_stub``).
STUB = 'def add(a, b):\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n'


@pytest.mark.parametrize("request_text", [REQUEST, STUB], ids=["prose", "stub"])
def test_a_check_stops_at_once_when_its_caller_leaves(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch, request_text: str
) -> None:
    """The caller (the server's client) left while the answer's examples ran: until
    2026-12-06 the check ran on to cascade.timeout_s (for a stub, a second run of the
    request alone after it), the server's turn held for nobody. Now the sandbox's run is
    killed at once; the answer is kept as the model gave it, its check's energy in the
    routing as a whole check's is, neither escalated nor cached."""
    from routerllm.backends.llama_cpp import LlamaCppBackend
    from routerllm.eval.sandbox import run_program

    tiny_config.cascade.enabled = True
    tiny_config.cascade.timeout_s = 6.0
    assert run_program("pass").passed  # the sandbox's probe, once a process: not the check's
    tiny_config.cache.enabled = True
    stop, generate, left = threading.Event(), LlamaCppBackend.generate, []
    hangs = "```python\ndef add(a, b):\n    while True:\n        pass\n```"

    def answered_then_left_mid_check(self: Any, request: Any) -> Any:
        completion = replace(generate(self, request), text=hangs)
        threading.Timer(1.0, lambda: (left.append(time.monotonic()), stop.set())).start()
        return completion

    monkeypatch.setattr(LlamaCppBackend, "generate", answered_then_left_mid_check)
    request = GenerationRequest(request_text, max_new_tokens=8)  # a stub's style asks more
    with RouterLLM(tiny_config) as system:
        with cancellable(stop):
            result = system.generate(request, model="tiny-light")
        held_s = time.monotonic() - left[0]
        assert held_s < 1.5, f"the check ran on {held_s:.1f} s after its caller left"
        assert (result.model, result.finish_reason) == ("tiny-light", "length")
        assert "tiny-light's answer's check was stopped, not escalated to tiny-medium: the caller has gone" in result.reason  # fmt: skip
        assert system.manager.loaded_models == ["tiny-light"]
        (row,) = system.log.records()
        assert (row.id, row.model, row.finish_reason) == (result.request_id, "tiny-light", "length")  # fmt: skip
        assert row.components == result.components
        assert result.components["router_inference"].duration_s >= 1.0  # the check until then
        monkeypatch.undo()  # not cached: a later request is checked, and escalated
        assert system.generate(request, model="tiny-light").model == "tiny-heavy"


def test_an_answer_whose_check_cannot_run_is_kept_and_logged(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sandbox could not start (its temporary folder gone, no process left to fork):
    until 2026-12-05 the check's error, a bare OSError, ended the request after its model
    had answered, the answer lost and what it spent in no log. Now it is kept unchecked,
    not escalated, logged with what it spent, and not cached (a later request checks it)."""
    import tempfile

    tiny_config.cascade.enabled = True
    tiny_config.cache.enabled = True
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with RouterLLM(tiny_config) as system:
        result = system.generate(REQUEST, model="tiny-light")
        assert result.model == "tiny-light" and result.text
        assert "tiny-light's answer could not be checked (the sandbox could not run it: " in result.reason  # fmt: skip
        assert result.reason.endswith(", not escalated to tiny-medium")
        (row,) = system.log.records()
        assert row.model == "tiny-light" and row.components["llm_inference"].duration_s > 0
        assert row.components == result.components
        monkeypatch.undo()
        assert system.generate(REQUEST, model="tiny-light").model == "tiny-heavy"


def test_of_two_functions_with_examples_the_last_is_the_one_asked_for() -> None:
    request = (
        "def helper(x):\n"
        '    """Double x.\n\n    >>> helper(1)\n    2\n    """\n\n\n'
        "def target(x):\n"
        '    """Triple x.\n\n    >>> target(2)\n    6\n    """\n'
    )
    found = function_with_examples(request)
    assert found is not None and found[1] == "target"
