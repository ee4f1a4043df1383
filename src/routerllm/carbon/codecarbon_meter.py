"""``CodeCarbonMeter``: this machine measured with CodeCarbon's offline tracker (one
tracker per meter, one task per component: CodeCarbon trackers must not be restarted; it
measures one task at a time, and the whole machine, so the measured blocks of every
CodeCarbon meter in the process take turns). Where CodeCarbon finds no energy counters
(RAPL, Intel Power Gadget, powermetrics) or GPU it estimates CPU power from load, or from
the CPU's TDP alone: ``method`` says which. Its failures are said as warnings once, then
counted (``FailureWarnings``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from routerllm.carbon.codecarbon_data import read_json_data_alone, registry_tdp_from_cache
from routerllm.carbon.cpu_share import CpuSample, others_share, sample_cpu
from routerllm.carbon.meter import (
    CODECARBON_FAILED,
    CarbonMeter,
    Measurement,
    _Slot,
    check_country,
    codecarbon_method,
)
from routerllm.config_sections import TRACKING_MODES
from routerllm.exceptions import ConfigError, RouterLLMError, missing_dependency

log = logging.getLogger(__name__)

# Every CodeCarbon tracker measures the whole machine: two meters' blocks measured at
# once (two systems in one process) would each count the other's work, and the
# same seconds twice. The blocks of all meters take turns, each measuring its own.
_TURNS = threading.RLock()
#: A CodeCarbon failure that keeps coming is said once, then its count at most this often
#: (seconds) and as a meter closes.
FAILURE_REPEAT_S = 600.0
#: How long a block's end waits, at most, for a load sample CodeCarbon's power monitor
#: is taking (psutil's reads: milliseconds).
MONITOR_JOIN_S = 5.0


class CodeCarbonMeter(CarbonMeter):
    """CodeCarbon's OfflineEmissionsTracker, one task per measured block."""

    def __init__(self, country_iso_code: str, tracking_mode: str = "machine") -> None:
        """``tracking_mode`` (carbon.tracking_mode): what CodeCarbon counts, the whole
        machine or this process and its children (README, "carbon method")."""
        if tracking_mode not in TRACKING_MODES:  # else CodeCarbon failed inside, unsaid
            raise ConfigError(
                f"tracking_mode must be {' or '.join(map(repr, TRACKING_MODES))} "
                f"(carbon.tracking_mode), got {tracking_mode!r:.40}"
            )
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as e:
            raise missing_dependency("codecarbon", "carbon", e) from e
        country_iso_code = self.country_iso_code = check_country(country_iso_code)
        # CodeCarbon logs every measurement at INFO/WARNING; keep the CLI readable.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        read_json_data_alone()  # no pandas where its CSV tables are not needed (see there)
        self._tracker: Any = OfflineEmissionsTracker(
            country_iso_code=country_iso_code,
            output_methods=[],  # we write our own log and CSV
            log_level="error",
            measure_power_secs=3600,  # we measure per task; no background sampling needed
            allow_multiple_runs=True,
            tracking_mode=tracking_mode,
        )
        self._count = 0
        # CodeCarbon measures one task at a time (a second is refused while one runs,
        # and both are then logged as spending nothing), and it measures the whole
        # machine: threads sharing this meter, or using another, take turns, each
        # block's energy its own.
        self._lock = _TURNS
        self._closed = False
        # The first task probes the hardware (~1.8 s): do it now, so that it is
        # not billed to the first request's router_inference (_deferred: see measure).
        with self._lock, _deferred(), _cpu_model_from_proc(), registry_tdp_from_cache():
            self._tracker.start_task("warmup")
            self._tracker.stop_task("warmup")
            _settle_monitor(self._tracker)
            self._forget("warmup")
        _count_reaped_children(self._tracker)
        self.method = codecarbon_method(_power_method(self._tracker), tracking_mode)

    def turn(self) -> AbstractContextManager[object]:
        return self._lock

    @contextmanager
    def measure(self, component: str) -> Iterator[_Slot]:
        slot = _Slot()
        with self._lock:
            self.check_open()
            self._count += 1
            task = f"{component}-{self._count}"
            start, cpu = time.perf_counter(), sample_cpu()
            # CodeCarbon failing (a power counter that cannot be read) must not cost the
            # answer being measured, nor leave its tracker refusing every later task
            failure = ""
            # Ctrl-C is raised once CodeCarbon's calls return: pressed inside one, it left
            # the plain lock of a scheduler CodeCarbon (re)starts held, and the tracker's
            # stop() at close waited for it forever (`humaneval` hung after Ctrl-C)
            try:
                with _deferred():
                    try:
                        self._tracker.start_task(task)
                    except Exception as e:  # noqa: BLE001 - whatever CodeCarbon raises
                        failure = self._drop(task, e)
                yield slot
            finally:
                with _deferred():
                    slot.result = self._stopped(task, component, start, failure, cpu)

    def _stopped(
        self, task: str, component: str, start: float, failure: str, cpu: CpuSample | None
    ) -> Measurement:
        """What ``task`` measured, once stopped (``failure``: why it was not started;
        ``cpu``: the machine's CPU time at its start, to tell what others used of it)."""
        data = None
        if not failure:
            try:
                data = self._tracker.stop_task(task)
            except Exception as e:  # noqa: BLE001 - whatever CodeCarbon raises
                failure = self._drop(task, e)
        _settle_monitor(self._tracker)
        self._forget(task)
        duration = time.perf_counter() - start
        share = others_share(cpu, sample_cpu())
        if data is None:  # CodeCarbon refused or failed the task
            _FAILURES.failed(component, failure)
            return Measurement(component, duration, 0.0, 0.0, CODECARBON_FAILED, share)
        return Measurement(
            component,
            duration,
            float(data.energy_consumed),
            float(data.emissions),
            self.method,
            share,
        )

    def _drop(self, task: str, error: Exception) -> str:
        """Forget a task CodeCarbon failed to start or stop, which it would otherwise
        keep active, refusing every later one; what failed, to say so."""
        if getattr(self._tracker, "_active_task", None) == task:  # not a block around this one
            self._tracker._active_task = None
            self._tracker._active_task_emissions_at_start = None
        self._forget(task)
        return f"{type(error).__name__}: {error}"

    def _forget(self, task: str) -> None:
        # CodeCarbon keeps every finished task's figures (~2.4 KB) until the tracker
        # stops, for outputs we do not use: a server's three tasks a request would
        # grow its memory without bound.
        tasks = getattr(self._tracker, "_tasks", None)
        if isinstance(tasks, dict):
            tasks.pop(task, None)

    def check_open(self) -> None:
        if self._closed:  # CodeCarbon's stopped tracker fails with an AttributeError
            raise RouterLLMError(
                "this carbon meter is closed (closing a RouterLLM closes its meter, also one "
                "other systems share, and CodeCarbon's tracker cannot be restarted); give "
                "the system a meter of its own, or none"
            )

    def close(self) -> None:
        with self._lock:  # after the block another thread is measuring
            if self._closed:
                return
            self._closed = True
            _FAILURES.say_counts()
            try:
                with _deferred():  # see measure
                    self._tracker.stop()
            except Exception as e:  # noqa: BLE001 - a failing shutdown must not lose results
                log.debug("codecarbon stop failed: %s", e)


class FailureWarnings:
    """CodeCarbon's failures as warnings: each kind (the error's type) said in full once
    a process, the same kind again counted, its count said at most every ``interval``
    seconds and as a meter closes. Each failed block is recorded all the same (method
    ``codecarbon:failed``): a power counter that stays unreadable failed each part of
    each request, and its warning, said each time, filled a server's log. Called within
    ``_TURNS``, as the blocks and meters' closing are."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 interval: float = FAILURE_REPEAT_S) -> None:  # fmt: skip
        self._clock, self._interval = clock, interval
        self._said: dict[str, float] = {}  # kind -> when it was last said
        self._unsaid: dict[str, int] = {}  # kind -> failures since

    def failed(self, component: str, failure: str) -> None:
        """``component``'s block failed (``failure``: the error, "" where CodeCarbon gave
        no figures without one)."""
        kind = failure.partition(":")[0] or "no figures"
        now = self._clock()
        if kind not in self._said:
            self._said[kind] = now
            log.warning(
                "CodeCarbon could not measure %s%s; it is logged as spending nothing "
                "(method codecarbon:failed), which the budgets do not count; the same "
                "failure again is counted, not repeated",
                component,
                f" ({failure})" if failure else "",
            )
            return
        self._unsaid[kind] = self._unsaid.get(kind, 0) + 1
        if now - self._said[kind] >= self._interval:
            self._say(kind, now)

    def say_counts(self) -> None:
        """The failures counted and not yet said (a meter closing: the run's end)."""
        for kind in list(self._unsaid):
            self._say(kind, self._clock())

    def _say(self, kind: str, now: float) -> None:
        from routerllm.carbon.report_text import counted

        self._said[kind] = now
        if n := self._unsaid.pop(kind, 0):
            log.warning(
                "CodeCarbon could not measure %s (%s) since it was last said; each is "
                "logged as spending nothing (method codecarbon:failed)",
                counted(n, "more block"),
                kind,
            )


_FAILURES = FailureWarnings()


def _settle_monitor(tracker: Any) -> None:
    """CodeCarbon's power monitor stopped, and its threads ended: it samples the load
    every second of a task in a timer thread (``PeriodicScheduler``), which stopping the
    task cancels, but a sample being taken runs on after the block, and a timer firing
    as it is stopped restarts itself. A server counted one thread more after a request
    than before; nothing of a block now runs on after it."""
    monitor: Any = getattr(tracker, "_scheduler_monitor_power", None)
    run = getattr(monitor, "_run", None)
    if run is None:  # the tracker stopped, or a CodeCarbon without it
        return
    for _ in range(3):  # a timer restarts itself at most once per stop
        monitor.stop()
        for thread in threading.enumerate():
            if (isinstance(thread, threading.Timer) and thread.function == run
                    and thread is not threading.current_thread()):  # fmt: skip
                thread.join(MONITOR_JOIN_S)
        if getattr(monitor, "_stopped", True):
            return


def _deferred() -> AbstractContextManager[object]:
    """Ctrl-C during the block raised once it ends (``backends.interrupts``, imported
    only where a meter measures: a report reads this module without the backends)."""
    from routerllm.backends.interrupts import deferred_interrupts

    return deferred_interrupts()


#: CodeCarbon's CPU modes that read the processor's energy counters: RAPL on Linux, the
#: Energy Meter Interface (RAPL) on Windows, Intel Power Gadget on Windows and macOS.
_COUNTER_MODES = {"intel_rapl", "windows_emi", "intel_power_gadget"}
#: CodeCarbon's hardware that it measures: a GPU (NVML, AMD SMI), an Apple chip
#: (powermetrics), a Raspberry Pi (its power chip).
_MEASURED_HARDWARE = {"GPU", "AppleSiliconChip", "Raspberry"}


@contextmanager
def _cpu_model_from_proc() -> Iterator[None]:
    """While CodeCarbon first probes the hardware: the CPU's model, which it asks of
    py-cpuinfo, read from Linux's /proc/cpuinfo (its ``model name``, the CPUID brand
    string py-cpuinfo reads too). py-cpuinfo starts a Python process for it: 1.1 s of
    the 1.8 s probe, at the start of every command that measures. Elsewhere, where that
    file has no model name (ARM), or once CodeCarbon knows the model, nothing changes."""
    try:
        import cpuinfo
        from codecarbon.core.util import detect_cpu_model
    except ImportError:
        yield
        return
    model = _proc_cpu_model() if detect_cpu_model.cache_info().currsize == 0 else None
    if model is None:
        yield
        return
    original = cpuinfo.get_cpu_info
    cpuinfo.get_cpu_info = lambda: {"brand_raw": model}
    try:
        yield
    finally:
        cpuinfo.get_cpu_info = original


def _proc_cpu_model() -> str | None:
    """The ``model name`` line of /proc/cpuinfo; None where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return None


def _count_reaped_children(tracker: Any) -> None:
    """In process mode, where CodeCarbon estimates the CPU's power from CPU time: the
    time of the children this process has reaped counted too. CodeCarbon sums the CPU
    time of the processes alive at each of its readings (a block's start and end, and
    each second): a child started and reaped between two (a cascade's sandboxed check)
    was not counted, nor what a longer one spent before it was first seen."""
    for cpu in getattr(tracker, "_hardware", []):
        if type(cpu).__name__ == "CPU" and getattr(cpu, "_tracking_mode", None) == "process":
            process = getattr(cpu, "_process", None)
            if process is not None and hasattr(cpu, "_get_process_cpu_times"):
                cpu._get_process_cpu_times = _TreeCpuTime(process)


class _TreeCpuTime:
    """CodeCarbon's reading of a process's CPU time ({pid: seconds}) as one figure: the
    seconds spent by the process, its live descendants and every descendant reaped
    (``children_user``/``children_system``: a parent's reaped children's time, theirs
    included). A child reaped between two readings has left the live ones and joined
    the reaped, so each second is counted once. Each process is read before its
    descendants (psutil lists them so): one reaped between the two readings is missed
    by that reading alone, never counted twice, and the figure never goes back."""

    def __init__(self, process: Any) -> None:
        self._process = process
        self._seconds = 0.0

    def __call__(self) -> dict[int, float]:
        import psutil

        total = 0.0
        try:
            tree = [self._process, *self._process.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            tree = [self._process]
        for p in tree:
            try:
                t = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # gone: its time is its parent's reaped children's
            total += t.user + t.system + t.children_user + t.children_system
        self._seconds = max(self._seconds, total)
        return {self._process.pid: self._seconds}


def _power_method(tracker: Any) -> str:
    """'measured' when CodeCarbon reads hardware (energy counters, powermetrics, a GPU),
    if only part of it (a GPU machine without CPU counters still estimates the CPU from
    its load, and RAM is always estimated from its size: one label, see the README),
    'tdp-estimate' when it takes the CPU's TDP as its constant power (psutil cannot
    read the load), else 'load-estimate' (the TDP scaled by the CPU's load)."""
    hardware = getattr(tracker, "_hardware", [])
    kinds = {type(h).__name__ for h in hardware}
    modes = {getattr(h, "_mode", None) for h in hardware if type(h).__name__ == "CPU"}
    if kinds & _MEASURED_HARDWARE or modes & _COUNTER_MODES:
        return "measured"
    if "constant" in modes:
        return "tdp-estimate"
    return "load-estimate"
