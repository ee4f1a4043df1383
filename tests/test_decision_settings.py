"""An outcome router's decision settings at their edges, every expected value worked out
by hand: the tie tolerance's boundary, models that may not serve, a fixed mix given in
any proportions, and a second knob that routes its share of the prompts."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.exceptions import RouterLLMError
from routerllm.routers import create_router
from routerllm.routers.base import Candidate
from routerllm.routers.decision import choose, prompt_draws

COSTS = np.array([1.0, 2.0])


def test_a_pricier_model_exactly_at_the_tie_tolerance_is_a_tie_the_cheaper_wins() -> None:
    """Ties within 1e-12 (``decision.py``; the exact sweep reads them the same way), its
    boundary included: dear predicted 1.0, cheap 1.0 - 1e-12, lambda 0 takes cheap."""
    assert list(choose(np.array([[1.0 - 1e-12, 1.0]]), COSTS, "lambda", 0.0)) == [0]
    assert list(choose(np.array([[1.0 - 2e-12, 1.0]]), COSTS, "lambda", 0.0)) == [1]


@pytest.mark.parametrize(("mode", "knob"), [("lambda", 10.0), ("threshold", 0.0)])
def test_a_model_that_may_not_serve_is_never_chosen_whatever_the_knob(
    mode: str, knob: float
) -> None:
    """Cheap may not serve: dear is chosen, even where its utility is below 0 (lambda 10:
    0.5 - 10 x 2 / 2 = -9.5) or where every model clears the threshold (0)."""
    only_dear = np.array([False, True])
    assert list(choose(np.array([[0.5, 0.5]]), COSTS, mode, knob, allowed=only_dear)) == [1]


def _router(**options: object) -> object:
    return create_router(
        "logreg", [Candidate("cheap", 1.0), Candidate("dear", 2.0)], 0, encoder="hashing",
        **options,
    )  # fmt: skip


def test_a_mix_given_in_any_proportions_is_normalised() -> None:
    """``mix={"cheap": 1, "dear": 3}`` is a quarter cheap, three quarters dear: in the
    router's options (saved with it) and in its policy."""
    router = _router(mix={"cheap": 1.0, "dear": 3.0})
    assert router.options["mix"] == {"cheap": 0.25, "dear": 0.75}  # type: ignore[attr-defined]
    router.fit(None, np.array([[0.0, 1.0], [1.0, 1.0]]), embeddings=np.eye(2))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(router.policy(np.eye(2)), [[0.25, 0.75]] * 2)  # type: ignore[attr-defined]


@pytest.mark.parametrize("mix", [{"cheap": 0.0}, {"cheap": 0.0, "dear": 0.0}])
def test_a_mix_of_zero_probabilities_is_refused(mix: dict[str, float]) -> None:
    with pytest.raises(RouterLLMError, match="bad mix .*not all 0"):
        _router(mix=mix)


def test_the_second_knob_routes_the_prompts_drawn_for_it() -> None:
    """Dear solves everything, cheap nothing: lambda 0 takes dear, lambda 100 cheap
    (0.x - 100 x 2 / 2 is far below 0.y - 100 x 1 / 2). With the second knob 100 for
    30 % of prompts, a prompt goes to cheap exactly when its draw (a hash of the seed,
    ``knob`` and the prompt) is below 0.3."""
    router = _router(mode="lambda", knob=0.0, second_knob=100.0, second_share=0.3)
    router.fit(None, np.array([[0.0, 1.0]] * 4), embeddings=np.eye(4, 256))  # type: ignore[attr-defined]
    prompts = [f"request {i}" for i in range(200)]
    chosen = [d.model for d in router.route_batch(prompts)]  # type: ignore[attr-defined]
    second = prompt_draws(prompts, "0\0knob") < 0.3
    assert chosen == ["cheap" if s else "dear" for s in second]
    assert 0.2 < second.mean() < 0.4  # both settings route some of them


def test_a_second_knobs_share_is_its_settings_weight_in_the_policy() -> None:
    """The same router's policy: 70 % for lambda 0's choice (dear), 30 % for the second
    knob's (cheap), on every prompt."""
    router = _router(mode="lambda", knob=0.0, second_knob=100.0, second_share=0.3)
    router.fit(None, np.array([[0.0, 1.0]] * 4), embeddings=np.eye(4, 256))  # type: ignore[attr-defined]
    np.testing.assert_allclose(router.policy(np.eye(3, 256)), [[0.3, 0.7]] * 3)  # type: ignore[attr-defined]


def test_costs_given_for_models_in_any_order_stay_with_their_models() -> None:
    """Models given dearest first (the router keeps them smallest first): each cost stays
    with the model it was given for; a cost of 0 (a model that costs nothing) is one."""
    router = create_router(
        "logreg", [Candidate("dear", 2.0), Candidate("cheap", 1.0)], 0, encoder="hashing",
        costs=[5.0, 0.0],
    )  # fmt: skip
    assert router.model_names == ["cheap", "dear"]
    assert router.costs.tolist() == [0.0, 5.0]  # type: ignore[attr-defined]
