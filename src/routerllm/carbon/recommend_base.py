"""What both halves of the report's recommendations build on (the rules on how the
requests were answered and routed in ``recommend``, those on the spending figures in
``recommend_energy``): the ``Recommendation`` value, the thresholds the rules fire at,
documented in the README ("Recommendations"), and how a share is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Repeated prompts: the requests a cache would have answered, as a share of the requests.
REPEATED_SHARE = 0.05
#: Loading churn: model_loading's share of the energy, with a model loaded more than once.
LOADING_SHARE = 0.20
#: Cut answers: a model's share of answers stopped at max_new_tokens, over at least
#: ``CUT_MIN_REQUESTS`` of its answers whose finish reason is logged.
CUT_SHARE = 0.10
CUT_MIN_REQUESTS = 5
#: Router overhead: router_inference's share of the CO2 (the seeds' claim: under 2 %).
ROUTER_SHARE = 0.02
#: Largest model: the share of requests sent to the largest model without routing, over
#: at least ``LARGEST_MIN_REQUESTS`` requests (one request was "1 of 1 (100.0%)").
LARGEST_SHARE = 0.5
LARGEST_MIN_REQUESTS = 5
#: Estimated or unmeasured energy: its share of the energy (of the requests, unmeasured).
ESTIMATED_SHARE = 0.10

Evidence = dict[str, float | int | str | None]  # None: a figure not measured


@dataclass(frozen=True)
class Recommendation:
    """One change the log calls for: its ``kind`` (a stable snake_case name), what to
    do and why in words, the config key to change ("" where it is not a setting; two,
    comma-separated, where both must change) and
    the figures that triggered it."""

    kind: str
    message: str
    config_key: str = ""
    evidence: Evidence = field(default_factory=dict)


def pct(share: float) -> str:
    """A share as a percentage with one decimal, as the recommendations write it."""
    return f"{share:.1%}"
