"""The config's per-token figures, prices and model sizes are bounded so that a
request's predicted energy, CO2 and cost stay finite: a finite 1e308 kWh a token passed,
and the budgets refused every request as "predicted to spend inf kg CO2 and $inf"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.predictor import CarbonPredictor
from routerllm.checks import (
    MAX_KG_CO2_PER_TOKEN,
    MAX_KWH_PER_TOKEN,
    MAX_NEW_TOKENS,
    MAX_PARAMS_B,
    MAX_USD_PER_1M_TOKENS,
    MAX_USD_PER_KWH,
    MIN_PARAMS_B,
)
from routerllm.config import MAX_CONTEXT_LENGTH, load_config
from routerllm.exceptions import ConfigError

from .conftest import tiny_config_dict, write_config

#: (section, key, its upper bound)
BOUNDED = [
    ("model", "energy_per_token_kwh", MAX_KWH_PER_TOKEN),
    ("model", "co2_per_token_kg", MAX_KG_CO2_PER_TOKEN),
    ("model", "energy_per_prompt_token_kwh", MAX_KWH_PER_TOKEN),
    ("model", "co2_per_prompt_token_kg", MAX_KG_CO2_PER_TOKEN),
    ("model", "cost_per_1m_input_usd", MAX_USD_PER_1M_TOKENS),
    ("model", "cost_per_1m_output_usd", MAX_USD_PER_1M_TOKENS),
    ("model", "params_b", MAX_PARAMS_B),
    ("carbon", "electricity_price_usd_per_kwh", MAX_USD_PER_KWH),
]


def _config(tmp_path: Path, section: str, key: str, value: float) -> Any:
    data = tiny_config_dict(tmp_path)
    data["models"][0]["context_length"] = MAX_CONTEXT_LENGTH
    if section == "model":
        data["models"][0][key] = value
    else:
        data["carbon"][key] = value
    return write_config(tmp_path, data)


@pytest.mark.parametrize(("section", "key", "bound"), BOUNDED)
def test_a_figure_past_its_bound_is_refused_in_one_line(
    tmp_path: Path, section: str, key: str, bound: float
) -> None:
    for value in (math.nextafter(bound, math.inf), 1e308):
        with pytest.raises(ConfigError) as e:
            load_config(_config(tmp_path, section, key, value))
        where = f"models.0.{key}" if section == "model" else f"carbon.{key}"
        assert f"{where}: Input should be less than or equal to {bound:.0f}, got {value!r}" in str(e.value)  # fmt: skip
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(("section", "key", "bound"), BOUNDED)
@pytest.mark.parametrize("price", [0.0, MAX_USD_PER_KWH])
def test_at_its_bound_a_figure_loads_and_the_longest_request_is_predicted_finite(
    tmp_path: Path, section: str, key: str, bound: float, price: float
) -> None:
    data = tiny_config_dict(tmp_path)
    model = data["models"][0]
    model.update(context_length=MAX_CONTEXT_LENGTH, energy_per_token_kwh=MAX_KWH_PER_TOKEN)
    model["cost_per_1m_input_usd" if key != "cost_per_1m_output_usd" else "cost_per_1m_output_usd"] = 0.0  # fmt: skip
    data["carbon"]["electricity_price_usd_per_kwh"] = price
    (model if section == "model" else data["carbon"])[key] = bound
    config = load_config(write_config(tmp_path, data))
    p = CarbonPredictor(config).predict(
        model["name"], 1, MAX_NEW_TOKENS, loaded=False, prompt_tokens=MAX_CONTEXT_LENGTH
    )
    assert p is not None
    figures = (p.energy_kwh, p.co2_kg, p.cost_usd)
    assert all(math.isfinite(v) and v > 0 for v in figures[:2]) and math.isfinite(figures[2]), p


def test_a_model_smaller_than_a_thousand_parameters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"models\.0\.params_b: Input should be greater than or equal to 0.000001, got 1e-300"):  # fmt: skip
        load_config(_config(tmp_path, "model", "params_b", 1e-300))
    load_config(_config(tmp_path, "model", "params_b", MIN_PARAMS_B))
