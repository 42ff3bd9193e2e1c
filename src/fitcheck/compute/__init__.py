"""The compute buffers llama.cpp reserves for its worst-case micro-batch graph, behind one function.

Two methods, chosen per architecture by the registry (fitcheck.archs.compute_method):
- the graph replay (graph.py builds the graph llama.cpp reserves, galloc.py replays ggml-alloc over it):
  byte-exact where it applies;
- the stage model (stage.py): the peak of the logits, feed-forward and attention stages with coefficients
  fitted on llama.cpp measurements, for every other architecture.
Pure: no I/O beyond reading the packaged coefficient table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import archs
from ..context import Context, kv_cells
from ..model import ModelSpec, Settings
from . import graph, stage


@dataclass(frozen=True)
class ComputeBuffers:
    device_bytes: int  # the device holding the output layer (logits included)
    layer_bytes: int  # a device holding only blocks
    host_bytes: int  # the CPU-side buffer when every layer is offloaded
    method: archs.Compute
    calibrated: bool  # False: the stage model's default coefficients (architecture not measured)


ComputeFn = Callable[[ModelSpec, Context, Settings, bool, "tuple[archs.LayerKind, ...]"], ComputeBuffers]


def n_ff_effective(spec: ModelSpec) -> int:
    """Width of the feed-forward activations: gate + up for gated FFNs, times the experts used for MoE."""
    width = spec.n_ff * (2 if archs.gated_ffn(spec) else 1)
    if spec.n_expert_used:
        value = spec.metadata.get(f"{spec.architecture}.expert_feed_forward_length")
        expert_ff = int(value) if isinstance(value, int) else spec.n_ff
        width = max(width, 2 * expert_ff * spec.n_expert_used)
    return width


def features(spec: ModelSpec, c: Context, flash_attn: bool, kinds: tuple[archs.LayerKind, ...],
             swa_full: bool) -> stage.Features:
    """What the stage model and the graph shape need, derived from the context and the layer kinds."""
    window = archs.sliding_window(spec)
    tokens = c.reserved_tokens
    caches = {kind.sliding: kv_cells(kind.sliding, c, window, swa_full) for kind in kinds if kind.has_kv}
    n_kv = max(caches.values(), default=0)
    # one KQ mask input per cache (base and sliding), f16 with flash attention, f32 without
    mask_bytes = sum(tokens * cells * (2 if flash_attn else 4) for cells in caches.values())
    n_head = max(spec.n_head) or 1
    encoder = archs.is_embedding_model(spec)
    if encoder:
        mask_bytes = tokens * tokens * (2 if flash_attn else 4)
    return stage.Features(tokens=tokens, n_kv=n_kv, n_head=n_head, n_embd=spec.n_embd, n_vocab=spec.n_vocab,
                          n_q=n_head * spec.head_dim_k, n_ff_eff=n_ff_effective(spec), flash_attn=flash_attn,
                          encoder=encoder, mask_bytes=mask_bytes)


def graph_shape(f: stage.Features, c: Context, settings: Settings) -> graph.Shape:
    """The micro-batch llama.cpp reserves its compute buffer for (llama_context::sched_reserve)."""
    return graph.Shape(tokens=f.tokens, outputs=c.n_ubatch, n_stream=c.n_stream, n_kv=f.n_kv,
                       flash_attn=f.flash_attn, cache_type_k=settings.cache_type_k,
                       cache_type_v=settings.cache_type_v)


def build_graph(spec: ModelSpec, c: Context, settings: Settings, flash_attn: bool,
                kinds: tuple[archs.LayerKind, ...], with_output: bool = True) -> graph.Graph:
    """llama.cpp's worst-case graph for a graph-replay architecture (benchmarks inspect it node by node)."""
    shape = graph_shape(features(spec, c, flash_attn, kinds, settings.swa_full), c, settings)
    return graph.build_transformer(spec, shape, archs.graph_features(spec), with_output)


def compute_buffers(spec: ModelSpec, c: Context, settings: Settings, flash_attn: bool,
                    kinds: tuple[archs.LayerKind, ...]) -> ComputeBuffers:
    f = features(spec, c, flash_attn, kinds, settings.swa_full)
    method = archs.compute_method(spec)
    coefficients, calibrated_error = stage.calibration(spec.architecture)
    device, layer, host = stage.peak(f, coefficients)
    if method is archs.Compute.GRAPH:
        shape = graph_shape(f, c, settings)
        device, layer = _replayed(spec, shape)
    return ComputeBuffers(device, layer, host, method, calibrated_error is not None or method is archs.Compute.GRAPH)


_REPLAYED: OrderedDict[tuple[Any, ...], tuple[int, int]] = OrderedDict()
_REPLAY_MEMO = 512


def _replayed(spec: ModelSpec, shape: graph.Shape) -> tuple[int, int]:
    """The replayed buffers (with and without the output head), remembered per graph: the quants of one model,
    its sweep and its context search share shapes, and weights' types never enter the graph."""
    key = (_graph_key(spec), shape)
    found = _REPLAYED.get(key)
    if found is None:
        features_ = archs.graph_features(spec)
        found = (graph.build_transformer(spec, shape, features_).buffer_size(),
                 graph.build_transformer(spec, shape, features_, with_output=False).buffer_size())
        _REPLAYED[key] = found
        if len(_REPLAYED) > _REPLAY_MEMO:
            _REPLAYED.popitem(last=False)
    else:
        _REPLAYED.move_to_end(key)
    return found


def _graph_key(spec: ModelSpec) -> tuple[Any, ...]:
    """Everything of a spec the graph builder reads: shapes and names, hyperparameters, the architecture's
    scalar metadata; not the weights' types or sizes (external to the compute buffer)."""
    prefix = spec.architecture + "."
    scalars = tuple(sorted((k, v) for k, v in spec.metadata.items()
                           if k.startswith(prefix) and isinstance(v, (int, float, str, bool))))
    return (spec.architecture, spec.n_layer, spec.n_embd, spec.n_head, spec.n_head_kv, spec.head_dim_k,
            spec.head_dim_v, spec.n_vocab, spec.n_ff, spec.n_expert, spec.n_expert_used,
            tuple((t.name, t.shape) for t in spec.tensors), scalars)


def stage_buffers(spec: ModelSpec, c: Context, settings: Settings, flash_attn: bool,
                  kinds: tuple[archs.LayerKind, ...]) -> ComputeBuffers:
    """The stage model alone (cheap), whatever the architecture's own method."""
    coefficients, calibrated_error = stage.calibration(spec.architecture)
    device, layer, host = stage.peak(features(spec, c, flash_attn, kinds, settings.swa_full), coefficients)
    return ComputeBuffers(device, layer, host, archs.Compute.STAGE, calibrated_error is not None)


def anchored(spec: ModelSpec, anchor: Context, settings: Settings, flash_attn: bool,
             kinds: tuple[archs.LayerKind, ...]) -> ComputeFn | None:
    """A cheap stand-in for compute_buffers near one context: the exact buffers there, moved to another
    context by the stage model's difference between the two. For a search that confirms its answer with the
    exact method; None where the exact method is already cheap (the stage model itself)."""
    if archs.compute_method(spec) is not archs.Compute.GRAPH:
        return None
    exact = compute_buffers(spec, anchor, settings, flash_attn, kinds)
    base = stage_buffers(spec, anchor, settings, flash_attn, kinds)

    def near(spec_: ModelSpec, c: Context, s: Settings, fa: bool, k: tuple[archs.LayerKind, ...]) -> ComputeBuffers:
        moved = stage_buffers(spec_, c, s, fa, k)
        return ComputeBuffers(exact.device_bytes + moved.device_bytes - base.device_bytes,
                              exact.layer_bytes + moved.layer_bytes - base.layer_bytes,
                              exact.host_bytes + moved.host_bytes - base.host_bytes, exact.method, exact.calibrated)

    return near
