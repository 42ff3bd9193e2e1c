"""Planned reads of a remote GGUF header: few round trips, and metadata shared between the quants of a model.

One file alone: a first request (64 KiB) shows the start of the header; header_scan.py walks what arrived and
says where it stopped and how much more there likely is (a 152k-token vocabulary needs at least 8 bytes a
token, and has tokens of the length seen so far); that much is asked for at once (a numeric array the parser
seeks over is never asked for by itself). A 6 MiB header costs 3 requests instead of 38.

Quants of one model (a repo's files, cached headers of the same repo) share their metadata byte for byte but a
few keys. Once one header has been read, its layout says where its large string arrays are; the next quant's
read asks, in one concurrent round, for only the bytes around them (the head and the tail of each, the small
keys, the tensor infos) and takes an array as the reference's only when its position, its count and the
digests of the bytes at both its boundaries all match. The parser then seeks over that array as it does over a
numeric one of the same extent, and the array's summary is set to what a walk gives (a long array is only its
element type and count: the strings are never kept), so the header is the one a full read returns. Arrays the
scan walked itself are passed over the same way: 300k tokenizer strings are walked once, not twice.

Any doubt (no match, a scan that stops making sense, a parse that disagrees with the scan) means the plain
read: the bytes are fetched and parsed as if no plan existed.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..errors import InputError
from .gguf_header import ArraySummary, GGUFHeader, parse_header
from .header_scan import BOUNDARY, Abort, Layout, Scanner, Splice
from .ranged import FIRST_REQUEST, PARSER_READAHEAD, RangedHttpSource

MIN_PLANNED = 64 * 1024  # no planned request asks for less (a round trip costs more than 64 KiB)
MAX_ROUNDS = 24  # a scan that needs more rounds than this is not going to plan: read plainly
TAIL_SLACK = 16 * 1024  # a quant's header may run a little past its reference's (quantization keys)
FOLLOWER_FIRST = 16 * 1024  # a quant waiting for its reference asks for this much meanwhile
FIRST_STREAM = 2 << 20  # the first request's range: a small header in one request; a large one's next
#                         request is sent before these bytes are all in (at 50 ms and 100 Mbit/s 2 MiB take ~170 ms)
STREAM_FROM = 1 << 20  # a planned read this large is streamed with a margin (no top-up round trip)
STREAM_MARGIN = 1.25  # the scan's estimates of real vocabularies run up to ~10% short
PULL_STEP = 256 * 1024  # a streamed read is consumed in steps like this, so it stops soon after the header
_UINT8, _STRING = 0, 8  # GGUF value types


@dataclass
class Read:
    header: GGUFHeader
    layout: Layout | None  # None when the plan was dropped
    shared: bool  # large arrays taken from a reference


def read_header(source: RangedHttpSource, name: str, references: Sequence[Layout] = ()) -> Read:
    """The header behind `source`, read by plan (see the module docstring); errors are the parser's."""
    if references:
        source.start(FOLLOWER_FIRST)
    else:  # one streamed request: the scan reads its start, and the rest follows without another round trip
        source.stream(0, FIRST_STREAM)
        source.pull(FIRST_REQUEST)
    try:
        return _read(source, name, references)
    finally:
        source.end_lead()


def _read(source: RangedHttpSource, name: str, references: Sequence[Layout]) -> Read:
    size = source.size
    if not source.ranged or size is None:
        return Read(parse_header(source, name, readahead=PARSER_READAHEAD), None, False)
    if references:
        source.prefetch(reference_ranges(references[0], size))
    scanner = Scanner(source.block_at, size, references)
    try:
        rounds = 0
        while (need := scanner.advance()) is not None:
            end = need.end if need.end - need.start <= BOUNDARY * 2 else max(need.end, need.start + MIN_PLANNED)
            if not references and end - need.start >= STREAM_FROM and end > source.lead_end:
                # the scan's estimate of the rest and a margin more: one request, read only as far as needed
                # (one that continues the open stream is sent now, while the stream's bytes still arrive)
                stream_from = source.lead_end if source.streaming(need.start) else need.start
                source.stream(stream_from, need.start + int((end - need.start) * STREAM_MARGIN))
            if source.streaming(need.start):  # bytes on their way: read some more, no new round trip
                source.pull(max(need.min_end, need.start + PULL_STEP))
                continue
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise Abort("too many rounds")
            source.prefetch([(need.start, end)])
    except Abort:
        return Read(parse_header(source, name, readahead=PARSER_READAHEAD), None, False)
    layout = scanner.layout()
    source.end_lead()  # every byte the header needs is in: stop the transfer before parsing
    virtual = VirtualSource(source, scanner.splices, [*layout.numeric, (layout.header_bytes, size)])
    try:
        header = _restore(parse_header(virtual, name, readahead=PARSER_READAHEAD), scanner.splices)
        if header is not None and header.header_bytes == layout.header_bytes:
            return Read(header, layout, any(s.shared for s in scanner.splices))
    except InputError:
        pass
    # the parse disagrees with the plan: read every byte the plain way (and let the parser judge them)
    return Read(parse_header(source, name, readahead=PARSER_READAHEAD), None, False)


def reference_ranges(layout: Layout, size: int) -> list[tuple[int, int]]:
    """The byte ranges a quant like `layout`'s needs: everything up to its header's end (and a little more) but
    the inside of its large string arrays and the numeric arrays the parser seeks over."""
    end = min(size, layout.header_bytes + TAIL_SLACK)
    holes = [(r.body + BOUNDARY, r.end - BOUNDARY) for r in layout.strings if r.end - r.body > 2 * BOUNDARY]
    holes += list(layout.numeric)
    ranges, pos = [], 0
    for start, stop in sorted(holes):
        if start > pos:
            ranges.append((pos, min(start, end)))
        pos = max(pos, stop)
    if pos < end:
        ranges.append((pos, end))
    return [(a, b) for a, b in ranges if b > a]


def _restore(header: GGUFHeader, splices: Sequence[Splice]) -> GGUFHeader | None:
    """The header with each spliced array's summary as a walk gives it; None if the parse did not see the
    stand-in where the scan put it (then the plan is dropped)."""
    metadata = dict(header.metadata)
    for s in splices:
        if metadata.get(s.key) != ArraySummary(_UINT8, s.end - s.body):
            return None
        metadata[s.key] = ArraySummary(_STRING, s.count)
    return replace(header, metadata=metadata)


class VirtualSource:
    """The fetched bytes, with the parts the parser never interprets supplied instead of fetched: a spliced
    string array's element type and count read as a byte array of its extent (the parser seeks over it), and
    fills (numeric arrays it seeks over, the spliced bodies, what follows the header's end) as zeros. Anything
    else missing is fetched by the underlying source."""

    def __init__(self, source: RangedHttpSource, splices: Sequence[Splice],
                 fills: Sequence[tuple[int, int]]) -> None:
        self._source = source
        regions: list[tuple[int, int, Callable[[int, int], bytes]]] = []
        for s in splices:
            regions.append((s.body - 12, s.body, _bytes_of(struct.pack("<IQ", _UINT8, s.end - s.body))))
            regions.append((s.body, s.end, _zeros))
        for start, end in fills:
            regions.append((start, end, _zeros))
        self._regions = sorted(regions, key=lambda r: r[0])

    @property
    def size(self) -> int | None:
        return self._source.size

    def read_at(self, offset: int, length: int) -> bytes:
        size = self._source.size
        end = offset + length if size is None else min(offset + length, size)
        out, pos = bytearray(), offset
        for start, stop, make in self._regions:
            if stop <= pos or start >= end:
                continue
            if start > pos:
                out += self._source.read_at(pos, start - pos)
                pos = start
            cut = min(stop, end)
            out += make(pos - start, cut - start)
            pos = cut
        if pos < end:
            out += self._source.read_at(pos, end - pos)
        return bytes(out)


def _bytes_of(data: bytes) -> Callable[[int, int], bytes]:
    return lambda a, b: data[a:b]


def _zeros(a: int, b: int) -> bytes:
    return bytes(b - a)


@dataclass
class SharedLayouts:
    """The layouts read so far in one repo (and its cached headers), for the quants still to read.

    One file is the leader: it is read in full, and the others wait for its layout (they are already fetching
    their first bytes meanwhile). A leader that fails, or a layout nothing matches, only costs the followers
    their plain planned read.
    """

    layouts: list[Layout] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    leader: str | None = None

    def __post_init__(self) -> None:
        if self.layouts:
            self._ready.set()

    def add(self, layout: Layout) -> None:
        with self._lock:
            if layout.strings and layout not in self.layouts:
                self.layouts.append(layout)

    def release(self) -> None:
        """The leader is done (read, cached or failed): the followers go on with what there is."""
        self._ready.set()

    def wait(self, timeout_s: float) -> list[Layout]:
        self._ready.wait(timeout_s)
        with self._lock:
            return list(self.layouts)
