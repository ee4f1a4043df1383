"""Opening a SQLite file that other processes open too (the request log, the
embedding cache), in WAL mode: SQLite's busy timeout covers ordinary writes,
but not every moment at which it can refuse; and opening one read-only, to check
whose file it is before writing to it (the request log, the HumanEval store). And the
one message (``locked``) for any of the project's SQLite files that another process
kept locked past the busy timeout."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: How long to wait for other processes (also used as the connections' busy timeout).
BUSY_TIMEOUT_S = 30.0
#: How long a reader that gives up early (``open_read_only(impatient=True)``: a report)
#: first waits before it looks at who holds the file: long enough for the moments a
#: writer locks it whole in WAL mode (the checkpoint of the last connection closing).
FIRST_TRY_S = 1.0


class HeldExclusively(sqlite3.OperationalError):
    """SQLite's "database is locked", said after ``waited_s`` (``FIRST_TRY_S``), not the
    busy timeout: another process holds the file with a lock it keeps until its
    connection closes (PRAGMA locking_mode=EXCLUSIVE) or its transaction ends."""

    def __init__(self, waited_s: float) -> None:
        super().__init__("database is locked")
        self.waited_s = waited_s


def when_free(action: Callable[[], object], timeout_s: float | None = None) -> None:
    """Run ``action``, retrying while SQLite says the database is locked, for up to
    ``timeout_s`` (default ``BUSY_TIMEOUT_S``). Its busy timeout covers ordinary writes,
    but while another process switches a new file to WAL mode or recovers it, SQLite can
    refuse at once ("database is locked") without waiting: several processes opening one
    file together hit this."""
    deadline = time.monotonic() + (BUSY_TIMEOUT_S if timeout_s is None else timeout_s)
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
    Linux names the process holding a lock that keeps this one out (``_lock_owner``),
    else "another process". Locks of this process's own connections are not seen (POSIX
    locks are a process's)."""
    return _who(_lock_owner(Path(path)))


def locked(
    path: str | Path, name: str, meanwhile: str, option: str = "", waited_s: float | None = None
) -> str:
    """The one message for a SQLite file of the project (``name``: "request log",
    "results store", "embedding cache") that another process kept locked past the busy
    timeout (or ``waited_s``, where less was waited: ``HeldExclusively``): the file (and
    the ``option`` that names it), its holder where Linux tells,
    the kind of lock, what frees it, and what the caller does ``meanwhile``: "request
    log x.sqlite (log.path) has been locked by process 1234 (sqlite3) for over 30 s (a
    write transaction left open, ...); end it (COMMIT or ROLLBACK) or close that
    connection; the next answers are logged once it is free"."""
    lock = _lock_owner(Path(path))
    how, todo = _UNKNOWN if lock is None else _HOLDING[lock[1]]
    where = f" ({option})" if option else ""
    waited = BUSY_TIMEOUT_S if waited_s is None else waited_s
    return (
        f"{name} {path}{where} has been locked by {_who(lock)} for over {waited:g} s "
        f"({how}); {todo}; {meanwhile}"
    )


#: What a holder does, by the kind of lock ``_lock_owner`` finds, and what ends it.
_HOLDING = {
    "write": (
        "a write transaction left open, e.g. in a sqlite3 shell or a SQLite browser",
        "end it (COMMIT or ROLLBACK) or close that connection",
    ),
    "exclusive": (
        "PRAGMA locking_mode=EXCLUSIVE, e.g. in a sqlite3 shell or a backup tool, which "
        "keeps it until its connection closes, or a write transaction left open",
        "close that connection",
    ),
    "read": (
        "a read transaction left open, or PRAGMA locking_mode=EXCLUSIVE, on a file not in "
        "WAL mode, where a reader keeps writers out, e.g. in a sqlite3 shell",
        "close that connection",
    ),
}
_UNKNOWN = (
    "a transaction left open or PRAGMA locking_mode=EXCLUSIVE, e.g. in a sqlite3 shell, a "
    "SQLite browser or a backup tool",
    "end it or close that connection",
)


def _who(lock: tuple[int, str] | None) -> str:
    """The process ``_lock_owner`` found, named by its pid and command where /proc still
    tells them."""
    if lock is None:
        return "another process"
    pid = lock[0]
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # gone meanwhile
        return f"process {pid}"
    return f"process {pid} ({name})"


def _lock_owner(path: Path) -> tuple[int, str] | None:
    """Another process holding a lock that keeps this one from reading or writing
    ``path``: its id and the lock's kind, "write" for the WAL write lock (byte 120 of
    the ``-shm``), "exclusive" for a write lock on the lock bytes of the file itself
    (the 512 from 2^30: SQLite's exclusive locking mode, which in WAL mode uses no
    ``-shm``, or leaves one another process left untouched; a rollback journal's
    write), "read" for a read lock on them where there is no ``-shm`` (a file not in
    WAL mode, where readers keep writers out; in WAL mode every connection holds one).
    None where none is found or it cannot be asked. Read from Linux's /proc/locks, not
    asked of the file: opening and closing it here would drop every POSIX lock this
    process's own SQLite connections hold on it."""
    try:
        table = Path("/proc/locks").read_text(encoding="utf-8")
        files = {_file_key(path): (False, 1 << 30, (1 << 30) + 511)}
    except OSError:  # not Linux, or the file is gone
        return None
    with contextlib.suppress(OSError):  # no -shm: not in WAL mode, or exclusive locking
        files[_file_key(path.with_name(path.name + "-shm"))] = (True, 120, 120)
    wal, me, reader = len(files) == 2, os.getpid(), None
    for line in table.splitlines():
        # "1: POSIX  ADVISORY  WRITE 1234 fe:00:2149381 120 120"; a waiter's has "->"
        fields = line.split()
        if len(fields) != 8 or fields[1] not in ("POSIX", "OFDLCK"):
            continue
        _, _, _, kind, pid, ident, start, end = fields
        try:
            major, minor, inode = ident.split(":")
            owner, lo = int(pid), int(start)
            hi = None if end == "EOF" else int(end)
            key = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if key not in files or owner <= 0 or owner == me:
            continue
        shm, first, last = files[key]
        if lo > last or (hi is not None and hi < first):
            continue
        if shm:
            return owner, "write"
        if kind == "WRITE":
            return owner, "exclusive"
        if not wal and reader is None:
            reader = owner
    return None if reader is None else (reader, "read")


def _file_key(path: Path) -> tuple[int, int, int]:
    """``path``'s device (major, minor) and inode, as /proc/locks names a file."""
    st = os.stat(path)
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


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


def open_read_only(path: Path, impatient: bool = False) -> sqlite3.Connection:
    """A connection that cannot change ``path``. A WAL database in a folder where
    SQLite cannot create its ``-shm`` file, or on a full disk, where it cannot size it,
    opens only as immutable (no locking); see ``in_unwritable_folder``. ``impatient``: a
    reader that only reports (nobody's data waits on it) is told ``HeldExclusively``
    after ``FIRST_TRY_S`` where another process holds the file locked until its
    connection closes, rather than after the busy timeout; one checking a file it will
    write waits it all, as writers do."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            _first_read(conn, path, impatient)
        except BaseException:
            conn.close()
            raise
        return conn
    except HeldExclusively:
        raise
    except sqlite3.OperationalError as e:
        # A hot journal (its writer killed mid-write) is rolled back only by a writer.
        hot = _hot(path, "-journal")
        if path.is_file() and (hot or not os.access(path.parent, os.W_OK) or _no_room(e)):
            return in_unwritable_folder(path)
        raise


def _first_read(conn: sqlite3.Connection, path: Path, impatient: bool) -> None:
    """Read ``conn`` once (SQLite opens the file at the first read), waiting for other
    processes up to the busy timeout; where ``impatient``, up to ``FIRST_TRY_S`` first,
    then no longer where Linux names a process holding the file's own lock bytes for
    writing: SQLite's exclusive locking mode, kept until its connection closes (a
    sqlite3 shell left open), which 30 s of waiting rarely sees end."""

    def read() -> None:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()

    first = min(FIRST_TRY_S, BUSY_TIMEOUT_S)
    if not impatient or first >= BUSY_TIMEOUT_S:
        read()
        return
    conn.execute(f"PRAGMA busy_timeout = {round(first * 1000)}")
    try:
        read()
    except sqlite3.OperationalError as e:
        if not is_locked(e):
            raise
        lock = _lock_owner(path)
        if lock is not None and lock[1] == "exclusive":
            raise HeldExclusively(first) from e
        # a holder that cannot be told (not Linux), or a lock that ends soon: waited for
        conn.execute(f"PRAGMA busy_timeout = {round((BUSY_TIMEOUT_S - first) * 1000)}")
        read()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {round(BUSY_TIMEOUT_S * 1000)}")


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
