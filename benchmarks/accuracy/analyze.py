"""Check the memory rules (as an estimator would implement them) against the committed llama.cpp measurements.

    .venv/bin/python benchmarks/accuracy/analyze.py

Everything here is derived from the layout JSON (GGUF metadata + tensor shapes) and the requested settings only;
the measured values are used for comparison. Prints every mismatch and a summary; fits the compute-buffer formula.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import layout_io  # noqa: E402

RESULTS = HERE / "results" / "measurements.json"

# bytes per block / elements per block of the cache types used here
TYPE_SIZE = {"f32": (4, 1), "f16": (2, 1), "bf16": (2, 1), "q8_0": (34, 32), "q4_0": (18, 32), "q4_1": (20, 32),
             "q5_0": (22, 32), "q5_1": (24, 32), "iq4_nl": (18, 32)}
GGML_TYPE_SIZE = {"F32": (4, 1), "F16": (2, 1), "BF16": (2, 1), "Q8_0": (34, 32), "Q4_0": (18, 32), "Q5_0": (22, 32),
                  "Q4_K": (144, 256), "Q5_K": (176, 256), "Q6_K": (210, 256), "MXFP4": (17, 32)}

# default sliding-window pattern n (layer il slides iff il % n < n - 1) per arch, when the GGUF has no override
SWA_DEFAULT_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "gpt-oss": 2, "cohere2": 4, "llama4": 4}
RECURRENT_ARCHS = {"mamba", "mamba2", "rwkv6", "rwkv7"}
HYBRID_ARCHS = {"granitehybrid", "lfm2", "qwen3next", "jamba", "falcon-h1", "nemotron_h"}
NO_MEMORY_ARCHS = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "modern-bert", "neo-bert", "eurobert"}


def pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def row_bytes(typ: str, n: int) -> int:
    size, block = TYPE_SIZE[typ]
    assert n % block == 0, (typ, n)
    return n // block * size


class HP:
    """The hparams an estimator reads from the GGUF header."""

    def __init__(self, layout: dict[str, Any]):
        a = self.arch = layout["arch"]
        m = layout["metadata"]
        g = lambda k, d=None: m.get(f"{a}.{k}", d)  # noqa: E731
        self.n_layer_all = g("block_count")
        self.n_nextn = g("nextn_predict_layers", 0)
        self.n_layer = self.n_layer_all - self.n_nextn
        self.n_embd = g("embedding_length")
        L = self.n_layer_all
        hc = g("attention.head_count", 0)
        self.n_head = hc if isinstance(hc, list) else [hc] * L
        hkv = g("attention.head_count_kv", hc)
        self.n_head_kv = hkv if isinstance(hkv, list) else [hkv] * L
        h0 = self.n_head[0]
        self.head_k = g("attention.key_length", self.n_embd // h0 if h0 else 0)
        self.head_v = g("attention.value_length", self.n_embd // h0 if h0 else 0)
        self.head_k_swa = g("attention.key_length_swa", self.head_k)
        self.head_v_swa = g("attention.value_length_swa", self.head_v)
        self.is_mla = g("attention.key_length_mla") is not None and g("attention.value_length_mla") is not None
        self.n_vocab = (layout.get("tokenizer") or {}).get("n_vocab") or g("vocab_size")
        self.n_swa = g("attention.sliding_window", 0)
        if a == "llama4":  # chunked attention: 8192 unless the GGUF says sliding_window = 0 (then no chunking)
            self.n_swa = 0 if g("attention.sliding_window") == 0 else 8192
        # sliding layers
        self.swa = [False] * L
        if a in SWA_DEFAULT_PATTERN and self.n_swa > 0:
            pat = g("attention.sliding_window_pattern", SWA_DEFAULT_PATTERN[a])
            if isinstance(pat, list):
                self.swa = [bool(x) for x in pat] + [False] * (L - len(pat))
            else:
                self.swa = [pat == 0 or (il % pat < pat - 1) if il < self.n_layer else False for il in range(L)]
        # recurrent layers
        if a in RECURRENT_ARCHS:
            self.recr = [True] * self.n_layer + [False] * self.n_nextn
        elif a in ("granitehybrid", "lfm2"):
            self.recr = [self.n_head_kv[il] == 0 for il in range(L)]
        elif a == "qwen3next":
            k = g("full_attention_interval", 4)
            self.recr = [il < self.n_layer and (il + 1) % k != 0 for il in range(L)]
        else:
            self.recr = [False] * L
        # layers that own a KV cache in the main context
        if a in NO_MEMORY_ARCHS or a in RECURRENT_ARCHS:
            self.kv = [False] * L
        elif a == "gemma3n":
            self.kv = [il < 20 for il in range(L)]  # n_layer_kv_from_start = 20 (hard-coded); later layers reuse 18/19
        else:
            self.kv = [il < self.n_layer and not self.recr[il] for il in range(L)]
        # recurrent state row widths
        d_conv, d_inner = g("ssm.conv_kernel", 0), g("ssm.inner_size", 0)
        d_state, n_group = g("ssm.state_size", 0), g("ssm.group_count", 0)
        if a == "lfm2":
            self.n_embd_r, self.n_embd_s = self.n_embd * (g("shortconv.l_cache") - 1), 0
        else:
            self.n_embd_r = (d_conv - 1 if d_conv else 0) * (d_inner + 2 * n_group * d_state)
            self.n_embd_s = d_state * d_inner
        self.causal = g("attention.causal", True)
        self.n_expert_used = g("expert_used_count", 0)
        self.n_ff_exp = g("expert_feed_forward_length", 0)

    def k_width(self, il: int) -> int:
        hk = self.head_k_swa if self.swa[il] else self.head_k
        return hk * self.n_head_kv[il]

    def v_width(self, il: int) -> int:
        if self.is_mla:
            return 0
        hv = self.head_v_swa if self.swa[il] else self.head_v
        return hv * self.n_head_kv[il]


def predict(hp: HP, s: dict[str, Any], fa: bool) -> dict[str, Any]:
    """Everything but the compute buffer. fa: the resolved flash-attention flag (it decides V transposition)."""
    n_seq = max(1, s["parallel"])
    n_ctx = pad(s["ctx"], 256)
    if s["kv_unified"]:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq = pad(n_ctx // n_seq, 256)
        n_ctx, n_stream = n_ctx_seq * n_seq, n_seq
    n_batch = min(n_ctx, s["batch"]) if hp.causal else s["batch"]
    n_ubatch = min(n_batch, s["ubatch"])
    cells_base = n_ctx_seq
    if s["swa_full"]:
        cells_swa = cells_base
    else:
        cells_swa = pad(min(cells_base, hp.n_swa * (n_seq if s["kv_unified"] else 1) + n_ubatch), 256)
    kv_layers = [il for il in range(hp.n_layer_all) if hp.kv[il]]
    v_max = max((hp.v_width(il) for il in kv_layers), default=0)
    k_bytes = v_bytes = swa_bytes = 0
    for il in kv_layers:
        cells = cells_swa if hp.swa[il] else cells_base
        kb = row_bytes(s["cache_type_k"], hp.k_width(il)) * cells * n_stream
        vw = hp.v_width(il) if fa else v_max  # without FA V is stored transposed and padded to the widest layer
        vb = row_bytes(s["cache_type_v"], vw) * cells * n_stream if vw else 0
        k_bytes += kb
        v_bytes += vb
        if hp.swa[il]:
            swa_bytes += kb + vb
    n_recr = sum(1 for il in range(hp.n_layer_all) if hp.recr[il])
    rs = n_recr * (hp.n_embd_r + hp.n_embd_s) * 4 * n_seq
    out = 4 * n_seq * (hp.n_vocab + (hp.n_embd if s["embeddings"] else 0))
    return {"n_ctx": n_ctx, "n_ctx_seq": n_ctx_seq, "n_ubatch": n_ubatch, "cells_base": cells_base,
            "cells_swa": cells_swa if any(hp.swa[il] for il in kv_layers) else None, "n_stream": n_stream,
            "kv_k_bytes": k_bytes, "kv_v_bytes": v_bytes, "kv_cache_bytes": k_bytes + v_bytes,
            "swa_kv_bytes": swa_bytes, "recurrent_state_bytes": rs, "output_bytes": out}


def weight_bytes(layout: dict[str, Any]) -> int:
    total = 0
    for _, shape, typ in layout["tensors"]:
        size, block = GGML_TYPE_SIZE[typ]
        n = 1
        for d in shape:
            n *= d
        total += pad(n // block * size, 32)
    return total


def compute_features(hp: HP, layout: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    m, a = layout["metadata"], hp.arch
    T = min(res["n_ctx"], res["n_ubatch"])  # tokens of the worst-case (prompt) graph llama.cpp reserves
    n_kv = max((c["cells"] for c in res.get("kv_caches", [])), default=0)  # cells per stream, largest cache
    n_head = max(hp.n_head) if hp.n_head else 0
    n_ff = m.get(f"{a}.feed_forward_length", 0)
    if isinstance(n_ff, list):
        n_ff = max(n_ff)
    gated = any(t[0].endswith("ffn_gate.weight") for t in layout["tensors"]) or a == "phi3"  # phi3: fused gate+up
    n_ff_in = n_ff * (2 if gated else 1)
    n_ff_eff = hp.n_expert_used * hp.n_ff_exp if hp.n_expert_used else n_ff_in
    extra = 0
    if a == "gemma3n":  # 4 altup copies of the hidden state + per-layer inputs (256 per layer) stay live
        extra = 4 * hp.n_embd + 256 * hp.n_layer
    outputs = min(T, res.get("n_outputs_max") or T)  # llama-server limits the logits rows (n_outputs_max)
    return {"T": T, "outputs": outputs, "n_kv": n_kv, "n_head": n_head, "n_embd": hp.n_embd, "n_vocab": hp.n_vocab,
            "n_q": n_head * hp.head_k, "fa": res["flash_attn"], "n_ff_eff": n_ff_eff, "n_ff_in": n_ff_in,
            "extra": extra, "encoder": not hp.causal}


# fitted (minimax relative error) on the decoder rows of results/measurements.json
COEF = {"out_e": 2.85, "ffn_ff": 1.45, "ffn_e": 2.75, "off_e": 6.5, "off_q": 0.7, "on_e": 6.85, "on_q": 2.85,
        "on_kv": 3.8}


def compute_formula(f: dict[str, Any], c: dict[str, float] = COEF) -> float:
    """Peak-of-stages model of llama.cpp's compute buffer (bytes). T = min(n_ctx, n_ubatch)."""
    T, E = f["T"], f["n_embd"]
    if f["encoder"]:  # no KV cache, no logits matmul; attention over the T tokens of the batch
        ffn = 4 * T * 2 * f["n_ff_in"]
        att = 0 if f["fa"] else 4 * T * T * f["n_head"] + 4 * T * 6.7 * E
        return max(ffn, att)
    ex = 4 * T * f["extra"]
    out = 4 * f.get("outputs", T) * (f["n_vocab"] + c["out_e"] * E) + ex
    ffn = 4 * T * (c["ffn_ff"] * f["n_ff_eff"] + c["ffn_e"] * E) + ex
    if f["fa"]:
        att = 4 * T * (c["on_e"] * E + c["on_q"] * f["n_q"]) + c["on_kv"] * T * f["n_kv"] + ex
    else:
        att = 4 * T * f["n_kv"] * (f["n_head"] + 1) + 4 * T * (c["off_e"] * E + c["off_q"] * f["n_q"]) + ex
    return max(out, ffn, att)


def main() -> int:
    data = json.loads(RESULTS.read_text())
    layouts = {p.stem: layout_io.load_layout(p) for p in layout_io.layout_paths()}
    hps = {k: HP(v) for k, v in layouts.items()}
    bad = 0
    checked = 0
    for name in data["layouts"]:
        wb = weight_bytes(layouts[name])
        mb = next(r["measured"]["model_bytes"] for r in data["rows"] if r["layout"] == name and "measured" in r)
        if wb != mb:
            print(f"MODEL {name}: tensors {wb} vs measured {mb} (diff {mb - wb})")
    errs: dict[str, list[float]] = {}
    for r in data["rows"]:
        if "error" in r:
            continue
        hp = hps[r["layout"]]
        s, res, m = r["settings"], r["resolved"], r["measured"]
        p = predict(hp, s, res["flash_attn"])
        checks = {"n_ctx": res["n_ctx"], "n_ctx_seq": res["n_ctx_seq"], "n_ubatch": res["n_ubatch"],
                  "kv_k_bytes": m["kv_k_bytes"], "kv_v_bytes": m["kv_v_bytes"], "kv_cache_bytes": m["kv_cache_bytes"],
                  "swa_kv_bytes": m.get("swa_kv_bytes", 0), "recurrent_state_bytes": m["recurrent_state_bytes"],
                  "output_bytes": m["output_bytes"]}
        for c in res.get("kv_caches", []):
            checks["cells_" + c["tag"]] = c["cells"]
            checks["n_stream"] = c["n_stream"]
        for k, v in checks.items():
            checked += 1
            if p.get(k) != v:
                bad += 1
                print(f"MISMATCH {r['layout']} {s} {k}: predicted {p.get(k)} measured {v}")
        f = compute_features(hp, layouts[r["layout"]], res)
        pred = compute_formula(f)
        errs.setdefault(r["layout"], []).append((pred - m["compute_bytes"]) / m["compute_bytes"])
    print(f"rule checks: {checked - bad}/{checked} exact")
    worst = 0.0
    for name, e in errs.items():
        lo, hi = min(e), max(e)
        worst = max(worst, abs(lo), abs(hi))
        print(f"compute formula {name:24s} rel.err min {lo:+.3f} max {hi:+.3f}")
    print(f"compute formula: max |relative error| {worst:.3f} over {sum(len(e) for e in errs.values())} rows")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
