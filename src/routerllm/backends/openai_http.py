"""Any OpenAI-compatible chat completions server (vLLM, TGI, Ollama, llama.cpp server, hosted APIs).

Uses only the standard library: timeouts, retries with exponential backoff on
connection errors, 429 and 5xx, and one clear error for every other failure.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any, ClassVar

from routerllm.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    chat_messages,
    plain_text,
    refuse_prompt_state,
    resolve_sampling,
)
from routerllm.exceptions import BackendError, PromptError

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class OpenAIHTTPBackend(Backend):
    """POSTs to ``{base_url}/chat/completions`` (``/completions`` for raw requests);
    energy is estimated per token, not metered. A response prefix cannot be
    sent through the OpenAI API, so prefilled requests are refused."""

    measured_locally: ClassVar[bool] = False
    backoff_base_s: float = 0.5
    probe_timeout_s: float = 2.0

    _connected = False

    @property
    def base_url(self) -> str:
        assert self.config.base_url is not None
        return self.config.base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self._headers()
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def availability(self) -> str | None:
        if self.config.api_key_env and not os.environ.get(self.config.api_key_env):
            return f"environment variable {self.config.api_key_env} (API key) is not set"
        try:
            self._request("GET", "/models", None, self.probe_timeout_s)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                return f"endpoint {self.base_url} refused the API key (HTTP {e.code})"
            return None  # the server answers; some do not implement /models
        except json.JSONDecodeError as e:
            return f"endpoint {self.base_url} answered, but not with JSON ({_reason(e)})"
        except (OSError, ValueError, http.client.HTTPException) as e:
            return f"endpoint {self.base_url} unreachable ({_reason(e)})"
        return None

    @property
    def loaded(self) -> bool:
        return self._connected

    def load(self) -> None:
        self._connected = True  # nothing to load: the server holds the weights

    def unload(self) -> None:
        self._connected = False

    def generate(self, request: GenerationRequest) -> Completion:
        refuse_prompt_state(request, self.name, "an OpenAI-compatible server")
        if request.response_prefix:
            raise BackendError(
                f"model {self.name!r} is served over the OpenAI API, which cannot start the "
                f"answer with a given prefix; use a chat or raw (complete) request"
            )
        self.load()
        sampling = resolve_sampling(request, self.generation)
        path = "/completions" if request.raw else "/chat/completions"
        prompt: dict[str, Any] = (
            {"prompt": plain_text(request)} if request.raw else {"messages": chat_messages(request)}
        )
        body: dict[str, Any] = {
            "model": self.config.model_id,
            **prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if request.stop:
            body["stop"] = request.stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        start = time.perf_counter()
        out = self._post_with_retries(path, body)
        latency = time.perf_counter() - start
        try:
            choice = out["choices"][0]
            text = (choice["text"] if request.raw else choice["message"]["content"]) or ""
            usage = out.get("usage") or {}
            tokens = [int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")]
            if not isinstance(text, str) or min(tokens) < 0:
                raise TypeError("text or token counts")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise BackendError(
                f"{self.base_url}: unexpected response shape: {str(out)[:200]}"
            ) from e
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    def _post_with_retries(self, path: str, body: dict[str, Any]) -> Any:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                return self._request("POST", path, body, self.config.timeout_s)
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                if e.code in RETRY_STATUS and not last:
                    self._sleep(attempt, f"HTTP {e.code}")
                    continue
                if e.code == 400 and "context" in detail.lower():
                    raise PromptError(f"model {self.name!r} rejected the prompt: {detail}") from e
                raise BackendError(
                    f"{self.base_url}{path} answered HTTP {e.code} for model "
                    f"{self.name!r}: {detail}"
                ) from e
            # refused, reset, timeout, bad JSON, truncated or malformed HTTP response
            except (OSError, ValueError, http.client.HTTPException) as e:
                if not last:
                    self._sleep(attempt, _reason(e))
                    continue
                raise BackendError(
                    f"cannot reach {self.base_url} for model {self.name!r} after {attempts} "
                    f"attempts ({_reason(e)})"
                ) from e
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, why: str) -> None:
        delay = self.backoff_base_s * (2**attempt)
        log.warning("%s: %s; retrying in %.1fs", self.name, why, delay)
        time.sleep(delay)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    return str(e) or type(e).__name__


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read().decode("utf-8", "replace")
    except OSError:
        return e.reason or ""
    try:
        payload = json.loads(raw)
        err = payload.get("error", payload) if isinstance(payload, dict) else payload
        msg = err.get("message") if isinstance(err, dict) else None
        return str(msg or err)[:300]
    except ValueError:
        return raw.strip()[:300] or str(e.reason)
