"""What a command spends before its work (``carbon/codecarbon_data.py``): CodeCarbon read
all its reference data at its first use, its CSV tables with pandas (0.55-0.6 s of CPU a
process that measures, 2 cores under load), where RouterLLM needs its JSON files and one row of its CPU
table. Its JSON data is given to it, the CPU's TDP kept per machine; every figure is
CodeCarbon's own, to the last digit, and a CodeCarbon whose internals differ is left to
load its data its own way. Real CodeCarbon, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .conftest import tiny_config_dict, write_config

pytest.importorskip("codecarbon")

#: A child's figures, as JSON on its last line: what CodeCarbon set up, and the CO2 it
#: gives each country's grid for the same energy.
FIGURES = """
import json, sys
from codecarbon.core.units import Energy
from routerllm.carbon import codecarbon_data, codecarbon_meter
{setup}
meters = {{c: codecarbon_meter.CodeCarbonMeter(c) for c in ("USA", "NOR", "CHN")}}
figures = {{}}
for country, meter in meters.items():
    tracker = meter._tracker
    tracker._ensure_geo_metadata()
    tracker._ensure_emissions_engine()
    co2 = [tracker._emissions.get_private_infra_emissions(Energy.from_energy(kWh=k), tracker._geo)
           for k in (1e-06, 0.000123456789, 2.5)]
    cpu = [(h._model, h._tdp, h._mode) for h in tracker._hardware if type(h).__name__ == "CPU"]
    figures[country] = {{"co2": co2, "cpu": cpu, "method": meter.method,
                        "hardware": tracker._conf.get("hardware"),
                        "cpu_model": tracker._conf.get("cpu_model")}}
with meters["USA"].measure("llm_inference") as slot:
    sum(i * i for i in range(200_000))
assert slot.result.method == meters["USA"].method and slot.result.energy_kwh > 0
for meter in meters.values():
    meter.close()
from codecarbon import input as cc_input
given = isinstance(cc_input._CACHE, codecarbon_data._LoadedOnDemand)
print(json.dumps({{"figures": figures, "pandas": "pandas" in sys.modules, "json_given": given}}))
"""
#: The CodeCarbon of before: nothing given, its data loaded its own way.
PLAIN = """
import contextlib
codecarbon_meter.read_json_data_alone = lambda: False
codecarbon_meter.registry_tdp_from_cache = contextlib.nullcontext
"""
#: A CPU CodeCarbon's table knows (a TDP); this machine's own, known or not (an "AMD
#: EPYC" it does not know: its TDP from its threads).
KNOWN_CPU = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"


def _child(script: str, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "ROUTERLLM_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _as_cpu(model: str | None) -> str:
    """The child's CPU named ``model`` (as /proc/cpuinfo would name it); None: its own."""
    if model is None:
        return ""
    return f"codecarbon_meter._proc_cpu_model = lambda: {model!r}\n"


@pytest.fixture(scope="module")
def plain_figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """This CPU's figures from CodeCarbon left as it is: its data read its own way, with
    pandas, nothing kept (one process, for every test of this file that compares)."""
    cache = tmp_path_factory.mktemp("plain")
    plain = _child(FIGURES.format(setup=PLAIN), cache)
    assert plain["pandas"] and not (cache / "codecarbon").exists()
    return plain


@pytest.mark.parametrize("cpu", [None, KNOWN_CPU], ids=["this-cpu", "known-cpu"])
def test_codecarbons_figures_are_the_same_to_the_last_digit_without_pandas(
    cpu: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The first process looks the CPU's TDP up as CodeCarbon does and keeps it; the next
    imports no pandas. Both set up the hardware CodeCarbon sets up alone (model, TDP,
    mode, method) and give each country's grid the CO2 it gives, for the same energy."""
    if cpu is None and not Path("/proc/cpuinfo").is_file():
        pytest.skip("CodeCarbon's own probe of the CPU: Linux's /proc/cpuinfo read here")
    if cpu is None:
        plain = request.getfixturevalue("plain_figures")
    else:
        plain = _child(FIGURES.format(setup=PLAIN + _as_cpu(cpu)), tmp_path / "plain")
        assert not (tmp_path / "plain" / "codecarbon").exists()
    first = _child(FIGURES.format(setup=_as_cpu(cpu)), tmp_path / "cache")
    kept = json.loads((tmp_path / "cache" / "codecarbon" / "cpu_tdp.json").read_text())
    later = _child(FIGURES.format(setup=_as_cpu(cpu)), tmp_path / "cache")
    assert plain["pandas"] and first["pandas"], "the table read with pandas, once"
    assert not later["pandas"], "pandas imported where the CPU's TDP was kept"
    assert first["figures"] == plain["figures"] and later["figures"] == plain["figures"]
    assert list(kept["tdp_w"]) == [cpu or plain["figures"]["USA"]["cpu"][0][0]]
    if cpu == KNOWN_CPU:  # a TDP CodeCarbon's table gives, kept as it gave it
        assert plain["figures"]["USA"]["cpu"][0][1] > 0 and kept["tdp_w"][cpu] is not None


def test_route_in_a_process_imports_no_pandas_once_the_cpus_tdp_is_kept(tmp_path: Path) -> None:
    """``routerllm route`` on the tiny model: its first process keeps the CPU's TDP, the
    next imports no pandas, and both log the request measured by CodeCarbon."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    script = f"""
    import json, sys
    from routerllm.cli import main
    status = main(["route", "what is a list?", "--config", {str(config)!r}, "--json", "--max-new-tokens", "2"])
    print(json.dumps({{"status": status, "pandas": "pandas" in sys.modules}}))
    """
    runs = [_child(script, tmp_path / "cache") for _ in range(2)]
    assert [run["status"] for run in runs] == [0, 0]
    assert [run["pandas"] for run in runs] == [True, False]
    from routerllm.carbon.request_log import RequestLog

    with RequestLog(tmp_path / "requests.sqlite", tmp_path / "carbon" / "emissions.csv") as log:
        rows = list(log.records())
    assert len(rows) == 2
    for row in rows:  # measured by CodeCarbon, as before, and logged with the grid's figures
        assert row.components["llm_inference"].method.startswith("codecarbon:")
        assert row.components["llm_inference"].energy_kwh > 0 and row.co2_kg > 0


NEWER_LOADER = """
from codecarbon import input as cc_input
{change}
"""


@pytest.mark.parametrize(
    "change",
    [
        # its loader reads other files (or names its keys otherwise): not given in its place
        "loaded = cc_input._load_static_data\ncc_input._load_static_data = lambda: loaded()",
        # its data no longer loaded all at once (another flag), or kept another way
        "cc_input._STATIC_DATA_LOADED = None",
        "cc_input._CACHE = type('Cache', (dict,), {})()",
        # the CPU table's lookup is another method's
        "from codecarbon.core.cpu import TDP\n"
        "TDP._power_from_table = TDP._get_cpu_power_from_registry\n"
        "del TDP._get_cpu_power_from_registry\n"
        "main = TDP._main\n"
        "def _main(self):\n"
        "    self._get_cpu_power_from_registry = self._power_from_table\n"
        "    return main(self)\n"
        "TDP._main = _main",
    ],
    ids=["loader", "loaded-flag", "cache", "tdp-lookup"],
)
def test_a_codecarbon_whose_internals_differ_loads_its_data_its_own_way(
    change: str, tmp_path: Path, plain_figures: dict[str, Any]
) -> None:
    """A newer CodeCarbon whose loader, flag, cache or lookup are not those known: left
    as it is (pandas imported, its data its own), no cache kept, its figures as a plain
    CodeCarbon's."""
    changed = _child(FIGURES.format(setup=NEWER_LOADER.format(change=change)), tmp_path / "cache")
    assert changed["figures"] == plain_figures["figures"]
    assert changed["pandas"]
    if "TDP" in change:  # the JSON data given, the CPU's lookup left as it is
        assert changed["json_given"] and not (tmp_path / "cache" / "codecarbon").exists()
    else:  # CodeCarbon's data loaded its own way
        assert not changed["json_given"]


def test_the_json_data_given_is_codecarbons_own_and_a_csv_table_still_loads_it_all(
    tmp_path: Path,
) -> None:
    """The JSON files CodeCarbon's loader reads, read as it reads them; asked for a CSV
    table (a cloud's figures), CodeCarbon loads all its data as before, the same JSON."""
    script = """
    import json, sys
    from codecarbon import input as cc_input
    from routerllm.carbon import codecarbon_data
    assert codecarbon_data.read_json_data_alone() and codecarbon_data.read_json_data_alone()
    given = {k: cc_input._CACHE[k] for k in codecarbon_data.JSON_DATA}
    before = ("pandas" in sys.modules, codecarbon_data.loaded_all())
    table = cc_input.DataSource().get_cloud_emissions_data()
    own = {k: cc_input._CACHE[k] for k in codecarbon_data.JSON_DATA}
    print(json.dumps({"before": before, "after": codecarbon_data.loaded_all(), "same": given == own,
                      "table": len(table), "new": any(own[k] is not given[k] for k in own)}))
    """
    out = _child(script, tmp_path)
    assert out == {"before": [False, False], "after": True, "same": True, "table": out["table"], "new": True}  # fmt: skip
    assert out["table"] > 0


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The CPU models CodeCarbon's own lookup is asked for (it answers 42.0), the cache
    in ``tmp_path``."""
    from codecarbon.core.cpu import TDP

    asked: list[str] = []

    def registry(self: object, model: str) -> float:
        asked.append(model)
        return 42.0

    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path))
    monkeypatch.setattr(TDP, "_get_cpu_power_from_registry", registry)
    return asked


def _lookup(model: str) -> float | None:
    from codecarbon.core.cpu import TDP

    from routerllm.carbon.codecarbon_data import registry_tdp_from_cache

    with registry_tdp_from_cache():
        return TDP._get_cpu_power_from_registry(object.__new__(TDP), model)  # type: ignore[no-any-return]


def test_the_kept_tdp_is_looked_up_again_when_codecarbon_or_its_table_or_the_cpu_changes(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from codecarbon.core.cpu import TDP
    from codecarbon.input import DataSource

    from routerllm.carbon import codecarbon_data

    assert _lookup("CPU A") == 42.0 and lookups == ["CPU A"]
    assert _lookup("CPU A") == 42.0 and lookups == ["CPU A"], "kept: not asked again"
    assert TDP._get_cpu_power_from_registry.__name__ == "registry", "put back"
    kept = codecarbon_data.cache_file()
    data = json.loads(kept.read_text())
    data["tdp_w"]["CPU A"] = 7.5  # what is kept is what is given
    kept.write_text(json.dumps(data))
    assert _lookup("CPU A") == 7.5 and lookups == ["CPU A"]
    assert _lookup("CPU B") == 42.0 and lookups == ["CPU A", "CPU B"], "another CPU"
    assert set(json.loads(kept.read_text())["tdp_w"]) == {"CPU A", "CPU B"}
    monkeypatch.setattr("codecarbon.__version__", "3.99.0")  # a new CodeCarbon
    assert _lookup("CPU A") == 42.0 and lookups[-1] == "CPU A" and len(lookups) == 3
    table = tmp_path / "cpu_power.csv"  # the table written again (another stat)
    table.write_text("Name,TDP\n")
    monkeypatch.setattr(DataSource, "cpu_power_path", property(lambda self: table))
    assert _lookup("CPU A") == 42.0 and len(lookups) == 4
    assert _lookup("CPU A") == 42.0 and len(lookups) == 4
    table.write_text("Name,TDP\nCPU A,1\n")
    assert _lookup("CPU A") == 42.0 and len(lookups) == 5


# the last nested past the recursion limit: a RecursionError, and the meter's start failed
@pytest.mark.parametrize(
    "damage", ["{not json", '{"format": 1}', "[]", '{"tdp_w": 3}', "[" * 100_000]
)
def test_a_damaged_cache_is_looked_up_again_and_written_whole(
    damage: str, lookups: list[str]
) -> None:
    from routerllm.carbon import codecarbon_data

    codecarbon_data.cache_file().parent.mkdir(parents=True)
    codecarbon_data.cache_file().write_text(damage)
    assert _lookup("CPU A") == 42.0 and lookups == ["CPU A"]
    assert json.loads(codecarbon_data.cache_file().read_text())["tdp_w"] == {"CPU A": 42.0}


def test_a_cache_that_cannot_be_written_costs_a_lookup_a_process_not_the_meter(
    lookups: list[str], tmp_path: Path
) -> None:
    (tmp_path / "codecarbon").write_text("a file where the folder would be")
    assert _lookup("CPU A") == 42.0 and _lookup("CPU A") == 42.0
    assert lookups == ["CPU A", "CPU A"]


def _logged(i: int, model: str) -> Any:
    from routerllm.carbon.log_rows import RequestRecord
    from routerllm.carbon.meter import Measurement

    method = "codecarbon:load-estimate"
    return RequestRecord(
        id=f"r{i}", timestamp=f"2026-12-07T10:00:{i:02d}.000000+00:00", prompt_sha256="h",
        prompt_chars=20, model=model, router="rules", confidence=0.9, prompt_tokens=12,
        completion_tokens=8 + i, latency_s=0.5, cost_usd=1e-6,
        components={
            "router_inference": Measurement("router_inference", 0.001, 1e-9, 3e-10, method),
            "model_loading": Measurement("model_loading", 0.2, 2e-7, 6e-8, method),
            "llm_inference": Measurement("llm_inference", 0.5, 2e-6 * (i + 1), 6e-7 * (i + 1), method),
        },
    )  # fmt: skip


@pytest.mark.parametrize("command", ["report", "models"])
def test_report_and_models_import_no_codecarbon_and_say_the_same(
    command: str, tmp_path: Path
) -> None:
    """``report`` (which checks the config's country against CodeCarbon's grids) and
    ``models`` measure nothing: CodeCarbon, through which the grids' file was found, was
    imported all the same (its tracker, psutil, rapidfuzz, pynvml: 0.15-0.26 s of CPU).
    Their output is the same as with CodeCarbon imported."""
    from routerllm.carbon.request_log import RequestLog

    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"country_iso_code": "DEU"}))
    with RequestLog(tmp_path / "requests.sqlite", tmp_path / "carbon" / "emissions.csv") as log:
        for i, model in enumerate(["tiny-light", "tiny-heavy", "tiny-light", "tiny-heavy"]):
            log.append(_logged(i, model))
    script = """
    import json, sys
    {before}
    from routerllm.cli import main
    status = main([{command!r}, "--config", {config!r}, "--json"])
    print(json.dumps({{"status": status, "codecarbon": "codecarbon" in sys.modules}}))
    """
    runs = {}
    for before in ("import codecarbon", ""):
        code = textwrap.dedent(script).format(before=before, command=command, config=str(config))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        *output, last = done.stdout.splitlines()
        runs[before] = ("\n".join(output), json.loads(last))
    assert runs[""][1] == {"status": 0, "codecarbon": False}
    assert runs[""][0] == runs["import codecarbon"][0], "the same output"
    printed = json.loads(runs[""][0])
    if command == "report":  # the country checked against CodeCarbon's grids, as before
        assert printed["totals"]["requests"] == 4
    else:
        assert [m["name"] for m in printed["models"]] == ["tiny-light", "tiny-medium", "tiny-heavy"]


def test_the_grids_are_read_as_a_packages_resource_where_its_folder_is_not_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CodeCarbon installed other than as files (a zip): its grids read through
    ``importlib.resources``, as before, the same data."""
    from routerllm.carbon import meter

    meter._energy_mix.cache_clear()
    as_files = meter._energy_mix()
    monkeypatch.setattr("routerllm.paths.package_dir", lambda name: None)
    meter._energy_mix.cache_clear()
    try:
        assert meter._energy_mix() == as_files and "FRA" in as_files
    finally:
        meter._energy_mix.cache_clear()


def test_codecarbons_data_given_loads_the_rest_once_for_a_key_it_lacks_however_asked() -> None:
    """``[key]`` and ``.get(key)`` alike: a newer CodeCarbon asking with ``get`` would
    otherwise be told there is no CPU table."""
    from routerllm.carbon.codecarbon_data import _LoadedOnDemand

    loads: list[int] = []

    def load_all() -> None:
        loads.append(1)
        cache["cpu_power"] = "table"

    cache = _LoadedOnDemand({"global_energy_mix": {}}, load_all)
    assert cache.get("global_energy_mix") == {} and not cache.loaded_all and loads == []
    assert cache.get("cpu_power") == "table" and cache["cpu_power"] == "table"
    assert cache.get("nothing", 5) == 5 and loads == [1] and cache.loaded_all
    with pytest.raises(KeyError):
        cache["nothing"]
