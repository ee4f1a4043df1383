"""The request log's SQLite schema and its versions: the tables a log holds, the check
that an existing database is a request log (its tables, or an older version's), and
the migrations that bring an older log's tables up to date when it is opened for
writing. ``request_log.RequestLog`` opens its database here, and reads an older log's
tables as they are.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from routerllm import sqlite_busy
from routerllm.carbon.log_rows import utc_timestamp
from routerllm.exceptions import RequestLogError, RouterLLMError
from routerllm.sqlite_busy import is_locked, open_read_only, open_shared, table_columns

# A request's measured parts (``components``), and those of the models a cascade stepped
# up from (``escalations``): one shape, read and written by the same code.
_PARTS = """(
    request_id TEXT NOT NULL REFERENCES requests(id),
    component TEXT NOT NULL,
    duration_s REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    co2_kg REAL NOT NULL,
    method TEXT NOT NULL,
    PRIMARY KEY (request_id, component)
)"""
_PART_COLUMNS = ["request_id", "component", "duration_s", "energy_kwh", "co2_kg", "method"]

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    prompt_chars INTEGER NOT NULL,
    model TEXT NOT NULL,
    router TEXT NOT NULL,
    confidence REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    co2_kg REAL NOT NULL,
    cost_usd REAL NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    finish_reason TEXT NOT NULL DEFAULT '',
    grid_country TEXT NOT NULL DEFAULT '',
    grid_region TEXT NOT NULL DEFAULT '',
    grid_g_per_kwh REAL,
    completion_chars INTEGER,
    others_cpu_share REAL,
    model_loaded INTEGER
);
CREATE TABLE IF NOT EXISTS components {_PARTS};
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL REFERENCES requests(id),
    score REAL NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback(request_id);
CREATE TABLE IF NOT EXISTS escalations {_PARTS};
CREATE TABLE IF NOT EXISTS pending_feedback (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    model TEXT NOT NULL,
    router TEXT NOT NULL,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    folder TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS load_errors (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    error TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    energy_kwh REAL
);
CREATE TABLE IF NOT EXISTS pending_csv (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    csv_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cpu_shares (
    request_id TEXT NOT NULL REFERENCES requests(id),
    component TEXT NOT NULL,
    escalated INTEGER NOT NULL,
    others_cpu_share REAL NOT NULL,
    PRIMARY KEY (request_id, component, escalated)
);
CREATE INDEX IF NOT EXISTS requests_time ON requests(timestamp);
CREATE INDEX IF NOT EXISTS requests_model_time ON requests(model, timestamp);
"""

# The columns of each table, in order (``records`` reads rows by position).
TABLES = {
    "requests": [
        "id", "timestamp", "prompt_sha256", "prompt_chars", "model", "router", "confidence",
        "prompt_tokens", "completion_tokens", "latency_s", "energy_kwh", "co2_kg", "cost_usd",
        "tag", "finish_reason", "grid_country", "grid_region", "grid_g_per_kwh",
        "completion_chars", "others_cpu_share", "model_loaded",
    ],
    "components": _PART_COLUMNS,
    "feedback": ["request_id", "score", "timestamp"],
    "escalations": _PART_COLUMNS,
    "pending_feedback": ["request_id", "model", "router", "encoder", "dim", "embedding", "folder"],
    "load_errors": ["request_id", "error", "model", "energy_kwh"],
    # the requests whose rows the emissions CSV at csv_path may lack (``RequestLog``)
    "pending_csv": ["request_id", "csv_path"],
    # the share of the CPU other processes used while each part was measured, where it
    # is known: a part of ``components`` (escalated 0) or of ``escalations`` (1)
    "cpu_shares": ["request_id", "component", "escalated", "others_cpu_share"],
}  # fmt: skip
#: The numbers of a logged request that a report reads (its energy and CO2: its components'),
#: by their position in a row.
REQUEST_NUMBERS = {
    name: TABLES["requests"].index(name)
    for name in ("prompt_chars", "confidence", "prompt_tokens", "completion_tokens", "latency_s", "cost_usd")
}  # fmt: skip
#: The texts of a logged request that a report prints, by their position in a row
#: (``finish_reason`` is missing from an older log's rows).
REQUEST_TEXTS = {
    name: TABLES["requests"].index(name) for name in ("model", "router", "tag", "finish_reason")
}
# Every log has these; logs written before feedback was stored (2026-12-02) lack
# ``feedback`` (and ``pending_feedback``, added the same day), and those written before
# escalations were (2026-12-03) lack ``escalations``, and those written before failed
# loads were marked lack ``load_errors``, and those written before 2026-12-04 lack
# ``pending_csv``, and those written before 2026-12-07 ``cpu_shares``: opening one for
# writing adds them.
REQUIRED_TABLES = ("requests", "components")
# Logs written before finish_reason was logged (2026-12-02): read as they are, and given
# the column when opened for writing.
OLDER_REQUESTS = TABLES["requests"][:14]
# Logs written before the grid of each request's CO2 was (2026-12-06): read as they are
# (their rows' grid not recorded), and given the columns when opened for writing (their
# rows "" and NULL: not recorded, never a guessed grid).
BEFORE_GRID = TABLES["requests"][:15]
# Logs written before each answer's length was (2026-12-07): read as they are (their
# rows' length not recorded), and given the column when opened for writing (NULL: not
# recorded).
BEFORE_COMPLETION_CHARS = TABLES["requests"][:18]
# Logs written before the share of the machine's CPU other processes used while a
# request was measured was (2026-12-07, ``carbon/cpu_share.py``): read as they are (their
# rows' share not recorded), and given the column (NULL: not recorded, as a share that
# could not be told) and the ``cpu_shares`` table of their parts' when opened for writing.
# The parts' shares are a table of their own, not a column of theirs: a process of an
# older version still writing the log names the requests' columns as it inserts a row
# (the new one left NULL), but not its parts' (a seventh column failed its every insert),
# and reads its parts' rows six columns wide.
BEFORE_CPU_SHARE = TABLES["requests"][:19]
# Logs written before each request said whether its model loaded for it (2026-12-07: a
# count's read of a model's files, logged as its ``model_loading``, is no load; see
# ``RequestRecord.model_loaded``): read as they are (their rows' not recorded, a loading
# that took time or energy taken for a load, as before), and given the column when
# opened for writing (NULL: not recorded). A column of the request's, in its one row: a
# process of an older version still writing the log leaves it NULL.
BEFORE_MODEL_LOADED = TABLES["requests"][:20]
# Logs whose pending requests did not record their router's folder: read as they are, and
# given the column (its rows the folder "", any folder's) when opened for writing.
OLDER_PENDING = TABLES["pending_feedback"][:-1]
# Logs whose failed loads were all the failed request's own model's (before a cascade's
# step up whose load failed was marked): read as they are, and given the columns (their
# rows the model "", the row's own) when opened for writing.
OLDER_LOAD_ERRORS = TABLES["load_errors"][:2]


def unusable(path: Path, doing: str, error: Exception) -> RequestLogError:
    """The error for SQLite's ``error`` while ``doing`` (e.g. "cannot be opened") the log
    ``path``: one another process kept locked past the busy timeout said to be, naming
    it where Linux can tell (``sqlite_busy.locked``), and a damaged file (SQLite's bare
    "database disk image is malformed") said to be one, with what to do, since it is
    left as it is (the sqlite3 shell's .recover failed on an intact log with SQLite
    3.40.1: no one command is given)."""
    if is_locked(error):  # past the busy timeout: SQLite's "database is locked" alone
        meanwhile = "then try again (the log is left as it is)"
        # a reader told early (HeldExclusively) says how long it waited
        waited = getattr(error, "waited_s", None)
        return RequestLogError(
            sqlite_busy.locked(path, "request log", meanwhile, "log.path", waited)
        )
    code = getattr(error, "sqlite_errorcode", None)
    if code == 11 or "malformed" in str(error):  # SQLITE_CORRUPT (not in typeshed)
        return RequestLogError(
            f"request log {path} (log.path) is damaged ({error}), and is left as it is; "
            f"move it aside (a new log starts at log.path) and get back what rows you can "
            f"with the sqlite3 shell's .recover or .dump"
        )
    return RequestLogError(f"request log {path} {doing}: {error}")


def open_for_reading(path: Path) -> sqlite3.Connection:
    """The existing log ``path``, to read (``open_checked``'s; an older log whose times
    the next write makes UTC read as that write will leave it: ``_in_utc``)."""
    if path.is_file() and path.stat().st_size == 0:
        # an empty file is a new, empty log, as a writer takes it: read as one
        return empty_log()
    conn = open_checked(path, read_only=True)
    try:
        return _in_utc(conn)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise unusable(path, "(log.path) cannot be read", e) from e


def _in_utc(conn: sqlite3.Connection) -> sqlite3.Connection:
    """``conn``, or where it is a log from before timestamps were logged in UTC (no
    finish_reason) holding some that are not (rows added through the Python API with an
    offset), a private copy with them made UTC, as the next write migrates the log
    itself: the windows, the order and the days of a report compare the texts. The copy
    is SQLite's temporary database (on disk, deleted when it is closed)."""
    if table_columns(conn).get("requests") != OLDER_REQUESTS:
        return conn
    changes = _times_to_utc(conn)
    if not changes:
        return conn
    copy = sqlite3.connect("", check_same_thread=False)
    try:
        conn.backup(copy)
        with copy:
            copy.executemany("UPDATE requests SET timestamp = ? WHERE id = ?", changes)
    except BaseException:
        copy.close()
        raise
    conn.close()
    return copy


def open_for_writing(path: Path) -> sqlite3.Connection:
    """The log ``path``, shared with other processes: created with its folder where it
    is missing, checked to be a request log where it exists, its tables brought up to
    date (``upgrade``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise unusable(path, "(log.path) cannot be opened", e) from e
    if path.is_file() and path.stat().st_size > 0:
        open_checked(path, read_only=False).close()  # checks before anything is written
    db: sqlite3.Connection | None = None
    try:
        db = open_shared(path, SCHEMA)
        upgrade(db)
        unwritable = _write_refused(db)
    except (sqlite3.DatabaseError, OSError) as e:
        if db is not None:
            db.close()
        raise unusable(path, "(log.path) cannot be opened", e) from e
    if unwritable is not None:
        db.close()
        raise RequestLogError(
            f"request log {path} (log.path) cannot be written ({unwritable}), and every "
            f"answer is logged; make it writable, or point log.path at another file "
            f"(routerllm report reads it as it is)"
        )
    return db


def _write_refused(db: sqlite3.Connection) -> str | None:
    """Why SQLite refuses to write ``db``, or None where it can: a file it may only read
    (another user's, a read-only disk) it opens read-only without a word, and says so at
    the first write, once the answer to log has been paid for. The write tried changes
    nothing, and waits for no other process: one writing now holds a log it can write."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        with db:
            db.execute("DELETE FROM requests WHERE 0")
    except sqlite3.OperationalError as e:
        return None if is_locked(e) else str(e)
    finally:
        db.execute(f"PRAGMA busy_timeout = {round(sqlite_busy.BUSY_TIMEOUT_S * 1000)}")
    return None


def open_checked(path: Path, read_only: bool) -> sqlite3.Connection:
    """A read-only connection to the existing database ``path``, which must be a request
    log (when ``read_only``, one that holds the tables already; one another process is
    creating is read as a new, empty log, in memory). Only to read it (a report), a log
    another process holds until its connection closes is said to be at once
    (``open_read_only``'s ``impatient``); a writer's check waits the busy timeout."""
    try:
        conn = open_read_only(path, impatient=read_only)
    except (sqlite3.DatabaseError, OSError) as e:
        raise unusable(path, "(log.path) cannot be opened", e) from e
    try:
        tables = table_columns(conn)
        # A log still being created by another process may lack some of its tables.
        foreign = [
            name
            for name, columns in tables.items()
            if TABLES.get(name) != columns
            and (name, columns)
            not in (
                ("requests", OLDER_REQUESTS),
                ("requests", BEFORE_GRID),
                ("requests", BEFORE_COMPLETION_CHARS),
                ("requests", BEFORE_CPU_SHARE),
                ("requests", BEFORE_MODEL_LOADED),
                ("pending_feedback", OLDER_PENDING),
                ("load_errors", OLDER_LOAD_ERRORS),
            )
        ]
        missing = read_only and not foreign and not set(REQUIRED_TABLES) <= set(tables)
        # one another process is creating now: switched to WAL mode, its tables made
        # one by one, and no request logged before all are: read as a new, empty log
        creating = missing and (
            "requests" not in tables
            or not conn.execute("SELECT 1 FROM requests LIMIT 1").fetchall()
        )
    except sqlite3.DatabaseError as e:  # not an SQLite file at all
        conn.close()
        raise unusable(path, "(log.path) cannot be opened", e) from e
    if creating:
        conn.close()
        return empty_log()
    if newer := foreign and _newer_than_this(tables):
        conn.close()
        raise RequestLogError(
            f"request log {path} (log.path) has {', '.join(newer)}, which this version of "
            f"RouterLLM does not know: a newer RouterLLM wrote it (upgrade RouterLLM to use "
            f"it), or it is another program's database (point log.path at a new file)"
        )
    if foreign or missing:
        conn.close()
        what = f" (unexpected tables: {', '.join(foreign)})" if foreign else ""
        raise RequestLogError(
            f"{path} is not a RouterLLM request log{what}; point log.path at a "
            f"request log or at a new file"
        )
    return conn


def _newer_than_this(tables: dict[str, list[str]]) -> list[str]:
    """The tables and columns (``table.column``) a log holds beyond this version's, where
    it holds every table of this version's with its columns first, as a newer RouterLLM's
    log does (each version has added tables or columns at the end; another program's
    database that an older RouterLLM, which did not check, gave a log's tables holds them
    too); [] for any other database, or a log this version knows."""
    if not all(tables.get(name, [])[: len(columns)] == columns for name, columns in TABLES.items()):  # fmt: skip
        return []
    extra_tables = [name for name in tables if name not in TABLES]
    extra_columns = [f"{name}.{c}" for name, columns in TABLES.items() for c in tables[name][len(columns):]]  # fmt: skip
    return extra_tables + extra_columns


def upgrade(db: sqlite3.Connection) -> None:
    """An older log's tables given what they lack (``SCHEMA`` made the missing ones)."""
    _add_finish_reason(db)
    _add_grid(db)
    _add_columns(db, "requests", BEFORE_COMPLETION_CHARS, ("completion_chars INTEGER",))
    _add_columns(db, "requests", BEFORE_CPU_SHARE, ("others_cpu_share REAL",))
    _add_columns(db, "requests", BEFORE_MODEL_LOADED, ("model_loaded INTEGER",))
    _add_pending_folder(db)
    _add_load_error_model(db)


def _add_finish_reason(db: sqlite3.Connection) -> None:
    """Give an older log its finish_reason column (another process may be doing it
    too), and its timestamps the UTC form the windows compare (older versions stored
    a ``RequestRecord``'s timestamp as it came)."""
    if table_columns(db)["requests"] != OLDER_REQUESTS:
        return
    try:
        with db:
            db.execute("ALTER TABLE requests ADD COLUMN finish_reason TEXT NOT NULL DEFAULT ''")  # fmt: skip
            db.executemany("UPDATE requests SET timestamp = ? WHERE id = ?", _times_to_utc(db))
    except sqlite3.OperationalError as e:
        if "duplicate column" not in str(e):
            raise


def _add_grid(db: sqlite3.Connection) -> None:
    """Give an older log's requests their grid columns; the rows kept before get "" and
    NULL, their grid not recorded."""
    _add_columns(db, "requests", BEFORE_GRID, (
        "grid_country TEXT NOT NULL DEFAULT ''", "grid_region TEXT NOT NULL DEFAULT ''",
        "grid_g_per_kwh REAL",
    ))  # fmt: skip


def _add_columns(
    db: sqlite3.Connection, table: str, before: list[str], columns: tuple[str, ...]
) -> None:
    """Add ``columns`` (their definitions) to ``table`` where its columns are ``before``:
    another process may be doing it too, so all in one transaction, checked again once
    it is held."""
    if table_columns(db)[table] != before:
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        if table_columns(db)[table] == before:
            for column in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


#: ``utc_timestamp``'s form, which every request has been logged in since 2026-12-02: a
#: time that has it is in UTC already (read without parsing it).
_DIGIT = "[0-9]"
_UTC_FORM = f"{_DIGIT * 4}-{_DIGIT * 2}-{_DIGIT * 2}T{_DIGIT * 2}:{_DIGIT * 2}:{_DIGIT * 2}.{_DIGIT * 6}+00:00"  # fmt: skip


def _times_to_utc(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(its time in UTC, id) for each request of an older log whose timestamp is
    another time's text (older versions stored a ``RequestRecord``'s as it came); one
    that is no ISO time is left as it is (reports name it)."""
    changes = []
    sql = "SELECT id, timestamp FROM requests WHERE timestamp NOT GLOB ?"
    for rid, stamp in db.execute(sql, [_UTC_FORM]).fetchall():
        try:
            utc = utc_timestamp(stamp)
        except RouterLLMError:
            continue
        if utc != stamp:
            changes.append((utc, rid))
    return changes


def _add_pending_folder(db: sqlite3.Connection) -> None:
    """Give an older log's pending requests their folder column (another process may
    be doing it too; the rows kept before get "", any folder's), and the index by
    which each folder keeps its newest rows."""
    if table_columns(db)["pending_feedback"] == OLDER_PENDING:
        try:
            with db:
                db.execute("ALTER TABLE pending_feedback ADD COLUMN folder TEXT NOT NULL DEFAULT ''")  # fmt: skip
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise
    db.execute("CREATE INDEX IF NOT EXISTS pending_folder ON pending_feedback(folder)")


def _add_load_error_model(db: sqlite3.Connection) -> None:
    """Give an older log's failed loads their model and energy columns."""
    _add_columns(db, "load_errors", OLDER_LOAD_ERRORS, (
        "model TEXT NOT NULL DEFAULT ''", "energy_kwh REAL",
    ))  # fmt: skip


def empty_log() -> sqlite3.Connection:
    """A new, empty log, in memory: what a reader reads where a writer would start one."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(SCHEMA)
    return conn
