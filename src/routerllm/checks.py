"""What counts as a number in user input: numpy's numbers too, never a bool.

Shared by every module that checks an argument, an option or a stored value, so
that ``k=np.int64(5)`` is an integer and ``timeout_s=True`` is not a time anywhere.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

#: The largest seed numpy, scikit-learn and torch all accept.
MAX_SEED = 2**32 - 1
#: The most epochs a classifier trains for: more is a typo (a few zeros too many), which
#: trained on for years by its progress bar's estimate, until Ctrl-C.
MAX_EPOCHS = 10_000
#: The largest float32: torch cannot hold a learning rate or weight decay above it.
FLOAT32_MAX = 3.4028234663852886e38
#: The smallest normal float32: a learning rate below it rounds torch's updates to 0.
FLOAT32_TINY = 1.1754943508222875e-38
#: The most new tokens a request may ask for: far beyond any model's context, and small
#: enough that its predicted energy, CO2 and cost stay finite numbers. Here, not in the
#: config module, so that ``--help`` can say it without importing pydantic.
MAX_NEW_TOKENS = 2**31 - 1
#: The config's per-token and per-kWh figures are bounded so that every prediction of a
#: request's energy, CO2 and cost stays a finite number: a finite 1e308 kWh a token passed,
#: and a request's prediction overflowed to inf (nan at an electricity price of 0), which
#: the budgets refused as "predicted to spend inf kg CO2 and $inf". A request reads at most
#: its context (2**31 - 1 tokens) and writes at most MAX_NEW_TOKENS: under 2**32 (4.3e9)
#: tokens, each at one figure (a prompt token at its own where the config gives one). At
#: the bounds below its energy is under 4.3e12 kWh, its CO2 under 4.3e12 kg
#: (or 4.3e12 kWh at 1,000 kg/kWh, over any grid's 0.001-1.2), its cost under 4.3e15 $
#: from token prices and 4.3e15 $ from energy at the electricity price; scaled by two
#: models' parameter counts (at most 1e12 times) and summed over a window's requests,
#: still hundreds of orders of magnitude from float's 1.8e308. No real model comes near:
#: 1e-9 to 1e-5 kWh and kg a token, dollars a token under 1e-3, electricity under $1/kWh.
MAX_KWH_PER_TOKEN = 1_000.0
MAX_KG_CO2_PER_TOKEN = 1_000.0
#: $1,000 a token.
MAX_USD_PER_1M_TOKENS = 1e9
MAX_USD_PER_KWH = 1_000.0
#: A model's size, in billions of parameters (``params_b``): 10**6 B, a thousand times
#: beyond the largest model, and at least 10**-6 B, a thousand parameters: a model with no
#: history is predicted from a peer's, scaled by their ratio, which would otherwise overflow.
MAX_PARAMS_B = 1e6
MIN_PARAMS_B = 1e-6
#: The largest energy budget of the humaneval gated cascade, a share of the heavy model's
#: generation energy (``--cascade-budget``): ten times what the heavy model alone spends.
MAX_CASCADE_BUDGET = 10.0
#: The most resamples ``compare_routers`` takes: each one sweeps every router again
#: (about 0.1 s a resample for three routers on a few hundred prompts).
MAX_RESAMPLES = 10_000
#: The most prompts ``routerllm generate-data`` (and ``benchmarks/synthetic_data.py``)
#: makes: each is rendered, kept in memory and its near-duplicates checked, then all are
#: split and written as JSON at once. 100,000 took 28 s and 200 MB at peak (2026-12-06, 2
#: cores shared), 1,000,000 16 min and 1.7 GB (the cores busy with other jobs: load about
#: 12), 340 MB of JSON: still usable. Time and memory grow with it up to what the
#: templates reach (about 3.2 million; --n 8000000 ran an hour to fail), and a few zeros
#: too many ran until Ctrl-C.
MAX_SYNTHETIC_PROMPTS = 1_000_000
#: The most times a benchmark repeats the run it times (it reports their median): more
#: moves no median a reader compares, and a few zeros too many timed report after
#: report of 100,000 requests (3.4 s each) until Ctrl-C.
MAX_TIMED_REPEATS = 100
#: The most requests a serving benchmark (``server_overhead.py``, ``streaming.py``) makes
#: of each kind, one generation after another: 0.16 s each of SmolLM2-135M at 16 tokens,
#: 2.9 s at 128 (README), so 1,000 take 5 minutes to 1.6 hours. More is a typo: --n
#: 1000000000 built its prompts first and died of a MemoryError (a traceback).
MAX_BENCHMARK_REQUESTS = 1_000
#: The most requests a benchmark's synthetic request log grows to (``report_scaling.py``,
#: ``budget_overhead.py --sizes``): ten times the largest log the report was measured on
#: (1,000,000 requests, 19 s of CPU a report); a few zeros too many grew the log, 500
#: rows a statement, until Ctrl-C.
MAX_BENCHMARK_LOG_ROWS = 10_000_000
#: The most re-splits of train + test a routing benchmark compares over
#: (``quality_selection.py``, ``routing_targets.py --resplits``): each trains and
#: evaluates every router again, 161 s a re-split for quality_selection on RouterBench
#: MBPP (1611 s for 10, docs/experiments.md; LLMRouter's training set is 19 times
#: larger), so 100 take four and a half hours or more. More narrow the interval a reader
#: compares little: corrected for the prompts the splits share, its variance is
#: (1/J + n_test/n_train) times the splits' own, and at J = 100 its width is within 7 %
#: of the narrowest any J gives on LLMRouter (n_test/n_train = 381/5608) and 1.2 % on
#: MBPP (126/299). A few zeros too many re-split until Ctrl-C.
MAX_RESPLITS = 100
#: The most prompts ``encoder_latency.py --prompts`` times through each of its four
#: encoders, one at a time and then in batches (``--repeats`` times): ten times its
#: default 200. 400 prompts took 146 s of CPU, 6.2 minutes on 2 cores shared at a load of
#: 7 (2026-12-06, --repeats 1), so 2,000 take about 12 minutes of CPU, and p50 and p95
#: of 2,000 texts move no figure a reader compares. A few zeros too many first built
#: every prompt in memory (156 characters each on average), then timed until Ctrl-C.
MAX_ENCODER_PROMPTS = 2_000
#: The most budget checks ``budget_overhead.py --requests`` times for each log size (it
#: reports their median), each summed whole as well as moved: the whole sums took 176 ms
#: a check with its default largest log of 500,000 requests (README), so 10,000 checks
#: are half an hour for that size alone, and a few zeros too many timed until Ctrl-C.
MAX_TIMED_CHECKS = 10_000
#: ``train-gate --folds``: at least one fold to fit on beside the one predicted, and at
#: most 20, which already leaves 8 of HumanEval's 164 problems a fold (each fold refits
#: the gate's success model on the others).
MIN_GATE_FOLDS, MAX_GATE_FOLDS = 2, 20
#: The largest TCP port ``routerllm serve --port`` takes.
MAX_PORT = 65535
#: The most CPU threads a local backend may be given: llama.cpp's GGML_MAX_N_THREADS.
#: A huge count aborted the whole process (std::bad_alloc) as the model loaded.
MAX_THREADS = 512


def is_number(v: object) -> bool:
    """A real number (int, float, numpy's), not a bool; NaN and infinities included."""
    if type(v) in (float, int):  # most values: without the slow abstract-class check
        return True
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def is_integer(v: object) -> bool:
    """An integer, numpy's too (not a bool)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_finite_number(v: object) -> bool:
    """A finite real number, numpy's too (not a bool)."""
    try:
        return is_number(v) and math.isfinite(v)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float (10**400)
        return False


def is_non_negative_number(v: object) -> bool:
    """A finite real number >= 0 (not a bool): an amount of time, energy, a size."""
    return is_finite_number(v) and v >= 0  # type: ignore[operator]


def is_positive_number(v: object) -> bool:
    """A finite real number > 0 (not a bool): a time limit, a budget."""
    return is_finite_number(v) and v > 0  # type: ignore[operator]


def is_seed(value: object) -> bool:
    """Whether ``value`` is a whole number in [0, MAX_SEED] (``True`` is not)."""
    try:
        return not isinstance(value, bool) and int(value) == value and 0 <= value <= MAX_SEED  # type: ignore[call-overload, operator]
    except (TypeError, ValueError, OverflowError):  # not a number, NaN, infinity
        return False


def wrong_shape(shape: tuple[int, ...], expected: Sequence[int | None]) -> str | None:
    """Why an array of ``shape`` is not of the ``expected`` one (None: any size), as
    "has shape (4, 2), expected (n, 3)"; None where it is."""
    if len(shape) == len(expected) and all(
        e is None or e == s for s, e in zip(shape, expected, strict=True)
    ):
        return None
    return f"has shape {_shape_text(shape)}, expected {_shape_text(expected)}"


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("n" if n is None else str(n) for n in shape) + ")"


def repeated(items: Iterable[str]) -> list[str]:
    """The items that occur more than once, sorted (each once)."""
    return sorted(x for x, n in Counter(items).items() if n > 1)


def list_of(
    items: object, kind: type[T], what: str, error: type[RouterLLMError] = RouterLLMError
) -> list[T]:
    """``items`` as a list of ``kind``; a clear ``error``, naming them ``what``, for one
    bare string, anything that is not a list, or an item of another type."""
    name = "strings" if kind is str else f"{kind.__name__} items"
    if isinstance(items, str | bytes):
        raise error(f"{what} must be a list of {name}, not a single string")
    if not isinstance(items, Iterable):
        raise error(f"{what} must be a list of {name}, got {type(items).__name__}")
    out = list(items)
    for i, item in enumerate(out):
        if not isinstance(item, kind):
            raise error(f"{what}[{i}] is {type(item).__name__}, not {kind.__name__}")
    return out


def json_kind(value: object) -> str:
    """What a value read from JSON is, in words: an object, an array, a string, a
    boolean, null or a number."""
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return next((k for t, k in kinds.items() if isinstance(value, t)), "a number")


def not_utf8(text: str) -> int | None:
    """Where ``text`` stops being UTF-8 text: the position of its first lone surrogate
    (a JSON ``"\\ud800"`` escape gives one), which no encoder, file or log can take;
    None where it is all text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return int(e.start)
    return None


#: Why :func:`too_large` costs are refused.
TOO_LARGE = (
    "costs are too large: their total is beyond a float's range (about 1.8e308), so no "
    "mean cost is a number; give them in a larger unit"
)


def too_large(costs: np.ndarray) -> bool:
    """Whether the sum of ``costs`` (an array of finite numbers >= 0) overflows a float:
    every mean cost, and every operating point's, would be infinite."""
    import numpy as np

    with np.errstate(over="ignore"):
        return not bool(np.isfinite(np.sum(costs, dtype=np.float64)))
