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

import weakref
from collections.abc import Callable
from dataclasses import dataclass

from .galloc import Columns, Tensor, column_sizes
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
    """The scheduler's graph copy as Tensors, in its order (see scheduled)."""
    return scheduled(g, n_gpu, home, weight_bytes).tensors()


@dataclass
class _Static:
    """What the scheduler reads of a graph whatever the placement, indexed once per graph: leafs then nodes
    (then the roots of views that the graph does not list, never scheduled)."""

    nodes: list[Node]
    n_leafs: int
    n_graph: int  # leafs + nodes
    op: list[str]
    srcs: list[tuple[int, ...]]
    view: list[int | None]  # the viewed root
    alloc_view: list[int | None]  # the viewed root where the graph lists it (the allocator's view_of)
    own: list[bool]
    is_input: list[bool]
    external: list[bool]  # op NONE, outside the compute buffer: weights and the KV cache
    weight: list[bool]  # an external that is not KV cache
    batch: list[int]
    nbytes: list[int]
    layout: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    name: list[str]
    compute: list[int]  # nodes that are not views, in order
    leaf: list[bool]


_STATIC: weakref.WeakKeyDictionary[Graph, _Static] = weakref.WeakKeyDictionary()


def _static(g: Graph) -> _Static:
    found = _STATIC.get(g)
    if found is not None and found.n_graph == len(g.leafs) + len(g.nodes):
        return found
    nodes = g.leafs + g.nodes
    index = {id(n): k for k, n in enumerate(nodes)}
    for n in list(nodes):
        root = n.view_src
        if root is not None and id(root) not in index:
            index[id(root)] = len(nodes)
            nodes.append(root)
    n_graph = len(g.leafs) + len(g.nodes)
    external = [n.op == "NONE" and not n.own for n in nodes]
    found = _Static(
        nodes=nodes, n_leafs=len(g.leafs), n_graph=n_graph, op=[n.op for n in nodes],
        srcs=[tuple(index[id(s)] for s in n.srcs) if k < n_graph else () for k, n in enumerate(nodes)],
        view=[index[id(n.view_src)] if n.view_src is not None else None for n in nodes],
        alloc_view=[index[id(n.view_src)] if n.view_src is not None and index[id(n.view_src)] < n_graph else None
                    for n in nodes],
        own=[n.own for n in nodes], is_input=[n.is_input for n in nodes], external=external,
        weight=[e and not n.cache for e, n in zip(external, nodes, strict=True)], batch=[_batch(n) for n in nodes],
        nbytes=[n.nbytes for n in nodes], layout=[(n.type, n.ne, n.nb) for n in nodes], name=[n.name for n in nodes],
        compute=[k for k in range(len(g.leafs), n_graph) if nodes[k].op not in VIEW_OPS],
        leaf=[k < len(g.leafs) for k in range(len(nodes))])
    _STATIC[g] = found
    return found


def scheduled(g: Graph, n_gpu: int, home: Callable[[Node], int],
              weight_bytes: Callable[[Node], int] | None = None) -> Columns:
    """The scheduler's graph copy with a buffer per node: GPUs 0..n_gpu-1, the CPU (host) last.

    `home(external)` says which backend's buffer holds a weight or KV cache tensor; `weight_bytes(weight)`
    what a copy of a weight takes in an accelerator's buffer (weights are recorded by shape only)."""
    cpu = n_gpu
    st = _static(g)
    op, srcs, view, own, weight, batch = st.op, st.srcs, st.view, st.own, st.weight, st.batch
    homes = [home(n) if e else -1 for n, e in zip(st.nodes, st.external, strict=True)]
    n_graph, n_leafs = st.n_graph, st.n_leafs

    def from_cur(k: int) -> int:
        """ggml_backend_sched_backend_id_from_cur (pass 1)."""
        if st.external[k]:
            return homes[k]
        base = view[k]
        if base is not None and not own[base]:
            return homes[base] if st.external[base] else home(st.nodes[base])
        if st.is_input[k]:
            return cpu
        if op[k] not in ("ROPE", "FLASH_ATTN_EXT"):
            for s in srcs[k]:
                if not weight[s]:
                    continue
                b = homes[s]
                if b == cpu and n_gpu and batch[k] >= OFFLOAD_MIN_BATCH:
                    return 0  # op offload: the first accelerator streams the host weight
                return b
        return -1

    where = [from_cur(k) for k in range(n_graph)] + [-1] * (len(st.nodes) - n_graph)
    compute = st.compute
    for walk, gpu_only in ((compute, True), (compute[::-1], True), (compute, False), (compute[::-1], False)):
        cur = -1
        for k in walk:
            b = where[k]
            if b != -1:
                cur = -1 if gpu_only and b == cpu else b
            elif cur != -1:
                where[k] = cur
    for k in compute:  # pass 3: what expansion left (no assigned node at all): the backend of most inputs
        if where[k] == -1:
            votes = [where[s] for s in srcs[k]]
            where[k] = max(range(n_gpu + 1), key=votes.count)
    for k in range(n_leafs, n_graph):  # pass 4: views follow their source, unassigned sources their consumer
        base = view[k]
        if where[k] == -1 and base is not None:
            where[k] = where[base]
        for s in srcs[k]:
            if where[s] == -1:
                vs = view[s]
                where[s] = where[vs] if vs is not None else where[k]
        if where[k] == -1:
            where[k] = 0 if n_gpu else cpu

    # pass 5: splits, and a copy of every source that lives on another backend (one per source and backend).
    # The graph copy indexes the graph's tensors (0..) and, past them, the copies and the views the
    # scheduler adds: extra[k - len(st.nodes)] = (op, nbytes, layout, srcs, view, own, name, backend)
    order: list[int] = []
    extra: list[tuple[str, int, tuple, tuple[int, ...], int | None, bool, str, int]] = []
    base_extra = len(st.nodes)
    copies: dict[tuple[int, int], int] = {}
    srcs_of: dict[int, tuple[int, ...]] = {}
    split_inputs: list[tuple[int, int]] = []
    split_nodes: list[int] = []

    def flush() -> None:
        for src, copy in split_inputs:
            # ggml_view_tensor (op NONE, a view: never allocated, not counted as one of the source's views):
            # one more reader of the source, at the split's start, so it lives until the copy
            root = view[src]
            extra.append(("NONE", st.nbytes[src], st.layout[src], (src,), src if root is None else st.alloc_view[src],
                          own[src], "", where[src]))
            order.append(base_extra + len(extra) - 1)
            order.append(copy)
        order.extend(split_nodes)
        split_inputs.clear()
        split_nodes.clear()

    cur = where[compute[0]] if compute else cpu
    for k in range(n_leafs, n_graph):
        if op[k] in VIEW_OPS:
            split_nodes.append(k)
            continue
        b = where[k]
        new_split = b != cur
        if not new_split and split_inputs:
            new_split = any(weight[s] and homes[s] != cur for s in srcs[k])
        if new_split:
            flush()
            cur = b
        mine = []
        for s in srcs[k]:
            if where[s] != cur:
                copy = copies.get((s, cur))
                if copy is None:
                    size = weight_bytes(st.nodes[s]) if weight[s] and weight_bytes else _nbytes(st.nodes[s])
                    extra.append(("NONE", size, st.layout[s], (), None, True, f"copy#{st.name[s]}", cur))
                    copy = base_extra + len(extra) - 1
                    copies[(s, cur)] = copy
                    split_inputs.append((s, copy))
                mine.append(copy)
            else:
                mine.append(s)
        srcs_of[k] = tuple(mine)
        split_nodes.append(k)
    flush()
    return _columns(st, order, extra, srcs_of, where, cpu)


def _columns(st: _Static, order: list[int], extra: list[tuple[str, int, tuple, tuple[int, ...], int | None, bool,
                                                            str, int]],
             srcs_of: dict[int, tuple[int, ...]], where: list[int], cpu: int) -> Columns:
    """The graph copy for the allocator: the graph's own tensors and, past them, the scheduler's, walked in
    the copy's order (leafs first)."""
    srcs = list(st.srcs)
    for k, mine in srcs_of.items():
        srcs[k] = mine
    n = len(st.nodes)
    return Columns(op=st.op + [e[0] for e in extra], nbytes=st.nbytes + [e[1] for e in extra],
                   layout=st.layout + [e[2] for e in extra], srcs=srcs + [e[3] for e in extra],
                   view_of=st.alloc_view + [e[4] for e in extra], own=st.own + [e[5] for e in extra],
                   is_input=st.is_input + [False] * len(extra), is_output=[False] * (n + len(extra)),
                   leaf=st.leaf + [False] * len(extra), name=st.name + [e[6] for e in extra],
                   buffer=[b if b >= 0 else cpu for b in where] + [e[7] if e[7] >= 0 else cpu for e in extra],
                   order=list(range(st.n_leafs)) + order)


def buffer_sizes(g: Graph, n_gpu: int, home: Callable[[Node], int], alignment: int = CUDA_ALIGNMENT,
                 weight_bytes: Callable[[Node], int] | None = None) -> list[int]:
    """Each backend's compute buffer for the graph: GPUs first (`alignment`), the host buffer last."""
    return column_sizes(scheduled(g, n_gpu, home, weight_bytes), (alignment,) * n_gpu + (HOST_ALIGNMENT,))
