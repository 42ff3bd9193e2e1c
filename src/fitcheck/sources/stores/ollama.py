"""Ollama's model store: `ollama:NAME[:TAG]` to the GGUF blob Ollama runs, and every model it holds.

The layout is Ollama's own (github.com/ollama/ollama at fb30760, manifest/paths.go, types/model/name.go,
server/images.go): `$OLLAMA_MODELS` (default `~/.ollama/models`) holds `manifests/HOST/NAMESPACE/MODEL/TAG`
(JSON, Docker-style: `layers[]` with `mediaType` and `digest`) and `blobs/sha256-HEX`. A name defaults to
host `registry.ollama.ai`, namespace `library` and tag `latest`; models pulled from the Hub live under
`hf.co/ORG/REPO/TAG`. The `application/vnd.ollama.image.model` layer is the GGUF; `...projector` layers are
passed to llama-server as `--mmproj`, `...adapter` as `--lora`, and `...params` is the JSON of the Modelfile's
PARAMETER lines (num_ctx, num_batch, ...). A pull in progress leaves `blobs/sha256-HEX-partial`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import InputError
from ...text import shown
from ..types import Model
from .files import Entry, Found, StoreInfo, stat_entry

DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
MODEL = "application/vnd.ollama.image.model"
PROJECTOR = "application/vnd.ollama.image.projector"
ADAPTER = "application/vnd.ollama.image.adapter"
PARAMS = "application/vnd.ollama.image.params"
DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")  # manifest/paths.go accepts only these
PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # a name part: never a path separator or '..'
MAX_JSON_BYTES = 1 << 20  # a manifest or params layer is a few KB; a larger one is not Ollama's


def models_root() -> str:
    """$OLLAMA_MODELS, else ~/.ollama/models (envconfig.Models)."""
    return os.environ.get("OLLAMA_MODELS") or os.path.join(os.path.expanduser("~"), ".ollama", "models")


@dataclass(frozen=True)
class OllamaName:
    host: str
    namespace: str
    model: str
    tag: str

    def __str__(self) -> str:
        """Ollama's short form (Name.DisplayShortest): the defaults left out."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"


def parse_name(text: str) -> OllamaName:
    """`model`, `model:tag`, `namespace/model:tag`, `host/namespace/model:tag` (types/model/name.go)."""
    body, tag = text.strip(), DEFAULT_TAG
    if body.rfind(":") > body.rfind("/"):
        body, tag = body.rsplit(":", 1)
    parts = body.split("/")
    if len(parts) > 3 or not all(parts) or not tag:
        raise InputError(f"ollama:{shown(text)}: expected ollama:NAME[:TAG]", hint="e.g. ollama:qwen3:30b")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        model = parts[0]
    for part in (host, namespace, model, tag):
        if not PART_RE.match(part) or part in (".", ".."):
            raise InputError(f"ollama:{shown(text)}: {shown(part)} is not a valid name part",
                             hint="letters, digits, '_', '-' and '.'")
    return OllamaName(host, namespace, model, tag)


@dataclass(frozen=True)
class OllamaModel:
    """One manifest, resolved to files in the store."""

    name: OllamaName
    manifest: str
    model_path: str
    model_digest: str
    projectors: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OllamaTarget(Model):
    """An `ollama:` model: the GGUF plus what Ollama itself adds when it runs it."""

    ollama: OllamaModel | None = None


def blob_path(root: str, digest: Any) -> str | None:
    m = DIGEST_RE.match(digest) if isinstance(digest, str) else None
    return os.path.join(root, "blobs", f"sha256-{m[1].lower()}") if m else None


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, "rb") as f:  # read-only; bounded, whatever the file claims
            data = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{what}: cannot read {shown(path, 200)} ({shown(exc.strerror or exc)})") from exc
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{what}: {shown(path, 200)} is over {MAX_JSON_BYTES:,} bytes, not an Ollama manifest")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InputError(f"{what}: {shown(path, 200)} is not valid JSON ({shown(exc)})") from exc


def _find(folder: str, part: str) -> str | None:
    """`folder/part`, matched case-insensitively like Ollama's lookups on a case-sensitive disk."""
    exact = os.path.join(folder, part)
    if os.path.exists(exact):
        return exact
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    return next((os.path.join(folder, n) for n in sorted(names) if n.lower() == part.lower()), None)


def read_manifest(root: str, name: OllamaName, manifest: str) -> OllamaModel:
    what = f"ollama:{name}"
    doc = _read_json(manifest, what)
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list):
        raise InputError(f"{what}: the manifest has no layers list", hint="re-pull it: ollama pull " + str(name))
    model: tuple[str, str] | None = None
    projectors, adapters, params = [], [], {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        media, path = layer.get("mediaType"), blob_path(root, layer.get("digest"))
        if path is None:
            if media == MODEL:
                raise InputError(f"{what}: the model layer's digest {shown(layer.get('digest'))} is not sha256:HEX")
            continue
        if media == MODEL:
            model = (path, str(layer["digest"]))
        elif media == PROJECTOR:
            projectors.append(path)
        elif media == ADAPTER:
            adapters.append(path)
        elif media == PARAMS and os.path.exists(path):
            found = _read_json(path, what)
            params = found if isinstance(found, dict) else {}
    if model is None:
        raise InputError(f"{what}: the manifest has no GGUF model layer ({MODEL})",
                         hint="a cloud model or a safetensors import: nothing fitcheck can read locally")
    return OllamaModel(name, manifest, model[0], model[1], tuple(projectors), tuple(adapters), params)


def resolve(text: str) -> OllamaModel:
    name = parse_name(text)
    root = models_root()
    where: str | None = os.path.join(root, "manifests")
    for part in (name.host, name.namespace, name.model, name.tag):
        where = _find(where, part) if where else None
    if where is None or not os.path.isfile(where):
        raise InputError(f"ollama:{name}: no such model in {shown(root, 200)}",
                         hint="`ollama list` shows what is there; OLLAMA_MODELS names another store")
    return read_manifest(root, name, where)


def load(text: str) -> OllamaTarget:
    """The GGUF behind an `ollama:` reference: llama.cpp would be pointed at its blob (`-m`)."""
    from .headers import local_model

    found = resolve(text)
    what = f"ollama:{found.name}"
    if not os.path.exists(found.model_path):
        partial = os.path.exists(found.model_path + "-partial")
        raise InputError(f"{what}: the model blob {os.path.basename(found.model_path)} is "
                         + ("still downloading" if partial else "missing from the store"),
                         hint=f"ollama pull {found.name}")
    model = local_model([found.model_path], ref=f"ollama:{found.name}")
    return OllamaTarget(model.spec, model.model_arg, model.files, ollama=found)


def discover() -> Found:
    """Every manifest's model (with its projectors attached), plus blobs still downloading."""
    root = models_root()
    found = Found()
    manifests = os.path.join(root, "manifests")
    if not os.path.isdir(manifests):
        return found
    errors: list[OSError] = []
    listed: set[str] = set()
    for folder, dirs, files in os.walk(manifests, onerror=errors.append):
        dirs.sort()
        rel = os.path.relpath(folder, manifests).split(os.sep)
        if len(rel) != 3:
            continue  # a manifest is exactly HOST/NAMESPACE/MODEL/TAG
        for tag in sorted(files):
            name = OllamaName(rel[0], rel[1], rel[2], tag)
            try:
                model = read_manifest(root, name, os.path.join(folder, tag))
            except InputError as exc:
                found.notes.append(f"ollama: skipped {shown(str(name))}: {exc}")
                continue
            listed.add(model.model_path)
            entry = stat_entry("ollama", str(name), f"ollama:{name}", model.model_path,
                               kind="model", attached=model.projectors)
            if entry.kind == "missing":
                partial = os.path.exists(model.model_path + "-partial")
                entry = Entry("ollama", str(name), f"ollama:{name}", model.model_path,
                              "partial" if partial else "missing", None,
                              note="the pull is not finished" if partial
                              else f"dangling: blob {os.path.basename(model.model_path)} is missing")
            found.entries.append(entry)
    found.entries += _partial_blobs(root, listed)
    if errors:
        found.notes.append(f"ollama: cannot read {shown(errors[0].filename or manifests, 200)} "
                           f"({shown(errors[0].strerror or errors[0])})")
    found.stores.append(StoreInfo("ollama", root, "unreadable" if errors and not found.entries else "found",
                                  len(found.entries)))
    return found


def _partial_blobs(root: str, listed: set[str]) -> list[Entry]:
    """`sha256-HEX-partial` blobs that no manifest names yet (Ollama writes the manifest last)."""
    blobs = os.path.join(root, "blobs")
    try:
        names = sorted(os.listdir(blobs))
    except OSError:
        return []
    out = []
    for n in names:
        if n.endswith("-partial") and n[: -len("-partial")] not in {os.path.basename(p) for p in listed}:
            out.append(stat_entry("ollama", n, os.path.join(blobs, n), os.path.join(blobs, n), kind="partial",
                                  note="a pull in progress (Ollama names the model when it finishes)"))
    return out
