"""How much of the machine's CPU other processes used while a block was measured.

CodeCarbon without energy counters estimates the CPU's power from the machine's load
(carbon.tracking_mode: machine): a generation measured while other processes load the
CPU is billed their work too, and on a busy machine it also runs slower (llama.cpp's
threads wait for each other at every operation, so one descheduled thread stalls all):
on this project's 2-core machine the 1.5B model generated ~30x slower, and was billed
~30x the energy, while nice'd test runs loaded it (``benchmarks/cpu_contention.py``).
A meter therefore reads, at a block's start and end, the machine's busy CPU time
(Linux's /proc/stat) and this process's own (its threads' and its reaped children's,
``os.times``): what the others used is the difference, as a share of all the machine's
CPU time in the block. Elsewhere, or for a block too short to tell, it is unknown
(None), never an error."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: A measured block whose other processes used more than this share of the machine's
#: CPU is said to be measured under contention (HumanEval's report and warning).
CONTENDED_SHARE = 0.25
#: The shortest block, in seconds of all the machine's CPUs, whose share is told:
#: /proc/stat counts in ticks (10 ms each on Linux), too coarse for a shorter one.
MIN_CPU_S = 0.5
_STAT = "/proc/stat"


@dataclass(frozen=True)
class CpuSample:
    """The machine's CPU seconds since boot (busy, and all: busy + idle, every core's)
    and this process's own (its threads and the children it has reaped)."""

    busy_s: float
    total_s: float
    own_s: float


def sample_cpu() -> CpuSample | None:
    """A reading now; None where /proc/stat cannot be read (not Linux)."""
    try:
        with open(_STAT, "rb") as f:
            fields = f.readline().split()
        # cpu user nice system idle iowait irq softirq steal (guest time is within user)
        ticks = [int(v) for v in fields[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if len(ticks) < 5 or fields[0] != b"cpu" or hz <= 0:
        return None
    total = sum(ticks)
    busy = total - ticks[3] - ticks[4]  # less idle and iowait
    t = os.times()
    return CpuSample(busy / hz, total / hz, t.user + t.system + t.children_user + t.children_system)  # fmt: skip


def others_share(start: CpuSample | None, end: CpuSample | None) -> float | None:
    """The share (0..1) of the machine's CPU time between ``start`` and ``end`` that
    other processes used; None where either reading is missing or the span is shorter
    than :data:`MIN_CPU_S` of CPU time."""
    if start is None or end is None:
        return None
    total = end.total_s - start.total_s
    if total <= 0 or total < MIN_CPU_S:
        return None
    others = (end.busy_s - start.busy_s) - (end.own_s - start.own_s)
    return min(max(others / total, 0.0), 1.0)


def contended(share: float | None) -> bool:
    """Whether a block whose others used ``share`` of the CPU was measured under
    contention (above :data:`CONTENDED_SHARE`); an unknown share is not."""
    return share is not None and share > CONTENDED_SHARE
