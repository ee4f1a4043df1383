"""What a gated cascade spends a problem besides generating (checking the first model's
answers, loading it), as each cross-validation fold's gate budgets it: from the checks
measured on that fold's training problems only, never on its test problems (issue #4:
"do not tune on the test folds"), while the cascade's reported routing cost is every
check it ran."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.carbon.meter import Measurement

#: What the gate's own work spent, measured: seconds, kWh, kg CO2, and the share of the
#: machine's CPU other processes used meanwhile (None: not known).
GateCost = tuple[float, float, float, float | None]
#: Given which answers are unverified and what the cascade spends a problem besides
#: generating (kWh) as each fold's gate budgets it, which may be escalated, the gate's
#: measured cost (``GateCost``), and what it did.
Decide = Callable[[np.ndarray, Sequence[float]], tuple[np.ndarray, GateCost, dict[str, Any]]]


@dataclass(frozen=True)
class Checks:
    """The measured checks of one block of problems (one fold's, or the --train-on run's)."""

    problems: int
    seconds: float
    kwh: float
    co2: float
    measured: bool
    #: the share of the machine's CPU other processes used as they ran (None: not known)
    others_cpu_share: float | None = None

    @classmethod
    def of(cls, m: Measurement, problems: int) -> Checks:
        return cls(problems, m.duration_s, m.energy_kwh, m.co2_kg, m.measured, m.others_cpu_share)


@dataclass(frozen=True)
class FirstAnswers:
    """The first model's answers, by fold (-1: problems that only train): their mean
    measured power reads a block CodeCarbon failed to measure."""

    fold: np.ndarray
    kwh: np.ndarray
    seconds: np.ndarray
    measured: np.ndarray


@dataclass(frozen=True)
class Gate:
    """A cascade's gate: which unverified answers the second model gets (``decide``).
    ``fold`` is each tested problem's cross-validation fold (0 .. ``folds`` - 1): the
    cascade measures the checks a fold at a time, and each fold's gate is told the
    checks of the others. ``train_only`` holds the checks of problems of another set
    that train every fold and are never tested (--train-on), and the first model's
    answers to them."""

    fold: np.ndarray
    folds: int
    decide: Decide
    train_only: tuple[Checks, FirstAnswers] | None = None

    def __call__(
        self, unverified: np.ndarray, overhead_kwh: Sequence[float]
    ) -> tuple[np.ndarray, GateCost, dict[str, Any]]:
        return self.decide(unverified, overhead_kwh)


@dataclass(frozen=True)
class GateOverhead:
    """What a gated cascade spends a problem besides generating: ``measured_kwh``, its
    checks and loading its first model over the tested problems (None where a part was
    not measured: CodeCarbon failed), and ``budgeted_kwh``, each fold's figure from its
    training problems' checks, where a part not measured is read at the first model's
    mean measured power on them."""

    measured_kwh: float | None
    budgeted_kwh: list[float]
    unmeasured: list[str]

    def about(self) -> dict[str, Any]:
        """Its keys in the gate's line of results.json."""
        return {
            "overhead_kwh_per_problem": self.measured_kwh,
            "budgeted_overhead_kwh_per_problem": self.budgeted_kwh,
            "overhead_unmeasured": self.unmeasured,
        }


def gate_overhead(
    first: str,
    blocks: Mapping[int, Checks],
    load: tuple[float, float, bool] | None,
    answers: FirstAnswers,
    folds: int,
) -> GateOverhead:
    """Fold k's overhead a problem: the checks of the other blocks (the other folds', and
    -1's: problems that only train) over their problems, plus loading ``first`` (seconds,
    kWh, whether measured; None where none was stored, as for a remote model) over the
    tested problems. A part CodeCarbon failed on is budgeted at its duration at ``first``'s
    mean measured power over its ``answers`` on fold k's training problems, not as free."""
    from routerllm.gate_models import kwh_at_measured_power

    tested = {f: b for f, b in blocks.items() if f >= 0}
    n = sum(b.problems for b in tested.values())
    load_share = 0.0 if load is None else load[1] / n
    unmeasured = ["the checks"] if not all(b.measured for b in tested.values()) else []
    if -1 in blocks and not blocks[-1].measured:
        unmeasured.append("the checks of the problems that only train")
    if load is not None and not load[2]:
        unmeasured.append(f"loading {first}")
    budgeted = []
    for k in range(folds):
        training = [b for f, b in blocks.items() if f != k]
        if not (problems := sum(b.problems for b in training)):
            raise RouterLLMError(
                f"fold {k} of the gated cascade has no training problems whose checks "
                f"would budget its own; use 2 or more --folds, or --train-on"
            )
        keep = answers.fold != k

        def at_power(seconds: float, what: str, keep: np.ndarray = keep) -> float:
            return kwh_at_measured_power(
                seconds, answers.kwh[keep], answers.seconds[keep], answers.measured[keep],
                first, what,
            )  # fmt: skip

        kwh = sum(b.kwh for b in training if b.measured)
        if not all(b.measured for b in training):
            kwh += at_power(sum(b.seconds for b in training if not b.measured), "the checks")
        share = load_share
        if load is not None and not load[2]:
            share = at_power(load[0], f"loading {first}") / n
        budgeted.append(kwh / problems + share)
    measured = None
    if all(b.measured for b in tested.values()) and (load is None or load[2]):
        measured = (sum(b.kwh for b in tested.values()) + (0.0 if load is None else load[1])) / n
    return GateOverhead(measured, budgeted, unmeasured)
