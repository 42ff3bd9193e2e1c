"""HTTP for the remote sources: requests through huggingface_hub's session and retry loop, and the one table that
turns every failure (an HTTP status, the Hub's X-Error-Code, an exception) into a one-line HubError.

Every request goes through `huggingface_hub.get_session()` (via `http_backoff` / `http_stream_backoff`), so
HF_TOKEN, the saved login, proxies and the user agent behave as in every HF tool, and `hf_raise_for_status`
reads the status, as it does for HfApi calls: our requests and the Hub API fail the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from ..errors import FitcheckError, HubError
from . import settings

T = TypeVar("T")
RETRY_STATUS = (429, 500, 502, 503, 504)  # not 408: a request timeout is our own timeout's business
BACKOFF_BASE_S = 0.5  # then doubled per retry
BACKOFF_MAX_S = 8.0


# -- URLs and headers ---------------------------------------------------------------------------------------------

def public(url: str) -> str:
    """A URL for messages: no query string (signed CDN URLs carry credentials)."""
    return url.split("?", 1)[0]


def origin(url: str) -> tuple[str, str, int | None]:
    p = urlparse(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def etag(headers: Any) -> str | None:
    """The content hash a response names: the Hub's X-Linked-Etag (LFS sha256) else the ETag, unquoted."""
    value = headers.get("X-Linked-Etag") or headers.get("ETag")
    if not value:
        return None
    return str(value).removeprefix("W/").strip('"')


# -- the failure table --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Failure:
    status: int | None  # None: no HTTP answer (an exception)
    code: str | None  # the Hub's X-Error-Code
    message: str  # the Hub's X-Error-Message, lower-cased
    exc: BaseException


@dataclass(frozen=True)
class _Rule:
    test: Callable[[_Failure], bool]
    text: str  # after "{what}: "; {status}, {timeout} and {exc} (the exception's class name) are filled in
    hint: str | None = None
    hint_with_token: str | None = None  # where a token was sent and the advice differs


@cache
def _rules() -> tuple[_Rule, ...]:
    """First match wins. Built on first use: the exception classes come from the HTTP library."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    httpx = _httpx()

    def raised(cls: type[BaseException]) -> Callable[[_Failure], bool]:
        return lambda f: f.status is None and isinstance(f.exc, cls)

    return (
        _Rule(lambda f: f.status == 401 and "invalid credentials" in f.message,
              "the Hugging Face token was rejected (HTTP 401, invalid credentials)",
              "check HF_TOKEN or run `hf auth login` again"),
        _Rule(lambda f: f.code == "GatedRepo", "gated repository, and this token has no access (HTTP {status})",
              "accept the conditions on the model page, then set HF_TOKEN",
              "request access on the model page, or use a token of an account that has it"),
        # the Hub answers 401 without a code for a missing repo as for a private one
        _Rule(lambda f: f.code == "RepoNotFound" or (f.status == 401 and not f.code),
              "repository not found, or private (HTTP {status})", "check the name; for a private repo set HF_TOKEN",
              "check the name, and that this token can read the repo"),
        _Rule(lambda f: f.code == "RevisionNotFound", "revision not found (HTTP {status})",
              "check the branch, tag or commit"),
        _Rule(lambda f: f.code == "EntryNotFound" or f.status == 404, "file not found (HTTP {status})",
              "check the path in the repository"),
        _Rule(lambda f: f.status == 403, "access forbidden (HTTP 403)", "check that the token can read this repo"),
        _Rule(lambda f: f.status == 429, "rate limited by the server (HTTP 429)", "wait a minute and retry"),
        _Rule(lambda f: (f.status or 0) >= 500, "server error (HTTP {status})", "the server failed; retry later"),
        _Rule(lambda f: f.status is not None, "HTTP {status}"),
        _Rule(raised(OfflineModeIsEnabled), settings.NOT_CACHED, settings.OFFLINE_HINT),
        _Rule(raised(httpx.TimeoutException), "timed out after {timeout:g} s",
              "slow network? set FITCHECK_HTTP_TIMEOUT"),
        _Rule(raised(httpx.TooManyRedirects), "too many redirects"),
        _Rule(raised(httpx.HTTPError), "network error ({exc})", "check the connection, HF_ENDPOINT and proxy settings"),
        _Rule(lambda f: True, "{exc}"),
    )


def _httpx() -> Any:
    """The HTTP library behind huggingface_hub's session (httpx2 in huggingface_hub 2.x), for its exceptions."""
    import importlib

    from huggingface_hub import get_session

    return importlib.import_module(type(get_session()).__module__.split(".")[0])


def _describe(exc: BaseException) -> _Failure:
    from huggingface_hub.errors import HfHubHTTPError

    if not isinstance(exc, HfHubHTTPError):  # checked first: HfHubHTTPError is also an httpx HTTPError
        return _Failure(None, None, "", exc)
    response = exc.response
    if response is None:
        return _Failure(0, None, "", exc)
    headers = response.headers
    return _Failure(response.status_code, headers.get("X-Error-Code"),
                    (headers.get("X-Error-Message") or "").lower(), exc)


def failure(exc: BaseException, what: str, *, has_token: bool) -> HubError:
    """One line for any failure of a request about `what` (the table above)."""
    f = _describe(exc)
    rule = next(r for r in _rules() if r.test(f))
    text = rule.text.format(status=f.status, timeout=settings.timeout_s(), exc=type(exc).__name__)
    return HubError(f"{what}: {text}", hint=rule.hint_with_token if has_token and rule.hint_with_token else rule.hint)


# -- requests -----------------------------------------------------------------------------------------------------

def hub_call(what: str, fn: Callable[[], T]) -> T:
    """Run a huggingface_hub API call (HfApi), turning its errors into one-line HubErrors."""
    try:
        return fn()
    except FitcheckError:
        raise
    except Exception as exc:
        raise failure(exc, what, has_token=settings.has_token()) from None


def send(method: Literal["GET", "HEAD"], url: str, headers: dict[str, str], what: str) -> Any:
    """One request, its body read; retried as FITCHECK_HTTP_RETRIES says. The response, or a HubError."""
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    with _quiet():
        try:
            response = http_backoff(method, url, headers=headers, timeout=settings.timeout_s(), **_retry_policy())
            hf_raise_for_status(response)
        except Exception as exc:  # OfflineModeIsEnabled from the session's request hook, too
            raise failure(exc, what, has_token=_sends_token(headers)) from None
    return response


def stream(url: str, headers: dict[str, str], what: str, stack: ExitStack) -> Any:
    """A GET whose body is read as it arrives (a server may ignore Range and send the whole file), retried like
    `send`; the response stays open until `stack` closes."""
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    with _quiet(), ExitStack() as attempt:
        try:
            response = attempt.enter_context(http_stream_backoff(
                "GET", url, headers=headers, timeout=settings.timeout_s(), **_retry_policy()))
            hf_raise_for_status(response)
        except Exception as exc:
            raise failure(exc, what, has_token=_sends_token(headers)) from None
        stack.enter_context(attempt.pop_all())
    return response


def _retry_policy() -> dict[str, Any]:
    httpx = _httpx()
    return {"max_retries": settings.retries(), "base_wait_time": BACKOFF_BASE_S, "max_wait_time": BACKOFF_MAX_S,
            "retry_on_exceptions": (httpx.TimeoutException, httpx.NetworkError),
            "retry_on_status_codes": RETRY_STATUS}


def _sends_token(headers: dict[str, str]) -> bool:
    return "authorization" in {k.lower() for k in headers}


# huggingface_hub's retry loop logs a warning per failed attempt, naming the full URL: a signed CDN URL's query
# string is a credential, and fitcheck's errors are one line on stderr. Its logger is muted on the threads that
# are inside one of our requests, and only there (headers are fetched on worker threads).
_inside = threading.local()


class _MuteOurRequests(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_inside, "request", False)


@cache
def _install_filter() -> None:
    from huggingface_hub.utils import http_backoff

    logging.getLogger(http_backoff.__module__).addFilter(_MuteOurRequests())


@contextmanager
def _quiet() -> Iterator[None]:
    _install_filter()
    _inside.request = True
    try:
        yield
    finally:
        _inside.request = False
