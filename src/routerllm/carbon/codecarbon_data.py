"""CodeCarbon's reference data, read without pandas where RouterLLM's use needs none.

CodeCarbon reads all its reference data at the first use of any of it, its two CSV
tables with pandas: importing pandas (and pyarrow) and reading them, with the CPU's
lookup in its table, cost 0.55-0.6 s of CPU at the start of every command that measures
(2 cores under load, 2026-12-07), for data that an offline tracker outside a cloud
reads two things of: the country's grid (JSON files) and the TDP of this machine's CPU
(its row of ``cpu_power.csv``, found by a fuzzy match of the CPU's name).

``read_json_data_alone`` gives CodeCarbon its JSON files, read as it reads them (the
same files, ``json.load``); any other of its data (the CSV tables: a cloud provider's
figures, the CPU table) still loads all of it, with pandas, at its first use, as
CodeCarbon would have. ``registry_tdp_from_cache`` answers the CPU table's lookup from
a per-machine cache of what CodeCarbon itself found
(``$ROUTERLLM_CACHE/codecarbon/cpu_tdp.json``), keyed by CodeCarbon's version, the
table file's identity (its stat) and the CPU's name: a new CodeCarbon, a table written
again, another CPU each look it up again, once. Where
CodeCarbon's internals are not those this was written for (checked, not assumed), both
leave CodeCarbon as it is: it loads its data its own way, slower, with the same figures.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The JSON files CodeCarbon 3.x's ``input._load_static_data`` reads, by their key in its
#: ``input._CACHE``; each pair is checked to be in that function before it is used.
JSON_DATA = {
    "global_energy_mix": "data/private_infra/global_energy_mix.json",
    "carbon_intensity_per_source": "data/private_infra/carbon_intensity_per_source.json",
    "nordic_country_energy_mix": "data/private_infra/nordic_emissions.json",
    "china_provincial_emissions": "data/private_infra/2023/china_provincial_emissions.json",
}
#: The cache file's format; another is read as no cache.
CACHE_FORMAT = 1
#: Two meters made at once in two threads give CodeCarbon its data once.
_GIVING = threading.Lock()


class _LoadedOnDemand(dict[str, Any]):
    """CodeCarbon's ``input._CACHE`` with its JSON data in it: a key it lacks (a CSV
    table) loads all of CodeCarbon's data, with CodeCarbon's own loader, as the first use
    of any of it did."""

    def __init__(self, data: dict[str, Any], load_all: Callable[[], None]) -> None:
        super().__init__(data)
        self._load_all = load_all
        self._lock = threading.Lock()  # CodeCarbon probes the CPU in a thread of its own
        self.loaded_all = False

    def __missing__(self, key: str) -> Any:
        with self._lock:
            if not self.loaded_all:
                self._load_all()  # writes into this dict: it is the module's _CACHE
                self.loaded_all = True
        if key not in self:  # CodeCarbon has no such data: its KeyError, as before
            raise KeyError(key)
        return dict.get(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """As ``self[key]`` (a key it lacks loads all), ``default`` where there is none."""
        try:
            return self[key]
        except KeyError:
            return default


def read_json_data_alone() -> bool:
    """CodeCarbon's JSON data given to it, so that nothing it needs here imports pandas
    (once a process; True where it is so now). False, and CodeCarbon left as it is,
    where it has read its data already, or its loader is not the one known (a newer
    CodeCarbon), or a file cannot be read."""
    try:
        from codecarbon import input as cc_input
    except ImportError:
        return False
    with _GIVING:
        return _give(cc_input)


def _give(cc_input: Any) -> bool:
    if isinstance(getattr(cc_input, "_CACHE", None), _LoadedOnDemand):
        return True
    load_all = getattr(cc_input, "_load_static_data", None)
    resource_path = getattr(cc_input, "_get_resource_path", None)
    if (
        getattr(cc_input, "_STATIC_DATA_LOADED", None) is not False
        or type(getattr(cc_input, "_CACHE", None)) is not dict
        or not callable(resource_path)
        or not _loads_these(load_all)
    ):
        return False
    try:
        data = {}
        for key, name in JSON_DATA.items():
            # as CodeCarbon opens it: in the locale's encoding (open's default), so that a
            # country's name reads as it reads it there
            with open(resource_path(name), encoding="locale") as f:
                data[key] = json.load(f)
    except (OSError, ValueError) as e:
        log.debug("CodeCarbon's data read its own way: %s", e)
        return False
    assert load_all is not None  # checked by _loads_these
    cc_input._CACHE = _LoadedOnDemand({**cc_input._CACHE, **data}, load_all)
    cc_input._STATIC_DATA_LOADED = True
    return True


def _loads_these(load_all: object) -> bool:
    """Whether ``load_all`` is a loader that names every key and file of ``JSON_DATA``
    among its constants, as CodeCarbon 3.3's does: where its data moved (another key,
    another file), the JSON data is not given in its place."""
    code = getattr(load_all, "__code__", None)
    if code is None:
        return False
    constants = set(code.co_consts)
    return all(key in constants and name in constants for key, name in JSON_DATA.items())


def loaded_all() -> bool:
    """Whether CodeCarbon has loaded all its data in this process (pandas among it)."""
    try:
        from codecarbon import input as cc_input
    except ImportError:
        return False
    cache = getattr(cc_input, "_CACHE", None)
    if isinstance(cache, _LoadedOnDemand):
        return cache.loaded_all
    return bool(getattr(cc_input, "_STATIC_DATA_LOADED", False))


def cache_file() -> Path:
    """Where the CPU's TDP as CodeCarbon's table gives it is kept for later processes."""
    from routerllm.paths import cache_root

    return cache_root() / "codecarbon" / "cpu_tdp.json"


@contextmanager
def registry_tdp_from_cache() -> Iterator[None]:
    """While CodeCarbon first probes the hardware: its lookup of the CPU's TDP in its
    table (``TDP._get_cpu_power_from_registry``, the table read with pandas, the name
    matched fuzzily) answered from the cache where it holds this CPU's for this
    CodeCarbon and this table, else made as CodeCarbon makes it, and kept. Where that
    method is not there (another CodeCarbon), nothing changes."""
    try:
        from codecarbon import __version__ as version
        from codecarbon.core.cpu import TDP
        from codecarbon.input import DataSource
    except ImportError:
        yield
        return
    original = TDP.__dict__.get("_get_cpu_power_from_registry")
    try:
        table = Path(DataSource().cpu_power_path)
    except Exception as e:  # noqa: BLE001 - another CodeCarbon: its lookup as it is
        log.debug("CodeCarbon's CPU table not found: %s", e)
        original = None
    if not callable(original):
        yield
        return
    from routerllm.files_identity import files_stamp

    key = {"format": CACHE_FORMAT, "codecarbon": str(version), "table": files_stamp([table])}

    def looked_up(self: Any, cpu_model_raw: str) -> float | None:
        known = _cached(key)
        if cpu_model_raw in known:
            return known[cpu_model_raw]
        power = original(self, cpu_model_raw)
        if power is None or isinstance(power, int | float):  # else not kept: not JSON's
            _keep(key, cpu_model_raw, power)
        return power  # type: ignore[no-any-return]

    TDP._get_cpu_power_from_registry = looked_up  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TDP._get_cpu_power_from_registry = original  # type: ignore[method-assign]


def _cached(key: dict[str, Any]) -> dict[str, float | None]:
    """The TDPs the cache holds for ``key`` ({} where none, or another key's)."""
    from routerllm.files import read_kept_json

    data = read_kept_json(cache_file)
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
        return {}
    tdp = data.get("tdp_w")
    if not isinstance(tdp, dict):
        return {}
    return {
        name: value
        for name, value in tdp.items()
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    }


def _keep(key: dict[str, Any], cpu_model: str, power: float | None) -> None:
    """``cpu_model``'s TDP kept with those of other CPUs (a home shared by machines);
    where it cannot be written (a read-only home), the next process looks it up again."""
    from routerllm.files import keep_json

    data = {**key, "tdp_w": {**_cached(key), cpu_model: power}}
    if (error := keep_json(cache_file, data, indent=1, sort_keys=True)) is not None:
        log.debug("CodeCarbon's CPU TDP not kept: %s", error)
