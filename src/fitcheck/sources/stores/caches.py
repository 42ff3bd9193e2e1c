"""The download caches: the Hugging Face cache and llama.cpp's own.

- The Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`) is read through
  huggingface_hub's `scan_cache_dir`: every model repo's snapshots, and `blobs/*.incomplete` left by an
  interrupted download.
- llama.cpp (0c1e57098, common/hf-cache.cpp) downloads `-hf org/repo` into that same layout, rooted at
  `LLAMA_CACHE` when set, else the Hugging Face cache itself; an unfinished file is `blobs/OID.downloadInProgress`
  (common/download.cpp). Its flat cache folder (common.cpp fs_get_cache_directory: `LLAMA_CACHE`, else
  `$XDG_CACHE_HOME/llama.cpp` or `~/.cache/llama.cpp`, `~/Library/Caches/llama.cpp` on macOS,
  `%LOCALAPPDATA%/llama.cpp` on Windows) holds `-mu URL` and Docker downloads, and the `org_repo_file.gguf`
  files of builds before the Hub layout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ...text import shown
from ..gguf import split_names
from ..settings import hf_cache_dir, hub_cache_folder
from .files import Entry, Found, StoreInfo, is_candidate, kind_of, stat_entry

LLAMA_PARTIAL = ".downloadInProgress"


def llama_cpp_dir() -> str:
    """common.cpp fs_get_cache_directory(): where llama.cpp keeps its flat downloads."""
    explicit = os.environ.get("LLAMA_CACHE")
    if explicit:
        return explicit
    if sys.platform == "win32":
        return os.path.join(os.environ.get("LOCALAPPDATA") or os.path.expanduser("~"), "llama.cpp")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches", "llama.cpp")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llama.cpp")


def discover_hf() -> Found:
    return scan_hub_layout(hf_cache_dir(), "hf-cache")


def discover_llama_cpp() -> Found:
    root = llama_cpp_dir()
    found = Found()
    if os.environ.get("LLAMA_CACHE") and os.path.realpath(root) != os.path.realpath(hf_cache_dir()):
        found.extend(scan_hub_layout(root, "llama.cpp-cache"))  # -hf downloads under LLAMA_CACHE
    found.extend(_flat(root))
    return found


def _flat(root: str) -> Found:
    """The GGUFs at the top of llama.cpp's flat cache folder."""
    found = Found()
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return found
    except OSError as exc:
        found.notes.append(f"llama.cpp-cache: cannot read {shown(root, 200)} ({shown(exc.strerror or exc)})")
        found.stores.append(StoreInfo("llama.cpp-cache", root, "unreadable"))
        return found
    present = set(names)
    for name in names:
        path = os.path.join(root, name)
        if not is_candidate(name) or not os.path.isfile(path):
            continue
        shards = split_names(name)
        if shards and kind_of(name) != "partial":
            if shards[0] != name:
                continue
            missing = [n for n in shards if n not in present]
            entry = stat_entry("llama.cpp-cache", name, path, path,
                               shards=tuple(os.path.join(root, n) for n in shards if n in present))
            if missing:
                entry = Entry(entry.store, name, path, path, "partial", entry.size_bytes, entry.mtime_ns,
                              note=f"split model missing {len(missing)} of {len(shards)} shards")
            found.entries.append(entry)
            continue
        found.entries.append(stat_entry("llama.cpp-cache", name, path, path))
    if found.entries:
        found.stores.append(StoreInfo("llama.cpp-cache", root, "found", len(found.entries)))
    return found


def scan_hub_layout(root: str, store: str) -> Found:
    """Every GGUF in a Hub-layout cache (`models--org--repo/snapshots/COMMIT/...`), by huggingface_hub."""
    found = Found()
    if not os.path.isdir(root):
        return found
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir(root)
    except Exception as exc:  # CacheNotFound, PermissionError, ...: the store is one note, never a crash
        found.notes.append(f"{store}: cannot read {shown(root, 200)} ({shown(exc)})")
        found.stores.append(StoreInfo(store, root, "unreadable"))
        return found
    for warning in info.warnings:
        text = str(warning)
        if "models--" in text:  # other folders (datasets, llama.cpp's flat files) are not repos of models
            found.notes.append(f"{store}: {shown(text, 200)}")
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: ("main" not in r.refs, r.commit_hash)):
            found.entries += _revision_entries(store, repo.repo_id, revision)
    partial = [Path(f.file_path) for f in info.incomplete_files]
    partial += Path(root).glob(f"models--*/blobs/*{LLAMA_PARTIAL}")
    for path in sorted(set(partial)):
        repo_id = path.parent.parent.name.removeprefix("models--").replace("--", "/")
        found.entries.append(stat_entry(store, f"{repo_id} ({path.name[:12]}…)", str(path), str(path),
                                        kind="partial", note="an interrupted download (its name is known only "
                                                             "once it finishes)"))
    if found.entries or store == "hf-cache":
        found.stores.append(StoreInfo(store, root, "found", len(found.entries)))
    return found


def _revision_entries(store: str, repo_id: str, revision: Any) -> list[Entry]:
    snapshot = Path(revision.snapshot_path)
    files = {Path(f.file_path).relative_to(snapshot).as_posix(): f for f in revision.files}
    out = []
    at = "" if "main" in revision.refs else f"@{revision.commit_hash}"
    for rel in sorted(files):
        name = os.path.basename(rel)
        if not is_candidate(name):
            continue
        folder = os.path.dirname(rel)
        shards = split_names(name)
        ref = f"hf:{repo_id}{at}/{rel}"
        path = str(files[rel].file_path)
        if shards and kind_of(name) != "partial":
            if shards[0] != name:
                continue
            rels = [f"{folder}/{n}" if folder else n for n in shards]
            present = [str(files[r].file_path) for r in rels if r in files]
            entry = stat_entry(store, f"{repo_id}/{rel}", ref, path, shards=tuple(present))
            if len(present) < len(rels):
                entry = Entry(store, entry.name, ref, path, "partial", entry.size_bytes, entry.mtime_ns,
                              note=f"split model missing {len(rels) - len(present)} of {len(rels)} shards")
            elif entry.kind == "model":
                entry = Entry(store, entry.name, ref, path, "model", sum(files[r].size_on_disk for r in rels),
                              entry.mtime_ns, shards=tuple(present))
            out.append(entry)
            continue
        out.append(stat_entry(store, f"{repo_id}/{rel}", ref, path))
    return out


def local_hub_file(repo_id: str, revision: str | None, rel: str | None, tag: str | None) -> tuple[str, str] | None:
    """(path in the cache, path in the repo) of a fully downloaded file: `rel`, else the GGUF a quant tag names;
    None when the cache does not hold it (a split model needs every shard). No network."""
    root = hf_cache_dir()
    folder = hub_cache_folder(repo_id)
    if not os.path.isdir(folder):
        return None  # before importing file_download (~0.1 s): most Hub checks have nothing cached
    from huggingface_hub import try_to_load_from_cache

    rev = revision or "main"
    if rel is not None:
        names = split_names(os.path.basename(rel))
        want = [rel] if not names else [f"{os.path.dirname(rel)}/{n}".lstrip("/") for n in names]
        paths = [try_to_load_from_cache(repo_id, w, cache_dir=root, revision=rev) for w in want]
        if all(isinstance(p, str) for p in paths):
            return str(paths[0]), want[0]  # a split model: its first shard, as llama.cpp loads it
        return None
    return _tagged(folder, rev, repo_id, tag or "")


def _tagged(folder: str, rev: str, repo_id: str, tag: str) -> tuple[str, str] | None:
    """The cached GGUF a quant tag names (the Hub's own matching: hf.matches_for_tag)."""
    from ...errors import HubError
    from ..hf import GGUFGroup, RepoFile, gguf_groups, matches_for_tag

    commit = rev
    ref_file = os.path.join(folder, "refs", rev)
    if os.path.isfile(ref_file):
        try:
            commit = Path(ref_file).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    snapshot = os.path.join(folder, "snapshots", commit)
    if not os.path.isdir(snapshot):
        return None
    files = []
    for base, _dirs, names in os.walk(snapshot):
        for n in names:
            full = os.path.join(base, n)
            if n.lower().endswith(".gguf") and os.path.exists(full):  # a broken link is not downloaded
                files.append(RepoFile(os.path.relpath(full, snapshot).replace(os.sep, "/"), None, None))
    from ..hf import Listing

    groups: list[GGUFGroup] = gguf_groups(Listing(repo_id, rev, commit, tuple(files)))
    try:
        found = matches_for_tag(groups, tag, repo_id)
    except HubError:
        return None
    group = found[0]
    if group.missing:
        return None
    return os.path.join(snapshot, group.path), group.path
