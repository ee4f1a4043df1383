"""Where RouterLLM keeps what it builds (assembled models, embeddings, encoder tables)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$ROUTERLLM_CACHE, or ~/.cache/routerllm (read at each call, so tests can move it).
    A ``~`` in it is the home folder, as in the config's paths (a value quoted in a
    shell, or set in a service's environment file, reaches us unexpanded)."""
    env = os.environ.get("ROUTERLLM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "routerllm"
