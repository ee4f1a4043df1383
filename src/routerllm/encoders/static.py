"""WordLlama static embeddings (256-d): a token lookup table averaged per text.

Two orders of magnitude faster than MiniLM and much weaker; useful where the
router must cost nothing. The weights and tokenizer ship inside the wordllama
package itself, so loading never touches the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.encoders.base import Encoder, mean_of_rows, package_key
from routerllm.encoders.hf import check_texts
from routerllm.exceptions import ModelUnavailableError, missing_dependency
from routerllm.paths import package_dir


def _import_wordllama() -> Any:
    # wordllama calls logging.basicConfig(level=INFO) on import, which would
    # install a root handler in the host application; undo exactly that.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as e:
        raise missing_dependency("wordllama", "learn", e) from e
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return wordllama


class StaticEncoder(Encoder):
    """WordLlama ``l2_supercat`` static embeddings, L2-normalised (spec "static").

    The model is small (16 MB) and loads in the constructor. A text with no
    token at all (the empty string) gets the zero vector.
    """

    spec = "static"
    #: Its vectors as ``encode`` below (and ``mean_of_rows``) computes them, from the
    #: package's weights (part of its cache key): bump it with any change to them;
    #: tests/test_encoders.py records the vectors of each version.
    encoding_version = 1

    def __init__(self) -> None:
        wordllama = _import_wordllama()
        folder = package_dir("wordllama")
        assert folder is not None  # imported just now
        try:
            self._model = wordllama.WordLlama.load(cache_dir=folder, disable_download=True)
        except FileNotFoundError as e:
            raise ModelUnavailableError(
                f"WordLlama weights are not in {folder} ({e}); reinstall it with: "
                f"pip install --force-reinstall 'wordllama>=0.4'"
            ) from e
        self.dim = int(self._model.embedding.shape[1])
        # WordLlama's own embed() pads a batch to its longest text, then gathers every
        # row: one 50,000-character prompt among 63 short ones took 1.7 GB. Its pooling
        # (the mean of the text's token rows) is done here on each text's own tokens.
        self._tokenizer = self._model.tokenizer.from_str(self._model.tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    PACKAGES = ("wordllama",)  # the weights ship inside it

    @classmethod
    def source_files(cls, arg: str, weights: bool = True) -> list[Path] | None:
        """Its weights and tokenizer files in the wordllama package (found, not imported)."""
        package = package_dir("wordllama")
        if package is None:
            return None
        files = sorted((package / "weights").glob("*.safetensors"))
        files += sorted((package / "tokenizers").glob("*.json"))
        return files or None

    @property
    def weights_key(self) -> str:
        return package_key(self.spec, *self.PACKAGES)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        items = check_texts(texts, batch_size)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        table = self._model.embedding
        for i, encoding in enumerate(self._tokenizer.encode_batch(items, add_special_tokens=False)):
            # as WordLlama does: an id past its table is its last row
            out[i] = mean_of_rows(table, np.clip(encoding.ids, 0, len(table) - 1))
        # wordllama's own norm=True divides by zero for texts with no known token.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def __repr__(self) -> str:
        return "StaticEncoder()"
