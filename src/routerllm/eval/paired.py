"""How much one run's comparison depends on which problems were drawn.

A paired bootstrap over problems: every resample draws the problems again with
replacement, the same draw for every system, and recomputes each system's pass@1
minus the reference's and its share of the reference's energy. The intervals say
how far another set of problems of the same kind could move the figures; they do
not cover the routers' training (their folds are fixed by the run's seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routerllm.eval.humaneval_run import SystemResult
from routerllm.exceptions import RouterLLMError

RESAMPLES = 2000


@dataclass(frozen=True)
class Target:
    """What routing aims at here: pass@1 at most ``margin`` below the reference's at no
    more than ``energy_share`` of its energy (by default 2 points at 70 %)."""

    margin: float = 0.02
    energy_share: float = 0.7

    def met(self, diff: np.ndarray | float, share: np.ndarray | float) -> np.ndarray:
        # A hair of tolerance on both: 0.700 - 0.720 is -0.02 exactly, not -0.0200000001,
        # and 0.021 / 0.03 kWh is 70 % exactly, not 0.7000000000000001.
        return (np.asarray(diff) >= -self.margin - 1e-9) & (
            np.asarray(share) <= self.energy_share + 1e-9
        )


def against_reference(
    reference: SystemResult,
    systems: Sequence[SystemResult],
    target: Target,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each system against ``reference`` on the same problems: pass@1 difference and
    energy share (total energy: each problem's generation, plus the run's model loading
    and router inference, which a resample keeps as they are), each with its 90 %
    paired-bootstrap interval, whether the run meets ``target`` and in what share of
    the resamples it does. Intervals are percentile intervals: the 5th and 95th
    percentiles of the resampled figures (numpy's default linear interpolation), drawn
    with ``seed``. Where ``reference`` or the system spent no measured energy (not
    measured, or 0 kWh: CodeCarbon failed, counted as spending nothing), the share and what depends on it
    are None, and ``energy_measured`` says whether the system's was measured."""
    n = len(reference.passed)
    for s in systems:
        if len(s.passed) != n:
            raise RouterLLMError(f"{s.name} was scored on {len(s.passed)} problems, not {n}")
        if len(s.problem_kwh) != n:
            raise RouterLLMError(
                f"{s.name} has the energy of {len(s.problem_kwh)} problems, not {n}"
            )
    idx = np.random.default_rng(seed).integers(0, n, (resamples, n))

    def drawn(s: SystemResult) -> tuple[float, float, np.ndarray, np.ndarray]:
        passed, kwh = np.asarray(s.passed, float), np.asarray(s.problem_kwh, float)
        fixed = s.energy_kwh - kwh.sum()  # loading and routing
        return passed.mean(), s.energy_kwh, passed[idx].mean(axis=1), kwh[idx].sum(axis=1) + fixed

    ref_pass, ref_kwh, ref_passes, ref_kwhs = drawn(reference)
    # A reference measured at 0 kWh (CodeCarbon failed, counted as spending nothing) has
    # no energy share, in the run or in a resample that draws only such problems: NaN
    # there, None in the figures, never a ZeroDivisionError after every answer is made.
    spent = ref_kwhs > 0
    out: dict[str, dict[str, Any]] = {}
    for s in systems:
        p, kwh, passes, kwhs = drawn(s)
        measured = s.energy_known and kwh > 0
        diff, diffs = p - ref_pass, passes - ref_passes
        shares = np.divide(kwhs, ref_kwhs, out=np.full(resamples, np.nan), where=spent)
        out[s.name] = {
            "pass@1_diff": float(diff),
            "pass@1_diff_90ci": [float(v) for v in np.percentile(diffs, [5, 95])],
            "energy_share": None,
            "energy_share_90ci": None,
            "meets_target": None,
            "resamples_meeting_target": None,
            "energy_measured": measured,
        }
        # A system not measured, or measured at 0 kWh, spent no *measured* energy: a share
        # of 0 % would say it met the energy target by failing to be measured.
        if ref_kwh > 0 and measured:
            share = kwh / ref_kwh
            out[s.name] |= {
                "energy_share": float(share),
                "energy_share_90ci": [float(v) for v in np.percentile(shares[spent], [5, 95])]
                if spent.any()
                else None,
                "meets_target": bool(target.met(diff, share)),
                # a resample without a share does not show that the target is met
                "resamples_meeting_target": float(target.met(diffs, shares).mean()),
            }
    return out
