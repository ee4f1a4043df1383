"""The grid a request's CO2 was computed for: recorded per request in the request log
(an older log's rows "not recorded"), shown by `route`, its JSON (the server's
`routerllm` field) and `report`, per grid where a log spans several."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import Grid, Measurement, grid_intensity_g_per_kwh
from routerllm.carbon.request_log import RequestLog
from routerllm.config import load_config

from .conftest import tiny_config_dict, write_config

FRA = Grid("FRA", "", grid_intensity_g_per_kwh("FRA"))
DEU = Grid("DEU", "", grid_intensity_g_per_kwh("DEU"))


def record(grid: Grid | None, co2_kg: float, when: str = "2026-12-06T10:00:00") -> RequestRecord:
    energy = co2_kg / (grid.intensity_g_per_kwh / 1000) if grid else co2_kg / 0.5
    part = Measurement("llm_inference", 1.0, energy, co2_kg, "codecarbon:load-estimate")
    return RequestRecord(
        id=uuid.uuid4().hex, timestamp=when, prompt_sha256="0" * 64, prompt_chars=10,
        model="tiny-light", router="rules", confidence=1.0, prompt_tokens=5,
        completion_tokens=3, latency_s=1.0, cost_usd=0.0,
        components={"llm_inference": part}, grid=grid,
    )  # fmt: skip


def test_a_routed_answer_states_and_logs_the_grid_codecarbon_priced_it_at(tmp_path: Path) -> None:
    from routerllm.route_cli import _result_lines
    from routerllm.system import RouterLLM

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    with RouterLLM(config) as system:
        result = system.generate("hi", model="tiny-light")
        (logged,) = system.log.records()
    gen = result.components["llm_inference"]
    # the intensity CodeCarbon states for France is the one its CO2 implies
    assert gen.co2_kg / gen.energy_kwh * 1000 == pytest.approx(FRA.intensity_g_per_kwh)
    assert result.grid == FRA and logged.grid == FRA
    assert result.to_dict()["grid"] == {
        "country": "FRA", "region": None, "intensity_g_per_kwh": FRA.intensity_g_per_kwh,
    }  # fmt: skip
    parts = _result_lines(1, result, "light")[2]
    assert parts.endswith(f"  grid: FRA {FRA.intensity_g_per_kwh:.4g} g/kWh"), parts


def older_log(path: Path) -> None:
    """A log as RouterLLM wrote it before grids were recorded (and answer lengths and CPU
    shares, after them), holding one request."""
    from routerllm.carbon.log_schema import SCHEMA

    from .conftest import schema_before_cpu_share

    old = schema_before_cpu_share().replace(
        ",\n    grid_country TEXT NOT NULL DEFAULT '',\n    grid_region TEXT NOT NULL "
        "DEFAULT '',\n    grid_g_per_kwh REAL,\n    completion_chars INTEGER",
        "",
    )
    assert old != SCHEMA
    with sqlite3.connect(path) as db:
        db.executescript(old)
        db.execute(
            "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ("old", "2026-12-05T10:00:00.000000+00:00", "0" * 64, 10, "tiny-light", "rules",
             1.0, 5, 3, 1.0, 2e-6, 1e-6, 0.0, "", "stop"),
        )  # fmt: skip
        db.execute(
            "INSERT INTO components VALUES (?,?,?,?,?,?)",
            ("old", "llm_inference", 1.0, 2e-6, 1e-6, "codecarbon:load-estimate"),
        )


def test_a_log_from_before_grids_opens_its_rows_not_recorded_then_gets_the_columns(
    tmp_path: Path,
) -> None:
    from routerllm.carbon.log_schema import TABLES

    path = tmp_path / "old.sqlite"
    older_log(path)
    with RequestLog(path, read_only=True) as log:  # read as it is
        (old,) = log.records()
        assert old.id == "old" and old.grid is None
    with RequestLog(path) as log:  # opened for writing: given the columns
        log.append(record(FRA, 1e-6))
        assert [r.grid for r in log.records()] == [None, FRA]
    with RequestLog(path) as again:  # a second writer finds them there
        assert again.count() == 2
    with sqlite3.connect(path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(requests)")] == TABLES["requests"]
        assert db.execute("SELECT grid_country, grid_g_per_kwh FROM requests WHERE id = 'old'").fetchone() == ("", None)  # fmt: skip


def test_the_report_gives_totals_per_grid_where_the_log_mixes_grids(tmp_path: Path) -> None:
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    path = Path(config.log.path)
    older_log(path)
    with RequestLog(path) as log:
        log.append(record(FRA, 1e-6))
        log.append(record(FRA, 3e-6, "2026-12-06T11:00:00"))
        log.append(record(DEU, 4e-6, "2026-12-06T09:00:00"))
    rep = logged_report(config)
    grids = {k: (t.requests, t.co2_kg) for k, t in rep.by_grid.items()}  # oldest first
    assert grids == {
        "not recorded": (1, pytest.approx(1e-6)),
        FRA.label: (2, pytest.approx(4e-6)),
        DEU.label: (1, pytest.approx(4e-6)),
    }
    assert rep.as_dict()["by_grid"][FRA.label]["co2_kg"] == pytest.approx(4e-6)
    lines = report_lines(rep)
    head = lines.index("these totals mix 3 grids, each request's CO2 its own grid's:")
    assert lines[head + 2].startswith("  not recorded ") and lines[head + 3].startswith("  DEU ")
    # 4e-6 kg at 56.04 g/kWh: 7.138e-05 kWh; each figure ends under its column's header
    assert lines[head + 4] == f"  {FRA.label:<24}        2        6    71.4 mWh      4 mg"
    assert len(lines[head + 1]) == len(lines[head + 4]) and lines[head + 1].endswith(
        "energy       CO2"
    )
    # the requests of one grid: one line, no table
    one = logged_report(config, since="2026-12-06T11:00")
    assert list(one.by_grid) == [FRA.label]
    assert f"grid: {FRA.label}" in report_lines(one)
    assert not any("mix" in line for line in report_lines(one))


def test_a_cached_answer_is_on_the_grid_of_the_system_that_answers_it(tmp_path: Path) -> None:
    """A cached answer spent its routing here and now: the grid is the answering system's."""
    from routerllm.system import RouterLLM

    config = load_config(
        write_config(tmp_path, tiny_config_dict(tmp_path, cache={"enabled": True}))
    )
    with RouterLLM(config) as system:
        first = system.generate("hi", model="tiny-light")
        again = system.generate("hi", model="tiny-light")
    assert again.cached_from == first.request_id
    assert again.grid == FRA
