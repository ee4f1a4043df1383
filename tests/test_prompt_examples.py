"""Examples read from a code prompt's docstring, and answers checked against them in
the sandbox (the cascade's signal)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from routerllm.config import AppConfig
from routerllm.data.humaneval import load_humaneval
from routerllm.eval.cascade_overhead import Checks, FirstAnswers, Gate, GateCost
from routerllm.eval.humaneval_run import cascade
from routerllm.eval.prompt_examples import (
    _RESULT_MARK,
    PromptExample,
    extract_examples,
    verify_completion,
)
from routerllm.eval.result_store import Outcome
from routerllm.gate import gate_threshold
from routerllm.gate_models import EnergyModel
from routerllm.system import RouterLLM

from .conftest import every_block_read_at

DOCTEST = '''def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, "x\\n")  # not run: the expected output is missing
    >>> round(add(0.1, 0.2), 2)
    0.3
    >>> add(1, 1) == 2
    >>> print(add(1, 2))
    3
    """
'''

ARROWS = """def fly(q, w):
    \'\'\'Examples:
    fly([1, 2], 5) ➞ False
    # 1+2 is light enough, but unbalanced.
    fly([3], 5) ==> true
    fly([3, 2, 3], 9) == True
    fly([1], 1) -> 1 + 0 = True
    fly(x, 1) => False
    fly([2], 1) returns False.
    \'\'\'
"""

IO_AND_PROSE = '''def pluck(arr, k):
    """
    Example 1:
        Input: [4, 2, 3], 1
        Output: [2, 1]
    Example 2:
        Input: arr = [1, 2,
                      3], k = 2
        Output: []
    For arr = [5], k = 0 the output should be [5]
    For arr = [7], the weather is nice, the output should be 7
    For z = [1] the output should be 1
    """
'''


def test_doctest_examples_keep_calls_of_the_entry_point_with_expected_values() -> None:
    assert extract_examples(DOCTEST, "add") == [
        PromptExample("add(2, 3)", "5", doctest=True),
        PromptExample("round(add(0.1, 0.2), 2)", "0.3", doctest=True),
        PromptExample("add(1, 1)", "2", doctest=True),
    ]


def test_one_line_examples_with_arrows_and_lenient_literals() -> None:
    assert extract_examples(ARROWS, "fly") == [
        PromptExample("fly([1, 2], 5)", "False"),
        PromptExample("fly([3], 5)", "True"),
        PromptExample("fly([3, 2, 3], 9)", "True"),
        PromptExample("fly([1], 1)", "True"),
        PromptExample("fly([2], 1)", "False"),
    ]  # "fly(x, 1)": x is not a literal, so the line is skipped


def test_examples_sharing_a_line_are_each_read_with_their_own_value() -> None:
    # Until 2026-12-04 only the line's first call was read, with the line's last value:
    # f(2) expected [1, 1], so a right answer failed (and the cascade escalated it).
    prompt = (
        'def f(x):\n    """Doubles x: f(2) == 4, f([1]) == [1, 1]; f(3) -> 6 and f("f(") == 7."""\n'
    )
    assert extract_examples(prompt, "f") == [
        PromptExample("f(2)", "4"),
        PromptExample("f([1])", "[1, 1]"),
        PromptExample("f(3)", "6"),
        PromptExample('f("f(")', "7"),
    ]
    assert verify_completion(prompt, "f", "    return x * 2 if x != 'f(' else 7\n").passed == 4
    # an example after a call that is not one (the signature, in prose)
    prose = "Write add(a, b), e.g. add(2, 3) => 5"
    assert extract_examples(prose, "add") == [PromptExample("add(2, 3)", "5")]


def test_examples_joined_by_a_comma_and_and_are_read_without_the_comma() -> None:
    # "f(2) == 4, and f(3) == 6": only "and" was cut, so f(2) expected "4,", the tuple
    # (4,), and a right answer failed the check (the cascade escalated it)
    prompt = 'def f(x):\n    """Doubles x: f(2) == 4, and f(3) == 6; and f(4) == 8."""\n'
    assert extract_examples(prompt, "f") == [
        PromptExample("f(2)", "4"),
        PromptExample("f(3)", "6"),
        PromptExample("f(4)", "8"),
    ]
    assert verify_completion(prompt, "f", "    return x * 2\n").verdict == "passed"


def test_an_example_ending_its_line_with_a_comma_is_read_without_it() -> None:
    # a list of examples, one a line, each ending with a comma: "4," was the tuple (4,),
    # so a right answer failed the check; a tuple written bare stays one
    prompt = 'def f(x):\n    """Doubles x:\n    f(2) == 4,\n    f(3) == 6,\n    """\n'
    assert extract_examples(prompt, "f") == [PromptExample("f(2)", "4"), PromptExample("f(3)", "6")]  # fmt: skip
    assert verify_completion(prompt, "f", "    return x * 2\n").verdict == "passed"
    bare = 'def g(x):\n    """Pairs: g(1) == 1, 2\n    """\n'
    assert extract_examples(bare, "g") == [PromptExample("g(1)", "1, 2")]


def test_input_output_blocks_and_prose_examples() -> None:
    assert extract_examples(IO_AND_PROSE, "pluck") == [
        PromptExample("pluck([4, 2, 3], 1)", "[2, 1]"),
        PromptExample("pluck(arr = [1, 2, 3], k = 2)", "[]"),
        PromptExample("pluck(arr = [5], k = 0)", "[5]"),
        PromptExample("pluck(arr = [7])", "7"),
    ]  # "z" names no parameter of a two-parameter function: skipped


def test_a_prompt_without_examples_or_without_the_function_is_unverifiable() -> None:
    assert extract_examples('def f(x):\n    """Return x."""\n', "f") == []
    assert extract_examples("Write me a poem about the sea.", "f") == []
    verdict = verify_completion('def f(x):\n    """Return x."""\n', "f", "    return x\n")
    assert verdict.verdict == "unverifiable" and verdict.total == 0 and verdict.unverified


@pytest.mark.parametrize(
    ("body", "verdict", "passed"),
    [
        ("    return a + b\n", "passed", 3),
        ("    return a - b if a > 1 else a + b\n", "failed", 2),  # add(2, 3) is wrong
        ("    raise ValueError('no')\n", "failed", 0),
        ("    while True:\n        pass\n", "failed", 0),  # a hang is a failure, not a hang
        ("    print('x' * 10**6)\n", "failed", 0),  # output flooding
        ("  return (\n", "failed", 0),  # does not compile
    ],
)
def test_verification_runs_the_answer_on_the_examples(body: str, verdict: str, passed: int) -> None:
    result = verify_completion(DOCTEST, "add", body, timeout_s=2.0)
    assert (result.verdict, result.passed, result.total) == (verdict, passed, 3)
    assert result.unverified == (verdict == "failed")


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ("import sys\nsys.exit(0)\n", "error: SystemExit(0)"),
        ("raise AssertionError\n", "failed: AssertionError"),
    ],
)
@pytest.mark.parametrize("body", ["    return a + b\n", "    return a * b\n"])
def test_a_result_line_is_read_only_from_a_run_that_passed(
    body: str, ending: str, status: str
) -> None:
    """An answer that prints the checker's result line itself, all examples passed, and
    then ends the program before the examples run: the run did not pass, so the line
    is not its examples' count; the answer fails, right or wrong, and the detail says
    how the run ended."""
    line = _RESULT_MARK + '{"passed": 3, "total": 3}'
    result = verify_completion(DOCTEST, "add", f"{body}print({line!r})\n{ending}", timeout_s=2.0)
    assert (result.verdict, result.passed, result.total) == ("failed", 0, 3)
    assert result.detail.startswith(status)


@pytest.mark.parametrize(
    "line",
    ["{", '{"passed": 1}', '{"passed": 1, "total": 1}', '{"passed": "x", "total": 3}', "[]"],
)
def test_a_result_line_the_answer_rewrote_fails_it_and_raises_nothing(line: str) -> None:
    """A wrong answer that replaces ``sys.stdout`` rewrites the checker's result line:
    one that did not parse raised ``JSONDecodeError`` out of the check (the cascade's
    request with it), and one with another total passed an answer that failed all 3."""
    answer = (
        "    return a - b\nimport sys\nclass Out:\n    def write(self, s):\n"
        f"        sys.__stdout__.write({_RESULT_MARK + line!r} if {_RESULT_MARK!r} in s else s)\n"
        "    def flush(self):\n        sys.__stdout__.flush()\nsys.stdout = Out()\n"
    )
    result = verify_completion(DOCTEST, "add", answer, timeout_s=2.0)
    assert (result.verdict, result.passed, result.total) == ("failed", 0, 3)
    assert "result line" in result.detail


def test_floats_compare_with_a_tolerance_and_types_must_match() -> None:
    prompt = 'def f():\n    """\n    >>> f()\n    [0.3, (1, 2)]\n    """\n'
    assert verify_completion(prompt, "f", "    return [0.1 + 0.2, (1, 2)]\n").verdict == "passed"
    assert verify_completion(prompt, "f", "    return [0.3, [1, 2]]\n").verdict == "failed"


@pytest.mark.parametrize(
    "demo",
    [
        "list = [2, 3]\nprint(add(*list))",
        "len = 3",
        "isinstance = None",
        "float = 0.5",
        "eval = None",
    ],
)
def test_an_answer_that_shadows_builtins_is_checked_with_the_real_ones(demo: str) -> None:
    """The answer's top-level demo code binds a builtin's name: the checking code ran
    with the answer's names and failed a correct answer (or crashed on every example)."""
    answer = f"\ndef add(a, b):\n    return a + b\n\n{demo}\n"
    assert verify_completion(DOCTEST, "add", answer).verdict == "passed"
    wrong = f"\ndef add(a, b):\n    return a * b\n\n{demo}\n"
    assert verify_completion(DOCTEST, "add", wrong).verdict == "failed"


def test_an_entry_point_named_like_the_checkers_own_helpers() -> None:
    """``same`` was the checker's comparison, which the examples then called instead."""
    prompt = 'def same(a: list, b: list) -> bool:\n    """\n    >>> same([1, 2], [2, 1])\n    True\n    >>> same([1], [2])\n    False\n    """\n'  # fmt: skip
    assert verify_completion(prompt, "same", "    return sorted(a) == sorted(b)\n").verdict == "passed"  # fmt: skip
    assert verify_completion(prompt, "same", "    return a == b\n").verdict == "failed"


def test_humaneval_canonical_solutions_pass_their_own_examples() -> None:
    """Extraction fidelity on real prompts: nearly every HumanEval prompt has examples,
    and the reference solution passes them except where the docstring itself is wrong."""
    problems = load_humaneval()
    with_examples = [p for p in problems if extract_examples(p.prompt, p.entry_point)]
    assert len(with_examples) >= 150
    # two at a time, as check_many runs them: each run mostly waits on its own process
    with ThreadPoolExecutor(max_workers=2) as pool:
        verdicts = list(
            pool.map(
                lambda p: verify_completion(p.prompt, p.entry_point, p.canonical_solution).verdict,
                with_examples,
            )
        )
    failing = {p.task_id for p, v in zip(with_examples, verdicts, strict=True) if v != "passed"}
    # 47: median's docstring says 15.0 for 8.0; 116 and 148: wrong examples;
    # 130: "tri(4) = 3" defines the sequence, not the function's result.
    assert failing == {"HumanEval/47", "HumanEval/116", "HumanEval/130", "HumanEval/148"}


def test_cascade_pays_for_both_generations_of_an_escalated_problem(
    tiny_config: AppConfig,
) -> None:
    p0, p2 = (p for p in load_humaneval() if p.task_id in ("HumanEval/0", "HumanEval/2"))
    completions = {p0.task_id: p0.canonical_solution, p2.task_id: "    return 0.0\n"}
    outcomes = {
        "m": {p0.task_id: Outcome(True, 1.0, 1e-6, 4e-7, 10, "passed"),
              p2.task_id: Outcome(False, 2.0, 2e-6, 8e-7, 20, "failed")},
        "h": {p0.task_id: Outcome(True, 5.0, 9e-6, 3e-6, 30, "passed"),
              p2.task_id: Outcome(True, 6.0, 1e-5, 4e-6, 40, "passed")},
    }  # fmt: skip
    loads = {"m": (0.5, 1e-7, 5e-8), "h": (3.0, 2e-6, 1e-6)}
    with RouterLLM(tiny_config) as system:
        r = cascade(system, [p0, p2], completions, "m", "h", outcomes, loads)
    assert r.choices == ["m", "h"] and r.passed == [True, True]
    assert r.gen_kwh == pytest.approx(1e-6 + 2e-6 + 1e-5)  # m on both, h on the escalated one
    assert r.problem_kwh == pytest.approx([1e-6, 2e-6 + 1e-5])
    assert r.gen_s == pytest.approx(1.0 + 2.0 + 6.0)
    assert r.load_kwh == pytest.approx(1e-7 + 2e-6)
    assert r.router_s > 0 and r.router_kwh > 0  # checking the answers is measured
    row = r.row(price_per_kwh=0.2)
    assert row["escalated"] == 0.5 and row["verdicts"] == {
        "passed": 1,
        "failed": 1,
        "unverifiable": 0,
    }


def test_cascade_that_escalates_every_problem_still_loads_the_first_model(
    tiny_config: AppConfig,
) -> None:
    """Both answers of m fail their examples and go to h: no answer of m is kept, but m
    was loaded to make them, so its load is paid with h's, and both generations of each."""
    problems = [p for p in load_humaneval() if p.task_id in ("HumanEval/0", "HumanEval/2")]
    completions = {p.task_id: "    return None\n" for p in problems}
    outcomes = {
        m: {p.task_id: Outcome(m == "h", 1.0, kwh, 1e-7, 10, "x") for p in problems}
        for m, kwh in (("m", 1e-6), ("h", 5e-6))
    }
    loads = {"m": (0.5, 1e-7, 5e-8), "h": (3.0, 2e-6, 1e-6)}
    with RouterLLM(tiny_config) as system:
        r = cascade(system, problems, completions, "m", "h", outcomes, loads)
    assert r.choices == ["h", "h"] and r.passed == [True, True]
    assert r.load_kwh == pytest.approx(1e-7 + 2e-6) and r.load_s == pytest.approx(3.5)
    assert r.gen_kwh == pytest.approx(2 * (1e-6 + 5e-6))
    assert r.gen_co2 == pytest.approx(4 * 1e-7) and r.gen_s == pytest.approx(4.0)


def test_a_gate_that_allows_a_passed_answer_does_not_escalate_it(
    tiny_config: AppConfig,
) -> None:
    """The gate's fold predictors score every problem, a verified one too: HumanEval/0's
    answer (its canonical solution) passes its examples and stays with m though the
    gate allows it; HumanEval/2's fails and goes up."""
    p0, p2 = (p for p in load_humaneval() if p.task_id in ("HumanEval/0", "HumanEval/2"))
    completions = {p0.task_id: p0.canonical_solution, p2.task_id: "    return 0\n"}
    outcomes = {
        m: {p.task_id: Outcome(True, 1.0, kwh, 1e-7, 10, "x") for p in (p0, p2)}
        for m, kwh in (("m", 1e-6), ("h", 5e-6))
    }

    def decide(
        unverified: np.ndarray, overhead_kwh: list[float]
    ) -> tuple[np.ndarray, GateCost, dict]:
        assert unverified.tolist() == [False, True]
        return np.array([True, True]), (0.0, 0.0, 0.0, None), {}

    train = FirstAnswers(np.full(2, -1), np.full(2, 1e-6), np.ones(2), np.ones(2, bool))
    gate = Gate(np.zeros(2, dtype=int), 1, decide, (Checks(2, 1.0, 6e-9, 3e-9, True), train))
    with RouterLLM(tiny_config) as system:
        r = cascade(system, [p0, p2], completions, "m", "h", outcomes, {}, gate, "gated")
    assert r.choices == ["m", "h"]
    assert r.gen_kwh == pytest.approx(2e-6 + 5e-6)


def test_a_gate_weighs_the_unverified_answers_and_its_cost_is_counted(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HumanEval/0's and /2's answers fail their examples; /83's prompt gives none to
    check its answer on: the plain cascade keeps that answer, the gate weighs it too.
    Its routing (the checks and the gate) and its loading say what share of the machine's
    CPU other processes used as they were measured."""
    every_block_read_at(monkeypatch, 0.2)  # the checks, measured here
    ids = ("HumanEval/0", "HumanEval/2", "HumanEval/83")
    problems = [p for p in load_humaneval() if p.task_id in ids]
    assert not extract_examples(problems[2].prompt, problems[2].entry_point)
    completions = {p.task_id: "    return 0\n" for p in problems}
    outcomes = {
        m: {p.task_id: Outcome(m == "h", 1.0, kwh, 1e-7, 10, "x") for p in problems}
        for m, kwh in (("m", 1e-6), ("h", 5e-6))
    }
    seen: list[tuple[np.ndarray, list[float]]] = []

    def decide(
        unverified: np.ndarray, overhead_kwh: list[float]
    ) -> tuple[np.ndarray, GateCost, dict]:
        seen.append((unverified, overhead_kwh))
        return np.array([False, True, True]), (2.0, 3e-9, 1e-9, 0.6), {"gate": {"withheld": 1}}

    # one fold, trained by 3 problems of another set whose checks spent 6e-9 kWh
    train = FirstAnswers(np.full(3, -1), np.full(3, 1e-6), np.ones(3), np.ones(3, bool))
    gate = Gate(np.zeros(3, dtype=int), 1, decide, (Checks(3, 1.0, 6e-9, 3e-9, True), train))
    with RouterLLM(tiny_config) as system:
        plain = cascade(system, problems, completions, "m", "h", outcomes, {})
        loads = {"m": (0.5, 4e-6, 1e-9), "h": (0.5, 7e-6, 1e-9)}
        gated = cascade(system, problems, completions, "m", "h", outcomes, loads, gate, "gated",
                        load_shares={"m": 0.9})  # fmt: skip
    assert plain.choices == ["h", "h", "m"]  # only the failed answers go up
    assert seen[0][0].tolist() == [True, True, True]  # the gate sees every unverified answer
    # ... and what the cascade spends a problem besides generating: the measured checks
    # of its training problems, and loading m, which h alone would not load
    assert seen[0][1] == [pytest.approx(6e-9 / 3 + 4e-6 / 3)]
    checks_kwh = gated.router_kwh - 3e-9
    assert gated.choices == ["m", "h", "h"]
    assert gated.name == "gated" and gated.passed == [False, True, True]
    assert gated.gen_kwh == pytest.approx(3e-6 + 2 * 5e-6)  # m on all, h on the two let through
    assert gated.problem_kwh == pytest.approx([1e-6, 1e-6 + 5e-6, 1e-6 + 5e-6])
    assert gated.router_s > 2.0 and gated.router_kwh > 3e-9  # checking + the gate's own cost
    row = gated.row(price_per_kwh=0.2)
    assert row["escalated"] == pytest.approx(2 / 3)
    # the gate's own line: the run's measured overhead, and what its fold was told
    assert row["gate"] == {
        "withheld": 1,
        "overhead_kwh_per_problem": pytest.approx((checks_kwh + 4e-6) / 3),
        "budgeted_overhead_kwh_per_problem": seen[0][1],
        "overhead_unmeasured": [],
    }
    assert row["verdicts"] == {"passed": 0, "failed": 2, "unverifiable": 1}
    # the checks' seconds at 20 %, the gate's 2 s at 60 %; h's load's share is not known
    checks_s = gated.router_s - 2.0
    routing = row["components"]["router_inference"]
    assert routing["others_cpu_share"] == pytest.approx((0.2 * checks_s + 0.6 * 2.0) / gated.router_s)  # fmt: skip
    assert row["components"]["model_loading"]["others_cpu_share"] == 0.9


def test_gate_threshold_solves_the_most_within_the_budget() -> None:
    """Hand-computed: three failed answers, the second model's energy 3 a problem (12 in
    all), the first model's 1 (4 in all); the problem at p = 0.2 the second model
    does not solve either."""
    p_then = np.array([0.9, 0.5, 0.2, 0.99])
    failed = np.array([True, True, True, False])
    solved = np.array([[0, 1], [0, 1], [0, 0], [1, 1]], dtype=float)
    energy = np.array([[1.0, 3.0]] * 4)
    # 0.6 x 12 = 7.2: room for one escalation (4 + 3), the likeliest
    assert gate_threshold(p_then, failed, solved, energy, 0.6) == 0.9
    # 12: two (4 + 6 = 10), both solved
    assert gate_threshold(p_then, failed, solved, energy, 1.0) == 0.5
    # 24: all three fit, but the third solves nothing more: the cheaper threshold
    assert gate_threshold(p_then, failed, solved, energy, 2.0) == 0.5
    # 2.4: not even the first model alone fits: escalate nothing
    assert gate_threshold(p_then, failed, solved, energy, 0.2) == math.inf
    # what the cascade spends a problem besides generating counts against the budget:
    # 12 - 4 x 0.5 = 10 still holds two escalations, 12 - 4 x 0.6 = 9.6 only one
    assert gate_threshold(p_then, failed, solved, energy, 1.0, overhead_kwh=0.5) == 0.5
    assert gate_threshold(p_then, failed, solved, energy, 1.0, overhead_kwh=0.6) == 0.9


def test_expected_energy_is_a_linear_fit_on_the_given_problems_only() -> None:
    tokens = np.array([[100, 10], [200, 10], [100, 50], [300, 40], [50, 5]], dtype=float)
    kwh = 2.0 * tokens[:, 0] + 5.0 * tokens[:, 1] + 7.0
    kwh[4] = 1e6  # an outlier outside the fit
    fitted = EnergyModel.fit(tokens[:4], kwh[:4])(tokens)
    np.testing.assert_allclose(fitted[:4], kwh[:4])
    assert fitted[4] == pytest.approx(2.0 * 50 + 5.0 * 5 + 7.0)  # predicted, not its own value
    # never below a tenth of the fitted problems' mean energy
    floor = EnergyModel.fit(np.array([[1.0], [2.0]]), np.array([10.0, 1.0]))(
        np.array([[1.0], [2.0], [9.0]])
    )
    assert floor[2] == pytest.approx(0.55)


@pytest.mark.parametrize(
    "line",
    [
        'assert add(2, 3) == 5, "add(2, 3) should be 5"',
        "    assert add(2, 3) == 5, 'wrong sum'  # checked",
        "Your code should pass: assert add(2, 3) == 5, 'wrong sum'",
    ],
)
def test_an_asserts_message_is_not_part_of_the_expected_value(line: str) -> None:
    prompt = f'r"""\nWrite a function to add two numbers.\n{line}\n"""\n'
    assert extract_examples(prompt, "add") == [PromptExample("add(2, 3)", "5")]
    assert verify_completion(prompt, "add", "\ndef add(a, b):\n    return a + b\n").verdict == "passed"  # fmt: skip


PRINTS = '''def greet(name, times=1):
    """Print a greeting, and how many were printed when more than one.
    >>> greet('Bob')
    Hello, Bob!
    >>> greet('Ann', 2)
    Hello, Ann!
    Hello, Ann!
    2
    >>> greet('Eve', 0)
    0
    """
'''


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (
            "    for _ in range(times):\n        print(f'Hello, {name}!')\n    return times if times != 1 else None\n",
            "passed",
        ),  # fmt: skip
        ("    print(f'Hello {name}')\n    return times if times != 1 else None\n", "failed"),
        ("    return f'Hello, {name}!'\n", "failed"),  # doctest would show the quotes
    ],
)
def test_a_doctest_output_may_be_what_the_call_prints(body: str, verdict: str) -> None:
    """As doctest reads it: the printed text, then the result's repr unless None."""
    assert verify_completion(PRINTS, "greet", body).verdict == verdict


def test_only_the_entry_points_own_calls_are_examples() -> None:
    prompt = (
        'def area(r):\n    """Area of a circle of radius r.\n'
        "    For a rectangle: rect_area(2, 3) == 6\n    For a shape: shape.area(1) == 0\n"
        '    area(1) == 3.14159\n    """\n'
    )
    assert extract_examples(prompt, "area") == [PromptExample("area(1)", "3.14159")]


def test_doctests_that_doctest_would_skip_or_that_elide_are_not_examples() -> None:
    prompt = (
        'def first(n):\n    """The first n squares.\n'
        "    >>> first(20)  # doctest: +ELLIPSIS\n    [0, 1, 4, ..., 361]\n"
        "    >>> first(10**9)  # doctest: +SKIP\n    [0, 1, 4, 9]\n"
        "    >>> first(3)\n    [0, 1, 4]\n"
        "    >>> '.' * len(first(3))\n    '...'\n"  # a value with dots
        '    """\n'
    )
    assert [e.call for e in extract_examples(prompt, "first")] == ["first(3)", "'.' * len(first(3))"]  # fmt: skip
    assert verify_completion(prompt, "first", "    return [i * i for i in range(n)]\n").verdict == "passed"  # fmt: skip
