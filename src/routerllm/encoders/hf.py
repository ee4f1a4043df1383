"""Any Hugging Face encoder, from a local directory or a hub id, mean- or CLS-pooled.

The spec is ``hf:<id or path>``; options that differ from the defaults follow a
``?``, as in ``hf:bert-base-uncased?pooling=cls&normalize=false&max_length=128``,
so that the spec alone rebuilds the same encoder (specs key the embedding cache
and are saved with routers).

Where the weights come from, in order (see :mod:`routerllm.hf_hub`): a local
directory; the local HF cache (loaded with ``local_files_only``, no network call at
all); the hub, only when ``HF_HUB_OFFLINE`` is unset and the hub answers. Anything
else is a :class:`~routerllm.exceptions.ModelUnavailableError` raised at once.

torch and transformers are imported when the model is first needed (the first
``encode`` or an explicit ``load()``), never on import.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.encoders.base import Encoder, check_texts
from routerllm.encoders.prefix import PrefixCutter
from routerllm.exceptions import (
    ConfigError,
    ModelUnavailableError,
    RouterLLMError,
    missing_dependency,
)
from routerllm.hf_hub import TRUE_WORDS, cached_config, locate_model

POOLINGS = ("mean", "cls")
DEFAULT_POOLING = "mean"
DEFAULT_MAX_LENGTH = 512
_OPTIONS = ("pooling", "normalize", "max_length")
_FALSE = {"0", "false", "no", "off"}
# Config keys that hold the hidden size, by model family (BERT, T5/BART, DistilBERT, GPT-2).
_DIM_KEYS = ("hidden_size", "d_model", "dim", "n_embd")
#: Padded tokens per batch (see token_batches). On 2 CPU cores MiniLM runs mixed
#: prompts 2-3x faster with 256-1024 than with 8192 (benchmarks/encoder_latency.py).
MAX_BATCH_TOKENS = 1024
#: Characters of text tokenized at a time (see text_windows).
CHARS_AT_ONCE = 1_000_000
#: Held while an encoder loads: threads importing transformers at once get an ImportError
#: from its lazy module (and each would load the model again).
_LOADING = threading.Lock()


def cpu_threads() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


#: What transformers reads of a model's folder: its weights (``model.safetensors``, a
#: sharded model's parts, ``pytorch_model.bin``), and its settings and tokenizer
#: (``config.json``, ``tokenizer.json``, ``vocab.txt``, ``spiece.model``...); not a README.
WEIGHTS_SUFFIXES = (".safetensors", ".bin")
SETTINGS_SUFFIXES = (".json", ".txt", ".model")


def model_folder_files(folder: Path, weights: bool = True) -> list[Path]:
    """The files of a model's ``folder`` that make its embeddings (:data:`WEIGHTS_SUFFIXES`
    where ``weights``, :data:`SETTINGS_SUFFIXES`), by name."""
    suffixes = SETTINGS_SUFFIXES + (WEIGHTS_SUFFIXES if weights else ())
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in suffixes and not p.name.startswith(".") and p.is_file()
    )


def _config_dim(config_path: Path) -> int | None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelUnavailableError(f"cannot read {config_path}: {e}") from e
    if not isinstance(config, dict):
        raise ModelUnavailableError(f"{config_path} is not a model's config (not a JSON object)")
    for key in _DIM_KEYS:
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def _parse_bool(value: str, spec: str) -> bool:
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"normalize must be true or false in encoder spec {spec!r}, not {value!r}")


def parse_model_options(model: str) -> tuple[str, dict[str, str]]:
    """Split ``"id?pooling=cls&normalize=false"`` into the id and its options."""
    name, sep, query = model.partition("?")
    options: dict[str, str] = {}
    for part in query.split("&") if sep else []:
        key, eq, value = part.partition("=")
        if not eq or key not in _OPTIONS:
            raise ConfigError(
                f"bad option {part!r} in encoder spec 'hf:{model}'; valid options: "
                f"pooling=mean|cls, normalize=true|false, max_length=<tokens>"
            )
        options[key] = value
    return name, options


def text_encoder(model: Any) -> Any:
    """The part of a transformers model that embeds text: an encoder-decoder's (T5,
    BART) encoder, whose forward takes the text alone; any other model itself."""
    if getattr(model.config, "is_encoder_decoder", False):
        return model.get_encoder()
    return model


def token_limit(tokenizer: Any, model: Any, max_length: int) -> int:
    """Tokens a text keeps: ``max_length``, never past what the tokenizer or the
    model's positions allow (a longer text ended in a bare torch error)."""
    # Tokenizers without a known limit report a huge sentinel (int(1e30)).
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    limits = [max_length, _position_limit(model)]
    return min(n for n in [*limits, limit if limit < 1_000_000 else 0] if n > 0)


def _position_limit(model: Any) -> int:
    """Tokens the model has positions for (0: not known)."""
    n = getattr(model.config, "max_position_embeddings", None)
    if not isinstance(n, int) or n < 1:
        return 0
    table = getattr(getattr(model, "embeddings", None), "position_embeddings", None)
    offset = getattr(table, "padding_idx", None)  # RoBERTa's positions start after it
    return n - offset - 1 if isinstance(offset, int) and 0 <= offset < n - 1 else n


def prefix_cutter(tokenizer: Any, max_tokens: int) -> PrefixCutter | None:
    """What cuts a long text to the prefix of it ``tokenizer`` keeps ``max_tokens`` of;
    None for a tokenizer that keeps the end of a text (truncation_side "left") or has no
    ``tokenizers`` backend (a slow one): such a tokenizer reads the whole text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "truncation_side", "right") != "right":
        return None
    return PrefixCutter(backend, max_tokens)


def token_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_BATCH_TOKENS
) -> list[np.ndarray]:
    """Group text indices into batches, longest texts first.

    Each batch has at most ``batch_size`` rows and, once padded to its longest
    row, at most ``max_tokens`` tokens (but always at least one row). Sorting
    keeps padding small; the token cap keeps one long prompt from padding a
    whole batch of short ones to its length.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    batches: list[np.ndarray] = []
    current: list[int] = []
    width = 0
    for i in np.argsort([-n for n in lengths], kind="stable"):
        if current and (len(current) == batch_size or (len(current) + 1) * width > max_tokens):
            batches.append(np.array(current))
            current = []
        if not current:
            width = lengths[i]
        current.append(int(i))
    if current:
        batches.append(np.array(current))
    return batches


def text_windows(texts: Sequence[str], max_chars: int | None = None) -> list[slice]:
    """Consecutive slices of ``texts`` of at most ``max_chars`` characters together (but
    always at least one text): what an encoder tokenizes and embeds at a time. A tokenizer
    holds every token of a text, those past the limit too, until the batch is done: all
    at once, 10,000 prompts of 6,000 characters took 3 GB."""
    limit = CHARS_AT_ONCE if max_chars is None else max_chars
    windows: list[slice] = []
    start, size = 0, 0
    for i, text in enumerate(texts):
        if i > start and size + len(text) > limit:
            windows.append(slice(start, i))
            start, size = i, 0
        size += len(text)
    if start < len(texts):
        windows.append(slice(start, len(texts)))
    return windows


class TokenizingEncoder(Encoder):
    """An encoder that tokenizes its texts (a transformers or ONNX model): they are
    checked, then encoded a window of ``text_windows`` at a time into ``out``."""

    @abstractmethod
    def load(self) -> None:
        """Load the tokenizer and model now (otherwise on first use)."""

    @abstractmethod
    def _encode_window(self, items: list[str], batch_size: int, out: np.ndarray) -> None:
        """Embed ``items`` (a window of checked texts) into the rows of ``out``."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        items = check_texts(texts, batch_size)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        self.load()
        for window in text_windows(items):
            self._encode_window(items[window], batch_size, out[window])
        return out


class HFEncoder(TokenizingEncoder):
    """A transformers encoder (AutoTokenizer + AutoModel), pooled into one vector per text.

    ``pooling`` is ``"mean"`` (over the attention mask, as sentence-transformers
    does) or ``"cls"`` (the first token's hidden state); ``normalize`` makes the
    vectors unit-length; texts are truncated to ``max_length`` tokens (and never
    past what the tokenizer or the model's positions allow). Options may also come
    in the model string (see the module docstring); an option given both ways must
    agree. A text with no token at all gets the zero vector.
    ``threads`` sets torch's process-wide thread count when the model loads
    (default: every CPU this process may use).
    """

    _model: Any = None
    _tokenizer: Any = None
    #: Cuts a long text to the prefix whose tokens are kept (None: tokenized whole).
    _cutter: PrefixCutter | None = None
    #: Cap on padded tokens per batch; batch_size still caps the rows.
    max_batch_tokens = MAX_BATCH_TOKENS
    #: Its vectors (and ``minilm``'s) as ``_encode_window`` below and what it calls
    #: (``TokenizingEncoder.encode``, ``text_windows``, ``token_limit``, the cut of
    #: ``prefix.py``) compute them (part of its cache key): bump it with any change to
    #: them; those it shares with ``minilm-onnx``, its version too.
    encoding_version = 1

    def __init__(
        self,
        model: str,
        *,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        name, options = parse_model_options(model)
        if not name:
            raise ConfigError("encoder spec 'hf:' needs a model id or directory after the colon")
        self.model_name = name
        self.pooling = self._merge("pooling", pooling, options, str, DEFAULT_POOLING)
        self.normalize = self._merge(
            "normalize", normalize, options, lambda v: _parse_bool(v, model), True
        )
        self.max_length = self._merge("max_length", max_length, options, int, DEFAULT_MAX_LENGTH)
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.max_length < 1:
            raise ConfigError(
                f"max_length must be a positive number of tokens, not {self.max_length}"
            )
        self.threads = threads if threads is not None else cpu_threads()
        self.spec = self._spec()
        self._source, self._local, config_path = locate_model(name)
        self._config_path = config_path
        dim = _config_dim(config_path)
        if dim is None:  # unusual config: ask the model itself
            self.load()
            dim = int(self._model.config.hidden_size)
        self.dim = dim

    @classmethod
    def width_of(cls, arg: str) -> int | None:
        """The width its config.json gives, for a local folder or a model in the local
        Hugging Face cache (never fetched for this); else None."""
        name = parse_model_options(arg)[0]
        path = Path(name).expanduser()
        try:
            config = path / "config.json" if path.is_dir() else cached_config(name)
            return _config_dim(config) if config is not None and config.is_file() else None
        except (RouterLLMError, OSError, ValueError):  # the built encoder says what is wrong
            return None

    @staticmethod
    def _merge(key: str, given: Any, options: dict[str, str], parse: Any, default: Any) -> Any:
        if key not in options:
            return default if given is None else given
        try:
            parsed = parse(options[key])
        except ValueError as e:
            raise ConfigError(f"bad value for {key} in encoder spec: {options[key]!r}") from e
        if given is not None and given != parsed:
            raise ConfigError(f"{key} given twice with different values: {given!r} and {parsed!r}")
        return parsed

    def _spec(self) -> str:
        options = []
        if self.pooling != DEFAULT_POOLING:
            options.append(f"pooling={self.pooling}")
        if not self.normalize:
            options.append("normalize=false")
        if self.max_length != DEFAULT_MAX_LENGTH:
            options.append(f"max_length={self.max_length}")
        return f"hf:{self.model_name}" + (f"?{'&'.join(options)}" if options else "")

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        """The files of its folder (:func:`model_folder_files`): a local one, or the
        snapshot of the local Hugging Face cache it loads from (never fetched for this)."""
        try:
            name = parse_model_options(arg)[0]
            path = Path(name).expanduser()
            config = path / "config.json" if path.is_dir() else cached_config(name)
            if config is None or not config.is_file():
                return None
            return model_folder_files(config.parent.absolute(), weights) or None
        except (RouterLLMError, OSError, ValueError):  # the built encoder says what is wrong
            return None

    @property
    def weights_key(self) -> str:
        """The spec and which weights it names now: a folder (its absolute path and its
        files' sizes, inodes and times: ``hf:./enc`` in two projects, or a model saved
        again there, are other weights; the change time too, which a copy that keeps the
        old time, ``cp -p``, cannot set) or a hub snapshot (its commit)."""
        if not self.spec.startswith("hf:"):
            return self.spec  # a packaged model (minilm): the spec names its weights
        folder = Path(self._source)
        if not (self._local and folder.is_dir()):
            return f"{self.spec}@{self._config_path.parent.name}"
        files = sorted((p.name, p.stat()) for p in folder.resolve().iterdir() if p.is_file())
        stamp = ";".join(
            f"{n}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}" for n, st in files
        )
        digest = hashlib.sha256(stamp.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{self.spec}@{folder.resolve()}@{digest}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the tokenizer and the model now (``encode`` does it on first use)."""
        if self._model is not None:
            return
        with _LOADING:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise missing_dependency("torch/transformers", "hf", e) from e
        torch.set_num_threads(self.threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self._source, local_files_only=self._local)
            model = AutoModel.from_pretrained(
                self._source, local_files_only=self._local, dtype=torch.float32
            )
        except ImportError:
            raise
        except Exception as e:  # missing or corrupt files: OSError, SafetensorError, ValueError...
            raise ModelUnavailableError(self._unloadable(e)) from e
        if tokenizer.pad_token is None:
            # Decoder-style tokenizers have no pad token; padding is masked out anyway.
            if tokenizer.eos_token is None:
                raise ModelUnavailableError(
                    f"the tokenizer of {self.model_name!r} has no padding or end token"
                )
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"  # CLS pooling reads position 0
        model = text_encoder(model)
        if "input_ids" not in inspect.signature(model.forward).parameters:
            # an image or speech model beside a text tokenizer: given token ids, its forward
            # fails in its own way (a ViT with an AttributeError)
            raise ModelUnavailableError(
                self._not_a_text_encoder(f"{type(model).__name__} takes no token ids")
            )
        model.eval()
        self._cutter = prefix_cutter(tokenizer, token_limit(tokenizer, model, self.max_length))
        self._tokenizer, self._model = tokenizer, model

    def _unloadable(self, error: Exception) -> str:
        """One line on why transformers could not load the model (its own texts run to
        several lines)."""
        from routerllm.exceptions import one_line

        if self._local and Path(self._source).is_dir():
            return (
                f"{self._source} is not a loadable Hugging Face model: its tokenizer or weights "
                f"are missing or unreadable (transformers: {one_line(error)}); pass a directory "
                f"written by save_pretrained (tokenizer files and weights beside config.json)"
            )
        return f"transformers could not load encoder {self.model_name!r}: {one_line(error)}"

    def _not_a_text_encoder(self, why: str) -> str:
        return (
            f"{self.model_name!r} cannot embed text as an encoder ({why}); "
            f"use a text encoder such as minilm or a BERT-like model"
        )

    def _token_limit(self) -> int:
        return token_limit(self._tokenizer, self._model, self.max_length)

    def _encode_window(self, items: list[str], batch_size: int, out: np.ndarray) -> None:
        import torch

        # Tokenize the window first, so batches can be planned on token counts; of a
        # long text, only the prefix whose tokens are kept.
        texts = items if self._cutter is None else self._cutter.cut(items)
        encoded = self._tokenizer(texts, truncation=True, max_length=self._token_limit())
        lengths = [len(ids) for ids in encoded["input_ids"]]
        with torch.inference_mode():
            for idx in token_batches(lengths, batch_size, self.max_batch_tokens):
                # A text with no token (the empty string, where the tokenizer adds no
                # special tokens) gets the zero vector, alone or in a batch: the model
                # cannot run on no tokens, and CLS pooling would read a pad token.
                empty = idx[[lengths[i] == 0 for i in idx]]
                if len(empty) == len(idx):
                    out[idx] = 0.0
                    continue
                batch = self._tokenizer.pad(
                    {key: [values[i] for i in idx] for key, values in encoded.items()},
                    return_tensors="pt",
                )
                try:
                    hidden = self._model(**batch)[0]
                except (TypeError, ValueError) as e:  # it takes no token ids: not a text model
                    from routerllm.exceptions import one_line

                    why = f"transformers: {one_line(e)}"
                    raise ModelUnavailableError(self._not_a_text_encoder(why)) from e
                mask = batch["attention_mask"]
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    weights = mask.unsqueeze(-1).to(hidden.dtype)
                    # sentence-transformers' mean pooling, clamp included.
                    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().numpy()
                out[empty] = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r})"
