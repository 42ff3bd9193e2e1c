"""A streaming GGUF header parser over any random-access byte source.

Written by hand because gguf.GGUFReader memory-maps the whole file and builds every array, including the
tensor data and 150k tokenizer strings: here only the metadata and tensor infos are read, large arrays are
skipped (numeric ones by seeking, so a ranged HTTP source never fetches them), and every length from the
file is checked against the bytes that can exist before anything is allocated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InputError
from ..text import shown

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
MAX_KV_COUNT = 1 << 20
MAX_TENSOR_COUNT = 1 << 24
MAX_STRING_BYTES = 1 << 24  # a single metadata string (chat templates are ~10 KiB)
MAX_NAME_BYTES = 1 << 16  # a key or a tensor name (real ones are under 100 bytes; ggml's tensor names under 64)
SMALL_ARRAY = 4096  # arrays up to this many elements are kept; longer ones are summarised
UNKNOWN_SIZE_CAP = 1 << 36  # sanity bound when the source cannot tell its size

# GGUF value types: id -> (name, struct format or None for string/array)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class ByteSource(Protocol):
    """Random access to a file's bytes: a local file or a ranged HTTP reader."""

    @property
    def size(self) -> int | None: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`; fewer only at the end of the data."""
        ...


@dataclass(frozen=True)
class ArraySummary:
    """A long array that was skipped, not read."""

    element_type: int
    count: int

    def __len__(self) -> int:
        return self.count


# (key, count, record, body) of a large string array -> the end of its strings when they are known (a sibling
# quant's, checked by the caller: sources/shared_arrays.py), else None: the parser walks them.
KnownExtent = Callable[[str, int, int, int], int | None]


@dataclass(frozen=True)
class StringRun:
    """A large string array as the parser met it: its key record at `record`, its strings in [body, end)."""

    key: str
    count: int
    record: int
    body: int
    end: int
    known: bool  # seeked over on a known extent, not walked


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ggml order: ne0 first
    type_id: int
    offset: int  # relative to the data section


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    header_bytes: int  # where the tensor infos end
    data_offset: int  # header_bytes padded to the alignment


class _Cursor:
    """Sequential reads with read-ahead over a ByteSource, and seeks that fetch nothing."""

    def __init__(self, source: ByteSource, name: str, readahead: int) -> None:
        self.source = source
        self.name = shown(name, 200)  # a file name or URL: untrusted text in every message
        self.readahead = readahead
        self.limit = source.size if source.size is not None else UNKNOWN_SIZE_CAP
        self.pos = 0
        self._buf = b""
        self._buf_start = 0

    def _corrupt(self, what: str) -> InputError:
        return InputError(f"{self.name}: not a valid GGUF header ({what} at byte {self.pos})",
                          hint="the file may be truncated or corrupt; re-download it")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.limit:
            raise self._corrupt(f"{what} runs past the end of the file")

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        rel = self.pos - self._buf_start
        if rel < 0 or rel + n > len(self._buf):
            want = min(max(n, self.readahead), self.limit - self.pos)
            self._buf = self.source.read_at(self.pos, want)
            self._buf_start = self.pos
            rel = 0
            if len(self._buf) < n:
                raise self._corrupt(f"{what} runs past the end of the data")
        self.pos += n
        return self._buf[rel:rel + n]

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n

    def unpack(self, fmt: str, what: str) -> Any:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size, what))[0]

    def string(self, what: str, limit: int = MAX_STRING_BYTES) -> str:
        length = self.unpack("Q", what + " length")
        if length > limit:
            self.need(length, what)  # a real file may have it; a corrupt length fails here, unallocated
            raise self._corrupt(f"{what} of {length} bytes")
        return self.take(length, what).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        """Walk `count` length-prefixed strings without decoding them (tokenizer vocabularies).

        A tight loop over the buffer with locals only: 150k tokens must cost milliseconds, not a Python
        object or a method call each.
        """
        unpack_length = struct.Struct("<Q").unpack_from
        pos, limit, left = self.pos, self.limit, count
        while left:
            if not self._buf_start <= pos <= self._buf_start + len(self._buf) - 8:
                self.pos = pos
                self.take(8, what)  # refills the buffer from pos
                self.pos = pos
            buf, start = self._buf, self._buf_start
            # The hot loop checks only the buffer's end; a length that jumps past it ends the loop, and the
            # file-end check below catches a corrupt one before anything is read there.
            last, rel, done = len(buf) - 8, pos - start, 0
            for _ in range(left):
                if rel > last:
                    break
                rel += 8 + unpack_length(buf, rel)[0]
                done += 1
            left -= done
            if start + rel > limit:
                self.pos = self._string_past(buf, start, pos - start, limit)
                raise self._corrupt(f"{what} runs past the end of the file")
            pos = start + rel
        self.pos = pos

    @staticmethod
    def _string_past(buf: bytes, start: int, rel: int, limit: int) -> int:
        """Where the string that runs past `limit` begins (its text, after the length): the error path only."""
        while True:
            end = rel + 8 + struct.unpack_from("<Q", buf, rel)[0]
            if start + end > limit:
                return start + rel + 8
            rel = end


@dataclass
class _Arrays:
    """What parse_header knows of large string arrays (`known`) and what it met (`runs`)."""

    known: KnownExtent | None
    runs: list[StringRun] | None
    record: int = 0  # where the current key record starts
    raw_key: str = ""

    def skip(self, cur: _Cursor, count: int, label: str) -> None:
        body = cur.pos
        end = self.known(self.raw_key, count, self.record, body) if self.known is not None else None
        if end is not None and body + 8 * count <= end <= cur.limit:
            cur.skip(end - body, label)  # a wrong extent makes the next key unreadable: the caller reads plainly
        else:
            end = None
            cur.skip_strings(count, label)
        if self.runs is not None:
            self.runs.append(StringRun(self.raw_key, count, self.record, body, cur.pos, end is not None))


def _value(cur: _Cursor, type_id: int, key: str, arrays: _Arrays | None = None) -> Any:
    if type_id in _SCALARS:
        return cur.unpack(_SCALARS[type_id], key)
    if type_id == _STRING:
        return cur.string(key)
    if type_id == _ARRAY:
        elem_type = cur.unpack("I", key + " array type")
        count = cur.unpack("Q", key + " array length")
        if elem_type in _SCALARS:
            width = struct.calcsize("<" + _SCALARS[elem_type])
            cur.need(count * width, key)
            if count > SMALL_ARRAY:
                cur.skip(count * width, key)
                return ArraySummary(elem_type, count)
            return list(struct.unpack(f"<{count}{_SCALARS[elem_type]}", cur.take(count * width, key)))
        if elem_type == _STRING:
            cur.need(count * 8, key)  # each string has at least its 8-byte length
            if count > SMALL_ARRAY:
                if arrays is not None:
                    arrays.skip(cur, count, key)
                else:
                    cur.skip_strings(count, key)
                return ArraySummary(elem_type, count)
            return [cur.string(key) for _ in range(count)]
        raise cur._corrupt(f"{key}: unsupported array element type {elem_type}")
    raise cur._corrupt(f"{key}: unknown value type {type_id}")


def parse_header(source: ByteSource, name: str, readahead: int = 1 << 20, *, known: KnownExtent | None = None,
                 runs: list[StringRun] | None = None) -> GGUFHeader:
    """Parse metadata and tensor infos; never touches the tensor data.

    `known`: extents of large string arrays the parser may seek over instead of walking (their contents are
    never kept either way: the header is the same); `runs`: filled with each large string array met."""
    arrays = _Arrays(known, runs) if known is not None or runs is not None else None
    cur = _Cursor(source, name, readahead)
    if (source.size is not None and source.size < 4) or cur.take(min(4, cur.limit), "magic") != GGUF_MAGIC:
        raise InputError(f"{cur.name}: not a GGUF file (no GGUF magic)",
                         hint="fitcheck reads .gguf files; convert safetensors with llama.cpp's convert_hf_to_gguf.py")
    version = cur.unpack("I", "version")
    if version not in (2, 3):
        raise InputError(f"{cur.name}: unsupported GGUF version {version}", hint="fitcheck reads GGUF v2 and v3")
    n_tensors = cur.unpack("Q", "tensor count")
    n_kv = cur.unpack("Q", "metadata count")
    if n_kv > MAX_KV_COUNT or n_tensors > MAX_TENSOR_COUNT:
        raise cur._corrupt(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    cur.need(n_kv * 13, "metadata")  # key length (8) + 1-byte key + type (4), at least

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        record = cur.pos
        key = cur.string("metadata key", MAX_NAME_BYTES)
        label = shown(key)  # the key in messages: escaped and cut
        type_id = cur.unpack("I", label + " type")
        if arrays is not None:
            arrays.record, arrays.raw_key = record, key
        metadata[key] = _value(cur, type_id, label, arrays)

    cur.need(n_tensors * 29, "tensor infos")  # name length, n_dims, one dim, type, offset, at least
    tensors = []
    for _ in range(n_tensors):
        tname = cur.string("tensor name", MAX_NAME_BYTES)
        label = shown(tname)
        n_dims = cur.unpack("I", label + " n_dims")
        if not 1 <= n_dims <= GGML_MAX_DIMS:
            raise cur._corrupt(f"tensor {label} has {n_dims} dimensions")
        dims = struct.unpack(f"<{n_dims}Q", cur.take(8 * n_dims, label + " dims"))
        type_id = cur.unpack("I", label + " type")
        offset = cur.unpack("Q", label + " offset")
        tensors.append(TensorInfo(tname, tuple(dims), type_id, offset))

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (isinstance(alignment, bool) or not isinstance(alignment, int) or not 0 < alignment < 1 << 32
            or alignment & (alignment - 1)):
        raise cur._corrupt(f"general.alignment {shown(alignment)} is not a power of two")
    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    return GGUFHeader(version, metadata, tuple(tensors), alignment, cur.pos, data_offset)


class FileSource:
    """A local file as a ByteSource (reads only what the parser asks for)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/context manager
        self._file.seek(0, 2)
        self._size = self._file.tell()

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(length)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
