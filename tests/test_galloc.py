"""fitcheck.compute.galloc replays ggml-alloc: placement rules checked on small hand-made graphs.

(That the replay matches llama.cpp on real graphs is checked in tests/test_accuracy.py, through fitcheck.compute.graph.)
"""

from __future__ import annotations

from fitcheck.compute import galloc, ggml_graph
from fitcheck.compute.galloc import Tensor

F = ("f32", (256, 1, 1, 1), (4, 1024, 1024, 1024))  # one layout for the 1 KiB tensors below
G = ("f32", (512, 1, 1, 1), (4, 2048, 2048, 2048))


def _size(graph, offsets=None):
    return galloc.buffer_size(graph, alignment=32, offsets=offsets)


def test_inputs_first_then_nodes_and_inplace_reuse():
    graph = [Tensor("NONE", 1024, F, leaf=True, is_input=True),  # 0: input
             Tensor("NONE", 0, G, leaf=True, own=False),  # 1: a weight (external)
             Tensor("MUL_MAT", 1024, F, srcs=(1, 0)),  # 2
             Tensor("ADD", 1024, F, srcs=(2, 0)),  # 3: may take over 2 (its only consumer, same layout)
             Tensor("MUL_MAT", 1024, F, srcs=(1, 3))]  # 4: takes the block freed by the input
    offsets: dict[int, int] = {}
    assert _size(graph, offsets) == 2048
    assert offsets == {0: 0, 2: 1024, 3: 1024, 4: 0}


def test_no_reuse_across_layouts_or_shared_parents():
    different = [Tensor("NONE", 1024, F, leaf=True, is_input=True),
                 Tensor("SCALE", 2048, G, srcs=(0,))]  # in-place op, but another layout
    assert _size(different) == 3072
    shared = [Tensor("NONE", 1024, F, leaf=True, is_input=True),
              Tensor("SCALE", 1024, F, srcs=(0,)),  # 0 still has a consumer after this one
              Tensor("ADD", 1024, F, srcs=(1, 0))]  # reuses 1 (last use); 0 is freed after
    offsets: dict[int, int] = {}
    assert _size(shared, offsets) == 2048
    assert offsets[1] == 1024 and offsets[2] == 1024


def test_best_fit_and_views_keep_their_source_alive():
    graph = [Tensor("NONE", 1024, F, leaf=True, is_input=True),  # 0
             Tensor("MUL_MAT", 4096, G, srcs=(0,)),  # 1: 4 KiB
             Tensor("VIEW", 0, F, srcs=(1,), view_of=1),  # 2: a view keeps 1 alive until 3 has run
             Tensor("MUL_MAT", 1024, F, srcs=(2,)),  # 3: 0 is free by now, so it fits the input's hole
             Tensor("MUL_MAT", 2048, G, srcs=(3,))]  # 4: 1 was freed after 3: its 4 KiB hole is the best fit
    offsets: dict[int, int] = {}
    assert _size(graph, offsets) == 5120
    assert offsets[3] == 0 and offsets[4] == 1024


def test_outputs_are_never_freed_or_reused():
    graph = [Tensor("NONE", 1024, F, leaf=True, is_input=True),
             Tensor("SCALE", 1024, F, srcs=(0,), is_output=True),  # reuses the input in place
             Tensor("SCALE", 1024, F, srcs=(1,)),  # may not take over the output: a new block
             Tensor("SCALE", 1024, F, srcs=(2,)),
             Tensor("MUL_MAT", 1024, F, srcs=(3,))]  # the output's block stays taken
    offsets: dict[int, int] = {}
    assert _size(graph, offsets) == 3072
    assert offsets[1] == 0 and offsets[2] == offsets[3] == 1024 and offsets[4] == 2048


def test_alignment_rounds_every_block():
    graph = [Tensor("NONE", 10, F, leaf=True, is_input=True), Tensor("NONE", 10, F, leaf=True, is_input=True)]
    assert galloc.buffer_size(graph, alignment=32) == 64
    assert galloc.buffer_size(graph, alignment=128) == 256


def test_expand_orders_parents_first_left_to_right():
    g = ggml_graph.Graph()
    a = g.input("a", (4,))
    b = g.same("SCALE", a, name="b")
    c = g.same("SCALE", a, name="c")
    d = g._new("ADD", (4,), (c, b), "d")
    g.expand(d)
    assert [n.name for n in g.nodes] == ["c", "b", "d"] and [n.name for n in g.leafs] == ["a"]


def test_one_walk_gives_the_blocks_only_graph_too(tmp_path):
    """The graph of a device holding only repeating layers is the full graph up to the last layer's output:
    the full walk's buffers at that node equal a walk of that graph alone (dense, MoE, MLA; FA on/off)."""
    import itertools

    from fitcheck import archs, compute
    from fitcheck.compute import graph
    from fitcheck.context import resolve_context
    from fitcheck.model import Settings
    from fitcheck.sources.gguf import load_local
    from tests import gguf_builder as synth

    layouts = {
        "qwen2": synth.llama_layout(arch="qwen2", n_layer=4, n_embd=256, n_head=8, n_head_kv=2, n_ff=512,
                                    n_vocab=1000, n_ctx_train=8192, attn_bias=True, name="dense"),
        "qwen3moe": synth.moe_layout(n_layer=3, n_embd=256, n_head=8, n_head_kv=2, head_dim=32, n_vocab=1000,
                                     n_expert=8, n_expert_used=2),
    }
    checked = 0
    for arch, (meta, tensors) in layouts.items():
        path = tmp_path / f"{arch}.gguf"
        synth.write_header_only(path, arch, meta, tensors)
        spec = load_local(str(path))
        kinds, _ = archs.layer_kinds(spec)
        for ctx, ubatch, fa in itertools.product((512, 5000), (7, 512), ("on", "off")):
            s = Settings(ctx=ctx, ubatch=ubatch, flash_attn=fa)
            c = resolve_context(spec, s)
            shape = compute.graph_shape(compute.features(spec, c, fa == "on", kinds, s), c, s)
            full = graph.build_transformer(spec, shape, archs.graph_features(spec))
            blocks = graph.build_transformer(spec, shape, archs.graph_features(spec), with_output=False)
            assert full.buffer_sizes_to(full.blocks_end) == (full.buffer_size(), blocks.buffer_size())
            assert blocks.buffer_size() <= full.buffer_size()  # the logits are not part of it
            checked += 1
    assert checked == 16
