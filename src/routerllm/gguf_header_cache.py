"""GGUF headers kept for later processes: what ``gguf_header`` read of a file's header
(its architecture, hyperparameters, layout, vocabulary's digest), kept per machine in
``$ROUTERLLM_CACHE/gguf_headers.json``, by the file's path and identity
(``files_identity.files_stamp``: device, inode, size, mtime and ctime). A file replaced,
grown, cut, touched or written in place (its ctime) is read again; one written through
a mapping whose times the system has not updated yet is the risk the in-process cache
takes too. A Qwen2.5 GGUF's header (150k tokens and merges walked to reach its tensors'
list) cost 0.11 s of CPU in each process that checked which models can run; read from
here, well under a millisecond.

The cache is a convenience: where it is missing, damaged, of another format or cannot
be written (a read-only home), a header is read from its file, as before. It keeps one
version of each path, and drops the entries of files gone or changed when it is written
(at most ``MAX_ENTRIES``, the oldest dropped first). Two processes writing at once each
replace it whole (``write_text_atomically``): one's entry may be lost (read again
later), neither corrupts it. An entry written before the vocabulary's digest was kept
(2026-12-08; none in it) is read again, once; the code of before reads an entry with one
as it did (it reads the fields it knows), so two versions sharing the cache keep each
other's entries.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routerllm.gguf_header import _Header

log = logging.getLogger(__name__)

#: The cache's format: a cache of another is not read (and is replaced when written).
CACHE_FORMAT = 1
#: The most headers the cache keeps (the oldest kept dropped first).
MAX_ENTRIES = 256


def cache_file() -> Path:
    """Where the headers read are kept for later processes."""
    from routerllm.paths import cache_root

    return cache_root() / "gguf_headers.json"


def identity(path: str, size: int, mtime_ns: int) -> str | None:
    """The identity of the file at ``path`` now (``files_stamp``); None where it is not
    the version of ``size`` and ``mtime_ns`` (changed since it was looked at) or is gone."""
    from routerllm.files_identity import files_stamp

    stamp = files_stamp([Path(path)])
    parts = stamp.split(":")
    if len(parts) != 5 or parts[2:4] != [str(size), str(mtime_ns)]:
        return None
    return stamp


def kept(path: str, stamp: str) -> _Header | None:
    """The header kept for the file at ``path`` of identity ``stamp``; None where none is
    (or what is kept cannot be read as one)."""
    entry = _entries().get(path)
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    return _decoded(entry)


def keep(path: str, stamp: str, header: _Header) -> None:
    """``header``, read of the file at ``path`` of identity ``stamp``, kept for later
    processes, with the entries of files still there as they were; nothing where the
    cache cannot be written (the next process reads the file again)."""
    from routerllm.files import keep_json
    from routerllm.files_identity import files_stamp

    entries = {
        p: e
        for p, e in _entries().items()
        if p != path and isinstance(e, dict) and e.get("stamp") == files_stamp([Path(p)])
    }
    entries[path] = {"stamp": stamp, **_encoded(header)}
    kept_entries = dict(list(entries.items())[-MAX_ENTRIES:])
    data = {"format": CACHE_FORMAT, "headers": kept_entries}
    if (error := keep_json(cache_file, data, separators=(",", ":"))) is not None:
        log.debug("GGUF header of %s not kept: %s", path, error)


def _entries() -> dict[str, Any]:
    """The cache's entries by path ({} where it is missing, damaged or of another format)."""
    from routerllm.files import read_kept_entries

    return read_kept_entries(cache_file, CACHE_FORMAT, "headers")


def _encoded(header: _Header) -> dict[str, Any]:
    layout = header.layout
    return {
        "arch": header.arch,
        "hyperparameters": {
            k: list(v) if isinstance(v, tuple) else v for k, v in header.hyperparameters.items()
        },
        "declared": layout.declared,
        "split": None if layout.split is None else list(layout.split),
        "key_values": None if layout.key_values is None else list(layout.key_values),
        "vocab": header.vocab,
    }


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decoded(entry: dict[str, Any]) -> _Header | None:
    """The header an entry holds; None where it is not one ``_encoded`` wrote (one written
    before the vocabulary's digest was kept has none: the file is read again, once)."""
    from routerllm.gguf_header import Hyperparameter, SplitInfo, _Header, _Layout

    arch, values = entry.get("arch"), entry.get("hyperparameters")
    declared, split, key_values = entry.get("declared"), entry.get("split"), entry.get("key_values")  # fmt: skip
    if not (arch is None or isinstance(arch, str)) or not isinstance(values, dict):
        return None
    if "vocab" not in entry or not (entry["vocab"] is None or _digest(entry["vocab"])):
        return None
    hyperparameters: dict[str, Hyperparameter] = {}
    for key, value in values.items():
        if _int(value):
            hyperparameters[key] = value
        elif isinstance(value, list) and all(_int(v) for v in value):
            hyperparameters[key] = tuple(value)
        else:
            return None
    if not (declared is None or _int(declared)):
        return None
    info = None
    if split is not None:
        if not isinstance(split, list) or len(split) != 4:
            return None
        if not all(_int(v) for i, v in enumerate(split) if not (i == 2 and v is None)):
            return None
        info = SplitInfo(*split)
    if key_values is not None:
        if not isinstance(key_values, list) or len(key_values) != 2 or not all(_int(v) for v in key_values):  # fmt: skip
            return None
        key_values = (key_values[0], key_values[1])
    return _Header(arch, hyperparameters, _Layout(declared, info, key_values), entry["vocab"])


def _digest(value: object) -> bool:
    """Whether ``value`` is a sha256 as ``gguf_header.vocab_digest`` writes it."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)  # fmt: skip
