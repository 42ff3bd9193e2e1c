"""A replay of ggml-alloc's graph allocator: how big llama.cpp's compute buffer must be for a graph.

llama.cpp sizes its compute buffer by walking the worst-case graph once (ggml_gallocr_reserve): graph inputs
are placed first, every node takes the best-fitting free block (or reuses a parent's memory in place), and a
tensor's memory returns to the free list after its last consumer. The buffer is the highest offset reached.
Fragmentation makes that peak depend on the exact order and sizes of the tensors, which no closed formula
tracks, so this module repeats the algorithm of ggml/src/ggml-alloc.c (ggml_dyn_tallocr_alloc/free_bytes,
ggml_gallocr_allocate_node, ggml_gallocr_alloc_graph_impl) on a graph described as plain data. Written by hand
because no library exposes ggml's allocator without loading a model. Single-chunk buffers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ggml_op_can_inplace: ops whose result may take over a parent's memory
INPLACE_OPS = frozenset({
    "FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB", "MUL", "DIV", "SQR", "SQRT",
    "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK", "RMS_NORM", "RMS_NORM_BACK", "CLAMP", "SOFT_MAX",
    "SOFT_MAX_BACK",
})
# ggml_op_desc prints unary ops by their own name; they are GGML_OP_UNARY underneath
UNARY_NAMES = frozenset({"ABS", "SGN", "NEG", "STEP", "TANH", "ELU", "RELU", "SIGMOID", "GELU", "GELU_QUICK", "SILU",
                         "HARDSWISH", "HARDSIGMOID", "EXP", "GELU_ERF", "XIELU", "FLOOR", "CEIL", "ROUND", "TRUNC",
                         "SOFTPLUS", "EXPM1"})


@dataclass
class Tensor:
    """One leaf or node, with what ggml-alloc looks at."""

    op: str
    nbytes: int
    layout: tuple = ()  # (type, ne, nb): in-place reuse needs the same layout as the parent
    srcs: tuple[int, ...] = ()  # indices of the source tensors in the graph
    view_of: int | None = None  # index of the tensor this one views (views own no memory)
    own: bool = True  # False: weights, KV cache and other memory outside the compute buffer
    is_input: bool = False
    is_output: bool = False
    leaf: bool = False
    name: str = ""
    buffer: int = 0  # which backend's compute buffer holds it (ggml_gallocr_new_n: one per backend)


@dataclass
class _State:
    n_children: int = 0
    n_views: int = 0
    allocated: bool = False
    offset: int = 0


@dataclass
class _Blocks:
    """ggml_dyn_tallocr for one chunk: free blocks sorted by offset, the last one open-ended."""

    alignment: int
    free: list[list[int]] = field(default_factory=lambda: [[0, 1 << 62]])
    max_size: int = 0

    def align(self, size: int) -> int:
        return -(-size // self.alignment) * self.alignment

    def alloc(self, size: int) -> int:
        size = self.align(size)
        best, best_size = -1, None
        for i, (_, block_size) in enumerate(self.free[:-1]):
            if block_size >= size and (best_size is None or block_size <= best_size):
                best, best_size = i, block_size
        if best == -1:
            best = len(self.free) - 1
        block = self.free[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del self.free[best]
        self.max_size = max(self.max_size, offset + size)
        return offset

    def release(self, offset: int, size: int) -> None:
        size = self.align(size)
        for i, block in enumerate(self.free):
            if block[0] + block[1] == offset:
                block[1] += size
                if i + 1 < len(self.free) and block[0] + block[1] == self.free[i + 1][0]:
                    block[1] += self.free[i + 1][1]
                    del self.free[i + 1]
                return
            if offset + size == block[0]:
                block[0] = offset
                block[1] += size
                if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == block[0]:
                    self.free[i - 1][1] += block[1]
                    del self.free[i]
                return
        pos = 0
        while pos < len(self.free) and self.free[pos][0] < offset:
            pos += 1
        self.free.insert(pos, [offset, size])


def can_inplace(op: str) -> bool:
    return op in INPLACE_OPS or op in UNARY_NAMES


def buffer_size(graph: list[Tensor], alignment: int = 32, offsets: dict[int, int] | None = None) -> int:
    """Bytes ggml-alloc reserves for this graph in one buffer (leafs first, then nodes, in list order)."""
    return buffer_sizes(graph, (alignment,), offsets)[0]


def buffer_sizes(graph: list[Tensor], alignments: tuple[int, ...],
                 offsets: dict[int, int] | None = None) -> list[int]:
    """Bytes ggml-alloc reserves in each backend's buffer (Tensor.buffer indexes `alignments`): one walk
    over the whole graph, one free list per buffer (ggml_gallocr_reserve_n)."""
    st = [_State() for _ in graph]
    pools = [_Blocks(a) for a in alignments]
    home = [t.buffer for t in graph]  # an in-place result lives in its parent's buffer

    def is_view(i: int) -> bool:
        return graph[i].view_of is not None

    def free_node(i: int) -> None:
        if graph[i].is_output:
            return
        pools[home[i]].release(st[i].offset, graph[i].nbytes)
        st[i].allocated = False

    def allocate(i: int) -> None:
        t = graph[i]
        if not t.own or st[i].allocated or is_view(i):
            return
        st[i].allocated = True
        if can_inplace(t.op):
            for p in t.srcs:
                parent = graph[p]
                # only memory this allocator placed can be taken over; views are never placed themselves, so
                # ggml-alloc's branch for reusing a view parent does not fire in this version
                if not st[p].allocated or parent.is_output:
                    continue
                if parent.layout != t.layout or st[p].n_children != 1 or st[p].n_views != 0:
                    continue
                st[i].offset = st[p].offset
                home[i] = home[p]
                st[p].allocated = False
                _free_extra(pools[home[p]], st[p].offset, parent.nbytes, t.nbytes)
                if offsets is not None:
                    offsets[i] = st[i].offset
                return
        st[i].offset = pools[home[i]].alloc(t.nbytes)
        if offsets is not None:
            offsets[i] = st[i].offset

    leafs = [i for i, t in enumerate(graph) if t.leaf]
    nodes = [i for i, t in enumerate(graph) if not t.leaf]
    for i in leafs:
        allocate(i)
    for i in nodes:
        t = graph[i]
        if t.view_of is not None and t.op != "NONE":
            st[t.view_of].n_views += 1
        if t.is_input:
            allocate(i)
        for p in t.srcs:
            st[p].n_children += 1
            if graph[p].is_input:
                allocate(p)
    for i in nodes:
        for p in graph[i].srcs:
            allocate(p)
        allocate(i)
        for p in graph[i].srcs:
            st[p].n_children -= 1
            if st[p].n_children == 0 and st[p].n_views == 0:
                src = graph[p].view_of
                if src is not None:
                    st[src].n_views -= 1
                    if st[src].n_views == 0 and st[src].n_children == 0 and st[src].allocated:
                        free_node(src)
                elif st[p].allocated:
                    free_node(p)
    return [pool.max_size for pool in pools]


def _free_extra(blocks: _Blocks, offset: int, parent_bytes: int, node_bytes: int) -> None:
    parent_size, node_size = blocks.align(parent_bytes), blocks.align(node_bytes)
    if parent_size > node_size:
        blocks.release(offset + node_size, parent_size - node_size)
