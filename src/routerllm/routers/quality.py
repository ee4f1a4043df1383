"""Routers learned from outcome data: predict each model's chance of success
on a prompt, then choose by one cost knob.

Decision rules (``mode``):

* ``lambda``: the model maximising ``predicted success - knob x cost``, with
  costs divided by the largest model cost so the knob is scale-free;
* ``threshold``: the cheapest model whose predicted success is >= ``knob``,
  else the model with the highest predicted success.

Predictors share one interface (``fit(X, Y)``, ``predict(X) -> (n, m)``) on
prompt embeddings: ``KNNRouter`` (mean outcome of the k nearest training
prompts), ``LogisticRouter`` (one logistic regression per model), and
``QualityRouter``, a stacked blend of both (see its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import CandidateModel, Router, RoutingDecision
from routerllm.routers.decision import MODES, choose


class OutcomeRouter(Router):
    """Base of routers that predict per-model success from prompt embeddings."""

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        encoder: str = "minilm",
        mode: str = "lambda",
        knob: float = 0.0,
        costs: Sequence[float] | None = None,
    ) -> None:
        super().__init__(models, seed)
        if mode not in MODES:
            raise RouterLLMError(f"unknown decision mode {mode!r}; valid: {', '.join(MODES)}")
        self.encoder_spec = encoder
        self.mode = mode
        self.knob = float(knob)
        # Per-model decision cost, in the router's (size-sorted) model order.
        if costs is None:
            self.costs = np.array([m.params_b for m in self.models], dtype=float)
        else:
            if len(costs) != len(models):
                raise RouterLLMError(f"{len(costs)} costs for {len(models)} models")
            by_name = dict(zip([m.name for m in models], costs, strict=True))
            self.costs = np.array([by_name[n] for n in self.model_names], dtype=float)
        self.options = {
            "encoder": encoder,
            "mode": mode,
            "knob": self.knob,
            "costs": self.costs.tolist(),
        }
        self._encoder: Any = None
        self.fitted = False

    # -- embeddings ----------------------------------------------------------
    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            from routerllm.encoders import create_encoder

            self._encoder = create_encoder(self.encoder_spec)
        return np.asarray(self._encoder.encode(list(prompts)), dtype=np.float32)

    # -- learning ------------------------------------------------------------
    def fit(
        self,
        prompts: Sequence[str] | None,
        scores: np.ndarray,
        model_names: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> OutcomeRouter:
        """Learn from outcomes ``scores`` (n, m), columns named ``model_names`` (default: the
        router's models in the order they were given)."""
        X = embeddings if embeddings is not None else self.embed(prompts or [])
        Y = self._columns(np.asarray(scores, dtype=float), model_names)
        if len(X) != len(Y) or len(X) == 0:
            raise RouterLLMError(
                f"need as many embeddings as outcome rows, got {len(X)} and {len(Y)}"
            )
        self._fit(np.asarray(X, dtype=np.float32), np.clip(Y, 0.0, 1.0))
        self.fitted = True
        return self

    def _columns(self, Y: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
        names = list(names) if names is not None else [m.name for m in self.models]
        if Y.ndim != 2 or Y.shape[1] != len(names):
            raise RouterLLMError(f"outcomes have shape {Y.shape}, expected (n, {len(names)})")
        missing = [n for n in self.model_names if n not in names]
        if missing:
            raise RouterLLMError(f"outcomes lack columns for: {', '.join(missing)}")
        return Y[:, [names.index(n) for n in self.model_names]]

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted success probability (n, m) of each model, from embeddings."""
        raise NotImplementedError

    def predict_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        return self.predict(self.embed(prompts))

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RouterLLMError(f"router {self.name!r} is not trained: fit it or load a saved one")

    # -- routing -------------------------------------------------------------
    def score(self, prompts: Sequence[str]) -> np.ndarray:
        pred = self.predict_prompts(prompts)
        idx = choose(pred, self.costs, self.mode, self.knob)
        out = np.full(pred.shape, 1e-6)
        out[np.arange(len(idx)), idx] = 1.0
        return out / out.sum(axis=1, keepdims=True)

    def route_batch(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> list[RoutingDecision]:
        mask = self._mask(allowed)
        pred = self.predict_prompts(prompts)
        idx = choose(pred, self.costs, self.mode, self.knob, allowed=mask)
        return [
            RoutingDecision(
                model=self.model_names[i],
                confidence=float(row[i]),
                reason=f"predicted success {row[i]:.2f} ({self.mode} {self.knob:g})",
                router=self.name,
                scores={n: float(p) for n, p in zip(self.model_names, row, strict=True)},
            )
            for i, row in zip(idx, pred, strict=True)
        ]

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set(arrays)
        self.fitted = True

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class KNNRouter(OutcomeRouter):
    """Success of a model on a prompt = its mean outcome on the k most similar training prompts."""

    name = "knn"

    def __init__(
        self, models: Sequence[CandidateModel], seed: int = 0, k: int = 10, **kw: Any
    ) -> None:
        super().__init__(models, seed, **kw)
        self.k = int(k)
        self.options["k"] = self.k

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._set({"X": X, "Y": Y})

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        X = arrays["X"].astype(np.float32)
        self.X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        self.Y = arrays["Y"].astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"X": self.X, "Y": self.Y} if self.fitted else {}

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        sims = Xn @ self.X.T
        k = min(self.k, len(self.X))
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return np.asarray(self.Y[nearest].mean(axis=1), dtype=float)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


class LogisticRouter(OutcomeRouter):
    """One L2-regularised logistic regression per model on the embeddings (solved outcome >= 0.5)."""

    name = "logreg"

    def __init__(
        self, models: Sequence[CandidateModel], seed: int = 0, C: float = 1.0, **kw: Any
    ) -> None:
        super().__init__(models, seed, **kw)
        self.C = float(C)
        self.options["C"] = self.C

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        W, b = fit_logistic(X, Y >= 0.5, self.C, self.seed)
        self._set({"W": W, "b": b})

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        self.W, self.b = arrays["W"].astype(np.float64), arrays["b"].astype(np.float64)

    def state(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b} if self.fitted else {}

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return _sigmoid(X.astype(np.float64) @ self.W + self.b)


def fit_logistic(
    X: np.ndarray, T: np.ndarray, C: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column logistic regressions (scikit-learn's lbfgs); constant columns get a constant."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        from routerllm.exceptions import missing_dependency

        raise missing_dependency("scikit-learn", "learn") from e
    d, m = X.shape[1], T.shape[1]
    W, b = np.zeros((d, m)), np.zeros(m)
    for j in range(m):
        t = T[:, j].astype(int)
        if t.min() == t.max():  # always (or never) solved: nothing to learn
            p = np.clip(t.mean(), 1e-3, 1 - 1e-3)
            b[j] = np.log(p / (1 - p))
            continue
        clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
        clf.fit(X, t)
        W[:, j], b[j] = clf.coef_[0], clf.intercept_[0]
    return W, b
