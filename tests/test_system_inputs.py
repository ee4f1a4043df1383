"""Misused arguments of ``RouterLLM`` and failures around a request: each is one clear
RouterLLMError, raised before any work where it can be, and no answer is lost."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from routerllm.backends import GenerationRequest
from routerllm.backends.base import chat_messages, plain_text
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import (
    BatchError,
    ConfigError,
    PromptError,
    RequestLogError,
    RouterLLMError,
)
from routerllm.stubs import stub_of
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config


def test_tag_none_is_untagged_and_a_wrong_tag_is_refused_before_any_work(
    system: RouterLLM,
) -> None:
    with pytest.raises(PromptError, match="tag must be text"):
        system.generate("hi", tag=["a"])  # type: ignore[arg-type]
    # e.g. a file name or an argument that was not UTF-8 (Python's surrogate escapes):
    # the log could not store it, and the answer was lost in a UnicodeEncodeError
    with pytest.raises(PromptError, match="tag is not valid UTF-8 text .undecodable at character 4"):  # fmt: skip
        system.generate("hi", tag=b"run-\xff".decode("utf-8", "surrogateescape"))
    assert system.log.count() == 0 and system.manager.loaded_models == []
    result = system.generate("hi", tag=None)
    assert [r.tag for r in system.log.records()] == [""]
    assert [r.id for r in system.log.records(tag="")] == [result.request_id]


@pytest.mark.parametrize("key", ["seed", "name", "models"])
def test_a_router_option_named_like_the_routers_own_settings_is_refused(
    tiny_config: AppConfig, key: str
) -> None:
    router = tiny_config.router.model_copy(update={"options": {key: 1}})
    config = tiny_config.model_copy(update={"router": router})
    with pytest.raises(RouterLLMError, match=f"{key}: not a router option"):
        RouterLLM(config)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.generate("hi", router=object()), "router must be a Router"),
        (lambda s: s.generate("hi", model=3), "model must be a model's name"),
        (
            lambda s: s.generate("hi", model="tiny-heavy", router="largest"),
            "router 'largest' would not be used; give one of them",
        ),
        (lambda s: s.generate_batch(None), "takes a list of requests"),
        (lambda s: s.generate_batch({"hi": 1}), "takes a list of requests, got dict"),
        (lambda s: s.generate_batch({"hi", "ho"}), "takes a list of requests, got set"),
        # bytes iterate as numbers: the error was "prompt must be text, got int"
        (lambda s: s.generate_batch(b"hi"), "takes a list of requests, got bytes"),
        (lambda s: s.generate_batch(bytearray(b"hi")), "list of requests, got bytearray"),
        # an empty batch checks its arguments as any other (a router's name was, a model's
        # was not: a misspelt one passed until the batch held a request)
        (lambda s: s.generate_batch([], model="tiny-lite"), "unknown model 'tiny-lite'"),
        # an OpenAI client's messages: said how a conversation is asked here
        (
            lambda s: s.generate([{"role": "user", "content": "hi"}]),
            r"prompt must be text, got list; a conversation is GenerationRequest\(newest "
            r"text, system=\.\.\., history=\(\(role, text\), \.\.\.\)\)",
        ),
        (lambda s: s.generate({"role": "user", "content": "hi"}), "got dict; a conversation is"),
        (lambda s: s.predict([{"role": "user", "content": "hi"}], "tiny-light"), "got list; a"),
    ],
    ids=[
        "router-object",
        "model-number",
        "model-and-router",
        "batch-none",
        "batch-dict",
        "batch-set",
        "batch-bytes",
        "batch-bytearray",
        "empty-batch-unknown-model",
        "messages",
        "message",
        "predict-messages",
    ],
)
def test_wrong_arguments_are_clear_errors(system: RouterLLM, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RouterLLMError, match=message):
        call(system)
    assert system.log.count() == 0


@pytest.mark.parametrize("config", ["local", None])
def test_a_config_name_instead_of_a_config_points_to_from_config(config: object) -> None:
    with pytest.raises(ConfigError, match=r"RouterLLM.from_config\("):
        RouterLLM(config)  # type: ignore[arg-type]


def test_an_untrained_router_given_in_code_says_to_load_a_trained_one(
    tiny_config: AppConfig,
) -> None:
    from routerllm.routers import create_router

    with pytest.raises(ConfigError, match=r"then pass it as load_router\(DIR, config.models\)"):
        RouterLLM(tiny_config, router=create_router("knn", tiny_config.models))
    # by name too: router.path in the config would not help, the name given overrides it
    with pytest.raises(ConfigError, match=r"then pass it as load_router\(DIR, config.models\)"):
        RouterLLM(tiny_config, router="quality")
    tiny_config.router.name = "quality"
    with pytest.raises(ConfigError, match="then give DIR as router.path in the config"):
        RouterLLM(tiny_config)


def test_a_router_seed_a_saved_router_does_not_use_is_said(
    tiny_config: AppConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With router.path the saved router draws with its saved seed: a router.seed set to
    another is not silently ignored; one left out, or the same, says nothing."""
    from routerllm.config_sections import RouterSettings
    from routerllm.configured_router import build_router
    from routerllm.routers import create_router

    saved = create_router("random", tiny_config.models, seed=3).save(tmp_path / "random")
    tiny_config.router = RouterSettings(path=str(saved), seed=5)
    with caplog.at_level("WARNING", logger="routerllm.configured_router"):
        assert build_router(tiny_config).seed == 3
    assert f"router.seed 5 is not used: the router saved in {saved} draws with the seed it was saved with, 3" in caplog.text  # fmt: skip
    caplog.clear()
    for settings in (RouterSettings(path=str(saved)), RouterSettings(path=str(saved), seed=3)):
        tiny_config.router = settings
        with caplog.at_level("WARNING", logger="routerllm.configured_router"):
            build_router(tiny_config)
    assert "router.seed" not in caplog.text


def test_from_config_takes_a_router_name_and_a_log_path(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.sqlite"
    with RouterLLM.from_config(tiny_config_path, router="largest", request_log=other) as s:
        assert s.generate("hi").model == "tiny-heavy"
    with RouterLLM.from_config(tiny_config_path, request_log=str(other)) as s:
        assert s.log.count() == 1
    with pytest.raises(ConfigError, match="request_log must be a RequestLog or the path"):
        RouterLLM.from_config(tiny_config_path, request_log=5)
    with pytest.raises(ConfigError, match="request_log is an empty path"):
        RouterLLM.from_config(tiny_config_path, request_log="")
    with pytest.raises(ConfigError, match="not max_new_tokens; generation options belong"):
        RouterLLM.from_config(tiny_config_path, max_new_tokens=4)


def test_stop_none_means_no_stop_sequences() -> None:
    assert GenerationRequest("hi", stop=None).stop == []  # type: ignore[arg-type]
    with pytest.raises(PromptError, match="bad request options: stop 5"):
        GenerationRequest("hi", stop=5)  # type: ignore[arg-type]


def test_a_callback_that_cannot_be_called_is_refused_before_any_model_runs() -> None:
    for name in ("on_text", "on_answer"):
        with pytest.raises(PromptError, match=f"bad request options: {name} 'x' .*functions"):
            GenerationRequest("hi", **{name: "x"})  # type: ignore[arg-type]
    GenerationRequest("hi", on_text=print, on_answer=None)  # callables and None go through


def test_an_async_callback_is_refused_before_any_model_runs(system: RouterLLM) -> None:
    # Called in the generating thread, an async function only made a coroutine that
    # never ran: the pieces were lost, with a RuntimeWarning a piece
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    class Handler:
        async def __call__(self, model: str, request_id: str) -> None: ...

    for name, callback in (("on_text", on_text), ("on_answer", Handler())):
        with pytest.raises(PromptError) as err:
            system.generate(GenerationRequest("hi", **{name: callback}))  # type: ignore[arg-type]
        assert str(err.value) == (
            f"{name} is an async function: it is called in the thread that generates, where "
            "its coroutine would never run; give a plain function (in asyncio code, one "
            "that hands its arguments to the loop with loop.call_soon_threadsafe)"
        )
    assert system.log.count() == 0 and system.manager.loaded_models == []


def test_a_config_changed_in_place_is_checked_again(tiny_config: AppConfig) -> None:
    tiny_config.models.append(tiny_config.models[0])  # not an assignment: not checked then
    with pytest.raises(ConfigError, match="duplicate model names: tiny-light"):
        RouterLLM(tiny_config)


def test_an_entry_appended_in_place_as_a_dict_is_one_config_error(tiny_config: AppConfig) -> None:
    # A valid entry passes the check again as a file's would, but the system reads
    # ModelConfig objects: it failed in the router with a 1,500-character line blaming
    # the YAML's router.options
    entry = {**tiny_config.models[0].model_dump(), "name": "tiny-extra"}
    tiny_config.models.append(entry)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as err:
        RouterLLM(tiny_config)
    assert str(err.value) == (
        "config.models[3] is a dict, not a ModelConfig (it was changed in place, "
        "which checks nothing): append ModelConfig(**entry) (routerllm.config), or "
        "assign the list (config.models = [...]), which checks and converts its entries"
    )
    tiny_config.models = tiny_config.models  # the assignment the message names converts it
    with RouterLLM(tiny_config) as system:
        assert system.generate("hi", model="tiny-extra").model == "tiny-extra"


def test_a_manager_made_for_other_models_is_refused_naming_them(tmp_path: Path) -> None:
    # it routed among the manager's models: the first request was refused with "unknown
    # model 'other'", a name the caller never gave
    from routerllm.manager import LLMManager

    config = AppConfig.model_validate(tiny_config_dict(tmp_path))
    data = tiny_config_dict(tmp_path)
    data["models"] = [{**data["models"][0], "name": "other"}]
    with pytest.raises(ConfigError) as err:
        RouterLLM(config, manager=LLMManager(AppConfig.model_validate(data)))
    assert str(err.value) == (
        "manager was made for other models (other) than this config's (tiny-light, "
        "tiny-medium, tiny-heavy); share a manager between systems of the same models, or "
        "leave it out"
    )
    data = tiny_config_dict(tmp_path)
    data["models"][1]["gguf"]["path"] = str(tmp_path / "another.gguf")
    with pytest.raises(ConfigError, match=r"^manager was made for models of other settings \(tiny-light"):  # fmt: skip
        RouterLLM(config, manager=LLMManager(AppConfig.model_validate(data)))
    shared = LLMManager(config)  # one made from the same models is shared
    with RouterLLM(config, manager=shared) as system:
        assert system.generate("hi", model="tiny-medium").model == "tiny-medium"


def test_an_answer_that_cannot_be_logged_is_not_lost(system: RouterLLM) -> None:
    # A real SQLite error from the second insert on (as a full disk would give).
    with sqlite3.connect(system.log.db_path) as other:
        other.execute(
            "CREATE TRIGGER full BEFORE INSERT ON requests WHEN (SELECT COUNT(*) FROM requests) "
            "> 0 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(BatchError, match="request 2 of 2 failed: the answer was produced") as err:
        system.generate_batch(["hi", "hello"], model="tiny-light")
    assert [r.request_id for r in err.value.results] == [r.id for r in system.log.records()]
    cause = err.value.__cause__
    assert isinstance(cause, RequestLogError) and isinstance(cause.__cause__, sqlite3.Error)
    assert cause.result.model == "tiny-light" and cause.result.completion_tokens > 0
    with pytest.raises(RequestLogError, match="could not be logged") as one:
        system.generate("hi", model="tiny-light")
    assert one.value.result.completion_tokens > 0


def in_threads(n: int, work: Callable[[int], object]) -> dict[int, object]:
    """``work(k)`` for k in 0..n-1, each in its own thread at once: its result, or the
    exception it raised (for the caller's asserts to report); a deadlock fails."""
    outcome: dict[int, object] = {}

    def run(k: int) -> None:
        try:
            outcome[k] = work(k)
        except BaseException as e:  # noqa: BLE001 - reported by the caller's asserts
            outcome[k] = e

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "threads deadlocked"
    return outcome


def test_threads_sharing_a_system_take_turns_on_a_model(tiny_config: AppConfig) -> None:
    tiny_config.carbon.enabled = False  # CodeCarbon's tracker is one per process
    tiny_config.generation.max_new_tokens = 16
    with RouterLLM(tiny_config) as system:
        system.generate("warm up", model="tiny-light")
        outcome = in_threads(
            2,
            lambda k: system.generate_batch(
                [f"Tell me about topic {k}-{i}" for i in range(4)], model="tiny-light"
            ),
        )
        assert all(isinstance(v, list) and len(v) == 4 for v in outcome.values()), outcome
        assert system.log.count() == 9
        alone = system.generate("Tell me about topic 0-0", model="tiny-light")
        assert outcome[0][0].text == alone.text  # type: ignore[index]


def test_threads_sharing_a_system_are_each_measured(tiny_config: AppConfig) -> None:
    """CodeCarbon measures one task at a time: a second one started meanwhile was
    refused, and its request logged as spending nothing ("codecarbon:failed")."""
    tiny_config.manager.memory_budget_gb = 0.15  # one model at a time: loads evict
    models = ["tiny-light", "tiny-medium", "tiny-heavy"]
    with RouterLLM(tiny_config) as system:
        outcome = in_threads(
            4,
            lambda k: [
                system.generate(f"topic {k}-{i}", model=models[(k + i) % 3]) for i in range(4)
            ],  # fmt: skip
        )
        assert all(isinstance(v, list) and len(v) == 4 for v in outcome.values()), outcome
        results = [r for v in outcome.values() for r in v]  # type: ignore[attr-defined]
        methods = {m.method for r in results for m in r.components.values()}
        assert methods == {system.meter.method}
        assert all(r.components[c].energy_kwh > 0 for r in results for c in ("router_inference", "llm_inference"))  # fmt: skip
        logged = {r.id: r.energy_kwh for r in system.log.records()}
        assert logged == pytest.approx({r.request_id: r.energy_kwh for r in results})


def test_a_stub_too_long_for_a_model_another_thread_is_evicting_does_not_deadlock(
    tiny_config: AppConfig,
) -> None:
    """Explaining a stub's PromptError asked the manager (its lock) while the model's lock
    was held: a load evicting that model holds the first and waits for the second."""
    tiny_config.carbon.enabled = False  # with CodeCarbon the meter's turn kept them apart
    tiny_config.manager.memory_budget_gb = 0.15  # one model at a time: loads evict
    # not a with block: closing would wait for the threads, were they deadlocked
    system = RouterLLM(tiny_config)
    system.generate("warm up", model="tiny-light")
    manager, light = system.manager, system.manager.backend("tiny-light")
    evicting, outcome = threading.Event(), {}
    model_lock = manager._model_lock

    def watched_lock(name: str) -> threading.RLock:
        if name == "tiny-light" and threading.current_thread().name == "loader":
            evicting.set()  # under the manager's lock, about to wait for tiny-light's
        return model_lock(name)

    def too_long(req: GenerationRequest) -> object:
        loader.start()
        assert evicting.wait(60)
        raise PromptError("prompt too long for model 'tiny-light'", "prompt")

    def run(key: str, prompt: str, model: str) -> None:
        try:
            outcome[key] = system.generate(prompt, model=model)
        except BaseException as e:  # noqa: BLE001 - reported by the asserts
            outcome[key] = e

    manager._model_lock = watched_lock  # type: ignore[method-assign]
    light.generate = too_long  # type: ignore[method-assign]
    stub = 'def f(x):\n    """Return x."""\n'
    loader = threading.Thread(target=run, args=("load", "hi", "tiny-medium"), name="loader", daemon=True)  # fmt: skip
    asker = threading.Thread(target=run, args=("stub", stub, "tiny-light"), daemon=True)
    asker.start()
    asker.join(30)
    loader.join(5)
    assert not asker.is_alive() and not loader.is_alive(), "deadlocked"
    assert isinstance(outcome["stub"], PromptError), outcome
    assert "a function stub, asked in tiny-light's" in str(outcome["stub"])
    assert outcome["load"].model == "tiny-medium"  # type: ignore[union-attr]
    # the warm-up, tiny-medium's answer, and the stub tiny-light (loaded) refused, logged
    # for its routing (until 2026-12-07 not at all)
    rows = sorted((r.model, r.finish_reason == "error") for r in system.log.records())
    assert rows == [("tiny-light", False), ("tiny-light", True), ("tiny-medium", False)]
    system.close()


def test_a_model_evicted_before_its_turn_is_reloaded_as_part_of_the_request(
    tiny_config: AppConfig,
) -> None:
    """A request whose model was loaded, then evicted by another thread's load before
    this one's turn came, reloaded it outside every measured block: its model_loading
    said nothing was spent, and the reload's energy was in no request's row."""
    tiny_config.manager.memory_budget_gb = 0.15  # one model at a time: loads evict
    with RouterLLM(tiny_config) as system:
        system.generate("warm up", model="tiny-light")
        light, meter = system.manager.backend("tiny-light"), system.meter
        loads: list[bool] = []
        load, turn = light.load, meter.turn
        waiting, go = threading.Event(), threading.Event()

        def counted_load() -> None:
            loads.append(light.loaded)
            load()

        def late_turn() -> object:  # the request's turn comes after the other thread's
            if threading.current_thread().name == "late" and not waiting.is_set():
                waiting.set()
                assert go.wait(60)
            return turn()

        light.load = counted_load  # type: ignore[method-assign]
        meter.turn = late_turn  # type: ignore[method-assign]
        outcome = {}
        late = threading.Thread(target=lambda: outcome.setdefault("late", system.generate("hello", model="tiny-light")), name="late")  # fmt: skip
        late.start()
        assert waiting.wait(60)
        system.generate("other", model="tiny-medium")  # evicts tiny-light
        go.set()
        late.join(60)
        result = outcome["late"]
        assert loads.count(False) == 1  # reloaded once, for this request
        assert result.components["model_loading"].energy_kwh > 0
        assert result.components["model_loading"].duration_s > 0


def test_a_conversation_is_a_request_with_history() -> None:
    r = GenerationRequest("And now?", system="S", history=[["user", "A"], ("assistant", "B")])  # type: ignore[list-item]
    assert r.history == (("user", "A"), ("assistant", "B"))
    assert [m["role"] for m in chat_messages(r)] == ["system", "user", "assistant", "user"]
    assert plain_text(r) == "S\n\nA\n\nB\n\nAnd now?"
    assert stub_of(GenerationRequest('def f():\n    """Doc."""\n', history=(("user", "x"),))) is None  # fmt: skip
    for history, message in [
        ((("system", "x"),), "role user or assistant"),
        ((("user", 3),), "history turn 1"),
        ("user: hi", "history must be a list"),
    ]:
        with pytest.raises(PromptError, match=message):
            GenerationRequest("x", history=history)  # type: ignore[arg-type]
    with pytest.raises(PromptError, match="a raw request continues one text"):
        GenerationRequest("x", raw=True, history=(("user", "y"),))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"history": (("user", "\ud800"),)}, "history turn 1 is not valid UTF-8"),
        ({"system": "a\udfff"}, "system is not valid UTF-8 text .undecodable at character 1"),
        ({"stop": ["\ud800"]}, "a stop sequence is not valid UTF-8"),
        ({"stop": ["x", ""]}, "a stop sequence is empty"),
        ({"repetition_penalty": 10**400}, "bad sampling options: repetition_penalty"),
        ({"max_new_tokens": 10**400}, "bad sampling options: max_new_tokens 1000"),
        (
            {"history": [[[[[[[[[[["deep"]]]]]]]]]]]},
            "history turn 1 is [[[[[[[...]]]]]]]; each turn",
        ),
    ],
    ids=[
        "history-surrogate",
        "system-surrogate",
        "stop-surrogate",
        "empty-stop",
        "huge-penalty",
        "huge-max-new-tokens",
        "nested",
    ],
)
def test_request_text_and_numbers_are_checked_when_built(fields: dict[str, object], message: str) -> None:  # fmt: skip
    with pytest.raises(PromptError, match=re.escape(message) if "[" in message else message):
        GenerationRequest("hello", **fields)  # type: ignore[arg-type]


def test_a_conversation_counts_toward_the_prompt_limit(tiny_config: AppConfig) -> None:
    tiny_config.limits.max_prompt_chars = 100
    with RouterLLM(tiny_config) as system:
        request = GenerationRequest("short", history=(("user", "x" * 60), ("assistant", "y" * 60)))  # fmt: skip
        with pytest.raises(RouterLLMError, match="the request is 125 characters"):
            system.generate(request)
        with pytest.raises(RouterLLMError, match="the request is 105 characters"):
            system.generate(GenerationRequest("short", system="s" * 100))
        # the model reads the answer's prefix too: a 5 MB one was tokenized whole, once
        # a model was loaded for it, and refused only then for the model's context
        with pytest.raises(RouterLLMError, match="the request is 105 characters .*response prefix"):  # fmt: skip
            system.generate(GenerationRequest("short", response_prefix="p" * 100))
        with pytest.raises(RouterLLMError, match="the request is 105 characters"):
            system.predict(GenerationRequest("short", response_prefix="p" * 100), "tiny-light")
        assert system.log.count() == 0 and system.manager.loaded_models == []


def test_a_whole_number_seed_given_as_a_float_is_the_same_seed(system: RouterLLM) -> None:
    # accepted as a whole number, it reached llama.cpp as a float: a ctypes traceback
    ask = {"max_new_tokens": 4, "temperature": 0.8}
    as_float = system.generate(GenerationRequest("hi", seed=1.0, **ask))  # type: ignore[arg-type]
    as_int = system.generate(GenerationRequest("hi", seed=1, **ask))
    assert GenerationRequest("hi", seed=1.0).seed == 1 and as_float.text == as_int.text  # type: ignore[arg-type]


def test_summarize_refuses_wrong_arguments_and_an_unknown_country(system: RouterLLM) -> None:
    """``summarize(results, config.models, country)`` as the README shows it: a wrong
    argument was a bare TypeError or AttributeError, and an unknown country (a typo) was
    silently priced at the world average's grid."""
    from routerllm.carbon.report import summarize, versus_largest

    results = system.generate_batch(["hi", "Write a parser"])
    models = system.config.models
    fra = summarize(results, models, "FRA").versus_largest
    assert fra is not None and summarize(results, models, "fra").versus_largest == fra
    wrong: list[tuple[Callable[[], object], str]] = [
        (lambda: summarize(results[0]), "a list of results .*, got RoutedResult"),  # type: ignore[arg-type]
        (lambda: summarize(None), "a list of results .*, got NoneType"),  # type: ignore[arg-type]
        (lambda: summarize("abc"), "a list of results .*, got str"),  # type: ignore[arg-type]
        (lambda: summarize([results[0], None]), r"records\[1\] is NoneType"),  # type: ignore[list-item]
        (lambda: summarize(results, system.config), "models must be a list .*got AppConfig"),  # type: ignore[arg-type]
        (lambda: summarize(results, ["tiny-light"]), r"models\[0\] is str"),  # type: ignore[list-item]
        (lambda: summarize(results, models, None), "country_iso_code must be"),  # type: ignore[arg-type]
        (lambda: summarize(results, models, 5), "country_iso_code must be"),  # type: ignore[arg-type]
        (lambda: summarize(results, models, "XYZ"), "'XYZ' is not a country"),
        (lambda: summarize(results, models, ""), "'' is not a country"),
        (lambda: versus_largest(None, models), "a list of results .*, got NoneType"),  # type: ignore[arg-type]
    ]
    for call, message in wrong:
        with pytest.raises(RouterLLMError, match=message):
            call()


@pytest.mark.parametrize("where", ["request_log", "log.path", "carbon.output_dir", "router.path"])
def test_a_path_holding_a_nul_character_is_one_clear_error(tmp_path: Path, where: str) -> None:
    """A NUL (a YAML "\\0" escape, a C string pasted into code) was a bare ValueError,
    "embedded null byte", from deep inside SQLite's or the filesystem's calls."""
    bad = str(tmp_path / "a\x00b")
    if where == "request_log":
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
        with pytest.raises(RequestLogError, match="must be a file path"):
            RouterLLM(config, request_log=bad)
        return
    section, key = where.split(".")
    data = tiny_config_dict(tmp_path)
    data[section] = {**data[section], key: bad}
    with pytest.raises(ConfigError, match=f"{section}.{key}.*NUL"):
        load_config(write_config(tmp_path, data))


@pytest.mark.parametrize(
    "name", ["\ud800.sqlite", "caf\udce9.sqlite"], ids=["json-escape", "latin-1"]
)
def test_a_log_path_that_is_not_utf8_text_is_one_clear_error(
    tiny_config: AppConfig, tmp_path: Path, name: str
) -> None:
    """A lone surrogate (a JSON "\\ud800" escape; a Latin-1 file name read as UTF-8 with
    Python's surrogate escapes) in ``request_log``: SQLite takes UTF-8 names only, and
    it was a bare UnicodeEncodeError from deep inside ``sqlite3.connect``."""
    from routerllm.carbon.request_log import RequestLog

    bad = str(tmp_path / name)
    with pytest.raises(RequestLogError, match="is not valid UTF-8 text .*give it a UTF-8 name"):
        RouterLLM(tiny_config, request_log=bad)
    with pytest.raises(RequestLogError, match="is not valid UTF-8 text"):
        RequestLog(tmp_path / "log.sqlite", tmp_path / name)  # its emissions CSV's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    with RouterLLM(tiny_config) as system:  # nothing left half-open
        assert system.route("hi").model == "tiny-light"
