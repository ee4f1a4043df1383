"""What other processes used of the machine's CPU while a block was measured
(``carbon/cpu_share.py``), with real busy-loop processes making the contention."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from routerllm.carbon import cpu_share
from routerllm.carbon.codecarbon_meter import CodeCarbonMeter
from routerllm.carbon.cpu_share import (
    CONTENDED_SHARE,
    CpuSample,
    contended,
    others_share,
    sample_cpu,
)
from routerllm.carbon.meter import CarbonMeter, Measurement, NullMeter

linux_only = pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads /proc/stat")
SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def _spin_here(cpu_s: float) -> None:
    """This process busy for ``cpu_s`` seconds of its own CPU time."""
    t = time.process_time()
    while time.process_time() - t < cpu_s:
        pass


@contextmanager
def _busy_loops(n: int) -> Iterator[None]:
    """``n`` busy-loop child processes, running until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.3)  # started: the interpreter up and looping
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


def test_others_share_by_hand() -> None:
    # 4 CPU-seconds went by, 3.5 busy, 1 of them this process's: others 2.5 of 4
    start, end = CpuSample(10.0, 100.0, 1.0), CpuSample(13.5, 104.0, 2.0)
    assert others_share(start, end) == pytest.approx(0.625)
    assert contended(0.625) and not contended(CONTENDED_SHARE) and not contended(None)
    # too short a span for /proc/stat's ticks, or a reading missing: not known
    assert others_share(start, CpuSample(10.1, 100.2, 1.0)) is None
    assert others_share(None, end) is None and others_share(start, None) is None
    # this process counted more than the machine's busy time (tick rounding): 0, not < 0
    assert others_share(start, CpuSample(10.5, 101.0, 2.0)) == 0.0


def test_two_blocks_shares_are_weighted_by_their_durations() -> None:
    a = Measurement("llm_inference", 3.0, 1e-6, 1e-7, "m", 0.8)
    b = Measurement("llm_inference", 1.0, 1e-6, 1e-7, "m", 0.0)
    assert a.plus(b).others_cpu_share == pytest.approx(0.6)
    unknown = Measurement("llm_inference", 5.0, 0.0, 0.0, "m")
    assert a.plus(unknown).others_cpu_share == pytest.approx(0.8)
    assert unknown.plus(unknown).others_cpu_share is None
    assert a.scaled(0.5).others_cpu_share == pytest.approx(0.8) and a.contended


@linux_only
def test_this_process_children_and_threads_are_its_own_cpu() -> None:
    start = sample_cpu()
    subprocess.run([sys.executable, "-c", SPIN.format(s=0.6)], check=True)
    end = sample_cpu()
    assert start is not None and end is not None
    assert end.own_s - start.own_s >= 0.5  # the reaped child's CPU time is this process's


@linux_only
@pytest.mark.parametrize("kind", ["null", "codecarbon"])
def test_a_block_measured_among_busy_processes_says_so(kind: str) -> None:
    meter: CarbonMeter = NullMeter() if kind == "null" else CodeCarbonMeter("FRA")
    try:
        # as many busy loops as cores: with this block's own work, others hold well over
        # a quarter of the machine's CPU whatever else runs
        with _busy_loops(os.cpu_count() or 1), meter.measure("llm_inference") as slot:
            _spin_here(0.6)
    finally:
        meter.close()
    share = slot.result.others_cpu_share
    assert share is not None and share > CONTENDED_SHARE, share
    assert slot.result.contended


def test_without_proc_stat_the_share_is_unknown_never_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cpu_share, "_STAT", str(tmp_path / "no-such-file"))
    assert sample_cpu() is None
    with NullMeter().measure("llm_inference") as slot:
        _spin_here(0.3)
    assert slot.result.others_cpu_share is None and not slot.result.contended


def test_the_remeasure_options_help_states_the_contended_share() -> None:
    # the CLI says the share in words, not importing routerllm.carbon as it starts
    from routerllm.cli import build_parser

    text = build_parser().format_help() + "".join(
        a.help or "" for g in build_parser()._subparsers._group_actions for p in g.choices.values()  # type: ignore[union-attr]
        for a in p._actions if "--remeasure-contended" in a.option_strings
    )  # fmt: skip
    assert f"more than {CONTENDED_SHARE:.0%}%" in text  # its help as written: % is %%


def test_a_measurement_equals_its_logged_figures_whatever_its_cpu_share() -> None:
    from routerllm.carbon.meter import Measurement

    assert Measurement("llm_inference", 1.0, 2.0, 3.0, "m", 0.4) == Measurement("llm_inference", 1.0, 2.0, 3.0, "m")  # fmt: skip
