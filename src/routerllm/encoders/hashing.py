"""A feature-hashing bag-of-words encoder: no weights, no dependencies, ~microseconds per text.

Each lower-cased word is hashed (CRC32) into one of ``dim`` bins; the counts
are L2-normalised. Spec ``hashing`` (256 bins) or ``hashing:<dim>``. Weak as
semantics go, but real, deterministic and instant: the encoder of the fast
tests and a floor for the encoder comparisons.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from routerllm.encoders.base import Encoder, check_texts
from routerllm.exceptions import ConfigError

_WORD = re.compile(r"\w+")
#: Far above any useful width; a typo such as hashing:99999999 would need ~400 MB a text.
MAX_DIM = 1 << 16


class HashingEncoder(Encoder):
    #: Its vectors as ``encode`` below computes them (part of its cache key): bump it with
    #: any change to them; tests/test_encoders.py records the vectors of each version.
    encoding_version = 1

    def __init__(self, dim: int | str = 256) -> None:
        try:
            self.dim = int(dim)
        except ValueError:
            raise ConfigError(
                f"hashing encoder dimension must be an integer, got {dim!r}"
            ) from None
        if not 1 <= self.dim <= MAX_DIM:
            raise ConfigError(f"hashing encoder dimension must be in 1..{MAX_DIM}, got {dim!r}")
        self.spec = "hashing" if self.dim == 256 else f"hashing:{self.dim}"

    @classmethod
    def width_of(cls, arg: str) -> int | None:
        try:
            return cls(arg or 256).dim  # nothing to load: it is its own width
        except ConfigError:
            return None

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = check_texts(texts, batch_size)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
