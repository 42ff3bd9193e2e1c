"""Every kind of model reference to what the planner needs: one model, or a set of quants to compare.

- a local path (`x.gguf`, the first shard of a split model) -> one model, `-m path`
- `hf:org/repo/dir/file.gguf`, `hf:org/repo:Q4_K_M`, `hf:org/repo@rev...` -> one model, `-hf org/repo:QUANT`
- `hf:org/repo` -> every GGUF quant in the repo, or for a safetensors repo the native need and what-if quants
- `https://host/.../file.gguf` -> one model read by ranged requests, `-mu URL`
  (a Hub URL `{HF_ENDPOINT}/org/repo/resolve|blob/rev/path` is read as the matching `hf:` reference)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..errors import HubError, InputError
from ..model import ModelSpec

if TYPE_CHECKING:
    from . import hf

HUB_URL_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/(?:resolve|blob)/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class Model:
    """One model, and how llama.cpp would be pointed at it."""

    spec: ModelSpec
    model_arg: list[str]


@dataclass(frozen=True)
class Choice:
    """One row of a quant comparison."""

    quant: str
    file: str | None  # None for what-if rows of a safetensors repo
    size_bytes: int | None
    model: Model
    estimate: bool = False


@dataclass
class QuantSet:
    ref: str
    repo: str
    kind: str  # gguf | safetensors
    choices: list[Choice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_remote(ref: str) -> bool:
    return ref.startswith(("hf:", "http://", "https://"))


def resolve(ref: str, *, progress: hf.Progress | None = None,
            stats: list[dict[str, Any]] | None = None) -> Model | QuantSet:
    if ref.startswith("hf:"):
        from . import hf  # the Hub modules load only for Hub references: a local check stays fast

        return _resolve_hub(hf.parse_ref(ref[3:]), progress, stats)
    if ref.startswith(("http://", "https://")):
        hub_ref = _hub_url(ref)
        if hub_ref is not None:
            return _resolve_hub(hub_ref, progress, stats)
        return load_url(ref, stats)
    from .gguf import load_local

    return Model(load_local(ref), ["-m", ref])


def load_model(ref: str) -> Model:
    """A single model; a reference to a whole repo is an error here (use resolve())."""
    found = resolve(ref)
    if isinstance(found, QuantSet):
        raise InputError(f"{ref}: a repository with {len(found.choices)} models",
                         hint="name one quant: hf:org/repo:Q4_K_M")
    return found


def _hub_url(url: str) -> hf.HubRef | None:
    from . import hf

    if _origin(url) != _origin(hf.endpoint()):
        return None
    m = HUB_URL_RE.match(unquote(urlparse(url).path))
    if not m or not m["path"].lower().endswith(".gguf"):
        return None
    return hf.HubRef(m["repo"], None if m["rev"] == "main" else m["rev"], None, m["path"])


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlparse(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def _hf_arg(repo: str, label: str | None, path: str) -> list[str]:
    if label:
        return ["-hf", f"{repo}:{label}"]
    return ["-hf", repo, "-hff", path]


def _resolve_hub(ref: hf.HubRef, progress: hf.Progress | None,
                 stats: list[dict[str, Any]] | None) -> Model | QuantSet:
    from . import hf

    listing = hf.list_repo(ref.repo, ref.revision)
    groups = hf.gguf_groups(listing)
    notes = [f"revision {ref.revision} (commit {listing.commit[:12]}): llama.cpp's -hf reads the default branch"] \
        if ref.revision else []
    if ref.path:
        f = listing.get(ref.path)
        if f is None:
            raise HubError(f"{ref}: no file {ref.path} in the repository", hint=_available(groups))
        group = next((g for g in groups if g.path == ref.path), None) or hf.GGUFGroup((f,), hf.quant_label(f.path))
        return _single(listing, group, str(ref), notes, stats)
    if ref.tag:
        if not groups:
            raise HubError(f"{ref}: the repository has no GGUF files", hint="try hf:" + ref.repo)
        return _single(listing, hf.match_tag(groups, ref.tag, ref.repo), str(ref), notes, stats)
    if groups:
        loaded = hf.load_groups(listing, groups, progress=progress, stats=stats)
        qs = QuantSet(str(ref), ref.repo, "gguf", notes=notes + loaded.notes)
        for group, spec in loaded.specs:
            label = group.label or spec.file_type or os.path.basename(group.path)
            qs.choices.append(Choice(label, group.path, group.size,
                                     Model(spec, _hf_arg(ref.repo, group.label, group.path))))
        return qs
    from .safetensors import load_safetensors_repo

    return load_safetensors_repo(ref, listing, notes)


def _single(listing: hf.Listing, group: hf.GGUFGroup, ref: str, notes: list[str],
            stats: list[dict[str, Any]] | None) -> Model:
    from dataclasses import replace

    from . import hf

    spec = hf.group_spec(listing, group, ref, stats)
    if notes:
        spec = replace(spec, notes=spec.notes + tuple(notes))
    return Model(spec, _hf_arg(listing.repo, group.label, group.path))


def _available(groups: list[hf.GGUFGroup]) -> str:
    labels = sorted({g.label for g in groups if g.label})
    return "available quants: " + ", ".join(labels) if labels else "list the repo's files on the Hub"


def load_url(url: str, stats: list[dict[str, Any]] | None = None) -> Model:
    """A GGUF at a plain URL (and its sibling shards when split); cached by (url, etag)."""
    from . import http_source as http
    from .gguf import build_spec, split_names
    from .gguf_header import parse_header

    name = os.path.basename(urlparse(url).path)
    names = split_names(name)
    base = url.split("?", 1)[0].rsplit("/", 1)[0]
    urls = [f"{base}/{n}" for n in names] if names else [url]
    shards = []
    for u in urls:
        cached_etag = http.cache_get("url-etag", u)
        cached = http.cache_get("url", u, cached_etag) if cached_etag else None
        if http.offline() and cached is None:
            raise HubError(f"{http._public(u)}: not in fitcheck's cache and HF_HUB_OFFLINE is set",
                           hint="run once online, or unset HF_HUB_OFFLINE")
        if cached is not None and not http.offline():  # one HEAD tells whether the file changed
            response = http.send("HEAD", u, http.request_headers(False), http._public(u))
            if http._etag(response.headers) != cached_etag:
                cached = None
        if cached is not None:
            shards.append((http.header_from_json(cached["header"]), cached["size"]))
            continue
        source = http.RangedHttpSource(u, http._public(u), send_token=False)
        try:
            header = parse_header(source, os.path.basename(urlparse(u).path), readahead=http.PARSER_READAHEAD)
        finally:
            source.close()
        if stats is not None:
            stats.append({"file": u, "cached": False, "requests": source.requests,
                          "bytes_fetched": source.bytes_fetched, "header_bytes": header.header_bytes})
        if source.etag:
            http.cache_put("url-etag", source.etag, u)
            http.cache_put("url", {"header": http.header_to_json(header), "size": source.size}, u, source.etag)
        shards.append((header, source.size))
    return Model(build_spec(url, shards), ["-mu", url])
