"""CodeCarbon metering, per-token estimates, the SQLite/CSV request log, reports."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from routerllm.carbon.codecarbon_meter import CodeCarbonMeter, FailureWarnings
from routerllm.carbon.log_rows import CSV_COLUMNS, RequestRecord, iso_311, utc_timestamp
from routerllm.carbon.meter import (
    CACHED,
    COMPONENTS,
    Measurement,
    NullMeter,
    create_meter,
    grid_intensity_g_per_kwh,
    per_token_estimate,
)
from routerllm.carbon.report import KG_CO2_PER_KM_CAR, equivalences, summarize
from routerllm.carbon.request_log import RequestLog
from routerllm.config import CarbonConfig, ModelConfig
from routerllm.exceptions import ConfigError, RequestLogError, RouterLLMError
from routerllm.sqlite_busy import in_unwritable_folder, when_free

from .conftest import (
    benchmark_in_process,
    cli_in_process,
    disk_full_past,
    sqlite_held_by_another_process,
    tiny_config_dict,
    tiny_model,
    write_config,
)


def _record(i: int, model: str = "m", tokens: int = 10, co2: float = 1e-6) -> RequestRecord:
    comps = {
        "router_inference": Measurement("router_inference", 0.001, 1e-9, co2 / 100, "test"),
        "model_loading": Measurement("model_loading", 0.0, 0.0, 0.0, "test"),
        "llm_inference": Measurement("llm_inference", 0.5, 2e-6, co2, "test"),
    }
    return RequestRecord(
        id=f"r{i}",
        timestamp=f"2026-01-01T00:00:{i:02d}.000000+00:00",  # the form system.py writes
        prompt_sha256="h",
        prompt_chars=5,
        model=model,
        router="rules",
        confidence=0.9,
        prompt_tokens=3,
        completion_tokens=tokens,
        latency_s=0.5,
        cost_usd=0.0,
        components=comps,
    )


def test_unknown_country_is_a_config_error_not_the_world_average() -> None:
    with pytest.raises(ConfigError, match="country_iso_code 'XYZ' is not a country"):
        CodeCarbonMeter("XYZ")


def test_an_unknown_country_is_refused_with_carbon_tracking_off_too() -> None:
    """Remote models' per-token estimates use the country's grid with tracking off too:
    a mistyped country silently priced their CO2 at the world average."""
    with pytest.raises(ConfigError, match="country_iso_code 'FRN' is not a country"):
        create_meter(CarbonConfig(enabled=False, country_iso_code="FRN"))
    assert isinstance(create_meter(CarbonConfig(enabled=False, country_iso_code="fra")), NullMeter)


def test_an_unknown_country_is_refused_before_the_log_is_opened_whatever_the_meter(
    tmp_path: Path,
) -> None:
    """A system given its meter prices remote models' CO2 at the country's grid too; a
    refused one leaves no request log behind."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False, "country_iso_code": "FRN"})
    config = load_config(write_config(tmp_path, data))
    for meter in (None, NullMeter()):
        with pytest.raises(ConfigError, match="country_iso_code 'FRN' is not a country"):
            RouterLLM(config, meter=meter)
    assert not (tmp_path / "requests.sqlite").exists()


def test_a_meter_for_another_country_than_the_configs_is_refused(tmp_path: Path) -> None:
    """A meter given (``meter=``) measured at its own country's grid, while remote models'
    per-token estimates and the predictions priced CO2 at carbon.country_iso_code's: one
    request's CO2 mixed two grids. Refused, before the log is opened; one for the config's
    country (in any case) is the system's grid."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False, "country_iso_code": "USA"})))  # fmt: skip
    meter = CodeCarbonMeter("FRA")
    try:
        said = "meter measures CO2 at the grid of FRA, not at carbon.country_iso_code USA's, at which remote models' per-token estimates and the predictions price it; set carbon.country_iso_code: FRA or give a meter for USA"  # fmt: skip
        with pytest.raises(ConfigError, match=f"^{re.escape(said)}$"):
            RouterLLM(config, meter=meter)
        assert not (tmp_path / "requests.sqlite").exists()
        config.carbon.country_iso_code = "fra"
        with RouterLLM(config, meter=meter) as system:
            assert system.grid.country == "FRA"
    finally:
        meter.close()


def test_a_meter_of_ones_own_for_the_configs_country_in_lower_case_is_taken(tmp_path: Path) -> None:
    """A meter of one's own naming the config's country as the config may ("fra": the
    config's is read in any case) was refused as another country's, its message saying
    fra is not FRA; the system's grid was built from either before."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    class OwnMeter(NullMeter):
        country_iso_code = "fra"

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False, "country_iso_code": "FRA"})))  # fmt: skip
    with RouterLLM(config, meter=OwnMeter()) as system:
        assert system.grid.country == "FRA"
    config.carbon.country_iso_code = "USA"
    with pytest.raises(ConfigError, match=r"^meter measures CO2 at the grid of FRA, not at carbon\.country_iso_code USA's"):  # fmt: skip
        RouterLLM(config, meter=OwnMeter())


def test_without_codecarbon_the_world_average_grid_is_said_not_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the carbon extra (carbon tracking off, a remote model's per-token energy)
    CO2 was priced at the world average whatever the country, without a word."""
    from routerllm.carbon import meter

    monkeypatch.setitem(sys.modules, "codecarbon", None)  # as where it is not installed
    meter._energy_mix.cache_clear()
    grid_intensity_g_per_kwh.cache_clear()
    try:
        remote = ModelConfig.model_validate(tiny_model("r", "light", 1, energy_per_token_kwh=2e-6))  # fmt: skip
        with caplog.at_level("WARNING", logger="routerllm.carbon.meter"):
            m = per_token_estimate("llm_inference", remote, 10, 0.1, "FRA")
        assert m.co2_kg == pytest.approx(2e-5 * meter.WORLD_INTENSITY_G_PER_KWH / 1000)
        assert "CodeCarbon is not installed" in caplog.text
        assert "not at the grid of carbon.country_iso_code FRA" in caplog.text
        assert "pip install 'routerllm[carbon]'" in caplog.text
    finally:
        meter._energy_mix.cache_clear()
        grid_intensity_g_per_kwh.cache_clear()


def test_codecarbon_meter_measures_real_work() -> None:
    meter = CodeCarbonMeter("FRA")
    assert meter.method.startswith("codecarbon:")
    with meter.measure("llm_inference") as slot:
        sum(i * i for i in range(2_000_000))
    m = slot.result
    assert m.component == "llm_inference" and m.duration_s > 0.01
    assert m.energy_kwh > 0 and m.co2_kg > 0
    # CodeCarbon prices energy at the country's grid intensity
    assert m.co2_kg / m.energy_kwh == pytest.approx(
        grid_intensity_g_per_kwh("FRA") / 1000, rel=0.05
    )
    meter.close()


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="Linux's /proc/cpuinfo")
def test_the_first_hardware_probe_reads_the_cpu_model_without_starting_a_process() -> None:
    """py-cpuinfo started a Python process to name the CPU: 1.1 s of the 1.8 s that every
    command measuring energy spent starting. The model is /proc/cpuinfo's, py-cpuinfo is
    not asked, and is as it was afterwards (in a fresh process: CodeCarbon keeps it)."""
    script = textwrap.dedent(
        """
        import cpuinfo
        from routerllm.carbon.codecarbon_meter import CodeCarbonMeter, _proc_cpu_model
        def asked():
            raise AssertionError("py-cpuinfo was asked")
        if _proc_cpu_model() is not None:  # else (ARM) it is asked, as before
            cpuinfo.get_cpu_info = asked
        before = cpuinfo.get_cpu_info
        meter = CodeCarbonMeter("FRA")
        cpu = [h for h in meter._tracker._hardware if type(h).__name__ == "CPU"]
        assert cpuinfo.get_cpu_info is before, "not put back"
        print(_proc_cpu_model(), "|", cpu[0]._model if cpu else None, "|", meter.method)
        meter.close()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    proc_model, probed, method = (part.strip() for part in done.stdout.split("|"))
    if proc_model != "None":  # an ARM machine's /proc/cpuinfo names none: py-cpuinfo is asked
        assert probed == proc_model and method.startswith("codecarbon:")


def test_ctrl_c_inside_codecarbons_calls_leaves_the_meter_closable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C pressed while CodeCarbon (re)started one of its schedulers, which holds a
    plain lock meanwhile, left that lock held: the tracker's stop() at close then waited
    for it forever (`routerllm humaneval` hung after Ctrl-C, about 1 run in 6). The
    Ctrl-C is raised once CodeCarbon's call returns; the task is stopped, the meter
    closes. Here SIGINT arrives as a scheduler's timer starts, its lock held."""
    from codecarbon.external import scheduler

    meter = CodeCarbonMeter("FRA")

    class PressedAsItStarts(threading.Timer):
        def start(self) -> None:
            super().start()
            os.kill(os.getpid(), signal.SIGINT)  # handled here, the scheduler's lock held

    monkeypatch.setattr(scheduler, "Timer", PressedAsItStarts)
    with pytest.raises(KeyboardInterrupt), meter.measure("llm_inference"):
        pass
    monkeypatch.undo()
    closing = threading.Thread(target=meter.close, daemon=True)
    closing.start()
    closing.join(timeout=30)  # a guard against the hang, not a timing check
    assert not closing.is_alive(), "close() waited for a lock Ctrl-C left held"


@pytest.mark.parametrize(
    ("platform_mode", "method"),
    [
        ("intel_rapl", "measured"),  # Linux
        ("windows_emi", "measured"),  # Windows 11: RAPL through the Energy Meter Interface
        ("intel_power_gadget", "measured"),  # macOS (Intel) and Windows
        ("cpu_load", "load-estimate"),
        ("constant", "tdp-estimate"),  # psutil cannot read the load: the TDP alone
    ],
)
def test_the_method_says_how_codecarbon_reads_the_cpu_on_every_platform(
    platform_mode: str, method: str
) -> None:
    """CodeCarbon's counters on Windows and macOS (Energy Meter Interface, Intel Power
    Gadget, powermetrics) were labelled codecarbon:load-estimate, as was a constant
    TDP figure: the method told the report an estimate from load where there was none."""
    from codecarbon.external.hardware import CPU, AppleSiliconChip

    from routerllm.carbon.codecarbon_meter import _power_method

    meter = CodeCarbonMeter("FRA")
    try:
        tracker = meter._tracker
        (cpu,) = [h for h in tracker._hardware if isinstance(h, CPU)]
        # this machine's CPU as CodeCarbon sets it up on that platform (whose readers
        # cannot be built here)
        cpu._mode = platform_mode
        assert _power_method(tracker) == method
        # an Apple chip read through powermetrics
        tracker._hardware = [h for h in tracker._hardware if h is not cpu]
        tracker._hardware.append(AppleSiliconChip.__new__(AppleSiliconChip))
        assert _power_method(tracker) == "measured"
    finally:
        meter.close()


def test_a_measured_block_leaves_no_thread_of_codecarbons_power_monitor_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CodeCarbon samples the load every second of a task in a timer thread; stopping the
    task cancels it, but a sample being taken ran on after the block, and a timer firing
    as it was stopped restarted itself: on a busy machine a server counted one thread
    more after a request than before (CI, 2026-12-05). Here the samples take 0.3 s."""
    meter = CodeCarbonMeter("FRA")
    monitor = meter._tracker._scheduler_monitor_power
    sampling = threading.Event()

    def slow_sample() -> None:
        sampling.set()
        time.sleep(0.3)

    monkeypatch.setattr(monitor, "interval", 0.02)
    monkeypatch.setattr(monitor, "function", slow_sample)
    try:
        with meter.measure("llm_inference"):
            assert sampling.wait(30)
        left = [
            t for t in threading.enumerate()
            if isinstance(t, threading.Timer) and t.function == monitor._run and t.is_alive()
        ]  # fmt: skip
        assert left == [] and monitor._stopped
    finally:
        meter.close()


def test_codecarbon_meter_memory_stays_flat_over_many_requests() -> None:
    """CodeCarbon keeps each finished task's figures (~2.4 KB) until its tracker stops:
    a long-running server, three tasks a request, grew without bound. 200 blocks: kept,
    they are ~485 KB; forgotten, ~10 KB whatever the count (1,000 blocks, 4 s of CPU
    under tracemalloc, showed no more)."""
    import tracemalloc

    meter = CodeCarbonMeter("FRA")
    for _ in range(50):  # CodeCarbon's own first-use allocations
        with meter.measure("llm_inference"):
            pass
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            with meter.measure("llm_inference"):
                pass
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        meter.close()
    assert grown < 150_000, f"{grown:,} bytes kept after 200 measured blocks"


def test_two_codecarbon_meters_in_one_process_take_turns() -> None:
    """Each CodeCarbon tracker measures the whole machine: two systems' meters measuring
    at once each counted the other's work, and the same seconds twice."""
    first, second = CodeCarbonMeter("FRA"), CodeCarbonMeter("FRA")
    inside = threading.Event()
    spans: dict[str, tuple[float, float]] = {}

    def block(meter: CodeCarbonMeter, name: str) -> None:
        with meter.measure("llm_inference"):
            start = time.perf_counter()
            inside.set()
            time.sleep(0.3)
            spans[name] = (start, time.perf_counter())

    other = threading.Thread(target=block, args=(first, "first"))
    other.start()
    assert inside.wait(30)
    block(second, "second")
    other.join(30)
    assert spans["second"][0] >= spans["first"][1]  # it waited for the first block to end
    first.close()
    second.close()


@pytest.fixture
def failures_unsaid(monkeypatch: pytest.MonkeyPatch) -> None:
    """CodeCarbon's failures said anew: each kind is said once a process, and an earlier
    test's would hold this one's back."""
    monkeypatch.setattr("routerllm.carbon.codecarbon_meter._FAILURES", FailureWarnings())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("step", ["start", "stop"])
@pytest.mark.usefixtures("failures_unsaid")
def test_a_codecarbon_failure_costs_neither_the_block_nor_later_measurements(
    step: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A power reading that fails (a RAPL counter made unreadable) raised CodeCarbon's
    error out of the measured block, losing its answer, and left the task active:
    CodeCarbon then refused every later one, logged as spending nothing, unsaid."""
    meter = CodeCarbonMeter("FRA")
    tracker = meter._tracker
    # the failure injected where CodeCarbon reads the hardware: nothing here can fail it
    target, name = (tracker._hardware[0], "start") if step == "start" else (tracker, "_measure_power_and_energy")  # fmt: skip
    real = getattr(target, name)

    def unreadable(*args: object) -> object:
        setattr(target, name, real)  # once
        raise PermissionError(13, "Permission denied", "/sys/class/powercap/intel-rapl:0/energy_uj")  # fmt: skip

    setattr(target, name, unreadable)
    try:
        with (
            caplog.at_level("WARNING", logger="routerllm.carbon.codecarbon_meter"),
            meter.measure("llm_inference") as failed,
        ):
            answer = sum(i * i for i in range(1000))
        assert answer == 332833500
        assert failed.result.method == "codecarbon:failed" and failed.result.energy_kwh == 0.0
        assert "could not measure llm_inference (PermissionError" in caplog.text
        for _ in range(2):
            with meter.measure("llm_inference") as later:
                sum(i * i for i in range(200_000))
            assert later.result.method == meter.method and later.result.energy_kwh > 0
    finally:
        meter.close()


@pytest.mark.usefixtures("failures_unsaid")
def test_a_codecarbon_failure_that_keeps_coming_is_said_once_then_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power counter that stays unreadable failed each measured block of each request:
    three times a request the same warning, a server's log filled with it."""
    meter = CodeCarbonMeter("FRA")
    hardware = meter._tracker._hardware[0]

    def unreadable(*args: object) -> object:
        raise PermissionError(13, "Permission denied", "/sys/class/powercap/intel-rapl:0/energy_uj")  # fmt: skip

    monkeypatch.setattr(hardware, "start", unreadable)
    try:
        with caplog.at_level("WARNING", logger="routerllm.carbon.codecarbon_meter"):
            for _ in range(3):  # three requests, each part failing
                for component in COMPONENTS:
                    with meter.measure(component) as failed:
                        pass
                    assert failed.result.method == "codecarbon:failed"  # each recorded
            said = [r.getMessage() for r in caplog.records]
            assert len(said) == 1, said
            assert said[0].startswith("CodeCarbon could not measure router_inference (PermissionError: [Errno 13] Permission denied")  # fmt: skip
            assert said[0].endswith("; the same failure again is counted, not repeated")
            meter.close()  # the count, as the run ends
        said = [r.getMessage() for r in caplog.records]
        assert said[1:] == [
            "CodeCarbon could not measure 8 more blocks (PermissionError) since it was last "
            "said; each is logged as spending nothing (method codecarbon:failed)"
        ], said
    finally:
        meter.close()
    # a server's: the count at most every ten minutes as the failures go on
    clock = Clock()
    notes = FailureWarnings(clock=clock)
    caplog.clear()
    with caplog.at_level("WARNING", logger="routerllm.carbon.codecarbon_meter"):
        notes.failed("llm_inference", "OSError: [Errno 5] Input/output error")
        for _ in range(2):
            clock.now += 599
            notes.failed("llm_inference", "OSError: [Errno 5] Input/output error")
        notes.failed("router_inference", "")  # another kind: said in full
        notes.say_counts()
        notes.say_counts()  # nothing left to say
    assert [r.getMessage() for r in caplog.records] == [
        "CodeCarbon could not measure llm_inference (OSError: [Errno 5] Input/output error); it "
        "is logged as spending nothing (method codecarbon:failed), which the budgets do not "
        "count; the same failure again is counted, not repeated",
        "CodeCarbon could not measure 2 more blocks (OSError) since it was last said; each is "
        "logged as spending nothing (method codecarbon:failed)",
        "CodeCarbon could not measure router_inference; it is logged as spending nothing "
        "(method codecarbon:failed), which the budgets do not count; the same failure again "
        "is counted, not repeated",
    ]


def test_null_meter_times_only() -> None:
    with NullMeter().measure("x") as slot:
        time.sleep(0.01)
    assert slot.result.duration_s >= 0.01 and slot.result.energy_kwh == 0.0


def test_per_token_estimate_by_hand() -> None:
    energy_only = ModelConfig.model_validate(tiny_model("e", "light", 1, energy_per_token_kwh=2e-6))
    m = per_token_estimate("llm_inference", energy_only, 50, 1.5, "FRA")
    assert m.energy_kwh == pytest.approx(1e-4)
    assert m.co2_kg == pytest.approx(1e-4 * grid_intensity_g_per_kwh("FRA") / 1000)
    assert m.method == "estimate:per-token" and m.duration_s == 1.5
    co2_only = ModelConfig.model_validate(
        tiny_model("c", "light", 1, energy_per_token_kwh=None, co2_per_token_kg=8e-6)
    )
    m = per_token_estimate("llm_inference", co2_only, 10, 0.0, "USA")
    assert m.co2_kg == pytest.approx(8e-5)
    assert m.energy_kwh == pytest.approx(8e-5 / (grid_intensity_g_per_kwh("USA") / 1000))
    assert grid_intensity_g_per_kwh("ZZZ") == 475.0  # unknown country: world average


def test_log_round_trip_and_csv_columns(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite", tmp_path / "carbon" / "emissions.csv") as log:
        for i in range(3):
            log.append(_record(i))
        got = list(log.records())
    assert [r.id for r in got] == ["r0", "r1", "r2"]
    assert got[0].co2_kg == pytest.approx(1e-6 * 1.01)
    assert list(got[0].components) == ["router_inference", "model_loading", "llm_inference"]
    rows = list(csv.reader((tmp_path / "carbon" / "emissions.csv").open()))
    assert rows[0] == CSV_COLUMNS
    assert rows[0][:5] == ["timestamp", "component", "duration", "emissions", "energy_consumed"]
    assert len(rows) == 1 + 3 * 3


def test_records_since_an_iso_date_or_time(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite", tmp_path / "e.csv") as log:
        for i in range(3):
            log.append(_record(i))

        def since(text: str) -> list[str]:
            return [r.id for r in log.records(since=text)]

        assert since("2026-01-01") == ["r0", "r1", "r2"]
        assert since("2026-01-01T00:00:01") == ["r1", "r2"]  # naive: UTC
        assert since("2026-01-01T00:00:01Z") == ["r1", "r2"]
        assert since("2026-01-01T01:00:02+01:00") == ["r2"]  # 00:00:02 UTC
        assert since("2026-01-02") == []
        with pytest.raises(RouterLLMError, match="not an ISO date or time"):
            since("yesterday")
        for edge in ("0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"):
            with pytest.raises(RouterLLMError, match="out of the range of dates in UTC"):
                since(edge)


@pytest.mark.parametrize(
    ("text", "utc"),
    [  # forms Python 3.11's fromisoformat reads and 3.10's did not
        ("2026-12-05T10:00:00.5Z", "2026-12-05T10:00:00.500000+00:00"),  # JavaScript, Go
        ("2026-12-05T10:00:00.1234567+00:00", "2026-12-05T10:00:00.123456+00:00"),  # .NET
        ("2026-12-05T10:00:00,25", "2026-12-05T10:00:00.250000+00:00"),
        ("2026-12-05T11:00:00+0100", "2026-12-05T10:00:00.000000+00:00"),  # date +%FT%T%z
        ("2026-12-05T11:00+01", "2026-12-05T10:00:00.000000+00:00"),
        ("2026-12-05T11:00:30+01:00:30.5", "2026-12-05T09:59:59.500000+00:00"),
        ("20261205", "2026-12-05T00:00:00.000000+00:00"),
        ("20261205T103000Z", "2026-12-05T10:30:00.000000+00:00"),
        ("2026-12-05T1030", "2026-12-05T10:30:00.000000+00:00"),
        ("2026-W49-6", "2026-12-05T00:00:00.000000+00:00"),
        ("2026W49", "2026-11-30T00:00:00.000000+00:00"),
    ],
)
def test_iso_forms_of_python_3_11_read_on_every_python(text: str, utc: str) -> None:
    assert utc_timestamp(text) == utc
    fallback = iso_311(text)  # what 3.10 reads them with, checked on every Python
    assert fallback is not None
    assert utc_timestamp(fallback.isoformat()) == utc


@pytest.mark.parametrize(
    "text",
    ["2026-12", "2026-339", "2026-12-05T24:00", "2026-12-05T10:00z", "2026-12-5", "2026-1205",
     "2026-12-05T10:0000", "2026-12-05T10:00:00.", "2026-W54", "2026-W49-8", "2026-12-05T10+1",
     "2026-12-05T10:00+01:00:30.", "२०२६-12-05", " 2026-12-05x", "2026-12-05T10:00:00.5+25:00"],
)  # fmt: skip
def test_what_no_python_reads_as_iso_is_refused(text: str) -> None:
    with pytest.raises(RouterLLMError, match="not an ISO date or time"):
        utc_timestamp(text)
    assert iso_311(text.strip()) is None


WRITER = textwrap.dedent(
    """
    import sys, time
    from routerllm.carbon.request_log import RequestLog
    from tests.test_carbon import _record
    db, csv_path, prefix, n, pause = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    with RequestLog(db, csv_path) as log:
        for i in range(n):
            r = _record(i)
            log.append(r.__class__(**{**r.__dict__, "id": f"{prefix}{i}"}))
            print(i, flush=True)
            time.sleep(pause)
    """
)


def _writer(tmp_path: Path, prefix: str, n: int, pause: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(tmp_path / "log.sqlite"),
            str(tmp_path / "e.csv"),
            prefix,
            str(n),
            str(pause),
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    procs = [_writer(tmp_path, p, 40) for p in ("a", "b", "c")]
    for p in procs:
        assert p.wait(timeout=60) == 0
    with RequestLog(tmp_path / "log.sqlite") as log:  # reopened by another process
        assert log.count() == 120
        assert len({r.id for r in log.records()}) == 120
    rows = list(csv.reader((tmp_path / "e.csv").open()))
    assert rows.count(CSV_COLUMNS) == 1 and len(rows) == 1 + 120 * 3


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_a_log_deleted_or_moved_while_open_logs_nothing_more_and_says_so(
    tmp_path: Path, how: str
) -> None:
    """A log deleted or moved (rotated) under a running process: its rows would go on into
    a file no longer at log.path (a deleted one's lost at exit), and a process starting a
    log there would share the old one's -wal and -shm ("disk I/O error"). The next row is
    refused with one clear error, the moved file keeps every row, a new log there works."""
    path = tmp_path / "log.sqlite"
    log = RequestLog(path)
    log.append(_record(0))
    if how == "deleted":
        path.unlink()
    else:
        path.rename(tmp_path / "old.sqlite")
    with pytest.raises(RequestLogError, match=r"could not be logged: .* was moved or deleted"):
        log.append(_record(1))
    with pytest.raises(RequestLogError, match=r"was moved or deleted .* restart"):
        log.check_writable()  # the next requests: refused before they are paid for
    with RequestLog(path) as new:
        new.append(_record(2))
        assert [r.id for r in new.records()] == ["r2"]
    if how == "moved":
        with RequestLog(tmp_path / "old.sqlite", read_only=True) as old:
            assert [r.id for r in old.records()] == ["r0"]
    log.close()


def test_opening_retries_while_the_log_is_locked(tmp_path: Path) -> None:
    """SQLite may refuse "database is locked" at once, without its busy timeout (as when
    several processes open a new log together): ``when_free`` retries until the lock
    goes, up to its timeout; other errors are not retried."""
    db = tmp_path / "x.sqlite"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    impatient = sqlite3.connect(db, timeout=0)  # refuses at once while locked

    def insert() -> None:
        impatient.execute("INSERT INTO t VALUES (1)")

    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        when_free(insert, timeout_s=0.2)
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))
    release.start()
    when_free(insert, timeout_s=10)
    impatient.commit()
    release.join()
    assert holder.execute("SELECT count(*) FROM t").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        when_free(lambda: impatient.execute("SELECT * FROM missing"))


def test_a_log_another_process_holds_past_the_busy_timeout_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a sqlite3 shell) holding the log in a write transaction past the
    busy timeout: the error said only SQLite's "database is locked". It names the
    process now, and how long it was waited for; what it holds is read meanwhile (WAL),
    and the log takes the next request once it lets go."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    db = tmp_path / "log.sqlite"
    with RequestLog(db, tmp_path / "e.csv") as log:
        log.append(_record(1))
        with sqlite_held_by_another_process(db, 'db.execute("BEGIN IMMEDIATE")') as pid:
            said = (
                f"the answer was produced but could not be logged: request log {db} "
                f"(log.path) has been locked by process {pid} (python"
            )
            with pytest.raises(RequestLogError, match=re.escape(said)) as e:
                log.append(_record(2))
            assert "for over 0.3 s (a write transaction left open" in str(e.value)
            assert "\n" not in str(e.value)
            assert log.count() == 1
        log.append(_record(3))
        assert [r.id for r in log.records()] == ["r1", "r3"]


def test_feedback_to_a_log_another_process_holds_past_the_busy_timeout_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scores and the requests kept for them live in the request log: another
    process holding it in a write transaction past the busy timeout made storing a score
    or keeping a request say only SQLite's "database is locked". They name the process
    as the log's own writes do; nothing is stored, and both work once it lets go."""
    import numpy as np

    from routerllm import sqlite_busy
    from routerllm.carbon.log_rows import PendingRequest

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    db = tmp_path / "log.sqlite"
    kept = PendingRequest("r1", "m", "knn", "hashing:4", np.ones(4, np.float32), "f")
    with RequestLog(db) as log:
        log.append(_record(1))
        with sqlite_held_by_another_process(db, 'db.execute("BEGIN IMMEDIATE")') as pid:
            locked = f"request log {db} (log.path) has been locked by process {pid} (python"
            with pytest.raises(RequestLogError) as e:
                log.add_feedback("r1", 0.5)
            said = str(e.value)
            assert said.startswith(f"the feedback could not be stored: {locked}")
            assert "for over 0.3 s (a write transaction left open" in said
            assert said.endswith("; the score is not stored: give it again then")
            with pytest.raises(RequestLogError, match=re.escape(f"request r1 could not be kept for feedback: {locked}")):  # fmt: skip
                log.remember_pending(kept, 10)
        assert log.feedback() == [] and log.pending("r1") is None
        assert log.add_feedback("r1", 0.5, learned=False)
        log.remember_pending(kept, 10)
        assert log.pending("r1") is not None


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux's /proc/locks")
@pytest.mark.parametrize("left_shm", [False, True], ids=["no-shm", "shm-left-by-a-killed-writer"])
def test_a_log_another_process_holds_in_exclusive_locking_mode_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, left_shm: bool
) -> None:
    """Another process holding the log with PRAGMA locking_mode=EXCLUSIVE (a sqlite3
    shell, a backup tool) keeps readers out too: `routerllm report` said only "cannot be
    opened: database is locked", a system opening the log the same. SQLite then locks the
    file's own lock bytes, and uses no -shm: its holder was looked for only in the -shm's
    write lock where one is (left by a writer killed). Both name it now, and what to do;
    the log is read as before once it lets go."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    db = tmp_path / "requests.sqlite"  # the tiny config's log.path
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    with RequestLog(db) as log:
        log.append(_record(1))
    if left_shm:  # a writer killed with its -shm open
        killed = "import os, signal, sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('SELECT 1 FROM requests'); os.kill(os.getpid(), signal.SIGKILL)"  # fmt: skip
        subprocess.run([sys.executable, "-c", killed, str(db)], check=False)
    assert db.with_name("requests.sqlite-shm").is_file() == left_shm
    exclusive = 'db.execute("PRAGMA locking_mode=EXCLUSIVE"); db.execute("BEGIN"); db.execute("SELECT count(*) FROM requests").fetchall()'  # fmt: skip
    with sqlite_held_by_another_process(db, exclusive) as pid:
        assert sqlite_busy.holder(db).startswith(f"process {pid} (python")
        said = f"request log {db} (log.path) has been locked by process {pid} (python"
        for read_only in (True, False):
            with pytest.raises(RequestLogError, match=re.escape(said)) as e:
                RequestLog(db, tmp_path / "e.csv", read_only=read_only)
            assert "locking_mode=EXCLUSIVE" in str(e.value) and "close that connection" in str(e.value)  # fmt: skip
        run = cli_in_process("report", "--config", str(config))
        assert run.returncode == 2 and run.stderr.startswith(f"error: {said}")
        assert run.stderr.count("\n") == 1
    with RequestLog(db, read_only=True) as log:
        assert [r.id for r in log.records()] == ["r1"]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux's /proc/locks")
def test_a_report_on_a_log_held_in_exclusive_locking_mode_says_so_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`routerllm report` on a log another process holds with PRAGMA
    locking_mode=EXCLUSIVE (kept until that connection closes) waited the whole 30 s busy
    timeout (35.9 s measured) before it said so. It looks after a short first try, sees
    the holder's lock and says so then; a writer (a system opening the log to append)
    still waits the whole timeout, as other writers' transactions end."""
    import time

    from routerllm import sqlite_busy

    db = tmp_path / "requests.sqlite"  # the tiny config's log.path
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    with RequestLog(db) as log:
        log.append(_record(1))
    exclusive = 'db.execute("PRAGMA locking_mode=EXCLUSIVE"); db.execute("BEGIN"); db.execute("SELECT count(*) FROM requests").fetchall()'  # fmt: skip
    with sqlite_held_by_another_process(db, exclusive) as pid:
        start = time.monotonic()
        run = cli_in_process("report", "--config", str(config))
        waited = time.monotonic() - start
        assert waited < 10, waited  # the first try, not the 30 s busy timeout
        assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith(
            f"error: request log {db} (log.path) has been locked by process {pid} (python"
        )
        assert f"for over {sqlite_busy.FIRST_TRY_S:g} s (PRAGMA locking_mode=EXCLUSIVE" in run.stderr  # fmt: skip
        monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 2.0)
        start = time.monotonic()
        with pytest.raises(RequestLogError, match=r"for over 2 s \(PRAGMA locking_mode"):
            RequestLog(db, tmp_path / "e.csv")
        assert time.monotonic() - start >= 2.0  # a writer waits it all
    with RequestLog(db, read_only=True) as log:
        assert [r.id for r in log.records()] == ["r1"]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux's /proc/locks")
def test_a_log_out_of_wal_mode_that_another_process_reads_names_it_to_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log taken out of WAL mode (journal_mode=DELETE in a sqlite3 shell), read by
    another process in a transaction: its read lock keeps a writer from switching it
    back, and opening it for writing said only "database is locked", after 30 s
    whatever the busy timeout. It names the reader now; a report reads it meanwhile."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    db = tmp_path / "log.sqlite"
    with RequestLog(db) as log:
        log.append(_record(1))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    conn.close()
    reading = 'db.execute("BEGIN"); db.execute("SELECT count(*) FROM requests").fetchall()'
    with sqlite_held_by_another_process(db, reading) as pid:
        said = f"request log {db} (log.path) has been locked by process {pid} (python"
        start = time.monotonic()
        with pytest.raises(RequestLogError, match=re.escape(said)) as e:
            RequestLog(db, tmp_path / "e.csv")
        assert time.monotonic() - start < 10
        assert "for over 0.3 s (a read transaction left open" in str(e.value)
        with RequestLog(db, read_only=True) as log:
            assert log.count() == 1
    with RequestLog(db, tmp_path / "e.csv") as log:  # back in WAL mode
        log.append(_record(2))
        assert log.count() == 2


def test_killed_run_keeps_every_completed_request(tmp_path: Path) -> None:
    proc = _writer(tmp_path, "k", 1000, pause=0.02)
    assert proc.stdout is not None
    done = [proc.stdout.readline() for _ in range(5)]  # 5 requests reported complete
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with RequestLog(tmp_path / "log.sqlite") as log:
        ids = {r.id for r in log.records()}
    assert {f"k{int(line)}" for line in done} <= ids


KILLED_AT = textwrap.dedent(
    """
    import os, signal, sys
    from routerllm.carbon.request_log import RequestLog
    from tests.test_carbon import _record
    db, csv_path, step = sys.argv[1:4]
    with RequestLog(db, csv_path) as log:
        log.append(_record(1))
        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        real = getattr(RequestLog, step)
        def written_then_killed(self, *args, **kwargs):
            real(self, *args, **kwargs)
            killed()
        setattr(RequestLog, step, killed if step == "_append_csv" else written_then_killed)
        log.append(_record(2))
    """
)


@pytest.mark.parametrize(
    "step", ["_append_csv", "_mirrored"], ids=["before-the-csv-row", "after-the-csv-row"]
)
def test_a_run_killed_between_the_log_and_its_csv_row_gets_the_row_on_the_next_open(
    tmp_path: Path, step: str
) -> None:
    """SIGKILL after a request's row was committed to the log, before its rows were added
    to the emissions CSV (or after, before the log knew they were): the CSV was one
    request short for good. The next open adds what it lacks, once."""
    db, path = tmp_path / "log.sqlite", tmp_path / "carbon" / "emissions.csv"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AT, str(db), str(path), step],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with RequestLog(db) as log:  # no CSV: it is not caught up here
        assert [r.id for r in log.records()] == ["r1", "r2"]
    ids = [row[5] for row in csv.reader(path.open(newline=""))][1:]
    assert ids == ["r1"] * 3 + (["r2"] * 3 if step == "_mirrored" else [])
    with RequestLog(db, path) as log:  # the next run: the CSV caught up, then appended to
        log.append(_record(3))
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == CSV_COLUMNS and rows.count(CSV_COLUMNS) == 1
    assert [r[5] for r in rows[1:]] == ["r1"] * 3 + ["r2"] * 3 + ["r3"] * 3
    assert [r[1] for r in rows[4:7]] == ["router_inference", "model_loading", "llm_inference"]
    assert rows[4][0] == "2026-01-01T00:00:02.000000+00:00" and rows[6][3] == "1.000000000e-06"
    with RequestLog(db, path):  # caught up once
        pass
    assert len(list(csv.reader(path.open(newline="")))) == 1 + 3 * 3


def test_summary_by_hand() -> None:
    recs = [
        _record(0, "small", 10, 1e-6),
        _record(1, "small", 30, 3e-6),
        _record(2, "big", 20, 4e-6),
    ]
    rep = summarize(recs)
    assert rep.totals.requests == 3 and rep.totals.completion_tokens == 60
    assert rep.totals.co2_kg == pytest.approx(8e-6 * 1.01)
    assert rep.by_model["small"].requests == 2
    assert rep.by_component["llm_inference"].co2_kg == pytest.approx(8e-6)
    assert equivalences(KG_CO2_PER_KM_CAR * 2)["km_by_car"] == pytest.approx(2.0)
    assert pytest.approx(0.2442, abs=1e-4) == KG_CO2_PER_KM_CAR  # EPA: 393 g/mile


def test_summary_of_logged_records_counts_the_failed_ones(tmp_path: Path) -> None:
    """``summarize(log.records())`` counts a request logged as failed (finish reason
    "error": its load, no answer) as ``routerllm report`` does: until 2026-12-03 it said
    0 failed, and the comparison with the largest model called it one "logged without
    energy"."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))
    load = Measurement("model_loading", 1.0, 3e-6, 1e-6, "test")
    failed = dataclasses.replace(
        _record(2, "small", 0),
        prompt_tokens=0,
        components={
            "router_inference": _record(2).components["router_inference"],
            "model_loading": load,
        },  # fmt: skip
        finish_reason="error",
    )
    with RequestLog(tmp_path / "log.sqlite") as log:
        for r in (_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6), failed):
            log.append(r)
        rep = summarize(log.records(), [small, big])
    assert (rep.totals.requests, rep.totals.failed) == (3, 1)
    assert (rep.by_model["small"].failed, rep.by_model["big"].failed) == (1, 0)
    vs = rep.versus_largest
    assert vs is not None and "without energy" not in vs["method"]
    assert vs["method"].endswith("; 1 request that failed (no answer, their loads) left out")


def test_versus_largest_uses_the_largest_models_measured_rate() -> None:
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))
    recs = [_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6)]
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and vs["largest_model"] == "big"
    # big generates at 4e-6 / 20 = 2e-7 kg per token -> small's 10 tokens ~ 2e-6 kg
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * 2e-7)
    assert "measured rate of big" in vs["method"]
    # the ladder's top, as everywhere: tier first, then size (a 7B heavy over a 13B medium)
    medium = ModelConfig.model_validate(tiny_model("medium13", "medium", 13.0))
    big7 = ModelConfig.model_validate(tiny_model("big", "heavy", 7.0))
    assert summarize(recs, [small, medium, big7]).versus_largest["largest_model"] == "big"  # type: ignore[index]


def test_versus_largest_does_not_call_a_remote_largest_models_rate_measured() -> None:
    """A remote (``openai_http``) largest model's generations are logged from its
    per-token figures: the comparison said "measured rate of big in this log" of them."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))

    def remote(i: int, tokens: int, co2: float) -> RequestRecord:
        r = _record(i, "big", tokens, co2)
        llm = dataclasses.replace(r.components["llm_inference"], method="estimate:per-token")
        return dataclasses.replace(r, components={**r.components, "llm_inference": llm})

    recs = [_record(0, "small", 10, 1e-6), remote(1, 20, 4e-6)]
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and "measured" not in vs["method"]
    # every one of its generations logged from its figures: those, not a rate read back
    assert vs["method"] == "estimate: per-token figures of big in the config, which its 1 request in this log was logged from"  # fmt: skip
    figure = per_token_estimate("llm_inference", big, 1, 0.0, "USA").co2_kg
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * figure)
    # one of two measured, one escalated from a local model to the remote one
    mixed = dataclasses.replace(remote(2, 20, 4e-6), components={**recs[1].components, "llm_inference": Measurement("llm_inference", 0.5, 2e-6, 4e-6, "test+estimate:per-token")})  # fmt: skip
    vs = summarize([_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6), mixed], [small, big]).versus_largest  # fmt: skip
    assert vs is not None and "(2 requests, 1 estimated from per-token figures)" in vs["method"]


def test_versus_largest_leaves_out_a_remote_model_without_per_token_figures() -> None:
    """A remote model without energy_per_token_kwh or co2_per_token_kg logs its answers
    at 0 kWh (estimate:per-token): priced at the largest model's rate they made routing
    to it look like a saving ("2.0000 g instead of ~4.0000 g (50% less CO2)")."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))

    def unpriced(i: int) -> RequestRecord:
        r = _record(i, "remote", 10)
        llm = Measurement("llm_inference", 0.5, 0.0, 0.0, "estimate:per-token")
        return dataclasses.replace(r, components={**r.components, "llm_inference": llm})

    recs = [_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6), unpriced(2), unpriced(3)]
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and "; 2 requests logged without energy left out" in vs["method"]
    # big's rate 2e-7 kg a token; small's 10 tokens ~ 2e-6 kg; the remote ones on neither side
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * 2e-7)
    assert vs["actual_co2_kg"] == pytest.approx(1e-6 * 1.01 + 4e-6 * 1.01)


def test_versus_largest_leaves_out_an_escalation_to_a_remote_model_without_figures(
    tmp_path: Path,
) -> None:
    """An escalation from a local model to a remote one without per-token figures logs
    its generation as "codecarbon:load-estimate+estimate:per-token": the remote model's
    own 0 kWh was counted as measured (its answers left out only when not escalated),
    and priced the remote model's answers at the largest model's rate."""
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))

    def remote(i: int, escalated: bool) -> RequestRecord:
        r = _record(i, "remote", 10)
        if not escalated:
            llm = Measurement("llm_inference", 0.5, 0.0, 0.0, "estimate:per-token")
            return dataclasses.replace(r, components={**r.components, "llm_inference": llm})
        # tiny-light's answer (2e-6 kWh, measured) failed; the remote one's is not known
        first = Measurement("llm_inference", 0.3, 2e-6, 1e-6, "codecarbon:load-estimate")
        llm = Measurement("llm_inference", 0.8, 2e-6, 1e-6, "codecarbon:load-estimate+estimate:per-token")  # fmt: skip
        return dataclasses.replace(r, components={**r.components, "llm_inference": llm}, escalated={"llm_inference": first})  # fmt: skip

    recs = [_record(0, "tiny-light", 10, 1e-6), _record(1, "tiny-heavy", 20, 4e-6)]
    recs += [remote(2, escalated=False), remote(3, escalated=True)]
    with RequestLog(config.log.path) as log:
        for r in recs:
            log.append(r)
    vs = logged_report(config).versus_largest
    assert vs is not None and "; 2 requests logged without energy left out" in vs["method"]
    # tiny-heavy's rate 2e-7 kg a token; tiny-light's 10 tokens; the remote ones on neither side
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * 2e-7)
    assert vs["actual_co2_kg"] == pytest.approx(1e-6 * 1.01 + 4e-6 * 1.01)


def test_versus_largest_leaves_answers_from_the_cache_as_they_are() -> None:
    """A cached answer spent its routing only: it does not dilute the largest model's
    rate, and is not priced as if the largest model had generated it."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))
    unspent = {c: Measurement(c, 0.0, 0.0, 0.0, CACHED) for c in ("model_loading", "llm_inference")}  # fmt: skip

    def cached(i: int, model: str, tokens: int) -> RequestRecord:
        r = _record(i, model, tokens, 1e-6)
        return dataclasses.replace(r, components={"router_inference": r.components["router_inference"], **unspent})  # fmt: skip

    recs = [_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6)]
    recs += [cached(2 + i, "big", 20) for i in range(9)] + [cached(11 + i, "small", 10) for i in range(9)]  # fmt: skip
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and "measured rate of big in this log (1 request)" in vs["method"]
    # big's rate is its one generation's, 2e-7 kg a token; each cached answer, either
    # model's, would have been answered from the cache on big too: its routing only
    routing = sum(r.components["router_inference"].co2_kg for r in recs[2:])
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * 2e-7 + routing)
    assert vs["actual_co2_kg"] == pytest.approx(1e-6 * 1.01 + 4e-6 * 1.01 + routing)


def test_versus_largest_learns_no_rate_from_an_answer_of_the_largest_cancelled_half_way() -> None:
    """An answer of the largest model stopped because its client left (finish reason
    "cancelled"): its 2 tokens carried its whole prompt's energy into the largest
    model's rate (7e-6 kg / 22 tokens instead of 2e-7), pricing every other request
    higher; it counts as it is, as the report's other rates per token leave it out."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))
    stopped = dataclasses.replace(_record(2, "big", 2, 3e-6), finish_reason="cancelled")
    recs = [_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6), stopped]
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and "measured rate of big in this log (1 request)" in vs["method"]
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 3e-6 * 1.01 + 10 * 2e-7)
    assert vs["actual_co2_kg"] == pytest.approx((1e-6 + 4e-6 + 3e-6) * 1.01)


def test_versus_largest_leaves_out_requests_logged_without_energy() -> None:
    """A request logged with carbon tracking off spent 0 g as logged: priced at the
    largest model's rate it made routing look like it saved everything ("0.0000 g
    instead of ~0.0001 g (100% less CO2)" with carbon.enabled: false); it is left out
    of both sides, and of the largest model's rate."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))

    def unmeasured(i: int, model: str, tokens: int) -> RequestRecord:
        r = _record(i, model, tokens)
        return dataclasses.replace(r, components={c: Measurement(c, 0.5, 0.0, 0.0, "none") for c in r.components})  # fmt: skip

    # carbon off throughout: nothing measured, nothing to compare
    assert summarize([unmeasured(0, "small", 10)], [small, big]).versus_largest is None
    recs = [_record(0, "small", 10, 1e-6), _record(1, "big", 20, 4e-6)]
    recs += [unmeasured(2, "small", 10), unmeasured(3, "big", 20)]
    vs = summarize(recs, [small, big]).versus_largest
    assert vs is not None and "(1 request); 2 requests logged without energy left out" in vs["method"]  # fmt: skip
    assert vs["estimated_co2_kg"] == pytest.approx(4e-6 * 1.01 + 10 * 2e-7)
    assert vs["actual_co2_kg"] == pytest.approx(1e-6 * 1.01 + 4e-6 * 1.01)


@pytest.mark.parametrize(
    "schema",
    ["CREATE TABLE results (task TEXT, passed INTEGER)", "CREATE TABLE requests (a, b)"],
    ids=["other-tables", "requests-of-another-shape"],
)
def test_another_sqlite_file_is_refused_untouched(tmp_path: Path, schema: str) -> None:
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(schema)
    conn.close()
    before = db.read_bytes()
    for read_only in (False, True):
        with pytest.raises(RouterLLMError, match="results.sqlite is not a RouterLLM request log"):
            RequestLog(db, read_only=read_only)
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [db.name]


def test_a_log_opened_read_only_reads_and_writes_nothing(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite") as log:
        log.append(_record(1))
    before = (tmp_path / "log.sqlite").read_bytes()
    with RequestLog(tmp_path / "log.sqlite", read_only=True) as log:
        assert [r.id for r in log.records()] == ["r1"]
        with pytest.raises(RouterLLMError, match="could not be logged.*readonly"):
            log.append(_record(2))
    assert (tmp_path / "log.sqlite").read_bytes() == before


def test_a_log_in_a_folder_sqlite_cannot_write_is_read_with_its_wal_rows(tmp_path: Path) -> None:
    """A log copied with its -wal but not its -shm into a folder the reader cannot
    write opens only immutable, which skipped the -wal's rows: the report left them
    out without a word. The -wal's rows are read too now."""
    with RequestLog(tmp_path / "log.sqlite") as log:
        log.append(_record(1))
        log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log._db.execute("PRAGMA wal_autocheckpoint=0")
        for i in range(2, 6):
            log.append(_record(i))
        copied = tmp_path / "copied"
        copied.mkdir()
        for name in ("log.sqlite", "log.sqlite-wal"):  # while the writer has them open
            shutil.copyfile(tmp_path / name, copied / name)
    db = copied / "log.sqlite"
    immutable = sqlite3.connect(f"{db.as_uri()}?immutable=1", uri=True)
    assert immutable.execute("SELECT COUNT(*) FROM requests").fetchone() == (1,)
    immutable.close()
    conn = in_unwritable_folder(db)
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone() == (5,)
    conn.close()
    assert sorted(p.name for p in copied.iterdir()) == ["log.sqlite", "log.sqlite-wal"]


def test_a_folder_as_the_request_log_says_so(tmp_path: Path) -> None:
    """``log.path: logs`` (a folder): routing said SQLite's 'unable to open database
    file', and the report said there was no log yet and to route some requests first."""
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    data = tiny_config_dict(tmp_path)
    data["log"] = {"path": str(tmp_path)}
    config = load_config(write_config(tmp_path, data))
    folder = f"request log {tmp_path} (log.path) is a folder: give a file, e.g. {tmp_path / 'requests.sqlite'}"  # fmt: skip
    for read_only in (False, True):
        with pytest.raises(RouterLLMError, match=re.escape(folder)):
            RequestLog(tmp_path, read_only=read_only)
    with pytest.raises(RouterLLMError, match=re.escape(folder)):
        logged_report(config)


def test_a_request_log_or_emissions_csv_under_a_file_says_so(tmp_path: Path) -> None:
    """log.path or carbon.output_dir under a file (or a broken link): the error line was
    Python's "[Errno 17] File exists" or "[Errno 20] Not a directory"; the file is kept."""
    (tmp_path / "notes").write_text("mine")
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    for above, what in (
        ("notes", "a file"),
        ("gone", f"a broken link (to {tmp_path / 'missing'})"),
    ):
        db = tmp_path / above / "logs" / "requests.sqlite"
        said = f"request log {db} (log.path) cannot be created: {tmp_path / above} is {what}, not a folder"  # fmt: skip
        with pytest.raises(RequestLogError, match=re.escape(said)) as e:
            RequestLog(db, tmp_path / "carbon" / "emissions.csv")
        assert "Errno" not in str(e.value)
        csv = tmp_path / above / "carbon" / "emissions.csv"
        said = f"the emissions CSV's folder {csv.parent} (carbon.output_dir) cannot be created: {tmp_path / above} is {what}, not a folder"  # fmt: skip
        with pytest.raises(RequestLogError, match=re.escape(said)) as e:
            RequestLog(tmp_path / "requests.sqlite", csv)
        assert "Errno" not in str(e.value)
    assert (tmp_path / "notes").read_text() == "mine" and not (tmp_path / "missing").exists()


def test_a_failed_write_is_a_clear_error_that_keeps_the_log(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite", tmp_path / "carbon" / "emissions.csv") as log:
        log.append(_record(1))
        with pytest.raises(RouterLLMError, match="answer was produced but could not be logged"):
            log.append(_record(1))  # a real SQLite error: the id is taken
        shutil.rmtree(tmp_path / "carbon")
        (tmp_path / "carbon").write_text("now a file")
        with pytest.raises(RouterLLMError, match="logged to .*but could not be added to"):
            log.append(_record(2))
        assert [r.id for r in log.records()] == ["r1", "r2"]
        huge = _record(3)
        huge = huge.__class__(**{**huge.__dict__, "prompt_tokens": 2**70})  # beyond SQLite's ints
        with pytest.raises(RouterLLMError, match="answer was produced but could not be logged"):
            log.append(huge)
        assert [r.id for r in log.records()] == ["r1", "r2"]


def test_an_emissions_csv_that_is_not_ours_is_refused_before_any_request(tmp_path: Path) -> None:
    """Checked when the log is opened, so no answer is paid for and then lost."""
    theirs = tmp_path / "carbon" / "emissions.csv"
    theirs.parent.mkdir()
    theirs.write_text("name,age\nbob,3\n")
    with pytest.raises(RouterLLMError, match="is not a RouterLLM emissions CSV .*name,age"):
        RequestLog(tmp_path / "log.sqlite", theirs)
    assert theirs.read_text() == "name,age\nbob,3\n"
    theirs.unlink()
    theirs.mkdir()
    with pytest.raises(RouterLLMError, match="emissions.csv .carbon.output_dir. is a directory"):
        RequestLog(tmp_path / "log.sqlite", theirs)
    theirs.rmdir()
    theirs.write_text("")  # empty, or ours: appended to
    with RequestLog(tmp_path / "log.sqlite", theirs) as log:
        log.append(_record(1))
    with RequestLog(tmp_path / "log.sqlite", theirs) as log:
        log.append(_record(2))
    assert len(list(csv.reader(theirs.open()))) == 1 + 2 * 3


def test_an_emissions_csv_saved_without_its_last_line_end_gets_whole_rows(
    tmp_path: Path,
) -> None:
    """An editor may save the CSV without the end of its last line: the next rows must not
    be glued onto it (nor onto the header, which would refuse every later start)."""
    path = tmp_path / "emissions.csv"
    path.write_text(",".join(CSV_COLUMNS))  # the rows deleted, the header kept
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
    path.write_text(path.read_text().rstrip("\r\n"))  # the last row saved without its end
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(2))
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == CSV_COLUMNS
    assert [(len(r), r[5]) for r in rows[1:]] == [(9, "r1")] * 3 + [(9, "r2")] * 3


def test_an_emissions_csv_an_editor_saved_with_a_byte_order_mark_is_appended_to(
    tmp_path: Path,
) -> None:
    """Excel's "CSV UTF-8" (and Windows Notepad) save the CSV with a UTF-8 byte order mark:
    its header, identical to the eye, was refused as "not a RouterLLM emissions CSV" at
    every later start. A file holding only the mark gets the header, not rows alone."""
    path = tmp_path / "emissions.csv"
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(2))
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    assert rows[0] == CSV_COLUMNS
    assert [(len(r), r[5]) for r in rows[1:]] == [(9, "r1")] * 3 + [(9, "r2")] * 3
    path.write_bytes(b"\xef\xbb\xbf")  # emptied in the editor, saved with the mark
    with RequestLog(tmp_path / "log2.sqlite", path) as log:
        log.append(_record(3))
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    assert rows[0] == CSV_COLUMNS
    assert [(len(r), r[5]) for r in rows[1:]] == [(9, "r3")] * 3


@pytest.mark.parametrize("field", ["router", "model", "tag", "component method"])
def test_a_record_whose_text_is_not_utf8_is_a_clear_error_that_logs_nothing(
    tmp_path: Path, field: str
) -> None:
    """A lone surrogate (JSON's "\\ud800", a file name's undecodable byte) in a record's
    text: SQLite's bare UnicodeEncodeError reached the caller. A clear error now, naming
    the field, and neither the log nor the CSV holds part of the request."""
    record = _record(2)
    if field == "component method":
        m = record.components["llm_inference"]
        bad = dataclasses.replace(
            record, components={**record.components, "llm_inference": dataclasses.replace(m, method="x\ud800")}
        )  # fmt: skip
        name = "llm_inference method"
    else:
        bad, name = dataclasses.replace(record, **{field: "x\ud800"}), field
    path = tmp_path / "emissions.csv"
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
        with pytest.raises(RequestLogError, match=f"request r2's {name} .* not valid UTF-8") as e:
            log.append(bad)
        assert "\n" not in str(e.value)
        log.append(_record(3))
        assert [r.id for r in log.records()] == ["r1", "r3"]
    assert [r[5] for r in csv.reader(path.open(newline=""))][1:] == ["r1"] * 3 + ["r3"] * 3


def test_a_load_error_that_is_not_utf8_is_logged_with_its_odd_characters_escaped(
    tmp_path: Path,
) -> None:
    """A failed load's error quotes the model's file, whose name may hold a byte that is
    not UTF-8 (os.fsdecode's surrogate): the request, and its loads' energy, are logged."""
    record = dataclasses.replace(_record(1), finish_reason="error", load_error="bad file /m/\udcff.gguf")  # fmt: skip
    with RequestLog(tmp_path / "log.sqlite", tmp_path / "e.csv") as log:
        log.append(record)
        (got,) = log.records()
    assert got.load_error == "bad file /m/\\udcff.gguf"


@pytest.mark.parametrize("path", [":memory:", ""])
def test_a_log_path_that_is_not_a_file_is_refused(path: str) -> None:
    with pytest.raises(RouterLLMError, match="must be a file path"):
        RequestLog(path)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE requests SET prompt_tokens = 'abc'", "request r1's prompt_tokens is 'abc'"),
        ("UPDATE requests SET cost_usd = 'x'", "request r1's cost_usd is 'x'"),
        (
            "UPDATE components SET co2_kg = 'x' WHERE component = 'llm_inference'",
            "request r1's llm_inference co2_kg is 'x'",
        ),
    ],
)
def test_a_logged_number_changed_into_text_is_a_clear_error(
    tmp_path: Path,
    tiny_config_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: str,
    named: str,
) -> None:
    """`routerllm report` failed with a TypeError adding it up; the log is left as it is."""
    from routerllm.cli import main

    path = tmp_path / "requests.sqlite"  # the tiny config's log.path
    with RequestLog(path) as log:
        log.append(_record(1))
    with sqlite3.connect(path) as db:
        db.execute(edit)
    db.close()
    before = path.read_bytes()
    with RequestLog(path, read_only=True) as log, pytest.raises(RouterLLMError, match=named):
        list(log.records())
    assert main(["report", "--config", str(tiny_config_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: request log") and named in err and "fix or delete it" in err
    assert "\n" not in err and path.read_bytes() == before


def test_a_figure_too_small_for_its_decimals_is_not_printed_as_zero() -> None:
    """A cached answer's CO2 (about 2e-06 g) printed as "0.0000 g" beside its energy."""
    from routerllm.carbon.report_text import fixed
    from routerllm.carbon.units import co2, energy

    assert co2(2e-9) == "2 \N{MICRO SIGN}g" and co2(0.0) == "0 g" and co2(1.2345e-3) == "1.23 g"
    assert energy(8.6e-7) == "860 \N{MICRO SIGN}Wh" and energy(0.0) == "0 Wh"
    assert energy(9.996e-4) == "1 Wh" and energy(1234.5) == "1,230 kWh"
    assert fixed(4e-6, 5) == "4.00e-06" and fixed(0.00001, 5) == "0.00001"


def test_a_cascades_first_answers_do_not_count_in_the_answering_models_rate(
    tmp_path: Path,
) -> None:
    """An escalated request is logged as the answering model's, its components summing
    every model's work: the largest model's rate per token (the report's always-largest
    estimate, the predictor) counted the first models' generations as its own, and the
    estimate charged them to the largest model alone."""
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))

    def escalated(i: int) -> RequestRecord:
        # three times big's own generation; the first two thirds were tiny-light's
        r = _record(i, "tiny-heavy", 20, 1.2e-5)
        llm = dataclasses.replace(r.components["llm_inference"], energy_kwh=6e-6)
        earlier = Measurement("llm_inference", 0.3, 4e-6, 8e-6, "test")
        return dataclasses.replace(r, components={**r.components, "llm_inference": llm}, escalated={"llm_inference": earlier})  # fmt: skip

    recs = [_record(0, "tiny-light", 10, 1e-6), _record(1, "tiny-heavy", 20, 4e-6), escalated(2)]
    recs.append(_record(3, "tiny-heavy", 20, 4e-6))
    with RequestLog(config.log.path) as log:
        for r in recs:
            log.append(r)
        assert list(log.records())[2].escalated == recs[2].escalated  # a round trip
    rep = logged_report(config)
    vs = rep.versus_largest
    assert vs is not None and "measured rate of tiny-heavy in this log (3 requests)" in vs["method"]
    # tiny-heavy's own: 4e-6 kg per 20 tokens (2e-7 a token) in each of its three answers
    heavy = [4e-6 * 1.01, 1.2e-5 * 1.01 - 8e-6, 4e-6 * 1.01]  # the second without its first answers
    assert vs["estimated_co2_kg"] == pytest.approx(10 * 2e-7 + sum(heavy))
    assert vs["actual_co2_kg"] == pytest.approx(rep.totals.co2_kg)  # every model's work counts
    assert rep.by_model["tiny-heavy"].co2_kg == pytest.approx(2e-5 * 1.01)
    # the predictor learns 2e-6 kWh per 20 output tokens from each, not 6e-6 from the second
    assert rep.predictor["tiny-heavy"]["kwh_per_output_token"] == pytest.approx(1e-7)  # type: ignore[index]
    # a number changed by another program is a clear error, as in the components
    with sqlite3.connect(config.log.path) as db:
        db.execute("UPDATE escalations SET energy_kwh = 'x'")
    db.close()
    with pytest.raises(RouterLLMError, match="request r2's llm_inference energy_kwh is 'x'"):
        logged_report(config)
    # a log older than the escalations table is read as it is: every answer its model's own
    with sqlite3.connect(config.log.path) as db:
        db.execute("DROP TABLE escalations")
    db.close()
    vs = logged_report(config).versus_largest
    assert vs is not None and vs["estimated_co2_kg"] == pytest.approx(10 * 2e-5 / 60 + 2e-5 * 1.01)


@pytest.mark.parametrize(
    ("argv", "error"),
    [(["--humaneval", "-2"], "argument --humaneval: -2 is out of range: give a whole number >= 0"),
     (["--humaneval-start", "-1"], "argument --humaneval-start: -1 is out of range: give a whole number >= 0"),
     # past HumanEval's end: every model ran with no stub at all
     (["--humaneval-start", "500"], "--humaneval-start: at most 163 (HumanEval has 164 problems), got 500"),
     (["--humaneval-start", "164", "--humaneval", "1"], "--humaneval-start: at most 163 (HumanEval has 164 problems), got 164")],
)  # fmt: skip
def test_the_carbon_predictor_benchmark_refuses_a_humaneval_slice_outside_the_problems(
    argv: list[str], error: str, tmp_path: Path
) -> None:
    """--humaneval -2 took every HumanEval stub but the last two, and --humaneval-start
    -1 the last stub only (negative slices), then ran every model on them; a start past
    the last problem gave no stub at all, silently."""
    out = benchmark_in_process("carbon_predictor", "--config", str(tmp_path / "none.yaml"), *argv)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith(f"error: {error}")


@pytest.mark.parametrize("name", ["carbon_predictor", "measure_local_models"])
def test_a_measuring_benchmark_says_in_one_line_when_no_model_can_run(
    name: str, tmp_path: Path
) -> None:
    """With every model's file missing carbon_predictor was a ModelUnavailableError
    traceback, and measure_local_models printed an empty table and exited 0. Each left
    its scratch log's folder in the temporary folder, a run after a run (until
    2026-12-05: 161 of them after some days of test runs)."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    for model in data["models"]:
        model["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = benchmark_in_process(name, "--config", str(write_config(tmp_path, data)),
                               "--max-new-tokens", "2", tmpdir=scratch)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-500:]
    assert list(scratch.iterdir()) == []
    missing = f"file not found: {tmp_path / 'missing.gguf'}"
    assert out.stderr.strip() == (
        f"error: no configured model can run here (tiny-light: {missing}; tiny-medium: "
        f"{missing}; tiny-heavy: {missing})"
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [(["--config", "nope.yaml"], "error: config file not found: nope.yaml"),
     (["--config", "local", "--model", "nope"], "error: unknown model 'nope'")],
)  # fmt: skip
def test_the_busy_routing_benchmark_refuses_a_config_or_model_it_cannot_run_before_it_trains(
    argv: list[str], error: str
) -> None:
    """A missing config or an unknown model was a traceback from the process meant to
    generate, after the router had trained, and the run went on (exit 0)."""
    out = benchmark_in_process("busy_routing", *argv, "--n", "5", "--repeats", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-500:]
    assert out.stderr.strip().startswith(error), out.stderr


def test_requests_codecarbon_failed_to_measure_are_reported_not_measured_not_0_kwh() -> None:
    """A request whose every part CodeCarbon failed to measure (``codecarbon:failed``,
    0 kWh as logged) was reported as measured at 0 kWh: its model's row read 0 g, not
    "not measured", and the methods line did not name the failure."""
    small = ModelConfig.model_validate(tiny_model("small", "light", 0.1))
    big = ModelConfig.model_validate(tiny_model("big", "heavy", 1.5))
    failed = {
        n: Measurement(n, 0.5, 0.0, 0.0, "codecarbon:failed")
        for n in ("router_inference", "model_loading", "llm_inference")
    }
    bad = dataclasses.replace(_record(1, "big", 10), components=failed)
    rep = summarize([_record(0, "small", 10, 1e-6), bad], [small, big])
    assert not rep.measured("model", "big") and rep.measured("model", "small")
    assert rep.measured()  # the totals count the measured request's energy
    assert rep.as_dict()["by_model"]["big"]["energy_kwh"] is None
    assert "codecarbon:failed" in rep.methods
    alone = summarize([bad], [small, big])
    assert not alone.measured() and alone.as_dict()["totals"]["co2_kg"] is None
    # its totals line says why: not "carbon tracking off", which it was not
    from routerllm.carbon.report_text import totals_lines

    assert "energy and CO2 not measured (CodeCarbon failed)" in totals_lines(alone)[0]


def test_the_report_refuses_a_country_codecarbon_does_not_know(tmp_path: Path) -> None:
    """``routerllm report`` with ``carbon.country_iso_code: XYZ`` priced the largest
    model's per-token figures at the world average's grid, silently, where ``summarize``
    and building a system refuse that country."""
    from routerllm.carbon.report import logged_report
    from routerllm.config import load_config

    data = tiny_config_dict(tmp_path, carbon={"country_iso_code": "XYZ"})
    config = load_config(write_config(tmp_path, data))
    with RequestLog(config.log.path) as log:
        log.append(_record(0, "tiny-light"))
    with pytest.raises(ConfigError, match="country_iso_code 'XYZ' is not a country"):
        logged_report(config)


@pytest.mark.parametrize("damage", ["truncated", "garbage in the middle"])
def test_a_damaged_log_says_how_to_recover_it_and_is_left_as_it_is(
    tmp_path: Path, damage: str
) -> None:
    """SQLite's bare "database disk image is malformed" said nothing of what to do: the
    error names the damage and what to do, and the file is not touched."""
    db = tmp_path / "log.sqlite"
    with RequestLog(db) as log:
        for i in range(400):
            log.append(dataclasses.replace(_record(i % 60), id=f"r{i}"))
    size = db.stat().st_size
    with db.open("r+b") as f:
        if damage == "truncated":
            f.truncate(size // 2)
        else:
            f.seek(size // 2)
            f.write(b"\xff" * 8192)
    before = db.read_bytes()
    with pytest.raises(RequestLogError) as caught, RequestLog(db, read_only=True) as log:
        list(log.records())
    message = str(caught.value)
    assert f"request log {db} (log.path) is damaged" in message and "move it aside" in message
    assert "\n" not in message
    assert db.read_bytes() == before


def _own_locks(path: Path) -> list[str]:
    """This process's POSIX locks on ``path``, as /proc/locks lists them."""
    ino, me = path.stat().st_ino, str(os.getpid())
    return [
        line
        for line in Path("/proc/locks").read_text(encoding="utf-8").splitlines()
        if (f := line.split())[1] == "POSIX" and f[4] == me and f[5].endswith(f":{ino}")
    ]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux's /proc/locks")
def test_naming_a_logs_holder_keeps_this_processs_own_sqlite_locks(tmp_path: Path) -> None:
    """Asking who holds the log opened and closed its -shm file, and closing any file
    descriptor drops every POSIX lock the process holds on that file: the SQLite
    connections of this process lost theirs (their shared-memory index unguarded,
    until 2026-12-05). The holder is read from /proc/locks instead."""
    from routerllm import sqlite_busy

    db = tmp_path / "log.sqlite"
    with RequestLog(db, tmp_path / "e.csv") as log:
        log.append(_record(1))
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM requests").fetchall()  # a read lock held
        shm = tmp_path / "log.sqlite-shm"
        held = _own_locks(shm)
        assert held
        assert sqlite_busy.holder(db) == "another process"  # this process's are not others'
        assert _own_locks(shm) == held
        reader.execute("COMMIT")
        reader.close()


def test_the_carbon_predictor_benchmark_counts_a_request_its_budget_refuses(
    tmp_path: Path,
) -> None:
    """Part 2's budget lies between the two largest models' predictions for warm models;
    its fresh RouterLLM predicts the smallest with its loading, which can be over it (the
    tiny models' loading is most of their energy): a BudgetExceededError traceback that
    lost part 1's measurements. A refusal is the budget holding: counted, not a crash."""
    import json

    data = tiny_config_dict(tmp_path)
    # part 1 on the one HumanEval stub alone: part 2, whose refusals this is about, needs
    # the three models run once (its budget is what they are predicted to emit); the demo
    # and question sets made 13 prompts, 39 answers a run, for the same 6 refusals
    argv = ["--config", str(write_config(tmp_path, data)), "--humaneval", "1", "--prompts", "humaneval", "--max-new-tokens", "4"]  # fmt: skip
    out = benchmark_in_process("carbon_predictor", *argv, "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
    figures = json.loads(out.stdout)
    budget = figures["budget"]
    assert budget["requests"] == 6
    assert budget["refused"] + sum(budget["went_to"].values()) == 6
    assert set(figures["prediction"]) == {"tiny-light", "tiny-medium", "tiny-heavy"}
    text = benchmark_in_process("carbon_predictor", *argv)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr[-800:]
    assert re.search(r"\d+ of 6 over the budget, \d+ refused", text.stdout), text.stdout[-800:]


def test_the_carbon_predictor_benchmark_runs_the_models_and_prompt_sets_asked(
    tmp_path: Path,
) -> None:
    """It ran the 6 demo prompts and 6 questions on every model (39 requests with
    ``--humaneval 1``): a smoke run took minutes. --models and --prompts choose."""
    import json

    data = tiny_config_dict(tmp_path)
    out = benchmark_in_process("carbon_predictor", "--config", str(write_config(tmp_path, data)),
                               "--models", "tiny-light", "tiny-medium", "--prompts", "questions",
                               "--max-new-tokens", "2", "--json")  # fmt: skip
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
    figures = json.loads(out.stdout)
    assert figures["prompts"] == 6 and figures["models"] == ["tiny-light", "tiny-medium"]
    assert set(figures["prediction"]) == {"tiny-light", "tiny-medium"}
    runs = sum(p["n"] for m in figures["prediction"].values() for p in m.values())
    assert runs == 12
    budget = figures["budget"]
    assert set(budget["router_chose"]) | set(budget["went_to"]) <= {"tiny-light", "tiny-medium"}


@pytest.mark.parametrize(
    ("argv", "error"),
    [(["--models", "tiny-light", "nope"],
      "--models: unknown model 'nope'; valid names: tiny-heavy, tiny-light, tiny-medium"),
     (["--models", "tiny-light", "tiny-light"], "--models names tiny-light more than once"),
     (["--prompts", "humaneval", "--humaneval", "0"],
      "--prompts humaneval with --humaneval 0: no prompt to run"),
     # a set named twice ran twice; with --humaneval 0 it had no prompt, unchecked
     (["--prompts", "humaneval", "humaneval", "--humaneval", "0"],
      "--prompts names humaneval more than once")],
)  # fmt: skip
def test_the_carbon_predictor_benchmark_refuses_models_or_prompts_it_cannot_run(
    argv: list[str], error: str, tmp_path: Path
) -> None:
    """Refused in one line before any model loads, not after the models before it ran."""
    data = tiny_config_dict(tmp_path)
    for model in data["models"]:  # a model that loaded would fail: nothing may load
        model["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    out = benchmark_in_process("carbon_predictor", "--config", str(write_config(tmp_path, data)), *argv)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-800:]
    assert out.stderr.strip().splitlines()[-1].endswith(f"error: {error}")


@pytest.mark.parametrize(
    ("name", "argv"),
    [("server_overhead", ["--model", "tiny-light", "--n", "2", "--max-tokens", "2"]),
     ("carbon_predictor", ["--humaneval", "0", "--max-new-tokens", "2"])],
)  # fmt: skip
def test_a_timing_benchmark_says_the_machine_it_ran_on(
    name: str, argv: list[str], tmp_path: Path
) -> None:
    """Their figures hold for one machine (the README quotes "2 cores" beside them), but
    none said which: prompt_state_cost printed "2 cores" whatever it ran on.
    budget_overhead, report_scaling and measure_local_models are run, text and JSON, by
    ``test_benchmark_conditions.py`` with these same checks (they were run here too)."""
    import json

    cpus = len(os.sched_getaffinity(0))
    argv = [*argv, "--config", str(write_config(tmp_path, tiny_config_dict(tmp_path)))]
    out = benchmark_in_process(name, *argv)
    assert out.returncode == 0, out.stderr[-800:]
    assert f", {cpus} of {os.cpu_count()} CPU cores usable, Python " in out.stdout.splitlines()[0]
    assert out.stdout.startswith("machine: ")
    out = benchmark_in_process(name, *argv, "--json")
    assert out.returncode == 0, out.stderr[-800:]
    machine = json.loads(out.stdout)["machine"]
    assert machine["cpus_usable"] == cpus and machine["cpus"] == os.cpu_count()


@pytest.mark.parametrize(
    "garbage",
    ['"half a row cut by another writer', '2026-01-01,llm_inference,"0.5\r\nr1', 'a,"b"\r\n'],
    ids=["open-quote", "open-quote-over-lines", "closed-quote"],
)
def test_rows_appended_after_garbage_in_the_emissions_csv_stay_readable(
    tmp_path: Path, garbage: str
) -> None:
    """Another writer left the CSV ending inside a quoted field (a row cut mid-way, garbage
    appended) after the log was opened, or before: every later row was read as part of
    that field, buried for csv and pandas alike. The garbage is kept, as one row of its
    own, and the rows after it are whole."""
    path = tmp_path / "emissions.csv"
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
        with path.open("a", newline="") as other:
            other.write(garbage)
        log.append(_record(2))
    with path.open("a", newline="") as other:  # damaged before the next start
        other.write(garbage)
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(3))
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == CSV_COLUMNS
    ours = [r[5] for r in rows[1:] if len(r) == len(CSV_COLUMNS) and r[5].startswith("r")]
    assert ours == ["r1"] * 3 + ["r2"] * 3 + ["r3"] * 3
    assert len(rows) == 1 + 9 + 2  # the garbage kept, a row each time
    assert path.open(newline="").read().count(garbage) == 2


@pytest.mark.parametrize("long_field", [False, True], ids=["short", "over-csv-field-limit"])
def test_a_literal_quote_in_an_unquoted_field_opens_no_quote_in_the_emissions_csv(
    tmp_path: Path, long_field: bool
) -> None:
    """A quote inside an unquoted field is a character of it for csv and pandas, not
    one that opens a field: a file whose last row holds one ends between rows, and no
    quote is written to close it (where csv's reader refused the text, a field over its
    size limit, the check counted the quotes: one, odd, and the quote it wrote opened a
    field that buried every row after it)."""
    path = tmp_path / "emissions.csv"
    garbage = ("x" * 200_000 if long_field else "x") + ',ab"c\r\n'
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
        with path.open("a", newline="") as other:
            other.write(garbage)
        log.append(_record(2))
    after = path.open(newline="").read().split(garbage, 1)[1]
    assert [r[5] for r in csv.reader(io.StringIO(after, newline=""))] == ["r2"] * 3


def test_summarize_says_which_totals_were_not_measured_as_the_report_does() -> None:
    """``summarize`` of requests logged with carbon tracking off gave ``totals.energy_kwh``
    0.0, read as a measured 0 kWh, while ``routerllm report --json`` says null: each row
    says whether its energy and CO2 were measured, and its cost known (``as_dict``'s
    null)."""
    on = _record(0, "small", 10, 1e-6)
    off = dataclasses.replace(
        _record(1, "big", 10), components={c: Measurement(c, 0.5, 0.0, 0.0, "none") for c in on.components}
    )  # fmt: skip
    rep = summarize([on, off])
    assert (rep.totals.measured, rep.by_model["small"].measured, rep.by_model["big"].measured) == (True, True, False)  # fmt: skip
    assert (rep.by_model["small"].cost_known, rep.by_model["big"].cost_known) == (True, False)
    assert rep.by_component["llm_inference"].measured
    alone = summarize([off])
    assert not alone.totals.measured and not alone.totals.cost_known
    assert not alone.by_component["llm_inference"].measured
    assert not alone.by_router["rules"].measured
    # the JSON form is unchanged: null where not measured, no flag of its own
    out = alone.as_dict()
    assert out["totals"]["energy_kwh"] is None and "measured" not in out["totals"]
    assert out["by_component"]["llm_inference"]["energy_kwh"] is None
    assert rep.as_dict()["by_model"]["small"]["energy_kwh"] == pytest.approx(2e-6 + 1e-9)


FULL_DISK = textwrap.dedent(
    f"""
    import dataclasses, os, resource, sys
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError
    from tests.test_carbon import _record
    db, csv_path = sys.argv[1:3]
    with RequestLog(db, csv_path) as log:
        # room for one row and a half: the disk fills while the CSV is written
        room = os.path.getsize(csv_path) + 150
        {disk_full_past("room")}
        try:
            log.append(_record(1))
        except RequestLogError as e:
            print(e.logged, e)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    """
)


def test_a_disk_that_fills_while_the_csv_is_written_leaves_no_row_cut_short(
    tmp_path: Path,
) -> None:
    """The disk full (a file-size limit, in a child) partway through a request's three
    CSV rows: the first was left whole, the second cut after its component's first
    letters, and the next open, finding the request's id in the CSV, added none of
    them: two rows lost for good, and a cut one that reads as garbage. What the failed
    write left is taken back, so the next open adds the request's rows, whole, once."""
    db, path = tmp_path / "log.sqlite", tmp_path / "emissions.csv"
    # larger than the log and its WAL will grow: the CSV is the file that hits the limit
    older = "2026-01-01T00:00:00.000000+00:00,llm_inference,0.5,1e-06,2e-06,old,m,rules,test\r\n"
    path.write_text(",".join(CSV_COLUMNS) + "\r\n" + older * 5000, newline="")
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(db), str(path)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True the answer was produced and logged to"), proc.stdout
    assert "File too large" in proc.stdout
    with RequestLog(db, path) as log:  # the next run, the disk freed: the CSV caught up
        assert [r.id for r in log.records()] == ["r1"]
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == CSV_COLUMNS and len(rows) == 1 + 5000 + 3
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    assert [(r[1], r[5]) for r in rows[-3:]] == [(c, "r1") for c in COMPONENTS]


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolon", "tab"])
def test_an_emissions_csv_a_spreadsheet_saved_with_another_separator_says_so(
    tmp_path: Path, separator: str
) -> None:
    """A spreadsheet set for a comma as the decimal mark saves the CSV with ";" between
    its columns (or tabs): it was refused as "not a RouterLLM emissions CSV", at every
    start, which it is. It is still refused untouched (comma rows appended to it would
    be read as one column), with what happened and what to do."""
    path = tmp_path / "emissions.csv"
    with RequestLog(tmp_path / "log.sqlite", path) as log:
        log.append(_record(1))
    saved = "\ufeff" + path.open(newline="").read().replace(",", separator)
    path.write_text(saved, newline="")
    with pytest.raises(RequestLogError) as e:
        RequestLog(tmp_path / "log.sqlite", path)
    said = f"{path} was saved with {separator!r} between its columns (a spreadsheet does"
    assert str(e.value).startswith(said), str(e.value)
    assert "save it again with ',' between them" in str(e.value) and "\n" not in str(e.value)
    assert path.open(newline="").read() == saved
