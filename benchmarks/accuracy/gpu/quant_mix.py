"""Rebuild a quantized GGUF's tensor list from a model's shapes and llama-quantize's type rules.

Two halves:
- `tensors(model)`: the tensors convert_hf_to_gguf.py writes for one architecture family (names, ggml shapes,
  the converter's own types: F32 for 1-D tensors and MoE routers, the source dtype for the rest), in the file's
  order (token_embd, blocks 0..n-1, output_norm, output).
- `quantize(tensors, ftype, ...)`: the type llama-quantize gives each tensor for a file type.

The rules are facts carried over from llama.cpp src/llama-quant.cpp (ggml-org/llama.cpp@0c1e57098, the
vendored tree; the rules used here are unchanged since 2024 apart from where a comment says so):
`tensor_allows_quantization` (only >= 2-D tensors whose name ends in "weight", no *_norm, no ffn_gate_inp),
`llama_ftype_get_default_type` (the base type of each ftype), `llama_tensor_get_type_impl` (the per-category
bumps: output/tied token_embd -> Q6_K; attn_v and ffn_down -> Q6_K on `use_more_bits` layers for Q4_K_M/Q5_K_M;
a fused attn_qkv (gptneox) -> Q4_K for Q3_K_M/L, Q5_K for Q4_K_M, Q6_K for Q5_K_M, its ATTENTION_QKV category;
the 8-expert and 70B exceptions) and `tensor_type_fallback` (a row not a multiple of the block: Q4_K -> Q5_0,
Q5_K -> Q5_1, Q6_K -> Q8_0, 32-blocks -> F16). Written by hand: no library reproduces llama-quantize's choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ggml block (elements) and type size (bytes): ggml/src/ggml.c type_traits (also gguf.GGML_QUANT_SIZES)
BLOCK = {"F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
         "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
         "Q5_K": (256, 176), "Q6_K": (256, 210), "IQ4_NL": (32, 18), "IQ4_XS": (256, 136), "MXFP4": (32, 17)}
FLOAT = ("F32", "F16", "BF16")

# llama_ftype numbers (include/llama.h) and llama_ftype_get_default_type (llama-quant.cpp)
FTYPES: dict[str, tuple[int, str]] = {
    "F16": (1, "F16"), "BF16": (32, "BF16"), "Q4_0": (2, "Q4_0"), "Q4_1": (3, "Q4_1"), "Q8_0": (7, "Q8_0"),
    "Q5_0": (8, "Q5_0"), "Q5_1": (9, "Q5_1"), "Q2_K": (10, "Q2_K"), "Q3_K_S": (11, "Q3_K"),
    "Q3_K_M": (12, "Q3_K"), "Q3_K_L": (13, "Q3_K"), "Q4_K_S": (14, "Q4_K"), "Q4_K_M": (15, "Q4_K"),
    "Q5_K_S": (16, "Q5_K"), "Q5_K_M": (17, "Q5_K"), "Q6_K": (18, "Q6_K"), "MXFP4_MOE": (38, "MXFP4"),
}


def row_bytes(typ: str, ne0: int) -> int:
    block, size = BLOCK[typ]
    if ne0 % block:
        raise ValueError(f"ne0={ne0} is not a multiple of {typ}'s block of {block}")
    return ne0 // block * size


def nbytes(typ: str, shape: tuple[int, ...] | list[int]) -> int:
    rows = 1
    for d in shape[1:]:
        rows *= d
    return row_bytes(typ, shape[0]) * rows


def cuda_alloc_bytes(typ: str, shape: tuple[int, ...] | list[int]) -> int:
    """ggml-cuda's buffer get_alloc_size: a quantized tensor's last row is padded to a multiple of 512
    elements (MATRIX_ROW_PADDING, ggml-cuda/common.cuh); the buffer aligns each tensor to 128 bytes."""
    size = nbytes(typ, shape)
    if typ not in FLOAT and shape[0] % 512:
        size += row_bytes(typ, 512 - shape[0] % 512)  # ne0 is a multiple of the block, so is 512 - ne0 % 512
    return -(-size // 128) * 128


@dataclass
class Model:
    """The shapes of one published model (its config.json), enough to rebuild its GGUF tensor list."""

    arch: str  # llama | qwen2 | qwen3 | qwen3moe | mistral3 | gptneox
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    head_dim: int = 0  # 0: n_embd / n_head
    tied: bool = False  # no output.weight (tie_word_embeddings)
    rope_freqs: bool = False  # llama-3.1+ rope scaling writes a rope_freqs.weight (F32, head_dim / 2)
    n_expert: int = 0
    n_ff_exp: int = 0
    src_type: str = "BF16"  # the converter's type for weights (the HF dtype)
    ctx_train: int = 4096
    rope_base: float = 10000.0
    extra_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def hd(self) -> int:
        return self.head_dim or self.n_embd // self.n_head


Tensor = tuple[str, tuple[int, ...], str]


def _gptneox_tensors(m: Model) -> list[Tensor]:
    """GPTNeoXModel in convert_hf_to_gguf.py: fused qkv, a bias on every linear and norm, untied output."""
    E, F, w = m.n_embd, m.n_ff, m.src_type
    out: list[Tensor] = [("token_embd.weight", (E, m.n_vocab), w)]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (E,), "F32"), (p + "attn_norm.bias", (E,), "F32"),
                (p + "attn_qkv.weight", (E, 3 * E), w), (p + "attn_qkv.bias", (3 * E,), "F32"),
                (p + "attn_output.weight", (E, E), w), (p + "attn_output.bias", (E,), "F32"),
                (p + "ffn_norm.weight", (E,), "F32"), (p + "ffn_norm.bias", (E,), "F32"),
                (p + "ffn_up.weight", (E, F), w), (p + "ffn_up.bias", (F,), "F32"),
                (p + "ffn_down.weight", (F, E), w), (p + "ffn_down.bias", (E,), "F32")]
    out += [("output_norm.weight", (E,), "F32"), ("output_norm.bias", (E,), "F32"),
            ("output.weight", (E, m.n_vocab), w)]
    return out


def tensors(m: Model) -> list[Tensor]:
    """Names, ggml shapes (ne0 first) and converter types of the GGUF that convert_hf_to_gguf.py writes."""
    if m.arch == "gptneox":
        return _gptneox_tensors(m)
    E, hd, w = m.n_embd, m.hd, m.src_type
    out: list[Tensor] = [("token_embd.weight", (E, m.n_vocab), w)]
    if m.rope_freqs:
        out.append(("rope_freqs.weight", (hd // 2,), "F32"))
    for i in range(m.n_layer):
        p = f"blk.{i}."
        out.append((p + "attn_norm.weight", (E,), "F32"))
        out += [(p + "attn_q.weight", (E, m.n_head * hd), w), (p + "attn_k.weight", (E, m.n_head_kv * hd), w),
                (p + "attn_v.weight", (E, m.n_head_kv * hd), w)]
        if m.arch == "qwen2":  # q/k/v biases
            out += [(p + "attn_q.bias", (m.n_head * hd,), "F32"), (p + "attn_k.bias", (m.n_head_kv * hd,), "F32"),
                    (p + "attn_v.bias", (m.n_head_kv * hd,), "F32")]
        if m.arch in ("qwen3", "qwen3moe"):
            out += [(p + "attn_q_norm.weight", (hd,), "F32"), (p + "attn_k_norm.weight", (hd,), "F32")]
        out += [(p + "attn_output.weight", (m.n_head * hd, E), w), (p + "ffn_norm.weight", (E,), "F32")]
        if m.n_expert:
            out += [(p + "ffn_gate_inp.weight", (E, m.n_expert), "F32"),
                    (p + "ffn_gate_exps.weight", (E, m.n_ff_exp, m.n_expert), w),
                    (p + "ffn_up_exps.weight", (E, m.n_ff_exp, m.n_expert), w),
                    (p + "ffn_down_exps.weight", (m.n_ff_exp, E, m.n_expert), w)]
        else:
            out += [(p + "ffn_gate.weight", (E, m.n_ff), w), (p + "ffn_up.weight", (E, m.n_ff), w),
                    (p + "ffn_down.weight", (m.n_ff, E), w)]
    out.append(("output_norm.weight", (E,), "F32"))
    if not m.tied:
        out.append(("output.weight", (E, m.n_vocab), w))
    return out


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fallback(typ: str, ne0: int) -> str:
    block = BLOCK[typ][0]
    if ne0 % block == 0:
        return typ
    alt = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
           "IQ4_XS": "IQ4_NL"}.get(typ, typ)
    return alt if ne0 % BLOCK[alt][0] == 0 else "F16"


def _quantizable(name: str, shape: tuple[int, ...]) -> bool:
    return (len(shape) >= 2 and name.endswith("weight") and "_norm.weight" not in name
            and "ffn_gate_inp.weight" not in name)


def quantize(ts: list[Tensor], ftype: str, *, n_layer: int, n_gqa: int, n_expert: int = 0,
             is_70b: bool = False) -> list[Tensor]:
    """The tensor types of `llama-quantize <in> <out> <ftype>` (no imatrix-only rules, no overrides)."""
    base = FTYPES[ftype][1]
    if base in FLOAT:
        return [(n, s, base if _quantizable(n, s) else t) for n, s, t in ts]
    tied = not any(n == "output.weight" for n, _, _ in ts)
    n_attn_v = sum(1 for n, _, _ in ts if "attn_v.weight" in n or "attn_qkv.weight" in n)
    i_attn_v = i_down = 0
    out: list[Tensor] = []
    for name, shape, src in ts:
        if not _quantizable(name, shape):
            out.append((name, shape, src))
            continue
        typ = base
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            if ftype == "MXFP4_MOE" or shape[0] % BLOCK[typ][0]:
                typ = "Q8_0"
            elif typ != "Q8_0":
                typ = "Q6_K"
        elif ftype == "MXFP4_MOE":
            typ = "MXFP4" if len(shape) > 2 else "Q8_0"
        elif name == "token_embd.weight":
            pass
        elif "attn_qkv.weight" in name:  # ATTENTION_QKV: its own rule (it still counts in n_attention_wv)
            if ftype in ("Q3_K_M", "Q3_K_L"):
                typ = "Q4_K"
            elif ftype == "Q4_K_M":
                typ = "Q5_K"
            elif ftype == "Q5_K_M":
                typ = "Q6_K"
        elif "attn_v.weight" in name:
            if ftype == "Q2_K":
                typ = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif ftype == "Q3_K_M":
                typ = "Q5_K" if i_attn_v < 2 else "Q4_K"
            elif ftype == "Q3_K_L":
                typ = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_attn_v, n_attn_v):
                typ = "Q6_K"
            elif ftype == "Q4_K_S" and i_attn_v < 4:
                typ = "Q5_K"
            if is_70b and typ in ("Q3_K", "Q4_K"):
                typ = "Q5_K"
            if n_expert == 8:
                typ = "Q8_0"
            i_attn_v += 1
        elif "attn_k.weight" in name:
            if n_expert == 8:
                typ = "Q8_0"
        elif "ffn_down" in name:
            # MoE: the layer comes from the name; dense: a counter over ffn_down tensors (the same thing)
            i, n = (layer, n_layer) if n_expert > 1 else (i_down, n_layer)
            if ftype == "Q2_K":
                typ = "Q3_K"
            elif ftype == "Q3_K_M":
                typ = "Q5_K" if i < n // 16 else "Q4_K"
            elif ftype == "Q3_K_L":
                typ = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
                typ = "Q6_K"
            elif ftype == "Q4_K_S" and i < n // 8:
                typ = "Q5_K"
            i_down += 1
        elif "attn_output.weight" in name:
            if n_expert == 8:
                if ftype in ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"):
                    typ = "Q5_K"
            elif ftype == "Q2_K":
                typ = "Q3_K"
            elif ftype == "Q3_K_M":
                typ = "Q4_K"
            elif ftype == "Q3_K_L":
                typ = "Q5_K"
        out.append((name, shape, _fallback(typ, shape[0])))
    return out


def file_tensors(m: Model, ftype: str) -> list[Tensor]:
    return quantize(tensors(m), ftype, n_layer=m.n_layer, n_gqa=m.n_head // m.n_head_kv, n_expert=m.n_expert,
                    is_70b=m.extra_meta.get("model_type") == "70B")


def metadata(m: Model, ftype: str, name: str) -> dict[str, Any]:
    """GGUF metadata llama.cpp needs to load the layout (the tokenizer comes from layout_io's placeholder)."""
    a = m.arch
    meta: dict[str, Any] = {
        "general.name": name, "general.file_type": FTYPES[ftype][0], f"{a}.block_count": m.n_layer,
        f"{a}.context_length": m.ctx_train, f"{a}.embedding_length": m.n_embd,
        f"{a}.feed_forward_length": m.n_ff, f"{a}.attention.head_count": m.n_head,
        f"{a}.attention.head_count_kv": m.n_head_kv, f"{a}.attention.layer_norm_rms_epsilon": 1e-6,
        f"{a}.rope.freq_base": m.rope_base,
    }
    if a == "gptneox":  # LayerNorm, partial rotary (rotary_pct), no separate KV head count in the file
        del meta[f"{a}.attention.head_count_kv"], meta[f"{a}.attention.layer_norm_rms_epsilon"]
        meta[f"{a}.attention.layer_norm_epsilon"] = 1e-5
        meta[f"{a}.use_parallel_residual"] = True
    if m.head_dim:
        meta[f"{a}.attention.key_length"] = m.head_dim
        meta[f"{a}.attention.value_length"] = m.head_dim
    if a == "llama":
        meta[f"{a}.rope.dimension_count"] = m.hd
        meta[f"{a}.vocab_size"] = m.n_vocab
    if m.n_expert:
        meta[f"{a}.expert_count"] = m.n_expert
        meta[f"{a}.expert_used_count"] = m.extra_meta.get("n_expert_used", 8)
        meta[f"{a}.expert_feed_forward_length"] = m.n_ff_exp
    meta.update({k: v for k, v in m.extra_meta.items() if "." in k})
    return meta


def layout(m: Model, ftype: str, name: str, source_model: str) -> dict[str, Any]:
    """A layout in benchmarks/accuracy/layouts' format (layout_io.write_gguf writes it)."""
    return {"name": name, "source_model": source_model, "arch": m.arch, "reductions": "none",
            "tokenizer": {"n_vocab": m.n_vocab}, "metadata": metadata(m, ftype, name),
            "tensors": [[n, list(s), t] for n, s, t in file_tensors(m, ftype)]}
