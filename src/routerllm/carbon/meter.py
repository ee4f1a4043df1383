"""Meters that measure the energy and CO2 of one component of one request.

``Measurement`` is what a meter gives (and how it was measured: ``method``);
``create_meter`` gives ``CodeCarbonMeter`` (``codecarbon_meter.py``: this machine
measured with CodeCarbon's offline tracker) where carbon tracking is on, else
``NullMeter``, which only times blocks. ``per_token_estimate`` covers what cannot be
metered here (remote HTTP backends) from the per-token figures in the model config, at
the grid intensity of the configured country (``check_country``).
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from routerllm.config import CarbonConfig, ModelConfig
from routerllm.exceptions import ConfigError

log = logging.getLogger(__name__)

COMPONENTS = ("router_inference", "model_loading", "llm_inference")
PER_TOKEN = "estimate:per-token"  # the method of figures computed from the config's per-token ones
# a remote answer's whose endpoint did not say how many tokens it generated: its tokens
# estimated from its prompt's and text's characters (a streamed text's pieces where
# more), its figures and cost from those
FROM_TEXT = "estimate:from-text"
# such an answer's as logged until 2026-12-06: at 0 tokens, its figures and cost not known
NO_USAGE = "estimate:no-usage"
# a remote answer's whose model has no per-token figures (energy_per_token_kwh,
# co2_per_token_kg): its tokens are known, its energy not (logged as 0 kWh)
NO_FIGURES = "estimate:no-figures"
# both: a remote answer without usage of a model without figures, its tokens (and cost)
# estimated from its text, its energy not known
NO_FIGURES_FROM_TEXT = "estimate:no-figures:from-text"
#: The generation methods whose tokens were estimated from the text, not counted.
TOKENS_FROM_TEXT = (FROM_TEXT, NO_FIGURES_FROM_TEXT)
#: The generation methods of a model without per-token figures: energy not known.
WITHOUT_FIGURES = (NO_FIGURES, NO_FIGURES_FROM_TEXT)
CACHED = "cache"  # the method of the components a cached answer did not spend
NOT_MEASURED = "none"  # the method of every component with carbon tracking off: 0 kWh, not measured
# a block CodeCarbon failed to measure: 0 kWh logged, not measured
CODECARBON_FAILED = "codecarbon:failed"
WORLD_INTENSITY_G_PER_KWH = 475.0  # IEA world average, used when the country is unknown
#: How CodeCarbon measured (``codecarbon_meter._power_method``): ``codecarbon:<how>``.
CODECARBON_HOWS = ("measured", "load-estimate", "tdp-estimate")
#: Ends the method of figures CodeCarbon took of RouterLLM's process and its children
#: (carbon.tracking_mode: process); the whole machine's have no suffix, as before.
PROCESS_SCOPE = ":process"


def codecarbon_method(how: str, tracking_mode: str) -> str:
    """The method of figures CodeCarbon took ``how`` (``CODECARBON_HOWS``) in
    ``tracking_mode``: ``codecarbon:load-estimate``, ``codecarbon:load-estimate:process``."""
    return f"codecarbon:{how}{PROCESS_SCOPE if tracking_mode == 'process' else ''}"


def codecarbon_methods(tracking_mode: str) -> tuple[str, ...]:
    """Every method CodeCarbon's figures of ``tracking_mode`` are logged with."""
    return tuple(codecarbon_method(how, tracking_mode) for how in CODECARBON_HOWS)


def is_measured(method: str | None, energy_kwh: float, co2_kg: float) -> bool:
    """Whether figures recorded with ``method`` were measured or estimated: not carbon
    tracking off's 0 kWh (``none``) nor a failed CodeCarbon task's; None (figures stored
    before their method was recorded) counts as measured."""
    return method not in (NOT_MEASURED, CODECARBON_FAILED) or bool(energy_kwh or co2_kg)


@dataclass(frozen=True)
class Measurement:
    """Energy and emissions of one component of one request."""

    component: str
    duration_s: float
    energy_kwh: float
    co2_kg: float
    method: str  # codecarbon:<how>[:process], estimate:per-token, none, cache
    #: The share (0..1) of the machine's CPU that other processes used during the block
    #: (``carbon/cpu_share.py``); None where not known (not Linux, a block too short to
    #: tell, a figure not measured here). Above ``CONTENDED_SHARE`` a load-based energy
    #: includes their work.
    #: Not a logged figure, so not compared: a measurement read back from the log equals
    #: the one that was logged.
    others_cpu_share: float | None = field(default=None, compare=False)

    @property
    def contended(self) -> bool:
        """Whether it was measured while other processes used more than
        ``cpu_share.CONTENDED_SHARE`` of the machine's CPU."""
        from routerllm.carbon.cpu_share import contended

        return contended(self.others_cpu_share)

    @property
    def measured(self) -> bool:
        """Whether its energy was measured or estimated: not carbon tracking off's 0 kWh
        (method ``none``) nor that of a CodeCarbon task that failed (the report's rule)."""
        return is_measured(self.method, self.energy_kwh, self.co2_kg)

    def as_dict(self) -> dict[str, float | bool | None]:
        """As JSON data: an energy and CO2 not measured are None (null), as in reports;
        with the share of the machine's CPU other processes used during it (None: not
        known) and whether that is contention (``contended``): which part of a request
        was measured under it (``route --json``, the server's ``routerllm`` field)."""
        known = self.measured
        return {
            "energy_kwh": self.energy_kwh if known else None,
            "co2_kg": self.co2_kg if known else None,
            "duration_s": self.duration_s,
            "others_cpu_share": self.others_cpu_share,
            "contended": self.contended,
        }

    def plus(self, other: Measurement) -> Measurement:
        """This and ``other``, two measurements of one component (e.g. two models'
        generations for one request)."""
        method = self.method if self.method == other.method else f"{self.method}+{other.method}"
        return Measurement(
            self.component, self.duration_s + other.duration_s,
            self.energy_kwh + other.energy_kwh, self.co2_kg + other.co2_kg, method,
            weighted_share((self, other)),
        )  # fmt: skip

    def scaled(self, share: float) -> Measurement:
        """``share`` of this measurement (a batch's routing, shared between its requests)."""
        return Measurement(
            self.component, self.duration_s * share, self.energy_kwh * share,
            self.co2_kg * share, self.method, self.others_cpu_share,
        )  # fmt: skip


def weighted_share(parts: Iterable[Measurement]) -> float | None:
    """Blocks' others' CPU share together: of the blocks whose share is known, their mean
    weighted by duration (what one reading across them all would give: each block's CPU
    time is its duration times the machine's cores); None where no block's is known."""
    return weighted_cpu_share((m.duration_s, m.others_cpu_share) for m in parts)


def weighted_cpu_share(blocks: Iterable[tuple[float, float | None]]) -> float | None:
    """``weighted_share`` of blocks given as (duration in seconds, others' CPU share or
    None): a HumanEval system's generations, read back from its store."""
    known = [(s, share) for s, share in blocks if share is not None]
    if not known:
        return None
    low, high = min(share for _, share in known), max(share for _, share in known)
    seconds = sum(s for s, _ in known)
    if low == high or seconds <= 0:  # equal shares are theirs exactly (weighted, the
        return high  # mean may differ in the last bit: 0.10000000000000002 for 0.1s)
    mean = sum(share * s for s, share in known) / seconds
    return min(max(mean, low), high)  # within the blocks' own, whatever the rounding


class HasComponents:
    """Mixin for results that carry per-component measurements: their totals."""

    components: dict[str, Measurement]

    @property
    def energy_kwh(self) -> float:
        return sum(m.energy_kwh for m in self.components.values())

    @property
    def co2_kg(self) -> float:
        return sum(m.co2_kg for m in self.components.values())

    @property
    def others_cpu_share(self) -> float | None:
        """The share of the machine's CPU other processes used while its components were
        measured (``weighted_share``); None where no component's is known."""
        return weighted_share(self.components.values())

    @property
    def contended(self) -> bool:
        """Whether it was measured while other processes used more than
        ``cpu_share.CONTENDED_SHARE`` of the machine's CPU: its energy may include theirs."""
        from routerllm.carbon.cpu_share import contended

        return contended(self.others_cpu_share)


class _Slot:
    """Filled with the measurement when the ``measure`` block exits."""

    result: Measurement


class CarbonMeter(ABC):
    method = NOT_MEASURED
    #: The country whose grid its CO2 is computed for; None where it computes none.
    country_iso_code: str | None = None

    @abstractmethod
    @contextmanager
    def measure(self, component: str) -> Iterator[_Slot]:
        """Measure the enclosed block; the yielded slot holds the result afterwards, also
        where the block raised (what a failed load spent)."""

    def zero(self, component: str) -> Measurement:
        return Measurement(component, 0.0, 0.0, 0.0, self.method)

    def turn(self) -> AbstractContextManager[object]:
        """Held by a caller that takes another lock before a measured block (a model's):
        a meter whose blocks run one at a time is always taken first, so that two
        threads cannot each hold what the other waits for. Nothing by default."""
        return nullcontext()

    def check_open(self) -> None:  # noqa: B027 - optional hook, most meters hold nothing
        """A clear error where the meter can measure nothing more (closed)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most meters hold nothing
        """Release the tracker."""


class NullMeter(CarbonMeter):
    """Durations only (carbon tracking disabled)."""

    @contextmanager
    def measure(self, component: str) -> Iterator[_Slot]:
        from routerllm.carbon.cpu_share import others_share, sample_cpu

        slot = _Slot()
        start, cpu = time.perf_counter(), sample_cpu()
        try:
            yield slot
        finally:
            slot.result = Measurement(component, time.perf_counter() - start, 0.0, 0.0,
                                      self.method, others_share(cpu, sample_cpu()))  # fmt: skip


def check_country(country_iso_code: str) -> str:
    """The country's code as CodeCarbon knows it ("FRA", not "fra"); a clear error for
    one it does not know, whose grid CodeCarbon and the per-token estimates would
    silently take for the world average."""
    if not isinstance(country_iso_code, str):  # None, a number: an AttributeError below
        raise ConfigError(
            f"country_iso_code must be an ISO 3166 alpha-3 code such as FRA (the config's "
            f"carbon.country_iso_code), got {type(country_iso_code).__name__}"
        )
    country_iso_code = country_iso_code.upper()
    if _energy_mix() and country_iso_code not in _energy_mix():
        raise ConfigError(
            f"carbon.country_iso_code {country_iso_code!r} is not a country CodeCarbon "
            f"knows; use an ISO 3166 alpha-3 code such as USA, FRA, DEU or ITA"
        )
    return country_iso_code


def create_meter(config: CarbonConfig) -> CarbonMeter:
    """CodeCarbon when enabled, else a meter that only times blocks. The country is
    checked either way: remote models' per-token estimates and the predictions price
    CO2 at its grid's intensity."""
    if config.enabled:
        from routerllm.carbon.codecarbon_meter import CodeCarbonMeter

        return CodeCarbonMeter(config.country_iso_code, config.tracking_mode)
    check_country(config.country_iso_code)
    return NullMeter()


#: CodeCarbon's per-country grid data, within its package.
ENERGY_MIX_FILE = ("data", "private_infra", "global_energy_mix.json")


@cache
def _energy_mix() -> dict[str, Any]:
    """CodeCarbon's per-country grid data, keyed by ISO 3166 alpha-3 code ({} without it).
    Read from its package's folder, found without importing it: ``importlib.resources``
    imported CodeCarbon (its tracker, psutil, rapidfuzz, pynvml: 0.15-0.26 s of a
    ``report``'s CPU, 2026-12-07) in every command that checks the country, ``report``
    too, which measures nothing."""
    from routerllm.paths import package_dir

    try:
        folder = package_dir("codecarbon")
        if folder is not None and (path := folder.joinpath(*ENERGY_MIX_FILE)).is_file():
            text = path.read_text(encoding="utf-8")
        else:  # not installed, or not as files (a zip): as a package's resource
            resource = resources.files("codecarbon")
            for part in ENERGY_MIX_FILE:
                resource = resource / part
            text = resource.read_text(encoding="utf-8")
        mix = json.loads(text)
        return mix if isinstance(mix, dict) else {}
    except (ImportError, ModuleNotFoundError, OSError, ValueError):
        return {}


@cache
def grid_intensity_g_per_kwh(country_iso_code: str) -> float:
    """Carbon intensity of the country's grid from CodeCarbon's data (g CO2/kWh)."""
    if not _energy_mix():  # without CodeCarbon no country is known, nor checked
        log.warning(
            "CodeCarbon is not installed: CO2 estimated from energy is priced at the world "
            "average, %.0f g/kWh, not at the grid of carbon.country_iso_code %s; install "
            "it with: pip install 'routerllm[carbon]'",
            WORLD_INTENSITY_G_PER_KWH,
            country_iso_code,
        )
        return WORLD_INTENSITY_G_PER_KWH
    try:
        return float(_energy_mix()[country_iso_code.upper()]["carbon_intensity"])
    except (KeyError, ValueError, TypeError):
        return WORLD_INTENSITY_G_PER_KWH


@dataclass(frozen=True)
class Grid:
    """The electricity grid a request's CO2 was computed for: CodeCarbon's country code
    (carbon.country_iso_code), its region ("" where none is given: RouterLLM gives
    CodeCarbon none, so it prices the whole country), and the intensity CodeCarbon
    states for it (g CO2/kWh), at which CodeCarbon turned the energy into CO2 and the
    per-token estimates priced theirs."""

    country: str
    region: str = ""
    intensity_g_per_kwh: float = 0.0

    @property
    def label(self) -> str:
        """``FRA 56.04 g/kWh`` (``USA/texas 396.5 g/kWh`` with a region): the report's key."""
        region = f"/{self.region}" if self.region else ""
        return f"{self.country}{region} {self.intensity_g_per_kwh:.4g} g/kWh"

    def as_dict(self) -> dict[str, str | float | None]:
        """As JSON data: a region not given is None (null)."""
        return {
            "country": self.country,
            "region": self.region or None,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
        }


#: The report's key of the requests logged before their grid was recorded.
GRID_NOT_RECORDED = "not recorded"


def check_meter_country(meter: CarbonMeter | None, country: str) -> None:
    """Refuse a ``meter`` given for another grid than ``country`` (the config's, checked):
    one request's CO2 would mix two grids, a local model's measured at the meter's and a
    remote one's estimated at the config's. Its country is read in any case ("fra" is
    FRA); a meter of no country is taken."""
    metered = None if meter is None or meter.country_iso_code is None else meter.country_iso_code.upper()  # fmt: skip
    if metered not in (None, country):
        raise ConfigError(
            f"meter measures CO2 at the grid of {metered}, not at carbon.country_iso_code "
            f"{country}'s, at which remote models' per-token estimates and the predictions "
            f"price it; set carbon.country_iso_code: {metered} or give a meter for {country}"
        )


def grid_of(country_iso_code: str) -> Grid:
    """The grid of ``country_iso_code`` (checked) as CodeCarbon prices it."""
    country = check_country(country_iso_code)
    return Grid(country, "", grid_intensity_g_per_kwh(country))


def per_token_estimate(
    component: str,
    model: ModelConfig,
    tokens: int,
    duration_s: float,
    country_iso_code: str,
    prompt_tokens: int = 0,
) -> Measurement:
    """Energy/CO2 of ``tokens`` generated tokens, after reading ``prompt_tokens``, from the
    model's per-token figures.

    The figures per generated token include reading the prompt (as the seeds give them,
    and as benchmarks/measure_local_models.py's first table measures them, on short
    prompts), unless the model has a figure per prompt token (``energy_per_prompt_token_kwh``,
    ``co2_per_prompt_token_kg``): then its ``prompt_tokens`` count at that one, apart.
    Of each kind, a CO2 figure without an energy figure gives the energy at the grid's
    intensity, and an energy figure without a CO2 one the CO2."""
    intensity = grid_intensity_g_per_kwh(country_iso_code) / 1000.0  # kg per kWh
    energy, co2 = _at(model.energy_per_token_kwh, model.co2_per_token_kg, tokens, intensity)
    if model.prompt_figures:
        read = _at(model.energy_per_prompt_token_kwh, model.co2_per_prompt_token_kg, prompt_tokens, intensity)  # fmt: skip
        energy, co2 = energy + read[0], co2 + read[1]
    # without figures its 0 kWh is no estimate (a prompt figure alone is refused by config)
    return Measurement(component, duration_s, energy, co2, PER_TOKEN if model.generation_figures else NO_FIGURES)  # fmt: skip


def _at(kwh: float | None, kg: float | None, tokens: int, intensity: float) -> tuple[float, float]:
    """``tokens`` at ``kwh`` and ``kg`` a token (either may be None: from the other)."""
    energy = (kwh or 0.0) * tokens
    if kg is None:
        return energy, energy * intensity
    if kwh is None and intensity > 0:
        energy = kg * tokens / intensity
    return energy, kg * tokens
