"""A recorder for the subset of ggml's graph API that llama.cpp's graph builders use.

Tensors are recorded, not computed: their op, type, shape (ne) and strides (nb), sources and views, in the
order ggml_build_forward_expand visits them, so fitcheck.compute.galloc can replay the allocator over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .galloc import Columns, Tensor, column_sizes, column_sizes_at

SIZES = {"f32": 4, "i32": 4, "f16": 2, "i64": 8}
Dims = tuple[int, int, int, int]  # ggml's ne / nb: four dimensions, ne0 first


@dataclass(eq=False)
class Node:
    """A tensor under construction: shape (ne), strides (nb), what it is computed from."""

    op: str
    type: str
    ne: Dims
    nb: Dims
    srcs: tuple[Node, ...] = ()
    view_src: Node | None = None
    own: bool = True
    is_input: bool = False
    name: str = ""
    layer: int | None = None  # externals: the layer whose buffer holds them (-1 input, n_layer output)
    cache: bool = False  # externals: KV cache (its own buffers), not weights

    @property
    def nbytes(self) -> int:
        if not self.own:
            return 0
        return SIZES[self.type] * prod(self.ne)


def four(values: tuple[int, ...], fill: int = 1) -> Dims:
    padded = (*values, *(fill,) * (4 - len(values)))
    return padded[0], padded[1], padded[2], padded[3]


def contiguous(ne: tuple[int, ...], type_: str = "f32") -> tuple[Dims, Dims]:
    ne4 = four(ne)
    nb = [SIZES.get(type_, 2)]  # quantized types only appear on external tensors, whose strides do not matter
    for i in range(1, 4):
        nb.append(nb[-1] * ne4[i - 1])
    return ne4, four(tuple(nb))


class Graph:
    """The subset of ggml's graph API that llama.cpp's builders use, recording tensors instead of computing."""

    def __init__(self) -> None:
        self.leafs: list[Node] = []
        self.nodes: list[Node] = []
        self._seen: set[int] = set()
        self.layer: int | None = None  # the layer the builder is in: tags the externals it creates
        self.blocks_end: Node | None = None  # the last repeating layer's output, before any output head

    # leaves ------------------------------------------------------------------------------------------------
    def input(self, name: str, ne: tuple[int, ...], type_: str = "f32") -> Node:
        shape, nb = contiguous(ne, type_)
        return Node("NONE", type_, shape, nb, is_input=True, name=name)

    def external(self, name: str, ne: tuple[int, ...], type_: str = "f16") -> Node:
        """Weights and the KV cache: memory outside the compute buffer."""
        shape, nb = contiguous(ne, type_)
        return Node("NONE", type_, shape, nb, own=False, name=name, layer=self.layer,
                    cache=name.startswith(("cache_", "kview", "vview")))

    # ops ---------------------------------------------------------------------------------------------------
    def _new(self, op: str, ne: tuple[int, ...], srcs: tuple[Node, ...], name: str = "", type_: str = "f32") -> Node:
        shape, nb = contiguous(ne, type_)
        return Node(op, type_, shape, nb, srcs, name=name)

    def _view(self, op: str, a: Node, ne: tuple[int, ...], nb: tuple[int, ...], srcs: tuple[Node, ...] = ()) -> Node:
        ne4 = four(ne)
        nb4 = four(nb, nb[-1] * ne4[len(nb) - 1]) if len(nb) < 4 else four(nb)
        base = a.view_src or a
        return Node(op, a.type, ne4, nb4, srcs or (a,), view_src=base, own=base.own, name=a.name)

    def same(self, op: str, a: Node, *srcs: Node, name: str = "") -> Node:
        """An op whose result has a's shape (norms, element-wise ops, rope, softmax, scale)."""
        return self._new(op, a.ne, (a, *srcs), name)

    def cont_like(self, op: str, a: Node, srcs: tuple[Node, ...] = ()) -> Node:
        """An op on a (possibly strided) view whose result is a fresh contiguous tensor of the same shape."""
        return self._new(op, a.ne, (a, *srcs))

    def mul_mat(self, w: Node, x: Node, name: str = "") -> Node:
        return self._new("MUL_MAT", (w.ne[1], x.ne[1], x.ne[2], x.ne[3]), (w, x), name)

    def mul_mat_id(self, w: Node, x: Node, ids: Node, name: str = "") -> Node:
        return self._new("MUL_MAT_ID", (w.ne[1], ids.ne[0], x.ne[2], 1), (w, x, ids), name)

    def get_rows(self, a: Node, idx: Node, name: str = "") -> Node:
        return self._new("GET_ROWS", (a.ne[0], idx.ne[0], idx.ne[1], a.ne[3]), (a, idx), name)

    def cont(self, a: Node, ne: tuple[int, ...] | None = None, name: str = "") -> Node:
        return self._new("CONT", ne or a.ne, (a,), name)

    def glu(self, op: str, a: Node, b: Node | None = None, name: str = "") -> Node:
        if b is None:  # fused gate+up tensor: the result is half as wide
            return self._new(op, (a.ne[0] // 2, *a.ne[1:]), (a,), name)
        return self._new(op, a.ne, (a, b), name)

    def flash_attn(self, q: Node, k: Node, v: Node, mask: Node, name: str = "") -> Node:
        return self._new("FLASH_ATTN_EXT", (v.ne[0], q.ne[2], q.ne[1], q.ne[3]), (q, k, v, mask), name)

    def reshape(self, a: Node, *ne: int) -> Node:
        shape, nb = contiguous(ne, a.type)
        return self._view("RESHAPE", a, shape, nb)

    def view(self, a: Node, ne: tuple[int, ...], nb: tuple[int, ...]) -> Node:
        return self._view("VIEW", a, ne, nb)

    def permute(self, a: Node, *axes: int) -> Node:
        ne, nb = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne[ax], nb[ax] = a.ne[i], a.nb[i]
        return self._view("PERMUTE", a, tuple(ne), tuple(nb))

    def transpose(self, a: Node) -> Node:
        return self.permute(a, 1, 0, 2, 3)

    def set_rows(self, dst: Node, src: Node, idx: Node) -> Node:
        """Writing K/V into the cache: a view of the (external) cache that consumes src."""
        return self._view("SET_ROWS", dst, dst.ne, dst.nb, (src, idx, dst))

    # graph order -------------------------------------------------------------------------------------------
    def expand(self, t: Node) -> None:
        """ggml_build_forward_expand: parents first, left to right, each tensor once."""
        stack = [(t, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in self._seen:
                continue
            if done:
                self._seen.add(id(node))
                (self.nodes if node.op != "NONE" else self.leafs).append(node)
                continue
            stack.append((node, True))
            for s in reversed(node.srcs):
                if id(s) not in self._seen:
                    stack.append((s, False))

    def tensors(self) -> list[Tensor]:
        return self.columns().tensors()

    def columns(self) -> Columns:
        """The graph as the allocator reads it: one list per Tensor field, no Tensor object per node."""
        order = self.leafs + self.nodes
        index = {id(n): k for k, n in enumerate(order)}
        count = len(order)
        return Columns([n.op for n in order], [n.nbytes for n in order], [(n.type, n.ne, n.nb) for n in order],
                       [tuple(index[id(s)] for s in n.srcs) for n in order],
                       [index[id(n.view_src)] if n.view_src is not None else None for n in order],
                       [n.own for n in order], [n.is_input for n in order], [False] * count,
                       [n.op == "NONE" for n in order], [n.name for n in order], [0] * count)

    def buffer_size(self, alignment: int = 32) -> int:
        return column_sizes(self.columns(), (alignment,))[0]

    def buffer_sizes_to(self, last: Node, alignment: int = 32) -> tuple[int, int]:
        """(this graph's buffer, the buffer of the graph that ends at node `last`): one walk for both, when
        nothing before `last` reads a tensor made after it (an output head after the repeating layers)."""
        order = self.leafs + self.nodes
        checkpoint = next(k for k, n in enumerate(order) if n is last)
        whole, at_last = column_sizes_at(self.columns(), (alignment,), checkpoint)
        return whole[0], at_last[0]
