"""RouterLLM as a typed library: what `import routerllm` gives, that it is cheap, and that
a user's code type-checks against it with `mypy --strict`, with precise types."""

from __future__ import annotations

from importlib import resources


def test_py_typed_is_shipped_so_a_users_mypy_reads_the_annotations() -> None:
    # without the marker mypy skips an installed package: every name is Any
    assert (resources.files("routerllm") / "py.typed").is_file()
