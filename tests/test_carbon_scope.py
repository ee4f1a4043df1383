"""carbon.tracking_mode: CodeCarbon measuring the whole machine (``machine``, the default)
or RouterLLM's process and its children (``process``), and the carbon method that says
which, as reports, recommendations and the predictor read it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from routerllm.carbon import recommend_energy
from routerllm.carbon.codecarbon_meter import CodeCarbonMeter
from routerllm.carbon.meter import create_meter
from routerllm.carbon.predictor import CarbonPredictor
from routerllm.carbon.request_log import RequestLog
from routerllm.config import CarbonConfig, load_config
from routerllm.eval.humaneval_markdown import _how
from routerllm.eval.sandbox import run_program
from routerllm.exceptions import ConfigError

from .conftest import tiny_config_dict, write_config
from .test_recommendations import config_in, logged, of_kind, rec

#: A sandboxed check that spends about 0.2 s of CPU time (2 cores, idle).
BUSY_CHECK = "s = 0\nfor i in range(3_000_000):\n    s += i\n"


def test_the_tracking_mode_is_the_machine_unless_set_and_a_typo_is_one_line(tmp_path: Path) -> None:  # fmt: skip
    assert CarbonConfig().tracking_mode == "machine"  # every figure in the README was taken so
    good = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"tracking_mode": "process"}))
    assert load_config(good).carbon.tracking_mode == "process"
    bad = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"tracking_mode": "proces"}), "bad.yaml")  # fmt: skip
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "carbon.tracking_mode: Input should be 'machine' or 'process'" in str(e.value)
    assert "\n" not in str(e.value)


def test_every_meter_tracks_in_the_configured_mode_and_its_method_says_so() -> None:
    """The one place trackers are made passes the mode on; a process-scoped figure says
    so (``:process``), a machine-scoped one reads as before, as old logs hold it."""
    from codecarbon.external.hardware import CPU
    from codecarbon.external.ram import RAM

    for mode in ("machine", "process"):
        meter = create_meter(CarbonConfig(country_iso_code="FRA", tracking_mode=mode))
        try:
            assert isinstance(meter, CodeCarbonMeter)
            tracker = meter._tracker
            assert tracker._tracking_mode == mode
            scoped = [h for h in tracker._hardware if isinstance(h, (CPU, RAM))]
            assert scoped and all(h._tracking_mode == mode for h in scoped)
            base, _, scope = meter.method.removeprefix("codecarbon:").partition(":")
            assert base in ("measured", "load-estimate", "tdp-estimate")
            assert scope == ("process" if mode == "process" else "")
        finally:
            meter.close()


def test_process_mode_counts_a_sandboxed_check_it_runs() -> None:
    """A cascade's check runs in the sandbox, a child process started and reaped inside
    the measured block. CodeCarbon's process mode sums the CPU time of the processes it
    sees alive at each reading (the block's start and end, and each second): a check
    that lived between two readings was not counted (1e-8 kWh of CPU for 0.2 s of its
    CPU time; the CPU's share is the TDP times the CPU time over the cores)."""
    meter = CodeCarbonMeter("FRA", tracking_mode="process")
    try:
        (cpu,) = [h for h in meter._tracker._hardware if type(h).__name__ == "CPU"]
        if cpu._mode != "cpu_load":
            pytest.skip("CodeCarbon reads this CPU's power: the process's CPU time is not used")
        before = os.times()
        with meter.measure("router_inference") as checked:
            assert run_program(BUSY_CHECK, timeout_s=60).passed
        after = os.times()
        child_s = after.children_user + after.children_system
        child_s -= before.children_user + before.children_system
        assert child_s > 0.05  # the check's CPU time, reaped by this process
        with meter.measure("router_inference") as idle:  # as long, spending nothing
            time.sleep(checked.result.duration_s)
        cpu_kwh = checked.result.energy_kwh - idle.result.energy_kwh * (
            checked.result.duration_s / idle.result.duration_s
        )
        expected = cpu._tdp * child_s / cpu._cpu_count / 3.6e6
        assert cpu_kwh > 0.5 * expected, (cpu_kwh, expected)
    finally:
        meter.close()


def test_the_reports_say_what_a_process_scoped_method_counts(tmp_path: Path) -> None:
    process = "codecarbon:load-estimate:process"
    said = _how(process)
    assert said.startswith(_how("codecarbon:load-estimate"))
    assert "RouterLLM's process and its children" in said
    assert "counters" in _how("codecarbon:measured:process")  # read whole, whatever the mode
    # estimated energy is said so whatever its scope
    records = [rec("tiny-light", i, f"q{i}", method=process) for i in range(2)]
    (r,) = of_kind(logged(config_in(tmp_path), records), "estimated_energy")
    assert r.evidence["method"] == process and r.evidence["share"] == 1.0
    assert recommend_energy.CODECARBON_ESTIMATES[process].startswith("from CPU load")


@pytest.mark.parametrize("mode", ["machine", "process"])
def test_the_predictor_learns_from_figures_of_the_meters_scope(tmp_path: Path, mode: str) -> None:  # fmt: skip
    """A log kept in one mode, then the other: each counts other things (the machine's
    idle power and other processes' work, or not), and the predictor fitted both as one
    model's rate, for its latest 200 requests. Figures estimated per token, or of a
    config with carbon tracking off, are learned from as before."""
    config = config_in(tmp_path, carbon={"tracking_mode": mode})
    machine = [rec("tiny-light", i, f"q{i}", llm_kwh=1e-4, method="codecarbon:load-estimate") for i in range(3)]  # fmt: skip
    process = [rec("tiny-light", 3 + i, f"p{i}", llm_kwh=1e-5, method="codecarbon:load-estimate:process") for i in range(3)]  # fmt: skip
    with RequestLog(config.log.path) as log:
        for r in machine + process:
            log.append(r)
        predicted = CarbonPredictor.from_log(config, log).predict("tiny-light", 2, 10)
        off = config.model_copy(update={"carbon": config.carbon.model_copy(update={"enabled": False})})  # fmt: skip
        either = CarbonPredictor.from_log(off, log).predict("tiny-light", 2, 10)
    own = CarbonPredictor(off, machine if mode == "machine" else process).predict("tiny-light", 2, 10)  # fmt: skip
    both = CarbonPredictor(off, machine + process).predict("tiny-light", 2, 10)
    assert predicted is not None and own is not None and either is not None and both is not None
    assert predicted.energy_kwh == pytest.approx(own.energy_kwh)
    assert either.energy_kwh == pytest.approx(both.energy_kwh)  # as before
    assert abs(both.energy_kwh - own.energy_kwh) > 0.4 * own.energy_kwh  # the scopes mixed
