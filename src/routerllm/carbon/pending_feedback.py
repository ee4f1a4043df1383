"""The feedback a request log holds: the scores given to its requests (``feedback``),
and the requests a learning router keeps for their scores (``pending_feedback``): a
score that arrives later, or in another process of the same router folder, is learned
from the request's stored embedding (``feedback.py``). ``RequestLog`` holds these rows
beside its requests; this is its part that stores, keeps, finds and hands them over.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.carbon.log_rows import PendingRequest
from routerllm.carbon.log_schema import TABLES
from routerllm.checks import is_finite_number
from routerllm.exceptions import RequestLogError, UnknownRequestError
from routerllm.sqlite_busy import is_locked, locked


class PendingFeedback:
    """``RequestLog``'s scores, and its rows of requests kept for their scores."""

    db_path: Path
    _db: sqlite3.Connection
    _lock: AbstractContextManager[Any]

    def check_open(self) -> None:
        raise NotImplementedError

    def _fetch(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _has_table(self, name: str) -> bool:
        raise NotImplementedError

    @staticmethod
    def _filters(since: str | None, tag: str | None, prefix: str = "") -> tuple[str, list[object]]:  # fmt: skip
        raise NotImplementedError

    def _refused(self, error: Exception, failed: str, preposition: str, meanwhile: str) -> RequestLogError:  # fmt: skip
        """``failed`` (what could not be done) with SQLite's ``error``; where another
        process kept the log locked, the shared message (``sqlite_busy.locked``), since
        only ending its transaction frees the log, and what is done ``meanwhile``."""
        if is_locked(error):
            where = locked(self.db_path, "request log", meanwhile, "log.path")
            return RequestLogError(f"{failed}: {where}")
        return RequestLogError(f"{failed} {preposition} {self.db_path} (log.path): {error}")

    def add_feedback(
        self, request_id: str, score: float, learned: bool = True, folder: str = ""
    ) -> bool:
        """Store a score in [0, 1] for a logged request, timestamped now (UTC). A
        ``learned`` score (its router learns it now) forgets the request's pending row
        (``remember_pending``); any other leaves the row, scored, for a learning process
        of its folder to learn (``claim_scored``), or, given ``folder`` (a learner that
        keeps the row until it is saved), for that folder's, a row kept before folders
        were recorded included. A request scored already (by any process) is not scored
        again: False, and nothing is written; one the log does not hold (pruned) is an
        ``UnknownRequestError``."""
        self.check_open()
        stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        try:
            with self._lock, self._db:
                # one writer at a time from here: two processes cannot both see it unscored
                self._db.execute("BEGIN IMMEDIATE")
                scored = "SELECT 1 FROM feedback WHERE request_id = ? LIMIT 1"
                if self._db.execute(scored, (request_id,)).fetchone():
                    return False
                # a running system remembers its last requests in memory: one that
                # ``routerllm prune`` deleted meanwhile would be a score of no logged
                # request, which no later prune deletes
                if not self._db.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone():  # fmt: skip
                    raise UnknownRequestError(
                        f"request {request_id!r:.80} is not in the request log {self.db_path} "
                        f"(pruned by routerllm prune, or never logged): a score of no logged "
                        f"request is not stored"
                    )
                self._db.execute(
                    "INSERT INTO feedback (request_id, score, timestamp) VALUES (?, ?, ?)",
                    (request_id, score, stamp),
                )
                if learned:
                    self._db.execute("DELETE FROM pending_feedback WHERE request_id = ?", (request_id,))  # fmt: skip
                elif folder:  # not another folder's to learn again (claim_scored)
                    self._db.execute(
                        "UPDATE pending_feedback SET folder = ? WHERE request_id = ? AND folder = ''",
                        (folder, request_id),
                    )
        except sqlite3.Error as e:
            failed = "the feedback could not be stored"
            raise self._refused(
                e, failed, "in", "the score is not stored: give it again then"
            ) from e
        return True

    def scored(self, request_id: str) -> bool:
        """Whether the request has a stored score."""
        sql = "SELECT 1 FROM feedback WHERE request_id = ? LIMIT 1"
        return self._has_feedback() and bool(self._fetch(sql, [request_id]))

    def feedback(self) -> list[tuple[str, float, str]]:
        """Every stored score, oldest first: (request id, score, timestamp)."""
        if not self._has_feedback():
            return []
        rows = self._fetch("SELECT request_id, score, timestamp FROM feedback ORDER BY rowid")
        return [(r, float(s), t) for r, s, t in rows]

    def feedback_by_model(
        self, since: str | None = None, tag: str | None = None
    ) -> dict[str, tuple[int, float]]:
        """Per model, how many of its logged answers were scored and their mean score
        (requests from ``since``, with ``tag``, as ``records`` selects them)."""
        if not self._has_feedback():
            return {}
        where, args = self._filters(since, tag, "r.")
        # from ``since``: the window's requests by their time index, then their scores (SQLite,
        # left to choose, read every request, in the model index's order for the GROUP BY)
        tables, model = ("requests r CROSS JOIN feedback f", "+r.model") if since else ("feedback f JOIN requests r", "r.model")  # fmt: skip
        sql = (
            f"SELECT r.model, COUNT(*), AVG(f.score) FROM {tables} "
            f"ON r.id = f.request_id{where} GROUP BY {model} ORDER BY {model}"
        )
        return {m: (int(n), float(mean)) for m, n, mean in self._fetch(sql, args)}

    def _has_feedback(self) -> bool:
        """Whether the log has its feedback table (an older one opened read-only has not)."""
        return self._has_table("feedback")

    def remember_pending(self, pending: PendingRequest, keep: int) -> None:
        """Keep a routed request for its score (``pending``), and forget the oldest of its
        folder's beyond that folder's newest ``keep`` (read off the folder's index: cheap),
        except those scored and not learned yet (``add_feedback``), which wait for a
        learning process of their folder (``claim_scored``); other folders' rows are left
        alone."""
        self.check_open()
        vector = np.ascontiguousarray(pending.embedding, dtype="<f4")
        try:
            with self._lock, self._db:
                row = (pending.request_id, pending.model, pending.router, pending.encoder)
                self._db.execute(
                    f"INSERT OR REPLACE INTO pending_feedback ({', '.join(TABLES['pending_feedback'])}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # fmt: skip
                    (*row, len(vector), vector.tobytes(), pending.folder),
                )
                oldest_kept = "SELECT rowid FROM pending_feedback WHERE folder = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"  # fmt: skip
                self._db.execute(
                    f"DELETE FROM pending_feedback WHERE folder = ? AND rowid < ({oldest_kept}) "
                    f"AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = pending_feedback.request_id)",  # fmt: skip
                    (pending.folder, pending.folder, keep - 1),
                )
        except sqlite3.Error as e:
            failed = f"request {pending.request_id} could not be kept for feedback"
            raise self._refused(e, failed, "in", "the request is not kept in it") from e

    def forget_pending(self, request_ids: list[str]) -> None:
        """Remove the kept requests ``request_ids`` (scored, and learned by a router that
        has been saved since)."""
        self.check_open()
        try:
            with self._lock, self._db:
                self._db.executemany(
                    "DELETE FROM pending_feedback WHERE request_id = ?", [(r,) for r in request_ids]
                )
        except sqlite3.Error as e:
            failed = "the requests learned could not be removed"
            raise self._refused(e, failed, "from", "they stay in it") from e

    def pending(self, request_id: str) -> PendingRequest | None:
        """The request kept for its score (``remember_pending``), or None: unknown, learned
        or rated where it was learned, forgotten, or a damaged row."""
        if not self._has_table("pending_feedback"):
            return None
        rows = self._fetch("SELECT * FROM pending_feedback WHERE request_id = ?", [request_id])
        if not rows:
            return None
        # an older log opened read-only has no folder column: its rows are any folder's
        _, model, router, encoder, dim, blob, *folder = rows[0]
        if not isinstance(blob, bytes) or len(blob) != 4 * dim:
            return None
        vector = np.frombuffer(blob, dtype="<f4")
        return PendingRequest(request_id, model, router, encoder, vector, *folder)

    def claim_scored(
        self, folder: str, router: str, encoder: str, dim: int, remove: bool = True
    ) -> list[tuple[PendingRequest, float]]:
        """Take the kept requests of ``folder`` (and those kept before folders were
        recorded) that were scored without being learned (``add_feedback`` with
        ``learned`` false) and that a ``router`` on ``dim``-wide ``encoder`` embeddings can
        learn, with their scores, in the order the scores were stored; their rows are removed in the same
        transaction, so that of several processes claiming at once only one gets each.
        Rows of another router, encoder or width stay (a router put back in the folder
        may learn them); a damaged row is removed and not returned (its score stays).
        Not ``remove``: the rows stay (the claimer, alone of its folder's learners,
        removes them once what it learned is saved: ``forget_pending``), those kept
        before folders were recorded as ``folder``'s, so no other folder's learns them."""
        self.check_open()
        sql = (
            "SELECT request_id, model, dim, embedding, folder, (SELECT score FROM feedback f "
            "WHERE f.request_id = p.request_id ORDER BY f.rowid LIMIT 1) FROM pending_feedback p "
            "WHERE folder IN (?, '') AND router = ? AND encoder = ? AND dim = ? AND EXISTS "
            "(SELECT 1 FROM feedback f WHERE f.request_id = p.request_id) "
            # in the order the scores were given, as the learner that took them learned them
            # (float sums: another order differs in the last bits, and so may a decision)
            "ORDER BY (SELECT MIN(f.rowid) FROM feedback f WHERE f.request_id = p.request_id)"
        )
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")  # one claimer at a time
                rows = self._db.execute(sql, (folder, router, encoder, dim)).fetchall()
                sound = [r for r in rows if _sound(r)]
                gone = rows if remove else [r for r in rows if not _sound(r)]
                self._db.executemany(
                    "DELETE FROM pending_feedback WHERE request_id = ?", [(r[0],) for r in gone]
                )
                # kept, those kept before folders were are now this folder's: no other
                # folder's learner takes them again
                self._db.executemany(
                    "UPDATE pending_feedback SET folder = ? WHERE request_id = ? AND folder = ''",
                    [(folder, r[0]) for r in sound if not remove],
                )
        except sqlite3.Error as e:
            failed = f"the scores awaiting router {router!r} could not be taken"
            raise self._refused(e, failed, "from", "they stay in it") from e
        claimed = []
        for request_id, model, _, blob, kept_in, score in sound:
            vector = np.frombuffer(blob, dtype="<f4")
            pending = PendingRequest(request_id, model, router, encoder, vector, kept_in)
            claimed.append((pending, float(score)))
        return claimed


def _sound(row: tuple[Any, ...]) -> bool:
    """Whether a row ``claim_scored`` read holds an embedding of its width and a score."""
    _, _, width, blob, _, score = row
    return isinstance(blob, bytes) and len(blob) == 4 * width and is_finite_number(score) and 0 <= score <= 1  # fmt: skip
