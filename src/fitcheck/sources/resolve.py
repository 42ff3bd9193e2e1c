"""Every kind of model reference to what the planner needs: one model, or a set of quants to compare.

- a local path (`x.gguf`, the first shard of a split model) -> one model, `-m path`
- `hf:org/repo/dir/file.gguf`, `hf:org/repo:Q4_K_M`, `hf:org/repo@rev...` -> one model, `-hf org/repo:QUANT`
- `hf:org/repo` -> every GGUF quant in the repo, or for a safetensors repo the native need and what-if quants
- `https://host/.../file.gguf` -> one model read by ranged requests, `-mu URL`
- `ollama:NAME[:TAG]`, `lmstudio:publisher/model[/file.gguf]` -> a model in a local store (sources/stores)
  (a Hub URL `{HF_ENDPOINT}/org/repo/resolve|blob/rev/path` is read as the matching `hf:` reference)

The remote modules are imported only for remote references, so a local check never loads huggingface_hub.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..errors import InputError
from .types import Model, Progress, QuantSet

if TYPE_CHECKING:
    from .hub_listing import HubRef, Listing

HUB_URL_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/(?:resolve|blob)/(?P<rev>[^/]+)/(?P<path>.+)$")
# a repository page (https://huggingface.co/org/repo, .../tree/rev): every quant, as hf:org/repo[@rev]
HUB_PAGE_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+?)/?(?:/tree/(?P<rev>[^/]+)/?)?$")


def resolve(ref: str, *, progress: Progress | None = None,
            stats: list[dict[str, Any]] | None = None) -> Model | QuantSet:
    if stats is None:
        from . import prefetch

        pending = prefetch.take(ref)  # the command line's reference, already on its way (prefetch.py)
        if pending is not None:
            return pending.result(progress)
    return resolve_direct(ref, progress=progress, stats=stats)


def resolve_direct(ref: str, *, progress: Progress | None = None,
                   stats: list[dict[str, Any]] | None = None) -> Model | QuantSet:
    """resolve() here and now, not from a prefetch."""
    if ref.startswith("hf:"):
        from .hub_listing import parse_ref

        return _resolve_hub(parse_ref(ref[3:]), progress, stats)
    if ref.startswith("ollama:"):
        from .stores import ollama

        return ollama.load(ref[len("ollama:"):])
    if ref.startswith("lmstudio:"):
        from .stores import lmstudio

        return lmstudio.resolve(ref[len("lmstudio:"):])
    if ref.startswith(("http://", "https://")):
        hub_ref = hub_url_ref(ref)
        if hub_ref is not None:
            return _resolve_hub(hub_ref, progress, stats)
        from .url import load_url

        return load_url(ref, stats)
    from .gguf import load_local, split_names
    from .types import Location

    spec = load_local(ref)
    folder, name = os.path.split(ref)
    files = tuple(Location(os.path.join(folder, n)) for n in (split_names(name) or [name]))
    return Model(spec, ["-m", ref], files)


def load_model(ref: str) -> Model:
    """A single model; a reference to a whole repo is an error here (use resolve())."""
    found = resolve(ref)
    if isinstance(found, QuantSet):
        raise InputError(f"{ref}: a repository with {len(found.choices)} models",
                         hint="name one quant: hf:org/repo:Q4_K_M")
    return found


def hub_url_ref(url: str) -> HubRef | None:
    """The `hf:` reference a URL on the Hub endpoint names (a .gguf file, or a repository page), or None."""
    from .hub_listing import HubRef
    from .settings import endpoint
    from .transport import origin

    if origin(url) != origin(endpoint()):
        return None
    path = unquote(urlparse(url).path)
    page = HUB_PAGE_RE.match(path)
    if page and not page["repo"].startswith(("api/", "datasets/", "spaces/")):
        return HubRef(page["repo"], None if page["rev"] in (None, "main") else page["rev"])
    m = HUB_URL_RE.match(path)
    if not m or not m["path"].lower().endswith(".gguf"):
        return None
    return HubRef(m["repo"], None if m["rev"] == "main" else m["rev"], None, m["path"])


def _resolve_hub(ref: HubRef, progress: Progress | None, stats: list[dict[str, Any]] | None) -> Model | QuantSet:
    """A GGUF file, quant or repo of quants; a repo without GGUFs is read as a safetensors repo."""
    from . import hf
    from .hub_listing import list_repo

    local = hf.load_from_local_cache(ref)  # already downloaded: read there, no request
    if local is not None:
        return local
    return resolve_listed(ref, list_repo(ref.repo, ref.revision), progress, stats)


def resolve_listed(ref: HubRef, listing: Listing, progress: Progress | None,
                   stats: list[dict[str, Any]] | None) -> Model | QuantSet:
    """A Hub reference once its repo is listed."""
    from . import hf
    from .safetensors import load_safetensors_repo

    found = hf.load_gguf(ref, listing, progress=progress, stats=stats)
    if found is not None:
        return found
    return load_safetensors_repo(ref, listing, hf.revision_notes(ref, listing))
