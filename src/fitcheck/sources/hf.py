"""Hugging Face Hub references: parse `hf:org/repo[@rev][:QUANT | /path.gguf]`, list the repo, read GGUF headers,
and turn the reference into one model or the repo's set of quants.

The listing is one `HfApi.model_info(files_metadata=True)` request: file sizes and content hashes (the LFS
sha256 is the file's ETag), and the commit every later read is pinned to. Headers are then read with ranged
requests (ranged.py) and cached on disk by (endpoint, repo, commit, path, etag); the listing is cached by
(endpoint, repo, revision) so HF_HUB_OFFLINE=1 works from the cache alone (cache.py).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from .._version import __version__
from ..errors import FitcheckError, HubError, InputError
from ..model import ModelSpec
from ..text import shown
from . import cache, settings
from .gguf import build_spec, split_names
from .gguf_header import GGUFHeader
from .header_reads import FOLLOWER_FIRST, Read, SharedLayouts, read_header
from .header_scan import Layout
from .hub_listing import HubRef, Listing, RepoFile
from .ranged import RangedHttpSource
from .types import Choice, Location, Model, Progress, QuantSet

# Quant labels as the Hub and llama.cpp's `-hf repo:TAG` see them in file names (last match wins).
QUANT_RE = re.compile(r"(?<![A-Z0-9])((?:UD-)?(?:I?Q[1-8](?:_[0-9A-Z]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ[12]_0))"
                      r"(?![A-Z0-9])")
SKIP_GGUF = ("mmproj", "imatrix")
MAX_WORKERS = 8
LEADER_WAIT_S = 300.0  # a follower's wait for the leader's layout (the leader always signals; this is a bound)


def api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=settings.endpoint(), library_name="fitcheck", library_version=__version__)


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
        return sum(s for s in sizes if s is not None) if None not in sizes else None

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
    return matches_for_tag(groups, tag, repo)[0]


def matches_for_tag(groups: Sequence[GGUFGroup], tag: str, repo: str) -> list[GGUFGroup]:
    """Every GGUF a quant tag names, the one fitcheck reads first (shallowest, then shortest path)."""
    tag = tag.upper()
    exact = [g for g in groups if (g.label or "").upper() == tag]
    if not exact:
        token = re.compile(rf"(?<![A-Z0-9]){re.escape(tag)}(?![A-Z0-9])")
        exact = [g for g in groups if token.search(g.path.upper())]
    if not exact:
        labels = sorted({g.label for g in groups if g.label})
        raise HubError(f"hf:{repo}: no GGUF for the quant tag {tag}",
                       hint="available: " + ", ".join(labels) if labels else "this repo has no quant-tagged GGUFs")
    return sorted(exact, key=lambda g: (g.path.count("/"), len(g.path), g.path))


def read_gguf_header(listing: Listing, f: RepoFile, stats: list[dict[str, Any]] | None = None,
                     shared: SharedLayouts | None = None) -> GGUFHeader:
    """One file's header: from the cache, else by planned ranged requests pinned to the listing's commit.

    With `shared`, the file follows that repo's leader: it fetches its first bytes, waits for the leader's
    layout, and reads only what differs from it (header_reads.py); the leader publishes its layout when done.
    """
    what = f"hf:{listing.repo}/{f.path}"
    fetched: list[dict[str, Any]] = []
    follower = shared is not None and shared.leader != f.path and _first_shard(f.path)

    def fetch() -> Read:
        url = settings.file_url(listing.repo, f.path, listing.commit)
        source = RangedHttpSource(url, what, send_token=True, size=f.size)
        read: Read | None = None
        try:
            references: list[Layout] = []
            if follower and shared is not None:
                source.start(FOLLOWER_FIRST)  # the leader's layout is on its way meanwhile
                references = shared.wait(LEADER_WAIT_S)
            read = read_header(source, what, references)
        finally:
            source.close()
            if shared is not None and read is not None and read.layout is not None and not read.shared:
                shared.add(read.layout)  # a new layout: a reference for the quants still to come
        fetched.append({"file": f.path, "cached": False, "requests": source.requests,
                        "bytes_fetched": source.bytes_fetched, "header_bytes": read.header.header_bytes,
                        "ranged": source.ranged, "shared": read.shared})
        return read

    # stored only when the listing gives the file's hash: that hash is part of the key a later run looks up
    try:
        read = cache.cached("gguf", _header_key(listing, f), fetch, what=what, noun="header",
                            encode=_read_to_json, decode=_read_from_json, keep=lambda _: bool(f.etag))
        if shared is not None and read.layout is not None:
            shared.add(read.layout)
    finally:
        if shared is not None and shared.leader == f.path:
            shared.release()  # whatever happened: the followers stop waiting
    if stats is not None:
        stats.append(fetched[0] if fetched else {"file": f.path, "cached": True, "requests": 0, "bytes_fetched": 0,
                                                 "header_bytes": read.header.header_bytes})
    return read.header


def _header_key(listing: Listing, f: RepoFile) -> tuple[str, ...]:
    return settings.endpoint(), listing.repo, listing.commit, f.path, f.etag or ""


def _read_to_json(read: Read) -> dict[str, Any]:
    return {**cache.header_to_json(read.header), "layout": read.layout.to_json() if read.layout else None}


def _read_from_json(data: dict[str, Any]) -> Read:
    return Read(cache.header_from_json(data), _layout_from_json(data.get("layout")), False)


def _layout_from_json(data: Any) -> Layout | None:
    try:
        return Layout.from_json(data) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        return None  # an entry from another version: no layout to share, nothing worse


def _first_shard(path: str) -> bool:
    names = split_names(os.path.basename(path))
    return names is None or names[0] == os.path.basename(path)


def shared_layouts(listing: Listing, leader: str | None) -> SharedLayouts:
    """The layouts of this repo's headers already in the cache (any quant of the model will do as a reference);
    without any, `leader` is read in full first and the others follow it."""
    layouts = []
    for f in listing.files:
        if f.etag and f.path.lower().endswith(".gguf") and not os.path.basename(f.path).lower().startswith("mmproj"):
            stored = cache.get("gguf", *_header_key(listing, f))
            layout = _layout_from_json(stored.get("layout")) if isinstance(stored, dict) else None
            if layout is not None and layout.strings:
                layouts.append(layout)
    return SharedLayouts(layouts[:4], leader=None if layouts else leader)


def group_spec(listing: Listing, group: GGUFGroup, ref: str, stats: list[dict[str, Any]] | None = None,
               shared: SharedLayouts | None = None) -> ModelSpec:
    if group.missing:
        raise InputError(f"hf:{listing.repo}/{group.path}: split model is missing {len(group.missing)} shard(s) "
                         f"in the repo, e.g. {group.missing[0]}")
    if len(group.files) == 1:
        return build_spec(ref, [(read_gguf_header(listing, group.files[0], stats, shared), group.files[0].size)])
    with ThreadPoolExecutor(max_workers=min(len(group.files), MAX_WORKERS)) as pool:  # shards at once
        headers = list(pool.map(lambda f: read_gguf_header(listing, f, stats, shared), group.files))
    return build_spec(ref, [(h, f.size) for h, f in zip(headers, group.files, strict=True)])


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

    shared = shared_layouts(listing, groups[0].path if groups else None)

    def work(i: int) -> None:
        nonlocal done
        group = groups[i]
        try:
            results[i] = group_spec(listing, group, f"hf:{listing.repo}/{group.path}", stats, shared)
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
            out.notes.append(f"skipped {shown(group.path)}: {result}")
    if not out.specs:
        first = next((r for r in results.values() if isinstance(r, FitcheckError)), None)
        if first is not None:
            raise first
    return out


# -- a reference to one model, or to the repo's quants -------------------------------------------------------------

def revision_notes(ref: HubRef, listing: Listing) -> list[str]:
    """What every model of this listing says about where it came from (a revision, a cached listing)."""
    notes = list(listing.notes)
    if ref.revision:
        notes.append(f"revision {ref.revision} (commit {listing.commit[:12]}): llama.cpp's -hf reads the default "
                     "branch")
    return notes


def load_gguf(ref: HubRef, listing: Listing, *, progress: Progress | None = None,
              stats: list[dict[str, Any]] | None = None) -> Model | QuantSet | None:
    """The named file or quant tag, else every GGUF quant in the repo; None for a repo without GGUFs."""
    groups = gguf_groups(listing)
    notes = revision_notes(ref, listing)
    if ref.path:
        f = listing.get(ref.path)
        if f is None:
            labels = sorted({g.label for g in groups if g.label})
            raise HubError(f"{ref}: no file {ref.path} in the repository",
                           hint="available quants: " + ", ".join(labels) if labels
                           else "list the repo's files on the Hub")
        group = next((g for g in groups if g.path == ref.path), None)
        if group is None:  # a later shard of a split model: llama.cpp loads it from the first one
            group = next((g for g in groups if any(s.path == ref.path for s in g.files)), None)
            if group is not None:
                notes.append(f"{shown(os.path.basename(ref.path))} is one shard of a split model: read from its "
                             f"first shard {shown(os.path.basename(group.path))}, with every shard")
        group = group or GGUFGroup((f,), quant_label(f.path))
        return _single(listing, group, str(ref), notes, stats)
    if ref.tag:
        if not groups:
            raise HubError(f"{ref}: the repository has no GGUF files", hint="try hf:" + ref.repo)
        found = matches_for_tag(groups, ref.tag, ref.repo)
        if len(found) > 1:
            others = ", ".join(shown(g.path) for g in found[1:4]) + (" …" if len(found) > 4 else "")
            notes.append(f"the tag {shown(ref.tag)} names {len(found)} files: read {shown(found[0].path)} "
                         f"(also {others}); name one with hf:{ref.repo}/FILE")
        return _single(listing, found[0], str(ref), notes, stats)
    if not groups:
        return None
    loaded = load_groups(listing, groups, progress=progress, stats=stats)
    qs = QuantSet(str(ref), ref.repo, "gguf", notes=notes + loaded.notes)
    for group, spec in loaded.specs:
        label = group.label or spec.file_type or shown(os.path.basename(group.path))
        model = Model(spec, _hf_arg(ref.repo, group.label, group.path), _locations(listing, group))
        qs.choices.append(Choice(label, group.path, group.size, model))
    return qs


def _single(listing: Listing, group: GGUFGroup, ref: str, notes: list[str],
            stats: list[dict[str, Any]] | None) -> Model:
    shared = shared_layouts(listing, None)  # another quant's cached header can stand in for the tokenizer
    spec = group_spec(listing, group, ref, stats, shared if shared.layouts else None)
    if notes:
        spec = replace(spec, notes=spec.notes + tuple(notes))
    return Model(spec, _hf_arg(listing.repo, group.label, group.path), _locations(listing, group))


def _locations(listing: Listing, group: GGUFGroup) -> tuple[Location, ...]:
    """Each shard's URL pinned to the listing's commit (what --exact reads the header range from)."""
    return tuple(Location(settings.file_url(listing.repo, f.path, listing.commit),
                          remote=True, send_token=True) for f in group.files)


def load_from_local_cache(ref: HubRef) -> Model | None:
    """A file or quant tag already fully downloaded into the Hugging Face cache (by huggingface_hub or by
    llama.cpp's -hf), read there with no network request; None otherwise (a whole repo is always listed: the
    cache may hold only some of its quants)."""
    if not (ref.path or ref.tag):
        return None
    from .stores.caches import local_hub_file
    from .stores.headers import local_model

    found = local_hub_file(ref.repo, ref.revision, ref.path, ref.tag)
    if found is None:
        return None
    path, rel = found
    names = split_names(os.path.basename(path))
    shards = [os.path.join(os.path.dirname(path), n) for n in names] if names else [path]
    model = local_model(shards, ref=str(ref), model_arg=_hf_arg(ref.repo, quant_label(rel), rel))
    note = f"read from the local Hugging Face cache ({shown(os.path.dirname(path), 120)}), no network request"
    return replace(model, spec=replace(model.spec, notes=model.spec.notes + (note,)))


def _hf_arg(repo: str, label: str | None, path: str) -> list[str]:
    """llama.cpp's own Hub download: `-hf repo:QUANT` where a quant tag names the file, else the file itself."""
    if label:
        return ["-hf", f"{repo}:{label}"]
    return ["-hf", repo, "-hff", path]
