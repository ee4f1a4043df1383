"""The report's comparison with the largest model, by hand: a few logged requests with
chosen figures, and what ``routerllm report`` must make of them (README, "Reports":
priced at the largest model's generation energy per output token, an escalation's
first answers on the actual side only, the saving a fraction of CO2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.log_tallies import Terms
from routerllm.carbon.meter import Measurement
from routerllm.carbon.report import logged_report, summarize
from routerllm.carbon.report_text import report_lines
from routerllm.carbon.request_log import RequestLog
from routerllm.config import load_config

from .conftest import tiny_config_dict, write_config

SMALL, LARGEST = "tiny-light", "tiny-heavy"  # the tiny config's ladder: light, medium, heavy
ROUTING = (1e-7, 5e-8)  # every request's routing, kWh and kg


def _part(component: str, kwh: float, kg: float) -> Measurement:
    return Measurement(component, 0.5, kwh, kg, "test")


def _request(
    i: int,
    model: str,
    tokens: int,
    generation: tuple[float, float],
    loading: tuple[float, float] = (0.0, 0.0),
    escalated: dict[str, tuple[float, float]] | None = None,
    prompt_tokens: int = 3,
) -> RequestRecord:
    """A request answered by ``model`` in ``tokens`` tokens; each figure (kWh, kg CO2)
    is its component's whole, ``escalated`` the part of it a cascade's first models spent."""
    parts = {"router_inference": ROUTING, "model_loading": loading, "llm_inference": generation}
    return RequestRecord(
        id=f"r{i}",
        timestamp=f"2026-12-05T00:00:{i:02d}.000000+00:00",
        prompt_sha256=f"h{i}",
        prompt_chars=5,
        model=model,
        router="rules",
        confidence=0.9,
        prompt_tokens=prompt_tokens,
        completion_tokens=tokens,
        latency_s=0.5,
        cost_usd=0.0,
        components={c: _part(c, *v) for c, v in parts.items()},
        escalated={c: _part(c, *v) for c, v in (escalated or {}).items()},
    )


def _logged_versus_largest(
    tmp_path: Path, requests: list[RequestRecord], **largest_figures: float
) -> dict[str, Any]:
    """``routerllm report``'s comparison of ``requests``, logged, and its text line; the
    same as ``summarize`` of the records read back. ``largest_figures``: the largest
    model's figures besides the tiny config's 1e-7 kWh per generated token."""
    tmp_path.mkdir(exist_ok=True)
    data = tiny_config_dict(tmp_path)
    data["models"][-1].update(largest_figures)
    config = load_config(write_config(tmp_path, data))
    with RequestLog(config.log.path) as log:
        for r in requests:
            log.append(r)
        records = list(log.records())
    report = logged_report(config)
    vs = report.versus_largest
    assert vs is not None and vs["largest_model"] == LARGEST
    assert summarize(records, config.models, "FRA").versus_largest == vs
    (line,) = [x for x in report_lines(report) if x.startswith("versus everything on")]
    return {**vs, "line": line}


def test_an_escalated_answer_counts_on_the_estimate_without_its_first_models_answers(
    tmp_path: Path,
) -> None:
    """The cascade escalated r2 from tiny-light to the largest model: tiny-light's load
    and answer (3e-6 kWh, 1.5e-6 kg) are on the actual side only; the largest model's
    rate is its own generations' (r0's and r2's own), 1e-5 kWh / 50 tokens."""
    first = {"model_loading": (2e-6, 1e-6), "llm_inference": (1e-6, 5e-7)}
    vs = _logged_versus_largest(
        tmp_path,
        [
            _request(0, LARGEST, 20, (4e-6, 2e-6)),
            _request(1, SMALL, 10, (1e-6, 5e-7)),
            # llm_inference: tiny-light's 1e-6 kWh and the largest model's own 6e-6
            _request(2, LARGEST, 30, (7e-6, 3.5e-6), loading=(2e-6, 1e-6), escalated=first),
        ],
    )
    assert "measured rate of tiny-heavy in this log (2 requests)" in vs["method"]
    # rate 2e-7 kWh, 1e-7 kg a token; r0 and r2 as they are, r2 less its first models'
    # r0: 4.1e-6 kWh, 2.05e-6 kg; r1: 10 tokens, 2e-6 kWh, 1e-6 kg;
    # r2: 9.1e-6 - 3e-6 = 6.1e-6 kWh, 4.55e-6 - 1.5e-6 = 3.05e-6 kg
    assert vs["estimated_energy_kwh"] == pytest.approx(12.2e-6, rel=1e-12)
    assert vs["estimated_co2_kg"] == pytest.approx(6.1e-6, rel=1e-12)
    # actual: everything logged, tiny-light's first answer included
    assert vs["actual_energy_kwh"] == pytest.approx(4.1e-6 + 1.1e-6 + 9.1e-6, rel=1e-12)
    assert vs["actual_co2_kg"] == pytest.approx(2.05e-6 + 0.55e-6 + 4.55e-6, rel=1e-12)
    assert vs["co2_saved_fraction"] == pytest.approx(1 - 7.15 / 6.1, rel=1e-12)


def test_the_saving_is_a_fraction_of_co2_where_requests_ran_on_different_grids(
    tmp_path: Path,
) -> None:
    """tiny-light's answers were measured on a grid of 0.1 kg/kWh, the largest model's
    on one of 0.5: the CO2 saved (42 %) is not the energy saved (22 %)."""
    vs = _logged_versus_largest(
        tmp_path,
        [
            _request(0, LARGEST, 20, (4e-6, 2e-6)),
            _request(1, SMALL, 10, (1e-6, 1e-7)),
            _request(2, SMALL, 10, (1e-6, 1e-7)),
        ],
    )
    # rate 2e-7 kWh, 1e-7 kg a token: r1 and r2 ~2e-6 kWh, 1e-6 kg each
    assert vs["estimated_energy_kwh"] == pytest.approx(4.1e-6 + 4e-6, rel=1e-12)
    assert vs["estimated_co2_kg"] == pytest.approx(2.05e-6 + 2e-6, rel=1e-12)
    assert vs["actual_energy_kwh"] == pytest.approx(4.1e-6 + 2.2e-6, rel=1e-12)
    assert vs["actual_co2_kg"] == pytest.approx(2.05e-6 + 0.3e-6, rel=1e-12)
    # CO2: 1 - 2.35 / 4.05 = 0.4198; energy: 1 - 6.3 / 8.1 = 0.2222
    assert vs["co2_saved_fraction"] == pytest.approx(1 - 2.35 / 4.05, rel=1e-12)
    assert "(42% less CO2;" in vs["line"]


def test_the_largest_models_rate_is_its_generations_not_its_whole_requests(
    tmp_path: Path,
) -> None:
    """The largest model's r0 loaded it (6e-6 kWh) and routed (1e-7 kWh) before it
    generated 20 tokens with 4e-6 kWh: its rate per output token is 2e-7 kWh, not the
    whole request's 5.05e-7."""
    vs = _logged_versus_largest(
        tmp_path,
        [
            _request(0, LARGEST, 20, (4e-6, 2e-6), loading=(6e-6, 3e-6)),
            _request(1, SMALL, 10, (1e-6, 5e-7)),
        ],
    )
    # r0 as it is, 1.01e-5 kWh and 5.05e-6 kg; r1's 10 tokens at 2e-7 kWh, 1e-7 kg
    assert vs["estimated_energy_kwh"] == pytest.approx(1.01e-5 + 2e-6, rel=1e-12)
    assert vs["estimated_co2_kg"] == pytest.approx(5.05e-6 + 1e-6, rel=1e-12)
    assert vs["actual_energy_kwh"] == pytest.approx(1.01e-5 + 1.1e-6, rel=1e-12)


#: The largest model's cost per prompt token and per generated token (kWh; kg: half).
READ, WRITE = 2e-8, 1e-7


def _priced(i: int, model: str, prompt_tokens: int, tokens: int) -> RequestRecord:
    """A request whose generation spent exactly ``READ`` a prompt token and ``WRITE`` a
    generated one (on a grid of 0.5 kg/kWh)."""
    kwh = prompt_tokens * READ + tokens * WRITE
    return _request(i, model, tokens, (kwh, kwh / 2), prompt_tokens=prompt_tokens)


def test_the_largest_models_prompts_and_answers_are_priced_apart_where_its_log_tells_them_apart(
    tmp_path: Path,
) -> None:
    """The largest model answered short questions, tiny-light a 1,000-token prompt: the
    largest's logged energy over its output tokens carried its short prompts' energy
    only, and priced the long prompt's at nothing (1.07e-6 kWh instead of 2.1e-5). Its
    three requests of different shapes tell a prompt token's cost from a generated
    one's, as the CarbonPredictor fits them."""
    largest = [_priced(0, LARGEST, 3, 20), _priced(1, LARGEST, 10, 5), _priced(2, LARGEST, 6, 30)]
    small = _request(3, SMALL, 10, (1e-6, 5e-7), prompt_tokens=1000)
    vs = _logged_versus_largest(tmp_path, [*largest, small])
    as_is = sum(r.energy_kwh for r in largest)
    # the long prompt on the largest model: 1000 x 2e-8 + 10 x 1e-7 = 2.1e-5 kWh
    assert vs["estimated_energy_kwh"] == pytest.approx(as_is + 2.1e-5, rel=1e-9)
    assert vs["estimated_co2_kg"] == pytest.approx(sum(r.co2_kg for r in largest) + 1.05e-5, rel=1e-9)  # fmt: skip
    assert "measured rates of tiny-heavy in this log per prompt and per generated token (3 requests)" in vs["method"]  # fmt: skip
    # two requests fit any two costs exactly: too few to tell them apart (as the predictor)
    vs = _logged_versus_largest(tmp_path / "two", [*largest[:2], small])
    assert vs["method"] == "estimate: measured rate of tiny-heavy in this log (2 requests)"
    assert vs["estimated_energy_kwh"] == pytest.approx(sum(r.energy_kwh for r in largest[:2]) + 10 * 2.76e-6 / 25)  # fmt: skip


def test_a_far_off_reading_of_the_largest_model_does_not_set_its_rates(tmp_path: Path) -> None:
    """One of the largest model's answers logged 50 times what its tokens cost (a
    tracker's bad sample, the machine busy with something else): it raised the rates the
    routed requests are priced at, the saving claimed with it. As the CarbonPredictor,
    the rates are fitted without a reading over 10 times what the others make of it;
    that answer still counts as it is."""
    largest = [_priced(0, LARGEST, 3, 20), _priced(1, LARGEST, 10, 5), _priced(2, LARGEST, 6, 30)]
    kwh = 50 * (8 * READ + 12 * WRITE)
    off = _request(3, LARGEST, 12, (kwh, kwh / 2), prompt_tokens=8)
    small = _request(4, SMALL, 10, (1e-6, 5e-7), prompt_tokens=1000)
    vs = _logged_versus_largest(tmp_path, [*largest, off, small])
    as_is = sum(r.energy_kwh for r in [*largest, off])
    assert vs["estimated_energy_kwh"] == pytest.approx(as_is + 2.1e-5, rel=1e-9)
    assert "per prompt and per generated token (4 requests, 1 far-off reading left out of the rates)" in vs["method"]  # fmt: skip


def test_a_log_of_one_shape_is_shared_at_the_config_figures_ratio_where_it_has_prompt_figures(
    tmp_path: Path,
) -> None:
    """Two answers of the largest model of one shape (10 prompt tokens, 20 written, 3e-6
    kWh each) cannot tell the two costs apart: with a figure per prompt token in the
    config (a fifth of a generated one's), the logged energy is shared at that ratio,
    as the CarbonPredictor's ``config_split`` shares it; without one, as before, it is
    all a generated token's."""
    largest = [_request(i, LARGEST, 20, (3e-6, 1.5e-6), prompt_tokens=10) for i in range(2)]
    small = _request(2, SMALL, 10, (1e-6, 5e-7), prompt_tokens=1000)
    vs = _logged_versus_largest(tmp_path / "split", [*largest, small], energy_per_prompt_token_kwh=2e-8)  # fmt: skip
    as_is = 2 * (3e-6 + ROUTING[0])
    # a generated token: 6e-6 / (40 + 0.2 x 20) kWh; the long prompt reads 0.2 x 1000 of them
    assert vs["estimated_energy_kwh"] == pytest.approx(as_is + 6e-6 / 44 * (200 + 10), rel=1e-9)
    assert vs["estimated_co2_kg"] == pytest.approx(as_is / 2 + 3e-6 / 44 * 210, rel=1e-9)
    assert "measured rate of tiny-heavy in this log (2 requests), shared between prompt and generated tokens at the config's ratio" in vs["method"]  # fmt: skip
    vs = _logged_versus_largest(tmp_path / "whole", [*largest, small])
    assert vs["estimated_energy_kwh"] == pytest.approx(as_is + 10 * 3e-6 / 20, rel=1e-9)
    assert vs["method"] == "estimate: measured rate of tiny-heavy in this log (2 requests)"


@pytest.mark.parametrize(
    ("terms", "total"),
    [
        ([], 0),
        ([3, 2], 5),  # token counts: an int, as ``sum`` gives
        ([0, 0], 0),  # a request without components spends an int 0
        ([0.5, 0.25], 0.75),
        ([3, 0.5, 2], 5.5),  # ints among doubles: every term counts
        ([0, 0.5], 0.5),
    ],
)
def test_terms_total_is_the_sum_of_every_term(terms: list[float], total: float) -> None:
    t = Terms()
    for v in terms:
        t.add(v)
    assert t.total() == total == sum(terms)
    assert type(t.total()) is type(sum(terms)), "an int where every term is one, as sum's"
    assert len(t) == len(terms)


def test_versus_largest_counts_int_and_float_figures_of_results_alike() -> None:
    """``summarize`` of results given with whole-number figures beside fractional ones
    (Python's API takes either): the largest model's rate counts both of its answers,
    10 kWh / 50 tokens."""
    from routerllm.config import ModelConfig

    from .conftest import tiny_model

    models = [ModelConfig.model_validate(tiny_model(n, t, p)) for n, t, p in [(SMALL, "light", 0.1), (LARGEST, "heavy", 1.5)]]  # fmt: skip
    records = [
        _request(0, LARGEST, 20, (4, 2)),
        _request(1, LARGEST, 30, (6.0, 3.0)),
        _request(2, SMALL, 10, (1.0, 0.5)),
    ]
    vs = summarize(records, models, "FRA").versus_largest
    assert vs is not None and "(2 requests)" in vs["method"]
    # rate 0.2 kWh, 0.1 kg a token: r0 and r1 as they are (their routing too), r2 2 kWh
    assert vs["estimated_energy_kwh"] == pytest.approx(10 + 2 * ROUTING[0] + 2, rel=1e-12)
    assert vs["estimated_co2_kg"] == pytest.approx(5 + 2 * ROUTING[1] + 1, rel=1e-12)
