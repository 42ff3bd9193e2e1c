"""Hugging Face Hub references: parse `hf:org/repo[@rev][:QUANT | /path.gguf]`, list the repo, read GGUF headers.

The listing is one `HfApi.model_info(files_metadata=True)` call: file sizes and content hashes (the LFS
sha256 is the file's ETag), and the commit every later read is pinned to. Headers are then read with ranged
requests (http_source.py) and cached on disk by (endpoint, repo, commit, path, etag); the listing is cached by
(endpoint, repo, revision) so HF_HUB_OFFLINE=1 works from the cache alone.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import FitcheckError, HubError, InputError
from ..model import ModelSpec
from . import http_source as http
from .gguf import build_spec, split_names
from .gguf_header import GGUFHeader, parse_header

Progress = Callable[[int, int, str], None]  # (done, total, what)

# Quant labels as the Hub and llama.cpp's `-hf repo:TAG` see them in file names (last match wins).
QUANT_RE = re.compile(r"(?<![A-Z0-9])((?:UD-)?(?:I?Q[1-8](?:_[0-9A-Z]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ[12]_0))"
                      r"(?![A-Z0-9])")
REPO_RE = re.compile(r"^[\w.-]+/[\w.-]+$")
SKIP_GGUF = ("mmproj", "imatrix")
MAX_WORKERS = 8


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str | None = None
    tag: str | None = None  # quant tag, as in llama.cpp's -hf org/repo:TAG
    path: str | None = None  # a file in the repo

    def __str__(self) -> str:
        text = "hf:" + self.repo + (f"@{self.revision}" if self.revision else "")
        return text + (f"/{self.path}" if self.path else "") + (f":{self.tag}" if self.tag else "")


def parse_ref(text: str) -> HubRef:
    """`org/repo`, `org/repo:Q4_K_M`, `org/repo/dir/file.gguf`, `org/repo@rev...` (text after `hf:`)."""
    body = text.strip()
    parts = body.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InputError(f"hf:{text}: expected hf:org/repo", hint="e.g. hf:Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M")
    org, rest = parts[0], "/".join(parts[1:])
    name, revision, tag, path = rest, None, None, None
    m = re.match(r"^(?P<name>[^/@:]+)(?:@(?P<rev>[^/:]+))?(?::(?P<tag>[^/]+)|/(?P<path>.+))?$", rest)
    if not m:
        raise InputError(f"hf:{text}: cannot read this reference",
                         hint="hf:org/repo, hf:org/repo:QUANT, hf:org/repo/file.gguf or hf:org/repo@revision")
    name, revision, tag, path = m["name"], m["rev"], m["tag"], m["path"]
    repo = f"{org}/{name}"
    if not REPO_RE.match(repo):
        raise InputError(f"hf:{text}: '{repo}' is not a repository id", hint="org/name, letters, digits, -_.")
    return HubRef(repo, revision, tag.upper() if tag else None, path)


@dataclass(frozen=True)
class RepoFile:
    path: str
    size: int | None
    etag: str | None


@dataclass(frozen=True)
class Listing:
    repo: str
    revision: str | None
    commit: str
    files: tuple[RepoFile, ...]

    def get(self, path: str) -> RepoFile | None:
        return next((f for f in self.files if f.path == path), None)


def endpoint() -> str:
    """HF_ENDPOINT read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), library_name="fitcheck", library_version=__version__)


def hub_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run a huggingface_hub call, turning its errors into one-line HubErrors."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return fn()
    except HfHubHTTPError as exc:
        response = exc.response
        status = response.status_code if response is not None else 0
        raise http.status_error(status, response.headers if response is not None else {}, what,
                                has_token=_has_token()) from None
    except FitcheckError:
        raise
    except Exception as exc:
        raise http.transport_error(exc, what) from None


def _has_token() -> bool:
    return "authorization" in {k.lower() for k in http.request_headers(True)}


def list_repo(repo: str, revision: str | None) -> Listing:
    key = (endpoint(), repo, revision or "main")
    if http.offline():
        cached = http.cache_get("listing", *key)
        if cached is None:
            raise HubError(f"hf:{repo}: not in fitcheck's cache and HF_HUB_OFFLINE is set",
                           hint="run once online, or unset HF_HUB_OFFLINE")
        return _listing_from(cached)
    info = hub_call(f"hf:{repo}", lambda: api().model_info(repo, revision=revision, files_metadata=True,
                                                           timeout=http.timeout_s()))
    files = []
    for s in info.siblings or []:
        etag = s.lfs.sha256 if s.lfs else s.blob_id
        files.append(RepoFile(s.rfilename, s.size, etag))
    listing = Listing(repo, revision, info.sha or revision or "main", tuple(files))
    http.cache_put("listing", {"repo": repo, "revision": revision, "commit": listing.commit,
                               "files": [[f.path, f.size, f.etag] for f in files]}, *key)
    return listing


def _listing_from(data: dict[str, Any]) -> Listing:
    return Listing(data["repo"], data["revision"], data["commit"], tuple(RepoFile(*f) for f in data["files"]))


# -- GGUF files in a repo ---------------------------------------------------------------------------------------

def quant_label(path: str) -> str | None:
    stem = os.path.basename(path)
    stem = re.sub(r"-\d{5}-of-\d{5}\.gguf$", "", stem, flags=re.I)
    stem = re.sub(r"\.gguf$", "", stem, flags=re.I)
    found = QUANT_RE.findall(stem.upper()) or QUANT_RE.findall(os.path.dirname(path).upper())
    return found[-1] if found else None


@dataclass(frozen=True)
class GGUFGroup:
    """One model in a repo: a single .gguf, or every shard of a split one."""

    files: tuple[RepoFile, ...]
    label: str | None
    missing: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.files[0].path

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    @property
    def name(self) -> str:
        return self.label or os.path.basename(self.path)


def gguf_groups(listing: Listing) -> list[GGUFGroup]:
    """Model GGUFs (not mmproj/imatrix), split shards grouped under their first shard."""
    by_path = {f.path: f for f in listing.files if f.path.lower().endswith(".gguf")}
    groups = []
    for path, f in sorted(by_path.items()):
        base = os.path.basename(path).lower()
        if base.startswith(SKIP_GGUF[0]) or SKIP_GGUF[1] in base:
            continue
        names = split_names(os.path.basename(path))
        if names is None:
            groups.append(GGUFGroup((f,), quant_label(path)))
            continue
        if names[0] != os.path.basename(path):
            continue  # a later shard: part of its first shard's group
        folder = os.path.dirname(path)
        paths = [f"{folder}/{n}" if folder else n for n in names]
        groups.append(GGUFGroup(tuple(by_path[p] for p in paths if p in by_path), quant_label(path),
                                tuple(p for p in paths if p not in by_path)))
    return groups


def match_tag(groups: Sequence[GGUFGroup], tag: str, repo: str) -> GGUFGroup:
    """The GGUF a llama.cpp-style quant tag names (case-insensitive): its label, else a name token."""
    tag = tag.upper()
    exact = [g for g in groups if (g.label or "").upper() == tag]
    if not exact:
        token = re.compile(rf"(?<![A-Z0-9]){re.escape(tag)}(?![A-Z0-9])")
        exact = [g for g in groups if token.search(g.path.upper())]
    if not exact:
        labels = sorted({g.label for g in groups if g.label})
        raise HubError(f"hf:{repo}: no GGUF for the quant tag {tag}",
                       hint="available: " + ", ".join(labels) if labels else "this repo has no quant-tagged GGUFs")
    return min(exact, key=lambda g: (g.path.count("/"), len(g.path), g.path))


def read_gguf_header(listing: Listing, f: RepoFile, stats: list[dict[str, Any]] | None = None) -> GGUFHeader:
    """One file's header: from the cache, else by ranged requests pinned to the listing's commit."""
    from huggingface_hub import hf_hub_url

    key = (endpoint(), listing.repo, listing.commit, f.path, f.etag or "")
    cached = http.cache_get("gguf", *key)
    if cached is not None:
        if stats is not None:
            stats.append({"file": f.path, "cached": True, "requests": 0, "bytes_fetched": 0,
                          "header_bytes": cached["header_bytes"]})
        return http.header_from_json(cached)
    what = f"hf:{listing.repo}/{f.path}"
    if http.offline():
        raise HubError(f"{what}: header not in fitcheck's cache and HF_HUB_OFFLINE is set",
                       hint="run once online, or unset HF_HUB_OFFLINE")
    url = hf_hub_url(listing.repo, f.path, revision=listing.commit, endpoint=endpoint())
    source = http.RangedHttpSource(url, what, send_token=True, size=f.size)
    try:
        header = parse_header(source, what, readahead=http.PARSER_READAHEAD)
    finally:
        source.close()
    if stats is not None:
        stats.append({"file": f.path, "cached": False, "requests": source.requests,
                      "bytes_fetched": source.bytes_fetched, "header_bytes": header.header_bytes,
                      "ranged": source.ranged})
    if f.etag or source.etag:
        http.cache_put("gguf", http.header_to_json(header), endpoint(), listing.repo, listing.commit, f.path,
                       f.etag or source.etag or "")
    return header


def group_spec(listing: Listing, group: GGUFGroup, ref: str,
               stats: list[dict[str, Any]] | None = None) -> ModelSpec:
    if group.missing:
        raise InputError(f"hf:{listing.repo}/{group.path}: split model is missing {len(group.missing)} shard(s) "
                         f"in the repo, e.g. {group.missing[0]}")
    shards = [(read_gguf_header(listing, f, stats), f.size) for f in group.files]
    return build_spec(ref, shards)


@dataclass
class LoadedGroups:
    specs: list[tuple[GGUFGroup, ModelSpec]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_groups(listing: Listing, groups: Sequence[GGUFGroup], *, progress: Progress | None = None,
                stats: list[dict[str, Any]] | None = None, workers: int = MAX_WORKERS) -> LoadedGroups:
    """Every group's spec, headers fetched concurrently. Hub failures stop everything; a file that is not a
    usable model GGUF is skipped with a note (unless every one is)."""
    out = LoadedGroups()
    done = 0
    lock = threading.Lock()
    results: dict[int, ModelSpec | FitcheckError] = {}

    def work(i: int) -> None:
        nonlocal done
        group = groups[i]
        try:
            results[i] = group_spec(listing, group, f"hf:{listing.repo}/{group.path}", stats)
        except HubError:
            raise
        except FitcheckError as exc:
            results[i] = exc
        with lock:
            done += 1
            if progress:
                progress(done, len(groups), group.name)

    if progress:
        progress(0, len(groups), "")
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(groups)))) as pool:
        futures = [pool.submit(work, i) for i in range(len(groups))]
        first_error: BaseException | None = None
        for fut in futures:
            exc = fut.exception()
            if exc is not None and first_error is None:
                first_error = exc
                for other in futures:
                    other.cancel()
        if first_error is not None:
            raise first_error
    for i, group in enumerate(groups):
        result = results.get(i)
        if isinstance(result, ModelSpec):
            out.specs.append((group, result))
        elif result is not None:
            out.notes.append(f"skipped {group.path}: {result}")
    if not out.specs:
        first = next((r for r in results.values() if isinstance(r, FitcheckError)), None)
        if first is not None:
            raise first
    return out
