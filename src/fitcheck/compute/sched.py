"""A replay of ggml-backend's scheduler: which backend computes each node, and what it copies between them.

With an accelerator, llama.cpp's compute memory is one buffer per backend (CUDA0, …, and the CPU backend's,
which is the GPU's pinned host buffer type: `CUDA_Host`). ggml_backend_sched_split_graph decides where each
node runs and inserts a copy wherever a node reads a tensor that lives on another backend; ggml-alloc then
sizes every buffer in one walk. This module repeats those passes (ggml/src/ggml-backend.cpp, passes 1-5 and
the graph copy) on a recorded graph, so fitcheck.compute.galloc can size each buffer. Written by hand for the
same reason as galloc: no library exposes the scheduler without loading a model.

Assumed, as for the graphs fitcheck builds: every backend supports every op (CUDA/ROCm/Metal do for these
families) and none reads another's buffers (ggml-cuda and ggml-metal support only their own buffer types);
one copy of the inputs (no pipeline parallelism); ops that read weights in host memory run on the first
accelerator once the batch is large enough (op offload, on by default: CUDA's get_op_batch_size >= 32).
"""

from __future__ import annotations

from collections.abc import Callable

from .galloc import Tensor
from .ggml_graph import SIZES, Graph, Node

VIEW_OPS = frozenset({"RESHAPE", "VIEW", "PERMUTE", "TRANSPOSE"})  # ggml_is_view_op
OFFLOAD_MIN_BATCH = 32  # ggml-cuda: op_offload_min_batch_size (GGML_OP_OFFLOAD_MIN_BATCH)
CUDA_ALIGNMENT = 128  # ggml_backend_cuda_buffer_type_get_alignment
METAL_ALIGNMENT = 32  # ggml_backend_metal_buffer_type_*_get_alignment
HOST_ALIGNMENT = 32  # CUDA_Host and CPU buffers: TENSOR_ALIGNMENT


def _batch(n: Node) -> int:
    """ggml-cuda's get_op_batch_size: the dimension that counts for offloading an op."""
    if n.op == "GET_ROWS":
        return 0
    if n.op == "MUL_MAT":
        return n.ne[1]
    if n.op in ("MUL_MAT_ID", "ROPE"):
        return n.ne[2]
    return n.ne[1] * n.ne[2] * n.ne[3]


def _nbytes(n: Node) -> int:
    """ggml_nbytes of a tensor's layout (a copy of a strided view is as large as the span it covers)."""
    size = SIZES[n.type]
    return size + sum((ne - 1) * nb for ne, nb in zip(n.ne, n.nb, strict=True)) if all(n.ne) else 0


def schedule(g: Graph, n_gpu: int, home: Callable[[Node], int],
             weight_bytes: Callable[[Node], int] | None = None) -> list[Tensor]:
    """The scheduler's graph copy with a buffer per node: GPUs 0..n_gpu-1, the CPU (host) last.

    `home(external)` says which backend's buffer holds a weight or KV cache tensor; `weight_bytes(weight)`
    what a copy of a weight takes in an accelerator's buffer (weights are recorded by shape only)."""
    cpu = n_gpu
    nodes, leafs = g.nodes, g.leafs
    where: dict[int, int] = {}

    def weight_home(t: Node) -> int | None:
        return home(t) if not t.own and t.op == "NONE" and not t.cache else None

    def from_cur(t: Node) -> int:
        """ggml_backend_sched_backend_id_from_cur (pass 1)."""
        base = t.view_src
        if t.op == "NONE" and not t.own:
            return home(t)
        if base is not None and not base.own:
            return home(base)
        if t.is_input:
            return cpu
        if t.op not in ("ROPE", "FLASH_ATTN_EXT"):
            for s in t.srcs:
                b = weight_home(s)
                if b is None:
                    continue
                if b == cpu and n_gpu and _batch(t) >= OFFLOAD_MIN_BATCH:
                    return 0  # op offload: the first accelerator streams the host weight
                return b
        return -1

    for t in leafs:
        where[id(t)] = from_cur(t)
    for t in nodes:
        where[id(t)] = from_cur(t)

    compute = [t for t in nodes if t.op not in VIEW_OPS]
    for walk, gpu_only in ((compute, True), (compute[::-1], True), (compute, False), (compute[::-1], False)):
        cur = -1
        for t in walk:
            b = where[id(t)]
            if b != -1:
                cur = -1 if gpu_only and b == cpu else b
            elif cur != -1:
                where[id(t)] = cur
    for t in compute:  # pass 3: what expansion left (no assigned node at all): the backend of most inputs
        if where[id(t)] == -1:
            votes = [where.get(id(s), -1) for s in t.srcs]
            where[id(t)] = max(range(n_gpu + 1), key=lambda b: votes.count(b))
    for t in nodes:  # pass 4: views follow their source, unassigned sources their consumer
        if where[id(t)] == -1 and t.view_src is not None:
            where[id(t)] = where.get(id(t.view_src), -1)
        for s in t.srcs:
            if where.get(id(s), -1) == -1:
                where[id(s)] = where.get(id(s.view_src), -1) if s.view_src is not None else where[id(t)]
        if where[id(t)] == -1:
            where[id(t)] = 0 if n_gpu else cpu

    # pass 5: splits, and a copy of every source that lives on another backend (one per source and backend)
    order: list[tuple[Node, int]] = []  # graph copy: (node, backend)
    copies: dict[tuple[int, int], Node] = {}
    srcs_of: dict[int, tuple[Node, ...]] = {}
    split_inputs: list[tuple[Node, Node, int]] = []
    split_nodes: list[Node] = []
    copy_bytes: dict[int, int] = {}

    def flush() -> None:
        for src, copy, b in split_inputs:
            # ggml_view_tensor (op NONE, a view: never allocated, not counted as one of the source's views):
            # one more reader of the source, at the split's start, so it lives until the copy
            dep = Node("NONE", src.type, src.ne, src.nb, (src,), view_src=src.view_src or src, own=src.own)
            order.append((dep, where[id(src)]))
            order.append((copy, b))
        order.extend((n, where[id(n)]) for n in split_nodes)
        split_inputs.clear()
        split_nodes.clear()

    first = next((t for t in nodes if t.op not in VIEW_OPS), None)
    cur = where[id(first)] if first is not None else cpu
    for t in nodes:
        if t.op in VIEW_OPS:
            split_nodes.append(t)
            continue
        b = where[id(t)]
        new_split = b != cur
        if not new_split and split_inputs:
            new_split = any(weight_home(s) not in (None, cur) for s in t.srcs)
        if new_split:
            flush()
            cur = b
        srcs = []
        for s in t.srcs:
            sb = where.get(id(s), cur)
            if sb != cur:
                copy = copies.get((id(s), cur))
                if copy is None:
                    copy = Node("NONE", s.type, s.ne, s.nb, name=f"copy#{s.name}")
                    copies[(id(s), cur)] = copy
                    is_weight = weight_home(s) is not None
                    copy_bytes[id(copy)] = weight_bytes(s) if is_weight and weight_bytes else _nbytes(s)
                    split_inputs.append((s, copy, cur))
                srcs.append(copy)
            else:
                srcs.append(s)
        srcs_of[id(t)] = tuple(srcs)
        split_nodes.append(t)
    flush()
    return _tensors(leafs, order, srcs_of, copy_bytes, where, cpu)


def _tensors(leafs: list[Node], order: list[tuple[Node, int]], srcs_of: dict[int, tuple[Node, ...]],
             copy_bytes: dict[int, int], where: dict[int, int], cpu: int) -> list[Tensor]:
    seq = [(t, where[id(t)]) for t in leafs] + order
    index = {id(n): k for k, (n, _) in enumerate(seq)}
    out = []
    for k, (n, b) in enumerate(seq):
        srcs = srcs_of.get(id(n), n.srcs)
        nbytes = copy_bytes.get(id(n), n.nbytes)
        view = n.view_src
        out.append(Tensor(op=n.op, nbytes=nbytes, layout=(n.type, n.ne, n.nb),
                          srcs=tuple(index[id(s)] for s in srcs if id(s) in index),
                          view_of=index.get(id(view)) if view is not None else None,
                          own=n.own, is_input=n.is_input, leaf=k < len(leafs), name=n.name,
                          buffer=b if b >= 0 else cpu))
    return out


def buffer_sizes(g: Graph, n_gpu: int, home: Callable[[Node], int], alignment: int = CUDA_ALIGNMENT,
                 weight_bytes: Callable[[Node], int] | None = None) -> list[int]:
    """Each backend's compute buffer for the graph: GPUs first (`alignment`), the host buffer last."""
    from .galloc import buffer_sizes as sizes

    tensors = schedule(g, n_gpu, home, weight_bytes)
    return sizes(tensors, (alignment,) * n_gpu + (HOST_ALIGNMENT,))
