"""What the server benchmarks share: one model's config checked before anything loads,
and `routerllm serve`'s app run in this process on a free port of 127.0.0.1."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from routerllm.config import AppConfig, load_config
from routerllm.exceptions import RouterLLMError
from routerllm.server.serving import listen, server
from routerllm.system import RouterLLM


def one_model_config(config: str, model: str) -> AppConfig | None:
    """``config`` loaded, ``model`` known in it; None once the error is said."""
    try:
        loaded = load_config(config)
        loaded.model(model)  # a wrong name found before the server starts
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    return loaded


def unavailable(system: RouterLLM, model: str) -> bool:
    """Whether ``model`` cannot run here (said), found before the server starts."""
    if reason := system.manager.availability(model):
        print(f"error: model {model!r} is not available here: {reason}", file=sys.stderr)
        return True
    return False


@contextmanager
def serving(system: RouterLLM) -> Iterator[str]:
    """``system`` served while the block runs (its access lines quiet); yields the URL of
    its chat completions."""
    sock = listen("127.0.0.1", 0)
    srv = server(system)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1/chat/completions"
    finally:
        srv.should_exit = True
        thread.join(30)
