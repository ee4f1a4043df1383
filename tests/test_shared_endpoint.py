"""Models served by one OpenAI-compatible server (llama-cpp-python's multi-model server,
Ollama, LM Studio: one base_url, several model_ids) are found down together."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from routerllm.config import load_config
from routerllm.exceptions import EndpointUnreachableError, ModelUnavailableError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config
from .test_openai_http import (
    HEAVY,
    error_reply,
    http_model_dict,
    serving_stub,
)


def _config(tmp_path: Path, one: str, other: str, **extra: object) -> RouterLLM:
    """Models ``a1`` and ``a2`` at ``one``'s base_url (``a2``'s with a trailing /, as a
    user may write it), ``b`` at ``other``'s."""
    models = [
        http_model_dict("a1", one, max_retries=1, model_id="a1", **extra),
        http_model_dict("a2", one + "/", max_retries=1, model_id="a2", **extra),
        http_model_dict("b", other, max_retries=1, model_id="b"),
    ]
    return RouterLLM(load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models))))  # fmt: skip


def test_a_server_found_down_takes_out_every_model_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until 2026-12-06 each model of a server that died was found down only by a request
    of its own, each paying its retries (3.5 s with the defaults). Now the request that
    finds the server unreachable takes all its models out, each saying which request
    found it down; a model of another server is still routed to; each comes back by its
    own check a minute later."""
    from routerllm import manager as manager_module

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with serving_stub() as other:
        with serving_stub() as up:
            port = int(up.base_url.split(":")[2].split("/")[0])
            system = _config(tmp_path, up.base_url, other.base_url)
            assert system.generate("hi", model="a2").model == "a2"
        with system:
            with pytest.raises(EndpointUnreachableError, match="cannot reach .* after 2 attempts"):  # fmt: skip
                system.generate("hi", model="a1")
            assert system.manager.available_models() == ["b"]
            start = time.perf_counter()
            with pytest.raises(ModelUnavailableError) as err:
                system.generate("hi", model="a2")
            assert time.perf_counter() - start < 0.5  # not asked: no retries waited for
            said = str(err.value)
            assert "model 'a1''s request to the same endpoint failed" in said, said
            assert f"cannot reach {up.base_url} for model 'a1'" in said, said
            assert system.generate(HEAVY).model == "b"  # routed to the other server
            clock[0] += manager_module.RECHECK_S
            with serving_stub(port) as back:
                assert system.generate("hi", model="a2").model == "a2"
                assert system.generate("hi", model="a1").model == "a1"
                assert len(back.posts) == 2


def test_a_refused_key_takes_out_the_models_sharing_the_key_and_server_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 refuses the key (its other models at the same server are refused alike);
    the same server with another key, or a 403 (a key may lack one model's access), is
    not taken out with it."""
    monkeypatch.setenv("KEY_A", "sk-a")
    with serving_stub() as up, serving_stub() as other:
        models = [
            http_model_dict("a1", up.base_url, model_id="a1", api_key_env="KEY_A"),
            http_model_dict("a2", up.base_url, model_id="a2", api_key_env="KEY_A"),
            http_model_dict("a3", up.base_url, model_id="a3"),
            http_model_dict("a4", up.base_url, model_id="a4", api_key_env="KEY_A"),
            http_model_dict("b", other.base_url, model_id="b", api_key_env="KEY_A"),
        ]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:
            assert system.manager.available_models() == ["a1", "a2", "a3", "a4", "b"]
            up.script.append(error_reply(403, "You do not have access to model a1"))
            with pytest.raises(Exception, match="HTTP 403"):
                system.generate("hi", model="a1")
            assert system.manager.available_models() == ["a2", "a3", "a4", "b"]
            up.script.append(error_reply(401, "Incorrect API key provided"))
            with pytest.raises(Exception, match="HTTP 401"):
                system.generate("hi", model="a2")
            assert system.manager.available_models() == ["a3", "b"]  # a4 with a2
            with pytest.raises(ModelUnavailableError, match="model 'a2''s request to the same endpoint failed .*HTTP 401"):  # fmt: skip
                system.generate("hi", model="a4")
            assert system.generate("hi", model="b").model == "b"  # another server: its key
            assert system.generate("hi", model="a3").model == "a3"  # answered, with no key


def test_a_model_refused_by_two_requests_at_once_is_out_for_one_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads' requests to one model, both refused (401): the second, answered 30 s
    after the first, took it out again from then, while the next look at the models out
    stayed a minute after the first (two clocks): until 2026-12-07 it was out until the
    look after that, two minutes after the first refusal. A request that began before it
    was taken out brings no newer news: it is out one minute from the first."""
    import threading

    from routerllm import manager as manager_module

    from .test_openai_http import Reply

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    refused = error_reply(401, "Incorrect API key provided")
    with serving_stub() as up:
        models = [http_model_dict("a", up.base_url, model_id="a")]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:
            assert system.manager.available_models() == ["a"]
            up.script.extend([refused, Reply(401, refused.body, delay_s=10.0)])
            failed: list[str] = []

            def ask() -> None:
                with pytest.raises(Exception, match="HTTP 401") as err:
                    system.generate("hi", model="a")
                failed.append(str(err.value))

            threads = [threading.Thread(target=ask) for _ in range(2)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            # the first taken out, the second's request held by the stub
            while len(up.posts) < 2 or system.manager.availability("a") is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            clock[0] += 30  # the second refused 30 s after the first
            up.release.set()
            for thread in threads:
                thread.join(10)
            assert len(failed) == 2
            clock[0] += 29
            assert system.manager.available_models() == []
            clock[0] += 1  # a minute after the first refusal
            assert system.manager.available_models() == ["a"]
            assert system.generate("hi", model="a").model == "a"


def test_one_server_written_several_ways_is_one_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``localhost`` and ``127.0.0.1`` are the loopback server: until 2026-12-07
    a model written with ``localhost`` stayed routed to when the same server, written
    ``127.0.0.1``, was found down, and its request paid the retries to find it so."""
    from routerllm import manager as manager_module

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with serving_stub() as other:
        with serving_stub() as up:
            port = int(up.base_url.split(":")[2].split("/")[0])
            models = [
                http_model_dict("a1", up.base_url, max_retries=1, model_id="a1"),
                http_model_dict(
                    "a2", f"http://LocalHost:{port}/v1/", max_retries=1, model_id="a2"
                ),  # fmt: skip
                http_model_dict("b", other.base_url, max_retries=1, model_id="b"),
            ]
            config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
            system = RouterLLM(config)
            assert system.generate("hi", model="a2").model == "a2"
        with system:
            with pytest.raises(EndpointUnreachableError):
                system.generate("hi", model="a1")
            assert system.manager.available_models() == ["b"]


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("http://localhost:8001/v1", "http://127.0.0.1:8001/v1/", True),
        ("http://LOCALHOST.:8001/v1", "http://127.0.0.1:8001/v1", True),
        ("http://[0:0:0:0:0:0:0:1]:8001/v1", "http://[::1]:8001/v1", True),
        # an IPv4-only server (vLLM's, llama.cpp's default) answers on localhost, not ::1
        ("http://localhost:8001/v1", "http://[::1]:8001/v1", False),
        ("HTTP://Example.COM/v1", "http://example.com:80/v1/", True),
        ("https://example.com/v1", "https://example.com:443/v1", True),
        ("http://127.0.0.1:8001/v1", "http://127.0.0.2:8001/v1", False),  # another address
        ("http://localhost:8001/v1", "http://localhost:8002/v1", False),
        ("http://example.com/v1", "https://example.com/v1", False),
        ("http://localhost/v1", "http://localhost/v2", False),
        ("http://example.com/v1", "http://93.184.215.14/v1", False),  # no DNS asked
    ],
)
def test_the_endpoint_of_a_base_url(one: str, other: str, same: bool) -> None:
    from routerllm.outages import endpoint

    assert (endpoint(one) == endpoint(other)) is same
