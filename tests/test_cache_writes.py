"""What the embedding cache writes to disk against what it keeps.

2026-12-06: `eval-routing --encoder hashing` on 200,000 prompts wrote ~15 GB for a 272 MB
cache: its WITHOUT ROWID table, keyed by the prompts' random sha256, had most of its
32 KB pages rewritten by each 1,024 prompts stored (into the WAL, and again at
checkpoints), and a fast encoder stored each 1,024 prompts in a transaction of its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.encoders import base as encoders_base
from routerllm.encoders.base import CACHED_PART
from routerllm.encoders.cache import DB_NAME, EmbeddingCache

_OLD_TABLE = (
    "CREATE TABLE embeddings (spec TEXT NOT NULL, sha256 BLOB NOT NULL, dim INTEGER "
    "NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (spec, sha256)) WITHOUT ROWID"
)


def _stores(encoder: CachedEncoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of texts of each store (transaction) the encoder's cache makes."""
    sizes: list[int] = []
    put_many = encoder.cache.put_many

    def counted(texts: list[str], vectors: np.ndarray) -> None:
        sizes.append(len(texts))
        put_many(texts, vectors)

    monkeypatch.setattr(encoder.cache, "put_many", counted)
    return sizes


def test_a_fast_encoder_stores_a_long_encoding_in_one_transaction_not_one_a_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"prompt {i}" for i in range(3 * CACHED_PART + 5)]
    encoder = CachedEncoder(create_encoder("hashing"), str(tmp_path))
    stores = _stores(encoder, monkeypatch)
    out = encoder.encode(texts)
    assert stores == [len(texts)]  # the hashing encoder takes well under STORE_EVERY_S
    assert len(encoder.cache) == len(texts)
    np.testing.assert_array_equal(out, create_encoder("hashing").encode(texts))


def test_a_slow_encoder_stores_each_part_as_it_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One whose part takes STORE_EVERY_S or more (0 here: every part does) stores each."""
    monkeypatch.setattr(encoders_base, "STORE_EVERY_S", 0.0)
    texts = [f"prompt {i}" for i in range(2 * CACHED_PART + 5)]
    encoder = CachedEncoder(create_encoder("hashing"), str(tmp_path))
    stores = _stores(encoder, monkeypatch)
    encoder.encode(texts)
    assert stores == [CACHED_PART, CACHED_PART, 5]


def _wal_bytes_of_one_store(cache: EmbeddingCache, texts: list[str], vectors: np.ndarray) -> int:
    conn = cache._conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty WAL: what follows is this store
    cache.put_many(texts, vectors)
    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    return int(frames) * int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_storing_1024_vectors_into_a_cache_of_many_writes_little_more_than_them(
    tmp_path: Path,
) -> None:
    """Into a cache of 20,480 rows, 1,024 more (1.1 MB) wrote 17 MB to the WAL: most
    of the table's pages, each holding a few of the random keys."""
    encoder = create_encoder("hashing")
    texts = [f"prompt {i}" for i in range(21 * CACHED_PART)]
    vectors = encoder.encode(texts)
    with EmbeddingCache(encoder.cache_key, tmp_path) as cache:
        cache.put_many(texts[: 20 * CACHED_PART], vectors[: 20 * CACHED_PART])
        written = _wal_bytes_of_one_store(cache, texts[-CACHED_PART:], vectors[-CACHED_PART:])
    stored = CACHED_PART * vectors[0].nbytes
    assert written < 3 * stored, f"{written / stored:.1f} times the bytes stored"


def test_a_cache_of_the_older_layout_is_converted_once_and_keeps_its_vectors(
    tmp_path: Path,
) -> None:
    encoder = create_encoder("hashing")
    texts = [f"prompt {i}" for i in range(3000)]
    vectors = encoder.encode(texts)
    with EmbeddingCache(encoder.cache_key, tmp_path) as cache:
        cache.put_many(texts, vectors)
        rows = cache._conn.execute("SELECT spec, sha256, dim, vector FROM embeddings").fetchall()
    (tmp_path / DB_NAME).unlink()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as conn, conn:
        conn.execute("PRAGMA page_size = 32768")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(_OLD_TABLE)  # as a version before 2026-12-06 made it
        conn.executemany("INSERT INTO embeddings VALUES (?, ?, ?, ?)", rows)
    with EmbeddingCache(encoder.cache_key, tmp_path) as cache:
        (sql,) = cache._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'embeddings'").fetchone()  # fmt: skip
        assert "WITHOUT ROWID" not in sql.upper()
        assert len(cache) == len(texts)
        np.testing.assert_array_equal(np.stack(cache.get_many(texts)), vectors)  # type: ignore[arg-type]
    inner = create_encoder("hashing")
    np.testing.assert_array_equal(CachedEncoder(inner, str(tmp_path)).encode(texts), vectors)
