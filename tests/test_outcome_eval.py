"""``evaluate_routing``/``split_dataset`` arguments: mistakes are refused, before any work."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from routerllm.data.outcomes import OutcomeDataset
from routerllm.eval.outcome_eval import evaluate_routing, split_dataset
from routerllm.exceptions import RouterLLMError


def outcomes(n: int, offset: int = 0) -> OutcomeDataset:
    rng = np.random.default_rng(offset)
    scores = (rng.random((n, 2)) > 0.5).astype(float)
    prompts = [f"prompt {offset + i}" for i in range(n)]
    return OutcomeDataset(prompts, ["small", "big"], scores, np.tile([1.0, 5.0], (n, 1)))


def test_a_router_list_with_its_options_is_evaluated() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    ev = evaluate_routing(outcomes(30), outcomes(10, 100), routers=["knn"], embeddings=x,
                          router_options={"knn": {"k": 3}}, seed=np.int64(1))  # fmt: skip
    assert ev.train_size == 30 and ev.test_size == 10 and list(ev.curves) == ["knn"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"routers": "knn"}, "routers must be a list of strings, not a single string"),
        ({"routers": [5]}, r"routers\[0\] is int"),
        ({"test_fraction": "0.2"}, "test fraction must be between 0 and 1, got '0.2'"),
        ({"test_fraction": float("nan")}, "test fraction must be between 0 and 1"),
        ({"seed": -1}, "seed must be an integer"),
        ({"seed": "a"}, "seed must be an integer"),
        ({"router_options": [1]}, "router_options must map router names"),
        ({"router_options": {"knn": 5}}, "router_options must map router names"),
        ({"router_options": {"logreg": {"C": 1}}}, "router_options for 'logreg', which is not"),
        ({"data": None}, "outcome file must be a str or a Path"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"data": outcomes(30), "routers": ["knn"], "encoder": "no-such-encoder"}
    # the encoder is never built: the arguments are refused first
    with pytest.raises(RouterLLMError, match=match):
        evaluate_routing(**{**args, **kwargs})


def test_split_dataset_checks_its_arguments() -> None:
    train, test = split_dataset(outcomes(10), 0.2, np.int64(3))
    assert (len(train), len(test)) == (8, 2)
    for data, fraction, seed, match in (
        (outcomes(10), 0.2, "x", "seed must be an integer"),
        (outcomes(10), None, 0, "test fraction must be between 0 and 1"),
        (None, 0.2, 0, "splits an OutcomeDataset"),
    ):
        with pytest.raises(RouterLLMError, match=match):
            split_dataset(data, fraction, seed)  # type: ignore[arg-type]
