"""LM Studio's models folder: `lmstudio:publisher/model[/file.gguf]` and every GGUF it holds.

LM Studio keeps downloads as `MODELS/publisher/model/file.gguf` (a projector `mmproj-*.gguf` beside its
model); MODELS is `$LMSTUDIO_MODELS`, else `~/.lmstudio/models`, else the older `~/.cache/lm-studio/models`.
A model folder with several quants reads as a set of quants, compared side by side like a Hub repo.
"""

from __future__ import annotations

import os

from ...errors import InputError
from ...text import shown
from ..gguf import split_names
from ..types import Choice, Model, QuantSet
from .files import Found, kind_of, walk_folder


def roots() -> list[str]:
    explicit = os.environ.get("LMSTUDIO_MODELS")
    home = os.path.expanduser("~")
    found = [explicit] if explicit else []
    return found + [os.path.join(home, ".lmstudio", "models"), os.path.join(home, ".cache", "lm-studio", "models")]


def _ref(rel: str) -> str:
    return f"lmstudio:{rel}"


def discover() -> Found:
    found = Found()
    for root in dict.fromkeys(roots()):
        found.extend(walk_folder(root, "lmstudio", lambda _path, rel: _ref(rel)))
    return found


def _safe_parts(text: str) -> list[str]:
    parts = [p for p in text.strip().strip("/").split("/") if p]
    if len(parts) < 2 or any(p in (".", "..") or "\\" in p for p in parts):
        raise InputError(f"lmstudio:{shown(text)}: expected lmstudio:publisher/model[/file.gguf]",
                         hint="e.g. lmstudio:lmstudio-community/Qwen3-8B-GGUF")
    return parts


def resolve(text: str) -> Model | QuantSet:
    """A file (`publisher/model/file.gguf`), or the model GGUFs of a model folder (one: that model)."""
    from .headers import local_model

    parts = _safe_parts(text)
    for root in dict.fromkeys(roots()):
        path = os.path.join(root, *parts)
        if os.path.isfile(path):
            rel = "/".join(parts)
            return local_model(_shards(path), ref=_ref(rel))
        if os.path.isdir(path):
            return _folder(path, "/".join(parts))
    raise InputError(f"lmstudio:{'/'.join(parts)}: not in LM Studio's models folder",
                     hint="looked in " + ", ".join(shown(r, 80) for r in dict.fromkeys(roots())))


def _shards(path: str) -> list[str]:
    names = split_names(os.path.basename(path))
    return [os.path.join(os.path.dirname(path), n) for n in names] if names else [path]


def _folder(folder: str, rel: str) -> Model | QuantSet:
    from .headers import local_model

    found = walk_folder(folder, "lmstudio", lambda _path, sub: _ref(f"{rel}/{sub}"))
    models = [e for e in found.entries if e.kind == "model"]
    if not models:
        raise InputError(f"lmstudio:{rel}: no model GGUF in {shown(folder, 200)}",
                         hint="projectors (mmproj) and partial downloads are not models")
    if len(models) == 1:
        e = models[0]
        return local_model(e.shards or [e.path], ref=e.ref)
    quants = QuantSet(f"lmstudio:{rel}", rel, "gguf")
    mmproj = [e.path for e in found.entries if e.kind == "mmproj"]
    if mmproj:
        quants.notes.append(f"{os.path.basename(mmproj[0])} beside the models is a projector: add --mmproj "
                            f"{shown(mmproj[0], 200)} to count it")
    for e in models:
        try:
            model = local_model(e.shards or [e.path], ref=e.ref)
        except InputError as exc:
            quants.notes.append(f"skipped {shown(e.name)}: {exc}")
            continue
        from ..hf import quant_label  # the Hub's quant names in file names are LM Studio's too

        label = quant_label(e.name) or model.spec.file_type or kind_of(e.name)
        quants.choices.append(Choice(label, e.name, e.size_bytes, model))
    if not quants.choices:
        raise InputError(f"lmstudio:{rel}: no readable model GGUF", hint="; ".join(quants.notes)[:300])
    return quants
