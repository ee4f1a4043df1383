"""Problem sets whose tests import a package (EvalPlus's HumanEval+: numpy), opted in by
naming it (``--sandbox-packages numpy``): it loads and runs in the real sandbox; a
package not named is refused at load time and cannot be imported by the program."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from routerllm.cli import main
from routerllm.config import AppConfig
from routerllm.data.humaneval import HumanEvalProblem, load_humaneval
from routerllm.eval.humaneval_run import cascade
from routerllm.eval.prompt_examples import verify_completion
from routerllm.eval.result_store import Outcome
from routerllm.eval.sandbox import check_problem, run_program
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.system import RouterLLM

from .test_data_humaneval import _PACKAGED, EVALPLUS_TEST

NUMPY = ("numpy",)
RIGHT = "    return number % 1.0\n"
WRONG = "    return number\n"


def evalplus_file(tmp_path: Path, test: str = EVALPLUS_TEST) -> Path:
    """HumanEval/2 (truncate_number) with a test in the shape of HumanEval+'s."""
    path = tmp_path / "humanevalplus.jsonl"
    path.write_text(json.dumps({**vars(_PACKAGED[2]), "test": test}) + "\n")
    return path


def test_a_humanevalplus_problem_loads_and_runs_once_numpy_is_named(tmp_path: Path) -> None:
    path = evalplus_file(tmp_path)
    with pytest.raises(DataError, match="test imports numpy, which the sandbox") as e:
        load_humaneval(path)
    # the advice fits both callers: the command's option and the loaders' argument
    assert "--sandbox-packages numpy" in str(e.value) and "\n" not in str(e.value)
    assert "packages=['numpy']" in str(e.value)
    (problem,) = load_humaneval(path, packages=NUMPY)
    assert check_problem(problem, None, packages=NUMPY).status == "passed"
    assert check_problem(problem, RIGHT, packages=NUMPY).status == "passed"
    wrong = check_problem(problem, WRONG, packages=NUMPY)
    assert (wrong.status, wrong.detail) == ("failed", "AssertionError")
    # not named for the run: the program cannot import it
    assert check_problem(problem, RIGHT).detail == "ModuleNotFoundError: No module named 'numpy'"


def test_a_package_not_named_is_refused_at_load_time_and_cannot_be_imported(
    tmp_path: Path,
) -> None:
    """yaml is installed beside numpy, in the same site-packages: only numpy is linked."""
    import yaml  # noqa: F401  # installed: its absence below is the sandbox's doing

    yaml_test = EVALPLUS_TEST.replace("import numpy as np\n", "import numpy as np\nimport yaml\n")
    with pytest.raises(DataError, match="test imports yaml, which the sandbox"):
        load_humaneval(evalplus_file(tmp_path, yaml_test), packages=NUMPY)
    # an import the loader lets through (guarded by try) still fails in the child
    guarded = "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n" + EVALPLUS_TEST
    (problem,) = load_humaneval(evalplus_file(tmp_path, guarded), packages=NUMPY)
    program = problem.program(RIGHT) + "assert yaml is None, yaml\n"
    assert run_program(program, packages=NUMPY).status == "passed"
    for source in ("import yaml\n", "import _yaml\n", "import pytest\n"):
        result = run_program("import numpy\n" + source, packages=NUMPY)
        assert result.detail.startswith("ModuleNotFoundError: No module named"), result.detail


def test_numpy_starts_no_blas_threads_and_the_memory_limit_still_holds() -> None:
    """OpenBLAS starts a thread per core as numpy imports: against RLIMIT_NPROC's
    headroom of 8 tasks on a machine with more cores it failed to start."""
    threads = (
        "import numpy as np\n"
        "np.ones((64, 64)) @ np.ones((64, 64))\n"
        "status = open('/proc/self/status').read()\n"
        "assert 'Threads:\\t1\\n' in status, status\n"
    )
    result = run_program(threads, packages=NUMPY)
    assert result.status == "passed", result.detail
    big = "import numpy as np\nnp.ones(2**28)\n"  # 2 GiB, over the 1 GiB address space
    result = run_program(big, memory_mb=1024, packages=NUMPY)
    assert "Unable to allocate 2.00 GiB" in result.detail, result.detail  # numpy's MemoryError


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (("no_such_package_here",), "'no_such_package_here' is not installed"),
        (("json",), "'json' is in the standard library"),
        (("numpy.linalg",), "'numpy.linalg' is not a top-level package name"),
        (("../numpy",), "'../numpy' is not a top-level package name"),
        (("numpy", "numpy"), "'numpy' is named twice"),
    ],
)
def test_names_the_sandbox_cannot_link_are_one_clear_error(
    names: tuple[str, ...], match: str
) -> None:
    with pytest.raises(RouterLLMError, match=match) as e:
        run_program("pass\n", packages=names)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="the drop to nobody happens as root only")
def test_a_package_nobody_cannot_read_is_refused_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the sandbox runs as a user of its own (or nobody): a package only root can
    read is found by the harness and not by the program, which must be said before any
    model runs."""
    from routerllm.eval.sandbox_packages import check_sandbox_packages

    private = tmp_path / "private"
    (private / "routerllm_private_pkg").mkdir(parents=True)
    (private / "routerllm_private_pkg" / "__init__.py").write_text("VALUE = 1\n")
    private.chmod(0o700)
    monkeypatch.syspath_prepend(str(private))
    with pytest.raises(RouterLLMError, match="cannot import routerllm_private_pkg") as e:
        check_sandbox_packages(["routerllm_private_pkg"])
    assert "readable by all (chmod o+rX)" in str(e.value) and "\n" not in str(e.value)
    assert check_sandbox_packages(NUMPY) == NUMPY


def test_humaneval_runs_a_humanevalplus_file_with_sandbox_packages(
    tiny_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = evalplus_file(tmp_path)
    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--problems",
            str(path), "--limit", "1", "--systems", "direct-light", "--max-new-tokens", "8"]  # fmt: skip
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: ") and "--sandbox-packages numpy" in line
    assert "\n" not in line and not out.exists()
    start = time.monotonic()
    assert main([*argv, "--sandbox-packages", "numpy", "--json"]) == 0
    assert time.monotonic() - start < 60
    summary = json.loads(capsys.readouterr().out)
    assert summary["sandbox_packages"] == ["numpy"]
    assert "importing numpy" in summary["sandbox"]
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as db:
        ((status, detail),) = db.execute("SELECT status, detail FROM generations").fetchall()
    # tinycoder's 8 tokens need not solve it: what counts is that numpy imported
    assert status in ("passed", "failed", "error") and "No module named" not in detail, detail


def test_the_cascades_example_check_imports_the_named_packages(tiny_config: AppConfig) -> None:
    """A prompt may import a named package (the loader lets it through): the cascade's
    check of an answer on the prompt's examples runs prompt + answer, so it must import
    it too, or every answer fails the check (ModuleNotFoundError) and is escalated."""
    prompt = (
        "import numpy as np\n\n\ndef mean(xs):\n"
        '    """The mean of xs.\n    >>> mean([1.0, 3.0])\n    2.0\n    """\n'
    )
    answer = "    return float(np.mean(xs))\n"
    problem = HumanEvalProblem("np/0", prompt, "mean", answer, "def check(c):\n    assert c([2.0]) == 2.0\n")  # fmt: skip
    assert verify_completion(prompt, "mean", answer).verdict == "failed"  # not named
    assert verify_completion(prompt, "mean", answer, packages=NUMPY).verdict == "passed"
    outcomes = {m: {"np/0": Outcome(True, 1.0, 1e-6, 4e-7, 10, "passed")} for m in ("m", "h")}
    with RouterLLM(tiny_config) as system:
        result = cascade(system, [problem], {"np/0": answer}, "m", "h", outcomes, {},
                         packages=NUMPY)  # fmt: skip
    assert result.extra["verdicts"]["passed"] == 1 and result.extra["escalated"] == 0.0
