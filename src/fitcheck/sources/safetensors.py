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
from ..text import quoted, shown
from . import cache, hf, settings, transport, validate
from .types import Choice, Model, QuantSet
from .validate import MAX_CTX, MAX_DIM, MAX_EXPERTS, MAX_HEADS, MAX_LAYERS, MAX_VOCAB

T = TypeVar("T")

WHAT_IF = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS")
# bits per element of every safetensors dtype (safetensors' Dtype enum)
DTYPE_BITS = {"F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F6_E2M3": 6,
              "F6_E3M2": 6, "F4": 4, "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U64": 64, "U32": 32, "U16": 16,
              "U8": 8, "BOOL": 8, "C64": 64}
SKIP = re.compile(r"vision|visual|multi_modal_projector|mm_projector|audio|image_newline", re.I)
LAYER = re.compile(r"(?:layers|h|blocks|block)\.(0|[1-9][0-9]{0,8})\.")
MAX_JSON_BYTES = 16 << 20  # config.json and the index are a few KiB


def _cached(kind: str, listing: hf.Listing, path: str, fetch: Callable[[], T]) -> T:
    """A file's derived content, cached by (endpoint, repo, commit, path, etag)."""
    f = listing.get(path)
    key = (settings.endpoint(), listing.repo, listing.commit, path, (f.etag if f else "") or "")
    return cache.cached(kind, key, fetch, what=f"hf:{listing.repo}/{path}", offline_hint="run once online")


def _get_json(listing: hf.Listing, path: str) -> dict[str, Any]:
    what = f"hf:{listing.repo}/{path}"

    def fetch() -> dict[str, Any]:
        url = settings.file_url(listing.repo, path, listing.commit)
        response = transport.send("GET", url, settings.request_headers(True), what)
        if len(response.content) > MAX_JSON_BYTES:
            raise InputError(f"{shown(what, 200)}: {len(response.content):,} bytes, too large for a {path}")
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError):
            raise InputError(f"{shown(what, 200)}: not valid JSON") from None
        if not isinstance(data, dict):
            raise InputError(f"{shown(what, 200)}: not a JSON object ({validate.describe(data)})")
        return data

    return _cached("json", listing, path, fetch)


def _tensors(listing: hf.Listing, path: str) -> dict[str, list[Any]]:
    """name -> [dtype, shape] for one safetensors file."""
    what = f"hf:{listing.repo}/{path}"

    def parse() -> Any:
        from huggingface_hub.errors import SafetensorsParsingError

        try:
            return hf.api().parse_safetensors_file_metadata(listing.repo, path, revision=listing.commit,
                                                            timeout=settings.timeout_s())
        except SafetensorsParsingError as exc:  # inside hub_call, which maps only the transport's failures
            raise InputError(f"{shown(what, 200)}: not a valid safetensors file ({shown(exc, 160)})",
                             hint=validate.CORRUPT_HINT) from None

    def fetch() -> dict[str, list[Any]]:
        meta = transport.hub_call(what, parse)
        try:
            return {name: [info.dtype, list(info.shape)] for name, info in meta.tensors.items()}
        except TypeError:  # a shape that is not a list
            raise InputError(f"{shown(what, 200)}: not a valid safetensors header (a tensor's shape is not a list)",
                             hint=validate.CORRUPT_HINT) from None

    return _cached("safetensors", listing, path, fetch)


def weight_files(listing: hf.Listing) -> list[str]:
    paths = {f.path for f in listing.files}
    if "model.safetensors.index.json" in paths:
        index = _get_json(listing, "model.safetensors.index.json")
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise InputError(f"hf:{listing.repo}/model.safetensors.index.json: weight_map is "
                             f"{validate.describe(weight_map)}, expected an object of file names",
                             hint=validate.CORRUPT_HINT)
        return sorted(set(weight_map.values()))
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
    for checked in (_tensor(str(ref), name, entry) for name, entry in tensors.items()):  # the vision tower too
        by_dtype[checked.ggml_type] = by_dtype.get(checked.ggml_type, 0) + checked.n_elements
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
        n *= d
    return n


def native_spec(ref: str, config: dict[str, Any], tensors: dict[str, list[Any]]) -> ModelSpec:
    """The model as config.json and the safetensors headers describe it; every value checked
    (sources.validate) before it is used."""
    where = f"{ref}/config.json"
    if not isinstance(config, dict):
        raise InputError(f"{shown(where, 200)}: not a JSON object")
    tc = {**config, **config["text_config"]} if isinstance(config.get("text_config"), dict) else config
    model_type = tc.get("model_type") or config.get("model_type") or "unknown"
    if not isinstance(model_type, str):
        raise validate.Checker(where, {}, source="config.json").fail(
            f"model_type is {validate.describe(model_type)}, expected a string")
    arch = validate.architecture(where, hf_architecture(model_type), key="model_type")

    def get(keys: tuple[str, ...], default: int, lo: int, hi: int) -> int:
        return validate.config_int(where, tc, keys, default, lo, hi)

    n_layer = get(("num_hidden_layers", "n_layer", "num_layers"), 0, 0, MAX_LAYERS)
    n_embd = get(("hidden_size", "n_embd", "d_model"), 0, 0, MAX_DIM)
    n_head = get(("num_attention_heads", "n_head"), 0, 0, MAX_HEADS)
    if not (n_layer and n_embd and n_head):
        raise InputError(f"{shown(ref, 200)}: config.json lacks num_hidden_layers/hidden_size/num_attention_heads",
                         hint="not a decoder LLM?")
    n_head_kv = get(("num_key_value_heads", "n_head_kv"), n_head, 1, MAX_HEADS)
    head_dim = get(("head_dim",), n_embd // n_head, 1, MAX_DIM)
    meta: dict[str, Any] = {}
    window = get(("sliding_window",), 0, 0, MAX_CTX)
    if tc.get("use_sliding_window") is False:
        window = 0
    if window:
        meta[f"{arch}.attention.sliding_window"] = window
        layer_types = tc.get("layer_types")
        if isinstance(layer_types, list) and len(layer_types) == n_layer:
            meta[f"{arch}.attention.sliding_window_pattern"] = [t == "sliding_attention" for t in layer_types]
    rank = get(("kv_lora_rank",), 0, 0, MAX_DIM)
    if rank:
        meta[f"{arch}.attention.kv_lora_rank"] = rank
        rope_dim = get(("qk_rope_head_dim",), 0, 0, MAX_DIM)
        meta[f"{arch}.attention.key_length_mla"] = get(("qk_nope_head_dim",), 0, 0, MAX_DIM) + rope_dim
        meta[f"{arch}.rope.dimension_count"] = rope_dim
    out: list[Tensor] = []
    for name, entry in sorted(tensors.items()):
        if SKIP.search(name):
            continue
        out.append(_tensor(ref, name, entry))
    if not out:
        raise InputError(f"{shown(ref, 200)}: the safetensors headers name no tensors", hint=validate.CORRUPT_HINT)
    present = {t.layer for t in out if t.layer is not None and t.layer < n_layer}
    if present and len(present) < n_layer:
        raise validate.Checker(where, {}, source="config.json").fail(
            f"num_hidden_layers is {n_layer} but the safetensors files hold tensors for {len(present)} of those "
            "layers", hint="a repo with some weight files missing, or a config.json of another model")
    n_expert = get(("num_local_experts", "num_experts", "n_routed_experts"), 0, 0, MAX_EXPERTS)
    n_expert_used = get(("num_experts_per_tok",), 0, 0, validate.MAX_EXPERTS_USED)
    if n_expert_used > n_expert:
        n_expert_used = 0  # a dense config that names a default top-k
    return ModelSpec(
        ref=ref, name=shown(ref.removeprefix("hf:"), 200), architecture=arch, file_type=None, n_layer=n_layer,
        n_ctx_train=get(("max_position_embeddings", "n_positions"), 4096, 0, MAX_CTX), n_embd=n_embd,
        n_head=(n_head,) * n_layer, n_head_kv=(n_head_kv,) * n_layer, head_dim_k=head_dim, head_dim_v=head_dim,
        n_vocab=get(("vocab_size",), 0, 0, MAX_VOCAB), tensors=tuple(out),
        file_size_bytes=sum(t.size_bytes for t in out), n_expert=n_expert, n_expert_used=n_expert_used,
        n_ff=get(("intermediate_size", "n_inner"), 0, 0, MAX_DIM), sliding_window=window, metadata=meta,
        notes=("from config.json and safetensors headers: the GGUF converter may add or merge tensors",))


def _tensor(ref: str, name: str, entry: Any) -> Tensor:
    """An HF tensor under llama.cpp's naming where the planner cares (block index, embeddings, experts),
    its dtype and shape checked."""
    c = validate.Checker(f"{ref}: tensor {quoted(name)}", {}, source="safetensors header")
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], (list, tuple))):
        raise c.fail("no dtype and shape")
    dtype, shape = entry[0].upper(), list(entry[1])
    if dtype not in DTYPE_BITS:
        raise c.fail(f"unknown dtype {quoted(entry[0])}", hint="a newer safetensors dtype? update fitcheck")
    if len(shape) > 8:
        raise c.fail(f"{len(shape)} dimensions")
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= validate.INT64_MAX:
            raise c.fail(f"a dimension of {validate.describe(d)}")
    n = _count(shape)
    if n > validate.INT64_MAX:
        raise c.fail("more than 2^63 elements")
    size = (n * DTYPE_BITS[dtype] + 7) // 8
    m = LAYER.search(name)
    ggml_shape = tuple(reversed(shape))
    if m:
        tail = name[m.end():]
        if ".experts." in name or "_exps" in name:
            tail = "ffn_" + tail.replace(".", "_") + "_exps"
        return Tensor(f"blk.{m.group(1)}.{tail}", dtype, ggml_shape, size, int(m.group(1)))
    if "embed_tokens" in name or name.endswith(("wte.weight", "tok_embeddings.weight")):
        return Tensor("token_embd.weight", dtype, ggml_shape, size, None)
    if "lm_head" in name or name.endswith("output.weight"):
        return Tensor("output.weight", dtype, ggml_shape, size, None)
    return Tensor(name, dtype, ggml_shape, size, None)


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
