"""What a routed request returns: the answer, the routing decision, and what each
component of the request spent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routerllm.backends.base import Completion
from routerllm.carbon.meter import CACHED, Grid, HasComponents, Measurement
from routerllm.carbon.predictor import Prediction

FIXED = "fixed"  # the router name of a request whose model the caller chose


@dataclass(frozen=True)
class RoutedResult(Completion, HasComponents):
    """A completion plus the routing decision and its per-component energy, CO2 and cost.

    ``latency_s`` is the whole request (routing + loading + generation), in seconds;
    ``energy_kwh`` (kWh) and ``co2_kg`` (kg CO2) the sums of ``components``, one
    ``Measurement`` each of ``router_inference``, ``model_loading`` and ``llm_inference``;
    ``cost_usd`` (USD) the model's token price where it has one, else its energy at
    ``carbon.electricity_price_usd_per_kwh``, plus the routing's energy at that price;
    ``measured`` is False where carbon tracking was off (its 0 kWh is no
    measurement). ``predicted`` is what the ``CarbonPredictor`` expected of the model
    the request went to first.
    """

    confidence: float = 0.0
    router: str = ""
    reason: str = ""
    cost_usd: float = 0.0
    components: dict[str, Measurement] = field(default_factory=dict)
    request_id: str = ""
    predicted: Prediction | None = None
    cached_from: str = ""  # the request whose answer this is, when it came from the cache
    #: Of its components, the part the models a cascade escalated from spent (as logged:
    #: ``RequestRecord.escalated``); empty where it did not escalate.
    escalated: dict[str, Measurement] = field(default_factory=dict)
    #: Whether the answering model has token prices: its cost is then known, $0 too,
    #: whether or not its energy was measured (else the cost is its energy's).
    token_priced: bool = False
    #: The grid its CO2 was computed for (carbon.country_iso_code's, as CodeCarbon prices it).
    grid: Grid | None = None

    @property
    def measured(self) -> bool:
        """Whether its energy and CO2 were measured (as a report counts a logged request):
        a component was, a cached answer's unspent parts aside."""
        parts = [m for m in self.components.values() if not (m.method == CACHED and not (m.energy_kwh or m.co2_kg))]  # fmt: skip
        return not self.components or any(m.measured for m in parts)

    @property
    def cost_known(self) -> bool:
        """Whether its cost is known: from token prices ($0 too), or from an energy that
        was measured; a cost priced by an energy not measured is not (its 0 is no figure)."""
        return self.measured or bool(self.cost_usd) or self.token_priced

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable form printed by ``routerllm route --json`` (and the demo's,
        and the server's ``routerllm`` field): an energy, CO2 or cost not measured is None
        (null), as in ``Report.as_dict``."""
        measured = self.measured
        return {
            "model": self.model,
            "response": self.text,
            "confidence": self.confidence,
            "router": self.router,
            "reason": self.reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
            "energy_kwh": self.energy_kwh if measured else None,
            "co2_kg": self.co2_kg if measured else None,
            "cost_usd": self.cost_usd if self.cost_known else None,
            "components": {name: m.as_dict() for name, m in self.components.items()},
            "methods": {name: m.method for name, m in self.components.items()},
            "finish_reason": self.finish_reason,
            "request_id": self.request_id,
            "predicted": self.predicted.as_dict() if self.predicted else None,
            "cached_from": self.cached_from,
            "grid": self.grid.as_dict() if self.grid is not None else None,
            # the share of the machine's CPU other processes used while it was measured
            # (None: not known); contended above cpu_share.CONTENDED_SHARE, its energy
            # then including their work
            "others_cpu_share": self.others_cpu_share,
            "contended": self.contended,
        }
