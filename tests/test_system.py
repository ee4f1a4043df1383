"""The routed system end to end on real tiny GGUF models with real CodeCarbon."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends import GenerationRequest
from routerllm.carbon.meter import COMPONENTS
from routerllm.config import AppConfig
from routerllm.exceptions import (
    BackendError,
    BatchError,
    ConfigError,
    ContextLengthError,
    ModelUnavailableError,
    PromptError,
    RouterLLMError,
    UnknownNameError,
)
from routerllm.routed_result import RoutedResult
from routerllm.routers import create_router
from routerllm.routers.base import Candidate
from routerllm.system import RouterLLM

from .conftest import ROUTE_KEYS


def test_generate_routes_measures_and_logs(system: RouterLLM) -> None:
    trivial = system.generate("Translate 'hello' to French.")
    hard = system.generate("Implement a thread-safe LRU cache in Python")
    assert trivial.model == "tiny-light" and hard.model == "tiny-heavy"
    assert trivial.router == "rules" and 0.5 <= trivial.confidence <= 1.0
    for r in (trivial, hard):
        assert list(r.components) == list(COMPONENTS)
        assert r.components["llm_inference"].energy_kwh > 0
        assert r.components["model_loading"].energy_kwh > 0  # first use of each model
        assert r.completion_tokens > 0
        assert r.co2_kg == pytest.approx(sum(m.co2_kg for m in r.components.values()))
        assert r.cost_usd == pytest.approx(
            r.energy_kwh * system.config.carbon.electricity_price_usd_per_kwh
        )
    d = trivial.to_dict()
    assert set(d) >= ROUTE_KEYS
    assert set(d["components"]["llm_inference"]) == {"energy_kwh", "co2_kg", "duration_s", "others_cpu_share", "contended"}  # fmt: skip
    again = system.generate("Translate 'cat' to German.")
    assert again.components["model_loading"].duration_s == 0.0  # kept warm
    logged = list(system.log.records())
    assert [r.id for r in logged] == [trivial.request_id, hard.request_id, again.request_id]
    assert logged[1].model == "tiny-heavy" and logged[1].co2_kg == pytest.approx(hard.co2_kg)


def test_batch_shares_one_routing_pass(system: RouterLLM) -> None:
    prompts = ["hi", "Implement a concurrent graph parser in Rust", "What is a list?"]
    results = system.generate_batch(prompts, tag="batch")
    assert [r.model for r in results] == ["tiny-light", "tiny-heavy", "tiny-light"]
    routing = [r.components["router_inference"] for r in results]
    assert routing[0].energy_kwh == routing[1].energy_kwh == routing[2].energy_kwh
    assert len(list(system.log.records(tag="batch"))) == 3


def test_router_and_model_overrides(system: RouterLLM) -> None:
    largest = create_router("largest", system.config.models)
    assert system.generate("hi", router=largest).model == "tiny-heavy"
    assert system.generate("hi", router="largest").model == "tiny-heavy"  # by name
    with pytest.raises(UnknownNameError, match="unknown router 'biggest'"):
        system.generate("hi", router="biggest")
    logged = system.log.count()
    elsewhere = create_router("largest", [Candidate("gpt-x", 1000.0)])
    with pytest.raises(
        ConfigError, match=r"routes to gpt-x, none of which is in this config \(tiny-light"
    ):
        system.generate("hi", router=elsewhere)
    assert system.log.count() == logged
    forced = system.generate(GenerationRequest("hi", max_new_tokens=2), model="tiny-medium")
    assert forced.model == "tiny-medium" and forced.completion_tokens <= 2
    with pytest.raises(UnknownNameError, match="valid names"):
        system.generate("hi", model="gpt-9")


def test_a_router_given_by_name_is_made_once_and_goes_on_drawing(system: RouterLLM) -> None:
    """``router="random"`` made a new router, seeded alike, for every request: each took
    its seed's first draw, so every request went to the same model."""
    ask = [GenerationRequest(f"prompt {i}", max_new_tokens=1) for i in range(9)]
    by_name = [system.generate(r, router="random").model for r in ask]
    one = create_router("random", system.config.models, system.config.router.seed)
    assert by_name == [system.generate(r, router=one).model for r in ask]
    assert len(set(by_name)) > 1


@pytest.mark.parametrize(
    "options",
    [
        {"max_new_tokens": "5"},
        {"temperature": True},
        {"system": 5},
        {"stop": "###"},
        {"raw": "yes"},
        {"prompt_state": 1},
    ],
    ids=[
        "tokens-text",
        "temperature-bool",
        "system-number",
        "stop-text",
        "raw-text",
        "state-number",
    ],
)
def test_request_options_of_the_wrong_type_are_clear_errors(options: dict[str, object]) -> None:
    with pytest.raises(PromptError, match=f"bad request options: {next(iter(options))} "):
        GenerationRequest("hi", **options)  # type: ignore[arg-type]


def test_a_closed_system_says_so(tiny_config: AppConfig) -> None:
    system = RouterLLM(tiny_config)
    system.close()
    with pytest.raises(RouterLLMError, match="this RouterLLM is closed"):
        system.generate("hi")


def test_a_system_left_or_closed_twice_refuses_every_request(tiny_config: AppConfig) -> None:
    with RouterLLM(tiny_config) as system:
        assert system.route("hi").model == "tiny-light"
    system.close()  # closing again (after the with block closed it) is harmless
    for request in (
        system.available_models,
        lambda: system.route("hi"),
        lambda: system.generate("hi"),
        lambda: system.generate_batch(["hi", "hello"]),
    ):
        with pytest.raises(RouterLLMError, match="this RouterLLM is closed; create a new one"):
            request()


def open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open (the request log's SQLite
    files), read from /proc."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


def test_a_system_that_fails_to_start_closes_what_it_opened(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the carbon extra the meter fails after the request log is open: the log's
    # SQLite files stayed open (until a garbage collection, if ever), and a started
    # CodeCarbon tracker was never stopped, in a program that goes on after the error
    import gc
    import sys

    import routerllm.system as system_module
    from routerllm.carbon.request_log import RequestLog

    gc.disable()  # the partly built system sits in a cycle: only its own close() counts
    try:
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "codecarbon", None)  # as where it is not installed
            with pytest.raises(RouterLLMError, match="codecarbon"):
                RouterLLM(tiny_config)
            assert open_files_under(tmp_path) == []
            given = RequestLog(tmp_path / "given.sqlite")  # the caller's: left open
            with pytest.raises(RouterLLMError, match="codecarbon"):
                RouterLLM(tiny_config, request_log=given)
            given.check_open()
            given.close()
        meters = []
        create_meter = system_module.create_meter
        monkeypatch.setattr(
            system_module, "create_meter", lambda c: meters.append(create_meter(c)) or meters[-1]
        )
        monkeypatch.setattr(system_module.ModelCalls, "__init__", failing_start)
        with pytest.raises(RouterLLMError, match="failed to start"):
            RouterLLM(tiny_config)
        with pytest.raises(RouterLLMError, match="closed"):
            meters[0].check_open()  # its CodeCarbon tracker stopped
        assert open_files_under(tmp_path) == []
    finally:
        gc.enable()


def failing_start(*args: object) -> None:
    raise RouterLLMError("failed to start")


def request_held_at_routing(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Thread, list[RoutedResult]]:
    """A request ("hi") started in another thread and held once routed (nothing loaded
    for it yet) until the returned event is set; its result goes to the list."""
    routing, release = threading.Event(), threading.Event()
    real_route_batch = system.router.route_batch

    def held_route_batch(prompts, allowed):  # type: ignore[no-untyped-def]
        routing.set()
        release.wait(30)
        return real_route_batch(prompts, allowed)

    monkeypatch.setattr(system.router, "route_batch", held_route_batch)
    results: list[RoutedResult] = []
    worker = threading.Thread(target=lambda: results.append(system.generate("hi")))
    worker.start()
    assert routing.wait(30)
    return release, worker, results


def test_close_waits_for_a_request_another_thread_is_running(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's shutdown closes the system while a request may still be generating:
    the answer is logged and the models unloaded, never the log closed under it."""
    from routerllm.carbon.request_log import RequestLog

    tiny_config.cascade.enabled = True  # the running request asks which models run, after close()
    system = RouterLLM(tiny_config)
    release, worker, results = request_held_at_routing(system, monkeypatch)
    closer = threading.Thread(target=system.close)
    closer.start()
    # close() begun: waited for, not assumed after a 0.3 s join (a thread a loaded machine
    # runs later has not closed the system yet, and the new request below would run)
    deadline = time.monotonic() + 30
    while not system._closed and time.monotonic() < deadline:
        time.sleep(0.01)
    closer.join(0.3)
    assert closer.is_alive()  # waiting for the request
    with pytest.raises(RouterLLMError, match="this RouterLLM is closed"):
        system.generate("hello")  # a new one is refused meanwhile
    release.set()
    worker.join(30)
    closer.join(30)
    assert [r.model for r in results] == ["tiny-light"]
    assert system.manager.loaded_models == [] and system.log.closed
    with RequestLog(tiny_config.log.path) as log:
        assert [r.id for r in log.records()] == [results[0].request_id]


def test_a_close_interrupted_while_it_waits_is_finished_by_the_next(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while close() waited for another thread's request left the system marked
    closed but its models loaded, its meter running and its log open: every later
    close() returned at once, having closed nothing."""
    system = RouterLLM(tiny_config)
    system.generate("warm up")  # a model loaded
    release, worker, results = request_held_at_routing(system, monkeypatch)
    wait_for = system._calls_done.wait_for

    def pressed_ctrl_c(predicate, timeout=None):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(system._calls_done, "wait_for", wait_for)
        raise KeyboardInterrupt

    monkeypatch.setattr(system._calls_done, "wait_for", pressed_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        system.close()
    with pytest.raises(RouterLLMError, match="this RouterLLM is closed"):
        system.generate("hello")  # refused all the same
    closer = threading.Thread(target=system.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # waits for the request, as the first did
    release.set()
    worker.join(30)
    closer.join(30)
    assert [r.model for r in results] == ["tiny-light"]
    assert system.manager.loaded_models == [] and system.log.closed


def test_close_called_within_a_request_of_its_own_thread_releases_once_it_is_logged(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM handler that closes the system runs in the thread of the request it
    interrupts: close() waited for that very request to finish, forever (a hang)."""
    from routerllm.carbon.request_log import RequestLog

    system = RouterLLM(tiny_config)
    real_route_batch = system.router.route_batch

    def closed_meanwhile(prompts, allowed):  # type: ignore[no-untyped-def]
        system.close()  # as a signal handler would, in the middle of the request
        return real_route_batch(prompts, allowed)

    monkeypatch.setattr(system.router, "route_batch", closed_meanwhile)
    results: list[RoutedResult] = []
    worker = threading.Thread(target=lambda: results.append(system.generate("hi")), daemon=True)
    worker.start()
    worker.join(60)  # only a guard: without the fix it never ends
    assert not worker.is_alive(), "close() within the request waited for it forever"
    assert [r.model for r in results] == ["tiny-light"]  # answered and logged, then released
    assert system.manager.loaded_models == [] and system.log.closed
    with pytest.raises(RouterLLMError, match="this RouterLLM is closed"):
        system.generate("hello")
    with RequestLog(tiny_config.log.path) as log:
        assert [r.id for r in log.records()] == [results[0].request_id]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_system_a_forked_process_inherited_refuses_requests_there(
    tiny_config: AppConfig,
) -> None:
    """A system made before a fork (a module's system used by a multiprocessing pool's
    fork workers): in the child llama.cpp's threads are gone, and its generation waited
    for them forever; the log's SQLite connection and CodeCarbon's tracker are the
    parent's too. The child is refused with one line, and its close() releases nothing
    of the parent's, which goes on answering."""
    import time
    import warnings

    system = RouterLLM(tiny_config)
    first = system.generate("warm up")  # a model loaded, with its threads
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+: forking a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: says what each call did, then ends without cleaning up
        said = []
        for call in (
            lambda: system.generate("hi"),
            lambda: system.generate_batch(["hi"]),
            lambda: system.route("hi"),
            lambda: system.predict("hi", "tiny-light"),
            system.available_models,
            system.close,
            lambda: system.generate("hi"),
        ):
            try:
                call()
                said.append("returned")
            except RouterLLMError as e:
                said.append(f"{type(e).__name__}: {e}")
        os.write(write, "\n".join(said).encode())
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read)
            system.close()
            pytest.fail("the forked child's request never ended")
        time.sleep(0.05)
    with os.fdopen(read) as pipe:
        said = pipe.read().split("\n")
    refused = (
        f"RouterLLMError: this RouterLLM was made in process {os.getpid()}, and a process "
        f"forked from it cannot use it (its models' threads, its log's connection and its "
        f"carbon tracker are that process's); create a RouterLLM in each process, e.g. "
        f"in a multiprocessing pool's initializer"
    )
    assert said == [refused] * 5 + ["returned", refused]
    with system:  # the parent's models, meter and log: untouched by the child
        assert system.manager.loaded_models == ["tiny-light"]
        again = system.generate("hi")
        assert [r.id for r in system.log.records()] == [first.request_id, again.request_id]


def test_a_system_sent_to_another_process_is_one_clear_error(system: RouterLLM) -> None:
    """``pool.map(system.generate, prompts)`` under the spawn or forkserver start method
    (macOS's default; Linux's from Python 3.14) pickles the system: it was a bare
    TypeError, "cannot pickle '_thread.lock' object"."""
    import copy
    import pickle

    said = "a RouterLLM cannot be pickled or sent to another process"
    for send in (lambda: pickle.dumps(system), lambda: pickle.dumps(system.generate)):
        with pytest.raises(RouterLLMError, match=f"{said} .*create one in each process"):
            send()
    with pytest.raises(RouterLLMError, match=said):
        copy.deepcopy(system)
    assert system.generate("hi").model == "tiny-light"  # untouched


def test_a_closed_request_log_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError

    log = RequestLog(tmp_path / "shared.sqlite")
    first, second = RouterLLM(tiny_config, request_log=log), RouterLLM(tiny_config, request_log=log)
    first.generate("hi")
    first.close()  # closes the log the two share
    assert log.closed
    with pytest.raises(RequestLogError, match="shared.sqlite is closed; open a new RequestLog"):
        second.generate("hi")
    assert second.manager.loaded_models == []  # refused before any model ran
    for use in (log.count, lambda: list(log.records())):
        with pytest.raises(RequestLogError, match="is closed"):
            use()
    with pytest.raises(RequestLogError, match="is closed"):
        RouterLLM(tiny_config, request_log=log)
    with RequestLog(tmp_path / "shared.sqlite") as again:
        assert again.count() == 1  # nothing lost
        with pytest.raises(RouterLLMError, match="since must be an ISO date or time as text"):
            list(again.records(since=5))  # type: ignore[arg-type]


def test_a_report_tag_that_is_not_text_is_one_clear_error(tiny_config: AppConfig) -> None:
    """``logged_report(config, tag=...)``, the Python ``routerllm report --tag``: a tag
    that was not text (5, b"demo") silently selected no request, a report of nothing;
    one with a lone surrogate was a bare UnicodeEncodeError."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.request_log import RequestLog

    with RouterLLM(tiny_config) as system:
        system.generate("hi", tag="5")
    assert logged_report(tiny_config, tag="5").totals.requests == 1
    for tag in (5, b"5", ["5"]):
        with pytest.raises(RouterLLMError, match="tag must be text, got"):
            logged_report(tiny_config, tag=tag)  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match=r"is not valid UTF-8 text \(undecodable bytes at character 0\)"):  # fmt: skip
        logged_report(tiny_config, tag="\ud800")
    with RequestLog(tiny_config.log.path) as log, pytest.raises(RouterLLMError, match="tag must be text"):  # fmt: skip
        list(log.records(tag=5))  # type: ignore[arg-type]


def test_a_system_closing_a_shared_log_waits_for_the_others_answer_to_be_logged(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """Closing a system closed the log it shares at once: another system's request, then
    generating, was answered and paid for, but failed as it was logged ("is closed") and
    its row was lost."""
    from routerllm.carbon.request_log import RequestLog

    log = RequestLog(tmp_path / "shared.sqlite")
    first, second = RouterLLM(tiny_config, request_log=log), RouterLLM(tiny_config, request_log=log)
    closing = threading.Thread(target=first.close)
    attempt = second.calls.attempt

    def with_the_other_system_closed_meanwhile(*args: Any, **kwargs: Any) -> Any:
        answer = attempt(*args, **kwargs)
        closing.start()  # a shutdown of the other system while this answer is in flight
        closing.join(timeout=2.0)  # it waits for the answer to be logged (with the fix: 2 s)
        return answer

    second.calls.attempt = with_the_other_system_closed_meanwhile  # type: ignore[method-assign]
    result = second.generate("hi")
    closing.join()
    assert log.closed  # closed all the same, once the answer was logged
    with RequestLog(tmp_path / "shared.sqlite") as again:
        assert [r.id for r in again.records()] == [result.request_id]
    second.close()


def test_a_closed_carbon_meter_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """Closing a system stops the CodeCarbon tracker of a meter it shares: another system
    using it ended in CodeCarbon's AttributeError ('NoneType' object has no attribute
    'start'), a new one given it only at its first request."""
    from routerllm.carbon.meter import create_meter

    meter = create_meter(tiny_config.carbon)
    first = RouterLLM(tiny_config, meter=meter)
    second = RouterLLM(tiny_config, meter=meter, request_log=tmp_path / "second.sqlite")
    first.generate("hi")
    first.close()  # closes the meter the two share
    closed = "this carbon meter is closed .* give the system a meter of its own, or none"
    with pytest.raises(RouterLLMError, match=closed):
        second.generate("hi")
    assert second.manager.loaded_models == [] and second.log.count() == 0
    second.close()
    with pytest.raises(RouterLLMError, match=closed):
        RouterLLM(tiny_config, meter=meter, request_log=tmp_path / "third.sqlite")
    meter.close()  # closing again does nothing


def test_a_read_only_request_log_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A log opened read-only (as reports open it) cannot log an answer: the request is
    refused before a model runs, not answered, paid for, then refused."""
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError

    RequestLog(tmp_path / "ro.sqlite").close()
    with RequestLog(tmp_path / "ro.sqlite", read_only=True) as log:
        system = RouterLLM(tiny_config, request_log=log)
        assert system.route("hi").model  # routing and predictions only read it
        with pytest.raises(RequestLogError, match="ro.sqlite was opened read-only"):
            system.generate("hi")
        assert system.manager.loaded_models == []  # refused before any model ran


def test_a_request_log_that_cannot_be_written_is_refused_before_any_model_runs(
    tiny_config: AppConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log SQLite opens but cannot write (a file of another user's, chmod 444, a
    read-only disk): SQLite opens it read-only without a word, so `route` answered, paid
    for the answer, printed it, then failed to log it ("attempt to write a readonly
    database"), as `serve` did every request and `humaneval` its first answer. Root writes
    any file: SQLite's own read-only mode (``query_only``) refuses writes as it does."""
    import sqlite3

    import routerllm.carbon.log_schema as log_schema
    from routerllm.carbon.request_log import RequestLog
    from routerllm.cli import main
    from routerllm.exceptions import RequestLogError

    from .conftest import write_config

    path = tmp_path / "requests.sqlite"
    RequestLog(path).close()
    before = path.read_bytes()
    opened = log_schema.open_shared

    def read_only(*args: Any) -> sqlite3.Connection:
        conn = opened(*args)
        conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(log_schema, "open_shared", read_only)
    with pytest.raises(RequestLogError, match="requests.sqlite .*cannot be written .*readonly"):
        RouterLLM(tiny_config)
    config = write_config(tmp_path, tiny_config.model_dump(mode="json"), "again.yaml")
    assert main(["route", "hi", "--model", "tiny-light", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # nothing answered: one line, the error
    assert err.startswith(f"error: request log {path} (log.path) cannot be written")
    assert "make it writable, or point log.path at another file" in err
    with RequestLog(path, read_only=True) as log:  # a report still reads it
        assert log.count() == 0
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes a file of mode 444")
def test_a_request_log_of_mode_444_is_refused_before_any_model_runs(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError

    path = tmp_path / "requests.sqlite"
    RequestLog(path).close()
    path.chmod(0o444)
    with pytest.raises(RequestLogError, match="cannot be written .*readonly"):
        RouterLLM(tiny_config)
    with RequestLog(path, read_only=True) as log:
        assert log.count() == 0


@pytest.mark.parametrize("prompt", ["", "   \n", None, 42, "hello \udcff\udcfe world"])
def test_bad_prompts_are_rejected_before_any_work(system: RouterLLM, prompt: object) -> None:
    with pytest.raises(PromptError):
        system.generate(prompt)  # type: ignore[arg-type]
    assert system.log.count() == 0 and system.manager.loaded_models == []


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("\x00", "prompt holds a NUL character .* at character 1"),
        ("hello\x00 world", "at character 6"),
        # UTF-16 text without its byte-order mark is valid UTF-8: every other character NUL
        ("h\x00e\x00l\x00l\x00o\x00", "a UTF-16 file read as UTF-8.*convert it to UTF-8"),
        ("\u200b\ufeff \u2060\x01", "prompt is empty: it holds no visible character"),
    ],
)
def test_a_prompt_with_a_nul_or_nothing_visible_is_refused_before_any_work(
    system: RouterLLM, prompt: str, message: str
) -> None:
    """A NUL character, or a prompt of zero-width spaces and byte-order marks alone, was
    sent to the model, which answered noise to it (and logged it as a request)."""
    for call in (system.route, system.generate, lambda p: system.predict(p, "tiny-light")):
        with pytest.raises(PromptError, match=message) as e:
            call(prompt)
        assert "\n" not in str(e.value)
    assert system.log.count() == 0 and system.manager.loaded_models == []
    assert system.route("zero\u200bwidth joins") is not None  # visible text around it is kept


def test_huge_prompt_rejected_and_log_intact(system: RouterLLM) -> None:
    system.generate("hi")
    with pytest.raises(PromptError, match="over the limit"):
        system.generate("x" * (system.config.limits.max_prompt_chars + 1))
    with pytest.raises(PromptError, match="too long for model"):
        system.generate("word " * 2000)  # under the char limit, over the 512-token context
    # the first answer, and the long prompt's refusal (logged as failed, for its routing
    # and its count's read of tiny-medium's vocabulary: refused by it before it loaded);
    # not the prompt over the character limit, refused before any model ran
    (answered, failed) = system.log.records()
    assert answered.finish_reason != "error" and failed.finish_reason == "error"
    assert failed.model == "tiny-medium" and failed.components["model_loading"].duration_s > 0
    assert "tiny-medium" not in system.manager.loaded_models


def test_a_failed_request_keeps_the_batch_finished_before_it(system: RouterLLM) -> None:
    with pytest.raises(PromptError, match="one request"):
        system.generate_batch("hey")  # type: ignore[arg-type]  # not 3 one-letter prompts
    batch = [GenerationRequest("hi", max_new_tokens=2), GenerationRequest("word " * 2000), "hello"]
    with pytest.raises(BatchError, match="request 2 of 3 failed: .*too long for model") as err:
        system.generate_batch(batch)
    assert err.value.index == 1 and isinstance(err.value.__cause__, PromptError)
    answered = [r.id for r in system.log.records() if r.finish_reason != "error"]
    assert [r.request_id for r in err.value.results] == answered  # and request 2's load


def test_a_batchs_first_request_failing_is_a_batch_error_too(system: RouterLLM) -> None:
    """A batch whose first request failed raised that request's own error, saying nothing
    of the others (which did not run), and a caller had to catch two kinds of error for
    one batch; a batch of one still raises the error itself, as generate() does."""
    batch = [GenerationRequest("word " * 2000), "hi", "hello"]
    with pytest.raises(BatchError, match="request 1 of 3 failed: .*too long for model.*; none finished; the 2 after it did not run") as err:  # fmt: skip
        system.generate_batch(batch)
    assert err.value.index == 0 and err.value.results == []
    assert isinstance(err.value.__cause__, PromptError)
    with pytest.raises(PromptError, match="too long for model"):
        system.generate_batch(batch[:1])


def test_a_failed_batch_request_is_logged_with_the_routing_of_those_never_run(
    system: RouterLLM,
) -> None:
    """The batch's routing was spent whole: the request that failed (2 of 4) is logged with
    its own share and those of the 2 that never ran, so the log's totals are what was
    measured."""
    batch = ["hi", GenerationRequest("word " * 2000), "hello", "What is a list?"]
    with pytest.raises(BatchError, match="request 2 of 4 failed: .*too long for model") as err:
        system.generate_batch(batch, tag="b")
    assert "the 2 after it did not run: their share of the batch's routing is logged" in str(
        err.value
    )
    (first,) = err.value.results
    share = first.components["router_inference"]  # a quarter of the batch's routing
    answered, failed = system.log.records(tag="b")
    assert answered.id == first.request_id and failed.finish_reason == "error"
    logged = [r.components["router_inference"] for r in (answered, failed)]
    assert share.duration_s > 0
    for quantity in ("duration_s", "energy_kwh", "co2_kg"):
        measured = 4 * getattr(share, quantity)
        assert sum(getattr(m, quantity) for m in logged) == pytest.approx(measured)


def test_unusable_log_folders_fail_before_any_work(tiny_config: AppConfig, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    tiny_config.carbon.output_dir = str(tmp_path / "file" / "carbon")
    with pytest.raises(
        RouterLLMError, match=r"folder .*file/carbon \(carbon.output_dir\) cannot be created"
    ):
        RouterLLM(tiny_config)


def test_unavailable_models_are_skipped_by_routing(tiny_config: AppConfig) -> None:
    tiny_config.models[2].gguf.path = "/nonexistent/heavy.gguf"  # type: ignore[union-attr]
    with RouterLLM(tiny_config) as system:
        assert system.available_models() == ["tiny-light", "tiny-medium"]
        r = system.generate("Implement a thread-safe LRU cache in Python")
        assert r.model == "tiny-medium" and "unavailable" in r.reason


def test_a_model_that_becomes_available_is_routed_to_after_the_recheck(
    tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running server is not stuck with what it found at start (an endpoint that
    was down, a model file not yet copied): unavailable models are checked again."""
    import shutil

    from routerllm import manager as manager_module

    real_path = tiny_config.models[2].gguf.path  # type: ignore[union-attr]
    tiny_config.models[2].gguf.path = str(tmp_path / "heavy.gguf")  # type: ignore[union-attr]
    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with RouterLLM(tiny_config) as system:
        assert system.available_models() == ["tiny-light", "tiny-medium"]
        shutil.copy(real_path, tmp_path / "heavy.gguf")
        clock[0] += manager_module.RECHECK_S - 1
        assert system.available_models() == ["tiny-light", "tiny-medium"]  # not yet
        clock[0] += 1
        assert system.available_models() == ["tiny-light", "tiny-medium", "tiny-heavy"]
        assert system.generate("Implement a thread-safe LRU cache in Python").model == "tiny-heavy"


def test_a_prompt_too_long_for_the_routed_models_context_goes_to_a_larger_one(
    tiny_config: AppConfig,
) -> None:
    """The smallest capable model is one whose context holds the prompt: a routed
    prompt too long for one goes up to the next larger model with a longer context
    (refused by its vocabulary's count before it loads, since 2026-12-07: its part of
    the row's loading, logged as not the answering model's own work, is that count's
    read of its vocabulary, no load); a model the caller names answers or refuses it."""
    tiny_config.router.name = "smallest"
    tiny_config.model("tiny-light").context_length = 48
    tiny_config.model("tiny-medium").context_length = 48
    prompt = "word " * 60  # over 48 tokens, well under 512
    with RouterLLM(tiny_config) as system:
        result = system.generate(prompt)
        assert result.model == "tiny-heavy"
        assert "too long for tiny-light's context of 48 tokens: sent to tiny-heavy" in result.reason
        assert "tiny-medium" not in result.reason  # its context is no longer: never tried
        (record,) = system.log.records()
        refused = record.escalated["model_loading"]
        assert refused.duration_s > 0 and refused.energy_kwh > 0  # tiny-light: its vocabulary read
        assert record.components["model_loading"].duration_s > 0  # tiny-heavy's own load
        assert system.manager.loaded_models == ["tiny-heavy"]
        # priced by energy: the refused load too, as it is in the request's energy
        price = tiny_config.carbon.electricity_price_usd_per_kwh
        assert result.cost_usd == pytest.approx(result.energy_kwh * price, rel=1e-9)
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'"):
            system.generate(prompt, model="tiny-light")  # named: no other model answers
        tiny_config.model("tiny-heavy").context_length = 48
    with RouterLLM(tiny_config) as system, pytest.raises(ContextLengthError, match="'tiny-light'"):
        system.generate(prompt)  # no model's context is longer: the routed model's refusal
    tiny_config.model("tiny-medium").context_length = 512
    tiny_config.model("tiny-heavy").context_length = 512
    with RouterLLM(tiny_config) as system:  # the next larger model whose context holds it
        assert system.generate(prompt).model == "tiny-medium"


def test_a_prompt_over_a_ggufs_own_context_goes_to_a_model_with_a_longer_one(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """tiny-light's GGUF was trained for 2048 tokens, under its configured 8192: a
    prompt of 2100 tokens is too long for it (until 2026-12-04 llama.cpp read it, past
    the positions the model knows), and goes to tiny-heavy, whose own context is 4096."""
    from routerllm.config import GGUFSource

    from .conftest import gguf_with_context_length

    tiny_config.router.name = "smallest"
    tiny_config.model("tiny-light").context_length = 8192
    tiny_config.model("tiny-medium").context_length = 48
    heavy = tiny_config.model("tiny-heavy")
    heavy.gguf = GGUFSource(path=str(gguf_with_context_length(tmp_path / "long.gguf", 4096)))
    heavy.context_length = 4096
    with RouterLLM(tiny_config) as system:
        result = system.generate("word " * 2100)
    assert result.model == "tiny-heavy"
    assert "too long for tiny-light's context of 2048 tokens: sent to tiny-heavy" in result.reason


def test_a_step_up_skips_a_model_whose_gguf_context_is_no_longer_without_loading_it(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """tiny-medium is configured for 512 tokens, but its GGUF was trained for 64: a prompt
    of about 100 tokens, too long for tiny-light's 64, goes straight to tiny-heavy. Until
    2026-12-04 the step up compared configured contexts: tiny-medium was loaded (its
    load paid for) only to refuse the prompt too. Where no larger model's context, as its
    GGUF gives it, is longer, the routed model's refusal names its own context and theirs,
    and nothing more is loaded (until then tiny-heavy, trained for 64 too, was loaded as
    well and its refusal was the one the caller got). Since 2026-12-07 tiny-light is
    not loaded either: its vocabulary's count refuses the prompt."""
    from routerllm.config import GGUFSource

    from .conftest import gguf_with_context_length

    short = GGUFSource(path=str(gguf_with_context_length(tmp_path / "short.gguf", 64)))
    tiny_config.router.name = "smallest"
    tiny_config.model("tiny-light").context_length = 64
    tiny_config.model("tiny-medium").gguf = short
    prompt = "word " * 100
    with RouterLLM(tiny_config) as system:
        result = system.generate(prompt)
        assert result.model == "tiny-heavy" and "tiny-medium" not in result.reason
        assert "too long for tiny-light's context of 64 tokens: sent to tiny-heavy" in result.reason
        assert system.manager.loaded_models == ["tiny-heavy"]
    tiny_config.model("tiny-heavy").gguf = short
    with RouterLLM(tiny_config) as system:
        with pytest.raises(ContextLengthError, match=r"too long for model 'tiny-light' \(context 64 tokens\)") as e:  # fmt: skip
            system.generate(prompt)
        assert system.manager.loaded_models == []
        # and why no larger model was tried, though their configured contexts are longer
        under = "64 tokens, its GGUF's, under the configured 512"
        assert str(e.value).endswith(f"; no larger model's context is longer (tiny-medium: {under}; tiny-heavy: {under})")  # fmt: skip
        assert e.value.context == 64
        with pytest.raises(ContextLengthError) as named:
            system.generate(prompt, model="tiny-light")  # named: no other model was to answer
        assert "larger model" not in str(named.value)


def _too_long_for_every_model(tmp_path: Path) -> AppConfig:
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 1.0}})
    for m in data["models"]:
        m["context_length"] = 48
    data["router"] = {"name": "smallest"}
    return load_config(write_config(tmp_path, data))


def test_a_request_that_fails_after_its_model_loaded_is_logged_with_what_it_spent(
    tmp_path: Path, uncounted_parts: tuple[list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that loads and then fails leaves its load paid for: the request is logged
    (finish reason "error", no tokens) with that energy, which the report counts as a
    failed request's and the budgets' windows count; the predictor learns no rate from
    it; the caller gets the model's error as it was. Until 2026-12-03 no row held it.
    (tiny-light's GGUF is split parts not yet assembled, its first part ending within
    its key-values: nothing counts the prompt before it loads, so it loads, and its own
    check refuses the prompt.)"""
    from routerllm.carbon.predictor import CarbonPredictor
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import totals_lines
    from routerllm.config import GGUFSource

    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    config = _too_long_for_every_model(tmp_path)
    names, sha = uncounted_parts
    config.model("tiny-light").gguf = GGUFSource(parts=names, sha256=sha)
    prompt = "word " * 60  # over 48 tokens
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError, match=r"^prompt is \d+ tokens, too long for model 'tiny-light' \(context 48"):  # fmt: skip
            system.generate(prompt, tag="t")
        (record,) = system.log.records()
        assert record.finish_reason == "error" and record.model == "tiny-light"
        assert record.prompt_tokens == record.completion_tokens == 0 and record.tag == "t"
        assert list(record.components) == ["router_inference", "model_loading"]
        loading = record.components["model_loading"]
        assert loading.duration_s > 0 and loading.energy_kwh > 0  # tiny-light's load
        assert record.cost_usd == pytest.approx(
            record.energy_kwh * config.carbon.electricity_price_usd_per_kwh
        )
        assert system.budget is not None
        assert system.budget.status()[0].spent == pytest.approx(record.co2_kg, rel=1e-9)
        assert system.predictor.profile("tiny-light") is None
        assert all(not seen for seen in system.predictor._seen.values())
        answered = system.generate("hi", model="tiny-light")
        assert len(CarbonPredictor.from_log(config, system.log)._seen["tiny-light"]) == 1
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed) == (2, 1)
    assert rep.by_model["tiny-light"].failed == 1
    assert rep.totals.energy_kwh == pytest.approx(record.energy_kwh + answered.energy_kwh)
    assert totals_lines(rep)[0].startswith(
        "requests 2 (1 failed, 1 cut at the token limit)  tokens"
    )


def test_a_failed_step_up_logs_the_earlier_models_loads_as_theirs(
    tmp_path: Path, uncounted_parts: tuple[list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt too long for every model's context steps up from tiny-light to
    tiny-medium to tiny-heavy (warm), which refuses it: the row (tiny-heavy's) keeps the
    loads of the models stepped up from apart, as an answered step up's does, so the
    report counts no load of tiny-heavy's own in it. Until 2026-12-03 both loads were
    counted as tiny-heavy's: a reload of a model that stayed loaded. (tiny-light's and
    tiny-medium's GGUFs are split parts not yet assembled, their first parts ending
    within their key-values: nothing counts the prompt before they load, so each loads
    to refuse it.)"""
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.request_log import RequestLog
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    names, sha = uncounted_parts
    data = tiny_config_dict(tmp_path)
    for m, context in zip(data["models"], (48, 64, 96), strict=True):
        m["context_length"] = context
    for m in data["models"][:2]:
        m["gguf"] = {"parts": names, "sha256": sha}
    data["router"] = {"name": "smallest"}
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        system.generate("hi", model="tiny-heavy")  # loaded: it refuses the prompt unloaded
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-heavy'"):
            system.generate("word " * 120)
        _, record = system.log.records()
    assert (record.model, record.finish_reason) == ("tiny-heavy", "error")
    loading = record.components["model_loading"]
    assert loading.duration_s > 0 and loading.energy_kwh > 0  # tiny-light's and tiny-medium's
    assert record.escalated["model_loading"] == loading  # all theirs: none of tiny-heavy's
    own = record.own("model_loading")
    assert own is not None and own.duration_s == own.energy_kwh == 0
    fig = LogFigures()
    with RequestLog(config.log.path, read_only=True) as log:
        for row in log.report_rows():
            fig.add(*row)
    assert dict(fig.loads) == {"tiny-heavy": 1}  # the load of its answer only
    assert fig.totals.failed == 1


def test_the_comparison_with_the_largest_model_names_a_failed_request_as_one(
    tmp_path: Path,
) -> None:
    """A failed request is logged with its load's energy: the comparison with the largest
    model leaves it out as one that failed, not as one "logged without energy" (until
    2026-12-03 it said that)."""
    from routerllm.carbon.report import logged_report

    config = _too_long_for_every_model(tmp_path)
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError):
            system.generate("word " * 60)
        system.generate("hi", model="tiny-heavy")  # the largest: the comparison's rate
        assert next(system.log.records()).energy_kwh > 0
    vs = logged_report(config).versus_largest
    assert vs is not None and "without energy" not in vs["method"]
    assert vs["method"].endswith("; 1 request that failed (no answer, their loads) left out")


def test_a_failed_request_the_log_cannot_take_still_gets_its_own_error(tmp_path: Path) -> None:
    """Logging the failure fails too (the log refuses rows): the caller gets the model's
    error, not the log's, and the budgets count what it spent from memory."""
    config = _too_long_for_every_model(tmp_path)
    with RouterLLM(config) as system:
        system.log._db.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON requests BEGIN SELECT RAISE(ABORT, 'disk full'); END"  # fmt: skip
        )
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'"):
            system.generate("word " * 60)
        assert system.log.count() == 0
        assert system.budget is not None and system.budget.status()[0].spent > 0


def test_a_model_whose_load_failed_is_left_alone_for_a_minute(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose file llama.cpp cannot load (whole, of an unknown architecture, so
    listed as available) was tried again at every request routed to it: each evicted
    the warm models to make room, then failed, the request lost. Since 2026-12-05 it is
    unavailable for ``RECHECK_S`` after a failed load: routing goes to the other models,
    the warm one stays loaded, and a request naming it is refused with the load's error,
    without loading; after that minute its load is tried again."""
    from routerllm import manager as manager_module
    from routerllm.config import load_config

    from .conftest import corrupt_gguf, tiny_config_dict, write_config

    data = tiny_config_dict(tmp_path)
    data["models"][2]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    data["router"] = {"name": "largest"}  # the largest available model
    data["manager"]["memory_budget_gb"] = 0.15  # one model at a time
    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        system.generate("hi", model="tiny-medium")
        with pytest.raises(BackendError, match="corrupt"):
            system.generate("hi")  # to tiny-heavy: evicts tiny-medium, then fails
        assert system.generate("hi").model == "tiny-medium"  # loaded again
        rows = len(list(system.log.records()))
        assert system.generate("hi").model == "tiny-medium"
        assert system.manager.loaded_models == ["tiny-medium"]  # not evicted for nothing
        with pytest.raises(ModelUnavailableError, match=r"^model 'tiny-heavy' is not available here: its load failed \(tried again 60 s after, or as soon as its files change\): llama.cpp could not load"):  # fmt: skip
            system.generate("hi", model="tiny-heavy")
        assert len(list(system.log.records())) == rows + 1  # refused before any work
        clock[0] += manager_module.RECHECK_S
        assert system.available_models() == ["tiny-light", "tiny-medium", "tiny-heavy"]
        with pytest.raises(BackendError, match="corrupt"):
            system.generate("hi")  # tried again, a minute on


def test_a_model_whose_load_failed_is_tried_again_at_once_when_its_file_is_replaced(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who replaces the GGUF whose load failed (a good copy over a broken one)
    waited out the minute's back-off all the same. Since 2026-12-05 the back-off ends at
    the next request once the model's files are no longer those whose load failed (a
    stat of them per request): the same broken file still waits the minute, another
    broken one is tried once and waits again, a copy under way is not tried, a good
    file loads and answers."""
    import shutil

    from routerllm import manager as manager_module
    from routerllm.config import load_config

    from .conftest import corrupt_gguf, tiny_config_dict, write_config

    data = tiny_config_dict(tmp_path)
    data["models"][2]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    data["router"] = {"name": "largest"}
    data["manager"]["memory_budget_gb"] = 0.15  # one model at a time
    path = Path(data["models"][2]["gguf"]["path"])
    clock = [1000.0]  # no time passes: every retry below is the files' doing
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    refused = r"^model 'tiny-heavy' is not available here: its load failed \(tried again 60 s after, or as soon as its files change\): llama.cpp could not load"  # fmt: skip
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        with pytest.raises(BackendError, match="corrupt"):
            system.generate("hi")  # to tiny-heavy: its load fails
        assert system.generate("hi").model == "tiny-medium"  # the same file: not tried again
        with pytest.raises(ModelUnavailableError, match=refused):
            system.generate("hi", model="tiny-heavy")
        # another broken file renamed over it: tried once, then left alone again
        broken = tmp_path / "broken.gguf"
        shutil.copy(path, broken)
        os.replace(broken, path)
        with pytest.raises(BackendError, match="corrupt"):
            system.generate("hi")
        assert system.generate("hi").model == "tiny-medium"
        with pytest.raises(ModelUnavailableError, match=refused):
            system.generate("hi", model="tiny-heavy")
        # a good copy written over it, half-way: not loaded (it is cut short) until whole
        good = tiny_gguf.read_bytes()
        path.write_bytes(good[: len(good) // 2])
        assert system.generate("hi").model == "tiny-medium"
        with pytest.raises(ModelUnavailableError, match=r"tiny-heavy' is not available here: .* is cut short"):  # fmt: skip
            system.generate("hi", model="tiny-heavy")
        with path.open("ab") as copying:  # the copy finishes: the next request loads it
            copying.write(good[len(good) // 2 :])
        assert system.available_models() == ["tiny-light", "tiny-medium", "tiny-heavy"]
        answered = system.generate("hi")
        assert answered.model == "tiny-heavy" and answered.completion_tokens > 0
        assert system.manager.loaded_models == ["tiny-heavy"]
        assert system.generate("hi", model="tiny-heavy").model == "tiny-heavy"


def test_a_load_that_fails_is_logged_with_what_it_spent(tmp_path: Path, tiny_gguf: Path) -> None:
    """A model whose file llama.cpp fails to load (corrupt) spent that load's time and
    energy all the same: the request is logged as failed with it, and the budgets count
    it; the caller gets the load's error as it was. Until 2026-12-03 it was in no row."""
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    broken = tmp_path / "broken.gguf"
    # whole, of an architecture llama.cpp does not know
    broken.write_bytes(tiny_gguf.read_bytes().replace(b"llama", b"zzzzz", 1))
    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 1.0}})
    data["models"][0]["gguf"] = {"path": str(broken)}
    data["router"] = {"name": "smallest"}
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        with pytest.raises(BackendError, match=r"^llama.cpp could not load .*broken\.gguf for model 'tiny-light' .*corrupt"):  # fmt: skip
            system.generate("hi", tag="t")
        (record,) = system.log.records()
        assert (record.model, record.finish_reason, record.tag) == ("tiny-light", "error", "t")
        assert list(record.components) == ["router_inference", "model_loading"]
        loading = record.components["model_loading"]
        assert loading.duration_s > 0 and loading.energy_kwh > 0  # the failed load's
        assert loading.method.startswith("codecarbon:")
        assert record.cost_usd == pytest.approx(
            record.energy_kwh * config.carbon.electricity_price_usd_per_kwh
        )
        assert system.budget is not None
        assert system.budget.status()[0].spent == pytest.approx(record.co2_kg, rel=1e-9)


def test_a_model_loaded_again_for_its_replaced_file_is_logged_with_that_load(
    tmp_path: Path,
) -> None:
    """A loaded model whose file was replaced is loaded again before it answers: that
    load is the request's model_loading (its time and energy), as any load is, and its
    prediction that of a model to load. It was logged as no load (0 s, 0 kWh), and
    predicted as none: the model being loaded, it was taken as loaded."""
    import shutil

    from routerllm.config import load_config

    from .conftest import gguf_with_other_weights, tiny_config_dict, tiny_gguf_path, write_config

    path = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf_path(), path)
    data = tiny_config_dict(tmp_path)
    data["models"][0]["gguf"] = {"path": str(path)}
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        first = system.generate("hi", model="tiny-light")
        assert first.components["model_loading"].duration_s > 0  # its first load
        loaded = system.manager.backend("tiny-light")._llm
        os.replace(gguf_with_other_weights(tmp_path / "new.gguf"), path)
        again = system.generate("hello", model="tiny-light")
        assert system.manager.backend("tiny-light")._llm is not loaded  # loaded again
        loading = again.components["model_loading"]
        assert loading.duration_s > 0 and loading.energy_kwh > 0
        last = list(system.log.records())[-1]
        assert last.components["model_loading"].duration_s == loading.duration_s
        # and predicted as a model to load (the budgets admit by it)
        assert first.predicted is not None and again.predicted is not None
        assert again.predicted.basis.endswith("; loading not included")
        assert again.predicted.basis == first.predicted.basis


def test_a_generation_that_fails_midway_is_logged_with_what_it_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded model whose generation fails partway (reading the prompt state fails
    once llama.cpp has read the prompt) spent that generation's energy: the request is
    logged as failed with it (llm_inference, no load), which the budgets count; the
    predictor learns no rate from it, nor does the report's rate of the largest model.
    Until 2026-12-03 a warm model's failure was in no row, a cold one's without it."""
    from routerllm.backends.llama_state import PromptState
    from routerllm.carbon.predictor import CarbonPredictor
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 1.0}})
    config = load_config(write_config(tmp_path, data))

    def fail(self: PromptState, tensor: int, ask: bool) -> bool:
        raise ValueError("unexpected tensor")

    with RouterLLM(config) as system:
        answered = system.generate("hi", model="tiny-heavy")  # loaded: no load below
        monkeypatch.setattr(PromptState, "_read", fail)
        request = GenerationRequest("def add(a, b):", prompt_state=True)
        with pytest.raises(BackendError, match="^reading the prompt state failed: unexpected tensor$"):  # fmt: skip
            system.generate(request, model="tiny-heavy", tag="t")
        _, record = system.log.records()
        assert (record.model, record.finish_reason, record.tag) == ("tiny-heavy", "error", "t")
        assert record.prompt_tokens == record.completion_tokens == 0
        assert list(record.components) == ["router_inference", "model_loading", "llm_inference"]
        assert record.components["model_loading"].duration_s == 0  # warm
        generation = record.components["llm_inference"]
        assert generation.duration_s > 0 and generation.energy_kwh > 0
        assert generation.method.startswith("codecarbon:")
        assert record.cost_usd == pytest.approx(
            record.energy_kwh * config.carbon.electricity_price_usd_per_kwh
        )
        assert system.budget is not None
        assert system.budget.status()[0].spent == pytest.approx(
            answered.co2_kg + record.co2_kg, rel=1e-9
        )
        assert len(system.predictor._seen["tiny-heavy"]) == 1  # the answer only
        assert len(CarbonPredictor.from_log(config, system.log)._seen["tiny-heavy"]) == 1
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed) == (2, 1)
    assert rep.totals.energy_kwh == pytest.approx(answered.energy_kwh + record.energy_kwh)
    assert rep.versus_largest is not None
    assert "measured rate of tiny-heavy in this log (1 request)" in rep.versus_largest["method"]


def test_a_failed_generation_is_logged_with_carbon_tracking_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``carbon.enabled: false`` a warm model whose generation fails partway meters
    no energy (method "none"): it is logged as failed all the same, with its duration, as
    it is with carbon tracking on. Until 2026-12-03 it was in no row, and the report
    counted the same failures only with tracking on."""
    from routerllm.backends.llama_state import PromptState
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip

    def fail(self: PromptState, tensor: int, ask: bool) -> bool:
        raise ValueError("unexpected tensor")

    with RouterLLM(config) as system:
        system.generate("hi", model="tiny-heavy")  # loaded: no load below
        monkeypatch.setattr(PromptState, "_read", fail)
        request = GenerationRequest("def add(a, b):", prompt_state=True)
        with pytest.raises(BackendError, match="reading the prompt state failed"):
            system.generate(request, model="tiny-heavy")
        records = list(system.log.records())
    assert [(r.model, r.finish_reason == "error") for r in records] == [("tiny-heavy", False), ("tiny-heavy", True)]  # fmt: skip
    generation = records[1].components["llm_inference"]
    assert generation.method == "none" and generation.energy_kwh == 0 and generation.duration_s > 0  # fmt: skip
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed) == (2, 1)


def test_summarized_results_price_the_largest_model_at_the_configs_grid(tmp_path: Path) -> None:
    """The README's ``summarize(results, config.models, config.carbon.country_iso_code)``
    gives ``routerllm report``'s comparison with the largest model where it is priced from
    the config's per-token figures (it answered nothing): the README left the country
    out, and ``summarize`` priced that estimate at the USA's grid while the answers were
    measured at France's (94 % CO2 saved where the report said 60 %)."""
    from routerllm.carbon.report import logged_report, summarize
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    assert config.carbon.country_iso_code == "FRA"
    with RouterLLM(config) as system:
        results = [system.generate("Say hi.", model="tiny-light") for _ in range(2)]
    logged = logged_report(config).versus_largest
    vs = summarize(results, config.models, config.carbon.country_iso_code).versus_largest
    assert logged is not None and vs is not None
    assert "per-token figures of tiny-heavy" in logged["method"] and vs["method"] == logged["method"]  # fmt: skip
    for key in ("estimated_co2_kg", "actual_co2_kg", "co2_saved_fraction"):
        assert vs[key] == pytest.approx(logged[key], rel=1e-12), key


def test_a_request_waiting_for_another_ones_load_logs_no_load_of_its_own(
    tmp_path: Path,
) -> None:
    """Two requests that both find their model not loaded: one loads it, the other
    waits for that load and loads nothing. With carbon tracking off (no meter's turn to
    take), both were measured as loads, the load's seconds counted twice (in the report's model_loading and latency, and as a reload by the
    loading-churn recommendation)."""
    from routerllm.config import load_config

    from .conftest import tiny_config_dict, write_config

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    with RouterLLM(config) as system:
        real_acquire = system.manager.acquire
        second_waits = threading.Event()
        calls: list[str] = []

        def acquire(name: str):  # type: ignore[no-untyped-def]
            # both found the model not loaded; the first waits while the second loads it
            calls.append(name)
            if len(calls) == 1:
                assert second_waits.wait(30)
                time.sleep(0.3)  # the second holds the manager's lock, loading
            else:
                second_waits.set()
            return real_acquire(name)

        system.manager.acquire = acquire  # type: ignore[method-assign]
        # its vocabulary opened first (outside a request: not metered), so that neither
        # request's prediction reads it: the loading logged is the load's alone
        system.manager.prompt_tokens_now("tiny-light", GenerationRequest("hi"))
        results: list[RoutedResult] = []
        ask = lambda: results.append(system.generate("hi", model="tiny-light"))  # noqa: E731
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        loads = sorted(r.components["model_loading"].duration_s for r in results)
        assert len(results) == 2 and loads[0] == 0.0 and loads[1] > 0
        for r in results:
            assert r.latency_s == pytest.approx(sum(m.duration_s for m in r.components.values()))  # fmt: skip
        logged = {r.id: r for r in system.log.records()}
        assert sorted(logged[r.request_id].latency_s for r in results) == sorted(
            r.latency_s for r in results
        )


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
def test_many_requests_leave_no_open_file_thread_or_codecarbon_task_behind(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server runs for weeks: what a request opens (log writes, CodeCarbon tasks, the
    model's threads) must not outlive it, and what is kept per request stops at its cap
    (measured over 20,000 requests on 2026-12-05; this is the cheap guard of that)."""
    from routerllm import feedback

    monkeypatch.setattr(feedback, "MAX_REMEMBERED", 5)
    prompts = [f"Say {i}." for i in range(12)]
    system.generate(prompts[0])  # the model loaded, its threads started
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    for prompt in prompts[1:]:
        system.generate(prompt)
    assert len(os.listdir("/proc/self/fd")) <= fds
    assert threading.active_count() <= threads
    assert getattr(system.meter._tracker, "_tasks", {}) == {}  # type: ignore[attr-defined]
    assert len(system.feedback_loop._routed) == 5
