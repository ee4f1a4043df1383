"""Name -> implementation registries, imported lazily on first use.

Registries hold ``"module:Class"`` strings so that ``import routerllm`` never
imports torch, llama_cpp or codecarbon.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Generic, TypeVar

from routerllm.exceptions import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a class given as a ``"module:Class"`` path."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name: str, target: str) -> None:
        """Add (or replace) an implementation, e.g. a user's own router."""
        self._entries[name] = target

    @contextmanager
    def added(self, entries: Mapping[str, str]) -> Iterator[None]:
        """``entries`` registered for a ``with`` block only: the names it replaced are
        given back and the new ones removed after it, as a script run in a library user's
        process (or a test's) must leave the registry as it found it."""
        before = dict(self._entries)
        self._entries.update(entries)
        try:
            yield
        finally:
            self._entries = before

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> type[T]:
        """The class registered under ``name``; clear error listing valid names."""
        try:
            target = self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        cls: type[T] = getattr(module, attr)
        return cls


ROUTERS: Registry = Registry(
    "router",
    {
        "random": "routerllm.routers.baselines:RandomRouter",
        "largest": "routerllm.routers.baselines:LargestRouter",
        "smallest": "routerllm.routers.baselines:SmallestRouter",
        "rules": "routerllm.routers.rules:RuleBasedRouter",
        "classifier": "routerllm.routers.classifier:EmbeddingClassifierRouter",
        "complexity": "routerllm.routers.complexity:ComplexityRouter",
        "quality": "routerllm.routers.quality:QualityRouter",
        "knn": "routerllm.routers.quality:KNNRouter",
        "logreg": "routerllm.routers.quality:LogisticRouter",
        "ensemble": "routerllm.routers.ensemble:EnsembleRouter",
        "feedback": "routerllm.routers.feedback:FeedbackRouter",
        "policy": "routerllm.routers.policy:PolicyRouter",
        "moe": "routerllm.routers.moe:MoERouter",
    },
)

BACKENDS: Registry = Registry(
    "backend",
    {
        "llama_cpp": "routerllm.backends.llama_cpp:LlamaCppBackend",
        "hf": "routerllm.backends.hf:HFBackend",
        "openai_http": "routerllm.backends.openai_http:OpenAIHTTPBackend",
    },
)

ENCODERS: Registry = Registry(
    "encoder",
    {
        "minilm": "routerllm.encoders.minilm:MiniLMEncoder",
        "minilm-onnx": "routerllm.encoders.minilm:OnnxMiniLMEncoder",
        "minilm-static": "routerllm.encoders.distilled:DistilledMiniLMEncoder",
        "static": "routerllm.encoders.static:StaticEncoder",
        "hf": "routerllm.encoders.hf:HFEncoder",
        "hashing": "routerllm.encoders.hashing:HashingEncoder",
    },
)
