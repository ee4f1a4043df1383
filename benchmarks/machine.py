"""The machine a benchmark ran on, said with its figures: timings hold for it only."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in (
            Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict[str, object]:
    """The CPU, how many cores this process may use and how many there are, the Python."""
    cpus = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return {"cpu": cpu_name(), "cpus_usable": usable, "cpus": cpus, "python": platform.python_version()}  # fmt: skip


def machine_line() -> str:
    """One line for a benchmark's text output."""
    m = machine()
    return f"machine: {m['cpu']}, {m['cpus_usable']} of {m['cpus']} CPU cores usable, Python {m['python']}"  # fmt: skip


def print_figures(figures: dict[str, object], as_json: bool, width: int) -> None:
    """A benchmark's figures: as JSON with its ``machine`` (``--json``), else the machine's
    line and one ``key value`` line each, floats to 4 significant digits."""
    if as_json:
        print(json.dumps({**figures, "machine": machine()}, indent=2))
        return
    print(machine_line())
    for key, value in figures.items():
        print(
            f"{key:<{width}} {value:.4g}" if isinstance(value, float) else f"{key:<{width}} {value}"
        )
