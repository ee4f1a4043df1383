"""An ``openai_http`` model's answer streamed (``GenerationRequest.on_text``): asked of
the endpoint with ``"stream": true`` and read as its server-sent events, against the
real stdlib stub server of test_openai_http.py (and llama-cpp-python's real server)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends import http_transport, http_watch, openai_http
from routerllm.backends.base import GenerationRequest
from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.backends.openai_stream import sse_data
from routerllm.config import load_config
from routerllm.exceptions import BackendError, PromptError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config
from .test_openai_http import (
    Reply,
    Stub,
    completion_reply,
    error_reply,
    http_backend,
    http_model_dict,
    serving_stub,
)


@pytest.fixture
def stub() -> Iterator[Stub]:
    with serving_stub() as state:
        yield state


def event(payload: Any) -> bytes:
    """One server-sent event carrying ``payload`` as JSON (a str as it is)."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def delta(text: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
    said: dict[str, Any] = {"role": "assistant"} if role else {}
    if text is not None:
        said["content"] = text
    choice = {"index": 0, "delta": said, "finish_reason": finish}
    return event({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


def usage(prompt: int, completion: int) -> bytes:
    counts = {"prompt_tokens": prompt, "completion_tokens": completion}
    return event({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": counts})


DONE = event("[DONE]")
HELLO = (delta("", role=True), delta("Hel"), delta("lo"), delta(" world"), delta(finish="stop"))


def streamed(reply: Reply, stub: Stub, **options: Any) -> tuple[list[str], Any]:
    """The pieces ``on_text`` was given and the completion, for a request answered
    with ``reply``."""
    stub.default_post = reply
    pieces: list[str] = []

    def given(piece: str) -> None:
        pieces.append(piece)
        stub.resume.set()

    backend = http_backend(stub.base_url, **options)
    return pieces, backend.generate(GenerationRequest("hi", on_text=given))


def test_pieces_arrive_before_the_upstream_finishes_and_join_to_the_answer(stub: Stub) -> None:
    """The endpoint is asked for a stream with its usage, and each piece is given as it
    comes: the stub sends the rest only once the first piece was given."""
    reply = Reply(200, b"", events=(*HELLO, usage(7, 3), DONE), pause_after=2)
    pieces, completion = streamed(reply, stub)
    assert stub.resumed == [True]  # "Hel" was given while the stub waited to send the rest
    assert pieces == ["Hel", "lo", " world"]
    assert "".join(pieces) == completion.text == "Hello world"
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 3)
    assert completion.usage_known and completion.finish_reason == "stop"
    [post] = stub.posts
    sent = post.json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert post.headers["accept"] == "text/event-stream"


def test_a_request_without_on_text_is_asked_whole_as_before(stub: Stub) -> None:
    stub.default_post = completion_reply("whole", prompt_tokens=4, tokens=1)
    completion = http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == ("whole", 4, 1)  # fmt: skip
    assert "stream" not in stub.posts[0].json() and "stream_options" not in stub.posts[0].json()


def test_a_stream_without_a_usage_chunk_is_an_answer_of_unknown_usage(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pieces, completion = streamed(Reply(200, b"", events=(*HELLO, DONE)), stub)
    assert "".join(pieces) == completion.text == "Hello world"
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)
    assert not completion.usage_known
    [warning] = [r.getMessage() for r in caplog.records if r.name == openai_http.__name__]
    assert "gives no token usage" in warning


def test_an_endpoint_that_ignores_stream_answers_whole(stub: Stub) -> None:
    """A JSON answer to a streamed request (an endpoint that does not stream) is read as
    the unstreamed answer: its text comes whole at the end (the caller gives it)."""
    pieces, completion = streamed(completion_reply("all at once", tokens=3), stub)
    assert pieces == [] and completion.text == "all at once"
    assert completion.completion_tokens == 3


@pytest.mark.parametrize(
    "error",
    [
        {"error": {"message": "GPU fell over", "type": "server_error", "code": "internal"}},
        {"object": "error", "message": "GPU fell over", "type": "InternalServerError", "code": 500},
    ],
    ids=["openai", "vllm"],
)
def test_an_error_event_after_the_first_piece_is_a_backend_error_not_retried(
    stub: Stub, error: dict[str, Any]
) -> None:
    reply = Reply(200, b"", events=(delta("Hel"), event(error), DONE))
    with pytest.raises(BackendError, match="GPU fell over") as err:
        streamed(reply, stub)
    assert "after its answer began" in str(err.value)
    assert len(stub.posts) == 1  # asked again, the text given would come twice


def test_an_error_event_before_any_text_is_handled_as_its_status(stub: Stub) -> None:
    """An error sent as the stream's first event, with its status as ``code`` (vLLM's,
    OpenRouter's), is that HTTP status: a 503 retried, a 400 the request refused."""
    busy = {"error": {"message": "overloaded", "code": 503}}
    stub.script.append(Reply(200, b"", events=(event(busy),)))
    pieces, completion = streamed(Reply(200, b"", events=(*HELLO, usage(2, 3), DONE)), stub)
    assert completion.text == "Hello world" and len(stub.posts) == 2
    refused = {"object": "error", "message": "top_p must be in (0, 1]", "param": "top_p", "code": 400}  # fmt: skip
    with pytest.raises(PromptError, match="top_p must be in") as err:
        streamed(Reply(200, b"", events=(event(refused), DONE)), stub)
    assert err.value.param == "top_p"


def test_an_http_error_status_for_a_stream_is_retried_as_before(stub: Stub) -> None:
    stub.script.append(error_reply(429, "slow down"))
    pieces, completion = streamed(Reply(200, b"", events=(*HELLO, DONE)), stub)
    assert completion.text == "Hello world" and len(stub.posts) == 2


@pytest.mark.parametrize("cut", [True, False], ids=["connection-cut", "ended-without-done"])
def test_a_stream_ending_without_done_is_an_error_not_a_short_answer(stub: Stub, cut: bool) -> None:
    reply = Reply(200, b"", events=(delta("Hel"), delta("lo")), cut=cut)
    with pytest.raises(BackendError, match="after its answer began") as err:
        streamed(reply, stub, max_retries=2)
    said = "the connection closed mid-answer" if cut else "the stream ended without [DONE]"
    assert said in str(err.value)
    assert len(stub.posts) == 1


def test_a_stream_cut_before_any_text_is_asked_again(stub: Stub) -> None:
    stub.script.append(Reply(200, b"", events=(delta("", role=True),), cut=True))
    pieces, completion = streamed(Reply(200, b"", events=(*HELLO, DONE)), stub)
    assert "".join(pieces) == completion.text == "Hello world" and len(stub.posts) == 2


def test_a_chunk_that_is_not_json_is_an_error(stub: Stub) -> None:
    reply = Reply(200, b"", events=(delta("Hel"), b"data: {not json\n\n", DONE))
    with pytest.raises(BackendError, match="a chunk of its stream is not JSON"):
        streamed(reply, stub)
    assert len(stub.posts) == 1


def test_a_stalled_stream_ends_at_timeout_s_between_two_chunks(stub: Stub) -> None:
    """Chunks 0.3 s apart pass a timeout_s of 0.8 s, the whole answer taking longer than
    it; a stream silent for longer than it after a piece is a failed answer."""
    slow = Reply(200, b"", events=(*HELLO, DONE), gap_s=0.3)
    start = time.perf_counter()
    pieces, completion = streamed(slow, stub, timeout_s=0.8)
    assert time.perf_counter() - start > 1.2 and completion.text == "Hello world"
    stalled = Reply(200, b"", events=(delta("Hel"), delta("lo")), gap_s=30.0)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"nothing more of the stream within timeout_s, 0.8 s"):
        streamed(stalled, stub, timeout_s=0.8)
    assert time.perf_counter() - start < 3.0
    assert len(stub.posts) == 2  # the stalled one not asked again


def test_a_stream_over_the_size_cap_is_refused(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_transport, "MAX_RESPONSE_BYTES", 2000)
    reply = Reply(200, b"", events=(*(delta("x" * 100) for _ in range(30)), DONE))
    with pytest.raises(BackendError, match="after its answer began .*: its answer is over 0 MiB"):
        streamed(reply, stub)


def test_an_error_event_echoing_the_api_key_never_shows_it(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_KEY", "sk-secret-123")
    error = {"error": {"message": "token sk-secret-123 revoked mid-stream"}}
    reply = Reply(200, b"", events=(delta("Hel"), event(error)))
    with pytest.raises(BackendError) as err:
        streamed(reply, stub, api_key_env="STREAM_KEY")
    assert "sk-secret" not in str(err.value) and "<API key>" in str(err.value)


def test_routerllm_streams_a_remote_answer_held_back_at_a_stop_prefix(
    stub: Stub, tmp_path: Path
) -> None:
    """Through ``RouterLLM.generate``: text that may begin a stop sequence is held back,
    and the pieces joined are the logged answer."""
    stub.default_post = Reply(200, b"", events=(delta("a b EN"), delta("c"), usage(2, 2), DONE))
    models = [http_model_dict("remote", stub.base_url)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    pieces: list[str] = []
    with RouterLLM(config) as system:
        asked = GenerationRequest("hi", stop=["END"], on_text=pieces.append)
        result = system.generate(asked, model="remote")
    assert pieces[0] == "a b " and "".join(pieces) == result.text == "a b ENc"


def test_an_error_event_without_a_status_before_any_text_is_said_so(stub: Stub) -> None:
    error = {"error": {"message": "model is loading", "code": "unavailable"}}
    with pytest.raises(BackendError, match="with an error in its stream: model is loading") as err:
        streamed(Reply(200, b"", events=(event(error), DONE)), stub)
    assert "after its answer began" not in str(err.value)


def test_an_endpoint_refusing_a_streamed_request_is_asked_unstreamed(stub: Stub) -> None:
    """A server that refuses ``stream_options`` (or ``stream``) answered the same request
    unstreamed before streaming was asked of it: asked so again, its text whole at the
    end, not a refused request; another refusal is the request's, as before."""
    stub.script.append(error_reply(400, "stream_options: Extra inputs are not permitted"))
    stub.default_post = completion_reply("whole", prompt_tokens=4, tokens=1)
    backend, pieces = http_backend(stub.base_url), []
    for _ in range(2):  # the second asked unstreamed at once: the endpoint is known
        completion = backend.generate(GenerationRequest("hi", on_text=pieces.append))
        assert (completion.text, completion.completion_tokens) == ("whole", 1)
    assert pieces == [] and [("stream" in p.json()) for p in stub.posts] == [True, False, False]
    stub.script.append(error_reply(400, "top_p must be in (0, 1]"))
    with pytest.raises(PromptError, match="top_p must be in"):
        streamed(completion_reply("never"), stub)
    assert len(stub.posts) == 4  # a refusal not of streaming: not asked again


def test_a_cancelled_request_whose_stream_is_refused_is_not_asked_unstreamed(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal of ``stream_options`` answers a request whose caller has gone (the
    watch looking too seldom to have closed it first): not asked again unstreamed, the
    answer a cancelled one; later requests are asked unstreamed, as the endpoint wants."""
    monkeypatch.setattr(http_watch, "CANCEL_POLL_S", 30.0)
    stub.script.append(error_reply(400, "stream_options: Extra inputs are not permitted"))
    stub.default_post = completion_reply("whole", prompt_tokens=4, tokens=1)
    backend, stop = http_backend(stub.base_url), threading.Event()
    stop.set()
    with cancellable(stop):
        completion = backend.generate(GenerationRequest("hi", on_text=lambda piece: None))
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert len(stub.posts) == 1 and not backend._streams


def test_a_cancelled_stream_closes_the_connection_and_ends_with_its_text_so_far(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """A request cancelled mid-stream (the server's client gone: ``cancellable``'s event
    set, here as the first piece is given) stops reading and closes the connection
    before the next event (the stub, paused after "Hel", sees it gone), and ends as a
    llama.cpp model's cancelled answer does: its text so far, finish reason "cancelled";
    no usage chunk came, so its tokens are not known, said at INFO, not as a warning."""
    stub.default_post = Reply(200, b"", events=(*HELLO, usage(7, 3), DONE), pause_after=2)
    stop, pieces = threading.Event(), []

    def given(piece: str) -> None:
        pieces.append(piece)
        stop.set()

    with caplog.at_level(logging.INFO), cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi", on_text=given))
    deadline = time.monotonic() + 10
    while not stub.left_after and time.monotonic() < deadline:  # the stub's note, in its thread
        time.sleep(0.01)
    assert stub.left_after == [2] and stub.resumed == [False]  # gone before "lo" was sent
    assert pieces == ["Hel"] and completion.text == "Hel"
    assert completion.finish_reason == CANCELLED
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)
    assert not completion.usage_known
    said = [r for r in caplog.records if r.name == openai_http.__name__]
    assert [r.levelno for r in said] == [logging.INFO], [r.getMessage() for r in said]
    assert "cancelled before its token usage came" in said[0].getMessage()


def test_a_stream_cancelled_after_its_finish_reason_is_read_to_its_usage(stub: Stub) -> None:
    """Once the finish reason came the answer is whole and its generation over: the
    stream is read on to its usage chunk (nothing more to stop), the answer kept whole:
    here the last piece's chunk carries it, as vLLM sends it."""
    last = (delta("Hel"), delta(" world", finish="stop"), usage(7, 3), DONE)
    stub.default_post = Reply(200, b"", events=last)
    stop = threading.Event()

    def given(piece: str) -> None:
        if piece == " world":
            stop.set()

    with cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi", on_text=given))
    assert (completion.text, completion.finish_reason) == ("Hel world", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 3)


def test_an_unstreamed_request_cancelled_while_generated_closes_its_connection_at_once(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """A request without ``on_text`` (its answer read whole), cancelled while the
    endpoint generates (here 5 s before its status line), ends within a fraction of a
    second, not at the answer or ``timeout_s``: its connection closed (the endpoint,
    answering then, finds its client gone), not asked again, a cancelled answer with no
    text logged as a streamed one's is, at INFO."""
    stub.default_post = dataclasses.replace(completion_reply("whole"), delay_s=5.0)
    stop, when = threading.Event(), []
    timer = _stop_in(0.3, stop, when)
    with caplog.at_level(logging.INFO), cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi"))
    took = time.monotonic() - when[0]
    timer.join()
    stub.release.set()  # the endpoint answers now, and notes whether its client is there
    deadline = time.monotonic() + 10
    while not stub.gone_after_delay and time.monotonic() < deadline:
        time.sleep(0.01)
    assert took < 1.0, f"{took:.2f} s from the cancellation to the answer"
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert not completion.usage_known and len(stub.posts) == 1
    assert stub.gone_after_delay == [True]
    said = [r for r in caplog.records if r.name == openai_http.__name__]
    assert [r.levelno for r in said] == [logging.INFO], [r.getMessage() for r in said]
    assert "cancelled before its token usage came" in said[0].getMessage()


def _stop_in(seconds: float, stop: threading.Event, when: list[float]) -> threading.Timer:
    """A timer that sets ``stop`` ``seconds`` from now (the client leaving, in the
    server's thread), noting when it did in ``when``."""

    def leave() -> None:
        when.append(time.monotonic())
        stop.set()

    timer = threading.Timer(seconds, leave)
    timer.start()
    return timer


def test_a_cancelled_stream_from_a_silent_endpoint_stops_at_once_not_at_its_next_event(
    stub: Stub,
) -> None:
    """Cancelled while the endpoint sends nothing (here paused 5 s after "Hel"), the
    stream is not left waiting for the next event: its connection is closed within a
    fraction of a second (the stub, paused, sees it gone), the answer its text so far."""
    stub.default_post = Reply(200, b"", events=(*HELLO, usage(7, 3), DONE), pause_after=2)
    stop, when, timers = threading.Event(), [], []

    def given(piece: str) -> None:
        timers.append(_stop_in(0.1, stop, when))  # once the endpoint has gone quiet

    with cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi", on_text=given))
    took = time.monotonic() - when[0]
    assert took < 1.0, f"{took:.2f} s from the cancellation to the answer"
    assert (completion.text, completion.finish_reason) == ("Hel", CANCELLED)
    deadline = time.monotonic() + 10
    while not stub.left_after and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.left_after == [2] and stub.resumed == [False]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "unstreamed"])
def test_a_request_cancelled_during_its_backoff_is_not_asked_again(
    stub: Stub, stream: bool
) -> None:
    """A request whose first attempt failed (503, "retry after 5 s") and whose caller
    leaves while it waits is not asked again: the wait ends there, and the answer is a
    cancelled one with no text (logged as cancelled, not as a success or a failure)."""
    stub.script.append(dataclasses.replace(error_reply(503, "busy"), headers=(("Retry-After", "5"),)))  # fmt: skip
    stub.default_post = Reply(200, b"", events=(*HELLO, DONE)) if stream else completion_reply()
    stop, when = threading.Event(), []
    timer = _stop_in(0.3, stop, when)
    with cancellable(stop):
        request = GenerationRequest("hi", on_text=(lambda piece: None) if stream else None)
        completion = http_backend(stub.base_url).generate(request)
    timer.join()
    took = time.monotonic() - when[0]
    assert took < 1.0, f"{took:.2f} s from the cancellation to the answer"
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert not completion.usage_known and len(stub.posts) == 1


def test_a_stream_cancelled_before_its_answer_began_is_not_asked_again(stub: Stub) -> None:
    """Cancelled while the endpoint has not yet answered (its status line 2 s away, then
    a 503, which is retried), the connection is closed at once and the request not asked
    again: a cancelled answer with no text."""
    stub.script.append(dataclasses.replace(error_reply(503, "busy"), delay_s=2.0))
    stub.default_post = Reply(200, b"", events=(*HELLO, DONE))
    stop, when = threading.Event(), []
    timer = _stop_in(0.3, stop, when)
    with cancellable(stop):
        completion = http_backend(stub.base_url).generate(
            GenerationRequest("hi", on_text=lambda piece: None)
        )
    timer.join()
    took = time.monotonic() - when[0]
    assert took < 1.0, f"{took:.2f} s from the cancellation to the answer"
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert len(stub.posts) == 1


def test_event_lines_ended_by_a_lone_cr_or_a_crlf_split_between_reads_are_read(stub: Stub) -> None:
    """The event stream format ends a line with CR, LF or CRLF: lines ended by a lone
    CR are lines, and a CRLF whose CR ends one read and LF begins the next is one line
    end (not two: its LF read as an empty line would end the event half-way, here a
    chunk's JSON split over two ``data:`` lines)."""
    cr = tuple(d.replace(b"\n", b"\r") for d in (delta("", role=True), delta("Hel")))
    first, _, second = delta("lo", finish="stop").decode().partition(', "choices"')
    split = (f"{first},\r".encode(), f'\ndata: "choices"{second}'.replace("\n\n", "\r\n\r\n").encode())  # fmt: skip
    reply = Reply(200, b"", events=(*cr, *split, usage(2, 2).replace(b"\n", b"\r"), DONE), gap_s=0.05)  # fmt: skip
    pieces, completion = streamed(reply, stub)
    assert pieces == ["Hel", "lo"] and completion.text == "Hello"
    assert (completion.finish_reason, completion.completion_tokens) == ("stop", 2)


def test_a_stream_cancelled_while_its_usage_is_awaited_is_read_to_its_usage(stub: Stub) -> None:
    """Cancelled after the finish reason came, while the endpoint pauses before the
    usage chunk: the time-limit watch does not close the connection (the generation is
    over), the stream is read on to its usage, the answer whole and not cancelled."""
    events = (delta("Hel"), delta(" world", finish="stop"), usage(7, 3), DONE)
    stub.default_post = Reply(200, b"", events=events, pause_after=2)
    stop, timers = threading.Event(), []

    def given(piece: str) -> None:
        if piece == " world":
            stop.set()  # the watch looks at it while the stub pauses, then it resumes
            timers.append(threading.Timer(0.3, stub.resume.set))
            timers[-1].start()

    with cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi", on_text=given))
    assert (completion.text, completion.finish_reason) == ("Hel world", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 3)
    assert stub.resumed == [True]


@pytest.mark.parametrize(
    "reply",
    [
        dataclasses.replace(error_reply(503, "busy"), delay_s=2.0),
        dataclasses.replace(completion_reply("whole " * 40), trickle_s=0.01),
    ],
    ids=["before-its-status", "mid-json-body"],
)
def test_a_stream_cancelled_on_its_last_attempt_is_cancelled_not_failed(
    stub: Stub, reply: Reply
) -> None:
    """With no attempt left (max_retries 0), a streamed request cancelled while the
    endpoint has not answered, or while it sends a whole JSON answer, ends as cancelled,
    not as an unreachable endpoint or a cut answer: the closing was its caller's doing."""
    stub.script.append(reply)
    stop, when = threading.Event(), []
    timer = _stop_in(0.3, stop, when)
    with cancellable(stop):
        completion = http_backend(stub.base_url, max_retries=0).generate(
            GenerationRequest("hi", on_text=lambda piece: None)
        )
    timer.join()
    assert time.monotonic() - when[0] < 1.0
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert len(stub.posts) == 1


@pytest.mark.parametrize(
    "reply",
    [
        dataclasses.replace(error_reply(503, "busy"), headers=(("Retry-After", "5"),)),
        Reply(0, b"", raw=b"", reset=True),
    ],  # fmt: skip
    ids=["503", "reset"],
)
def test_a_request_cancelled_before_it_failed_is_not_asked_again_nor_said_to_be(
    stub: Stub, reply: Reply, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unstreamed request whose caller had gone by the time its attempt failed (the
    watch looking too seldom to have closed it first), on an HTTP status or a reset
    connection, is not asked again, nor is a retry announced: one INFO line says it was
    not retried."""
    monkeypatch.setattr(http_watch, "CANCEL_POLL_S", 30.0)
    stub.script.append(reply)
    stop = threading.Event()
    stop.set()
    with caplog.at_level(logging.INFO), cancellable(stop):
        completion = http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)
    assert len(stub.posts) == 1
    said = [r for r in caplog.records if r.name == openai_http.__name__]
    assert [r.levelno for r in said] == [logging.INFO, logging.INFO], [r.getMessage() for r in said]  # fmt: skip
    assert "not retried: the request was cancelled" in said[0].getMessage()


@contextlib.contextmanager
def _close_delimited(
    answer: bytes, stop_after_s: float | None = None
) -> Iterator[tuple[str, threading.Event]]:
    """An endpoint (its base URL yielded, with the stop event of the ``cancellable``
    block the request runs in) that answers one request with ``answer`` (an
    HTTP/1.1 head and a body without a length: its end the connection's close), then
    waits for the client to close; ``stop_after_s``: it sets that stop event (the
    server's client leaving) that long after it sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5.0)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.sendall(answer)
            if stop_after_s is not None:
                time.sleep(stop_after_s)
                stop.set()
            with contextlib.suppress(OSError):
                while conn.recv(65536):  # until the client closes
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with cancellable(stop):
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", stop
    finally:
        thread.join(timeout=10)
        listener.close()


def test_a_close_delimited_stream_cancelled_while_silent_ends_as_cancelled() -> None:
    """An event stream whose end is the connection's close (no chunked encoding, as an
    HTTP/1.0 proxy sends it), cancelled while the endpoint is silent: the socket the
    watch shut reads as the body's end, which is the cancellation, not a cut stream."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    timers: list[threading.Timer] = []
    when: list[float] = []
    with _close_delimited(head + delta("Hel")) as (base_url, stop):

        def given(piece: str) -> None:
            timers.append(_stop_in(0.1, stop, when))

        completion = http_backend(base_url, max_retries=0).generate(
            GenerationRequest("hi", on_text=given)
        )
    assert time.monotonic() - when[0] < 1.0
    assert (completion.text, completion.finish_reason) == ("Hel", CANCELLED)


def test_a_close_delimited_json_answer_cut_by_a_cancellation_is_not_parsed() -> None:
    """A streamed request answered with whole JSON (an endpoint that does not stream),
    its length not given, cancelled half-way through its body: the part that came is not
    read as the answer (it is no JSON), the request ends as cancelled, not as a failure."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with _close_delimited(head + b'{"id": "c1", "choices": [', stop_after_s=0.2) as (base_url, _):
        completion = http_backend(base_url, max_retries=0).generate(
            GenerationRequest("hi", on_text=lambda piece: None)
        )
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "unstreamed"])
def test_a_request_cancelled_while_its_connection_is_made_ends_at_once(stream: bool) -> None:
    """Cancelled while its connection is still being made (the endpoint's accept queue
    full: its SYNs dropped, the connect would wait out ``timeout_s``), the connect ends
    within a fraction of a second, a cancelled answer with no text; its socket is
    closed, not left connecting: the endpoint, with a place free again, gets no
    connection from the SYN the kernel would have retried 1 s after the first."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(listener.getsockname())  # the queue's one place
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop, when = threading.Event(), []
    start = time.monotonic()
    timer = _stop_in(0.3, stop, when)
    try:
        with cancellable(stop):
            completion = http_backend(base_url, timeout_s=5.0).generate(
                GenerationRequest("hi", on_text=(lambda piece: None) if stream else None)
            )
        took = time.monotonic() - when[0]
        timer.join()
        listener.accept()[0].close()  # the filler's
        listener.settimeout(max(start + 1.6 - time.monotonic(), 0.1))
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        filler.close()
        listener.close()
    assert took < 1.0, f"{took:.2f} s from the cancellation to the answer"
    assert (completion.text, completion.finish_reason) == ("", CANCELLED)


def test_a_stall_the_sockets_own_timeout_sees_first_is_said_to_be_a_stall(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clocks end a silent stream: its socket's timeout (each read's) and the
    exchange's watch (shuts the socket at the limit). On a loaded machine the watch's
    thread can wake late and the read time out first: that is the same stall, not an
    endpoint that gave no answer (here the watch's limit put off by 5 s, as a late
    thread does)."""
    extend = http_watch._Watch.extend
    monkeypatch.setattr(http_watch._Watch, "extend", lambda self, t: extend(self, t + 5))
    stalled = Reply(200, b"", events=(delta("Hel"), delta("lo")), gap_s=30.0)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"\(3 characters given\): nothing more of the stream within timeout_s, 0.8 s;"):  # fmt: skip
        streamed(stalled, stub, timeout_s=0.8)
    assert time.perf_counter() - start < 3.0


def test_server_sent_events_are_read_as_the_format_says() -> None:
    """An event's ``data:`` lines joined by a new line, one space after the colon
    dropped (none needed), a line of spaces no end of an event, the last event read
    though no empty line ends it."""
    lines = [
        "data: {",
        "data:  1}",
        "",
        ": keep-alive",
        "data:[DONE]",
        "",
        "data: x",
        " ",
        "data: y",
    ]
    assert list(sse_data(lines)) == ["{\n 1}", "[DONE]", "x\ny"]


def test_a_streamed_refusal_and_a_chunk_without_an_index_are_the_answers_text(stub: Stub) -> None:
    """OpenAI's refusal streams as ``delta.refusal``: the answer's text, as unstreamed;
    a chunk whose choice gives no ``index`` is the first choice's; a lone surrogate in a
    piece is a replacement character."""
    refusal = event({"choices": [{"index": 0, "delta": {"refusal": "I can't"}, "finish_reason": None}]})  # fmt: skip
    no_index = event({"choices": [{"delta": {"content": " help \ud83d"}, "finish_reason": "stop"}]})
    pieces, completion = streamed(Reply(200, b"", events=(refusal, no_index, DONE)), stub)
    assert pieces == ["I can't", " help \ufffd"] and completion.text == "I can't help \ufffd"
    assert completion.finish_reason == "stop"


def test_a_finish_reason_is_kept_through_the_chunks_after_it(stub: Stub) -> None:
    """A server may send a chunk after the finish reason's (its last, empty delta): the
    finish reason stays the one sent."""
    events = (delta("Hel"), delta("lo", finish="length"), delta(""), usage(2, 2), DONE)
    pieces, completion = streamed(Reply(200, b"", events=events), stub)
    assert (completion.text, completion.finish_reason) == ("Hello", "length")


def test_a_streamed_answer_the_endpoint_says_failed_is_a_failed_request(stub: Stub) -> None:
    """OpenRouter's error once the stream began: a chunk with ``error`` beside its choice
    whose finish reason is "error" (as its documentation shows), its usage after: a
    failed answer, for the tokens billed, as the same answer unstreamed is (not a
    stream broken off, not an answer)."""
    failed = {
        "id": "c1", "object": "chat.completion.chunk",
        "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }  # fmt: skip
    reply = Reply(200, b"", events=(delta("def add"), event(failed), usage(5, 7), DONE))
    said = r"finish_reason 'error' \(its generation failed after 7 tokens: Provider disconnected unexpectedly\)"
    with pytest.raises(BackendError, match=said):
        streamed(reply, stub)
    assert len(stub.posts) == 1


@pytest.mark.parametrize("events", [(DONE,), (usage(3, 0), DONE)], ids=["done-only", "usage-only"])
def test_a_stream_that_brings_no_choice_is_no_answer(stub: Stub, events: tuple[bytes, ...]) -> None:
    """Unstreamed, an answer without choices is refused (``'choices' is empty``); so is a
    stream that ends at its [DONE] without one chunk of a choice: not an empty answer
    (a proxy whose upstream failed before it began), and not asked again (it answered)."""
    with pytest.raises(BackendError, match=r"unexpected response shape \('choices' is empty\)"):
        streamed(Reply(200, b"", events=events), stub)
    assert len(stub.posts) == 1


def test_a_byte_order_mark_opening_the_stream_is_passed_over(stub: Stub) -> None:
    """The event stream format: one leading U+FEFF is ignored, not read as part of the
    first line's field name (which would drop the first event, its text with it)."""
    first = b"\xef\xbb\xbf" + delta("Hel")
    pieces, completion = streamed(Reply(200, b"", events=(first, delta("lo", finish="stop"), DONE)), stub)  # fmt: skip
    assert "".join(pieces) == completion.text == "Hello" and completion.finish_reason == "stop"


def test_a_cancelled_stream_without_usage_is_billed_by_estimate_and_budgets_count_it(
    stub: Stub, tmp_path: Path
) -> None:
    """A stream cancelled (its caller gone) after 3 pieces, before the usage chunk, which
    is the stream's last: a hosted API bills its tokens, so they are estimated from the
    prompt's and text's characters and priced, and a daily cost budget of a few such
    requests refuses the next. Until 2026-12-06 each was logged at 0 tokens and $0: a
    chat UI whose users press "stop" overran a daily dollar budget without bound. A row
    logged so before then still reports, not in the totals, and said so."""
    from routerllm.carbon.log_rows import RequestRecord
    from routerllm.carbon.meter import NO_USAGE, Measurement
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines
    from routerllm.exceptions import BudgetExceededError

    pieces = (delta("", role=True), delta("Hello"), delta(" wor"), delta("ld!"))
    rest = (delta(" and more"), delta(finish="stop"), usage(3, 5), DONE)
    prices = {"cost_per_1m_input_usd": 1e6, "cost_per_1m_output_usd": 2e6}  # $1, $2 a token
    models = [http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6, **prices)]
    data = tiny_config_dict(tmp_path, models=models, budgets={"cost_usd": {"daily": 40.0}})
    config = load_config(write_config(tmp_path, data))
    results = []
    with RouterLLM(config) as system:
        for _ in range(3):
            stub.default_post = Reply(200, b"", events=(*pieces, *rest), pause_after=4)
            stop, given = threading.Event(), []

            def on_text(piece: str, given: list[str] = given, stop: threading.Event = stop) -> None:
                given.append(piece)
                if len(given) == 3:
                    stop.set()

            asked = GenerationRequest("write a poem", max_new_tokens=4, on_text=on_text)
            try:
                with cancellable(stop):
                    results.append(system.generate(asked, model="remote"))
            except BudgetExceededError as e:
                refused = e
                break
        rows = list(system.log.records())
    # "write a poem": 12 characters, 3 tokens at about 4 characters a token (no model has
    # a history to read them by); "Hello world!" 12 at the high guess of 0.5 tokens a
    # character (no counted answer logged), 6, more than its 3 pieces; $1 x 3 + $2 x 6
    assert [r.text for r in results] == ["Hello world!"] * 2
    assert [r.finish_reason for r in results] == [CANCELLED] * 2
    # the third, refused once routed, logged for its routing alone ($0: token prices)
    assert [r.finish_reason for r in rows][2:] == ["refused:budget"]
    rows = rows[:2]
    assert [(r.prompt_tokens, r.completion_tokens, r.cost_usd) for r in rows] == [(3, 6, 15.0)] * 2
    assert [r.components["llm_inference"].energy_kwh for r in rows] == [pytest.approx(6e-6)] * 2
    # $30 spent and $11 predicted (3 prompt tokens, max_new_tokens 4): over the $40
    assert "predicted to spend $11.00" in str(refused), refused
    assert "more than the $10.00 left of the daily budget" in str(refused), refused
    rep = logged_report(config)
    assert rep.totals.cost_usd == 30.0 and rep.estimated_usage == {"remote": 2}
    assert any(line.startswith("estimated: the tokens of 2 requests (remote 2)") for line in report_lines(rep))  # fmt: skip
    old = dataclasses.replace(
        rows[0],
        id="old",
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        components={"llm_inference": Measurement("llm_inference", 0.5, 0.0, 0.0, NO_USAGE)},
    )
    assert isinstance(old, RequestRecord)
    with RouterLLM(config) as system:
        system.log.append(old)
    rep = logged_report(config)
    assert rep.totals.requests == 3 and rep.totals.cost_usd == 30.0  # the old row at its $0
    assert rep.unknown_usage == {"remote": 1} == rep.as_dict()["unknown_usage"]
    assert (
        "not in the totals: the generation energy, CO2 and cost of 1 request (remote 1), whose "
        "endpoint reported no token usage, logged at 0 tokens before RouterLLM estimated them"
    ) in report_lines(rep)


def test_a_stream_without_usage_of_a_model_without_energy_figures_is_priced_and_its_energy_unknown(
    stub: Stub, tmp_path: Path
) -> None:
    """A llama.cpp server's stream (no usage chunk ever) from a model priced per token but
    without energy figures (as the README's hosted-API config): its tokens are estimated
    and priced, as any answer without usage is; its energy is not known, not a from-text
    estimate of 0 kWh claimed as computed from figures it has not. Both are said: until
    2026-12-06 its method was estimate:no-figures alone, and neither ``route`` nor the
    report said that its tokens and cost were estimates, not the endpoint's count."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines
    from routerllm.route_cli import _result_lines

    events = (delta("", role=True), delta("Hello"), delta(" wor"), delta("ld!"), delta(finish="stop"), DONE)  # fmt: skip
    stub.default_post = Reply(200, b"", events=events)
    prices = {"cost_per_1m_input_usd": 1e6, "cost_per_1m_output_usd": 2e6}  # $1, $2 a token
    models = [http_model_dict("remote", stub.base_url, **prices)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        result = system.generate(GenerationRequest("write a poem", on_text=lambda piece: None), model="remote")  # fmt: skip
    # 12 characters each: the prompt at about 4 a token, 3; the answer at the high guess of
    # 0.5 tokens a character, 6; $1 x 3 + $2 x 6
    assert (result.prompt_tokens, result.completion_tokens, result.cost_usd) == (3, 6, 15.0)
    rep = logged_report(config)
    assert rep.no_energy_figures == {"remote": 1} and rep.estimated_usage == {"remote": 1}
    assert result.components["llm_inference"].method == "estimate:no-figures:from-text"
    lines = report_lines(rep)
    assert any(line.startswith("estimated: the tokens of 1 request (remote 1)") for line in lines)
    assert any(line.startswith("not in the totals: the generation energy and CO2 of 1 request (remote 1)") for line in lines)  # fmt: skip
    head, _, parts = _result_lines(1, result, "light")[:3]
    assert "3 in / 6 out tokens (estimated: not reported by the endpoint)" in head, head
    assert "energy not known (no energy figures)" in parts, parts


# "def add(a, b)" in pieces of 1-2 characters, one token each as llama.cpp's server sends
# them: 13 characters, 7 tokens at the high guess of 0.5 a character, 8 pieces
TOKEN_PIECES = ("d", "ef", " a", "dd", "(", "a,", " b", ")")
# what a proxy that joins a stream's pieces sends: 2 pieces of 32 characters, 16 tokens
JOINED_PIECES = ("def add(a, b):\n", "    return a + b\n")


@pytest.mark.parametrize(
    ("texts", "expected"),
    [(TOKEN_PIECES, 8), (JOINED_PIECES, 16), (("", *TOKEN_PIECES[:1]), 1)],
    ids=["token-pieces", "proxy-joined", "one-piece"],
)
def test_a_stream_without_usage_counts_its_completion_tokens_by_its_pieces_or_characters(
    stub: Stub, tmp_path: Path, texts: tuple[str, ...], expected: int
) -> None:
    """A stream without usage (llama.cpp's server) comes about one token a piece: its
    completion tokens are the more of its pieces (chunks with text; not the role's, nor an
    empty one) and its characters' estimate. 4 characters a token alone counted SmolLM2's
    streamed code answers at 0.85x (0.64x for one), and a budget guard should err high; a
    proxy that joins pieces has fewer pieces than tokens, its characters counting them."""
    events = (delta("", role=True), *map(delta, texts), delta(finish="stop"), DONE)
    stub.default_post = Reply(200, b"", events=events)
    prices = {"cost_per_1m_input_usd": 1e6, "cost_per_1m_output_usd": 2e6}  # $1, $2 a token
    models = [http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6, **prices)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        asked = GenerationRequest("write a poem", on_text=lambda piece: None)
        result = system.generate(asked, model="remote")
    assert result.text == "".join(texts)
    # "write a poem": 12 characters, 3 tokens; $1 x 3 + $2 x expected
    assert (result.prompt_tokens, result.completion_tokens) == (3, expected)
    assert result.cost_usd == 3.0 + 2.0 * expected
    assert result.components["llm_inference"].energy_kwh == pytest.approx(expected * 1e-6)


def test_a_streamed_answer_counts_its_pieces_of_text_and_an_unstreamed_one_has_none(
    stub: Stub,
) -> None:
    """The pieces counted are the first choice's chunks that carried text: not the role's
    empty one, an empty delta, another choice's, nor the usage chunk."""
    other = event({"choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": None}]})
    events = (*HELLO[:2], other, delta(""), *HELLO[2:], usage(7, 3), DONE)
    _, completion = streamed(Reply(200, b"", events=events), stub)
    assert completion.text == "Hello world" and completion.pieces == 3
    stub.default_post = completion_reply("whole", prompt_tokens=4, tokens=1)
    assert http_backend(stub.base_url).generate(GenerationRequest("hi")).pieces is None
