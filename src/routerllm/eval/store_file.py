"""What file a HumanEval results store (``result_store.ResultStore``) may be: the
tables a run has, and the checks an existing file passes before it is opened (a sound
RouterLLM run, an older one, not another program's SQLite file, not a newer
RouterLLM's), each failure one clear error that leaves the file untouched."""

from __future__ import annotations

import contextlib
import sqlite3
from functools import cache
from pathlib import Path

from routerllm import sqlite_busy
from routerllm.eval.store_checks import bad_value
from routerllm.exceptions import RouterLLMError
from routerllm.sqlite_busy import open_read_only, table_columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    model TEXT NOT NULL, task_id TEXT NOT NULL, raw TEXT NOT NULL, completion TEXT NOT NULL,
    prompt_tokens INTEGER, completion_tokens INTEGER, gen_s REAL, gen_kwh REAL, gen_co2 REAL,
    method TEXT, status TEXT NOT NULL, detail TEXT, passed INTEGER NOT NULL,
    PRIMARY KEY (model, task_id)
);
CREATE TABLE IF NOT EXISTS loads (
    model TEXT PRIMARY KEY, load_s REAL, load_kwh REAL, load_co2 REAL, method TEXT
);
CREATE TABLE IF NOT EXISTS styles (
    model TEXT PRIMARY KEY, style TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    task_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, entry_point TEXT NOT NULL, fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS prompt_states (
    model TEXT NOT NULL, task_id TEXT NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (model, task_id)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cpu_contention (
    model TEXT NOT NULL, task_id TEXT NOT NULL, others_cpu_share REAL NOT NULL,
    PRIMARY KEY (model, task_id)
);
CREATE TABLE IF NOT EXISTS load_contention (
    model TEXT PRIMARY KEY, others_cpu_share REAL NOT NULL
);
"""

#: The last column of a table that older stores lack: problems' fingerprints, the loads'
#: carbon method. Such a store is still a run, given the column when opened to write.
ADDED_COLUMNS = {"problems": "fingerprint", "loads": "method"}


def open_checked(path: Path, option: str, read_only: bool) -> sqlite3.Connection:
    """A read-only connection to the existing file, which must be a sound RouterLLM
    run (when ``read_only``, one with generations to read). Only to read it (a run given
    to train on), a store another process holds until its connection closes is said to
    be after ``sqlite_busy.FIRST_TRY_S`` (``open_read_only``'s ``impatient``); the check
    of a store a run is about to write to waits the busy timeout, as its writes do."""
    try:
        conn = open_read_only(path, impatient=read_only)
    except (sqlite3.DatabaseError, OSError) as e:
        raise unreadable(path, option, e, read_only) from e
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("database disk image is malformed")
        tables = table_columns(conn)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise unreadable(path, option, e, read_only) from e
    foreign = _foreign_tables(tables)
    if newer := foreign and _newer_than_this(tables):
        conn.close()
        what = (
            f"{path} has {', '.join(newer)}, which this version of RouterLLM does not "
            f"know: a newer RouterLLM made it (upgrade RouterLLM to "
        )
        if read_only:
            raise RouterLLMError(
                f"{option} {path.parent}: {what}read it), or another program "
                f"added to it (give {option} another run)"
            )
        raise RouterLLMError(
            f"{what}continue it), or another program added to it (use another --out "
            f"directory); nothing was changed"
        )
    if foreign or (read_only and "generations" not in tables):
        conn.close()
        what = (
            f"unexpected tables: {', '.join(foreign)}"
            if foreign
            else ("it holds no tables" if not tables else "it has no generations")
        )
        if read_only:
            raise RouterLLMError(
                f"{option} {path.parent}: {path} is not a RouterLLM humaneval "
                f"run ({what}); give {option} the --out directory of a routerllm humaneval run"
            )
        raise RouterLLMError(
            f"{path} is not a RouterLLM humaneval run ({what}); use another --out "
            "directory (nothing was changed)"
        )
    try:
        bad = bad_value(conn, tables)
    except sqlite3.DatabaseError as e:
        bad = str(e)
    if bad:  # found now, not by a traceback after the models have run
        conn.close()
        raise unreadable(path, option, sqlite3.DatabaseError(bad), read_only)
    return conn


def held(path: Path, waited_s: float | None = None) -> RouterLLMError:
    """Another process held the file past the busy timeout (or ``waited_s``, a reader
    told early: ``sqlite_busy.HeldExclusively``): a sound store, to wait for, not to
    move away."""
    meanwhile = "the answers stored so far are kept: run the same command again then"
    return RouterLLMError(sqlite_busy.locked(path, "results store", meanwhile, waited_s=waited_s))


def holds_answers(path: Path) -> bool | None:
    """Whether the store at ``path`` holds a finished answer, read without checking or
    changing it (for what a run stopped by Ctrl-C kept); None where that cannot be told
    (no run there, unreadable, locked: past ``sqlite_busy.FIRST_TRY_S`` where another
    process holds it until its connection closes, since a Ctrl-C'd command's last line
    should not wait 30 s for it)."""
    try:
        with contextlib.closing(open_read_only(path, impatient=True)) as db:
            return db.execute("SELECT 1 FROM generations LIMIT 1").fetchone() is not None
    except (sqlite3.Error, OSError):
        return None


def unreadable(path: Path, option: str, e: Exception, read_only: bool) -> RouterLLMError:
    if sqlite_busy.is_locked(e):
        return held(path, getattr(e, "waited_s", None))
    if read_only:
        return RouterLLMError(
            f"{option} {path.parent}: results store {path} cannot be opened "
            f"({e}); give {option} the --out directory of a routerllm humaneval run"
        )
    return RouterLLMError(
        f"results store {path} cannot be opened ({e}); move it away to start afresh, "
        f"or use another --out directory"
    )


@cache
def run_tables() -> dict[str, tuple[list[str], str]]:
    """Each of a run's tables, as :data:`SCHEMA` makes them: its columns and its
    ``CREATE TABLE`` statement."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        return {name: (columns, sql[name]) for name, columns in table_columns(db).items()}
    finally:
        db.close()


def _newer_than_this(tables: dict[str, list[str]]) -> list[str]:
    """The tables and columns (``table.column``) a store holds beyond this version's,
    where it holds every table of this version's with its columns first, as a newer
    RouterLLM's run does (each version has added tables or columns at the end); [] for
    any other database."""
    ours = {name: columns for name, (columns, _) in run_tables().items()}
    if not all(tables.get(name, [])[: len(columns)] == columns for name, columns in ours.items()):
        return []
    extra_tables = [name for name in tables if name not in ours]
    extra_columns = [f"{name}.{c}" for name, columns in ours.items() for c in tables[name][len(columns):]]  # fmt: skip
    return extra_tables + extra_columns


def _foreign_tables(tables: dict[str, list[str]]) -> list[str]:
    """The tables of ``tables`` (name: columns) that no RouterLLM made: an older run
    has a subset of today's tables, some perhaps without their last column
    (:data:`ADDED_COLUMNS`)."""
    ours = {name: columns for name, (columns, _) in run_tables().items()}
    return [
        name
        for name, columns in tables.items()
        if columns != ours.get(name) and not (name in ADDED_COLUMNS and columns == ours[name][:-1])
    ]
