"""The request cache: a real RouterLLM (tiny GGUF models, real CodeCarbon, real SQLite
log) answering a repeated request without running a model."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.cache import RequestCache, cache_key
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import ConfigError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config


def cached_config(tmp_path: Path, **overrides: object) -> AppConfig:
    data = tiny_config_dict(tmp_path, cache={"enabled": True}, **overrides)
    return load_config(write_config(tmp_path, data))


def test_a_repeated_request_is_answered_from_the_cache_and_logged(tmp_path: Path) -> None:
    with RouterLLM(cached_config(tmp_path)) as system:
        first = system.generate("What is a list?", tag="a")
        again = system.generate("What is a list?", tag="b")
        assert (again.text, again.model) == (first.text, first.model)
        assert again.completion_tokens == first.completion_tokens
        assert again.cached_from == first.request_id != again.request_id
        assert again.reason.endswith(f"answered from the request cache (request {first.request_id})")  # fmt: skip
        assert again.components["llm_inference"].energy_kwh == 0.0
        assert again.components["llm_inference"].method == "cache"
        assert again.energy_kwh == again.components["router_inference"].energy_kwh
        assert again.to_dict()["cached_from"] == first.request_id and again.predicted is None
        logged = {r.tag: r for r in system.log.records()}
        assert logged["b"].components["model_loading"].method == "cache"
        # the predictor does not learn from answers that cost nothing
        assert all(r.tag == "a" for r in system.predictor._seen[first.model])


def test_only_answers_fixed_by_the_request_are_cached(tmp_path: Path) -> None:
    config = cached_config(tmp_path, generation={"max_new_tokens": 8, "temperature": 0.7, "seed": None})  # fmt: skip

    def key_of(request: GenerationRequest, model: str = "tiny-light") -> str | None:
        return cache_key(request, model, config.generation, config.cascade)

    request = GenerationRequest("What is a list?")
    assert key_of(request) is None  # sampled, no seed
    assert key_of(GenerationRequest("What is a list?", temperature=0.0))
    config.generation.seed = 3
    key = key_of(request)
    assert key is not None
    assert key_of(GenerationRequest("What is a list?", max_new_tokens=4)) != key
    assert key_of(request, "tiny-medium") != key
    assert key_of(GenerationRequest("What is a list?", system="Be brief.")) != key
    assert key_of(GenerationRequest("What is a list?", top_k=1)) != key
    assert key_of(GenerationRequest("What is a list?", min_p=0.1)) != key
    config.generation.top_k = 1
    assert key_of(request) != key
    config.generation.top_k = None
    assert key_of(GenerationRequest("What is a list?", prompt_state=True)) is None
    config.cascade.enabled = True
    assert key_of(request) != key
    (tmp_path / "x").mkdir()
    with RouterLLM(cached_config(tmp_path / "x", generation={"max_new_tokens": 8, "temperature": 0.7, "seed": None})) as system:  # fmt: skip
        system.generate("hello")
        again = system.generate("hello")
        assert not again.cached_from and again.components["llm_inference"].method != "cache"
        assert len(system.cache or []) == 0


def test_a_sampled_request_with_its_own_seed_is_cached_under_that_seed(tmp_path: Path) -> None:
    """The request's seed fixes its answer as the config's does (resolve_sampling takes
    it over generation.seed): sampled with one, it is cached; another seed is not it."""
    config = cached_config(tmp_path, generation={"max_new_tokens": 8, "temperature": 0.7, "seed": None})  # fmt: skip
    with RouterLLM(config) as system:
        first = system.generate(GenerationRequest("hello", seed=7))
        again = system.generate(GenerationRequest("hello", seed=7))
        other = system.generate(GenerationRequest("hello", seed=8))
        assert again.cached_from == first.request_id
        assert not other.cached_from and other.components["llm_inference"].method != "cache"


def test_the_cache_keeps_its_newest_entries_for_their_time() -> None:
    now = [0.0]
    cache = RequestCache(max_entries=2, ttl_s=10.0, clock=lambda: now[0])
    cache.put("a", "A")  # type: ignore[arg-type]
    cache.put("b", "B")  # type: ignore[arg-type]
    assert cache.get("a") == "A"  # now the most recently used
    cache.put("c", "C")  # type: ignore[arg-type]
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, "A", "C")
    now[0] = 10.5
    assert cache.get("a") is None and len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_an_answer_is_served_for_its_whole_ttl_as_the_report_replays_the_cache() -> None:
    """``ttl_s`` seconds after it was stored an answer is still served, a moment later it
    is not: the boundary the report's replay of the cache (``CacheReplay``, which
    counts a repeat within ``ttl_s`` as a hit) assumes, so that the two agree."""
    from routerllm.carbon.log_tallies import CacheReplay

    now = [100.0]
    cache = RequestCache(max_entries=2, ttl_s=10.0, clock=lambda: now[0])
    cache.put("a", "A")  # type: ignore[arg-type]
    now[0] = 110.0
    assert cache.get("a") == "A"
    now[0] = 110.001
    assert cache.get("a") is None
    replay = CacheReplay(max_entries=2, ttl_s=10.0)
    for second in (0, 10, 21):  # a hit at exactly ttl_s; past it, a miss
        replay.add(f"2026-12-05T00:00:{second:02d}+00:00", "sha", "tiny-light", 1e-4, [])
    assert replay.hits == 1


def test_cached_answers_cost_nothing_to_budgets_and_budgeted_answers_are_not_cached(
    tmp_path: Path,
) -> None:
    from .test_budgets import NOW, record, seeded_log

    config = cached_config(tmp_path, budgets={"co2_kg": {"per_request": 1e-4}})
    old = NOW.replace(year=2025)
    seeded_log(Path(config.log.path), [record("tiny-heavy", old, energy_kwh=1e-3) for _ in range(3)]).close()  # fmt: skip
    code = (
        "Implement a thread-safe LRU cache class in Python with O(1) get and put, type "
        "hints, and unit tests; explain the design trade-offs and complexity"
    )
    with RouterLLM(config) as system:
        first = system.generate(code)
        assert first.model != "tiny-heavy"  # the budget stepped it down: not cached
        assert not system.generate(code).cached_from
        plain = system.generate("hi")
        config.budgets.co2_kg.per_request = 1e-12  # every model is now over the budget
        assert system.generate("hi").cached_from == plain.request_id  # costs nothing


def test_a_cached_answer_whose_routing_breaks_a_budget_says_so(tmp_path: Path) -> None:
    """Its routing is logged and counted by the windows and the report's violations: a
    cached answer that took a window past its limit, or spent over the per-request
    limit, said nothing of it (an answer generated says ``over budget``)."""
    from routerllm.carbon.report import logged_report

    config = cached_config(tmp_path, budgets={"co2_kg": {"per_request": 1e-4}})
    with RouterLLM(config) as system:
        first = system.generate("hi")
        config.budgets.co2_kg.hourly = first.co2_kg  # the window is at its limit, not over
        config.budgets.co2_kg.per_request = 1e-12
        again = system.generate("hi")
    assert again.cached_from == first.request_id and again.co2_kg > 1e-12
    over = again.reason.split("; over budget: ")[1]
    assert (
        "over the per-request budget of 0.001 \N{MICRO SIGN}g CO2 (budgets.co2_kg.per_request)"
        in over
    )
    assert "took the hourly CO2 budget past" in over
    assert logged_report(config).budgets["violations"]["co2_kg"]["hourly"] == 1  # type: ignore[index]


def test_an_answer_kept_after_a_failed_escalation_is_not_cached(tmp_path: Path) -> None:
    from .conftest import tiny_model
    from .test_cascade import REQUEST

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # there, but not a model llama.cpp can load
    models = [tiny_model("tiny-light", "light", 0.1), {**tiny_model("tiny-medium", "medium", 0.5), "gguf": {"path": str(broken)}}]  # fmt: skip
    with RouterLLM(cached_config(tmp_path, models=models, cascade={"enabled": True})) as system:
        first = system.generate(REQUEST, model="tiny-light")
        assert "which failed" in first.reason and first.model == "tiny-light"
        assert not system.generate(REQUEST, model="tiny-light").cached_from


def test_an_answer_that_went_over_a_budget_is_not_cached(tmp_path: Path) -> None:
    # admitted without a prediction (no energy figures, no history: nothing to refuse it
    # on), it spent more than the smallest per-request limit, a nanogram of CO2: an answer
    # the budgets object to is not one a later request should get free (it was cached)
    from .conftest import tiny_model

    models = [tiny_model("tiny-light", "light", 0.1, energy_per_token_kwh=None)]
    config = cached_config(tmp_path, models=models, budgets={"co2_kg": {"per_request": 1e-12}})
    with RouterLLM(config) as system:
        first = system.generate("hi")
        assert first.predicted is None and "over the per-request budget" in first.reason
        again = system.generate("hi")
    assert not again.cached_from and "over the per-request budget" in again.reason


def test_an_answer_its_streaming_caller_stopped_half_way_is_not_cached(tmp_path: Path) -> None:
    # the caller's on_text raised at the third piece: the answer so far is logged as
    # cancelled, and is not the answer a later request should get (it was cached, and
    # the same request asked again got the three pieces)
    class Stopped(Exception):
        pass

    pieces: list[str] = []

    def stop_at_the_third(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            raise Stopped

    asked = GenerationRequest("Hi", max_new_tokens=48, temperature=0.0)
    with RouterLLM(cached_config(tmp_path)) as system:
        with pytest.raises(Stopped):
            system.generate(dataclasses.replace(asked, on_text=stop_at_the_third), model="tiny-medium")  # fmt: skip
        *_, stopped = system.log.records()
        assert stopped.finish_reason == "cancelled" and len(pieces) == 3
        again = system.generate(asked, model="tiny-medium")
    assert not again.cached_from and again.finish_reason != "cancelled"
    assert again.completion_tokens > 3


#: A stub with examples: asked in the model's code style, checked, escalated.
STUB = 'def add(a, b):\n    """Return the sum.\n    >>> add(1, 2)\n    3\n    """\n'


def test_a_cached_answer_says_how_it_was_made(tmp_path: Path) -> None:
    # Its reason said only the new request's routing ("-> medium") beside the heavy
    # model's answer: the stub's code style and the cascade's escalation were lost.
    # 8 tokens, not the code style's 512 the tiny models fill: the answer's length is not
    # what is checked, and the caller's setting is part of both requests' key
    stub = GenerationRequest(STUB, max_new_tokens=8)
    with RouterLLM(cached_config(tmp_path, cascade={"enabled": True})) as system:
        first = system.generate(stub)
        again = system.generate(stub)
    assert "code style" in first.reason and "escalated to tiny-heavy" in first.reason
    assert again.model == first.model == "tiny-heavy"
    assert again.reason == f"{first.reason}; answered from the request cache (request {first.request_id})"  # fmt: skip


def test_a_request_asked_again_while_it_is_answered_waits_for_that_answer(
    tmp_path: Path,
) -> None:
    # Both threads found the cache empty: the second waited for the model, then ran it
    # again for the same answer.
    with RouterLLM(cached_config(tmp_path)) as system:
        attempt, calls = system.calls.attempt, []

        def slow_attempt(*args: Any) -> Any:
            calls.append(args[0])
            time.sleep(0.5)  # the other thread looks in the cache meanwhile
            return attempt(*args)

        system.calls.attempt = slow_attempt  # type: ignore[method-assign]
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(system.generate("hi"))) for _ in range(2)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 1 and sorted(bool(r.cached_from) for r in results) == [False, True]
        assert system.cache is not None and not system.cache._filling  # nothing left behind
        system.calls.attempt = attempt  # type: ignore[method-assign]
        assert system.generate("hi").cached_from


def test_the_demo_measures_real_generations_with_the_cache_on(tmp_path: Path) -> None:
    from routerllm.demo import run_demo

    from .test_budgets import CODE

    with RouterLLM(cached_config(tmp_path)) as system:
        run = run_demo(system, (CODE,), max_new_tokens=4)
        assert run.routed[0].model == run.baseline[0].model == "tiny-heavy"
        assert not run.baseline[0].cached_from  # generated again, not taken from the cache
        assert system.cache is not None and len(system.cache) == 0


def test_the_server_answers_a_repeated_chat_from_the_cache(tmp_path: Path) -> None:
    from .test_server import running

    with RouterLLM(cached_config(tmp_path)) as system, running(system) as url:
        body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
        answers = []
        for _ in range(2):
            req = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(req, timeout=30) as reply:
                answers.append(json.loads(reply.read()))
    first, again = (a["routerllm"] for a in answers)
    assert again["cached_from"] == first["request_id"] and first["cached_from"] == ""
    assert answers[0]["choices"] == answers[1]["choices"]


def test_cache_settings_are_checked(tmp_path: Path) -> None:
    for cache in ({"max_entries": 0}, {"ttl_s": 0}, {"enabled": "sometimes"}, {"size": 3}):
        with pytest.raises(ConfigError, match="cache"):
            load_config(write_config(tmp_path, tiny_config_dict(tmp_path, cache=cache)))


def test_an_answer_made_while_a_larger_model_was_down_is_not_served_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The medium model's failed answer, which the cascade could not escalate while the
    # heavy model's file was missing, was served from the cache after the file came back.
    import shutil

    from routerllm import manager as manager_module

    from .conftest import tiny_gguf_path
    from .test_cascade import REQUEST

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    config = cached_config(tmp_path, cascade={"enabled": True})
    config.models[2].gguf.path = str(tmp_path / "heavy.gguf")  # type: ignore[union-attr]
    with RouterLLM(config) as system:
        first = system.generate(REQUEST, model="tiny-medium")
        assert first.model == "tiny-medium"  # no larger model to escalate to
        assert system.generate(REQUEST, model="tiny-medium").cached_from == first.request_id
        shutil.copy(tiny_gguf_path(), tmp_path / "heavy.gguf")
        clock[0] += manager_module.RECHECK_S
        again = system.generate(REQUEST, model="tiny-medium")
        assert not again.cached_from and again.model == "tiny-heavy"
        assert "escalated to tiny-heavy" in again.reason
        assert system.generate(REQUEST, model="tiny-medium").cached_from == again.request_id


@pytest.mark.parametrize("cascade", [False, True])
def test_a_model_the_caller_names_is_not_answered_by_a_larger_one_from_the_cache(
    tmp_path: Path, cascade: bool
) -> None:
    # A prompt too long for tiny-light's context, routed there, went to tiny-heavy and
    # was cached under tiny-light: the same prompt naming tiny-light then got
    # tiny-heavy's answer from the cache instead of being refused, as it is uncached.
    # With the cascade on, named and routed requests hold the same larger models in
    # their keys: only ``named`` keeps them apart.
    from routerllm.exceptions import ContextLengthError

    from .conftest import tiny_model

    models = [
        tiny_model("tiny-light", "light", 0.1, context_length=48),
        tiny_model("tiny-heavy", "heavy", 1.5),
    ]
    config = cached_config(tmp_path, models=models, router={"name": "smallest"}, cascade={"enabled": cascade})  # fmt: skip
    prompt = "word " * 60
    with RouterLLM(config) as system:
        routed = system.generate(prompt)
        assert routed.model == "tiny-heavy" and "too long for tiny-light" in routed.reason
        with pytest.raises(ContextLengthError, match="tiny-light"):
            system.generate(prompt, model="tiny-light")
        # routed again, it is served from the cache; named, the larger model's answer is
        # that model's to give
        assert system.generate(prompt).cached_from == routed.request_id
        named = system.generate(prompt, model="tiny-heavy")
        assert named.model == "tiny-heavy" and not named.cached_from


def test_an_answer_cut_short_is_cached_for_its_own_limit_only(tmp_path: Path) -> None:
    """An answer that stopped at its token limit (finish reason ``length``) is as fixed
    by its request as any: served again for the same limit, made anew for another."""
    with RouterLLM(cached_config(tmp_path)) as system:
        first = system.generate(GenerationRequest("Write a long story.", max_new_tokens=3))
        assert first.finish_reason == "length" and first.completion_tokens == 3
        again = system.generate(GenerationRequest("Write a long story.", max_new_tokens=3))
        assert again.cached_from == first.request_id and again.finish_reason == "length"
        longer = system.generate(GenerationRequest("Write a long story.", max_new_tokens=6))
        assert not longer.cached_from and longer.completion_tokens > 3


def test_an_answer_sent_past_a_short_context_while_a_model_was_down_is_not_served_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A prompt too long for tiny-light's context went to tiny-heavy while tiny-medium's
    # file was missing; once it was back, the cache still gave tiny-heavy's answer where
    # the request, made anew, is tiny-medium's (the cascade off: no larger model in the key).
    import shutil

    from routerllm import manager as manager_module

    from .conftest import tiny_gguf_path, tiny_model

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    models = [
        tiny_model("tiny-light", "light", 0.1, context_length=48),
        tiny_model("tiny-medium", "medium", 0.5, gguf={"path": str(tmp_path / "medium.gguf")}),
        tiny_model("tiny-heavy", "heavy", 1.5),
    ]
    config = cached_config(tmp_path, models=models, router={"name": "smallest"})
    prompt = "word " * 60
    with RouterLLM(config) as system:
        first = system.generate(prompt)
        assert first.model == "tiny-heavy" and "too long for tiny-light" in first.reason
        assert system.generate(prompt).cached_from == first.request_id
        shutil.copy(tiny_gguf_path(), tmp_path / "medium.gguf")
        clock[0] += manager_module.RECHECK_S
        again = system.generate(prompt)
        assert not again.cached_from and again.model == "tiny-medium"
        assert system.generate(prompt).cached_from == again.request_id


def test_a_model_file_replaced_under_a_running_system_is_answered_by_its_new_weights(
    tmp_path: Path,
) -> None:
    # The model's GGUF replaced at its path (new weights, renamed over it, as a download
    # or a copy finished elsewhere is): the cache answered with the old file's answer, and
    # the loaded model went on generating with the old weights, until a restart.
    import os
    import shutil

    from .conftest import gguf_with_other_weights, tiny_gguf_path

    config = cached_config(tmp_path)
    path = tmp_path / "light.gguf"
    shutil.copyfile(tiny_gguf_path(), path)
    config.models[0].gguf.path = str(path)  # type: ignore[union-attr]
    with RouterLLM(config) as system:
        first = system.generate("What is a list?", model="tiny-light")
        assert system.generate("What is a list?", model="tiny-light").cached_from == first.request_id  # fmt: skip
        os.replace(gguf_with_other_weights(tmp_path / "new.gguf"), path)
        again = system.generate("What is a list?", model="tiny-light")
        assert not again.cached_from and again.text != first.text
        # what a process started on the new file answers
        (tmp_path / "fresh").mkdir()
        with RouterLLM(cached_config(tmp_path / "fresh", models=config.model_dump()["models"])) as fresh:  # fmt: skip
            assert fresh.generate("What is a list?", model="tiny-light").text == again.text
        assert system.generate("What is a list?", model="tiny-light").cached_from == again.request_id  # fmt: skip


def test_an_answer_stored_again_is_the_most_recently_used() -> None:
    cache = RequestCache(max_entries=2, ttl_s=10.0, clock=lambda: 0.0)
    for key in ("a", "b", "a", "c"):  # a stored again, after b: b is the oldest
        cache.put(key, key.upper())  # type: ignore[arg-type]
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, "A", "C")


def test_the_replayed_cache_drops_its_least_recently_used_prompt_as_the_cache_does() -> None:
    """a and b stored, a asked again (a hit: now the most recently used), c stored: b is
    dropped, a is kept. Then a is a hit, b a miss: 2 hits in both."""
    from routerllm.carbon.log_tallies import CacheReplay

    cache = RequestCache(max_entries=2, ttl_s=60.0, clock=lambda: 0.0)
    replay = CacheReplay(max_entries=2, ttl_s=60.0)
    hits: list[int] = []
    for second, sha in enumerate("abacab"):
        if cache.get(sha) is None:
            cache.put(sha, sha)  # type: ignore[arg-type]
        else:
            hits.append(second)
        replay.add(f"2026-12-05T00:00:{second:02d}+00:00", sha, "tiny-light", 1e-4, [])
    assert hits == [2, 4] and replay.hits == 2


def test_the_callers_callbacks_are_no_part_of_the_key(tmp_path: Path) -> None:
    """``on_text`` and ``on_answer`` are each call's own (GenerationRequest: no part of its
    identity): the same request with others, or none, has the same key."""
    config = cached_config(tmp_path)

    def key_of(request: GenerationRequest) -> str | None:
        return cache_key(request, "tiny-light", config.generation, config.cascade)

    plain = key_of(GenerationRequest("What is a list?"))
    assert plain is not None
    pieces: list[str] = []
    assert key_of(GenerationRequest("What is a list?", on_text=pieces.append)) == plain
    assert key_of(GenerationRequest("What is a list?", on_answer=lambda m, r: None)) == plain


def test_an_answer_given_again_is_the_new_requests_own() -> None:
    """Its latency its routing's (0.25 s), its router, confidence and reason the new
    decision's; not the first request's escalation, prediction or prompt state."""
    from routerllm.cache import answered_again
    from routerllm.carbon.meter import CACHED, Measurement
    from routerllm.routed_result import RoutedResult
    from routerllm.routers.base import RoutingDecision

    spent = Measurement("llm_inference", 2.0, 3e-6, 1e-6, "codecarbon:measured")
    hit = RoutedResult(
        text="A list.", model="tiny-heavy", prompt_tokens=4, completion_tokens=3, latency_s=2.5,
        finish_reason="stop", prompt_state=(0.5,), confidence=0.4, router="rules",
        reason="; escalated to tiny-heavy", cost_usd=1e-3, components={"llm_inference": spent},
        request_id="first", escalated={"llm_inference": spent},
    )  # fmt: skip
    routing = Measurement("router_inference", 0.25, 1e-8, 5e-9, "codecarbon:measured")
    decision = RoutingDecision("tiny-medium", 0.9, "-> medium", "classifier")
    again = answered_again(hit, decision, routing, 2e-6)
    assert (again.text, again.model, again.completion_tokens) == ("A list.", "tiny-heavy", 3)
    assert (again.latency_s, again.confidence, again.router, again.cost_usd) == (0.25, 0.9, "classifier", 2e-6)  # fmt: skip
    assert again.reason == "-> medium; escalated to tiny-heavy; answered from the request cache (request first)"  # fmt: skip
    assert again.components == {
        "router_inference": routing,
        "model_loading": Measurement("model_loading", 0.0, 0.0, 0.0, CACHED),
        "llm_inference": Measurement("llm_inference", 0.0, 0.0, 0.0, CACHED),
    }
    assert (again.escalated, again.prompt_state, again.predicted) == ({}, None, None)
    assert again.cached_from == "first" and again.request_id not in ("", "first")


def test_an_answer_made_by_weights_loaded_after_its_key_is_not_cached_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key holds the weights found as the request came (model.gguf -> v1.gguf); the
    # link was switched to v2.gguf as it waited its turn, and v2's answer was cached under
    # v1's key: once the link was switched back (v1 loaded again), a request got v2's
    # answer from the cache.
    import os
    import shutil

    from .conftest import gguf_with_other_weights, tiny_gguf_path

    config = cached_config(tmp_path, carbon={"enabled": False})
    v1, v2 = tmp_path / "v1.gguf", gguf_with_other_weights(tmp_path / "v2.gguf")
    shutil.copyfile(tiny_gguf_path(), v1)
    link = tmp_path / "model.gguf"
    link.symlink_to(v1)
    config.models[0].gguf.path = str(link)  # type: ignore[union-attr]

    def point_to(target: Path) -> None:
        staged = tmp_path / "staged.gguf"
        staged.symlink_to(target)
        os.replace(staged, link)  # as ln -sfn does

    with RouterLLM(config) as system:
        old = system.generate("What is a list?", model="tiny-light")
        system.cache.clear()  # type: ignore[union-attr]
        admit = system._admit

        def switched_as_it_waits(*args: Any) -> Any:
            point_to(v2)
            monkeypatch.setattr(system, "_admit", admit)
            return admit(*args)

        monkeypatch.setattr(system, "_admit", switched_as_it_waits)
        new = system.generate("What is a list?", model="tiny-light")
        assert new.text != old.text  # v2 loaded and answered
        point_to(v1)
        again = system.generate("What is a list?", model="tiny-light")
        assert again.text == old.text and again.cached_from != new.request_id


def test_a_cached_answer_of_a_model_priced_by_energy_pays_for_its_routing(tmp_path: Path) -> None:
    # a local model's answer is priced by the energy it spent: a cached one spent its
    # routing's, and costs that (it cost 0 where only a model's run was priced)
    config = cached_config(tmp_path)
    with RouterLLM(config) as system:
        first = system.generate("hi")
        again = system.generate("hi")
    assert again.cached_from == first.request_id and again.energy_kwh > 0
    price = config.carbon.electricity_price_usd_per_kwh
    assert again.cost_usd == pytest.approx(again.energy_kwh * price, rel=1e-9)


def test_an_escalated_answer_is_not_served_once_the_larger_models_file_is_replaced(
    tmp_path: Path,
) -> None:
    # the key holds the weights of the models the cascade may go to: tiny-heavy's answer,
    # its file since replaced, is one its new weights would not give
    import os
    import shutil

    from .conftest import gguf_with_other_weights, tiny_gguf_path

    stub = GenerationRequest(STUB, max_new_tokens=8)  # not the code style's 512
    config = cached_config(tmp_path, cascade={"enabled": True})
    path = tmp_path / "heavy.gguf"
    shutil.copyfile(tiny_gguf_path(), path)
    config.models[2].gguf.path = str(path)  # type: ignore[union-attr]
    with RouterLLM(config) as system:
        first = system.generate(stub, model="tiny-medium")
        assert first.model == "tiny-heavy", first.reason
        assert system.generate(stub, model="tiny-medium").cached_from == first.request_id
        os.replace(gguf_with_other_weights(tmp_path / "new.gguf"), path)
        again = system.generate(stub, model="tiny-medium")
    assert not again.cached_from and again.model == "tiny-heavy"
