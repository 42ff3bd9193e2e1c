"""A ByteSource over HTTP Range requests: how a GGUF header is read from the Hub or a URL without the weights.

The source keeps every range it fetched (a sparse map of blocks). A reader that knows what it will need asks
for it up front with `prefetch(ranges)`: the missing parts are fetched concurrently, one request each (the read
planner, header_reads.py, does this: few round trips). A read of bytes nobody asked for falls back to the
growth policy: the first request asks for 64 KiB (that also gives the file size from Content-Range), each later
one for ~10% of the offset reached (a lower bound on the header size), at least 32 KiB, so only the last can run
past the header's end. A server that ignores Range (200 and the whole file) is read
as one stream up to a bounded prefix, then dropped: fitcheck never downloads a model.

The token is sent only to the origin of the URL first asked for (the Hub endpoint): a redirect to another host
(the Hub's CDN) drops it (httpx does this on a cross-origin redirect), and the later ranged reads go to the
redirect target directly, without it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from ..errors import HubError
from . import settings, transport

FIRST_REQUEST = 64 * 1024
MIN_REQUEST = 32 * 1024
GROWTH = 0.10
PARSER_READAHEAD = 4096  # the parser's own refills are served from our block, so keep them small
NO_RANGE_PREFIX_CAP = 64 * 1024 * 1024  # largest prefix read from a server that ignores Range
MAX_CONCURRENT = 4  # requests in flight for one file


class RangedHttpSource:
    """A ByteSource over HTTP Range requests (see the module docstring for the policy).

    Stats for the caller: `requests`, `bytes_fetched`, `ranged` (False once a server ignored Range), `etag`.
    """

    def __init__(self, url: str, what: str, *, send_token: bool, size: int | None = None) -> None:
        self.url, self.what = url, what
        self._resolve_url = url
        self._send_token = send_token
        self._size = size
        self._starts: list[int] = []  # sorted starts of the fetched blocks (disjoint, not adjacent)
        self._blocks: list[bytes] = []
        self._started = False
        self._lock = threading.Lock()
        self._stream = ExitStack()  # no-Range mode: holds the open 200 response
        self._stream_iter: Any = None
        self._stream_data = b""
        self.etag: str | None = None
        self.commit: str | None = None
        self.requests = 0
        self.bytes_fetched = 0
        self.ranged = True

    # -- ByteSource ---------------------------------------------------------------------------------------
    @property
    def size(self) -> int | None:
        if not self._started:
            self.start()
        return self._size

    def start(self, first: int = FIRST_REQUEST) -> None:
        """The first request: `first` bytes from the start (and the file size, and whether Range works)."""
        if not self._started:
            self._store(0, self._fetch(0, first))

    def read_at(self, offset: int, length: int) -> bytes:
        if not self._started:
            self.start()
        if not self.ranged:
            return self._read_stream(offset, length)
        if self._size is not None:
            length = max(0, min(length, self._size - offset))
        found = self.peek(offset, length)
        if found is not None:
            return found
        gaps = self._gaps(offset, offset + length)
        last_start, last_end = gaps[-1]  # grown by the policy, up to the next block we already hold
        grown = last_start + max(last_end - last_start, self._policy(offset))
        i = bisect.bisect_right(self._starts, last_start)
        if i < len(self._starts):
            grown = min(grown, self._starts[i])
        gaps[-1] = (last_start, max(last_end, grown))
        self._fetch_all(gaps)
        if not self.ranged:
            return self._read_stream(offset, length)
        found = self.peek(offset, length)
        if found is None:
            raise HubError(f"{self.what}: the server sent fewer bytes than asked for", hint=None)
        return found

    def close(self) -> None:
        self._stream.close()
        self._stream_iter = None

    # -- planned reads ----------------------------------------------------------------------------------------
    def peek(self, offset: int, length: int) -> bytes | None:
        """Bytes [offset, offset + length) if already fetched (clipped at the end of the file), else None."""
        if self._size is not None:
            length = max(0, min(length, self._size - offset))
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return b"" if length == 0 else None
        rel = offset - self._starts[i]
        block = self._blocks[i]
        if rel + length <= len(block):
            return block[rel:rel + length]
        return None

    def block_at(self, offset: int) -> tuple[int, bytes] | None:
        """The fetched block holding `offset`, as (its start, its bytes)."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._starts[i] + len(self._blocks[i]):
            return self._starts[i], self._blocks[i]
        return None

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Fetch the parts of these [start, end) ranges not held yet, concurrently, one request per gap."""
        if not self._started:
            self.start()
        if not self.ranged:
            return
        gaps = [g for start, end in ranges for g in self._gaps(start, end)]
        self._fetch_all(_merge(gaps, 0))

    # -- internals ------------------------------------------------------------------------------------------
    @staticmethod
    def _policy(offset: int) -> int:
        return max(MIN_REQUEST, int(offset * GROWTH))

    def _gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) (clipped at the end of the file) that no block holds."""
        if self._size is not None:
            end = min(end, self._size)
        gaps, pos = [], start
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while pos < end and i <= len(self._starts):
            if i == len(self._starts):
                gaps.append((pos, end))
                break
            b_start, b_end = self._starts[i], self._starts[i] + len(self._blocks[i])
            if b_end <= pos:
                i += 1
                continue
            if b_start > pos:
                gaps.append((pos, min(end, b_start)))
            pos = max(pos, b_end)
            i += 1
        return [(a, b) for a, b in gaps if b > a]

    def _fetch_all(self, gaps: list[tuple[int, int]]) -> None:
        if len(gaps) <= 1 or not self._started:
            for start, end in gaps:
                self._store(start, self._fetch(start, end - start))
            return
        with ThreadPoolExecutor(max_workers=min(len(gaps), MAX_CONCURRENT)) as pool:
            futures = [(start, pool.submit(self._fetch, start, end - start)) for start, end in gaps]
            for start, future in futures:
                self._store(start, future.result())

    def _store(self, offset: int, data: bytes) -> None:
        """Add a block, merged with the blocks it overlaps or touches."""
        if not data or not self.ranged:
            return
        end = offset + len(data)
        i = bisect.bisect_left(self._starts, offset)
        if i > 0 and self._starts[i - 1] + len(self._blocks[i - 1]) >= offset:
            i -= 1
        j = i
        new_start, pieces = offset, []
        while j < len(self._starts) and self._starts[j] <= end:
            b_start, block = self._starts[j], self._blocks[j]
            if b_start < new_start:
                pieces.append((b_start, block))
                new_start = b_start
            else:
                pieces.append((b_start, block))
            j += 1
        merged = bytearray()
        cursor = new_start
        for b_start, block in sorted([*pieces, (offset, data)], key=lambda p: p[0]):
            b_end = b_start + len(block)
            if b_end > cursor:
                merged += block[cursor - b_start:]
                cursor = b_end
        self._starts[i:j] = [new_start]
        self._blocks[i:j] = [bytes(merged)]

    def _get(self, offset: int, want: int, stack: ExitStack) -> Any:
        url = self.url
        same_host = transport.origin(url) == transport.origin(self._resolve_url)
        headers = {**settings.request_headers(self._send_token and same_host),
                   "Range": f"bytes={offset}-{offset + want - 1}"}
        return url, transport.stream(url, headers, self.what, stack)

    def _fetch(self, offset: int, want: int) -> bytes:
        """Bytes [offset, offset + want) (clipped at the end of the file); safe on several threads at once."""
        if self._size is not None:
            want = min(want, self._size - offset)
        if want <= 0:
            return b""
        with ExitStack() as stack:
            try:
                asked, response = self._get(offset, want, stack)
            except HubError:
                if self.url == self._resolve_url:
                    raise
                with self._lock:
                    self.url = self._resolve_url  # a signed redirect target expired: resolve again
                asked, response = self._get(offset, want, stack)
            final = str(response.url)
            with self._lock:
                self.requests += 1
                first = not self._started
                self._started = True
                if final != asked:
                    self.url = final  # later ranges go straight to the redirect target
                self.etag = self.etag or transport.etag(response.headers)
                self.commit = self.commit or response.headers.get("X-Repo-Commit")
            if response.status_code == 200:  # Range ignored: the whole file is coming
                if not first:
                    raise HubError(f"{self.what}: the server stopped honouring Range requests", hint=None)
                length = response.headers.get("Content-Length")
                if self._size is None and length and length.isdigit():
                    self._size = int(length)
                self.ranged = False
                self._stream.enter_context(stack.pop_all())  # kept open: read on demand, up to the cap
                self._stream_iter = response.iter_bytes(1 << 16)
                return b""
            content_range = response.headers.get("Content-Range")
            total, start = _content_range_total(content_range), _content_range_start(content_range)
            if start is not None and start != offset:
                raise HubError(f"{self.what}: the server answered a different byte range", hint=None)
            try:
                data = response.read()
            except Exception as exc:
                raise transport.failure(exc, self.what, has_token=False) from None
        with self._lock:
            self.bytes_fetched += len(data)
            if total is not None:
                self._size = total
        return bytes(data)

    def _read_stream(self, offset: int, length: int) -> bytes:
        end = offset + length
        try:
            while len(self._stream_data) < end and self._stream_iter is not None:
                if len(self._stream_data) >= NO_RANGE_PREFIX_CAP:
                    self.close()
                    raise HubError(f"{self.what}: the server does not support Range requests, and the header "
                                   f"does not end within the first {NO_RANGE_PREFIX_CAP >> 20} MiB",
                                   hint="fitcheck will not download the whole file; try a server with Range "
                                        "support, or download it and pass the local path")
                chunk = next(self._stream_iter, None)
                if chunk is None:
                    self.close()
                    break
                self._stream_data += chunk
                self.bytes_fetched += len(chunk)
        except HubError:
            raise
        except Exception as exc:
            self.close()
            raise transport.failure(exc, self.what, has_token=False) from None
        return self._stream_data[offset:end]


def _merge(gaps: list[tuple[int, int]], slack: int) -> list[tuple[int, int]]:
    """Sorted, overlapping (or closer than `slack`) ranges joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(gaps):
        if out and start <= out[-1][1] + slack:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


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
