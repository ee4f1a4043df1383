"""The one error hierarchy of RouterLLM.

Every error a user can cause (bad config, unknown name, bad prompt, missing
model, failing backend) is a :class:`RouterLLMError`; the CLI prints its
message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routerllm.carbon.meter import Measurement
    from routerllm.routed_result import RoutedResult


class RouterLLMError(Exception):
    """Base class of every error RouterLLM raises on purpose. ``loading``: where a model
    failed to answer once it was loaded, or failed to load, what loading it spent (paid
    for all the same); ``load_failed``: True where that load failed (a corrupt file).
    ``inference``: where it failed while it generated, what that generation spent until
    then; ``billed_tokens``: the prompt and completion tokens a remote endpoint said that
    failed generation used (its provider bills them), where it said. ``request_id``: the
    id of the request log's row of what a request that failed once a model was reached
    spent (finish reason ``error``), where the log took it; "" otherwise."""

    loading: Measurement | None = None
    load_failed: bool = False
    inference: Measurement | None = None
    billed_tokens: tuple[int, int] = (0, 0)
    request_id: str = ""


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the one of ``valid`` closest to a misspelt ``name``
    (as an unknown config key says it), or nothing where none is close."""
    import difflib

    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ConfigError(RouterLLMError):
    """The YAML config is missing, malformed or fails validation."""


class UnknownNameError(RouterLLMError, KeyError):
    """A router, backend or model name that is not registered/configured."""

    def __init__(self, kind: str, name: str, valid: list[str], where: str = "") -> None:
        """``where``: the setting the name was given in (``router.name in config.yaml``)."""
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        hint = did_you_mean(name, self.valid)
        super().__init__(
            f"{where}{': ' if where else ''}unknown {kind} {name!r}{hint}; valid names: "
            f"{', '.join(self.valid) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class PromptError(RouterLLMError):
    """The prompt is empty, not text, or too long for the chosen model; or a request's
    option is wrong. ``param`` names the request field at fault where one is (the
    OpenAI API's error ``param``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextLengthError(PromptError):
    """The prompt is too long for the chosen model's context window. Routing then sends
    it to the next larger model with a longer context, where there is one; ``loading``:
    what loading the refusing model spent, where it was measured; ``context``: the
    context, in tokens, that refused it, where the backend knows it (a transformers
    model's own position table can be shorter than its configured ``context_length``)."""

    def __init__(
        self, message: str, param: str | None = "prompt", context: int | None = None
    ) -> None:
        super().__init__(message, param)
        self.context = context


class UnknownRequestError(PromptError):
    """Feedback names a request the system did not route, or no longer remembers."""


class ModelUnavailableError(RouterLLMError):
    """A model's weights, package or endpoint cannot be found here."""


class BackendError(RouterLLMError):
    """A backend failed to load a model or to generate (HTTP error, corrupt file...)."""


class EndpointUnreachableError(BackendError):
    """A remote model's endpoint could not be connected to (refused, its host not found,
    no connection within the time limit) or sent no answer at all within it, once its
    retries were spent: a running system
    takes the model as unavailable until its next check finds it back. ``endpoint_wide``:
    no connection could be made (refused, host not found), so every model at its base_url
    is down alike; an endpoint that took the connection and sent nothing may be a proxy
    whose upstream for this model alone is gone."""

    endpoint_wide: bool = False


class EndpointRefusedError(BackendError):
    """A remote model's endpoint refused its API key (HTTP 401 or 403) or its account
    (a 429 whose code is ``insufficient_quota``: out of credit): every request is refused
    alike until the key or the account is mended, so a running system takes the model as
    unavailable until its next check, as an unreachable one. ``endpoint_wide``: the key or
    account refused (401, the quota), so every model at its base_url with the same
    api_key_env is refused alike; a 403 may be one model's access that the key lacks."""

    endpoint_wide: bool = False


class RateLimitedError(BackendError):
    """A remote model's endpoint still refused the request for its rate limit (HTTP 429)
    once its retries were spent (none where it asked to wait longer than a retry waits).
    ``retry_after_s`` is how long it asked to wait (at most a day), or None where it did
    not say (in seconds or as a date)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EndpointOverloadedError(RateLimitedError):
    """A remote model's endpoint still answered 503 (overloaded, or down for a while) once
    its retries were spent: as for a rate limit, the caller may ask again later
    (``retry_after_s``: its Retry-After's wait, or None)."""


class BatchError(RouterLLMError):
    """A request of a batch of two or more failed, the first as any other: ``results``
    holds those finished before it (also in the request log), ``index`` its position
    and ``__cause__`` its error. The requests after it did not run; their share of the
    batch's routing is logged with the failed request's row (where it has one: a
    request refused before any model ran has none)."""

    def __init__(self, message: str, results: list[RoutedResult], index: int) -> None:
        super().__init__(message)
        self.results, self.index = results, index


class RequestLogError(RouterLLMError):
    """The request log cannot be read or written (not a request log, full disk...).
    Raised while logging a request, ``result`` holds the request's unlogged answer;
    ``logged`` is True where its row is in the log all the same (only the emissions CSV
    could not be written)."""

    result: RoutedResult | None = None
    logged: bool = False


def csv_only_warning(error: RequestLogError, what: str = "answer") -> str:
    """What is said of a request ``error`` says its row is in the request log and only
    the emissions CSV missed (``error.logged``): the server's ``warning``, ``route``'s and
    ``demo``'s ``warning:`` line. No row is lost (the budgets and the report have it; the
    next process that opens the log for writing adds its CSV rows)."""
    return f"the emissions CSV could not record this {what} (it is in the request log): {error}"


class OutputError(RouterLLMError):
    """A command's output could not be written to stdout (a full disk, an I/O error):
    the output is lost, what the command saved (the request log...) is kept. A reader
    that has gone (``BrokenPipeError``) is not one."""


class BudgetExceededError(RouterLLMError):
    """A request would break a carbon or cost budget (``budgets`` in the config), so it was
    not run. ``retry_at`` is when a spent hourly or daily budget allows requests again, or
    enough of a window's older spending has left it for this request to fit (an ISO time,
    UTC), or None where waiting does not help. Refused once its router had run,
    ``result`` is what the request spent (its routing, finish reason ``refused:budget``,
    no text), as logged under its ``request_id``; None where nothing ran. ``log_error``
    is the ``RequestLogError`` that kept that row from the log (a full disk: its id then
    finds no row; its ``logged`` True where only the emissions CSV missed it), as an
    answer the log could not take raises one; None where the log took it."""

    result: RoutedResult | None = None
    log_error: RequestLogError | None = None

    def __init__(self, message: str, retry_at: str | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class CorruptCheckpointError(RouterLLMError):
    """A training checkpoint whose content cannot be resumed from (damaged, cut short,
    another program's): unlike one that cannot be read now (no permission, a newer
    RouterLLM's), it holds nothing a new run must keep."""


class DataError(RouterLLMError):
    """A dataset file is missing, malformed, or has the wrong columns."""


class MissingDependencyError(RouterLLMError, ImportError):
    """An optional dependency is not installed (the message names the extra), or is
    installed and fails to import (the message gives its import error and how to
    reinstall it)."""


def one_line(error: BaseException) -> str:
    """An error's message on one line: its first two lines (torch's heading and first
    problem) and how many more there were (torch's can run to dozens)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
    return " ".join(lines[:2]) + more


def os_reason(error: OSError) -> str:
    """Why a file operation failed, in words ("no space left on device", "file too
    large"), for a message that names the file itself: ``str`` of an ``OSError`` without
    its file name reads "[Errno 28] No space left on device"."""
    return error.strerror.lower() if error.strerror else str(error)


#: The module a dependency is imported as, where it is not its pip name.
_IMPORTED_AS = {
    "scikit-learn": "sklearn",
    "llama-cpp-python": "llama_cpp",
    "prometheus-client": "prometheus_client",
}


def _imported_as(package: str) -> str:
    return _IMPORTED_AS.get(package, package)


def not_installed(error: Exception, package: str) -> bool:
    """Whether ``error``, raised importing ``package`` (its pip name), says it is not
    installed: a ModuleNotFoundError for the package itself (or a parent of it). Any
    other (a submodule, a dependency or a shared library missing, a version conflict)
    is an installed package that fails to import, which installing does not fix."""
    if not isinstance(error, ModuleNotFoundError) or error.name is None:
        return False
    module = _imported_as(package)
    return module == error.name or module.startswith(error.name + ".")


def _requirement(package: str, extra: str) -> str:
    """What the ``extra`` of this routerllm asks of ``package`` (``torch==2.13.0``), or
    the bare name where its metadata does not say (a checkout run from source)."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    def normal(name: str) -> str:  # as pip compares names (PEP 503)
        return re.sub(r"[-_.]+", "-", name).lower()

    try:
        wanted = requires("routerllm") or []
    except PackageNotFoundError:
        wanted = []
    marker = re.compile(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]")
    for line in wanted:
        spec, _, markers = (part.strip() for part in line.partition(";"))
        name = re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0]
        if marker.search(markers) and normal(name) == normal(package):
            return spec
    return package


def cannot_import(module: str, extra: str, error: Exception) -> tuple[str, str] | None:
    """Where ``error``, raised importing ``module`` (a pip name, or several joined by
    ``/`` in the order they are imported, as ``torch/transformers``), says it is installed
    but fails to import (:func:`not_installed`): the package at fault, of several the
    first that did not import (torch imported, transformers not: transformers; torch not:
    torch, transformers never tried), and what to say of it: ``is installed but cannot be
    imported (<error>); reinstall it with: pip install --force-reinstall '<as the extra
    asks>'``. None where it is not installed."""
    import sys

    packages = module.split("/")
    if any(not_installed(error, p) for p in packages):
        return None
    # all imported: the error came from what the last import took from its package
    failed = next((p for p in packages if _imported_as(p) not in sys.modules), packages[-1])
    return failed, (
        f"is installed but cannot be imported ({one_line(error)}); reinstall it with: "
        f"pip install --force-reinstall '{_requirement(failed, extra)}'"
    )


def missing_dependency(
    module: str, extra: str, error: Exception | None = None
) -> MissingDependencyError:
    """The error for an optional import that failed: ``module`` (a pip name, or several
    joined by ``/``) is not installed: install the ``extra``; or, where ``error``, the
    error its import raised (an ImportError, or what a package raises where its shared
    library will not load), says it is installed but fails to import, that
    (:func:`cannot_import`)."""
    if error is not None and (broken := cannot_import(module, extra, error)) is not None:
        return MissingDependencyError(" ".join(broken))
    return MissingDependencyError(
        f"{module} is not installed; install it with: pip install 'routerllm[{extra}]'"
    )
