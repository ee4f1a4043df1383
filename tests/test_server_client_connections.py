"""The connections one client may hold (``--max-connections-per-client``): a client (one
peer address) holding as many as its limit has any more refused with a 429
(``too_many_client_connections``, ``Retry-After: 1``) as they are accepted, while a client
at another address is still served; a connection closed, or dropped by asyncio unclosed,
frees its place; 0 turns the limit off. Before, one client could hold every connection the
file descriptors allowed and every other client got 503s. Real servers on 127.0.0.1, their
second client connecting from 127.0.0.2 (on Linux the whole of 127/8 is loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from routerllm.exceptions import RouterLLMError
from routerllm.server import listener, serving
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config
from .test_server import serve_command, served_address, started
from .test_server_connections import answer_to, first_dropped_then_answered

HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connect(address: tuple[str, int], source: str = "127.0.0.1") -> socket.socket:
    """A connection to ``address`` from the loopback address ``source``."""
    return socket.create_connection(address, timeout=10, source_address=(source, 0))


def refusal(sock: socket.socket) -> tuple[bytes, dict[bytes, bytes], dict[str, object]]:
    """The status line, the header fields and the JSON body the server sent on ``sock``
    before it closed it, nothing asked."""
    said = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            said += chunk
    head, _, body = said.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in lines)
    assert int(fields[b"content-length"]) == len(body), said
    return status, fields, json.loads(body)


@pytest.fixture
def capped(system: RouterLLM) -> Iterator[listener.CappedListener]:
    """The listener of a server on 127.0.0.1 holding 100 connections, at most 2 from one
    client address."""
    with contextlib.closing(serving.listen("127.0.0.1", 0)) as sock:  # the listener: its dup
        capped = listener.CappedListener.of(sock, cap=100, per_client=2)
        _, srv, thread = started(system, sock=capped)
        try:
            yield capped
        finally:
            srv.should_exit = True
            thread.join(30)
            capped.close()


@pytest.fixture
def address(capped: listener.CappedListener) -> tuple[str, int]:
    host, port = capped.getsockname()[:2]
    return host, port


def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s"
        time.sleep(0.02)


def test_a_client_over_its_limit_is_refused_while_another_is_served(
    capped: listener.CappedListener, address: tuple[str, int]
) -> None:
    held = [connect(address), connect(address)]
    try:
        for sock in held:  # kept alive, as a client's pool keeps them
            assert answer_to(sock, HEALTH)[1] == {"status": "ok"}
        with connect(address) as third:
            status, fields, body = refusal(third)
        assert status.startswith(b"HTTP/1.1 429 "), status
        assert fields[b"retry-after"] == b"1" and fields[b"connection"] == b"close"
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "too_many_client_connections"
        assert error["type"] == "requests" and "(2)" in error["message"]
        with connect(address, "127.0.0.2") as other:  # another client: served
            assert answer_to(other, HEALTH)[1] == {"status": "ok"}
        for sock in held:  # the client's own connections: still served
            assert answer_to(sock, HEALTH)[1] == {"status": "ok"}
        # the refused one, lingering until its client closed it, left the count
        eventually(lambda: len(capped.open) == 2)
        assert [len(conns) for conns in capped.clients.values()] == [2]
    finally:
        for sock in held:
            sock.close()


def test_an_openai_client_over_its_limit_gets_the_429_not_a_connection_error(
    address: tuple[str, int],
) -> None:
    """The refusal reaches an ``AsyncOpenAI`` client, which pauses reading while it sends
    its request, body after headers: closed at once, the connection answered that body
    with a reset, and the client, its transport failing, saw ``APIConnectionError``
    ("Connection error.") with the 429 unread in the kernel."""
    import openai

    async def refused() -> openai.RateLimitError:
        async with openai.AsyncOpenAI(base_url=f"http://{address[0]}:{address[1]}/v1", api_key="x", max_retries=0) as client:  # fmt: skip
            with pytest.raises(openai.RateLimitError) as error:
                await client.chat.completions.create(model="tiny-light", messages=[{"role": "user", "content": "hi"}], max_tokens=2)  # fmt: skip
            return error.value

    held = [connect(address), connect(address)]
    try:
        for _ in range(3):  # the reset came at once on loopback: 3 of 3 were lost before
            error = asyncio.run(refused())
            assert error.code == "too_many_client_connections"
            assert error.response.headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()


def test_refusals_still_lingering_are_closed_as_the_server_stops(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopped (Ctrl-C, SIGTERM) while refused connections linger closes them:
    their timers died with the event loop, and each stayed open until the garbage
    collector found it (a ``ResourceWarning: unclosed <..._Connection ...>`` each at
    ``routerllm serve``'s stop, its descriptor held meanwhile where ``serve`` is called
    from Python)."""
    monkeypatch.setattr(listener, "LINGER_S", 60.0)  # still lingering however slow the stop
    sock = serving.listen("127.0.0.1", 0)
    capped = listener.CappedListener.of(sock, cap=100, per_client=1)
    _, srv, thread = started(system, sock=capped)
    address = capped.getsockname()[:2]
    clients = [connect(address) for _ in range(4)]  # one held, three refused, left open
    try:
        assert answer_to(clients[0], HEALTH)[1] == {"status": "ok"}
        eventually(lambda: len(capped.lingering) == 3)
        lingering = list(capped.lingering)
        srv.should_exit = True
        thread.join(30)
        capped.close()  # as serve() does once the server has stopped
        assert [conn.fileno() for conn in lingering] == [-1, -1, -1]
        assert len(capped.lingering) == len(capped.open) == 0
        for client in clients[1:]:  # their 429 still reached them
            assert refusal(client)[0].startswith(b"HTTP/1.1 429 ")
    finally:
        for conn in [*clients, capped, sock]:
            conn.close()


def test_refusals_do_not_linger_in_the_last_places_under_the_cap(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cap of 6, 2 from one client: the client holding its 2 and opening 4 more had
    its 4 refusals linger in the 4 places left (a second each), and another client got
    503 ``too_many_connections`` meanwhile, shut out by the refusals of the one the limit
    is for. A refusal now lingers only where more than ``LINGERING_MOST`` places are
    left: here it is closed at once, its 429 sent, and the other client is served."""
    monkeypatch.setattr(listener, "LINGER_S", 60.0)  # lingering ones stay, however slow
    with contextlib.closing(serving.listen("127.0.0.1", 0)) as sock:
        capped = listener.CappedListener.of(sock, cap=6, per_client=2)
        _, srv, thread = started(system, sock=capped)
        address = capped.getsockname()[:2]
        held = [connect(address) for _ in range(2)]
        try:
            for conn in held:
                assert answer_to(conn, HEALTH)[1] == {"status": "ok"}
            refused = [connect(address) for _ in range(4)]
            held += refused
            for conn in refused:
                assert refusal(conn)[0].startswith(b"HTTP/1.1 429 ")
            with connect(address, "127.0.0.2") as other:
                assert answer_to(other, HEALTH)[1] == {"status": "ok"}
        finally:
            for conn in held:
                conn.close()
            srv.should_exit = True
            thread.join(30)
            capped.close()


def test_a_client_s_closed_connection_frees_its_place(address: tuple[str, int]) -> None:
    held = [connect(address), connect(address)]
    try:
        for sock in held:
            assert answer_to(sock, HEALTH)[1] == {"status": "ok"}
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server sees the close a moment later
            with connect(address) as sock, contextlib.suppress(AssertionError, OSError):
                assert answer_to(sock, HEALTH)[1] == {"status": "ok"}
                break
            assert time.monotonic() < deadline, "the closed connection's place was never freed"
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()


def accepted_until_answered(
    capped: listener.CappedListener, clients: list[socket.socket]
) -> list[socket.socket]:
    """What ``capped`` accepts of ``clients``' connections, until the last is answered."""
    accepted: list[socket.socket] = []
    deadline = time.monotonic() + 10
    while len(accepted) < len(clients) and not select.select([clients[-1]], [], [], 0.01)[0]:
        assert time.monotonic() < deadline, len(accepted)
        with contextlib.suppress(BlockingIOError):
            accepted.append(capped.accept()[0])
    return accepted


@pytest.mark.parametrize(("per_client", "taken"), [(None, 4), (3, 3)])
def test_a_listener_without_a_per_client_limit_takes_a_client_s_connections_up_to_its_cap(
    per_client: int | None, taken: int
) -> None:
    """Off (None, as ``--max-connections-per-client 0`` gives): as before, one client's
    connections are taken up to the server's cap alone (4); with a limit of 3, the fourth
    is refused."""
    with contextlib.closing(serving.listen("127.0.0.1", 0)) as sock:
        capped = listener.CappedListener.of(sock, cap=4, per_client=per_client)
        capped.setblocking(False)
        clients = [connect(sock.getsockname()) for _ in range(4)]
        accepted: list[socket.socket] = []
        try:
            accepted = accepted_until_answered(capped, clients)
            assert len(accepted) == taken and len(capped.open) == taken
            if per_client is not None:
                assert refusal(clients[-1])[0].startswith(b"HTTP/1.1 429 ")
        finally:
            for conn in [*clients, *accepted, capped]:
                conn.close()


def test_a_connection_asyncio_drops_without_closing_it_leaves_its_client_s_count() -> None:
    """As the total count (test_server_connections): asyncio drops an accepted connection
    whose protocol fails to start without closing it; held in its client's count it was
    never freed, and with a limit of 1 that client was refused for good."""
    said = first_dropped_then_answered(cap=10, per_client=1)
    assert said == (b"", b"hello", 0, 0), said


def test_the_default_limit_is_half_the_cap_at_least_128_and_at_most_1024() -> None:
    assert listener.client_cap(400, None) == 200
    assert listener.client_cap(190, None) == listener.CLIENT_SHARE_LEAST == 128  # NOFILE 256
    assert listener.client_cap(100, None) == 100  # the cap alone holds
    assert listener.client_cap(1, None) == 1
    assert listener.client_cap(524_200, None) == listener.CLIENT_SHARE_MOST == 1024
    assert listener.client_cap(190, 0) is None  # off
    assert listener.client_cap(190, 500) == 500  # beyond the cap: the cap alone holds


def test_a_client_is_its_address_an_ipv4_one_as_ipv4() -> None:
    assert listener.client_of(("127.0.0.1", 5000)) == listener.client_of(("127.0.0.1", 6000))
    assert listener.client_of(("::ffff:10.0.0.7", 5000, 0, 0)) == "10.0.0.7"
    assert listener.client_of(("2001:db8::1", 5000, 0, 0)) != listener.client_of(("2001:db8::2", 5000, 0, 0))  # fmt: skip


@pytest.mark.parametrize("given", [-1, True, 2.0, "3"])
def test_a_bad_limit_is_refused_in_one_line_before_serving(
    system: RouterLLM, given: object
) -> None:
    with contextlib.closing(serving.listen("127.0.0.1", 0)) as sock:
        before = signal.getsignal(signal.SIGTERM)
        with pytest.raises(RouterLLMError, match=r"^--max-connections-per-client must be a whole number >= 0 \(0: no per-client limit\), got "):  # fmt: skip
            serving.serve(system, sock, max_connections_per_client=given)  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGTERM) == before  # refused before it set anything up


def test_serve_s_flag_limits_each_client(tmp_path: Path) -> None:
    """``routerllm serve --max-connections-per-client 2``: the flag reaches the listener;
    the log says once who was refused and how to change it."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json", "--max-connections-per-client", "2")
    held: list[socket.socket] = []
    try:
        address = served_address(process)
        held += [connect(address), connect(address)]
        for sock in held:
            assert answer_to(sock, HEALTH)[1] == {"status": "ok"}
        for _ in range(2):
            with connect(address) as sock:
                assert refusal(sock)[0].startswith(b"HTTP/1.1 429 ")
        with connect(address, "127.0.0.2") as other:
            assert answer_to(other, HEALTH)[1] == {"status": "ok"}
        # the refusals are counted where the operator's Prometheus looks (GET /metrics)
        scraping = http.client.HTTPConnection(*address, timeout=10, source_address=("127.0.0.2", 0))  # fmt: skip
        with contextlib.closing(scraping):
            scraping.request("GET", "/metrics")
            metrics = scraping.getresponse().read().decode()
        assert 'routerllm_requests_refused_total{reason="too_many_client_connections",status="429"} 2.0' in metrics  # fmt: skip
    finally:
        for sock in held:
            sock.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    said = [line for line in stderr.splitlines() if "refused (429)" in line]
    assert len(said) == 1 and "the last from 127.0.0.1" in said[0], stderr[-3000:]
    assert "--max-connections-per-client" in said[0]


def test_by_default_one_client_holding_every_connection_leaves_room_for_another(
    tmp_path: Path,
) -> None:
    """The case the limit is for, with its default: a ``routerllm serve`` whose file
    descriptors allow some 190 connections (a soft NOFILE of 256) and a client opening 300
    at once. Before, it took all of them and any other client got 503s until it let go;
    now it holds 128 (``CLIENT_SHARE_LEAST``), the rest refused 429, and a client at
    another address is served."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json", nofile=(256, 256))
    held: list[socket.socket] = []
    try:
        address = served_address(process)
        held += [connect(address) for _ in range(300)]
        with connect(address, "127.0.0.2") as other:
            assert answer_to(other, HEALTH)[1] == {"status": "ok"}
        time.sleep(listener.LINGER_S + 0.5)  # the lingering refusals closed too
        statuses = []
        for sock in held:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                statuses.append(sock.recv(65536)[:12])
        assert len(held) - len(statuses) == listener.CLIENT_SHARE_LEAST, len(statuses)
        assert set(statuses) == {b"HTTP/1.1 429"}, set(statuses)
    finally:
        for sock in held:
            sock.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
