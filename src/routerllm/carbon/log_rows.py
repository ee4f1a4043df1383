"""What the request log stores: its rows as Python values, and the timestamps it
compares as text (``request_log.RequestLog`` reads and writes them; its SQLite tables are
``log_schema``'s)."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from routerllm.carbon.meter import Grid, HasComponents, Measurement
from routerllm.exceptions import RequestLogError, RouterLLMError
from routerllm.path_checks import refuse_special_file

#: The finish reason of a request whose model failed once it was reached (a backend error,
#: a prompt no model's context holds): logged for what its routing, loads and failed
#: generation spent (a model already loaded that refused the prompt: its routing alone),
#: with no answer.
FAILED = "error"
#: The finish reason of a request the budgets refused once its router had run (the model
#: it chose was predicted over a limit, or a window was spent): logged for its routing
#: alone, 0 tokens, no answer, so that the budgets, reports and metrics count what it spent.
REFUSED = "refused:budget"
#: The finish reason of an answer its model cut at its token limit (``max_new_tokens``,
#: or the model's context full): an answer, counted apart by the report and ``/metrics``.
CUT = "length"


def what_was_spent(finish_reason: str) -> str:
    """What a row of this finish reason holds, as the errors of a log that could not take
    it say: an answer, or the spending of a request that had none (until 2026-12-07 each
    was "the answer was produced", a refused request's routing too)."""
    if finish_reason == REFUSED:
        return "the refused request's routing was spent"
    if finish_reason == FAILED:
        return "the failed request's spending was measured"
    return "the answer was produced"


CSV_COLUMNS = [
    "timestamp",
    "component",
    "duration",
    "emissions",
    "energy_consumed",
    "request_id",
    "model",
    "router",
    "method",
]


def utc_timestamp(text: str, what: str = "since") -> str:
    """``text`` (an ISO date or time; UTC unless it has an offset) in the log's own
    timestamp form, so that comparing the strings compares the instants."""
    return instant(text, what).isoformat(timespec="microseconds")


def instant(text: str, what: str = "since") -> datetime:
    """A logged timestamp (or any ISO date or time, UTC unless it has an offset) as an
    aware time in UTC. A fifth of ``utc_timestamp``'s time (0.4 us against 1.8 here): the
    budgets read one for each request of a window, the report's count of violations one
    for each logged request. An error quotes at most 80 characters of ``text`` (the
    server's ``since`` came back whole, 100,000 characters of it)."""
    if not isinstance(text, str):
        raise RouterLLMError(
            f"{what} must be an ISO date or time as text, e.g. 2026-11-22, not {text!r:.80}"
        )
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = iso_311(text.strip())
    if moment is None:
        raise RouterLLMError(
            f"{text!r:.80} is not an ISO date or time; e.g. 2026-11-22 or 2026-11-22T08:30"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise RouterLLMError(f"{text!r:.80} is out of the range of dates in UTC") from None


# Python 3.10's datetime.fromisoformat reads only what its isoformat writes; 3.11's reads
# most of ISO 8601, as other programs write it: 1 to 9 digits of a second (JavaScript, Go,
# .NET), offsets as +0100 or +01 (date +%FT%T%z), basic forms (20261205T1030), week dates.
_ISO_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})-([0-9]{2})|([0-9]{2})([0-9]{2})|(-?)W([0-9]{2})(?:\6([1-7]))?)")  # fmt: skip
# the seconds' separator is the minutes' (group 2; group 9 in the offset)
_TIME = r"([0-9]{2})(?:(:?)([0-9]{2})(?:\SEP([0-9]{2})(?:[.,]([0-9]+))?)?)?"
_ISO_TIME = re.compile(_TIME.replace("SEP", "2") + "(?:(Z)|([+-])" + _TIME.replace("SEP", "9") + ")?")  # fmt: skip


def iso_311(text: str) -> datetime | None:
    """``text`` as Python 3.11's ``datetime.fromisoformat`` reads it, on any Python (None
    where it does not): ``instant``'s fallback where the running Python's reads less."""
    d = _ISO_DATE.match(text)
    # any one character but a digit between date and time (3.11 reads digits too, ambiguously)
    t = _ISO_TIME.fullmatch(text, d.end() + 1) if d and text[d.end() + 1 : d.end() + 2] and not text[d.end()].isdigit() else None  # fmt: skip
    if d is None or (t is None and d.end() != len(text)):
        return None
    year, month, day, month2, day2, _, week, weekday = d.groups()
    try:
        if week:
            moment = datetime.combine(date.fromisocalendar(int(year), int(week), int(weekday or 1)), datetime.min.time())  # fmt: skip
        else:
            moment = datetime(int(year), int(month or month2), int(day or day2))
        if t is None:
            return moment
        h, _, m, s, frac, z, sign, oh, _, om, os_, ofrac = t.groups()
        moment = moment.replace(hour=int(h), minute=int(m or 0), second=int(s or 0), microsecond=_micro(frac))  # fmt: skip
        if z or sign:
            offset = timedelta(hours=int(oh or 0), minutes=int(om or 0), seconds=int(os_ or 0), microseconds=_micro(ofrac))  # fmt: skip
            return moment.replace(tzinfo=timezone(-offset if sign == "-" else offset))
    except ValueError:  # out of range: month 13, hour 24, an offset of a day or more
        return None
    return moment


def _micro(fraction: str | None) -> int:
    return int((fraction or "0")[:6].ljust(6, "0"))


def check_csv(path: Path) -> None:
    """``path`` must be a file RouterLLM can append its emission rows to: missing or
    empty, or an emissions CSV with its header; another file is refused untouched."""
    if path.is_dir():
        raise RequestLogError(
            f"the emissions CSV {path} (carbon.output_dir) is a directory; remove it or "
            f"choose another carbon.output_dir"
        )
    # opening a named pipe would wait for a writer, reading a device never end
    refuse_special_file(path, "remove it, or choose another carbon.output_dir", RequestLogError)
    try:
        # utf-8-sig: Excel's "CSV UTF-8" and Notepad save it with a byte order mark
        with path.open(encoding="utf-8-sig", newline="") as f:
            line = f.readline()
        header = next(csv.reader([line]), [])
        # a spreadsheet set for a decimal comma saves it with ";" between the columns
        other = next((s for s in ";\t" if next(csv.reader([line], delimiter=s), []) == CSV_COLUMNS), None)  # fmt: skip
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RequestLogError(f"the emissions CSV {path} cannot be read: {e}") from e
    if other is not None:
        raise RequestLogError(
            f"{path} was saved with {other!r} between its columns (a spreadsheet does, set "
            f"for a decimal comma), and its rows are appended with ','; save it again with "
            f"',' between them, or move it aside (a new one starts there)"
        )
    if header and header != CSV_COLUMNS:
        raise RequestLogError(
            f"{path} is not a RouterLLM emissions CSV (its header is "
            f"{','.join(header)[:80]}); choose another carbon.output_dir"
        )


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class Spending(NamedTuple):
    """What one logged request spent (``RequestLog.spending``)."""

    timestamp: str
    co2_kg: float
    cost_usd: float
    #: refused by the budgets once routed (``REFUSED``): its routing counts toward the
    #: windows, but it broke no budget (``budget.violations``)
    refused: bool = False

    def of(self, quantity: str) -> float:
        """``co2_kg`` or ``cost_usd``."""
        return self.co2_kg if quantity == "co2_kg" else self.cost_usd


@dataclass(frozen=True)
class PendingRequest:
    """A routed request whose score its router will learn, kept until it is rated by a
    process that learns it (one that does not leaves it, scored, for one that does): the
    model that answered, the router, and the prompt's embedding as the router saw it
    (never the prompt), with the encoder that made it, and the folder the router is saved
    in (its ``router.path``, resolved; "" for a row kept before folders were recorded,
    which any folder's router may learn)."""

    request_id: str
    model: str
    router: str
    encoder: str
    embedding: np.ndarray  # (dim,) float32
    folder: str = ""


@dataclass(frozen=True)
class RequestRecord(HasComponents):
    """Everything the log keeps about one request (never the prompt text itself)."""

    id: str
    timestamp: str
    prompt_sha256: str
    prompt_chars: int
    model: str
    router: str
    confidence: float
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    components: dict[str, Measurement] = field(default_factory=dict)
    tag: str = ""
    finish_reason: str = ""  # "length" where the answer stopped at its max_new_tokens; FAILED
    #: Of its components, the part the models a cascade escalated from spent (their
    #: loading and generation); empty where it did not escalate, and in older logs.
    escalated: dict[str, Measurement] = field(default_factory=dict)
    #: Of a failed request (``FAILED``) whose model failed to load (a corrupt file), that
    #: load's error; of an answered one whose cascade's step up failed to load (the answer
    #: in hand kept), that step's; empty otherwise, and in older logs.
    load_error: str = ""
    #: Of that step up: the model whose load failed, and that load's energy (part of
    #: ``escalated``; None where it was not measured, carbon tracking off); "" where the
    #: load that failed was ``model``'s own.
    load_error_model: str = ""
    load_error_kwh: float | None = None
    #: The grid its CO2 was computed for; None in a row logged before grids were recorded.
    grid: Grid | None = None
    #: The answer's length in characters, as its model generated it (a function stub it
    #: completes not counted): the predictor learns the model's tokens a character from
    #: it (``CarbonPredictor.text_tokens``); None where not recorded (no answer, a cached
    #: one, a row logged before 2026-12-07).
    completion_chars: int | None = None
    #: Whether the answering model (of a failed request, the last tried) loaded for it:
    #: its own ``model_loading`` holds that load (after any count's read of its files,
    #: ``count_reads``). False where it did not (loaded already, refused before its load,
    #: a load that failed, a cached answer, a remote model): its ``model_loading``, if any,
    #: is a count's read alone, energy spent but no load. None where not recorded (a row
    #: logged before 2026-12-07's marker): the report takes a ``model_loading`` that took
    #: time or energy for a load, as it did.
    model_loaded: bool | None = None

    def own(self, component: str) -> Measurement | None:
        """``component`` as the answering model alone spent it (``escalated`` taken out)."""
        return own_part(self.components.get(component), self.escalated.get(component))


def grid_columns(grid: Grid | None) -> tuple[str, str, float | None]:
    """``grid`` as the log's columns store it: ("", "", None) where it is not recorded."""
    return ("", "", None) if grid is None else (grid.country, grid.region, grid.intensity_g_per_kwh)


def grid_from_columns(country: object, region: object, intensity: object) -> Grid | None:
    """The grid the log's columns hold; None where a row has none recorded (logged
    before grids were, or its columns changed outside RouterLLM to no grid)."""
    if not country or not isinstance(country, str) or not isinstance(intensity, int | float):
        return None
    return Grid(country, region if isinstance(region, str) else "", float(intensity))


def logged_share(value: object) -> float | None:
    """A share of the machine's CPU as the log's ``others_cpu_share`` columns hold it: None
    where not recorded (NULL: a row logged before it was, a block too short to tell), and
    where the column holds no share (another program's text, or a number outside 0..1)."""
    if isinstance(value, float | int) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def logged_flag(value: object) -> bool | None:
    """A yes or no as the log's ``model_loaded`` column holds it (1 or 0): None where not
    recorded (NULL: a row logged before it was) or where the column holds no flag
    (another program's text or number)."""
    if type(value) is int and value in (0, 1):
        return bool(value)
    return None


def own_part(whole: Measurement | None, earlier: Measurement | None) -> Measurement | None:
    """``whole`` without the part ``earlier`` models spent of it (a cascade's first answers),
    with the answering model's own method (``whole``'s is theirs joined to it by "+")."""
    if whole is None or earlier is None:
        return whole
    return Measurement(
        whole.component,
        max(whole.duration_s - earlier.duration_s, 0.0),
        max(whole.energy_kwh - earlier.energy_kwh, 0.0),
        max(whole.co2_kg - earlier.co2_kg, 0.0),
        whole.method.removeprefix(f"{earlier.method}+"),
        whole.others_cpu_share,
    )
