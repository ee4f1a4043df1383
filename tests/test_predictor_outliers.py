"""A reading far outside a model's others (a clock jump, a CodeCarbon glitch) is not
learned from: one such row in the log held a model out of every request under a
per-request budget for good, as the model, never run again, never logged the rows that
would have pushed it out of its window. A real request log, a real RouterLLM (tiny GGUF
models, real CodeCarbon)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.predictor import fit_profile, nonnegative_fit
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_budgets import CODE, NOW, budget_config, record, seeded_log

# per prompt and per output token, kWh: the 1.5B's fit on a real log of 164 HumanEval
# requests (CodeCarbon's load estimates, 2 cores), whose readings sat within 0.93-1.15x it
PER_TOKEN = {"tiny-heavy": (1.0e-7, 5.2e-7), "tiny-medium": (3.4e-8, 2.1e-7), "tiny-light": (1.3e-8, 8.7e-8)}  # fmt: skip


def realistic(model: str, n: int, seed: int) -> list[RequestRecord]:
    """``n`` requests of ``model`` as a real log holds them: prompts of 100-300 tokens,
    answers of 1-128, energy from the model's per-token costs within +-15 %."""
    rng = np.random.default_rng(seed)
    a, b = PER_TOKEN[model]
    out = []
    for i in range(n):
        prompt, output = int(rng.integers(100, 300)), int(rng.integers(1, 128))
        energy = (a * prompt + b * output) * rng.uniform(0.85, 1.15)
        when = NOW - timedelta(days=3, minutes=n - i)  # outside every window
        out.append(record(model, when, prompt_chars=4 * prompt, prompt_tokens=prompt, completion_tokens=output, energy_kwh=energy))  # fmt: skip
    return out


def absurd(model: str) -> RequestRecord:
    """A request whose measurement ran across a clock jump: an hour's energy."""
    a, b = PER_TOKEN[model]
    return record(model, NOW - timedelta(days=3), prompt_chars=800, prompt_tokens=200, completion_tokens=64, energy_kwh=1000 * (a * 200 + b * 64))  # fmt: skip


@pytest.mark.parametrize("quantity", ["co2_kg", "cost_usd"])
def test_one_absurd_reading_does_not_hold_a_model_out_of_a_per_request_budget(
    tmp_path: Path, quantity: str
) -> None:
    """The limit is 3x what tiny-heavy is predicted to spend on the request from its 20
    honest rows; with one row 1000x its fit among them it was predicted over it, and every
    request went to tiny-medium. The cost side too, where a model's cost is its energy at
    the electricity price (a model priced per token is predicted from its token counts,
    which a glitch does not touch)."""
    rows = [*realistic("tiny-heavy", 20, 1), *realistic("tiny-medium", 20, 2), *realistic("tiny-light", 20, 3)]  # fmt: skip
    seeded_log(tmp_path / "requests.sqlite", rows).close()
    with RouterLLM(budget_config(tmp_path, {})) as system:
        honest = system.predict(CODE, "tiny-heavy")
    assert honest is not None and honest.basis.startswith("its 20 latest logged requests")
    limit = 3 * honest.amount(quantity)
    seeded_log(tmp_path / "requests.sqlite", [absurd("tiny-heavy")]).close()
    config = budget_config(tmp_path, {quantity: {"per_request": limit}})
    with RouterLLM(config) as system:
        result = system.generate(CODE)
        assert result.model == "tiny-heavy" and "predicted to spend" not in result.reason
        assert result.predicted is not None
        assert result.predicted.amount(quantity) == pytest.approx(honest.amount(quantity))
        assert result.predicted.basis.startswith("its 21 latest logged requests, 1 far outside the others not learned from")  # fmt: skip


def test_the_report_says_which_readings_the_predictor_did_not_learn_from(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, tiny_config_dict(tmp_path))
    seeded_log(tmp_path / "requests.sqlite", [*realistic("tiny-heavy", 20, 1), absurd("tiny-heavy")]).close()  # fmt: skip
    report = json.loads(cli_in_process("report", "--json", "--config", str(config_path)).stdout)
    assert report["predictor"]["tiny-heavy"]["requests"] == 21
    assert report["predictor"]["tiny-heavy"]["left_out"] == 1
    text = cli_in_process("report", "--config", str(config_path)).stdout
    assert "1 reading far outside tiny-heavy's others not learned from" in text


def test_a_reading_is_left_out_only_far_outside_the_others() -> None:
    """Hand-computed: three answers of one shape, 1e-5 kWh each but one 1e-2; the fit of
    the three is their mean per token, over which the absurd one sits at 2.997x and the
    others at 0.003x: 1000x the median reading's, so it is left out, and the two left
    give the figures. Readings within 10x of the others' fit are all learned from (the
    figures are those of all), as are readings where most read 0 kWh (a tracker too
    coarse for them: the median reading tells nothing)."""
    rows = [record("m", NOW, prompt_tokens=20, completion_tokens=10, energy_kwh=e) for e in (1e-5, 1e-2, 1e-5)]  # fmt: skip
    p = fit_profile(rows)
    assert (p.requests, p.left_out) == (3, 1)
    assert (p.kwh_per_prompt_token, p.kwh_per_output_token) == pytest.approx((1e-5 / 20, 1e-5 / 10))  # fmt: skip
    spread = realistic("tiny-heavy", 40, 4)
    spread[7] = record("tiny-heavy", NOW, prompt_tokens=200, completion_tokens=64, energy_kwh=9 * (1e-7 * 200 + 5.2e-7 * 64))  # fmt: skip
    kept = fit_profile(spread)
    tokens = [np.array([getattr(r, f) for r in spread], dtype=float) for f in ("prompt_tokens", "completion_tokens")]  # fmt: skip
    energy = np.array([r.energy_kwh for r in spread])
    assert kept.left_out == 0  # the 9x one learned from, as all the others
    assert (kept.kwh_per_prompt_token, kept.kwh_per_output_token) == nonnegative_fit(*tokens, energy)  # fmt: skip
    zeros = [record("m", NOW, prompt_tokens=20, completion_tokens=n, energy_kwh=0.0) for n in (5, 9, 14)]  # fmt: skip
    some = fit_profile([*zeros, record("m", NOW, prompt_tokens=20, completion_tokens=7, energy_kwh=1e-6)])  # fmt: skip
    assert some.left_out == 0 and some.kwh_per_output_token > 0


def test_an_absurd_load_is_not_learned_as_the_models_loading_energy() -> None:
    """A model not loaded is predicted with its mean load: one load 1000x the others held
    it out of requests while it was unloaded, as it is never loaded again to learn more."""
    loads = [2e-6, 3e-6, 2.5e-6, 2e-3]
    rows = [record("m", NOW, energy_kwh=1e-5, loading_kwh=kwh) for kwh in loads]
    p = fit_profile(rows)
    assert p.loading_kwh == pytest.approx(2.5e-6)
    assert fit_profile(rows[:1] + rows[3:]).loading_kwh == pytest.approx((2e-6 + 2e-3) / 2)  # two: not judged  # fmt: skip
