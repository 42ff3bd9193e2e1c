"""Ranged HTTP reads of a GGUF header through huggingface_hub's HTTP session, and the on-disk header cache.

Every request goes through `huggingface_hub.get_session()` with `build_hf_headers()`, so HF_TOKEN, the saved
login, proxies (httpx's environment) and the user agent behave as in every HF tool. The token is sent only to
the Hub endpoint: redirects to another host (the Hub's CDN) drop it (httpx does this on a cross-origin
redirect) and the later ranged reads go to the redirect target directly, without it.

Read policy: the first request asks for 64 KiB (that also gives the file size from Content-Range); each later
one asks for at most ~10% of the offset already reached (itself a lower bound on the header size), at least
32 KiB. Only the last request can run past the header's end, so the bytes fetched stay within ~1.1x the header
(for headers over ~320 KiB; smaller ones cost at most the first 64 KiB and a couple of 32 KiB steps). Numeric
arrays the parser seeks over are never requested. A server that ignores Range (200 and the whole file) is read
as one stream up to a bounded prefix, then dropped: fitcheck never downloads a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import __version__
from ..errors import HubError
from .gguf_header import ArraySummary, GGUFHeader, TensorInfo

FIRST_REQUEST = 64 * 1024
MIN_REQUEST = 32 * 1024
GROWTH = 0.10
PARSER_READAHEAD = 4096  # the parser's own refills are served from our block, so keep them small
NO_RANGE_PREFIX_CAP = 64 * 1024 * 1024  # largest prefix read from a server that ignores Range
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
CACHE_FORMAT = 1


def timeout_s() -> float:
    return float(os.environ.get("FITCHECK_HTTP_TIMEOUT") or DEFAULT_TIMEOUT)


def retries() -> int:
    return int(os.environ.get("FITCHECK_HTTP_RETRIES") or DEFAULT_RETRIES)


def offline() -> bool:
    """HF_HUB_OFFLINE, read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (value or "").upper() in ("1", "ON", "YES", "TRUE")


def request_headers(send_token: bool) -> dict[str, str]:
    """huggingface_hub's headers (user agent, and the token when send_token), no compression."""
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(token=None if send_token else False, library_name="fitcheck",
                               library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    return headers


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlparse(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def _public(url: str) -> str:
    """A URL for messages: no query string (signed CDN URLs carry credentials)."""
    return url.split("?", 1)[0]


def status_error(status: int, headers: Any, what: str, *, has_token: bool) -> HubError:
    """One line for an HTTP error status, in the Hub's vocabulary (X-Error-Code / X-Error-Message)."""
    code = headers.get("X-Error-Code") if headers is not None else None
    message = (headers.get("X-Error-Message") or "") if headers is not None else ""
    if status == 401 and "invalid credentials" in message.lower():
        return HubError(f"{what}: the Hugging Face token was rejected (HTTP 401, invalid credentials)",
                        hint="check HF_TOKEN or run `hf auth login` again")
    if code == "GatedRepo":
        return HubError(f"{what}: gated repository, and this token has no access (HTTP {status})",
                        hint="accept the conditions on the model page, then set HF_TOKEN" if not has_token
                        else "request access on the model page, or use a token of an account that has it")
    if code == "RepoNotFound" or (status == 401 and not code):
        return HubError(f"{what}: repository not found, or private (HTTP {status})",
                        hint="check the name; for a private repo set HF_TOKEN" if not has_token
                        else "check the name, and that this token can read the repo")
    if code == "RevisionNotFound":
        return HubError(f"{what}: revision not found (HTTP {status})", hint="check the branch, tag or commit")
    if code == "EntryNotFound" or status == 404:
        return HubError(f"{what}: file not found (HTTP {status})", hint="check the path in the repository")
    if status == 403:
        return HubError(f"{what}: access forbidden (HTTP 403)", hint="check that the token can read this repo")
    if status == 429:
        return HubError(f"{what}: rate limited by the server (HTTP 429)", hint="wait a minute and retry")
    if status >= 500:
        return HubError(f"{what}: server error (HTTP {status})", hint="the server failed; retry later")
    return HubError(f"{what}: HTTP {status}", hint=None)


def _httpx() -> Any:
    """The HTTP library behind huggingface_hub's session (httpx2 in huggingface_hub 2.x), for its exceptions."""
    import importlib

    from huggingface_hub import get_session

    return importlib.import_module(type(get_session()).__module__.split(".")[0])


def transport_error(exc: Exception, what: str) -> HubError:
    from huggingface_hub.errors import OfflineModeIsEnabled

    httpx2 = _httpx()

    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(f"{what}: not in fitcheck's cache and HF_HUB_OFFLINE is set",
                        hint="run once online, or unset HF_HUB_OFFLINE")
    if isinstance(exc, httpx2.TimeoutException):
        return HubError(f"{what}: timed out after {timeout_s():g} s", hint="slow network? set FITCHECK_HTTP_TIMEOUT")
    if isinstance(exc, httpx2.TooManyRedirects):
        return HubError(f"{what}: too many redirects")
    if isinstance(exc, httpx2.HTTPError):
        return HubError(f"{what}: network error ({type(exc).__name__})",
                        hint="check the connection, HF_ENDPOINT and proxy settings")
    return HubError(f"{what}: {type(exc).__name__}")


def send(method: str, url: str, headers: dict[str, str], what: str, *, stream: bool = False) -> Any:
    """One request through huggingface_hub's session, retrying server errors and timeouts with backoff.

    Returns the response (status < 400; streamed if asked: the caller closes it); raises HubError otherwise.
    """
    from huggingface_hub import get_session

    httpx2 = _httpx()
    attempts = retries() + 1
    for attempt in range(attempts):
        try:
            client = get_session()
            request = client.build_request(method, url, headers=headers, timeout=timeout_s())
            response = client.send(request, stream=stream)
        except httpx2.HTTPError as exc:
            if attempt + 1 < attempts and isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError)):
                time.sleep(0.5 * 2**attempt)
                continue
            raise transport_error(exc, what) from None
        except Exception as exc:  # OfflineModeIsEnabled from the session's hook
            raise transport_error(exc, what) from None
        if response.status_code < 400:
            return response
        if stream:
            response.close()
        if response.status_code in (500, 502, 503, 504, 429) and attempt + 1 < attempts:
            time.sleep(0.5 * 2**attempt)
            continue
        raise status_error(response.status_code, response.headers, what, has_token="authorization" in
                           {k.lower() for k in headers})
    raise AssertionError("unreachable")


class RangedHttpSource:
    """A ByteSource over HTTP Range requests (see the module docstring for the policy)."""

    def __init__(self, url: str, what: str, *, send_token: bool, size: int | None = None) -> None:
        self.url, self.what = url, what
        self._resolve_url = url
        self._send_token = send_token
        self._size = size
        self._block_start, self._block = 0, b""
        self._started = False
        self._stream: Any = None  # no-Range mode: the open 200 response and its iterator
        self._stream_iter: Any = None
        self.etag: str | None = None
        self.commit: str | None = None
        self.requests = 0
        self.bytes_fetched = 0
        self.ranged = True

    # -- ByteSource ---------------------------------------------------------------------------------------
    @property
    def size(self) -> int | None:
        if not self._started:
            self._fetch(0, FIRST_REQUEST)
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if not self._started:
            self._fetch(0, FIRST_REQUEST)
        if not self.ranged:
            return self._read_stream(offset, length)
        end = offset + length
        block_end = self._block_start + len(self._block)
        if self._block_start <= offset and (end <= block_end or block_end == self._size):
            return self._block[offset - self._block_start:end - self._block_start]
        if self._size is not None and offset >= self._size:
            return b""
        if self._block_start <= offset < block_end:  # keep the tail, fetch what follows it
            tail = self._block[offset - self._block_start:]
            self._fetch(block_end, max(length - len(tail), self._policy(block_end)))
            if self.ranged:
                self._block, self._block_start = tail + self._block, offset
        else:
            self._fetch(offset, max(length, self._policy(offset)))
        if not self.ranged:
            return self._read_stream(offset, length)
        return self._block[offset - self._block_start:end - self._block_start]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = self._stream_iter = None

    # -- internals ------------------------------------------------------------------------------------------
    @staticmethod
    def _policy(offset: int) -> int:
        return max(MIN_REQUEST, int(offset * GROWTH))

    def _headers(self, url: str) -> dict[str, str]:
        same_host = _origin(url) == _origin(self._resolve_url)
        return request_headers(self._send_token and same_host)

    def _fetch(self, offset: int, want: int) -> None:
        """Replace the block with bytes [offset, offset + want) (clipped at the end of the file)."""
        if self._size is not None:
            want = min(want, self._size - offset)
        headers = {**self._headers(self.url), "Range": f"bytes={offset}-{offset + want - 1}"}
        try:
            response = send("GET", self.url, headers, self.what, stream=True)
        except HubError:
            if self.url == self._resolve_url:
                raise
            self.url = self._resolve_url  # a signed redirect target expired: resolve again
            headers = {**self._headers(self.url), "Range": f"bytes={offset}-{offset + want - 1}"}
            response = send("GET", self.url, headers, self.what, stream=True)
        self.requests += 1
        self._started = True
        final = str(response.url)
        if final != self.url:
            self.url = final  # later ranges go straight to the redirect target
        self.etag = self.etag or _etag(response.headers)
        self.commit = self.commit or response.headers.get("X-Repo-Commit")
        if response.status_code == 200:  # Range ignored: the whole file is coming
            length = response.headers.get("Content-Length")
            if self._size is None and length and length.isdigit():
                self._size = int(length)
            self.ranged = False
            self._stream, self._stream_iter = response, response.iter_bytes(1 << 16)
            self._block_start, self._block = 0, b""
            return
        try:
            total = _content_range_total(response.headers.get("Content-Range"))
            start = _content_range_start(response.headers.get("Content-Range"))
            if start is not None and start != offset:
                raise HubError(f"{self.what}: the server answered a different byte range", hint=None)
            data = response.read()
        except HubError:
            raise
        except Exception as exc:
            raise transport_error(exc, self.what) from None
        finally:
            response.close()
        self.bytes_fetched += len(data)
        if total is not None:
            self._size = total
        self._block_start, self._block = offset, data

    def _read_stream(self, offset: int, length: int) -> bytes:
        end = offset + length
        try:
            while len(self._block) < end and self._stream_iter is not None:
                if len(self._block) >= NO_RANGE_PREFIX_CAP:
                    self.close()
                    raise HubError(f"{self.what}: the server does not support Range requests, and the header "
                                   f"does not end within the first {NO_RANGE_PREFIX_CAP >> 20} MiB",
                                   hint="fitcheck will not download the whole file; try a server with Range "
                                        "support, or download it and pass the local path")
                chunk = next(self._stream_iter, None)
                if chunk is None:
                    self.close()
                    break
                self._block += chunk
                self.bytes_fetched += len(chunk)
        except HubError:
            raise
        except Exception as exc:
            self.close()
            raise transport_error(exc, self.what) from None
        return self._block[offset:end]


def _etag(headers: Any) -> str | None:
    value = headers.get("X-Linked-Etag") or headers.get("ETag")
    if not value:
        return None
    return value.removeprefix("W/").strip('"')


def _content_range_total(value: str | None) -> int | None:
    if value and "/" in value:
        total = value.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    return None


def _content_range_start(value: str | None) -> int | None:
    if value and value.startswith("bytes ") and "-" in value:
        first = value[6:].split("-", 1)[0]
        return int(first) if first.isdigit() else None
    return None


# -- the header cache ------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    explicit = os.environ.get("FITCHECK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fitcheck"


def _key_path(kind: str, *parts: str) -> Path:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]
    return cache_dir() / kind / f"{digest}.json"


def cache_get(kind: str, *parts: str) -> Any | None:
    path = _key_path(kind, *parts)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("format") != CACHE_FORMAT or data.get("key") != list(parts):
        return None
    return data.get("value")


def cache_put(kind: str, value: Any, *parts: str) -> None:
    """Best effort: a cache that cannot be written costs only speed."""
    path = _key_path(kind, *parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": list(parts), "value": value}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def header_to_json(header: GGUFHeader) -> dict[str, Any]:
    def enc(v: Any) -> Any:
        if isinstance(v, ArraySummary):
            return {"__array__": [v.element_type, v.count]}
        return v

    return {"version": header.version, "alignment": header.alignment, "header_bytes": header.header_bytes,
            "data_offset": header.data_offset, "metadata": {k: enc(v) for k, v in header.metadata.items()},
            "tensors": [[t.name, list(t.dims), t.type_id, t.offset] for t in header.tensors]}


def header_from_json(data: dict[str, Any]) -> GGUFHeader:
    def dec(v: Any) -> Any:
        if isinstance(v, dict) and "__array__" in v:
            return ArraySummary(*v["__array__"])
        return v

    return GGUFHeader(version=data["version"], metadata={k: dec(v) for k, v in data["metadata"].items()},
                      tensors=tuple(TensorInfo(n, tuple(d), t, o) for n, d, t, o in data["tensors"]),
                      alignment=data["alignment"], header_bytes=data["header_bytes"],
                      data_offset=data["data_offset"])
