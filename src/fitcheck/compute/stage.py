"""The compute-buffer model: the peak of llama.cpp's worst-case micro-batch graph, calibrated per architecture.

llama.cpp reserves the graph of a full micro-batch of T = n_ubatch tokens once, and ggml-alloc reuses memory
between nodes, so the buffer is the largest set of tensors alive at one time. That peak is one of three
stages, each 4 bytes per float per token:
- output: the logits of every token, T x (n_vocab + a x n_embd + 1), the hidden states around them included;
- feed-forward: T x (b x n_ff_eff + c x n_embd), n_ff_eff the gate+up width (x experts used for MoE);
- attention: with flash attention T x (d x n_embd + e x n_q) + f x T x n_kv bytes of K/V views;
  without it the scores T x n_kv x n_head dominate, plus T x (g x n_embd + h x n_q).
The KQ masks (T x n_kv per cache, f16 with flash attention, f32 without) are graph inputs: ggml-alloc places
them first and frees them after the last layer, so they add to every layer stage but not to the logits.
Encoders have no logits stage and attend over the T tokens of the batch. The coefficients a..h come from
data/compute_model.yaml, fitted on measured buffers (benchmarks/accuracy/fit_compute.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..data import load_yaml

DEFAULT = {"out_e": 2.85, "ffn_ff": 0.725, "ffn_e": 2.75, "on_e": 6.85, "on_q": 2.85, "on_kv": 1.0,
           "off_e": 6.5, "off_q": 0.7, "all_e": 0.0}


@dataclass(frozen=True)
class Features:
    tokens: int  # T: tokens of the reserved micro-batch
    n_kv: int  # KV cells per stream of the largest cache
    n_head: int
    n_embd: int
    n_vocab: int
    n_q: int  # n_head x head_dim_k
    n_ff_eff: int
    flash_attn: bool
    encoder: bool
    mask_bytes: int = 0  # the KQ mask inputs: alive from the first layer to the last, freed before the logits
    outputs: int = 0  # logits rows of the graph (llama-server keeps one per sequence)
    limited: bool = False  # outputs below the micro-batch: the logits stage has `outputs` rows, not T


@lru_cache(maxsize=1)
def _table() -> dict:
    return load_yaml("compute_model.yaml")


def calibration(arch: str) -> tuple[dict[str, float], float | None]:
    """(coefficients, worst measured relative error) for an architecture; the default when unmeasured."""
    entry = (_table().get("architectures") or {}).get(arch)
    if entry is None:
        return dict(_table().get("default") or DEFAULT), None
    return dict(entry["coef"]), float(entry["max_error"])


def peak(f: Features, c: dict[str, float]) -> tuple[int, int, int]:
    """(device with the output layer, device with blocks only, host) compute buffers in bytes."""
    t, e = f.tokens, f.n_embd
    live = 4 * t * c.get("all_e", 0.0) * e  # state alive through every stage (gemma3n's altup copies)
    inputs = f.mask_bytes + live
    ffn = 4 * t * (c["ffn_ff"] * f.n_ff_eff + c["ffn_e"] * e) + inputs
    if f.encoder:
        attn = 4 * t * c["on_e"] * e if f.flash_attn else 4 * t * t * f.n_head + 4 * t * c["off_e"] * e
        layers = int(max(ffn, attn + inputs))
        return layers, layers, 4 * t * e
    if f.flash_attn:
        attn = 4 * t * (c["on_e"] * e + c["on_q"] * f.n_q) + c["on_kv"] * t * f.n_kv
    else:
        attn = 4 * t * f.n_kv * f.n_head + 4 * t * (c["off_e"] * e + c["off_q"] * f.n_q)
    rows = f.outputs if f.limited else t
    out = 4 * rows * (f.n_vocab + c["out_e"] * e + 1) + live
    layers = int(max(ffn, attn + inputs))
    host = 4 * t * e + f.mask_bytes  # input embeddings and the KQ masks
    return int(max(out, layers)), layers, host
