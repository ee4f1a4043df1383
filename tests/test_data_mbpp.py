"""MBPP files (both of Google's formats) read as HumanEval-format problems, whose
reference solutions really pass their tests in the sandbox and whose prompt's
example is what the cascade checks."""

from __future__ import annotations

import ast
import gzip
import json
import logging
from pathlib import Path

import pytest

from routerllm.data.mbpp import load_code_problems, load_mbpp
from routerllm.eval.prompt_examples import extract_examples, verify_completion
from routerllm.eval.sandbox import check_problem
from routerllm.exceptions import DataError

# Rows as mbpp.jsonl writes them (code with \r\n and tabs, a helper function, setup code).
ROWS = [
    {
        "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
        "task_id": 2,
        "test_setup_code": "",
        "test_list": [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
        ],
        "challenge_test_list": [],
    },
    {
        "text": "Write a python function to check whether the two numbers differ at one bit position only or not.",
        "code": "def is_Power_Of_Two (x): \r\n\treturn x and (not(x & (x - 1))) \r\ndef differ_At_One_Bit_Pos(a,b): \r\n\treturn is_Power_Of_Two(a ^ b)",
        "task_id": 6,
        "test_setup_code": "",
        "test_list": [
            "assert differ_At_One_Bit_Pos(13,9) == True",
            "assert differ_At_One_Bit_Pos(15,8) == False",
        ],
        "challenge_test_list": ["assert differ_At_One_Bit_Pos(2, 3) == True"],
    },
    {
        "text": "Write a function that adds the offset.",
        "code": "def add_offset(x):\r\n  return x + OFFSET",
        "task_id": 7,
        "test_setup_code": "OFFSET = 10",
        "test_list": ["assert add_offset(1) == 11", "assert add_offset(-10) == 0"],
        "challenge_test_list": [],
    },
]
# A class problem: its tests call no function the code defines.
CLASS_ROW = {
    "text": "Write a class for a pair.",
    "code": "class Pair(object):\r\n  def __init__(self, a):\r\n    self.a = a",
    "task_id": 9,
    "test_setup_code": "",
    "test_list": ["assert Pair(1).a == 1"],
    "challenge_test_list": [],
}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mbpp_problems_become_humaneval_problems_whose_solutions_pass(tmp_path: Path) -> None:
    problems = load_mbpp(write_jsonl(tmp_path / "mbpp.jsonl", ROWS))
    assert [p.task_id for p in problems] == ["Mbpp/2", "Mbpp/6", "Mbpp/7"]
    first = problems[0]
    assert first.entry_point == "similar_elements"
    assert first.prompt == (
        '"""\nWrite a function to find the similar elements from the given two tuple lists.\n'
        'assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"""\n'
    )
    # the helper defined first is not the entry point: the tests call the other one
    assert problems[1].entry_point == "differ_At_One_Bit_Pos"
    for p in problems:
        assert "\r" not in p.canonical_solution
        assert check_problem(p, p.canonical_solution).status == "passed"
        # every test of test_list is run, and the challenge tests are not
        assert p.test.count("assert ") == 2
    wrong = "def add_offset(x):\n  return x"
    assert check_problem(problems[2], wrong).status == "failed"


def test_the_prompt_states_one_example_the_cascade_checks(tmp_path: Path) -> None:
    p = load_mbpp(write_jsonl(tmp_path / "mbpp.jsonl", ROWS))[0]
    examples = extract_examples(p.prompt, p.entry_point)
    assert [(e.call, e.expected) for e in examples] == [
        ("similar_elements((3, 4, 5, 6),(5, 7, 4, 10))", "(4, 5)")
    ]
    good = "\n" + p.canonical_solution
    bad = "\ndef similar_elements(a, b):\n    return ()\n"
    assert verify_completion(p.prompt, p.entry_point, good).verdict == "passed"
    assert verify_completion(p.prompt, p.entry_point, bad).verdict == "failed"


def test_sanitized_format_and_format_detection(tmp_path: Path) -> None:
    sanitized = [
        {
            "source_file": "x",
            "task_id": 2,
            "prompt": "Write a function to find the shared elements from the given two lists.",
            "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
            "test_imports": ["import math"],
            "test_list": [
                "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))"
            ],
        }
    ]
    path = tmp_path / "sanitized-mbpp.json"
    path.write_text(json.dumps(sanitized))
    (p,) = load_code_problems(path)
    assert p.entry_point == "similar_elements" and p.test.startswith("import math")
    assert check_problem(p, p.canonical_solution).status == "passed"
    # the example wraps the call in set(...): not a form the cascade reads, so unverifiable
    assert extract_examples(p.prompt, p.entry_point) == []
    # HumanEval files and the packaged default still load as HumanEval
    assert load_code_problems()[0].task_id == "HumanEval/0"
    he = tmp_path / "he.jsonl"
    he.write_text(json.dumps(load_code_problems()[0].__dict__) + "\n")
    assert load_code_problems(he)[0].task_id == "HumanEval/0"


def test_problems_without_an_entry_point_are_left_out_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        problems = load_mbpp(write_jsonl(tmp_path / "m.jsonl", [*ROWS, CLASS_ROW]))
    assert len(problems) == 3
    assert "left out 1 problem" in caplog.text and "9" in caplog.text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"text": "x", "code": "def f(): pass", "test_list": []}\n', "non-empty test_list"),
        ('{"text": "x", "test_list": ["assert f() == 1"]}\n', "lacks a task"),
        ('{"text": "x",\n', "line 1 is not valid JSON"),
        ("[1, 2]", "problem 1 is not a JSON object"),
        # the first row lacks test_list: still MBPP by its fields, and named by its line
        (
            '{"text": "x", "code": "def f(): pass"}\n' + json.dumps(ROWS[0]) + "\n",
            "line 1 lacks a task",
        ),
        (json.dumps(ROWS[0]) + "\n\n" + json.dumps({**ROWS[1], "code": 5}) + "\n", "line 3 lacks"),
        (
            json.dumps({**ROWS[0], "test_imports": 5}) + "\n",
            "test_imports must be a string or a list",
        ),
        (json.dumps({**ROWS[0], "test_imports": ["import re", 5]}) + "\n", "test_imports must be"),
        (json.dumps({**ROWS[0], "test_setup_code": 5}) + "\n", "test_setup_code must be a string"),
        (
            json.dumps({**ROWS[0], "test_list": ["assert similar_elements((1,), (1,))", "f(("]}),
            "'Mbpp/2': test does not compile",
        ),
        (
            json.dumps({**ROWS[0], "text": "Write \ud800."}) + "\n",
            "'Mbpp/2': prompt is not valid UTF-8",
        ),
        (json.dumps(CLASS_ROW) + "\n", "no MBPP problems"),
        # a comparison without assert is computed and thrown away: every answer passes it
        (
            json.dumps(
                {
                    **ROWS[0],
                    "test_list": [*ROWS[0]["test_list"], "similar_elements((1,), (1,)) == (1,)"],
                }
            ),
            "'Mbpp/2': test 3 of test_list has no assert",
        ),
        (
            json.dumps({**ROWS[0], "code": "async def similar_elements(a, b):\n  return a"}),
            "'Mbpp/2': entry_point 'similar_elements' is an async def",
        ),
        (json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[0]) + "\n", "duplicate task_id"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        load_code_problems(path)


def test_reference_code_nested_too_deeply_to_parse_still_names_its_function(
    tmp_path: Path,
) -> None:
    """Python's parser fails on such code with a RecursionError, which was a traceback."""
    code = "def similar_elements(a, b):\n  return " + "a." * 50_000 + "b\n"
    path = write_jsonl(tmp_path / "mbpp.jsonl", [{**ROWS[0], "code": code}])
    assert load_code_problems(path)[0].entry_point == "similar_elements"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_code_problems(tmp_path / "nope.jsonl")


def test_a_function_named_check_is_not_shadowed_by_the_harness(tmp_path: Path) -> None:
    row = {
        "text": "Write a function to check whether a string is binary.",
        "code": "def check(s):\r\n    return set(s) <= {'0', '1'}",
        "task_id": 349,
        "test_setup_code": "",
        "test_list": ['assert check("0101") == True', 'assert check("name0") == False'],
    }
    (p,) = load_mbpp(write_jsonl(tmp_path / "m.jsonl", [row]))
    assert p.entry_point == "check"
    assert check_problem(p, p.canonical_solution).status == "passed"
    assert check_problem(p, "def check(s):\n    return True").status == "failed"
    assert check_problem(p, "def other(s):\n    return True").status == "error"  # not defined


@pytest.mark.parametrize("imports", [None, "import math", ["import math"]])
def test_test_imports_null_a_string_or_a_list(tmp_path: Path, imports: object) -> None:
    # A string is taken as the import code itself, as test_setup_code is.
    row = {
        "prompt": "Write a function to take a square root.",
        "code": "def root(x):\n    return sqrt(x)",
        "task_id": 5,
        "test_list": ["assert root(4) == 2"],
        "test_setup_code": "from math import sqrt",
        "test_imports": imports,
    }
    (p,) = load_code_problems(write_jsonl(tmp_path / "m.jsonl", [row]))
    assert p.test.startswith("import math\nfrom math import sqrt\n" if imports else "from math")
    assert check_problem(p, p.canonical_solution).status == "passed"


def test_mbpp_rows_as_a_gzipped_file_and_a_pretty_printed_array(tmp_path: Path) -> None:
    expected = load_mbpp(write_jsonl(tmp_path / "mbpp.jsonl", ROWS))
    packed = tmp_path / "mbpp.jsonl.gz"
    packed.write_bytes(gzip.compress((tmp_path / "mbpp.jsonl").read_bytes()))
    assert load_code_problems(packed) == expected
    array = tmp_path / "mbpp.json"
    array.write_text(json.dumps(ROWS, indent=2))
    assert load_code_problems(array) == expected


@pytest.mark.parametrize(
    "text, result, verdict",
    [
        ('the string """', '"""', "passed"),
        # both kinds: the double quotes are escaped, which the example reader does not read
        ("""both \"\"\" and ''' quotes""", "'''", "unverifiable"),
    ],
)
def test_a_task_that_quotes_triple_quotes_keeps_a_valid_prompt(
    tmp_path: Path, text: str, result: str, verdict: str
) -> None:
    row = {
        "text": f"Write a function returning {text}.",
        "code": f"def q():\n    return {result!r}",
        "task_id": 3,
        "test_setup_code": "",
        "test_list": [f"assert q() == {result!r}"],
    }
    (p,) = load_mbpp(write_jsonl(tmp_path / "m.jsonl", [row]))
    assert text in ast.literal_eval(p.prompt)  # the docstring holds the task as written
    assert check_problem(p, p.canonical_solution).status == "passed"
    good = "\n" + p.canonical_solution
    assert verify_completion(p.prompt, p.entry_point, good).verdict == verdict


def test_a_first_test_with_backslashes_is_shown_verbatim_in_a_valid_prompt(tmp_path: Path) -> None:
    """A test holding a backslash (a raw-string regex, an escaped newline) went into the
    prompt's docstring as it was: ``r"\\x"`` made the prompt invalid Python (a truncated
    \\x escape), so that the whole file was refused, and ``'a\\nb'`` was a real line break
    in the docstring. The docstring is raw where the task has a backslash: its text is
    the test's source, as the model and the cascade read it."""
    row = {
        **ROWS[0],
        "text": "Write a function that counts the backslashes in a string.",
        "code": "def count_backslashes(s):\r\n  return s.count(chr(92))",
        "test_list": [
            'assert count_backslashes(r"\\x\\d") == 2',
            "assert count_backslashes('a\\nb') == 0",
        ],
    }
    problem = load_mbpp(write_jsonl(tmp_path / "mbpp.jsonl", [row]))[0]
    docstring = ast.literal_eval(problem.prompt.strip())
    assert docstring.splitlines()[-1] == row["test_list"][0]
    assert check_problem(problem, problem.canonical_solution).status == "passed"


def test_load_mbpp_takes_the_packages_the_sandbox_is_given(tmp_path: Path) -> None:
    """A test importing a package is refused, with the advice to name it, and loads once
    named, as from load_code_problems."""
    path = write_jsonl(tmp_path / "m.jsonl", [{**ROWS[0], "test_imports": ["import numpy"]}])
    with pytest.raises(DataError, match=r"test imports numpy, .*packages=\['numpy'\]"):
        load_mbpp(path)
    (problem,) = load_mbpp(path, packages=("numpy",))
    assert problem.test.startswith("import numpy\n")
