"""Where the ``hf`` backend reads a configured ``model_id`` from (a local folder, a GGUF
file read dequantised, a hub id in the local HF cache), whether it is there, why it
cannot be read as a model, and whether reading it needs accelerate; no download."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _needs_accelerate(model_id: str, cuda: bool) -> bool:
    """Whether transformers needs accelerate to load ``model_id``: for ``device_map="auto"``
    (on CUDA) and to read a GGUF file (on CPU too); a plain model folder on CPU does not."""
    return cuda or Path(model_id).expanduser().is_file()


def _local_or_hub(model_id: str) -> tuple[str, dict[str, str]]:
    """Where transformers reads ``model_id`` from, and the ``gguf_file`` it reads there
    where ``model_id`` names a GGUF file (dequantised, as transformers reads one); ``~``
    read as the home folder where that names a local directory or file (transformers
    takes ``~/models/x`` for a malformed hub id); a hub id unchanged."""
    local = Path(model_id).expanduser()
    if local.is_file():
        return str(local.parent), {"gguf_file": local.name}
    return (str(local) if local.is_dir() else model_id), {}


SAVED_FOLDER = "a folder written by save_pretrained (config.json, tokenizer files, weights)"


def _local_problem(model_id: str) -> str | None:
    """Why ``model_id``, where it names a local file or folder, cannot be read as a model:
    a file that is no GGUF, or no ``gguf`` package to read one; a folder without
    ``config.json`` (transformers said its config.json "should have a `model_type`
    key", the file absent). None for a hub id, a readable GGUF or a folder with one."""
    from routerllm.gguf_files import header_problem

    local = Path(model_id).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        return f"the model folder {local} has no config.json: give {SAVED_FOLDER}"
    if local.is_dir():
        from routerllm.hf_hub import json_problem, weights_problem

        return weights_problem(local) or json_problem(local)
    if not local.is_file():
        return None
    if why := header_problem(local):
        return f"{why}: give a GGUF file or a model folder (config.json and weights)"
    if importlib.util.find_spec("gguf") is None:
        return f"reading the GGUF file {local} needs the gguf package (pip install gguf)"
    return None


def weights_present(model_id: str) -> bool:
    """A local directory or file, or a hub id already in the local HF cache (no download
    here); False where that cannot be read (a folder above it that may not be searched)."""
    from routerllm.hf_hub import cached_config

    local = Path(model_id).expanduser()
    try:  # Python 3.11's is_dir and is_file raise PermissionError
        return local.is_dir() or local.is_file() or cached_config(model_id) is not None
    except OSError:
        return False
