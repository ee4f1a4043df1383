"""The unbiased pass@k estimator of the Codex paper (Chen et al., 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routerllm.checks import is_integer
from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of a problem with ``c`` correct among ``n`` samples:
    ``1 - C(n-c, k) / C(n, k)``, computed as the Codex paper's stable product."""
    if not all(is_integer(v) for v in (n, c, k)):
        raise RouterLLMError(f"pass@k needs integers n, c and k, got n={n!r}, c={c!r}, k={k!r}")
    if not 0 < k <= n or not 0 <= c <= n:
        raise RouterLLMError(f"pass@k needs 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if c == 0:
        return 0.0
    if n - c < k:  # every draw of k samples holds a correct one
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean :func:`pass_at_k` over problems given as ``(n, c)`` pairs."""
    try:
        pairs = [(n, c) for n, c in counts]
    except (TypeError, ValueError) as e:
        raise RouterLLMError(f"counts must be a list of (n, c) pairs, got {counts!r}"[:300]) from e
    if not pairs:
        raise RouterLLMError("mean_pass_at_k needs at least one (n, c) pair")
    return sum(pass_at_k(n, c, k) for n, c in pairs) / len(pairs)


def oracle_pass_at_1(scores: np.ndarray) -> float:
    """pass@1 of an oracle that sends each problem to its best model: the share of the
    problems (rows of ``scores``, (n, m), 1 = solved) that some model (column) solved."""
    return float(scores.max(axis=1).mean())
