"""Feedback that survives a restart: with ``router.learn: true`` the learning router's
requests are kept in the request log's ``pending_feedback`` table (the prompt's
embedding as the router saw it, never the prompt, and the router's folder), so a later
system, or a server, with that ``router.path`` accepts, stores and learns their scores;
each is rated once whichever process rates it, and a score stored by a system that does
not learn, or learned by a process that ended before saving it, is learned once, by
the next learning system of that folder to open alone; the table is bounded per folder, sparing scores not learned yet; another folder's request
is refused by name; a log from before folders were recorded is migrated and
keeps its rows; a read-only log and other routers keep to memory."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm import feedback as feedback_module
from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.carbon.log_schema import SCHEMA, TABLES
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig
from routerllm.exceptions import PromptError, UnknownRequestError
from routerllm.routers import create_router, load_router
from routerllm.routers.feedback import FeedbackRouter
from routerllm.system import RouterLLM

from .conftest import StopAfter
from .test_budgets import record
from .test_feedback_router import FEEDBACK, ladder, topic_prompts
from .test_server import call, running


def pending_rows(config: AppConfig) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.log.path) as db:
        return db.execute("SELECT * FROM pending_feedback ORDER BY rowid").fetchall()


def saved(config: AppConfig) -> FeedbackRouter:
    router = load_router(config.router.path or "", config.models)
    assert isinstance(router, FeedbackRouter)
    return router


def test_a_score_given_after_a_restart_is_stored_and_learned(tmp_path: Path) -> None:
    config = ladder(tmp_path)
    prompts = topic_prompts("parser", 2, 50)
    with RouterLLM(config) as before:
        answers = before.generate_batch(prompts)
    # what the log keeps: the model, the router and the embedding, never the prompt
    rows = pending_rows(config)
    expected = saved(config)
    assert [r[:5] for r in rows] == [
        (a.request_id, a.model, "feedback", "hashing", expected.dim) for a in answers
    ]
    for row, prompt in zip(rows, prompts, strict=True):
        np.testing.assert_array_equal(np.frombuffer(row[5], "<f4"), expected.embed([prompt])[0])
    log_bytes = Path(config.log.path).read_bytes()
    assert not any(p.encode() in log_bytes for p in prompts)
    # a new system, served: it never saw these requests
    with RouterLLM(config) as after, running(after) as base:
        status, text = call(base, FEEDBACK, {"request_id": answers[0].request_id, "score": 0.25})
        assert (status, json.loads(text)) == (200, {"ok": True})
        expected.learn([prompts[0]], [answers[0].model], [0.25])
        assert after.router.sums().equals(expected.sums())  # type: ignore[attr-defined]
        assert [r[:2] for r in after.log.feedback()] == [(answers[0].request_id, 0.25)]
        # learned, not saved yet: its row stays until a save holds it
        assert [r[0] for r in pending_rows(config)] == [a.request_id for a in answers]
        status, text = call(base, FEEDBACK, {"request_id": answers[0].request_id, "score": 1})
        assert status == 400 and "rated already" in text
    assert saved(config).sums().equals(expected.sums())  # closing saved what it learned
    assert [r[0] for r in pending_rows(config)] == [answers[1].request_id]  # saved: gone
    with RouterLLM(config) as third:  # rated once, across restarts too
        with pytest.raises(PromptError, match="has been rated already"):
            third.feedback(answers[0].request_id, 1.0)
        third.feedback(answers[1].request_id, 1.0)
        with pytest.raises(UnknownRequestError, match="no routed request 'nope'"):
            third.feedback("nope", 1.0)
        assert len(third.log.feedback()) == 2
    assert pending_rows(config) == []


def with_router(config: AppConfig, **update: Any) -> AppConfig:
    return config.model_copy(update={"router": config.router.model_copy(update=update)})


def test_a_score_a_system_that_does_not_learn_stores_is_learned_once_later(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    prompt = topic_prompts("parser", 1, 60)[0]
    with RouterLLM(config) as learning:
        answer = learning.generate(prompt)
    expected = saved(config)
    with RouterLLM(with_router(config, learn=False)) as system:
        system.feedback(answer.request_id, 0.5)  # stored, not learned: the row stays
        assert [r[:2] for r in system.log.feedback()] == [(answer.request_id, 0.5)]
        with pytest.raises(PromptError, match="has been rated already"):
            system.feedback(answer.request_id, 1.0)
    assert saved(config).sums().equals(expected.sums())
    assert [r[0] for r in pending_rows(config)] == [answer.request_id]
    with RouterLLM(config) as first, RouterLLM(config) as second:  # each learns at opening
        counts = sorted(float(s.router.counts.sum()) for s in (first, second))  # type: ignore[attr-defined]
        assert counts == [expected.counts.sum(), expected.counts.sum() + 1]  # one learned it
        with pytest.raises(PromptError, match="has been rated already"):
            second.feedback(answer.request_id, 1.0)
    assert pending_rows(config) == []  # learned and saved: gone
    expected.learn([prompt], [answer.model], [0.5])
    assert saved(config).sums().equals(expected.sums())  # saved at close, learned once
    with RouterLLM(config) as third:
        assert third.router.sums().equals(expected.sums())  # type: ignore[attr-defined]
    assert len(RequestLog(config.log.path, read_only=True).feedback()) == 1


def test_two_learning_loops_opening_at_once_take_each_stored_score_once(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    with RouterLLM(config) as learning:
        answers = learning.generate_batch(topic_prompts("parser", 6, 60))
    with RouterLLM(with_router(config, learn=False)) as system:
        for answer in answers:
            system.feedback(answer.request_id, 1.0)
    assert len(pending_rows(config)) == 6
    before = saved(config).counts.sum()
    loops = [feedback_module.FeedbackLoop(saved(config), True, config.router.path) for _ in range(2)]  # fmt: skip
    logs = [RequestLog(config.log.path) for _ in loops]  # a connection each, as two processes
    start, learned = threading.Barrier(2), [0, 0]

    def open_loop(i: int) -> None:
        start.wait()
        learned[i] = loops[i].learn_scored(logs[i])

    threads = [threading.Thread(target=open_loop, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for loop in loops:
        loop.close()  # saves what it learned, then removes the rows it learned
    for log in logs:
        log.close()
    assert sorted(learned) == [0, 6] and pending_rows(config) == []
    assert sorted(loop.router.counts.sum() - before for loop in loops) == [0, 6]  # type: ignore[attr-defined]


CRASHING = """
import os, sys
from routerllm.system import RouterLLM
system = RouterLLM.from_config(sys.argv[1])
for answer in system.generate_batch(sys.argv[2:]):
    system.feedback(answer.request_id, 0.75)
    print(answer.request_id, answer.model)
os._exit(1)  # ends before the router that learned the scores is saved
"""


def test_scores_learned_by_a_process_that_ends_before_saving_are_learned_once_later(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    prompts = topic_prompts("parser", 3, 70)
    expected = saved(config)
    ended = subprocess.run(
        [sys.executable, "-c", CRASHING, str(tmp_path / "config.yaml"), *prompts],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ended.returncode == 1, ended.stderr
    models = [line.split()[1] for line in ended.stdout.splitlines()]
    assert len(models) == 3 and saved(config).sums().equals(expected.sums())  # never saved
    assert len(pending_rows(config)) == 3  # the requests it learned stay in the log
    expected.learn(prompts, models, [0.75] * 3)
    with RouterLLM(config) as alone:  # no other learner: it learns them as it opens
        assert alone.router.sums().equals(expected.sums())  # type: ignore[attr-defined]
        answer = alone.generate(topic_prompts("matrix", 1, 70)[0])
        alone.feedback(answer.request_id, 0.5)  # learned here, not saved yet
        with RouterLLM(config) as other:  # another learner is present: nothing to take
            assert other.router.sums().equals(saved(config).sums())  # type: ignore[attr-defined]
    expected.learn(topic_prompts("matrix", 1, 70), [answer.model], [0.5])
    assert saved(config).sums().equals(expected.sums())  # each learned once
    assert pending_rows(config) == []
    with RouterLLM(config) as later:
        assert later.router.sums().equals(expected.sums())  # type: ignore[attr-defined]


KILLED = """
import os, signal, sys
import numpy as np
from routerllm.system import RouterLLM
system = RouterLLM.from_config(sys.argv[1])
answers = system.generate_batch(sys.argv[3:])
for i, answer in reversed(list(enumerate(answers))):  # rated in another order than routed
    system.feedback(answer.request_id, (0.1, 0.7, 0.3, 0.9, 0.2, 0.6)[i % 6])
np.savez(sys.argv[2], **dict(zip(("precision", "moment", "counts"), system.router.sums().arrays())))
os.kill(os.getpid(), signal.SIGKILL)  # after accepting the scores, before saving the router
"""


def test_a_learner_killed_before_saving_is_learned_again_to_the_same_bit(tmp_path: Path) -> None:  # fmt: skip
    """The scores a learner accepted and then lost with its process are learned again by
    the next one, in the order they were given: the posterior (moment 2.2e-16 apart,
    relearned in the order the requests were routed) and so every decision after the
    restart are those the killed process would have made."""
    config = ladder(tmp_path)
    prompts = topic_prompts("parser", 6, 70) + topic_prompts("matrix", 6, 70)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path / "config.yaml"), str(tmp_path / "sums.npz"), *prompts],  # fmt: skip
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    before = np.load(tmp_path / "sums.npz")
    assert len(pending_rows(config)) == 12
    with RouterLLM(config) as alone:
        for name, array in zip(("precision", "moment", "counts"), alone.router.sums().arrays(), strict=True):  # type: ignore[attr-defined]  # fmt: skip
            np.testing.assert_array_equal(array, before[name], err_msg=name)


def test_two_router_folders_sharing_a_log_do_not_learn_each_others_requests(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    other = with_router(config, path=str(shutil.copytree(config.router.path or "", tmp_path / "other")))  # fmt: skip
    prompts = topic_prompts("parser", 3, 60)
    with RouterLLM(config) as mine, RouterLLM(other) as theirs:
        a, a2 = mine.generate_batch(prompts[:2])
        b = theirs.generate(prompts[2])
        folders = {r[0]: r[6] for r in pending_rows(config)}
        assert folders == {
            a.request_id: str((tmp_path / "router").resolve()),
            a2.request_id: str((tmp_path / "router").resolve()),
            b.request_id: str((tmp_path / "other").resolve()),
        }
        for system, answer, folder in ((theirs, a, "router"), (mine, b, "other")):  # not theirs to learn: refused  # fmt: skip
            with pytest.raises(UnknownRequestError, match=f"^request '{answer.request_id}' was routed by the router in {tmp_path.resolve() / folder}, not by this system's .*; nothing was stored$"):  # fmt: skip
                system.feedback(answer.request_id, 1.0)
        assert mine.log.feedback() == [] and len(pending_rows(config)) == 3
        theirs_before = saved(other).sums()
    with RouterLLM(with_router(other, learn=False)) as quiet:  # stores any kept request's
        quiet.feedback(a2.request_id, 0.5)
    with RouterLLM(other) as theirs:  # a2's score is not theirs to learn either
        assert theirs.router.sums().equals(theirs_before)  # type: ignore[attr-defined]
        with pytest.raises(UnknownRequestError, match="was routed by the router in"):
            theirs.feedback(a.request_id, 1.0)
        theirs.feedback(b.request_id, 0.0)  # theirs: learned
        assert theirs.router.counts.sum() == theirs_before.counts.sum() + 1  # type: ignore[attr-defined]
    expected = saved(config)
    with RouterLLM(config) as mine:  # learns a2's stored score as it opens, then a's
        assert mine.router.counts.sum() == expected.counts.sum() + 1  # type: ignore[attr-defined]
        mine.feedback(a.request_id, 1.0)
    expected.learn(prompts[:2][::-1], [a2.model, a.model], [0.5, 1.0])
    assert saved(config).sums().equals(expected.sums()) and pending_rows(config) == []


def test_two_systems_sharing_a_log_rate_each_answer_once(tmp_path: Path) -> None:
    config = ladder(tmp_path)
    with RouterLLM(config) as first, RouterLLM(config) as second:
        encoded: list[list[str]] = []
        for system in (first, second):  # count what each router encodes
            embed = system.router.embed  # type: ignore[attr-defined]
            system.router.embed = lambda prompts, embed=embed: encoded.append(list(prompts)) or embed(prompts)  # type: ignore[attr-defined]  # fmt: skip
        answer = first.generate("please write a parser")
        second.feedback(answer.request_id, 1.0)  # from the log: it did not route it
        assert encoded == [["please write a parser"]]  # once, to route; learned from that
        with pytest.raises(PromptError, match="has been rated already"):
            first.feedback(answer.request_id, 0.0)  # remembered here, rated there
        assert [r[:2] for r in first.log.feedback()] == [(answer.request_id, 1.0)]
        assert first.router.counts.sum() == saved(config).counts.sum()  # type: ignore[attr-defined]
        assert second.router.counts.sum() == saved(config).counts.sum() + 1  # type: ignore[attr-defined]


def test_only_the_configured_learning_routers_requests_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(feedback_module, "MAX_REMEMBERED", 2)
    config = ladder(tmp_path)
    with RouterLLM(config) as system:
        answers = system.generate_batch(topic_prompts("hello", 3, 50))
        assert [r[0] for r in pending_rows(config)] == [a.request_id for a in answers[1:]]
        other = create_router("feedback", config.models, 0, encoder="hashing")
        other.set_state(system.router.state())
        given = system.generate("hi", router=other)  # a router given in code: memory only
        system.generate("hi", router="rules")
        assert [r[0] for r in pending_rows(config)] == [a.request_id for a in answers[1:]]
        system.feedback(given.request_id, 1.0)  # learned by that router, in memory
        assert other.counts.sum() == system.router.counts.sum() + 1  # type: ignore[attr-defined]


def test_a_read_only_log_or_none_keeps_requests_in_memory(tmp_path: Path) -> None:
    config = ladder(tmp_path)
    RequestLog(config.log.path).close()
    router = saved(config)
    loop = feedback_module.FeedbackLoop(router, learn=True, save_to=config.router.path)
    _, embedded = loop.route(router, ["hi"], None)
    assert embedded is not None
    with RequestLog(config.log.path, read_only=True) as read_only:
        assert not loop.keeps_in(read_only) and not loop.keeps_in(None)
        loop.remember("r1", router.model_names[0], router, embedded[0], read_only)
        loop.remember("r2", router.model_names[0], router, embedded[0], None)
    assert pending_rows(config) == [] and list(loop._routed) == ["r1", "r2"]
    with RequestLog(config.log.path) as log:
        assert loop.keeps_in(log)
        log.append(dataclasses.replace(record(router.model_names[0], datetime.now(timezone.utc)), id="r1"))  # fmt: skip
        loop.feedback("r1", 1.0, log)  # memory still serves
        assert router.counts.sum() == saved(config).counts.sum() + 1


def test_a_request_the_router_can_no_longer_learn_is_refused(tmp_path: Path) -> None:
    config = ladder(tmp_path)
    with RouterLLM(config) as before:
        answer = before.generate("please write a parser")
    narrower = create_router("feedback", config.models, 0, encoder="hashing:64")
    narrower.fit(["a", "b"], np.ones((2, 3)), [m.name for m in config.models])  # type: ignore[attr-defined]
    narrower.save(config.router.path or "")  # fitted anew into the folder: replaces it
    with RouterLLM(config) as after:
        with pytest.raises(PromptError, match=r"256-wide 'hashing' embeddings, but router.path now holds .* 64-wide 'hashing:64' ones, which cannot learn it; nothing was stored"):  # fmt: skip
            after.feedback(answer.request_id, 1.0)
        assert after.log.feedback() == [] and len(pending_rows(config)) == 1


def test_a_kept_embedding_the_router_cannot_learn_is_refused_before_storing(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    with RouterLLM(config) as before:
        answers = before.generate_batch(topic_prompts("parser", 2, 50))
    dim = saved(config).dim or 0
    with sqlite3.connect(config.log.path) as db:  # changed outside RouterLLM
        for answer, value in zip(answers, (np.nan, 1e6), strict=True):
            blob = np.full(dim, value, dtype="<f4").tobytes()
            db.execute("UPDATE pending_feedback SET embedding = ? WHERE request_id = ?", (blob, answer.request_id))  # fmt: skip
    with RouterLLM(config) as after:
        for answer, why in zip(answers, ("NaN or infinite", "values up to 10000"), strict=True):
            with pytest.raises(PromptError, match=f"^request '{answer.request_id}' cannot be learned by router 'feedback': .*{why}.*; nothing was stored$"):  # fmt: skip
                after.feedback(answer.request_id, 1.0)
        assert after.log.feedback() == [] and len(pending_rows(config)) == 2
        assert after.router.counts.sum() == saved(config).counts.sum()  # type: ignore[attr-defined]


def test_the_kept_requests_are_bounded_per_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(feedback_module, "MAX_REMEMBERED", 2)
    config = ladder(tmp_path)
    other = with_router(config, path=str(shutil.copytree(config.router.path or "", tmp_path / "other")))  # fmt: skip
    with RouterLLM(config) as mine, RouterLLM(other) as theirs:
        a = mine.generate_batch(topic_prompts("parser", 2, 60))
        b = theirs.generate_batch(topic_prompts("hello", 3, 60))  # a busy neighbour
        a.append(mine.generate("please write a matrix"))
    # the newest two of each folder, whatever the other kept since
    assert [r[0] for r in pending_rows(config)] == [x.request_id for x in (a[1], b[1], b[2], a[2])]


def test_the_bound_spares_scored_requests_until_they_are_learned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(feedback_module, "MAX_REMEMBERED", 2)
    config = ladder(tmp_path)
    prompts = topic_prompts("parser", 4, 60)
    with RouterLLM(config) as learning:
        first = learning.generate(prompts[0])
        with RouterLLM(with_router(config, learn=False)) as quiet:
            quiet.feedback(first.request_id, 0.5)  # stored; learned at the next opening
        later = learning.generate_batch(prompts[1:])
        # the newest two, and the scored request beyond them
        assert [r[0] for r in pending_rows(config)] == [first.request_id, *(a.request_id for a in later[1:])]  # fmt: skip
    expected = saved(config)
    with RouterLLM(config) as next_start:
        expected.learn(prompts[:1], [first.model], [0.5])
        assert next_start.router.sums().equals(expected.sums())  # type: ignore[attr-defined]
    assert [r[0] for r in pending_rows(config)] == [a.request_id for a in later[1:]]


#: The prompt of the row ``_old_row`` keeps.
OLD_PROMPT = "please write a parser"


def _old_row(config: AppConfig) -> tuple[str, np.ndarray]:
    """Put in ``config``'s log the schema and a row ("old", not yet scored) as they were
    before folders were recorded: the row's model and embedding."""
    router = saved(config)
    model = router.model_names[0]
    vector = router.embed([OLD_PROMPT])[0].astype("<f4")
    with sqlite3.connect(config.log.path) as db:  # the schema and row as they were
        db.executescript(SCHEMA.replace(",\n    folder TEXT NOT NULL DEFAULT ''", ""))
        db.execute(
            "INSERT OR REPLACE INTO pending_feedback VALUES (?, ?, ?, ?, ?, ?)",
            ("old", model, "feedback", "hashing", len(vector), vector.tobytes()),
        )
        db.execute(  # its request, logged (a score of no logged request is refused)
            "INSERT INTO requests (id, timestamp, prompt_sha256, prompt_chars, model, router, "
            "confidence, prompt_tokens, completion_tokens, latency_s, energy_kwh, co2_kg, "
            "cost_usd) VALUES ('old', '2026-12-01T00:00:00.000000+00:00', '', 21, ?, "
            "'feedback', 1, 8, 8, 0.1, 0, 0, 0)",
            (model,),
        )
    return model, vector


def _two_folders_and_an_old_row(tmp_path: Path) -> tuple[AppConfig, AppConfig]:
    """A learning config and one of another folder on the same log, which holds a row
    ("old") kept before folders were recorded, not yet scored."""
    config = ladder(tmp_path)
    other = with_router(config, path=str(shutil.copytree(config.router.path or "", tmp_path / "other")))  # fmt: skip
    _old_row(config)
    return config, other


def test_a_scored_row_from_before_folders_were_kept_is_learned_by_one_folder_only(tmp_path: Path) -> None:  # fmt: skip
    """A row kept before folders were recorded may be learned by any folder's router,
    but once: a lone learner of another folder opening while the first, which claimed
    it and has not saved yet, still runs learned it a second time."""
    config, other = _two_folders_and_an_old_row(tmp_path)
    with RouterLLM(with_router(config, learn=False)) as quiet:  # migrates, stores its score
        quiet.feedback("old", 0.25)
    before = saved(config).counts.sum()
    with RouterLLM(config) as mine, RouterLLM(other) as theirs:  # each alone in its folder
        learned = [s.router.counts.sum() - before for s in (mine, theirs)]  # type: ignore[attr-defined]
        assert learned == [1, 0]  # mine took it as it opened: not theirs to learn again
    assert pending_rows(config) == []  # saved by mine: gone
    assert saved(other).counts.sum() == before and saved(config).counts.sum() == before + 1


def test_a_row_from_before_folders_were_kept_rated_by_a_learner_is_not_learned_by_another_folder(tmp_path: Path) -> None:  # fmt: skip
    """Rated by a learning system (which keeps its row until a save holds it), a row
    kept before folders were recorded was taken and learned again by a learner of
    another folder opening alone meanwhile."""
    config, other = _two_folders_and_an_old_row(tmp_path)
    before = saved(config).counts.sum()
    with RouterLLM(config) as mine:
        mine.feedback("old", 0.25)  # learned here, not saved yet
        with RouterLLM(other) as theirs:  # alone in its folder: nothing of its own to take
            assert theirs.router.counts.sum() == before  # type: ignore[attr-defined]
    assert pending_rows(config) == []
    assert saved(other).counts.sum() == before and saved(config).counts.sum() == before + 1


def test_a_log_from_before_folders_were_kept_is_read_then_migrated_with_its_rows(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    router = saved(config)
    model, vector = _old_row(config)
    with RequestLog(config.log.path, read_only=True) as old:  # read as it is
        kept = old.pending("old")
        assert kept is not None and (kept.model, kept.folder) == (model, "")
    with RouterLLM(config) as system:  # opened for writing: migrated, its row kept
        assert [r[:6] for r in pending_rows(config)] == [("old", model, "feedback", "hashing", len(vector), vector.tobytes())]  # fmt: skip
        answer = system.generate("hi")
        system.feedback("old", 0.25)  # kept before folders were: any folder's to learn
        router.learn([OLD_PROMPT], [model], [0.25])
        assert system.router.sums().equals(router.sums())  # type: ignore[attr-defined]
    assert [(r[0], r[6]) for r in pending_rows(config)] == [(answer.request_id, str((tmp_path / "router").resolve()))]  # fmt: skip
    with sqlite3.connect(config.log.path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(pending_feedback)")] == TABLES["pending_feedback"]  # fmt: skip


def test_an_answer_cancelled_half_way_is_not_rated_nor_learned(tmp_path: Path) -> None:
    """Its few tokens are not the model's answer: a score would teach the router how a
    model did on an answer it was not let finish (the cache and the cascade skip such
    answers too). Refused by name, nothing stored, not kept for after a restart."""
    config = ladder(tmp_path)
    before = saved(config).counts.sum()
    with RouterLLM(config) as system:
        with cancellable(StopAfter(2)):
            cut = system.generate(topic_prompts("parser", 1, 80)[0])
        assert cut.finish_reason == CANCELLED
        whole = system.generate(topic_prompts("parser", 1, 81)[0])
        with pytest.raises(PromptError, match=f"^request '{cut.request_id}' was cancelled half-way .*; nothing was stored$"):  # fmt: skip
            system.feedback(cut.request_id, 0.0)
        assert system.log.feedback() == [] and system.router.counts.sum() == before  # type: ignore[attr-defined]
        assert [r[0] for r in pending_rows(config)] == [whole.request_id]
        system.feedback(whole.request_id, 1.0)  # a whole answer still is
    with RouterLLM(config) as after, pytest.raises(UnknownRequestError, match="no routed request"):  # fmt: skip
        after.feedback(cut.request_id, 0.0)
    assert len(RequestLog(config.log.path, read_only=True).feedback()) == 1
    assert saved(config).counts.sum() == before + 1


def test_an_answer_from_the_request_cache_is_rated_and_learned_once(tmp_path: Path) -> None:
    from routerllm.config_sections import CacheConfig

    config = ladder(tmp_path).model_copy(update={"cache": CacheConfig(enabled=True)})
    prompt = topic_prompts("parser", 1, 80)[0]
    expected = saved(config)
    with RouterLLM(config) as system:
        original = system.generate(prompt)
        copies = [system.generate(prompt) for _ in range(2)]
        assert [c.cached_from for c in copies] == [original.request_id] * 2
        assert {c.model for c in copies} == {original.model}
        # a copy's score is the answer's: stored and learned once, under the original
        system.feedback(copies[0].request_id, 0.25)
        for again in (copies[1].request_id, original.request_id, copies[0].request_id):
            with pytest.raises(PromptError, match="rated already") as refused:
                system.feedback(again, 1.0)
            assert "\n" not in str(refused.value)
        assert [r[:2] for r in system.log.feedback()] == [(original.request_id, 0.25)]
        expected.learn([prompt], [original.model], [0.25])
        assert system.router.sums().equals(expected.sums())  # type: ignore[attr-defined]
    # only the answer's request is kept for a score after a restart, not its copies
    assert pending_rows(config) == []
    assert saved(config).sums().equals(expected.sums())
    with RouterLLM(config) as after:
        fresh = after.generate(prompt)  # a new process: its cache starts empty
        copy = after.generate(prompt)
        assert copy.cached_from == fresh.request_id
    assert [r[0] for r in pending_rows(config)] == [fresh.request_id]
    with RouterLLM(config) as third:
        with pytest.raises(UnknownRequestError, match="cached_from"):
            third.feedback(copy.request_id, 1.0)
        third.feedback(fresh.request_id, 1.0)
    expected.learn([prompt], [fresh.model], [1.0])
    assert saved(config).sums().equals(expected.sums())


OPENING = """
import sys
from routerllm.system import RouterLLM
with RouterLLM.from_config(sys.argv[1]) as system:
    print(float(system.router.counts.sum()))
"""


def test_a_learner_that_cannot_tell_who_is_present_does_not_take_anothers_rows(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    folder = Path(config.router.path or "")
    prompt = topic_prompts("parser", 1, 90)[0]
    expected = saved(config)
    with RouterLLM(config) as present:
        answer = present.generate(prompt)
        present.feedback(answer.request_id, 0.5)  # learned, not saved: its row stays
        assert [r[0] for r in pending_rows(config)] == [answer.request_id]
        # another process cannot open the presence file (as a folder it may not write)
        (folder / ".present").rename(folder / ".present.held")
        (folder / ".present").mkdir()
        other = subprocess.run(
            [sys.executable, "-c", OPENING, str(tmp_path / "config.yaml")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert float(other.stdout) == expected.counts.sum()  # it took nothing
        assert "cannot tell" in other.stderr and other.stderr.count("\n") <= 2
    expected.learn([prompt], [answer.model], [0.5])
    assert saved(config).sums().equals(expected.sums())  # learned once
    assert pending_rows(config) == []


class _ReaderStopped(Exception):
    pass


def test_an_answer_whose_caller_raised_in_on_text_is_refused_by_name(tmp_path: Path) -> None:
    """An ``on_text`` (or ``on_answer``) that raises stops its answer, which is logged (as
    cancelled where it was streamed); on_answer had said its request_id, and rating it gave
    "no routed request": it was not kept. Refused by name, as a cancelled answer is,
    alone or in a batch; nothing stored, nothing learned, nothing kept for a restart."""
    from routerllm.backends.base import GenerationRequest
    from routerllm.exceptions import BatchError

    config = ladder(tmp_path)
    before = saved(config).counts.sum()
    ids: list[str] = []

    def stop(piece: str) -> None:
        raise _ReaderStopped("the reader stopped")

    def asked(prompt: str) -> GenerationRequest:
        return GenerationRequest(prompt, on_text=stop, on_answer=lambda _, rid: ids.append(rid))

    prompts = topic_prompts("parser", 3, 80)
    with RouterLLM(config) as system:
        with pytest.raises(_ReaderStopped):
            system.generate(asked(prompts[0]))
        with pytest.raises(BatchError) as err:
            system.generate_batch([prompts[1], asked(prompts[2])])
        (whole,) = err.value.results
        assert len(ids) == 2 and [r.id for r in system.log.records()][-3:] == [ids[0], whole.request_id, ids[1]]  # fmt: skip
        for cut in ids:
            with pytest.raises(PromptError, match=f"^request '{cut}' was cut by its caller: its on_text or on_answer raised as the answer was given, so the caller did not take tiny-\\w+'s whole answer .*; nothing was stored$"):  # fmt: skip
                system.feedback(cut, 0.0)
        assert system.log.feedback() == [] and system.router.counts.sum() == before  # type: ignore[attr-defined]
        assert [r[0] for r in pending_rows(config)] == [whole.request_id]
        system.feedback(whole.request_id, 1.0)  # the batch's answer before it still is
