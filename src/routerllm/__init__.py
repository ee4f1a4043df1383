"""RouterLLM: send each LLM request to the smallest capable model, and measure
the energy, CO2 and cost of every request.

    from routerllm import RouterLLM
    with RouterLLM.from_config("local") as system:
        result = system.generate("What is a Python list?")
        print(result.model, result.text, result.co2_kg)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type checker sees the real classes; at run time they load on first use
    from routerllm.backends.base import GenerationRequest
    from routerllm.config import AppConfig, load_config
    from routerllm.exceptions import RouterLLMError
    from routerllm.system import RouterLLM

__version__ = "0.1.0"
__all__ = ["AppConfig", "GenerationRequest", "RouterLLM", "RouterLLMError", "load_config"]

_LAZY = {
    "RouterLLM": "routerllm.system",
    "AppConfig": "routerllm.config",
    "load_config": "routerllm.config",
    "GenerationRequest": "routerllm.backends.base",
    "RouterLLMError": "routerllm.exceptions",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import routerllm` stays fast (no numpy/pydantic until used).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'routerllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The API and the dunders: not this file's own imports (Any, TYPE_CHECKING,
    # annotations), nor the submodules loaded so far, in dir() and tab completion.
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
