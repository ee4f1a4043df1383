"""The README's module map ("How it works") names every module of the package, and only
modules that exist: a reader finds where each part lives from it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_module_map_names_every_module_and_only_modules_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme.split("\n## How it works\n", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"\b\w+\.py\b", tree))
    package = ROOT / "src" / "routerllm"
    modules = {p.name for p in package.rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - named) == [], "modules the README's module map does not name"
    assert sorted(named - modules) == [], "modules the README's module map names that do not exist"
