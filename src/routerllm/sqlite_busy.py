"""Opening a SQLite file that other processes open too (the request log, the
embedding cache), in WAL mode: SQLite's busy timeout covers ordinary writes,
but not every moment at which it can refuse; and opening one read-only, to check
whose file it is before writing to it (the request log, the HumanEval store)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
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
            if not is_locked(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def is_locked(error: Exception) -> bool:
    """Whether SQLite refused because another connection holds the database ("database
    is locked", "database table is locked")."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def holder(path: str | Path) -> str:
    """Who holds ``path`` locked, for an error message: "process 1234 (sqlite3)" where
    Linux names the process holding SQLite's write lock (a write transaction, or for a
    file not in WAL mode, a reader keeping a writer from committing), else "another
    process". Locks of this process's own connections are not seen (POSIX locks are a
    process's)."""
    pid = _lock_owner(Path(path))
    if pid is None:
        return "another process"
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return f"process {pid}"
    return f"process {pid} ({name})"


def _lock_owner(path: Path) -> int | None:
    """The id of another process holding a lock that keeps this one from writing
    ``path``: the WAL write lock (byte 120 of its ``-shm``), else the rollback journal's
    lock bytes (the 512 from 2^30 of the file itself); None where none is found or it
    cannot be asked. Read from Linux's /proc/locks, not asked of the file: opening and
    closing it here would drop every POSIX lock this process's own SQLite connections
    hold on it."""
    shm = path.with_name(path.name + "-shm")
    target, first, last = (shm, 120, 120) if shm.is_file() else (path, 1 << 30, (1 << 30) + 511)
    try:
        st = os.stat(target)
        table = Path("/proc/locks").read_text(encoding="utf-8")
    except OSError:  # not Linux, or the file is gone
        return None
    me, dev = os.getpid(), (os.major(st.st_dev), os.minor(st.st_dev))
    for line in table.splitlines():
        # "1: POSIX  ADVISORY  WRITE 1234 fe:00:2149381 120 120"; a waiter's has "->"
        fields = line.split()
        if len(fields) != 8 or fields[1] not in ("POSIX", "OFDLCK"):
            continue
        _, _, _, _, pid, ident, start, end = fields
        try:
            major, minor, inode = ident.split(":")
            owner, lo = int(pid), int(start)
            hi = None if end == "EOF" else int(end)
            same = int(inode) == st.st_ino and (int(major, 16), int(minor, 16)) == dev
        except ValueError:
            continue
        if same and owner > 0 and owner != me and lo <= last and (hi is None or hi >= first):
            return owner
    return None


def open_shared(
    path: str | Path, schema: str, *pragmas: str, page_size: int | None = None
) -> sqlite3.Connection:
    """A connection to ``path`` (usable from several threads, waiting up to
    ``BUSY_TIMEOUT_S`` for other processes) in WAL mode, with the extra ``pragmas``
    run and ``schema`` (a script) applied. Closed again if any of it fails. A new file
    gets pages of ``page_size`` bytes (a file that exists keeps its own)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        if page_size is not None:  # before WAL mode, which fixes the size in the new file
            conn.execute(f"PRAGMA page_size = {int(page_size)}")
        when_free(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        for pragma in pragmas:
            conn.execute(pragma)
        when_free(lambda: conn.executescript(schema))
    except BaseException:
        conn.close()
        raise
    return conn


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change ``path``. A WAL database in a folder where
    SQLite cannot create its ``-shm`` file, or on a full disk, where it cannot size it,
    opens only as immutable (no locking); see ``in_unwritable_folder``."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as e:
        # A hot journal (its writer killed mid-write) is rolled back only by a writer.
        hot = _hot(path, "-journal")
        if path.is_file() and (hot or not os.access(path.parent, os.W_OK) or _no_room(e)):
            return in_unwritable_folder(path)
        raise


#: SQLite's extended codes for a ``-shm`` file it could not write its first bytes to or
#: size: SQLITE_IOERR_SHMOPEN, SQLITE_IOERR_SHMSIZE.
_SHM_UNWRITABLE = (4618, 4874)


def _no_room(error: sqlite3.Error) -> bool:
    """Whether SQLite failed for want of room for the ``-shm`` file a WAL reader's locks
    live in (a full disk: "disk I/O error"); no process can write the database through
    it either. Python 3.10 does not say: False."""
    return getattr(error, "sqlite_errorcode", None) in _SHM_UNWRITABLE


def in_unwritable_folder(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` in a folder SQLite cannot write (or with a hot journal,
    which only a writer rolls back). Opened immutable, it would not read the rows still
    in its ``-wal`` file (a log copied without its ``-shm``, or whose writer has not
    checkpointed), and would read the half-written pages that a ``-journal`` left by a
    writer killed mid-write undoes: where there is either, the file and it are copied to
    a private folder, opened there (SQLite rolls the journal back in the copy) and read
    into memory; ``path`` itself is not changed."""
    beside = [s for s in ("-wal", "-journal") if _hot(path, s)]
    if not beside:
        return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        for suffix in beside:
            shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
        source, conn = sqlite3.connect(copy), sqlite3.connect(":memory:", check_same_thread=False)
        try:
            source.backup(conn)
        finally:
            source.close()
    return conn


def _hot(path: Path, suffix: str) -> bool:
    """Whether ``path`` has a non-empty ``suffix`` file beside it (``-wal``, ``-journal``)."""
    beside = path.with_name(path.name + suffix)
    return beside.is_file() and beside.stat().st_size > 0


def table_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Each table of ``conn`` (SQLite's own left out) with its columns, in order."""
    names: list[str] = []

    def read() -> None:
        names[:] = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]

    when_free(read)
    return {n: [r[1] for r in conn.execute(f"PRAGMA table_info({n!r})")] for n in names}
