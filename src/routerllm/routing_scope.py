"""Which models routing may choose, and what the operator's rules make of a choice.

Routing (a router, the override rules, the budgets' step-downs, the cascade's
escalations) chooses among the available models within the budgets' size cap
(``budgets.max_params_b`` or ``level``); a model the caller names is not capped.
The config's override rules (:mod:`routerllm.overrides`) then change the routers'
decisions where they match.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from routerllm.config import AppConfig
from routerllm.exceptions import ModelUnavailableError
from routerllm.routers.base import RoutingDecision

if TYPE_CHECKING:
    from routerllm.overrides import Overrides


def _overrides(config: AppConfig) -> Overrides | None:
    """The config's override rules, ready to apply (None where it has none). Their module
    is imported only where there are rules: it compiles its math words as it is imported
    (12-14 ms of CPU, 2026-12-08), which a config without rules never reads; with rules,
    as before, while the system is built."""
    if not config.overrides:
        return None
    from routerllm.overrides import Overrides

    return Overrides.from_config(config)


class RoutingScope:
    """The models a system's routing may choose (``available``: those that can run)."""

    def __init__(self, config: AppConfig, available: Callable[[], list[str]]) -> None:
        self.config = config
        self.available = available
        self.overrides = _overrides(config)

    def within_cap(self, names: Sequence[str]) -> list[str]:
        """``names`` without the models over the budgets' size cap."""
        cap = self.config.budgets.routed_cap()
        return [n for n in names if cap is None or self.config.model(n).params_b <= cap]

    def routable(self) -> list[str]:
        """The available models within the cap; a clear error where there is none."""
        available = self.available()
        routable = self.within_cap(available)
        if not routable:
            raise ModelUnavailableError(
                f"no available model is within the budgets' cap of "
                f"{self.config.budgets.routed_cap():g}B parameters (budgets.max_params_b or "
                f"level); available: {', '.join(available)}"
            )
        return routable

    def smaller(self, name: str) -> list[str]:
        """The routable models smaller than ``name``, largest first (one of ``name``'s
        tier and size is neither smaller nor larger; models of one size: as listed)."""
        return self._ranked(name, operator.lt, largest_first=True)

    def larger(self, name: str) -> list[str]:
        """The routable models larger than ``name``, smallest first: those the cascade
        may escalate its answer to."""
        return self._ranked(name, operator.gt, largest_first=False)

    def _ranked(
        self,
        name: str,
        keep: Callable[[tuple[int, float], tuple[int, float]], bool],
        largest_first: bool,
    ) -> list[str]:
        """The routable models whose size ``keep`` keeps against ``name``'s, by size."""
        allowed = set(self.within_cap(self.available()))
        here = self.config.model(name).size
        kept = [m for m in self.config.models if m.name in allowed and keep(m.size, here)]
        return [m.name for m in sorted(kept, key=lambda m: m.size, reverse=largest_first)]

    def _capped(self, decision: RoutingDecision) -> RoutingDecision:
        """``decision`` with its reason naming the cap, not "unavailable", where the
        router's first choice runs here but is over the budgets' cap."""
        cap = self.config.budgets.routed_cap()
        if cap is None or not decision.scores:
            return decision
        top = max(decision.scores, key=decision.scores.__getitem__)  # the first maximum
        said = f"; {top} unavailable"
        if (
            not decision.reason.endswith(said)
            or self.config.model(top).params_b <= cap
            or top not in self.available()
        ):
            return decision
        reason = decision.reason[: -len(said)] + f"; {top} is over the budgets' cap of {cap:g}B"
        return dataclasses.replace(decision, reason=reason)

    def overridden(
        self, prompts: Sequence[str], decisions: Sequence[RoutingDecision]
    ) -> list[RoutingDecision]:
        """The routers' decisions as the config's override rules change them."""
        decisions = [self._capped(d) for d in decisions]
        if self.overrides is None:
            return list(decisions)
        routable = self.routable()
        return [self.overrides.apply(p, d, routable) for p, d in zip(prompts, decisions, strict=True)]  # fmt: skip
