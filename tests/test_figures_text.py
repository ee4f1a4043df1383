"""The figures ``report``, ``route`` and ``demo`` print for people: energy, CO2 and
dollars to 3 significant digits in a unit that keeps them readable (``carbon.units``;
dollars from $1 up in cents), a tiny request's never shown as 0 nor cut to one digit; ``--json`` keeps raw numbers."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import Measurement
from routerllm.carbon.request_log import RequestLog

from .conftest import cli_in_process, tiny_config_dict, write_config


def _tiny_request(i: int, model: str) -> RequestRecord:
    """A request on the tiny ladder: 8.6e-7 kWh, 3.2e-7 kg CO2, $3e-9."""
    parts = {
        "router_inference": Measurement("router_inference", 0.001, 6e-8, 2e-8, "codecarbon:measured"),
        "llm_inference": Measurement("llm_inference", 0.5, 8e-7, 3e-7, "codecarbon:measured"),
    }  # fmt: skip
    return RequestRecord(
        id=f"req-{i:05d}",
        timestamp=f"2026-12-06T10:0{i}:00+00:00",
        prompt_sha256=f"{i:064x}",
        prompt_chars=20,
        model=model,
        router="rules",
        confidence=0.9,
        prompt_tokens=10,
        completion_tokens=8,
        latency_s=0.5,
        cost_usd=3e-9,
        components=parts,
    )


def _report_of_a_tiny_request(tmp_path: Path) -> tuple[Path, str]:
    """The config of a log holding one ``_tiny_request``, and ``report``'s text of it."""
    data = tiny_config_dict(tmp_path)
    cfg = write_config(tmp_path, data)
    with RequestLog(Path(data["log"]["path"])) as log:
        log.append(_tiny_request(1, "tiny-light"))
    text = cli_in_process("report", "--config", str(cfg))
    assert text.returncode == 0, text.stderr
    return cfg, text.stdout


def test_the_report_says_a_tiny_request_s_figures_readably(tmp_path: Path) -> None:
    cfg, report = _report_of_a_tiny_request(tmp_path)
    totals = next(line for line in report.splitlines() if line.startswith("requests "))
    # was "energy 8.600e-07 kWh  CO2 0.0003 g  cost $3.00e-09"
    assert "energy 860 \N{MICRO SIGN}Wh  CO2 320 \N{MICRO SIGN}g  cost $0.000000003 " in totals, (
        totals
    )
    lines = report.splitlines()
    model = next(line for line in lines if line.startswith("tiny-light "))
    assert "860 \N{MICRO SIGN}Wh" in model and "320 \N{MICRO SIGN}g" in model, model
    head = next(line for line in lines if line.startswith("per model"))
    # the figures end under their column's header
    assert model.index("860 \N{MICRO SIGN}Wh") + 7 == head.index("energy") + len("energy")
    assert model.index("320 \N{MICRO SIGN}g") + 6 == head.index("CO2") + len("CO2"), (head, model)
    component = next(line for line in lines if line.startswith("llm_inference "))
    assert "800 \N{MICRO SIGN}Wh" in component and "300 \N{MICRO SIGN}g" in component, component
    routing = next(line for line in lines if line.startswith("router_inference "))
    assert "60 \N{MICRO SIGN}Wh" in routing and "20 \N{MICRO SIGN}g" in routing, routing
    day = next(line for line in lines if line.startswith("2026-12-06 "))
    assert day.endswith(" $0.000000003"), day
    # a day's cost ends under "cost" too: "$0.000000003" ran 2 characters past it
    day_head = next(line for line in lines if line.startswith("per day (UTC)"))
    assert len(day) == len(day_head) and day_head.endswith(" cost"), (day_head, day)
    # --json keeps the raw numbers
    raw = json.loads(cli_in_process("report", "--config", str(cfg), "--json").stdout)
    assert raw["totals"]["co2_kg"] == pytest.approx(3.2e-7) and raw["totals"]["cost_usd"] == 3e-9


def test_the_report_s_equivalences_read_as_its_other_figures(tmp_path: Path) -> None:
    """The CO2's equivalences in car distance and smartphone charges, to 3 significant
    digits as the CO2 they come from: a tiny request's in mm, a large log's in km with
    thousands separators (was "1.31e-06 km by car, 3.89e-05 smartphone charges" and
    "458.23307 km by car, 13613.1388 smartphone charges")."""
    _, report = _report_of_a_tiny_request(tmp_path)
    line = next(ln for ln in report.splitlines() if ln.startswith("equivalent to "))
    # 3.2e-7 kg of CO2: 1.31e-6 km (at 0.244 kg a km), 3.89e-5 charges (8.22 g each)
    assert line == "equivalent to 1.31 mm by car, 0.0000389 smartphone charges (US EPA factors)"
    big = tmp_path / "big"
    big.mkdir()
    data = tiny_config_dict(big)
    cfg = write_config(big, data)
    with RequestLog(Path(data["log"]["path"])) as log:
        heavy = _tiny_request(2, "tiny-heavy")
        heavy.components["llm_inference"] = Measurement("llm_inference", 9.0, 2000.0, 112.0, "codecarbon:measured")  # fmt: skip
        log.append(heavy)
    text = cli_in_process("report", "--config", str(cfg))
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("equivalent to "))
    assert line == "equivalent to 459 km by car, 13,600 smartphone charges (US EPA factors)"


def test_a_share_spent_that_rounds_to_nothing_is_not_shown_as_0(tmp_path: Path) -> None:
    """The report's share columns: a routing of 2 pg of a request's 300 ng, and 300 ng of
    a 1 kg daily budget, were "0.00%" and "0.0%", as if nothing were spent, in the column
    a user reads to see what routing costs; a share of nothing stays "0.00%"."""
    data = tiny_config_dict(tmp_path)
    data["budgets"] = {"co2_kg": {"daily": 1.0}}
    cfg = write_config(tmp_path, data)
    record = _tiny_request(1, "tiny-light")
    # within the daily budget's window whenever the test runs (a fixed day fell out of it)
    now = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    record = dataclasses.replace(record, timestamp=now)
    record.components["router_inference"] = Measurement("router_inference", 0.001, 5e-12, 2e-12, "codecarbon:measured")  # fmt: skip
    record.components["model_loading"] = Measurement("model_loading", 0.0, 0.0, 0.0, "codecarbon:measured")  # fmt: skip
    with RequestLog(Path(data["log"]["path"])) as log:
        log.append(record)
    report = cli_in_process("report", "--config", str(cfg))
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    routing = next(line for line in lines if line.startswith("router_inference "))
    assert routing.endswith(" <0.01%"), routing
    loading = next(line for line in lines if line.startswith("model_loading "))
    assert loading.endswith(" 0.00%"), loading
    head = next(line for line in lines if line.startswith("per component"))
    assert len(routing) == len(head), (head, routing)  # still ends under "share"
    daily = next(line for line in lines if line.startswith("CO2 in last 24 hours"))
    assert " <0.1% " in daily, daily
