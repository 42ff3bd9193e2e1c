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

from .. import archs, llama_build, quant
from ..context import Context, kv_cells
from ..model import ModelSpec, Settings
from . import graph, sched, stage

# backends whose compute memory the scheduler replay splits (a device buffer + the CPU backend's host buffer,
# CUDA_Host for ggml-cuda), with the device buffer's alignment; others keep one buffer (Vulkan's alignment is
# the device's minStorageBufferOffsetAlignment, unknown here)
SPLIT_BACKENDS = {"cuda": sched.CUDA_ALIGNMENT, "rocm": sched.CUDA_ALIGNMENT, "hip": sched.CUDA_ALIGNMENT,
                  "metal": sched.METAL_ALIGNMENT}


@dataclass(frozen=True)
class ComputeBuffers:
    device_bytes: int  # the device holding the output layer (logits included)
    layer_bytes: int  # a device holding only blocks
    host_bytes: int  # the CPU-side buffer when every layer is offloaded
    method: archs.Compute
    calibrated: bool  # False: the stage model's default coefficients (architecture not measured)
    outputs: int = 0  # logits rows the worst-case graph keeps
    per_backend: bool = False  # True: the scheduler's per-backend buffers (CUDA0 / CUDA_Host) were replayed
    streamed_bytes: int = 0  # first accelerator when layers (weights, KV) stay in host memory: it runs their ops
    streamed_host_bytes: int = 0  # the host buffer then
    expert_streamed_bytes: int = 0  # first accelerator when only routed experts stay in host memory (-cmoe)


ComputeFn = Callable[[ModelSpec, Context, Settings, bool, "tuple[archs.LayerKind, ...]"], ComputeBuffers]


def n_ff_effective(spec: ModelSpec) -> int:
    """Width of the feed-forward activations: gate + up for gated FFNs, times the experts used for MoE."""
    width = spec.n_ff * (2 if archs.gated_ffn(spec) else 1)
    if spec.n_expert_used:
        value = spec.metadata.get(f"{spec.architecture}.expert_feed_forward_length")
        expert_ff = int(value) if isinstance(value, int) else spec.n_ff
        width = max(width, 2 * expert_ff * spec.n_expert_used)
    return width


def output_rows(spec: ModelSpec, c: Context, settings: Settings) -> int:
    """Logits rows of the worst-case graph (llama_context::sched_reserve: min(n_tokens, n_outputs_max)).

    llama-server since n_outputs_max (see fitcheck.llama_build) limits a context to n_parallel x (1 + n_draft)
    outputs, at most n_batch (server-context.cpp server_output_limits); embeddings, encoders and the library's
    default (n_outputs_max = 0) keep n_batch."""
    embeddings = settings.embeddings if settings.embeddings is not None else archs.is_embedding_model(spec)
    if (settings.consumer != "llama-server" or embeddings
            or not llama_build.behaviour(settings.llama_cpp_build).n_outputs_max):
        return c.n_ubatch
    return min(c.n_ubatch, c.n_batch, max(1, c.n_seq) * (1 + max(0, settings.n_draft)))


def features(spec: ModelSpec, c: Context, flash_attn: bool, kinds: tuple[archs.LayerKind, ...],
             settings: Settings) -> stage.Features:
    """What the stage model and the graph shape need, derived from the context and the layer kinds."""
    window = archs.sliding_window(spec)
    tokens = c.reserved_tokens
    caches = {kind.sliding: kv_cells(kind.sliding, c, window, settings.swa_full) for kind in kinds if kind.has_kv}
    n_kv = max(caches.values(), default=0)
    # one KQ mask input per cache (base and sliding): f16 with flash attention (since b9410), else f32
    f16_mask = flash_attn and llama_build.behaviour(settings.llama_cpp_build).kq_mask_f16
    mask_bytes = sum(tokens * cells * (2 if f16_mask else 4) for cells in caches.values())
    n_head = max(spec.n_head) or 1
    rows = output_rows(spec, c, settings)
    encoder = archs.is_embedding_model(spec)
    if encoder:
        mask_bytes = tokens * tokens * (2 if f16_mask else 4)
    return stage.Features(tokens=tokens, n_kv=n_kv, n_head=n_head, n_embd=spec.n_embd, n_vocab=spec.n_vocab,
                          n_q=n_head * spec.head_dim_k, n_ff_eff=n_ff_effective(spec), flash_attn=flash_attn,
                          encoder=encoder, mask_bytes=mask_bytes, outputs=rows, limited=rows < c.n_ubatch)


def graph_shape(f: stage.Features, c: Context, settings: Settings) -> graph.Shape:
    """The micro-batch llama.cpp reserves its compute buffer for (llama_context::sched_reserve)."""
    rules = llama_build.behaviour(settings.llama_cpp_build)
    return graph.Shape(tokens=f.tokens, outputs=f.outputs, n_stream=c.n_stream, n_kv=f.n_kv,
                       flash_attn=f.flash_attn, cache_type_k=settings.cache_type_k,
                       cache_type_v=settings.cache_type_v, mask_cast=f.flash_attn and not rules.kq_mask_f16,
                       embd_input=rules.inp_embd_input)


def build_graph(spec: ModelSpec, c: Context, settings: Settings, flash_attn: bool,
                kinds: tuple[archs.LayerKind, ...], with_output: bool = True) -> graph.Graph:
    """llama.cpp's worst-case graph for a graph-replay architecture (benchmarks inspect it node by node)."""
    shape = graph_shape(features(spec, c, flash_attn, kinds, settings), c, settings)
    return graph.build_transformer(spec, shape, archs.graph_features(spec), with_output)


def compute_buffers(spec: ModelSpec, c: Context, settings: Settings, flash_attn: bool,
                    kinds: tuple[archs.LayerKind, ...]) -> ComputeBuffers:
    f = features(spec, c, flash_attn, kinds, settings)
    method = archs.compute_method(spec)
    coefficients, calibrated_error = stage.calibration(spec.architecture)
    device, layer, host = stage.peak(f, coefficients)
    split = settings.backend in SPLIT_BACKENDS
    if method is archs.Compute.GRAPH:
        shape = graph_shape(f, c, settings)
        if split:
            device, layer, host, streamed, streamed_host, experts = _replayed(
                spec, shape, (SPLIT_BACKENDS[settings.backend or ""], settings.no_kv_offload))
            return ComputeBuffers(device, layer, host, method, True, f.outputs, True, streamed, streamed_host,
                                  experts)
        device, layer = _replayed(spec, shape, None)[:2]
    calibrated = calibrated_error is not None or method is archs.Compute.GRAPH
    if split:
        return _stage_per_backend(spec, f, device, layer, host, method, calibrated, settings)
    return ComputeBuffers(device, layer, host, method, calibrated, f.outputs)


def _stage_per_backend(spec: ModelSpec, f: stage.Features, device: int, layer: int, host: int,
                       method: archs.Compute, calibrated: bool, settings: Settings) -> ComputeBuffers:
    """Per backend without a graph replay: the stage model's buffers, and for layers in host memory the copy
    of the largest weight the accelerator takes in at a time (the output matrix while the logits are alive,
    when the micro-batch keeps enough rows to be offloaded; a block's largest weight beside a layer's peak)."""
    alignment = SPLIT_BACKENDS[settings.backend or ""]
    if llama_build.behaviour(settings.llama_cpp_build).inp_embd_input:
        host += 4 * f.tokens * spec.n_embd  # the inp_embd input (the stage model counts the token path only)
    block, expert, output = 0, 0, 0
    for t in spec.tensors:
        size = _device_bytes(t, alignment)
        if t.layer is not None and 0 <= t.layer < spec.n_layer:
            block = max(block, size)
            if t.is_expert:
                expert = max(expert, size)
        elif t.name == "output.weight" or (spec.tied_embeddings and t.name == "token_embd.weight"):
            output = size
    logits = 4 * f.outputs * spec.n_vocab
    # a KV cache in host memory is written there: the new K (then V) rows of the micro-batch are copied back
    kv_rows = 0 if settings.no_kv_offload else 4 * f.tokens * max(spec.n_head_kv, default=0) * spec.head_dim_k
    if f.outputs >= sched.OFFLOAD_MIN_BATCH:
        streamed, streamed_host = max(layer + block, logits + output), host + kv_rows
    else:  # the output matmul stays on the CPU: its logits and hidden state are in the host buffer
        streamed = max(layer + block, device)
        streamed_host = host + max(kv_rows, 4 * f.outputs * (spec.n_vocab + spec.n_embd))
    return ComputeBuffers(device, layer, host, method, calibrated, f.outputs, True, streamed, streamed_host,
                          max(device, layer + expert))


def _device_bytes(t: Any, alignment: int) -> int:
    """A weight's size in an accelerator buffer: ggml-cuda pads a quantized tensor's last row to
    MATRIX_ROW_PADDING (512) elements."""
    size = int(t.size_bytes)
    pad = t.shape[0] % 512 if t.shape else 0
    if alignment == sched.CUDA_ALIGNMENT and pad and t.ggml_type not in ("F32", "F16", "BF16"):
        size += quant.row_size(t.ggml_type, 512 - pad)
    return size


_REPLAYED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_REPLAY_MEMO = 512  # graphs and per-backend variants remembered
_DEPENDENCIES_KEPT = 16  # per variant: results for that many different sets of copied weights' sizes
# the graphs themselves (a few MiB each), for the replays a sibling quant does not share: its streamed ones
_GRAPHS: OrderedDict[tuple[Any, ...], graph.Graph] = OrderedDict()
_GRAPH_MEMO = 6


def _replayed(spec: ModelSpec, shape: graph.Shape, split: tuple[Any, ...] | None) -> tuple[int, ...]:
    """The replayed buffers, remembered per graph: the quants of one model, its sweep and its context search
    share shapes, and weights' types never enter the graph.

    One buffer (split None): (with the output head, without it). Per backend: see _per_backend."""
    graph_key = (_graph_key(spec), shape)

    def full() -> graph.Graph:  # built only when a replay is not remembered, and kept for the next ones
        found = _GRAPHS.get(graph_key)
        if found is None:
            found = _GRAPHS[graph_key] = graph.build_transformer(spec, shape, archs.graph_features(spec))
            if len(_GRAPHS) > _GRAPH_MEMO:
                _GRAPHS.popitem(last=False)
        else:
            _GRAPHS.move_to_end(graph_key)
        return found

    if split is not None:
        return _per_backend(spec, graph_key, full, split[0], nkvo=bool(split[1]))
    key = (graph_key, None)
    found = _remembered(key)
    if found is None:
        # the blocks-only graph is the full one up to its last layer's output: one walk gives both
        g = full()
        assert g.blocks_end is not None
        found = g.buffer_sizes_to(g.blocks_end)
        _remember(key, found)
    return found


def _remembered(key: tuple[Any, ...]) -> Any:
    found = _REPLAYED.get(key)
    if found is not None:
        _REPLAYED.move_to_end(key)
    return found


def _remember(key: tuple[Any, ...], value: Any) -> None:
    _REPLAYED[key] = value
    if len(_REPLAYED) > _REPLAY_MEMO:
        _REPLAYED.popitem(last=False)


def _per_backend(spec: ModelSpec, graph_key: tuple[Any, ...], full: Callable[[], graph.Graph], alignment: int,
                 nkvo: bool) -> tuple[int, ...]:
    """(device with the output, device with blocks only, host, streamed and its host, experts streamed).

    Every layer offloaded: one accelerator (its buffer and the host's), and two with the blocks split in
    halves (the first one's buffer: a device holding only blocks); token_embd stays in host memory. Then the
    first accelerator and the host with every layer in host memory (partial -ngl: the ops of a micro-batch
    still run on the accelerator, each weight copied in as it is needed, the KV cache views too), and the
    first accelerator with only the routed experts in host memory (-cmoe).

    Each placement is remembered apart, with the sizes of the weights its scheduler copied between backends:
    they are all a replay reads of the weights (the graph holds shapes only). So the quants of a model share
    the fully offloaded replays (they copy no weight: token_embd's lookup runs on the host, where it lives),
    while the streamed ones, which copy every block's weights, are shared only by quants with the same sizes
    (tests/test_compute_memo.py)."""
    n = spec.n_layer
    tensors = {t.name: t for t in spec.tensors}

    def size_of(name: str | None) -> int | None:
        found = tensors.get(name) if name else None
        return None if found is None else _device_bytes(found, alignment)

    def replay(variant: str, n_gpu: int, home: Callable[[graph.Node], int]) -> tuple[int, ...]:
        key = (graph_key, alignment, nkvo, variant)
        entries: list[tuple[tuple[tuple[str | None, int | None], ...], tuple[int, ...]]] = _remembered(key) or []
        for dependencies, result in entries:
            if all(size_of(name) == size for name, size in dependencies):
                return result
        read: dict[str | None, int | None] = {}

        def weight_bytes(t: graph.Node) -> int:
            name = graph.gguf_name(t, n)
            size = size_of(name)
            read[name] = size
            return sched._nbytes(t) if size is None else size

        result = tuple(sched.buffer_sizes(full(), n_gpu, home, alignment, weight_bytes))
        _remember(key, [*entries[-(_DEPENDENCIES_KEPT - 1):], (tuple(read.items()), result)])
        return result

    def one(t: graph.Node) -> int:
        return 1 if t.layer == -1 or (t.cache and nkvo) else 0

    device, host = replay("one", 1, one)
    layer = device
    if n >= 2:
        def two(t: graph.Node) -> int:
            if t.layer == -1 or (t.cache and nkvo):
                return 2
            return 0 if t.layer is not None and t.layer < n // 2 else 1

        layer = replay("two", 2, two)[0]

    def everything_on_host(t: graph.Node) -> int:  # -ngl N <= n_layer: the output layer is in RAM too
        return 1 if t.layer is not None else 0

    def experts_on_host(t: graph.Node) -> int:
        return 1 if t.layer == -1 or (t.cache and nkvo) or t.name.endswith("_exps") else 0

    streamed, streamed_host = replay("streamed", 1, everything_on_host)
    experts = device
    if any(t.is_expert for t in spec.tensors):
        experts = replay("experts", 1, experts_on_host)[0]
    return device, layer, host, streamed, streamed_host, experts


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
    f = features(spec, c, flash_attn, kinds, settings)
    device, layer, host = stage.peak(f, coefficients)
    return ComputeBuffers(device, layer, host, archs.Compute.STAGE, calibrated_error is not None, f.outputs)


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
        d_device, d_layer = moved.device_bytes - base.device_bytes, moved.layer_bytes - base.layer_bytes
        d_host = moved.host_bytes - base.host_bytes
        return ComputeBuffers(exact.device_bytes + d_device, exact.layer_bytes + d_layer, exact.host_bytes + d_host,
                              exact.method, exact.calibrated, exact.outputs, exact.per_backend,
                              exact.streamed_bytes + d_layer, exact.streamed_host_bytes + d_host,
                              exact.expert_streamed_bytes + d_layer)

    return near
