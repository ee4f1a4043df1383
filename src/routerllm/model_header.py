"""What a configured model's GGUF header says of it, read without loading the model or
assembling its parts (the header file found by ``model_files.header_file``): the width
of the prompt states llama.cpp gives of it, and the context it runs with (its
``context_length``, at most its GGUF's trained context)."""

from __future__ import annotations

from routerllm.config import AppConfig, ModelConfig
from routerllm.gguf_header import gguf_hyperparameters, trained_context
from routerllm.model_files import header_file


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


def contexts_in_words(config: AppConfig, names: list[str]) -> str:
    """The contexts the models ``names`` run with, in words ("m: 64 tokens, its GGUF's,
    under the configured 512; ...")."""
    return "; ".join(f"{name}: {context_in_words(config.model(name))}" for name in names)
