"""WordLlama static embeddings (256-d): a token lookup table averaged per text.

Two orders of magnitude faster than MiniLM and much weaker; useful where the
router must cost nothing. The weights and tokenizer ship inside the wordllama
package itself, so loading never touches the network.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.encoders.base import Encoder
from routerllm.encoders.hf import check_texts
from routerllm.exceptions import ModelUnavailableError, missing_dependency


def _import_wordllama() -> Any:
    # wordllama calls logging.basicConfig(level=INFO) on import, which would
    # install a root handler in the host application; undo exactly that.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as e:
        raise missing_dependency("wordllama", "learn") from e
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

    def __init__(self) -> None:
        wordllama = _import_wordllama()
        spec = importlib.util.find_spec("wordllama")
        assert spec is not None and spec.origin is not None
        package_dir = Path(spec.origin).parent
        try:
            self._model = wordllama.WordLlama.load(cache_dir=package_dir, disable_download=True)
        except FileNotFoundError as e:
            raise ModelUnavailableError(
                f"WordLlama weights are not in {package_dir} ({e}); reinstall it with: "
                f"pip install --force-reinstall 'wordllama>=0.4'"
            ) from e
        self.dim = int(self._model.embedding.shape[1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        items = check_texts(texts, batch_size)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(
            self._model.embed(items, norm=False, batch_size=batch_size), dtype=np.float32
        )
        # wordllama's own norm=True divides by zero for texts with no known token.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def __repr__(self) -> str:
        return "StaticEncoder()"
