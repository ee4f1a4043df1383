"""dev.py's set-up: torch's CPU build, never PyPI's CUDA one where it can be avoided."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev", Path(__file__).parents[1] / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_comes_from_pytorchs_cpu_index_where_it_answers(monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    dev = _dev()
    asked: list[Any] = []

    class Connection:
        def close(self) -> None:
            pass

    def answers(address: tuple[str, int], timeout: float) -> Connection:
        asked.append((address, timeout))
        return Connection()

    def fails(address: tuple[str, int], timeout: float) -> Connection:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(socket, "create_connection", answers)
    assert dev._torch_cpu_index() == ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    assert asked == [(("download.pytorch.org", 443), 3)]
    # offline, or a proxy letting PyPI alone through: pip's configuration decides
    monkeypatch.setattr(socket, "create_connection", fails)
    assert dev._torch_cpu_index() == []
    monkeypatch.setattr(sys, "platform", "darwin")  # PyPI's macOS torch is the CPU build
    monkeypatch.setattr(socket, "create_connection", answers)
    assert dev._torch_cpu_index() == []
