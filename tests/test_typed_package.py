"""RouterLLM as a typed library: what `import routerllm` gives, that it is cheap, and that
a user's code type-checks against it with `mypy --strict`, with precise types."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import routerllm

README = Path(__file__).resolve().parents[1] / "README.md"
HEAVY = ("torch", "transformers", "llama_cpp", "fastapi", "codecarbon", "sklearn", "onnxruntime")


def test_py_typed_is_shipped_so_a_users_mypy_reads_the_annotations() -> None:
    # without the marker mypy skips an installed package: every name is Any
    assert (resources.files("routerllm") / "py.typed").is_file()


def test_every_public_name_is_importable_listed_and_documented() -> None:
    python_api = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    python_api = python_api.split("\n## ", 1)[0]
    for name in routerllm.__all__:
        assert getattr(routerllm, name) is not None
        assert name in dir(routerllm)
        assert re.search(rf"\b{name}\b", python_api), f"{name} is not in README's Python API"


@pytest.mark.parametrize("module", ["routerllm", "routerllm.backends"])
def test_dir_and_tab_completion_show_the_public_api_only(module: str) -> None:
    """The lazily exporting packages listed their own imports (``Any``, ``TYPE_CHECKING``,
    ``annotations``) beside their API in dir() and in the REPL's completion."""
    import importlib
    import rlcompleter

    package = importlib.import_module(module)
    assert [name for name in dir(package) if not name.startswith("__")] == sorted(package.__all__)
    assert "__version__" in dir(routerllm) and "__doc__" in dir(package)
    completer = rlcompleter.Completer({module.split(".")[0]: routerllm})
    shown = []
    while (word := completer.complete(f"{module}.", len(shown))) is not None:
        shown.append(word)
    assert sorted(word.removeprefix(f"{module}.").rstrip("(") for word in shown) == sorted(
        package.__all__
    )


def test_importing_the_public_names_loads_no_heavy_dependency() -> None:
    # as the README says: the package alone loads not even numpy or pydantic
    code = (
        "import sys, routerllm\n"
        "print([m for m in ('numpy', 'pydantic', 'yaml') if m in sys.modules])\n"
        f"from routerllm import {', '.join(routerllm.__all__)}\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["[]", "[]"]


USER_CODE = """\
from routerllm import AppConfig, GenerationRequest, RouterLLM, RouterLLMError, load_config
from routerllm.exceptions import BatchError, RequestLogError

config: AppConfig = load_config("local")
# --strict warns of an unused ignore: these must be errors to the user's mypy
RouterLLM.from_config("local", request_log=3)  # type: ignore[arg-type]
RouterLLM.from_config("local", requst_log="x.sqlite")  # type: ignore[call-arg]
with RouterLLM.from_config("local") as system:
    result = system.generate(GenerationRequest("hi", max_new_tokens=8))
    reveal_type(result)
    reveal_type(result.co2_kg)
    reveal_type(system.generate_batch(["hi"]))
    # a conversation as an application keeps it: a list of turns (the runtime took one,
    # its error says "a list of (role, text) pairs", but the type said a tuple)
    turns: list[tuple[str, str]] = [("user", "hi"), ("assistant", "Hello.")]
    system.generate(GenerationRequest("And in Rust?", history=turns, stop=("```",)))
    try:
        system.generate_batch(["a", "b"])
    except BatchError as e:
        reveal_type(e.results)
    except RequestLogError as e:
        reveal_type(e.result)
    except RouterLLMError as e:
        print(e)
"""


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for this file's runs: the second reads routerllm's and its
    dependencies' analysis from it (incremental mode gives a cold run's result), where a
    fresh cache spent 37 s again on them (load 10, 2 cores)."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy_strict(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> list[str]:
    """``mypy --strict``'s lines about a user's file holding ``code`` (not the package's:
    it has its own mypy settings), and the whole output last."""
    from mypy import api

    user = tmp_path / "user_app.py"
    user.write_text(code, encoding="utf-8")
    home = Path(routerllm.__file__).resolve().parents[1]  # the copy imported here
    if home.name != "site-packages":  # a source checkout: an installed one needs py.typed
        monkeypatch.setenv("MYPYPATH", str(home))
    limit = sys.getrecursionlimit()
    try:
        out, err, _ = api.run(
            ["--strict", "--config-file", "", "--cache-dir", str(cache), str(user)]
        )
    finally:  # mypy raises it to 2**14: a later test's deep YAML then did not fail as it should
        sys.setrecursionlimit(limit)
    return [line for line in out.splitlines() if line.startswith(str(user))] + [out + err]


def test_a_users_code_passes_mypy_strict_with_precise_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mypy_cache: Path
) -> None:
    *lines, out = mypy_strict(USER_CODE, tmp_path, monkeypatch, mypy_cache)
    revealed = [line.split("Revealed type is ")[1] for line in lines if "Revealed type" in line]
    assert revealed == [
        '"routerllm.routed_result.RoutedResult"',
        '"float"',
        '"list[routerllm.routed_result.RoutedResult]"',
        '"list[routerllm.routed_result.RoutedResult]"',
        '"routerllm.routed_result.RoutedResult | None"',
    ], out
    assert not [line for line in lines if ": error:" in line], out


def test_the_readmes_router_learned_in_code_passes_mypy_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mypy_cache: Path
) -> None:
    """create_router of an outcome router's name is typed as one: its fit_dataset and
    calibrate are there to the user's mypy, not an error on Router."""
    section = README.read_text(encoding="utf-8").split("### A router learned in code", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "fit_dataset" in code
    code += "reveal_type(create_router('knn', config.models))\n"
    code += "reveal_type(create_router('rules', config.models))\n"
    *lines, out = mypy_strict(code, tmp_path, monkeypatch, mypy_cache)
    assert not [line for line in lines if ": error:" in line], out
    revealed = [line.split("Revealed type is ")[1] for line in lines if "Revealed type" in line]
    assert revealed == [
        '"routerllm.routers.outcome.OutcomeRouter"',
        '"routerllm.routers.base.Router"',
    ], out


def test_the_outcome_router_names_are_the_registered_outcome_routers() -> None:
    """create_router's typed names, and the CLI's, are every registered OutcomeRouter."""
    from typing import get_args

    from routerllm.registry import ROUTERS
    from routerllm.routers.base import OutcomeRouterName
    from routerllm.routers.outcome import OutcomeRouter
    from routerllm.train_options import OUTCOME_ROUTERS

    learned = {name for name in ROUTERS if issubclass(ROUTERS.get(name), OutcomeRouter)}
    assert set(get_args(OutcomeRouterName)) == set(OUTCOME_ROUTERS) == learned
