"""``minilm-static``: a static token table distilled from the packaged MiniLM.

Model2Vec's idea, done with what ships here: every one of MiniLM's 30,522
vocabulary tokens is run once through the int8 ONNX MiniLM as the one-token
text ``[CLS] token [SEP]``, and its mean-pooled output becomes that token's
row. A text's embedding is the mean of its tokens' rows, L2-normalised, so a
one-token text gets exactly the vector ``minilm-onnx`` gives it, and any text
costs one tokenizer call and a table lookup (~0.03 ms), like WordLlama's
``static``. With it the quality and logistic routers route at least as well
as with ``static`` on both routing-outcome sets, the quality router best of
all (README, "Routing on real outcome data"): hence the outcome routers'
default.

The table is built on first use (~15 s on 2 cores) and cached as
``$ROUTERLLM_CACHE/encoders/minilm-static-<model digest>.npy`` (float16,
23 MB; default ``~/.cache/routerllm``). A damaged cache file (cut short, of
another shape, with NaN or all-zero rows) is rebuilt; a
cache that cannot be written gets a warning and the table is used from memory;
within one process a table is built or read once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.encoders.base import Encoder, mean_of_rows, package_key
from routerllm.encoders.hf import check_texts
from routerllm.encoders.minilm import (
    MINILM_DIM,
    MINILM_PIP,
    ONNX_PIP,
    OnnxMiniLMEncoder,
    minilm_dir,
    onnx_minilm_files,
    onnx_model_path,
)
from routerllm.exceptions import missing_dependency
from routerllm.files import NPZ_DAMAGE, publish, remove_stale_staged, staged
from routerllm.paths import cache_root

log = logging.getLogger(__name__)

#: Token ids run through MiniLM per ONNX call while building the table.
BUILD_BATCH = 1024
#: Tables already built or read in this process, by model digest.
_TABLES: dict[str, np.ndarray] = {}


def tables_dir() -> Path:
    """$ROUTERLLM_CACHE/encoders, or ~/.cache/routerllm/encoders."""
    return cache_root() / "encoders"


def _load_tokenizer() -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise missing_dependency("tokenizers", "learn", e) from e
    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    # A static table has no length limit: the whole text counts.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def build_table(
    encoder: OnnxMiniLMEncoder, vocab_size: int, cls_id: int, sep_id: int
) -> np.ndarray:
    """Row ``i``: MiniLM's mean-pooled output for ``[CLS] i [SEP]`` (vocab_size, 384)."""
    table = np.empty((vocab_size, MINILM_DIM), dtype=np.float32)
    for start in range(0, vocab_size, BUILD_BATCH):
        ids = np.arange(start, min(vocab_size, start + BUILD_BATCH))
        rows = np.stack([np.full(len(ids), cls_id), ids, np.full(len(ids), sep_id)], axis=1)
        table[ids] = encoder.pooled_ids(rows)
    return table


@functools.cache
def _digest(path: Path) -> str:
    """The model file's sha256 prefix, hashed once per process (like ``_TABLES``)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class DistilledMiniLMEncoder(Encoder):
    """Static embeddings distilled from all-MiniLM-L6-v2 (spec "minilm-static", 384-d).

    The tokenizer loads in the constructor; the table on the first ``encode``
    (or ``load()``). A text with no token (empty, whitespace, control characters)
    gets the zero vector; one of no known word piece (emoji) is all ``[UNK]``.
    """

    spec = "minilm-static"
    dim = MINILM_DIM
    #: Its vectors as ``encode`` below (and ``mean_of_rows``) computes them from the table
    #: (part of its cache key): bump it with any change to them. A table built otherwise
    #: (``build_table``) is another table too: change ``table_path``, which names the
    #: model's digest alone, or the old file is read.
    encoding_version = 1

    def __init__(self) -> None:
        self._tokenizer = _load_tokenizer()
        self._table: np.ndarray | None = None

    PACKAGES = (ONNX_PIP, MINILM_PIP)

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        return onnx_minilm_files()  # its table is distilled from them

    @property
    def weights_key(self) -> str:
        return package_key(self.spec, *self.PACKAGES)

    @property
    def table_path(self) -> Path:
        return tables_dir() / f"{self.spec}-{_digest(onnx_model_path())}.npy"

    def load(self) -> np.ndarray:
        """The token table: from this process, the cache file, or built now."""
        if self._table is not None:
            return self._table
        path = self.table_path
        table = _TABLES.get(path.stem)
        if table is None:
            # what a process killed as it wrote a table left (SIGKILL): 23 MB each
            remove_stale_staged(path.parent)
            table = self._read(path)
        if table is None:
            log.info("building the %s token table (once; cached at %s)", self.spec, path)
            onnx = OnnxMiniLMEncoder()
            table = build_table(
                onnx,
                self._tokenizer.get_vocab_size(),
                self._tokenizer.token_to_id("[CLS]"),
                self._tokenizer.token_to_id("[SEP]"),
            ).astype(np.float16)
            try:
                self._write(path, table)
            except OSError as e:  # a read-only cache, a full disk: the table still serves
                log.warning(
                    "the %s token table cannot be cached at %s (%s); it is used from memory "
                    "and built again by the next process (set ROUTERLLM_CACHE to a writable "
                    "folder)",
                    self.spec,
                    path,
                    e,
                )
        _TABLES[path.stem] = table
        self._table = table
        return table

    def _read(self, path: Path) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError, *NPZ_DAMAGE) as e:  # a damaged header too
            log.warning("%s is unreadable (%s): rebuilding it", path, e)
            return None
        expected = (self._tokenizer.get_vocab_size(), self.dim)
        if table.shape != expected or table.dtype != np.float16:
            problem = f"shape {table.shape}, {table.dtype}"
        elif not np.isfinite(table).all():
            problem = "values that are not finite"
        elif not table.view(np.uint64).any(axis=1).all():
            # No token's MiniLM output is all zeros: such a row is a block a crash left
            # unwritten, and would give the texts of its tokens zero vectors.
            problem = "all-zero rows"
        else:
            return np.asarray(table)
        log.warning("%s is damaged (%s): rebuilding it", path, problem)
        return None

    @staticmethod
    def _write(path: Path, table: np.ndarray) -> None:
        # Write, sync, then rename: a reader never sees half a file, two builders never
        # clash, and a crash of the machine leaves no file of unwritten (zero) blocks.
        with staged(path) as tmp:
            with tmp.open("wb") as f:
                np.save(f, table)
            publish(tmp, path)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        items = check_texts(texts, batch_size)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        table = self.load()
        for i, encoding in enumerate(self._tokenizer.encode_batch(items, add_special_tokens=False)):
            out[i] = mean_of_rows(table, encoding.ids)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def __repr__(self) -> str:
        return "DistilledMiniLMEncoder()"
