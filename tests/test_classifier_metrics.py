"""Classifier metrics and speed/memory measurements against hand-computed values."""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Sequence
from dataclasses import astuple

import numpy as np
import pytest

from routerllm.eval.classifier_metrics import (
    ClassScores,
    accuracy,
    classification_report,
    confusion_matrix,
    latency_stats,
    macro_f1,
    peak_memory,
    per_class_scores,
    throughput,
)
from routerllm.exceptions import RouterLLMError

# Pairs (true, pred): (0,0) (0,0) (0,1) (1,1) (1,2) (2,2)
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_accuracy_and_confusion() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)  # 4 of 6 on the diagonal
    # rows = true 0, 1, 2; columns = predicted 0, 1, 2
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # An explicit label order reorders rows and columns.
    assert confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 1, 0]).tolist() == [
        [1, 0, 0],
        [1, 1, 0],
        [0, 1, 2],
    ]


def test_per_class_and_macro_f1() -> None:
    scores = per_class_scores(Y_TRUE, Y_PRED)
    # class 0: tp 2, predicted 2, true 3 -> P 1, R 2/3, F1 2*(2/3)/(5/3) = 0.8
    # class 1: tp 1, predicted 2, true 2 -> P 0.5, R 0.5, F1 0.5
    # class 2: tp 1, predicted 2, true 1 -> P 0.5, R 1, F1 2*0.5/1.5 = 2/3
    assert astuple(scores[0]) == (1.0, pytest.approx(2 / 3), pytest.approx(0.8), 3)
    assert scores[1] == ClassScores(0.5, 0.5, 0.5, 2)
    assert astuple(scores[2]) == (0.5, 1.0, pytest.approx(2 / 3), 1)
    # macro F1 = (4/5 + 1/2 + 2/3) / 3 = (24 + 15 + 20) / 90 = 59/90
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(59 / 90)
    report = classification_report(Y_TRUE, Y_PRED)
    assert report["labels"] == [0, 1, 2] and report["accuracy"] == pytest.approx(2 / 3)
    assert report["macro_f1"] == pytest.approx(59 / 90)


def test_zero_division_counts_as_zero() -> None:
    # "b" is predicted once but never true: P 0/1 = 0, R 0/0 -> 0, F1 0.
    # "a": P 1/1, R 1/2, F1 2*0.5/1.5 = 2/3. Macro (2/3 + 0)/2 = 1/3.
    scores = per_class_scores(["a", "a"], ["a", "b"])
    assert scores["b"] == ClassScores(0.0, 0.0, 0.0, 0)
    assert macro_f1(["a", "a"], ["a", "b"]) == pytest.approx(1 / 3)
    # A label never seen ("c") still counts in the macro mean: (2/3 + 0 + 0)/3 = 2/9.
    assert macro_f1(["a", "a"], ["a", "b"], labels=["a", "b", "c"]) == pytest.approx(2 / 9)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "labels", "message"),
    [
        ([0, 1], [0], None, "equal length"),
        ([], [], None, "non-empty"),
        ([[0, 1]], [[0, 1]], None, "1-D"),
        ([0, 1], [0, 2], [0, 1], r"\['2'\] are not in the given labels"),
        ([0, 1], [0, 1], [0, 0, 1], "distinct"),
        # text against numbers: was a KeyError from confusion_matrix
        (["light", "heavy"], [0, 1], None, "one kind, both text or both numbers"),
        ([0, None], [0, 1], None, "comparable values"),
    ],
)
def test_bad_labels(y_true: object, y_pred: object, labels: list[int] | None, message: str) -> None:
    with pytest.raises(RouterLLMError, match=message):
        confusion_matrix(y_true, y_pred, labels)


def test_text_labels_against_numbers_are_refused_not_scored_zero() -> None:
    # "1" never equals 1: the accuracy was a silent 0.0 (and macro F1 raised KeyError),
    # where the same labels as numbers score 1.0.
    assert accuracy([1, 2], [1, 2]) == 1.0
    for metric in (accuracy, macro_f1, classification_report):
        with pytest.raises(RouterLLMError, match="one kind"):
            metric(["1", "2"], [1, 2])


def test_text_labels_held_as_objects_are_text() -> None:
    # A pandas column of strings gives an object array: it was refused as "not text"
    # against a list of strings, and an object array of strings against numbers passed.
    true = np.array(["light", "heavy", "light"], dtype=object)
    assert accuracy(true, ["light", "light", "light"]) == pytest.approx(2 / 3)
    assert macro_f1(true, ["light", "heavy", "light"]) == 1.0
    with pytest.raises(RouterLLMError, match="one kind"):
        accuracy(np.array(["1", "2"], dtype=object), [1, 2])


class FakeClock:
    """Time advances only when the measured function says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        return self.now


def test_latency_percentiles() -> None:
    clock = FakeClock()

    def work(ms: int) -> None:
        clock.calls += 1
        clock.now += ms / 1000.0

    stats = latency_stats(work, list(range(1, 101)), warmup=3, clock=clock)
    # Durations 1..100 ms; numpy linear percentiles at index q/100 * 99:
    # p50 -> 49.5 -> 50.5; p95 -> 94.05 -> 95.05; p99 -> 98.01 -> 99.01; mean 50.5.
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5) and stats.n == 100
    assert clock.calls == 103 and stats.warmup == 3  # 3 untimed warm-up calls


def test_latency_percentiles_of_fewer_than_a_hundred_items() -> None:
    # 4 items: p99 at index 0.99 * 3 = 2.97, between the two slowest (30 and 40 ms);
    # one item is every percentile; fewer items than the warm-up: each warms up once.
    clock = FakeClock()

    def work(ms: int) -> None:
        clock.now += ms / 1000.0

    stats = latency_stats(work, [10, 20, 30, 40], warmup=3, clock=clock)
    assert stats.p50_ms == pytest.approx(25.0) and stats.p95_ms == pytest.approx(38.5)
    assert stats.p99_ms == pytest.approx(39.7) and (stats.n, stats.warmup) == (4, 3)
    one = latency_stats(work, [7], warmup=3, clock=clock)
    assert one.p50_ms == one.p99_ms == pytest.approx(7.0) and (one.n, one.warmup) == (1, 1)


def test_throughput() -> None:
    clock = FakeClock()
    sizes: list[int] = []

    def batch(items: Sequence[int]) -> None:
        sizes.append(len(items))
        clock.now += 0.1

    # 10 items in batches of 4: [4, 4, 2] -> 3 timed batches of 0.1 s -> 10 / 0.3 items/s.
    assert throughput(batch, list(range(10)), 4, clock=clock) == pytest.approx(10 / 0.3)
    assert sizes == [4, 4, 4, 2]  # one untimed warm-up batch first
    with pytest.raises(RouterLLMError, match="batch_size >= 1"):
        throughput(batch, [1], 0)
    with pytest.raises(RouterLLMError, match="no measurable time"):
        throughput(lambda items: None, [1], 1, clock=lambda: 0.0)


def test_peak_memory() -> None:
    _, result, stats = peak_memory(lambda _: float(np.ones(1_000_000).sum()), lambda: None)
    assert result == 1_000_000.0
    # numpy reports its buffers to tracemalloc: one 8,000,000-byte array at the peak.
    assert 8_000_000 <= stats.python_peak_bytes < 9_000_000
    assert stats.rss_peak_bytes is not None and stats.rss_peak_bytes > 8_000_000
    assert stats.rss_peak_increase_bytes is not None
    assert stats.rss_peak_increase_bytes >= 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the call's own peak: Linux")
def test_peak_memory_sees_the_calls_own_peak_below_an_earlier_one() -> None:
    # An earlier, larger peak (e.g. loading a model) must not hide what the call
    # uses, as the process's lifetime high-water mark would.
    big = np.ones(40_000_000)  # 320 MB, touched
    del big
    _, _, stats = peak_memory(lambda _: float(np.ones(10_000_000).sum()), lambda: None)  # 80 MB
    assert stats.rss_peak_increase_bytes is not None
    assert 70_000_000 <= stats.rss_peak_increase_bytes < 200_000_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the call's own peak: Linux")
def test_peak_memory_counts_the_setup_in_the_resident_set_only() -> None:
    # The setup (loading a router) is resident memory the call needs, but is not traced:
    # tracing slows every allocation, a library's imports four-fold.
    loaded, total, stats = peak_memory(lambda a: float(a.sum()), lambda: np.ones(10_000_000))
    assert loaded.shape == (10_000_000,) and total == 10_000_000.0
    assert stats.rss_peak_increase_bytes is not None
    assert stats.rss_peak_increase_bytes >= 70_000_000  # the 80 MB array is resident
    assert stats.python_peak_bytes < 1_000_000  # summing it allocates almost nothing


def test_peak_memory_leaves_a_running_tracemalloc_on() -> None:
    tracemalloc.start()
    try:
        _, _, stats = peak_memory(lambda _: bytearray(2_000_000), lambda: None)
        assert stats.python_peak_bytes >= 2_000_000
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
