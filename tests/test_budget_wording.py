"""How the budgets word what they do: every window near its limit named in a step down's
reason, and amounts of any size said so that people can read them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from routerllm.carbon.budget import CarbonBudget
from routerllm.carbon.request_log import RequestLog
from routerllm.carbon.units import amount
from routerllm.config import BudgetConfig

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_budgets import NOW, _predict, record, seeded_log

#: Two windows near their limits: the hourly CO2 one 90% spent, the daily cost one 85%.
TWO_NEAR = {"co2_kg": {"hourly": 0.05}, "cost_usd": {"daily": 1.0}, "downgrade_at": 0.8}
HOURLY_CO2 = "the hourly CO2 budget is 90% spent (45 g CO2 spent in the last 60 minutes, of 50 g CO2; budgets.co2_kg.hourly)"  # fmt: skip
DAILY_COST = "the daily cost budget is 85% spent ($0.85 spent in the last 24 hours, of $1.00; budgets.cost_usd.daily)"  # fmt: skip


def _two_near(tmp_path: Path) -> CarbonBudget:
    log = seeded_log(tmp_path / "log.sqlite", [
        record("a", NOW - timedelta(minutes=5), co2_kg=0.045),
        record("a", NOW - timedelta(hours=3), cost_usd=0.85),
    ])  # fmt: skip
    return CarbonBudget(BudgetConfig.model_validate(TWO_NEAR), log, lambda: NOW)


def test_a_step_down_names_every_window_near_its_limit(tmp_path: Path) -> None:
    """Only the first window near its limit was named: a user who raised it was stepped
    down again by the other. Each is named, in the order refusals name spent windows."""
    budget = _two_near(tmp_path)
    small = _predict({"heavy": 1e-9, "medium": 1e-9})
    name, why, _ = budget.choose("heavy", ["medium"], False, small, {}, budget.status())
    assert name == "medium"
    assert why == f"; {HOURLY_CO2} and {DAILY_COST}, so one model smaller than heavy: medium"


def test_a_cascade_not_escalated_names_every_window_near_its_limit(tmp_path: Path) -> None:
    budget = _two_near(tmp_path)
    small = _predict({"light": 1e-9, "medium": 1e-9})
    admission = budget.admit("light", [], False, small, {})
    assert budget.escalation(admission, "medium", small, {}) == f"{HOURLY_CO2} and {DAILY_COST}"


def test_route_json_names_both_windows_a_request_stepped_down_for(tmp_path: Path) -> None:
    """The reason a user reads (``routerllm route --json``, as the Python API's and the
    server's ``routerllm`` field carry it) names both windows near their limits."""
    config_path = write_config(tmp_path, tiny_config_dict(tmp_path, budgets=TWO_NEAR))
    recent = datetime.now(timezone.utc)
    seeded_log(tmp_path / "requests.sqlite", [
        record("tiny-light", recent - timedelta(minutes=10), co2_kg=0.045),
        record("tiny-light", recent - timedelta(hours=3), cost_usd=0.85),
    ]).close()  # fmt: skip
    proc = cli_in_process("route", "What is a list?", "--router", "largest", "--config", str(config_path), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["model"] == "tiny-medium"
    assert f"{HOURLY_CO2} and {DAILY_COST}, so one model smaller than tiny-heavy: tiny-medium" in result["reason"]  # fmt: skip


# -- amounts: grams, milligrams and micrograms of CO2; dollars below a cent in decimals, from $1 in cents --
@pytest.mark.parametrize(
    ("value", "said"),
    [
        (0.001, "1 g CO2"),  # exactly a gram
        (0.00099995, "1 g CO2"),  # 999.95 mg: 3 digits round it to 1000 mg, a gram
        (0.0009994, "999 mg CO2"),
        (2.5e-5, "25 mg CO2"),
        (1e-6, "1 mg CO2"),
        (9.9995e-7, "1 mg CO2"),  # 999.95 ug
        (3.2e-7, "320 \N{MICRO SIGN}g CO2"),  # a request on the tiny ladder: "0.00032 g CO2"
        (1.23456e-8, "12.3 \N{MICRO SIGN}g CO2"),  # "1.23e-05 g CO2"
        (1e-9, "1 \N{MICRO SIGN}g CO2"),
        (4.5e-10, "0.45 \N{MICRO SIGN}g CO2"),
        (1e-12, "0.001 \N{MICRO SIGN}g CO2"),  # the smallest limit a budget may set
        (-3.2e-7, "-320 \N{MICRO SIGN}g CO2"),  # a window's sum moved past 0 by rounding
        (5.5e-17, "5.5e-08 \N{MICRO SIGN}g CO2"),  # below a thousandth of any limit: rounding
        (0.0, "0 g CO2"),
        (-0.0, "0 g CO2"),  # not "-0 g CO2"
    ],
)
def test_co2_below_a_gram_is_said_in_milligrams_and_micrograms(value: float, said: str) -> None:
    """3.2e-7 kg, what a request on the tiny ladder spends, read "0.00032 g CO2", and less
    than 1e-7 kg switched to exponents ("1.23e-05 g CO2")."""
    assert amount("co2_kg", value) == said


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (3.2e-6, "$0.0000032"),  # "$3.2e-06"
        (3e-5, "$0.00003"),
        (1.23456e-5, "$0.0000123"),
        (0.0001, "$0.0001"),
        (0.009995, "$0.01"),  # 3 digits round it up to a cent
        (0.00999, "$0.00999"),
        (1e-12, "$0.000000000001"),  # the smallest limit a budget may set
        (5.5e-17, "$5.5e-17"),  # below a thousandth of any limit: rounding
        (0.25, "$0.25"),
        (0.0, "$0"),
        (-0.0, "$0"),  # not "$-0"
    ],
)
def test_dollars_below_a_cent_are_written_in_decimals(value: float, said: str) -> None:
    assert amount("cost_usd", value) == said


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (5.0, "$5.00"),  # "$5"
        (12.345, "$12.35"),  # "$12.3": 3 digits dropped the cents
        (1234.5, "$1,234.50"),  # "$1,230"
        (1234567.0, "$1,234,567.00"),  # "$1,230,000"
        (1.0, "$1.00"),
        (999.999, "$1,000.00"),
        (-5.0, "$-5.00"),  # the sign where it was
        (2.675, "$2.68"),  # half up as written: its float, 2.67499..., is "2.67" to format
        (1.005, "$1.01"),
        # below a dollar 3 significant digits, more than cents, decided on the rounded
        # figure as the units are: 3 digits of 0.9995 to 0.99999 are 1, a dollar, so
        # "$1.00" (not "$1", nor "$0.9996" by another path); 0.99949 is still "$0.999"
        (0.9995, "$1.00"),
        (0.9996, "$1.00"),
        (0.99999, "$1.00"),
        (0.99949, "$0.999"),
        (0.0312, "$0.0312"),
        (3e-9, "$0.000000003"),
        (0.0, "$0"),
        (9.99e14, "$999,000,000,000,000.00"),  # written out in full up to 1e15, as now
        (1e15, "$1e+15"),
        (1e300, "$1e+300"),  # a limit set huge to mean "none": not 301 digits
    ],
)
def test_dollars_from_one_up_are_written_in_cents(value: float, said: str) -> None:
    """A team tracking spend reads cents: $1,234.50 was written "$1,230", $12.345
    "$12.3" and $5 "$5", 3 significant digits as energy and CO2 are."""
    assert amount("cost_usd", value) == said


def test_an_amount_that_overflowed_is_said_in_the_configs_units() -> None:
    """An amount that is not finite is said in the config's units, not an error. Until
    2026-12-06 a model's energy_per_token_kwh of 1e308 (finite, so the config took it)
    overflowed a prediction: CO2 inf, and its cost inf x a price of 0, NaN; the config
    bounds it now (tests/test_config_bounds.py), the wording stays for any other way."""
    nan, inf = float("nan"), float("inf")
    said = [amount("co2_kg", inf), amount("co2_kg", -inf), amount("co2_kg", nan)]
    assert said == ["inf kg CO2", "-inf kg CO2", "nan kg CO2"]
    assert [amount("cost_usd", inf), amount("cost_usd", nan)] == ["$inf", "$nan"]


def test_a_figure_that_would_overflow_a_prediction_is_refused_by_the_config(
    tmp_path: Path,
) -> None:
    """energy_per_token_kwh of 1e308 made every request "predicted to spend inf kg CO2
    and $nan"; since 2026-12-06 the config refuses it, in one line, before any request."""
    from routerllm.exceptions import ConfigError

    from .conftest import tiny_model
    from .test_budgets import budget_config

    model = {**tiny_model("tiny-light", "light", 0.1), "energy_per_token_kwh": 1e308}
    budgets = {"co2_kg": {"per_request": 1.0}, "cost_usd": {"per_request": 1.0}}
    with pytest.raises(ConfigError, match=r"energy_per_token_kwh: .*1000, got 1e\+308$"):
        budget_config(tmp_path, budgets, models=[model], carbon={"electricity_price_usd_per_kwh": 0.0})  # fmt: skip


def test_small_budgets_read_in_milligrams_and_decimals_in_refusals_and_the_report(
    tmp_path: Path,
) -> None:
    """Budgets set per hour on a small deployment: 5 mg of CO2 and $0.00001, a request of
    320 ug and $0.0000032 logged. The report's table read "0.005 g CO2 0.00032 g CO2",
    "$1e-05 $3.2e-06"; a refusal "...of 0.005 g CO2"."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines
    from routerllm.exceptions import BudgetExceededError

    from .test_budgets import budget_config

    budgets = {"co2_kg": {"hourly": 5e-6}, "cost_usd": {"hourly": 1e-5}, "downgrade_at": 1.0}
    config = budget_config(tmp_path, budgets)
    recent = datetime.now(timezone.utc) - timedelta(minutes=5)
    seeded_log(Path(config.log.path), [record("tiny-light", recent, co2_kg=3.2e-7, cost_usd=3.2e-6)]).close()  # fmt: skip
    lines = report_lines(logged_report(config))
    co2 = next(line for line in lines if line.startswith("CO2 in last 60 minutes"))
    cost = next(line for line in lines if line.startswith("cost in last 60 minutes"))
    assert co2.split()[-8:] == ["5", "mg", "CO2", "320", "\N{MICRO SIGN}g", "CO2", "6.4%", "0"], co2
    assert cost.split()[-4:] == ["$0.00001", "$0.0000032", "32.0%", "0"], cost
    log = RequestLog(Path(config.log.path))
    budget = CarbonBudget(BudgetConfig.model_validate(budgets), log, lambda: recent + timedelta(minutes=1))  # fmt: skip
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], True, _predict({"m": 1e-5}), {}, budget.status())
    assert "m is predicted to spend 10 mg CO2 (from test figures), more than the 4.68 mg CO2 left of the hourly budget" in str(e.value)  # fmt: skip
