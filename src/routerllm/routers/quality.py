"""The predictors of success learned from outcome data, on prompt embeddings
(``fit(X, Y)``, ``predict(X) -> (n, m)``; routing and calibration are
``outcome.OutcomeRouter``'s): ``KNNRouter`` (mean outcome of the k nearest
training prompts), ``LogisticRouter`` (one logistic regression per model), and
``QualityRouter``, a stacked blend of both (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from routerllm.blas_threads import one_thread
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import CandidateModel
from routerllm.routers.outcome import OutcomeRouter

#: How many (prompt, training prompt) similarities kNN holds at once: about 24 MB.
KNN_PAIRS = 1 << 20


class KNNRouter(OutcomeRouter):
    """Success of a model on a prompt = its mean outcome on the k most similar training prompts."""

    name = "knn"

    def __init__(
        self, models: Sequence[CandidateModel], seed: int = 0, k: int = 10, **kw: Any
    ) -> None:
        super().__init__(models, seed, **kw)
        self.k = int(k)
        if self.k < 1:
            raise RouterLLMError(f"knn router: k must be >= 1, got {k!r}")
        self.options["k"] = self.k

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._set({"X": X, "Y": Y})

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        X = arrays["X"].astype(np.float32)
        self.dim = int(X.shape[1])
        self.X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        self.Y = arrays["Y"].astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"X": self.X, "Y": self.Y} if self.fitted else {}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        k = min(self.k, len(self.X))
        # A slice of prompts at a time: all at once, the similarities of every pair (and
        # argpartition's copies) took 24 bytes a pair, 38 GB for 20,000 x 80,000
        rows = max(1, KNN_PAIRS // len(self.X))
        out = np.empty((len(Xn), self.Y.shape[1]))
        for start in range(0, len(Xn), rows):
            sims = Xn[start : start + rows] @ self.X.T
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            out[start : start + rows] = self.Y[nearest].mean(axis=1)
        return out


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
        if not (math.isfinite(self.C) and self.C > 0):
            raise RouterLLMError(f"logreg router: C must be a number > 0, got {C!r}")
        self.options["C"] = self.C

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        W, b = fit_logistic(X, Y >= 0.5, self.C, self.seed)
        self._set({"W": W, "b": b})

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        self.W, self.b = arrays["W"].astype(np.float64), arrays["b"].astype(np.float64)
        self.dim = int(self.W.shape[0])

    def state(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b} if self.fitted else {}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(X.astype(np.float64) @ self.W + self.b)


def fit_logistic(
    X: np.ndarray, T: np.ndarray, C: float, seed: int, share: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regressions of each column of ``T`` on ``X``; constant columns get a constant.

    ``share == 0``: one independent L2-regularised regression per column
    (scikit-learn's lbfgs). ``share > 0``: multi-task regressions whose weights
    are ``w0 + v_j``, a vector common to all models plus each model's own
    deviation, fitted jointly by minimising
    ``sum BCE + (|v_1|^2 + ... + |v_m|^2 + |w0|^2 / share) / (2 C)``.
    A larger ``share`` makes the common part cheaper, pulling the models'
    regressions towards one another: on small outcome sets the models' outcomes
    are strongly correlated (a hard prompt is hard for all), and pooling them
    estimates that direction from m times as many labels.
    """
    d, m = X.shape[1], T.shape[1]
    W, b = np.zeros((d, m)), np.zeros(m)
    varying = [j for j in range(m) if T[:, j].min() != T[:, j].max()]
    for j in set(range(m)) - set(varying):  # always (or never) solved: nothing to learn
        p = np.clip(T[:, j].astype(float).mean(), 1e-3, 1 - 1e-3)
        b[j] = np.log(p / (1 - p))
    if not varying:
        return W, b
    try:
        import scipy.optimize  # noqa: F401  (installed with scikit-learn)
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        from routerllm.exceptions import missing_dependency

        raise missing_dependency("scikit-learn", "learn", e) from e
    # again, now that scipy's BLAS is loaded: the first fit in a process loads it
    with one_thread():
        if share > 0:
            W[:, varying], b[varying] = _fit_shared_logistic(
                X.astype(np.float64), T[:, varying].astype(np.float64), C, share
            )
            return W, b
        for j in varying:
            clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
            clf.fit(X, T[:, j].astype(int))
            W[:, j], b[j] = clf.coef_[0], clf.intercept_[0]
    return W, b


def _fit_shared_logistic(
    X: np.ndarray, T: np.ndarray, C: float, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``share > 0`` case of :func:`fit_logistic` (L-BFGS on the joint objective / n)."""
    from scipy.optimize import minimize

    n, d = X.shape
    m = T.shape[1]
    lam, root = 1.0 / (2.0 * C * n), float(np.sqrt(share))
    # w0 = root * u keeps the problem well conditioned for any share (|w0|^2 / share = |u|^2)

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        u, V, b = p[:d], p[d : d + d * m].reshape(d, m), p[d + d * m :]
        Z = X @ (V + root * u[:, None]) + b
        value = float(np.sum(np.logaddexp(0.0, Z) - T * Z)) / n  # BCE with logits
        value += lam * (float(np.sum(V * V)) + float(u @ u))
        G = (_sigmoid(Z) - T) / n
        gW = X.T @ G
        grad_u = root * gW.sum(axis=1) + 2 * lam * u
        return value, np.concatenate([grad_u, (gW + 2 * lam * V).ravel(), G.sum(axis=0)])

    mean = np.clip(T.mean(axis=0), 1e-3, 1 - 1e-3)
    start = np.concatenate([np.zeros(d + d * m), np.log(mean / (1 - mean))])
    result = minimize(
        loss, start, jac=True, method="L-BFGS-B",
        options={"maxiter": 5000, "ftol": 1e-12, "gtol": 1e-7},
    )  # fmt: skip
    u, V, b = result.x[:d], result.x[d : d + d * m].reshape(d, m), result.x[d + d * m :]
    return V + root * u[:, None], b


def ahead_by_one_se(leads: np.ndarray) -> bool:
    """Whether the mean of per-fold ``leads`` exceeds its standard error, the sample
    standard deviation over sqrt(number of folds); never for fewer than two folds."""
    return len(leads) >= 2 and bool(leads.mean() > leads.std(ddof=1) / np.sqrt(len(leads)))


class QualityRouter(OutcomeRouter):
    """The quality-aware router: a blend ``w * logistic + (1 - w) * kNN`` of the two
    predictors above, with ``C``, ``share``, ``k`` and ``w`` chosen on the training
    data only. ``share`` (see :func:`fit_logistic`) lets the per-model regressions
    borrow strength from one another; 0 keeps them independent.

    Each candidate (C in ``c_grid``, share in ``share_grid``, k in ``k_grid``, w in
    ``weights``) is scored by
    the AIQ of its out-of-fold predictions (``folds``-fold cross-validation on the
    training prompts, every copy of a repeated question in one fold), i.e. by the routing quality it would have had on prompts
    it did not see, under the same lambda sweep and costs used to route. The
    best candidate replaces plain logistic regression (C = 1, w = 1, share 0,
    when the grids hold it) only if its lead is larger than its standard
    error over the folds (``_clearly_ahead``); the choice is refitted on all
    training data. ``selection`` records every candidate's out-of-fold AIQ and
    ``kept_baseline`` so the choice can be inspected.
    """

    name = "quality"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        c_grid: Sequence[float] = (0.03, 0.1, 0.3, 1.0),
        share_grid: Sequence[float] = (0.0,),
        k_grid: Sequence[int] = (10, 20, 40, 80),
        weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
        folds: int = 5,
        **kw: Any,
    ) -> None:
        super().__init__(models, seed, **kw)
        self.c_grid, self.k_grid = [float(c) for c in c_grid], [int(k) for k in k_grid]
        self.share_grid = [float(s) for s in share_grid]
        if not self.c_grid or not self.k_grid or not self.share_grid or not weights:
            raise RouterLLMError("quality router: every grid needs at least one value")
        self.weights, self.folds = [float(w) for w in weights], int(folds)
        grids = [*self.c_grid, *self.share_grid, *self.weights]
        if not all(map(math.isfinite, grids)) or min(self.share_grid) < 0 or min(self.c_grid) <= 0:
            raise RouterLLMError("quality router: C must be > 0 and share >= 0")
        if min(self.k_grid) < 1 or not 0 <= min(self.weights) <= max(self.weights) <= 1:
            raise RouterLLMError("quality router: k must be >= 1 and weights in [0, 1]")
        if self.folds < 2:
            raise RouterLLMError(f"quality router: folds must be >= 2, got {folds!r}")
        self.options.update(
            c_grid=self.c_grid,
            share_grid=self.share_grid,
            k_grid=self.k_grid,
            weights=self.weights,
            folds=self.folds,
        )
        self.selection: dict[str, Any] = {}

    def candidate_predictions(
        self, X: np.ndarray, Y: np.ndarray, X_eval: np.ndarray
    ) -> dict[tuple[float, float, int, float], np.ndarray]:
        """Every candidate's predictions for ``X_eval`` when trained on ``(X, Y)``,
        keyed by ``(C, share, k, w)``; candidates that differ only in the settings
        of a predictor with no weight are listed once."""
        lr_grid = [(c, s) for c in self.c_grid for s in self.share_grid]
        lr = {}
        for c, s in lr_grid:
            W, b = fit_logistic(X, Y >= 0.5, c, self.seed, s)
            lr[c, s] = _sigmoid(X_eval.astype(np.float64) @ W + b)
        knn = KNNRouter(self.models, k=max(self.k_grid))
        knn.set_state({"X": X, "Y": Y})
        near = {}
        for k in self.k_grid:
            knn.k = k
            near[k] = knn.predict(X_eval)
        return {
            (c, s, k, w): w * lr[c, s] + (1 - w) * near[k]
            for c, s in lr_grid
            for k in self.k_grid
            for w in self.weights
            if not (w == 1.0 and k != self.k_grid[0]) and not (w == 0.0 and (c, s) != lr_grid[0])
        }

    def out_of_fold(
        self, X: np.ndarray, Y: np.ndarray
    ) -> dict[tuple[float, float, int, float], np.ndarray]:
        """Each candidate's out-of-fold predictions on the training prompts."""
        fold = self._fold_of(len(X))
        oof: dict[tuple[float, float, int, float], np.ndarray] = {}
        for f in np.unique(fold):
            tr, te = fold != f, fold == f
            for key, pred in self.candidate_predictions(X[tr], Y[tr], X[te]).items():
                oof.setdefault(key, np.zeros(Y.shape))[te] = pred
        return oof

    def _clearly_ahead(self, pred: np.ndarray, base: np.ndarray, Y: np.ndarray) -> bool:
        """One-standard-error rule: is ``pred``'s out-of-fold AIQ lead over ``base``,
        fold by fold, larger than its standard error? Out-of-fold AIQs on a few
        hundred prompts are noisy, and the best of many candidates is biased
        upwards, so the baseline is left only for a lead that stands out."""
        fold = self._fold_of(len(Y))
        return ahead_by_one_se(np.array([
            self.routing_aiq(pred[fold == f], Y[fold == f])
            - self.routing_aiq(base[fold == f], Y[fold == f])
            for f in np.unique(fold)
        ]))  # fmt: skip

    def _fold_of(self, n: int) -> np.ndarray:
        """The cross-validation fold of each of ``n`` training prompts (seeded), every copy
        of a question in one fold where ``fit`` knew the questions (``training_copies``):
        a held-out copy whose twin trained the fold made memorising (kNN, k = 1) look
        perfect. Without repeated questions, the seeded permutation's folds by position."""
        copies = self._copies(n)
        of_question = np.random.default_rng(self.seed).permutation(len(copies))
        of_question %= min(self.folds, len(copies))
        fold = np.empty(n, dtype=int)
        for q, rows in enumerate(copies):
            fold[rows] = of_question[q]
        return fold

    def _copies(self, n: int) -> list[list[int]]:
        """The rows of each of the ``n`` training prompts' questions: each its own where
        the questions are not known."""
        known = self.training_copies
        if known is not None and sum(map(len, known)) == n:
            return known
        return [[i] for i in range(n)]

    def routing_aiq(self, predicted: np.ndarray, Y: np.ndarray) -> float:
        """The AIQ of routing by ``predicted`` over the knob sweep, scored against the
        outcomes ``Y`` with this router's model costs (the selection criterion)."""
        from routerllm.eval.curves import OperatingPoint, aiq
        from routerllm.eval.routing_metrics import sweep

        mean_c, mean_q = self.costs, Y.mean(axis=0)
        cheapest = int(np.lexsort((-mean_q, mean_c))[0])
        anchor = OperatingPoint(float(mean_c[cheapest]), float(mean_q[cheapest]))
        curve = sweep(predicted, Y, np.broadcast_to(mean_c, Y.shape))
        return aiq(curve, float(mean_c.min()), float(mean_c.max()), anchor)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        baseline = (1.0, 0.0, self.k_grid[0], 1.0)  # plain logistic regressions, C = 1
        # A single question leaves nothing to cross-validate on: the baseline, unselected.
        oof = self.out_of_fold(X, Y) if min(self.folds, len(self._copies(len(X)))) >= 2 else {}
        results: list[dict[str, Any]] = [
            {"oof_aiq": self.routing_aiq(pred, Y), "C": c, "share": s, "k": k, "w": w}
            for (c, s, k, w), pred in oof.items()
        ] or [{"oof_aiq": None, "C": 1.0, "share": 0.0, "k": self.k_grid[0], "w": 1.0}]
        keys = list(oof) or [baseline]
        key = keys[int(np.argmax([r["oof_aiq"] or 0.0 for r in results]))]
        kept = (
            baseline in oof
            and key != baseline
            and not self._clearly_ahead(oof[key], oof[baseline], Y)
        )
        best = results[keys.index(baseline if kept else key)]
        self.C, self.share, self.k, self.w = best["C"], best["share"], best["k"], best["w"]
        self.selection = best | {"kept_baseline": kept, "candidates": results}
        W, b = fit_logistic(X, Y >= 0.5, self.C, self.seed, self.share)
        self._set(
            {
                "W": W,
                "b": b,
                "X": X,
                "Y": Y,
                "C": np.array(self.C),
                "share": np.array(self.share),
                "k": np.array(self.k),
                "w": np.array(self.w),
            }
        )

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._check_state(arrays)
        # the chosen settings: one number each, in the range the grids allow
        for key, fits, what in (
            ("C", lambda v: v > 0, "a number > 0"),
            ("share", lambda v: v >= 0, "a number >= 0"),
            ("k", lambda v: v >= 1 and v == int(v), "a whole number >= 1"),
            ("w", lambda v: 0 <= v <= 1, "a number in [0, 1]"),
        ):
            value = arrays.get(key)
            if value is None or (value.shape == () and fits(float(value))):
                continue
            got = f"{float(value):g}" if value.shape == () else f"shape {value.shape}"
            raise ValueError(f"array {key!r} must hold one number, {what}; got {got}")

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        self.W, self.b = arrays["W"].astype(np.float64), arrays["b"].astype(np.float64)
        self.dim = int(self.W.shape[0])
        self.C, self.k, self.w = float(arrays["C"]), int(arrays["k"]), float(arrays["w"])
        self.share = float(arrays.get("share", 0.0))  # absent from checkpoints before share
        self._knn = KNNRouter(self.models, k=self.k)
        self._knn.set_state({"X": arrays["X"], "Y": arrays["Y"]})

    def state(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        return {
            "W": self.W, "b": self.b, "X": self._knn.X, "Y": self._knn.Y,
            "C": np.array(self.C), "share": np.array(self.share), "k": np.array(self.k),
            "w": np.array(self.w),
        }  # fmt: skip

    def _predict(self, X: np.ndarray) -> np.ndarray:
        lr = _sigmoid(X.astype(np.float64) @ self.W + self.b)
        return self.w * lr + (1 - self.w) * self._knn._predict(X)  # X checked by the caller
