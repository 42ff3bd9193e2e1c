"""Per-architecture rules as data: which layers hold a KV cache, which slide, MLA, recurrent state.

Facts carried over from llama.cpp (src/llama-model.cpp load_hparams, src/llama-hparams.cpp). Pure: reads a
ModelSpec's metadata and returns one LayerKind per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import ModelSpec

# Sliding-window layouts. ("period", P): llama_hparams::set_swa_pattern(P) - within every P layers the
# last one is global, the others slide. ("dense_first", P): the first of every P is global.
SWA_PATTERNS: dict[str, tuple[str, int]] = {
    "gemma2": ("period", 2),
    "gemma3": ("period", 6),
    "gemma3n": ("period", 5),
    "gemma-embedding": ("period", 6),
    "cohere2": ("period", 4),
    "gpt-oss": ("period", 2),
    "llama4": ("period", 4),  # chunked attention on 3 of every 4 layers
    "exaone4": ("period", 4),
    "smallthinker": ("period", 4),
    "afmoe": ("period", 4),
}
# Window used when the GGUF does not say (llama.cpp's hard-coded defaults).
DEFAULT_WINDOW = {"gemma2": 4096, "llama4": 8192}
WINDOW_KEYS = ("attention.sliding_window", "attention.chunk_size")

# Pure recurrent models: every layer holds state, none holds KV.
RECURRENT = {"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"}
# Hybrids whose attention layers are the ones with head_count_kv > 0 (the rest are recurrent).
HYBRID_BY_KV_HEADS = {"jamba", "granitehybrid", "nemotron_h", "lfm2", "lfm2moe", "plamo2"}
# Hybrids with an attention layer every `full_attention_interval` layers.
HYBRID_BY_INTERVAL = {"qwen3next": 4, "kimi-linear": 4}
# Parallel hybrids: every layer has both attention (KV) and an SSM (state).
PARALLEL_HYBRID = {"falcon-h1"}
# Encoders and embedding models: no KV cache grows with the context.
NO_KV = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert",
         "t5encoder", "eurobert", "wavtokenizer-dec", "dream", "llada", "llada-moe"}
# Architectures whose KV rules fitcheck knows beyond the generic transformer.
KNOWN = (set(SWA_PATTERNS) | RECURRENT | HYBRID_BY_KV_HEADS | set(HYBRID_BY_INTERVAL) | PARALLEL_HYBRID | NO_KV
         | {"llama", "mistral3", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "qwen2vl", "qwen3vl", "qwen3vlmoe",
            "deepseek", "deepseek2", "glm4", "glm4moe", "phi3", "phimoe", "command-r", "granite", "granitemoe",
            "mistral", "olmo2", "olmoe", "starcoder2", "stablelm", "internlm2", "minicpm", "minicpm3",
            "ernie4_5", "ernie4_5-moe", "hunyuan-moe", "dots1", "seed_oss", "apertus", "bailingmoe",
            "bailingmoe2", "arcee", "smollm3", "gptneox", "falcon", "baichuan", "chatglm", "orion", "gpt2",
            "exaone", "mpt", "bloom", "plamo", "codeshell", "xverse", "grok", "dbrx", "arctic", "cohere"})


@dataclass(frozen=True)
class LayerKind:
    """The cache one block needs, in elements per cell (K and V) and F32 state per sequence."""

    k_row: int  # K elements per cell (0: no KV)
    v_row: int  # V elements per cell
    sliding: bool
    recurrent_floats: int  # n_embd_r + n_embd_s, F32, per sequence (0: not recurrent)

    @property
    def has_kv(self) -> bool:
        return self.k_row > 0


def _i(meta: dict[str, Any], key: str, default: int = 0) -> int:
    value = meta.get(key, default)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def sliding_window(spec: ModelSpec) -> int:
    meta, arch = spec.metadata, spec.architecture
    for key in WINDOW_KEYS:
        if f"{arch}.{key}" in meta:
            return _i(meta, f"{arch}.{key}")
    return DEFAULT_WINDOW.get(arch, 0)


def sliding_layers(spec: ModelSpec) -> tuple[bool, ...]:
    """Which blocks use the sliding-window cache; a per-layer pattern in the GGUF wins over the arch rule."""
    n, arch, meta = spec.n_layer, spec.architecture, spec.metadata
    if sliding_window(spec) <= 0:
        return (False,) * n
    declared = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(declared, list) and len(declared) == n:
        return tuple(bool(v) for v in declared)
    kind, period = SWA_PATTERNS.get(arch, ("none", 0))
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        kind, period = "period", declared
    if kind == "period":
        return tuple(il % period < period - 1 for il in range(n))
    if kind == "dense_first":
        return tuple(il % period != 0 for il in range(n))
    return (False,) * n


def _recurrent_floats(meta: dict[str, Any], arch: str, n_embd: int) -> int:
    """llama_hparams::n_embd_r() + n_embd_s(): conv/shift state + SSM/WKV state, per sequence."""
    wkv = _i(meta, f"{arch}.wkv.head_size")
    if wkv:
        return _i(meta, f"{arch}.token_shift_count", 2) * n_embd + n_embd * wkv
    l_cache = _i(meta, f"{arch}.shortconv.l_cache")
    d_conv = _i(meta, f"{arch}.ssm.conv_kernel")
    d_inner = _i(meta, f"{arch}.ssm.inner_size")
    d_state = _i(meta, f"{arch}.ssm.state_size")
    n_group = _i(meta, f"{arch}.ssm.group_count")
    conv = n_embd * (l_cache - 1) if l_cache else max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state)
    return conv + d_state * d_inner


def _mla(meta: dict[str, Any], arch: str) -> tuple[int, int] | None:
    """MLA (deepseek2 family): one latent 'head' of kv_lora_rank + rope dims, no separate V rows."""
    rank = _i(meta, f"{arch}.attention.kv_lora_rank")
    if not rank or not meta.get(f"{arch}.attention.key_length_mla"):
        return None  # old GGUFs without *_mla keys use the decompressed per-head cache
    return rank + _i(meta, f"{arch}.rope.dimension_count"), 0


def uses_mla(spec: ModelSpec) -> bool:
    return _mla(spec.metadata, spec.architecture) is not None


def is_embedding_model(spec: ModelSpec) -> bool:
    """Encoders return embeddings: llama.cpp reserves an n_embd row per sequence next to the logits."""
    return spec.architecture in NO_KV or spec.metadata.get(f"{spec.architecture}.attention.causal") is False


def layer_kinds(spec: ModelSpec) -> tuple[tuple[LayerKind, ...], tuple[str, ...]]:
    """One LayerKind per block, plus notes about rules that were assumed."""
    arch, meta, n = spec.architecture, spec.metadata, spec.n_layer
    notes: list[str] = []
    if arch not in KNOWN:
        notes.append(f"architecture '{arch}' is not in fitcheck's rules: assumed a plain transformer "
                     "(full KV cache on every layer)")
    if is_embedding_model(spec):
        return tuple(LayerKind(0, 0, False, 0) for _ in range(n)), (*notes, "encoder/embedding model: no KV cache")

    slides = sliding_layers(spec)
    mla = _mla(meta, arch)
    state = _recurrent_floats(meta, arch, spec.n_embd)
    interval = _i(meta, f"{arch}.full_attention_interval", HYBRID_BY_INTERVAL.get(arch, 0))
    shared_kv = _i(meta, f"{arch}.attention.shared_kv_layers")
    # NextN / multi-token-prediction blocks at the end (glm4moe, ...) are loaded but hold no KV
    kv_layers = n - shared_kv - _i(meta, f"{arch}.nextn_predict_layers")
    kinds = []
    for il in range(n):
        kv_heads = spec.n_head_kv[il]
        recurrent = False
        if arch in RECURRENT:
            recurrent, kv_heads = True, 0
        elif arch in HYBRID_BY_KV_HEADS:
            recurrent = kv_heads == 0
        elif arch in HYBRID_BY_INTERVAL and interval:
            recurrent = (il + 1) % interval != 0
            kv_heads = 0 if recurrent else kv_heads
        elif arch in PARALLEL_HYBRID:
            recurrent = True
        if il >= kv_layers:
            kv_heads = 0  # gemma3n's last layers reuse earlier layers' KV; MTP blocks have none
        if mla and kv_heads:
            k_row, v_row = mla
        else:
            k_row, v_row = spec.head_dim_k * kv_heads, spec.head_dim_v * kv_heads
        kinds.append(LayerKind(k_row, v_row, slides[il] and k_row > 0, state if recurrent else 0))
    return tuple(kinds), tuple(notes)
