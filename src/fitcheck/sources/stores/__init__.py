"""Model stores already on this machine, read-only and header only: Ollama, LM Studio, the Hugging Face cache,
llama.cpp's own cache, and plain folders.

- `ollama:NAME[:TAG]` and `lmstudio:publisher/model[/file.gguf]` resolve here (resolve.py dispatches);
- `discover()` lists every GGUF of every store (and of the folders given) as an `Entry`, for `fitcheck scan`.

Nothing here writes, moves or creates anything inside a store: files are opened for reading only, and the
header cache lives in fitcheck's own cache folder. A store that is absent is skipped; one that cannot be read
becomes a note.
"""

from __future__ import annotations

from collections.abc import Sequence

from .files import Entry, Found, walk_folder


def discover(folders: Sequence[str] = (), *, stores: bool = True) -> Found:
    """Every GGUF in the known stores (unless `stores` is off) and in `folders`, each file once (the first
    store that lists it keeps it; a second listing becomes a note on the row)."""
    from . import caches, lmstudio, ollama

    found = Found()
    if stores:
        for part in (ollama.discover(), lmstudio.discover(), caches.discover_hf(), caches.discover_llama_cpp()):
            found.extend(part)
    for folder in folders:
        found.extend(walk_folder(folder, "folder", lambda path, _rel: path, explicit=True))
    return found.deduplicated()


__all__ = ["Entry", "Found", "discover"]
