"""``LogFigures``, request by request, with chosen figures: the breakdowns and the
recommendations' inputs a report reads (its days, methods, failed loads, loads, answers
cut short, the comparison with the largest model), each computed here by hand. The
figures are binary fractions (0.25, 0.5, 0.75 kWh), so sums are exact."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import pytest

from routerllm.carbon.log_figures import LogFigures
from routerllm.carbon.log_tallies import CacheReplay, FailedLoads
from routerllm.carbon.meter import CACHED, FROM_TEXT, NO_USAGE, PER_TOKEN

MEASURED = "codecarbon:measured"
T = "2026-12-05T10:00:0{}+00:00"


def test_each_day_is_its_own_group() -> None:
    fig = LogFigures()
    fig.add("2026-12-04T23:59:00+00:00", "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [])
    fig.add("2026-12-05T00:01:00+00:00", "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [])
    assert {d: t.requests for d, t in fig.by_day.items()} == {"2026-12-04": 1, "2026-12-05": 1}


def test_a_failed_meters_zero_is_named_and_a_cached_part_that_spent_co2_is_measured() -> None:
    """CodeCarbon failed: its 0 kWh is unknown, its method named; carbon tracking off's
    "none" at 0 kWh is not. A cached part is neither measured nor not only while it spent
    nothing: one with CO2 counts as measured."""
    fig = LogFigures()
    off = ("router_inference", 0.1, 0.0, 0.0, "none")
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [off, ("llm_inference", 1.0, 0.0, 0.0, "codecarbon:failed")])  # fmt: skip
    assert fig.methods == {"codecarbon:failed"}
    assert (fig.unmeasured, fig.unmeasured_parts) == (1, {"router_inference", "llm_inference"})
    fig.add(T.format(1), "h", "n", "rules", 3, 4, 0.1, 0.0, "", "stop", [("llm_inference", 0.0, 0.0, 0.5, CACHED)])  # fmt: skip
    assert fig.unmeasured == 1 and ("model", "n") in fig.measured
    assert ("model", "m") not in fig.measured


def test_an_escalated_generations_energy_is_counted_by_each_models_method() -> None:
    """Tiny-light's 0.25 kWh of the 0.75 logged (load-estimate), the answering model's own
    0.5 (measured), though the logged part's method is both joined."""
    fig = LogFigures()
    whole = ("llm_inference", 1.0, 0.75, 0.5, f"codecarbon:load-estimate+{MEASURED}")
    first = ("llm_inference", 0.5, 0.25, 0.125, "codecarbon:load-estimate")
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [whole], [first])
    assert fig.by_method == {"codecarbon:load-estimate": 0.25, MEASURED: 0.5}


def test_only_a_remote_answer_priced_per_token_makes_a_per_token_model() -> None:
    fig = LogFigures()
    fig.add(T.format(0), "h", "free", "rules", 3, 4, 0.1, 0.0, "", "stop", [("llm_inference", 0.3, 0.0, 0.0, PER_TOKEN)])  # fmt: skip
    fig.add(T.format(1), "h", "priced", "rules", 3, 4, 0.1, 0.0, "", "stop", [("llm_inference", 0.3, 0.25, 0.125, PER_TOKEN)])  # fmt: skip
    assert fig.per_token_models == {"priced"}


def test_the_largest_models_served_answers_are_its_whole_ones_and_say_which_were_estimated() -> None:  # fmt: skip
    """Its cancelled answer counts as it is in the comparison, not in its rate (served);
    an answer logged with a cascade's joined methods, the largest's per-token, is
    estimated."""
    fig = LogFigures(largest="big")
    gen = ("llm_inference", 1.0, 0.5, 0.25, MEASURED)
    fig.add(T.format(0), "h", "big", "rules", 3, 2, 0.1, 0.0, "", "cancelled", [gen])
    assert (fig.served, len(fig.measured_as_is), fig.measured_as_is[0]) == (0, 1, 1)
    fig.add(T.format(1), "h", "big", "rules", 3, 8, 0.1, 0.0, "", "stop", [gen])
    assert (fig.served, fig.served_tokens.total(), fig.served_estimated) == (1, 8, 0)
    joined = ("llm_inference", 1.0, 0.75, 0.25, f"{MEASURED}+{PER_TOKEN}")
    fig.add(T.format(2), "h", "big", "rules", 3, 8, 0.1, 0.0, "", "stop", [joined])
    assert (fig.served, fig.served_kwh.total(), fig.served_estimated) == (2, 1.25, 1)


def test_the_demos_requests_are_not_replayed_through_the_cache() -> None:
    """The demo asks its prompts twice (routed, then on the largest model) on purpose."""
    fig = LogFigures(replay=CacheReplay(max_entries=4, ttl_s=60))
    for i, tag in enumerate(["demo", "demo-baseline", "", ""]):
        fig.add(T.format(i), "h", "m", "rules", 3, 4, 0.1, 0.0, tag, "stop", [("llm_inference", 1.0, 0.5, 0.25, MEASURED)])  # fmt: skip
    assert fig.replay is not None and (fig.replay.hits, fig.replay.saved_kwh.total()) == (1, 0.5)


def test_a_models_failed_loads_count_since_the_last_and_stay_measured_once_they_were() -> None:  # fmt: skip
    """m failed to load (0.25 kWh measured; the log names m as the failed load's model),
    answered, failed again (carbon tracking off), a request failed without a load error,
    then it answered again: 2 failed loads, 0.25 kWh, measured, 1 answer since the last."""
    fig = LogFigures()
    loaded = ("model_loading", 0.5, 0.25, 0.125, MEASURED)
    answer = ("llm_inference", 0.5, 0.5, 0.25, MEASURED)
    fig.add(T.format(1), "h", "m", "rules", 3, 0, 0.5, 0.0, "", "error", [loaded], load_error="e1", load_error_model="m")  # fmt: skip
    fig.add(T.format(2), "h", "m", "rules", 3, 4, 0.5, 0.0, "", "stop", [answer])
    assert fig.failed_loads["m"].answered_since == 1
    fig.add(T.format(3), "h", "m", "rules", 3, 0, 0.5, 0.0, "", "error", [("model_loading", 0.5, 0.0, 0.0, "none")], load_error="e2")  # fmt: skip
    fig.add(T.format(4), "h", "m", "rules", 3, 0, 0.5, 0.0, "", "error", [])
    fig.add(T.format(5), "h", "m", "rules", 3, 4, 0.5, 0.0, "", "stop", [answer])
    assert fig.failed_loads == {"m": FailedLoads(count=2, kept=0, energy_kwh=0.25, measured=True, last=T.format(3), error="e2", answered_since=1)}  # fmt: skip
    assert fig.loading_kwh.total() == 0.0 and not fig.loads  # failed loads are no loads


def test_a_failed_step_ups_load_is_the_larger_models_and_no_part_of_the_answering_ones() -> None:  # fmt: skip
    """The cascade stepped up from m to big, whose load failed (0.25 kWh of the 0.75 of
    loading logged): m's answer is kept; big's failed load is counted for big, m's own
    0.5 kWh as loading's churn."""
    fig = LogFigures()
    loading = ("model_loading", 1.5, 0.75, 0.375, MEASURED)
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.5, 0.0, "", "stop", [loading], [("model_loading", 0.5, 0.25, 0.125, MEASURED)], "boom", "big", 0.25)  # fmt: skip
    assert fig.failed_loads == {"big": FailedLoads(count=1, kept=1, energy_kwh=0.25, measured=True, last=T.format(0), error="boom")}  # fmt: skip
    assert (fig.loading_kwh.total(), fig.loads) == (0.5, {"m": 1})


def test_a_failed_load_after_an_escalation_is_its_own_part_of_the_loading_logged() -> None:
    """Escalated from a (0.25 kWh of loading) to m, whose load failed: m's failed load is
    0.5 kWh, a's 0.25 loading's churn."""
    fig = LogFigures()
    fig.add(T.format(0), "h", "m", "rules", 3, 0, 0.5, 0.0, "", "error", [("model_loading", 1.5, 0.75, 0.375, MEASURED)], [("model_loading", 0.5, 0.25, 0.125, MEASURED)], "boom")  # fmt: skip
    assert (fig.failed_loads["m"].energy_kwh, fig.loading_kwh.total(), fig.loads) == (0.5, 0.25, {})


def test_a_load_is_counted_where_it_took_time_or_energy() -> None:
    fig = LogFigures()
    for i, (model, seconds, kwh) in enumerate([("idle", 0.0, 0.0), ("timed", 0.5, 0.0), ("spent", 0.0, 0.25)]):  # fmt: skip
        fig.add(T.format(i), "h", model, "rules", 3, 4, 0.1, 0.0, "", "stop", [("model_loading", seconds, kwh, 0.0, MEASURED)])  # fmt: skip
    assert fig.loads == {"timed": 1, "spent": 1}


def test_an_answer_that_filled_the_context_exactly_is_filled_not_cut_short() -> None:
    """m's context is 16 tokens: 6 of prompt and 10 of answer filled it; 5 and 9 did not."""
    fig = LogFigures(contexts={"m": 16})
    fig.add(T.format(0), "h", "m", "rules", 6, 10, 0.1, 0.0, "", "length", [])
    fig.add(T.format(1), "h", "m", "rules", 5, 9, 0.1, 0.0, "", "length", [])
    c = fig.cut["m"]
    assert (c.known, c.cut, c.filled, c.longest, c.context) == (2, 2, 1, 9, 16)


def test_a_request_to_the_top_model_that_the_caller_named_is_unrouted() -> None:
    fig = LogFigures(ladder_top="big")
    for i, router in enumerate(["fixed", "largest", "rules"]):
        fig.add(T.format(i), "h", "big", router, 3, 4, 0.1, 0.0, "", "stop", [])
    assert (fig.counted, fig.unrouted) == (3, 2)


def test_a_token_priced_models_cost_is_known_without_its_energy() -> None:
    """Logged with carbon tracking off at $0: known for a model priced by its tokens, not
    for one priced by its energy."""
    fig = LogFigures(token_priced=["remote"])
    off = [("llm_inference", 0.3, 0.0, 0.0, "none")]
    fig.add(T.format(0), "h", "remote", "rules", 3, 4, 0.1, 0.0, "", "stop", off)
    fig.add(T.format(1), "h", "local", "rules", 3, 4, 0.1, 0.0, "", "stop", off)
    assert fig.uncosted_groups() == {("model", "local")}


def test_no_requests_make_no_groups() -> None:
    assert LogFigures().unmeasured_groups() == LogFigures().uncosted_groups() == set()


def test_each_component_adds_up_its_own_energy_co2_and_time() -> None:
    """Two requests: loading 0.25 kWh / 0.125 kg / 1.5 s and 0.5 / 0.25 / 2.5, generation
    0.5 / 0.0625 / 4 once. The component table's CO2 and time were not checked anywhere:
    a CO2 summed from the energy, or no time at all, went unseen."""
    fig = LogFigures()
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [("model_loading", 1.5, 0.25, 0.125, MEASURED), ("llm_inference", 4.0, 0.5, 0.0625, MEASURED)])  # fmt: skip
    fig.add(T.format(1), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [("model_loading", 2.5, 0.5, 0.25, MEASURED)])  # fmt: skip
    c = {n: (t.energy_kwh, t.co2_kg, t.duration_s) for n, t in fig.by_component.items() if t.energy_kwh}  # fmt: skip
    assert c == {"model_loading": (0.75, 0.375, 4.0), "llm_inference": (0.5, 0.0625, 4.0)}
    assert (fig.totals.energy_kwh, fig.totals.co2_kg) == (1.25, 0.4375)


def test_a_failed_requests_spending_is_in_the_totals_but_not_in_the_comparison() -> None:
    """A request that failed (no answer) after a measured 0.25 kWh of generation: in the
    totals, and left out of the comparison with the largest model (nothing to price
    there), said as failed rather than as logged without energy. Untested, a failed
    request counted on both sides of the comparison went unseen."""
    fig = LogFigures(largest="big")
    gen = ("llm_inference", 1.0, 0.25, 0.125, MEASURED)
    fig.add(T.format(0), "h", "m", "rules", 3, 0, 0.5, 0.0, "", "error", [gen])
    fig.add(T.format(1), "h", "m", "rules", 3, 4, 0.5, 0.0, "", "stop", [gen])
    assert (fig.totals.requests, fig.totals.failed, fig.totals.energy_kwh) == (2, 1, 0.5)
    assert (fig.failed_out, fig.left_out, len(fig.measured_kwh), fig.measured_kwh.total()) == (1, 0, 1, 0.25)  # fmt: skip
    assert fig.estimate_largest(0.125, 0.0625) == (0.5, 0.25)  # the answer's 4 tokens


def test_a_replayed_hit_makes_its_prompt_the_most_recently_used_as_the_cache_does() -> None:
    """Two entries: a, b, a again (a hit: a becomes the most recent), then c evicts b, not
    a; so a is a hit again and b is not. Untested, a hit that left its prompt the least
    recently used (evicting a, the prompt asked most) went unseen."""
    replay = CacheReplay(max_entries=2, ttl_s=3600)
    for i, sha in enumerate("abaca" + "b"):
        replay.add(T.format(i), sha, "m", 0.5, [("llm_inference", 1.0, 0.5, 0.25, MEASURED)])
    assert (replay.hits, replay.saved_kwh.total(), list(replay.stored)) == (2, 1.0, [("a", "m"), ("b", "m")])  # fmt: skip


def test_a_model_whose_measured_answers_wrote_no_tokens_has_no_rate_per_token() -> None:
    """m's measured answer wrote 0 tokens: no rate (not its 0.25 kWh per "token"); n's 4
    tokens at 0.5 kWh give 0.125 kWh a token."""
    fig = LogFigures()
    fig.add(T.format(0), "h", "m", "rules", 3, 0, 0.1, 0.0, "", "stop", [("llm_inference", 1.0, 0.25, 0.125, MEASURED)])  # fmt: skip
    fig.add(T.format(1), "h", "n", "rules", 3, 4, 0.1, 0.0, "", "stop", [("llm_inference", 1.0, 0.5, 0.25, MEASURED)])  # fmt: skip
    assert fig.kwh_per_output_token() == {"n": 0.125}


def test_a_request_logged_without_parts_spent_nothing_as_measured() -> None:
    """A request logged without any measurement spent nothing as logged: its groups are
    not said to be unmeasured, nor its $0 unknown."""
    fig = LogFigures()
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [])
    assert (fig.unmeasured, fig.unmeasured_groups(), fig.uncosted_groups()) == (0, set(), set())


def test_a_grid_whose_requests_were_all_unmeasured_is_said_so() -> None:
    """Carbon tracking off on the FRA grid's only request: that grid's row is unmeasured
    and its $0 unknown, as a model's or a day's; the measured USA grid's is not."""
    fig = LogFigures()
    off, on = ("llm_inference", 1.0, 0.0, 0.0, "none"), ("llm_inference", 1.0, 0.5, 0.25, MEASURED)  # fmt: skip
    fig.add(T.format(0), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [off], grid="FRA")
    fig.add(T.format(1), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [on], grid="USA")
    assert fig.unmeasured_groups() == fig.uncosted_groups() == {("grid", "FRA")}


def test_an_answer_of_unknown_usage_is_counted_where_a_cascade_joined_its_method() -> None:
    """A remote answer without its token count, its tokens estimated (from-text), alone or
    escalated to after a measured model (methods joined by +): 2 answers of m estimated;
    one logged before they were (no-usage, at 0 tokens) is counted apart, not in them."""
    fig = LogFigures()
    methods = [FROM_TEXT, f"{MEASURED}+{FROM_TEXT}", MEASURED, NO_USAGE]
    for i, method in enumerate(methods):
        fig.add(T.format(i), "h", "m", "rules", 3, 4, 0.1, 0.0, "", "stop", [("llm_inference", 1.0, 0.25, 0.125, method)])  # fmt: skip
    assert fig.estimated_usage == {"m": 2} and fig.unknown_usage == {"m": 1}
    assert fig.totals.energy_kwh == pytest.approx(1.0)  # each in the totals as logged


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-12-07T01:02:03.456789+00:00",  # as the log writes it
        "2026-12-07T01:02:03+01:00",
        "2026-12-07T01:02:03",  # no offset: UTC, as instant reads it
        "2026-12-07 01:02:03Z",
        "20261207T010203Z",
    ],
)
def test_the_cache_replays_seconds_are_instants(timestamp: str) -> None:
    # the replayed cache's fast path reads the instant that `instant` reads
    from routerllm.carbon.log_rows import instant
    from routerllm.carbon.log_tallies import seconds

    assert seconds(timestamp) == instant(timestamp).timestamp()


def test_a_load_takes_its_models_answers_out_of_the_replayed_cache_reading_no_other_entry() -> None:  # fmt: skip
    """A model loaded again (a new process's cache starts empty) takes its own entries out
    of the replayed cache: until 2026-12-07 each such load read every entry the cache held,
    of every model, to find them (300 entries a request in benchmarks/report_scaling.py,
    whose requests nearly all load their model). Here 200 of m's entries stay stored while
    n is loaded 50 times; the cache's order and what it answers are unchanged: m's entry a
    is still a hit, n's x, answered before n's last load, is not."""

    class ReadCounted(OrderedDict[tuple[str, str], float]):
        read = 0

        def __iter__(self) -> Iterator[tuple[str, str]]:
            for key in super().__iter__():
                ReadCounted.read += 1
                yield key

    replay = CacheReplay(max_entries=1000, ttl_s=3600, stored=ReadCounted())
    gen = [("llm_inference", 1.0, 0.5, 0.25, MEASURED)]
    when = "2026-12-05T10:{:02d}:{:02d}+00:00"
    for i in range(200):
        replay.add(when.format(0, 0), f"m{i}", "m", 0.5, gen)
    for i in range(50):
        replay.add(when.format(1, i), f"x{i % 2}", "n", 0.5, gen, loaded=True)
    assert ReadCounted.read == 0
    assert (replay.hits, replay.after_reload) == (0, 48)  # x0 and x1 after n's loads
    replay.add(when.format(2, 0), "m0", "m", 0.5, gen)
    replay.add(when.format(2, 1), "x1", "n", 0.5, gen)  # stored by the last load's answer
    replay.add(when.format(2, 2), "x0", "n", 0.5, gen)  # n loaded since it was answered
    assert (replay.hits, replay.after_reload) == (2, 49)
    assert list(replay.stored)[-3:] == [("m0", "m"), ("x1", "n"), ("x0", "n")]
