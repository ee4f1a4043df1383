"""An OpenAI-compatible endpoint as a model's backend sees it: its base_url and API key
(read from ``api_key_env``, hidden in whatever a server's text echoes), the JSON
request made of a body, whether it answers (``availability``: its ``/models``, and what
a config mistake there says to fix: a missing ``/v1``, a redirect, a key missing or
refused), and what that listing said of ``model_id`` and its context (or TGI's
``/info``, asked where the listing gives none).
``OpenAIHTTPBackend`` (``openai_http.py``) inherits it and asks it for completions."""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from routerllm.backends.base import Backend
from routerllm.backends.content_encoding import Undecodable
from routerllm.backends.http_transport import Malformed, exchange, one_line, reason
from routerllm.backends.openai_answer import (
    ListedContext,
    info_context,
    listed_context,
    listed_contexts,
    listed_model_ids,
    lists_model,
)
from routerllm.backends.openai_reply import parsed_reply
from routerllm.exceptions import BackendError

#: A path segment naming an API version (``/v1``, ``/v1beta``): a base_url with one has it.
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*(/|$)")
#: The version segment a base_url ends with: TGI's ``/info`` is above it, at the root.
_VERSION_END = re.compile(r"/v\d+[a-z0-9]*$")
_SET_KEY = "set api_key_env to the environment variable that holds it"


class OpenAIEndpoint(Backend):
    """The endpoint behind an ``openai_http`` model: its address, key, requests and
    ``/models`` probe; nothing to load (the server holds the weights)."""

    probe_timeout_s: float = 2.0

    _connected = False
    #: the ids the endpoint's /models listed at the last availability check (None: none)
    _listed: tuple[str, ...] | None = None
    #: the contexts it gave its models there (vLLM's max_model_len ...), by id
    _contexts: dict[str, ListedContext] = {}  # noqa: RUF012 - replaced, never changed
    #: the context TGI's /info gave, asked only where /models gave model_id none
    _info: ListedContext | None = None

    @property
    def base_url(self) -> str:
        assert self.config.base_url is not None
        return self.config.base_url.rstrip("/")

    def _key(self) -> str:
        """The API key in ``api_key_env`` ("" where none), without the spaces around it:
        a key read from a file ends in a new line, which no HTTP header may carry (and
        http.client's error for it quotes the key)."""
        if not self.config.api_key_env:
            return ""
        key = os.environ.get(self.config.api_key_env, "").strip()
        if any(c < " " or c == "\x7f" for c in key):
            raise BackendError(
                f"environment variable {self.config.api_key_env} (API key) holds a control "
                f"character, such as a new line, within the key; set it to the key alone"
            )
        return key

    def _headers(self) -> dict[str, str]:
        # No compression asked for (http.client's default, said here as meant): an answer
        # is a few KiB of JSON that takes seconds to generate, which gzip would not speed
        # up. One compressed all the same (a proxy's doing) is decoded: ContentDecoder.
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if key := self._key():
            # its UTF-8 bytes, as curl sends a key and RouterLLM's server compares one:
            # http.client sends a header's text as latin-1, and fails on what is beyond
            headers["Authorization"] = f"Bearer {key}".encode().decode("latin-1")
        return headers

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float,
        cancel: Callable[[], bool] | None = None,
    ) -> Any:
        """The server's JSON answer, read whole within ``timeout`` (``exchange``; its
        connection shut and ``Cancelled`` raised once ``cancel`` says so)."""
        req = self._http_request(method, path, body)
        raw, headers = exchange(req, timeout, cancel)
        return parsed_reply(req, raw, headers)

    def _http_request(
        self, method: str, path: str, body: dict[str, Any] | None, accept: str | None = None
    ) -> urllib.request.Request:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = self._headers() | ({"Accept": accept} if accept else {})
        return urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)  # fmt: skip

    def _no_key(self) -> str | None:
        """Why the API key ``api_key_env`` names cannot be sent, where it cannot: unset,
        empty, a control character within it."""
        try:
            key = self._key()
        except BackendError as e:
            return str(e)
        if self.config.api_key_env and not key:
            var = self.config.api_key_env
            return f"environment variable {var} (API key) is {'empty' if var in os.environ else 'not set'}"  # fmt: skip
        return None

    def availability(self) -> str | None:
        if (why := self._no_key()) is not None:
            return why
        self._listed, self._contexts, self._info = None, {}, None
        try:
            listing = self._request("GET", "/models", None, self.probe_timeout_s)
            self._listed, self._contexts = listed_model_ids(listing), listed_contexts(listing)
            if listed_context(self._contexts, self.config.model_id or "") is None:
                self._info = self._info_context()
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in (401, 403) and not self.config.api_key_env:
                return f"endpoint {self.base_url} asks for an API key (HTTP {e.code}), and none is sent: {_SET_KEY}"  # fmt: skip
            if e.code in (401, 403):
                return f"endpoint {self.base_url} refused the API key in {self.config.api_key_env} (HTTP {e.code})"  # fmt: skip
            if 300 <= e.code < 400 and (moved := self._moved_to(e, "/models")) is not None:
                # every path is redirected so: no request would be answered
                location = one_line(str(e.headers.get("Location")))[:200]
                return (
                    f"endpoint {self.base_url} answers /models with a redirect (HTTP {e.code}) "
                    f"to {location}, which is not followed: set base_url to {moved}"
                )
            if e.code == 404 and self._serves_under_v1():
                return (
                    f"endpoint {self.base_url} answers 404 for /models, but "
                    f"{self.base_url}/v1/models is found: set base_url to {self.base_url}/v1"
                )
            self._info = self._info_context()  # TGI's before its /v1/models, say
            return None  # the server answers; some do not implement /models
        except (Malformed, Undecodable) as e:
            return f"endpoint {self.base_url} answered, but {e}"
        except (OSError, ValueError, http.client.HTTPException) as e:
            # the probe's own time limit, not timeout_s; a non-HTTP answer's first bytes
            why = reason(e, self.probe_timeout_s, setting=None)
            return f"endpoint {self.base_url} unreachable ({self._hide_key(why)})"
        return None

    def lists_model_id(self) -> bool | None:
        """Whether the endpoint's /models, at the last availability check, listed
        ``model_id``; None where it listed no model (or is not implemented, not reached)."""
        return None if self._listed is None else lists_model(self._listed, self.config.model_id or "")  # fmt: skip

    def endpoint_context(self) -> ListedContext | None:
        """The context the endpoint's /models gave ``model_id``'s entry at the last
        availability check (vLLM's ``max_model_len``, llama.cpp server's
        ``meta.n_ctx_train``), else the one its TGI ``/info`` gave then; None where
        neither gave one: no request is made for it."""
        return listed_context(self._contexts, self.config.model_id or "") or self._info

    def _info_context(self) -> ListedContext | None:
        """The context TGI's ``GET /info``, at the server's root (above base_url's
        ``/v1``), gives the model it serves, within the probe's time limit; None where it
        is not found (a hosted API, vLLM), unreachable or not TGI's: no context learned,
        not an error (the model is asked, and says so where a prompt is too long)."""
        url = _VERSION_END.sub("", self.base_url) + "/info"
        req = urllib.request.Request(url, method="GET", headers=self._headers())
        try:
            raw, headers = exchange(req, self.probe_timeout_s)
            return info_context(parsed_reply(req, raw, headers))
        except urllib.error.HTTPError as e:
            e.close()
        except (OSError, ValueError, http.client.HTTPException, Malformed, Undecodable):
            pass
        return None

    def unlisted_model_id(self) -> str | None:
        """Where the endpoint's /models listed models at the last availability check but
        not ``model_id``, says so: the model stays available (TGI answers any model name,
        a proxy may route names it does not list), but vLLM or OpenAI refuse each request."""
        if self._listed is None or self.lists_model_id():
            return None
        ids = self._listed
        shown = ", ".join(one_line(i)[:80] for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")  # fmt: skip
        return f"its endpoint's /models does not list model_id {self.config.model_id!r}; it lists {shown}: check model_id"  # fmt: skip

    def _serves_under_v1(self) -> bool:
        """Whether ``{base_url}/v1/models`` answers, for a base_url without a version:
        then the API is there (vLLM's, Ollama's, llama.cpp's paths all begin /v1)."""
        if _VERSIONED.search(urllib.parse.urlsplit(self.base_url).path):
            return False
        try:
            self._request("GET", "/v1/models", None, self.probe_timeout_s)
        except (OSError, ValueError, http.client.HTTPException, Malformed, Undecodable):
            return False  # an HTTPError among them: not found there either
        return True

    def _moved_to(self, e: urllib.error.HTTPError, path: str) -> str | None:
        """The base_url a redirect of ``path`` points to where it keeps the path (http://
        to https://, another host or prefix): there the API is; None for any other
        redirect (a login page, a path of its own)."""
        location = e.headers.get("Location")
        if not location:
            return None
        target = urllib.parse.urljoin(self.base_url + path, str(location))
        if not target.endswith(path) or target == self.base_url + path:
            return None
        return one_line(target.removesuffix(path))[:200]

    def _advice(self, status: int, detail: str) -> str:
        """What to check in the config for an error status a config mistake gives: a
        path not found (a 404 that does not speak of a model, as one for a model the
        endpoint does not serve does), an API key missing or refused."""
        if status == 404 and "model" not in detail.lower():
            if _VERSIONED.search(urllib.parse.urlsplit(self.base_url).path):
                return "; the path is not found there: check base_url"
            return f"; the path is not found there: does base_url need /v1 ({self.base_url}/v1)?"  # fmt: skip
        if status in (401, 403):
            if not self.config.api_key_env:
                return f"; no API key was sent: {_SET_KEY}"
            return f"; check the API key in {self.config.api_key_env}"
        return ""

    @property
    def loaded(self) -> bool:
        return self._connected

    def load(self) -> None:
        self._connected = True  # nothing to load: the server holds the weights

    def unload(self) -> None:
        self._connected = False

    def _hide_key(self, text: str) -> str:
        """``text`` with the API key shown as ``<API key>``: a server's text quoted in an
        error or a log may echo the key it was sent (a proxy's "invalid token sk-...")."""
        try:
            key = self._key()
        except BackendError:  # not sent
            return text
        return text.replace(key, "<API key>") if key else text
