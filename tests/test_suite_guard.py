"""The suite's guard (tests/state_guard.py): a test that leaves process-wide state
changed fails at its own teardown, naming what changed; a change undone (monkeypatch, a
module fixture's own finalizer) passes. Run on a pytest session of its own, in a process
of its own, with the project's conftest: the leaks below are made there on purpose.

That session keeps its temporary folders under the test's own (``--basetemp``): given
pytest's numbered folder among the user's, its exit deleted the older sessions' folders
there (pytest keeps the last 3), a full suite run's among them, and the test waited for
it: part of its 20-31 s in the suite (5.5 s alone; 8.3 s with 40,000 files of 4 older
sessions to delete, 2026-12-07). The rest there is its CPU (2-2.4 s) as a third process
beside the two busy workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.state_guard import MISSING, changes, snapshot

ROOT = Path(__file__).resolve().parents[1]

LEAKY_TESTS = """
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

import tests.state_guard
from routerllm.registry import ROUTERS

tests.state_guard.GRACE_S = 2.0  # this session's leaks wait 2 s, not the suite's 10


def test_leaks_an_environment_variable():
    os.environ["ROUTERLLM_GUARD_LEAK"] = "1"


def test_after_a_leak_is_not_blamed_for_it():
    assert os.environ["ROUTERLLM_GUARD_LEAK"] == "1"


def test_leaks_a_router_name():
    ROUTERS.register("guard-leak", "routerllm.routers.baselines:RandomRouter")


def test_leaks_a_handler_on_routerllm_logger():
    logging.getLogger("routerllm").addHandler(logging.NullHandler())


def test_leaks_a_signal_handler():
    signal.signal(signal.SIGTERM, lambda *a: None)


def test_changes_undone_by_monkeypatch(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERLLM_GUARD_PATCHED", "1")
    monkeypatch.delenv("ROUTERLLM_GUARD_LEAK")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ROUTERS._entries, "guard-patched", "x:Y")
    monkeypatch.setattr(logging.getLogger("routerllm"), "level", logging.DEBUG)


def test_changes_undone_by_with_blocks():
    with ROUTERS.added({"guard-added": "x:Y"}):
        pass


@pytest.fixture(scope="module")
def held():
    os.environ["ROUTERLLM_GUARD_HELD"] = "1"
    yield
    del os.environ["ROUTERLLM_GUARD_HELD"]


def test_module_fixture_holds_its_change(held):
    assert os.environ["ROUTERLLM_GUARD_HELD"] == "1"


def test_module_fixture_holds_it_for_the_next_test_too(held):
    assert os.environ["ROUTERLLM_GUARD_HELD"] == "1"


def test_loads_llama_cpp_on_two_threads(tiny_gguf):
    from llama_cpp import Llama

    Llama(str(tiny_gguf), n_ctx=64, n_threads=1, n_threads_batch=2, verbose=False).close()


def test_loads_llama_cpp_on_one_thread(tiny_gguf):
    from llama_cpp import Llama

    Llama(str(tiny_gguf), n_ctx=64, n_threads=1, n_threads_batch=1, verbose=False).close()


LEFT = []
STOP = threading.Event()


def test_leaves_a_thread_and_a_child_running():
    threading.Thread(target=STOP.wait, name="guard-leak", daemon=True).start()
    LEFT.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))


def test_a_thread_and_a_child_ending_within_the_grace_pass():
    threading.Thread(target=STOP.wait, args=(0.3,), name="guard-ending").start()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])


@pytest.fixture(scope="module")
def server_thread():
    done = threading.Event()
    thread = threading.Thread(target=done.wait, name="guard-held")
    thread.start()
    yield thread
    done.set()
    thread.join()


def test_module_fixture_holds_its_thread(server_thread):
    assert server_thread.is_alive()


def test_module_fixture_holds_its_thread_for_the_next_test_too(server_thread):
    STOP.set()  # what the leaky test left, stopped: this session's process ends alone
    LEFT[0].kill()
    LEFT[0].wait()
"""


def test_a_leak_fails_the_test_that_made_it_and_no_other(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-p", "no:xdist", "-q", "-rA", "--basetemp", str(tmp_path / "basetemp"), "test_leaky.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    errors = set(re.findall(r"^ERROR test_leaky.py::(\w+)", out, re.M))
    assert errors == {
        "test_leaks_an_environment_variable",
        "test_leaks_a_router_name",
        "test_leaks_a_handler_on_routerllm_logger",
        "test_leaks_a_signal_handler",
        "test_loads_llama_cpp_on_two_threads",
        "test_leaves_a_thread_and_a_child_running",
    }, out
    # every test passed its body: only the guard, at teardown, failed those
    assert len(re.findall(r"^PASSED ", out, re.M)) == 15, out
    assert "os.environ['ROUTERLLM_GUARD_LEAK']: <absent> before, '1' after" in out
    assert "registry.ROUTERS['guard-leak']: <absent> before, 'routerllm.routers.baselines:RandomRouter' after" in out  # fmt: skip
    assert "logger['routerllm']: <absent> before, LoggerState(level=0, handlers=(<NullHandler (NOTSET)>,)," in out  # fmt: skip
    assert "signal handler['SIGTERM']: <Handlers.SIG_DFL: 0> before, <function" in out
    assert "n_threads=1, n_threads_batch=2" in out
    assert "thread 'guard-leak' still running 2 s after teardown (target threading.Event.wait, daemon)" in out  # fmt: skip
    assert re.search(r"child process \d+ still running 2 s after teardown: \S*python\S* -c import time; time.sleep\(60\)", out), out  # fmt: skip


def test_the_snapshot_compares_equal_to_itself_and_names_a_change() -> None:
    before = snapshot()
    assert changes(before, snapshot()) == []
    os.environ["ROUTERLLM_GUARD_SELF"] = "x"
    try:
        assert changes(before, snapshot()) == [("os.environ", "ROUTERLLM_GUARD_SELF", MISSING, "x")]
    finally:
        del os.environ["ROUTERLLM_GUARD_SELF"]
