"""A resumable walk over a GGUF header's structure that says which bytes the parser will need next, and how many.

This is the read planner's eyes, not a parser: it builds no values, decides nothing about validity and never
raises a user-facing error (anything odd ends planning, and gguf_header.parse_header reads the file the plain
way and reports). It walks the bytes fetched so far and stops at the first byte it lacks, with an estimate of
how much more the header holds, from what it already knows:

- a string array of N entries needs at least 8*N bytes, and its strings have the length seen so far in it
  (no less than a typical vocabulary string's);
- numeric arrays are seeked over by the parser: they cost nothing and are never requested;
- the tensor-info section has a known shape: per tensor a name (~25 bytes), dims, a type and an offset.

The walk also records the layout of the header's large arrays (position, count, extent and a digest of the
bytes at both boundaries): what lets other quants of the same model skip them (header_reads.py).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .gguf_header import GGML_MAX_DIMS, MAX_KV_COUNT, MAX_STRING_BYTES, MAX_TENSOR_COUNT, SMALL_ARRAY

_WIDTH = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
TYPICAL_STRING = {"tokenizer.ggml.merges": 11.0}  # bytes per string, without its 8-byte length
DEFAULT_STRING = 6.5  # a vocabulary token
TENSOR_INFO = 80  # bytes per tensor info, a little above a typical one ("blk.12.ffn_down.weight", 2 dims)
KV_TAIL = 256  # bytes per small metadata key still to come
TAIL_MARGIN = 32 * 1024  # chat templates and the like, after the last large array
MARGIN = 1.05  # strings further into an array run longer than the first ones: ask for a little more
# A BPE vocabulary ("gpt2") is followed by its token types and about as many merges as tokens: asked for
# together with the tokens, so that finding the merges costs no round trip of its own.
MERGES_PER_TOKEN = 1.0
BOUNDARY = 4096  # bytes at each end of a large array whose digest identifies it
_LEN = struct.Struct("<Q")


class Abort(Exception):
    """The walk met something it does not plan for: planning ends, the plain read takes over."""


class _Short(Exception):
    def __init__(self, at: int, need_end: int) -> None:
        self.at, self.need_end = at, need_end
        self.exact = False  # only these bytes (a boundary check), not an estimate of the rest


@dataclass(frozen=True)
class ArrayRun:
    """A large string array: its key record starts at `record`, its strings span [body, end)."""

    key: str
    count: int
    record: int
    body: int
    end: int
    head: str  # digest of bytes [record, min(body + BOUNDARY, end))
    tail: str  # digest of bytes [max(end - BOUNDARY, body), end)


@dataclass(frozen=True)
class Layout:
    """Where a header's large arrays are, and where the header ends: enough to plan another quant's read."""

    header_bytes: int
    strings: tuple[ArrayRun, ...]
    numeric: tuple[tuple[int, int], ...]  # [start, end) of the large numeric arrays the parser seeks over

    def to_json(self) -> dict[str, Any]:
        return {"header_bytes": self.header_bytes, "numeric": [list(n) for n in self.numeric],
                "strings": [[r.key, r.count, r.record, r.body, r.end, r.head, r.tail] for r in self.strings]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Layout:
        return Layout(int(data["header_bytes"]), tuple(ArrayRun(*r) for r in data["strings"]),
                      tuple((int(a), int(b)) for a, b in data["numeric"]))


@dataclass(frozen=True)
class Need:
    """The walk stopped at `start`; the header likely holds [start, end) still (at least up to `min_end`)."""

    start: int
    min_end: int
    end: int


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class Splice:
    """A large string array whose extent is known (walked here, or taken as a reference's): `count` strings
    spanning [body, end), which the parser need not walk again."""

    key: str
    body: int
    end: int
    count: int
    shared: bool  # taken from a reference, not walked


@dataclass
class Scanner:
    """`advance()` until it returns None; then `layout()` and `splices` are final."""

    block_at: Callable[[int], tuple[int, bytes | bytearray] | None]  # the fetched block holding an offset
    size: int
    references: Sequence[Layout] = ()
    pos: int = 0
    splices: list[Splice] = field(default_factory=list)
    _phase: str = "prefix"
    _kv_left: int = 0
    _tensors: int = 0
    _t_left: int = 0
    _arr: dict[str, Any] | None = None  # the large string array being walked
    _runs: list[ArrayRun] = field(default_factory=list)
    _numeric: list[tuple[int, int]] = field(default_factory=list)
    _tokenizer: str = ""

    def advance(self) -> Need | None:
        """Walk as far as the fetched bytes go: None when the header is complete, else what to fetch next."""
        try:
            while self._phase != "done":
                self._step()
        except _Short as short:
            end = short.need_end if short.exact else max(short.need_end, short.at + self._estimate())
            return Need(short.at, min(self.size, short.need_end), min(self.size, end))
        except (struct.error, UnicodeDecodeError, IndexError, ValueError) as exc:
            raise Abort(str(exc)) from None
        return None

    def layout(self) -> Layout:
        return Layout(self.pos, tuple(self._runs), tuple(self._numeric))

    # -- reading --------------------------------------------------------------------------------------------
    def _bytes(self, at: int, n: int) -> bytes:
        if n < 0 or at + n > self.size:
            raise Abort(f"{n} bytes at {at} run past the end of the file")
        found = self.block_at(at)
        if found is not None:
            start, block = found
            if at + n <= start + len(block):
                return bytes(block[at - start:at + n - start])
        raise _Short(at, at + n)

    def _u32(self, at: int) -> int:
        return int(struct.unpack_from("<I", self._bytes(at, 4))[0])

    def _u64(self, at: int) -> int:
        return int(_LEN.unpack_from(self._bytes(at, 8))[0])

    def _string_end(self, at: int) -> int:
        length = self._u64(at)
        if length > MAX_STRING_BYTES:
            raise Abort(f"a string of {length} bytes")
        self._bytes(at + 8, length)
        return at + 8 + length

    # -- the walk -------------------------------------------------------------------------------------------
    def _step(self) -> None:
        if self._phase == "prefix":
            if self._bytes(0, 4) != b"GGUF" or self._u32(4) not in (2, 3):
                raise Abort("not a GGUF v2/v3 header")
            self._tensors, self._kv_left = self._u64(8), self._u64(16)
            if self._kv_left > MAX_KV_COUNT or self._tensors > MAX_TENSOR_COUNT:
                raise Abort("implausible counts")
            self._t_left, self.pos = self._tensors, 24
            self._phase = "kv" if self._kv_left else "tensors"
        elif self._arr is not None:
            if self._arr["splice"] and self._try_splice():
                return
            self._walk_strings()
        elif self._phase == "kv":
            self._kv()
        elif self._phase == "tensors":
            if self._t_left == 0:
                self._phase = "done"
                return
            at = self._string_end(self.pos)
            n_dims = self._u32(at)
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                raise Abort(f"{n_dims} dims")
            self._bytes(at + 4, 8 * n_dims + 12)
            self.pos = at + 4 + 8 * n_dims + 12
            self._t_left -= 1

    def _next_kv(self, end: int) -> None:
        self.pos = end
        self._kv_left -= 1
        if self._kv_left == 0:
            self._phase = "tensors"

    def _kv(self) -> None:
        record = self.pos
        at = self._string_end(record)
        key = self._bytes(record + 8, at - record - 8).decode("utf-8", errors="replace")
        type_id = self._u32(at)
        at += 4
        if type_id in _WIDTH:
            self._bytes(at, _WIDTH[type_id])
            return self._next_kv(at + _WIDTH[type_id])
        if type_id == _STRING:
            end = self._string_end(at)
            if key == "tokenizer.ggml.model":
                self._tokenizer = self._bytes(at + 8, end - at - 8).decode("utf-8", errors="replace")
            return self._next_kv(end)
        if type_id != _ARRAY:
            raise Abort(f"value type {type_id}")
        elem, count = self._u32(at), self._u64(at + 4)
        body = at + 12
        if elem in _WIDTH:
            end = body + count * _WIDTH[elem]
            if end > self.size:
                raise Abort("an array past the end of the file")
            if count > SMALL_ARRAY:
                self._numeric.append((body, end))  # seeked over by the parser: never fetched
            else:
                self._bytes(body, end - body)
            return self._next_kv(end)
        if elem != _STRING or body + 8 * count > self.size:
            raise Abort(f"array of type {elem}")
        self._arr = {"key": key, "record": record, "body": body, "left": count, "count": count, "seen": 0,
                     "seen_bytes": 0, "splice": count > SMALL_ARRAY and bool(self.references)}
        self.pos = body

    def _walk_strings(self) -> None:
        """Walk the current array's strings through the fetched bytes (a tight loop: 150k entries are common)."""
        arr = self._arr
        assert arr is not None
        pos, left, need = self.pos, arr["left"], 0
        found = self.block_at(pos)
        if found is not None and left:
            start, block = found
            rel = begin = pos - start
            n = len(block)
            n8, unpack, walked = n - 8, _LEN.unpack_from, left
            for i in range(left):  # the loop body is all the work: no checks it can do without
                if rel > n8:
                    walked = i
                    break
                nxt = rel + 8 + unpack(block, rel)[0]
                if nxt > n:  # runs past the block: fetched next round
                    walked, need = i, start + nxt
                    break
                rel = nxt
            arr["seen"] += walked
            arr["seen_bytes"] += rel - begin
            pos, left = start + rel, left - walked
            self.pos, arr["left"] = pos, left
            if left and max(need, pos + 8 * left) > self.size:
                raise Abort("a string array past the end of the file")
        if left:
            raise _Short(pos, max(need, pos + 8 * left))
        self._end_array()

    def _end_array(self) -> None:
        arr = self._arr
        assert arr is not None
        if arr["count"] > SMALL_ARRAY:
            record, body, end = arr["record"], arr["body"], self.pos
            head = self._bytes(record, min(body + BOUNDARY, end) - record)
            tail = self._bytes(max(end - BOUNDARY, body), end - max(end - BOUNDARY, body))
            self._runs.append(ArrayRun(arr["key"], arr["count"], record, body, end, digest(head), digest(tail)))
            if not self.splices or self.splices[-1].body != body:
                self.splices.append(Splice(arr["key"], body, end, arr["count"], False))
        self._arr = None
        self._next_kv(self.pos)

    def _try_splice(self) -> bool:
        """Take this array as a reference's when its position, count and boundary bytes all match."""
        arr = self._arr
        assert arr is not None
        for layout in self.references:
            for run in layout.strings:
                if (run.key, run.count, run.record, run.body) != (arr["key"], arr["count"], arr["record"], arr["body"]):
                    continue
                if run.end > self.size:
                    continue
                tail_at = max(run.end - BOUNDARY, run.body)
                try:
                    head = self._bytes(run.record, min(run.body + BOUNDARY, run.end) - run.record)
                    tail = self._bytes(tail_at, run.end - tail_at)
                except _Short as short:
                    short.exact = True  # just the boundary bytes: the array itself is not wanted
                    raise
                if digest(head) != run.head or digest(tail) != run.tail:
                    continue
                self.splices.append(Splice(run.key, run.body, run.end, run.count, True))
                self.pos = run.end
                self._end_array()
                return True
        arr["splice"] = False  # no reference matches: walk it
        return False

    # -- how much is left -----------------------------------------------------------------------------------
    def _estimate(self) -> int:
        """Bytes the rest of the header likely holds, from the stopping point."""
        rest = self._kv_left * KV_TAIL + self._t_left * TENSOR_INFO + TAIL_MARGIN
        arr = self._arr
        if arr is not None:
            seen = arr["seen_bytes"] / arr["seen"] - 8 if arr["seen"] else 0.0
            per = 8 + max(seen, TYPICAL_STRING.get(arr["key"], DEFAULT_STRING))
            rest += int(arr["left"] * per * MARGIN)
            if arr["key"] == "tokenizer.ggml.tokens" and self._tokenizer == "gpt2":
                merges = int(arr["count"] * MERGES_PER_TOKEN)
                rest += 4 * arr["count"] + int(merges * (8 + TYPICAL_STRING["tokenizer.ggml.merges"]))
        elif self._phase == "tensors":
            rest = self._t_left * TENSOR_INFO + 4096
        return rest
