"""The gate of a gated cascade: which unverified answers are worth the larger model's energy.

A cascade (:mod:`routerllm.cascade`) asks the next larger model again when an
answer fails its request's own examples. A gated cascade weighs every
*unverified* answer instead: one that failed its examples, or one to a function
whose prompt gives no examples to check it on. Its gate lets through only the
escalations most worth their energy, so that the cascade stays within an energy
budget: the larger model's chance of solving the request is predicted from the
first model's own hidden state of the prompt (read while it answered,
``GenerationRequest.prompt_state``), a logistic regression over all training
problems whose out-of-fold predictions are then mapped onto the unverified answers
(Platt scaling: the gate decides among unverified answers only, and there the
relation can differ, even in sign); the larger model's energy is expected from
the first model's prompt and answer tokens (a linear fit). An escalation goes
ahead when predicted success per expected kWh clears a threshold: for a budget,
that ratio buys the most expected solved requests (the greedy rule of a
knapsack). The threshold is the one that solves the most training problems
within ``budget`` x the larger model's own generation energy on them, judged on
their out-of-fold predictions (:func:`gate_threshold`); what the cascade spends
besides generating (checking each answer: ``check_kwh`` a request, measured when
the gate is trained) counts against the budget.

:class:`EscalationGate` is trained from a ``routerllm humaneval`` run
(``routerllm train-gate``), saved as a directory, and used by the serving cascade
(``cascade.gate`` in a config); the experiment's ``gated-cascade`` trains one per
cross-validation fold (:mod:`routerllm.eval.cascade_gate`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import (
    is_finite_number,
    is_non_negative_number,
    is_positive_number,
)
from routerllm.exceptions import RouterLLMError, one_line
from routerllm.files import (
    NPZ_DAMAGE,
    holds,
    locked_folder,
    named_weights,
    read_whole,
    refuse_foreign_folder,
    save_config_and_weights,
)
from routerllm.gate_file import (
    _calibration,
    _corrupt,
    _finite,
    _format_of,
    _pack,
    _positive,
    _setting,
    _unpack,
)
from routerllm.gate_models import EnergyModel, SuccessModel, measured_means
from routerllm.path_checks import (
    file_in_the_way,
    refuse_special_file,
    refuse_unwritable_folder,
    what_is,
)

FORMAT = "routerllm-escalation-gate"
VERSION = 2  # 2 (2026-12-01): trained on unverified answers, not only failed ones


def gate_threshold(
    score: np.ndarray,
    unverified: np.ndarray,
    solved: np.ndarray,
    energy: np.ndarray,
    budget: float,
    overhead_kwh: float = 0.0,
) -> float:
    """The threshold on an escalation ``score`` that solves the most problems (then
    spends the least) when the ``unverified`` problems whose score clears it are escalated,
    within ``budget`` x the second model's own generation energy on these problems,
    less ``overhead_kwh`` a problem (what the cascade spends besides generating: its
    checks). ``solved`` and ``energy`` are (n, 2): the first and the second model's
    outcome and generation energy. ``inf`` escalates nothing (chosen when no
    escalation fits the budget)."""
    limit = budget * float(energy[:, 1].sum()) - overhead_kwh * len(score)
    best = (-1.0, 0.0, math.inf)  # (solved, -energy, threshold)
    for t in np.unique(score[unverified]):
        n_solved, spent = escalation_outcome(unverified & (score >= t), solved, energy)
        if spent <= limit * (1 + 1e-9):
            best = max(best, (n_solved, -spent, float(t)))
    n_solved, spent = escalation_outcome(np.zeros(len(unverified), dtype=bool), solved, energy)
    return max(best, (n_solved, -spent, math.inf))[2]


def escalation_outcome(
    escalated: np.ndarray, solved: np.ndarray, energy: np.ndarray
) -> tuple[float, float]:
    """Problems solved and generation energy spent when the first model answers every
    problem and the second one the ``escalated`` ones (``solved``, ``energy``: (n, 2))."""
    n_solved = float(solved[~escalated, 0].sum() + solved[escalated, 1].sum())
    return n_solved, float(energy[:, 0].sum() + energy[escalated, 1].sum())


def known_kwh(first: str, then: str, kwh: np.ndarray, measured: np.ndarray | None) -> np.ndarray:
    """The generation ``kwh`` (n, 2) of ``first`` and ``then``, an answer not ``measured``
    (False: CodeCarbon failed, its 0 kWh not known; None: every one was) read as its
    model's mean measured kWh; a model with none measured is refused."""
    if measured is None:
        return kwh
    advice = (
        "the gate's energy model and budget read its mean measured energy; "
        "train on a run where CodeCarbon measured it"
    )
    means = measured_means(kwh, measured, [first, then], "training problems", advice)
    return np.where(measured, kwh, means)


def refuse_unmeasured(then: str, kwh: np.ndarray) -> None:
    """Refuse training problems on which ``then`` spent no energy (``kwh``, per problem):
    the budget is a share of it, so the gate would be one of nothing."""
    if not float(kwh.sum()) > 0:
        raise RouterLLMError(
            f"{then}'s generation energy is 0 kWh on all {len(kwh)} training problems, and "
            f"the gate's budget is a share of it; train on a run where {then}'s energy was "
            f"measured (a remote model needs energy_per_token_kwh or co2_per_token_kg in "
            f"the config of the run)"
        )


def percent(budget: float) -> str:
    """A budget as a share in percent, as given: 0.4%, 70.5%, not rounded to 0% or 70%
    (nor 300 digits for a budget of 1e300)."""
    share = budget * 100
    if math.isinf(share) and math.isfinite(budget):  # x 100 overflows the float past 1.8e306
        mantissa, exponent = f"{budget:.4g}".split("e")
        return f"{mantissa}e+{int(exponent) + 2}%"
    return f"{share:.4g}%"


@dataclass(frozen=True)
class GateDecision:
    """Whether an unverified answer goes to the larger model, and why."""

    escalate: bool
    success: float  # the larger model's predicted chance of solving the request
    kwh: float  # its expected generation energy
    threshold: float

    def explain(self, then: str, budget: float) -> str:
        if math.isinf(self.threshold):  # no escalation fits the budget: none could pass
            return f"the gate escalates nothing within a budget of {percent(budget)} of {then}'s energy"
        verdict = "clears" if self.escalate else "is below"
        return (
            f"the gate's predicted success of {then} ({self.success:.2f}) per expected kWh "
            f"({self.kwh:.2g}) {verdict} its threshold for a budget of {percent(budget)} of "
            f"{then}'s energy"
        )


@dataclass(frozen=True)
class EscalationGate:
    """Whether an unverified answer of ``first`` goes to ``then``, within ``budget`` x
    ``then``'s generation energy, the cascade's checks (``check_kwh`` a request)
    included. ``calibration`` holds the training problems'
    out-of-fold scores, whether their first answer is unverified, and both models' outcome
    and generation kWh, (n, 2) each: what :meth:`with_budget` chooses a threshold on."""

    first: str
    then: str
    success: SuccessModel
    energy: EnergyModel
    budget: float
    threshold: float
    calibration: dict[str, np.ndarray]
    about: dict[str, Any] = field(default_factory=dict)
    #: kWh a request of checking ``first``'s answer, measured on the training problems
    #: (0 for a gate saved before it was measured: its budget covers generation only).
    check_kwh: float = 0.0

    def __post_init__(self) -> None:
        if not is_non_negative_number(self.check_kwh):
            raise RouterLLMError(
                f"the energy of a check must be a number of kWh >= 0, got {self.check_kwh!r}"
            )

    @classmethod
    def fit(
        cls,
        first: str,
        then: str,
        states: np.ndarray,
        solved: np.ndarray,
        kwh: np.ndarray,
        tokens: np.ndarray,
        unverified: np.ndarray,
        budget: float,
        folds: int = 5,
        seed: int = 0,
        about: dict[str, Any] | None = None,
        check_kwh: float = 0.0,
        measured: np.ndarray | None = None,
    ) -> EscalationGate:
        """Trained on problems with ``first``'s ``states`` of their prompts (n, d),
        ``solved`` and ``kwh`` (n, 2: each model's outcome and generation energy),
        ``tokens`` (n, 2: ``first``'s prompt and answer tokens) and whether its answer
        is ``unverified`` (it failed the prompt's examples, or the prompt has none);
        checking an answer cost ``check_kwh``. Where ``measured`` (n, 2) is False,
        CodeCarbon failed and that kWh is not known: the energy model is fitted on
        ``then``'s measured ones, and the threshold is chosen (and ``calibration`` holds)
        with an unmeasured one read as its model's mean measured kWh; a model with none
        measured is refused."""
        _check_budget(budget)
        fit = slice(None) if measured is None else measured[:, 1].astype(bool)
        kwh = known_kwh(first, then, kwh, measured)
        refuse_unmeasured(then, kwh[:, 1])
        success, p_oof = SuccessModel.fit(states, solved[:, 1], unverified, folds, seed)
        energy = EnergyModel.fit(tokens[fit], kwh[fit, 1])
        calibration = {"score": p_oof / energy(tokens), "unverified": unverified.astype(bool),
                       "solved": solved.astype(float), "kwh": kwh.astype(float)}  # fmt: skip
        gate = cls(first, then, success, energy, budget, math.inf, calibration, dict(about or {}), check_kwh)  # fmt: skip
        return gate.with_budget(budget)

    @property
    def dim(self) -> int:
        """The width of the states it reads."""
        return len(self.success.regression.coef)

    def with_budget(self, budget: float) -> EscalationGate:
        """The same gate, its threshold chosen for another ``budget``."""
        _check_budget(budget)
        c = self.calibration
        threshold = gate_threshold(c["score"], c["unverified"], c["solved"], c["kwh"], budget, self.check_kwh)  # fmt: skip
        return replace(self, budget=budget, threshold=threshold)

    def on_training(self) -> dict[str, Any]:
        """What the threshold does on its training problems, judged on their out-of-fold
        scores: unverified answers escalated, pass@1, and energy (the checks included) as a
        share of ``then``'s: None where an answer (``about["unmeasured"]``) or the checks
        (``about["check_kwh_estimated"]``) were not measured, and ``estimated_energy_share``
        reads them as the threshold does (None where all were measured)."""
        c = self.calibration
        esc = c["unverified"] & (c["score"] >= self.threshold)
        n_solved, spent = escalation_outcome(esc, c["solved"], c["kwh"])
        share = (spent + self.check_kwh * len(esc)) / float(c["kwh"][:, 1].sum())
        estimated = bool(self.about.get("unmeasured") or self.about.get("check_kwh_estimated"))
        return {
            "problems": len(esc),
            "unverified": int(c["unverified"].sum()),
            "escalated": int(esc.sum()),
            "pass@1": n_solved / len(esc),
            "energy_share": None if estimated else share,
            "estimated_energy_share": share if estimated else None,
            "then_pass@1": float(c["solved"][:, 1].mean()),
        }

    def scores(self, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Predicted success per expected kWh of each problem."""
        return np.asarray(self.success(states) / self.energy(tokens))

    def decide(
        self, state: tuple[float, ...] | None, prompt_tokens: int, answer_tokens: int
    ) -> GateDecision:
        """For one unverified answer of ``first``: its state of the prompt and its tokens."""
        x = np.asarray(state if state is not None else (), dtype=float)
        if x.shape != (self.dim,) or not np.isfinite(x).all():
            raise RouterLLMError(
                f"the gate reads {self.first}'s {self.dim}-wide state of the prompt, got "
                f"{'none' if state is None else f'{x.size} values'}: it was trained on "
                f"another model file"
            )
        tokens = np.array([[prompt_tokens, answer_tokens]], dtype=float)
        success, kwh = float(self.success(x[None])[0]), float(self.energy(tokens)[0])
        score = success / kwh
        return GateDecision(score >= self.threshold, success, kwh, self.threshold)

    # -- saving --------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the gate to the directory ``path`` (config.json + weights.npz)."""
        out = Path(path)
        self.check_saveable(out)
        weights = {"energy_coef": self.energy.coef}
        for name, model in (("regression", self.success.regression), ("on_unverified", self.success.on_unverified)):  # fmt: skip
            weights |= {f"{name}_{k}": v for k, v in _pack(model).items()}
        weights |= {f"calibration_{k}": v for k, v in self.calibration.items()}
        meta = {"format": FORMAT, "version": VERSION, "first": self.first, "then": self.then,
                "budget": self.budget, "check_kwh": self.check_kwh,
                "energy_floor": self.energy.floor, "about": self.about}  # fmt: skip
        try:
            out.mkdir(parents=True, exist_ok=True)
            # As a router's save: an interrupted one leaves the old gate or the new one,
            # and one from another process waits (else the folder could end up with one
            # save's config and the other's weights).
            with locked_folder(out):
                save_config_and_weights(out, meta, weights)
        except OSError as e:
            raise RouterLLMError(f"cannot save the gate to {out}: {e}") from e
        return out

    @staticmethod
    def check_saveable(out: Path) -> None:
        """Refuse a directory that holds another tool's config.json or weights.npz, a
        path that is, or is under, a file, and one where nothing can be created (found
        before the training, not at the save)."""
        if (existing := file_in_the_way(out)) is not None:
            kind = what_is(existing)
            what = f"is {kind}" if existing == out else f"is under {existing}, which is {kind}"
            raise RouterLLMError(f"{out} {what}; save the gate to a directory")
        refuse_unwritable_folder(out, str(out), "nothing was saved")
        refuse_foreign_folder(out, lambda config: _format_of(config) == FORMAT, "escalation gate")

    @classmethod
    def load(cls, path: str | Path) -> EscalationGate:
        """A gate saved by :meth:`save`; a clear error for anything else. One that
        another process saves while it is read is read again, as saved now."""
        return read_whole(Path(path) / "config.json", lambda: cls._load(Path(path)))

    @classmethod
    def _load(cls, folder: Path) -> EscalationGate:
        again = f"make it again with routerllm train-gate --run RUN --out {folder}"
        refuse_special_file(config_file := folder / "config.json", again)
        refuse_special_file(weights_file := named_weights(folder), again)
        if not config_file.is_file() or not weights_file.is_file():
            raise RouterLLMError(
                f"{folder} is not a saved gate (it needs config.json and weights.npz); "
                f"make one with routerllm train-gate --run RUN --out {folder}"
            )
        try:
            meta = json.loads(config_file.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("not a gate's config.json")
            version = meta.get("version")
            # a newer RouterLLM's gate: training one here would replace it
            if isinstance(version, int | float) and is_finite_number(version) and version > VERSION:  # fmt: skip
                raise ValueError(
                    f"it was saved by a newer RouterLLM (version {version}, this one reads "
                    f"{VERSION}); upgrade routerllm to use it"
                )
            if version != VERSION:
                raise ValueError(
                    f"it was saved as version {meta.get('version')!r}, this RouterLLM reads "
                    f"{VERSION}; train it again: routerllm train-gate --run RUN --out {folder}"
                )
            named = meta.get("weights_sha256")  # absent in gates saved before it was recorded
            if named is not None and not holds(weights_file, named):  # before numpy parses it
                raise ValueError(
                    "weights.npz does not match config.json (an interrupted save, or a file "
                    f"changed by hand); make it again: routerllm train-gate --run RUN --out {folder}"
                )
        except RecursionError as e:  # json's parser recurses: [[[[...]]]] (a RuntimeError)
            raise _corrupt(folder, "config.json is not valid JSON (nested too deeply)") from e
        except json.JSONDecodeError as e:
            raise _corrupt(folder, f"config.json is not valid JSON ({e})") from e
        except (OSError, ValueError) as e:
            raise RouterLLMError(f"cannot load the gate in {folder}: {e}") from e
        try:
            with np.load(weights_file, allow_pickle=False) as npz:
                w = {k: np.asarray(npz[k]) for k in npz.files}
        except OSError as e:
            raise RouterLLMError(f"cannot load the gate in {folder}: {e}") from e
        except (ValueError, *NPZ_DAMAGE) as e:
            raise RouterLLMError(
                f"cannot load the gate in {folder}: corrupt weights.npz ({one_line(e)})"
            ) from e
        try:
            gate = cls(
                first=_setting(meta, "first", str),
                then=_setting(meta, "then", str),
                success=SuccessModel(
                    _unpack(w, "regression"), _unpack(w, "on_unverified", width=1)
                ),
                energy=EnergyModel(
                    _finite(w, "energy_coef", (3,)), _positive(meta, "energy_floor")
                ),
                budget=_setting(meta, "budget", float),
                threshold=math.inf,
                calibration=_calibration(w),
                about=dict(meta.get("about") or {}),
                check_kwh=_setting(meta, "check_kwh", float) if "check_kwh" in meta else 0.0,
            )
            return gate.with_budget(gate.budget)
        except (RouterLLMError, TypeError, ValueError) as e:  # _Incomplete among them
            raise _corrupt(folder, one_line(e)) from e


def _check_budget(budget: float) -> None:
    if not is_positive_number(budget):
        raise RouterLLMError(
            f"the gate's budget must be a share of the larger model's energy > 0, got {budget!r}"
        )
