"""fitcheck's on-disk cache of what remote sources read (listings, GGUF headers, JSON, safetensors headers).

One JSON file per entry under FITCHECK_CACHE_DIR (else $XDG_CACHE_HOME/fitcheck), named by a hash of its key;
the key is stored inside and checked on read, so a hash collision or an older format reads as a miss. Keys
name the content (a commit and a content hash, or an ETag that is revalidated), so entries never go stale.
`cached()` is the one place that decides between the cache, the network and HF_HUB_OFFLINE.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..cachedir import cache_dir
from ..errors import HubError
from . import settings

if TYPE_CHECKING:  # imported where headers are encoded: a listing alone needs none of it
    from .gguf_header import GGUFHeader

CACHE_FORMAT = 1
T = TypeVar("T")


def _key_path(kind: str, *parts: str) -> Path:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]
    return cache_dir() / kind / f"{digest}.json"


def get(kind: str, *parts: str) -> Any | None:
    path = _key_path(kind, *parts)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("format") != CACHE_FORMAT or data.get("key") != list(parts):
        return None
    return data.get("value")


def put(kind: str, value: Any, *parts: str) -> None:
    """Best effort: a cache that cannot be written costs only speed."""
    path = _key_path(kind, *parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # written whole, then renamed: readers never see half
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": list(parts), "value": value}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _same(value: Any) -> Any:
    return value


def cached(kind: str, key: Sequence[str], fetch: Callable[[], T], *, what: str, noun: str = "",
           encode: Callable[[T], Any] = _same, decode: Callable[[Any], T] = _same,
           offline_hint: str = settings.OFFLINE_HINT, reuse_online: bool = True,
           still_valid: Callable[[Any], bool] | None = None, keep: Callable[[T], bool] | None = None) -> T:
    """The entry under (kind, key), else `fetch()` (then stored); offline, the entry or a HubError.

    - `reuse_online=False`: the entry is only an offline fallback (a branch's listing moves; fetch it online).
    - `still_valid(stored)`: asked online before a stored entry is used (a plain URL's ETag, by one HEAD).
    - `keep(result)`: whether a fetched result may be stored (only when its key names its content).
    - `noun`: what is missing, in the offline message (`hf:org/repo/x.gguf: header not in fitcheck's cache…`).
    """
    offline = settings.offline()
    if offline or reuse_online:
        stored = get(kind, *key)
        if stored is not None and (offline or still_valid is None or still_valid(stored)):
            try:
                return decode(stored)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                pass  # an entry this version cannot read (edited by hand, or damaged): a miss
    if offline:
        raise HubError(f"{what}: {noun + ' ' if noun else ''}{settings.NOT_CACHED}", hint=offline_hint)
    result = fetch()
    if keep is None or keep(result):
        put(kind, encode(result), *key)
    return result


# -- GGUF headers as JSON ---------------------------------------------------------------------------------------

def header_to_json(header: GGUFHeader) -> dict[str, Any]:
    from .gguf_header import ArraySummary

    def enc(v: Any) -> Any:
        if isinstance(v, ArraySummary):
            return {"__array__": [v.element_type, v.count]}
        return v

    return {"version": header.version, "alignment": header.alignment, "header_bytes": header.header_bytes,
            "data_offset": header.data_offset, "metadata": {k: enc(v) for k, v in header.metadata.items()},
            "tensors": [[t.name, list(t.dims), t.type_id, t.offset] for t in header.tensors]}


def header_from_json(data: dict[str, Any]) -> GGUFHeader:
    from .gguf_header import ArraySummary, GGUFHeader, TensorInfo

    def dec(v: Any) -> Any:
        if isinstance(v, dict) and "__array__" in v:
            return ArraySummary(*v["__array__"])
        return v

    return GGUFHeader(version=data["version"], metadata={k: dec(v) for k, v in data["metadata"].items()},
                      tensors=tuple(TensorInfo(n, tuple(d), t, o) for n, d, t, o in data["tensors"]),
                      alignment=data["alignment"], header_bytes=data["header_bytes"],
                      data_offset=data["data_offset"])
