"""What llama-server allocates beside the model: a vision projector (--mmproj), a draft model for speculative
decoding (-md with -ngld/-cd/-ctkd/-ctvd) and LoRA adapters (--lora), each as an `Extra` the planner places.

Rules from llama.cpp:
- mmproj (tools/mtmd/clip.cpp): every projector tensor is loaded on the first GPU backend unless
  `--no-mmproj-offload`; clip reserves its own compute buffer for the largest image (a warm-up graph at
  `clip.vision.image_size`). Its size here is an approximation (the patch embeddings and a few hidden states,
  plus the attention scores without flash attention), marked as such in a note.
- draft (tools/server/server.cpp, load_model): the draft gets its own context of `-cd` cells, or the main
  context per slot (`n_ctx / n_parallel`) when -cd is 0, with one sequence, the draft cache types
  (-ctkd/-ctvd, default f16) and `-ngld` layers offloaded (default: all, like -ngl).
- LoRA (src/llama-adapter.cpp): each `*.lora_a`/`*.lora_b` tensor is allocated in the buffer type of the
  model tensor it adapts, so it follows that tensor's layer.

The header reads go through sources' readers; everything else here is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from . import archs, quant
from .errors import InputError, UsageError
from .model import Extra, FlashAttn, GiB, ModelSpec, Settings, Tensor
from .text import shown

_LORA_RE = re.compile(r"^(?P<base>.+)\.lora_[ab]$")
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class SideFile:
    """The header of a GGUF that is not a model: its metadata and its tensors (with their sizes)."""

    path: str
    metadata: dict[str, Any]
    tensors: tuple[Tensor, ...]

    @property
    def kind(self) -> str | None:
        """'mmproj', 'lora' or None (a model, or something else)."""
        general_type = self.metadata.get("general.type")
        if general_type == "mmproj" or archs.is_projector(str(self.metadata.get("general.architecture"))):
            return "mmproj"
        if general_type == "adapter" or any(_LORA_RE.match(t.name) for t in self.tensors[:8]):
            return "lora"
        return None

    @property
    def weights_bytes(self) -> int:
        return sum(t.size_bytes for t in self.tensors)


def read_side_file(path: str) -> SideFile:
    """Read a projector's or an adapter's header (I/O through sources.gguf_header)."""
    from .sources.gguf_header import FileSource, parse_header

    try:
        with FileSource(path) as source:
            header = parse_header(source, path)
    except FileNotFoundError:
        raise InputError(f"{shown(path, 200)}: no such file") from None
    except OSError as exc:
        raise InputError(f"{shown(path, 200)}: cannot read ({shown(exc.strerror or exc)})") from exc
    tensors = []
    for info in header.tensors:
        try:
            ttype = quant.tensor_type(info.type_id)
        except (KeyError, TypeError):
            raise InputError(f"{shown(path, 200)}: tensor {shown(info.name)} has an unknown ggml type") from None
        n = 1
        for dim in info.dims:
            n *= int(dim)
        m = _BLOCK_RE.match(info.name)
        tensors.append(Tensor(info.name, ttype.name, tuple(info.dims), quant.row_size(ttype.name, n),
                              int(m[1]) if m else None))
    return SideFile(path, dict(header.metadata), tuple(tensors))


def _int(meta: dict[str, Any], key: str, default: int = 0) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def mmproj_compute_bytes(meta: dict[str, Any], flash_attn: bool) -> int:
    """Approximate clip compute buffer for one image of the largest size: F32 patch activations (a few hidden
    states and the feed-forward), plus the attention scores when flash attention is off."""
    image = _int(meta, "clip.vision.image_size")
    patch = _int(meta, "clip.vision.patch_size")
    n_embd = _int(meta, "clip.vision.embedding_length")
    if not (image and patch and n_embd):
        return 0
    n_pos = (image // patch) ** 2 + 1  # patches + the class embedding
    n_ff = _int(meta, "clip.vision.feed_forward_length", 4 * n_embd)
    n_head = _int(meta, "clip.vision.attention.head_count", 1)
    scores = 0 if flash_attn else n_pos * n_pos * n_head
    return 4 * n_pos * (4 * n_embd + n_ff) + 4 * scores


def mmproj_extra(side: SideFile, flash_attn: bool, offload: bool = True) -> Extra:
    if side.kind != "mmproj":
        raise InputError(f"{shown(side.path, 200)}: not a multimodal projector (no clip metadata)",
                         hint="--mmproj takes the mmproj-*.gguf file that ships with a vision model")
    compute = mmproj_compute_bytes(side.metadata, flash_attn)
    total = side.weights_bytes + compute
    name = side.metadata.get("general.name")
    note = (f"--mmproj {shown(side.path, 120)}: {side.weights_bytes / GiB:.2f} GiB of projector weights and "
            f"~{compute / 2**20:.0f} MiB of compute (approximate: clip's buffer is not measured against llama.cpp)"
            + ("" if offload else "; in RAM (--no-mmproj-offload)"))
    return Extra("mmproj", side.path, shown(name) if isinstance(name, str) and name else side.path,
                 side.weights_bytes, 0, compute, gpu_bytes=total if offload else 0,
                 host_bytes=0 if offload else total, notes=(note,),
                 command_args=("--mmproj", side.path) + (() if offload else ("--no-mmproj-offload",)))


def lora_tensors(side: SideFile, base: ModelSpec) -> tuple[Tensor, ...]:
    """The adapter's tensors, each in the block of the tensor it adapts (llama-adapter.cpp)."""
    names = {t.name: t for t in base.tensors}
    out = []
    for t in side.tensors:
        m = _LORA_RE.match(t.name)
        target = names.get(m["base"]) if m else None
        if m and target is None:
            raise InputError(f"{shown(side.path, 200)}: adapts {shown(m['base'])}, which the model does not have",
                             hint="a LoRA must be made for this model's architecture")
        out.append(replace(t, layer=target.layer if target is not None else t.layer))
    return tuple(out)


def lora_extra(side: SideFile, base: ModelSpec) -> Extra:
    if side.kind != "lora":
        raise InputError(f"{shown(side.path, 200)}: not a LoRA adapter (no *.lora_a/*.lora_b tensors)",
                         hint="convert the adapter with llama.cpp's convert_lora_to_gguf.py")
    tensors = lora_tensors(side, base)
    note = (f"--lora {shown(side.path, 120)}: {side.weights_bytes / 2**20:.1f} MiB, placed with the layers it adapts")
    return Extra("lora", side.path, side.path, side.weights_bytes, tensors=tensors, notes=(note,),
                 command_args=("--lora", side.path))


@dataclass(frozen=True)
class DraftRequest:
    """-md and its options as given."""

    ref: str
    gpu_layers: int | None = None  # -ngld; None: all (auto)
    ctx: int = 0  # -cd; 0: the main context per slot
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"


def draft_settings(request: DraftRequest, main: Settings, main_ctx: int) -> Settings:
    """The draft context's settings as llama-server derives them (server.cpp: params_dft = params_base, then
    n_ctx = -cd or n_ctx / n_parallel, n_parallel = 1, the draft cache types, n_gpu_layers = -ngld)."""
    ctx = request.ctx or max(256, main_ctx // max(1, main.parallel))
    return Settings(ctx=ctx, batch=main.batch, ubatch=main.ubatch, parallel=1, kv_unified=False,
                    cache_type_k=request.cache_type_k, cache_type_v=request.cache_type_v,
                    flash_attn=main.flash_attn if request.cache_type_v in ("f16", "f32", "bf16") else FlashAttn.ON,
                    gpu_layers=request.gpu_layers, gpu_reserve_bytes=0, margin_bytes=0,
                    llama_cpp_build=main.llama_cpp_build, backend=main.backend)


def draft_extra(request: DraftRequest, spec: ModelSpec, main: Settings, main_ctx: int, offload: bool) -> Extra:
    """The draft model's weights, KV cache and compute, split like -ngld splits it: the last N of its
    n_layer + 1 layers on the main accelerator (the output layer counts last), token_embd in RAM."""
    from .estimate import estimate

    s = draft_settings(request, main, main_ctx)
    needs = estimate(spec, s)
    full = spec.n_layer + 1
    ngl = full if request.gpu_layers is None else min(request.gpu_layers, full)
    if not offload:
        ngl = 0
    start = spec.n_layer - ngl  # blocks from here on are offloaded
    gpu_weights = sum(layer.weights_bytes for layer in needs.layers[max(start, 0):])
    gpu_kv = sum(layer.kv_cache_bytes + layer.recurrent_state_bytes for layer in needs.layers[max(start, 0):])
    holds_output = ngl > spec.n_layer
    if holds_output:
        gpu_weights += needs.output_layer_bytes + needs.tied_output_copy_bytes
    kv_total = needs.kv_cache_bytes + needs.recurrent_state_bytes
    host_weights = needs.weights_bytes - gpu_weights + (needs.tied_output_copy_bytes if holds_output else 0)
    gpu_compute = needs.compute_bytes if holds_output else (needs.layer_compute_bytes if ngl else 0)
    host_compute = needs.host_compute_bytes if ngl else needs.compute_bytes
    gpu = gpu_weights + gpu_kv + gpu_compute
    host = host_weights + (kv_total - gpu_kv) + host_compute + needs.output_bytes
    args: tuple[str, ...] = ("-md", request.ref)
    if request.gpu_layers is not None:
        args += ("-ngld", str(request.gpu_layers))
    if request.ctx:
        args += ("-cd", str(request.ctx))
    if request.cache_type_k != "f16":
        args += ("-ctkd", request.cache_type_k)
    if request.cache_type_v != "f16":
        args += ("-ctvd", request.cache_type_v)
    note = (f"draft model {shown(spec.name)}: {needs.weights_bytes / GiB:.2f} GiB weights, "
            f"{kv_total / 2**20:.0f} MiB KV at {needs.ctx:,} cells, {ngl} of {full} layers on the GPU")
    weights = needs.weights_bytes + (needs.tied_output_copy_bytes if holds_output else 0)
    return Extra("draft", request.ref, spec.name, weights, kv_total,
                 gpu_compute + host_compute + needs.output_bytes, gpu_bytes=gpu, host_bytes=host,
                 notes=(note,), command_args=args)


def check_cache_type(flag: str, value: str) -> str:
    value = value.lower()
    if value not in quant.CACHE_TYPES:
        raise UsageError(f"bad {flag} value {value!r}", hint=f"one of {', '.join(quant.CACHE_TYPES)}")
    return value


@dataclass(frozen=True)
class Attachments:
    """The files a llama-server command line adds to the model, as given."""

    mmproj: str | None = None
    mmproj_offload: bool = True
    draft: DraftRequest | None = None
    loras: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.mmproj or self.draft or self.loras)


@dataclass(frozen=True)
class LoadedAttachments:
    """Attachments with their headers read (once, before any model is planned)."""

    request: Attachments
    mmproj: SideFile | None
    draft: ModelSpec | None
    loras: tuple[SideFile, ...]

    def extras(self, spec: ModelSpec, settings: Settings, main_ctx: int, flash_attn: bool,
               offload: bool) -> tuple[Extra, ...]:
        """The Extras for one main model at one context (pure)."""
        out: list[Extra] = []
        if self.mmproj is not None:
            out.append(mmproj_extra(self.mmproj, flash_attn, self.request.mmproj_offload and offload))
        if self.draft is not None and self.request.draft is not None:
            out.append(draft_extra(self.request.draft, self.draft, settings, main_ctx, offload))
        out += [lora_extra(side, spec) for side in self.loras]
        return tuple(out)
