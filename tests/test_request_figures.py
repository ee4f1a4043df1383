"""One request's figures wherever they are shown: ``route``'s text and ``--json``, the
request log's row (the source of truth), its rows in the emissions CSV and ``report``
narrowed to it (``--since`` its timestamp), text and ``--json``. Real tiny GGUF models
through llama.cpp and real CodeCarbon; each figure compared as each place prints it."""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

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
    for name, m in row.components.items():  # its share as the log's cpu_shares holds it
        assert out["components"][name] == {"energy_kwh": m.energy_kwh, "co2_kg": m.co2_kg, "duration_s": m.duration_s, "others_cpu_share": m.others_cpu_share, "contended": m.contended}  # fmt: skip
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
        sums = {k: figures[k] for k in ("energy_kwh", "co2_kg", "duration_s")}
        assert report["by_component"][name] == pytest.approx(sums, rel=1e-12), name
    assert report["methods"] == sorted(set(out["methods"].values()))


def _served_facts(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A streamed answer's ``routerllm`` figures (on its finish reason's chunk) and usage."""
    chunks = [json.loads(e.removeprefix("data: ")) for e in text.split("\n\n") if e and e != "data: [DONE]"]  # fmt: skip
    facts = next(c["routerllm"] for c in chunks if "routerllm" in c)
    return facts, chunks[-1]["usage"]


def test_the_servers_answers_are_their_logged_rows(tmp_path: Path) -> None:
    """A routed answer, its repeat from the request cache, a streamed one and one the
    cascade escalated (tiny-light's code failed its examples): each answer's ``routerllm``
    figures and ``usage`` are its row's in the request log, and its CSV rows too."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    from .test_cascade import REQUEST
    from .test_server import CHAT, asking, call, chat, running

    data = tiny_config_dict(tmp_path, cache={"enabled": True}, cascade={"enabled": True})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        answers = [chat(base, "Name a sorting algorithm.", temperature=0) for _ in range(2)]
        served = [(a["routerllm"], a["usage"]) for a in answers]
        asked = asking(("user", "What is a tuple?"), stream=True, stream_options={"include_usage": True})  # fmt: skip
        status, text = call(base, CHAT, asked)
        assert status == 200, text
        served.append(_served_facts(text))
        status, text = call(base, CHAT, asking(("user", REQUEST), model="tiny-light"))
        assert status == 200, text
        escalated = json.loads(text)
        served.append((escalated["routerllm"], escalated["usage"]))
        rows = {r.id: r for r in system.log.records()}
    cached, streamed, cascaded = served[1][0], served[2][0], served[3][0]
    assert cached["cached_from"] == served[0][0]["request_id"]
    assert streamed["cached_from"] == "" and "escalated to" in cascaded["reason"]
    with open(Path(data["carbon"]["output_dir"]) / "emissions.csv", encoding="utf-8", newline="") as f:  # fmt: skip
        emitted = list(csv.DictReader(f))
    assert len(rows) == 4 and len(emitted) == 12
    for facts, usage in served:
        row = rows[facts["request_id"]]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (row.prompt_tokens, row.completion_tokens)  # fmt: skip
        for key in ("model", "router", "prompt_tokens", "completion_tokens", "latency_s", "energy_kwh", "co2_kg", "cost_usd", "finish_reason"):  # fmt: skip
            assert facts[key] == getattr(row, key), (key, facts["reason"])
        assert facts["methods"] == {n: m.method for n, m in row.components.items()}
        for name, m in row.components.items():
            assert facts["components"][name] == {"energy_kwh": m.energy_kwh, "co2_kg": m.co2_kg, "duration_s": m.duration_s, "others_cpu_share": m.others_cpu_share, "contended": m.contended}  # fmt: skip
        parts = sum(c["energy_kwh"] for c in facts["components"].values())
        assert parts == pytest.approx(facts["energy_kwh"], rel=1e-12)
        mine = {r["component"]: r for r in emitted if r["request_id"] == row.id}
        assert set(mine) == set(row.components)
        for name, m in row.components.items():
            assert float(mine[name]["energy_consumed"]) == pytest.approx(m.energy_kwh, rel=1e-9)
            assert float(mine[name]["emissions"]) == pytest.approx(m.co2_kg, rel=1e-9)
            assert mine[name]["model"] == row.model and mine[name]["method"] == m.method
    # the escalated request's row keeps the first models' part apart, within its figures
    row = rows[cascaded["request_id"]]
    earlier = row.escalated["llm_inference"]
    assert 0 < earlier.energy_kwh < row.components["llm_inference"].energy_kwh


@pytest.mark.parametrize("named", [None, "tiny-medium"])
def test_the_first_check_of_which_models_run_here_is_not_billed_as_routing(
    tmp_path: Path, named: str | None
) -> None:
    """Which models can run here is checked once a process, reading each model's files
    (a GGUF's header, a split model's parts: 1.1-1.9 s on the local ladder, 2026-12-07)
    or asking its endpoint: a cost of the process, as CodeCarbon's hardware probe is, not
    of the first request's routing. Measured inside ``router_inference``, every `routerllm
    route` with the `rules` router billed it as routing (1.1-1.9 s, 8-15 mWh of requests
    of 65-71 mWh), routed or given a model by name."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    config = load_config(str(write_config(tmp_path, tiny_config_dict(tmp_path))))
    open_blocks: list[str] = []
    checked_in: list[list[str]] = []
    with RouterLLM(config) as system:
        measure, availability = system.meter.measure, system.manager.availability

        @contextlib.contextmanager
        def watched(component: str) -> Iterator[Any]:
            open_blocks.append(component)
            try:
                with measure(component) as slot:
                    yield slot
            finally:
                open_blocks.pop()

        def checked(name: str) -> str | None:
            checked_in.append(list(open_blocks))
            return availability(name)

        with (
            mock.patch.object(system.meter, "measure", watched),
            mock.patch.object(system.manager, "availability", checked),
        ):
            result = system.generate("What is a Python list?", model=named)
    assert result.model == (named or "tiny-light")
    assert len(checked_in) == 3  # each model checked once...
    assert all("router_inference" not in blocks for blocks in checked_in)  # ...unbilled
