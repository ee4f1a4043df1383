"""The HumanEval result store's own contract, apart from a run: a closed store."""

from __future__ import annotations

import gc
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.data.humaneval import load_humaneval
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError

from .conftest import sqlite_held_by_another_process

ROW = {
    "model": "m", "task_id": "HumanEval/0", "raw": "x", "completion": "x",
    "prompt_tokens": 3, "completion_tokens": 1, "gen_s": 0.1, "gen_kwh": 1e-6, "gen_co2": 4e-7,
    "method": "estimate", "status": "passed", "detail": "", "passed": True,
}  # fmt: skip

USES: dict[str, Callable[[ResultStore], Any]] = {
    "use_problem_set": lambda s: s.use_problem_set("set"),
    "problem_set": lambda s: s.problem_set(),
    "models": lambda s: s.models(),
    "done": lambda s: s.done("m"),
    "use_style": lambda s: s.use_style("m", {"mode": "chat", "max_new_tokens": 8}),
    "check_style": lambda s: s.check_style("m", {"mode": "chat", "max_new_tokens": 8}),
    "use_country": lambda s: s.use_country("FRA"),
    "country": lambda s: s.country(),
    "use_model_source": lambda s: s.use_model_source("m", '{"backend": "llama_cpp"}'),
    "styles": lambda s: s.styles(),
    "add_problems": lambda s: s.add_problems(load_humaneval()[:1]),
    "problems": lambda s: s.problems(),
    "add": lambda s: s.add(ROW, [0.5, 0.25]),
    "prompt_states": lambda s: s.prompt_states("m", ["HumanEval/0"]),
    "add_load": lambda s: s.add_load("m", 1.0, 1e-6, 4e-7),
    "load_of": lambda s: s.load_of("m"),
    "completions": lambda s: s.completions("m"),
    "outcomes": lambda s: s.outcomes("m"),
}


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_a_closed_store_says_so_and_keeps_its_data(
    tmp_path: Path, use: Callable[[ResultStore], Any]
) -> None:
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add(ROW)
    store.close()
    with pytest.raises(RouterLLMError, match=f"the result store {path} is closed"):
        use(store)
    store.close()  # closing again is harmless
    reopened = ResultStore(path, read_only=True)
    assert reopened.models() == ["m"] and reopened.completions("m") == {"HumanEval/0": "x"}
    reopened.close()


def test_a_write_interrupted_as_it_began_says_nothing_once_the_store_is_closed(
    tmp_path: Path,
) -> None:
    """Ctrl-C between a write's transaction opening and its statements (``humaneval``
    interrupted as it stored an answer) leaves the transaction never entered; the run
    closes the store. Nothing may then be said when the abandoned write is freed: it
    once printed "Exception ignored in: <generator object ResultStore._writing ...>"
    and a traceback (a closed database) under the "interrupted" line."""
    unraised: list[BaseException | None] = []
    store = ResultStore(tmp_path / "results.sqlite")
    store.add(ROW)
    writing = store._writing()
    writing.__enter__()  # where the KeyboardInterrupt came: its `with` never entered
    store.close()
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraised.append(u.exc_value)
    try:
        del writing
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraised == []
    reopened = ResultStore(tmp_path / "results.sqlite", read_only=True)
    assert reopened.completions("m") == {"HumanEval/0": "x"}
    reopened.close()


WRITES = ("use_problem_set", "use_style", "use_country", "use_model_source", "add_problems", "add", "add_load")  # fmt: skip


@pytest.mark.parametrize("write", WRITES)
def test_a_store_opened_read_only_refuses_every_write(tmp_path: Path, write: str) -> None:
    path = tmp_path / "results.sqlite"
    with_data = ResultStore(path)
    with_data.add(ROW)
    with_data.close()
    before = path.read_bytes()
    store = ResultStore(path, read_only=True, option="--train-on")
    with pytest.raises(RouterLLMError, match=r"\(--train-on\) was opened read-only: nothing"):
        USES[write](store)
    store.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (lambda s: s.use_style("m", ["chat"]), "a prompting style is a dict of JSON values"),
        (lambda s: s.use_style("m", {"x": object()}), "a prompting style is a dict"),
        (lambda s: s.use_style("m", {"x": float("nan")}), "a prompting style is a dict"),
        (lambda s: s.use_style(5, {}), "a model's name must be a non-empty string"),
        (lambda s: s.use_problem_set(None), "a problem set's name must be a non-empty string"),
        (lambda s: s.use_country(""), "a country code must be a non-empty string"),
        (lambda s: s.check_style("m", ["chat"]), "a prompting style is a dict of JSON values"),
        (lambda s: s.add_problems(["x"]), "problems must be HumanEvalProblem items, got 'x'"),
        (lambda s: s.add_problems(None), "problems must be a list of problems"),
        (lambda s: s.prompt_states("m", "HumanEval/0"), "task_ids must be a list of task ids"),
    ],
)
def test_wrong_arguments_are_clear_errors(
    tmp_path: Path, use: Callable[[ResultStore], Any], message: str
) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    with pytest.raises(RouterLLMError, match=message):
        use(store)
    assert store.models() == [] and store.styles() == {} and store.problem_set() is None
    assert store.country() is None


def test_a_stored_style_without_the_usual_keys_is_compared(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.use_style("m", {"custom": 1})
    store.add(ROW)
    with pytest.raises(RouterLLMError, match=r"\(None mode, .*differs in custom, mode"):
        store.use_style("m", {"mode": "chat"})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            "UPDATE generations SET gen_kwh = 'abc'",
            "generations of m HumanEval/0: gen_kwh is 'abc'",
        ),
        ("UPDATE generations SET gen_s = NULL", "generations of m HumanEval/0: gen_s is None"),
        ("UPDATE generations SET passed = 7", "generations of m HumanEval/0: passed is 7"),
        ("UPDATE loads SET load_kwh = NULL", "loads of m: load_kwh is None"),
        ("UPDATE styles SET style = '{bad'", "styles of m: style is '{bad', not a JSON object"),
        ("UPDATE prompt_states SET state = x'0102'", r"prompt_states of m HumanEval/0: state is"),
    ],
)
def test_a_corrupt_stored_value_is_refused_on_opening_and_nothing_is_lost(
    tmp_path: Path, edit: str, message: str
) -> None:
    """A value edited by hand or another program: a clear error before any model runs
    (a traceback in the report, after the run, before), the file unchanged."""
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.use_style("m", {"mode": "chat"})
    store.add(ROW, [0.5, 0.25])
    store.add_load("m", 1.0, 1e-6, 4e-7)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute(edit)
    db.close()
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(RouterLLMError, match=f"cannot be opened \\({message}"):
            ResultStore(path, read_only=read_only)
    assert path.read_bytes() == before


def test_re_reporting_a_subset_keeps_the_order_train_gate_reads_the_run_in(
    tmp_path: Path,
) -> None:
    """``routerllm humaneval --limit N`` on a complete run records its N problems again;
    they moved to the end of the run's problems, so train-gate on the same stored
    answers then made another gate (its folds drawn over another order)."""
    from routerllm.eval.transfer import gate_from_run

    problems = load_humaneval()[:20]
    ladder = ["light", "medium", "heavy"]
    rng = np.random.default_rng(0)
    store = ResultStore(tmp_path / "results.sqlite")
    store.add_problems(problems)
    for p in problems:
        for m in ladder:
            passed = bool(rng.random() < 0.6)
            row = ROW | {"model": m, "task_id": p.task_id, "passed": passed,
                         "status": "passed" if passed else "failed", "gen_kwh": rng.random() * 1e-4,
                         "completion_tokens": int(rng.integers(5, 80))}  # fmt: skip
            store.add(row, rng.normal(size=4).tolist() if m == "medium" else None)
    store.close()
    before = gate_from_run(tmp_path, ladder, 0.6, folds=2)
    store = ResultStore(tmp_path / "results.sqlite")
    store.add_problems(problems[3:6])  # a re-report of a seeded subset
    assert [t for t, _, _ in store.problems()] == [p.task_id for p in problems]
    store.close()
    after = gate_from_run(tmp_path, ladder, 0.6, folds=2)
    assert after.threshold == before.threshold
    assert np.array_equal(after.calibration["score"], before.calibration["score"])


#: Each write of the store, on a store that holds another model's load only.
LOCKED_WRITES: dict[str, Callable[[ResultStore], Any]] = {
    "use_problem_set": USES["use_problem_set"],
    "use_style": USES["use_style"],
    "use_model_source": USES["use_model_source"],
    "add_problems": USES["add_problems"],
    "add": USES["add"],
    "add_load": USES["add_load"],
}


@pytest.mark.parametrize("write", LOCKED_WRITES.values(), ids=LOCKED_WRITES.keys())
def test_a_store_another_program_holds_is_a_clear_error_and_keeps_what_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Callable[[ResultStore], Any]
) -> None:
    """A SQLite browser (or any program) reading the file in a transaction keeps the run
    from writing: once the busy timeout is past, a clear error (a traceback saying
    "database is locked", before), what was stored before kept, the store usable again
    once the other program lets go."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.1)
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add_load("kept", 2.0, 1e-6, 4e-7)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN")
    other.execute("SELECT count(*) FROM generations").fetchall()  # holds a read lock
    with pytest.raises(
        RouterLLMError, match=f"results store {path} has been locked by another process"
    ):
        write(store)
    other.execute("COMMIT")
    other.close()
    assert store.load_of("kept") == (2.0, 1e-6, 4e-7)
    write(store)  # the same write, once the file is free
    store.close()


def _killed_mid_write(path: Path) -> None:
    """A process that dies by SIGKILL (the OOM killer, a power cut) while it writes to the
    store leaves its rollback journal beside it: the file holds half-written pages."""
    script = (
        "import os, signal, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA cache_size = 1')\n"  # the changed pages spill into the file
        "db.execute('BEGIN')\n"
        "db.execute(\"UPDATE generations SET raw = raw || printf('%.3000c', 'x'), passed = 0\")\n"
        'db.execute("DELETE FROM loads")\n'
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert path.with_name(path.name + "-journal").stat().st_size > 0


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_whose_writer_was_killed_mid_write_opens_as_last_committed(
    tmp_path: Path, read_only: bool
) -> None:
    """Resuming a run killed as it stored an answer (and training on it) reads what was
    committed; refused before ("attempt to write a readonly database", told to move the
    store away). Read-only, the file and its journal are left as they are."""
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    for i in range(40):
        store.add(ROW | {"task_id": f"HumanEval/{i}", "raw": "y" * 500})
    store.add_load("m", 1.0, 1e-6, 4e-7)
    store.close()
    _killed_mid_write(path)
    journal = path.with_name(path.name + "-journal")
    before = (path.read_bytes(), journal.read_bytes())
    store = ResultStore(path, read_only=read_only)
    outcomes = store.outcomes("m")
    assert len(outcomes) == 40 and all(o.passed for o in outcomes.values())
    assert store.completions("m")["HumanEval/7"] == "x" and store.load_of("m") == (1.0, 1e-6, 4e-7)
    if read_only:
        store.close()
        assert (path.read_bytes(), journal.read_bytes()) == before
        return
    store.add(ROW | {"task_id": "HumanEval/40"})
    store.close()
    assert len(ResultStore(path, read_only=True).done("m")) == 41


def test_a_store_another_process_holds_names_that_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a SQLite browser, a sqlite3 shell) reading the store in a
    transaction keeps the run from committing: the error names that process (before:
    "another program"), and what was stored is kept."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add_load("kept", 2.0, 1e-6, 4e-7)
    read = 'db.execute("BEGIN")\ndb.execute("SELECT count(*) FROM generations").fetchall()'
    with sqlite_held_by_another_process(path, read) as pid:  # a read lock held
        said = f"results store {path} has been locked by process {pid} (python"
        with pytest.raises(RouterLLMError, match=re.escape(said)):
            store.add_load("other", 1.0, 1e-6, 4e-7)
    store.add_load("other", 1.0, 1e-6, 4e-7)
    assert store.load_of("kept") == (2.0, 1e-6, 4e-7)
    store.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_another_program_is_writing_is_said_to_be_locked_not_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """Held past the busy timeout by a writer: "cannot be opened (database is locked);
    move it away to start afresh", before, of a sound store."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.1)
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add(ROW)
    store.close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(
        RouterLLMError, match=f"results store {path} has been locked by another process"
    ):
        ResultStore(path, read_only=read_only)
    other.execute("COMMIT")
    other.close()
    assert ResultStore(path, read_only=read_only).done("m") == {"HumanEval/0"}


@pytest.mark.parametrize(
    "change",
    ["ALTER TABLE generations ADD COLUMN seed INTEGER", "CREATE TABLE runs (id TEXT)"],
)
def test_a_store_a_newer_routerllm_wrote_is_said_to_be_one_untouched(
    tmp_path: Path, change: str
) -> None:
    """Every table of this version's, with a column or a table more, as a newer RouterLLM
    writes: it was called "not a RouterLLM humaneval run", as another program's file is
    (the request log says a newer RouterLLM wrote it)."""
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add(ROW)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute(change)
    db.close()
    before = path.read_bytes()
    added = "generations.seed" if "seed" in change else "runs"
    with pytest.raises(RouterLLMError, match=f"has {added}, which this version of RouterLLM does not know: a newer RouterLLM made it \\(upgrade RouterLLM to continue it\\), or another program added to it \\(use another --out directory\\); nothing was changed"):  # fmt: skip
        ResultStore(path)
    with pytest.raises(RouterLLMError, match=f"--train-on {tmp_path}: .* has {added}, .*upgrade RouterLLM to read it"):  # fmt: skip
        ResultStore(path, read_only=True, option="--train-on")
    assert path.read_bytes() == before


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux's /proc/locks")
def test_a_run_held_exclusively_is_said_at_once_to_its_readers_its_writer_waits(
    tmp_path: Path, tiny_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run another process holds with PRAGMA locking_mode=EXCLUSIVE (a sqlite3 shell
    left open, which keeps the lock until its connection closes): `humaneval --train-on`
    it waited the whole 30 s busy timeout before it said so, and so did the line a
    Ctrl-C'd run prints (holds_answers). Readers look after a 1 s first try now; a run
    opening the store to write to it still waits the whole timeout."""
    import time

    from routerllm import sqlite_busy
    from routerllm.eval.store_file import holds_answers

    from .conftest import cli_in_process

    path = tmp_path / "run" / "results.sqlite"
    store = ResultStore(path)
    store.add(ROW)
    store.close()
    exclusive = 'db.execute("PRAGMA locking_mode=EXCLUSIVE"); db.execute("BEGIN EXCLUSIVE")'
    with sqlite_held_by_another_process(path, exclusive) as pid:
        start = time.monotonic()
        run = cli_in_process("humaneval", "--config", str(tiny_config_path), "--out",
                             str(tmp_path / "he"), "--limit", "1", "--train-on", str(path.parent))  # fmt: skip
        waited = time.monotonic() - start
        assert waited < 10, waited  # the first try, not the 30 s busy timeout
        assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith(
            f"error: results store {path} has been locked by process {pid} (python"
        ), run.stderr
        assert f"for over {sqlite_busy.FIRST_TRY_S:g} s (PRAGMA locking_mode=EXCLUSIVE" in run.stderr  # fmt: skip
        start = time.monotonic()
        assert holds_answers(path) is None  # not told: the Ctrl-C line says the general case
        assert time.monotonic() - start < 10
        monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 2.0)
        start = time.monotonic()
        with pytest.raises(RouterLLMError, match=r"for over 2 s \(PRAGMA locking_mode"):
            ResultStore(path)
        assert time.monotonic() - start >= 2.0  # a writer waits it all
    assert holds_answers(path) is True
    assert ResultStore(path, read_only=True).done("m") == {"HumanEval/0"}
