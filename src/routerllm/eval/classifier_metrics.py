"""Classifier metrics (accuracy, precision/recall/F1, confusion) and speed/memory measurements.

Definitions, for labels ``y_true`` and ``y_pred`` of equal length n >= 1 and a label
set L (default: the sorted union of both arrays):

* accuracy = (1/n) * #{i : y_pred[i] == y_true[i]}.
* confusion[a, b] = #{i : y_true[i] == L[a] and y_pred[i] == L[b]} (rows = true).
* For class k: tp = confusion[k, k], precision = tp / (column k sum), recall = tp /
  (row k sum), F1 = 2 * precision * recall / (precision + recall). A 0/0 counts as 0
  (precision of a class never predicted, recall of a class never true, F1 when
  precision + recall = 0), as scikit-learn's ``zero_division=0``.
* macro F1 = the unweighted mean of F1 over every class of L.

Speed: per-item latency percentiles use numpy's default (linear interpolation between
order statistics: the p99 of fewer than 100 items lies between their two slowest, the
slowest itself for one item); throughput = items processed / seconds spent in the timed batches.

Memory (``peak_memory``): ``rss_peak_bytes`` is the process's peak resident set
during the call and ``rss_peak_increase_bytes`` how far it rose above the resident
set at the call's start: memory the call used from every allocator, torch's and
onnxruntime's included. On Linux the kernel's high-water mark is reset at the start
(``/proc/self/clear_refs``), so the peak is the call's own; elsewhere it is the
process's lifetime high-water mark (``getrusage``), and the increase is how much the
call raised it (0 when it stayed below an earlier peak). ``python_peak_bytes`` is
tracemalloc's peak of memory allocated through Python's allocators during the call,
above what was allocated when it started (numpy arrays included). A ``setup`` (loading
a router, say) runs first inside the resident-set window but untraced: tracing makes
every allocation slower (loading a MiniLM classifier, torch's and transformers' imports
included, took four times as long under it), and what it would count there is mostly
the libraries' own modules. The C heap's free pages are handed back to the system first
(``backends.heap``): memory an earlier step freed but kept resident (a model trained or
unloaded in the same process) served an 80 MB array without the resident set rising.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from routerllm.exceptions import RouterLLMError

S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class, and its support (number of true items)."""

    precision: float
    recall: float
    f1: float
    support: int


def _labels(
    y_true: object, y_pred: object, labels: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise RouterLLMError(
            f"y_true and y_pred must be non-empty 1-D arrays of equal length; "
            f"got shapes {t.shape} and {p.shape}"
        )
    # Text against numbers ("1" vs 1) never matches: every item would count as wrong.
    if _is_text(t) != _is_text(p):
        raise RouterLLMError(
            f"y_true and y_pred must hold labels of one kind, both text or both numbers; "
            f"got {t.dtype} and {p.dtype}: convert one to the other's kind"
        )
    try:
        union = np.union1d(t, p).tolist()
    except TypeError as e:  # e.g. None among numbers: labels that cannot be sorted
        raise RouterLLMError(
            f"labels must be comparable values (all text or all numbers): {e}"
        ) from e
    if labels is None:
        return t, p, union
    known = list(labels)
    if len(set(known)) != len(known) or not known:
        raise RouterLLMError("labels must be a non-empty list of distinct labels")
    unknown = set(union) - set(known)
    if unknown:
        raise RouterLLMError(f"labels {sorted(map(str, unknown))} are not in the given labels")
    return t, p, known


def _is_text(labels: np.ndarray) -> bool:
    """Whether ``labels`` are text: a string array, or an object array of strings (a
    pandas column's values)."""
    kind = labels.dtype.kind
    return kind in "US" or (kind == "O" and all(isinstance(v, str) for v in labels))


def accuracy(y_true: object, y_pred: object) -> float:
    """The fraction of items whose predicted label equals the true label."""
    t, p, _ = _labels(y_true, y_pred, None)
    return float(np.mean(t == p))


def confusion_matrix(
    y_true: object, y_pred: object, labels: Sequence[Any] | None = None
) -> np.ndarray:
    """Counts ``[a, b]`` of items with true label L[a] predicted as L[b] (rows = true)."""
    t, p, known = _labels(y_true, y_pred, labels)
    index = {label: i for i, label in enumerate(known)}
    matrix = np.zeros((len(known), len(known)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist(), strict=True):
        matrix[index[a], index[b]] += 1
    return matrix


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def per_class_scores(
    y_true: object, y_pred: object, labels: Sequence[Any] | None = None
) -> dict[Any, ClassScores]:
    """Precision, recall, F1 and support of each class of L, in the order of L."""
    _, _, known = _labels(y_true, y_pred, labels)
    matrix = confusion_matrix(y_true, y_pred, known)
    out: dict[Any, ClassScores] = {}
    for k, label in enumerate(known):
        tp = float(matrix[k, k])
        precision = _ratio(tp, float(matrix[:, k].sum()))
        recall = _ratio(tp, float(matrix[k, :].sum()))
        f1 = _ratio(2 * precision * recall, precision + recall)
        out[label] = ClassScores(precision, recall, f1, int(matrix[k, :].sum()))
    return out


def macro_f1(y_true: object, y_pred: object, labels: Sequence[Any] | None = None) -> float:
    """The unweighted mean of the per-class F1 over every class of L."""
    scores = per_class_scores(y_true, y_pred, labels)
    return float(np.mean([s.f1 for s in scores.values()]))


def classification_report(
    y_true: object, y_pred: object, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """accuracy, macro_f1, per_class (label -> ClassScores), confusion and labels in one dict."""
    _, _, known = _labels(y_true, y_pred, labels)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, known),
        "per_class": per_class_scores(y_true, y_pred, known),
        "confusion": confusion_matrix(y_true, y_pred, known),
        "labels": known,
    }


@dataclass(frozen=True)
class LatencyStats:
    """Per-item latency percentiles and mean, in milliseconds, over ``n`` timed items,
    after ``warmup`` untimed calls."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    n: int
    warmup: int = 0


def latency_stats(
    fn: Callable[[T], object],
    items: Sequence[T],
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """Time ``fn(item)`` for each item, one at a time, after ``warmup`` untimed calls.

    The warm-up calls use the first ``warmup`` items (fewer if there are fewer items);
    every item is then timed once with ``clock`` (seconds).
    """
    if len(items) == 0:
        raise RouterLLMError("latency_stats needs at least one item")
    untimed = items[: max(warmup, 0)]
    for item in untimed:
        fn(item)
    durations = []
    for item in items:
        start = clock()
        fn(item)
        durations.append(clock() - start)
    ms = np.asarray(durations) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    stats = (float(p50), float(p95), float(p99), float(ms.mean()))
    return LatencyStats(*stats, n=len(ms), warmup=len(untimed))


def throughput(
    fn_batch: Callable[[Sequence[T]], object],
    items: Sequence[T],
    batch_size: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Items per second of ``fn_batch`` over ``items`` in consecutive batches of ``batch_size``.

    ``warmup`` untimed calls on the first batch come first; the last batch may be short.
    """
    if len(items) == 0 or batch_size < 1:
        raise RouterLLMError("throughput needs at least one item and batch_size >= 1")
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for _ in range(max(warmup, 0)):
        fn_batch(batches[0])
    start = clock()
    for batch in batches:
        fn_batch(batch)
    elapsed = clock() - start
    if elapsed <= 0:
        raise RouterLLMError("the timed batches took no measurable time; use more items")
    return len(items) / elapsed


@dataclass(frozen=True)
class MemoryStats:
    """Peak memory of one call; see the module doc for what each field measures."""

    python_peak_bytes: int
    rss_peak_bytes: int | None
    rss_peak_increase_bytes: int | None


def _proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's resident-set high-water mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return _proc_status_bytes("VmHWM") is not None


def _rss_high_water() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def peak_memory(fn: Callable[[S], T], setup: Callable[[], S]) -> tuple[S, T, MemoryStats]:
    """Call ``setup()``, then ``fn`` on what it returns; return both results with the
    memory they used: the resident set's over both, Python's over ``fn`` (module doc)."""
    from routerllm.backends.heap import give_back_freed_memory

    give_back_freed_memory()  # else the call may reuse pages freed but still resident
    own_peak = _reset_rss_peak()
    rss_start = _proc_status_bytes("VmRSS") if own_peak else _rss_high_water()
    prepared = setup()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    else:
        tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        result = fn(prepared)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if started:
            tracemalloc.stop()
    rss_peak = _proc_status_bytes("VmHWM") if own_peak else _rss_high_water()
    rise = None if rss_start is None or rss_peak is None else max(rss_peak - rss_start, 0)
    return prepared, result, MemoryStats(max(peak - baseline, 0), rss_peak, rise)
