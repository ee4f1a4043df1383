"""Opening a SQLite file that other processes open too (the request log, the
embedding cache), in WAL mode: SQLite's busy timeout covers ordinary writes,
but not every moment at which it can refuse."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

#: How long to wait for other processes (also used as the connections' busy timeout).
BUSY_TIMEOUT_S = 30.0


def when_free(action: Callable[[], object], timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Run ``action``, retrying while SQLite says the database is locked. Its busy
    timeout covers ordinary writes, but while another process switches a new file to
    WAL mode or recovers it, SQLite can refuse at once ("database is locked")
    without waiting: several processes opening one file together hit this."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_shared(path: str | Path, schema: str, *pragmas: str) -> sqlite3.Connection:
    """A connection to ``path`` (usable from several threads, waiting up to
    ``BUSY_TIMEOUT_S`` for other processes) in WAL mode, with the extra ``pragmas``
    run and ``schema`` (a script) applied. Closed again if any of it fails."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        when_free(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        for pragma in pragmas:
            conn.execute(pragma)
        when_free(lambda: conn.executescript(schema))
    except BaseException:
        conn.close()
        raise
    return conn
