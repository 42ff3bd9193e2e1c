"""HTTP for the remote sources: requests through huggingface_hub's session with our retry loop, and the one table that
turns every failure (an HTTP status, the Hub's X-Error-Code, an exception) into a one-line HubError.

Every request goes through `huggingface_hub.get_session()` (via `http_stream_backoff`, one try each: the retry
loop is ours, so a Retry-After cannot hold a run for an hour, and every body has a deadline), so
HF_TOKEN, the saved login, proxies and the user agent behave as in every HF tool, and `hf_raise_for_status`
reads the status, as it does for HfApi calls: our requests and the Hub API fail the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from ..errors import FitcheckError, HubError, HubUnavailable
from ..text import shown
from . import settings

T = TypeVar("T")
RETRY_STATUS = (429, 500, 502, 503, 504)  # not 408: a request timeout is our own timeout's business
BACKOFF_BASE_S = 0.5  # then doubled per retry
BACKOFF_MAX_S = 8.0
DEADLINE_FACTOR = 3  # a whole answer (headers and body) within this many FITCHECK_HTTP_TIMEOUTs


def deadline_s() -> float:
    """Seconds one request may take from start to the last byte of its body (FITCHECK_HTTP_DEADLINE, else
    3x FITCHECK_HTTP_TIMEOUT): the per-read timeout alone lets a server that drips a byte a second hold a
    run forever."""
    try:
        value = float(os.environ.get("FITCHECK_HTTP_DEADLINE") or DEADLINE_FACTOR * settings.timeout_s())
    except ValueError:
        value = DEADLINE_FACTOR * settings.DEFAULT_TIMEOUT
    return value if value > 0 else DEADLINE_FACTOR * settings.DEFAULT_TIMEOUT


class TooSlow(Exception):
    """A response body still arriving when the request's deadline passed."""



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
    unavailable: bool = False  # the Hub could not answer (not a refusal): a cached answer may stand in


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
        _Rule(lambda f: f.status == 429, "rate limited by the server (HTTP 429)", "wait a minute and retry",
              unavailable=True),
        _Rule(lambda f: (f.status or 0) >= 500, "server error (HTTP {status})", "the server failed; retry later",
              unavailable=True),
        _Rule(lambda f: f.status is not None, "HTTP {status}"),
        _Rule(raised(OfflineModeIsEnabled), settings.NOT_CACHED, settings.OFFLINE_HINT),
        _Rule(raised(httpx.TimeoutException), "timed out after {timeout:g} s",
              "slow network? set FITCHECK_HTTP_TIMEOUT", unavailable=True),
        _Rule(raised(TooSlow), "the server sent its answer too slowly (not complete after {deadline:g} s)",
              "slow network? set FITCHECK_HTTP_DEADLINE", unavailable=True),
        _Rule(raised(httpx.TooManyRedirects), "too many redirects (a redirect loop?)",
              "check the URL and HF_ENDPOINT"),
        _Rule(raised(httpx.RemoteProtocolError), "the server closed the connection mid-answer ({exc})",
              "retry later; a proxy may be cutting the connection", unavailable=True),
        _Rule(raised(httpx.HTTPError), "network error ({exc})",
              "check the connection, HF_ENDPOINT and proxy settings; HF_HUB_OFFLINE=1 answers from fitcheck's "
              "cache alone", unavailable=True),
        _Rule(lambda f: True, "the server's answer could not be read ({exc})"),
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
    text = rule.text.format(status=f.status, timeout=settings.timeout_s(), deadline=deadline_s(),
                            exc=type(exc).__name__)
    hint = rule.hint_with_token if has_token and rule.hint_with_token else rule.hint
    wait = retry_after(exc)
    if wait is not None and f.status in RETRY_STATUS:
        hint = f"the server asks to wait {wait:g} s; " + (hint or "retry later")
    kind = HubUnavailable if rule.unavailable else HubError
    return kind(f"{shown(what, 200)}: {text}", hint=hint)


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429/503 answer's Retry-After asks for (delay-seconds only), or None."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None


# -- requests -----------------------------------------------------------------------------------------------------

def hub_call(what: str, fn: Callable[[], T]) -> T:
    """Run a huggingface_hub API call (HfApi), turning its errors into one-line HubErrors; its responses, too,
    must be complete within the deadline."""
    try:
        with _quiet(), _deadline():
            return fn()
    except FitcheckError:
        raise
    except Exception as exc:
        raise failure(exc, what, has_token=settings.has_token()) from None


def send(method: Literal["GET", "HEAD"], url: str, headers: dict[str, str], what: str) -> Any:
    """One request, its body read; retried as FITCHECK_HTTP_RETRIES says. The response, or a HubError."""
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    def attempt() -> Any:
        with http_stream_backoff(method, url, headers=headers, timeout=settings.timeout_s(),
                                 **_single_attempt()) as response:
            hf_raise_for_status(response)
            response.read()
        return response

    return _with_retries(attempt, what, headers)


def stream(url: str, headers: dict[str, str], what: str, stack: ExitStack) -> Any:
    """A GET whose body is read as it arrives (a server may ignore Range and send the whole file), retried like
    `send`; the response stays open until `stack` closes. Its body, too, must arrive within the deadline."""
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    def attempt() -> Any:
        with ExitStack() as opened:
            response = opened.enter_context(http_stream_backoff(
                "GET", url, headers=headers, timeout=settings.timeout_s(), **_single_attempt()))
            hf_raise_for_status(response)
            stack.enter_context(opened.pop_all())
        return response

    return _with_retries(attempt, what, headers)


def _with_retries(attempt: Callable[[], T], what: str, headers: dict[str, str]) -> T:
    """Our retry loop (huggingface_hub's would sleep for any Retry-After a server names, an hour included):
    5xx/429 answers, timeouts and network errors are retried FITCHECK_HTTP_RETRIES times with a doubling
    wait; a Retry-After over BACKOFF_MAX_S, or one past the deadline, ends the run instead."""
    httpx = _httpx()
    retryable = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    wait = BACKOFF_BASE_S
    tries = settings.retries()
    for n in range(tries + 1):
        try:
            with _quiet(), _deadline():
                return attempt()
        except Exception as exc:  # OfflineModeIsEnabled from the session's request hook, too
            status = getattr(getattr(exc, "response", None), "status_code", None)
            again = (status in RETRY_STATUS) if status is not None else isinstance(exc, retryable)
            asked = retry_after(exc) if status is not None else None
            pause = wait if asked is None else asked
            if not again or n == tries or pause > BACKOFF_MAX_S:
                raise failure(exc, what, has_token=_sends_token(headers)) from None
            time.sleep(pause)
            wait = min(BACKOFF_MAX_S, wait * 2)
    raise AssertionError("unreachable")


def _sends_token(headers: dict[str, str]) -> bool:
    return "authorization" in {k.lower() for k in headers}


def _single_attempt() -> dict[str, Any]:
    """huggingface_hub's backoff loop reduced to one try: the retries are ours (_with_retries)."""
    return {"max_retries": 0, "retry_on_exceptions": (), "retry_on_status_codes": ()}


# -- the deadline -----------------------------------------------------------------------------------------------
# Set per thread for the duration of one of our requests; a response hook on huggingface_hub's session wraps
# each body in a stream that checks it, so HfApi calls are bounded the same way as ours.

@contextmanager
def _deadline() -> Iterator[None]:
    _install_hook()
    previous = getattr(_inside, "deadline", None)
    _inside.deadline = time.monotonic() + deadline_s()
    try:
        yield
    finally:
        _inside.deadline = previous


def _bound_body(response: Any) -> None:
    deadline = getattr(_inside, "deadline", None)
    if deadline is not None and not isinstance(response.stream, _deadline_stream()):
        response.stream = _deadline_stream()(response.stream, deadline)


@cache
def _deadline_stream() -> type:
    httpx = _httpx()

    class DeadlineStream(httpx.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, deadline: float) -> None:
            self.inner, self.deadline = inner, deadline

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                if time.monotonic() > self.deadline:
                    raise TooSlow()
                yield chunk

        def close(self) -> None:
            self.inner.close()

    return DeadlineStream


def _install_hook() -> None:
    from huggingface_hub import get_session

    hooks = get_session().event_hooks["response"]  # the session may be new (closed after a ConnectError)
    if _bound_body not in hooks:
        hooks.append(_bound_body)


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
