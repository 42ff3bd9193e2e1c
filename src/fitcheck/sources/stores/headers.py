"""Local GGUF headers through fitcheck's disk cache, keyed by (real path, size, mtime_ns): a second scan of a
store re-parses nothing, and a file that changed (or was replaced) is read again. A file not cached yet shares
its tokenizer arrays with the sibling quants parsed before it (shared_arrays.py).

The cache entry lives in fitcheck's cache folder (sources/cache.py), never next to the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...errors import InputError
from ...model import ModelSpec
from ...text import shown
from .. import cache
from ..gguf import build_spec
from ..gguf_header import GGUFHeader
from ..shared_arrays import parse_file
from ..types import Location, Model

KIND = "local-gguf"


def _key(path: str, st: os.stat_result) -> tuple[str, str, str]:
    return os.path.realpath(path), str(st.st_size), str(st.st_mtime_ns)


def read_header(path: str) -> tuple[GGUFHeader, int]:
    """(header, file size) of one file, from the cache when the file is unchanged."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{shown(path, 200)}: cannot read ({shown(exc.strerror or exc)})") from exc
    key = _key(path, st)
    stored = cache.get(KIND, *key)
    if isinstance(stored, dict):
        if isinstance(stored.get("error"), str):  # this very file was refused before: the same answer
            raise InputError(stored["error"])
        try:
            return cache.header_from_json(stored), st.st_size
        except (KeyError, TypeError, ValueError):
            pass  # an entry from another version: read the file again
    try:
        header = parse_file(path).header
    except OSError as exc:
        raise InputError(f"{shown(path, 200)}: cannot read ({shown(exc.strerror or exc)})") from exc
    except InputError as exc:  # not a GGUF, corrupt: remembered too, so a warm scan re-reads nothing
        cache.put(KIND, {"error": str(exc)}, *key)
        raise
    cache.put(KIND, cache.header_to_json(header), *key)
    return header, st.st_size


def load_cached(paths: Sequence[str], *, ref: str) -> ModelSpec:
    """A ModelSpec from one file or every shard of a split model (first shard first)."""
    return build_spec(ref, [read_header(p) for p in paths])


def local_model(paths: Sequence[str], *, ref: str, model_arg: list[str] | None = None) -> Model:
    """A Model read from local files (every shard located, so its headers can be read again)."""
    return Model(load_cached(paths, ref=ref), model_arg or ["-m", paths[0]], tuple(Location(p) for p in paths))
