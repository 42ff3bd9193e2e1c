"""A ByteSource over HTTP Range requests: how a GGUF header is read from the Hub or a URL without the weights.

Read policy: the first request asks for 64 KiB (that also gives the file size from Content-Range); each later
one asks for at most ~10% of the offset already reached (itself a lower bound on the header size), at least
32 KiB. Only the last request can run past the header's end, so the bytes fetched stay within ~1.1x the header
(for headers over ~320 KiB; smaller ones cost at most the first 64 KiB and a couple of 32 KiB steps). Numeric
arrays the parser seeks over are never requested. A server that ignores Range (200 and the whole file) is read
as one stream up to a bounded prefix, then dropped: fitcheck never downloads a model.

The token is sent only to the origin of the URL first asked for (the Hub endpoint): a redirect to another host
(the Hub's CDN) drops it (httpx does this on a cross-origin redirect), and the later ranged reads go to the
redirect target directly, without it.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from ..errors import HubError
from . import settings, transport

FIRST_REQUEST = 64 * 1024
MIN_REQUEST = 32 * 1024
GROWTH = 0.10
PARSER_READAHEAD = 4096  # the parser's own refills are served from our block, so keep them small
NO_RANGE_PREFIX_CAP = 64 * 1024 * 1024  # largest prefix read from a server that ignores Range


class RangedHttpSource:
    """A ByteSource over HTTP Range requests (see the module docstring for the policy).

    Stats for the caller: `requests`, `bytes_fetched`, `ranged` (False once a server ignored Range), `etag`.
    """

    def __init__(self, url: str, what: str, *, send_token: bool, size: int | None = None) -> None:
        self.url, self.what = url, what
        self._resolve_url = url
        self._send_token = send_token
        self._size = size
        self._block_start, self._block = 0, b""
        self._started = False
        self._stream = ExitStack()  # no-Range mode: holds the open 200 response
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
        self._stream.close()
        self._stream_iter = None

    # -- internals ------------------------------------------------------------------------------------------
    @staticmethod
    def _policy(offset: int) -> int:
        return max(MIN_REQUEST, int(offset * GROWTH))

    def _get(self, offset: int, want: int, stack: ExitStack) -> Any:
        same_host = transport.origin(self.url) == transport.origin(self._resolve_url)
        headers = {**settings.request_headers(self._send_token and same_host),
                   "Range": f"bytes={offset}-{offset + want - 1}"}
        return transport.stream(self.url, headers, self.what, stack)

    def _fetch(self, offset: int, want: int) -> None:
        """Replace the block with bytes [offset, offset + want) (clipped at the end of the file)."""
        if self._size is not None:
            want = min(want, self._size - offset)
        with ExitStack() as stack:
            try:
                response = self._get(offset, want, stack)
            except HubError:
                if self.url == self._resolve_url:
                    raise
                self.url = self._resolve_url  # a signed redirect target expired: resolve again
                response = self._get(offset, want, stack)
            self.requests += 1
            self._started = True
            final = str(response.url)
            if final != self.url:
                self.url = final  # later ranges go straight to the redirect target
            self.etag = self.etag or transport.etag(response.headers)
            self.commit = self.commit or response.headers.get("X-Repo-Commit")
            if response.status_code == 200:  # Range ignored: the whole file is coming
                length = response.headers.get("Content-Length")
                if self._size is None and length and length.isdigit():
                    self._size = int(length)
                self.ranged = False
                self._stream.enter_context(stack.pop_all())  # kept open: read on demand, up to the cap
                self._stream_iter = response.iter_bytes(1 << 16)
                self._block_start, self._block = 0, b""
                return
            content_range = response.headers.get("Content-Range")
            total, start = _content_range_total(content_range), _content_range_start(content_range)
            if start is not None and start != offset:
                raise HubError(f"{self.what}: the server answered a different byte range", hint=None)
            try:
                data = response.read()
            except Exception as exc:
                raise transport.failure(exc, self.what, has_token=False) from None
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
            raise transport.failure(exc, self.what, has_token=False) from None
        return self._block[offset:end]


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
