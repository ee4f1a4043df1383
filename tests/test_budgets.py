"""Carbon and cost budgets and the CarbonPredictor: hand-computed predictions from a
real SQLite request log, and a real RouterLLM (tiny GGUF models, real CodeCarbon)
kept within its budgets."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from routerllm.backends import GenerationRequest
from routerllm.carbon.budget import Admission, CarbonBudget, violations
from routerllm.carbon.log_rows import RequestRecord, Spending
from routerllm.carbon.meter import Measurement, grid_intensity_g_per_kwh
from routerllm.carbon.predictor import CarbonPredictor, fit_profile, nonnegative_fit
from routerllm.carbon.request_log import RequestLog
from routerllm.config import LEVEL_MAX_PARAMS_B, AppConfig, BudgetConfig, load_config
from routerllm.exceptions import (
    BudgetExceededError,
    ConfigError,
    ContextLengthError,
    ModelUnavailableError,
)
from routerllm.routing_scope import RoutingScope
from routerllm.system import RouterLLM

from .conftest import (
    cli_in_process,
    light_and_priced_remote,
    tiny_config_dict,
    tiny_model,
    write_config,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def left_at(moment: datetime) -> str:
    """The first instant after ``moment`` (the log's microseconds), as ``retry_at`` gives
    it: a window holds its first instant, so a request logged then leaves it 1 us after."""
    return (moment + timedelta(microseconds=1)).isoformat(timespec="microseconds")


CODE = (
    "Implement a thread-safe LRU cache class in Python with O(1) get and put, type hints, "
    "and unit tests; explain the design trade-offs and complexity"
)  # the rules router sends it to the heavy model


def record(
    model: str,
    when: datetime,
    co2_kg: float = 0.0,
    cost_usd: float = 0.0,
    prompt_chars: int = 40,
    prompt_tokens: int = 20,
    completion_tokens: int = 10,
    energy_kwh: float | None = None,
    loading_kwh: float = 0.0,
) -> RequestRecord:
    """A logged request whose generation spent ``energy_kwh`` (default: CO2 at 0.5 kg/kWh)."""
    energy = co2_kg / 0.5 if energy_kwh is None else energy_kwh
    components = {
        "model_loading": Measurement("model_loading", 0.1, loading_kwh, loading_kwh * 0.5, "test"),
        "llm_inference": Measurement("llm_inference", 1.0, energy, energy * 0.5, "test"),
    }
    return RequestRecord(
        id=uuid.uuid4().hex,
        timestamp=when.isoformat(timespec="microseconds"),
        prompt_sha256="0" * 64,
        prompt_chars=prompt_chars,
        model=model,
        router="test",
        confidence=1.0,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=1.0,
        cost_usd=cost_usd,
        components=components,
        tag="seeded",
        finish_reason="stop",
    )


def seeded_log(path: Path, records: list[RequestRecord]) -> RequestLog:
    log = RequestLog(path)
    for r in records:
        log.append(r)
    return log


def budget_config(tmp_path: Path, budgets: dict[str, object], **overrides: object) -> AppConfig:
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, budgets=budgets, **overrides)))  # fmt: skip


# -- the predictor ------------------------------------------------------------------
def test_nonnegative_fit_is_least_squares_with_both_coefficients_kept_non_negative() -> None:
    x1, x2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 4.0])
    assert nonnegative_fit(x1, x2, 2 * x1 + 3 * x2) == pytest.approx((2.0, 3.0))
    # y = 4 x1 - x2: the unconstrained fit has b = -1, so the best one-variable fit wins;
    # y = (2, 7, 8): on x1 alone a = (2 + 14 + 24) / 14; on x2 alone b = (4 + 7 + 32) / 21
    a, b = nonnegative_fit(x1, x2, 4 * x1 - x2)
    assert (a, b) == pytest.approx((40 / 14, 0.0))
    residual_x1 = np.sum((4 * x1 - x2 - 40 / 14 * x1) ** 2)
    residual_x2 = np.sum((4 * x1 - x2 - 43 / 21 * x2) ** 2)
    assert residual_x1 < residual_x2


def test_profile_learns_tokens_energy_output_length_loading_and_intensity() -> None:
    outputs = [30, 10, 80, 50, 20, 100, 60, 40, 90, 70]
    records = [
        record(
            "m", NOW, prompt_chars=4 * k, prompt_tokens=10 + k,  # 10 template tokens + chars/4
            completion_tokens=n, energy_kwh=1e-6 * (10 + k) + 1e-5 * n,
            loading_kwh=2e-4 if k in (1, 2) else 0.0,
        )
        for k, n in zip(range(1, 11), outputs, strict=True)
    ]  # fmt: skip
    p = fit_profile(records)
    assert p.requests == 10
    assert p.base_prompt_tokens == pytest.approx(10.0)
    assert p.prompt_tokens_per_char == pytest.approx(0.25)
    assert p.kwh_per_prompt_token == pytest.approx(1e-6)
    assert p.kwh_per_output_token == pytest.approx(1e-5)
    assert p.output_tokens == 91  # the 0.9 quantile of 10, 20, ..., 100 (interpolated)
    assert p.loading_kwh == pytest.approx(2e-4)  # the mean of the loads that happened
    assert p.co2_kg_per_kwh == pytest.approx(0.5)


def test_answers_of_no_tokens_charge_an_output_token_as_a_prompt_token(
    tiny_config: AppConfig,
) -> None:
    """A model whose logged answers all wrote no token (it ended at once): their whole
    energy, 1e-5 kWh over 100 prompt tokens, was charged to each output token (the sum
    over "at least 1" token), 100 times a prompt token's, so an answer of 64 tokens was
    predicted at 6.4e-4 kWh. With no output token to tell its cost, one costs a prompt
    token's."""
    history = [
        dataclasses.replace(
            record("tiny-light", NOW, prompt_chars=40 * k, prompt_tokens=10 * k, completion_tokens=0, energy_kwh=1e-6 * k),
            finish_reason="",  # not known: the prediction counts max_new_tokens
        )
        for k in (1, 2, 3, 4)
    ]  # fmt: skip
    p = fit_profile(history)
    assert p.kwh_per_prompt_token == pytest.approx(1e-7)
    assert p.kwh_per_output_token == pytest.approx(1e-7)
    predicted = CarbonPredictor(tiny_config, history).predict("tiny-light", 80, max_new_tokens=64)
    assert predicted is not None and (predicted.prompt_tokens, predicted.completion_tokens) == (20, 64)  # fmt: skip
    assert predicted.energy_kwh == pytest.approx(1e-7 * (20 + 64))


def test_prediction_from_history_caps_output_at_max_new_tokens_and_adds_loading(
    tiny_config: AppConfig,
) -> None:
    history = [
        record(
            "tiny-medium",
            NOW,
            prompt_chars=c,
            prompt_tokens=t,
            completion_tokens=n,
            energy_kwh=e,
            loading_kwh=1e-4,
        )  # fmt: skip
        for c, t, n, e in [
            (40, 20, 10, 2e-5 + 1e-5),
            (80, 30, 30, 3e-5 + 3e-5),
            (120, 40, 20, 4e-5 + 2e-5),
        ]  # fmt: skip
    ]  # 1e-6 kWh a prompt token, 1e-6 an output token; tokens = 10 + chars / 4
    predictor = CarbonPredictor(tiny_config, history)
    p = predictor.predict("tiny-medium", prompt_chars=200, max_new_tokens=100)
    assert p is not None
    assert (p.prompt_tokens, p.completion_tokens) == (60, 28)  # 0.9 quantile of 10, 20, 30
    assert p.energy_kwh == pytest.approx(60e-6 + 28e-6)
    # at the grid the request will be measured at, the config's country, not the log's
    # 0.5 kg/kWh: until 2026-12-05 a country changed in the config was priced at the old
    # one's grid until the model's 200 latest answers were of the new one
    grid = grid_intensity_g_per_kwh(tiny_config.carbon.country_iso_code) / 1000
    assert grid != pytest.approx(0.5) and p.co2_kg == pytest.approx(p.energy_kwh * grid)
    assert p.cost_usd == pytest.approx(
        p.energy_kwh * tiny_config.carbon.electricity_price_usd_per_kwh
    )
    assert "3 latest logged requests" in p.basis
    capped = predictor.predict("tiny-medium", prompt_chars=200, max_new_tokens=5, loaded=False)
    assert capped is not None and capped.completion_tokens == 5
    assert capped.energy_kwh == pytest.approx(60e-6 + 5e-6 + 1e-4)
    assert "loading included" in capped.basis


def test_output_length_comes_from_the_requests_nearest_in_prompt_length(
    tiny_config: AppConfig,
) -> None:
    short = [record("tiny-light", NOW, prompt_chars=20 + i, completion_tokens=5 + i) for i in range(5)]  # fmt: skip
    long = [record("tiny-light", NOW, prompt_chars=800 + i, completion_tokens=100 + i) for i in range(5)]  # fmt: skip
    predictor = CarbonPredictor(tiny_config, [*short, *long])
    question = predictor.predict("tiny-light", prompt_chars=25, max_new_tokens=500)
    stub = predictor.predict("tiny-light", prompt_chars=700, max_new_tokens=500)
    assert question is not None and stub is not None
    assert question.completion_tokens == 9  # 0.9 quantile of 5..9: 8.6, rounded up
    assert stub.completion_tokens == 104
    assert predictor.profile("tiny-light").output_tokens == 104  # type: ignore[union-attr]


def test_prediction_without_history_uses_config_figures_then_scaling_then_nothing(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[
        tiny_model("tiny-light", "light", 0.1),  # energy_per_token_kwh 1e-7
        {**tiny_model("tiny-medium", "medium", 0.5), "energy_per_token_kwh": None},
        {**tiny_model("tiny-heavy", "heavy", 1.5), "energy_per_token_kwh": None},
    ])))  # fmt: skip
    empty = CarbonPredictor(config)
    p = empty.predict("tiny-light", prompt_chars=40, max_new_tokens=50)
    assert p is not None and p.energy_kwh == pytest.approx(50 * 1e-7)
    assert "per-token figures at max_new_tokens (50)" in p.basis
    cold = empty.predict("tiny-light", prompt_chars=40, max_new_tokens=50, loaded=False)
    assert cold is not None and cold.basis.endswith("; loading not included")  # nor known
    assert empty.predict("tiny-heavy", prompt_chars=40, max_new_tokens=50) is None
    history = [record("tiny-medium", NOW, energy_kwh=1e-5, completion_tokens=10) for _ in range(3)]
    learned = CarbonPredictor(config, history)
    medium = learned.predict("tiny-medium", 40, 50)
    heavy = learned.predict("tiny-heavy", 40, 50)
    assert medium is not None and heavy is not None
    assert heavy.energy_kwh == pytest.approx(medium.energy_kwh * 3)  # 1.5B / 0.5B
    assert "tiny-medium's logged requests, scaled by parameter count (3x)" in heavy.basis


def test_a_local_models_prediction_caps_its_output_at_its_ggufs_context(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """tiny-light is configured for 512 tokens, but its GGUF was trained for 64: llama.cpp
    runs it at 64, so it writes at most 64 tokens, and a request is predicted (and kept
    within the budgets) at that. Until 2026-12-04 the cap was the configured 512: a
    prediction 8x too large, which could step a request down for nothing."""
    from routerllm.config import GGUFSource

    from .conftest import gguf_with_context_length

    short = gguf_with_context_length(tmp_path / "short.gguf", 64)
    tiny_config.model("tiny-light").gguf = GGUFSource(path=str(short))
    tiny_config.generation.max_new_tokens = 1000
    with RouterLLM(tiny_config) as system:
        result = system.generate("hi", model="tiny-light")
    assert result.predicted is not None and result.predicted.completion_tokens == 64
    assert result.predicted.energy_kwh == pytest.approx(64 * 1e-7)


def test_a_loaded_local_models_prediction_counts_the_prompt_as_the_model_reads_it(
    tiny_config: AppConfig,
) -> None:
    """The prediction counted the bare prompt (20 characters: 5 tokens) where the model
    read 18 (its BOS, the system text and the prompt): a loaded llama.cpp model's
    prediction counts the tokens it will read, the count the log keeps and the fit of
    its energy per prompt token is made from."""
    asked = GenerationRequest("hello there, friend!", system="You are a helpful assistant who answers in Python.")  # fmt: skip
    with RouterLLM(tiny_config) as system:
        system.manager.backend("tiny-light").load()
        for _ in range(4):  # cold (the config's figures), then from its own history
            predicted = system.predict(asked, "tiny-light")
            result = system.generate(asked, model="tiny-light")
            assert predicted is not None and predicted.prompt_tokens == result.prompt_tokens > 5


def test_a_model_whose_file_was_replaced_is_predicted_with_its_load(tmp_path: Path) -> None:
    # loaded, its file replaced: it is loaded again before it answers (the new weights),
    # so its prediction (the budgets' admission) counts that load as a cold model's
    # does; it was predicted as the loaded model, without it
    import os
    import shutil

    from .conftest import gguf_with_other_weights, tiny_gguf_path

    path = tmp_path / "light.gguf"
    shutil.copyfile(tiny_gguf_path(), path)
    models = [tiny_model("tiny-light", "light", 0.1, gguf={"path": str(path)})]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    history = [record("tiny-light", NOW, energy_kwh=1e-5, loading_kwh=1e-3) for _ in range(3)]
    seeded_log(Path(config.log.path), history).close()
    with RouterLLM(config) as system:
        cold = system.predict("hi", "tiny-light")
        system.manager.backend("tiny-light").load()
        warm = system.predict("hi", "tiny-light")
        os.replace(gguf_with_other_weights(tmp_path / "new.gguf"), path)
        replaced = system.predict("hi", "tiny-light")
    assert cold is not None and warm is not None and replaced is not None
    assert cold.energy_kwh - warm.energy_kwh == pytest.approx(1e-3)
    assert replaced.energy_kwh == pytest.approx(cold.energy_kwh)
    assert replaced.basis == cold.basis and cold.basis.endswith(", loading included")


def test_counting_a_prompt_for_a_prediction_never_loads_nor_waits_for_a_model(
    tiny_config: AppConfig,
) -> None:
    """The count is read under the model's lock, without waiting: a model another caller
    holds (generating, or being unloaded) is counted from its GGUF's vocabulary alone, as
    one not loaded is, which is not loaded for a prediction (it was, where it was unloaded
    in between); the vocabulary's count is the loaded model's, and closing the manager
    closes it."""
    import threading

    asked = GenerationRequest("hello there, friend!")
    with RouterLLM(tiny_config) as system:
        manager, backend = system.manager, system.manager.backend("tiny-light")
        unloaded = manager.prompt_tokens_now("tiny-light", asked)
        assert unloaded is not None and not backend.loaded
        backend.load()
        counted = manager.prompt_tokens_now("tiny-light", asked)
        assert counted == unloaded and counted > 5
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with manager.generating("tiny-light"):
                held.set()
                done.wait(30)

        other = threading.Thread(target=hold)
        other.start()
        try:
            assert held.wait(30)
            assert manager.prompt_tokens_now("tiny-light", asked) == counted  # at once, no wait
        finally:
            done.set()
            other.join(30)
        assert manager.prompt_tokens_now("tiny-light", asked) == counted
    assert not manager._vocabs._vocabs  # closed with the manager


def test_a_long_system_text_for_a_model_not_loaded_is_refused_by_the_per_request_budget(
    tmp_path: Path,
) -> None:
    """tiny-light's log (bare prompts, a line of 10 tokens plus one per 4 characters, 1e-6
    kWh a token) predicted a 20-character prompt at 15 prompt tokens, though its system
    text made the model read hundreds: the request, for a model not loaded, went through a
    per-request budget of 100 tokens' CO2 it broke. Counted from the GGUF's vocabulary
    (no weights loaded), it is refused before it runs."""
    logged = [(20, 15, 5), (40, 20, 12), (80, 30, 7), (160, 50, 20)]  # chars, prompt, output
    seeded_log(tmp_path / "requests.sqlite", [
        record("tiny-light", NOW, prompt_chars=c, prompt_tokens=p, completion_tokens=o, energy_kwh=1e-6 * (p + o))
        for c, p, o in logged
    ]).close()  # fmt: skip
    limit = 100 * 1e-6 * grid_intensity_g_per_kwh("FRA") / 1000
    config = budget_config(tmp_path, {"co2_kg": {"per_request": limit}})
    system_text = "You are a careful assistant. Answer in Python, with type hints and tests. " * 12
    asked = GenerationRequest("hello there, friend!", system=system_text)
    with RouterLLM(config) as system:
        predicted = system.predict(asked, "tiny-light")
        assert predicted is not None and predicted.prompt_tokens > 100
        with pytest.raises(BudgetExceededError, match="tiny-light is predicted"):
            system.generate(asked, model="tiny-light")
        # nothing loaded; its routing alone logged, as refused
        assert not system.manager.backend("tiny-light").loaded and system.log.count() == 5
        assert [r.finish_reason for r in system.log.records()][4:] == ["refused:budget"]
        system.manager.backend("tiny-light").load()  # the loaded model reads as many
        assert system.manager.prompt_tokens_now("tiny-light", asked) == predicted.prompt_tokens


def test_predictor_guards_against_what_the_log_cannot_tell(tmp_path: Path) -> None:
    config = light_and_priced_remote(tmp_path)
    unmeasured = [
        dataclasses.replace(
            r, components={"llm_inference": Measurement("llm_inference", 1.0, 0.0, 0.0, "none")}
        )  # fmt: skip
        for r in [record("tiny-light", NOW)] * 5
    ]  # logged with carbon tracking off: nothing to learn energy from
    predictor = CarbonPredictor(config, unmeasured)
    p = predictor.predict("tiny-light", 40, 50)
    assert p is not None and "config's per-token figures" in p.basis and p.energy_kwh == pytest.approx(50e-7)  # fmt: skip
    # a remote model is predicted from its prices before any request (its CO2 is not known)
    remote = predictor.predict("remote", prompt_chars=400, max_new_tokens=100)
    assert remote is not None and remote.cost_usd == pytest.approx((100 * 1.0 + 100 * 2.0) / 1e6)
    # prompts of one length: the tokens of a longer prompt scale with its length
    same = [record("tiny-light", NOW, prompt_chars=30, prompt_tokens=9, completion_tokens=n, energy_kwh=1e-6 * n) for n in (5, 9, 14)]  # fmt: skip
    long = CarbonPredictor(config, same).predict("tiny-light", prompt_chars=1500, max_new_tokens=20)
    assert long is not None and long.prompt_tokens == 450
    # answers cut at an earlier max_new_tokens of 8 may have gone on: at most the new cap
    cut = [dataclasses.replace(record("tiny-light", NOW, completion_tokens=8, energy_kwh=8e-6), finish_reason="length") for _ in range(5)]  # fmt: skip
    capped = CarbonPredictor(config, cut).predict("tiny-light", 40, max_new_tokens=400)
    assert capped is not None and capped.completion_tokens == 400
    unknown = [dataclasses.replace(r, finish_reason="") for r in cut]  # e.g. an older log's
    guessed = CarbonPredictor(config, unknown).predict("tiny-light", 40, max_new_tokens=400)
    assert guessed is not None and guessed.completion_tokens == 400


def test_a_model_without_history_reads_its_prompt_as_the_logged_models_do(tmp_path: Path) -> None:
    """A remote model with no history had its prompt tokens guessed at 4 characters a
    token, though the log showed code prompts reading 1 a 3 characters plus a 10-token
    chat template: a 1,500-character prompt was priced at 375 prompt tokens where the
    logged models read about 510. Now the log's model with the most history lends its
    characters-to-tokens line (said in the basis); with no history at all, 4 a token."""
    config = light_and_priced_remote(tmp_path)
    logged = [record("tiny-light", NOW, prompt_chars=c, prompt_tokens=10 + c // 3, energy_kwh=1e-5) for c in (300, 600, 900, 1200)]  # fmt: skip
    remote = CarbonPredictor(config, logged).predict(
        "remote", prompt_chars=1500, max_new_tokens=100
    )
    assert remote is not None and remote.prompt_tokens == 510
    assert remote.cost_usd == pytest.approx((510 * 1.0 + 100 * 2.0) / 1e6)
    assert "prompt tokens as tiny-light's 4 logged requests read them" in remote.basis
    alone = CarbonPredictor(config, []).predict("remote", prompt_chars=1500, max_new_tokens=100)
    assert alone is not None and alone.prompt_tokens == 375 and "characters a token" in alone.basis


def test_the_predictor_learns_an_escalated_request_from_the_answering_models_own_method(
    tiny_config: AppConfig,
) -> None:
    """A request escalated from tiny-light to tiny-heavy logs its generation with their
    methods joined ("codecarbon:load-estimate+codecarbon:failed"): a joined method was
    never "unmeasured", so tiny-heavy's generation CodeCarbon failed to measure taught
    the predictor that it spends nothing."""
    first = Measurement("llm_inference", 0.5, 2e-6, 1e-6, "codecarbon:load-estimate")
    measured = [record("tiny-heavy", NOW, energy_kwh=1e-5, completion_tokens=10)] * 3
    failed = [
        dataclasses.replace(
            r,
            components={**r.components, "llm_inference": Measurement("llm_inference", 1.5, 2e-6, 1e-6, "codecarbon:load-estimate+codecarbon:failed")},
            escalated={"llm_inference": first},
        )
        for r in [record("tiny-heavy", NOW, completion_tokens=10)] * 3
    ]  # fmt: skip
    predictor = CarbonPredictor(tiny_config, measured + failed)
    profile = predictor.profile("tiny-heavy")
    assert profile is not None and profile.requests == 3
    assert profile.kwh_per_output_token == pytest.approx(1e-6)
    # measured by both models: the answering model's own part is learned
    both = [dataclasses.replace(r, components={**r.components, "llm_inference": dataclasses.replace(r.components["llm_inference"], energy_kwh=1.2e-5, method="codecarbon:load-estimate")}) for r in failed]  # fmt: skip
    learned = CarbonPredictor(tiny_config, both).profile("tiny-heavy")
    assert learned is not None and learned.kwh_per_output_token == pytest.approx(1e-6)


def test_an_answer_cancelled_half_way_teaches_the_predictor_nothing(
    tiny_config: AppConfig,
) -> None:
    """An answer stopped because its client left (finish reason "cancelled"): its 2
    tokens were learned as an answer's length (predicting 2-token answers, a budget let
    through what a whole answer costs) and its rate as 2 tokens carrying the prompt's
    energy."""
    whole = [record("tiny-light", NOW, energy_kwh=1e-5, completion_tokens=100)] * 3
    stopped = dataclasses.replace(record("tiny-light", NOW, energy_kwh=2e-6, completion_tokens=2), finish_reason="cancelled")  # fmt: skip
    predictor = CarbonPredictor(tiny_config, whole + [stopped] * 5)
    for _ in range(5):
        predictor.observe(stopped)
    profile = predictor.profile("tiny-light")
    assert profile is not None and profile.requests == 3
    assert profile.kwh_per_output_token == pytest.approx(1e-7)
    p = predictor.predict("tiny-light", 40, max_new_tokens=200)
    assert p is not None and p.completion_tokens == 100


def test_predictor_learns_from_each_new_request(tiny_config: AppConfig) -> None:
    predictor = CarbonPredictor(tiny_config, [record("tiny-light", NOW, energy_kwh=1e-6, completion_tokens=10)] * 3)  # fmt: skip
    first = predictor.predict("tiny-light", 40, 100)
    for _ in range(30):
        predictor.observe(record("tiny-light", NOW, energy_kwh=1e-5, completion_tokens=10))
    second = predictor.predict("tiny-light", 40, 100)
    assert first is not None and second is not None
    assert second.energy_kwh > 5 * first.energy_kwh


def test_a_restarted_predictor_learns_from_the_measured_requests_behind_cached_ones(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    """The latest 200 measured requests, as a running predictor keeps them: not the latest
    200 of any kind, which a busy cache fills with answers that teach nothing."""
    from routerllm.carbon.predictor import HISTORY

    cached = {c: Measurement(c, 0.0, 0.0, 0.0, "cache") for c in ("model_loading", "llm_inference")}  # fmt: skip
    measured = [record("tiny-heavy", NOW + timedelta(seconds=i), energy_kwh=1e-5, completion_tokens=10) for i in range(5)]  # fmt: skip
    repeats = [dataclasses.replace(record("tiny-heavy", NOW + timedelta(minutes=1, seconds=i)), components=cached) for i in range(HISTORY)]  # fmt: skip
    log = seeded_log(tmp_path / "log.sqlite", measured + repeats)
    running = CarbonPredictor(tiny_config, measured + repeats)
    restarted = CarbonPredictor.from_log(tiny_config, log)
    assert restarted.profile("tiny-heavy") == running.profile("tiny-heavy") is not None
    assert restarted.predict("tiny-heavy", 40, 64) == running.predict("tiny-heavy", 40, 64)
    assert [r.id for r in log.latest("tiny-heavy", 2)] == [r.id for r in repeats[-2:]]


def test_a_restarted_predictor_learns_from_the_answered_requests_behind_failed_ones(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    """Requests whose generation failed partway (finish reason "error", their generation
    measured) teach a running predictor nothing; the log, asked for the latest measured
    requests, returned them, so a restart after 200 such failures had no answer left to
    learn from and predicted from the config's figures instead."""
    from routerllm.carbon.predictor import HISTORY

    generation = {"llm_inference": Measurement("llm_inference", 2.0, 3e-6, 1e-6, "codecarbon:load-estimate")}  # fmt: skip
    answered = [record("tiny-heavy", NOW + timedelta(seconds=i), energy_kwh=1e-5, completion_tokens=10) for i in range(5)]  # fmt: skip
    failed = [dataclasses.replace(record("tiny-heavy", NOW + timedelta(minutes=1, seconds=i), completion_tokens=0), components=generation, finish_reason="error") for i in range(HISTORY)]  # fmt: skip
    log = seeded_log(tmp_path / "log.sqlite", answered + failed)
    running = CarbonPredictor(tiny_config, answered + failed)
    restarted = CarbonPredictor.from_log(tiny_config, log)
    assert restarted.profile("tiny-heavy") == running.profile("tiny-heavy") is not None
    assert restarted.predict("tiny-heavy", 40, 64) == running.predict("tiny-heavy", 40, 64)


def test_a_restarted_predictor_learns_from_the_answered_requests_behind_cancelled_ones(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    """Answers stopped because their client left (finish reason "cancelled") teach a
    running predictor nothing; the log, asked for the latest measured requests, returned
    them, so a restart after 200 of them had nothing left to learn from."""
    from routerllm.carbon.predictor import HISTORY

    answered = [record("tiny-heavy", NOW + timedelta(seconds=i), energy_kwh=1e-5, completion_tokens=10) for i in range(5)]  # fmt: skip
    cancelled = [dataclasses.replace(record("tiny-heavy", NOW + timedelta(minutes=1, seconds=i), energy_kwh=2e-6, completion_tokens=1), finish_reason="cancelled") for i in range(HISTORY)]  # fmt: skip
    log = seeded_log(tmp_path / "log.sqlite", answered + cancelled)
    running = CarbonPredictor(tiny_config, answered + cancelled)
    restarted = CarbonPredictor.from_log(tiny_config, log)
    assert restarted.profile("tiny-heavy") == running.profile("tiny-heavy") is not None
    assert restarted.predict("tiny-heavy", 40, 64) == running.predict("tiny-heavy", 40, 64)


@pytest.mark.parametrize(
    ("joined", "earlier"),
    [("codecarbon:load-estimate+codecarbon:failed", "codecarbon:load-estimate"),
     ("estimate:per-token+none", "estimate:per-token")],
)  # fmt: skip
def test_a_restarted_predictor_judges_escalated_requests_by_the_answering_models_own_method(
    tmp_path: Path, tiny_config: AppConfig, joined: str, earlier: str
) -> None:
    """A running predictor leaves out an escalated request whose own generation was not
    measured (its method after the earlier models', joined by "+"); the log, asked for
    the latest measured requests, judged the whole joined method, so a restart filled its
    200 with those, left them out, and had nothing left to learn from."""
    from routerllm.carbon.predictor import HISTORY

    first = Measurement("llm_inference", 0.5, 2e-6, 1e-6, earlier)
    unmeasured = {"llm_inference": Measurement("llm_inference", 1.5, 2e-6, 1e-6, joined)}
    measured = [record("tiny-heavy", NOW + timedelta(seconds=i), energy_kwh=1e-5, completion_tokens=10) for i in range(5)]  # fmt: skip
    escalated = [dataclasses.replace(r, components={**r.components, **unmeasured}, escalated={"llm_inference": first}) for r in (record("tiny-heavy", NOW + timedelta(minutes=1, seconds=i)) for i in range(HISTORY))]  # fmt: skip
    log = seeded_log(tmp_path / "log.sqlite", measured + escalated)
    running = CarbonPredictor(tiny_config, measured + escalated)
    restarted = CarbonPredictor.from_log(tiny_config, log)
    assert restarted.profile("tiny-heavy") == running.profile("tiny-heavy") is not None
    assert restarted.predict("tiny-heavy", 40, 64) == running.predict("tiny-heavy", 40, 64)


def test_a_log_without_prompt_tokens_charges_a_prompt_token_as_an_output_token() -> None:
    """The mirror of answers of no tokens: a log whose requests read no prompt token
    (a backend that reported none) charges a prompt token what an output token costs,
    1e-5 kWh over 100 output tokens, not nothing."""
    history = [record("m", NOW, prompt_chars=40 * k, prompt_tokens=0, completion_tokens=10 * k, energy_kwh=1e-6 * k) for k in (1, 2, 3, 4)]  # fmt: skip
    p = fit_profile(history)
    assert (p.kwh_per_prompt_token, p.kwh_per_output_token) == pytest.approx((1e-7, 1e-7))


def test_a_model_without_history_is_scaled_from_the_peer_nearest_in_size_by_ratio(
    tmp_path: Path,
) -> None:
    """tiny-medium (0.5B, no figures) between tiny-light (0.1B, 5x smaller) and tiny-heavy
    (1.5B, 3x larger) is scaled from tiny-heavy, the nearer by ratio though not by
    difference: its 2e-5 kWh (20 prompt tokens at 5e-7, 10 output at 1e-6) / 3."""
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[
        tiny_model("tiny-light", "light", 0.1),
        {**tiny_model("tiny-medium", "medium", 0.5), "energy_per_token_kwh": None},
        {**tiny_model("tiny-heavy", "heavy", 1.5), "energy_per_token_kwh": None},
    ])))  # fmt: skip
    history = [record(m, NOW, energy_kwh=e, completion_tokens=10) for m, e in [("tiny-heavy", 1e-5), ("tiny-light", 1e-6)] for _ in range(3)]  # fmt: skip
    medium = CarbonPredictor(config, history).predict("tiny-medium", 40, 50)
    assert medium is not None and medium.energy_kwh == pytest.approx(2e-5 / 3)
    assert "tiny-heavy's logged requests, scaled by parameter count (0.333x)" in medium.basis


def test_prompts_a_fifth_apart_in_length_teach_the_chat_templates_tokens(
    tiny_config: AppConfig,
) -> None:
    """Prompts of 100 to 124 characters (a spread of a fifth of their mean, over the tenth
    a slope needs) read 10 template tokens + 1 a 4 characters: a prompt of 43 characters is
    10 + 10.75 = 20.75 tokens, 21 rounded (not 14.6, in proportion to the characters, nor
    20 cut)."""
    history = [record("tiny-light", NOW, prompt_chars=c, prompt_tokens=10 + c // 4) for c in (100, 108, 116, 124)]  # fmt: skip
    p = fit_profile(history)
    assert (p.base_prompt_tokens, p.prompt_tokens_per_char) == pytest.approx((10.0, 0.25))
    predicted = CarbonPredictor(tiny_config, history).predict("tiny-light", 43, 50)
    assert predicted is not None and predicted.prompt_tokens == 21


def test_prompt_and_output_lengths_in_step_charge_each_token_the_whole_energy() -> None:
    """Requests of 10k prompt and 5k output tokens spending 1e-6 k kWh cannot tell a
    prompt token's cost from an output token's (any split fits): each is charged the
    whole, 1e-5 kWh over 100 prompt tokens and over 50 output tokens, so a longer answer
    than the log's is not underpriced. Fitted, the split was 8e-8 and 4e-8."""
    history = [record("m", NOW, prompt_chars=40 * k, prompt_tokens=10 * k, completion_tokens=5 * k, energy_kwh=1e-6 * k) for k in (1, 2, 3, 4)]  # fmt: skip
    p = fit_profile(history)
    assert (p.kwh_per_prompt_token, p.kwh_per_output_token) == pytest.approx((1e-7, 2e-7))


# -- the budget ---------------------------------------------------------------------
def test_status_counts_each_windows_requests_and_every_tag(tmp_path: Path) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(days=2), co2_kg=1.0),
        record("a", NOW - timedelta(hours=5), co2_kg=0.2, cost_usd=0.5),
        record("b", NOW - timedelta(minutes=30), co2_kg=0.01, cost_usd=0.1),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05, "daily": 1.0}, "cost_usd": {"daily": 2.0}})  # fmt: skip
    status = {(s.quantity, s.window): s for s in CarbonBudget(config, log, lambda: NOW).status()}
    assert status["co2_kg", "hourly"].spent == pytest.approx(0.01)
    assert status["co2_kg", "hourly"].share == pytest.approx(0.2)
    assert status["co2_kg", "daily"].spent == pytest.approx(0.21)
    assert status["cost_usd", "daily"].spent == pytest.approx(0.6)


def test_a_spent_window_refuses_every_request_until_old_requests_leave_it(tmp_path: Path) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(minutes=50), co2_kg=0.03),
        record("a", NOW - timedelta(minutes=20), co2_kg=0.03),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="hourly CO2 budget is 120% spent") as e:
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    # the request 50 minutes ago leaves the window 10 minutes from now: then 0.03 < 0.05
    assert e.value.retry_at == left_at(NOW + timedelta(minutes=10))
    assert "from 2026-12-02 12:10:00 UTC" in str(e.value)


def test_the_reports_budget_table_keeps_a_window_spent_far_over_its_limit_readable(
    tmp_path: Path,
) -> None:
    """A share of 10,000 % or more (a tight budget, or one lowered since) ran into the
    spent amount before it: ``500 g CO2500000.0%``."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {"co2_kg": {"hourly": 1e-4}})
    recent = datetime.now(timezone.utc) - timedelta(minutes=5)
    seeded_log(Path(config.log.path), [record("tiny-light", recent, co2_kg=0.5)]).close()
    lines = report_lines(logged_report(config))
    row = next(line for line in lines if line.startswith("CO2 in last 60 minutes"))
    assert row.split()[-8:] == ["100", "mg", "CO2", "500", "g", "CO2", "500000.0%", "1"]


def test_the_reports_tables_keep_a_co2_of_100_kg_or_more_apart_from_its_energy(
    tmp_path: Path,
) -> None:
    """A model's, router's or day's CO2 of 100 kg or more (a long-lived server's log)
    outgrew its column and ran into the energy before it: ``4.000e+02200000.0000``."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    # in units (carbon/units.py) 200 kg is "200 kg"; 200,000 kg, "200,000 kg", is the one
    # wider than its column
    for kg, said in ((200.0, ["400", "kWh", "200", "kg"]), (2e5, ["400,000", "kWh", "200,000", "kg"])):  # fmt: skip
        (tmp_path / str(kg)).mkdir()
        config = budget_config(tmp_path / str(kg), {})
        seeded_log(Path(config.log.path), [record("tiny-light", NOW, co2_kg=kg)]).close()
        lines = report_lines(logged_report(config))
        starts = ("tiny-light ", "test ", "2026-12-02 ")  # per model, per router, per day
        rows = [line.split() for line in lines if line.startswith(starts) and "too few" not in line]  # fmt: skip
        assert len(rows) == 3
        assert all(row[3:7] == said for row in rows), rows


def test_the_reports_tables_keep_a_large_cost_or_time_apart_from_the_co2(tmp_path: Path) -> None:
    """A day's cost of $1000 or more, or a model's time of a million seconds or more (a
    long-lived server's log), outgrew its column and ran into the CO2 before it:
    ``1000.00001234.500000`` and ``1000.00002000000.0``."""
    import dataclasses

    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {})
    big = dataclasses.replace(record("tiny-light", NOW, co2_kg=1.0, cost_usd=1234.5), latency_s=2e6)  # fmt: skip
    seeded_log(Path(config.log.path), [big]).close()
    lines = report_lines(logged_report(config))
    model = next(line for line in lines if line.startswith("tiny-light ") and "too few" not in line)
    assert model.split()[-3:] == ["1", "kg", "2000000.0"], model
    day = next(line for line in lines if line.startswith("2026-12-02 "))
    assert day.split()[-3:] == ["1", "kg", "$1,234.50"], day  # in cents


def test_the_reports_cost_too_small_for_its_decimals_is_not_printed_as_zero(
    tmp_path: Path,
) -> None:
    """A measured cost under half a millionth of a dollar (a cached answer's routing, a
    tiny local model's few tokens at the electricity price) read "cost $0.000000", and
    0.000000 per day, as if it had cost nothing."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {})
    seeded_log(Path(config.log.path), [record("tiny-light", NOW, co2_kg=1e-7, cost_usd=3e-8)]).close()  # fmt: skip
    lines = report_lines(logged_report(config))
    assert "cost $0.00000003 " in lines[0], lines[0]
    day = next(line for line in lines if line.startswith("2026-12-02 "))
    assert day.split()[-1] == "$0.00000003", day


def test_the_reports_tables_keep_100_million_output_tokens_and_10000_dollars_apart(
    tmp_path: Path,
) -> None:
    """A model's, router's or day's 100 million output tokens or more outgrew the `out
    tok` column and ran into the requests before it (``1200000000``), and a day's cost
    of $10,000 or more into its CO2 (``1.000010000.000000``). Each column now has a
    space of its own; a row of normal size prints as it did."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {})
    big = record("tiny-light", NOW, co2_kg=1e-3, cost_usd=10000.0, completion_tokens=200_000_000)
    seeded_log(Path(config.log.path), [big]).close()
    lines = report_lines(logged_report(config))
    starts = ("tiny-light ", "test ", "2026-12-02 ")  # per model, per router, per day
    rows = [line.split() for line in lines if line.startswith(starts) and "too few" not in line]
    assert [row[1:3] for row in rows] == [["1", "200000000"]] * 3
    assert rows[2][3:] == ["2", "Wh", "1", "g", "$10,000.00"]
    (tmp_path / "small").mkdir()
    config = budget_config(tmp_path / "small", {})
    small = record("tiny-light", NOW, co2_kg=1e-3, cost_usd=0.5, completion_tokens=10)
    seeded_log(Path(config.log.path), [small]).close()
    lines = report_lines(logged_report(config))
    assert "tiny-light                        1       10        2 Wh       1 g      1.0" in lines
    assert (
        "2026-12-02                        1       10        2 Wh       1 g           $0.5" in lines
    )


@pytest.mark.parametrize(
    ("cost_usd", "ending"),
    [
        # cents from $1 up: 13 characters, within the column's room
        (1234567.0, "  $1,234,567.00"),
        # 15 characters, one past the column's room: the column widens for it
        (123456789.0, " $123,456,789.00"),
    ],
)
def test_a_days_cost_in_cents_ends_under_its_column(tmp_path: Path, cost_usd: float, ending: str) -> None:  # fmt: skip
    """Dollars are written in cents from $1 up ("$1,234,567.00"): a day's cost still ends
    under "cost" with a space before it, the column widened where the figure needs it."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {})
    seeded_log(Path(config.log.path), [record("tiny-light", NOW, co2_kg=1e-3, cost_usd=cost_usd)]).close()  # fmt: skip
    lines = report_lines(logged_report(config))
    head = next(line for line in lines if line.startswith("per day (UTC)"))
    day = next(line for line in lines if line.startswith("2026-12-02 "))
    assert day.endswith(ending) and len(day) == len(head), (head, day)


def schema_before_finish_reason() -> str:
    """The request log's schema as it was before finish_reason (and the grid's, the
    answer length's and the CPU share's columns after it) were added."""
    from routerllm.carbon.log_schema import SCHEMA

    from .conftest import schema_before_cpu_share

    later = ",\n    finish_reason TEXT NOT NULL DEFAULT '',\n    grid_country TEXT NOT NULL DEFAULT '',\n    grid_region TEXT NOT NULL DEFAULT '',\n    grid_g_per_kwh REAL,\n    completion_chars INTEGER"  # fmt: skip
    assert later in SCHEMA
    return schema_before_cpu_share().replace(later, "")


def test_a_log_from_before_finish_reason_is_read_and_then_given_the_column(tmp_path: Path) -> None:
    import sqlite3

    from routerllm.carbon.log_schema import TABLES
    from routerllm.exceptions import RequestLogError

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(schema_before_finish_reason())
    seeded = record("a", NOW, co2_kg=0.01)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
            seeded.id, seeded.timestamp, seeded.prompt_sha256, 40, "a", "test", 1.0, 20, 10,
            1.0, 0.02, 0.01, 0.0, "",
        ))  # fmt: skip
    with RequestLog(path, read_only=True) as old:
        (r,) = old.records()
        assert (r.id, r.finish_reason) == (seeded.id, "")
    with sqlite3.connect(path) as db:  # an older version stored what it was given
        db.execute("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
            "odd", "2026-12-02T08:00:00-05:00", "0" * 64, 40, "a", "test", 1.0, 20, 10, 1.0, 0.0,
            0.0, 0.0, "",
        ))  # fmt: skip
    with RequestLog(path) as log:  # opened for writing: the column is added, times made UTC
        log.append(dataclasses.replace(record("a", NOW + timedelta(hours=1)), finish_reason="length"))  # fmt: skip
        assert [(r.timestamp[11:16], r.finish_reason) for r in log.records()] == [
            ("12:00", ""), ("13:00", ""), ("13:00", "length")
        ]  # fmt: skip
        with sqlite3.connect(path) as db:
            db.execute("UPDATE requests SET timestamp = 'garbage' WHERE id = 'odd'")
        with pytest.raises(RequestLogError, match="timestamp 'garbage' is not an ISO time"):
            list(log.spending(""))
    with sqlite3.connect(path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(requests)")] == TABLES["requests"]


def test_an_older_logs_times_with_offsets_are_compared_as_instants_when_read_only(
    tmp_path: Path,
) -> None:
    """A log written before 2026-12-02 may hold times with an offset (rows added through
    the Python API, stored as given); the next write makes them UTC, but a report read
    them as they were: compared as text, --since took a request from before it, the log
    was ordered by local times and the per-day rows put a request on its local date.
    They are read as instants now, and the log is left as it is."""
    from routerllm.carbon.report import logged_report

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(schema_before_finish_reason())
        for rid, stamp in (
            ("east", "2026-12-02T03:00:00+05:00"),  # 2026-12-01 22:00 UTC
            ("utc", "2026-12-01T23:30:00.000000+00:00"),
        ):
            db.execute(
                "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rid,
                    stamp,
                    "0" * 64,
                    40,
                    "tiny-light",
                    "test",
                    1.0,
                    20,
                    10,
                    1.0,
                    2e-6,
                    1e-6,
                    0.0,
                    "",
                ),  # fmt: skip
            )
            db.execute(
                "INSERT INTO components VALUES (?,?,?,?,?,?)",
                (rid, "llm_inference", 1.0, 2e-6, 1e-6, "test"),
            )
    before = path.read_bytes()
    with RequestLog(path, read_only=True) as old:
        assert [r.id for r in old.records()] == ["east", "utc"]  # 22:00, then 23:30 UTC
        assert [r.id for r in old.records(since="2026-12-01T23:00")] == ["utc"]
        assert [r.id for r in old.records(since="2026-12-01T21:30-00:30")] == ["east", "utc"]
    config = budget_config(tmp_path, {})
    assert logged_report(config, log_path=path).by_day.keys() == {"2026-12-01"}
    late = logged_report(config, since="2026-12-01T23:00", log_path=path)
    assert late.totals.requests == 1 and late.by_day["2026-12-01"].requests == 1
    assert path.read_bytes() == before  # read only: not migrated
    with RequestLog(path) as log:  # the next write migrates it: the same answers
        assert [r.id for r in log.records(since="2026-12-01T23:00")] == ["utc"]


def test_a_logged_spending_that_is_not_a_number_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    from routerllm.carbon.report import logged_report
    from routerllm.exceptions import RequestLogError

    config = budget_config(tmp_path, {"co2_kg": {"hourly": 0.05}, "cost_usd": {"daily": 1.0}})
    first, second = record("tiny-light", NOW, co2_kg=0.01), record("tiny-light", NOW, co2_kg=0.01)  # fmt: skip
    seeded_log(Path(config.log.path), [first, second]).close()
    for column, value in (("co2_kg", "n/a"), ("cost_usd", "")):
        with sqlite3.connect(config.log.path) as db:  # changed by another program
            db.execute(f"UPDATE requests SET {column} = ? WHERE id = ?", (value, second.id))
        # the report's budgets add them up: a one-line error, not a ValueError or TypeError
        with pytest.raises(RequestLogError, match=f"request {second.id}'s {column} is {value!r}, not a number"):  # fmt: skip
            logged_report(config)
        with sqlite3.connect(config.log.path) as db:
            db.execute(f"UPDATE requests SET {column} = 0.01 WHERE id = ?", (second.id,))


def test_a_request_that_fits_once_older_ones_leave_the_window_is_told_when(
    tmp_path: Path,
) -> None:
    """Refused for what is left of a window (not for a spent one): waiting helps, so the
    error says from when it fits (the server's Retry-After), as for a spent window."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(minutes=50), co2_kg=0.03),
        record("a", NOW - timedelta(minutes=20), co2_kg=0.015),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"per_request": 0.04, "hourly": 0.05}, "downgrade_at": 1.0})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    ten_minutes = left_at(NOW + timedelta(minutes=10))
    # 5 g left: 10 g (and the 1 g its routing spent) fit once the 30 g leave, in 10 minutes
    with pytest.raises(BudgetExceededError, match="more than the 4 g CO2 left of the hourly budget") as e:  # fmt: skip
        budget.choose("m", ["s"], True, _predict({"m": 0.01}), {"co2_kg": 0.001}, budget.status())
    assert e.value.retry_at == ten_minutes
    assert str(e.value).endswith("lower max_new_tokens, raise the budget, or wait: it fits once older requests leave the window, from 2026-12-02 12:10:00 UTC")  # fmt: skip
    # asked again at retry_at, it fits (a window holds its first instant: the 30 g request
    # leaves it 1 us after its hour, and a retry_at of 12:10 sharp was refused again)
    retried = CarbonBudget(config, log, lambda: datetime.fromisoformat(ten_minutes))
    retried.choose("m", ["s"], True, _predict({"m": 0.01}), {"co2_kg": 0.001}, retried.status())
    with pytest.raises(BudgetExceededError, match="even the smallest model") as e:
        budget.choose("m", ["s"], False, _predict({"m": 0.02, "s": 0.01}), {}, budget.status())
    assert e.value.retry_at == ten_minutes
    # waiting does not help over the per-request limit, nor over the whole window's
    for co2 in (0.045, 0.06):
        config.co2_kg.per_request = 0.1 if co2 > 0.05 else 0.04
        with pytest.raises(BudgetExceededError) as e:
            budget.choose("m", [], True, _predict({"m": co2}), {}, budget.status())
        assert e.value.retry_at is None and "wait" not in str(e.value)


def test_with_two_windows_spent_the_retry_time_is_the_later_one(tmp_path: Path) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(hours=2), co2_kg=0.2),
        record("a", NOW - timedelta(minutes=50), co2_kg=0.06),
        record("a", NOW + timedelta(hours=2), co2_kg=5.0),  # a clock ahead: not in any window yet
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05, "daily": 0.1}})
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="the daily CO2 budget is 260% spent") as e:
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    # hourly frees in 10 minutes, daily only once the 0.2 kg leaves it, in 22 hours
    assert e.value.retry_at == left_at(NOW + timedelta(hours=22))


def test_one_request_that_spent_two_windows_is_refused_once(tmp_path: Path) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=10), co2_kg=0.06, cost_usd=0.02)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "cost_usd": {"hourly": 0.01}})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="hourly") as e:  # both free at the same time
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    assert e.value.retry_at == left_at(NOW + timedelta(minutes=50))


def test_an_answer_that_could_not_be_logged_goes_on_counting(tmp_path: Path) -> None:
    now = [NOW]
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: now[0])
    admission = budget.admit("m", [], True, _predict({"m": 0.01}), {})
    budget.settle(admission, {"co2_kg": 0.02})
    budget.release(admission, logged=False)  # a full disk: answered, not logged
    assert budget.status()[0].spent == pytest.approx(0.02)
    config.co2_kg.hourly = 0.015  # now the unlogged answer fills the hour: wait for it to leave
    with pytest.raises(BudgetExceededError) as e:
        budget.admit("m", [], True, _predict({"m": 0.0}), {})
    assert e.value.retry_at == left_at(NOW + timedelta(hours=1))
    now[0] = NOW + timedelta(minutes=61)
    assert budget.status()[0].spent == 0.0  # out of the hour


def test_an_answer_logged_but_not_written_to_the_emissions_csv_counts_once(
    tmp_path: Path,
) -> None:
    from routerllm.exceptions import RequestLogError

    config = budget_config(tmp_path, {"co2_kg": {"hourly": 1.0}})
    with RouterLLM(config) as system:
        first = system.generate("hello there", model="tiny-light")
        csv = tmp_path / "carbon" / "emissions.csv"
        csv.unlink()
        csv.mkdir()  # the CSV cannot be appended to any more; the SQLite log can
        with pytest.raises(RequestLogError, match="could not be added to") as e:
            system.generate("hello again", model="tiny-light")
        assert e.value.logged and e.value.result is not None
        assert system.log.count() == 2
        assert system.budget is not None
        # counted from its row in the log, not a second time from memory
        expected = first.co2_kg + e.value.result.co2_kg
        assert system.budget.status()[0].spent == pytest.approx(expected, rel=1e-9)
        assert len(system.predictor._seen["tiny-light"]) == 2  # learned, as from the log


def test_an_answer_the_sqlite_log_could_not_take_goes_on_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another process holds the log past the busy timeout: the answer is paid for but has
    # no row, so the budgets count it from memory (they forgot it, the hour let in more)
    from routerllm import sqlite_busy
    from routerllm.exceptions import RequestLogError

    from .conftest import sqlite_held_by_another_process

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    config = budget_config(tmp_path, {"co2_kg": {"hourly": 1.0}})
    with RouterLLM(config) as system:
        first = system.generate("hello there", model="tiny-light")
        held = 'db.execute("BEGIN IMMEDIATE")'
        with sqlite_held_by_another_process(Path(config.log.path), held), pytest.raises(RequestLogError) as e:  # fmt: skip
            system.generate("hello again", model="tiny-light")
        assert not e.value.logged and e.value.result is not None
        assert system.log.count() == 1 and system.budget is not None
        expected = first.co2_kg + e.value.result.co2_kg
        assert system.budget.status()[0].spent == pytest.approx(expected, rel=1e-9)


def test_timestamps_are_logged_in_utc_whatever_offset_they_come_with(tmp_path: Path) -> None:
    from routerllm.exceptions import RequestLogError

    eastern = timezone(timedelta(hours=-5))
    log = seeded_log(tmp_path / "log.sqlite", [record("a", (NOW - timedelta(minutes=10)).astimezone(eastern), co2_kg=0.06)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    assert CarbonBudget(config, log, lambda: NOW).status()[0].spent == pytest.approx(0.06)
    (logged,) = log.records()
    assert logged.timestamp == (NOW - timedelta(minutes=10)).isoformat(timespec="microseconds")
    bad = dataclasses.replace(record("a", NOW), timestamp="yesterday")
    with pytest.raises(RequestLogError, match="has no usable timestamp: 'yesterday' is not"):
        log.append(bad)
    assert log.count() == 1


def _predict(table: dict[str, float]):  # type: ignore[no-untyped-def]
    from routerllm.carbon.predictor import Prediction

    return lambda m: Prediction(m, table[m] * 2, table[m], 0.0, 10, 10, "test figures")


def test_routed_requests_step_down_to_a_model_predicted_to_fit(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.sqlite")
    config = BudgetConfig.model_validate({"co2_kg": {"per_request": 0.001}})
    budget = CarbonBudget(config, log, lambda: NOW)
    predict = _predict({"heavy": 0.003, "medium": 0.0015, "light": 0.0002})
    name, why, p = budget.choose("heavy", ["medium", "light"], False, predict, {}, [])
    assert (name, p and p.model) == ("light", "light")
    assert "heavy is predicted to spend 3 g CO2 (from test figures), more than the 1 g CO2 this request may spend (budgets.co2_kg.per_request), so medium" in why  # fmt: skip
    assert "medium is predicted to spend 1.5 g CO2" in why and why.endswith("so light")
    # what the request has spent already (its routing) counts
    assert budget.choose("medium", ["light"], False, _predict({"medium": 0.0009, "light": 0}), {"co2_kg": 0.0002}, [])[0] == "light"  # fmt: skip
    with pytest.raises(BudgetExceededError, match="even the smallest model: light is predicted"):
        budget.choose("heavy", ["light"], False, _predict({"heavy": 1, "light": 0.002}), {}, [])
    with pytest.raises(BudgetExceededError, match="heavy is predicted .* route the request"):
        budget.choose("heavy", ["light"], True, predict, {}, [])  # a chosen model is not replaced
    # a model without a prediction goes through
    assert budget.choose("heavy", ["light"], False, lambda m: None, {}, [])[0] == "heavy"


def test_near_a_window_limit_routed_requests_go_one_model_smaller(tmp_path: Path) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), co2_kg=0.041)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 0.8})
    budget = CarbonBudget(config, log, lambda: NOW)
    small = _predict({"heavy": 1e-6, "medium": 1e-6, "light": 1e-6})
    name, why, _ = budget.choose("heavy", ["medium", "light"], False, small, {}, budget.status())
    assert name == "medium"
    assert "the hourly CO2 budget is 82% spent (41 g CO2 spent in the last 60 minutes, of 50 g CO2; budgets.co2_kg.hourly), so one model smaller than heavy: medium" in why  # fmt: skip
    assert budget.choose("heavy", ["medium"], True, small, {}, budget.status())[0] == "heavy"
    # what is left of the window bounds the request: 9 g CO2
    name, why, _ = budget.choose("heavy", ["medium", "light"], False, _predict({"medium": 0.01, "light": 0.001}), {}, budget.status())  # fmt: skip
    assert name == "light" and "more than the 9 g CO2 left of the hourly budget" in why


def test_escalation_is_allowed_only_where_the_larger_answer_fits(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.sqlite")
    config = BudgetConfig.model_validate({"cost_usd": {"per_request": 0.01, "daily": 1.0}})
    budget = CarbonBudget(config, log, lambda: NOW)
    from routerllm.carbon.predictor import Prediction

    def predict(m: str) -> Prediction:
        return Prediction(m, 0.0, 0.0, {"light": 0.001, "medium": 0.004}[m], 10, 10, "prices")

    admission = budget.admit("light", [], False, predict, {})
    assert budget.escalation(admission, "medium", predict, {"cost_usd": 0.005}) == ""
    why = budget.escalation(admission, "medium", predict, {"cost_usd": 0.007})
    assert why.startswith("medium is predicted to spend $0.004 (from prices), more than the $0.003")
    # near a limit a cascade does not escalate (it would undo the step down)
    seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(hours=1), cost_usd=0.85)]).close()  # fmt: skip
    why = budget.escalation(admission, "medium", predict, {"cost_usd": 0.001})
    assert why.startswith("the daily cost budget is 85% spent")


def test_a_cascade_does_not_escalate_once_its_first_answer_brings_a_window_near_its_limit(
    tmp_path: Path,
) -> None:
    """The window's share counts what the request itself has spent: 75% logged, and its
    first answer's 10% (spent, not logged yet), is 85% spent. Until 2026-12-03 the check
    left the request's own spending out and escalated there, past ``downgrade_at``."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), co2_kg=0.0375)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 0.8})
    budget = CarbonBudget(config, log, lambda: NOW)
    predict = _predict({"light": 0.001, "medium": 0.002})
    admission = budget.admit("light", [], False, predict, {})
    assert budget.escalation(admission, "medium", predict, {"co2_kg": 0.001}) == ""  # 77%
    why = budget.escalation(admission, "medium", predict, {"co2_kg": 0.005})
    assert why == (
        "the hourly CO2 budget is 85% spent (42.5 g CO2 spent in the last 60 minutes, of "
        "50 g CO2; budgets.co2_kg.hourly)"
    )


def test_requests_running_at_once_hold_their_predictions_against_the_windows(
    tmp_path: Path,
) -> None:
    log = RequestLog(tmp_path / "log.sqlite")
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, log, lambda: NOW)
    predict = _predict({"m": 0.03})
    first = budget.admit("m", [], True, predict, {"co2_kg": 0.001})
    assert (budget.status()[0].spent, budget.status()[0].held) == pytest.approx((0.0, 0.031))
    with pytest.raises(BudgetExceededError, match="more than the 19 g CO2 left of the hourly"):
        budget.admit("m", [], True, predict, {})  # the first one holds 31 g of the 50
    third = budget.admit("m", [], True, _predict({"m": 0.019}), {})  # fits: 50 g held or spent
    with pytest.raises(BudgetExceededError, match=r"100% spent or held \(0 g CO2 spent in the last 60 minutes, 50 g CO2 held by requests running now") as e:  # fmt: skip
        budget.admit("m", [], True, _predict({"m": 0.0}), {})
    assert e.value.retry_at == NOW.isoformat(timespec="microseconds")  # they end soon
    budget.release(third)
    # the first spent more than predicted; then a second one is let in, and takes the window over
    assert budget.settle(first, {"co2_kg": 0.04}) == []
    second = budget.admit("m", [], True, _predict({"m": 0.005}), {})
    broken = budget.settle(second, {"co2_kg": 0.02})
    assert broken == ["it took the hourly CO2 budget past its 50 g CO2"]
    budget.release(first)
    budget.release(second)
    assert budget.status()[0].spent == 0.0  # nothing was logged here


def test_a_request_refused_by_what_running_requests_hold_says_so(tmp_path: Path) -> None:
    # README: requests running at that moment hold their predictions, "messages then say
    # 'spent or held'"; the refusal of a request predicted not to fit said "left of the
    # hourly budget" and "wait ... older requests leave the window", of a window that
    # held nothing logged
    log = RequestLog(tmp_path / "log.sqlite")
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, log, lambda: NOW)
    running = budget.admit("m", [], True, _predict({"m": 0.03}), {})
    with pytest.raises(BudgetExceededError) as e:
        budget.admit("m", [], True, _predict({"m": 0.03}), {})
    assert str(e.value) == (
        "m is predicted to spend 30 g CO2 (from test figures), more than the 20 g CO2 left "
        "of the hourly budget, spent or held (0 g CO2 spent in the last 60 minutes, 30 g CO2 "
        "held by requests running now) (budgets.co2_kg.hourly); shorten the request, lower "
        "max_new_tokens, raise the budget, or wait: it fits once the requests running now "
        "are logged"
    )
    assert e.value.retry_at == NOW.isoformat(timespec="microseconds")  # they end soon
    budget.release(running)


def test_violations_count_requests_over_the_per_request_limit_and_window_breaks() -> None:
    rows = [
        Spending((NOW + timedelta(minutes=m)).isoformat(timespec="microseconds"), co2, 0.0)
        for m, co2 in [(0, 0.02), (10, 0.002), (20, 0.02), (30, 0.02), (90, 0.02), (100, 0.0)]
    ]
    config = BudgetConfig.model_validate({"co2_kg": {"per_request": 0.01, "hourly": 0.05}})
    # windows ending at each request: .02, .022, .042, .062 (broken here), .04 (at 90 the
    # request at 30 is still in, the window being closed), .04
    assert violations(config, rows) == {"co2_kg": {"per_request": 4, "hourly": 1}}
    later = rows[4].timestamp
    assert violations(config, rows, later) == {"co2_kg": {"per_request": 1, "hourly": 0}}
    # read once, as the log streams them (the whole log was held): the same counts
    assert violations(config, iter(rows)) == {"co2_kg": {"per_request": 4, "hourly": 1}}
    both = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05, "daily": 0.07}, "cost_usd": {"per_request": 0.5}})  # fmt: skip
    assert violations(both, iter(rows)) == {"co2_kg": {"hourly": 1, "daily": 1}, "cost_usd": {"per_request": 0}}  # fmt: skip


def test_budget_config_refuses_bad_limits_and_co2_budgets_without_carbon(tmp_path: Path) -> None:
    for budgets in ({"co2_kg": {"hourly": 0}}, {"co2_kg": {"weekly": 1}}, {"downgrade_at": 1.5}):
        with pytest.raises(ConfigError, match="budgets"):
            budget_config(tmp_path, budgets)
    with pytest.raises(ConfigError, match="budgets.co2_kg needs carbon.enabled"):
        budget_config(tmp_path, {"co2_kg": {"daily": 1}}, carbon={"enabled": False})
    # local models without token prices cost their energy, not measured with carbon off
    with pytest.raises(ConfigError, match="budgets.cost_usd needs carbon.enabled"):
        budget_config(tmp_path, {"cost_usd": {"daily": 1}}, carbon={"enabled": False})
    remote = {**tiny_model("r", "heavy", 70.0), "backend": "openai_http", "gguf": None, "base_url": "http://127.0.0.1:9/v1", "model_id": "m", "energy_per_token_kwh": None}  # fmt: skip
    with pytest.raises(ConfigError, match=r"remote model\(s\) r have no energy_per_token_kwh"):
        budget_config(tmp_path, {"co2_kg": {"daily": 1}}, models=[tiny_model("a", "light", 0.1), remote])  # fmt: skip
    # nor does a cost budget hold one without prices: its requests were predicted and logged at $0
    with pytest.raises(ConfigError, match=r"budgets.cost_usd: the remote model\(s\) r have no token prices"):  # fmt: skip
        budget_config(tmp_path, {"cost_usd": {"per_request": 1e-9}}, models=[tiny_model("a", "light", 0.1), remote])  # fmt: skip
    for known in ({"cost_per_1m_output_usd": 1.0}, {"energy_per_token_kwh": 0.0}):  # or free
        budget_config(tmp_path, {"cost_usd": {"daily": 1}}, models=[tiny_model("a", "light", 0.1), {**remote, **known}])  # fmt: skip
    priced = [tiny_model(n, t, b, cost_per_1m_output_usd=1.0) for n, t, b in [("a", "light", 0.1), ("b", "heavy", 1.0)]]  # fmt: skip
    budget_config(tmp_path, {"cost_usd": {"daily": 1}}, carbon={"enabled": False}, models=priced)
    with pytest.raises(ConfigError, match="hourly: must be at least 1e-12"):
        budget_config(tmp_path, {"co2_kg": {"hourly": 1e-320}})


# -- the routed system --------------------------------------------------------------
def test_a_routed_request_goes_to_the_largest_model_predicted_to_fit(tmp_path: Path) -> None:
    config = budget_config(tmp_path, {"co2_kg": {"per_request": 1e-4}})
    old = NOW - timedelta(days=3)  # history that is outside every window
    seeded_log(Path(config.log.path), [
        *(record("tiny-heavy", old, energy_kwh=1e-3, completion_tokens=8) for _ in range(3)),
        *(record("tiny-medium", old, energy_kwh=1e-3, completion_tokens=8) for _ in range(3)),
    ]).close()  # fmt: skip
    with RouterLLM(config) as system:
        assert system.route(CODE).model == "tiny-heavy"
        result = system.generate(CODE)
        assert result.model == "tiny-light"
        assert "tiny-heavy is predicted to spend" in result.reason
        assert "so tiny-medium" in result.reason and result.reason.endswith("so tiny-light")
        assert result.predicted is not None and result.predicted.model == "tiny-light"
        assert result.to_dict()["predicted"]["model"] == "tiny-light"
        with pytest.raises(BudgetExceededError, match="tiny-heavy is predicted") as refused:
            system.generate(CODE, model="tiny-heavy")
        # the refused request is logged for its routing alone: no model ran
        assert system.log.count() == 8
        row = list(system.log.records())[-1]
        assert (row.id, row.model, row.finish_reason, list(row.components)) == (refused.value.result.request_id, "tiny-heavy", "refused:budget", ["router_inference"])  # type: ignore[union-attr]  # fmt: skip


def test_predict_asks_without_running_and_refuses_unknown_models(tiny_config: AppConfig) -> None:
    from routerllm.backends.base import GenerationRequest
    from routerllm.exceptions import PromptError, RouterLLMError, UnknownNameError

    system = RouterLLM(tiny_config)
    with system:
        p = system.predict(GenerationRequest("hello there", max_new_tokens=4), "tiny-medium")
        assert p is not None and p.completion_tokens == 4
        assert p.energy_kwh == pytest.approx(4 * 1e-7)  # the config's per-token figure
        assert system.log.count() == 0 and not system.manager.backend("tiny-medium").loaded
        # more than its context (512 tokens) holds: a local model writes at most that
        huge = system.predict(GenerationRequest("hi", max_new_tokens=10**7), "tiny-medium")
        assert huge is not None and huge.completion_tokens == 512
        with pytest.raises(UnknownNameError, match="unknown model 'nope'"):
            system.predict("hello", "nope")
        for bad in (123, "", None):
            with pytest.raises(PromptError):
                system.predict(bad, "tiny-light")  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="closed"):
        system.predict("hello", "tiny-light")


def test_the_demo_baseline_stays_on_the_largest_model_or_is_refused(tmp_path: Path) -> None:
    from routerllm.demo import run_demo

    config = budget_config(tmp_path, {"co2_kg": {"per_request": 1e-4}})
    seeded_log(Path(config.log.path), [record("tiny-heavy", NOW - timedelta(days=3), energy_kwh=1e-2) for _ in range(3)]).close()  # fmt: skip
    with RouterLLM(config) as system:
        run = run_demo(system, ("hi", "What is a list?"), max_new_tokens=4)
        assert run.baseline == [] and run.comparison() is None
        assert run.baseline_refused.startswith("tiny-heavy is predicted")
        # the routed part ran and was logged; the baseline was refused, not moved
        assert {r.model for r in system.log.records(tag="demo")} <= {"tiny-light", "tiny-medium"}
        # the baseline's refused request is logged for its routing alone
        assert [r.finish_reason for r in system.log.records(tag="demo-baseline")] == ["refused:budget"]  # fmt: skip


def test_a_cascade_does_not_escalate_past_the_budget(tmp_path: Path) -> None:
    from .test_cascade import REQUEST

    config = budget_config(tmp_path, {"co2_kg": {"per_request": 1e-4}}, cascade={"enabled": True})
    seeded_log(Path(config.log.path), [record("tiny-medium", NOW - timedelta(days=3), energy_kwh=1e-3) for _ in range(3)]).close()  # fmt: skip
    with RouterLLM(config) as system:
        result = system.generate(REQUEST, model="tiny-light")
    assert result.model == "tiny-light"
    assert "tiny-light's answer failed 2 of the request's 2 examples, not escalated to tiny-medium: tiny-medium is predicted to spend" in result.reason  # fmt: skip


def test_a_cascade_whose_budget_windows_cannot_be_read_keeps_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first answer is paid for when the escalation reads the windows: a log that
    cannot be read then (another process's lock, a disk error) refuses the step up, as
    ``settle`` keeps the answer without its check. The error lost the answer, and what it
    spent went uncounted."""
    from .test_cascade import REQUEST

    config = budget_config(tmp_path, {"co2_kg": {"hourly": 10.0}}, cascade={"enabled": True})
    with RouterLLM(config) as system:

        def deny_window_reads(action: int, table: str | None, column: str | None, *_: object) -> int:  # fmt: skip
            unreadable = action == sqlite3.SQLITE_READ and (table, column) == ("requests", "co2_kg")  # fmt: skip
            return sqlite3.SQLITE_DENY if unreadable else sqlite3.SQLITE_OK

        backend = system.manager.backend("tiny-light")
        real = backend.generate

        def generate_then_lock(request: GenerationRequest) -> object:
            completion = real(request)  # admitted (the windows read), then answered
            system.log._db.set_authorizer(deny_window_reads)
            return completion

        monkeypatch.setattr(backend, "generate", generate_then_lock)
        result = system.generate(REQUEST, model="tiny-light")
        system.log._db.set_authorizer(None)
        assert result.model == "tiny-light" and result.completion_tokens > 0
        assert "not escalated to tiny-medium: the budgets' windows could not be read" in result.reason  # fmt: skip
        assert [r.id for r in system.log.records()] == [result.request_id]


def test_a_prompt_too_long_for_the_routed_model_steps_up_only_within_the_budget(
    tmp_path: Path,
) -> None:
    models = [
        tiny_model("tiny-light", "light", 0.1, context_length=48),
        tiny_model("tiny-heavy", "heavy", 1.5),
    ]
    config = budget_config(tmp_path, {"co2_kg": {"per_request": 1e-4}}, models=models, router={"name": "smallest"})  # fmt: skip
    seeded_log(Path(config.log.path), [record("tiny-heavy", NOW - timedelta(days=3), energy_kwh=1e-3) for _ in range(3)]).close()  # fmt: skip
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'.*; tiny-heavy, whose context is longer, is not within the budgets: tiny-heavy is predicted to spend") as refused:  # fmt: skip
            system.generate("word " * 60)
        # nothing answered; tiny-light's load, paid for, logged as a failed request's,
        # the error naming its row (until 2026-12-07 this error lost the row's id)
        failed = list(system.log.records())[3:]
        assert [(r.model, r.finish_reason) for r in failed] == [("tiny-light", "error")]
        assert refused.value.request_id == failed[0].id


def test_spent_budgets_refuse_requests_in_the_cli_and_the_server_and_show_in_reports(
    tmp_path: Path,
) -> None:
    from .test_server import running

    config_path = write_config(tmp_path, tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 0.05, "per_request": 0.01}}))  # fmt: skip
    config = load_config(config_path)
    recent = datetime.now(timezone.utc) - timedelta(minutes=10)
    seeded_log(Path(config.log.path), [record("tiny-light", recent, co2_kg=0.06)]).close()

    def report_cli(*args: str) -> subprocess.CompletedProcess[str]:  # in this process
        return cli_in_process("report", *args, "--config", str(config_path))

    command = [sys.executable, "-m", "routerllm.cli", "route", "hello", "--config", str(config_path)]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "hourly CO2 budget is 120% spent" in refused.stderr
    with RouterLLM(config) as system, running(system) as url:
        body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
        req = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 429
        assert 0 < int(e.value.headers["Retry-After"]) <= 50 * 60
        error = json.loads(e.value.read())["error"]
        assert error["code"] == "budget_exceeded" and "hourly CO2 budget" in error["message"]
    report = json.loads(report_cli("--json").stdout)
    assert list(report["by_day"]) == [recent.date().isoformat()]  # the trend, per UTC day
    assert report["by_day"][recent.date().isoformat()]["co2_kg"] == pytest.approx(0.06)
    budgets = report["budgets"]
    assert budgets["violations"] == {"co2_kg": {"per_request": 1, "hourly": 1}}
    # the seeded 0.06 kg of 0.05, and the two refusals' routing, logged since 2026-12-07
    # (a few hundredths of a microgram: over approx's 1e-6 of 1.2 on a loaded machine)
    with RequestLog(config.log.path) as log:
        routed = sum(r.co2_kg for r in log.records() if r.finish_reason == "refused:budget")
    assert budgets["now"][0]["share"] == pytest.approx((0.06 + routed) / 0.05)
    assert report_cli("--since", "0001-01-01", "--json").returncode == 0
    text = report_cli().stdout
    assert "CO2 in last 60 minutes" in text and "predictor (from the log)" in text
    assert "per day (UTC)" in text


def test_a_carbon_level_caps_the_models_routing_may_choose(tmp_path: Path) -> None:
    assert [BudgetConfig(level=v).routed_cap() for v in ("aggressive", "balanced", "relaxed")] == [34.0, 70.0, 405.0]  # fmt: skip
    assert BudgetConfig(level="aggressive", max_params_b=7).routed_cap() == 7
    assert BudgetConfig().routed_cap() is None
    with pytest.raises(ConfigError, match=r"at most 0.05B parameters .* every configured model is larger"):  # fmt: skip
        load_config(write_config(tmp_path, tiny_config_dict(tmp_path, budgets={"max_params_b": 0.05})))  # fmt: skip
    with pytest.raises(ConfigError, match="budgets.level"):
        load_config(write_config(tmp_path, tiny_config_dict(tmp_path, budgets={"level": "extreme"})))  # fmt: skip
    data = tiny_config_dict(
        tmp_path,
        budgets={"max_params_b": 0.6},
        overrides=[{"name": "legal", "pattern": "contract", "model": "tiny-heavy"}],
    )
    hard = (
        "Implement a thread-safe LRU cache class in Python with unit tests and explain the design"
    )
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        assert system.route(hard).model == "tiny-medium"  # the rules router alone says heavy
        assert system.generate(hard, router="largest").model == "tiny-medium"
        over = system.route("a contract")
        assert over.model != "tiny-heavy"
        assert "override 'legal' not applied: tiny-heavy is not available to routing here" in over.reason  # fmt: skip
        assert (
            system.generate(hard, model="tiny-heavy").model == "tiny-heavy"
        )  # the caller's: not capped
    del data["budgets"], data["overrides"]
    with RouterLLM(load_config(write_config(tmp_path, data, "uncapped.yaml"))) as system:
        assert system.route(hard).model == "tiny-heavy"
    capped = write_config(tmp_path, tiny_config_dict(tmp_path, budgets={"max_params_b": 0.6}), "capped.yaml")  # fmt: skip
    listing = subprocess.run([sys.executable, "-m", "routerllm.cli", "models", "--config", str(capped)], capture_output=True, text=True, check=True)  # fmt: skip
    heavy = next(line for line in listing.stdout.splitlines() if line.startswith("tiny-heavy"))
    assert heavy.endswith("yes (over the budgets' cap of 0.6B: only when asked by name)")
    assert "cap" not in next(line for line in listing.stdout.splitlines() if line.startswith("tiny-medium"))  # fmt: skip


def test_each_carbon_level_keeps_the_models_of_exactly_its_size(tmp_path: Path) -> None:
    """The seeds' levels (MISSION M3.7) name the largest model allowed: a 34B model
    under aggressive, a 70B one under balanced and a 405B one under relaxed are routable,
    one a billion parameters larger is not; the config accepts a level whose cap only
    a model of exactly that size meets."""
    sizes = {"m7": 7.0, "m34": 34.0, "m35": 35.0, "m70": 70.0, "m71": 71.0, "m405": 405.0, "m406": 406.0}  # fmt: skip
    models = [tiny_model(n, "light" if b < 30 else "heavy", b) for n, b in sizes.items()]
    names = list(sizes)
    expected = {
        "aggressive": ["m7", "m34"],
        "balanced": ["m7", "m34", "m35", "m70"],
        "relaxed": ["m7", "m34", "m35", "m70", "m71", "m405"],
    }
    for level, routable in expected.items():
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models, budgets={"level": level}), f"{level}.yaml"))  # fmt: skip
        assert RoutingScope(config, lambda: names).routable() == routable, level
        only = [tiny_model("at-cap", "heavy", LEVEL_MAX_PARAMS_B[level])]
        load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=only, budgets={"level": level}), "one.yaml"))  # fmt: skip
    # a routed request whose router chose the heavy model goes to the 0.5B one at a 0.5B cap
    data = tiny_config_dict(tmp_path, budgets={"max_params_b": 0.5})
    hard = "Implement a thread-safe LRU cache class in Python with unit tests and explain the design"  # fmt: skip
    with RouterLLM(load_config(write_config(tmp_path, data, "half.yaml"))) as system:
        decision = system.route(hard)
        assert decision.model == "tiny-medium", decision.reason


def test_a_routed_choice_over_the_cap_is_not_called_unavailable(tmp_path: Path) -> None:
    """The reason named the cap's model 'unavailable', while `routerllm models` lists it
    as available (only when asked by name)."""
    data = tiny_config_dict(tmp_path, budgets={"max_params_b": 0.6})
    hard = (
        "Implement a thread-safe LRU cache class in Python with unit tests and explain the design"
    )
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        for decision in (system.route(hard), system.generate(hard)):
            assert decision.model == "tiny-medium"
            assert "; tiny-heavy is over the budgets' cap of 0.6B" in decision.reason
            assert "unavailable" not in decision.reason


def test_a_step_down_near_a_limit_stays_within_the_size_cap(tmp_path: Path) -> None:
    # a light model bigger than the medium one: "one model smaller" would be over the cap
    models = [tiny_model("tiny-light", "light", 2.0), tiny_model("tiny-medium", "medium", 0.5), tiny_model("tiny-heavy", "heavy", 1.5)]  # fmt: skip
    config = budget_config(tmp_path, {"co2_kg": {"hourly": 0.05}, "max_params_b": 1.0}, models=models)  # fmt: skip
    recent = datetime.now(timezone.utc) - timedelta(minutes=10)
    seeded_log(Path(config.log.path), [record("tiny-medium", recent, co2_kg=0.045)]).close()
    with RouterLLM(config) as system:
        result = system.generate("What is a list?", router="largest")  # routed to tiny-medium
        assert result.model == "tiny-medium", result.reason
        assert "tiny-light" not in result.reason


def test_a_callers_model_runs_and_is_logged_when_the_cap_leaves_no_model_to_route_to(
    tmp_path: Path,
) -> None:
    data = tiny_config_dict(tmp_path, cascade={"enabled": True}, budgets={"max_params_b": 0.2})
    data["models"][0]["memory_gb"] = 5.0  # tiny-light, the one model within the cap, cannot run
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        with pytest.raises(ModelUnavailableError, match="no available model is within the budgets' cap of 0.2B"):  # fmt: skip
            system.route("hello there")
        result = system.generate("hello there", model="tiny-medium")
        assert result.model == "tiny-medium"
        assert [r.model for r in system.log.records()] == ["tiny-medium"]


@pytest.mark.parametrize(
    ("predicted", "fits"), [(0.5e-3, True), (1e-3, True), (1.000001e-3, False)]
)
def test_a_prediction_of_exactly_what_is_left_fits(predicted: float, fits: bool) -> None:
    """The limit is what may be spent: a request predicted to spend all that is left runs;
    a hair more is over (the boundary a strict < would move)."""
    from routerllm.carbon.budget import Allowance
    from routerllm.carbon.predictor import Prediction

    left = Allowance("co2_kg", 1e-3, "per-request budget")
    prediction = Prediction("m", 0.0, predicted, 0.0, 10, 10, "test")
    assert left.fits(prediction) is fits
    assert left.fits(None)  # nothing known of the model's cost: not refused for it


# -- the limits at their boundaries: one rule, a limit is the most that may be spent ----
# (amounts of $1/4, $1/2, ... are exact in floating point: no rounding decides these)
@pytest.mark.parametrize(
    ("limits", "said"),
    [
        (
            {"per_request": 1e-12},
            "more than the 0 g CO2 left of the 0.001 \N{MICRO SIGN}g CO2 this request may spend, after the "
            "0.003 \N{MICRO SIGN}g CO2 it spent already (budgets.co2_kg.per_request)",
        ),
        (
            {"hourly": 1e-12},
            "more than the 0 g CO2 left of the hourly budget, after the 0.003 \N{MICRO SIGN}g CO2 this "
            "request spent already (budgets.co2_kg.hourly)",
        ),
    ],
)
def test_a_tiny_limit_that_the_requests_routing_spent_is_said_with_its_figures(
    tmp_path: Path, limits: dict[str, float], said: str
) -> None:
    """A limit of 1e-12 kg that routing had spent read "more than the 0 g CO2 this request
    may spend (budgets.co2_kg.per_request)": neither the limit nor what was spent."""
    config = BudgetConfig.model_validate({"co2_kg": limits})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: NOW)
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], True, _predict({"m": 1e-6}), {"co2_kg": 3e-12}, budget.status())
    assert said in str(e.value)
    # with nothing spent yet the limit is what is left, said once
    with pytest.raises(
        BudgetExceededError, match=r"more than the 0.001 \N{MICRO SIGN}g CO2 (this|left)"
    ):
        budget.choose("m", [], True, _predict({"m": 1e-6}), {}, budget.status())


def _cost(value: float):  # type: ignore[no-untyped-def]
    from routerllm.carbon.predictor import Prediction

    return lambda m: Prediction(m, 0.0, 0.0, value, 10, 10, "prices")


def test_a_request_needing_exactly_a_limit_fits_or_is_told_when_it_will(tmp_path: Path) -> None:
    """A request predicted to spend exactly a window's whole limit fits the window once it
    is empty, so waiting helps: until 2026-12-05 it was told only to raise the budget (no
    ``retry_at``, no Retry-After), as if it were over the limit."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=50), cost_usd=0.25)])  # fmt: skip
    config = BudgetConfig.model_validate({"cost_usd": {"per_request": 0.5, "hourly": 0.5}, "downgrade_at": 1.0})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    ten_minutes = left_at(NOW + timedelta(minutes=10))
    with pytest.raises(BudgetExceededError, match=r"more than the \$0.25 left") as e:
        budget.choose("m", [], True, _cost(0.5), {}, budget.status())
    assert e.value.retry_at == ten_minutes and "or wait" in str(e.value)
    # exactly the per-request limit is within it too: waiting helps there as well
    config.cost_usd.per_request = 0.25
    seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=20), cost_usd=0.125)]).close()  # fmt: skip
    with pytest.raises(BudgetExceededError, match=r"more than the \$0.125 left") as e:
        budget.choose("m", [], True, _cost(0.25), {}, budget.status())
    assert e.value.retry_at == ten_minutes
    # and an empty window takes it now, as the per-request limit does
    empty = CarbonBudget(config, RequestLog(tmp_path / "empty.sqlite"), lambda: NOW)
    config.cost_usd.per_request = 0.5
    assert empty.choose("m", [], True, _cost(0.5), {}, empty.status())[0] == "m"


def test_a_window_at_exactly_downgrade_at_sends_routed_requests_one_model_smaller(
    tmp_path: Path,
) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), cost_usd=0.75)])  # fmt: skip
    config = BudgetConfig.model_validate({"cost_usd": {"hourly": 1.0}, "downgrade_at": 0.75})
    budget = CarbonBudget(config, log, lambda: NOW)
    name, why, _ = budget.choose("big", ["small"], False, _cost(0.0), {}, budget.status())
    assert name == "small" and "the hourly cost budget is 75% spent" in why
    admission = budget.admit("small", [], False, _cost(0.0), {})
    assert budget.escalation(admission, "big", _cost(0.0), {}).startswith("the hourly cost budget is 75% spent")  # fmt: skip
    config.downgrade_at = 0.875
    assert budget.choose("big", ["small"], False, _cost(0.0), {}, budget.status())[:2] == ("big", "")  # fmt: skip


def test_by_default_a_window_80_percent_spent_sends_routed_requests_one_model_smaller(
    tmp_path: Path,
) -> None:
    """``downgrade_at`` left out is 0.8, as README's configuration says: $0.80 of an
    hourly $1 steps a routed request down, $0.79 does not."""
    config = BudgetConfig.model_validate({"cost_usd": {"hourly": 1.0}})
    for spent, chosen in ((0.8, "small"), (0.79, "big")):
        log = seeded_log(tmp_path / f"log{spent}.sqlite", [record("a", NOW - timedelta(minutes=5), cost_usd=spent)])  # fmt: skip
        budget = CarbonBudget(config, log, lambda: NOW)
        assert budget.choose("big", ["small"], False, _cost(0.0), {}, budget.status())[0] == chosen  # fmt: skip


def test_spending_exactly_a_limit_breaks_no_budget_and_a_window_at_it_is_spent(
    tmp_path: Path,
) -> None:
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), cost_usd=0.25)])  # fmt: skip
    config = BudgetConfig.model_validate({"cost_usd": {"per_request": 0.25, "hourly": 0.5}})
    budget = CarbonBudget(config, log, lambda: NOW)
    admission = budget.admit("m", [], True, _cost(0.25), {})  # exactly what is left
    assert budget.settle(admission, {"cost_usd": 0.25}) == []  # both limits reached, none passed
    budget.release(admission, logged=False)  # counted from memory: the window is at its limit
    with pytest.raises(BudgetExceededError, match="hourly cost budget is 100% spent"):
        budget.choose("m", [], True, _cost(0.0), {}, budget.status())
    # from a window at its limit, any more takes it past
    admission = Admission("m", "", None)
    assert budget.settle(admission, {"cost_usd": 0.125}) == ["it took the hourly cost budget past its $0.5"]  # fmt: skip
    rows = [Spending((NOW + timedelta(minutes=m)).isoformat(timespec="microseconds"), 0.0, c) for m, c in [(0, 0.25), (1, 0.25), (2, 0.125)]]  # fmt: skip
    assert violations(config, rows) == {"cost_usd": {"per_request": 0, "hourly": 1}}
    # a window spent to exactly its limit once older requests leave is still spent: the
    # retry time is when it is under it (the $0.5 leaves in 40 minutes, not the $0.25 in 10)
    at_limit = seeded_log(tmp_path / "at_limit.sqlite", [
        record("a", NOW - timedelta(minutes=50), cost_usd=0.25),
        record("a", NOW - timedelta(minutes=20), cost_usd=0.5),
    ])  # fmt: skip
    budget = CarbonBudget(config, at_limit, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="150% spent") as e:
        budget.choose("m", [], True, _cost(0.0), {}, budget.status())
    assert e.value.retry_at == left_at(NOW + timedelta(minutes=40))


def test_float_sums_at_a_limit_are_at_it_not_over_it(tmp_path: Path) -> None:
    """0.1 + 0.2 is 0.30000000000000004 in floating point: a request of $0.2 after one of
    $0.1 fits a $0.3 budget, and breaks nothing, as the report counts it. Until 2026-12-05
    it was refused ("predicted to spend $0.2, more than the $0.2 left") and, let in, was
    said to break the budget the report said it had not."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), cost_usd=0.1)])  # fmt: skip
    config = BudgetConfig.model_validate({"cost_usd": {"per_request": 0.3, "hourly": 0.3}})
    budget = CarbonBudget(config, log, lambda: NOW)
    admission = budget.admit("m", [], True, _cost(0.2), {})
    assert budget.settle(admission, {"cost_usd": 0.2}) == []
    assert budget.settle(admission, {"cost_usd": 0.1 + 0.2}) == ["it took the hourly cost budget past its $0.3"]  # fmt: skip
    rows = [Spending((NOW + timedelta(minutes=m)).isoformat(timespec="microseconds"), 0.0, c) for m, c in [(0, 0.1), (1, 0.2)]]  # fmt: skip
    assert violations(config, rows) == {"cost_usd": {"per_request": 0, "hourly": 0}}
    # a hair more than rounding is over
    with pytest.raises(BudgetExceededError):
        budget.choose("m", [], True, _cost(0.2000001), {}, budget.status(exclude=admission.token))  # fmt: skip


# -- the windows' edges: a window holds its first instant and its last -------------
def test_a_row_at_a_windows_first_instant_or_at_now_counts_everywhere(tmp_path: Path) -> None:
    """The log is summed over [now - 1 h, now], both ends in: the report's count of
    window breaks and the retry time read the same window."""
    rows = [Spending((NOW + timedelta(hours=h)).isoformat(timespec="microseconds"), 0.03, 0.0) for h in (0, 1)]  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    # the window ending at the second row starts at the first: 0.06 kg, past 0.05
    assert violations(config, rows) == {"co2_kg": {"hourly": 1}}
    # a window spent by a row logged at this very instant frees once that row leaves it
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW, co2_kg=0.06)])
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="120% spent") as e:
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    assert e.value.retry_at == left_at(NOW + timedelta(hours=1))


def test_a_window_already_past_its_limit_is_not_broken_again(tmp_path: Path) -> None:
    """A request let in before others took the hour past its limit did not take it past:
    ``settle`` says so as the report's ``violations`` count it (once, by the first)."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=5), cost_usd=0.75)])  # fmt: skip
    config = BudgetConfig.model_validate({"cost_usd": {"hourly": 0.5}})
    budget = CarbonBudget(config, log, lambda: NOW)
    assert budget.settle(Admission("m", "", None), {"cost_usd": 0.125}) == []
    rows = [Spending((NOW + timedelta(minutes=m)).isoformat(timespec="microseconds"), 0.0, c) for m, c in [(0, 0.75), (1, 0.125)]]  # fmt: skip
    assert violations(config, rows) == {"cost_usd": {"hourly": 1}}


def test_an_unlogged_answer_counts_for_the_whole_day_not_only_the_hour(tmp_path: Path) -> None:
    """Answers that could not be logged are kept for the widest window: a release two
    hours on (which forgets older ones) leaves the day's 0.02 kg counted."""
    now = [NOW]
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 1.0, "daily": 1.0}})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: now[0])
    admission = budget.admit("m", [], True, _predict({"m": 0.01}), {})
    budget.settle(admission, {"co2_kg": 0.02})
    budget.release(admission, logged=False)
    now[0] = NOW + timedelta(hours=1)  # the hour's first instant: still in it, as a row is
    assert [s.spent for s in budget.status()] == pytest.approx([0.02, 0.02])
    now[0] = NOW + timedelta(hours=2)
    budget.release(budget.admit("m", [], True, _predict({"m": 0.01}), {}))
    assert [(s.window, s.spent) for s in budget.status()] == [("hourly", 0.0), ("daily", pytest.approx(0.02))]  # fmt: skip


def test_the_time_a_request_fits_counts_what_it_spent_already(tmp_path: Path) -> None:
    """Routing spent 5 g and the model is predicted at 40 g: 45 g must fit the hour's 50 g.
    Once the 30 g request leaves (in 10 minutes) 10 g + 45 g is still over; once the 10 g
    one leaves too (in 40 minutes) it fits. Without the 5 g, 10 minutes was said."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(minutes=50), co2_kg=0.03),
        record("a", NOW - timedelta(minutes=20), co2_kg=0.01),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="or wait") as e:
        budget.choose("m", [], True, _predict({"m": 0.04}), {"co2_kg": 0.005}, budget.status())
    assert e.value.retry_at == left_at(NOW + timedelta(minutes=40))
    retried = CarbonBudget(config, log, lambda: datetime.fromisoformat(e.value.retry_at))
    assert retried.choose("m", [], True, _predict({"m": 0.04}), {"co2_kg": 0.005}, retried.status())[0] == "m"  # fmt: skip


@pytest.mark.parametrize(
    ("quantity", "value", "said"),
    [
        ("co2_kg", 1.0, "1 kg CO2"),
        ("co2_kg", 0.999, "999 g CO2"),
        ("co2_kg", 0.9996, "1 kg CO2"),  # 999.6 g: 3 digits said it "1e+03 g CO2"
        ("co2_kg", 0.99999, "1 kg CO2"),
        ("co2_kg", 0.9994, "999 g CO2"),
        ("co2_kg", 2.5e-5, "25 mg CO2"),
        ("cost_usd", 0.25, "$0.25"),
    ],  # fmt: skip
)
def test_amounts_are_said_in_grams_below_a_kilogram(quantity: str, value: float, said: str) -> None:  # fmt: skip
    from routerllm.carbon.budget import amount

    assert amount(quantity, value) == said


def test_a_daily_budget_a_hair_from_its_kilogram_is_said_in_kilograms() -> None:
    """The default daily budget of 1 kg with 999.6 g spent read "(1e+03 g CO2 spent in the
    last 24 hours, of 1 kg CO2": 3 digits round 999.6 g to 1000, said in kg instead."""
    from routerllm.carbon.budget import WindowSpending

    said = WindowSpending("co2_kg", "daily", 1.0, 0.9996).describe()
    assert said == "the daily CO2 budget is 100% spent (1 kg CO2 spent in the last 24 hours, of 1 kg CO2; budgets.co2_kg.daily)"  # fmt: skip


@pytest.mark.parametrize(
    ("quantity", "value", "said"),
    [
        ("cost_usd", 2000.0, "$2,000.00"),  # 3 digits said "$2e+03"
        ("cost_usd", 999.6, "$999.60"),  # 3 digits "$1e+03", then "$1,000"; in cents
        ("cost_usd", 999.0, "$999.00"),
        ("co2_kg", 1500.0, "1,500 kg CO2"),  # "1.5e+03 kg CO2"
        ("co2_kg", 999.6, "1,000 kg CO2"),
    ],  # fmt: skip
)
def test_amounts_from_a_thousand_up_are_written_out(quantity: str, value: float, said: str) -> None:  # fmt: skip
    from routerllm.carbon.budget import amount

    assert amount(quantity, value) == said


def test_a_daily_dollar_budget_of_thousands_is_said_in_dollars() -> None:
    """A daily budget of $2000 (a hosted API's bill), $1500 spent, read "($1.5e+03 spent
    in the last 24 hours, of $2e+03": 3 significant digits in Python's general format turn
    to an exponent from 1000 up; written out, in cents, "$1,500.00 ... of $2,000.00"."""
    from routerllm.carbon.budget import WindowSpending

    said = WindowSpending("cost_usd", "daily", 2000.0, 1500.0).describe()
    assert "$1,500.00 spent" in said and "of $2,000.00;" in said, said


def test_the_loading_energy_is_the_mean_of_the_loads_that_happened() -> None:
    """Loads of 1e-4, 2e-4 and 6e-4 kWh (and a request that loaded nothing): their mean
    is 3e-4 kWh; their median, 2e-4, would underprice a model whose loads vary."""
    loads = [1e-4, 2e-4, 6e-4, 0.0]
    p = fit_profile([record("m", NOW, energy_kwh=1e-5, loading_kwh=kwh) for kwh in loads])
    assert p.loading_kwh == pytest.approx(3e-4)


def test_among_requests_as_near_in_prompt_length_the_newest_give_the_output_length(
    tiny_config: AppConfig,
) -> None:
    """Ten requests of one prompt length: the 5 newest (50 tokens each) are the
    neighbours, not the 5 older ones (5 tokens each)."""
    older = [record("tiny-light", NOW, completion_tokens=5) for _ in range(5)]
    newer = [record("tiny-light", NOW, completion_tokens=50) for _ in range(5)]
    predicted = CarbonPredictor(tiny_config, [*older, *newer]).predict("tiny-light", 40, 500)
    assert predicted is not None and predicted.completion_tokens == 50


def test_a_prediction_scaled_from_a_peer_scales_its_co2_and_cost_too(tmp_path: Path) -> None:
    """tiny-medium's 3 logged requests (20 prompt and 10 output tokens, 1e-5 kWh each)
    give 3e-5 kWh over 60 prompt tokens and over 30 output tokens: 5e-7 and 1e-6 kWh a
    token, so 2e-5 kWh for a 40-character prompt (20 tokens) and 10 output tokens; tiny-heavy
    (1.5B parameters to 0.5B) is predicted at 3 times that, 6e-5 kWh, its CO2 at the
    config's grid and its cost at the electricity price."""
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[
        tiny_model("tiny-light", "light", 0.1),
        {**tiny_model("tiny-medium", "medium", 0.5), "energy_per_token_kwh": None},
        {**tiny_model("tiny-heavy", "heavy", 1.5), "energy_per_token_kwh": None},
    ])))  # fmt: skip
    history = [record("tiny-medium", NOW, energy_kwh=1e-5, completion_tokens=10) for _ in range(3)]
    heavy = CarbonPredictor(config, history).predict("tiny-heavy", 40, 50)
    assert heavy is not None
    grid = grid_intensity_g_per_kwh(config.carbon.country_iso_code) / 1000
    assert heavy.energy_kwh == pytest.approx(6e-5)
    assert heavy.co2_kg == pytest.approx(6e-5 * grid)
    assert heavy.cost_usd == pytest.approx(6e-5 * config.carbon.electricity_price_usd_per_kwh)


def test_a_row_at_a_windows_first_instant_is_in_its_spending_and_one_before_it_is_not(
    tmp_path: Path,
) -> None:
    """Rows logged exactly 1 h and 24 h ago are in the hour and the day (a window holds its
    first instant, as ``violations`` and the retry time hold it); 1 us older, they are not.
    Only a row at ``now`` was checked: a window that began 1 us late went unseen."""
    hour, day, tick = timedelta(hours=1), timedelta(days=1), timedelta(microseconds=1)
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - day - tick, co2_kg=1.0),
        record("a", NOW - day, co2_kg=0.5),
        record("a", NOW - hour - tick, co2_kg=0.25),
        record("a", NOW - hour, co2_kg=0.125),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 4.0, "daily": 4.0}})
    budget = CarbonBudget(config, log, lambda: NOW)
    assert [(s.window, s.spent) for s in budget.status()] == [("hourly", 0.125), ("daily", 0.875)]


def test_an_escalation_let_in_holds_the_larger_models_prediction_with_what_was_spent(
    tmp_path: Path,
) -> None:
    """Admitted on m (predicted 0.125 kg), the request spent 0.0625 and escalates to big,
    predicted 0.25: it then holds 0.3125 of the windows until logged, so a request running
    beside it sees that much held, not m's 0.125 (a request of 0.75 kg then fits no more)."""
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 1.0}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: NOW)
    admission = budget.admit("m", [], False, _predict({"m": 0.125}), {})
    assert budget.status()[0].held == 0.125
    assert budget.escalation(admission, "big", _predict({"big": 0.25}), {"co2_kg": 0.0625}) == ""  # fmt: skip
    assert budget.status()[0].held == 0.3125
    with pytest.raises(BudgetExceededError, match="more than the 688 g CO2 left"):
        budget.admit("m", [], True, _predict({"m": 0.75}), {})


def test_a_request_that_failed_unlogged_leaves_nothing_counted(tmp_path: Path) -> None:
    """Let in (predicted 0.25 kg) and then failed before any answer was paid for, its
    release with ``logged=False`` frees the windows: only an answer paid for (settled)
    goes on counting from memory, as ``release`` says."""
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 1.0}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: NOW)
    budget.release(budget.admit("m", [], True, _predict({"m": 0.25}), {}), logged=False)
    assert [(s.spent, s.held) for s in budget.status()] == [(0.0, 0.0)]
    paid = budget.admit("m", [], True, _predict({"m": 0.25}), {})
    budget.settle(paid, {"co2_kg": 0.5})
    budget.release(paid, logged=False)
    assert [(s.spent, s.held) for s in budget.status()] == [(0.5, 0.0)]


def test_with_two_windows_to_wait_for_a_request_is_told_the_later_time(tmp_path: Path) -> None:
    """Predicted 31.25 g: the hour (50 g; 31.25 g spent 50 minutes ago) fits it in 10
    minutes, the day (100 g; 62.5 g more spent 19 hours ago) only once that leaves, in 5
    hours. Told 10 minutes, it would be refused again then."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(hours=19), co2_kg=0.0625),
        record("a", NOW - timedelta(minutes=50), co2_kg=0.03125),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05, "daily": 0.1}, "downgrade_at": 1.0})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError, match="or wait") as e:
        budget.choose("m", [], True, _predict({"m": 0.03125}), {}, budget.status())
    assert e.value.retry_at == left_at(NOW + timedelta(hours=5))


def test_the_reports_window_breaks_since_a_time_count_the_windows_earlier_requests(
    tmp_path: Path,
) -> None:
    """40 g 30 minutes before ``since`` and 20 g at it: the hour ending at the second holds
    60 g, past its 50 g; counted from ``since`` alone it held 20 g and broke nothing."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(minutes=30), co2_kg=0.04),
        record("a", NOW, co2_kg=0.02),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    budget = CarbonBudget(config, log, lambda: NOW)
    since = NOW.isoformat(timespec="microseconds")
    assert budget.summary(since)["violations"] == {"co2_kg": {"hourly": 1}}
    assert budget.summary()["violations"] == {"co2_kg": {"hourly": 1}}


def test_a_window_broken_again_after_its_older_requests_left_counts_twice() -> None:
    """60 g at 12:00 breaks the hour's 50 g; at 13:01 it has left the window, and 60 g
    more breaks it again: 2 breaks, each judged against the window as it was just before
    (without the requests that left it), not against the stale sum."""
    rows = [Spending((NOW + timedelta(minutes=m)).isoformat(timespec="microseconds"), 0.06, 0.0) for m in (0, 61)]  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}})
    assert violations(config, rows) == {"co2_kg": {"hourly": 2}}


def test_what_a_request_spent_so_far_is_its_parts_co2_and_its_cost() -> None:
    """Routing 0.5 kWh / 0.125 kg and a load 1 kWh / 0.25 kg, at $0.75: 0.375 kg (the CO2
    the budgets limit, not the 1.5 kWh), $0.75."""
    from routerllm.carbon.budget import spent_so_far

    parts = [Measurement("router_inference", 0.1, 0.5, 0.125, "test"), Measurement("model_loading", 1.0, 1.0, 0.25, "test")]  # fmt: skip
    assert spent_so_far(0.75, *parts) == {"co2_kg": 0.375, "cost_usd": 0.75}
    assert spent_so_far(0.0) == {"co2_kg": 0, "cost_usd": 0.0}


def test_a_request_kept_out_only_by_running_requests_may_retry_now_though_the_log_has_rows(
    tmp_path: Path,
) -> None:
    """10 g logged 30 minutes ago, 30 g held by a running request, 15 g predicted: 55 g is
    over the hour's 50 g, 25 g without the hold is not, so the request may retry as soon
    as the running one is logged (now), not once the 10 g leave the window (in 30 minutes)."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=30), co2_kg=0.01)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, log, lambda: NOW)
    running = budget.admit("m", [], True, _predict({"m": 0.03}), {})
    with pytest.raises(BudgetExceededError, match="once the requests running now are logged") as e:  # fmt: skip
        budget.admit("m", [], True, _predict({"m": 0.015}), {})
    assert e.value.retry_at == NOW.isoformat(timespec="microseconds")
    budget.release(running)


# -- budget messages: large amounts, several broken limits, finished requests not logged --
@pytest.mark.parametrize(
    ("quantity", "value", "said"),
    [
        ("co2_kg", 1234.5, "1,230 kg CO2"),
        ("co2_kg", 999.6, "1,000 kg CO2"),  # 3 digits round it to 1000
        ("co2_kg", 999.0, "999 kg CO2"),
        ("co2_kg", 2.5e6, "2,500,000 kg CO2"),
        ("cost_usd", 1234.5, "$1,234.50"),  # 3 digits said "$1,230"; in cents
        ("cost_usd", 999.996, "$1,000.00"),
        ("cost_usd", 999.0, "$999.00"),
        ("cost_usd", 3e-5, "$0.00003"),  # below a cent in decimals (until 2026-12-06 "$3e-05")
        ("cost_usd", 9.99e14, "$999,000,000,000,000.00"),
        ("cost_usd", 1e300, "$1e+300"),  # a limit set huge as "no limit": not 301 digits
        ("co2_kg", 1.5e18, "1.5e+18 kg CO2"),
    ],  # fmt: skip
)
def test_amounts_of_a_thousand_or_more_are_said_in_full(
    quantity: str, value: float, said: str
) -> None:
    """1234.5 kg read "1.23e+03 kg CO2" and $1234.5 "$1.23e+03"."""
    from routerllm.carbon.budget import amount

    assert amount(quantity, value) == said


def test_a_large_budget_reads_in_full_in_refusals_the_report_and_its_advice(
    tmp_path: Path,
) -> None:
    """A daily cost budget of $1000 with $1234.5 spent: each place that prints an amount
    (the refusal, the report's budget table, the recommendation) read "$1e+03" and
    "$1.23e+03"."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = budget_config(tmp_path, {"cost_usd": {"daily": 1000.0}})
    recent = datetime.now(timezone.utc) - timedelta(minutes=5)
    seeded_log(Path(config.log.path), [record("tiny-light", recent, co2_kg=1e-3, cost_usd=1234.5)]).close()  # fmt: skip
    with RouterLLM(config) as system, pytest.raises(BudgetExceededError) as e:
        system.generate("hello there", model="tiny-light")
    assert "($1,234.50 spent in the last 24 hours, of $1,000.00; budgets.cost_usd.daily)" in str(e.value)  # fmt: skip
    report = logged_report(config)
    row = next(line for line in report_lines(report) if line.startswith("cost in last 24 hours"))
    # the refused request's routing, paid for at the electricity price, is in the window
    # too: a few nano-dollars that round 123.45% up
    assert row.split()[-4:] == ["$1,000.00", "$1,234.50", "123.5%", "1"], row
    (near,) = [r for r in report.recommendations if r.kind == "budget_near_limit"]
    assert "($1,234.50 spent in the last 24 hours, of $1,000.00)" in near.message


def test_a_window_filled_by_requests_finished_but_not_logged_says_when_they_leave_it(
    tmp_path: Path,
) -> None:
    """A request that has finished (its spending settled) but is not logged yet counts in
    the window; where such requests alone fill it, the retry search found no logged row
    to wait for and fell through to now: "once older ones leave the window, from
    2026-12-02 12:00:00 UTC". They are logged from now on, so they leave the window an
    hour (a day) after now at the earliest."""
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, RequestLog(tmp_path / "log.sqlite"), lambda: NOW)
    finished = budget.admit("m", [], True, _predict({"m": 0.01}), {})
    assert budget.settle(finished, {"co2_kg": 0.06}) == ["it took the hourly CO2 budget past its 50 g CO2"]  # fmt: skip
    with pytest.raises(BudgetExceededError) as e:
        budget.admit("m", [], True, _predict({"m": 0.0}), {})
    assert str(e.value) == (
        "the hourly CO2 budget is 120% spent (60 g CO2 spent in the last 60 minutes, of 50 g "
        "CO2; budgets.co2_kg.hourly); requests run again once the requests running now are "
        "logged and leave the window, from 2026-12-02 13:00:00 UTC"
    )
    assert e.value.retry_at == left_at(NOW + timedelta(hours=1))
    # 30 g finished, 30 g predicted: it fits once those 30 g leave, not now
    assert budget.settle(finished, {"co2_kg": 0.03}) == []
    with pytest.raises(BudgetExceededError) as e:
        budget.admit("m", [], True, _predict({"m": 0.03}), {})
    assert str(e.value).endswith(
        "or wait: it fits once the requests running now are logged and leave the window, "
        "from 2026-12-02 13:00:00 UTC"
    )
    assert e.value.retry_at == left_at(NOW + timedelta(hours=1))
    budget.release(finished)


def test_a_window_partly_filled_by_finished_requests_waits_for_older_rows_first(
    tmp_path: Path,
) -> None:
    """20 g logged 50 minutes ago and 40 g finished but not logged, of 50 g: the window
    frees once the 20 g leave (in 10 minutes), the finished 40 g still in it."""
    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=50), co2_kg=0.02)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "downgrade_at": 1.0})
    budget = CarbonBudget(config, log, lambda: NOW)
    finished = budget.admit("m", [], True, _predict({"m": 0.01}), {})
    budget.settle(finished, {"co2_kg": 0.04})
    with pytest.raises(BudgetExceededError, match="once older ones leave the window, from 2026-12-02 12:10:00 UTC") as e:  # fmt: skip
        budget.admit("m", [], True, _predict({"m": 0.0}), {})
    assert e.value.retry_at == left_at(NOW + timedelta(minutes=10))
    budget.release(finished)


def test_every_spent_window_is_named_in_one_refusal(tmp_path: Path) -> None:
    """The hour's CO2 and the day's cost both spent: the refusal named only the window
    that frees last, so raising that budget still left the request refused by the other."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(hours=20), cost_usd=0.3),
        record("a", NOW - timedelta(minutes=50), co2_kg=0.06),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05}, "cost_usd": {"daily": 0.25}})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    assert str(e.value) == (
        "the hourly CO2 budget is 120% spent (60 g CO2 spent in the last 60 minutes, of 50 g "
        "CO2; budgets.co2_kg.hourly) and the daily cost budget is 120% spent ($0.3 spent in "
        "the last 24 hours, of $0.25; budgets.cost_usd.daily); requests run again once older "
        "ones leave the windows, from 2026-12-02 16:00:00 UTC"
    )
    assert e.value.retry_at == left_at(NOW + timedelta(hours=4))  # the later: the day's


def test_every_limit_a_prediction_breaks_is_named_in_one_refusal(tmp_path: Path) -> None:
    """Predicted 45 g and $0.2, over the 20 g left of the hour, the 40 g per request and
    the $0.1 per request: only the first (in config order) was named."""
    from routerllm.carbon.predictor import Prediction

    log = seeded_log(tmp_path / "log.sqlite", [record("a", NOW - timedelta(minutes=50), co2_kg=0.03)])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"per_request": 0.04, "hourly": 0.05}, "cost_usd": {"per_request": 0.1}, "downgrade_at": 1.0})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    both = Prediction("m", 0.09, 0.045, 0.2, 10, 10, "test figures")
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], True, lambda m: both, {}, budget.status())
    assert str(e.value) == (
        "m is predicted to spend 45 g CO2 and $0.2 (from test figures), more than the 20 g "
        "CO2 left of the hourly budget (budgets.co2_kg.hourly), the 40 g CO2 this request "
        "may spend (budgets.co2_kg.per_request) and the $0.1 this request may spend "
        "(budgets.cost_usd.per_request); shorten the request, lower max_new_tokens, or "
        "raise the budgets"
    )
    assert e.value.retry_at is None  # over a per-request limit: waiting does not help
    # a routed request steps down, its reason naming them all too
    name, why, _ = budget.choose("m", ["s"], False, lambda m: both if m == "m" else None, {}, budget.status())  # fmt: skip
    assert (name, why) == ("s", "; " + str(e.value).split(";")[0] + ", so s")


def test_two_windows_a_prediction_breaks_are_named_with_the_time_both_fit(
    tmp_path: Path,
) -> None:
    """Predicted 31.25 g: over the 18.75 g left of the hour (fits in 10 minutes) and the
    6.25 g left of the day (fits in 5 hours); the refusal named the hour only."""
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(hours=19), co2_kg=0.0625),
        record("a", NOW - timedelta(minutes=50), co2_kg=0.03125),
    ])  # fmt: skip
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 0.05, "daily": 0.1}, "downgrade_at": 1.0})  # fmt: skip
    budget = CarbonBudget(config, log, lambda: NOW)
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], True, _predict({"m": 0.03125}), {}, budget.status())
    assert str(e.value) == (
        "m is predicted to spend 31.2 g CO2 (from test figures), more than the 18.8 g CO2 "
        "left of the hourly budget (budgets.co2_kg.hourly) and the 6.25 g CO2 left of the "
        "daily budget (budgets.co2_kg.daily); shorten the request, lower max_new_tokens, "
        "raise the budgets, or wait: it fits once older requests leave the windows, from "
        "2026-12-02 17:00:00 UTC"
    )
    assert e.value.retry_at == left_at(NOW + timedelta(hours=5))


def test_the_budget_tables_columns_widen_for_a_large_limit() -> None:
    """A daily cost limit of $1e9 is "$1,000,000,000.00" in cents, 17 characters: the
    limit column (15 wide) widens for it, and every row keeps its columns under the head,
    as a CO2 limit of 1,000,000 kg ("1,000,000 kg CO2", 16) needs too."""
    from routerllm.carbon.report_text import budget_lines
    from routerllm.carbon.units import amount

    budgets = {
        "per_request": {"co2_kg": 0.001, "cost_usd": None},
        "violations": {
            "co2_kg": {"per_request": 0, "hourly": 0, "daily": 2},
            "cost_usd": {"per_request": 0, "daily": 0},
        },  # fmt: skip
        "now": [
            {
                "quantity": "co2_kg",
                "window": "daily",
                "limit": 1e6,
                "spent": 12.5,
                "share": 0.0000125,
            },
            {
                "quantity": "cost_usd",
                "window": "daily",
                "limit": 1e9,
                "spent": 1234.5,
                "share": 1.2345e-6,
            },
        ],
    }
    lines = budget_lines(budgets)
    head, rows = lines[1], lines[2:-1]
    assert "$1,000,000,000.00" in rows[-1] and "1,000,000 kg CO2" in rows[-2]
    ends = {name: head.index(name) + len(name) for name in ("limit", "spent now", "share", "broken by")}  # fmt: skip
    for row in rows:
        assert len(row) == len(head), (head, row)
        assert row[ends["broken by"] - 1] != " "  # the count ends under its head
    limits = [amount("co2_kg", 0.001), "1,000,000 kg CO2", "$1,000,000,000.00"]
    assert [row[: ends["limit"]].endswith(" " + text) for row, text in zip(rows, limits, strict=True)] == [True] * 3, (head, rows)  # fmt: skip
