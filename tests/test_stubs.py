"""Function stubs: a request that is a bare function stub is asked in each model's code
style, checked as the HumanEval experiment checks it, and answered with the completed
function (real tiny GGUF models, real sandbox, real CodeCarbon)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.config import AppConfig, load_config
from routerllm.data.humaneval import load_humaneval
from routerllm.eval.codegen import CHAT_STYLE, PREFILL_STYLE, build_request
from routerllm.exceptions import ConfigError, PromptError
from routerllm.stubs import completed, stub_of, styled
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config

STUB = '''from typing import List


def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''


def test_every_humaneval_prompt_is_a_stub_asked_as_the_experiment_asks_it() -> None:
    for p in load_humaneval():
        stub = stub_of(GenerationRequest(p.prompt))
        assert stub is not None and stub.entry_point == p.entry_point, p.task_id
        for style in (PREFILL_STYLE, CHAT_STYLE):
            assert styled(GenerationRequest(p.prompt), stub, style) == build_request(p, style)


def test_the_callers_own_settings_win_over_the_style() -> None:
    stub = stub_of(GenerationRequest(STUB))
    assert stub is not None
    asked = styled(GenerationRequest(STUB, max_new_tokens=64, stop=["\n\n"]), stub, PREFILL_STYLE)
    assert (asked.max_new_tokens, asked.stop) == (64, ["\n\n"])
    assert asked.temperature == 0.0 and asked.response_prefix == "```python\n" + STUB
    # a style has no seed: the caller's was dropped until 2026-12-04, so a sampled
    # answer drew from generation.seed (or a fresh seed each time where it is unset)
    sampled = styled(GenerationRequest(STUB, temperature=0.8, seed=42), stub, PREFILL_STYLE)
    assert (sampled.temperature, sampled.seed) == (0.8, 42)
    # the sampling filters too (top_k was dropped: the config's, or the backend's own)
    filtered = styled(GenerationRequest(STUB, temperature=0.8, top_k=1, min_p=0.2), stub, PREFILL_STYLE)  # fmt: skip
    assert (filtered.top_k, filtered.min_p) == (1, 0.2)


@pytest.mark.parametrize(
    "prompt",
    [
        "Write a function that adds two numbers.",
        f"```python\n{STUB}```",  # fenced: a chat request
        "def add(a, b):\n    '''Add.'''\n    return a + b\n",  # has a body
        STUB + "\nprint(add(1, 2))\n",  # the function is not the last statement
        "def add(a, b): 'Add.'\n",  # no line to continue
        "def add(a, b):\n    '''Add.\n",  # does not parse
        "class Adder:\n    def add(self, a, b):\n        '''Add.'''\n",
        "def add(a, b):\n    x = 1\n    '''Add.'''\n",
        "word " * 2000,  # CPython's parser gives up on this with MemoryError
        "def f(x):\n    return " + "(" * 500 + ")" * 500 + "\n",  # too deep for it
    ],
)
def test_what_is_not_a_stub(prompt: str) -> None:
    assert stub_of(GenerationRequest(prompt)) is None


def test_a_request_asked_in_a_chosen_way_is_left_alone() -> None:
    assert stub_of(GenerationRequest(STUB, raw=True)) is None
    assert stub_of(GenerationRequest("Complete it.", response_prefix=STUB)) is None


def test_a_stub_as_a_later_turn_of_a_conversation_is_sent_as_written() -> None:
    # README, "Function stubs": the earlier turns would be lost in the code style's prompt
    earlier = (("user", "Hi."), ("assistant", "Hello."))
    assert stub_of(GenerationRequest(STUB, history=earlier)) is None


def test_the_answer_is_the_completed_function() -> None:
    stub = stub_of(GenerationRequest(STUB))
    assert stub is not None
    body = "    return a + b\n\nassert add(1, 2) == 3\n"
    assert completed(stub, body, PREFILL_STYLE) == STUB + "    return a + b\n"
    chat = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert completed(stub, chat, CHAT_STYLE) == chat


def test_a_stub_without_its_last_newline_is_checked_as_one_with_it() -> None:
    # `routerllm route "$(cat task.py)"`: the shell drops the file's last newline, and a
    # prefilled model continues the closing quotes with "\n    return ..."
    from routerllm.cascade import verify_stub

    for prompt in (STUB.rstrip("\n"), STUB.rstrip("\n") + "  "):
        stub = stub_of(GenerationRequest(prompt))
        assert stub is not None
        for body in ("\n    return a + b\n", "    return a + b\n"):
            assert verify_stub(stub, body, PREFILL_STYLE).verdict == "passed"
            assert completed(stub, body, PREFILL_STYLE) == STUB + body


def test_an_async_stubs_examples_are_not_run() -> None:
    """Its calls give coroutines and the sandbox runs no event loop: a right answer would
    fail, so none is failed."""
    from routerllm.cascade import verify_answer, verify_stub

    prompt = 'async def double(x: int) -> int:\n    """double(2) -> 4"""\n'
    stub = stub_of(GenerationRequest(prompt))
    assert stub is not None and stub.entry_point == "double"
    check = verify_stub(stub, "    return 2 * x\n", PREFILL_STYLE)
    assert check.verdict == "unverifiable" and "async" in check.detail
    assert verify_answer(prompt, "```python\nasync def double(x):\n    return 2 * x\n```").verdict == "unverifiable"  # fmt: skip


def _asked(prompt: str) -> GenerationRequest:
    """``prompt`` asked for 8 tokens: a stub is asked in the model's code style, whose 512
    the tiny models fill (379 tokens of tinycoder's, most of these tests' time)."""
    return GenerationRequest(prompt, max_new_tokens=8)


def _ladder_named(tmp_path: Path, **overrides: object) -> Path:
    """The tiny models under the local ladder's names, so they get the ladder's style."""
    data = tiny_config_dict(tmp_path, **overrides)
    for m, name in zip(
        data["models"], ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"), strict=True
    ):
        m["name"] = name
    return write_config(tmp_path, data)


def test_a_stub_is_served_in_the_models_style_and_checked_like_the_experiment(
    tmp_path: Path,
) -> None:
    config = load_config(_ladder_named(tmp_path, cascade={"enabled": True}))
    with RouterLLM(config) as system:
        result = system.generate(_asked(STUB), model="qwen2.5-coder-0.5b")
        assert result.text.startswith(STUB)  # prefilled: the model wrote the body only
        assert "asked to complete the function add in each model's code style" in result.reason
        # tinycoder's gibberish body fails both examples: up the ladder
        assert "qwen2.5-coder-0.5b's answer failed 2 of the request's 2 examples" in result.reason
        assert result.model == "qwen2.5-coder-1.5b" and result.text.startswith(STUB)
        styled_tokens = result.prompt_tokens
    config.generation.complete_stubs = False
    config.cascade.enabled = False
    with RouterLLM(config) as system:
        written = system.generate(STUB, model="qwen2.5-coder-1.5b")
        assert not written.text.startswith(STUB) and "code style" not in written.reason
        # the prefill request repeats the stub after its instruction
        assert written.prompt_tokens < styled_tokens
    config.generation.complete_stubs = True
    long_stub = STUB.replace("Add two numbers.", "Add two numbers. " * 60)  # 512-token context
    with RouterLLM(config) as system, pytest.raises(PromptError, match=r"too long for model 'qwen2.5-coder-1.5b' .*\(a function stub, asked in qwen2.5-coder-1.5b's prefill code style"):  # fmt: skip
        system.generate(long_stub, model="qwen2.5-coder-1.5b")


def test_a_stub_is_predicted_at_the_tokens_its_code_style_gives_it(tiny_config: AppConfig) -> None:
    """A stub was predicted (and admitted within the budgets) at the config's
    max_new_tokens (8 here), though its code style lets the model write 512 tokens."""
    assert tiny_config.generation.max_new_tokens == 8 != CHAT_STYLE.max_new_tokens
    with RouterLLM(tiny_config) as system:
        stub = system.predict(STUB, "tiny-light")  # the tiny models' style is chat
        assert stub is not None and stub.completion_tokens == CHAT_STYLE.max_new_tokens
        own = system.predict(GenerationRequest(STUB, max_new_tokens=5), "tiny-light")
        assert own is not None and own.completion_tokens == 5  # the caller's own wins
        prose = system.predict("What is a Python list?", "tiny-light")
        assert prose is not None and prose.completion_tokens == 8
    tiny_config.generation.complete_stubs = False  # sent as written: the config's
    with RouterLLM(tiny_config) as system:
        written = system.predict(STUB, "tiny-light")
        assert written is not None and written.completion_tokens == 8


def test_the_gates_first_model_is_asked_as_the_gates_run_asked_it(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    from .test_gate import _cheap_to_escalate, _state_width

    gate = _cheap_to_escalate(_state_width(tiny_config))
    gate.about["style"] = dataclasses.asdict(PREFILL_STYLE)  # the tiny models' own is chat
    tiny_config.cascade.enabled, tiny_config.cascade.gate = True, str(gate.save(tmp_path / "g"))
    tiny_config.cascade.budget = 0.01  # nothing escalated: tiny-medium's own answer comes back
    with RouterLLM(tiny_config) as system:
        first = system.generate(_asked(STUB), model="tiny-medium")
        assert first.model == "tiny-medium" and "not escalated to tiny-heavy" in first.reason
        assert first.text.startswith(STUB)  # prefilled, as the gate's run asked
        top = system.generate(_asked(STUB), model="tiny-heavy")  # asked in its own style: chat
        assert "code style" in top.reason and not top.text.startswith(STUB)


def test_a_gate_whose_runs_style_is_unreadable_is_refused(tmp_path: Path) -> None:
    from .test_gate import _fit, _problems

    gate = _fit(_problems(40, 3))
    for i, style in enumerate([
        {"mode": "telepathy", "name": "x"},
        # each failed only when a stub was asked in it (AttributeError, or the request
        # refused for options its caller never gave): now when the system loads the gate
        {"name": "x", "system": 5},
        {"name": "x", "repetition_penalty": "high"},
        {"name": "x", "mode": "prefill", "instruction": "{prompt}", "response_prefix": 7},
    ]):  # fmt: skip
        gate.about["style"] = style
        saved = gate.save(tmp_path / f"gate{i}")
        data = tiny_config_dict(tmp_path, cascade={"enabled": True, "gate": str(saved)})
        with pytest.raises(ConfigError, match="the prompting style of its run is not readable"):
            RouterLLM(load_config(write_config(tmp_path, data)))


def test_cli_route_completes_a_stub_unless_asked_as_written(tmp_path: Path) -> None:
    config = _ladder_named(tmp_path)

    def route(*extra: str) -> dict[str, str]:
        run = cli_in_process("route", STUB, "--config", str(config), "--model",
                             "qwen2.5-coder-0.5b", "--max-new-tokens", "8", "--json", *extra)  # fmt: skip
        assert run.returncode == 0, run.stderr
        out: dict[str, str] = json.loads(run.stdout)
        return out

    assert route()["response"].startswith(STUB)
    written = route("--as-written")
    assert not written["response"].startswith(STUB) and "code style" not in written["reason"]


def test_a_fence_glued_to_the_body_ends_the_completed_function() -> None:
    stub = stub_of(GenerationRequest(STUB))
    assert stub is not None
    assert (
        completed(stub, "    return a + b```\n\nDone.", PREFILL_STYLE) == STUB + "    return a + b"
    )
