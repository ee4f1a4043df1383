"""How the budgets word what they do: every window near its limit named in a step down's
reason, and amounts of any size said so that people can read them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from routerllm.carbon.budget import CarbonBudget
from routerllm.config import BudgetConfig

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_budgets import NOW, _predict, record, seeded_log

#: Two windows near their limits: the hourly CO2 one 90% spent, the daily cost one 85%.
TWO_NEAR = {"co2_kg": {"hourly": 0.05}, "cost_usd": {"daily": 1.0}, "downgrade_at": 0.8}
HOURLY_CO2 = "the hourly CO2 budget is 90% spent (45 g CO2 spent in the last 60 minutes, of 50 g CO2; budgets.co2_kg.hourly)"  # fmt: skip
DAILY_COST = "the daily cost budget is 85% spent ($0.85 spent in the last 24 hours, of $1; budgets.cost_usd.daily)"  # fmt: skip


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
