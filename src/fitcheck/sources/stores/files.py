"""What a store lists (Entry, Found), how a file name is classified, and a read-only walk of a plain folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ...text import shown
from ..gguf import split_names

# Name endings of downloads still in progress: huggingface_hub (.incomplete), llama.cpp (.downloadInProgress),
# browsers and download managers (.partial, .part, .crdownload). Ollama's blob-partial files are its store's.
PARTIAL_SUFFIXES = (".incomplete", ".downloadinprogress", ".partial", ".part", ".crdownload")


@dataclass(frozen=True)
class Entry:
    """One file a store holds, as `fitcheck scan` lists it."""

    store: str  # ollama | lmstudio | hf-cache | llama.cpp-cache | folder
    name: str  # as the store names it: qwen3:30b, publisher/model/file.gguf, org/repo/file.gguf
    ref: str  # what `fitcheck REF` takes for it: ollama:qwen3:30b, lmstudio:..., hf:..., or the path
    path: str  # the file (a split model's first shard); the expected path when the store lost it
    kind: str  # model | mmproj | imatrix | adapter | partial | missing
    size_bytes: int | None
    mtime_ns: int = 0
    shards: tuple[str, ...] = ()  # a split model: every shard's path, first one first
    attached: tuple[str, ...] = ()  # projectors the store attaches to the model (Ollama's projector layer)
    note: str | None = None


@dataclass(frozen=True)
class StoreInfo:
    """Where a scan looked: `status` is found | absent | unreadable."""

    store: str
    root: str
    status: str
    files: int = 0


@dataclass
class Found:
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stores: list[StoreInfo] = field(default_factory=list)

    def extend(self, other: Found) -> None:
        self.entries += other.entries
        self.notes += other.notes
        self.stores += other.stores

    def deduplicated(self) -> Found:
        """Each real file once: a Hub-cache snapshot symlink and llama.cpp's cache (the same folder when
        LLAMA_CACHE is unset) or a folder given twice name the same blob."""
        seen: dict[str, int] = {}
        out: list[Entry] = []
        for entry in self.entries:
            real = entry.path and entry.kind != "missing"
            key = os.path.realpath(entry.path) if real else f"{entry.store}:{entry.name}"
            if key in seen:
                first = out[seen[key]]
                also = f"also {entry.store} {shown(entry.name)}"
                out[seen[key]] = replace(first, note=f"{first.note}; {also}" if first.note else also)
                continue
            seen[key] = len(out)
            out.append(entry)
        return Found(out, list(dict.fromkeys(self.notes)), self.stores)


def kind_of(name: str) -> str:
    """A file's kind from its name alone (the header may still say adapter or projector)."""
    low = name.lower()
    if low.endswith(PARTIAL_SUFFIXES):
        return "partial"
    if "mmproj" in low:
        return "mmproj"
    if "imatrix" in low:
        return "imatrix"
    return "model"


def is_candidate(name: str) -> bool:
    """A GGUF, or a GGUF still downloading."""
    low = name.lower()
    for suffix in PARTIAL_SUFFIXES:
        if low.endswith(suffix):
            low = low[: -len(suffix)]
            break
    return low.endswith(".gguf")


def stat_entry(store: str, name: str, ref: str, path: str, **kw: object) -> Entry:
    """An Entry with the file's size and mtime (lstat through symlinks; a vanished file is `missing`)."""
    try:
        st = os.stat(path)
    except OSError:
        return Entry(store, name, ref, path, "missing", None, note="the file is gone (a broken link?)")
    kind = str(kw.pop("kind", kind_of(os.path.basename(path))))
    return Entry(store, name, ref, path, kind, st.st_size, st.st_mtime_ns, **kw)  # type: ignore[arg-type]


def split_group(folder: str, names: set[str], name: str) -> tuple[list[str], list[str]] | None:
    """A split model's shards in `folder`: (present, missing) paths, or None when `name` is not a first shard
    (a later shard is listed under its first one; a single file is not split)."""
    shards = split_names(name)
    if shards is None or shards[0] != name:
        return None
    present = [os.path.join(folder, n) for n in shards if n in names]
    missing = [n for n in shards if n not in names]
    return present, missing


def walk_folder(root: str, store: str, ref_for: Callable[[str, str], str], *, explicit: bool = False,
                skip_dirs: tuple[str, ...] = ()) -> Found:
    """Every GGUF under `root` (symlinked folders are not followed, so a loop cannot trap the walk).

    `ref_for(path, relative path)` names each file as a reference. A root that does not exist is skipped
    silently (unless `explicit`: a folder given on the command line), one that cannot be read is one note."""
    found = Found()
    if not os.path.isdir(root):
        if explicit:
            found.notes.append(f"{shown(root, 200)}: no such folder")
        return found
    errors: list[OSError] = []
    count = 0
    for folder, dirs, files in os.walk(root, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs and not d.startswith("."))
        names = set(files)
        for name in sorted(files):
            if not is_candidate(name):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            shards = split_names(name)
            if shards is not None and kind_of(name) != "partial":
                group = split_group(folder, names, name)
                if group is None:
                    continue  # a later shard: its first shard's row covers it
                present, missing = group
                entry = stat_entry(store, rel, ref_for(path, rel), path, shards=tuple(present))
                if missing and entry.kind != "missing":
                    entry = replace(entry, kind="partial",
                                    note=f"split model missing {len(missing)} of {len(shards)} shards")
                elif entry.kind == "model":
                    size = sum(os.stat(p).st_size for p in present if os.path.exists(p))
                    entry = replace(entry, size_bytes=size)
            else:
                entry = stat_entry(store, rel, ref_for(path, rel), path)
            found.entries.append(entry)
            count += 1
    if errors:
        first = errors[0]
        more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
        found.notes.append(f"{store}: cannot read {shown(first.filename or root, 200)} "
                           f"({shown(first.strerror or first)}){more}")
    status = "unreadable" if errors and not count and any(e.filename == root for e in errors) else "found"
    found.stores.append(StoreInfo(store, root, status, count))
    return found
