"""A timing benchmark says, beside its figures, the machine they were measured on and how
many runs each median is of, in its text and in its ``--json`` alike. Until 2026-12-06
``budget_overhead``'s, ``report_scaling``'s and ``router_latency``'s JSON held no
machine (the README promised a ``machine`` key), ``encoder_latency`` named no CPU (its
``--long`` table not even the cores), and ``budget_overhead`` and ``report_scaling``
printed medians without the count of runs behind them. Each run here in a small mode
(seconds)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import benchmark_in_process, tiny_config_dict, write_config

CASES = [
    # (script, its small mode, the line after the machine's, the JSON's counts)
    ("budget_overhead", ["--sizes", "200", "--requests", "3"],
     "medians: of 3 checks a size (both windows each), of 5 refusals and whole-window reads",
     {"checks_timed": 3, "refusals_timed": 5}),
    ("report_scaling", ["--sizes", "500", "--repeat", "2"],
     "report s: the median of 2 reports; peak MB: one more report's (tracemalloc)",
     {"repeat": 2}),
    # its JSON said the machine, but not the prompts and tokens its text says
    ("measure_local_models", ["--max-new-tokens", "2", "--config", "TINY"],
     "; 4 prompts x 2 max new tokens, greedy",  # after the carbon method, the machine's
     {"prompts": 4, "max_new_tokens": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "runs", "counts"), CASES, ids=[c[0] for c in CASES])
def test_a_timing_benchmark_says_its_machine_and_its_runs_in_text_and_json(
    name: str, argv: list[str], runs: str, counts: dict[str, int], tmp_path: Path
) -> None:
    config = str(write_config(tmp_path, tiny_config_dict(tmp_path)))  # the tiny GGUF ladder
    argv = [config if word == "TINY" else word for word in argv]
    cpus = f", {len(os.sched_getaffinity(0))} of {os.cpu_count()} CPU cores usable, Python "
    out = benchmark_in_process(name, *argv)
    assert out.returncode == 0, out.stderr[-800:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("machine: ") and cpus in lines[0], lines[0]
    assert lines[1] == runs or lines[1].endswith(runs) and runs.startswith("; "), lines[1]
    out = benchmark_in_process(name, *argv, "--json")
    assert out.returncode == 0, out.stderr[-800:]
    printed = json.loads(out.stdout)
    machine = printed["machine"]
    assert machine["cpus_usable"] == len(os.sched_getaffinity(0))
    assert machine["cpus"] == os.cpu_count()
    assert {key: printed[key] for key in counts} == counts


@pytest.mark.slow  # it trains three routers before it times them: 20-100 s on 2 cores
def test_router_latencys_json_says_its_machine_and_the_prompts_timed() -> None:
    """Its text said both; its JSON, a list of rows, neither."""
    out = benchmark_in_process("router_latency", "--encoders", "static", "--n", "8", "--json")
    assert out.returncode == 0, out.stderr[-800:]
    printed = json.loads(out.stdout)
    assert printed["machine"]["cpus_usable"] == len(os.sched_getaffinity(0))
    assert printed["prompts"] == 8
    assert [(r["router"], r["encoder"]) for r in printed["results"]] == [
        ("quality", "static"),
        ("moe", "static"),
        ("classifier", "static"),
    ]


@pytest.mark.slow  # it loads every encoder, MiniLM through torch among them
def test_encoder_latency_names_its_machine_and_the_batched_runs_of_its_median() -> None:
    """It said the threads and the CPUs visible, not which CPU nor how many of them this
    process may use; its JSON's CPU was platform's (``x86_64`` on Linux)."""
    # one thread, as the suite runs torch: its count is the process's (tests/state_guard.py)
    one = ("--prompts", "2", "--repeats", "2", "--threads", "1")
    out = benchmark_in_process("encoder_latency", *one)
    assert out.returncode == 0, out.stderr[-800:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("machine: ") and ", Python " in lines[0], lines[0]
    assert lines[1] == "2 prompts (mean 55 chars), 1 threads; texts/s @64: the median of 2 batched runs"  # fmt: skip
    out = benchmark_in_process("encoder_latency", *one, "--json")
    printed = json.loads(out.stdout)
    assert printed["machine"]["cpus_usable"] == len(os.sched_getaffinity(0))
    assert printed["context"]["repeats"] == 2


def test_the_streaming_benchmark_alternates_which_kind_of_request_goes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each prompt went unstreamed first, then streamed, every time: whatever the first
    of a pair pays (or the second is spared) fell on one side of the ratio it prints.
    Now each kind goes first for every other prompt, as sandbox_overhead's rounds do."""
    import urllib.request

    sent: list[bool] = []
    urlopen = urllib.request.urlopen

    def recorded(request: urllib.request.Request, *args: object, **kwargs: object) -> object:
        sent.append(json.loads(request.data or b"{}").get("stream", False))  # type: ignore[arg-type]
        return urlopen(request, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", recorded)
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    config = str(write_config(tmp_path, data))
    out = benchmark_in_process("streaming", "--config", config, "--model", data["models"][0]["name"], "--n", "4", "--max-tokens", "4", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    assert sent == [False, True, True, False, False, True, True, False]
    assert json.loads(out.stdout)["same_text"] == "4/4"


def test_the_server_overhead_benchmark_alternates_which_path_goes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each prompt went in-process first, then through the server, every time: the
    overhead it prints is the difference of the two paths' medians."""
    import threading
    import urllib.request

    from routerllm.system import RouterLLM

    sent: list[str] = []
    urlopen, generate = urllib.request.urlopen, RouterLLM.generate

    def through_http(*args: object, **kwargs: object) -> object:
        sent.append("http")
        return urlopen(*args, **kwargs)  # type: ignore[arg-type]

    def in_process(self: RouterLLM, *args: object, **kwargs: object) -> object:
        if threading.current_thread() is threading.main_thread():  # not the server's
            sent.append("direct")
        return generate(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", through_http)
    monkeypatch.setattr(RouterLLM, "generate", in_process)
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    config = str(write_config(tmp_path, data))
    out = benchmark_in_process("server_overhead", "--config", config, "--model", data["models"][0]["name"], "--n", "4", "--max-tokens", "2", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    # the warm-up, then the four prompts' pairs
    assert sent == ["direct", "direct", "http", "http", "direct", "direct", "http", "http", "direct"]  # fmt: skip


#: (script, its small mode): routing benchmarks whose text gives the seconds a stream,
#: training or run took, on a small MBPP-shaped set
ROUTING = [
    ("feedback_learning", ["--encoder", "hashing", "--warm", "10", "--seeds", "0"]),
    ("moe_defaults", ["--seeds", "1"]),
    ("learned_routers", ["--seeds", "0", "--routers", "logreg"]),
]


@pytest.mark.parametrize(("name", "argv"), ROUTING, ids=[c[0] for c in ROUTING])
def test_a_routing_benchmark_that_prints_seconds_names_the_machine_first(
    name: str, argv: list[str], tmp_path: Path
) -> None:
    """Their stream's, run's or training's seconds were printed without the machine they
    hold for. A smoke run on a small MBPP-shaped set."""
    from .test_data_outcomes import _small_mbpp_set

    _small_mbpp_set(tmp_path)
    out = benchmark_in_process(name, "--data-dir", str(tmp_path), "--datasets", "routerbench_mbpp", *argv)  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    first = out.stdout.splitlines()[0]
    assert first.startswith("machine: ") and ", Python " in first, first


@pytest.mark.parametrize(("name", "argv"), ROUTING, ids=[c[0] for c in ROUTING])
def test_a_routing_benchmarks_json_says_its_machine_beside_its_data_sets(
    name: str, argv: list[str], tmp_path: Path
) -> None:
    """Their text named the machine their seconds hold for; their ``--json``, keyed by
    data set, did not (until 2026-12-06)."""
    from .test_data_outcomes import _small_mbpp_set

    _small_mbpp_set(tmp_path)
    out = benchmark_in_process(name, "--data-dir", str(tmp_path), "--datasets", "routerbench_mbpp", *argv, "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    printed = json.loads(out.stdout)
    assert printed["machine"]["cpus_usable"] == len(os.sched_getaffinity(0))
    assert set(printed) == {"machine", "routerbench_mbpp"}, "the data set's results as before"
