"""One request's figures wherever they are shown: ``route``'s text and ``--json``, the
request log's row (the source of truth), its rows in the emissions CSV and ``report``
narrowed to it (``--since`` its timestamp), text and ``--json``. Real tiny GGUF models
through llama.cpp and real CodeCarbon; each figure compared as each place prints it."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.report_text import fixed
from routerllm.carbon.request_log import RequestLog
from routerllm.carbon.units import co2, dollars, energy

from .conftest import cli_in_process, tiny_config_dict, tiny_model, write_config

#: ``route``'s head line: tokens, latency, energy, CO2 and cost.
HEAD = re.compile(
    r"(?P<prompt>\d+) in / (?P<completion>\d+) out tokens  (?P<latency>\S+) s  "
    r"(?P<energy>\S+ \S+)  CO2 (?P<co2>\S+ \S+)  cost (?P<cost>\S+)$"
)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One config whose light model has token prices (its cost is not its energy's), and
    two requests, each with its row and the report of it alone: ``route --json``'s (to the
    medium model), then ``route``'s text (to the light one)."""
    tmp = tmp_path_factory.mktemp("figures")
    models = [
        tiny_model(
            "tiny-light", "light", 0.1, cost_per_1m_input_usd=0.5, cost_per_1m_output_usd=2.0
        ),  # fmt: skip
        tiny_model("tiny-medium", "medium", 0.5),
        tiny_model("tiny-heavy", "heavy", 1.5),
    ]
    data = tiny_config_dict(tmp, models=models)
    cfg = write_config(tmp, data)
    got: dict[str, Any] = {}
    # each request, then the report of it alone: of the requests since its timestamp
    for kind, prompt in (("json", "Explain what a Python list is."), ("text", "What is 2+2?")):
        flag = ("--json",) if kind == "json" else ()
        run = cli_in_process("route", "--config", str(cfg), *flag, prompt)
        assert run.returncode == 0, run.stderr
        with RequestLog(Path(data["log"]["path"])) as log:
            row = list(log.records())[-1]
        report = cli_in_process("report", "--config", str(cfg), "--since", row.timestamp, *flag)
        assert report.returncode == 0, report.stderr
        got[kind] = (run.stdout, row, report.stdout)
    with open(
        Path(data["carbon"]["output_dir"]) / "emissions.csv", encoding="utf-8", newline=""
    ) as f:
        got["csv"] = list(csv.DictReader(f))
    return got


def test_route_s_text_shows_the_logged_figures_as_report_does(routed: dict[str, Any]) -> None:
    """``route`` said the request's energy and CO2 but not its cost, which ``--json``, the
    log, the server and ``report`` all give: a user comparing the request's cost found it
    nowhere in the text. Each figure now reads as the log's, rounded as ``report`` says it."""
    text, row, report = routed["text"]
    head = next(line for line in text.splitlines() if line.startswith("[1] "))
    said = HEAD.search(head)
    assert said is not None, head
    assert (int(said["prompt"]), int(said["completion"])) == (row.prompt_tokens, row.completion_tokens)  # fmt: skip
    assert said["latency"] == fixed(row.latency_s, 2)
    assert (said["energy"], said["co2"]) == (energy(row.energy_kwh), co2(row.co2_kg))
    assert row.cost_usd > 0 and said["cost"] == dollars(row.cost_usd)
    assert f" {row.model} " in head
    parts = next(line for line in text.splitlines() if "router_inference:" in line)
    for name, m in row.components.items():
        assert f"{name}: {fixed(m.duration_s, 2)} s {energy(m.energy_kwh)} {co2(m.co2_kg)}" in parts  # fmt: skip
        assert m.method in parts
    # the report of that request alone says the same, figure by figure
    totals = next(line for line in report.splitlines() if line.startswith("requests 1 "))
    assert f"energy {said['energy']}  CO2 {said['co2']}  cost {said['cost']}  " in totals, totals


def test_route_json_the_log_the_csv_and_the_report_agree(routed: dict[str, Any]) -> None:
    """``route --json``'s figures are the log's row's, the CSV's three rows are its
    components (to the CSV's digits), and ``report --json`` of that request alone gives
    them again; the components add up to the total everywhere."""
    printed, row, report_text = routed["json"]
    out = json.loads(printed)
    assert out["request_id"] == row.id
    for key in ("model", "router", "prompt_tokens", "completion_tokens", "latency_s", "energy_kwh", "co2_kg", "cost_usd", "finish_reason", "confidence"):  # fmt: skip
        assert out[key] == getattr(row, key), key
    assert out["methods"] == {n: m.method for n, m in row.components.items()}
    for name, m in row.components.items():
        assert out["components"][name] == {"energy_kwh": m.energy_kwh, "co2_kg": m.co2_kg, "duration_s": m.duration_s}  # fmt: skip
    for quantity in ("energy_kwh", "co2_kg", "duration_s"):
        parts = sum(c[quantity] for c in out["components"].values())
        whole = out["latency_s"] if quantity == "duration_s" else out[quantity]
        assert parts == pytest.approx(whole, rel=1e-12), quantity
    mine = [r for r in routed["csv"] if r["request_id"] == row.id]
    assert [r["component"] for r in mine] == list(row.components)
    for r in mine:
        m = row.components[r["component"]]
        assert (r["timestamp"], r["model"], r["router"], r["method"]) == (row.timestamp, row.model, row.router, m.method)  # fmt: skip
        assert float(r["duration"]) == pytest.approx(m.duration_s, abs=5e-7)
        assert float(r["energy_consumed"]) == pytest.approx(m.energy_kwh, rel=1e-9)
        assert float(r["emissions"]) == pytest.approx(m.co2_kg, rel=1e-9)
    report = json.loads(report_text)
    totals = report["totals"]
    assert totals["requests"] == 1
    for key in ("prompt_tokens", "completion_tokens", "latency_s", "energy_kwh", "co2_kg", "cost_usd"):  # fmt: skip
        assert totals[key] == pytest.approx(out[key], rel=1e-12), key
    for name, figures in out["components"].items():
        assert report["by_component"][name] == pytest.approx(figures, rel=1e-12), name
    assert report["methods"] == sorted(set(out["methods"].values()))
