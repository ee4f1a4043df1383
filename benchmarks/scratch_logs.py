"""A measuring benchmark's scratch request log and emissions CSV: the user's own are
left alone."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from routerllm.config import AppConfig


@contextmanager
def scratch_logs(config: AppConfig, prefix: str = "routerllm-bench-") -> Iterator[None]:
    """Point ``config``'s request log and emissions CSV into a temporary folder, removed
    on exit, and turn its cache off: every request generated and measured, none a cache hit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        config.log.path = f"{scratch}/requests.sqlite"
        config.carbon.output_dir = f"{scratch}/carbon"
        config.cache.enabled = False
        yield
