"""The config's energy per prompt token (``energy_per_prompt_token_kwh``,
``co2_per_prompt_token_kg``): a model's first requests are predicted from it, and a
remote model's requests are logged from it. Until 2026-12-06 a model with fewer than 3
logged requests was predicted from its energy per generated token times
``max_new_tokens`` alone: a 3,000-token prompt was predicted as a 10-character one, and a
per-request budget let it through; a remote model's prompt was logged as spending
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.meter import grid_intensity_g_per_kwh, per_token_estimate
from routerllm.config import ModelConfig, load_config
from routerllm.exceptions import BudgetExceededError, ConfigError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_model, write_config
from .test_openai_http import completion_reply, http_model_dict, serving_stub

FRA_KG_PER_KWH = grid_intensity_g_per_kwh("FRA") / 1000  # the tiny config's grid
PER_PROMPT = 2e-8
PER_OUTPUT = 1e-7
SHORT = "Say hi."
LONG = "def step(x):\n    return x + 1\n" * 12  # about 200 tokens of the 512 it runs with


def _config(tmp_path: Path, **figures: float) -> Path:
    models = [tiny_model("tiny-light", "light", 0.1, **figures)]
    return write_config(tmp_path, tiny_config_dict(tmp_path, models=models))


def test_a_long_first_prompt_is_predicted_to_cost_its_prompt_tokens(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, energy_per_prompt_token_kwh=PER_PROMPT))
    with RouterLLM(config) as system:  # a fresh log: the config's figures
        short = system.predict(GenerationRequest(SHORT, max_new_tokens=8), "tiny-light")
        long = system.predict(GenerationRequest(LONG, max_new_tokens=8), "tiny-light")
        assert system.log.count() == 0
    assert short is not None and long is not None
    assert long.prompt_tokens > 10 * short.prompt_tokens  # counted by the real GGUF
    for p in (short, long):
        assert p.energy_kwh == pytest.approx(p.prompt_tokens * PER_PROMPT + 8 * PER_OUTPUT)
        assert p.co2_kg == pytest.approx(p.energy_kwh * FRA_KG_PER_KWH)
        assert f"and {p.prompt_tokens} prompt tokens" in p.basis
    assert long.energy_kwh > 2 * short.energy_kwh


def test_without_the_figure_the_prompt_is_in_the_generation_rate_as_before(
    tmp_path: Path,
) -> None:
    config = load_config(_config(tmp_path))
    with RouterLLM(config) as system:
        short = system.predict(GenerationRequest(SHORT, max_new_tokens=8), "tiny-light")
        long = system.predict(GenerationRequest(LONG, max_new_tokens=8), "tiny-light")
    assert short is not None and long is not None
    assert short.energy_kwh == long.energy_kwh == pytest.approx(8 * PER_OUTPUT)
    assert "prompt tokens" not in long.basis


def test_a_per_request_budget_refuses_a_long_first_prompt_it_let_through(
    tmp_path: Path,
) -> None:
    """Between the short prompt's prediction and the long one's: the long one is refused
    before it runs, the short one answered."""
    data = tiny_config_dict(
        tmp_path,
        models=[tiny_model("tiny-light", "light", 0.1, energy_per_prompt_token_kwh=PER_PROMPT)],
        budgets={"co2_kg": {"per_request": (8 * PER_OUTPUT + 100 * PER_PROMPT) * FRA_KG_PER_KWH}},
    )
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        with pytest.raises(BudgetExceededError, match="tiny-light is predicted"):
            system.generate(GenerationRequest(LONG, max_new_tokens=8), model="tiny-light")
        assert system.generate(GenerationRequest(SHORT, max_new_tokens=8)).model == "tiny-light"


#: (the remote model's figures besides 1e-6 kWh per generated token, the energy and CO2 of
#: a request that read 5 prompt tokens and wrote 2 at the grid's intensity ``i``)
REMOTE = {
    "energy": ({"energy_per_prompt_token_kwh": 1e-8}, lambda i: (5e-8 + 2e-6, (5e-8 + 2e-6) * i)),
    # the prompt's energy from its CO2 at the grid, as for a generated token's
    "co2": ({"co2_per_prompt_token_kg": 3e-9}, lambda i: (15e-9 / i + 2e-6, 15e-9 + 2e-6 * i)),
    "none": ({}, lambda i: (2e-6, 2e-6 * i)),  # the prompt in the generation rate, as before
}


@pytest.mark.parametrize("figures", REMOTE.keys())
def test_a_remote_models_prompt_is_logged_from_its_figure(tmp_path: Path, figures: str) -> None:
    extra, expected = REMOTE[figures]
    with serving_stub() as stub:
        stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
        remote = http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6, **extra)
        data = tiny_config_dict(tmp_path, models=[remote])
        with RouterLLM(load_config(write_config(tmp_path, data))) as system:
            system.generate("hi", model="remote")
            (row,) = system.log.records()
    inference = row.components["llm_inference"]
    energy, co2 = expected(FRA_KG_PER_KWH)
    assert (inference.energy_kwh, inference.co2_kg) == pytest.approx((energy, co2))


def test_per_token_estimate_counts_prompt_tokens_only_with_a_prompt_figure() -> None:
    model = ModelConfig.model_validate(tiny_model("m", "light", 0.1))
    assert per_token_estimate("llm_inference", model, 4, 0.0, "FRA", prompt_tokens=1000).energy_kwh == pytest.approx(4e-7)  # fmt: skip
    priced = model.model_copy(update={"energy_per_prompt_token_kwh": 1e-9})
    assert per_token_estimate("llm_inference", priced, 4, 0.0, "FRA", prompt_tokens=1000).energy_kwh == pytest.approx(4e-7 + 1e-6)  # fmt: skip


def test_a_prompt_figure_without_a_generation_figure_is_refused(tmp_path: Path) -> None:
    """A prompt figure alone would price the prompt and leave every generated token at 0
    kWh (the figure per generated token is the one every estimate starts from)."""
    model = tiny_model("tiny-light", "light", 0.1, energy_per_prompt_token_kwh=1e-8)
    model["energy_per_token_kwh"] = None
    path = write_config(tmp_path, tiny_config_dict(tmp_path, models=[model]))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "energy_per_prompt_token_kwh is given without energy_per_token_kwh or co2_per_token_kg" in str(e.value)  # fmt: skip
    assert "\n" not in str(e.value)


def test_versus_largest_prices_the_prompts_at_the_largest_models_prompt_figure(
    tmp_path: Path,
) -> None:
    """With no request of the largest model logged, the report re-prices each request at
    the largest model's config figures: its prompt tokens too, where it has a figure for
    them (its figure per generated token then leaves them out)."""
    from routerllm.carbon.report import logged_report

    models = [
        tiny_model("tiny-light", "light", 0.1),
        tiny_model("tiny-heavy", "heavy", 1.5, energy_per_prompt_token_kwh=PER_PROMPT),
    ]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        result = system.generate(GenerationRequest(LONG, max_new_tokens=8), model="tiny-light")
    vs = logged_report(config).versus_largest
    assert vs is not None and vs["largest_model"] == "tiny-heavy"
    expected = result.prompt_tokens * PER_PROMPT + result.completion_tokens * PER_OUTPUT
    assert vs["estimated_energy_kwh"] == pytest.approx(expected)
    assert vs["estimated_co2_kg"] == pytest.approx(expected * FRA_KG_PER_KWH)
    assert "per-token figures of tiny-heavy in the config (per prompt and per generated token)" in vs["method"]  # fmt: skip


def test_the_local_ladder_prices_a_prompt_token_below_a_generated_one() -> None:
    """Read in one batch, a prompt token costs a fraction of a generated one (the ladder's
    figures, measured 2026-12-06: a quarter to a third by the fit, under half as stored
    beside the older figures per generated token; README, "Measured here"); each model
    has both."""
    for model in load_config("local").models:
        assert model.energy_per_prompt_token_kwh is not None and model.energy_per_token_kwh
        assert 0 < model.energy_per_prompt_token_kwh < model.energy_per_token_kwh / 2


def test_a_remote_models_history_of_one_shape_keeps_its_prompt_figure(tmp_path: Path) -> None:
    """Its log is computed from its figures: three requests of one shape (5 prompt tokens,
    2 written) cannot tell a prompt token's cost from a written one's, and until 2026-12-06
    each token was charged the whole request's (a prompt token 41x its figure): a
    500-token prompt was predicted at 30x what it is logged at. The config's figures say
    how the whole splits."""
    with serving_stub() as stub:
        stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
        remote = http_model_dict(
            "remote", stub.base_url, energy_per_token_kwh=1e-6, energy_per_prompt_token_kwh=1e-8
        )
        data = tiny_config_dict(tmp_path, models=[remote])
        with RouterLLM(load_config(write_config(tmp_path, data))) as system:
            for _ in range(3):
                system.generate("hi", model="remote")
            p = system.predictor.predict("remote", 2000, 2, prompt_tokens=500)
            logged = system.generate(GenerationRequest("x " * 10, max_new_tokens=2), model="remote")  # fmt: skip
    assert p is not None and p.basis.startswith("its 3 latest logged requests")
    assert p.energy_kwh == pytest.approx(500 * 1e-8 + 2 * 1e-6)
    assert logged.components["llm_inference"].energy_kwh == pytest.approx(5e-8 + 2e-6)


def test_the_config_split_shares_a_measured_whole_of_one_shape() -> None:
    """A local model's measured log of one shape (40 prompt tokens, 128 written): its
    whole energy shared at the config's prompt/generated ratio, not charged to each kind
    (a 2,713-token prompt on SmolLM2 after 3 such requests: 32x its cold prediction)."""
    from routerllm.carbon.predictor import config_split, fit_profile

    from .test_budgets import NOW, record

    smollm = load_config("local").model("smollm2-135m")
    split = config_split(smollm, "USA")
    assert split == pytest.approx(2.8e-8 / 6.8e-8)
    rows = [record("m", NOW, prompt_tokens=40, completion_tokens=128, energy_kwh=1e-5) for _ in range(3)]  # fmt: skip
    p = fit_profile(rows, split=split)
    assert p.kwh_per_prompt_token == pytest.approx(split * p.kwh_per_output_token)
    assert 40 * p.kwh_per_prompt_token + 128 * p.kwh_per_output_token == pytest.approx(1e-5)
    assert fit_profile(rows).kwh_per_prompt_token == pytest.approx(1e-5 / 40)  # without: whole
    # answers that wrote nothing: the prompt carries the whole; a prompt free: as without
    none = [record("m", NOW, prompt_tokens=40, completion_tokens=0, energy_kwh=1e-5)] * 3
    assert fit_profile(none, split=split).kwh_per_prompt_token == pytest.approx(1e-5 / 40)
    assert fit_profile(none, split=0.0).kwh_per_prompt_token == pytest.approx(1e-5 / 40)
    # a CO2 figure per prompt token beside an energy one per generated token: through the grid
    mixed = smollm.model_copy(update={"energy_per_prompt_token_kwh": None, "co2_per_prompt_token_kg": 1e-9})  # fmt: skip
    assert config_split(mixed, "FRA") == pytest.approx(1e-9 / FRA_KG_PER_KWH / 6.8e-8)
    assert config_split(smollm.model_copy(update={"energy_per_prompt_token_kwh": None}), "USA") is None  # fmt: skip


def test_versus_largest_prices_at_a_remote_largest_models_figures_its_log_was_logged_from(
    tmp_path: Path,
) -> None:
    """A remote largest model's requests are logged from its figures (5 prompt tokens at
    1e-8 kWh, 2 written at 1e-6): their energy over their output tokens charged a long
    prompt routed to tiny-light nothing for its prompt; the figures themselves are exact."""
    from routerllm.carbon.report import logged_report

    with serving_stub() as stub:
        stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
        remote = http_model_dict(
            "remote", stub.base_url, energy_per_token_kwh=1e-6, energy_per_prompt_token_kwh=1e-8
        )
        models = [tiny_model("tiny-light", "light", 0.1), remote]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:
            for _ in range(2):
                system.generate("hi", model="remote")
            long = system.generate(GenerationRequest(LONG, max_new_tokens=8), model="tiny-light")
            remote_rows = [r for r in system.log.records() if r.model == "remote"]
    vs = logged_report(config).versus_largest
    assert vs is not None and vs["largest_model"] == "remote"
    # the remote's requests as they are, their routing and connection measured
    assert [r.components["llm_inference"].energy_kwh for r in remote_rows] == pytest.approx([5e-8 + 2e-6] * 2)  # fmt: skip
    logged = sum(r.energy_kwh for r in remote_rows), sum(r.co2_kg for r in remote_rows)
    expected = long.prompt_tokens * 1e-8 + long.completion_tokens * 1e-6
    assert vs["estimated_energy_kwh"] == pytest.approx(logged[0] + expected)
    assert vs["estimated_co2_kg"] == pytest.approx(logged[1] + expected * FRA_KG_PER_KWH)
    assert "per-token figures of remote in the config (per prompt and per generated token), which its 2 requests in this log were logged from" in vs["method"]  # fmt: skip
