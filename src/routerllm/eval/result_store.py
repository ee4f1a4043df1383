"""The HumanEval experiment's store: every (model, problem) answer, its verdict and
measured energy, the models' loads, prompting styles and prompt states, in one
SQLite file written as each answer completes, so an interrupted run continues
where it stopped and a stored answer is only reused for the problem it was
made for. A run records which problem set it is of, and a store is never another
program's SQLite file: that is refused untouched, and an earlier run read as
training data is opened read-only."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routerllm import sqlite_busy
from routerllm.carbon.meter import is_measured
from routerllm.checks import is_non_negative_number
from routerllm.data import as_path
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.store_checks import OTHERS_CPU_SHARE, checked_row, is_share, need_text
from routerllm.eval.store_file import (
    ADDED_COLUMNS,
    SCHEMA,
    held,
    open_checked,
    run_tables,
    unreadable,
)
from routerllm.eval.style_diff import style_changes
from routerllm.exceptions import RouterLLMError
from routerllm.path_checks import refuse_special_database
from routerllm.sqlite_busy import table_columns

#: What ``meta`` records under ``problem_set`` for a run of the packaged HumanEval
#: (a problem file's run records the file's name).
PACKAGED_SET = "HumanEval (packaged)"


@dataclass(frozen=True)
class Outcome:
    passed: bool
    gen_s: float
    gen_kwh: float
    gen_co2: float
    completion_tokens: int
    status: str
    prompt_tokens: int = 0
    #: How its energy was measured (``Measurement.method``); None: not known.
    method: str | None = None
    #: The share of the machine's CPU other processes used as it was generated
    #: (``Measurement.others_cpu_share``); None: not known.
    others_cpu_share: float | None = None

    @property
    def measured(self) -> bool:
        """Whether its energy and CO2 were measured (not CodeCarbon failing's 0 kWh)."""
        return is_measured(self.method, self.gen_kwh, self.gen_co2)


class ResultStore:
    """One SQLite file: a row per finished (model, problem), committed at once.

    An existing file must be a RouterLLM run (or empty): another program's SQLite
    file is refused untouched. ``read_only`` opens an existing run for reading only
    (an earlier run as training data), so reading it never changes it; ``option``
    names the command-line option that gave the file, in error messages."""

    def __init__(
        self, path: str | os.PathLike[str], read_only: bool = False, option: str = "--out"
    ) -> None:
        self.path = path = as_path(path, "the results store")
        self.option = option
        if not path.is_dir():  # a folder: said below, as what to give instead
            refuse_special_database(path, f"remove it, or give {option} another run")
        self._closed = False
        self.read_only = bool(read_only)
        if read_only:
            if path.is_dir():  # SQLite says only "disk I/O error"
                raise RouterLLMError(
                    f"{option} {path.parent}: {path} is a directory, not a results store; "
                    f"give {option} the --out directory of a routerllm humaneval run"
                )
            self._db = open_checked(self.path, self.option, read_only=True)
            self._stand_in_for_missing_tables()
            return
        if path.is_dir():
            raise RouterLLMError(f"results store {path} is a directory; give the path of a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise unreadable(path, self.option, e, read_only=False) from e
        # A 0-byte file is what SQLite itself leaves until its first write (a run stopped
        # at once, a `touch`): it holds nothing to lose, so it becomes a new store.
        if path.is_file() and path.stat().st_size > 0:
            # checks before anything is written
            open_checked(path, self.option, read_only=False).close()
        # Another program reading the file (a SQLite browser) holds off writes a while.
        self._db = sqlite3.connect(path, timeout=sqlite_busy.BUSY_TIMEOUT_S)
        try:
            self._db.executescript(SCHEMA)
            tables = table_columns(self._db)
            for table, column in ADDED_COLUMNS.items():
                if column not in tables[table]:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise unreadable(path, self.option, e, read_only=False) from e

    @property
    def db(self) -> sqlite3.Connection:
        """The store's SQLite connection; a clear error once the store is closed (every
        method reads or writes through it)."""
        if self._closed:
            raise RouterLLMError(
                f"the result store {self.path} is closed; open a new ResultStore on it to use it"
            )
        return self._db

    def _writing(self) -> _Writing:
        """One transaction on the file: committed whole, or, where SQLite refuses it
        (another program holding the file past the busy timeout, a full disk), rolled
        back and said in one line; what was committed before is kept."""
        return _Writing(self)

    def _unwritable(self, e: sqlite3.OperationalError) -> RouterLLMError:
        if sqlite_busy.is_locked(e):
            return held(self.path)
        return RouterLLMError(
            f"results store {self.path} could not be written ({e}); the answers stored so "
            f"far are kept: run the same command again once that is fixed"
        )

    def _check_writable(self) -> None:
        """First thing in a method that writes: a clear error where the store was opened
        read-only (a closed one says that it is closed, :attr:`db`)."""
        if self.read_only and not self._closed:
            raise RouterLLMError(
                f"the result store {self.path} ({self.option}) was opened read-only: nothing "
                f"was written"
            )

    def _stand_in_for_missing_tables(self) -> None:
        """Empty temporary tables in place of those an older run lacks (styles, problems,
        prompt states, meta), so that it reads as recording none of them; the file
        itself is not written."""
        present = table_columns(self.db)
        for name, (_, sql) in run_tables().items():
            if name not in present:
                self.db.execute(sql.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))

    def use_problem_set(self, name: str) -> None:
        """Record that this run is of the problem set ``name`` (:data:`PACKAGED_SET` or a
        problem file's name); a run of another set in this store is refused, since its
        report and stored answers would mix two sets. A store made before sets were
        recorded, with answers in it, stays unrecorded and accepts any set, as it did:
        which set its answers are of is not known."""
        self._check_writable()
        need_text(name, "a problem set's name")
        self._record_once("problem_set", name, lambda recorded: (
            f"{self.path} holds a run of {recorded}, not of {name}; use a new --out "
            f"directory for {name} (nothing was changed)"
        ))  # fmt: skip

    def use_country(self, country: str) -> None:
        """Record the country whose grid the run's CO2 is measured for
        (``carbon.country_iso_code``), and refuse another: a stored answer's CO2 is its
        energy at that grid, and would be reported as the other country's beside answers
        measured for it. A store made before countries were recorded, with answers in it,
        stays unrecorded and accepts any, as it did: which grid its CO2 is of is not known."""
        self._check_writable()
        need_text(country, "a country code")
        self._record_once("country", country, lambda recorded: (
            f"the results stored in {self.path} were measured for "
            f"carbon.country_iso_code {recorded}, not {country}: their CO2 would be "
            f"reported as {country}'s, beside answers measured for it; set "
            f"carbon.country_iso_code: {recorded} in the config, or use a new --out "
            f"directory (nothing was changed)"
        ))  # fmt: skip

    def _record_once(self, key: str, value: str, refusal: Callable[[str], str]) -> None:
        """Record ``value`` under ``key``, or refuse another value recorded there (the
        error's message: ``refusal(recorded)``); a store with answers and no record stays
        unrecorded (made before ``key`` was recorded: what its answers are of is not
        known)."""
        recorded = self._meta(key)
        if recorded is not None:
            if recorded != value:
                raise RouterLLMError(refusal(recorded))
            return
        if not self.models():
            with self._writing():
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))

    def country(self) -> str | None:
        """The country whose grid the run's CO2 was measured for; None where it was not
        recorded (older stores)."""
        return self._meta("country")

    def use_model_source(self, model: str, source: str) -> None:
        """Record where ``model``'s weights came from (``ModelConfig.source_text``), and
        refuse another source: stored answers of another file under the same name would
        be reported as this one's. A store made before sources were recorded takes the
        first one given."""
        self._check_writable()
        need_text(model, "a model's name")
        need_text(source, "a model's source")
        key = f"source:{model}"
        recorded = self._meta(key)
        if recorded is not None and recorded != source:
            raise RouterLLMError(
                f"the stored results of {model!r} in {self.path} were made with another model "
                f"file or endpoint ({recorded}; now {source}); use a new --out directory for "
                f"this one (nothing was changed)"
            )
        if recorded is None:
            with self._writing():
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, source))

    def model_source(self, model: str) -> str | None:
        """Where the stored results of ``model`` came from (:meth:`use_model_source`);
        None where it was not recorded (no results, or an older store)."""
        return self._meta(f"source:{model}")

    def weights_of(self, model: str) -> str | None:
        """What the store records of the weights ``model``'s answers were made with
        (``eval/weights_identity.py``); None where it records nothing."""
        return self._meta(f"weights:{model}")

    def record_weights(self, model: str, weights: str) -> None:
        """Record (or replace) what ``weights_of`` gives for ``model``."""
        self._check_writable()
        with self._writing():
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"weights:{model}", weights)
            )

    def problem_set(self) -> str | None:
        """The problem set this run is of; None where it was not recorded (older stores)."""
        return self._meta("problem_set")

    def _meta(self, key: str) -> str | None:
        """What the store records under ``key``; None where it records nothing."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def models(self) -> list[str]:
        """The models with stored generations."""
        return [str(r[0]) for r in self.db.execute("SELECT DISTINCT model FROM generations")]

    def done(self, model: str) -> set[str]:
        return {
            r[0]
            for r in self.db.execute("SELECT task_id FROM generations WHERE model = ?", (model,))
        }

    def _answered(self, model: str) -> bool:
        """Whether the store holds an answer of ``model`` (``done``, not read whole)."""
        query = "SELECT 1 FROM generations WHERE model = ? LIMIT 1"
        return self.db.execute(query, (model,)).fetchone() is not None

    def use_style(self, model: str, style: dict[str, Any]) -> None:
        """Record how ``model`` is prompted; refuse to mix styles in one store."""
        self._check_writable()
        text = self.check_style(model, style)
        if not self._answered(model):
            with self._writing():
                self.db.execute("INSERT OR REPLACE INTO styles VALUES (?, ?)", (model, text))

    def check_style(self, model: str, style: dict[str, Any]) -> str:
        """Refuse ``style`` for ``model`` where its stored answers were made with another
        one (or their style is not recorded); nothing is written. Returns the style as
        the store records it."""
        need_text(model, "a model's name")
        try:
            if not isinstance(style, dict):
                raise TypeError(f"got {type(style).__name__}")
            text = json.dumps(style, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise RouterLLMError(f"a prompting style is a dict of JSON values ({e})") from None
        if not self._answered(model):
            return text
        row = self.db.execute("SELECT style FROM styles WHERE model = ?", (model,)).fetchone()
        if row is None:
            raise RouterLLMError(
                f"the stored results of {model!r} do not record how the model was prompted "
                f"(an older RouterLLM made them); use a new --out directory"
            )
        old, new = json.loads(row[0]), json.loads(text)
        if changed := style_changes(old, new):
            raise RouterLLMError(
                f"the stored results of {model!r} were generated with another prompting style "
                f"({old.get('mode')} mode, max_new_tokens {old.get('max_new_tokens')}; differs in "
                f"{', '.join(changed)}); continue with the same options, or use a new --out directory"
            )
        return text

    def styles(self) -> dict[str, dict[str, Any]]:
        return {m: json.loads(t) for m, t in self.db.execute("SELECT model, style FROM styles")}

    def add_problems(self, problems: Sequence[HumanEvalProblem]) -> None:
        """Record the problems' prompts, so that another run can train on this one's.

        A stored answer belongs to the problem it was generated and tested for: a
        problem with a stored answer whose prompt, entry point or tests have changed
        since (another version of a file that reuses its task_ids) is refused."""
        self._check_writable()
        if isinstance(problems, str | bytes) or not isinstance(problems, Sequence):
            raise RouterLLMError(
                f"problems must be a list of problems, got {type(problems).__name__}"
            )
        if bad := [p for p in problems if not isinstance(p, HumanEvalProblem)]:
            raise RouterLLMError(f"problems must be HumanEvalProblem items, got {bad[0]!r}"[:300])
        stored = {
            t: (prompt, entry, fp)
            for t, prompt, entry, fp in self.db.execute(
                "SELECT task_id, prompt, entry_point, fingerprint FROM problems"
            )
        }
        answered = {r[0] for r in self.db.execute("SELECT DISTINCT task_id FROM generations")}
        changed = [
            p.task_id
            for p in problems
            if p.task_id in stored
            and p.task_id in answered
            and _differs(stored[p.task_id], (p.prompt, p.entry_point, fingerprint(p)))
        ]
        if changed:
            raise RouterLLMError(
                f"{len(changed)} problem(s) ({', '.join(changed[:3])}"
                f"{', ...' if len(changed) > 3 else ''}) have stored answers generated for "
                "another version of them (prompt, entry point or tests differ); use a new --out "
                "directory for this problem file"
            )
        # Updated in place, not replaced: the recorded order is the order train-gate and
        # --train-on read the run in (their folds), which re-reporting a subset must keep.
        with self._writing():
            self.db.executemany(
                "INSERT INTO problems VALUES (?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET "
                "prompt = excluded.prompt, entry_point = excluded.entry_point, "
                "fingerprint = excluded.fingerprint",
                [(p.task_id, p.prompt, p.entry_point, fingerprint(p)) for p in problems],
            )

    def problems(self) -> list[tuple[str, str, str]]:
        """(task_id, prompt, entry_point) of the recorded problems, in the order they were
        first recorded."""
        rows = self.db.execute("SELECT task_id, prompt, entry_point FROM problems ORDER BY rowid")
        return [(str(t), str(p), str(e)) for t, p, e in rows]

    def add(self, row: dict[str, Any], state: Sequence[float] | None = None) -> None:
        """Store a finished generation (the fields of ``store_checks.ROW_FIELDS``) and, when given,
        the model's state of its prompt (one transaction: both or neither). Both are
        checked first, so a bad value never reaches the file."""
        self._check_writable()
        row = checked_row(row)
        blob = None if state is None else self._checked_state(row["model"], row["task_id"], state)
        with self._writing():
            self.db.execute(
                "INSERT OR REPLACE INTO generations VALUES (:model, :task_id, :raw, :completion, "
                ":prompt_tokens, :completion_tokens, :gen_s, :gen_kwh, :gen_co2, :method, :status, "
                ":detail, :passed)",
                row,
            )
            if blob is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO prompt_states VALUES (?, ?, ?)",
                    (row["model"], row["task_id"], blob),
                )
            # an answer made again replaces what its first one was measured under
            self.db.execute(
                "DELETE FROM cpu_contention WHERE model = ? AND task_id = ?",
                (row["model"], row["task_id"]),
            )
            if (share := row[OTHERS_CPU_SHARE]) is not None:
                self.db.execute(
                    "INSERT INTO cpu_contention VALUES (?, ?, ?)",
                    (row["model"], row["task_id"], share),
                )

    def _checked_state(self, model: str, task_id: str, state: Any) -> bytes:
        """A prompt state as stored: a 1-D array of finite numbers as wide as ``model``'s
        other stored states (so that they stack); a clear error otherwise."""
        try:
            values = np.asarray(state, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise RouterLLMError(f"a prompt state must be a list of numbers ({e})") from e
        if values.ndim != 1 or not values.size or not np.isfinite(values).all():
            raise RouterLLMError(
                f"a prompt state must be a non-empty list of finite numbers, got shape "
                f"{values.shape}"
            )
        stored = self.db.execute(
            "SELECT length(state) FROM prompt_states WHERE model = ? AND task_id != ? LIMIT 1",
            (model, task_id),
        ).fetchone()
        if stored is not None and stored[0] != values.nbytes:
            raise RouterLLMError(
                f"the prompt state of {model!r} for {task_id} is {values.size} wide, but its "
                f"stored ones are {stored[0] // values.itemsize} wide: nothing was stored"
            )
        return values.tobytes()

    def prompt_states(self, model: str, task_ids: Sequence[str]) -> np.ndarray | None:
        """(n, d) ``model``'s states of the prompts of ``task_ids``; None unless all are stored."""
        if isinstance(task_ids, str) or not all(isinstance(t, str) for t in task_ids):
            raise RouterLLMError("task_ids must be a list of task ids (strings)")
        rows = dict(
            self.db.execute("SELECT task_id, state FROM prompt_states WHERE model = ?", (model,))
        )
        if not task_ids or any(t not in rows for t in task_ids):
            return None
        return np.stack([np.frombuffer(rows[t], dtype=np.float32) for t in task_ids])

    def add_load(
        self,
        model: str,
        seconds: float,
        kwh: float,
        co2: float,
        method: str | None = None,
        others_cpu_share: float | None = None,
    ) -> None:
        """Store what loading ``model`` took: seconds, kWh, kg CO2 (finite, >= 0), how
        its energy was measured (``Measurement.method``; None: not known) and the share
        of the machine's CPU other processes used meanwhile (``Measurement.others_cpu_share``,
        0 to 1; None: not known), in one transaction."""
        self._check_writable()
        bad = [
            f"{name} {value!r}"
            for name, value in (("seconds", seconds), ("kwh", kwh), ("co2", co2))
            if not is_non_negative_number(value)
        ]
        if method is not None and not isinstance(method, str):
            bad.append(f"method {method!r}")
        if not is_share(others_cpu_share):
            bad.append(f"{OTHERS_CPU_SHARE} {others_cpu_share!r}")
        if not isinstance(model, str) or bad:
            raise RouterLLMError(
                f"a model's load needs a model name, finite numbers >= 0, a method name "
                f"(or None) and a CPU share from 0 to 1 (or None), got model "
                f"{model!r}{', ' if bad else ''}{', '.join(bad)}: nothing was stored"
            )
        seconds, kwh, co2 = float(seconds), float(kwh), float(co2)
        with self._writing():
            self.db.execute(
                "INSERT OR REPLACE INTO loads VALUES (?, ?, ?, ?, ?)",
                (model, seconds, kwh, co2, method),
            )
            # a load stored again replaces what the first one was measured under
            self.db.execute("DELETE FROM load_contention WHERE model = ?", (model,))
            if others_cpu_share is not None:
                self.db.execute(
                    "INSERT INTO load_contention VALUES (?, ?)", (model, float(others_cpu_share))
                )

    def load_of(self, model: str) -> tuple[float, float, float] | None:
        row = self.db.execute(
            "SELECT load_s, load_kwh, load_co2 FROM loads WHERE model = ?", (model,)
        ).fetchone()
        return None if row is None else (float(row[0]), float(row[1]), float(row[2]))

    def load_methods(self, models: Sequence[str]) -> dict[str, str | None]:
        """How the stored load of each of ``models`` that has one was measured (its carbon
        method; None for a load stored before the method was recorded)."""
        rows = dict(self.db.execute("SELECT model, method FROM loads"))
        return {m: rows[m] for m in models if m in rows}

    def load_shares(self, models: Sequence[str]) -> dict[str, float | None]:
        """The share of the machine's CPU other processes used as the stored load of each
        of ``models`` that has one was measured; None where it is not known (not Linux, a
        load too short to tell, one stored before 2026-12-07, when it was first recorded)."""
        loaded = {str(r[0]) for r in self.db.execute("SELECT model FROM loads")}
        known = dict(self.db.execute("SELECT model, others_cpu_share FROM load_contention"))
        return {m: known.get(m) for m in models if m in loaded}

    def completions(self, model: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT task_id, completion FROM generations WHERE model = ?", (model,)
        )
        return {r[0]: r[1] for r in rows}

    def outcomes(self, model: str) -> dict[str, Outcome]:
        rows = self.db.execute(
            "SELECT g.task_id, passed, gen_s, gen_kwh, gen_co2, completion_tokens, status,"
            " prompt_tokens, method, c.others_cpu_share FROM generations g LEFT JOIN"
            " cpu_contention c ON c.model = g.model AND c.task_id = g.task_id WHERE g.model = ?",
            (model,),
        )
        return {
            r[0]: Outcome(bool(r[1]), r[2], r[3], r[4], r[5], r[6], r[7] or 0, r[8], r[9])
            for r in rows
        }

    def methods(self, models: Sequence[str], task_ids: Sequence[str]) -> dict[str, int]:
        """How the stored generations of ``models`` on ``task_ids`` were measured: each
        carbon method (``Measurement.method``) with its number of generations, most first.
        A stored answer is reused as it was measured, perhaps by another machine's meter
        than this run's."""
        wanted, counts = set(task_ids), Counter[str]()
        for model in models:
            rows = self.db.execute(
                "SELECT task_id, method FROM generations WHERE model = ?", (model,)
            )
            counts.update(str(method) for task_id, method in rows if task_id in wanted)
        return dict(counts.most_common())

    def others_cpu_shares(
        self, models: Sequence[str], task_ids: Sequence[str]
    ) -> dict[tuple[str, str], float | None]:
        """The share of the machine's CPU other processes used as each stored generation
        of ``models`` on ``task_ids`` was measured, by (model, task_id); None where it
        is not known (not Linux, an answer stored before it was recorded)."""
        wanted, shares = set(task_ids), {}
        for model in models:
            known = dict(self.db.execute(
                "SELECT task_id, others_cpu_share FROM cpu_contention WHERE model = ?", (model,)
            ).fetchall())  # fmt: skip
            for (task_id,) in self.db.execute(
                "SELECT task_id FROM generations WHERE model = ?", (model,)
            ).fetchall():
                if task_id in wanted:
                    shares[(model, str(task_id))] = known.get(task_id)
        return shares

    def close(self) -> None:
        """Close the file; every later use is refused with a clear error, closing again
        does nothing."""
        self._closed = True
        self._db.close()


class _Writing:
    """:meth:`ResultStore._writing`'s transaction. Not a generator: one that a Ctrl-C
    left suspended in its ``with`` (the signal came between its ``__enter__`` and the
    caller's block) rolled back on a database closed by then when it was freed, and
    Python printed that error's traceback under the "interrupted" line. SQLite begins
    the transaction only at the block's first statement, so one never entered holds
    nothing."""

    def __init__(self, store: ResultStore) -> None:
        self._store = store
        self._db = store.db

    def __enter__(self) -> None:
        self._db.__enter__()

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        try:
            self._db.__exit__(kind, e, tb)  # commits, or rolls back on an error
        except sqlite3.OperationalError as refused:
            raise self._store._unwritable(refused) from refused
        if isinstance(e, sqlite3.OperationalError):
            raise self._store._unwritable(e) from e


def fingerprint(problem: HumanEvalProblem) -> str:
    """A hash of what decides a problem's answers and their verdicts."""
    text = "\0".join((problem.prompt, problem.entry_point, problem.test))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _differs(stored: tuple[str, str, str | None], now: tuple[str, str, str]) -> bool:
    """Whether a stored problem differs from ``now`` (stores from before fingerprints
    hold none: their prompt and entry point are compared)."""
    return stored[:2] != now[:2] or (stored[2] is not None and stored[2] != now[2])
