"""What the request log stores: its SQLite schema, its rows as Python values, and
the timestamps it compares as text (``request_log.RequestLog`` reads and writes them)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from routerllm.carbon.meter import HasComponents, Measurement
from routerllm.exceptions import RequestLogError, RouterLLMError

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    prompt_chars INTEGER NOT NULL,
    model TEXT NOT NULL,
    router TEXT NOT NULL,
    confidence REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    co2_kg REAL NOT NULL,
    cost_usd REAL NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    finish_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS components (
    request_id TEXT NOT NULL REFERENCES requests(id),
    component TEXT NOT NULL,
    duration_s REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    co2_kg REAL NOT NULL,
    method TEXT NOT NULL,
    PRIMARY KEY (request_id, component)
);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL REFERENCES requests(id),
    score REAL NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback(request_id);
CREATE TABLE IF NOT EXISTS escalations (
    request_id TEXT NOT NULL REFERENCES requests(id),
    component TEXT NOT NULL,
    duration_s REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    co2_kg REAL NOT NULL,
    method TEXT NOT NULL,
    PRIMARY KEY (request_id, component)
);
CREATE TABLE IF NOT EXISTS pending_feedback (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    model TEXT NOT NULL,
    router TEXT NOT NULL,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    folder TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS load_errors (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    error TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    energy_kwh REAL
);
CREATE TABLE IF NOT EXISTS pending_csv (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    csv_path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_time ON requests(timestamp);
CREATE INDEX IF NOT EXISTS requests_model_time ON requests(model, timestamp);
"""

# The columns of each table, in order (``records`` reads rows by position).
TABLES = {
    "requests": [
        "id", "timestamp", "prompt_sha256", "prompt_chars", "model", "router", "confidence",
        "prompt_tokens", "completion_tokens", "latency_s", "energy_kwh", "co2_kg", "cost_usd",
        "tag", "finish_reason",
    ],
    "components": ["request_id", "component", "duration_s", "energy_kwh", "co2_kg", "method"],
    "feedback": ["request_id", "score", "timestamp"],
    "escalations": ["request_id", "component", "duration_s", "energy_kwh", "co2_kg", "method"],
    "pending_feedback": ["request_id", "model", "router", "encoder", "dim", "embedding", "folder"],
    "load_errors": ["request_id", "error", "model", "energy_kwh"],
    # the requests whose rows the emissions CSV at csv_path may lack (``RequestLog``)
    "pending_csv": ["request_id", "csv_path"],
}  # fmt: skip
#: The numbers of a logged request that a report reads (its energy and CO2: its components'),
#: by their position in a row.
REQUEST_NUMBERS = {
    name: TABLES["requests"].index(name)
    for name in ("prompt_chars", "confidence", "prompt_tokens", "completion_tokens", "latency_s", "cost_usd")
}  # fmt: skip
# Every log has these; logs written before feedback was stored (2026-12-02) lack
# ``feedback`` (and ``pending_feedback``, added the same day), and those written before
# escalations were (2026-12-03) lack ``escalations``, and those written before failed
# loads were marked lack ``load_errors``, and those written before 2026-12-04 lack
# ``pending_csv``: opening one for writing adds them.
REQUIRED_TABLES = ("requests", "components")
# Logs written before finish_reason was logged (2026-12-02): read as they are, and given
# the column when opened for writing.
OLDER_REQUESTS = TABLES["requests"][:-1]
# Logs whose pending requests did not record their router's folder: read as they are, and
# given the column (its rows the folder "", any folder's) when opened for writing.
OLDER_PENDING = TABLES["pending_feedback"][:-1]
# Logs whose failed loads were all the failed request's own model's (before a cascade's
# step up whose load failed was marked): read as they are, and given the columns (their
# rows the model "", the row's own) when opened for writing.
OLDER_LOAD_ERRORS = TABLES["load_errors"][:2]

#: The finish reason of a request whose model failed once it was reached (a backend error,
#: a prompt no model's context holds): logged for what its loads spent, with no answer.
FAILED = "error"

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
    if not isinstance(text, str):
        raise RouterLLMError(
            f"{what} must be an ISO date or time as text, e.g. 2026-11-22, not {text!r}"
        )
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RouterLLMError(
            f"{text!r} is not an ISO date or time; e.g. 2026-11-22 or 2026-11-22T08:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise RouterLLMError(f"{text!r} is out of the range of dates in UTC") from None


def instant(text: str) -> datetime:
    """A logged timestamp (or any ISO time, UTC unless it has an offset) as an aware time."""
    return datetime.fromisoformat(utc_timestamp(text))


def check_csv(path: Path) -> None:
    """``path`` must be a file RouterLLM can append its emission rows to: missing or
    empty, or an emissions CSV with its header; another file is refused untouched."""
    if path.is_dir():
        raise RequestLogError(
            f"the emissions CSV {path} (carbon.output_dir) is a directory; remove it or "
            f"choose another carbon.output_dir"
        )
    try:
        with path.open(encoding="utf-8", newline="") as f:
            header = next(csv.reader([f.readline()]), [])
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RequestLogError(f"the emissions CSV {path} cannot be read: {e}") from e
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

    def own(self, component: str) -> Measurement | None:
        """``component`` as the answering model alone spent it (``escalated`` taken out)."""
        return own_part(self.components.get(component), self.escalated.get(component))


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
    )
