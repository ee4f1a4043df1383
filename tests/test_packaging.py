"""What pip installs: the wheel built from the checkout and the wheel built from the sdist
(what `pip install routerllm-0.1.0.tar.gz` does) each hold every file of the package,
the data the code reads at run time included (packaged configs, the complexity router's
weights, py.typed, the sandbox runner), and the sdist holds no caches or run outputs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from routerllm.config import PACKAGED_CONFIGS

pytest.importorskip("hatchling", reason="hatchling (the dev extra) builds the sdist and wheel")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "routerllm"
# read at run time through importlib.resources or __file__, by name
RUNTIME_DATA = {
    *(f"routerllm/configs/{name}.yaml" for name in PACKAGED_CONFIGS),
    "routerllm/py.typed",
    "routerllm/routers/assets/complexity/config.json",
    "routerllm/routers/assets/complexity/weights.npz",
    "routerllm/eval/sandbox_entry.py",
    "routerllm/eval/sandbox_runner.py",
}
JUNK = ("__pycache__", ".pyc", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache", "logs/")


def _build(kind: str, project: Path, out: Path) -> Path:
    """Build with hatchling's PEP 517 hook, as pip does, in the project folder."""
    code = f"import sys, hatchling.build as b; print(b.build_{kind}(sys.argv[1]))"
    name = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return out / name


def _wheel_package_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if n.startswith("routerllm/")}


def _checkout_package_files() -> set[str]:
    return {
        "routerllm/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_wheels_from_the_checkout_and_from_the_sdist_hold_the_whole_package(
    tmp_path: Path,
) -> None:
    expected = _checkout_package_files()
    assert expected >= RUNTIME_DATA

    sdist = _build("sdist", ROOT, tmp_path)
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        tf.extractall(tmp_path / "unpacked", filter="data")
    junk = [n for n in names if any(j in n for j in JUNK) or n.endswith(".sqlite")]
    assert junk == []

    direct = _build("wheel", ROOT, tmp_path / "direct")
    from_sdist = _build("wheel", tmp_path / "unpacked" / sdist.name[: -len(".tar.gz")], tmp_path)
    assert _wheel_package_files(direct) == expected
    assert sorted(expected - _wheel_package_files(from_sdist)) == []
