"""The pure estimator: a ModelSpec and Settings in, llama.cpp's allocations out (no I/O, no clocks).

Rules follow llama.cpp's src/llama-context.cpp (context padding, micro-batches), src/llama-kv-cache.cpp
(cells and rows per layer), src/llama-memory-recurrent.cpp (state per sequence) and the compute-buffer
model documented in compute_bytes().
"""

from __future__ import annotations

from dataclasses import dataclass

from . import archs, compute, graphs, quant
from .errors import UsageError
from .model import LayerNeed, ModelSpec, Needs, Settings

CTX_PAD = 256  # llama_context pads n_ctx (and n_ctx_seq) to 256 cells
DEFAULT_CTX = 8192


def pad(value: int, to: int = CTX_PAD) -> int:
    return (value + to - 1) // to * to


def default_ctx(spec: ModelSpec) -> int:
    """fitcheck's context when none is given: 8192, or the training context if smaller."""
    return min(DEFAULT_CTX, spec.n_ctx_train) if spec.n_ctx_train > 0 else DEFAULT_CTX


@dataclass(frozen=True)
class Context:
    """How llama_context sizes itself for a requested context (see llama_context's constructor)."""

    ctx: int
    n_ctx: int
    n_ctx_seq: int
    n_seq: int
    n_stream: int  # KV streams: 1 when unified, else one per sequence
    n_batch: int
    n_ubatch: int


def resolve_context(spec: ModelSpec, settings: Settings) -> Context:
    ctx = settings.ctx if settings.ctx else default_ctx(spec)
    if ctx < 1 or settings.batch < 1 or settings.ubatch < 1 or settings.parallel < 1:
        raise UsageError("context, batch, ubatch and parallel must be positive")
    n_seq = settings.parallel
    n_ctx = pad(ctx)
    if settings.kv_unified or n_seq == 1:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = pad(n_ctx // n_seq), n_seq
        n_ctx = n_ctx_seq * n_seq
    n_batch = min(n_ctx, settings.batch)
    return Context(ctx, n_ctx, n_ctx_seq, n_seq, n_stream, n_batch, min(n_batch, settings.ubatch))


def resolve_flash_attn(spec: ModelSpec, settings: Settings) -> tuple[bool, tuple[str, ...]]:
    if settings.cache_type_k not in quant.CACHE_TYPES or settings.cache_type_v not in quant.CACHE_TYPES:
        raise UsageError(f"cache types must be one of {', '.join(quant.CACHE_TYPES)}")
    if archs.uses_mla(spec) and settings.cache_type_k != settings.cache_type_v:
        raise UsageError("MLA models (one latent K/V row) need the same K and V cache type, as llama.cpp requires",
                         hint=f"use -ctk {settings.cache_type_k} -ctv {settings.cache_type_k}")
    if settings.flash_attn == "auto":
        # llama.cpp's auto turns flash attention on when every device supports it (CUDA, Metal, Vulkan, CPU).
        return True, ("flash attention 'auto' assumed on, as llama.cpp resolves it on CUDA/Metal/CPU",)
    if settings.flash_attn == "off" and settings.cache_type_v not in ("f32", "f16", "bf16"):
        raise UsageError(f"a quantized V cache ({settings.cache_type_v}) needs flash attention",
                         hint="add -fa on, or use -ctv f16")
    return settings.flash_attn == "on", ()


def kv_cells(kind: archs.LayerKind, c: Context, window: int, swa_full: bool) -> int:
    """Cells per stream for one layer (llama_kv_cache_iswa sizes the sliding cache separately)."""
    if kind.sliding and not swa_full:
        per_stream_window = window * (c.n_seq if c.n_stream == 1 else 1)
        return min(c.n_ctx_seq, pad(per_stream_window + c.n_ubatch))
    return c.n_ctx_seq


def n_ff_effective(spec: ModelSpec) -> int:
    """Width of the feed-forward activations: gate + up for gated FFNs, times the experts used for MoE."""
    gated = spec.architecture == "phi3" or any(t.name.endswith("ffn_gate.weight") for t in spec.tensors)
    width = spec.n_ff * (2 if gated else 1)
    if spec.n_expert_used:
        value = spec.metadata.get(f"{spec.architecture}.expert_feed_forward_length")
        expert_ff = int(value) if isinstance(value, int) else spec.n_ff
        width = max(width, 2 * expert_ff * spec.n_expert_used)
    return width


def estimate_features(spec: ModelSpec, settings: Settings) -> compute.Features:
    """What the compute-buffer model needs, derived as estimate() derives it."""
    flash_attn, _ = resolve_flash_attn(spec, settings)
    kinds, _ = archs.layer_kinds(spec)
    return _features(spec, resolve_context(spec, settings), flash_attn, kinds, settings.swa_full)


def _features(spec: ModelSpec, c: Context, flash_attn: bool, kinds: tuple[archs.LayerKind, ...],
              swa_full: bool) -> compute.Features:
    window = archs.sliding_window(spec)
    # llama.cpp rounds the reserved micro-batch up to a multiple of the sequences (graph_reserve)
    tokens = -(-c.n_ubatch // max(1, c.n_seq)) * max(1, c.n_seq)
    caches = {kind.sliding: kv_cells(kind, c, window, swa_full) for kind in kinds if kind.has_kv}
    n_kv = max(caches.values(), default=0)
    # one KQ mask input per cache (base and sliding), f16 with flash attention, f32 without
    mask_bytes = sum(tokens * cells * (2 if flash_attn else 4) for cells in caches.values())
    n_head = max(spec.n_head) or 1
    encoder = archs.is_embedding_model(spec)
    if encoder:
        mask_bytes = tokens * tokens * (2 if flash_attn else 4)
    return compute.Features(tokens=tokens, n_kv=n_kv, n_head=n_head, n_embd=spec.n_embd, n_vocab=spec.n_vocab,
                            n_q=n_head * spec.head_dim_k, n_ff_eff=n_ff_effective(spec), flash_attn=flash_attn,
                            encoder=encoder, mask_bytes=mask_bytes)


def graph_shape(f: compute.Features, c: Context, settings: Settings) -> graphs.Shape:
    """The micro-batch llama.cpp reserves its compute buffer for (llama_context::sched_reserve)."""
    return graphs.Shape(tokens=f.tokens, outputs=c.n_ubatch, n_stream=c.n_stream, n_kv=f.n_kv,
                        flash_attn=f.flash_attn, cache_type_k=settings.cache_type_k,
                        cache_type_v=settings.cache_type_v)


def compute_graph(spec: ModelSpec, settings: Settings) -> graphs.Graph:
    """llama.cpp's worst-case graph for this model and these settings (covered architectures only)."""
    features = estimate_features(spec, settings)
    return graphs.build_transformer(spec, graph_shape(features, resolve_context(spec, settings), settings))


def estimate(spec: ModelSpec, settings: Settings) -> Needs:
    c = resolve_context(spec, settings)
    flash_attn, notes = resolve_flash_attn(spec, settings)
    kinds, arch_notes = archs.layer_kinds(spec)
    window = archs.sliding_window(spec)
    notes += arch_notes
    if c.ctx > spec.n_ctx_train > 0:
        notes += (f"context {c.ctx} exceeds the training context {spec.n_ctx_train}",)

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
        cells = kv_cells(kind, c, window, settings.swa_full) if kind.has_kv else 0
        kv = c.n_stream * cells * (quant.row_size(settings.cache_type_k, kind.k_row)
                                   + quant.row_size(settings.cache_type_v, kind.v_row)) if kind.has_kv else 0
        layers.append(LayerNeed(il, layer_weights[il], layer_experts[il], kv,
                                4 * kind.recurrent_floats * n_state_seqs, kind.sliding))
    coefficients, calibrated_error = compute.calibration(spec.architecture)
    features = _features(spec, c, flash_attn, kinds, settings.swa_full)
    device_compute, layer_compute, host_compute = compute.peak(features, coefficients)
    if graphs.covers(spec):
        # replay ggml-alloc over llama.cpp's own graph: exact where the stage model can only approximate
        shape = graph_shape(features, c, settings)
        device_compute = graphs.build_transformer(spec, shape).buffer_size()
        layer_compute = graphs.build_transformer(spec, shape, with_output=False).buffer_size()
    elif calibrated_error is None:
        notes += (f"compute buffer for '{spec.architecture}' uses the generic model (not measured against llama.cpp)",)

    return Needs(
        ctx=c.ctx,
        n_ctx=c.n_ctx,
        n_ctx_seq=c.n_ctx_seq,
        flash_attn=flash_attn,
        weights_bytes=spec.weights_bytes,
        kv_cache_bytes=sum(layer.kv_cache_bytes for layer in layers),
        recurrent_state_bytes=sum(layer.recurrent_state_bytes for layer in layers),
        compute_bytes=device_compute,
        layer_compute_bytes=layer_compute,
        host_compute_bytes=host_compute,
        output_bytes=4 * (spec.n_vocab + (spec.n_embd if embeddings else 0)) * n_state_seqs,
        overhead_bytes=settings.gpu_reserve_bytes,
        layers=tuple(layers),
        input_bytes=input_bytes,
        output_layer_bytes=output_layer_bytes,
        tied_output_copy_bytes=tied_copy,
        notes=notes,
    )
