"""Safetensors repos on the Hub: config.json + the safetensors headers -> a native-dtype model and what-ifs.

`config.json` (its `text_config` for multimodal wrappers) gives the attention layout; each safetensors file's
header (read with huggingface_hub's `parse_safetensors_file_metadata`, the per-file half of
`get_safetensors_metadata`, so no index download into the HF cache and no extra HEADs) gives every tensor's
dtype and shape. The what-if rows price each weight matrix at a llama.cpp file type's typical bits per weight
(data/quant_types.yaml) and keep 1-D tensors F32, as convert_hf_to_gguf.py + llama-quantize would: estimates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from .. import quant
from ..archs import hf_architecture
from ..errors import HubError, InputError
from ..model import ModelSpec, Tensor
from . import cache, hf, settings, transport
from .types import Choice, Model, QuantSet

T = TypeVar("T")

WHAT_IF = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
               "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
SKIP = re.compile(r"vision|visual|multi_modal_projector|mm_projector|audio|image_newline", re.I)
LAYER = re.compile(r"(?:layers|h|blocks|block)\.(\d+)\.")


def _cached(kind: str, listing: hf.Listing, path: str, fetch: Callable[[], T]) -> T:
    """A file's derived content, cached by (endpoint, repo, commit, path, etag)."""
    f = listing.get(path)
    key = (settings.endpoint(), listing.repo, listing.commit, path, (f.etag if f else "") or "")
    return cache.cached(kind, key, fetch, what=f"hf:{listing.repo}/{path}", offline_hint="run once online")


def _get_json(listing: hf.Listing, path: str) -> dict[str, Any]:
    what = f"hf:{listing.repo}/{path}"

    def fetch() -> dict[str, Any]:
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(listing.repo, path, revision=listing.commit, endpoint=settings.endpoint())
        response = transport.send("GET", url, settings.request_headers(True), what)
        try:
            data: dict[str, Any] = json.loads(response.content)
        except ValueError:
            raise InputError(f"{what}: not valid JSON") from None
        return data

    return _cached("json", listing, path, fetch)


def _tensors(listing: hf.Listing, path: str) -> dict[str, list[Any]]:
    """name -> [dtype, shape] for one safetensors file."""
    what = f"hf:{listing.repo}/{path}"

    def fetch() -> dict[str, list[Any]]:
        from huggingface_hub.errors import SafetensorsParsingError

        try:
            meta = transport.hub_call(what, lambda: hf.api().parse_safetensors_file_metadata(
                listing.repo, path, revision=listing.commit, timeout=settings.timeout_s()))
        except SafetensorsParsingError as exc:
            raise InputError(f"{what}: not a valid safetensors file ({exc})") from None
        return {name: [info.dtype, list(info.shape)] for name, info in meta.tensors.items()}

    return _cached("safetensors", listing, path, fetch)


def weight_files(listing: hf.Listing) -> list[str]:
    paths = {f.path for f in listing.files}
    if "model.safetensors.index.json" in paths:
        index = _get_json(listing, "model.safetensors.index.json")
        return sorted(set(index.get("weight_map", {}).values()))
    if "model.safetensors" in paths:
        return ["model.safetensors"]
    return sorted(p for p in paths if p.endswith(".safetensors") and "/" not in p)


def load_safetensors_repo(ref: hf.HubRef, listing: hf.Listing, notes: list[str]) -> QuantSet:
    """The native-dtype model (from config.json and the safetensors headers) and one what-if row per quant."""
    paths = {f.path for f in listing.files}
    files = weight_files(listing) if "config.json" in paths else []
    if not files:
        raise HubError(f"{ref}: no GGUF or safetensors model files in the repository",
                       hint="fitcheck reads GGUF repos, or safetensors repos with a config.json")
    config = _get_json(listing, "config.json")
    tensors: dict[str, list[Any]] = {}
    for path in files:
        tensors.update(_tensors(listing, path))
    native = native_spec(str(ref), config, tensors)
    qs = QuantSet(str(ref), ref.repo, "safetensors", notes=list(notes))
    by_dtype: dict[str, int] = {}
    for dtype, shape in tensors.values():
        by_dtype[dtype] = by_dtype.get(dtype, 0) + _count(shape)
    counts = ", ".join(f"{n / 1e9:.2f}B {d}" for d, n in sorted(by_dtype.items(), key=lambda x: -x[1]))
    qs.notes.append(f"safetensors repo: {counts} parameters; rows other than the native one are estimates "
                    "(typical bits per weight of each llama.cpp quant), not files in the repo")
    dtype = max(by_dtype, key=by_dtype.__getitem__)
    name = ref.repo.split("/")[1]
    qs.choices.append(Choice(f"{dtype} (native)", None, native.file_size_bytes,
                             Model(native, ["-m", f"{name}-{dtype}.gguf"]), estimate=False))
    for q in WHAT_IF:
        spec = what_if(native, q)
        qs.choices.append(Choice(q, None, spec.file_size_bytes, Model(spec, ["-m", f"{name}-{q}.gguf"]),
                                 estimate=True))
    return qs


def _count(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _cfg(config: dict[str, Any], *keys: str, default: Any = 0) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def native_spec(ref: str, config: dict[str, Any], tensors: dict[str, list[Any]]) -> ModelSpec:
    tc = {**config, **config["text_config"]} if isinstance(config.get("text_config"), dict) else config
    model_type = str(tc.get("model_type") or config.get("model_type") or "unknown")
    arch = hf_architecture(model_type)
    n_layer = int(_cfg(tc, "num_hidden_layers", "n_layer", "num_layers"))
    n_embd = int(_cfg(tc, "hidden_size", "n_embd", "d_model"))
    n_head = int(_cfg(tc, "num_attention_heads", "n_head"))
    if not (n_layer and n_embd and n_head):
        raise InputError(f"{ref}: config.json lacks num_hidden_layers/hidden_size/num_attention_heads",
                         hint="not a decoder LLM?")
    n_head_kv = int(_cfg(tc, "num_key_value_heads", "n_head_kv", default=n_head))
    head_dim = int(_cfg(tc, "head_dim", default=n_embd // n_head))
    meta: dict[str, Any] = {}
    window = int(_cfg(tc, "sliding_window", default=0) or 0)
    if tc.get("use_sliding_window") is False:
        window = 0
    if window:
        meta[f"{arch}.attention.sliding_window"] = window
        layer_types = tc.get("layer_types")
        if isinstance(layer_types, list) and len(layer_types) == n_layer:
            meta[f"{arch}.attention.sliding_window_pattern"] = [t == "sliding_attention" for t in layer_types]
    if tc.get("kv_lora_rank"):
        meta[f"{arch}.attention.kv_lora_rank"] = int(tc["kv_lora_rank"])
        rope_dim = int(tc.get("qk_rope_head_dim", 0))
        meta[f"{arch}.attention.key_length_mla"] = int(tc.get("qk_nope_head_dim", 0)) + rope_dim
        meta[f"{arch}.rope.dimension_count"] = rope_dim
    out: list[Tensor] = []
    for name, (dtype, shape) in sorted(tensors.items()):
        if SKIP.search(name):
            continue
        out.append(_tensor(name, dtype, [int(d) for d in shape]))
    n_vocab = int(_cfg(tc, "vocab_size", default=0))
    return ModelSpec(
        ref=ref, name=ref.removeprefix("hf:"), architecture=arch, file_type=None, n_layer=n_layer,
        n_ctx_train=int(_cfg(tc, "max_position_embeddings", "n_positions", default=4096)), n_embd=n_embd,
        n_head=(n_head,) * n_layer, n_head_kv=(n_head_kv,) * n_layer, head_dim_k=head_dim, head_dim_v=head_dim,
        n_vocab=n_vocab, tensors=tuple(out), file_size_bytes=sum(t.size_bytes for t in out),
        n_expert=int(_cfg(tc, "num_local_experts", "num_experts", "n_routed_experts", default=0)),
        n_expert_used=int(_cfg(tc, "num_experts_per_tok", default=0)),
        n_ff=int(_cfg(tc, "intermediate_size", "n_inner", default=0)), sliding_window=window, metadata=meta,
        notes=("from config.json and safetensors headers: the GGUF converter may add or merge tensors",))


def _tensor(name: str, dtype: str, shape: list[int]) -> Tensor:
    """An HF tensor under llama.cpp's naming where the planner cares (block index, embeddings, experts)."""
    n = _count(shape)
    size = n * DTYPE_BYTES.get(dtype.upper(), 2)
    m = LAYER.search(name)
    ggml_shape = tuple(reversed(shape))
    if m:
        tail = name[m.end():]
        if ".experts." in name or "_exps" in name:
            tail = "ffn_" + tail.replace(".", "_") + "_exps"
        return Tensor(f"blk.{m.group(1)}.{tail}", dtype.upper(), ggml_shape, size, int(m.group(1)))
    if "embed_tokens" in name or name.endswith(("wte.weight", "tok_embeddings.weight")):
        return Tensor("token_embd.weight", dtype.upper(), ggml_shape, size, None)
    if "lm_head" in name or name.endswith("output.weight"):
        return Tensor("output.weight", dtype.upper(), ggml_shape, size, None)
    return Tensor(name, dtype.upper(), ggml_shape, size, None)


def what_if(native: ModelSpec, file_type: str) -> ModelSpec:
    bpw = quant.file_types()[file_type].bits_per_weight
    tensors = []
    for t in native.tensors:
        if len(t.shape) >= 2:
            tensors.append(replace(t, ggml_type=file_type, size_bytes=int(t.n_elements * bpw / 8)))
        else:
            tensors.append(replace(t, ggml_type="F32", size_bytes=t.n_elements * 4))
    return replace(native, file_type=file_type, tensors=tuple(tensors),
                   file_size_bytes=sum(t.size_bytes for t in tensors),
                   notes=native.notes + (f"{file_type} is an estimate: {bpw} bits per weight on average",))
