"""Opening a SQLite file that other processes open too (the request log, the
embedding cache): SQLite's busy timeout covers ordinary writes, but not every
moment at which it can refuse."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

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
