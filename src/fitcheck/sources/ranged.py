"""A ByteSource over HTTP Range requests: how a GGUF header is read from the Hub or a URL without the weights.

The source keeps every range it fetched (a sparse map of blocks, blocks.py). A reader that knows what it will
need asks for it up front with `prefetch(ranges)`: the missing parts are fetched concurrently, one request each.
A reader that knows only roughly how much it needs streams it (`stream(offset, end)` with a margin, `pull` as
far as it reads, `end_lead` when it has enough): no round trip for a first look or a top-up (the read planner,
header_reads.py, does both: few round trips). A read of bytes nobody asked for falls back to the
growth policy: the first request asks for 64 KiB (that also gives the file size from Content-Range), each later
one for ~10% of the offset reached (a lower bound on the header size), at least 32 KiB, so only the last can run
past the header's end. A server that ignores Range (200 and the whole file) is read
as one stream up to a bounded prefix, then dropped: fitcheck never downloads a model.

The token is sent only to the origin of the URL first asked for (the Hub endpoint): a redirect to another host
(the Hub's CDN) drops it (httpx does this on a cross-origin redirect), and the later ranged reads go to the
redirect target directly, without it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from ..errors import FitcheckError, HubError
from . import settings, transport
from .blocks import Blocks

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
        self._held = Blocks()
        self._started = False
        self._lock = threading.Lock()
        self._stream = ExitStack()  # no-Range mode: holds the open 200 response
        self._stream_iter: Any = None
        self._stream_data = b""
        self._lead = ExitStack()  # a streamed first read: open while its bytes are still wanted
        self._lead_iter: Any = None
        self._lead_i, self._lead_to = 0, 0  # the block it grows, and where the request being read ends
        self._lead_queue: list[tuple[Future[tuple[ExitStack, Any]], int]] = []  # requests that continue it
        self._lead_pool: ThreadPoolExecutor | None = None
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

    def stream(self, offset: int, end: int) -> None:
        """A request for [offset, end) read only as far as the reader needs (`pull`, `prefetch`, `read_at`) and
        closed by `end_lead()`: a reader that knows only roughly how much it needs asks for a margin more and
        stops when it has enough, instead of paying a round trip for a first look or a top-up. The bytes that
        still cross the link past what it read are bounded by the range (and ~a round trip's worth on a slow
        link). As the first request it also learns the file size and whether Range works. A range that
        continues an open one is requested at once on another connection and read when the first is done,
        so its round trip passes while the first one's bytes still arrive."""
        if self._lead_iter is not None:
            if offset == self.lead_end and end > offset:
                self._lead_queue.append((self._pool().submit(self._open_alone, offset, end - offset), end))
            return
        if self._started and (not self.ranged or (self._size is not None and offset >= self._size)):
            return
        if self._size is not None:
            end = min(end, self._size)
        gaps = self._gaps(offset, end) if self._started else [(offset, end)]
        if len(gaps) != 1:
            return self.prefetch([(offset, end)])
        offset, end = gaps[0]
        response = self._open(offset, end - offset, self._lead)
        if response is None:  # Range ignored: the no-Range stream took over
            self._lead.close()
            return
        if self._size is not None:
            end = min(end, self._size)
        self._lead_i, self._lead_to = self._held.growing(offset), end
        self._lead_iter = response.iter_bytes(1 << 16)

    @property
    def lead_end(self) -> int:
        """Where the open streamed reads (queued ones included) end; 0 when none is open."""
        if self._lead_iter is None:
            return 0
        return self._lead_queue[-1][1] if self._lead_queue else self._lead_to

    def streaming(self, offset: int) -> bool:
        """Whether the open streamed reads will bring the byte at `offset`."""
        return self._lead_iter is not None and self._held.starts[self._lead_i] <= offset < self.lead_end

    def end_lead(self) -> None:
        """Close the streamed reads: the reader has what it needs (queued requests are dropped)."""
        if self._lead_iter is None:
            return
        self._lead_iter = None
        self._lead.close()
        for future, _ in self._lead_queue:
            future.add_done_callback(_close_opened)
        self._lead_queue.clear()
        self._held.settle(self._lead_i)

    def pull(self, end: int) -> None:
        """Read the streamed requests until they hold up to `end` (or all they were asked for)."""
        if self._lead_iter is None:
            return
        block, block_start = self._held.blocks[self._lead_i], self._held.starts[self._lead_i]
        assert isinstance(block, bytearray)
        try:
            while block_start + len(block) < min(end, self.lead_end):
                chunk = next(self._lead_iter, None)
                if chunk is not None:
                    block += chunk
                    with self._lock:
                        self.bytes_fetched += len(chunk)
                    continue
                if block_start + len(block) < self._lead_to or not self._lead_queue:
                    self.end_lead()  # the server sent less than asked: ranged reads fetch the rest
                    return
                future, self._lead_to = self._lead_queue.pop(0)
                stack, response = future.result()
                self._lead.enter_context(stack)
                self._lead_iter = response.iter_bytes(1 << 16)
        except FitcheckError:
            self.end_lead()
            raise
        except Exception as exc:
            self.end_lead()
            raise transport.failure(exc, self.what, has_token=False) from None
        if block_start + len(block) >= self.lead_end or end > self.lead_end:
            self.end_lead()  # all of it arrived, or more than it holds is wanted: ranged reads go on

    def _open_alone(self, offset: int, want: int) -> tuple[ExitStack, Any]:
        """`_open` on a worker thread: the response and the stack that closes it."""
        stack = ExitStack()
        try:
            response = self._open(offset, want, stack)
        except BaseException:
            stack.close()
            raise
        if response is None:
            stack.close()
            raise HubError(f"{self.what}: the server stopped honouring Range requests", hint=None)
        return stack, response

    def _pool(self) -> ThreadPoolExecutor:
        if self._lead_pool is None:
            self._lead_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fitcheck-stream")
        return self._lead_pool

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
        self.pull(offset + length)
        found = self.peek(offset, length)
        if found is not None:
            return found
        gaps = self._gaps(offset, offset + length)
        last_start, last_end = gaps[-1]  # grown by the policy, up to the next block we already hold
        grown = last_start + max(last_end - last_start, self._policy(offset))
        following = self._held.next_start(last_start)
        if following is not None:
            grown = min(grown, following)
        gaps[-1] = (last_start, max(last_end, grown))
        self._fetch_all(gaps)
        if not self.ranged:
            return self._read_stream(offset, length)
        found = self.peek(offset, length)
        if found is None:
            raise HubError(f"{self.what}: the server sent fewer bytes than asked for", hint=None)
        return found

    def close(self) -> None:
        self.end_lead()
        if self._lead_pool is not None:
            self._lead_pool.shutdown(wait=False)
        self._stream.close()
        self._stream_iter = None

    # -- planned reads ----------------------------------------------------------------------------------------
    def peek(self, offset: int, length: int) -> bytes | None:
        """Bytes [offset, offset + length) if already fetched (clipped at the end of the file), else None."""
        if self._size is not None:
            length = max(0, min(length, self._size - offset))
        return self._held.peek(offset, length)

    def block_at(self, offset: int) -> tuple[int, bytes | bytearray] | None:
        """The fetched block holding `offset`, as (its start, its bytes)."""
        return self._held.block_at(offset)

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Fetch the parts of these [start, end) ranges not held yet, concurrently, one request per gap."""
        if not self._started:
            self.start()
        if not self.ranged:
            return
        ranges = list(ranges)
        if ranges:
            self.pull(max(end for _, end in ranges))
        gaps = [g for start, end in ranges for g in self._gaps(start, end)]
        if gaps:
            self.end_lead()  # what is missing lies past the streamed read's range
        self._fetch_all(_merge(gaps, 0))

    # -- internals ------------------------------------------------------------------------------------------
    @staticmethod
    def _policy(offset: int) -> int:
        return max(MIN_REQUEST, int(offset * GROWTH))

    def _gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) (clipped at the end of the file) that no block holds."""
        if self._size is not None:
            end = min(end, self._size)
        return self._held.gaps(start, end)

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
        if self.ranged:
            self._held.store(offset, data)

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
            response = self._open(offset, want, stack)
            if response is None:
                return b""
            try:
                data = response.read()
            except Exception as exc:
                raise transport.failure(exc, self.what, has_token=False) from None
        with self._lock:
            self.bytes_fetched += len(data)
        return bytes(data)

    def _open(self, offset: int, want: int, stack: ExitStack) -> Any:
        """The response to a ranged GET of [offset, offset + want), its body not read yet (open until `stack`
        closes), or None when the server ignored Range and the no-Range stream took the response over."""
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
            return None
        content_range = response.headers.get("Content-Range")
        total, start = _content_range_total(content_range), _content_range_start(content_range)
        if start is not None and start != offset:
            raise HubError(f"{self.what}: the server answered a different byte range", hint=None)
        if total is not None:
            with self._lock:
                self._size = total
        return response

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


def _close_opened(future: Future[tuple[ExitStack, Any]]) -> None:
    """A queued request that is no longer wanted: closed as soon as it is open."""
    if not future.cancelled() and future.exception() is None:
        future.result()[0].close()


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
