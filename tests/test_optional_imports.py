"""What a failed optional import says: a package that is not installed names the extra
to install; one installed whose import fails (a shared library missing, a submodule
gone in a half-finished upgrade, a dependency missing) says so, with the import's own
error and that reinstalling it is the fix, since pip says an installed one is there."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from routerllm.exceptions import MissingDependencyError

from .conftest import hide_package, tiny_config_dict, write_config
from .test_cli import assert_one_line_error

SRC = Path(__file__).resolve().parents[1] / "src" / "routerllm"
REINSTALL = "pip install --force-reinstall"


def _shadowing(tmp_path: Path, package: str, init: str) -> dict[str, str]:
    """The environment of a process in which ``package`` is one installed whose
    ``__init__`` runs ``init``: a package of that name first on its ``sys.path``."""
    folder = tmp_path / "shadow" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(init)
    path = [str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _python(code: str, env: dict[str, str]) -> str:
    """What ``code`` printed, run in a fresh interpreter (the package is imported anew)."""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.strip()


_ERROR_OF = """
from routerllm.exceptions import MissingDependencyError
try:
    {call}
except MissingDependencyError as e:
    print(e)
"""


def test_a_package_that_is_not_installed_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from routerllm.encoders.static import StaticEncoder

    hide_package(monkeypatch, "wordllama")
    with pytest.raises(MissingDependencyError) as caught:
        StaticEncoder()
    assert str(caught.value) == (
        "wordllama is not installed; install it with: pip install 'routerllm[learn]'"
    )


def test_an_installed_package_missing_a_submodule_is_said_to_fail_to_import(
    tmp_path: Path,
) -> None:
    """A half-upgraded package whose ``__init__`` imports a module it no longer has
    was "not installed", and pip then said it was already there."""
    env = _shadowing(tmp_path, "wordllama", "from wordllama.inference import WordLlama\n")
    said = _python(_ERROR_OF.format(call="from routerllm.encoders import create_encoder; create_encoder('static')"), env)  # fmt: skip
    assert said.startswith(
        "wordllama is installed but cannot be imported (No module named 'wordllama.inference'); "
        f"reinstall it with: {REINSTALL} 'wordllama"
    ), said
    assert "not installed" not in said


def test_a_shared_library_missing_is_said_with_the_import_error(tmp_path: Path) -> None:
    why = "libonnxruntime.so.1: cannot open shared object file: No such file or directory"
    env = _shadowing(tmp_path, "onnxruntime", f"raise ImportError({why!r} + '\\nmore')\n")
    call = "from routerllm.encoders import create_encoder; create_encoder('minilm-onnx').encode(['hi'])"  # fmt: skip
    said = _python(_ERROR_OF.format(call=call), env)
    assert said.startswith(f"onnxruntime is installed but cannot be imported ({why} more); "
                           f"reinstall it with: {REINSTALL} 'onnxruntime"), said  # fmt: skip


def test_of_torch_and_transformers_the_one_that_fails_is_named(tmp_path: Path) -> None:
    """torch imported, transformers did not: reinstalling torch (GBs) is no fix."""
    model = tmp_path / "enc"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 8}))
    env = _shadowing(tmp_path, "transformers", "raise ImportError('a version conflict')\n")
    call = f"from routerllm.encoders import create_encoder; create_encoder('hf:{model}').encode(['hi'])"  # fmt: skip
    said = _python(_ERROR_OF.format(call=call), env)
    assert said.startswith(
        "transformers is installed but cannot be imported (a version conflict); "
        f"reinstall it with: {REINSTALL} 'transformers"
    ), said
    assert "torch" not in said


def test_the_cli_says_a_dependency_of_a_package_is_missing_not_the_package(
    tmp_path: Path,
) -> None:
    """uvicorn installed, a package it imports gone: `serve` said uvicorn was not
    installed."""
    env = _shadowing(tmp_path, "uvicorn", "import click_gone_here\n")
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "routerllm.cli", "serve", "--config", str(config), "--port", "0"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(
        proc,
        "error: uvicorn is installed but cannot be imported (No module named 'click_gone_here'); "
        f"reinstall it with: {REINSTALL} 'uvicorn",
    )


def test_llama_cpp_without_its_shared_library_is_one_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    """llama-cpp-python raises a RuntimeError, not an ImportError, where its libllama.so
    cannot be loaded (a FileNotFoundError where it is not there): `route` ended in its
    traceback."""
    why = (
        "Failed to load shared library '/x/lib/libllama.so': libggml.so: cannot open "
        "shared object file: No such file or directory"
    )
    env = _shadowing(tmp_path, "llama_cpp", f"raise RuntimeError({why!r})\n")
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "routerllm.cli", "route", "--config", str(config), "hello"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(
        proc,
        f"llama-cpp-python is installed but cannot be imported ({why}); "
        f"reinstall it with: {REINSTALL} 'llama-cpp-python",
    )


def test_a_plot_with_a_broken_matplotlib_is_refused_for_what_it_is(tmp_path: Path) -> None:
    """`--plot` said matplotlib was not installed where its import failed."""
    from .test_outcome_routing import make_rows, write_json

    why = "numpy.core.multiarray failed to import"
    env = _shadowing(tmp_path, "matplotlib", f"raise ImportError({why!r})\n")
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    proc = subprocess.run(
        [sys.executable, "-m", "routerllm.cli", "eval-routing", "--data", str(data),
         "--encoder", "hashing", "--plot", str(tmp_path / "c.png")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(
        proc,
        f"error: --plot needs matplotlib, which is installed but cannot be imported ({why}); "
        f"reinstall it with: {REINSTALL} 'matplotlib",
        "or leave --plot out (nothing was run)",
    )
    assert not (tmp_path / "c.png").exists()


def _handlers_not_passing_their_error() -> list[str]:
    """Each ``missing_dependency(...)`` raised in an ``except ... as e`` block that does
    not pass ``e``: its file and line."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for handler in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(handler, ast.ExceptHandler) or handler.name is None:
                continue
            for call in ast.walk(handler):
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "id", None) == "missing_dependency"
                    and not any(getattr(a, "id", None) == handler.name for a in call.args)
                ):
                    found.append(f"{path.relative_to(SRC)}:{call.lineno}")
    return found


def test_every_failed_optional_import_passes_its_error() -> None:
    assert _handlers_not_passing_their_error() == []


def test_of_torch_and_transformers_a_broken_torch_alone_is_named(tmp_path: Path) -> None:
    """torch failed to import, so transformers was never tried: it is not known to be
    installed, and reinstalling it is no fix."""
    model = tmp_path / "enc"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 8}))
    why = "libtorch_cpu.so: cannot open shared object file: No such file or directory"
    env = _shadowing(tmp_path, "torch", f"raise ImportError({why!r})\n")
    call = f"from routerllm.encoders import create_encoder; create_encoder('hf:{model}').encode(['hi'])"  # fmt: skip
    said = _python(_ERROR_OF.format(call=call), env)
    assert said.startswith(
        f"torch is installed but cannot be imported ({why}); reinstall it with: {REINSTALL} 'torch"
    ), said
    assert "transformers" not in said
