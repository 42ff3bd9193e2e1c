"""A GGUF at a plain URL (`https://host/.../x.gguf`, the first shard of a split model): `llama-server -mu URL`.

The header is read by ranged requests without a token (the URL is not the Hub's), and cached by URL with the
ETag it had; a later run spends one HEAD to see whether the file changed. The other shards of a split model
sit next to the first and share its query string (a signed URL signs each of them alike), but messages show
only the public part: the query can carry credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import cache, settings, transport
from .gguf import build_spec, split_names
from .gguf_header import GGUFHeader
from .header_reads import read_header
from .ranged import RangedHttpSource
from .types import Location, Model


@dataclass(frozen=True)
class _Read:
    header: GGUFHeader
    size: int | None
    etag: str | None


def shard_urls(url: str) -> list[str]:
    """Every shard's URL of a split model (the same query on each), or just `url`."""
    parts = urlsplit(url)
    folder, _, name = parts.path.rpartition("/")
    names = split_names(name)
    if not names:
        return [url]
    return [urlunsplit(parts._replace(path=f"{folder}/{n}")) for n in names]


def load_url(url: str, stats: list[dict[str, Any]] | None = None) -> Model:
    """The model at `url` (and its sibling shards when split)."""
    shards = [_read_shard(u, stats) for u in shard_urls(url)]
    files = tuple(Location(u, remote=True) for u in shard_urls(url))
    return Model(build_spec(url, [(r.header, r.size) for r in shards]), ["-mu", url], files)


def _read_shard(url: str, stats: list[dict[str, Any]] | None) -> _Read:
    what = transport.public(url)

    def fetch() -> _Read:
        source = RangedHttpSource(url, what, send_token=False)
        try:
            header = read_header(source, os.path.basename(urlsplit(url).path)).header  # planned: few round trips
        finally:
            source.close()
        if stats is not None:
            stats.append({"file": url, "cached": False, "requests": source.requests,
                          "bytes_fetched": source.bytes_fetched, "header_bytes": header.header_bytes})
        return _Read(header, source.size, source.etag)

    def unchanged(stored: dict[str, Any]) -> bool:  # one HEAD tells whether the file changed
        response = transport.send("HEAD", url, settings.request_headers(False), what)
        return transport.etag(response.headers) == stored["etag"]

    return cache.cached("url", (url,), fetch, what=what, encode=_to_json, decode=_from_json,
                        still_valid=unchanged, keep=lambda r: r.etag is not None)


def _to_json(read: _Read) -> dict[str, Any]:
    return {"etag": read.etag, "header": cache.header_to_json(read.header), "size": read.size}


def _from_json(data: dict[str, Any]) -> _Read:
    return _Read(cache.header_from_json(data["header"]), data["size"], data["etag"])
