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


@dataclass
class Columns:
    """A graph as one list per Tensor field (index i: the i-th tensor): what the allocator's walk reads
    without building a Tensor per node (the scheduler replay hands its graph copies over like this)."""

    op: list[str]
    nbytes: list[int]
    layout: list[tuple]
    srcs: list[tuple[int, ...]]
    view_of: list[int | None]
    own: list[bool]
    is_input: list[bool]
    is_output: list[bool]
    leaf: list[bool]
    name: list[str]
    buffer: list[int]
    order: list[int] | None = None  # the walk (leafs first): indices into the lists; None: all, in list order

    @classmethod
    def of(cls, graph: list[Tensor]) -> Columns:
        return cls([t.op for t in graph], [t.nbytes for t in graph], [t.layout for t in graph],
                   [t.srcs for t in graph], [t.view_of for t in graph], [t.own for t in graph],
                   [t.is_input for t in graph], [t.is_output for t in graph], [t.leaf for t in graph],
                   [t.name for t in graph], [t.buffer for t in graph])

    def reordered(self) -> Columns:
        """The same graph with the walk as list order (indices renumbered; tensors outside it dropped)."""
        if self.order is None:
            return self
        seq = self.order
        pos: list[int | None] = [None] * len(self.op)
        for p, k in enumerate(seq):
            pos[k] = p

        def at(k: int | None) -> int | None:
            return None if k is None else pos[k]

        srcs = [tuple(p for p in (pos[s] for s in self.srcs[k]) if p is not None) for k in seq]
        return Columns([self.op[k] for k in seq], [self.nbytes[k] for k in seq], [self.layout[k] for k in seq], srcs,
                       [at(self.view_of[k]) for k in seq], [self.own[k] for k in seq],
                       [self.is_input[k] for k in seq], [self.is_output[k] for k in seq], [self.leaf[k] for k in seq],
                       [self.name[k] for k in seq], [self.buffer[k] for k in seq])

    def tensors(self) -> list[Tensor]:
        if self.order is not None:
            return self.reordered().tensors()
        return [Tensor(*fields) for fields in zip(self.op, self.nbytes, self.layout, self.srcs, self.view_of,
                                                  self.own, self.is_input, self.is_output, self.leaf, self.name,
                                                  self.buffer, strict=True)]


def buffer_sizes(graph: list[Tensor], alignments: tuple[int, ...],
                 offsets: dict[int, int] | None = None) -> list[int]:
    """Bytes ggml-alloc reserves in each backend's buffer (Tensor.buffer indexes `alignments`): one walk
    over the whole graph, one free list per buffer (ggml_gallocr_reserve_n)."""
    return column_sizes(Columns.of(graph), alignments, offsets)


def column_sizes(g: Columns, alignments: tuple[int, ...], offsets: dict[int, int] | None = None) -> list[int]:
    """buffer_sizes over a graph held as columns."""
    return column_sizes_at(g, alignments, None, offsets)[0]


def column_sizes_at(g: Columns, alignments: tuple[int, ...], checkpoint: int | None,
                    offsets: dict[int, int] | None = None) -> tuple[list[int], list[int]]:
    """column_sizes, and the buffers as they were once node `checkpoint` was placed: the whole walk of a
    graph whose nodes up to there are another graph's (the same tensors, each with the same readers among
    them) gives that graph's buffers too, as ggml-alloc would for it alone."""
    count = len(g.op)
    nbytes, layout, srcs, view_of, own, is_output = g.nbytes, g.layout, g.srcs, g.view_of, g.own, g.is_output
    n_children, n_views = [0] * count, [0] * count
    allocated, offset = [False] * count, [0] * count
    pools = [_Blocks(a) for a in alignments]
    home = list(g.buffer)  # an in-place result lives in its parent's buffer
    inplace = [can_inplace(op) for op in g.op]

    def allocate(i: int) -> None:
        if not own[i] or allocated[i] or view_of[i] is not None:
            return
        allocated[i] = True
        if inplace[i]:
            for p in srcs[i]:
                # only memory this allocator placed can be taken over; views are never placed themselves, so
                # ggml-alloc's branch for reusing a view parent does not fire in this version
                if not allocated[p] or is_output[p]:
                    continue
                if n_children[p] != 1 or n_views[p] != 0 or layout[p] != layout[i]:
                    continue
                offset[i] = offset[p]
                home[i] = home[p]
                allocated[p] = False
                _free_extra(pools[home[p]], offset[p], nbytes[p], nbytes[i])
                if offsets is not None:
                    offsets[i] = offset[i]
                return
        offset[i] = pools[home[i]].alloc(nbytes[i])
        if offsets is not None:
            offsets[i] = offset[i]

    leaf, is_input, op = g.leaf, g.is_input, g.op
    walk = range(count) if g.order is None else g.order
    nodes = [i for i in walk if not leaf[i]]
    for i in walk:
        if leaf[i]:
            allocate(i)
    for i in nodes:
        v = view_of[i]
        if v is not None and op[i] != "NONE":
            n_views[v] += 1
        if is_input[i]:
            allocate(i)
        for p in srcs[i]:
            n_children[p] += 1
            if is_input[p]:
                allocate(p)
    at_checkpoint: list[int] = []
    for i in nodes:
        sources = srcs[i]
        for p in sources:
            allocate(p)
        allocate(i)
        if i == checkpoint:
            at_checkpoint = [pool.max_size for pool in pools]
        for p in sources:
            n_children[p] -= 1
            if n_children[p] == 0 and n_views[p] == 0:
                src = view_of[p]
                if src is not None:
                    n_views[src] -= 1
                    if n_views[src] == 0 and n_children[src] == 0 and allocated[src] and not is_output[src]:
                        pools[home[src]].release(offset[src], nbytes[src])
                        allocated[src] = False
                elif allocated[p] and not is_output[p]:
                    pools[home[p]].release(offset[p], nbytes[p])
                    allocated[p] = False
    return [pool.max_size for pool in pools], at_checkpoint


def _free_extra(blocks: _Blocks, offset: int, parent_bytes: int, node_bytes: int) -> None:
    parent_size, node_size = blocks.align(parent_bytes), blocks.align(node_bytes)
    if parent_size > node_size:
        blocks.release(offset + node_size, parent_size - node_size)
