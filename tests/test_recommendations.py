"""The carbon report's recommendations: each rule fires on a real request log with the
figures that triggered it (computed by hand here), and stays silent below its threshold."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon import recommend, recommend_base, recommend_energy
from routerllm.carbon.log_rows import RequestRecord, prompt_hash
from routerllm.carbon.meter import CACHED, Measurement
from routerllm.carbon.recommend import Recommendation
from routerllm.carbon.report import logged_report
from routerllm.carbon.request_log import RequestLog
from routerllm.cli import main
from routerllm.config import AppConfig, load_config

from .conftest import corrupt_gguf, tiny_config_dict, tiny_model, write_config

START = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
MEASURED = "codecarbon:measured"


def rec(
    model: str,
    minute: float,
    prompt: str = "hello",
    router: str = "rules",
    llm_kwh: float = 1e-4,
    routing_kwh: float = 0.0,
    loading_kwh: float = 0.0,
    method: str = MEASURED,
    finish_reason: str = "stop",
    completion_tokens: int = 10,
    tag: str = "",
    when: datetime = START,
    prompt_tokens: int = 5,
) -> RequestRecord:
    """A logged request ``minute`` minutes after ``when``; CO2 is 0.5 kg per kWh.
    A load is a ``model_loading`` that took time (as the meter logs it only then)."""

    def part(component: str, kwh: float, duration_s: float) -> Measurement:
        return Measurement(component, duration_s, kwh, kwh * 0.5, method)

    return RequestRecord(
        id=uuid.uuid4().hex,
        timestamp=(when + timedelta(minutes=minute)).isoformat(),
        prompt_sha256=prompt_hash(prompt),
        prompt_chars=len(prompt),
        model=model,
        router=router,
        confidence=1.0,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=1.0,
        cost_usd=0.0,
        components={
            "router_inference": part("router_inference", routing_kwh, 0.01),
            "model_loading": part("model_loading", loading_kwh, 1.0 if loading_kwh else 0.0),
            "llm_inference": part("llm_inference", llm_kwh, 1.0),
        },
        tag=tag,
        finish_reason=finish_reason,
    )


def config_in(path: Path, **overrides: Any) -> AppConfig:
    path.mkdir(parents=True, exist_ok=True)
    return load_config(write_config(path, tiny_config_dict(path, **overrides)))


def logged(config: AppConfig, records: list[RequestRecord]) -> list[Recommendation]:
    """The recommendations of a report on a log that holds ``records``."""
    with RequestLog(config.log.path) as log:
        for r in records:
            log.append(r)
    return logged_report(config).recommendations


def of_kind(recs: list[Recommendation], kind: str) -> list[Recommendation]:
    return [r for r in recs if r.kind == kind]


def test_a_log_that_calls_for_nothing_gives_no_recommendation(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    records = [rec("tiny-light", i, prompt=f"question {i}") for i in range(6)]
    assert logged(config, records) == []


def test_both_halves_of_the_rules_share_one_set_of_thresholds_and_import_in_any_order() -> None:
    thresholds = ["REPEATED_SHARE", "LOADING_SHARE", "CUT_SHARE", "CUT_MIN_REQUESTS"]
    thresholds += ["ROUTER_SHARE", "LARGEST_SHARE", "LARGEST_MIN_REQUESTS", "ESTIMATED_SHARE"]
    # still importable from recommend, as the README has it
    for name in [*thresholds, "Recommendation", "pct"]:
        assert getattr(recommend, name) is getattr(recommend_base, name)
    assert recommend_energy.ESTIMATED_SHARE is recommend_base.ESTIMATED_SHARE
    assert recommend_energy.Recommendation is recommend.Recommendation
    # each half imported first, in a fresh interpreter: no cycle between them
    for first, then in [("recommend", "recommend_energy"), ("recommend_energy", "recommend")]:
        code = f"import routerllm.carbon.{first}, routerllm.carbon.{then}"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_repeated_prompts_are_replayed_through_the_cache_the_config_describes(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path / "off")
    prompts = ["a", "b", "a", "c", "a"]
    records = [rec("tiny-light", i, p, routing_kwh=1e-6) for i, p in enumerate(prompts)]
    records.append(rec("tiny-medium", 5, "b", routing_kwh=1e-6))  # another model: no repeat
    (r,) = of_kind(logged(config, records), "repeated_prompts")
    # requests 3 and 5 repeat "a"; a cache saves their generation, not their routing:
    # 2 x 1e-4 kWh of 6 x 1.01e-4 kWh
    assert r.evidence["repeated_requests"] == 2 and r.evidence["requests"] == 6
    assert r.evidence["share"] == pytest.approx(2 / 6)
    assert r.evidence["energy_kwh"] == pytest.approx(2e-4)
    assert r.evidence["energy_share"] == pytest.approx(2e-4 / 6.06e-4)
    assert r.config_key == "cache.enabled"
    assert "2 of 6 requests (33.3%) and 33.0% of the energy" in r.message
    assert "up to that many" in r.message

    # the cache on: nothing to recommend; an entry expired (ttl_s) or evicted
    # (max_entries) would not have answered the repeat
    on = config_in(tmp_path / "on", cache={"enabled": True})
    assert not of_kind(logged(on, records), "repeated_prompts")
    ttl = config_in(tmp_path / "ttl", cache={"ttl_s": 60})
    assert not of_kind(logged(ttl, [rec("tiny-light", 0, "a"), rec("tiny-light", 2, "a")]), "repeated_prompts")  # fmt: skip
    lru = config_in(tmp_path / "lru", cache={"max_entries": 1})
    abc = [rec("tiny-light", i, p) for i, p in enumerate(["a", "b", "a"])]
    assert not of_kind(logged(lru, abc), "repeated_prompts")
    # 1 repeat in 21 requests is 4.8 %, under the 5 % threshold
    few = config_in(tmp_path / "few")
    records = [rec("tiny-light", i, f"q{i}") for i in range(20)] + [rec("tiny-light", 20, "q0")]
    assert recommend.REPEATED_SHARE == 0.05
    assert not of_kind(logged(few, records), "repeated_prompts")
    # the demo asks the same prompts on every run, never from the cache: not repeats
    demo = config_in(tmp_path / "demo")
    runs = [rec("tiny-light", i, f"q{i % 3}", tag="demo") for i in range(6)]
    assert not of_kind(logged(demo, runs), "repeated_prompts")


def test_repeated_prompts_sampled_without_a_seed_name_the_seed_key_too(tmp_path: Path) -> None:
    """At a temperature over 0 without generation.seed, the cache keeps no answer sampled
    by the config's settings: the message said so, yet config_key named cache.enabled
    alone, which by itself caches none of those repeats. It names both keys now."""
    records = [rec("tiny-light", i, p) for i, p in enumerate(["a", "b", "a", "b"])]
    unseeded = config_in(tmp_path / "unseeded", generation={"seed": None, "temperature": 0.3})
    (r,) = of_kind(logged(unseeded, records), "repeated_prompts")
    assert r.config_key == "cache.enabled, generation.seed"
    assert "generation.seed is unset and generation.temperature is 0.3: set generation.seed too" in r.message  # fmt: skip
    # a seed (the default 0) or temperature 0: the cache alone answers them
    seeded = config_in(tmp_path / "seeded", generation={"temperature": 0.3})
    (r,) = of_kind(logged(seeded, records), "repeated_prompts")
    assert r.config_key == "cache.enabled" and "generation.seed" not in r.message
    cold = config_in(tmp_path / "cold", generation={"seed": None, "temperature": 0.0})
    (r,) = of_kind(logged(cold, records), "repeated_prompts")
    assert r.config_key == "cache.enabled" and "generation.seed" not in r.message


def test_repeats_asked_in_another_process_are_not_promised_to_the_cache(tmp_path: Path) -> None:
    """A cache lives in one process: a prompt asked again by a new process (each
    `routerllm route`, a script run twice) finds it empty. Two systems on one log asked
    "a", "b" each: the report promised 2 of 4 requests answered from memory with
    cache.enabled, and followed, the cache answered none. A repeat counts where its model
    was not loaded again since the earlier answer (a new process loads it anew)."""
    from routerllm.system import RouterLLM

    def ask(config: AppConfig, runs: list[list[str]]) -> list[RequestRecord]:
        for prompts in runs:  # one system a run, as one process
            with RouterLLM(config) as system:
                for p in prompts:
                    system.generate(p, model="tiny-light")
        with RequestLog(config.log.path) as log:
            return list(log.records())

    two = [["a", "b"], ["a", "b"]]
    off = config_in(tmp_path / "two-off", generation={"max_new_tokens": 2, "temperature": 0.0})
    ask(off, two)
    recs = logged_report(off).recommendations
    assert not of_kind(recs, "repeated_prompts")
    # followed anyway: no answer comes from the cache
    on = config_in(tmp_path / "two-on", generation={"max_new_tokens": 2, "temperature": 0.0}, cache={"enabled": True})  # fmt: skip
    assert not [r for r in ask(on, two) if r.components["llm_inference"].method == CACHED]

    # in one process the same repeats are answered from memory, as promised
    one = [["a", "b", "a", "b"]]
    off = config_in(tmp_path / "one-off", generation={"max_new_tokens": 2, "temperature": 0.0})
    ask(off, one)
    (r,) = of_kind(logged_report(off).recommendations, "repeated_prompts")
    assert r.evidence["repeated_requests"] == 2 and r.evidence["after_reload"] == 0
    on = config_in(tmp_path / "one-on", generation={"max_new_tokens": 2, "temperature": 0.0}, cache={"enabled": True})  # fmt: skip
    assert len([r for r in ask(on, one) if r.components["llm_inference"].method == CACHED]) == 2

    # a repeat after its model was loaded again is said apart: a new process, or evicted
    config = config_in(tmp_path / "said")
    records = [rec("tiny-light", 0, "a", loading_kwh=1e-4), rec("tiny-light", 1, "b"), rec("tiny-light", 2, "a")]  # fmt: skip
    records += [rec("tiny-light", 3, "b", loading_kwh=1e-4), rec("tiny-light", 4, "a")]
    (r,) = of_kind(logged(config, records), "repeated_prompts")
    assert r.evidence["repeated_requests"] == 1 and r.evidence["after_reload"] == 2
    assert "2 more repeated one after their model was loaded again" in r.message


def test_a_failed_request_leaves_nothing_in_the_replayed_cache(tmp_path: Path) -> None:
    """A request no model answered (finish reason "error", its load only) would have
    found an earlier answer in the cache, but leaves none there: a prompt retried after
    it failed is no repeat a cache would have answered (until 2026-12-03 it was). Its
    load failed: no load, so no new process that would have found the cache empty."""

    def failed(minute: float) -> RequestRecord:
        r = rec("tiny-light", minute, "a", loading_kwh=1e-4, finish_reason="error")
        del r.components["llm_inference"]
        return dataclasses.replace(r, prompt_tokens=0, completion_tokens=0, load_error="out of memory")  # fmt: skip

    config = config_in(tmp_path)
    records = [failed(0), failed(1), rec("tiny-light", 2, "a"), failed(3)]
    (r,) = of_kind(logged(config, records), "repeated_prompts")
    # only the last failure would have been answered from the cache: its load not spent
    assert r.evidence["repeated_requests"] == 1 and r.evidence["requests"] == 4
    assert r.evidence["energy_kwh"] == pytest.approx(1e-4)


def test_loading_churn_names_the_memory_budget_or_the_new_processes(tmp_path: Path) -> None:
    # tiny-light loaded twice: loading 2e-4 of 5e-4 kWh (40 %); 0.1 GB fits in 1 GB
    config = config_in(tmp_path / "fits")
    records = [
        rec("tiny-light", 0, "a", loading_kwh=1e-4),
        rec("tiny-light", 1, "b"),
        rec("tiny-light", 2, "c", loading_kwh=1e-4),
    ]
    (r,) = of_kind(logged(config, records), "model_loading")
    assert r.evidence["share"] == pytest.approx(0.4)
    assert r.evidence["loads"] == 2 and r.evidence["reloads"] == 1
    assert r.config_key == "" and "new processes" in r.message
    assert "40.0% of the energy" in r.message

    # two models of 0.1 GB taking turns in a budget of 0.15 GB evict each other; each
    # with its KV cache (512 tokens x 2 layers x 4 KV heads x 8 f16 numbers: 65536 bytes)
    tight = config_in(tmp_path / "tight", manager={"memory_budget_gb": 0.15})
    turns = [rec(m, i, loading_kwh=1e-4) for i, m in enumerate(["tiny-light", "tiny-medium"] * 2)]
    (r,) = of_kind(logged(tight, turns), "model_loading")
    assert r.config_key == "manager.memory_budget_gb"
    assert r.evidence["memory_needed_gb"] == pytest.approx(0.2 + 2 * 65536 / 1e9)
    # rounded up: a budget of what it says holds both (until 2026-12-04 "0.200131",
    # rounded down, under which they went on evicting each other)
    assert "the models loaded need 0.201 GB together" in r.message
    assert "raise manager.memory_budget_gb to 0.201 " in r.message
    from routerllm.manager import LLMManager

    raised = config_in(tmp_path / "raised", manager={"memory_budget_gb": 0.201})
    manager = LLMManager(raised)
    manager.acquire("tiny-light")
    assert manager.acquire("tiny-medium")[1].evicted == []
    manager.close()

    # one load per model, however large its share, is no churn; nor is 20 % exactly
    once = config_in(tmp_path / "once")
    assert not of_kind(logged(once, [rec("tiny-light", 0, loading_kwh=1e-3)]), "model_loading")
    even = config_in(tmp_path / "even")
    records = [rec("tiny-light", i, loading_kwh=5e-5 if i < 2 else 0.0) for i in range(4)]
    assert not of_kind(logged(even, records), "model_loading")  # 1e-4 of 5e-4 kWh


def test_loading_churn_counts_no_load_of_a_model_a_cascade_escalated_to_warm(
    tmp_path: Path,
) -> None:
    """tiny-heavy loaded once; a later request escalated from tiny-light, which loaded,
    to tiny-heavy, still loaded: its row's load, all tiny-light's, was counted as a
    second load of tiny-heavy, and the report advised against a churn that was not."""
    config = config_in(tmp_path)
    first = rec("tiny-heavy", 0, "a", loading_kwh=1e-4)
    escalated = rec("tiny-heavy", 1, "b", loading_kwh=1e-4)
    escalated = dataclasses.replace(escalated, escalated={"model_loading": escalated.components["model_loading"]})  # fmt: skip
    assert not of_kind(logged(config, [first, escalated]), "model_loading")
    # where tiny-heavy did load again besides, it is a reload
    again = config_in(tmp_path / "again")
    both = dataclasses.replace(rec("tiny-heavy", 1, "b", loading_kwh=3e-4), escalated={"model_loading": escalated.components["model_loading"]})  # fmt: skip
    (r,) = of_kind(logged(again, [first, both]), "model_loading")
    assert r.evidence["loads"] == 2 and r.evidence["reloads"] == 1
    assert "(tiny-heavy 2x)" in r.message


def test_loading_churn_counts_a_4bit_model_as_the_manager_does_on_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two 4-bit HF models of 0.5B parameters (memory_gb 0.5 each) in a budget of 3 GB:
    on CPU the manager counts their float32 weights, 2 GB each, and they evict each
    other; the advice added up the config's 0.5 GB, said they fit, and blamed new
    processes."""
    from routerllm.backends import hf

    monkeypatch.setattr(hf, "_cuda_devices", lambda: 0)  # this machine has no CUDA
    models = [
        {"name": name, "backend": "hf", "tier": tier, "params_b": 0.5, "model_id": f"org/{name}",
         "load_in_4bit": True, "quantization": "nf4-4bit", "memory_gb": 0.5}
        for name, tier in (("hf-light", "light"), ("hf-heavy", "heavy"))
    ]  # fmt: skip
    config = config_in(tmp_path, models=models, manager={"memory_budget_gb": 3.0})
    turns = [rec(m, i, loading_kwh=1e-4) for i, m in enumerate(["hf-light", "hf-heavy"] * 2)]
    (r,) = of_kind(logged(config, turns), "model_loading")
    assert r.config_key == "manager.memory_budget_gb"
    assert r.evidence["memory_needed_gb"] == pytest.approx(4.0)
    assert "the models loaded need 4 GB together" in r.message
    assert "raise manager.memory_budget_gb to 4 " in r.message


def test_a_model_that_fails_to_load_is_named_not_counted_as_reloaded(
    tmp_path: Path,
    tiny_gguf: Path,
    monkeypatch: pytest.MonkeyPatch,
    uncounted_parts: tuple[list[str], str],
) -> None:
    """A truncated GGUF fails every load: each failed request was counted as a load, and
    the report told the user they had reloaded it 3 times ("keep one process answering"),
    never that it cannot load. A load that worked before the model refused the request
    (a prompt over its context) is still a load."""
    from routerllm import manager as manager_module
    from routerllm.exceptions import RouterLLMError
    from routerllm.system import RouterLLM

    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    names, sha = uncounted_parts
    data = tiny_config_dict(tmp_path)
    data["models"][0]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    # tiny-heavy loads, then refuses a long prompt: split parts not yet assembled whose
    # first part ends within its key-values: nothing counts it before the load (one that does refuses it unloaded)
    data["models"][2]["context_length"] = 32
    data["models"][2]["gguf"] = {"parts": names, "sha256": sha}
    config = load_config(write_config(tmp_path, data))
    clock = [1000.0]  # each load tried once its failure's minute has passed
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with RouterLLM(config) as system:
        for _ in range(3):
            with pytest.raises(RouterLLMError, match="corrupt"):
                system.generate("hi", model="tiny-light")
            clock[0] += manager_module.RECHECK_S
        with pytest.raises(RouterLLMError, match="context"):
            system.generate("word " * 100, model="tiny-heavy")
        rows = list(system.log.records())
    assert [(r.model, r.finish_reason) for r in rows] == [("tiny-light", "error")] * 3 + [("tiny-heavy", "error")]  # fmt: skip
    assert all("corrupt" in r.load_error for r in rows[:3]) and rows[3].load_error == ""
    assert all(r.components["model_loading"].duration_s > 0 for r in rows)

    rep = logged_report(config)
    assert rep.totals.energy_kwh == pytest.approx(sum(r.energy_kwh for r in rows))
    assert not of_kind(rep.recommendations, "model_loading")  # tiny-heavy loaded once
    (r,) = of_kind(rep.recommendations, "failed_loads")
    assert rep.recommendations[0] == r
    assert r.evidence["model"] == "tiny-light" and r.evidence["failed_loads"] == 3
    assert r.evidence["error"] == rows[2].load_error and r.evidence["last_failed"] == rows[2].timestamp  # fmt: skip
    own = sum(x.components["model_loading"].energy_kwh for x in rows[:3])
    assert r.evidence["loading_energy_kwh"] == pytest.approx(own)
    assert r.message.startswith("tiny-light failed to load in 3 requests (no answer;")
    assert f"): {rows[2].load_error}; fix what the error says" in r.message

    # its file fixed, tiny-light loads once and answers: one load, not 4; the report says
    # it has answered since (another model's answers are not its own)
    with RequestLog(config.log.path) as log:
        log.append(rec("tiny-light", 60 * 24 * 9, "a", loading_kwh=1e-3))
        log.append(rec("tiny-medium", 60 * 24 * 9 + 1, "b"))
    recs = logged_report(config).recommendations
    (r,) = of_kind(recs, "failed_loads")
    assert r.evidence["answered_since"] == 1 and "; it has answered 1 request since)" in r.message
    assert not of_kind(recs, "model_loading")


def test_a_failed_load_with_carbon_tracking_off_is_not_measured_not_zero_kwh(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With carbon.enabled: false a load is not measured (0 kWh, method none): the
    recommendation said "0.000e+00 kWh spent loading it", and --json 0.0, as if measured."""
    from routerllm import manager as manager_module
    from routerllm.exceptions import RouterLLMError
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"][0]["gguf"] = corrupt_gguf(tmp_path, tiny_gguf)
    config = load_config(write_config(tmp_path, data))
    clock = [1000.0]  # each load tried once its failure's minute has passed
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with RouterLLM(config) as system:
        for _ in range(2):
            with pytest.raises(RouterLLMError, match="corrupt"):
                system.generate("hi", model="tiny-light")
            clock[0] += manager_module.RECHECK_S
    (r,) = of_kind(logged_report(config).recommendations, "failed_loads")
    assert r.message.startswith(
        "tiny-light failed to load in 2 requests (no answer; the energy spent loading it "
        "not measured (carbon tracking off); the last at "
    )
    assert "kWh" not in r.message and r.evidence["loading_energy_kwh"] is None
    assert r.evidence["failed_loads"] == 2


def test_a_log_from_before_failed_loads_were_marked_is_read_then_given_the_table(
    tmp_path: Path,
) -> None:
    """An older log cannot tell a failed load from a load: its failed rows read as they
    were (loads); opened for writing, it is given the table and marks failed loads."""
    import sqlite3

    from routerllm.carbon.log_schema import SCHEMA, TABLES

    config = config_in(tmp_path)
    table = "CREATE TABLE IF NOT EXISTS load_errors (\n    request_id TEXT PRIMARY KEY REFERENCES requests(id),\n    error TEXT NOT NULL,\n    model TEXT NOT NULL DEFAULT '',\n    energy_kwh REAL\n);\n"  # fmt: skip
    assert table in SCHEMA
    with sqlite3.connect(config.log.path) as db:
        db.executescript(SCHEMA.replace(table, ""))
    failed = [rec("tiny-light", i, loading_kwh=1e-4, finish_reason="error", completion_tokens=0) for i in range(2)]  # fmt: skip
    with sqlite3.connect(config.log.path) as db:  # as an older version logged them
        for r in failed:
            db.execute(f"INSERT INTO requests ({', '.join(TABLES['requests'][:15])}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                r.id, r.timestamp, r.prompt_sha256, r.prompt_chars, r.model, r.router, 1.0, 5,
                0, 1.0, r.energy_kwh, r.co2_kg, 0.0, "", "error",
            ))  # fmt: skip
            db.executemany("INSERT INTO components VALUES (?,?,?,?,?,?)", [
                (r.id, m.component, m.duration_s, m.energy_kwh, m.co2_kg, m.method)
                for m in r.components.values()
            ])  # fmt: skip
    with RequestLog(config.log.path, read_only=True) as old:
        assert [r.load_error for r in old.records()] == ["", ""]
    rep = logged_report(config)
    assert of_kind(rep.recommendations, "model_loading") and not of_kind(rep.recommendations, "failed_loads")  # fmt: skip
    marked = dataclasses.replace(rec("tiny-light", 5, loading_kwh=1e-4, finish_reason="error"), load_error="bad file")  # fmt: skip
    with RequestLog(config.log.path) as log:
        log.append(marked)
        assert [r.load_error for r in log.records()] == ["", "", "bad file"]
    with sqlite3.connect(config.log.path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(load_errors)")] == TABLES["load_errors"]
    (r,) = of_kind(logged_report(config).recommendations, "failed_loads")
    assert r.evidence["failed_loads"] == 1 and r.message.endswith("): bad file; fix what the error says (the model's file or settings in models), or take tiny-light out of the config")  # fmt: skip


def test_a_log_whose_failed_loads_name_no_model_is_read_then_given_the_columns(
    tmp_path: Path,
) -> None:
    """A log whose load_errors table holds errors only (before a cascade's step up whose
    load failed was named): read as it is, each error its row's model's; opened for
    writing, it is given the model and energy columns, and names a step up's model."""
    import sqlite3

    from routerllm.carbon.log_schema import SCHEMA, TABLES

    config = config_in(tmp_path)
    columns = (
        "    error TEXT NOT NULL,\n    model TEXT NOT NULL DEFAULT '',\n    energy_kwh REAL\n);"
    )
    assert columns in SCHEMA
    with sqlite3.connect(config.log.path) as db:
        db.executescript(SCHEMA.replace(columns, "    error TEXT NOT NULL\n);"))
    with RequestLog(config.log.path) as log:  # opened for writing: given the columns
        log.append(dataclasses.replace(rec("tiny-light", 0, loading_kwh=1e-4, finish_reason="error"), load_error="bad file"))  # fmt: skip
    with sqlite3.connect(config.log.path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(load_errors)")] == TABLES["load_errors"]  # fmt: skip
        # the failed request as an older version logged it, in the table it left
        db.execute("DELETE FROM load_errors")
        db.execute("ALTER TABLE load_errors DROP COLUMN energy_kwh")
        db.execute("ALTER TABLE load_errors DROP COLUMN model")
        row_id = db.execute("SELECT id FROM requests").fetchone()[0]
        db.execute("INSERT INTO load_errors VALUES (?, ?)", (row_id, "bad file"))
    with RequestLog(config.log.path, read_only=True) as old:
        assert [(r.load_error, r.load_error_model) for r in old.records()] == [("bad file", "")]
    (r,) = of_kind(logged_report(config).recommendations, "failed_loads")
    assert r.evidence["model"] == "tiny-light" and r.evidence["failed_loads"] == 1
    stepped = dataclasses.replace(
        rec("tiny-light", 5, loading_kwh=3e-4),
        escalated={"model_loading": Measurement("model_loading", 1.0, 2e-4, 1e-4, MEASURED)},
        load_error="corrupt heavy",
        load_error_model="tiny-heavy",
        load_error_kwh=2e-4,
    )
    with RequestLog(config.log.path) as log:
        log.append(stepped)
        assert [r.load_error_model for r in log.records()] == ["", "tiny-heavy"]
    failed = {r.evidence["model"]: r for r in of_kind(logged_report(config).recommendations, "failed_loads")}  # fmt: skip
    assert failed["tiny-light"].evidence["failed_loads"] == 1
    assert failed["tiny-heavy"].evidence["loading_energy_kwh"] == pytest.approx(2e-4)
    assert failed["tiny-heavy"].evidence["kept_answers"] == 1


def test_answers_cut_at_max_new_tokens_per_model(tmp_path: Path) -> None:
    config = config_in(tmp_path / "cut")  # generation.max_new_tokens: 8
    records = [rec("tiny-light", 0, finish_reason="length", completion_tokens=8)]
    records += [rec("tiny-light", i, finish_reason="stop") for i in range(1, 10)]
    records += [rec("tiny-medium", 10 + i, finish_reason="length", completion_tokens=5) for i in range(5)]  # fmt: skip
    light, medium = of_kind(logged(config, records), "cut_answers")
    assert light.evidence == {
        "model": "tiny-light",
        "cut": 1,
        "requests": 10,
        "share": 0.1,
        "longest_cut_tokens": 8,
        "filled_context": 0,
        "stub_limit_cut": 0,
        "max_new_tokens": 8,
        "threshold": 0.1,
    }
    assert light.config_key == "generation.max_new_tokens" and "own limit" not in light.message
    assert medium.evidence["share"] == 1.0
    assert "at most 5 tokens, below generation.max_new_tokens (8)" in medium.message

    # 4 answers are too few to judge; an unknown finish reason or a cached answer not counted
    few = config_in(tmp_path / "few")
    records = [rec("tiny-light", i, finish_reason="length") for i in range(4)]
    records += [rec("tiny-light", 4 + i, finish_reason="") for i in range(3)]
    records.append(rec("tiny-light", 7, finish_reason="length", method=CACHED, llm_kwh=0.0))
    assert not of_kind(logged(few, records), "cut_answers")


def test_stub_answers_cut_at_their_code_styles_limit_are_not_blamed_on_max_new_tokens(
    tmp_path: Path,
) -> None:
    """A function stub is asked in its model's code style, which writes at most 512
    tokens whatever generation.max_new_tokens is. Stub answers cut there were told
    'raise generation.max_new_tokens (256)' and, at 1024, 'the requests set their own
    limit': followed (256 -> 1024, measured with the tiny GGUF), all 5 still stopped at
    512 tokens. Their requests' own limit is what lengthens them."""
    from routerllm.system import RouterLLM

    models = [tiny_model("tiny-light", "light", 0.1, context_length=2048), tiny_model("tiny-heavy", "heavy", 1.5, context_length=2048)]  # fmt: skip
    config = config_in(tmp_path / "stubs", models=models, generation={"max_new_tokens": 256, "temperature": 0.0})  # fmt: skip
    with RouterLLM(config) as system:
        answer = system.generate('def f(a, b):\n    """Return a + b."""\n', model="tiny-light")
    assert (answer.completion_tokens, answer.finish_reason) == (512, "length")
    with RequestLog(config.log.path) as log:  # its row 4 more times: 5 answers to judge
        (row,) = log.records()
        for i in range(1, 5):
            log.append(dataclasses.replace(row, id=uuid.uuid4().hex, timestamp=(START + timedelta(minutes=i)).isoformat()))  # fmt: skip
    (r,) = of_kind(logged_report(config).recommendations, "cut_answers")
    assert "raise generation.max_new_tokens" not in r.message
    assert "at 512 tokens, the limit of a function stub's answer" in r.message
    assert "--max-new-tokens" in r.message and r.config_key == ""
    assert r.evidence["stub_limit_cut"] == 5

    # some cut at generation.max_new_tokens (8), some at a stub's 512: both said
    mixed = config_in(tmp_path / "mixed", models=models)  # 2048 tokens: not filled
    records = [rec("tiny-light", i, f"q{i}", finish_reason="length", completion_tokens=8) for i in range(3)]  # fmt: skip
    records += [rec("tiny-light", 3 + i, f"s{i}", finish_reason="length", completion_tokens=512) for i in range(2)]  # fmt: skip
    (r,) = of_kind(logged(mixed, records), "cut_answers")
    assert "raise generation.max_new_tokens (8)" in r.message
    assert "2 of them at 512 tokens, the limit of a function stub's answer" in r.message
    assert r.config_key == "generation.max_new_tokens"


def test_answers_that_filled_the_models_context_are_not_blamed_on_max_new_tokens(
    tmp_path: Path,
) -> None:
    """Long prompts whose answers ran into the context were reported as cut at a limit
    'the requests set' themselves, with advice to raise generation.max_new_tokens."""
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"] = [tiny_model("tiny-light", "light", 0.1, context_length=48)]
    data["generation"]["max_new_tokens"] = 64
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        for i in range(5):
            r = system.generate(" ".join(["word"] * 30) + f" {i}", model="tiny-light")
            assert r.finish_reason == "length" and r.prompt_tokens + r.completion_tokens == 48
    (r,) = of_kind(logged_report(config).recommendations, "cut_answers")
    assert r.evidence["cut"] == r.evidence["filled_context"] == 5 and r.config_key == ""
    assert "filled the model's context (48 tokens)" in r.message
    assert "own limit" not in r.message and "raise generation.max_new_tokens" not in r.message

    # some cut at max_new_tokens (8 here), one by the context (512): both are said
    mixed = config_in(tmp_path / "mixed")
    records = [rec("tiny-light", i, finish_reason="length", completion_tokens=8) for i in range(4)]  # fmt: skip
    records.append(rec("tiny-light", 4, finish_reason="length", completion_tokens=2, prompt_tokens=510))  # fmt: skip
    (r,) = of_kind(logged(mixed, records), "cut_answers")
    assert r.evidence["filled_context"] == 1 and r.evidence["longest_cut_tokens"] == 8
    assert r.config_key == "generation.max_new_tokens" and "own limit" not in r.message
    assert "in 1 of them, prompt and answer filled the model's context (512 tokens)" in r.message


def test_answers_that_filled_the_models_trained_context_are_not_blamed_on_max_new_tokens(
    tmp_path: Path,
) -> None:
    """llama.cpp runs the tiny GGUF at its trained 2048 tokens, not the 4096 configured:
    answers that filled those were judged against 4096, and blamed on max_new_tokens."""
    config = config_in(tmp_path, models=[tiny_model("tiny-light", "light", 0.1, context_length=4096)])  # fmt: skip
    records = [
        rec("tiny-light", i, finish_reason="length", prompt_tokens=2040, completion_tokens=8)
        for i in range(5)
    ]
    (r,) = of_kind(logged(config, records), "cut_answers")
    assert r.evidence["filled_context"] == 5 and r.config_key == ""
    assert "filled the model's context (2048 tokens)" in r.message
    assert "raise generation.max_new_tokens" not in r.message


def test_answers_that_filled_the_context_of_the_model_they_stepped_up_to_are_said_so(
    tmp_path: Path,
) -> None:
    """A prompt too long for the routed model's context goes to a larger one (its
    refusal's load logged apart, as escalated): its answer filling that model's context
    was blamed on a limit 'the requests set their own', as if its tokens were not the
    answering model's."""
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, router={"name": "smallest"})
    data["models"] = [
        tiny_model("tiny-light", "light", 0.1, context_length=48),
        tiny_model("tiny-heavy", "heavy", 1.5, context_length=96),
    ]
    data["generation"]["max_new_tokens"] = 64
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        for i in range(5):
            r = system.generate(" ".join(["word"] * 60) + f" {i}")
            assert r.model == "tiny-heavy" and r.finish_reason == "length"
            assert r.prompt_tokens + r.completion_tokens == 96
        assert all(record.escalated for record in system.log.records())
    (r,) = of_kind(logged_report(config).recommendations, "cut_answers")
    assert r.evidence["cut"] == r.evidence["filled_context"] == 5 and r.config_key == ""
    assert "filled the model's context (96 tokens)" in r.message and "own limit" not in r.message


def test_router_overhead_over_two_percent_of_the_co2_when_routing_runs_a_model(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path / "learned")

    def loaded(router: str) -> RequestRecord:
        """A router's first routing, which loads its model: its largest, left out."""
        return rec("tiny-light", -1, "first", router=router, routing_kwh=1e-4, llm_kwh=0.0)

    # routing 3e-6 of 1e-4 kWh a request: 3 % of the CO2
    records = [loaded("classifier")]
    records += [rec("tiny-light", i, f"q{i}", router="classifier", routing_kwh=3e-6, llm_kwh=9.7e-5) for i in range(2)]  # fmt: skip
    (r,) = of_kind(logged(config, records), "router_overhead")
    assert r.evidence["share"] == pytest.approx(0.03)
    assert r.evidence["routing_co2_kg"] == pytest.approx(3e-6)
    assert r.config_key == "router.name" and "classifier runs a model" in r.message
    assert "3.0% of the CO2" in r.message

    assert "the config's router, rules, runs none" in r.message
    configured = config_in(tmp_path / "configured", router={"name": "classifier"})
    (r,) = of_kind(logged(configured, records), "router_overhead")
    assert "the rules router (router.name: rules; now classifier) runs none" in r.message

    # the rules router runs no model: nothing cheaper, unless the cascade's checks count
    rules = [rec("tiny-light", i, f"q{i}", routing_kwh=3e-6, llm_kwh=9.7e-5) for i in range(2)]
    assert not of_kind(logged(config_in(tmp_path / "rules"), rules), "router_overhead")
    cascade = config_in(tmp_path / "cascade", cascade={"enabled": True})
    (r,) = of_kind(logged(cascade, rules), "router_overhead")
    assert r.config_key == "cascade.enabled" and "cascade's checks" in r.message
    # 1.5 % is under the seeds' 2 %
    low = [rec("tiny-light", i, f"q{i}", router="classifier", routing_kwh=1.5e-6, llm_kwh=9.85e-5) for i in range(2)]  # fmt: skip
    assert not of_kind(logged(config_in(tmp_path / "low"), low), "router_overhead")
    # answers from the cache spend only their routing: they do not count
    cached = [rec("tiny-light", i, f"c{i}", router="classifier", routing_kwh=3e-6, llm_kwh=0.0, method=CACHED) for i in range(5)]  # fmt: skip
    assert not of_kind(logged(config_in(tmp_path / "cached"), cached + low), "router_overhead")
    # an ensemble of routers that run no model runs none either
    members = {"name": "ensemble", "options": {"members": ["rules", "smallest", {"name": "largest"}]}}  # fmt: skip
    voted = [rec("tiny-light", i, f"q{i}", router="ensemble", routing_kwh=3e-6, llm_kwh=9.7e-5) for i in range(2)]  # fmt: skip
    assert not of_kind(logged(config_in(tmp_path / "ensemble", router=members), voted), "router_overhead")  # fmt: skip
    voted.append(loaded("ensemble"))
    members["options"]["members"].append({"path": "runs/quality"})  # type: ignore[index]
    data = tiny_config_dict(tmp_path / "learned-ensemble")
    (tmp_path / "learned-ensemble").mkdir()
    data["router"] = members
    learned_config = AppConfig.model_validate(data)  # not built: the path need not exist
    assert of_kind(logged(learned_config, voted), "router_overhead")


def test_a_routers_first_routing_which_loads_its_model_is_not_taken_for_its_overhead(
    tmp_path: Path,
) -> None:
    """The complexity router loads its encoder in its first routing of a process: measured
    with the tiny GGUF and the packaged MiniLM, 6 requests in one process, routing 5.56
    mWh in the first, 4-10 µWh in each after (the rules router's: 4-13 µWh). The report
    said routing spent 55.8 % of the CO2 and to switch to rules, which saves that one
    load, not a share of every request. Each learned router's largest routing is left
    out of the share; requests that each load it (a process each) still count."""
    config = config_in(tmp_path / "one", router={"name": "complexity"})
    first = [rec("tiny-light", 0, "q0", router="complexity", routing_kwh=5.5e-6, llm_kwh=4e-7)]
    after = [rec("tiny-light", i, f"q{i}", router="complexity", routing_kwh=7e-9, llm_kwh=4e-7) for i in range(1, 6)]  # fmt: skip
    assert not of_kind(logged(config, first + after), "router_overhead")
    # each request loads it (a `routerllm route` each): every one pays it, said so
    each = [rec("tiny-light", i, f"q{i}", router="complexity", routing_kwh=5.5e-6, llm_kwh=4e-7) for i in range(6)]  # fmt: skip
    (r,) = of_kind(logged(config_in(tmp_path / "each", router={"name": "complexity"}), each), "router_overhead")  # fmt: skip
    # 5 x 5.5e-6 of 6 x 5.9e-6 - 5.5e-6 kWh (CO2 0.5 kg a kWh): the largest left out
    assert r.evidence["share"] == pytest.approx(27.5 / 29.9)
    assert r.evidence["first_routing_co2_kg"] == pytest.approx(2.75e-6)
    assert "leaving out complexity's largest routing" in r.message


def test_the_cascades_checks_are_not_promised_cheaper_with_a_gate(tmp_path: Path) -> None:
    """The cascade's checks run in the sandbox on every answer with examples, gated or
    not: a gate weighs an answer after its check (and adds its decision to routing). The
    advice to cut routing's share was 'a gate (cascade.gate) escalates only where it is
    worth the energy', also to a config whose gate was set: followed, routing's share
    stays (measured with the tiny GGUF, 4 requests: checks 15.9 of 72.9 mWh, 21.8 % of the
    CO2; without the cascade routing spent 42 µWh)."""
    rules = [rec("tiny-light", i, f"q{i}", routing_kwh=3e-6, llm_kwh=9.7e-5) for i in range(2)]
    cascade = config_in(tmp_path / "cascade", cascade={"enabled": True})
    (r,) = of_kind(logged(cascade, rules), "router_overhead")
    assert "escalates only where it is worth the energy" not in r.message
    assert "gated or not" in r.message and "cascade.enabled: false" in r.message
    assert r.config_key == "cascade.enabled"


def test_advice_about_the_router_names_a_saved_router_path_that_overrides_router_name(
    tmp_path: Path,
) -> None:
    """With router.path, router.name (rules by default) is not the router used: the advice
    was to set router.name: rules, already set, and 'now rules' for the saved router."""
    tmp_path.mkdir(exist_ok=True)
    data = tiny_config_dict(tmp_path)
    data["router"] = {"path": "routers/clf"}  # not built here: the folder need not exist
    config = AppConfig.model_validate(data)
    learned = [rec("tiny-light", i, f"q{i}", router="classifier", routing_kwh=3e-6, llm_kwh=9.7e-5) for i in range(3)]  # fmt: skip
    (r,) = of_kind(logged(config, learned), "router_overhead")
    assert r.config_key == "router.path"
    assert "router.name: rules without router.path, now routers/clf" in r.message

    fixed = [rec("tiny-heavy", i, f"f{i}", router="fixed") for i in range(4)]
    (r,) = of_kind(logged(config, fixed), "largest_model")
    assert "now routers/clf" in r.message


def test_budgets_near_their_limit_or_broken(tmp_path: Path) -> None:
    recent = datetime.now(timezone.utc) - timedelta(minutes=30)
    budgets = {"co2_kg": {"hourly": 0.05, "per_request": 0.01}}
    # 5 x 9 g of 50 g in the last hour: 90 %, past downgrade_at (80 %)
    config = config_in(tmp_path / "near", budgets=budgets)
    records = [rec("tiny-light", i, f"q{i}", llm_kwh=0.018, when=recent) for i in range(5)]
    (r,) = of_kind(logged(config, records), "budget_near_limit")
    assert r.evidence["share"] == pytest.approx(0.9) and r.evidence["threshold"] == 0.8
    assert r.config_key == "budgets.co2_kg.hourly"
    assert "routed requests go one model smaller" in r.message
    assert not of_kind(logged(config, []), "budget_broken")

    # one request of 60 g: over its per-request limit and over the hour's, which is spent
    spent = config_in(tmp_path / "spent", budgets=budgets)
    recs = logged(spent, [rec("tiny-light", 0, llm_kwh=0.12, when=recent)])
    (near,) = of_kind(recs, "budget_near_limit")
    assert near.evidence["share"] == pytest.approx(1.2) and "refused" in near.message
    broken = of_kind(recs, "budget_broken")
    assert {(b.config_key, b.evidence["requests"]) for b in broken} == {
        ("budgets.co2_kg.per_request", 1),
        ("budgets.co2_kg.hourly", 1),
    }
    assert "judged against the limit as it is now" in broken[0].message
    # 3 x 9 g: 54 %, nothing to say
    calm = config_in(tmp_path / "calm", budgets=budgets)
    records = [rec("tiny-light", i, f"q{i}", llm_kwh=0.018, when=recent) for i in range(3)]
    assert not [r for r in logged(calm, records) if r.kind.startswith("budget")]


def test_a_broken_budget_does_not_ask_to_lower_the_max_new_tokens_cut_answers_ask_to_raise(
    tmp_path: Path,
) -> None:
    """Answers cut at max_new_tokens and a per-request budget broken: the report told the
    user to raise generation.max_new_tokens (cut_answers) and to lower it (budget_broken)
    in one breath. Where answers are cut, lowering it cuts more of them: the budget's
    advice says so and points to smaller models instead."""
    recent = datetime.now(timezone.utc) - timedelta(minutes=30)
    config = config_in(tmp_path / "both", budgets={"co2_kg": {"per_request": 0.01}})
    records = [rec("tiny-light", i, f"q{i}", finish_reason="length", when=recent) for i in range(5)]  # fmt: skip
    records.append(rec("tiny-light", 5, "big", llm_kwh=0.04, when=recent))  # 20 g of 10
    recs = logged(config, records)
    (cut,) = of_kind(recs, "cut_answers")
    assert "raise generation.max_new_tokens" in cut.message
    (broken,) = of_kind(recs, "budget_broken")
    assert "or lower generation.max_new_tokens" not in broken.message
    assert "5 answers of tiny-light already stop at it (cut_answers)" in broken.message
    assert "route to smaller models" in broken.message
    # no answer cut: lowering it still bounds what a request can spend
    calm = config_in(tmp_path / "calm", budgets={"co2_kg": {"per_request": 0.01}})
    (broken,) = of_kind(logged(calm, records[-1:]), "budget_broken")
    assert "lower generation.max_new_tokens, which bounds what a request can spend" in broken.message  # fmt: skip


def test_most_requests_sent_to_the_largest_model_unrouted(tmp_path: Path) -> None:
    config = config_in(tmp_path / "fixed")
    records = [rec("tiny-heavy", i, f"q{i}", router="fixed", llm_kwh=4e-4) for i in range(6)]
    records += [rec("tiny-light", 6 + i, f"q{6 + i}") for i in range(2)]
    (r,) = of_kind(logged(config, records), "largest_model")
    assert r.evidence["share"] == 0.75 and r.evidence["largest_model"] == "tiny-heavy"
    assert r.evidence["min_requests"] == recommend_base.LARGEST_MIN_REQUESTS == 5
    assert r.config_key == ""  # the caller chose it: no setting routes these
    # measured generation per output token: 4e-4 / 10 and 1e-4 / 10 kWh
    assert "tiny-light 10 mWh, tiny-heavy 40 mWh" in r.message

    # half is not most; the demo's always-largest baseline is a deliberate comparison
    half = records[2:] + [rec("tiny-light", 8 + i, f"q{8 + i}") for i in range(2)]
    assert not of_kind(logged(config_in(tmp_path / "half"), half), "largest_model")
    demo = [rec("tiny-heavy", i, router="fixed", tag="demo-baseline") for i in range(6)]
    demo.append(rec("tiny-light", 6, tag="demo"))
    assert not of_kind(logged(config_in(tmp_path / "demo"), demo), "largest_model")


def test_largest_model_needs_5_requests_before_it_speaks_of_most(tmp_path: Path) -> None:
    """One request the caller sent to the largest model was "1 of 1 requests (100.0%)":
    the rule fired from a single request, where cut_answers waits for 5. Now it waits for
    LARGEST_MIN_REQUESTS counted requests (the demo's baseline not among them)."""
    one = [rec("tiny-heavy", 0, "q0", router="fixed")]
    assert not of_kind(logged(config_in(tmp_path / "one"), one), "largest_model")
    four = [rec("tiny-heavy", i, f"q{i}", router="fixed") for i in range(4)]
    four += [rec("tiny-heavy", 4 + i, router="fixed", tag="demo-baseline") for i in range(3)]
    assert not of_kind(logged(config_in(tmp_path / "four"), four), "largest_model")
    five = [rec("tiny-heavy", i, f"q{i}", router="fixed") for i in range(5)]
    (r,) = of_kind(logged(config_in(tmp_path / "five"), five), "largest_model")
    assert r.evidence["requests"] == 5 and "5 of 5 requests (100.0%" in r.message


def test_requests_the_caller_sent_to_the_largest_model_name_no_router_setting(
    tmp_path: Path,
) -> None:
    """Requests that named the largest model (router fixed) are routed by no router.name:
    the rule gave config_key router.name, already rules, whose change sends none of them
    elsewhere. Only the largest router's requests are the config's to change."""
    from routerllm.system import RouterLLM

    config = config_in(tmp_path / "named", generation={"max_new_tokens": 2, "temperature": 0.0})  # fmt: skip
    with RouterLLM(config) as system:
        for i in range(5):
            system.generate(f"q{i}", model="tiny-heavy")
    (r,) = of_kind(logged_report(config).recommendations, "largest_model")
    assert r.config_key == "" and "the caller chose it" in r.message
    # the largest router's requests: router.name is the setting that routes them
    chosen = [rec("tiny-heavy", i, f"q{i}", router="largest") for i in range(5)]
    (r,) = of_kind(logged(config_in(tmp_path / "largest"), chosen), "largest_model")
    assert r.config_key == "router.name"


def test_the_largest_models_rate_leaves_out_answers_logged_without_energy(
    tmp_path: Path,
) -> None:
    # a log kept partly with carbon tracking off: those answers' tokens halved the
    # largest model's measured rate ("tiny-heavy 20 mWh" for its 4e-4 kWh / 10 tokens)
    off = [rec("tiny-heavy", i, f"q{i}", router="fixed", method="none", llm_kwh=0.0) for i in range(3)]  # fmt: skip
    on = [rec("tiny-heavy", 3 + i, f"p{i}", router="fixed", llm_kwh=4e-4) for i in range(3)]
    records = [*off, *on, rec("tiny-light", 7, "q7")]
    (r,) = of_kind(logged(config_in(tmp_path), records), "largest_model")
    assert "tiny-light 10 mWh, tiny-heavy 40 mWh" in r.message


@pytest.mark.parametrize(
    ("platform", "hint", "not_said"),
    [
        ("linux", recommend_energy.RAPL_HINT, "Power Gadget"),
        (
            "darwin",
            "powermetrics, which needs sudo, or on an Intel Mac install Intel Power Gadget",
            "powercap",
        ),  # fmt: skip
        ("win32", "Energy Meter Interface of Windows 11 on bare metal", "powercap"),
        ("freebsd14", "on Linux, macOS or Windows only", "powercap"),
    ],
)
def test_the_estimated_energy_hint_fits_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, hint: str, not_said: str
) -> None:
    """The Linux RAPL chmod was the hint on macOS and Windows too, where it is no help."""
    records = [rec("tiny-light", i, f"q{i}", method="codecarbon:load-estimate") for i in range(2)]
    monkeypatch.setattr(sys, "platform", platform)
    (r,) = of_kind(logged(config_in(tmp_path), records), "estimated_energy")
    assert hint in r.message and not_said not in r.message, r.message


def test_estimated_and_unmeasured_energy(tmp_path: Path) -> None:
    config = config_in(tmp_path / "load")
    records = [rec("tiny-light", i, f"q{i}", method="codecarbon:load-estimate") for i in range(2)]
    (r,) = of_kind(logged(config, records), "estimated_energy")
    assert r.evidence["method"] == "codecarbon:load-estimate" and r.evidence["share"] == 1.0
    assert recommend_energy.RAPL_HINT in r.message
    # a GPU is read, but the CPU beside it stays an estimate without its own counters
    assert "on an NVIDIA GPU it reads the GPU's power (the CPU's stays an estimate" in r.message
    # CodeCarbon's constant TDP figure (it could not read the CPU load) is an estimate too
    records = [rec("tiny-light", i, f"q{i}", method="codecarbon:tdp-estimate") for i in range(2)]
    (r,) = of_kind(logged(config_in(tmp_path / "tdp"), records), "estimated_energy")
    assert r.evidence["method"] == "codecarbon:tdp-estimate" and "from the CPU's TDP alone" in r.message  # fmt: skip

    # one remote model estimated from its per-token figures: 1e-4 of 4e-4 kWh (25 %)
    mixed = [rec("tiny-light", i, f"q{i}") for i in range(3)]
    mixed.append(rec("tiny-heavy", 3, "q3", method="estimate:per-token"))
    (r,) = of_kind(logged(config_in(tmp_path / "remote"), mixed), "estimated_energy")
    assert r.evidence["share"] == pytest.approx(0.25) and "tiny-heavy" in r.message
    assert r.config_key == "models[].energy_per_token_kwh"
    assert "and energy_per_prompt_token_kwh (per prompt token read)" in r.message

    # carbon tracking off: requests logged at 0 kWh
    off = config_in(tmp_path / "off", carbon={"enabled": False, "output_dir": str(tmp_path)})
    unmeasured = [rec("tiny-light", i, f"q{i}", method="none", llm_kwh=0.0) for i in range(2)]
    (r,) = of_kind(logged(off, unmeasured), "unmeasured_energy")
    assert r.evidence["requests_unmeasured"] == 2 and r.config_key == "carbon.enabled"
    # the report says "not measured" for them, not 0 kWh: the message must not say otherwise
    assert "leave them out (not measured, not 0 kWh)" in r.message, r.message
    # 1 of 20 requests estimated: 5 % of the energy, under the 10 % threshold
    fine = [rec("tiny-light", i, f"q{i}") for i in range(19)]
    fine.append(rec("tiny-light", 19, "q19", method="codecarbon:load-estimate"))
    assert not of_kind(logged(config_in(tmp_path / "fine"), fine), "estimated_energy")


def test_cached_answers_logged_with_carbon_tracking_off_count_as_unmeasured(
    tmp_path: Path,
) -> None:
    """A cached answer's routing is logged without energy (method none) as any answer's
    then; its unspent parts (method cache) made it count as measured: a log of 1 answer
    and 19 cached repeats, nothing measured, was 1 of 20 (5 %) and called for nothing."""
    off = config_in(tmp_path, carbon={"enabled": False, "output_dir": str(tmp_path)})
    first = rec("tiny-light", 0, method="none", llm_kwh=0.0)
    unspent = {c: Measurement(c, 0.0, 0.0, 0.0, CACHED) for c in ("model_loading", "llm_inference")}  # fmt: skip
    repeats = [rec("tiny-light", i, method="none", llm_kwh=0.0) for i in range(1, 20)]
    repeats = [dataclasses.replace(r, components={**r.components, **unspent}) for r in repeats]
    (r,) = of_kind(logged(off, [first, *repeats]), "unmeasured_energy")
    assert r.evidence["requests_unmeasured"] == 20 and r.evidence["requests"] == 20


def test_estimated_energy_counts_each_part_of_an_escalation_by_its_own_method(
    tmp_path: Path,
) -> None:
    """An escalation from a measured local model to a remote one logs its generation as
    "codecarbon:measured+estimate:per-token": that energy was counted under the joined
    label, neither measured nor estimated, and a log of such requests, 90 % of its energy
    from per-token figures, called for nothing."""

    def escalated(i: int) -> RequestRecord:
        r = rec("remote", i, f"q{i}", llm_kwh=1e-4, method=f"{MEASURED}+estimate:per-token")
        first = Measurement("llm_inference", 0.5, 1e-5, 5e-6, MEASURED)  # tiny-light's answer
        return dataclasses.replace(r, escalated={"llm_inference": first})

    records = [escalated(i) for i in range(4)]
    (r,) = of_kind(logged(config_in(tmp_path), records), "estimated_energy")
    assert r.evidence["method"] == "estimate:per-token" and r.evidence["share"] == pytest.approx(0.9)  # fmt: skip
    assert "remote" in r.message


def test_the_cli_report_prints_and_emits_recommendations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_in(tmp_path)
    path = Path(config.source)
    with RequestLog(config.log.path) as log:
        for i, p in enumerate(["a", "a", "a"]):
            log.append(rec("tiny-light", i, p))
    assert main(["report", "--config", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (r,) = out["recommendations"]
    assert set(r) == {"kind", "message", "config_key", "evidence"}
    assert r["kind"] == "repeated_prompts" and r["evidence"]["repeated_requests"] == 2
    assert main(["report", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "recommendations (from the log and the config)\n- 2 of 3 requests" in text

    quiet = config_in(tmp_path / "quiet")
    with RequestLog(quiet.log.path) as log:
        log.append(rec("tiny-light", 0))
    assert main(["report", "--config", quiet.source]) == 0
    assert "none: nothing in the log calls for a change" in capsys.readouterr().out


def test_a_refused_first_routing_which_loaded_its_model_is_not_taken_for_its_overhead(
    tmp_path: Path,
) -> None:
    """A process's first request refused by the budgets once routed (a window spent by
    an earlier process) loaded the router's model in its routing, as a first answered
    one does: its row (refused:budget) counts toward routing's share, and its routing,
    the largest, was not left out as the load it is: the report said routing spent most
    of the CO2 and to switch routers, for one load."""
    from routerllm.carbon.log_rows import REFUSED

    config = config_in(tmp_path, router={"name": "complexity"})
    first = rec("tiny-light", 0, "q0", router="complexity", routing_kwh=5.5e-6, finish_reason=REFUSED, completion_tokens=0, prompt_tokens=0)  # fmt: skip
    first = dataclasses.replace(first, components={"router_inference": first.components["router_inference"]})  # fmt: skip
    after = [rec("tiny-light", i, f"q{i}", router="complexity", routing_kwh=7e-9, llm_kwh=4e-7) for i in range(1, 6)]  # fmt: skip
    assert not of_kind(logged(config, [first, *after]), "router_overhead")
