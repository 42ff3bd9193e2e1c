"""The streaming header reader: formats, skipping, and corrupt input that must fail fast and small."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fitcheck.errors import InputError
from fitcheck.sources.gguf_header import ArraySummary, FileSource, parse_header
from tests import gguf_builder as synth


class CountingSource:
    """A ByteSource over bytes that records what was read (the HTTP reader's contract)."""

    def __init__(self, data: bytes, size: int | None = None) -> None:
        self.data, self._size = data, size if size is not None else len(data)
        self.bytes_read = 0
        self.reads = 0

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        chunk = self.data[offset:offset + length]
        self.bytes_read += len(chunk)
        self.reads += 1
        return chunk


def _tiny(make_gguf, **extra) -> Path:
    meta, tensors = synth.llama_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    meta.update(extra)
    return make_gguf("tiny", "llama", meta, tensors)


def test_reads_metadata_and_tensor_infos(make_gguf):
    path = _tiny(make_gguf)
    with FileSource(str(path)) as src:
        header = parse_header(src, path.name)
    assert header.version == 3
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["llama.block_count"] == 2
    names = [t.name for t in header.tensors]
    assert names[0] == "token_embd.weight" and "output.weight" in names
    embd = header.tensors[0]
    assert embd.dims == (256, 300) and embd.offset == 0
    assert header.data_offset % 32 == 0 and header.data_offset >= header.header_bytes


def test_version_2_is_read(make_gguf):
    data = bytearray(_tiny(make_gguf).read_bytes())
    data[4:8] = struct.pack("<I", 2)
    header = parse_header(CountingSource(bytes(data)), "v2.gguf")
    assert header.version == 2 and header.metadata["llama.block_count"] == 2


def test_custom_alignment(make_gguf):
    path = _tiny(make_gguf, **{"general.alignment": 64})
    with FileSource(str(path)) as src:
        header = parse_header(src, path.name)
    assert header.alignment == 64 and header.data_offset % 64 == 0


def test_long_string_arrays_are_walked_not_built(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=1, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=20000)
    path = make_gguf("vocab", "llama", meta, tensors)
    with FileSource(str(path)) as src:
        header = parse_header(src, path.name)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArraySummary) and len(tokens) == 20000


def test_long_numeric_arrays_are_skipped_without_reading(make_gguf):
    path = _tiny(make_gguf, **{"test.big": list(range(200_000))})
    data = path.read_bytes()
    src = CountingSource(data)
    header = parse_header(src, path.name, readahead=4096)
    assert isinstance(header.metadata["test.big"], ArraySummary)
    assert header.metadata["test.big"].count == 200_000
    assert src.bytes_read < 200_000 * 4 / 2  # the 800 kB array was seeked over


def test_not_gguf(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"PK\x03\x04 this is a zip")
    with FileSource(str(path)) as src, pytest.raises(InputError, match="not a GGUF"):
        parse_header(src, path.name)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with FileSource(str(path)) as src, pytest.raises(InputError):
        parse_header(src, path.name)


@pytest.mark.parametrize("cut", [6, 20, 100, 1000, -10])
def test_truncated_header(make_gguf, cut):
    data = _tiny(make_gguf).read_bytes()
    header_end = parse_header(CountingSource(data), "ok").header_bytes
    with pytest.raises(InputError, match=r"not a valid GGUF header|not a GGUF"):
        parse_header(CountingSource(data[:cut if cut > 0 else header_end + cut]), "cut.gguf")


def test_unsupported_version(make_gguf):
    data = bytearray(_tiny(make_gguf).read_bytes())
    data[4:8] = struct.pack("<I", 7)
    with pytest.raises(InputError, match="version 7"):
        parse_header(CountingSource(bytes(data)), "v7.gguf")


def _corrupt_first_key_length(data: bytes, length: int) -> bytes:
    return data[:24] + struct.pack("<Q", length) + data[32:]


@pytest.mark.parametrize("length", [2**63, 2**40, 10**9])
def test_huge_string_length_fails_without_allocating(make_gguf, length):
    data = _corrupt_first_key_length(_tiny(make_gguf).read_bytes(), length)
    src = CountingSource(data)
    with pytest.raises(InputError, match=r"past the end|bytes"):
        parse_header(src, "corrupt.gguf")
    assert src.bytes_read <= len(data)


def test_huge_counts_fail_fast(make_gguf):
    data = bytearray(_tiny(make_gguf).read_bytes())
    data[8:16] = struct.pack("<Q", 2**62)  # tensor count
    with pytest.raises(InputError, match="implausible"):
        parse_header(CountingSource(bytes(data)), "corrupt.gguf")
    data = bytearray(_tiny(make_gguf).read_bytes())
    data[16:24] = struct.pack("<Q", 500_000)  # metadata count larger than the file can hold
    with pytest.raises(InputError):
        parse_header(CountingSource(bytes(data)), "corrupt.gguf")


def test_huge_array_length_fails_without_allocating(make_gguf):
    path = _tiny(make_gguf, **{"a.small": [1, 2, 3]})
    data = path.read_bytes()
    at = data.index(b"a.small") + len(b"a.small") + 4 + 4  # value type, element type
    corrupt = data[:at] + struct.pack("<Q", 2**50) + data[at + 8:]
    with pytest.raises(InputError, match="past the end"):
        parse_header(CountingSource(corrupt), "corrupt.gguf")


def test_unknown_size_source_still_bounded(make_gguf):
    data = _corrupt_first_key_length(_tiny(make_gguf).read_bytes(), 2**40)
    src = CountingSource(data)
    src._size = None  # a server that did not say how big the file is
    with pytest.raises(InputError):
        parse_header(src, "nosize.gguf")
