"""The environment the remote sources read: timeouts, retries, offline mode, the Hub endpoint, request headers.

Everything is read at call time, not import time: huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once,
at its import, and tests (and long-lived library callers) change them afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from .._version import __version__
from ..errors import UsageError
from ..text import shown

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
# The offline vocabulary, shared by the cache (nothing stored) and the transport (huggingface_hub refused).
NOT_CACHED = "not in fitcheck's cache and HF_HUB_OFFLINE is set"
OFFLINE_HINT = "run once online, or unset HF_HUB_OFFLINE"
T = TypeVar("T", int, float)


def timeout_s() -> float:
    """FITCHECK_HTTP_TIMEOUT: seconds per request (connect and each read), a positive number."""
    return _number("FITCHECK_HTTP_TIMEOUT", float, DEFAULT_TIMEOUT, lambda v: 0 < v < float("inf"),
                   "is not a number of seconds", "e.g. 10")


def retries() -> int:
    """FITCHECK_HTTP_RETRIES: how many times a 5xx/429 answer, a timeout or a network error is retried."""
    return _number("FITCHECK_HTTP_RETRIES", int, DEFAULT_RETRIES, lambda v: 0 <= v <= 100,
                   "is not a count from 0 to 100", "e.g. 2")


def _number(name: str, parse: Callable[[str], T], default: T, ok: Callable[[T], bool], what: str, hint: str) -> T:
    """An environment setting read now: its default when unset, a one-line usage error when it makes no sense."""
    text = os.environ.get(name) or ""
    try:
        value = parse(text) if text else default
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise UsageError(f"{name}={shown(text)} {what}", hint=hint)
    return value


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (value or "").upper() in ("1", "ON", "YES", "TRUE")


def endpoint() -> str:
    """HF_ENDPOINT, read now."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def file_url(repo: str, path: str, revision: str) -> str:
    """A repo file's resolve URL, as `huggingface_hub.hf_hub_url` builds it (its template and quoting), without
    importing file_download for it (~50 ms on the way to the first header byte)."""
    from urllib.parse import quote

    from huggingface_hub import constants

    url = constants.HUGGINGFACE_CO_URL_TEMPLATE.format(repo_id=repo, revision=quote(revision, safe=""),
                                                       filename=quote(path))
    return endpoint() + url[len(constants.ENDPOINT):] if url.startswith(constants.ENDPOINT) else url


def request_headers(send_token: bool) -> dict[str, str]:
    """huggingface_hub's headers (user agent, and the token when send_token), no compression.

    Compression is off because a Range is a range of the file's bytes: a compressed body would not be.
    """
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(token=None if send_token else False, library_name="fitcheck",
                               library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    return headers


def has_token() -> bool:
    """Whether a token (HF_TOKEN or the saved login) would be sent to the Hub: error hints differ."""
    return "authorization" in {k.lower() for k in request_headers(True)}


def hf_cache_dir() -> str:
    """The Hub cache huggingface_hub (and llama.cpp's -hf) use, read from the environment now (not at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return os.path.expanduser(explicit)
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def hub_cache_folder(repo_id: str) -> str:
    """Where that cache keeps `repo_id`'s files (absent: nothing of it was downloaded)."""
    return os.path.join(hf_cache_dir(), "models--" + repo_id.replace("/", "--"))
