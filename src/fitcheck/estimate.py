"""The pure estimator: a ModelSpec and Settings in, llama.cpp's allocations out (no I/O, no clocks).

Rules follow llama.cpp's src/llama-context.cpp (context sizing: fitcheck.context), src/llama-kv-cache.cpp
(cells and rows per layer), src/llama-memory-recurrent.cpp (state per sequence); the compute buffers come
from fitcheck.compute.
"""

from __future__ import annotations

from . import archs, compute, quant
from .context import Context, kv_cells, resolve_context
from .errors import UsageError
from .model import FlashAttn, LayerNeed, ModelSpec, Needs, Settings

UNQUANTIZED_CACHE = ("f32", "f16", "bf16")


def validate_settings(settings: Settings) -> None:
    """What can be refused before any model is read (llama.cpp's common/arg.cpp and llama_context checks)."""
    if settings.ctx is not None and settings.ctx < 1:
        raise UsageError("the context must be positive")
    if settings.batch < 1 or settings.ubatch < 1 or settings.parallel < 1:
        raise UsageError("batch, ubatch and parallel must be positive")
    if settings.cache_type_k not in quant.CACHE_TYPES or settings.cache_type_v not in quant.CACHE_TYPES:
        raise UsageError(f"cache types must be one of {', '.join(quant.CACHE_TYPES)}")
    if settings.flash_attn is FlashAttn.OFF and settings.cache_type_v not in UNQUANTIZED_CACHE:
        raise UsageError(f"a quantized V cache ({settings.cache_type_v}) needs flash attention",
                         hint="add -fa on, or use -ctv f16")


def resolve_flash_attn(spec: ModelSpec, settings: Settings) -> tuple[bool, tuple[str, ...]]:
    """Flash attention as llama.cpp resolves it, after the checks that depend on the model."""
    if archs.uses_mla(spec) and settings.cache_type_k != settings.cache_type_v:
        raise UsageError("MLA models (one latent K/V row) need the same K and V cache type, as llama.cpp requires",
                         hint=f"use -ctk {settings.cache_type_k} -ctv {settings.cache_type_k}")
    if settings.flash_attn is FlashAttn.AUTO:
        # llama.cpp's auto turns flash attention on when every device supports it (CUDA, Metal, Vulkan, CPU).
        return True, ("flash attention 'auto' assumed on, as llama.cpp resolves it on CUDA/Metal/CPU",)
    return settings.flash_attn is FlashAttn.ON, ()


def _kv_bytes(kind: archs.LayerKind, c: Context, window: int, settings: Settings) -> int:
    if not kind.has_kv:
        return 0
    cells = kv_cells(kind.sliding, c, window, settings.swa_full)
    return c.n_stream * cells * (quant.row_size(settings.cache_type_k, kind.k_row)
                                 + quant.row_size(settings.cache_type_v, kind.v_row))


def estimate(spec: ModelSpec, settings: Settings, *,
             compute_fn: compute.ComputeFn = compute.compute_buffers) -> Needs:
    """`compute_fn` replaces the compute-buffer method (the context search passes a cheap stand-in)."""
    validate_settings(settings)
    c = resolve_context(spec, settings)
    flash_attn, notes = resolve_flash_attn(spec, settings)
    kinds, arch_notes = archs.layer_kinds(spec)
    window = archs.sliding_window(spec)
    notes += arch_notes
    if c.n_ctx_seq > spec.n_ctx_train > 0:  # llama-context.cpp warns on n_ctx_seq > n_ctx_train (per sequence)
        per_seq = f" ({c.n_ctx_seq:,} per sequence)" if c.n_ctx_seq != c.ctx else ""
        notes += (f"context {c.ctx:,}{per_seq} exceeds the training context {spec.n_ctx_train:,}",)

    layer_weights = [0] * spec.n_layer
    layer_experts = [0] * spec.n_layer
    input_bytes = output_layer_bytes = 0
    for t in spec.tensors:
        if t.layer is not None and 0 <= t.layer < spec.n_layer:
            layer_weights[t.layer] += t.size_bytes
            if t.is_expert:
                layer_experts[t.layer] += t.size_bytes
        elif t.name.startswith("token_embd"):
            input_bytes += t.size_bytes
        else:
            output_layer_bytes += t.size_bytes  # output, output_norm, and blocks beyond n_layer (MTP heads)
    tied_copy = 0
    if spec.tied_embeddings:
        tied_copy = sum(t.size_bytes for t in spec.tensors if t.name == "token_embd.weight")

    n_state_seqs = max(1, c.n_seq)
    embeddings = settings.embeddings if settings.embeddings is not None else archs.is_embedding_model(spec)
    layers = []
    for il, kind in enumerate(kinds):
        cells = kv_cells(kind.sliding, c, window, settings.swa_full) if kind.has_kv else 0
        layers.append(LayerNeed(il, layer_weights[il], layer_experts[il], _kv_bytes(kind, c, window, settings),
                                4 * kind.recurrent_floats * n_state_seqs, kind.sliding, cells))
    buffers = compute_fn(spec, c, settings, flash_attn, kinds)
    if not buffers.calibrated:
        notes += (f"compute buffer for '{spec.architecture}' uses the generic model (not measured against llama.cpp)",)

    return Needs(
        ctx=c.ctx,
        n_ctx=c.n_ctx,
        n_ctx_seq=c.n_ctx_seq,
        flash_attn=flash_attn,
        weights_bytes=spec.weights_bytes,
        kv_cache_bytes=sum(layer.kv_cache_bytes for layer in layers),
        recurrent_state_bytes=sum(layer.recurrent_state_bytes for layer in layers),
        compute_bytes=buffers.device_bytes,
        layer_compute_bytes=buffers.layer_bytes,
        host_compute_bytes=buffers.host_bytes,
        output_bytes=4 * (spec.n_vocab + (spec.n_embd if embeddings else 0)) * n_state_seqs,
        overhead_bytes=settings.gpu_reserve_bytes,
        layers=tuple(layers),
        input_bytes=input_bytes,
        output_layer_bytes=output_layer_bytes,
        tied_output_copy_bytes=tied_copy,
        notes=notes,
        output_rows=buffers.outputs,
        per_backend=buffers.per_backend,
        streamed_compute_bytes=buffers.streamed_bytes,
        streamed_host_compute_bytes=buffers.streamed_host_bytes,
        expert_streamed_compute_bytes=buffers.expert_streamed_bytes,
    )
