"""Training of the mixture-of-experts router's gating network (MISSION M3.4), in numpy.

The network (``routers/moe.py`` runs it) is an MLP on the prompt embedding,
ReLU and dropout between its layers, one logit per expert (model). A batch's
loss is the seed's "supervised + load balancing" loss:

    CE(softmax(z), t) + balance_weight * CV^2(importance)

* ``z = (logits + noise) / temperature``, the noise Gaussian (std ``noise``)
  while training only;
* ``t``: each prompt's experts, the models that solved it weighted by their
  scores and summing to 1; a prompt no model solved has none and enters the
  balance term only (no expert is right for it);
* the cross-entropy is taken on the dense softmax: the seed's code applies it
  to the sparse gates, where an expert outside the top k has gate 0 and log 0;
* ``importance``: each expert's mean sparse gate over the batch (the top-k
  softmax, ``sparse_gates``), and CV^2 its variance over its squared mean
  (Shazeer et al. 2017): it pulls the batch's load towards even.

AdamW (decoupled weight decay on the weight matrices), shuffled mini-batches,
and the epoch with the lowest loss on held-out prompts kept (noise and dropout
off there), stopping after ``patience`` epochs without a better one; where no
held-out prompt tells the experts apart (no model solved it, or every model did),
their loss says nothing of which expert is right: there is no validation split and
every epoch is run.
Everything random comes from one seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from routerllm.checks import is_finite_number, is_integer
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.routers.moe import Layers, softmax, sparse_gates

#: Fewer training prompts than this: no validation split, every epoch is run.
MIN_VALIDATED = 20
_EPS = 1e-10


@dataclass(frozen=True)
class GatingArguments:
    """The gating network's shape and training settings (the router's options)."""

    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    noise: float = 0.1
    temperature: float = 1.0
    top_k: int | None = None  # None: every expert (dense gates)
    balance_weight: float = 0.01
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    epochs: int = 100
    patience: int = 10
    validation_fraction: float = 0.1  # 0: none held out, every epoch run

    def __post_init__(self) -> None:
        """A clear error for a setting out of range (the router checks its options; these
        are for training called directly), not a ZeroDivisionError or an empty fit."""
        if not all(is_integer(w) and w >= 1 for w in self.hidden):
            raise RouterLLMError(f"gating: hidden must list layer widths >= 1, got {self.hidden!r}")
        for key in ("batch_size", "epochs", "patience"):
            if not (is_integer(value := getattr(self, key)) and value >= 1):
                raise RouterLLMError(f"gating: {key} must be a whole number >= 1, got {value!r}")
        for key, value, low, high, wanted in (
            ("validation_fraction", self.validation_fraction, 0.0, 1.0, "from 0 to below 1"),
            ("dropout", self.dropout, 0.0, 1.0, "from 0 to below 1"),
        ):
            if not (is_finite_number(value) and low <= value < high):
                raise RouterLLMError(f"gating: {key} must be a number {wanted}, got {value!r}")
        for key in ("temperature", "learning_rate"):
            if not (is_finite_number(value := getattr(self, key)) and value > 0):
                raise RouterLLMError(f"gating: {key} must be a number > 0, got {value!r}")


@dataclass
class GatingResult:
    layers: Layers
    #: the epoch whose weights were kept, and how many ran
    best_epoch: int
    epochs_run: int
    #: its loss on the held-out prompts (None: too few prompts to hold any out)
    validation_loss: float | None
    validation_size: int


def init_layers(sizes: list[int], rng: np.random.Generator) -> Layers:
    """Weights and biases uniform in +-1/sqrt(fan_in) (torch's ``nn.Linear``)."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
        layers.append((W, rng.uniform(-bound, bound, fan_out)))
    return layers


def loss_and_grads(
    layers: Layers,
    X: np.ndarray,
    T: np.ndarray,
    args: GatingArguments,
    rng: np.random.Generator | None = None,
    grads: bool = True,
) -> tuple[float, Layers]:
    """The batch loss (module docstring) and its gradient for each layer's weights
    and bias; ``rng`` None: no dropout and no noise (evaluation)."""
    acts, pre, masks = [X], [], []
    a = X
    for W, b in layers[:-1]:
        h = a @ W + b
        a = np.maximum(h, 0.0)
        mask = None
        if rng is not None and args.dropout > 0:
            mask = (rng.random(a.shape) >= args.dropout) / (1.0 - args.dropout)
            a = a * mask
        pre.append(h)
        masks.append(mask)
        acts.append(a)
    W, b = layers[-1]
    logits = a @ W + b
    if rng is not None and args.noise > 0:
        logits = logits + rng.normal(0.0, args.noise, logits.shape)
    z = logits / args.temperature
    n, m = z.shape

    P = softmax(z)
    has = T.sum(axis=1)  # 1 for a prompt with experts, 0 for one without
    rows = float(has.sum())
    ce = -float((T * np.log(np.maximum(P, 1e-300))).sum()) / rows if rows > 0 else 0.0
    G = sparse_gates(z, m if args.top_k is None else args.top_k)
    importance = G.mean(axis=0)
    mean = importance.mean()
    var = float(((importance - mean) ** 2).mean())
    denom = mean**2 + _EPS
    loss = ce + args.balance_weight * var / denom
    if not grads:
        return loss, []

    dz = (P * has[:, None] - T) / rows if rows > 0 else np.zeros_like(z)
    d_importance = (2.0 / m) * (importance - mean) / denom - var * 2.0 * mean / (m * denom**2)
    dG = np.broadcast_to(args.balance_weight * d_importance / n, G.shape)
    dz = dz + G * (dG - (G * dG).sum(axis=1, keepdims=True))  # through the top-k softmax
    da = dz / args.temperature
    out: Layers = []
    for i in reversed(range(len(layers))):
        out.append((acts[i].T @ da, da.sum(axis=0)))
        if i > 0:
            da = da @ layers[i][0].T
            if masks[i - 1] is not None:
                da = da * masks[i - 1]
            da = da * (pre[i - 1] > 0)
    out.reverse()
    return loss, out


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), on weight matrices only."""

    def __init__(self, layers: Layers, lr: float, weight_decay: float) -> None:
        self.lr, self.weight_decay = lr, weight_decay
        self.t = 0
        self.m = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
        self.v = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]

    def step(self, layers: Layers, grads: Layers, b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for params, g, m, v in zip(layers, grads, self.m, self.v, strict=True):
            for p, gp, mp, vp, decay in zip(params, g, m, v, (True, False), strict=True):
                mp *= b1
                mp += (1.0 - b1) * gp
                vp *= b2
                vp += (1.0 - b2) * gp * gp
                if decay:
                    p -= self.lr * self.weight_decay * p
                p -= self.lr * (mp / c1) / (np.sqrt(vp / c2) + 1e-8)


def train_gating(
    X: np.ndarray,
    T: np.ndarray,
    args: GatingArguments,
    seed: int,
    on_epoch: Callable[[int, float | None], None] | None = None,
) -> GatingResult:
    """Train a gating network on embeddings ``X`` (n, d) for expert targets ``T`` (n, m),
    rows summing to 1 (or 0: no expert); ``on_epoch(epoch, validation_loss)`` after
    each epoch."""
    X, T = _checked_inputs(X, T)
    rng = np.random.default_rng(seed)
    n = len(X)
    order = rng.permutation(n)
    n_val = (
        max(1, round(n * args.validation_fraction))
        if n >= MIN_VALIDATED and args.validation_fraction > 0
        else 0
    )
    held_out = T[order[:n_val]]
    if n_val and not (held_out.max(axis=1) > held_out.min(axis=1)).any():
        # no held-out prompt tells the experts apart (no model solved it, or all did):
        # their loss is lowest for untrained, even gates and would keep an early epoch;
        # as with too few prompts, every epoch is run
        n_val = 0
    val, fit = order[:n_val], order[n_val:]
    layers = init_layers([X.shape[1], *args.hidden, T.shape[1]], rng)
    optimiser = AdamW(layers, args.learning_rate, args.weight_decay)
    best: tuple[float, Layers, int] = (math.inf, copy.deepcopy(layers), 0)
    epoch = 0
    for epoch in range(1, args.epochs + 1):
        shuffled = rng.permutation(fit)
        # overflow is how training diverges: reported below as one error, not as warnings
        with np.errstate(over="ignore", invalid="ignore"):
            for batch in np.array_split(shuffled, max(1, math.ceil(len(fit) / args.batch_size))):
                _, grads = loss_and_grads(layers, X[batch], T[batch], args, rng)
                optimiser.step(layers, grads)
            val_loss = None
            if n_val:
                val_loss = float(loss_and_grads(layers, X[val], T[val], args, grads=False)[0])
        if not all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in layers) or (
            val_loss is not None and not math.isfinite(val_loss)
        ):
            # else its NaN weights would be saved (and refused when loaded), or with a
            # validation split the untrained first weights kept as the best
            raise RouterLLMError(
                f"the gating network's training diverged at epoch {epoch} (its weights or "
                f"loss are no longer finite numbers): train it with a lower learning_rate "
                f"(now {args.learning_rate:g}) or weight_decay (now {args.weight_decay:g})"
            )
        if val_loss is not None and val_loss < best[0] - 1e-9:
            best = (val_loss, copy.deepcopy(layers), epoch)
        if on_epoch is not None:
            on_epoch(epoch, val_loss)
        if n_val and epoch - best[2] >= args.patience:
            break
    if not n_val:
        return GatingResult(layers, epoch, epoch, None, 0)
    return GatingResult(best[1], best[2], epoch, best[0], n_val)


def _checked_inputs(X: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``T`` as float arrays, once they are finite and of matching shapes and each
    target row is weights in [0, 1] summing to 1 or 0. Else a DataError naming the first row
    at fault: a NaN embedding would be said to diverge, and a NaN target silently zero its
    whole batch's cross-entropy."""
    try:
        X, T = np.asarray(X, dtype=np.float64), np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"gating: embeddings and targets must be arrays of numbers ({e})") from e
    if X.ndim != 2 or T.ndim != 2:
        raise DataError(
            f"gating: embeddings must be a 2-d array (prompts, width) and targets one (prompts, "
            f"experts), got shapes {X.shape} and {T.shape}"
        )
    if len(X) != len(T):
        raise DataError(f"gating: {len(X)} embedding rows and {len(T)} target rows; give one of each per prompt")  # fmt: skip
    if len(X) == 0 or X.shape[1] == 0 or T.shape[1] == 0:
        raise DataError(f"gating: no training prompts, or no width or experts: shapes {X.shape} and {T.shape}")  # fmt: skip
    if (bad := np.flatnonzero(~np.isfinite(X).all(axis=1))).size:
        raise DataError(f"gating: embeddings: row {bad[0] + 1} is not finite")
    in_range = ((T >= 0) & (T <= 1)).all(axis=1)  # False for NaN
    if (bad := np.flatnonzero(~in_range)).size:
        raise DataError(f"gating: targets: row {bad[0] + 1} is not weights in [0, 1]")
    sums = T.sum(axis=1)
    if (bad := np.flatnonzero(~(np.isclose(sums, 1.0) | (sums == 0)))).size:
        raise DataError(
            f"gating: targets: row {bad[0] + 1} sums to {sums[bad[0]]:g}, not to 1 (the experts "
            "that solved the prompt) or 0 (none did)"
        )
    return X, T
