"""Where a Hugging Face model's files are: a local folder, the local HF cache, the hub.

In that order: a local directory; the local HF cache (read without any network call);
the hub, only when ``HF_HUB_OFFLINE`` is unset and the hub answers. Anything else is a
:class:`~routerllm.exceptions.ModelUnavailableError` raised at once. Used by the ``hf:``
encoder, the classifier and complexity routers and the ``hf`` backend.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path
from urllib.parse import urlsplit

from routerllm.exceptions import ModelUnavailableError, missing_dependency
from routerllm.path_checks import refuse_special_file, special_kind

log = logging.getLogger(__name__)

#: What an environment variable such as HF_HUB_OFFLINE holds to say yes.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids any hub request."""
    return any(
        os.environ.get(var, "").strip().lower() in TRUE_WORDS
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub (or to the HTTPS proxy) opens within ``timeout``."""
    target = (
        os.environ.get("HTTPS_PROXY")
        or os.environ.get("https_proxy")
        or os.environ.get("HF_ENDPOINT")
        or "https://huggingface.co"
    )
    url = urlsplit(target if "://" in target else f"http://{target}")
    if not url.hostname:
        return False
    address = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    opened: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                opened.append(True)
        except OSError:
            pass

    # A thread bounds the whole probe: create_connection's timeout does not cover DNS.
    thread = threading.Thread(target=probe, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


#: The files transformers reads a model's weights from: one of them, or an index and
#: every shard it names.
_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
_WEIGHTS_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def cached_config(model_id: str) -> Path | None:
    """config.json of a hub id in the local HF cache, without any network call; None
    where its weights are not there too: a download cut short after config.json (Ctrl-C
    as the weights came) is not a cached model, which is loaded with local files only
    (that failed at every later start, the weights never fetched)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    def cached(name: str) -> Path | None:
        found = try_to_load_from_cache(model_id, name)
        return Path(found) if isinstance(found, str) else None

    try:
        config = cached("config.json")
        if config is None or any(cached(name) for name in _WEIGHTS_FILES):
            return config
        for index in filter(None, map(cached, _WEIGHTS_INDEXES)):
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            if all(cached(shard) for shard in shards):
                return config
    except (ValueError, OSError, KeyError, TypeError, AttributeError):
        return None  # not a valid hub id (HFValidationError), an index unreadable or odd
    return None


#: The files of a model folder that transformers may read, by their names' endings: the
#: weights and their indexes, config.json, generation_config.json, the tokenizer's files
#: (tokenizer.json, tokenizer.model, vocab.txt, merges.txt, chat_template.jinja, and of
#: transformers 5's ``VOCAB_FILES_NAMES`` BERTweet's and PhoBERT's bpe.codes, ProphetNet's
#: prophetnet.tokenizer, Marian's source.spm and target.spm...).
_READ_ENDINGS = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".tiktoken",
                 ".codes", ".tokenizer", ".spm")  # fmt: skip
#: The starts of the names of other files it may read: Mistral's tokenizer.model.v3 (its
#: SentencePiece model, read where a folder has no tokenizer.json).
_READ_STARTS = ("tokenizer.model.",)


def model_files(model_id: str) -> list[Path] | None:
    """The files transformers reads ``model_id`` from, found without reading any: a GGUF
    file; or those of its folder whose names say transformers may read them, the folder
    a local one or the HF cache's snapshot that ``refs/main`` names (its files links to
    blobs named by their content: a new revision's unchanged files are the same blobs).
    None where there is no such file or folder here, or it cannot be read (a folder
    above it that may not be searched). A stat or two and one folder's listing: asked
    before each answer."""
    local = Path(model_id).expanduser()
    try:  # Python 3.11's is_file and is_dir raise PermissionError
        if local.is_file():
            return [local]
        folder = local if local.is_dir() else _cached_snapshot(model_id)
        if folder is None:
            return None
        with os.scandir(folder) as entries:
            names = tuple(sorted(e.name for e in entries if _read(e.name)))
        if _TEMPLATES in names:  # a folder of chat templates (or a file of that name)
            names = tuple(n for n in names if n != _TEMPLATES) + _templates(folder)
    except OSError:
        return None
    return list(_paths(str(folder), names))


def _read(name: str) -> bool:
    """Whether transformers may read a model folder's entry of this name."""
    return name.endswith(_READ_ENDINGS) or name.startswith(_READ_STARTS) or name == _TEMPLATES


#: The subfolder whose ``*.jinja`` files transformers reads as named chat templates.
_TEMPLATES = "additional_chat_templates"


def _templates(folder: Path) -> tuple[str, ...]:
    """The chat templates in ``folder``'s ``additional_chat_templates``, as names in ``folder``."""
    try:
        with os.scandir(folder / _TEMPLATES) as entries:
            found = sorted(e.name for e in entries if e.name.endswith(".jinja"))
    except NotADirectoryError:
        return ()
    return tuple(f"{_TEMPLATES}/{name}" for name in found)


def weights_problem(folder: Path) -> str | None:
    """Why the weights in the model ``folder`` cannot be read whole, as their names and
    headers tell (no read of the weights): none of the files transformers reads them from,
    a shard its index names missing, a safetensors file shorter than its header says (a
    copy or download under way). None where they look whole."""
    found = next((folder / n for n in _WEIGHTS_FILES if (folder / n).is_file()), None)
    files = [found] if found is not None else []
    for index in (folder / n for n in _WEIGHTS_INDEXES if found is None):
        if not index.is_file():
            continue
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"its weights index {index} cannot be read ({type(e).__name__}: {e})"
        if missing := [s for s in shards if not (folder / s).is_file()]:
            return f"{len(missing)} of the {len(shards)} shards {index.name} names are missing (first {missing[0]})"  # fmt: skip
        files = [folder / s for s in shards]
        break
    if not files:
        return f"the model folder {folder} has no weights file ({', '.join(_WEIGHTS_FILES)}, or an index and its shards)"  # fmt: skip
    for path in files:
        if path.suffix == ".safetensors" and (short := safetensors_shortfall(path)):
            return f"{path} is cut short ({short}): an interrupted download or copy?"
    return None


#: The JSON files of a model folder that transformers reads as it loads a causal LM and
#: its tokenizer (the weights' indexes: ``weights_problem``).
_READ_JSON = (
    "added_tokens.json",
    "chat_template.json",
    "config.json",
    "generation_config.json",
    "special_tokens_map.json",
    "tekken.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
)


def json_problem(folder: Path) -> str | None:
    """Why a JSON file transformers reads of the model ``folder`` cannot be read: the
    first that does not parse (a copy or download under way); None where each parses.
    Each version of a file (its inode, size, mtime and ctime) is parsed once: a 10 MB
    tokenizer.json takes tenths of a second."""
    for path in (folder / name for name in _READ_JSON):
        try:
            st = path.stat()
        except OSError:
            continue  # not there: transformers does without it, or says what is missing
        if not stat.S_ISREG(st.st_mode):
            continue  # a named pipe would wait for a writer: refuse_special_files says so
        if why := _json_error(str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):  # fmt: skip
            return f"{path} does not parse as JSON ({why}): an interrupted download or copy?"
    return None


@functools.lru_cache(maxsize=64)
def _json_error(path: str, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> str | None:
    """Why one version of the file at ``path`` does not parse as JSON; None where it does,
    or it cannot be read (transformers says what is wrong)."""
    try:
        with open(path, "rb") as f:
            json.loads(f.read())
    except OSError:
        return None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError: cut short
        return f"{type(e).__name__}: {e}"
    return None


_MAX_HEADER = 100_000_000  # the longest header the safetensors format allows


def safetensors_shortfall(path: Path) -> str | None:
    """How a safetensors file is shorter than its header says (``"1,000 bytes; its header
    describes 4,000"``); None where it is as long. Its first 8 bytes give the header's
    length; the header, each tensor's offsets in the data after it."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            length = int.from_bytes(f.read(8), "little") if size >= 8 else 0
            header = f.read(length) if 0 < length <= size - 8 else b""
    except OSError:
        return None  # transformers says what is wrong
    if not 0 < length <= _MAX_HEADER:  # no safetensors file: transformers says what it is
        return None
    if len(header) != length:
        return f"{size:,} bytes; its header runs past the end"
    try:
        tensors = json.loads(header)
        end = max((t["data_offsets"][1] for k, t in tensors.items() if k != "__metadata__"), default=0)  # fmt: skip
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None  # not a header this reader knows: transformers says what is wrong
    described = 8 + length + int(end)
    return f"{size:,} bytes; its header describes {described:,}" if described > size else None


@functools.lru_cache(maxsize=64)
def _paths(folder: str, names: tuple[str, ...]) -> tuple[Path, ...]:
    """``names`` in ``folder`` as paths, made once: making them took most of the time of
    ``model_files``."""
    return tuple(Path(folder, name) for name in names)


def _cached_snapshot(model_id: str) -> Path | None:
    """The HF cache's snapshot of ``model_id`` that its ``refs/main`` names, the one
    transformers loads with local files only; None where there is none. Read here, not
    by huggingface_hub's ``try_to_load_from_cache``: 0.3 ms a call."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name
    except ImportError:
        return None
    try:  # a path that is not there is no hub id either: HFValidationError, a ValueError
        repo = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=model_id, repo_type="model")
        commit = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if commit and "/" not in commit and snapshot.is_dir() else None


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else the user meant as a directory.
    return Path(model).is_absolute() or model.startswith((".", "~")) or model.count("/") > 1


def _download_config(model_id: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise missing_dependency("huggingface_hub", "hf", e) from e
    try:
        return Path(hf_hub_download(model_id, "config.json"))
    except Exception as e:  # HTTP errors, RepositoryNotFound, HFValidationError...
        raise ModelUnavailableError(f"could not fetch {model_id!r} from the hub: {e}") from e


def locate_model(model: str) -> tuple[str, bool, Path]:
    """Where to load ``model`` from: (name or path, local_files_only, its config.json)."""
    path = Path(model).expanduser()
    if path.is_dir():
        refuse_special_files(path)
        config = path / "config.json"
        if not config.is_file():
            raise ModelUnavailableError(f"{path} has no config.json: it is not a model directory")
        return str(path), True, config
    cached = cached_config(model)
    if cached is not None:
        refuse_special_files(cached.parent)
        return model, True, cached
    if path.exists():  # the weights file, say: neither a folder nor a hub id
        raise ModelUnavailableError(
            f"{path} is a file, not a model folder: pass the folder that holds its config.json"
        )
    if _looks_like_path(model):
        raise ModelUnavailableError(f"model directory not found: {path}")
    hint = (
        f"download it where the hub is reachable (hf download {model}) "
        f"or pass a local model directory"
    )
    if hub_offline():
        raise ModelUnavailableError(
            f"encoder model {model!r} is not a local directory and not in the Hugging Face "
            f"cache, and HF_HUB_OFFLINE is set; {hint}"
        )
    if not hub_reachable():
        raise ModelUnavailableError(
            f"encoder model {model!r} is not a local directory and not in the Hugging Face "
            f"cache, and the hub cannot be reached; {hint}"
        )
    # said without -v, where the hub's own progress bars are off: a download of hundreds
    # of MB would otherwise look like a hang
    log.warning("fetching %s from the Hugging Face hub, once (-v shows its progress)", model)
    return model, False, _download_config(model)


def refuse_special_files(folder: Path) -> None:
    """A clear error where a file of the model ``folder`` is a named pipe or a device (a
    link to /dev/zero...): transformers, reading it, would wait or read forever."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return  # transformers says what is wrong
    for entry in entries:
        if special_kind(entry) != "a folder":
            refuse_special_file(
                entry,
                "a model folder holds the files save_pretrained wrote; put them back there",
                ModelUnavailableError,
            )
