"""Sibling quants on this machine share their tokenizer arrays, as Hub quants do (header_reads.py).

Quants of one model carry the same vocabulary (and merges) at the same offsets: walking 300k length-prefixed
strings is most of a local parse (~25 ms of ~28 ms for a 150k-token header). Each large string array a parse
walks is recorded in fitcheck's cache folder (never next to the model) under its key, its count and the
offsets of its key record and its strings, with its end and the digests of the bytes at both its boundaries
(header_scan.ArrayRun, digest, BOUNDARY: the remote rule). When a later parse meets an array with the same
key, count and offsets, the few KB at both boundaries are read from the file; when their digests match, the
parser seeks to the recorded end instead of walking.

What that rule does and does not prove: an array's contents are never used (the header keeps a long array
as its element type and count only), so a vocabulary that differs only in its middle, with the same count,
the same boundary bytes and the same extent, gives exactly the header a walk gives. One whose middle is
longer or shorter leaves the recorded end's boundary bytes elsewhere: no match, walked. A wrong extent that
matched anyway would make the next key unreadable, and then the file is parsed again the plain way (any
doubt: the plain read). A different count is a different key: walked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from . import cache
from .gguf_header import ByteSource, FileSource, GGUFHeader, StringRun, parse_header
from .header_scan import BOUNDARY, ArrayRun, digest

KIND = "gguf-arrays"
MAX_VARIANTS = 8  # extents kept per (key, count, offsets): the newest first


@dataclass(frozen=True)
class Parsed:
    header: GGUFHeader
    size: int | None
    shared: tuple[str, ...]  # the keys of the arrays taken as a sibling's (seeked over, not walked)


def parse_file(path: str, name: str | None = None) -> Parsed:
    """One local file's header, sharing large arrays with the files parsed before it (OSError passes)."""
    with FileSource(path) as source:
        return parse_shared(source, name if name is not None else os.path.basename(path))


def parse_shared(source: ByteSource, name: str) -> Parsed:
    known = _Known(source)
    runs: list[StringRun] = []
    try:
        header = parse_header(source, name, known=known, runs=runs)
    except InputError:
        if not known.used:
            raise
        runs = []  # a shared extent led the parse astray: read the file the plain way, and let it judge
        header = parse_header(source, name, runs=runs)
    for run in runs:
        if not run.known:
            _record(source, run)
    return Parsed(header, source.size, tuple(r.key for r in runs if r.known))


def _index_key(key: str, count: int, record: int, body: int) -> tuple[str, ...]:
    return key, str(count), str(record), str(body)


def _boundaries(source: ByteSource, record: int, body: int, end: int) -> tuple[str, str] | None:
    head_end, tail_at = min(body + BOUNDARY, end), max(end - BOUNDARY, body)
    head = source.read_at(record, head_end - record)
    tail = source.read_at(tail_at, end - tail_at)
    if len(head) != head_end - record or len(tail) != end - tail_at:
        return None
    return digest(head), digest(tail)


def _variants(stored: Any) -> list[tuple[int, str, str]]:
    if not isinstance(stored, list):
        return []
    out = []
    for v in stored:
        if (isinstance(v, list) and len(v) == 3 and isinstance(v[0], int) and not isinstance(v[0], bool)
                and isinstance(v[1], str) and isinstance(v[2], str)):
            out.append((v[0], v[1], v[2]))
    return out


class _Known:
    """parse_header's `known`: a recorded extent whose boundary digests match this file's bytes."""

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.used = False

    def __call__(self, key: str, count: int, record: int, body: int) -> int | None:
        size = self.source.size
        for end, head, tail in _variants(cache.get(KIND, *_index_key(key, count, record, body))):
            run = ArrayRun(key, count, record, body, end, head, tail)
            if run.end < run.body + 8 * count or (size is not None and run.end > size):
                continue
            if _boundaries(self.source, record, body, run.end) == (run.head, run.tail):
                self.used = True
                return run.end
        return None


def _record(source: ByteSource, run: StringRun) -> None:
    """Remember a walked array for the next file (best effort: a cache that cannot be written costs speed)."""
    digests = _boundaries(source, run.record, run.body, run.end)
    if digests is None:
        return
    key = _index_key(run.key, run.count, run.record, run.body)
    variant = (run.end, *digests)
    old = [v for v in _variants(cache.get(KIND, *key)) if v != variant]
    cache.put(KIND, [list(v) for v in [variant, *old][:MAX_VARIANTS]], *key)
