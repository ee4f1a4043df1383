"""A persistent embedding cache: one SQLite file, keyed by (encoder spec, sha256 of the text).

Vectors are stored as little-endian float32 blobs, so a cached vector is
bit-for-bit the vector the encoder returned. The file is opened in WAL mode
with a busy timeout, so several processes (a trainer and an evaluation, say)
can share one cache. A cache is only a cache: a corrupt file is moved aside
with a warning and an empty one takes its place instead of failing the run (in a
folder that cannot be written it is left as it is, and this run cached in memory), and
a cache that cannot be written (a read-only file or folder, a full disk) is
read where it can be, with a warning, and the vectors are returned uncached. A NaN or
infinite vector is returned to the caller but never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np

from routerllm import sqlite_busy
from routerllm.exceptions import RouterLLMError
from routerllm.path_checks import refuse_special_database
from routerllm.paths import cache_root
from routerllm.sqlite_busy import open_read_only, open_shared

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DB_NAME = "embeddings.sqlite3"
# A rowid table: rows are appended in the order they are stored, and only the narrow
# (spec, sha256) index takes random keys. As a WITHOUT ROWID table keyed by the sha256,
# each 1,024 random keys stored rewrote most of the table's 32 KB leaf pages, into the
# WAL and again at checkpoints: 47 times the file's bytes written at 100,000 prompts.
_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    spec TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (spec, sha256)
)
"""
_SCHEMA = _TABLE.format(name="embeddings")
_COLUMNS = ("spec", "sha256", "dim", "vector")
#: Bytes a page of a new cache file holds. In SQLite's default 4 KB pages a row of the
#: earlier WITHOUT ROWID table spilled to an overflow page of its own (4.7 KB a vector of
#: 256 to 1,024 floats). In 32 KB pages, measured on 10,000 vectors with their index: 256
#: floats take 1.2 KB, 384 1.7 KB, 768 3.4 KB, 1,024 4.8 KB. A file that exists keeps its
#: page size.
PAGE_SIZE = 32768
#: KiB of pages SQLite may keep in memory for a cache connection (its default: 2,000).
CACHE_KIB = 65536
# Stay well under SQLite's limit on bound parameters (999 before 3.32).
_CHUNK = 500
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def default_cache_dir() -> Path:
    """$ROUTERLLM_CACHE/embeddings, or ~/.cache/routerllm/embeddings."""
    return cache_root() / "embeddings"


def text_key(text: str) -> bytes:
    """The sha256 digest that identifies a text in the cache."""
    # surrogatepass: a lone surrogate from a badly decoded file still gets a key.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    # Python 3.10: corruption is a bare DatabaseError; locks, I/O and misuse are subclasses.
    return type(error) is sqlite3.DatabaseError


def _in_memory() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(_SCHEMA)
    return conn


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _keyed_by_sha(conn: sqlite3.Connection) -> bool:
    """Whether the table is the WITHOUT ROWID one versions before 2026-12-06 made."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'"
    ).fetchone()
    columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(embeddings)"))
    if row is None or sorted(columns) != sorted(_COLUMNS):
        return False  # another version's table: _ours leaves it as it is
    return "WITHOUT ROWID" in " ".join(str(row[0]).upper().split())


def _rebuild_keyed_table(conn: sqlite3.Connection, path: Path) -> None:
    """Where the file holds the older WITHOUT ROWID table, copy its rows into a rowid
    table, once, in one transaction: every later store writes ~2x what it adds rather
    than rewriting the table's pages (old and new versions read and write either). Where
    it cannot (another process holds the file, a full disk), the old table is used as it
    is: it works, only writes more; a later run tries again."""
    if not _keyed_by_sha(conn):
        return
    rows = None
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _keyed_by_sha(conn):  # still: another process may have rebuilt it meanwhile
                rows = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
                conn.execute(_TABLE.format(name="embeddings_rowid"))
                conn.execute(
                    f"INSERT INTO embeddings_rowid ({', '.join(_COLUMNS)}) "
                    f"SELECT {', '.join(_COLUMNS)} FROM embeddings"
                )
                conn.execute("DROP TABLE embeddings")
                conn.execute("ALTER TABLE embeddings_rowid RENAME TO embeddings")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    except sqlite3.OperationalError as e:
        log.warning(
            "embedding cache %s keeps its older layout this run (%s): it works, but each "
            "store rewrites much of the file; a later run converts it",
            path,
            e,
        )
        return
    if rows is None:
        return
    log.info("embedding cache %s: %d rows copied into a table that appends them", path, rows)
    # The old table's pages, now free, would double the file until new rows fill them.
    with contextlib.suppress(sqlite3.OperationalError):  # another process reading it: kept
        conn.execute("VACUUM")


class EmbeddingCache:
    """Embeddings of one encoder (``spec``) stored on disk under ``cache_dir``."""

    def __init__(self, spec: str, cache_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.path = self.dir / DB_NAME
        self._lock = threading.Lock()
        self._warned = False
        self._conn = self._open()

    # -- public API ---------------------------------------------------------

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """One entry per text: its cached float32 vector, or None when not cached."""
        keys = [text_key(t) for t in texts]
        unique = list(dict.fromkeys(keys))
        found: dict[bytes, np.ndarray] = self._read(lambda: self._select(unique), {})
        return [found[k].copy() if k in found else None for k in keys]

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text (row i of ``vectors`` for ``texts[i]``) in one transaction."""
        array = np.asarray(vectors, dtype="<f4")
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise ValueError(
                f"put_many needs a (len(texts), dim) array; got shape {array.shape} "
                f"for {len(texts)} texts"
            )
        if not texts:
            return
        # A NaN or infinite vector (a model with broken weights) is not kept: served
        # again, it would outlive the fix of a model whose key did not change.
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            log.warning(
                "%d of %d embeddings are NaN or infinite (encoder %s); they are not cached",
                int((~finite).sum()),
                len(texts),
                self.spec,
            )
        dim = int(array.shape[1])
        rows = [
            (self.spec, text_key(t), dim, np.ascontiguousarray(v).tobytes())
            for t, v, ok in zip(texts, array, finite, strict=True)
            if ok
        ]
        if not rows:
            return
        with self._lock:
            try:
                self._insert(rows)
            except sqlite3.DatabaseError as e:
                if not _is_corruption(e):
                    self._not_stored(e)
                    return
                self._recover(e)
                try:
                    self._insert(rows)
                except sqlite3.DatabaseError as again:
                    self._not_stored(again)

    def __len__(self) -> int:
        """Number of vectors cached for this spec."""
        query = "SELECT COUNT(*) FROM embeddings WHERE spec = ?"
        return self._read(lambda: int(self._conn.execute(query, (self.spec,)).fetchone()[0]), 0)

    def close(self) -> None:
        """Close the database connection; the cache cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache(spec={self.spec!r}, path={str(self.path)!r})"

    # -- internals ----------------------------------------------------------

    def _select(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for chunk in _chunks(keys, _CHUNK):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT sha256, dim, vector FROM embeddings WHERE spec = ? AND sha256 IN ({marks})",
                (self.spec, *chunk),
            )
            for key, dim, blob in rows:
                # A row whose blob does not match its dim, or holds NaN or infinity, is
                # damaged: a miss.
                if len(blob) == 4 * dim:
                    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32, copy=False)
                    if np.isfinite(vector).all():
                        found[key] = vector
        return found

    def _read(self, read: Callable[[], _T], empty: _T) -> _T:
        """``read()`` under the lock; where the file turns out corrupt, the cache is
        recovered (``_recover``) and the read finds ``empty``: a corrupt cache is a miss,
        never an error. Any other database error is raised."""
        with self._lock:
            try:
                return read()
            except sqlite3.DatabaseError as e:
                if not _is_corruption(e):
                    raise
                self._recover(e)
                return empty

    def _not_stored(self, error: sqlite3.DatabaseError) -> None:
        if not isinstance(error, sqlite3.OperationalError):
            raise error
        # read-only, disk full, locked too long
        self._unwritable(error, "these embeddings are returned, not stored; later ones are once it is free")  # fmt: skip

    def _insert(self, rows: list[tuple[str, bytes, int, bytes]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (spec, sha256, dim, vector) VALUES (?, ?, ?, ?)",
                rows,
            )

    def _connect(self) -> sqlite3.Connection:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Usable from several threads: a server shares one cache between them; _lock serialises.
        # WAL + NORMAL cannot corrupt the file; a crash loses at most the last writes.
        # A store of a fast encoder's 15 s (STORE_EVERY_S) holds up to ~200,000 rows: in
        # SQLite's default 2 MB page cache its index pages were spilled to the WAL over and
        # over (4.6 GB of write calls for 200,000 rows; 0.46 GB in 64 MB), taken as needed.
        conn = open_shared(
            self.path,
            _SCHEMA,
            "PRAGMA synchronous = NORMAL",
            f"PRAGMA cache_size = -{CACHE_KIB}",
            page_size=PAGE_SIZE,
        )
        try:
            _rebuild_keyed_table(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.dir.exists() and not self.dir.is_dir():
            raise RouterLLMError(f"embedding cache folder {self.dir} is a file, not a folder")
        refuse_special_database(self.path, "remove it, or set ROUTERLLM_CACHE to another folder")
        try:
            return self._ours(self._connect())
        except sqlite3.DatabaseError as e:
            if _is_corruption(e):
                # moved aside, a new file where it was; else left as it is, for this run only
                return self._ours(self._connect()) if self._quarantine(e) else _in_memory()
            if not isinstance(e, sqlite3.OperationalError):
                raise
            error: Exception = e
        except OSError as e:  # the folder cannot be made
            error = e
        # Read-only (a folder or file of another user's, a full disk), or locked: read what
        # it holds.
        self._unwritable(error, "this run reads it where it can and stores no new embeddings")
        try:
            conn = open_read_only(self.path)
        except (sqlite3.Error, OSError):  # OSError: no room to copy a WAL aside (a full disk)
            conn = None
        if conn is not None:
            try:
                return self._ours(conn)
            except sqlite3.Error:
                conn.close()
        return _in_memory()  # no file, or not one of ours to read: a cache for this run only

    def _ours(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """``conn``, where its table has this version's layout; else a cache for this run
        only, with a warning: a file of another version (or program) is left as it is,
        its rows kept for the version that wrote it."""
        columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(embeddings)"))
        if sorted(columns) == sorted(_COLUMNS):
            return conn
        conn.close()
        log.warning(
            "embedding cache %s was written by another version of routerllm (its table has "
            "columns %s); it is left as it is and embeddings are not cached this run "
            "(remove it, or set ROUTERLLM_CACHE to another folder)",
            self.path,
            ", ".join(columns) or "none",
        )
        return _in_memory()

    def _unwritable(self, error: Exception, meanwhile: str) -> None:
        """Warn, once, that the cache cannot be written; where another process kept it
        locked, the shared message (``sqlite_busy.locked``) and what is done ``meanwhile``."""
        if not self._warned and sqlite_busy.is_locked(error):
            log.warning("%s", sqlite_busy.locked(self.path, "embedding cache", meanwhile))
        elif not self._warned:
            log.warning(
                "embedding cache %s cannot be written (%s); embeddings not in it are "
                "computed and not stored (set ROUTERLLM_CACHE to a writable folder)",
                self.path,
                error,
            )
        self._warned = True

    def _recover(self, error: sqlite3.DatabaseError) -> None:
        """A new cache where a corrupt one was: a new file, or where the folder cannot be
        written, one for this run only (the file left as it is)."""
        self._conn.close()
        self._conn = _in_memory()
        if self._quarantine(error):
            try:
                self._conn = self._connect()
            except (sqlite3.OperationalError, OSError) as e:
                self._unwritable(e, "this run caches embeddings in memory")

    def _quarantine(self, error: sqlite3.DatabaseError) -> bool:
        """Move the corrupt file (and its WAL) aside, keeping it for inspection; False,
        with a warning, where the folder will not let it (a read-only cache): the file is
        left as it is."""
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            for suffix in ("", "-wal", "-shm"):
                live = self.path.with_name(self.path.name + suffix)
                kept = aside.with_name(aside.name + suffix)
                kept.unlink(missing_ok=True)  # an older corrupt copy: keep only the latest
                if live.exists():
                    os.replace(live, kept)
        except OSError as e:
            log.warning(
                "embedding cache %s is corrupt (%s) and cannot be moved aside (%s); it is "
                "left as it is and embeddings are not cached this run (remove it, or set "
                "ROUTERLLM_CACHE to a writable folder)",
                self.path,
                error,
                e.strerror or e,
            )
            self._warned = True  # this says the new embeddings are not stored
            return False
        log.warning(
            "embedding cache %s is corrupt (%s); moved it to %s and started an empty cache",
            self.path,
            error,
            aside,
        )
        return True
