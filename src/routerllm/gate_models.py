"""The models an escalation gate (:mod:`routerllm.gate`) is made of: the larger model's
chance of solving a request (a logistic regression on the first model's prompt state,
mapped onto the unverified answers), its expected energy (a linear fit on the first
model's tokens), the out-of-fold predictions both are calibrated on, and each model's
mean measured energy (:func:`measured_means`), which the gate and the learned routers
read an answer CodeCarbon failed to measure as."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from routerllm.blas_threads import one_thread
from routerllm.exceptions import RouterLLMError, missing_dependency

#: What the learned routers and the experiment's gate do with a model's mean measured
#: energy, and what to do where there is none (:func:`measured_means`).
ROUTED_BY_MEANS = (
    "the learned routers and the gated cascade decide by each model's mean measured energy; "
    "run where CodeCarbon measures it (another --out), or leave those systems out of --systems"
)

#: Inner folds of :func:`out_of_fold` when there is one outer fold.
SINGLE_FOLD_INNER = 5


def out_of_fold(
    train: np.ndarray,
    folds: int,
    seed: int,
    predicted: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Each of the ``train`` problems' prediction by a model fitted without it (the
    same k-fold within them; with fewer than 2 of them, fitted on them all):
    ``predicted(fit_on, idx)`` fits on the problems ``fit_on`` and predicts ``idx``.
    The inner folds depend only on ``len(train)`` and ``seed``."""
    k = folds if folds > 1 else SINGLE_FOLD_INNER
    inner = np.random.default_rng(seed + 1).permutation(len(train)) % min(k, len(train))
    parts = {}
    for g in range(int(inner.max()) + 1):
        fit_on = train[inner != g] if inner.max() > 0 else train
        parts[g] = np.asarray(predicted(fit_on, train[inner == g]))
    out = np.zeros((len(train), *parts[0].shape[1:]))
    for g, p in parts.items():
        out[inner == g] = p
    return out


def measured_means(
    costs: np.ndarray,
    measured: np.ndarray | None,
    models: Sequence[str],
    problems: str = "training problems of a fold",
    advice: str = ROUTED_BY_MEANS,
) -> np.ndarray:
    """Each model's mean of ``costs`` (n, m) over the answers ``measured`` (False where
    CodeCarbon failed, its 0 kWh not known; None: every one was): a 0 kWh not measured
    would make its model look cheaper than it is. A model with none measured is refused
    (of the n ``problems``; ``advice``: why its mean is needed and what to do): its
    energy is not known to route by."""
    if measured is None:
        return np.asarray(costs.mean(axis=0))
    counts = measured.sum(axis=0)
    if none := [m for m, c in zip(models, counts, strict=True) if c == 0]:
        raise RouterLLMError(
            f"{none[0]}'s generation energy was measured on none of the {len(costs)} "
            f"{problems} (CodeCarbon failed on each), and {advice}"
        )
    return np.asarray(np.where(measured, costs, 0.0).sum(axis=0) / counts)


def kwh_at_measured_power(
    duration_s: float,
    kwh: np.ndarray,
    seconds: np.ndarray,
    measured: np.ndarray | None,
    model: str,
    what: str,
) -> float:
    """What a block CodeCarbon failed to measure (``what``, ``duration_s`` long) is read as
    where a decision needs a number: its duration at ``model``'s mean measured power over
    its answers (their ``kwh`` over their ``seconds``, (n,), those ``measured`` only: False
    where CodeCarbon failed; None: every one was). An estimate, to be said where used,
    which errs toward a tighter budget where generating draws more power than checking
    or loading. A model with no measured generation time is refused."""
    keep = np.ones(len(kwh), dtype=bool) if measured is None else measured.astype(bool)
    spent_s = float(seconds[keep].sum())
    if not spent_s > 0:
        raise RouterLLMError(
            f"CodeCarbon failed to measure {what}, and {model}'s generations, whose mean "
            f"power would estimate it for the gate's budget, have no measured energy; "
            f"run it again where CodeCarbon measures them"
        )
    return duration_s * float(kwh[keep].sum()) / spent_s


def require_scikit_learn() -> None:
    """Fail now where scikit-learn (the learn extra) is not installed: a gate is fitted
    with it, after the run's answers are checked (minutes), unless every label agrees."""
    try:
        import sklearn.linear_model  # noqa: F401
        import sklearn.preprocessing  # noqa: F401
    except ImportError as e:
        raise missing_dependency("scikit-learn", "learn", e) from e


@dataclass(frozen=True)
class Logistic:
    """P(y = 1 | x) = sigmoid(((x - mean) / scale) @ coef + intercept): an L2 logistic
    regression (C = 1) on standardised features, or a constant (``coef`` all zero)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray) -> Logistic:
        """Fitted to ``X`` (n, d) and 0/1 ``y``; a constant where ``y`` is (or has fewer
        than 2 labels)."""
        d = X.shape[1]
        if len(y) < 2 or y.min() == y.max():
            p = float(y.mean()) if len(y) else 0.5
            with np.errstate(divide="ignore"):
                logit = float(np.log(p) - np.log1p(-p))
            return cls(np.zeros(d), np.ones(d), np.zeros(d), logit)
        require_scikit_learn()
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        with one_thread():  # scipy's BLAS, loaded with scikit-learn, too
            scaler = StandardScaler().fit(X)
            model = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(X), y.astype(int))
        return cls(scaler.mean_, scaler.scale_, model.coef_[0], float(model.intercept_[0]))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # numpy's, not scipy's expit: a gate is served with the local extra, which brings no
    # scipy; 1 / (1 + e^-z) as exp(-log(1 + e^-z)) keeps its precision at both ends
    return np.asarray(np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=float))))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.asarray(np.log(q / (1 - q)))[:, None]


@dataclass(frozen=True)
class SuccessModel:
    """The second model's chance of solving a problem whose first answer is unverified,
    from the first model's state of its prompt: a regression over all problems, then
    its prediction mapped onto the unverified ones."""

    regression: Logistic
    on_unverified: Logistic

    @classmethod
    def fit(
        cls, states: np.ndarray, solved: np.ndarray, unverified: np.ndarray, folds: int, seed: int
    ) -> tuple[SuccessModel, np.ndarray]:
        """Fitted to ``states`` (n, d), the second model's 0/1 outcome ``solved`` and
        whether the first answer is ``unverified``; with the problems' own predictions out of
        fold (``folds``-fold within them), which are what the map is fitted on."""
        oof = out_of_fold(np.arange(len(states)), folds, seed, lambda fit_on, idx: Logistic.fit(states[fit_on], solved[fit_on])(states[idx]))  # fmt: skip
        on_unverified = Logistic.fit(_logit(oof[unverified]), solved[unverified])
        return cls(Logistic.fit(states, solved), on_unverified), on_unverified(_logit(oof))

    def __call__(self, states: np.ndarray) -> np.ndarray:
        return self.on_unverified(_logit(self.regression(states)))


@dataclass(frozen=True)
class EnergyModel:
    """The second model's expected generation kWh from the first model's prompt and
    answer tokens: least squares ``kwh ~ tokens + constant``, at least ``floor`` (a
    tenth of the fitted problems' mean, so that a ratio to it stays meaningful)."""

    coef: np.ndarray
    floor: float

    @classmethod
    def fit(cls, tokens: np.ndarray, kwh: np.ndarray) -> EnergyModel:
        coef = np.linalg.lstsq(_with_constant(tokens), kwh, rcond=None)[0]
        return cls(coef, 0.1 * float(kwh.mean()))

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(np.maximum(_with_constant(tokens) @ self.coef, self.floor))


def _with_constant(tokens: np.ndarray) -> np.ndarray:
    return np.column_stack([tokens, np.ones(len(tokens))]).astype(float)
