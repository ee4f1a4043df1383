"""Several processes learning into one saved feedback router: each save under a lock on
the folder adds what the router learned since it loaded (or last saved) to what is
saved there now, so the result is the router that learned everything, in either order
of the saves; a router saved there that cannot be merged is refused, untouched."""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from routerllm import files
from routerllm.exceptions import RouterLLMError
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.feedback import FeedbackRouter

from .test_feedback_router import SMALL_BIG, feedback_router, topic_prompts

# What two processes hear about their answers: different prompts, models and scores.
FIRST = (topic_prompts("parser", 4, 40), ["small", "big", "small", "small"], [1.0, 0.0, 0.5, 1.0])
SECOND = (topic_prompts("matrix", 3, 40), ["big", "big", "small"], [1.0, 0.25, 0.0])


def saved_router(folder: Path, **options: Any) -> Path:
    train = topic_prompts("parser", 8) + topic_prompts("matrix", 8)
    scores = np.array([[1.0, 1.0]] * 8 + [[0.0, 1.0]] * 8)
    router = feedback_router(encoder=options.pop("encoder", "hashing"), **options)
    return router.fit(train, scores, ["small", "big"]).save(folder)


def loaded(folder: Path, models: Any = SMALL_BIG) -> FeedbackRouter:
    router = load_router(folder, models)
    assert isinstance(router, FeedbackRouter)
    return router


def learned_both(folder: Path) -> FeedbackRouter:
    """One router that learned everything both processes learned."""
    router = loaded(folder)
    router.learn(*FIRST)
    router.learn(*SECOND)
    return router


def assert_same_posterior(router: FeedbackRouter, expected: FeedbackRouter) -> None:
    for got, want in zip(router.sums().arrays(), expected.sums().arrays(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    prompts = topic_prompts("parser", 3, 90) + topic_prompts("matrix", 3, 90)
    np.testing.assert_allclose(router.predict_prompts(prompts), expected.predict_prompts(prompts), atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("first_saves", [True, False])
def test_two_routers_saving_to_one_folder_keep_both_learnings(tmp_path: Path, first_saves: bool) -> None:  # fmt: skip
    folder = saved_router(tmp_path / "fb")
    expected = learned_both(folder)
    one, two = loaded(folder), loaded(folder)
    one.learn(*FIRST)
    two.learn(*SECOND)
    earlier, later = (one, two) if first_saves else (two, one)
    earlier.save(folder)
    later.save(folder)
    assert_same_posterior(loaded(folder), expected)
    assert_same_posterior(later, expected)  # it took the merged posterior
    # the earlier one has not seen the other's learning yet: it does at its next save,
    # which adds nothing twice
    earlier.learn(["one more prompt"], ["big"], [1.0])
    expected.learn(["one more prompt"], ["big"], [1.0])
    earlier.save(folder)
    assert_same_posterior(earlier, expected)
    assert_same_posterior(loaded(folder), expected)
    later.save(folder)  # nothing new on either side: the same posterior again
    assert_same_posterior(loaded(folder), expected)
    assert (folder / ".lock").exists() and not (folder / "weights.previous.npz").exists()


def test_a_save_elsewhere_or_after_a_new_fit_replaces_what_is_saved(tmp_path: Path) -> None:
    folder = saved_router(tmp_path / "fb")
    other = saved_router(tmp_path / "other", ridge=5.0)
    router = loaded(folder)
    router.learn(*FIRST)
    router.save(other)  # not where it was loaded from: a plain save, as for any router
    assert_same_posterior(loaded(other), router)
    # another process saves to the first folder; this router then fits anew: no merge
    rival = loaded(folder)
    rival.learn(*SECOND)
    rival.save(folder)
    refit = loaded(folder)
    refit.fit(topic_prompts("hello", 4), np.array([[1.0, 1.0]] * 4), ["small", "big"])
    refit.save(folder)
    assert_same_posterior(loaded(folder), refit)


def test_a_snapshot_saved_elsewhere_does_not_make_the_save_back_replace_the_folder(tmp_path: Path) -> None:  # fmt: skip
    folder = saved_router(tmp_path / "fb")
    expected = learned_both(folder)
    one, two = loaded(folder), loaded(folder)
    one.learn(*FIRST)
    one.save(tmp_path / "first")  # copies elsewhere, then back home
    one.save(tmp_path / "snapshot")
    two.learn(*SECOND)
    two.save(folder)  # another process saved here meanwhile: its learning is kept
    one.save(folder)
    assert_same_posterior(loaded(folder), expected)
    assert_same_posterior(one, expected)
    one.save(tmp_path / "snapshot")  # and again: the other's learning is there once
    assert_same_posterior(loaded(tmp_path / "snapshot"), expected)


def test_the_folder_a_router_merges_with_is_not_an_option_to_give(tmp_path: Path) -> None:
    folder, other = saved_router(tmp_path / "fb"), saved_router(tmp_path / "other")
    # given, the router would merge with other and replace what it loaded at its saves
    with pytest.raises(RouterLLMError, match=r"^loaded_from: set when the router saved in .* is loaded, not an option to give; remove it from the options \(router.options\)$"):  # fmt: skip
        load_router(folder, SMALL_BIG, {"loaded_from": str(other)})
    assert load_router(folder, SMALL_BIG, {"explore": 0.0}).explore == 0.0  # type: ignore[attr-defined]


def test_the_ridge_its_posterior_was_learned_with_cannot_be_changed_at_loading(tmp_path: Path) -> None:  # fmt: skip
    folder = saved_router(tmp_path / "fb", ridge=3.0)  # its saved precision holds 3 I
    with pytest.raises(RouterLLMError, match=r"^ridge: the router saved in .* was trained with ridge 3\.0; to use another, train it again"):  # fmt: skip
        load_router(folder, SMALL_BIG, {"ridge": 1000.0})
    assert load_router(folder, SMALL_BIG, {"ridge": 3}).ridge == 3.0  # type: ignore[attr-defined]


def test_saved_back_the_router_keeps_the_folders_options_but_those_it_changed(tmp_path: Path) -> None:  # fmt: skip
    folder = saved_router(tmp_path / "fb", explore=0.1)
    # a config's router.options apply to the run: learning, it saves none of them back
    served = load_router(folder, SMALL_BIG, {"explore": 0.7, "knob": 0.3})
    assert isinstance(served, FeedbackRouter) and served.explore == 0.7
    served.learn(*FIRST)
    served.save(folder)
    again = loaded(folder)
    assert (again.explore, again.knob) == (0.1, 0.0) and again.counts.sum() == served.counts.sum()
    assert served.explore == 0.7  # its run goes on with them
    # nor does it undo options saved there meanwhile by another; those it changes are saved
    rival = loaded(folder)
    rival.set_second_knob(0.4, 0.25)
    rival.save(folder)
    served.set_mix({"big": 1.0})
    served.save(folder)
    again = loaded(folder)
    assert (again.explore, again.second_knob, again.second_share) == (0.1, 0.4, 0.25)
    assert again.options["mix"] == {"big": 1.0}


def test_a_posterior_set_after_loading_replaces_what_is_saved(tmp_path: Path) -> None:
    folder = saved_router(tmp_path / "fb")
    given = loaded(saved_router(tmp_path / "other", ridge=5.0))
    given.learn(*FIRST)
    router = loaded(folder)
    router.set_state(given.state())  # like a new fit: not a lesson to add to the saved one
    router.save(folder)
    assert_same_posterior(router, given)
    assert_same_posterior(loaded(folder), given)


def test_a_router_saved_for_other_models_or_embeddings_is_refused_not_merged(tmp_path: Path) -> None:  # fmt: skip
    three = [*SMALL_BIG, Candidate("huge", 70.0)]
    for replace, message in [
        (lambda f: saved_router(f, encoder="hashing:64"), "on 64-wide 'hashing:64' embeddings"),
        (
            lambda f: (
                create_router("feedback", three, 0, encoder="hashing")
                .fit(["a", "b"], np.ones((2, 3)), ["small", "big", "huge"])
                .save(f)
            ),
            "trained for models not in this config: huge",
        ),
        (
            lambda f: (
                create_router("logreg", SMALL_BIG, 0, encoder="hashing")
                .fit(["a", "b"], np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"])
                .save(f)
            ),
            "holds now, a 'logreg' router",
        ),
    ]:
        folder = saved_router(tmp_path / message[:8].replace(" ", "_"))
        router = loaded(folder)
        router.learn(*FIRST)
        before = router.sums()
        replace(folder)  # another process saves something else there meanwhile
        saved = (folder / "weights.npz").read_bytes()
        with pytest.raises(RouterLLMError, match=f"cannot merge .*{message}"):
            router.save(folder)
        assert (folder / "weights.npz").read_bytes() == saved  # nothing was changed
        assert router.sums().equals(before)


def _learn_and_save(folder: str, lesson: Any, ready: Any) -> None:
    router = loaded(Path(folder))
    ready.wait()  # both have loaded the same router before either learns or saves
    router.learn(*lesson)
    router.save(folder)


def test_two_processes_learning_into_one_folder(tmp_path: Path) -> None:
    folder = saved_router(tmp_path / "fb")
    expected = learned_both(folder)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(2)
    workers = [
        spawn.Process(target=_learn_and_save, args=(str(folder), lesson, ready))
        for lesson in (FIRST, SECOND)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert_same_posterior(loaded(folder), expected)


class PosixLocks:
    """``fcntl`` as an NFS client gives it: ``flock`` emulated by a POSIX (``fcntl``)
    lock on the whole file, which a process holds for all its threads."""

    LOCK_EX, LOCK_SH, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_SH, fcntl.LOCK_NB, fcntl.LOCK_UN

    @staticmethod
    def flock(f: Any, operation: int) -> None:
        fcntl.lockf(f, operation)


def test_two_routers_of_one_process_save_in_turn_where_flock_is_a_posix_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two systems of one process learning into one folder on NFS: the second's save
    once went on while the first's held the folder's lock (the process held it), so
    that both read the saved router before either wrote, and one's learning was lost."""
    monkeypatch.setattr(files, "fcntl", PosixLocks)
    folder = saved_router(tmp_path / "fb")
    expected = learned_both(folder)
    one, two = loaded(folder), loaded(folder)
    one.learn(*FIRST)
    two.learn(*SECOND)

    def contents() -> tuple[bytes, bytes]:
        return (folder / "config.json").read_bytes(), (folder / "weights.npz").read_bytes()

    before = contents()
    other = threading.Thread(target=two.save, args=(folder,))
    with files.locked_folder(folder):  # as one's save holds it
        other.start()
        other.join(timeout=2)  # time for it to get in: it never may, however long it has
        assert other.is_alive() and contents() == before
    other.join()
    one.save(folder)
    assert_same_posterior(loaded(folder), expected)


def _learn_and_save_now(folder: str, lesson: Any) -> None:
    router = loaded(Path(folder))
    router.learn(*lesson)
    router.save(folder)


def test_a_router_loaded_while_another_process_saves_there_loads_whole(tmp_path: Path) -> None:
    """A server saving what it learned while a `routerllm route` of the same config
    loaded the folder: the load read the old config.json, then the new weights, and
    failed ("weights.npz does not match .../config.json (an interrupted save...): save
    or train the router again", or "weights.previous.npz are missing"). It loads the
    router saved there now."""
    from routerllm.routers import saved

    folder = saved_router(tmp_path / "fb")
    expected = loaded(folder)
    expected.learn(*FIRST)
    spawn = multiprocessing.get_context("spawn")
    named_weights = saved.named_weights
    saves: list[int | None] = []

    def another_save_meanwhile(path: Path) -> Path:
        if not saves:  # once its config.json is read: a save by another process lands
            other = spawn.Process(target=_learn_and_save_now, args=(str(folder), FIRST))
            other.start()
            other.join(timeout=120)
            saves.append(other.exitcode)
        return named_weights(path)

    with mock.patch.object(saved, "named_weights", another_save_meanwhile):
        router = loaded(folder)
    assert saves == [0]
    assert_same_posterior(router, expected)


@pytest.mark.parametrize("cut", ["disk full", "ctrl-c"])
def test_a_save_cut_short_then_saved_again_counts_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    """A save that failed after merging (a full disk: nothing written) or that Ctrl-C cut
    short as it renamed its files (all written, then the interrupt) and was then saved
    again (the next save point, or close) added the other process's learning, or its own,
    a second time (until 2026-12-05)."""
    import errno
    import os
    import signal

    folder = saved_router(tmp_path / "fb")
    expected = learned_both(folder)
    one, two = loaded(folder), loaded(folder)
    two.learn(*SECOND)
    two.save(folder)  # another process saved meanwhile: the first save merges with it
    one.learn(*FIRST)
    publish = files.publish

    def cut_short(tmp: Path, target: Path) -> None:
        if target.name == "config.json":
            monkeypatch.setattr(files, "publish", publish)  # once
            if cut == "disk full":
                raise OSError(errno.ENOSPC, "No space left on device")
            os.kill(os.getpid(), signal.SIGINT)
        publish(tmp, target)

    monkeypatch.setattr(files, "publish", cut_short)
    with pytest.raises(RouterLLMError if cut == "disk full" else files.SavedThenInterrupted):
        one.save(folder)
    one.save(folder)  # tried again
    assert_same_posterior(loaded(folder), expected)
    assert_same_posterior(one, expected)
