"""What a configured model's GGUF header says of it, read without loading the model or
assembling its parts (the header file found by ``model_files.header_file``): the width
of the prompt states llama.cpp gives of it, and the context it runs with (its
``context_length``, at most its GGUF's trained context, or an endpoint's where its
``/models`` gives one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from routerllm.config import AppConfig, ModelConfig
from routerllm.gguf_header import gguf_hyperparameters, trained_context
from routerllm.model_files import header_file

if TYPE_CHECKING:
    from routerllm.backends.base import Backend


def state_width(model: ModelConfig) -> int | None:
    """The width of the prompt states llama.cpp gives of ``model`` (its layers' outputs:
    ``embedding_length`` in its GGUF's header), read without loading it; None where
    there is no GGUF here or its header does not say."""
    path = header_file(model.gguf, model.name) if model.gguf is not None else None
    width = gguf_hyperparameters(path).get("embedding_length") if path is not None else None
    return width if isinstance(width, int) and width > 0 else None


def other_state_width(model: ModelConfig, width: int) -> str | None:
    """What ``model``'s GGUF gives where its prompt states (:func:`state_width`) are not
    ``width`` wide, in words ("m's GGUF (PATH) gives 896-wide states"); None where they
    are, or its header does not say."""
    if (own := state_width(model)) is None or own == width:
        return None
    path = header_file(model.gguf, model.name) if model.gguf is not None else None
    return f"{model.name}'s GGUF ({path}) gives {own}-wide states"


def effective_context(model: ModelConfig, backend: Backend | None = None) -> int:
    """The context a model runs with, as far as can be told without loading it: its
    ``context_length``, at most the trained context its GGUF's header gives (llama.cpp
    runs at most that), or the context its endpoint's /models gives (``backend``'s, as
    its last availability check read it)."""
    return _context(model, backend)[0]


def context_and_source(model: ModelConfig, backend: Backend | None = None) -> tuple[int, str]:
    """:func:`effective_context` and where it comes from: ``config`` (its
    ``context_length``), ``gguf`` (its GGUF's, shorter) or ``endpoint`` (its endpoint's,
    shorter), read together (an endpoint's can change between two reads: a refresh)."""
    context, source, _ = _context(model, backend)
    return context, source


def _context(model: ModelConfig, backend: Backend | None) -> tuple[int, str, str]:
    """The context ``model`` runs with, where it comes from, and that in words ("its
    GGUF's", "its endpoint's max_model_len"; "" for its ``context_length``)."""
    path = header_file(model.gguf, model.name) if model.gguf is not None else None
    own = trained_context(path) if path is not None else None
    if own is not None and own < model.context_length:
        return own, "gguf", "its GGUF's"
    served = backend.endpoint_context() if backend is not None else None
    if served is not None and served.tokens < model.context_length:
        return served.tokens, "endpoint", f"its endpoint's {served.field}"
    return model.context_length, "config", ""


def context_in_words(model: ModelConfig, backend: Backend | None = None) -> str:
    """The context ``model`` runs with (``effective_context``), in words: "64 tokens,
    its GGUF's, under the configured 512" where its GGUF's is the shorter ("its
    endpoint's max_model_len" where its endpoint's is)."""
    context, _, whose = _context(model, backend)
    return f"{context} tokens, {whose}, under the configured {model.context_length}" if whose else f"{context} tokens"  # fmt: skip


def contexts_in_words(
    config: AppConfig, names: list[str], backend_of: Callable[[str], Backend] | None = None
) -> str:
    """The contexts the models ``names`` run with, in words ("m: 64 tokens, its GGUF's,
    under the configured 512; ..."); ``backend_of`` gives a model's backend, whose
    endpoint may give a shorter context."""
    return "; ".join(
        f"{name}: {context_in_words(config.model(name), backend_of(name) if backend_of else None)}"
        for name in names
    )
