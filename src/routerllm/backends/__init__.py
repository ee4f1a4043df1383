"""Model backends: llama.cpp (local GGUF), Hugging Face transformers, OpenAI-compatible HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type checker sees the real names; at run time they load on first use
    from routerllm.backends.base import Backend, Completion, GenerationRequest, create_backend

__all__ = ["Backend", "Completion", "GenerationRequest", "create_backend"]


def __getattr__(name: str) -> Any:
    # Lazy, so that a light submodule (``interrupts``, which the CLI sets up before anything
    # else) loads without pydantic and the config's models: a Ctrl-C then is the CLI's.
    if name in __all__:
        from routerllm.backends import base

        return getattr(base, name)
    raise AttributeError(f"module 'routerllm.backends' has no attribute {name!r}")


def __dir__() -> list[str]:
    # As routerllm's: the API and the dunders, in dir() and tab completion.
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
