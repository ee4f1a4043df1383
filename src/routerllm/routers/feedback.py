"""A router that keeps learning from feedback on its answers (MISSION M3.5): a
contextual bandit with one Bayesian linear model of success per model.

Routing is a one-step decision: the router sees a prompt, picks a model, and the
answer's score is the whole reward; no later state depends on the choice. The
seeds' Dueling Double DQN machinery (a discount, target networks, replay) exists to
propagate value through later states, so here it has nothing to do. What a
one-step decision does need is what a contextual bandit gives: a model of each
arm's reward given the context, updated from the arm that was pulled only, and
exploration that tries a model where its uncertainty could hide a better choice.

Each model j has a ridge-regression posterior over weights ``theta_j`` of the
prompt's embedding with a constant feature appended (``z = [x, 1]``):

* prior ``theta_j ~ N(0, sigma^2 / ridge I)`` on the outcome minus 0.5, so an
  unseen prompt is predicted 0.5, the most uncertain outcome;
* after outcomes ``r`` on embeddings ``Z``: precision ``A_j = ridge I + Z^T Z``
  (over ``sigma^2``), ``b_j = Z^T (r - 0.5)``, posterior mean ``A_j^-1 b_j``,
  covariance ``sigma^2 A_j^-1``, with ``sigma = 0.5`` (the largest standard
  deviation of an outcome in [0, 1]).

``fit`` warm-starts every model from full outcome data (each model's score on
each prompt); ``learn`` then adds bandit feedback, one model's outcome per
prompt, to that model's posterior alone. ``A`` and ``b`` are exact sums, kept and
saved as they are; each model's Cholesky factor and posterior mean are derived
from them when next needed (O(d^3 / 3) for the one model that learned).

Routing draws each model's success from its posterior (Thompson sampling), the
spread scaled by ``explore`` (0: the posterior mean, greedy), from a
``numpy.random.Generator`` seeded with the router's seed; the draw then goes
through the decision rules every outcome router uses (mode, knob, calibration).
``predict`` (evaluation, calibration) is the posterior mean.

Because ``A``, ``b`` and the counts are sums, several processes can learn into one
saved router exactly: a router remembers the sums it last loaded from or saved to a
folder (its base there; for the folder it was loaded from and the one it saved to
last), and ``save`` there, under a lock on the folder, adds what it learned since (its
sums minus the base) to whatever is saved there now, then takes that merged posterior
as its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import is_finite_number, wrong_shape
from routerllm.exceptions import RouterLLMError, UnknownNameError
from routerllm.files import SavedThenInterrupted
from routerllm.routers.base import CandidateModel, locked_router_folder, prompt_list
from routerllm.routers.outcome import OutcomeRouter
from routerllm.routers.saved import load_router

#: Standard deviation of an outcome's noise: the largest an outcome in [0, 1] can have.
NOISE_SD = 0.5
#: What the prior predicts for every prompt (outcomes are modelled minus this).
PRIOR_MEAN = 0.5
#: The smallest prior precision: below it the posterior's sums lose their precision.
MIN_RIDGE = 1e-6
#: The largest embedding value learned from (the packaged encoders' are under 1).
MAX_EMBEDDING_VALUE = 1e4


@dataclass(frozen=True, eq=False)  # arrays: compared by equals
class Sums:
    """A posterior's sufficient statistics, in the router's model order: per model the
    precision ``A`` (m, d + 1, d + 1), the vector ``b`` (m, d + 1) and the count of
    outcomes learned (m,)."""

    precision: np.ndarray
    moment: np.ndarray
    counts: np.ndarray

    def equals(self, other: Sums) -> bool:
        return all(np.array_equal(a, b) for a, b in zip(self.arrays(), other.arrays(), strict=True))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.precision, self.moment, self.counts

    def __add__(self, other: Sums) -> Sums:
        return Sums(*(a + b for a, b in zip(self.arrays(), other.arrays(), strict=True)))

    def __sub__(self, other: Sums) -> Sums:
        return Sums(*(a - b for a, b in zip(self.arrays(), other.arrays(), strict=True)))


@dataclass(frozen=True)
class _Base:
    """The sums a router last loaded from or saved to a folder, and its options then
    (those it changes after are its own to save there)."""

    sums: Sums
    options: dict[str, Any]


class FeedbackRouter(OutcomeRouter):
    """Per model a Bayesian ridge regression of success on the prompt embedding,
    warm-started from outcome data (``fit``) and updated from feedback on the model
    that answered (``learn``); routes by Thompson sampling scaled by ``explore``.

    ``ridge`` is the prior's precision (a larger one trusts the data less; 3 had the
    best 5-fold out-of-fold AIQ on LLMRouter's training set of 0.3-100, and was within
    0.001 of the best on RouterBench MBPP's). ``explore`` scales the posterior spread
    of the draws (0: greedy on the mean). Its default, 0.1, is small: a Thompson draw
    at the full spread (1) in a 384-d embedding space is mostly noise, and on the
    outcome sets each larger value earned less on the stream
    (``benchmarks/feedback_learning.py``); a little keeps a model that was
    underestimated from never being tried again."""

    name = "feedback"
    MODEL_AXIS_ARRAYS = OutcomeRouter.MODEL_AXIS_ARRAYS | {"precision", "moment", "counts"}
    # the saved precision holds ridge * I: another ridge given at load would change nothing
    LEARNED_OPTIONS = OutcomeRouter.LEARNED_OPTIONS | {"ridge"}

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        ridge: float = 3.0,
        explore: float = 0.1,
        loaded_from: str | None = None,
        **kw: Any,
    ) -> None:
        """``loaded_from`` (set by ``load_router``, not saved) is the folder the router
        is loaded from: its saves there merge what other processes saved since."""
        super().__init__(models, seed, **kw)
        if not (is_finite_number(ridge) and ridge >= MIN_RIDGE):
            raise RouterLLMError(f"feedback router: ridge must be a number >= {MIN_RIDGE:g}, got {ridge!r}")  # fmt: skip
        if not (is_finite_number(explore) and explore >= 0):
            raise RouterLLMError(
                f"feedback router: explore must be a number >= 0 (0: no exploration), "
                f"got {explore!r}"
            )
        self.ridge, self.explore = float(ridge), float(explore)
        self.options.update(ridge=self.ridge, explore=self.explore)
        self._rng = np.random.default_rng(self.seed)
        # Routing (the server's generating thread) and learning (feedback arriving on
        # another) may run at once: the posterior and the generator change under this.
        self._lock = threading.RLock()
        self._precision = np.zeros((0, 0, 0))  # (m, d + 1, d + 1)
        self._moment = np.zeros((0, 0))  # (m, d + 1)
        self.counts = np.zeros(len(self.models))
        # Per model: the Cholesky factor of its precision and its posterior mean, derived
        # from _precision and _moment; dropped for a model when it learns.
        self._derived: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._loaded_from = Path(loaded_from).resolve() if loaded_from else None
        # By folder (resolved): the one it was loaded from and the one it saved to last (a
        # base is a copy of the sums), so that a save elsewhere (a snapshot) does not make
        # its next save back home replace what others saved there since.
        self._bases: dict[Path, _Base] = {}
        self._options_saved: dict[str, Any] | None = None  # what a save back records

    # -- the posterior -------------------------------------------------------
    @staticmethod
    def _features(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.hstack([X, np.ones((len(X), 1))])

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        _check_norms(X)
        self._bases = {}  # a new posterior: saving it replaces what is saved
        Z = self._features(X)
        m, width = Y.shape[1], Z.shape[1]
        gram = self.ridge * np.eye(width) + Z.T @ Z
        self._set_posterior(
            np.repeat(gram[None], m, axis=0),
            (Z.T @ (Y - PRIOR_MEAN)).T,
            np.full(m, float(len(X))),
        )

    def _set_posterior(self, precision: np.ndarray, moment: np.ndarray, counts: np.ndarray) -> None:
        with self._lock:
            self._precision = np.ascontiguousarray(precision, dtype=np.float64)
            self._moment = np.ascontiguousarray(moment, dtype=np.float64)
            self.counts = np.asarray(counts, dtype=np.float64).copy()
            self.dim = int(self._precision.shape[-1] - 1)
            self._derived = {}

    def _posterior(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Model j's Cholesky factor ``L`` (``A = L L^T``, lower) and posterior mean."""
        if j not in self._derived:
            linalg = _linalg()
            # the sums are finite (checked as they came in): no need to scan them again
            factor = _cholesky(self._precision[j])
            mean = linalg.cho_solve((factor, True), self._moment[j], check_finite=False)
            self._derived[j] = factor, mean
        return self._derived[j]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        Z = self._features(X)
        with self._lock:
            means = [Z @ self._posterior(j)[1] for j in range(len(self.models))]
        return np.clip(PRIOR_MEAN + np.stack(means, axis=1), 0.0, 1.0)

    def _explored(self, X: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """A Thompson draw of each model's success on each prompt: its posterior mean
        plus ``explore`` times a normal draw of its posterior spread there (each prompt
        its own draw of every model's weights, seen through that prompt)."""
        if self.explore == 0:
            return predicted
        Z = self._features(X)
        solve = _linalg().solve_triangular
        with self._lock:
            means, spreads = [], []
            for j in range(len(self.models)):
                factor, mean = self._posterior(j)
                means.append(Z @ mean)  # z^T A^-1 z = |L^-1 z|^2
                spreads.append(
                    np.linalg.norm(solve(factor, Z.T, lower=True, check_finite=False), axis=0)
                )
            noise = self._rng.standard_normal((len(Z), len(self.models)))
        spread = NOISE_SD * self.explore * np.stack(spreads, axis=1)
        return np.clip(PRIOR_MEAN + np.stack(means, axis=1) + spread * noise, 0.0, 1.0)

    def _decision_note(self) -> str:
        return f"; Thompson sampling, explore {self.explore:g}" if self.explore > 0 else ""

    # -- feedback ------------------------------------------------------------
    def learn(
        self,
        prompts: Sequence[str] | None,
        models: Sequence[str],
        scores: Sequence[float],
        embeddings: np.ndarray | None = None,
    ) -> None:
        """Add feedback: ``scores[i]`` in [0, 1] (1 = solved) is how well ``models[i]``
        answered ``prompts[i]`` (or the prompt embedded in row i of ``embeddings``).
        Only that model's posterior changes: the others' outcomes on the prompt are
        unknown (bandit feedback). Needs a trained router (``fit`` or a saved one)."""
        self._check_fitted()
        if (prompts is None) == (embeddings is None):
            raise RouterLLMError("learn takes the prompts or their embeddings (one of the two)")
        names = _names(models, self.model_names)
        values = _scores(scores)
        if embeddings is None:
            prompts = prompt_list(prompts)
        if embeddings is not None:
            embeddings = np.asarray(embeddings, dtype=np.float64) if isinstance(embeddings, np.ndarray | list) else embeddings  # fmt: skip
            if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2:
                raise RouterLLMError(
                    f"embeddings must be a 2-d array, one row per prompt, got {type(embeddings).__name__}"  # fmt: skip
                )
        n = len(prompts) if prompts is not None else len(embeddings)  # type: ignore[arg-type]
        if not len(names) == len(values) == n:
            raise RouterLLMError(
                f"learn needs one model and one score per prompt, got {n} prompts, "
                f"{len(names)} models and {len(values)} scores"
            )
        if n == 0:
            return
        X = self.check_learnable(
            embeddings if embeddings is not None else self.embed(prompts or [])
        )
        Z = self._features(X)
        chosen = np.array([self.model_names.index(name) for name in names])
        with self._lock:
            for j in np.unique(chosen):
                rows = chosen == j
                self._precision[j] += Z[rows].T @ Z[rows]
                self._moment[j] += Z[rows].T @ (values[rows] - PRIOR_MEAN)
                self.counts[j] += int(rows.sum())
                self._derived.pop(int(j), None)

    def check_learnable(self, embeddings: Any) -> np.ndarray:
        """``embeddings`` as ``learn`` takes them: one row per prompt, as wide as the
        router's, finite, values up to ``MAX_EMBEDDING_VALUE``; a clear error otherwise."""
        X = self.check_embeddings(embeddings)
        _check_norms(X)
        return X

    # -- persistence ---------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        with self._lock:  # copies: a save must not see half of a concurrent update
            return {
                "precision": np.moveaxis(self._precision, 0, -1).copy(),
                "moment": self._moment.T.copy(),
                "counts": self.counts.copy(),
            }

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._check_state(arrays)
        for key in ("precision", "moment", "counts"):
            if key not in arrays:
                raise KeyError(key)
        precision, moment, counts = arrays["precision"], arrays["moment"], arrays["counts"]
        m, width = len(self.models), precision.shape[0] if precision.ndim else 0
        for key, value, shape in (
            ("precision", precision, (width, width, m)),
            ("moment", moment, (width, m)),
            ("counts", counts, (m,)),
        ):
            if wrong := wrong_shape(value.shape, shape):
                raise ValueError(f"array {key!r} {wrong}")
        if width < 2:
            raise ValueError("array 'precision' is for embeddings of width 0")
        if counts.min(initial=0) < 0:
            raise ValueError("array 'counts' holds negative counts")
        stacked = np.moveaxis(precision.astype(np.float64), -1, 0)
        scale = max(float(np.abs(stacked).max()), 1.0)
        if np.abs(stacked - np.swapaxes(stacked, 1, 2)).max() > 1e-9 * scale:
            raise ValueError("array 'precision' is not symmetric")
        for j, precision_j in enumerate(stacked):
            try:
                _cholesky(precision_j)
            except RouterLLMError:
                raise ValueError(f"array 'precision' is not positive definite (model {j})") from None  # fmt: skip

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        loading = not self.fitted  # else a new posterior, as from fit: a save replaces
        self._set_posterior(
            np.moveaxis(arrays["precision"], -1, 0), arrays["moment"].T, arrays["counts"]
        )
        loaded = self._loaded_from if loading else None
        self._bases = {loaded: _Base(self.sums(), dict(self.options))} if loaded is not None else {}  # fmt: skip

    @classmethod
    def saved_options(cls, directory: Path, options: dict[str, Any]) -> dict[str, Any]:
        return options | {"loaded_from": str(directory)}

    def sums(self) -> Sums:
        """A copy of the posterior's sufficient statistics."""
        with self._lock:
            return Sums(self._precision.copy(), self._moment.copy(), self.counts.copy())

    def save(self, directory: str | Path) -> Path:
        """Save as every router does (``Router.save``), under a lock on the folder. Where
        the router was loaded from that folder (a save to another folder meanwhile, a
        snapshot, changes nothing to that) or last saved to it, and another process has
        saved there since, what this one learned since is first added to what is saved
        (the sums are exact, so nobody's feedback is lost) and the router takes the
        merged posterior; saved back there, it keeps the options saved there but those
        it changed itself since (``save_parts``). A router saved there for other models,
        another embedding width or another encoder is refused, not merged."""
        if not self.fitted or not isinstance(directory, str | os.PathLike) or not os.fspath(directory).strip():  # fmt: skip
            return super().save(directory)  # its clear errors
        path = Path(directory)
        with locked_router_folder(path):
            base = self._bases.get(path.resolve())
            saved = self._saved_router(path) if base else None
            with self._lock:  # what is written is exactly the new base
                if base and saved and not saved.sums().equals(base.sums):
                    self._set_posterior(*(saved.sums() + (self.sums() - base.sums)).arrays())
                if base and saved:  # the saved router's options, but those this one changed
                    changed = {k: v for k, v in self.options.items() if base.options.get(k) != v}
                    self._options_saved = {**saved.options, **changed}
                try:
                    super().save(path)
                except SavedThenInterrupted:  # saved whole, then Ctrl-C: it is the new base
                    self._saved_to(path)
                    raise
                except BaseException:
                    # nothing saved: it keeps the merged posterior, whose base is now what
                    # the folder holds, else the next save would add the others' learning again
                    if base and saved:
                        self._bases[path.resolve()] = _Base(saved.sums(), base.options)
                    raise
                finally:
                    self._options_saved = None
                self._saved_to(path)
        return path

    def _saved_to(self, path: Path) -> None:
        """Its sums and options are what ``path`` holds now: its base there."""
        home = {k: b for k, b in self._bases.items() if k == self._loaded_from}
        self._bases = home | {path.resolve(): _Base(self.sums(), dict(self.options))}

    def save_parts(self, directory: Path) -> dict[str, Any]:
        """Its options; saved back into its folder, the options saved there, except those
        it changed since it loaded them or saved there (a config's ``router.options``
        apply to the run that gives them, not to the saved router)."""
        return self.options if self._options_saved is None else self._options_saved

    def _saved_router(self, path: Path) -> FeedbackRouter | None:
        """The feedback router saved in ``path`` (None where none is saved), which must
        be one this router can merge with; a clear error otherwise."""
        if not (path / "config.json").exists():
            return None
        try:
            saved = load_router(path, self.models)
        except RouterLLMError as e:
            raise RouterLLMError(f"cannot merge with the router saved in {path}: {e}") from e
        mine = f"feedback router for {', '.join(self.model_names)} on {self.dim}-wide {self.encoder_spec!r} embeddings"  # fmt: skip
        if not isinstance(saved, FeedbackRouter):
            theirs = f"a {saved.name!r} router"
        elif saved.model_names != self.model_names:
            theirs = f"one for {', '.join(saved.model_names)}"
        elif (saved.dim, saved.encoder_spec) != (self.dim, self.encoder_spec):
            theirs = f"one on {saved.dim}-wide {saved.encoder_spec!r} embeddings"
        else:
            return saved
        raise RouterLLMError(
            f"cannot merge this {mine} with what {path} holds now, {theirs}; save it to "
            f"another folder (nothing was changed)"
        )


def _cholesky(precision: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of a model's precision. The matrix is positive
    definite by construction (ridge I + Z^T Z); where rounding has made it singular
    (many updates on nearly the same embeddings), a jitter of up to 1e-6 of its
    largest diagonal entry is added, else a clear error."""
    linalg = _linalg()
    scale = float(np.max(np.diag(precision), initial=1.0))
    for jitter in (0.0, 1e-12, 1e-9, 1e-6):
        try:
            shifted = precision + jitter * scale * np.eye(len(precision)) if jitter else precision
            return np.asarray(linalg.cholesky(shifted, lower=True, check_finite=False))
        except (np.linalg.LinAlgError, ValueError):
            continue
    raise RouterLLMError(
        "feedback router: a model's posterior precision is not positive definite; train "
        "the router again (routerllm train --router feedback)"
    )


def _check_norms(X: np.ndarray) -> None:
    """Embeddings of a sane size: the posterior's sums would lose their precision."""
    if len(X) and (largest := float(np.abs(X).max())) > MAX_EMBEDDING_VALUE:
        raise RouterLLMError(
            f"feedback router: embedding values up to {MAX_EMBEDDING_VALUE:g} are supported, "
            f"got {largest:.3g}; scale the embeddings down (the encoders' are under 1)"
        )


def _linalg() -> Any:
    try:
        import scipy.linalg  # installed with scikit-learn
    except ImportError as e:
        from routerllm.exceptions import missing_dependency

        raise missing_dependency("scipy", "learn", e) from e
    return scipy.linalg


def _names(models: object, known: list[str]) -> list[str]:
    """``models`` as a list of the router's model names; a clear error otherwise."""
    if isinstance(models, str | bytes) or not isinstance(models, Sequence):
        raise RouterLLMError(
            f"models must be a list of model names, one per prompt, got {models!r:.80}"
        )
    for name in models:
        if not isinstance(name, str):
            raise RouterLLMError(f"models must be model names, got {name!r:.80}")
        if name not in known:
            raise UnknownNameError("model", name, known)
    return list(models)


def _scores(scores: object) -> np.ndarray:
    """``scores`` as an array of numbers in [0, 1]; a clear error otherwise."""
    if isinstance(scores, str | bytes) or not isinstance(scores, Sequence | np.ndarray):
        raise RouterLLMError(
            f"scores must be a list of numbers in [0, 1], one per prompt, got {scores!r:.80}"
        )
    values = list(np.asarray(scores).ravel()) if isinstance(scores, np.ndarray) else list(scores)
    for s in values:
        if not (is_finite_number(s) and 0 <= s <= 1):
            raise RouterLLMError(f"a score must be a number in [0, 1] (1 = solved), got {s!r:.80}")
    return np.array(values, dtype=np.float64)
