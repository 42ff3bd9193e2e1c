"""llama.cpp's worst-case compute graph for the transformer families, rebuilt for the allocator replay.

The compute buffer is whatever ggml-alloc needs for the graph llama.cpp reserves: a micro-batch of n_ubatch
tokens through every layer and the output head. This module builds the same tensors in the same order
(ggml_build_forward_expand's depth-first walk from the same expand calls as src/llama-graph.cpp and
src/models/*.cpp), with their shapes and strides, so the allocator replay sees what llama.cpp sees. Tiny
bookkeeping tensors are kept too: they change where the big ones land. Covered: the dense and MoE transformer
families (llama, mistral3, qwen2, qwen3, qwen3moe, phi3) and deepseek2's MLA; other architectures keep the
calibrated stage model in fitcheck.compute.stage; which one applies is the registry's (fitcheck.archs).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ..archs import GraphFeatures
from ..model import ModelSpec
from .ggml_graph import Graph, Node, contiguous

QUANTIZED_CACHE = frozenset({"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"})


@dataclass(frozen=True)
class Shape:
    """What the graph of one reserve depends on (llama_context::graph_reserve)."""

    tokens: int  # n_ubatch rounded up to a multiple of the streams
    outputs: int  # rows kept for the logits: min(n_ubatch, n_batch)
    n_stream: int  # KV streams (n_seq_max without a unified cache, else 1)
    n_kv: int  # cells per stream
    flash_attn: bool
    cache_type_k: str
    cache_type_v: str
    mask_cast: bool = False  # builds before b9410: an f32 mask input cast to f16 for flash attention
    embd_input: bool = True  # builds before #18898 (b7775 at the earliest): no inp_embd input in the graph


def _names(spec) -> set[str]:
    return {t.name.split(".", 2)[2] if t.name.startswith("blk.") else t.name for t in spec.tensors}


def _hadamard(g: Graph, x: Node, rot: Node) -> Node:
    """llama_mul_mat_hadamard: x viewed as rows of rot's width, multiplied, viewed back."""
    rows = g.reshape(x, rot.ne[0], prod(x.ne) // rot.ne[0])
    return g.reshape(g.mul_mat(rot, rows), *x.ne)


def _rot_width(head_dim: int) -> int:
    n = 64
    while head_dim % (n * 2) == 0:
        n *= 2
    return n


def build_transformer(spec: ModelSpec, s: Shape, features: GraphFeatures, with_output: bool = True) -> Graph:
    """The llama/mistral/qwen2/qwen3/phi3 family, dense or MoE, and deepseek2 (src/models/*.cpp).

    with_output=False leaves out the output head: the graph of a device that holds only repeating layers."""
    g = Graph()
    have = _names(spec)
    T, e, ns = s.tokens, spec.n_embd, s.n_stream
    hd_k, hd_v = spec.head_dim_k, spec.head_dim_v
    kv_v = max(spec.n_head_kv) * hd_v
    mla = "attn_kv_a_mqa.weight" in have
    rot_k = s.cache_type_k in QUANTIZED_CACHE and hd_k % 64 == 0 and not mla  # MLA caches are not rotated
    rot_v = s.cache_type_v in QUANTIZED_CACHE and hd_v % 64 == 0 and not mla
    v_trans = not s.flash_attn
    w = g.external  # weights and KV cache: only their shapes matter

    g.layer = -1  # the input layer: token_embd stays in host memory
    tokens = g.input("inp_tokens", (T,), "i32")
    embd = g.get_rows(w("token_embd", (e, spec.n_vocab)), tokens, "embd")
    g.expand(embd)
    if s.embd_input:
        g.expand(g.input("inp_embd", (e, T)))
    k_rot = g.input("attn_inp_k_rot", (_rot_width(hd_k),) * 2) if rot_k else None
    pos = g.input("inp_pos", (T,), "i32")
    v_rot = g.input("attn_inp_v_rot", (64, 64)) if rot_v else None
    k_idxs = g.input("attn_inp_k_idxs", (T,), "i64")
    v_idxs = None if mla else g.input("attn_inp_v_idxs", (T * kv_v if v_trans else T,), "i64")
    mask = g.input("attn_inp_kq_mask", (s.n_kv, T // ns, 1, ns),
                   "f16" if s.flash_attn and not s.mask_cast else "f32")
    out_ids = g.input("out_ids", (s.outputs,), "i32")
    for leaf in (k_rot, pos, v_rot, k_idxs, v_idxs, mask, out_ids):
        if leaf is not None:
            g.expand(leaf)
    if s.mask_cast:  # ggml_cast(mask, F16): a node, placed where its first reader (attention) is
        mask = g._new("CPY", mask.ne, (mask,), "attn_inp_kq_mask_cnv", "f16")

    fused_qkv = "attn_qkv.weight" in have
    qk_norm = "attn_q_norm.weight" in have
    bias = "attn_q.bias" in have
    tensor_names = {t.name for t in spec.tensors}
    shared = "ffn_up_shexp.weight" in have
    gated = "ffn_gate.weight" in have
    norm_w = bool(spec.metadata.get(f"{spec.architecture}.expert_weights_norm", features.expert_weights_norm))
    n_ff_exp = _meta_int(spec, "expert_feed_forward_length") or spec.n_ff

    cur = embd
    for il in range(spec.n_layer):
        g.layer = il
        inp = cur
        x = g.same("MUL", g.same("RMS_NORM", cur), w("attn_norm", (e,)), name=f"attn_norm-{il}")
        if mla:
            o = _mla_attention(g, spec, s, x, pos, k_idxs, mask, tensor_names, il)
        else:
            o = _attention(g, spec, s, x, pos, (k_rot, v_rot), (k_idxs, v_idxs), mask, fused_qkv, qk_norm, bias, il)
        o = g.mul_mat(w("wo", (o.ne[0], e)), o, f"attn_out-{il}")
        if il == spec.n_layer - 1:
            o, inp = g.get_rows(o, out_ids), g.get_rows(inp, out_ids)
        ffn_inp = g.same("ADD", o, inp, name=f"ffn_inp-{il}")
        x = g.same("MUL", g.same("RMS_NORM", ffn_inp), w("ffn_norm", (e,)), name=f"ffn_norm-{il}")
        if f"blk.{il}.ffn_gate_inp.weight" in tensor_names:
            out = _moe(g, x, spec, n_ff_exp, norm_w, tensor_names, il)
            if shared:
                out = g.same("ADD", out, _dense_ffn(g, x, _shared_ff(spec), True, il, "_shexp"))
        else:
            out = _dense_ffn(g, x, spec.n_ff, gated, il)
        # residual first (phi3): in-place reuse then takes the residual's memory, not the FFN output's
        cur = g.same("ADD", *((ffn_inp, out) if features.residual_first else (out, ffn_inp)), name=f"l_out-{il}")
    g.blocks_end = cur
    if not with_output:
        g.expand(cur)
        return g
    g.layer = spec.n_layer
    cur = g.same("MUL", g.same("RMS_NORM", cur), w("output_norm", (e,)), name="result_norm")
    g.expand(g.mul_mat(w("output", (e, spec.n_vocab)), cur, "result_output"))
    return g


def _attention(g: Graph, spec, s: Shape, x: Node, pos: Node, rots: tuple, idxs: tuple, mask: Node,
               fused_qkv: bool, qk_norm: bool, bias: bool, il: int) -> Node:
    """build_attn with a KV cache: Q/K/V projections, rope, cache writes, attention (llama-graph.cpp)."""
    w, e, T, ns = g.external, spec.n_embd, s.tokens, s.n_stream
    n_head, n_head_kv = max(spec.n_head), max(spec.n_head_kv)
    hd_k, hd_v = spec.head_dim_k, spec.head_dim_v
    kv_k, kv_v = n_head_kv * hd_k, n_head_kv * hd_v
    (k_rot, v_rot), (k_idxs, v_idxs) = rots, idxs
    v_trans = not s.flash_attn
    if fused_qkv:
        qkv = g.mul_mat(w("wqkv", (e, n_head * hd_k + kv_k + kv_v)), x, f"wqkv-{il}")
        q = g.view(qkv, (hd_k, n_head, T), (4, 4 * hd_k, qkv.nb[1]))
        k = g.view(qkv, (hd_k, n_head_kv, T), (4, 4 * hd_k, qkv.nb[1]))
        v = g.view(qkv, (hd_v, n_head_kv, T), (4, 4 * hd_v, qkv.nb[1]))
    else:
        q, k, v = (g.mul_mat(w(n, (e, width)), x, f"{n}-{il}") for n, width in
                   (("Qcur", n_head * hd_k), ("Kcur", kv_k), ("Vcur", kv_v)))
        if bias:
            q, k, v = (g.same("ADD", t, w("b", (t.ne[0],))) for t in (q, k, v))
        q, k, v = g.reshape(q, hd_k, n_head, T), g.reshape(k, hd_k, n_head_kv, T), g.reshape(v, hd_v, n_head_kv, T)
    if qk_norm:
        q = g.same("MUL", g.same("RMS_NORM", q), w("qn", (hd_k,)))
        k = g.same("MUL", g.same("RMS_NORM", k), w("kn", (hd_k,)))
    q = g.same("ROPE", q, pos)
    if fused_qkv:
        q = g.same("SCALE", q)
    k = g.same("ROPE", k, pos)
    if k_rot is not None:
        q, k = _hadamard(g, q, k_rot), _hadamard(g, k, k_rot)
    if v_rot is not None:
        v = _hadamard(g, v, v_rot)
    g.expand(q)
    g.expand(v)
    g.expand(k)
    cache_k = w(f"cache_k_l{il}", (kv_k, s.n_kv * ns))
    cache_v = w(f"cache_v_l{il}", (kv_v, s.n_kv * ns))
    g.expand(g.set_rows(cache_k, g.view(k, (kv_k, T), (4, k.nb[2])), k_idxs))
    if v_trans:  # llama_kv_cache::cpy_v writes a transposed V element by element
        v2 = g.reshape(v, kv_v, T) if _is_contiguous(v) else g.cont(v, (kv_v, T))
        v2 = g.reshape(v2, 1, T * kv_v)
    else:
        v2 = g.view(v, (kv_v, T), (4, v.nb[2]))
    g.expand(g.set_rows(cache_v, v2, v_idxs))
    qv = g.permute(g.view(q, (hd_k, n_head, T // ns, ns), (4, q.nb[1], q.nb[2], q.nb[2] * (T // ns))), 0, 2, 1, 3)
    kc = g.permute(w("kview", (hd_k, n_head_kv, s.n_kv, ns)), 0, 2, 1, 3)
    if s.flash_attn:
        vc = g.permute(w("vview", (hd_v, n_head_kv, s.n_kv, ns)), 0, 2, 1, 3)
        o = g.flash_attn(qv, kc, vc, mask)
        o = g.reshape(o, hd_v * n_head, T)
    else:
        vc = g.permute(w("vview", (s.n_kv, n_head_kv, hd_v, ns)), 0, 2, 1, 3)
        kq = g.same("SOFT_MAX", g.mul_mat(kc, qv, f"kq-{il}"), mask)
        kqv = g.mul_mat(vc, kq, f"kqv-{il}")
        o = g.cont(g.permute(kqv, 0, 2, 1, 3), (hd_v * n_head, T))
    if v_rot is not None:
        o = _hadamard(g, o, v_rot)
    return o


def _mla_attention(g: Graph, spec, s: Shape, x: Node, pos: Node, k_idxs: Node, mask: Node,
                   names: set[str], il: int) -> Node:
    """deepseek2's multi-head latent attention with the absorbed K/V projections (src/models/deepseek2.cpp)."""
    w, e, T, ns = g.external, spec.n_embd, s.tokens, s.n_stream
    n_head = max(spec.n_head)
    rank = _meta_int(spec, "attention.kv_lora_rank")
    n_rot = _meta_int(spec, "rope.dimension_count") or 64
    qk_head = _meta_int(spec, "attention.key_length_mla") or spec.head_dim_k
    v_head = _meta_int(spec, "attention.value_length_mla") or spec.head_dim_v
    nope = qk_head - n_rot
    if f"blk.{il}.attn_q_a.weight" in names:
        q_lora = _meta_int(spec, "attention.q_lora_rank")
        qa = g.mul_mat(w("wq_a", (e, q_lora)), x)
        qa = g.same("MUL", g.same("RMS_NORM", qa), w("q_a_norm", (q_lora,)))
        q = g.mul_mat(w("wq_b", (q_lora, n_head * qk_head)), qa, f"q-{il}")
    else:
        q = g.mul_mat(w("wq", (e, n_head * qk_head)), x, f"q-{il}")
    q = g.reshape(q, qk_head, n_head, T)
    q_nope = g.permute(g.view(q, (nope, n_head, T), (4, q.nb[1], q.nb[2])), 0, 2, 1, 3)
    absorbed = g.mul_mat(w("wk_b", (nope, rank, n_head)), q_nope, f"q_nope_absorbed-{il}")
    absorbed = g.permute(absorbed, 0, 2, 1, 3)
    q_pe = g.cont_like("ROPE", g.view(q, (n_rot, n_head, T), (4, q.nb[1], q.nb[2])), (pos,))
    q = g._new("CONCAT", (rank + n_rot, n_head, T), (absorbed, q_pe), f"Qcur-{il}")
    kv = g.mul_mat(w("wkv_a_mqa", (e, rank + n_rot)), x, f"kv_cmpr_pe-{il}")
    kv_cmpr = g.view(kv, (rank, T), (4, kv.nb[1]))
    kv_cmpr = g.same("MUL", g.cont_like("RMS_NORM", kv_cmpr), w("kv_a_norm", (rank,)))
    v_cur = g.reshape(kv_cmpr, rank, 1, T)
    k_pe = g.cont_like("ROPE", g.view(kv, (n_rot, 1, T), (4, kv.nb[1], kv.nb[1])), (pos,))
    k = g._new("CONCAT", (rank + n_rot, 1, T), (v_cur, k_pe), f"Kcur-{il}")
    g.expand(q)
    g.expand(k)
    cache = w(f"cache_k_l{il}", (rank + n_rot, s.n_kv * ns))
    g.expand(g.set_rows(cache, g.view(k, (rank + n_rot, T), (4, k.nb[2])), k_idxs))
    qv = g.permute(g.view(q, (rank + n_rot, n_head, T // ns, ns), (4, q.nb[1], q.nb[2], q.nb[2] * (T // ns))),
                   0, 2, 1, 3)
    k_view = w("kview", (rank + n_rot, 1, s.n_kv, ns))
    v_view = g.permute(w("vview", (rank, 1, s.n_kv, ns)), 0, 2, 1, 3)
    if s.flash_attn:
        o = g.flash_attn(qv, g.permute(k_view, 0, 2, 1, 3), v_view, mask)
        o = g.mul_mat(w("wv_b", (rank, v_head, n_head)), g.permute(o, 0, 2, 1, 3), f"fattn_mla-{il}")
        o = g.reshape(g.cont(g.permute(o, 0, 2, 1, 3)), v_head * n_head, T)
    else:
        v_cont = g._new("CONT", (s.n_kv, rank, 1, ns), (g.transpose(v_view),), f"v_cont-{il}", "f16")
        kq = g.same("SOFT_MAX", g.mul_mat(g.permute(k_view, 0, 2, 1, 3), qv, f"kq-{il}"), mask)
        kqv = g.mul_mat(v_cont, kq, f"kqv-{il}")
        o = g.mul_mat(w("wv_b", (rank, v_head, n_head)), kqv, f"kqv_mla-{il}")
        o = g.cont(g.permute(o, 0, 2, 1, 3), (v_head * n_head, T))
    return o


def _meta_int(spec: ModelSpec, key: str) -> int:
    """An integer from the metadata, as the source checked it (sources.validate); 0 when absent."""
    value = spec.metadata.get(f"{spec.architecture}.{key}")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _is_contiguous(t: Node) -> bool:
    return t.nb == contiguous(t.ne, t.type)[1]


def _shared_ff(spec) -> int:
    value = spec.metadata.get(f"{spec.architecture}.expert_shared_feed_forward_length")
    if isinstance(value, int):
        return value
    count = _meta_int(spec, "expert_shared_count") or 1
    return (_meta_int(spec, "expert_feed_forward_length") or spec.n_ff) * count


def _dense_ffn(g: Graph, x: Node, n_ff: int, gated: bool, il: int, suffix: str = "") -> Node:
    e = x.ne[0]
    if gated:
        gate = g.mul_mat(g.external("ffn_gate" + suffix, (e, n_ff)), x, f"ffn_gate-{il}")
        up = g.mul_mat(g.external("ffn_up" + suffix, (e, n_ff)), x, f"ffn_up-{il}")
        act = g.glu("SWIGLU", gate, up)
    else:  # phi3: one up tensor holds gate and up
        act = g.glu("SWIGLU", g.mul_mat(g.external("ffn_up" + suffix, (e, 2 * n_ff)), x, f"ffn_up-{il}"))
    return g.mul_mat(g.external("ffn_down" + suffix, (n_ff, e)), act, f"ffn_out-{il}")


# the builder's names for weights -> the GGUF tensor names (blk.N.<name>.weight): what a copy of one weighs
GGUF_NAMES = {"Qcur": "attn_q", "Kcur": "attn_k", "Vcur": "attn_v", "wqkv": "attn_qkv", "wo": "attn_output",
              "qn": "attn_q_norm", "kn": "attn_k_norm", "gate_inp": "ffn_gate_inp", "gate_exps": "ffn_gate_exps",
              "up_exps": "ffn_up_exps", "down_exps": "ffn_down_exps", "wq_a": "attn_q_a",
              "q_a_norm": "attn_q_a_norm", "wq_b": "attn_q_b", "wq": "attn_q", "wk_b": "attn_k_b",
              "wkv_a_mqa": "attn_kv_a_mqa", "kv_a_norm": "attn_kv_a_norm", "wv_b": "attn_v_b"}


def gguf_name(node: Node, n_layer: int) -> str | None:
    """The GGUF tensor an external weight of the recorded graph stands for (None: a bias or unknown)."""
    if node.layer is None or node.cache or node.name == "b":
        return None
    base = GGUF_NAMES.get(node.name, node.name)
    if node.layer < 0 or node.layer >= n_layer:
        return f"{base}.weight"
    return f"blk.{node.layer}.{base}.weight"


def _moe(g: Graph, x: Node, spec, n_ff: int, norm_w: bool, names: set[str], il: int) -> Node:
    """llm_graph_context::build_moe_ffn with softmax gating and SwiGLU experts."""
    e, T = x.ne[0], x.ne[1]
    n_expert, n_used = spec.n_expert, spec.n_expert_used
    scale = spec.metadata.get(f"{spec.architecture}.expert_weights_scale")
    sigmoid = spec.metadata.get(f"{spec.architecture}.expert_gating_func") == 2
    logits = g.mul_mat(g.external("gate_inp", (e, n_expert)), x, f"ffn_moe_logits-{il}")
    probs = g.same("SIGMOID" if sigmoid else "SOFT_MAX", logits)
    probs_r = g.reshape(probs, 1, n_expert, T)
    selection = probs
    if f"blk.{il}.exp_probs_b.bias" in names:
        selection = g.same("ADD", probs, g.external("exp_probs_b", (n_expert,)))
    argsort = g._new("ARGSORT", (n_expert, T), (selection,), f"ffn_moe_argsort-{il}", "i32")
    topk = g.view(argsort, (n_used, T), (4, argsort.nb[1]))
    weights = g.get_rows(probs_r, topk, f"ffn_moe_weights-{il}")
    if norm_w:
        wr = g.reshape(weights, n_used, T)
        total = g._new("SUM_ROWS", (1, T), (wr,))
        total = g.same("CLAMP", total)
        weights = g.reshape(g.same("DIV", wr, total), 1, n_used, T)
    if isinstance(scale, float) and scale not in (0.0, 1.0):
        weights = g.same("SCALE", weights)
    g.expand(weights)  # the routing comes before the experts in llama.cpp's node order
    xr = g.reshape(x, e, 1, T)
    gate = g.mul_mat_id(g.external("gate_exps", (e, n_ff, n_expert)), xr, topk, f"ffn_moe_gate-{il}")
    up = g.mul_mat_id(g.external("up_exps", (e, n_ff, n_expert)), xr, topk, f"ffn_moe_up-{il}")
    act = g.glu("SWIGLU", gate, up)
    down = g.mul_mat_id(g.external("down_exps", (n_ff, e, n_expert)), act, topk, f"ffn_moe_down-{il}")
    weighted = g.same("MUL", down, weights, name=f"ffn_moe_weighted-{il}")
    views = [g.view(weighted, (e, T), (4, weighted.nb[2])) for _ in range(n_used)]
    for v in views:  # llama.cpp expands every expert's slice before summing them
        g.expand(v)
    out = views[0]
    for v in views[1:]:
        out = g._new("ADD", (e, T), (out, v))
    return out
