"""Text encoders for learned routers: packaged MiniLM (default), any HF model, int8 ONNX MiniLM, static tables (MiniLM-distilled, WordLlama)."""

from routerllm.encoders.base import CachedEncoder, Encoder, create_encoder

__all__ = ["CachedEncoder", "Encoder", "create_encoder"]
