"""Header-only sparse copies of a model: each shard's header bytes, extended to its full size with a hole.

llama.cpp checks only that every tensor's data lies inside the file (llama-model-loader.cpp: "tensor data is
not within the file bounds"); its memory-fit pass (no_alloc) never reads the data. So the first `data_offset`
bytes of each shard plus `os.truncate` to the shard's end load like the real file, occupying only the header
on disk. Copies are written only into a directory the caller owns (a fresh temporary one), never beside the
user's model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError, SourceError
from ..sources.types import Location
from ..text import shown


@dataclass(frozen=True)
class Shard:
    name: str  # the file name llama.cpp is given (a split model's shards are found by name)
    location: Location
    header_bytes: int  # where the tensor infos end
    data_offset: int  # header_bytes padded to the alignment: tensor data starts here
    size_bytes: int  # the end of the last tensor's data: the size llama.cpp checks against


def shards_of(files: tuple[Location, ...], extents: tuple[tuple[int, int, int], ...]) -> list[Shard]:
    """Pair each file of a model with its extents as its header gave them."""
    if not files or len(files) != len(extents):
        raise SourceError("--exact: this model's files are not known (a what-if quant, or read from a cache)",
                          hint="--exact needs a GGUF file: a local path, hf:org/repo:QUANT or a URL")
    return [Shard(_name(f), f, *extent) for f, extent in zip(files, extents, strict=True)]


def _name(location: Location) -> str:
    path = urlsplit(location.path).path if location.remote else location.path
    return os.path.basename(path) or "model.gguf"


def header_bytes(shard: Shard) -> bytes:
    """The shard's first data_offset bytes: read locally, or by one ranged request."""
    if not shard.location.remote:
        try:
            with open(shard.location.path, "rb") as f:
                data = f.read(shard.data_offset)
        except OSError as exc:
            raise InputError(f"{shown(shard.location.path, 200)}: cannot read ({shown(exc.strerror or exc)})") from exc
    else:
        from ..sources.ranged import RangedHttpSource
        from ..sources.transport import public

        source = RangedHttpSource(shard.location.path, public(shard.location.path),
                                  send_token=shard.location.send_token)
        try:
            source.start(shard.data_offset)  # the header range in one request
            data = source.read_at(0, shard.data_offset)
        finally:
            source.close()
    if shard.header_bytes <= len(data) < shard.data_offset:  # a header-only file may stop before its padding
        data += bytes(shard.data_offset - len(data))
    if len(data) != shard.data_offset:
        raise InputError(f"{shown(shard.name)}: header is {len(data):,} bytes, expected {shard.data_offset:,}",
                         hint="the file changed since it was read; run again")
    return data


def write_sparse(shard: Shard, header: bytes, directory: Path) -> Path:
    """Write `header` and extend the file to the shard's full size without writing the rest (a hole)."""
    path = directory / shard.name
    with open(path, "wb") as f:
        f.write(header)
    os.truncate(path, max(shard.size_bytes, len(header)))
    return path


def write_copies(shards: list[Shard], directory: Path) -> Path:
    """Every shard's sparse copy in `directory`; the path llama.cpp is given (the first shard)."""
    paths = [write_sparse(s, header_bytes(s), directory) for s in shards]
    return paths[0]


def disk_bytes(path: Path) -> int:
    """What a file occupies on disk (st_blocks counts 512-byte units on Linux and macOS)."""
    return os.stat(path).st_blocks * 512
