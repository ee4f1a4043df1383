"""What a command imports of RouterLLM's own code: only what its work reads. Each
``routerllm`` command is a short process (the test suite starts hundreds), and a module
imported is paid in CPU by every one of them, used or not. Real commands, each in a
process of its own (``sys.modules`` is a process's), on the tiny GGUF; the figures are
``benchmarks/cli_start.py``'s, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from .conftest import tiny_config_dict, write_config

#: A command run in a child: its status, output, and the modules it imported by the end.
COMMAND = """
import json, sys
from routerllm.cli import main
status = main({argv!r})
print(json.dumps({{"status": status, "modules": sorted(sys.modules)}}))
"""


def _command(argv: list[str]) -> tuple[int, Any, list[str]]:
    """``routerllm argv`` in a new process: its status, its ``--json`` output, and the
    modules it imported."""
    code = textwrap.dedent(COMMAND).format(argv=argv)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    *output, last = done.stdout.splitlines()
    ran = json.loads(last)
    return ran["status"], json.loads("\n".join(output)), ran["modules"]


def _config(tmp_path: Path, **settings: Any) -> str:
    # carbon tracking off: CodeCarbon's probe is not what is looked at here
    return str(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}, **settings)))  # fmt: skip


def test_route_without_override_rules_reads_neither_them_nor_the_http_backend(
    tmp_path: Path,
) -> None:
    """A config without ``overrides`` never reads the rules' module, which compiled its
    math words as it was imported; the answer's lines, quoted safely, do not need the
    HTTP backend's transport (HTTP, TLS, e-mail headers) of a config of local models."""
    argv = ["route", "hello there", "--config", _config(tmp_path), "--json", "--max-new-tokens", "1"]  # fmt: skip
    status, answer, modules = _command(argv)
    assert status == 0 and answer["model"] == "tiny-light"
    unread = {"routerllm.overrides", "routerllm.backends.http_transport", "routerllm.backends.openai_http"}  # fmt: skip
    assert not unread & set(modules), sorted(unread & set(modules))


def test_route_with_an_override_rule_applies_it_as_before(tmp_path: Path) -> None:
    rule = {"name": "legal", "pattern": r"\bcontract\b", "model": "tiny-heavy"}
    argv = ["route", "read this contract", "--config", _config(tmp_path, overrides=[rule]), "--json", "--max-new-tokens", "1"]  # fmt: skip
    status, answer, modules = _command(argv)
    assert status == 0 and answer["model"] == "tiny-heavy"
    assert "legal" in answer["reason"] and "routerllm.overrides" in modules


def test_models_of_llama_cpp_models_alone_reads_no_other_backend(tmp_path: Path) -> None:
    """``routerllm models`` asks each backend what it is (an HTTP endpoint's listing, an
    hf model's float32 weights): the other backends' modules, which made no backend of a
    config of llama.cpp models, are not imported to ask (HTTP, TLS, transformers' side)."""
    status, listed, modules = _command(["models", "--config", _config(tmp_path), "--json"])
    assert status == 0
    assert [(m["name"], m["available"], m["endpoint_lists_model"]) for m in listed["models"]] == [
        ("tiny-light", True, None),
        ("tiny-medium", True, None),
        ("tiny-heavy", True, None),
    ]
    unread = {"routerllm.backends.openai_http", "routerllm.backends.hf", "routerllm.backends.http_transport"}  # fmt: skip
    assert not unread & set(modules), sorted(unread & set(modules))
