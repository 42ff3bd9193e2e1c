"""Generate the layout specs in benchmarks/accuracy/layouts/*.json (run once; the JSON files are the data).

Each layout is the header of a real published model (its real per-layer shapes and hparams), usually with
fewer layers (and sometimes a smaller vocabulary) so the sparse file stays a few GB at most. The reductions
are stated in each JSON ("reductions"). Tensor types follow a typical Q4_K_M-style mix.

JSON format: {"name", "source_model", "arch", "reductions", "tokenizer": {"n_vocab": N} | null,
              "metadata": {key: value | {"type": gguf_scalar_type, "value": v}},
              "tensors": [[name, [ne0, ne1, ...], ggml_type], ...]}
"tokenizer": {"n_vocab": N} stands for tests.gguf_builder.tokenizer_metadata(N) merged into the metadata.
Plain JSON ints are written as uint32 (negative: int32), floats as float32, lists as arrays.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "layouts"

BLOCK = {"Q4_K": 256, "Q5_K": 256, "Q6_K": 256, "Q2_K": 256, "Q3_K": 256, "Q4_0": 32, "Q5_0": 32,
         "Q8_0": 32, "MXFP4": 32, "F16": 1, "F32": 1, "BF16": 1}


def q(ne0: int, pref: str) -> str:
    """pref if ne0 fits its block, else the fallback llama-quantize would use (Q5_0/Q8_0 for 32-blocks)."""
    if ne0 % BLOCK[pref] == 0:
        return pref
    if ne0 % 32 == 0:
        return "Q8_0" if pref in ("Q6_K", "Q8_0") else "Q5_0"
    return "F16"


def T(name: str, shape: list[int], typ: str) -> list:
    if typ not in ("F32", "F16", "BF16"):
        typ = q(shape[0], typ)
    return [name, [int(d) for d in shape], typ]


def u32(v: int) -> dict:
    return {"type": "uint32", "value": int(v)}


def base_meta(arch: str, name: str, n_layer: int, n_ctx: int, n_embd: int, file_type: int = 15) -> dict:
    return {
        "general.name": name,
        "general.file_type": file_type,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": n_ctx,
        f"{arch}.embedding_length": n_embd,
    }


def attn_qkv(p: str, n_embd: int, n_q: int, n_k: int, n_v: int, wt="Q4_K", vt="Q6_K", bias=False) -> list:
    t = [T(p + "attn_q.weight", [n_embd, n_q], wt), T(p + "attn_k.weight", [n_embd, n_k], wt),
         T(p + "attn_v.weight", [n_embd, n_v], vt)]
    if bias:
        t += [T(p + "attn_q.bias", [n_q], "F32"), T(p + "attn_k.bias", [n_k], "F32"), T(p + "attn_v.bias", [n_v], "F32")]
    return t


def ffn(p: str, n_embd: int, n_ff: int, wt="Q4_K", dt="Q6_K", gate=True) -> list:
    t = [T(p + "ffn_up.weight", [n_embd, n_ff], wt), T(p + "ffn_down.weight", [n_ff, n_embd], dt)]
    if gate:
        t.insert(0, T(p + "ffn_gate.weight", [n_embd, n_ff], wt))
    return t


def moe(p: str, n_embd: int, n_ff_exp: int, n_expert: int, wt="Q4_K", dt="Q6_K") -> list:
    return [T(p + "ffn_gate_inp.weight", [n_embd, n_expert], "F32"),
            T(p + "ffn_gate_exps.weight", [n_embd, n_ff_exp, n_expert], wt),
            T(p + "ffn_up_exps.weight", [n_embd, n_ff_exp, n_expert], wt),
            T(p + "ffn_down_exps.weight", [n_ff_exp, n_embd, n_expert], dt)]


def layout(name, source, arch, reductions, n_vocab, meta, tensors, tokenizer=True) -> dict:
    return {"name": name, "source_model": source, "arch": arch, "reductions": reductions,
            "tokenizer": {"n_vocab": n_vocab} if tokenizer else None, "metadata": meta, "tensors": tensors}


# ---------------------------------------------------------------------------------------------------------------

def llama() -> dict:
    a, L, E, H, KV, FF, V = "llama", 8, 4096, 32, 8, 14336, 128256
    m = base_meta(a, "Meta-Llama-3.1-8B-Instruct", L, 131072, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 500000.0,
              f"{a}.rope.dimension_count": 128, f"{a}.vocab_size": V})
    t = [T("token_embd.weight", [E, V], "Q4_K"), T("rope_freqs.weight", [64], "F32")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, E, KV * 128, KV * 128)
        t += [T(p + "attn_output.weight", [E, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", a, "n_layer 32 -> 8", V, m, t)


def mistral3() -> dict:
    a, L, E, H, KV, HD, FF, V = "mistral3", 8, 4096, 32, 8, 128, 14336, 131072
    m = base_meta(a, "Ministral-3-8B-Instruct-2512", L, 262144, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 1000000.0,
              f"{a}.rope.dimension_count": HD, f"{a}.rope.scaling.type": "yarn", f"{a}.rope.scaling.factor": 16.0,
              f"{a}.rope.scaling.original_context_length": 16384, f"{a}.rope.scaling.yarn_beta_fast": 32.0,
              f"{a}.rope.scaling.yarn_beta_slow": 1.0, f"{a}.attention.temperature_scale": 0.1})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("ministral-3-8b", "mistralai/Ministral-3-8B-Instruct-2512 (text model)", a, "n_layer 34 -> 8", V, m, t)


def qwen2() -> dict:
    a, L, E, H, KV, FF, V = "qwen2", 6, 3584, 28, 4, 18944, 152064
    hd = E // H
    m = base_meta(a, "Qwen2.5-7B-Instruct", L, 32768, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.rope.freq_base": 1000000.0})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, E, KV * hd, KV * hd, bias=True)
        t += [T(p + "attn_output.weight", [E, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", a, "n_layer 28 -> 6", V, m, t)


def qwen3() -> dict:
    a, L, E, H, KV, HD, FF, V = "qwen3", 8, 2560, 32, 8, 128, 9728, 151936
    m = base_meta(a, "Qwen3-4B", L, 40960, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.rope.freq_base": 1000000.0})
    t = [T("token_embd.weight", [E, V], "Q6_K")]  # tied embeddings
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_q_norm.weight", [HD], "F32"), T(p + "attn_k_norm.weight", [HD], "F32")]
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32")]
    return layout("qwen3-4b", "Qwen/Qwen3-4B (tied embeddings)", a, "n_layer 36 -> 8", V, m, t)


def qwen3moe() -> dict:
    a, L, E, H, KV, HD, NE, NU, FFE, V = "qwen3moe", 4, 2048, 32, 4, 128, 128, 8, 768, 151936
    m = base_meta(a, "Qwen3-30B-A3B", L, 40960, E)
    m.update({f"{a}.feed_forward_length": 6144, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.rope.freq_base": 1000000.0,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_feed_forward_length": FFE})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_q_norm.weight", [HD], "F32"), T(p + "attn_k_norm.weight", [HD], "F32")]
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")]
        t += moe(p, E, FFE, NE)
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", a, "n_layer 48 -> 4", V, m, t)


def qwen3next() -> dict:
    a, L, E, H, KV, HD, NE, NU, FFE, V = "qwen3next", 4, 2048, 16, 2, 256, 512, 10, 512, 151936
    d_conv, d_state, n_group, dt_rank = 4, 128, 16, 32
    key_dim, value_dim = d_state * n_group, d_state * dt_rank
    d_inner = value_dim
    m = base_meta(a, "Qwen3-Next-80B-A3B-Instruct", L, 262144, E)
    m.update({f"{a}.feed_forward_length": 5120, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD, f"{a}.rope.dimension_count": 64,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.rope.freq_base": 10000000.0,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_feed_forward_length": FFE,
              f"{a}.expert_shared_feed_forward_length": 512,
              f"{a}.ssm.conv_kernel": d_conv, f"{a}.ssm.state_size": d_state, f"{a}.ssm.group_count": n_group,
              f"{a}.ssm.time_step_rank": dt_rank, f"{a}.ssm.inner_size": d_inner,
              f"{a}.full_attention_interval": 4})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32"), T(p + "post_attention_norm.weight", [E], "F32")]
        if (i + 1) % 4 == 0:  # full attention layer (Q carries a gate: 2 * n_head * head_dim)
            t += attn_qkv(p, E, H * HD * 2, KV * HD, KV * HD)
            t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"),
                  T(p + "attn_q_norm.weight", [HD], "F32"), T(p + "attn_k_norm.weight", [HD], "F32")]
        else:  # gated delta net
            t += [T(p + "attn_qkv.weight", [E, key_dim * 2 + value_dim], "Q4_K"),
                  T(p + "attn_gate.weight", [E, value_dim], "Q4_K"),
                  T(p + "ssm_conv1d.weight", [d_conv, key_dim * 2 + value_dim], "F32"),
                  T(p + "ssm_dt.bias", [dt_rank], "F32"), T(p + "ssm_a", [dt_rank], "F32"),
                  T(p + "ssm_ba.weight", [E, dt_rank * 2], "Q4_K"), T(p + "ssm_norm.weight", [d_state], "F32"),
                  T(p + "ssm_out.weight", [value_dim, E], "Q4_K")]
        t += moe(p, E, FFE, NE)
        t += [T(p + "ffn_gate_inp_shexp.weight", [E], "F32")]
        t += [T(p + "ffn_gate_shexp.weight", [E, 512], "Q4_K"), T(p + "ffn_up_shexp.weight", [E, 512], "Q4_K"),
              T(p + "ffn_down_shexp.weight", [512, E], "Q6_K")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("qwen3-next-80b-a3b", "Qwen/Qwen3-Next-80B-A3B-Instruct", a,
                  "n_layer 48 -> 4 (3 gated-delta-net + 1 full attention)", V, m, t)


def gemma2() -> dict:
    a, L, E, H, KV, HD, FF, V = "gemma2", 6, 3584, 16, 8, 256, 14336, 256000
    m = base_meta(a, "gemma-2-9b-it", L, 8192, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.attention.sliding_window": 4096,
              f"{a}.attn_logit_softcapping": 50.0, f"{a}.final_logit_softcapping": 30.0})
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "post_attention_norm.weight", [E], "F32"),
              T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF) + [T(p + "post_ffw_norm.weight", [E], "F32")]
    t += [T("output_norm.weight", [E], "F32")]
    return layout("gemma-2-9b", "google/gemma-2-9b-it", a, "n_layer 42 -> 6", V, m, t)


def gemma3() -> dict:
    a, L, E, H, KV, HD, FF, V = "gemma3", 12, 2560, 8, 4, 256, 10240, 262208
    m = base_meta(a, "gemma-3-4b-it", L, 131072, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.attention.sliding_window": 1024,
              f"{a}.rope.freq_base": 1000000.0, f"{a}.rope.scaling.type": "linear", f"{a}.rope.scaling.factor": 8.0})
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_q_norm.weight", [HD], "F32"), T(p + "attn_k_norm.weight", [HD], "F32"),
              T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "post_attention_norm.weight", [E], "F32"),
              T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF) + [T(p + "post_ffw_norm.weight", [E], "F32")]
    t += [T("output_norm.weight", [E], "F32")]
    return layout("gemma-3-4b", "google/gemma-3-4b-it (text model)", a, "n_layer 34 -> 12 (10 sliding + 2 global)", V, m, t)


def gemma3n() -> dict:
    a, L, E, H, KV, HD, FF, V = "gemma3n", 30, 2048, 8, 2, 256, 8192, 32768
    n_altup, laurel, e_altup = 4, 64, 256
    m = base_meta(a, "gemma-3n-E2B-it", L, 32768, E, file_type=7)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.attention.sliding_window": 512,
              f"{a}.attention.sliding_window_pattern": [i % 5 != 4 for i in range(L)],
              f"{a}.rope.freq_base": 1000000.0, f"{a}.rope.freq_base_swa": 10000.0,
              f"{a}.altup.num_inputs": n_altup, f"{a}.altup.active_idx": 0,
              f"{a}.embedding_length_per_layer_input": e_altup, f"{a}.attention.shared_kv_layers": 10})
    t = [T("token_embd.weight", [E, V], "Q8_0"),
         T("altup_proj.weight", [E, E, n_altup - 1], "Q8_0"), T("altup_unembd_proj.weight", [E, E, n_altup - 1], "Q8_0"),
         T("per_layer_token_embd.weight", [e_altup * L, V], "Q8_0"),
         T("per_layer_model_proj.weight", [E, e_altup * L], "Q8_0"), T("per_layer_proj_norm.weight", [e_altup], "F32")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD, "Q8_0", "Q8_0")
        t += [T(p + "attn_output.weight", [H * HD, E], "Q8_0"), T(p + "attn_q_norm.weight", [HD], "F32"),
              T(p + "attn_k_norm.weight", [HD], "F32"), T(p + "post_attention_norm.weight", [E], "F32"),
              T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF, "Q8_0", "Q8_0")
        t += [T(p + "post_ffw_norm.weight", [E], "F32"),
              T(p + "inp_gate.weight", [E, e_altup], "Q8_0"), T(p + "proj.weight", [e_altup, E], "Q8_0"),
              T(p + "post_norm.weight", [E], "F32"), T(p + "altup_correct_coef.weight", [n_altup, n_altup], "F32"),
              T(p + "altup_correct_scale.weight", [E], "F32"),
              T(p + "altup_predict_coef.weight", [n_altup, n_altup * n_altup], "F32"),
              T(p + "altup_router.weight", [E, n_altup], "F32"), T(p + "altup_router_norm.weight", [E], "F32"),
              T(p + "laurel_l.weight", [E, laurel], "Q8_0"), T(p + "laurel_r.weight", [laurel, E], "Q8_0"),
              T(p + "laurel_post_norm.weight", [E], "F32")]
    t += [T("output_norm.weight", [E], "F32")]
    return layout("gemma-3n-e2b", "google/gemma-3n-E2B-it (text model)", a, "n_vocab 262144 -> 32768", V, m, t)


def gpt_oss() -> dict:
    a, L, E, H, KV, HD, NE, NU, FFE, V = "gpt-oss", 4, 2880, 64, 8, 64, 32, 4, 2880, 201088
    m = base_meta(a, "gpt-oss-20b", L, 131072, E, file_type=38)
    m.update({f"{a}.feed_forward_length": FFE, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD, f"{a}.rope.dimension_count": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.attention.sliding_window": 128,
              f"{a}.rope.freq_base": 150000.0, f"{a}.rope.scaling.type": "yarn", f"{a}.rope.scaling.factor": 32.0,
              f"{a}.rope.scaling.original_context_length": 4096,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_feed_forward_length": FFE})
    t = [T("token_embd.weight", [E, V], "Q8_0")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32"), T(p + "post_attention_norm.weight", [E], "F32")]
        t += attn_qkv(p, E, H * HD, KV * HD, KV * HD, "Q8_0", "Q8_0", bias=True)
        t += [T(p + "attn_output.weight", [H * HD, E], "Q8_0"), T(p + "attn_output.bias", [E], "F32"),
              T(p + "attn_sinks.weight", [H], "F32")]
        t += moe(p, E, FFE, NE, "MXFP4", "MXFP4")
        t += [T(p + "ffn_gate_inp.bias", [NE], "F32"), T(p + "ffn_gate_exps.bias", [FFE, NE], "F32"),
              T(p + "ffn_up_exps.bias", [FFE, NE], "F32"), T(p + "ffn_down_exps.bias", [E, NE], "F32")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q8_0")]
    return layout("gpt-oss-20b", "openai/gpt-oss-20b (MXFP4 experts)", a, "n_layer 24 -> 4", V, m, t)


def deepseek2() -> dict:
    a, L, E, H, V = "deepseek2", 27, 2048, 16, 102400
    kv_lora, rope, nope, vhd, NE, NU, NS, FFE, FF = 512, 64, 128, 128, 64, 6, 2, 1408, 10944
    m = base_meta(a, "DeepSeek-V2-Lite-Chat", L, 163840, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": 1,
              f"{a}.attention.key_length": kv_lora + rope, f"{a}.attention.value_length": kv_lora,
              f"{a}.attention.key_length_mla": nope + rope, f"{a}.attention.value_length_mla": vhd,
              f"{a}.attention.kv_lora_rank": kv_lora, f"{a}.rope.dimension_count": rope,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-6, f"{a}.rope.freq_base": 10000.0,
              f"{a}.rope.scaling.type": "yarn", f"{a}.rope.scaling.factor": 40.0,
              f"{a}.rope.scaling.original_context_length": 4096, f"{a}.rope.scaling.yarn_log_multiplier": 0.0707,
              f"{a}.leading_dense_block_count": 1, f"{a}.expert_count": NE, f"{a}.expert_used_count": NU,
              f"{a}.expert_shared_count": NS, f"{a}.expert_feed_forward_length": FFE,
              f"{a}.expert_weights_scale": 1.0, f"{a}.expert_gating_func": 1})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32"), T(p + "attn_kv_a_norm.weight", [kv_lora], "F32"),
              T(p + "attn_q.weight", [E, H * (nope + rope)], "Q4_K"),
              T(p + "attn_kv_a_mqa.weight", [E, kv_lora + rope], "Q4_K"),
              T(p + "attn_k_b.weight", [nope, kv_lora, H], "Q8_0"),
              T(p + "attn_v_b.weight", [kv_lora, vhd, H], "Q8_0"),
              T(p + "attn_output.weight", [H * vhd, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")]
        if i < 1:
            t += ffn(p, E, FF)
        else:
            t += moe(p, E, FFE, NE, "Q4_K", "Q5_0")
            t += [T(p + "ffn_gate_shexp.weight", [E, FFE * NS], "Q4_K"), T(p + "ffn_up_shexp.weight", [E, FFE * NS], "Q4_K"),
                  T(p + "ffn_down_shexp.weight", [FFE * NS, E], "Q6_K")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite-Chat (MLA, split attn_k_b/attn_v_b)", a,
                  "none (27 layers needed: llama.cpp detects the lite variant by n_layer)", V, m, t)


def glm4moe() -> dict:
    a, L, E, H, KV, HD, NE, NU, FFE, FF, V = "glm4moe", 3, 4096, 96, 8, 128, 128, 8, 1408, 10944, 151552
    n_all = L + 1  # + 1 NextN (MTP) block, as in the published GGUFs
    m = base_meta(a, "GLM-4.5-Air", n_all, 131072, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD, f"{a}.rope.dimension_count": 64,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 1000000.0,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_shared_count": 1,
              f"{a}.expert_feed_forward_length": FFE, f"{a}.leading_dense_block_count": 1,
              f"{a}.expert_weights_scale": 1.0, f"{a}.expert_weights_norm": True, f"{a}.expert_gating_func": 2,
              f"{a}.nextn_predict_layers": 1})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(n_all):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD, bias=True)
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "post_attention_norm.weight", [E], "F32")]
        if i < 1:
            t += ffn(p, E, FF)
        else:
            t += moe(p, E, FFE, NE, "Q4_K", "Q5_0") + [T(p + "exp_probs_b.bias", [NE], "F32")]
            t += [T(p + "ffn_gate_shexp.weight", [E, FFE], "Q4_K"), T(p + "ffn_up_shexp.weight", [E, FFE], "Q4_K"),
                  T(p + "ffn_down_shexp.weight", [FFE, E], "Q6_K")]
        if i >= L:
            t += [T(p + "nextn.eh_proj.weight", [2 * E, E], "Q4_K"), T(p + "nextn.enorm.weight", [E], "F32"),
                  T(p + "nextn.hnorm.weight", [E], "F32"), T(p + "nextn.shared_head_norm.weight", [E], "F32")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("glm-4.5-air", "zai-org/GLM-4.5-Air (with its NextN/MTP block)", a,
                  "n_layer 46 -> 3 trunk layers (1 dense + 2 MoE) + the 1 NextN layer", V, m, t)


def phi3() -> dict:
    a, L, E, H, FF, V = "phi3", 8, 3072, 32, 8192, 32064
    m = base_meta(a, "Phi 3 Mini 4K Instruct", L, 4096, E)  # a name containing "phi-3"/"phi3" makes llama.cpp require <|endoftext|>
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": H,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.dimension_count": 96,
              f"{a}.rope.freq_base": 10000.0, f"{a}.attention.sliding_window": 2047,
              f"{a}.rope.scaling.original_context_length": 4096})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32"), T(p + "attn_qkv.weight", [E, 3 * E], "Q5_K"),
              T(p + "attn_output.weight", [E, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32"),
              T(p + "ffn_up.weight", [E, 2 * FF], "Q4_K"), T(p + "ffn_down.weight", [FF, E], "Q6_K")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("phi-3-mini-4k", "microsoft/Phi-3-mini-4k-instruct (fused attn_qkv; sliding_window 2047 is ignored by llama.cpp)",
                  a, "n_layer 32 -> 8", V, m, t)


def command_r() -> dict:
    a, L, E, H, FF, V = "command-r", 2, 8192, 64, 22528, 256000
    m = base_meta(a, "c4ai-command-r-v01", L, 131072, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": H,
              f"{a}.attention.layer_norm_epsilon": 1e-5, f"{a}.rope.freq_base": 8000000.0,
              f"{a}.logit_scale": 0.0625})
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, E, E, E)
        t += [T(p + "attn_output.weight", [E, E], "Q4_K")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32")]
    return layout("command-r-35b", "CohereForAI/c4ai-command-r-v01 (35B, MHA: 64 KV heads)", a, "n_layer 40 -> 2", V, m, t)


def cohere2() -> dict:
    a, L, E, H, KV, FF, V = "cohere2", 8, 4096, 32, 8, 14336, 256000
    m = base_meta(a, "c4ai-command-r7b-12-2024", L, 131072, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.layer_norm_epsilon": 1e-5, f"{a}.rope.freq_base": 50000.0,
              f"{a}.rope.dimension_count": 128, f"{a}.attention.sliding_window": 4096,
              f"{a}.attention.sliding_window_pattern": 4, f"{a}.logit_scale": 0.25})
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, E, KV * 128, KV * 128)
        t += [T(p + "attn_output.weight", [E, E], "Q4_K")] + ffn(p, E, FF)
    t += [T("output_norm.weight", [E], "F32")]
    return layout("command-r7b", "CohereForAI/c4ai-command-r7b-12-2024", a, "n_layer 32 -> 8", V, m, t)


def granitehybrid() -> dict:
    a, L, E, H, KV, NE, NU, FFE, SH, V = "granitehybrid", 10, 1536, 12, 4, 64, 6, 512, 1024, 100352
    d_conv, d_inner, d_state, n_heads, n_group = 4, 3072, 128, 48, 1
    attn_layers = {5}
    m = base_meta(a, "granite-4.0-h-tiny", L, 131072, E)
    m.update({f"{a}.feed_forward_length": FFE, f"{a}.attention.head_count": H,
              f"{a}.attention.head_count_kv": [KV if i in attn_layers else 0 for i in range(L)],
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 10000.0,
              f"{a}.rope.scaling.finetuned": False,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_shared_feed_forward_length": SH,
              f"{a}.logit_scale": 6.0, f"{a}.residual_scale": 0.22, f"{a}.embedding_scale": 12.0,
              f"{a}.attention.scale": 0.0078125,
              f"{a}.ssm.conv_kernel": d_conv, f"{a}.ssm.inner_size": d_inner, f"{a}.ssm.state_size": d_state,
              f"{a}.ssm.time_step_rank": n_heads, f"{a}.ssm.group_count": n_group})
    d_in_proj = 2 * d_inner + 2 * n_group * d_state + n_heads
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")]
        if i in attn_layers:
            t += attn_qkv(p, E, H * 128, KV * 128, KV * 128) + [T(p + "attn_output.weight", [H * 128, E], "Q4_K")]
        else:
            t += [T(p + "ssm_in.weight", [E, d_in_proj], "Q4_K"),
                  T(p + "ssm_conv1d.weight", [d_conv, d_inner + 2 * n_group * d_state], "F32"),
                  T(p + "ssm_conv1d.bias", [d_inner + 2 * n_group * d_state], "F32"),
                  T(p + "ssm_dt.bias", [n_heads], "F32"), T(p + "ssm_a", [1, n_heads], "F32"),
                  T(p + "ssm_d", [1, n_heads], "F32"), T(p + "ssm_norm.weight", [d_inner // n_group, n_group], "F32"),
                  T(p + "ssm_out.weight", [d_inner, E], "Q4_K")]
        t += [T(p + "ffn_norm.weight", [E], "F32"), T(p + "ffn_gate_inp.weight", [E, NE], "F32"),
              T(p + "ffn_gate_exps.weight", [E, FFE, NE], "Q4_K"), T(p + "ffn_up_exps.weight", [E, FFE, NE], "Q4_K"),
              T(p + "ffn_down_exps.weight", [FFE, E, NE], "Q6_K"),
              T(p + "ffn_gate_shexp.weight", [E, SH], "Q4_K"), T(p + "ffn_up_shexp.weight", [E, SH], "Q4_K"),
              T(p + "ffn_down_shexp.weight", [SH, E], "Q6_K")]
    t += [T("output_norm.weight", [E], "F32")]
    return layout("granite-4.0-h-tiny", "ibm-granite/granite-4.0-h-tiny (Mamba2 + attention + MoE, tied embeddings)", a,
                  "n_layer 40 -> 10 (9 Mamba2 layers + attention at layer 5)", V, m, t)


def lfm2() -> dict:
    a, L, E, H, KV, FF, V, LC = "lfm2", 16, 2048, 32, 8, 8192, 65536, 3
    attn = {2, 5, 8, 10, 12, 14}
    m = base_meta(a, "LFM2-1.2B", L, 128000, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H,
              f"{a}.attention.head_count_kv": [KV if i in attn else 0 for i in range(L)],
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 1000000.0,
              f"{a}.shortconv.l_cache": LC})
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "ffn_norm.weight", [E], "F32")] + ffn(p, E, FF) + [T(p + "attn_norm.weight", [E], "F32")]
        if i in attn:
            t += [T(p + "attn_q_norm.weight", [64], "F32"), T(p + "attn_k_norm.weight", [64], "F32")]
            t += attn_qkv(p, E, E, KV * 64, KV * 64) + [T(p + "attn_output.weight", [E, E], "Q4_K")]
        else:
            t += [T(p + "shortconv.conv.weight", [LC, E], "F32"), T(p + "shortconv.in_proj.weight", [E, 3 * E], "Q4_K"),
                  T(p + "shortconv.out_proj.weight", [E, E], "Q4_K")]
    t += [T("token_embd_norm.weight", [E], "F32")]
    return layout("lfm2-1.2b", "LiquidAI/LFM2-1.2B (10 short-conv + 6 attention layers, tied embeddings)", a, "none", V, m, t)


def mamba2() -> dict:
    a, L, E, V = "mamba2", 16, 2560, 50288
    d_conv, d_inner, d_state, n_heads, n_group = 4, 5120, 128, 80, 1
    m = base_meta(a, "mamba2-2.7b", L, 1048576, E)
    m.update({f"{a}.feed_forward_length": 0, f"{a}.attention.head_count": 0,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5,
              f"{a}.ssm.conv_kernel": d_conv, f"{a}.ssm.inner_size": d_inner, f"{a}.ssm.state_size": d_state,
              f"{a}.ssm.time_step_rank": n_heads, f"{a}.ssm.group_count": n_group})
    conv_dim = d_inner + 2 * n_group * d_state
    t = [T("token_embd.weight", [E, V], "Q6_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32"), T(p + "ssm_in.weight", [E, d_inner + conv_dim + n_heads], "Q4_K"),
              T(p + "ssm_conv1d.weight", [d_conv, conv_dim], "F32"), T(p + "ssm_conv1d.bias", [conv_dim], "F32"),
              T(p + "ssm_dt.bias", [n_heads], "F32"), T(p + "ssm_a", [1, n_heads], "F32"), T(p + "ssm_d", [1, n_heads], "F32"),
              T(p + "ssm_norm.weight", [d_inner // n_group, n_group], "F32"), T(p + "ssm_out.weight", [d_inner, E], "Q4_K")]
    t += [T("output_norm.weight", [E], "F32")]
    return layout("mamba2-2.7b", "state-spaces/mamba2-2.7b (tied embeddings)", a, "n_layer 64 -> 16", V, m, t)


def bert() -> dict:
    a, L, E, H, FF, V, CTX = "bert", 12, 768, 12, 3072, 30522, 512
    m = base_meta(a, "bge-base-en-v1.5", L, CTX, E, file_type=1)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H,
              f"{a}.attention.layer_norm_epsilon": 1e-12, f"{a}.attention.causal": False, f"{a}.pooling_type": 2,
              "tokenizer.ggml.token_type_count": 2})
    t = [T("token_embd.weight", [E, V], "F16"), T("token_types.weight", [E, 2], "F32"),
         T("position_embd.weight", [E, CTX], "F16"),
         T("token_embd_norm.weight", [E], "F32"), T("token_embd_norm.bias", [E], "F32")]
    for i in range(L):
        p = f"blk.{i}."
        t += attn_qkv(p, E, E, E, E, "F16", "F16", bias=True)
        t += [T(p + "attn_output.weight", [E, E], "F16"), T(p + "attn_output.bias", [E], "F32"),
              T(p + "attn_output_norm.weight", [E], "F32"), T(p + "attn_output_norm.bias", [E], "F32"),
              T(p + "ffn_up.weight", [E, FF], "F16"), T(p + "ffn_up.bias", [FF], "F32"),
              T(p + "ffn_down.weight", [FF, E], "F16"), T(p + "ffn_down.bias", [E], "F32"),
              T(p + "layer_output_norm.weight", [E], "F32"), T(p + "layer_output_norm.bias", [E], "F32")]
    return layout("bge-base-en-v1.5", "BAAI/bge-base-en-v1.5 (F16)", a, "none", V, m, t)


def nomic_bert() -> dict:
    a, L, E, H, FF, V, CTX = "nomic-bert", 12, 768, 12, 3072, 30528, 2048
    m = base_meta(a, "nomic-embed-text-v1.5", L, CTX, E, file_type=1)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H,
              f"{a}.attention.layer_norm_epsilon": 1e-12, f"{a}.attention.causal": False, f"{a}.pooling_type": 1,
              f"{a}.rope.freq_base": 1000.0, "tokenizer.ggml.token_type_count": 2})
    t = [T("token_embd.weight", [E, V], "F16"), T("token_types.weight", [E, 2], "F32"),
         T("token_embd_norm.weight", [E], "F32"), T("token_embd_norm.bias", [E], "F32")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_qkv.weight", [E, 3 * E], "F16"), T(p + "attn_output.weight", [E, E], "F16"),
              T(p + "attn_output_norm.weight", [E], "F32"), T(p + "attn_output_norm.bias", [E], "F32"),
              T(p + "ffn_up.weight", [E, FF], "F16"), T(p + "ffn_gate.weight", [E, FF], "F16"),
              T(p + "ffn_down.weight", [FF, E], "F16"),
              T(p + "layer_output_norm.weight", [E], "F32"), T(p + "layer_output_norm.bias", [E], "F32")]
    return layout("nomic-embed-text-v1.5", "nomic-ai/nomic-embed-text-v1.5 (F16)", a, "none", V, m, t)


def llama4() -> dict:
    a, L, E, H, KV, HD, NE, NU, FFE, FF, V = "llama4", 4, 5120, 40, 8, 128, 16, 1, 8192, 16384, 202048
    m = base_meta(a, "Llama-4-Scout-17B-16E-Instruct", L, 10485760, E)
    m.update({f"{a}.feed_forward_length": FF, f"{a}.attention.head_count": H, f"{a}.attention.head_count_kv": KV,
              f"{a}.attention.key_length": HD, f"{a}.attention.value_length": HD, f"{a}.rope.dimension_count": HD,
              f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.freq_base": 500000.0,
              f"{a}.expert_count": NE, f"{a}.expert_used_count": NU, f"{a}.expert_feed_forward_length": FFE,
              f"{a}.interleave_moe_layer_step": 1, f"{a}.vocab_size": V})
    t = [T("token_embd.weight", [E, V], "Q4_K")]
    for i in range(L):
        p = f"blk.{i}."
        t += [T(p + "attn_norm.weight", [E], "F32")] + attn_qkv(p, E, H * HD, KV * HD, KV * HD)
        t += [T(p + "attn_output.weight", [H * HD, E], "Q4_K"), T(p + "ffn_norm.weight", [E], "F32")]
        t += moe(p, E, FFE, NE)
        t += [T(p + "ffn_gate_shexp.weight", [E, FFE], "Q4_K"), T(p + "ffn_up_shexp.weight", [E, FFE], "Q4_K"),
              T(p + "ffn_down_shexp.weight", [FFE, E], "Q6_K")]
    t += [T("output_norm.weight", [E], "F32"), T("output.weight", [E, V], "Q6_K")]
    return layout("llama-4-scout", "meta-llama/Llama-4-Scout-17B-16E-Instruct (text model; chunked attention, no "
                  "sliding_window key so llama.cpp uses its 8192 default)", a, "n_layer 48 -> 4 (3 chunked + 1 global)", V, m, t)


ALL = [llama, llama4, mistral3, qwen2, qwen3, qwen3moe, qwen3next, gemma2, gemma3, gemma3n, gpt_oss, deepseek2, glm4moe,
       phi3, command_r, cohere2, granitehybrid, lfm2, mamba2, bert, nomic_bert]


def main(argv: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    only = set(argv)
    for fn in ALL:
        lay = fn()
        if only and lay["name"] not in only and lay["arch"] not in only:
            continue
        path = OUT / f"{lay['name']}.json"
        with open(path, "w") as f:
            # one tensor per line keeps diffs readable
            f.write("{\n")
            keys = [k for k in lay if k != "tensors"]
            for k in keys:
                f.write(f"  {json.dumps(k)}: {json.dumps(lay[k])},\n")
            f.write('  "tensors": [\n')
            f.write(",\n".join("    " + json.dumps(t) for t in lay["tensors"]))
            f.write("\n  ]\n}\n")
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(lay['tensors'])} tensors)")


if __name__ == "__main__":
    main(sys.argv[1:])
