"""The demo's comparison is fair: both runs start from the same state, and the
process's one-off costs fall on neither (before, with router `largest` on the tiny
models, the routed run of two identical ones measured a median 1.39x the other's
energy; the figures are too noisy to assert on, so these tests assert the order
and the counts that made that bias)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.llama_cpp import LlamaCppBackend
from routerllm.config import load_config
from routerllm.demo import run_demo
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config

PROMPTS = ("What is a Python list?", "Write a haiku about the sea.", "hi")


def largest_system(tmp_path: Path) -> RouterLLM:
    return RouterLLM(load_config(write_config(tmp_path, tiny_config_dict(tmp_path))), router="largest")  # fmt: skip


def loads(results: list[Any]) -> list[bool]:
    return [r.components["model_loading"].duration_s > 0 for r in results]


def test_identical_runs_start_cold_and_are_counted_alike(tmp_path: Path) -> None:
    # an earlier request left tiny-heavy loaded: the routed run was spared its load,
    # and the baseline (unloaded first) paid for it
    with largest_system(tmp_path) as system:
        system.generate("hello", model="tiny-heavy")
        run = run_demo(system, PROMPTS, max_new_tokens=4)
        assert loads(run.routed) == loads(run.baseline) == [True, False, False]
        for routed, base in zip(run.routed, run.baseline, strict=True):
            assert routed.model == base.model == "tiny-heavy"
            assert (routed.prompt_tokens, routed.completion_tokens) == (base.prompt_tokens, base.completion_tokens)  # fmt: skip
            assert routed.components.keys() == base.components.keys()
        assert run.comparison() is not None
        # the warm-up is no request: not logged, in neither run
        assert system.log.count() == 1 + 2 * len(PROMPTS)
        assert run.warm_up is not None and run.warm_up.component == "warm_up"


def test_the_warm_up_comes_before_anything_measured_and_leaves_no_model_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first llama.cpp load and generation of the process (and a model file's first
    # conversion, its first read from disk) fell on the routed run alone
    events: list[tuple[str, ...]] = []
    load, generate = LlamaCppBackend.load, LlamaCppBackend.generate

    def spy_load(self: LlamaCppBackend) -> None:
        if not self.loaded:
            events.append(("load", self.name))
        load(self)

    def spy_generate(self: LlamaCppBackend, request: Any) -> Any:
        events.append(("generate", self.name))
        return generate(self, request)

    monkeypatch.setattr(LlamaCppBackend, "load", spy_load)
    monkeypatch.setattr(LlamaCppBackend, "generate", spy_generate)
    with largest_system(tmp_path) as system:
        measure = system.meter.measure

        @contextmanager
        def spy_measure(component: str) -> Iterator[Any]:
            events.append(("measure", component, *system.manager.loaded_models))
            with measure(component) as slot:
                yield slot

        monkeypatch.setattr(system.meter, "measure", spy_measure)
        run_demo(system, PROMPTS[:1], max_new_tokens=2)
    models = ("tiny-light", "tiny-medium", "tiny-heavy")
    warm = [e for m in models for e in (("load", m), ("generate", m))]
    # each run starts cold, its first count opening the model's vocabulary (a read
    # measured as its model_loading: ``count_reads``) before its load
    one_request = [("measure", "router_inference"), ("measure", "model_loading"), ("measure", "model_loading"), ("load", "tiny-heavy"), ("measure", "llm_inference", "tiny-heavy"), ("generate", "tiny-heavy")]  # fmt: skip
    assert events == [("measure", "warm_up"), *warm, *one_request, *one_request]


def test_the_demo_says_how_its_runs_start_and_what_the_warm_up_took(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = cli_in_process("demo", "--json", "--config", str(cfg), "--router", "largest", "--max-new-tokens", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["warm_up"].keys() == {"energy_kwh", "co2_kg", "duration_s", "others_cpu_share", "contended"}  # fmt: skip
    tokens = [[r["completion_tokens"] for r in out[k]] for k in ("routed", "baseline")]
    assert tokens[0] == tokens[1]
    proc = cli_in_process("demo", "--config", str(cfg), "--no-baseline", "--max-new-tokens", "2")
    assert proc.returncode == 0, proc.stderr
    assert (
        "the routed run starts with no model loaded and pays for loading the models it uses, after a warm-up not charged to it (each"
        in proc.stdout
    )
    assert "\nwarm-up before the runs, in neither's figures: " in proc.stdout


def test_repeated_pairs_of_runs_give_the_comparisons_spread(tmp_path: Path) -> None:
    from routerllm.demo import spread

    from .test_cli import assert_one_line_error, assert_usage_error

    with largest_system(tmp_path) as system:
        run_ = run_demo(system, PROMPTS[:2], max_new_tokens=2, repeats=3)
        assert len(run_.repeats) == 3 and run_.repeats[0] == run_.comparison()
        # every pair made and logged; the first pair's answers returned
        assert system.log.count() == 3 * 2 * 2 and len(run_.routed) == len(run_.baseline) == 2
        # every pair starts cold: each pays for its model's load
        speedups = [float(c["speedup"]) for c in run_.repeats]  # type: ignore[arg-type]
        figures = spread(run_.repeats)["speedup"]
        assert figures is not None
        assert (figures["min"], figures["max"]) == (min(speedups), max(speedups))
        assert figures["median"] == sorted(speedups)[1]
    # carbon tracking off: no CO2 to spread, the speed still
    assert spread(
        [{"co2_saved_fraction": None, "co2_saved_fraction_warm": None, "speedup": 2.0}]
    ) == {  # fmt: skip
        "co2_saved_fraction": None,
        "co2_saved_fraction_warm": None,
        "speedup": {"median": 2.0, "min": 2.0, "max": 2.0},
    }
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = cli_in_process("demo", "--json", "--config", str(cfg), "--router", "largest", "--max-new-tokens", "1", "--repeats", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    repeats = json.loads(proc.stdout)["repeats"]
    assert (repeats["asked"], repeats["made"], len(repeats["runs"])) == (2, 2, 2)
    assert repeats["co2_saved_fraction"].keys() == {"median", "min", "max"}
    proc = cli_in_process("demo", "--config", str(cfg), "--repeats", "2", "--no-baseline")
    assert_one_line_error(proc, "--repeats 2: ", "not with --no-baseline")
    # a few zeros too many ran pair after pair of runs until Ctrl-C: at most 100, refused
    # as --max-new-tokens 0 is (its usage, then the error; until 2026-12-06 the error alone)
    for many in (0, 101, 10**20):
        proc = cli_in_process("demo", "--config", str(cfg), "--repeats", str(many))
        assert_usage_error(proc, f"argument --repeats: {many} is out of range: give 1 to 100")


def test_a_routed_run_the_budgets_stop_keeps_what_it_answered(tmp_path: Path) -> None:
    # the budgets refused the routed run's second request: the demo exited 2 with the
    # error alone, and with --json printed nothing of the answer already paid for
    from .conftest import tiny_model

    priced = {"cost_per_1m_input_usd": 1e6}  # $1 a prompt token: the spending is exact
    models = [tiny_model("tiny-light", "light", 0.1, **priced), tiny_model("tiny-heavy", "heavy", 1.5, **priced)]  # fmt: skip
    # the first prompt is predicted $9 (its chat template counted from the GGUF's
    # vocabulary) and spends $9: the hour's $9 lets it in, then is spent
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, models=models, budgets={"cost_usd": {"hourly": 9}}))  # fmt: skip
    args = ("demo", "--config", str(cfg), "--router", "largest", "--max-new-tokens", "2")
    proc = cli_in_process(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["model"] for r in out["routed"]] == ["tiny-heavy"]
    assert out["summary"]["totals"]["requests"] == 1
    # the refused second request was routed first: its routing counted apart
    assert out["summary"]["refused"]["requests"] == 1 and out["summary"]["refused"]["energy_kwh"] > 0  # fmt: skip
    assert out["baseline"] == [] and "comparison" not in out
    assert "hourly cost budget" in out["routed_refused"]
    proc = cli_in_process(*args)  # the hour is spent now: nothing is answered
    assert proc.returncode == 0, proc.stderr
    # said so, not a table of zeros (0 kWh, 0.00 % of it loading)
    assert "\nSummary of the routed run\nno request answered\nrefused by the budgets once routed: 1 request" in proc.stdout  # fmt: skip
    assert "per component" not in proc.stdout
    assert "\nthe routed run stopped at request 1 of 6, refused by the budgets: the hourly cost budget" in proc.stdout  # fmt: skip
    assert (
        proc.stdout.rstrip("\n")
        .splitlines()[-3]
        .endswith("(the always-largest baseline was not run)")
    )
    proc = cli_in_process(*args, "--no-baseline")  # none was asked for: none to say was not run
    assert proc.returncode == 0, proc.stderr
    assert "refused by the budgets" in proc.stdout and "baseline was not run" not in proc.stdout


def feedback_router(models: Any) -> Any:
    """A feedback router (it explores: each decision a random draw) fitted on embeddings
    given, so that its encoder is not loaded yet, as a saved one's is not."""
    import numpy as np

    from routerllm.encoders import create_encoder
    from routerllm.routers.base import create_router

    router = create_router("feedback", models, 3, encoder="hashing", explore=1.0)
    names = ["tiny-light", "tiny-medium", "tiny-heavy"]
    X = create_encoder("hashing").encode(PROMPTS)
    return router.fit(None, np.array([[1.0, 1, 1], [0, 1, 1], [1, 0, 1]]), names, embeddings=X)  # type: ignore[attr-defined]


def test_the_warm_up_loads_the_routers_encoder_and_takes_no_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a learned router loaded its encoder on its first call: inside the routed run's
    # first router_inference, which the "models warm" comparison keeps
    import routerllm.encoders

    cfg = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    router, twin = feedback_router(cfg.models), feedback_router(cfg.models)
    events: list[tuple[str, ...]] = []
    create = routerllm.encoders.create_encoder

    def spy_create(spec: str) -> Any:
        events.append(("encoder", spec))
        return create(spec)

    monkeypatch.setattr(routerllm.encoders, "create_encoder", spy_create)
    with RouterLLM(cfg, router=router) as system:
        measure = system.meter.measure

        @contextmanager
        def spy_measure(component: str) -> Iterator[Any]:
            events.append(("measure", component))
            with measure(component) as slot:
                yield slot

        monkeypatch.setattr(system.meter, "measure", spy_measure)
        run = run_demo(system, PROMPTS, max_new_tokens=2, baseline=False)
    assert events[:3] == [("measure", "warm_up"), ("encoder", "hashing"), ("measure", "router_inference")]  # fmt: skip
    assert events.count(("encoder", "hashing")) == 1
    # routing nothing, it drew nothing: the runs' decisions are a fresh twin's
    assert [r.model for r in run.routed] == [twin.route(p).model for p in PROMPTS]
    assert router._rng.bit_generator.state == twin._rng.bit_generator.state


def corrupt_model(tmp_path: Path, name: str) -> dict[str, Any]:
    """The tiny ladder's config with ``name``'s file a corrupt GGUF (llama.cpp cannot load it)."""
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + b"\0junk" * 100)
    data = tiny_config_dict(tmp_path)
    next(m for m in data["models"] if m["name"] == name)["gguf"] = {"path": str(bad)}
    return data


@pytest.fixture
def loads_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A minute passes at each look at the clock: a model whose load failed is tried
    again at every request (within a minute it is left alone, test_system's)."""
    import itertools

    from routerllm import manager as manager_module

    ticks = itertools.count(step=manager_module.RECHECK_S)
    monkeypatch.setattr(manager_module, "_clock", lambda: float(next(ticks)))


def test_a_model_that_fails_mid_run_keeps_what_was_answered_and_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loads_retried: None
) -> None:
    # the routed run's 4th request went to a corrupt model: the demo printed
    # "error: ..." alone, without the summary of the 3 answers it had paid for
    from routerllm.cli import main

    cfg = write_config(tmp_path, corrupt_model(tmp_path, "tiny-medium"))
    args = ["demo", "--config", str(cfg), "--max-new-tokens", "2"]
    assert main([*args, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1].startswith("error: llama.cpp could not load")
    out = json.loads(captured.out)
    assert out["summary"]["totals"]["requests"] == len(out["routed"]) == 3
    assert "corrupt" in out["routed_failed"]
    assert out["baseline"] == [] and "comparison" not in out
    assert main(args) == 2
    stdout = capsys.readouterr().out
    assert "\nSummary of the routed run\nrequests 3 " in stdout
    assert "the routed run stopped after 3 of 6 requests, at a request that failed (its error on stderr); the always-largest baseline was not run" in stdout  # fmt: skip


def test_a_baseline_or_a_repeated_pair_that_fails_keeps_the_runs_before(
    tmp_path: Path, loads_retried: None
) -> None:
    data = corrupt_model(tmp_path, "tiny-heavy")
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        run_ = run_demo(system, ("hi", "hello"), max_new_tokens=2)
        assert [r.model for r in run_.routed] == ["tiny-light"] * 2
        assert (run_.baseline, run_.failed, run_.comparison()) == ([], "baseline", None)
        assert "corrupt" in str(run_.error)
    # the model's file goes bad during the first pair: the second pair fails
    good = tmp_path / "good.gguf"
    good.write_bytes(Path(data["models"][0]["gguf"]["path"]).read_bytes())
    data["models"][2]["gguf"] = {"path": str(good)}
    with RouterLLM(load_config(write_config(tmp_path, data)), router="largest") as system:

        def spoil(kind: str, result: Any) -> None:
            if kind == "baseline":
                good.write_bytes(b"GGUF" + b"\0junk" * 100)

        run_ = run_demo(system, ("hi",), max_new_tokens=2, on_result=spoil, repeats=3)
        assert run_.failed == "repeat" and "corrupt" in str(run_.error)
        assert len(run_.repeats) == 1 and run_.comparison() == run_.repeats[0]


@pytest.mark.parametrize(("press_at", "says", "logged"), [
    (0, "interrupted before any request was answered (the models loading or warming up): "
        "nothing was logged; rerun the command", 0),
    (2, "interrupted; completed requests are in the log", 1),
])  # fmt: skip
def test_ctrl_c_says_whether_any_request_is_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    press_at: int, says: str, logged: int,
) -> None:  # fmt: skip
    """Ctrl-C (a real SIGINT) in the warm-up said "completed requests are in the log",
    when none was answered (nor is the warm-up logged)."""
    import signal

    from routerllm.carbon.request_log import RequestLog
    from routerllm.cli import main
    from routerllm.demo import WARM_UP_PROMPT

    real, asked = LlamaCppBackend.generate, []

    def pressing(self: LlamaCppBackend, request: Any) -> Any:
        asked.append(request.prompt)
        warm_up = request.prompt == WARM_UP_PROMPT
        if (press_at == 0 and warm_up) or (not warm_up and len(asked) - 3 == press_at):
            signal.raise_signal(signal.SIGINT)
        return real(self, request)

    monkeypatch.setattr(LlamaCppBackend, "generate", pressing)
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    assert main(["demo", "--config", str(config), "--max-new-tokens", "4"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == says
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        assert log.count() == logged


@pytest.mark.parametrize(("press_at", "says", "logged"), [
    (1, "interrupted before any prompt was answered: nothing was logged", 0),
    (2, "interrupted; completed requests are in the log", 1),
])  # fmt: skip
def test_ctrl_c_twice_during_an_interactive_answer_says_what_is_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    press_at: int, says: str, logged: int,
) -> None:  # fmt: skip
    """Ctrl-C during the first answer of ``demo --interactive`` (which warms nothing up)
    spoke of "the models loading or warming up" and told to rerun the command. (One
    Ctrl-C stops the answer and the session goes on, test_cli's; a second ends it.)"""
    import io
    import signal

    from routerllm.carbon.request_log import RequestLog
    from routerllm.cli import main

    real, asked = LlamaCppBackend.generate, []

    def pressing(self: LlamaCppBackend, request: Any) -> Any:
        asked.append(request.prompt)
        if len(asked) == press_at:
            signal.raise_signal(signal.SIGINT)  # stops the answer under way
            signal.raise_signal(signal.SIGINT)  # ends the session
        return real(self, request)

    monkeypatch.setattr(LlamaCppBackend, "generate", pressing)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\nWhat is a Python list?\n"))
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    assert main(["demo", "--interactive", "--config", str(config), "--max-new-tokens", "3"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == says
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        assert log.count() == logged


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_while_an_interactive_answer_is_checked_marks_it_and_the_session_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the cascade ran an interactive answer on the request's examples
    stopped the check, but the answer was shown unmarked, as if nothing was pressed
    (until 2026-12-06). Now it is marked as an answer Ctrl-C stopped is; it is whole, so
    logged as its model ended it, and the next prompt is asked. The tiny models write no
    code that hangs: the first answer is replaced by one that does."""
    import dataclasses
    import io
    import os
    import signal
    import threading
    import time

    from routerllm.carbon.request_log import RequestLog
    from routerllm.cli import main

    from .test_cli_signals import _children_in_own_session

    cascade = {"enabled": True, "timeout_s": 60.0}
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, cascade=cascade))
    real, answered, pressed = LlamaCppBackend.generate, [], []
    hangs = "```python\ndef add(a, b):\n    while True:\n        pass\n```"

    def press_once_checked() -> None:  # Ctrl-C once the answer's program runs
        deadline = time.monotonic() + 60
        while not _children_in_own_session(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pressed.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    def first_answer_hangs(self: LlamaCppBackend, request: Any) -> Any:
        completion = real(self, request)
        if answered:
            return completion
        answered.append(True)
        threading.Thread(target=press_once_checked, daemon=True).start()
        return dataclasses.replace(completion, text=hangs)

    monkeypatch.setattr(LlamaCppBackend, "generate", first_answer_hangs)
    asked = "Write a Python function add(a, b) that returns the sum: add(2, 3) == 5\nhello\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(asked))
    status = main(["demo", "--interactive", "--router", "smallest", "--config", str(cfg),
                   "--max-new-tokens", "8"])  # fmt: skip
    ended = time.monotonic()
    out = capsys.readouterr().out
    assert status == 0 and pressed and ended - pressed[0] < 30  # not run on to timeout_s
    assert "tiny-light's answer's check was stopped, not escalated to tiny-medium" in out
    assert out.count("(Ctrl-C came once the answer was whole") == 1
    assert "Summary of the session" in out and "requests 2 " in out
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        rows = list(log.records())
    assert [(r.model, r.finish_reason) for r in rows] == [("tiny-light", "length")] * 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
