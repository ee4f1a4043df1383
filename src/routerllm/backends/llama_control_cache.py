"""A llama.cpp vocabulary's control texts (``llama_prompt.control_texts``: the texts of
the tokens it reads as control or unknown tokens only where asked to read special
tokens) kept per machine, in ``$ROUTERLLM_CACHE/control_texts.json``, by what makes
them: the vocabulary (``gguf_header.vocab_digest``: its tokens, their types, its
tokenizer's model, pre-tokenizer and special tokens, the model's name and architecture)
and the llama.cpp that read it (``llama_build``: another may mark other tokens CONTROL,
as it marks some its GGUF did not). Asking llama.cpp costs a call per token: 33-38 ms
of CPU for SmolLM2's 49,152, 80-140 ms for Qwen2.5's 151,936, in every process that
counted a prompt or loaded a model, and twice where the file a count opens (a model's
source) is not the one its load reads (its copy requantized or assembled in the model
cache): one vocabulary, one digest, one read a machine.

The cache is a convenience: where it is missing, damaged, of another format or cannot
be written (a read-only home), the texts are asked of llama.cpp, as before. It keeps at
most ``MAX_ENTRIES`` vocabularies (the oldest written dropped first). Two processes
writing at once each replace it whole (``files.keep_json``): one's entry may be lost
(read again later), neither corrupts it.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

#: The cache's format: a cache of another is not read (and is replaced when written).
CACHE_FORMAT = 1
#: The most vocabularies the cache keeps (the oldest written dropped first).
MAX_ENTRIES = 32


class VocabKey(NamedTuple):
    """What a vocabulary opened by llama.cpp is known by: ``key``; ``shared``: whether it
    is its content's (its digest and llama.cpp's build: kept for later processes) or only
    its file's version (``files_stamp``: kept in this process only)."""

    key: str
    shared: bool


def vocab_key(path: Path, stamp: str) -> VocabKey:
    """The key of the vocabulary llama.cpp read from ``path``, whose ``files_stamp`` was
    ``stamp`` before it was opened: its digest (``gguf_header.vocab_digest``) and
    llama.cpp's build, where the file is as it was (what was opened is what the digest is
    of) and its header gives one; else its version, ``stamp``."""
    from routerllm.files_identity import files_stamp
    from routerllm.gguf_header import vocab_digest

    digest = vocab_digest(path)
    if digest is None or files_stamp([path]) != stamp:  # replaced as it was opened
        return VocabKey(f"file {stamp}", shared=False)
    return VocabKey(f"vocab {digest} llama.cpp {llama_build()}", shared=True)


@functools.cache
def llama_build() -> str:
    """llama-cpp-python's version and its llama.cpp library's size and mtime (another
    build of one version, a reinstall, counts as another: its control texts read once
    again)."""
    import llama_cpp
    from llama_cpp import llama_cpp as library

    build = str(getattr(llama_cpp, "__version__", "unknown"))
    lib = getattr(getattr(library, "_lib", None), "_name", None)
    try:
        st = os.stat(lib) if isinstance(lib, str) else None
    except OSError:
        st = None
    return build if st is None else f"{build} ({st.st_size}:{st.st_mtime_ns})"


def cache_file() -> Path:
    """Where the control texts read are kept for later processes."""
    from routerllm.paths import cache_root

    return cache_root() / "control_texts.json"


class Kept(NamedTuple):
    """The control texts kept of a vocabulary: ``texts`` (None: not all UTF-8, as
    ``control_texts`` says)."""

    texts: list[str] | None


def kept(key: str) -> Kept | None:
    """The control texts kept for the vocabulary ``key``; None where none are (or what is
    kept is not a list of texts)."""
    entries = _entries()
    if key not in entries:
        return None
    texts = entries[key]
    if texts is None or (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
        return Kept(texts)
    return None


def keep(key: str, texts: list[str] | None) -> None:
    """``texts``, read of the vocabulary ``key``, kept for later processes with the others
    (at most ``MAX_ENTRIES``); nothing where the cache cannot be written."""
    from routerllm.files import keep_json

    entries = {k: v for k, v in _entries().items() if k != key}
    entries[key] = texts
    data = {"format": CACHE_FORMAT, "vocabularies": dict(list(entries.items())[-MAX_ENTRIES:])}
    if (error := keep_json(cache_file, data, separators=(",", ":"))) is not None:
        log.debug("control texts of %s not kept: %s", key, error)


def _entries() -> dict[str, object]:
    """The cache's entries by key ({} where it is missing, damaged or of another format)."""
    from routerllm.files import read_kept_entries

    return read_kept_entries(cache_file, CACHE_FORMAT, "vocabularies")
