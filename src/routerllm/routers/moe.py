"""The dynamic mixture-of-experts router (MISSION M3.4; seeds 000-002).

The experts are the router's models. A gating network reads the prompt's
embedding (the outcome routers' encoders and cache): an MLP, by default
d -> 256 -> 128 -> m with ReLU and dropout 0.1, Gaussian noise on its logits
while training, the logits divided by a temperature, then sparse top-k gating
(``top_k``: a softmax over the k largest logits, 0 for the other experts; the
seed's k = 2, by default every expert). The seed's multi-objective adjustment
then multiplies each model's gate by

    0.5 x quality + 0.3 x carbon + 0.2 x cost

(the seed's weights; by default quality alone, README "Defaults, and where they
leave the seed") and renormalises, where each score is in [0, 1] and measured:

* quality: the model's mean outcome on the training data;
* carbon: 1 - its size / the largest size (a dense model's energy per token
  grows with its parameters);
* cost: 1 - its decision cost / the largest (``costs``: money, energy or
  CO2, as it was trained; its size by default).

The gating network learns which models solve a prompt from outcome data
(``training/gating.py``: cross-entropy against the models that solved it, plus
0.01 x the load-balancing loss, AdamW, the best epoch on held-out prompts);
numpy only, so it needs neither torch to train nor to route.

Its predictions (``predict``) are these adjusted gates: each model's share of the
gate, not a probability of success. The uncalibrated rule (``lambda`` 0) takes
the largest, which is the seed's decision. The knob, the decision rules,
calibration to a target and the do-no-harm fallback to the best fixed mix
(M3.9) are those of every outcome router, on these values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from routerllm.checks import is_finite_number, is_integer
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import CandidateModel
from routerllm.routers.decision import rowwise_matmul
from routerllm.routers.outcome import OutcomeRouter

#: A network's (weights, bias) per layer, the last one the experts' logits.
Layers = list[tuple[np.ndarray, np.ndarray]]

MAX_HIDDEN_LAYERS = 4
MAX_WIDTH = 4096
_HIDDEN_ARRAY = re.compile(r"W(\d+)")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def sparse_gates(z: np.ndarray, k: int) -> np.ndarray:
    """Per row, the softmax over the ``k`` largest of ``z`` and 0 elsewhere."""
    n, m = z.shape
    if k >= m:
        return softmax(z)
    top = np.argpartition(-z, k - 1, axis=1)[:, :k]
    gates = np.zeros_like(z)
    np.put_along_axis(gates, top, softmax(np.take_along_axis(z, top, axis=1)), axis=1)
    return gates


def gate_logits(layers: Layers, X: np.ndarray) -> np.ndarray:
    """The network's logits for embeddings ``X`` (no dropout, no noise), row by row:
    the same for a prompt whatever the batch."""
    a = np.asarray(X, dtype=np.float64)
    for W, b in layers[:-1]:
        a = np.maximum(rowwise_matmul(a, W) + b, 0.0)
    W, b = layers[-1]
    return rowwise_matmul(a, W) + b


def layer_arrays(layers: Layers) -> dict[str, np.ndarray]:
    """A network's layers as saved: ``W1``, ``b1``, ... for the hidden ones, ``W_out``
    and ``b_out`` for the experts' logits."""
    arrays = {}
    for i, (W, b) in enumerate(layers[:-1], start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    return arrays | {"W_out": layers[-1][0], "b_out": layers[-1][1]}


class MoERouter(OutcomeRouter):
    """Gating network over the models, sparse top-k gates adjusted by quality, carbon
    and cost; see the module docstring."""

    name = "moe"
    LEARNED_OPTIONS = OutcomeRouter.LEARNED_OPTIONS | {"hidden"}
    MODEL_AXIS_ARRAYS = frozenset({"W_out", "b_out", "quality"})
    PREDICTION = "adjusted gate"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.1,
        noise: float = 0.1,
        temperature: float = 1.0,
        top_k: int | None = None,
        balance_weight: float = 0.01,
        quality_weight: float = 1.0,
        carbon_weight: float = 0.0,
        cost_weight: float = 0.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        batch_size: int = 32,
        epochs: int = 100,
        patience: int = 10,
        **kw: Any,
    ) -> None:
        super().__init__(models, seed, **kw)
        widths = list(hidden) if isinstance(hidden, list | tuple) else None
        if not (
            widths
            and len(widths) <= MAX_HIDDEN_LAYERS
            and all(is_integer(w) and 1 <= w <= MAX_WIDTH for w in widths)
        ):
            raise RouterLLMError(
                f"moe router: hidden must list 1 to {MAX_HIDDEN_LAYERS} layer widths from 1 "
                f"to {MAX_WIDTH}, e.g. [256, 128], got {hidden!r}"
            )
        self.hidden = tuple(int(w) for w in widths)
        numbers = {
            "dropout": (dropout, 0.0, 1.0, "from 0 to below 1"),
            "noise": (noise, 0.0, math.inf, ">= 0"),
            "balance_weight": (balance_weight, 0.0, math.inf, ">= 0"),
            "quality_weight": (quality_weight, 0.0, math.inf, ">= 0"),
            "carbon_weight": (carbon_weight, 0.0, math.inf, ">= 0"),
            "cost_weight": (cost_weight, 0.0, math.inf, ">= 0"),
            "weight_decay": (weight_decay, 0.0, math.inf, ">= 0"),
        }
        for key, (value, low, high, wanted) in numbers.items():
            if not (is_finite_number(value) and low <= value < high):
                raise RouterLLMError(f"moe router: {key} must be a number {wanted}, got {value!r}")
        for key, value in {"temperature": temperature, "learning_rate": learning_rate}.items():
            if not (is_finite_number(value) and value > 0):
                raise RouterLLMError(f"moe router: {key} must be a number > 0, got {value!r}")
        for key, value in {
            "top_k": 1 if top_k is None else top_k, "batch_size": batch_size, "epochs": epochs,
            "patience": patience,
        }.items():  # fmt: skip
            if not (is_integer(value) and value >= 1):
                raise RouterLLMError(
                    f"moe router: {key} must be a whole number >= 1, got {value!r}"
                )
        self.settings: dict[str, Any] = {
            "hidden": list(self.hidden),
            "dropout": float(dropout),
            "noise": float(noise),
            "temperature": float(temperature),
            "top_k": None if top_k is None else int(top_k),
            "balance_weight": float(balance_weight),
            "quality_weight": float(quality_weight),
            "carbon_weight": float(carbon_weight),
            "cost_weight": float(cost_weight),
            "learning_rate": float(learning_rate),
            "weight_decay": float(weight_decay),
            "batch_size": int(batch_size),
            "epochs": int(epochs),
            "patience": int(patience),
        }
        self.options.update(self.settings)
        self.layers: Layers = []
        self.quality = np.zeros(len(self.models))

    @property
    def _top_k(self) -> int:
        k = self.settings["top_k"]
        return len(self.models) if k is None else int(k)

    # -- the multi-objective adjustment --------------------------------------
    def objective_scores(self) -> dict[str, np.ndarray]:
        """Per model (the router's order), each objective's score in [0, 1] and the
        multiplier its gate is adjusted by (module docstring)."""
        sizes = np.array([m.params_b for m in self.models], dtype=float)
        carbon = 1.0 - sizes / sizes.max() if sizes.max() > 0 else np.ones_like(sizes)
        top = self.costs.max()
        cost = 1.0 - self.costs / top if top > 0 else np.ones_like(self.costs)
        s = self.settings
        multiplier = (
            s["quality_weight"] * self.quality
            + s["carbon_weight"] * carbon
            + s["cost_weight"] * cost
        )
        return {"quality": self.quality, "carbon": carbon, "cost": cost, "multiplier": multiplier}

    def gates(self, X: np.ndarray) -> np.ndarray:
        """The sparse top-k gates (n, m) for embeddings ``X``, before the adjustment."""
        self._check_fitted()
        return self._gates(self.check_embeddings(X))

    def _gates(self, X: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """The gates, over the ``allowed`` experts only where a mask is given: the top k
        of those that may serve, else a prompt whose top experts may not would have no
        gate left to rank the others by."""
        z, k = gate_logits(self.layers, X), self._top_k
        if allowed is not None and not allowed.all():
            z, k = np.where(allowed, z, -np.inf), min(k, int(allowed.sum()))
        # shifted to a top of 0 before the division: divided by a temperature near 0 the
        # logits overflowed to inf, and every gate was NaN; now only those below the top
        # may overflow, to -inf, a gate of 0
        with np.errstate(over="ignore"):
            shifted = (z - z.max(axis=1, keepdims=True)) / self.settings["temperature"]
        return sparse_gates(shifted, k)

    def _decision_inputs(
        self, X: np.ndarray, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        pred = self._predict(X, allowed)
        return pred, pred

    def _predict(self, X: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        gates = self._gates(X, allowed)
        s = self.settings
        if s["quality_weight"] + s["carbon_weight"] + s["cost_weight"] == 0:
            return gates  # no adjustment
        adjusted = gates * self.objective_scores()["multiplier"]
        total = adjusted.sum(axis=1, keepdims=True)
        # a prompt whose top experts all score 0 on every objective keeps its gates
        return np.where(total > 0, adjusted / np.where(total > 0, total, 1.0), gates)

    # -- learning ------------------------------------------------------------
    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        from routerllm.training.gating import GatingArguments, train_gating

        s = self.settings
        arguments = GatingArguments(
            hidden=self.hidden,
            **{k: s[k] for k in GatingArguments.__dataclass_fields__ if k != "hidden" and k in s},
        )
        solved = Y.sum(axis=1, keepdims=True)
        targets = np.divide(Y, solved, out=np.zeros_like(Y), where=solved > 0)
        result = train_gating(X, targets, arguments, self.seed)
        self._set(layer_arrays(result.layers) | {"quality": Y.mean(axis=0)})
        self.selection = {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "validation_loss": result.validation_loss,
            "validation_prompts": result.validation_size,
            "unsolved_prompts": int((solved[:, 0] == 0).sum()),
        }

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        depth = len(self.hidden)
        self.layers = [
            (arrays[f"W{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64))
            for i in range(1, depth + 1)
        ] + [(arrays["W_out"].astype(np.float64), arrays["b_out"].astype(np.float64))]
        self.quality = arrays["quality"].astype(np.float64)
        self.dim = int(self.layers[0][0].shape[0])

    def state(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        return layer_arrays(self.layers) | {"quality": self.quality}

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._check_state(arrays)
        depth = len(self.hidden)
        hidden = sorted(int(m.group(1)) for k in arrays if (m := _HIDDEN_ARRAY.fullmatch(k)))
        if hidden != list(range(1, depth + 1)):
            raise ValueError(
                f"{len(hidden)} hidden layers saved (W1, W2, ...), but the router's hidden "
                f"option {list(self.hidden)} has {depth}"
            )
        wanted = [f"b{i}" for i in range(1, depth + 1)] + ["W_out", "b_out", "quality"]
        if missing := [k for k in wanted if k not in arrays]:
            raise ValueError(f"arrays missing: {', '.join(missing)}")
        first = arrays["W1"]
        if first.ndim != 2 or first.shape[0] == 0:  # its rows: the embeddings' width
            raise ValueError(
                f"layer W1 has shape {first.shape}, expected (embedding width >= 1, "
                f"{self.hidden[0]})"
            )
        widths = [first.shape[0], *self.hidden, len(self.models)]
        names = [f"{i}" for i in range(1, depth + 1)] + ["_out"]
        for i, name in enumerate(names):
            W, b = arrays[f"W{name}"], arrays[f"b{name}"]
            if W.shape != (widths[i], widths[i + 1]) or b.shape != (widths[i + 1],):
                raise ValueError(
                    f"layer W{name} has shapes {W.shape} and {b.shape}, expected "
                    f"{(widths[i], widths[i + 1])} and {(widths[i + 1],)}"
                )
        quality = arrays["quality"]
        if quality.shape != (len(self.models),) or quality.min() < 0 or quality.max() > 1:
            raise ValueError(
                f"quality must be one number in [0, 1] per model, got shape {quality.shape}"
            )
