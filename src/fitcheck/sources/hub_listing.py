"""A Hub reference and its repo's listing: the first request of every `hf:` check, kept apart from the header
reading so it can leave before the rest of fitcheck is imported (sources/prefetch.py).

The listing is one `HfApi.model_info(files_metadata=True)` request: file sizes and content hashes (the LFS
sha256 is the file's ETag), and the commit every later read is pinned to; it is cached by (endpoint, repo,
revision) so HF_HUB_OFFLINE=1 works from the cache alone (cache.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from ..errors import HubError, HubUnavailable, InputError
from ..text import shown
from . import cache, settings, transport

REPO_RE = re.compile(r"^[\w.-]+/[\w.-]+$")


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
    notes: tuple[str, ...] = ()  # e.g. answered from the cache because the Hub could not be reached

    def get(self, path: str) -> RepoFile | None:
        return next((f for f in self.files if f.path == path), None)


def list_repo(repo: str, revision: str | None) -> Listing:
    """The repo's files at `revision`; online always asked (a branch moves), offline from the cache."""

    def fetch() -> Listing:
        # HfApi.model_info(files_metadata=True)'s request, sent through huggingface_hub's session, headers and
        # status checks (transport.send) rather than HfApi itself: importing hf_api costs ~0.1 s of CPU on
        # every Hub check, for this one GET. Same URL, same answer, same errors.
        url = f"{settings.endpoint()}/api/models/{repo}"
        if revision is not None:
            url += f"/revision/{quote(revision, safe='')}"
        # huggingface_hub's first headers of a day may fetch its agent registry from the Hub: bounded like a request
        headers = transport.hub_call(f"hf:{repo}", lambda: settings.request_headers(True))
        response = transport.send("GET", url + "?blobs=true", headers, f"hf:{repo}")
        try:
            info = response.json()
            siblings = info.get("siblings") or []
            files = tuple(RepoFile(str(s["rfilename"]), s["size"] if isinstance(s.get("size"), int) else None,
                                   (s.get("lfs") or {}).get("sha256") or s.get("blobId")) for s in siblings)
            commit = str(info.get("sha") or revision or "main")
        except (ValueError, TypeError, KeyError, AttributeError):
            raise HubError(f"hf:{shown(repo)}: the Hub's answer about the repository could not be read",
                           hint="retry later; HF_HUB_OFFLINE=1 answers from fitcheck's cache") from None
        return Listing(repo, revision, commit, files)

    key = (settings.endpoint(), repo, revision or "main")
    try:
        return cache.cached("listing", key, fetch, what=f"hf:{repo}", encode=_listing_to_json,
                            decode=_listing_from_json, reuse_online=False)
    except HubUnavailable as exc:
        stored = cache.get("listing", *key)
        if stored is None:
            raise
        # the Hub is down or unreachable but this repo was listed before: its cached headers can answer
        listing = _listing_from_json(stored)
        return replace(listing, notes=(f"the Hub could not be reached ({exc}); answered from fitcheck's cache of "
                                       f"commit {listing.commit[:12]} (HF_HUB_OFFLINE=1 skips the network)",))


def _listing_to_json(listing: Listing) -> dict[str, Any]:
    return {"repo": listing.repo, "revision": listing.revision, "commit": listing.commit,
            "files": [[f.path, f.size, f.etag] for f in listing.files]}


def _listing_from_json(data: dict[str, Any]) -> Listing:
    return Listing(data["repo"], data["revision"], data["commit"], tuple(RepoFile(*f) for f in data["files"]))
