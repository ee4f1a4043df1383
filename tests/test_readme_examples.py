"""The README's examples, as users copy them: every ```yaml block loads with the real
config loader, every import of its ```python blocks exists, the Python API examples run
as written on the tiny GGUF (only the config's name replaced), a budget's refusal printed in
one line by each, and the benchmarks' flags
it lists are flags of those scripts. Its ``routerllm`` command lines are parsed in
test_readme_benchmarks.py."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from routerllm.config import load_config

from .conftest import tiny_config_dict, tiny_model, write_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# the model names the examples use, on the tiny GGUF
LADDER = (("smollm2-135m", "light", 0.135), ("qwen2.5-coder-0.5b", "medium", 0.49),
          ("qwen2.5-coder-1.5b", "heavy", 1.54))  # fmt: skip


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def test_the_readme_has_the_examples_these_tests_check() -> None:
    assert len(_blocks("yaml")) >= 7
    assert len(_blocks("python")) >= 4


def _ladder_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    models = [tiny_model(name, tier, params) for name, tier, params in LADDER]
    return tiny_config_dict(tmp_path, models=models, **overrides)


@pytest.mark.parametrize("index", range(len(_blocks("yaml"))))
def test_every_readme_config_snippet_loads(
    tmp_path: Path, index: int, caplog: pytest.LogCaptureFixture
) -> None:
    """As written, without a warning (a Python one or a logged one): a snippet that
    loads only with a warning teaches a setting the code takes otherwise."""
    snippet = yaml.safe_load(_blocks("yaml")[index])
    data = _ladder_config(tmp_path)
    if isinstance(snippet, list):  # a model entry, in place of the ladder's of its name
        (entry,) = snippet
        assert entry["gguf"]["sha256"] == "...", "the entry's gguf is no longer placeholders"
        entry["gguf"] = {"path": data["models"][0]["gguf"]["path"], "requantize": "Q8_0"}
        data["models"] = [entry if m["name"] == entry["name"] else m for m in data["models"]]
    else:
        data.update(snippet)
    path = write_config(tmp_path, data)
    with warnings.catch_warnings(record=True) as warned, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        load_config(path)
    assert not [str(w.message) for w in warned], "a README config snippet warns"
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_every_import_of_the_readme_python_blocks_exists() -> None:
    imports = re.findall(r"^\s*from (routerllm[\w.]*) import ([\w, ]+)", "".join(_blocks("python")), re.M)  # fmt: skip
    assert len(imports) >= 2
    for module, names in imports:
        for name in names.replace(" ", "").split(","):
            assert hasattr(__import__(module, fromlist=[name]), name), (
                f"from {module} import {name}"
            )


#: The examples that build a system of the packaged "local" config: the API's, asyncio's
#: with the budgets and report, and the cascade's (which reads a task.py of the cwd)
API_EXAMPLES = [b for b in _blocks("python") if "RouterLLM.from_config" in b or "config.cascade.enabled = True" in b]  # fmt: skip
#: A function stub stating an example: the tiny model's answer fails it, and the cascade
#: escalates up the ladder
TASK = '''def add(a: int, b: int) -> int:
    """Return the sum of a and b.

    >>> add(2, 3)
    5
    """
'''


def test_the_readme_has_its_three_python_api_examples() -> None:
    assert len(API_EXAMPLES) == 3  # the API's, asyncio's with the budgets and report, the cascade's
    assert "cascade.enabled = True" in API_EXAMPLES[2]


def _run_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int, config: dict[str, Any]) -> str:  # fmt: skip
    """What the example prints, run as written on ``config`` (only its name replaced), in a
    folder holding the cascade's task.py."""
    example = API_EXAMPLES[index]
    path = write_config(tmp_path, config)
    (tmp_path / "task.py").write_text(TASK, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(example.replace('"local"', repr(str(path))), "README.md", "exec"), {})
    return out.getvalue()


@pytest.mark.parametrize("index", range(len(API_EXAMPLES)))
def test_the_readme_python_api_examples_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    # budgets, as the packaged local config has: the second example prints their state
    budgets = {"co2_kg": {"per_request": 0.001, "hourly": 0.05, "daily": 1.0}}
    config = _ladder_config(tmp_path, carbon={"enabled": index == 1}, budgets=budgets if index == 1 else {})  # fmt: skip
    out = _run_example(tmp_path, monkeypatch, index, config)
    if index == 1:  # the answer, the budgets' windows, then the report of the one request
        lines = out.splitlines()
        assert "'window': 'hourly'" in lines[-2] and lines[-1].startswith("1 ")
        assert "'violations'" in lines[-1]
    else:
        assert "qwen2.5-coder" in out or "smollm2-135m" in out
    if index == 2:  # the answering model and its reason
        assert out.splitlines()[0].split()[0] in {name for name, _, _ in LADDER}


@pytest.mark.parametrize("index", range(len(API_EXAMPLES)))
def test_the_readme_python_api_examples_print_a_budgets_refusal_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """On a busy shared machine CodeCarbon's whole-machine figures put even the smallest
    model's prediction over the packaged per-request budget (an audit, 2026-12-07: 2.46 g
    predicted against 1 g): the README's own code printed a traceback where it did not catch
    BudgetExceededError (its first and cascade examples, until 2026-12-07). A per-request
    limit below any prediction refuses every request so here."""
    budgets = {"co2_kg": {"per_request": 1e-12}}
    out = _run_example(tmp_path, monkeypatch, index, _ladder_config(tmp_path, budgets=budgets))
    refusal = out.splitlines()[0]
    assert "even the smallest model: smollm2-135m is predicted to spend" in refusal
    assert "more than the" in refusal
    if index != 1:  # the asyncio example goes on to print the budgets and the report
        assert out.splitlines() == [refusal]


def _benchmark_source(script: Path) -> str:
    """The script's text and that of the benchmarks/ modules it imports (the outcome
    benchmarks take their common flags from outcome_data.py)."""
    text = script.read_text(encoding="utf-8")
    local = set(re.findall(r"^from (\w+) import", text, re.M))
    return text + "".join(
        (script.parent / f"{m}.py").read_text(encoding="utf-8")
        for m in sorted(local)
        if (script.parent / f"{m}.py").exists()
    )


def test_every_benchmark_flag_the_readme_lists_is_the_scripts() -> None:
    listed = re.findall(r"`(benchmarks/\w+\.py)([^`]*)`", README)
    assert len(listed) >= 20
    for script, usage in listed:
        source = _benchmark_source(ROOT / script)
        for flag in re.findall(r"--[a-z][\w-]*", usage):
            assert f'"{flag}"' in source, f"{script} takes no {flag}"
