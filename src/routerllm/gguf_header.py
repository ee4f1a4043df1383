"""What a GGUF file's header says, read without loading the model: its architecture,
the architecture's integer hyperparameters (``gguf_hyperparameters``), the context it
was trained for, and from them the KV cache llama.cpp allocates for a context.

Each version of a file (its size and mtime) is read once; a file this reader does not
know (another format, a GGUF version it cannot read, a corrupt header) reads as
saying nothing, and llama.cpp then reads it, or refuses it.
"""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"
# The byte size of each fixed-size GGUF metadata value type (8: string, 9: array).
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_INTS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 10: "Q", 11: "q"}
#: The architecture's metadata read before the header's reading stops early (where a
#: file has them all; key_length and value_length are optional).
_HYPERPARAMETERS = (
    "context_length",
    "block_count",
    "embedding_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
)
_F16_BYTES = 2  # a KV cache's element in llama.cpp's default type
#: The most items of an array of integers read from the header (a value per layer; llama.cpp
#: takes at most 512 layers); longer ones (the tokenizer's) are skipped.
_MAX_ARRAY = 4096
#: Hybrid architectures (llama.cpp 0.3.16, llama-cpp-python's pin): their layers without KV
#: heads are recurrent, with a state of their own and no KV cache. Another's such layer
#: keeps a cache of values as wide as the widest layer's (see ``kv_cache_bytes_estimate``).
_HYBRIDS = frozenset({"jamba", "lfm2", "granitehybrid", "plamo2", "falcon-h1", "nemotron_h"})
#: The architectures llama.cpp 0.3.16 runs with layers attending to a sliding window
#: (``<arch>.attention.sliding_window`` tokens), and the period of their pattern: of each
#: n layers, the first n - 1 are windowed, the last attends to the whole context (set in
#: its code: it reads no pattern from the header). Another's window is not counted on.
_WINDOW_PERIODS = {"gemma2": 2, "gemma3": 6, "cohere2": 4}
#: The bytes of the header read at a time where a list of strings is skipped.
_BLOCK = 1 << 16
#: What llama.cpp rounds a cache's cells up to (its padding without flash attention).
_CELL_PAD = 32
#: llama-cpp-python's micro-batch of tokens (n_ubatch): a windowed layer's cache holds the
#: window and one micro-batch.
_UBATCH = 512
#: An integer of the header, or an array of them (a value per layer: OpenELM's head counts).
Hyperparameter = int | tuple[int, ...]


def trained_context(path: Path) -> int | None:
    """The context a GGUF's model was trained for (its ``<arch>.context_length``), read
    from the file's metadata without loading the model; None where the file does not
    say (or is not a GGUF this reader knows: llama.cpp then reads it, or refuses it)."""
    context = gguf_hyperparameters(path).get("context_length")
    return context if isinstance(context, int) and context > 0 else None


def kv_cache_bytes_estimate(path: Path, context: int) -> int | None:
    """An estimate of the KV cache llama.cpp allocates for ``context`` tokens of the
    GGUF's model, as ``LlamaCppBackend`` runs it: a key and a value per layer, cell and
    KV head, in f16 (llama.cpp's default type), from the header's ``block_count``,
    ``attention.head_count_kv`` (``attention.head_count`` without it; either a count for
    every layer or an array of a count per layer) and ``attention.key_length`` /
    ``value_length`` (``embedding_length / attention.head_count`` of the first layer
    without them, as llama.cpp takes them). Where the layers' values differ in width,
    each layer keeps values as wide as the widest's (llama.cpp's cache without flash
    attention); a hybrid's layers without KV heads keep none. A cell for each token of
    the context, rounded up to 32 cells; a layer attending to a sliding window (of an
    architecture ``_WINDOW_PERIODS`` knows) keeps cells for the window and a batch at
    most (the backend runs llama.cpp with ``swa_full`` off), the others the whole
    context, as every layer does where the header gives no window. None where the
    header lacks what it needs (a recurrent model's has no KV heads)."""
    arch, meta = _header(path)
    layers, embedding = meta.get("block_count"), meta.get("embedding_length")
    if not isinstance(layers, int) or layers <= 0:
        return None
    heads = _per_layer(meta.get("attention.head_count"), layers)
    kv_heads = _per_layer(meta.get("attention.head_count_kv"), layers) or heads
    if heads is None or kv_heads is None:
        return None
    head = embedding // heads[0] if isinstance(embedding, int) and heads[0] else None
    key, value = meta.get("attention.key_length", head), meta.get("attention.value_length", head)
    if not isinstance(key, int) or not isinstance(value, int) or not key or not value:
        return None
    hybrid = arch in _HYBRIDS
    # llama.cpp's V cache without flash attention: each layer's as wide as the widest's
    values = max(kv_heads) * value if len(set(kv_heads)) > 1 else None
    cells = _padded(context)
    window, period, windowed = meta.get("attention.sliding_window"), None, cells
    if isinstance(window, int) and window > 0 and (period := _WINDOW_PERIODS.get(arch or "")):
        windowed = min(cells, _padded(window + _UBATCH))
    total = 0
    for layer, n in enumerate(kv_heads):
        if n or not hybrid:
            width = n * key + (n * value if values is None else values)
            total += width * (windowed if period and layer % period < period - 1 else cells)
    return total * _F16_BYTES


def _padded(cells: int) -> int:
    """``cells`` rounded up as llama.cpp rounds a cache's size."""
    return -(-cells // _CELL_PAD) * _CELL_PAD


def _per_layer(value: Hyperparameter | None, layers: int) -> tuple[int, ...] | None:
    """A header's count for each of ``layers`` layers: an integer for all of them, an
    array for each; an array of another length (which llama.cpp does not load), its
    largest for each, never less than such a model would take."""
    if value is None or value == ():
        return None
    if isinstance(value, int):
        return (value,) * layers
    return value if len(value) == layers else (max(value),) * layers


def gguf_hyperparameters(path: Path) -> dict[str, Hyperparameter]:
    """The integer metadata of a GGUF's architecture (``<arch>.block_count`` as
    ``"block_count"``; an array of integers or booleans, a value per layer, as a tuple),
    read from the file's header without loading the model, once per version of the file;
    empty where it cannot be read (or is not a GGUF this reader knows)."""
    return dict(_header(path)[1])


def _header(path: Path) -> tuple[str | None, dict[str, Hyperparameter]]:
    """A GGUF's ``general.architecture`` and ``gguf_hyperparameters``, of one version of
    the file (read once per version); (None, {}) where it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None, {}
    return _hyperparameters(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hyperparameters(
    path: str, size: int, mtime_ns: int
) -> tuple[str | None, dict[str, Hyperparameter]]:
    try:
        with open(path, "rb") as f:
            return _read_hyperparameters(f)
    except (OSError, OverflowError, KeyError, struct.error, UnicodeDecodeError):
        return None, {}


def _read_hyperparameters(f: BinaryIO) -> tuple[str | None, dict[str, Hyperparameter]]:
    """The architecture and its metadata (``gguf_hyperparameters``) of the GGUF ``f``."""
    if f.read(4) != GGUF_MAGIC:
        return None, {}
    version = struct.unpack("<I", f.read(4))[0]
    order = "<" if version < 0x10000 else ">"  # a big-endian GGUF's reads byte-swapped
    if struct.unpack(order + "I", struct.pack("<I", version))[0] not in (2, 3):
        return None, {}  # version 1 counted in 32 bits (llama.cpp reads it no more)

    def read(fmt: str) -> int:
        size = struct.calcsize(fmt)
        value: int = struct.unpack(order + fmt, f.read(size))[0]
        return value

    def skip(kind: int, count: int = 1) -> None:
        if kind == 8:  # strings: each its length first
            skip_strings(count)
        elif kind == 9:  # arrays: each its item type and length first
            for _ in range(count):
                item, n = read("I"), read("Q")
                skip(item, n)
        else:
            f.seek(_GGUF_SIZES[kind] * count, os.SEEK_CUR)

    def skip_strings(count: int) -> None:
        """Past ``count`` strings, their lengths read from blocks of the file: a read and a
        seek for each of a vocabulary's 150k tokens and merges took 0.2 s, at every start."""
        length = struct.Struct(order + "Q")
        block, at = b"", 0
        for _ in range(count):
            if len(block) - at < 8:
                block, at = block[at:] + f.read(_BLOCK), 0
            at += 8 + length.unpack_from(block, at)[0]  # struct.error where it is cut short
            if at > len(block):  # a string longer than the rest of the block
                f.seek(at - len(block), os.SEEK_CUR)
                block, at = b"", 0
        f.seek(at - len(block), os.SEEK_CUR)  # back to the end of the last string

    read("Q")  # the tensor count
    arch, values = None, dict[str, Hyperparameter]()
    for _ in range(read("Q")):
        length = read("Q")
        if length > 65536:  # no key is this long: a corrupt file
            return None, {}
        key = f.read(length).decode("utf-8")
        # the rest (the tokenizer's long arrays) is read only where a key is missing:
        # 0.05 s for a vocabulary of 150k tokens, once per version of the file; the
        # architecture's own keys after those (a sliding window) are read up to the first
        # key of another part (the tokenizer's)
        if (
            arch is not None
            and all(f"{arch}.{k}" in values for k in _HYPERPARAMETERS)
            and not key.startswith((f"{arch}.", "general."))
        ):
            break
        kind = read("I")
        if key == "general.architecture" and kind == 8:
            if (n := read("Q")) > 256:  # no architecture's name is this long
                return None, {}
            arch = f.read(n).decode("utf-8")
        elif kind in _GGUF_INTS:
            values[key] = read(_GGUF_INTS[kind])
        elif kind == 9:  # an array: kept where it is short and of integers (or booleans)
            item, n = read("I"), read("Q")
            if n <= _MAX_ARRAY and (item in _GGUF_INTS or item == 7):
                fmt = _GGUF_INTS.get(item, "?")
                size = struct.calcsize(fmt) * n
                values[key] = tuple(int(v) for v in struct.unpack(f"{order}{n}{fmt}", f.read(size)))
            else:
                skip(item, n)
        else:
            skip(kind)
    prefix = f"{arch}."
    own = {k[len(prefix) :]: v for k, v in values.items() if arch and k.startswith(prefix)}
    return arch, own
