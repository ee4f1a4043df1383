"""What a GGUF file's header says, read without loading the model: its architecture,
the architecture's integer hyperparameters (``gguf_hyperparameters``), the context it
was trained for, and from them the KV cache llama.cpp allocates for a context; the
bytes it describes (``shortfall``), where its key-values end (``key_values_end``), of
one of llama.cpp's split files, its split keys (``split_info``), and a digest of the
key-values llama.cpp's vocabulary is made of (``vocab_digest``).

Each version of a file (its size and mtime) is read once in a process, and once for
later processes too (``gguf_header_cache``, by the file's identity); a file this reader does not
know (another format, a GGUF version it cannot read, a corrupt header) reads as
saying nothing, and llama.cpp then reads it, or refuses it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

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
#: Hybrid architectures (llama.cpp 0.3.16's ``llm_arch_is_hybrid``): their layers without KV
#: heads are recurrent, with a state of their own and no KV cache. Another's such layer
#: keeps a cache of values as wide as the widest layer's (see ``kv_cache_bytes_estimate``).
_HYBRIDS = frozenset({"jamba", "lfm2", "granitehybrid", "plamo2", "falcon-h1"})


class _Windowing(NamedTuple):
    """How llama.cpp 0.3.16 (its ``llama-model.cpp``, set in code: it reads no pattern
    from the header) windows an architecture's layers: of each ``period`` layers all but
    one attend to a sliding window of ``<arch>.attention.sliding_window`` tokens."""

    period: int
    #: the layer of each period that attends to the whole context is its first (else last)
    dense_first: bool = False
    #: the window where the header gives none (None: the layers are then not windowed)
    default: int | None = None
    #: the window llama.cpp sets whatever the header gives (where it gives one, or has a
    #: ``default``)
    fixed: int | None = None
    #: windowed only with this many layers (EXAONE 4's 32B; its 1.2B attends in full)
    block_count: int | None = None

    def windowed(self, layer: int) -> bool:
        """Whether llama.cpp windows the model's ``layer`` (counted from 0)."""
        if self.dense_first:
            return layer % self.period != 0
        return layer % self.period < self.period - 1


#: The architectures llama.cpp 0.3.16 runs with windowed layers; another's header window
#: (Phi-3's, which llama.cpp ignores; Qwen 2's) is not counted on.
_WINDOWING = {
    "gemma2": _Windowing(2, default=4096),
    "gemma3": _Windowing(6),
    "gemma3n": _Windowing(5),
    "cohere2": _Windowing(4),
    "gpt-oss": _Windowing(2),
    "exaone4": _Windowing(4, default=4096, block_count=64),
    "llama4": _Windowing(4, default=8192, fixed=8192),  # chunked attention
    "smallthinker": _Windowing(4, dense_first=True, fixed=4096),
}
#: Architectures whose layers past the first n share the caches of earlier ones
#: (llama.cpp 0.3.16's ``llama_kv_cache_unified``): those layers keep none.
_CACHED_LAYERS = {"gemma3n": 20}

#: The bytes of the header read at a time where a list of strings is skipped.
_BLOCK = 1 << 16
#: What llama.cpp rounds a cache's cells up to (its padding without flash attention).
_CELL_PAD = 32
#: llama-cpp-python's micro-batch of tokens (n_ubatch): a windowed layer's cache holds the
#: window and one micro-batch.
_UBATCH = 512
#: Each ggml tensor type's (elements per block, bytes per block), as gguf 0.19's
#: ``GGML_QUANT_SIZES`` gives them (its import takes 0.1 s); a type not here counts as none.
_TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54),
    35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip
#: More tensors or dimensions than a GGUF holds (ggml's tensors have at most 4): a corrupt
#: header, of which nothing is told.
_MAX_TENSORS, _MAX_DIMS = 1 << 20, 8
#: What ``_layout`` declares of a file that ends within its header.
_PAST_THE_END = 1 << 62
#: Arrays of arrays deeper than this: a corrupt or hostile header (llama.cpp reads none),
#: of which nothing is told; each level was a recursion, and 100,000 a RecursionError.
_MAX_NESTING = 8
#: An integer of the header, or an array of them (a value per layer: OpenELM's head counts).
Hyperparameter = int | tuple[int, ...]
#: The bytes of a vocabulary's key-values hashed at a time (``vocab_digest``).
_HASH_BLOCK = 1 << 20


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
    architecture ``_WINDOWING`` knows, as llama.cpp 0.3.16 windows them) keeps cells
    for the window and a batch at most (the backend runs llama.cpp with ``swa_full``
    off), the others the whole context; layers sharing an earlier one's cache
    (``_cached_layers``) keep none. None where the header lacks what it needs (a
    recurrent model's has no KV heads)."""
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
    windowing = _window(arch, meta)
    window_cells = min(cells, _padded(windowing[0] + _UBATCH)) if windowing else cells
    total = 0
    for layer, n in enumerate(kv_heads[: _cached_layers(arch, meta, layers)]):
        if n or not hybrid:
            width = n * key + (n * value if values is None else values)
            total += width * (window_cells if windowing and windowing[1].windowed(layer) else cells)  # fmt: skip
    return total * _F16_BYTES


def _window(arch: str | None, meta: dict[str, Hyperparameter]) -> tuple[int, _Windowing] | None:  # fmt: skip
    """The window llama.cpp 0.3.16 gives the windowed layers of a model of ``arch`` with
    the header's ``meta``, and how it windows them; None where it windows no layer."""
    rule = _WINDOWING.get(arch or "")
    if rule is None or rule.block_count not in (None, meta.get("block_count")):
        return None
    given = meta.get("attention.sliding_window")
    window = given if isinstance(given, int) and given > 0 else rule.default
    if window is None:
        return None
    return (rule.fixed or window), rule


def _cached_layers(arch: str | None, meta: dict[str, Hyperparameter], layers: int) -> int:
    """The layers that keep a KV cache of their own: all but those sharing an earlier
    layer's (``_CACHED_LAYERS``) and GLM-4.5's next-token prediction layers, which
    llama.cpp 0.3.16 loads and does not run."""
    if arch == "glm4moe" and isinstance(n := meta.get("nextn_predict_layers"), int):
        return layers - max(0, min(n, layers))
    return min(layers, _CACHED_LAYERS.get(arch or "", layers))


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
    return (None, {}) if (read := _read(path)) is None else (read[0].arch, read[0].hyperparameters)


def shortfall(path: Path, whole: int | None = None) -> str | None:
    """How a GGUF file is shorter than its header says, cut short by an interrupted
    download or copy (``"2,000,000 bytes; its header describes 2,789,632"``); None where it is
    as long (or its header cannot be read: not a GGUF this reader knows). What the header
    describes: itself, its padding and every tensor's data to the end of the last (its
    size from its shape and type; of a type this reader does not know, none past its
    start). Read once per version of the file. ``whole``: the bytes of the whole where
    ``path`` is its first part (a split model's parts, concatenated); its header read
    past the part's end tells nothing then."""
    if (read := _file_layout(path)) is None:
        return None
    declared, size = read[0].declared, read[1] if whole is None else whole
    if declared is None or declared <= size or (declared == _PAST_THE_END and whole is not None):  # fmt: skip
        return None
    if declared == _PAST_THE_END:
        return f"{size:,} bytes; its header runs past the end"
    return f"{size:,} bytes; its header describes {declared:,}"


class SplitInfo(NamedTuple):
    """What the header of one of llama.cpp's split GGUF files (``llama-gguf-split``'s)
    says of the split model it is a part of."""

    #: which split it is (``split.no``, counted from 0)
    number: int
    #: the splits of the model (``split.count``)
    splits: int
    #: the tensors of the whole model (``split.tensors.count``); None where it does not say
    total_tensors: int | None
    #: the tensors this split holds (its header describes these only)
    tensors: int


def split_info(path: Path) -> SplitInfo | None:
    """What a GGUF's header says of the split model it is a split of; None where it is
    not one (no ``split.count`` over 1) or its header cannot be read. Read once per
    version of the file, with ``shortfall``'s reading."""
    return None if (read := _file_layout(path)) is None else read[0].split


def _file_layout(path: Path) -> tuple[_Layout, int] | None:
    """What the header of the regular file at ``path`` says of its bytes (read once per
    version of the file), and the file's size; None where there is no such file."""
    return None if (read := _read(path)) is None else (read[0].layout, read[1])


def _read(path: Path) -> tuple[_Header, int] | None:
    """The header of the regular file at ``path`` (read once per version of the file),
    and the file's size; None where there is no such file."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):  # a named pipe waited for a writer, a device never ended
        return None
    return _read_file(str(path), st.st_size, st.st_mtime_ns), st.st_size


def vocab_digest(path: Path) -> str | None:
    """A digest (sha256) of what llama.cpp's vocabulary of the GGUF at ``path`` is made
    of, as its header holds it (``_of_vocab``: every ``tokenizer.`` key-value but the
    chat templates, the model's name and architecture), whatever else the file holds: a
    model's source and its copy requantized, assembled or cut to its key-values
    (``gguf_key_values``) have one. None where the file has no vocabulary (no
    ``tokenizer.ggml.tokens``) or its key-values cannot be read to their end. Read once
    per version of the file, with ``shortfall``'s reading."""
    return None if (read := _read(path)) is None else read[0].vocab


def key_values_end(path: Path) -> tuple[int, int] | None:
    """Where the key-values of the GGUF at ``path`` (its metadata: architecture,
    hyperparameters, vocabulary, chat template) end, in bytes from its start, and the
    header's alignment; None where the file ends within them (a split model's first part
    too short to hold them) or its header cannot be read. Read once per version of the
    file, with ``shortfall``'s reading."""
    return None if (read := _file_layout(path)) is None else read[0].key_values


class _Layout(NamedTuple):
    #: the bytes the header describes; ``_PAST_THE_END`` where the file ends within it
    declared: int | None
    split: SplitInfo | None = None
    #: where its key-values end, and its alignment (``key_values_end``)
    key_values: tuple[int, int] | None = None


class _Header(NamedTuple):
    """What a GGUF's header says: its architecture, its hyperparameters
    (``gguf_hyperparameters``), its layout (``shortfall``, ``split_info``,
    ``key_values_end``) and its vocabulary's digest (``vocab_digest``)."""

    arch: str | None
    hyperparameters: dict[str, Hyperparameter]
    layout: _Layout
    vocab: str | None = None


@functools.lru_cache(maxsize=64)
def _read_file(path: str, size: int, mtime_ns: int) -> _Header:
    """A GGUF's header, read once for all it says: a Qwen2.5 GGUF's 150k tokens and
    merges were skipped once for its hyperparameters and again for its layout, 0.12 s of
    CPU each, at every start, for each model (a model's availability asks both). What
    a process read is kept for later ones (``gguf_header_cache``), by the file's identity
    as it was before and after the read (a file changing as it was read is not kept)."""
    from routerllm import gguf_header_cache

    stamp = gguf_header_cache.identity(path, size, mtime_ns)
    if stamp is not None and (header := gguf_header_cache.kept(path, stamp)) is not None:
        return header
    try:
        with open(path, "rb") as f:
            header = _read_header(f)
    except struct.error:  # a value read past the end of the file, before its key-values
        header = _Header(None, {}, _Layout(_PAST_THE_END))
    except OSError:  # not kept: another process may read it (its access, a passing error)
        return _Header(None, {}, _Layout(None))
    except (OverflowError, KeyError, UnicodeDecodeError, _Unreadable):
        header = _Header(None, {}, _Layout(None))
    if stamp is not None and gguf_header_cache.identity(path, size, mtime_ns) == stamp:
        gguf_header_cache.keep(path, stamp, header)
    return header


#: The split keys of a header (``llama-gguf-split``'s, the ``gguf`` package's).
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")


def _read_header(f: BinaryIO) -> _Header:
    """What the header of the GGUF ``f`` says (``_Header``). Where its key-values cannot
    be read to their end (a file cut short in its tokenizer's arrays), its hyperparameters
    are told only if all of ``_HYPERPARAMETERS`` were read before."""
    if (r := _open(f)) is None:
        return _Header(None, {}, _Layout(None))
    tensors, alignment, split = r.number("Q"), 32, dict[str, int]()
    arch, values = None, dict[str, Hyperparameter]()
    vocab: list[tuple[str, int, int, int]] = []  # each key-value of it: key, type, bytes

    def header(layout: _Layout, whole: bool = False, digest: str | None = None) -> _Header:
        prefix = f"{arch}."
        own = {k[len(prefix) :]: v for k, v in values.items() if arch and k.startswith(prefix)}
        if whole or all(k in own for k in _HYPERPARAMETERS):
            return _Header(arch, own, layout, digest)
        return _Header(None, {}, layout)

    try:
        for _ in range(r.number("Q")):
            if (key := r.string(65536)) is None:  # no key is this long: a corrupt file
                return header(_Layout(None))
            kind, start = r.number("I"), f.tell()
            if key == "general.architecture" and kind == 8:
                if (arch := r.string(256)) is None:  # no architecture's name is this long
                    return _Header(None, {}, _Layout(None))
            elif key == "general.alignment" and kind == 4:
                alignment = r.number("I") or 32
            elif key in _SPLIT_KEYS and kind in _GGUF_INTS:
                split[key] = r.number(_GGUF_INTS[kind])
            elif kind in _GGUF_INTS:
                values[key] = r.number(_GGUF_INTS[kind])
            elif kind == 9:  # an array: kept where it is short and of integers (or booleans)
                item, n = r.number("I"), r.number("Q")
                if n <= _MAX_ARRAY and (item in _GGUF_INTS or item == 7):
                    fmt = _GGUF_INTS.get(item, "?")
                    size = struct.calcsize(fmt) * n
                    values[key] = tuple(int(v) for v in struct.unpack(f"{r.order}{n}{fmt}", f.read(size)))  # fmt: skip
                else:
                    r.skip(item, n)
            else:
                r.skip(kind)
            if _of_vocab(key):
                vocab.append((key, kind, start, f.tell()))
    except struct.error:  # a value read (or skipped) past the end of the file
        return header(_Layout(_PAST_THE_END))
    except (OverflowError, KeyError, UnicodeDecodeError, _Unreadable):
        return header(_Layout(None))
    end = f.tell()
    digest = _vocab_digest(f, vocab)
    f.seek(end)
    return header(_read_tensors(f, r, tensors, (end, alignment), split), True, digest)


def _of_vocab(key: str) -> bool:
    """Whether the key-value ``key`` is of what llama.cpp makes a model's vocabulary of:
    the tokenizer's (its tokens and their types, its model and pre-tokenizer, its special
    tokens' ids...), by which it marks its tokens, and the model's name and architecture,
    by which it marks some too; not the chat templates, which it does not read."""
    if key.startswith("tokenizer."):
        return not key.startswith("tokenizer.chat_template")
    return key in ("general.architecture", "general.name")


def _vocab_digest(f: BinaryIO, vocab: list[tuple[str, int, int, int]]) -> str | None:
    """The sha256 of a header's ``vocab`` key-values (each its key, its type and the
    bytes of its value, from where to where in ``f``), in the order of their keys (a
    copy writing them in another keeps its digest); None where it has no tokens."""
    if not any(key == "tokenizer.ggml.tokens" for key, *_ in vocab):
        return None
    digest = hashlib.sha256()
    for key, kind, start, end in sorted(vocab):
        name = key.encode("utf-8")
        digest.update(struct.pack("<QIQ", len(name), kind, end - start) + name)
        f.seek(start)
        while start < end:
            block = f.read(min(end - start, _HASH_BLOCK))
            if not block:  # cut short since its key-values were read
                return None
            digest.update(block)
            start += len(block)
    return digest.hexdigest()


def _read_tensors(
    f: BinaryIO, r: _Reader, tensors: int, key_values: tuple[int, int], split: dict[str, int]
) -> _Layout:
    """The bytes the header of the GGUF ``f`` describes (``shortfall``), from its tensors'
    list (``r`` at its start, where its ``key_values`` end), and its split keys
    (``split_info``)."""
    if tensors > _MAX_TENSORS:  # a corrupt count: not walked to the end of the file
        return _Layout(None)
    info = None
    if split.get("split.count", 1) > 1 and "split.no" in split:
        info = SplitInfo(split["split.no"], split["split.count"], split.get("split.tensors.count"), tensors)  # fmt: skip
    end, alignment = 0, key_values[1]
    try:  # a split model's first part may end in its tensors' list: its key-values read
        for _ in range(tensors):
            r.skip_strings(1)  # the name
            if (dims := r.number("I")) > _MAX_DIMS:  # a corrupt shape
                return _Layout(None)
            shape = [r.number("Q") for _ in range(dims)]
            kind, offset = r.number("I"), r.number("Q")
            block, nbytes = _TYPE_SIZES.get(kind, (1, 0))
            end = max(end, offset + math.prod(shape) // block * nbytes)
    except struct.error:  # a value read (or skipped) past the end of the file
        return _Layout(_PAST_THE_END, info, key_values)
    return _Layout(-(-f.tell() // alignment) * alignment + end, info, key_values)


class _Unreadable(Exception):
    """A header this reader does not read (arrays nested too deeply): nothing is told."""


class _Reader:
    """The values of a GGUF header, read in order from its start, in its byte order."""

    def __init__(self, f: BinaryIO, order: str) -> None:
        self.f, self.order = f, order
        self.size = os.fstat(f.fileno()).st_size

    def forward(self, n: int) -> None:
        """Past ``n`` bytes; struct.error where that is past the end of the file (a
        corrupt length: a seek 2**64 bytes on raised ValueError, one 2**62 on OSError)."""
        if self.f.tell() + n > self.size:
            raise struct.error(f"{n} bytes past the end of the file")
        self.f.seek(n, os.SEEK_CUR)

    def number(self, fmt: str) -> int:
        value: int = struct.unpack(self.order + fmt, self.f.read(struct.calcsize(fmt)))[0]
        return value

    def string(self, longest: int) -> str | None:
        """A string; None where its length is over ``longest`` (a corrupt file)."""
        length = self.number("Q")
        return None if length > longest else self.f.read(length).decode("utf-8")

    def skip(self, kind: int, count: int = 1, depth: int = 0) -> None:
        if kind == 8:  # strings: each its length first
            self.skip_strings(count)
        elif kind == 9:  # arrays: each its item type and length first
            if depth >= _MAX_NESTING:
                raise _Unreadable("arrays nested too deeply")
            for _ in range(count):
                item, n = self.number("I"), self.number("Q")
                self.skip(item, n, depth + 1)
        else:
            self.forward(_GGUF_SIZES[kind] * count)

    def skip_strings(self, count: int) -> None:
        """Past ``count`` strings, their lengths read from blocks of the file: a read and a
        seek for each of a vocabulary's 150k tokens and merges took 0.2 s, at every start."""
        f, length = self.f, struct.Struct(self.order + "Q")
        block, at = b"", 0
        for _ in range(count):
            if len(block) - at < 8:
                block, at = block[at:] + f.read(_BLOCK), 0
            at += 8 + length.unpack_from(block, at)[0]  # struct.error where it is cut short
            if at > len(block):  # a string longer than the rest of the block
                self.forward(at - len(block))
                block, at = b"", 0
        f.seek(at - len(block), os.SEEK_CUR)  # back to the end of the last string


def _open(f: BinaryIO) -> _Reader | None:
    """A reader of the GGUF ``f`` past its version; None where it is not a GGUF this
    reader knows."""
    if f.read(4) != GGUF_MAGIC:
        return None
    version = struct.unpack("<I", f.read(4))[0]
    order = "<" if version < 0x10000 else ">"  # a big-endian GGUF's reads byte-swapped
    if struct.unpack(order + "I", struct.pack("<I", version))[0] not in (2, 3):
        return None  # version 1 counted in 32 bits (llama.cpp reads it no more)
    return _Reader(f, order)
