"""train-gate checks each stored answer of a run in the sandbox once: a later call on the
same answers reads each verdict from the store of checks (``eval/kept_checks.py``) and
bills what measuring its check cost, never less; a changed answer, other packages, a
meter of another method, a damaged or unwritable store cost a check, never a verdict."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from routerllm.carbon.meter import NullMeter
from routerllm.data.humaneval import load_humaneval
from routerllm.eval import sandbox
from routerllm.eval.result_store import ResultStore
from routerllm.gate import EscalationGate

from .test_cascade_gate import _fail_once
from .test_result_store import ROW

LADDER = ["medium", "heavy"]
#: problems whose prompts give examples (each check runs a sandboxed process)
PROBLEMS = 8


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of checks of this test's own (not the session's, which other tests fill)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ROUTERLLM_CACHE", str(cache))
    return cache / "answer_checks.json"


def _run(folder: Path) -> Path:
    """A run of the first ``PROBLEMS`` HumanEval problems: the medium model's answer the
    canonical solution on every other problem (it passes its examples), ``return None``
    on the rest (it fails them), with its states of the prompts."""
    problems = load_humaneval()[:PROBLEMS]
    rng = np.random.default_rng(0)
    store = ResultStore(folder / "results.sqlite")
    store.add_problems(problems)
    for i, p in enumerate(problems):
        for m in LADDER:
            completion = p.canonical_solution if i % 2 == 0 else "    return None\n"
            passed = m == "heavy" or i % 2 == 0
            row = ROW | {"model": m, "task_id": p.task_id, "completion": completion,
                         "passed": passed, "status": "passed" if passed else "failed",
                         "gen_kwh": 1e-5 * (i + 1), "method": "codecarbon:load-estimate"}  # fmt: skip
            store.add(row, rng.normal(size=4).tolist() if m == "medium" else None)
    store.close()
    return folder


@contextmanager
def _sandbox_runs() -> Iterator[mock.MagicMock]:
    """Counts the programs the sandbox starts (each a real process)."""
    with mock.patch.object(sandbox, "_start", wraps=sandbox._start) as start:
        yield start


def _gate(run: Path, meter: Any = None, **options: Any) -> tuple[EscalationGate, int]:
    """train-gate's gate on ``run``, and how many programs the sandbox ran for it."""
    from routerllm.eval.transfer import gate_from_run

    with _sandbox_runs() as runs:
        gate = gate_from_run(run, LADDER, 0.6, folds=2, meter=meter, **options)
    return gate, runs.call_count


def _same_gate(a: EscalationGate, b: EscalationGate) -> None:
    assert a.threshold == b.threshold
    for key in a.calibration:
        assert np.array_equal(a.calibration[key], b.calibration[key]), key
    assert a.on_training() == b.on_training()


def test_a_second_train_gate_on_a_run_runs_no_check_and_bills_what_the_first_measured(
    tmp_path: Path, own_store: Path
) -> None:
    """Each call ran every answer in the sandbox again (a process each, 40 for the report's
    re-reading test): now the second makes the same gate, from the kept verdicts, and
    bills the checks the energy the first measured, with a meter of the same method."""
    from routerllm.carbon.codecarbon_meter import CodeCarbonMeter

    run = _run(tmp_path / "run")
    meter = CodeCarbonMeter("FRA")
    try:
        first, checked = _gate(run, meter)
        again, rechecked = _gate(run, meter)
    finally:
        meter.close()
    assert checked == PROBLEMS and rechecked == 0
    assert first.about["checks_kept"] == 0 and again.about["checks_kept"] == PROBLEMS
    assert first.check_kwh > 0  # measured by CodeCarbon (a load-based estimate here)
    _same_gate(first, again)
    assert again.check_kwh == pytest.approx(first.check_kwh, rel=1e-12)
    # every other answer passes its examples: the unverified ones are the others
    assert again.calibration["unverified"].tolist() == [i % 2 == 1 for i in range(PROBLEMS)]
    # kept: each check's share of the block's measured energy, by its duration
    kept = json.loads(own_store.read_text(encoding="utf-8"))["checks"].values()
    assert sum(e["kwh"] for e in kept) == pytest.approx(first.check_kwh * PROBLEMS, rel=1e-12)
    assert all(e["method"] == meter.method and e["seconds"] > 0 for e in kept)
    # another process's meter of the same method (a train-gate run again) reads them too
    other = CodeCarbonMeter("FRA")
    try:
        subset, runs = _gate(run, other, only={f"HumanEval/{i}" for i in range(6)})
    finally:
        other.close()
    assert runs == 0 and subset.about["checks_kept"] == 6


def test_a_changed_answer_is_checked_again_and_the_others_are_not(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    first, checked = _gate(run)
    assert checked == PROBLEMS
    problems = load_humaneval()[:PROBLEMS]
    with closing(sqlite3.connect(run / "results.sqlite")) as db, db:
        db.execute("UPDATE generations SET completion = ? WHERE model = 'medium' AND task_id = ?",
                   (problems[1].canonical_solution, problems[1].task_id))  # fmt: skip
    again, rechecked = _gate(run)
    assert rechecked == 1
    assert again.calibration["unverified"].tolist() == [i % 2 == 1 and i != 1 for i in range(PROBLEMS)]  # fmt: skip


def test_a_kept_check_never_bills_less_than_measuring_it(tmp_path: Path, own_store: Path) -> None:
    """Checks kept with carbon tracking off (0 kWh, not measured) are not read by a call
    that measures: run again, measured; and a block CodeCarbon failed to measure keeps
    nothing (its 0 kWh would be billed as measured)."""
    from routerllm.carbon.codecarbon_meter import CodeCarbonMeter

    run = _run(tmp_path / "run")
    off, checked = _gate(run, NullMeter())
    assert checked == PROBLEMS and off.check_kwh == 0
    assert _gate(run, NullMeter())[1] == 0  # tracking off again: kept
    meter = CodeCarbonMeter("FRA")
    try:
        _fail_once(meter)  # the checks' block
        failed, checked = _gate(run, meter)
        assert checked == PROBLEMS and failed.about["check_kwh_estimated"] is True
        measured, checked = _gate(run, meter)  # nothing was kept of the failed block
        assert checked == PROBLEMS and measured.check_kwh > 0
        assert measured.about["check_kwh_estimated"] is False
        kept, checked = _gate(run, meter)
    finally:
        meter.close()
    assert checked == 0 and kept.check_kwh == pytest.approx(measured.check_kwh, rel=1e-12)
    assert _gate(run, NullMeter())[1] == 0  # both methods' checks are kept


def test_other_packages_are_another_check(tmp_path: Path) -> None:
    """The check's packages (those a run names for its sandbox) are part of what an answer
    is kept by: a check that may import numpy is not the standard library's."""
    from routerllm.eval.transfer import load_training_run

    run = load_training_run(_run(tmp_path / "run"), LADDER, "medium", set(), "--run")
    idx = range(4)
    for packages, runs in (((), 4), (("numpy",), 4), (("numpy",), 0), ((), 0)):
        with _sandbox_runs() as started:
            checks = run.checked(idx, NullMeter(), packages)
        assert started.call_count == runs, packages
        assert checks.kept == 4 - runs
        assert checks.unverified.tolist() == [False, True, False, True]


def test_the_store_of_checks_is_found_by_everything_that_can_change_a_verdict() -> None:
    from routerllm.eval.kept_checks import answer_key

    base = ("def f(x):\n    '''>>> f(1)\n    1\n    '''\n", "f", "    return x\n", (), 5.0, "none")
    key = answer_key(*base)
    assert key is not None and answer_key(*base) == key
    for i, other in enumerate([base[0] + " ", "g", base[2] + "\n", ("numpy",), 4.0, "codecarbon:measured"]):  # fmt: skip
        changed = list(base)
        changed[i] = other
        assert answer_key(*changed) != key, i  # type: ignore[arg-type]


def test_a_damaged_store_costs_a_check_never_a_verdict(tmp_path: Path, own_store: Path) -> None:
    """Damaged whole (cut, not JSON, nested past the recursion limit, not an object,
    another format), every answer is checked again; one entry damaged (its verdict edited,
    a field gone), that answer; the checks made again are kept."""
    from routerllm.eval.transfer import load_training_run

    run_dir = _run(tmp_path / "run")
    first, _ = _gate(run_dir)
    run = load_training_run(run_dir, LADDER, "medium", set(), "--run")
    text = own_store.read_text(encoding="utf-8")
    data = json.loads(text)
    key = next(iter(data["checks"]))
    entry = data["checks"][key]
    flipped = "failed" if entry["verdict"] == "passed" else "passed"
    damages = {
        "cut": text[: len(text) // 2],
        "not json": "{checks: ",
        "nested": "[" * 100_000 + "]" * 100_000,
        "a list": "[]",
        "another format": json.dumps(data | {"format": 99}),
        "an entry edited": json.dumps(
            data | {"checks": data["checks"] | {key: entry | {"verdict": flipped}}}
        ),  # fmt: skip
        "a field gone": json.dumps(
            data
            | {"checks": data["checks"] | {key: {k: v for k, v in entry.items() if k != "kwh"}}}
        ),  # fmt: skip
    }
    # the first two answers (one passes, one fails; the entry damaged is the first's): a
    # sandboxed program each, where the run's eight would cost 50 for the same damages
    idx = range(2)
    for damage, damaged in damages.items():
        own_store.write_text(damaged, encoding="utf-8")
        with _sandbox_runs() as started:
            checks = run.checked(idx, NullMeter())
        assert started.call_count == (1 if damage in ("an entry edited", "a field gone") else len(idx)), damage  # fmt: skip
        assert checks.unverified.tolist() == first.calibration["unverified"][:2].tolist(), damage
        assert run.checked(idx, NullMeter()).kept == len(idx), damage
    own_store.write_text(damages["an entry edited"], encoding="utf-8")
    again, checked = _gate(run_dir)
    assert checked == 1
    _same_gate(first, again)


def test_an_unwritable_store_costs_a_check_each_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A cache folder that cannot be made (a file in its way, as a read-only home is)."""
    (tmp_path / "blocked").write_text("a file", encoding="utf-8")
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "blocked" / "cache"))
    run = _run(tmp_path / "run")
    first, checked = _gate(run)
    again, rechecked = _gate(run)
    assert checked == rechecked == PROBLEMS
    _same_gate(first, again)
