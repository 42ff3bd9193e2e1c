"""The architecture registry: everything fitcheck knows per llama.cpp architecture, as one entry each.

An entry says how the KV cache is laid out (full, sliding-window pattern, recurrent, hybrid, none), the
defaults llama.cpp hard-codes, the Hugging Face `model_type`s that convert to it, and how its compute buffer
is found (the graph replay with its features, or the calibrated stage model). Facts carried over from
llama.cpp (src/llama-arch.cpp, src/llama-model.cpp load_hparams, src/llama-hparams.cpp, src/models/*.cpp,
convert_hf_to_gguf.py). Pure: reads a ModelSpec's metadata and returns one LayerKind per block.

Adding a plain transformer is one line in REGISTRY; see the README's contributing notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from .model import ModelSpec


class Memory(str, Enum):
    """Which blocks hold a KV cache and which hold recurrent state."""

    TRANSFORMER = "transformer"  # KV on every layer with KV heads
    RECURRENT = "recurrent"  # state on every layer, no KV (mamba, rwkv)
    HYBRID_BY_KV_HEADS = "hybrid_by_kv_heads"  # attention where head_count_kv > 0, recurrent elsewhere
    HYBRID_BY_INTERVAL = "hybrid_by_interval"  # attention every `full_attention_interval` layers
    PARALLEL_HYBRID = "parallel_hybrid"  # every layer has attention and an SSM
    ENCODER = "encoder"  # no KV cache that grows with the context


class Compute(str, Enum):
    GRAPH = "graph"  # compute.graph rebuilds llama.cpp's graph and replays ggml-alloc over it
    STAGE = "stage"  # compute.stage: the peak of three stages, coefficients fitted per architecture


@dataclass(frozen=True)
class GraphFeatures:
    """What the graph builder cannot read from tensor names."""

    residual_first: bool = False  # l_out = ffn_inp + ffn_out (in-place reuse then takes the residual's memory)
    expert_weights_norm: bool = False  # default of {arch}.expert_weights_norm when the GGUF omits it


@dataclass(frozen=True)
class Arch:
    name: str
    memory: Memory = Memory.TRANSFORMER
    swa_period: int = 0  # llama_hparams::set_swa_pattern(P): of every P layers the last is global, the rest slide
    default_window: int = 0  # window llama.cpp assumes when the GGUF does not say
    attention_interval: int = 0  # HYBRID_BY_INTERVAL default when the GGUF has no full_attention_interval
    fused_gate_up: bool = False  # one ffn_up tensor holds gate and up (the FFN is gated without ffn_gate)
    hf_model_types: tuple[str, ...] = ()  # config.json model_type values convert_hf_to_gguf maps here
    compute: Compute = Compute.STAGE
    graph: GraphFeatures | None = None  # set for Compute.GRAPH


def _graph(name: str, hf: tuple[str, ...] = (), *, fused_gate_up: bool = False, **features: bool) -> Arch:
    return Arch(name, hf_model_types=hf, compute=Compute.GRAPH, graph=GraphFeatures(**features),
                fused_gate_up=fused_gate_up)


def _swa(name: str, period: int, hf: tuple[str, ...] = (), window: int = 0) -> Arch:
    return Arch(name, swa_period=period, default_window=window, hf_model_types=hf)


def _kind(memory: Memory, *names: str, interval: int = 0) -> list[Arch]:
    return [Arch(n, memory=memory, attention_interval=interval) for n in names]


_ENTRIES: list[Arch] = [
    # the graph replay: byte-exact against llama.cpp on every measured row
    _graph("llama", ("llama", "mistral", "mixtral")),
    _graph("mistral3"),
    _graph("qwen2", ("qwen2",)),
    _graph("qwen3", ("qwen3",)),
    _graph("qwen3moe", ("qwen3_moe",), expert_weights_norm=True),
    _graph("phi3", ("phi3",), fused_gate_up=True, residual_first=True),  # fused QKV; residual added first
    _graph("deepseek2", ("deepseek_v2", "deepseek_v3")),
    # sliding-window layouts
    _swa("gemma2", 2, ("gemma2",), window=4096),
    _swa("gemma3", 6, ("gemma3", "gemma3_text")),
    _swa("gemma3n", 5),
    _swa("gemma-embedding", 6),
    _swa("cohere2", 4, ("cohere2",)),
    _swa("gpt-oss", 2, ("gpt_oss",)),
    _swa("llama4", 4, window=8192),  # chunked attention on 3 of every 4 layers
    _swa("exaone4", 4),
    _swa("smallthinker", 4),
    _swa("afmoe", 4),
    *_kind(Memory.RECURRENT, "mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"),
    *_kind(Memory.HYBRID_BY_KV_HEADS, "jamba", "granitehybrid", "nemotron_h", "lfm2", "lfm2moe", "plamo2"),
    *_kind(Memory.HYBRID_BY_INTERVAL, "qwen3next", "kimi-linear", interval=4),
    *_kind(Memory.PARALLEL_HYBRID, "falcon-h1"),
    *_kind(Memory.ENCODER, "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert",
           "modern-bert", "t5encoder", "eurobert", "wavtokenizer-dec", "dream", "llada", "llada-moe"),
    # plain transformers: a full KV cache on every layer, the default stage model for compute
    Arch("qwen2moe", hf_model_types=("qwen2_moe",)),
    Arch("gemma", hf_model_types=("gemma",)),
    Arch("olmo2", hf_model_types=("olmo2",)),
    Arch("granite", hf_model_types=("granite",)),
    *(Arch(n) for n in (
        "phimoe", "qwen2vl", "qwen3vl", "qwen3vlmoe", "deepseek", "glm4", "glm4moe", "command-r", "granitemoe",
        "mistral", "olmoe", "starcoder2", "stablelm", "internlm2", "minicpm", "minicpm3", "ernie4_5", "ernie4_5-moe",
        "hunyuan-moe", "dots1", "seed_oss", "apertus", "bailingmoe", "bailingmoe2", "arcee", "smollm3", "gptneox",
        "falcon", "baichuan", "chatglm", "orion", "gpt2", "exaone", "mpt", "bloom", "plamo", "codeshell", "xverse",
        "grok", "dbrx", "arctic", "cohere")),
]
REGISTRY: dict[str, Arch] = {a.name: a for a in _ENTRIES}
# Every architecture name llama.cpp loads (LLM_ARCH_NAMES in src/llama-arch.cpp at 0c1e57098, the build the
# accuracy and speed harnesses measure; "clip" is a projector, not a model). One that fitcheck has no entry for
# is estimated with the generic transformer rule; one llama.cpp does not know cannot be loaded at all.
LLAMA_CPP_ARCHS = frozenset({
    "afmoe", "apertus", "arcee", "arctic", "arwkv7", "baichuan", "bailingmoe", "bailingmoe2", "bailingmoe3", "bert",
    "bitnet", "bloom", "chameleon", "chatglm", "codeshell", "cogvlm", "cohere2", "cohere2moe", "command-r", "dbrx",
    "deci", "deepseek", "deepseek2", "deepseek2-ocr", "deepseek32", "deepseek4", "dflash", "dots1", "dots3note",
    "dream", "eagle3", "ernie4_5", "ernie4_5-moe", "eurobert", "exaone", "exaone-moe", "exaone4", "falcon",
    "falcon-h1", "gemma", "gemma-embedding", "gemma2", "gemma3", "gemma3n", "gemma4", "gemma4-assistant", "glm-dsa",
    "glm4", "glm4moe", "glm5-next", "gpt-oss", "gpt2", "gptj", "gptneox", "granite", "granite_swa", "granitehybrid",
    "granitemoe", "graniteswitch", "grok", "grovemoe", "hrm_text", "hunyuan-dense", "hunyuan-moe", "hunyuan_vl",
    "hy_v3", "hy_v4", "internlm2", "jais", "jais2", "jamba", "jina-bert-v2", "jina-bert-v3", "kimi-k3",
    "kimi-linear", "laguna", "lfm2", "lfm2moe", "llada", "llada-moe", "llama", "llama-embed", "llama4", "maincoder",
    "mamba", "mamba2", "maple", "mellum", "mimo2", "minicpm", "minicpm3", "minimax-01", "minimax-m2", "minimax-m3",
    "mistral3", "mistral4", "modern-bert", "mpt", "muse-glimmer", "nanbeige", "nemotron", "nemotron_h",
    "nemotron_h_moe", "neo-bert", "nomic-bert", "nomic-bert-moe", "olmo", "olmo2", "olmoe", "openelm", "orion",
    "paddleocr", "pangu-embedded", "phi2", "phi3", "phimoe", "plamo", "plamo2", "plamo3", "plm", "pockettts", "qwen",
    "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen35", "qwen35moe", "qwen3moe", "qwen3next", "qwen3tts", "qwen3vl",
    "qwen3vlmoe", "qwen4exp", "refact", "rnd1", "rwkv6", "rwkv6qwen2", "rwkv7", "seed_oss", "smallthinker",
    "smollm3", "spark2_5", "stablelm", "starcoder", "starcoder2", "step35", "t5", "t5encoder", "talkie",
    "wavtokenizer-dec", "xverse",
})
_BY_HF_TYPE = {t: a.name for a in _ENTRIES for t in a.hf_model_types}
WINDOW_KEYS = ("attention.sliding_window", "attention.chunk_size")


def lookup(name: str) -> Arch | None:
    return REGISTRY.get(name)


PROJECTOR_ARCHS = frozenset({"clip"})  # LLM_ARCH_CLIP: a multimodal projector's GGUF, loaded by mtmd, not a model


def is_projector(name: str) -> bool:
    return name in PROJECTOR_ARCHS


def known_to_llama_cpp(name: str) -> bool:
    return name in LLAMA_CPP_ARCHS or name in REGISTRY


def get(name: str) -> Arch:
    """The entry, or a plain transformer for an architecture fitcheck has no rules for."""
    return REGISTRY.get(name) or Arch(name)


def hf_architecture(model_type: str) -> str:
    """llama.cpp's architecture name for a Hugging Face config.json `model_type`."""
    return _BY_HF_TYPE.get(model_type, model_type.replace("_", ""))


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
    """An integer the source checked (sources.validate): read, never converted here."""
    value = meta.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def sliding_window(spec: ModelSpec) -> int:
    meta, arch = spec.metadata, spec.architecture
    for key in WINDOW_KEYS:
        if f"{arch}.{key}" in meta:
            return _i(meta, f"{arch}.{key}")
    return get(arch).default_window


def sliding_layers(spec: ModelSpec) -> tuple[bool, ...]:
    """Which blocks use the sliding-window cache; a per-layer pattern in the GGUF wins over the arch rule."""
    n, arch, meta = spec.n_layer, spec.architecture, spec.metadata
    if sliding_window(spec) <= 0:
        return (False,) * n
    declared = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(declared, list) and len(declared) == n:
        return tuple(bool(v) for v in declared)
    period = get(arch).swa_period
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        period = declared
    if period:
        return tuple(il % period < period - 1 for il in range(n))
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
    return (get(spec.architecture).memory is Memory.ENCODER
            or spec.metadata.get(f"{spec.architecture}.attention.causal") is False)


def gated_ffn(spec: ModelSpec) -> bool:
    """Whether the feed-forward is gated (gate and up activations are both alive)."""
    return get(spec.architecture).fused_gate_up or any(t.name.endswith("ffn_gate.weight") for t in spec.tensors)


def compute_method(spec: ModelSpec) -> Compute:
    """The graph replay for a registered graph architecture with uniform layers, else the stage model."""
    arch = get(spec.architecture)
    uniform = (spec.n_layer > 0 and len(set(spec.n_head)) == 1 and len(set(spec.n_head_kv)) == 1
               and min(spec.n_head_kv) > 0 and spec.head_dim_k > 0)
    extras = any(t.name.endswith("attn_sinks.weight") or ".nextn." in t.name for t in spec.tensors)
    return Compute.GRAPH if arch.compute is Compute.GRAPH and uniform and not extras else Compute.STAGE


def graph_features(spec: ModelSpec) -> GraphFeatures:
    return get(spec.architecture).graph or GraphFeatures()


def layer_kinds(spec: ModelSpec) -> tuple[tuple[LayerKind, ...], tuple[str, ...]]:
    """One LayerKind per block, plus notes about rules that were assumed."""
    name, meta, n = spec.architecture, spec.metadata, spec.n_layer
    arch = get(name)
    notes: list[str] = []
    if lookup(name) is None:
        notes.append(f"architecture '{name}' is not in fitcheck's rules: assumed a plain transformer "
                     "(full KV cache on every layer)")
    if is_embedding_model(spec):
        return tuple(LayerKind(0, 0, False, 0) for _ in range(n)), (*notes, "encoder/embedding model: no KV cache")

    slides = sliding_layers(spec)
    mla = _mla(meta, name)
    state = _recurrent_floats(meta, name, spec.n_embd)
    interval = _i(meta, f"{name}.full_attention_interval", arch.attention_interval)
    shared_kv = _i(meta, f"{name}.attention.shared_kv_layers")
    # NextN / multi-token-prediction blocks at the end (glm4moe, ...) are loaded but hold no KV
    kv_layers = n - shared_kv - _i(meta, f"{name}.nextn_predict_layers")
    kinds = []
    for il in range(n):
        kv_heads = spec.n_head_kv[il]
        recurrent = False
        if arch.memory is Memory.RECURRENT:
            recurrent, kv_heads = True, 0
        elif arch.memory is Memory.HYBRID_BY_KV_HEADS:
            recurrent = kv_heads == 0
        elif arch.memory is Memory.HYBRID_BY_INTERVAL and interval:
            recurrent = (il + 1) % interval != 0
            kv_heads = 0 if recurrent else kv_heads
        elif arch.memory is Memory.PARALLEL_HYBRID:
            recurrent = True
        if il >= kv_layers:
            kv_heads = 0  # gemma3n's last layers reuse earlier layers' KV; MTP blocks have none
        if mla and kv_heads:
            k_row, v_row = mla
        else:
            k_row, v_row = spec.head_dim_k * kv_heads, spec.head_dim_v * kv_heads
        kinds.append(LayerKind(k_row, v_row, slides[il] and k_row > 0, state if recurrent else 0))
    return tuple(kinds), tuple(notes)
