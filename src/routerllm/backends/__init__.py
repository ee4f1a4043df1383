"""Model backends: llama.cpp (local GGUF), Hugging Face transformers, OpenAI-compatible HTTP."""

from routerllm.backends.base import Backend, Completion, GenerationRequest, create_backend

__all__ = ["Backend", "Completion", "GenerationRequest", "create_backend"]
