"""Carbon and cost budgets: per request, in any 60 minutes, in any 24 hours.

``CarbonBudget`` reads what the request log says was spent in the rolling hour
and day (every logged request counts, whatever process or tag logged it) and
what the ``CarbonPredictor`` says a request will cost on each model, and then:

- refuses every request while an hourly or daily budget is spent, saying when
  the window frees enough to run again;
- sends a routed request to the next smaller model once an hourly or daily
  budget is ``downgrade_at`` spent (0.8 by default);
- goes on to smaller models while the chosen one is predicted to spend more
  than the request may (its per-request limit, or what is left of a window),
  and refuses the request when even the smallest is; a caller-chosen model is
  refused rather than replaced;
- lets a cascade escalate only where the larger model's answer is predicted to
  fit in what the request may still spend, and not at all near a limit.

A request let in holds its predicted spending against the windows until it is
logged, so requests that run at the same time on one system see each other;
an answer paid for but not logged is counted from memory. A model with no
prediction (no history, no per-token figures, no peer with a history) is let
through. A request that spends more than predicted is answered, and its reason
says which budget it broke: ``violations`` counts those from the log.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone

from routerllm.carbon.budget_text import (
    FINISHED,
    OLDER,
    QUANTITY_TEXT,
    RUNNING,
    WINDOW_TEXT,
    listed,
    waiting,
)
from routerllm.carbon.log_rows import Spending, instant
from routerllm.carbon.meter import Measurement
from routerllm.carbon.predictor import Prediction
from routerllm.carbon.request_log import RequestLog
from routerllm.carbon.units import amount
from routerllm.config import BudgetConfig
from routerllm.exceptions import BudgetExceededError, RequestLogError

log = logging.getLogger(__name__)

WINDOWS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
#: Spending is summed in floating point, and a window's sum is moved by adding and taking
#: away (``window_sums``): a total within this share of a limit is at it, not over it.
ROUNDING = 1e-9
#: The log's time resolution (microseconds): the first instant after a moment.
_TICK = timedelta(microseconds=1)


def past_limit(total: float, limit: float) -> bool:
    """Whether ``total`` is past ``limit``: a limit is the most that may be spent, so
    reaching it is allowed (0.1 + 0.2 reaches 0.3: rounding does not count)."""
    return total > limit * (1 + ROUNDING)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class WindowSpending:
    """What the requests in one rolling window spent of one quantity's limit (``spent``),
    and what requests running now hold of it (``held``: their predictions)."""

    quantity: str
    window: str
    limit: float
    spent: float
    held: float = 0.0

    @property
    def share(self) -> float:
        return (self.spent + self.held) / self.limit

    @property
    def left(self) -> float:
        return self.limit - self.spent - self.held

    def holding(self) -> str:
        """What requests running now hold of the window, where they hold some: ", spent or
        held (... spent in ..., ... held by requests running now)"; else ""."""
        if not self.held:
            return ""
        return (
            f", spent or held ({amount(self.quantity, self.spent)} spent in "
            f"{WINDOW_TEXT[self.window]}, {amount(self.quantity, self.held)} held by requests "
            f"running now)"
        )

    def describe(self) -> str:
        held = f", {amount(self.quantity, self.held)} held by requests running now" if self.held else ""  # fmt: skip
        return (
            f"the {self.window} {QUANTITY_TEXT[self.quantity]} budget is {self.share:.0%} "
            f"{'spent or held' if self.held else 'spent'} ({amount(self.quantity, self.spent)} "
            f"spent in {WINDOW_TEXT[self.window]}{held}, of {amount(self.quantity, self.limit)}; "
            f"budgets.{self.quantity}.{self.window})"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "share": self.share}


@dataclass(frozen=True)
class Allowance:
    """What a request may still spend of one quantity, and the limit that says so (and
    what rounding may add to it, ``slack``: see ``past_limit``)."""

    quantity: str
    value: float
    source: str
    slack: float = 0.0

    def fits(self, prediction: Prediction | None) -> bool:
        return prediction is None or prediction.amount(self.quantity) <= self.value + self.slack

    def limit_text(self) -> str:
        return f"the {amount(self.quantity, max(self.value, 0.0))} {self.source}"


def overrun(over: Sequence[Allowance], prediction: Prediction) -> str:
    """What ``prediction`` spends more than, every broken limit named (one named only, a
    user who raised it was refused again by the next): "m is predicted to spend 45 g CO2
    and $0.2 (from ...), more than the 20 g CO2 left of ..., the 40 g CO2 ... and the ..."."""
    quantities = list(dict.fromkeys(a.quantity for a in over))
    spends = " and ".join(amount(q, prediction.amount(q)) for q in quantities)
    return (
        f"{prediction.model} is predicted to spend {spends} (from {prediction.basis}), more "
        f"than {listed([a.limit_text() for a in over])}"
    )


@dataclass(frozen=True)
class Admission:
    """A request let in by the budgets: the model it goes to, why it changed ("" if not),
    its prediction there, and the ``token`` of what it holds of the windows meanwhile
    (None without budgets)."""

    model: str
    reason: str
    prediction: Prediction | None
    token: int | None = None


class CarbonBudget:
    """Keeps requests within the config's carbon and cost budgets (``budgets``).

    A request let in holds its predicted spending against the windows until it is
    logged, so that requests running at the same time in one process (threads sharing
    a system) see each other."""

    def __init__(
        self,
        config: BudgetConfig,
        log: RequestLog,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self._lock = threading.Lock()
        # per running request: what it holds, and whether that is what it spent (settled)
        self._held: dict[int, tuple[dict[str, float], bool]] = {}
        # answers that could not be logged: (when, spent), still counted for a day
        self._unlogged: list[tuple[datetime, dict[str, float]]] = []
        self._tokens = itertools.count()

    def status(self, exclude: int | None = None) -> list[WindowSpending]:
        """Every hourly and daily limit with what the log's requests spent of it (and the
        answers that could not be logged), and what requests running now hold (but the
        one with token ``exclude``; a request that has finished holds what it spent)."""
        now = self.clock()
        spent = {w: self.log.spent(_when(now - width), _when(now)) for w, width in WINDOWS.items()}  # fmt: skip
        holds = [(h, done) for t, (h, done) in list(self._held.items()) if t != exclude]
        out = []
        for quantity, limits in self.config.limits().items():
            settled = sum(h.get(quantity, 0.0) for h, done in holds if done)
            held = sum(h.get(quantity, 0.0) for h, done in holds if not done)
            for window, limit in limits.windows().items():
                unlogged = sum(u.get(quantity, 0.0) for when, u in list(self._unlogged) if when >= now - WINDOWS[window])  # fmt: skip
                out.append(WindowSpending(quantity, window, limit, spent[window].of(quantity) + unlogged + settled, held))  # fmt: skip
        return out

    def allowances(
        self, status: Sequence[WindowSpending], spent: dict[str, float]
    ) -> list[Allowance]:
        """What a request that has already spent ``spent`` may still spend, per limit (its
        per-request limits and what is left of each window): it fits if it fits them all."""
        out: list[Allowance] = []
        for quantity, limits in self.config.limits().items():
            used = spent.get(quantity, 0.0)
            # what the request spent already is said: a tiny limit that its routing took
            # up read "the 0 g CO2 this request may spend", as if the limit were 0
            spent_text = amount(quantity, used)
            after = f", after the {spent_text} this request spent already" if used else ""
            options = [(s.left - used, f"left of the {s.window} budget{s.holding()}{after} (budgets.{quantity}.{s.window})", s.limit * ROUNDING) for s in status if s.quantity == quantity]  # fmt: skip
            if (limit := limits.per_request) is not None:
                mine = f"left of the {amount(quantity, limit)} this request may spend, after the {spent_text} it spent already" if used else "this request may spend"  # fmt: skip
                options.append((limit - used, f"{mine} (budgets.{quantity}.per_request)", limit * ROUNDING))  # fmt: skip
            out.extend(Allowance(quantity, *option) for option in options)
        return out

    def admit(
        self,
        model: str,
        smaller: Sequence[str],
        fixed: bool,
        predict: Callable[[str], Prediction | None],
        spent: dict[str, float],
    ) -> Admission:
        """Let a request in (``choose``) and hold its predicted spending until ``release``."""
        with self._lock:
            name, reason, prediction = self.choose(model, smaller, fixed, predict, spent, self.status())  # fmt: skip
            token = next(self._tokens)
            self._held[token] = (_plus(spent, prediction), False)
        return Admission(name, reason, prediction, token)

    def choose(
        self,
        model: str,
        smaller: Sequence[str],
        fixed: bool,
        predict: Callable[[str], Prediction | None],
        spent: dict[str, float],
        status: Sequence[WindowSpending],
    ) -> tuple[str, str, Prediction | None]:
        """The model a request goes to within the budgets (``model``, or one of ``smaller``,
        largest first, unless ``fixed``), the reason it changed ("" if not) and the
        model's prediction, given the windows' ``status``. Refuses the request
        (``BudgetExceededError``) where no model fits."""
        if full := [s for s in status if s.left <= 0]:
            # every spent window is named (raising one budget leaves the others), and the
            # time all of them let requests in again
            latest, wait = _latest([self._retry_at(s) for s in full])
            raise BudgetExceededError(
                f"{listed([s.describe() for s in full])}; requests run again once "
                f"{waiting(wait, latest, len(full), 'older ones')}",
                latest,
            )
        allowances = self.allowances(status, spent)
        reason = ""
        near = [s for s in status if s.share >= self.config.downgrade_at]
        ladder = [model, *smaller]
        if near and not fixed and smaller:
            # every near window is named, as refusals name every spent one: named one, a
            # user who raised it was stepped down again by the next
            reason = f"; {listed([s.describe() for s in near])}, so one model smaller than {model}: {smaller[0]}"  # fmt: skip
            ladder = list(smaller)
        for i, name in enumerate(ladder):
            prediction = predict(name)
            over = [a for a in allowances if not a.fits(prediction)]
            if not over:
                return name, reason, prediction
            assert prediction is not None
            if fixed or i + 1 == len(ladder):
                # where only older spending in a window stands in the way, waiting helps
                fits_at, wait, windows = self._fits_at(prediction, spent, status)
                budget = "budgets" if len(over) > 1 else "budget"
                if fits_at is None:
                    last = f", or raise the {budget}"
                else:
                    last = f", raise the {budget}, or wait: it fits once {waiting(wait, fits_at, windows, 'older requests')}"  # fmt: skip
                if fixed:
                    advice = "route the request (no model chosen), shorten it" if smaller else "shorten the request"  # fmt: skip
                    advice += ", lower max_new_tokens"
                    raise BudgetExceededError(f"{overrun(over, prediction)}; {advice}{last}", fits_at)  # fmt: skip
                raise BudgetExceededError(
                    f"even the smallest model: {overrun(over, prediction)}; shorten the "
                    f"request, lower max_new_tokens{last}",
                    fits_at,
                )
            reason += f"; {overrun(over, prediction)}, so {ladder[i + 1]}"
        raise AssertionError("unreachable: the ladder is never empty")

    def escalation(
        self,
        admission: Admission,
        bigger: str,
        predict: Callable[[str], Prediction | None],
        spent: dict[str, float],
    ) -> str:
        """Why a cascade may not escalate the admitted request, which has spent ``spent``,
        to ``bigger`` ("" if it may; it then holds ``bigger``'s prediction too). Near a
        limit, what the request has spent counted, it may not: the request would undo the
        step to a smaller model. Nor where the windows cannot be read: what the request
        has is kept (as ``settle`` keeps a paid answer), never lost to the log's error."""
        with self._lock:
            try:
                status = self.status(exclude=admission.token)
            except RequestLogError as e:
                log.warning("the budgets' windows could not be read: %s", e)
                return f"the budgets' windows could not be read ({e})"
            mine = [replace(s, spent=s.spent + spent.get(s.quantity, 0.0)) for s in status]
            if near := [s for s in mine if s.share >= self.config.downgrade_at]:
                return listed([s.describe() for s in near])
            prediction = predict(bigger)
            over = [a for a in self.allowances(status, spent) if not a.fits(prediction)]
            if over and prediction is not None:
                return overrun(over, prediction)
            if admission.token is not None:
                self._held[admission.token] = (_plus(spent, prediction), False)
        return ""

    def settle(self, admission: Admission, spent: dict[str, float]) -> list[str]:
        """The budgets the admitted request broke, now that it has ``spent`` what it did:
        its per-request limits, and the windows it took over their limits."""
        with self._lock:
            if admission.token is not None:
                self._held[admission.token] = (dict(spent), True)
            try:
                others = self.status(exclude=admission.token)
            except RequestLogError as e:  # the answer is paid for: keep it, without this check
                log.warning("the budgets' windows could not be read: %s", e)
                others = []
        out = []
        for quantity, limits in self.config.limits().items():
            value = spent.get(quantity, 0.0)
            if limits.per_request is not None and past_limit(value, limits.per_request):
                out.append(
                    f"it spent {amount(quantity, value)}, over the per-request budget of "
                    f"{amount(quantity, limits.per_request)} (budgets.{quantity}.per_request)"
                )
        for s in others:  # what was spent, not what running requests hold
            if not past_limit(s.spent, s.limit) and past_limit(
                s.spent + spent.get(s.quantity, 0.0), s.limit
            ):
                out.append(f"it took the {s.window} {QUANTITY_TEXT[s.quantity]} budget past its {amount(s.quantity, s.limit)}")  # fmt: skip
        return out

    @contextlib.contextmanager
    def recording(self, admission: Admission) -> Iterator[None]:
        """Log the admitted request within: its hold ends as its row is written, so that
        no one counts it twice (as a hold and a row) in between."""
        with self._lock:
            yield
            self._held.pop(admission.token, None)  # type: ignore[arg-type]

    def release(self, admission: Admission, logged: bool = True) -> None:
        """The request is logged, or failed: it no longer holds anything. An answer that
        was paid for but could not be logged (``logged`` False) goes on counting toward
        the windows, from memory, for as long as they are wide."""
        with self._lock:
            held = self._held.pop(admission.token, None)  # type: ignore[arg-type]
            now = self.clock()
            self._unlogged = [(t, u) for t, u in self._unlogged if t >= now - max(WINDOWS.values())]  # fmt: skip
            if held is not None and held[1] and not logged:
                self._unlogged.append((now, held[0]))

    def count_unlogged(self, spent: dict[str, float]) -> None:
        """A request that spent ``spent`` without an admission (refused once routed) and
        could not be logged: counted toward the windows from memory, as ``release`` counts
        an unlogged answer."""
        with self._lock:
            self._unlogged.append((self.clock(), dict(spent)))

    def summary(self, since: str = "") -> dict[str, object]:
        """The budgets' state now and how many requests from ``since`` (a log timestamp)
        broke each (``routerllm report``)."""
        try:
            start = _when(instant(since) - max(WINDOWS.values())) if since else ""
        except OverflowError:  # a day before 0001-01-01
            start = ""
        return {
            "now": [s.as_dict() for s in self.status()],
            "per_request": {q: v.per_request for q, v in self.config.limits().items()},
            "violations": violations(self.config, self.log.spending(start), since),
        }

    def _fits_at(
        self, prediction: Prediction, spent: dict[str, float], status: Sequence[WindowSpending]
    ) -> tuple[str | None, str, int]:
        """When enough spending has left the windows for a request that has spent ``spent``
        and is predicted ``prediction`` to fit in them, what it waits for there (``_retry_at``)
        and how many windows it waits for; None where waiting does not help
        (it is over its per-request limit, or over a window's whole limit: needing exactly
        that, it fits the window once the window is empty)."""
        times: list[tuple[str, str]] = []
        for quantity, limits in self.config.limits().items():
            need = prediction.amount(quantity) + spent.get(quantity, 0.0)
            if limits.per_request is not None and past_limit(need, limits.per_request):
                return None, OLDER, 0
            for s in status:
                if s.quantity == quantity and past_limit(s.spent + s.held + need, s.limit):
                    if past_limit(need, s.limit):
                        return None, OLDER, 0
                    times.append(self._retry_at(s, need))
        if not times:
            return None, OLDER, 0
        return *_latest(times), len(times)

    def _retry_at(self, s: WindowSpending, need: float = 0.0) -> tuple[str, str]:
        """When enough of the window's spending has left it for ``s``'s limit to allow
        requests again, or a request that will spend ``need``, and what that waits for:
        ``RUNNING`` (now: only the holds of running requests stand in the way), ``OLDER``
        (logged requests, or answers counted from memory, leave the window) or ``FINISHED``
        (requests that have finished but are not logged yet leave it: they are logged from
        now on, so the window's width from now at the earliest). A window spent to its
        limit lets no request in, and it lets in a request that will take it to its limit,
        not past it."""

        def lets_in(spent: float) -> bool:
            return spent < s.limit and not past_limit(spent + need, s.limit)

        now = self.clock()
        if lets_in(s.spent):  # only what running requests hold: they end soon
            return _when(now), RUNNING
        since = now - WINDOWS[s.window]
        # oldest first, read from the log only as far as needed (not the whole window)
        logged = ((instant(r.timestamp), r.of(s.quantity)) for r in self.log.spending(_when(since)))  # fmt: skip
        unlogged = sorted(((t, u.get(s.quantity, 0.0)) for t, u in list(self._unlogged) if t >= since), key=lambda row: row[0])  # fmt: skip
        rows = heapq.merge(itertools.takewhile(lambda row: row[0] <= now, logged), unlogged, key=lambda row: row[0])  # fmt: skip
        spent = s.spent
        for when, value in rows:
            spent -= value
            if lets_in(spent):  # a window holds its first instant: the row leaves 1 us after
                return _when(when + WINDOWS[s.window] + _TICK), OLDER
        if any(done for _, done in list(self._held.values())):
            # what is left is the finished requests' (``status``'s settled holds): not
            # logged yet, so no row to wait for; this said "from now", refused again then
            return _when(now + WINDOWS[s.window] + _TICK), FINISHED
        return _when(now), OLDER  # rows deleted by hand, in the window's sum until resummed


def _latest(times: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The latest of ``_retry_at``'s times, and what it waits for (finished requests where
    any of the windows freed then waits for them, running ones only where all do)."""
    latest = max(t for t, _ in times)
    waits = {w for t, w in times if t == latest}
    return latest, next(w for w in (FINISHED, OLDER, RUNNING) if w in waits)


def spent_so_far(cost_usd: float, *parts: Measurement) -> dict[str, float]:
    """What a request has spent so far (its cost and measured components), in the
    budgets' quantities."""
    return {"co2_kg": sum(m.co2_kg for m in parts), "cost_usd": cost_usd}


def _plus(spent: dict[str, float], prediction: Prediction | None) -> dict[str, float]:
    """What a request will have spent: ``spent`` so far and its ``prediction``."""
    extra = {q: prediction.amount(q) for q in QUANTITY_TEXT} if prediction else {}
    return {q: spent.get(q, 0.0) + extra.get(q, 0.0) for q in QUANTITY_TEXT}


def violations(
    config: BudgetConfig, rows: Iterable[Spending], start: str = ""
) -> dict[str, dict[str, int]]:
    """How many requests from ``start`` (a log timestamp) broke each budget: spent more
    than the per-request limit, or took a rolling window's spending over its limit (not
    one the budgets refused once routed: its routing is in the windows' sums).
    ``rows`` are the log's, oldest first, from a day before ``start`` (the windows'
    earlier requests), read once: only each window's rows are held (the whole log's were,
    146 MB for a report of 500,000 requests). Judged against the budgets in ``config``."""
    limits = config.limits()
    quantities = list(limits)
    out = {q: dict.fromkeys([*(["per_request"] if v.per_request is not None else []), *v.windows()], 0) for q, v in limits.items()}  # fmt: skip
    # each window's rows: their time and what they spent of each quantity, in that order
    held: dict[str, deque[tuple[datetime, list[float]]]] = {w: deque() for v in limits.values() for w in v.windows()}  # fmt: skip
    totals = {w: [0.0] * len(quantities) for w in held}
    for r in rows:
        # a request refused once routed spent its routing (in the windows' sums), yet the
        # budgets refused it: it broke none of them
        when, counted = instant(r.timestamp), r.timestamp >= start and not r.refused
        spent = [r.of(q) for q in quantities]
        for quantity, v, value in zip(quantities, limits.values(), spent, strict=True):
            if counted and v.per_request is not None and past_limit(value, v.per_request):
                out[quantity]["per_request"] += 1
        for window, inside in held.items():
            total = totals[window]
            before = list(total)
            for i, value in enumerate(spent):
                total[i] += value
            while inside and inside[0][0] < when - WINDOWS[window]:
                for i, value in enumerate(inside.popleft()[1]):
                    total[i] -= value
                    before[i] -= value
            inside.append((when, spent))
            for i, (quantity, v) in enumerate(limits.items()):
                limit = v.windows().get(window)
                if (
                    limit is not None
                    and counted
                    and not past_limit(before[i], limit)
                    and past_limit(total[i], limit)
                ):
                    out[quantity][window] += 1
    return out
