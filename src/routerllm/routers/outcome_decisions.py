"""How an outcome router's predictions become each prompt's model: by the decision rule
and its knob (``decision.choose``), or a second knob for a share of the prompts drawn by
their hash, or drawn from a fixed mix that calibration found better; and how each
decision's reason says which. ``OutcomeRouter`` (``outcome.py``) inherits it; the
settings are what ``calibrate`` (``calibration.py``) sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from routerllm.checks import is_finite_number
from routerllm.exceptions import RouterLLMError
from routerllm.routers.decision import choose, mix_choices, prompt_draws


class OutcomeDecisions:
    """An outcome router's decision settings (``mode``, ``knob``, ``second_knob`` and
    ``second_share``, ``mix``), and each prompt's model chosen by them."""

    # the router's, set by Router and OutcomeRouter
    model_names: list[str]
    seed: int
    options: dict[str, Any]
    costs: np.ndarray
    mode: str
    knob: float
    mix: np.ndarray | None
    second_knob: float | None
    second_share: float

    def _decision_note(self) -> str:
        """What a decision's reason adds about how the values were drawn."""
        return ""

    def set_mix(self, mix: Mapping[str, float] | None) -> None:
        """Route by drawing from the fixed mix ``{model: probability}`` (None: by the
        predictions and the knob)."""
        if mix is None:
            self.mix = None
        elif not isinstance(mix, Mapping):
            raise RouterLLMError(
                f"mix must map model names to probabilities, e.g. "
                f"{{{self.model_names[0]!r}: 1.0}}, got {mix!r}"
            )
        else:
            unknown = [n for n in mix if n not in self.model_names]
            weights = np.array([float(mix.get(n, 0.0)) for n in self.model_names])
            if (
                unknown
                or not np.all(np.isfinite(weights))
                or weights.min() < 0
                or weights.sum() <= 0
            ):
                raise RouterLLMError(
                    f"bad mix {dict(mix)!r}: probabilities >= 0 for the router's models "
                    f"({', '.join(self.model_names)}), not all 0"
                )
            self.mix = weights / weights.sum()
        self.options["mix"] = None if self.mix is None else {
            n: float(w) for n, w in zip(self.model_names, self.mix, strict=True) if w > 0
        }  # fmt: skip

    def set_second_knob(self, knob: float | None, share: float) -> None:
        """Route a ``share`` of requests (drawn by a hash of each prompt) with ``knob``
        instead of the router's knob, same rule: a random mix of two settings reaches
        the points between them on the router's quality-cost curve, which one knob
        cannot (what calibration sets for a cost or quality target)."""
        if not (is_finite_number(share) and 0 <= share <= 1):
            raise RouterLLMError(f"second_share must be a number in [0, 1], got {share!r}")
        if share > 0 and not is_finite_number(knob):
            raise RouterLLMError(f"second_knob must be a finite number, got {knob!r}")
        self.second_knob = None if share == 0 else float(knob)  # type: ignore[arg-type]
        self.second_share = float(share) if self.second_knob is not None else 0.0
        self.options.update(second_knob=self.second_knob, second_share=self.second_share)

    def _knobs(self, prompts: Sequence[str]) -> np.ndarray:
        """The knob each prompt is routed with."""
        knobs = np.full(len(prompts), self.knob)
        if self.second_knob is not None:
            second = prompt_draws(prompts, f"{self.seed}\0knob") < self.second_share
            knobs[second] = self.second_knob
        return knobs

    def _mixing(self, mask: np.ndarray) -> bool:
        """Whether to draw from the mix: one is set and some model of it is allowed."""
        return self.mix is not None and float(self.mix[mask].sum()) > 0

    def _choices(
        self, prompts: Sequence[str], pred: np.ndarray, mask: np.ndarray, knobs: np.ndarray
    ) -> np.ndarray:
        """Each prompt's model: drawn from the fixed mix, else chosen with its knob."""
        if self._mixing(mask):
            assert self.mix is not None
            return mix_choices(prompts, self.mix, self.seed, mask)
        idx = np.empty(len(prompts), dtype=int)
        for knob in np.unique(knobs):
            rows = knobs == knob
            idx[rows] = self._choose(pred[rows], float(knob), mask)
        return idx

    def _choose(
        self, pred: np.ndarray, knob: float, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """Each row's model by the decision rule and ``knob``, among the ``allowed``."""
        return choose(pred, self.costs, self.mode, knob, allowed=allowed)

    def _hows(self, mask: np.ndarray, knobs: np.ndarray) -> list[str]:
        """How each prompt's model was chosen, for its decision's reason."""
        if self._mixing(mask):
            assert self.mix is not None
            drawn = self.mix * mask  # what mix_choices draws from: the models that may serve
            shares = ", ".join(
                f"{n} {w:.0%}"
                for n, w in zip(self.model_names, drawn / drawn.sum(), strict=True)
                if w > 0
            )
            of = "" if mask[self.mix > 0].all() else " (of its models that may serve)"
            how = f"drawn from the fixed mix {shares}{of}, which calibration found better"
            return [how] * len(knobs)
        both = "" if self.second_knob is None else (
            f"; {self.second_share:.0%} of requests, drawn by their hash, take "
            f"{self.second_knob:g} and the rest {self.knob:g}"
        )  # fmt: skip
        return [f"{self._rule(k)}{both}{self._decision_note()}" for k in knobs]

    def _rule(self, knob: float) -> str:
        """The decision rule and its knob, for a decision's reason."""
        return f"{self.mode} {knob:g}"
