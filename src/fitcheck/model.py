"""Frozen value types shared by every layer: what a model is, how it is run, what it needs, where it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MiB = 1024**2
GiB = 1024**3


class Keyword(str, Enum):
    """A closed set of words that JSON and the command line spell as their value."""

    def __str__(self) -> str:
        return str(self.value)


class Verdict(Keyword):
    GPU = "gpu"  # everything on the accelerators
    OFFLOAD = "offload"  # some layers or experts in RAM
    CPU = "cpu"  # RAM only
    NONE = "none"  # does not fit

    @property
    def rank(self) -> int:
        return _VERDICT_RANK[self]


_VERDICT_RANK = {Verdict.GPU: 3, Verdict.OFFLOAD: 2, Verdict.CPU: 1, Verdict.NONE: 0}


class Require(Keyword):
    """--require: the least verdict that exits 0."""

    GPU = "gpu"
    OFFLOAD = "offload"
    ANY = "any"

    def accepts(self, verdict: Verdict) -> bool:
        least = {Require.GPU: Verdict.GPU, Require.OFFLOAD: Verdict.OFFLOAD, Require.ANY: Verdict.CPU}[self]
        return verdict.rank >= least.rank


class FlashAttn(Keyword):
    ON = "on"
    OFF = "off"
    AUTO = "auto"


class HardwareSource(Keyword):
    PROBE = "probe"  # read from this machine
    OVERRIDE = "override"  # given on the command line


class DeviceKind(Keyword):
    GPU = "gpu"  # a local accelerator (CUDA, Metal, ...)
    RPC = "rpc"  # an llama.cpp RPC server
    CPU = "cpu"  # system RAM


@dataclass(frozen=True)
class Tensor:
    name: str
    ggml_type: str  # "Q4_K", "F16", ...
    shape: tuple[int, ...]  # ggml order: ne0 first
    size_bytes: int
    layer: int | None  # None: not in a block (token_embd, output, output_norm)

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def is_expert(self) -> bool:
        """Routed-expert tensors (`--n-cpu-moe` keeps these on the CPU)."""
        return "_exps" in self.name


@dataclass(frozen=True)
class ModelSpec:
    """Everything the estimator needs about one model, read from its header(s)."""

    ref: str
    name: str
    architecture: str
    file_type: str | None
    n_layer: int
    n_ctx_train: int
    n_embd: int
    n_head: tuple[int, ...]  # per layer
    n_head_kv: tuple[int, ...]  # per layer; 0 = no KV on that layer
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    tensors: tuple[Tensor, ...]
    file_size_bytes: int
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff: int = 0
    sliding_window: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    notes: tuple[str, ...] = ()
    # per shard: (end of the tensor infos, data_offset, end of the last tensor's data), for header-only copies
    shard_extents: tuple[tuple[int, int, int], ...] = field(default=(), compare=False, repr=False)

    @property
    def weights_bytes(self) -> int:
        return sum(t.size_bytes for t in self.tensors)

    @property
    def parameters(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def tied_embeddings(self) -> bool:
        return not any(t.name == "output.weight" for t in self.tensors)


@dataclass(frozen=True)
class Extra:
    """A second allocation the llama-server command line adds to the model's own: a vision projector
    (--mmproj), a draft model for speculative decoding (-md), a LoRA adapter (--lora)."""

    kind: str  # mmproj | draft | lora
    ref: str
    name: str
    weights_bytes: int
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    gpu_bytes: int = 0  # what it puts on the main accelerator (-mg)
    host_bytes: int = 0  # what it puts in RAM
    tensors: tuple[Tensor, ...] = ()  # LoRA: each follows the layer of the tensor it adapts
    notes: tuple[str, ...] = ()
    command_args: tuple[str, ...] = ()  # how llama-server is told: ("--mmproj", path), ("-md", path, "-cd", N)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes


@dataclass(frozen=True)
class Settings:
    """How llama.cpp would be run (llama.cpp's names and defaults) plus fitcheck's own margins."""

    ctx: int | None = None  # None: fitcheck's default (min(8192, n_ctx_train)); 0: the training context
    batch: int = 2048
    ubatch: int = 512
    parallel: int = 1
    kv_unified: bool = False
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    flash_attn: FlashAttn = FlashAttn.AUTO
    swa_full: bool = False
    embeddings: bool | None = None  # --embedding; None: on for encoder/embedding models
    gpu_layers: int | None = None  # None: plan it (auto)
    n_cpu_moe: int | None = None  # None: plan it; -cmoe = n_layer
    tensor_split: tuple[float, ...] | None = None  # -ts: shares per accelerator (RPC first, as llama.cpp)
    tensor_overrides: tuple[tuple[str, str], ...] = ()  # -ot REGEX=DEVICE, first match wins
    gpu_reserve_bytes: int = 512 * MiB  # CUDA context, cuBLAS workspace, driver: per GPU
    margin_bytes: int = 512 * MiB  # headroom left free on each device
    require: Require = Require.ANY
    no_kv_offload: bool = False  # -nkvo: the KV cache stays in host memory
    main_gpu: int = 0  # -mg: the accelerator that holds the extras (and everything with -sm none)
    split_mode: str = "layer"  # -sm layer|row|none
    devices: tuple[str, ...] | None = None  # --device CUDA0,CUDA1 (None: all; () = none)
    mmap: bool = True  # --no-mmap turns it off
    mlock: bool = False
    extras: tuple[Extra, ...] = ()  # --mmproj, -md, --lora: resolved by fitcheck.check
    llama_cpp_build: int | None = None  # --llama-cpp: the build whose allocation rules apply; None = newest
    llama_cpp_build_source: str | None = None  # where the build came from: None = given; a path = detected
    consumer: str = "llama-server"  # whose context settings: llama-server, or "library" (C API defaults)
    backend: str | None = None  # the accelerators' llama.cpp backend (cuda, rocm, ...), from the Hardware
    n_draft: int = 0  # tokens drafted per step with -md (llama-server reserves 1 + n_draft outputs a slot)

    def __post_init__(self) -> None:
        # library callers may pass the words ("on", "gpu"); keep the enums inside
        object.__setattr__(self, "flash_attn", FlashAttn(self.flash_attn))
        object.__setattr__(self, "require", Require(self.require))


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int | None
    bandwidth_gbps: float | None = None  # peak memory bandwidth, GB/s (decimal)
    remote: str | None = None  # host:port of an llama.cpp RPC server
    fp16_tflops: float | None = None  # peak dense FP16 matrix throughput
    fp32_tflops: float | None = None  # peak FP32 vector throughput
    link_gbps: float | None = None  # host link (PCIe) bandwidth, GB/s; None on unified memory
    backend: str | None = None  # llama.cpp backend that runs it: cuda, rocm, vulkan, metal, sycl
    spec_source: str | None = None  # where the bandwidth and compute figures came from


@dataclass(frozen=True)
class Hardware:
    source: HardwareSource
    gpus: tuple[Gpu, ...]
    ram_total_bytes: int | None
    ram_available_bytes: int | None
    unified_memory: bool = False
    notes: tuple[str, ...] = ()
    ram_bandwidth_gbps: float | None = None  # system RAM bandwidth the CPU reaches, GB/s
    ram_bandwidth_source: str | None = None  # measured | override | table
    cpu_threads: int | None = None  # threads llama.cpp would use on the CPU (physical cores)
    cpu_name: str | None = None
    cpu_gflops: float | None = None  # FP32 matrix throughput of those threads (measured), GFLOP/s


@dataclass(frozen=True)
class LayerNeed:
    """What one repeating block costs, so a planner can place it."""

    index: int
    weights_bytes: int
    expert_bytes: int  # part of weights_bytes in routed-expert tensors
    kv_cache_bytes: int
    recurrent_state_bytes: int
    sliding: bool
    kv_cells: int = 0  # cells per stream (a sliding layer's window, else the context)


@dataclass(frozen=True)
class Needs:
    """The whole model's memory need under one Settings, as llama.cpp would allocate it on one device."""

    ctx: int  # as requested (after defaulting)
    n_ctx: int  # cells llama.cpp allocates (padded)
    n_ctx_seq: int
    flash_attn: bool  # resolved
    weights_bytes: int
    kv_cache_bytes: int
    recurrent_state_bytes: int
    compute_bytes: int  # the device holding the output layer (logits included)
    layer_compute_bytes: int  # a device holding only blocks (no logits)
    host_compute_bytes: int  # CPU-side compute buffer when every layer is offloaded
    output_bytes: int
    overhead_bytes: int  # per-GPU reserve (counted once here)
    layers: tuple[LayerNeed, ...]
    input_bytes: int  # token_embd (always in RAM)
    output_layer_bytes: int  # output + output_norm (the "layer" -ngl counts last)
    tied_output_copy_bytes: int  # token_embd copy placed with the output layer when embeddings are tied
    notes: tuple[str, ...] = ()
    output_rows: int = 0  # logits rows the worst-case graph reserves (llama-server: one per sequence)
    per_backend: bool = False  # compute buffers replayed per backend (CUDA0 / CUDA_Host), see below
    streamed_compute_bytes: int = 0  # per backend: the first GPU when layers stay in RAM (it runs their ops)
    streamed_host_compute_bytes: int = 0  # per backend: the host buffer then
    expert_streamed_compute_bytes: int = 0  # per backend: the first GPU when only routed experts stay in RAM

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.kv_cache_bytes + self.recurrent_state_bytes + self.compute_bytes
                + self.output_bytes + self.overhead_bytes)


@dataclass(frozen=True)
class DeviceUse:
    name: str
    kind: DeviceKind
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    other_bytes: int  # output buffer, recurrent state
    capacity_bytes: int | None
    read_bytes_per_token: int = 0  # weight bytes read per generated token (active experts only)
    blocks: tuple[int, ...] = ()  # the blocks whose layers (and KV) it holds
    gpu_index: int | None = None  # position in Hardware.gpus; None for the CPU
    holds_output: bool = False
    extra_bytes: int = 0  # --mmproj / -md placed here (LoRA tensors are in weights_bytes)

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes
                + self.other_bytes + self.extra_bytes)


@dataclass(frozen=True)
class Plan:
    verdict: Verdict
    gpu_layers: int
    n_cpu_moe: int
    max_ctx: int | None  # largest context that keeps this verdict
    max_ctx_gpu: int | None  # largest context with everything on the accelerators
    command: str
    devices: tuple[DeviceUse, ...]
    notes: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    shortfall_bytes: int = 0  # verdict none: memory missing for the nearest placement
    max_ctx_capped: bool = False  # max_ctx stopped at the training context (per sequence)


@dataclass(frozen=True)
class Range:
    """An estimate shown as the band it is honest to: never a single falsely precise number."""

    low: float
    high: float


@dataclass(frozen=True)
class Speed:
    decode_tokens_per_s: Range  # generation at an empty context (what llama-bench's tg measures)
    decode_full_context_tokens_per_s: Range | None  # generation with the whole context in the KV cache
    prompt_tokens_per_s: Range | None  # None: not justified (unknown compute); the notes say why
    limited_by: str  # the device whose share of a token takes longest
    assumptions: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepRow:
    """One context of a --ctx sweep: the whole need and the plan at that context."""

    ctx: int
    kv_cache_bytes: int
    total_bytes: int
    verdict: Verdict
    gpu_layers: int
    n_cpu_moe: int
    decode_tokens_per_s: Range | None = None


@dataclass(frozen=True)
class OllamaSetup:
    """How Ollama would reproduce a plan for an `ollama:` model: its server's environment and the Modelfile's
    PARAMETER lines (what it cannot express is in `notes`)."""

    model: str  # qwen3:30b
    env: tuple[tuple[str, str], ...] = ()  # (OLLAMA_NUM_PARALLEL, "2"), ...
    parameters: tuple[tuple[str, str], ...] = ()  # (num_ctx, "8192"), ...
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExactDevice:
    """One device as llama.cpp's memory breakdown shows it (whole MiB, rounded down, except compute)."""

    name: str  # "Host" (system RAM), or llama.cpp's device name with its description: "CUDA0 (H200)"
    weights_bytes: int | None
    context_bytes: int | None  # KV cache + recurrent state
    compute_bytes: int | None  # its compute buffers (to 0.01 MiB)


@dataclass(frozen=True)
class Exact:
    """What llama.cpp itself reserves for this model under the same settings (fitcheck --exact), asked
    through its memory-fit pass on a header-only sparse copy of the file."""

    engine: str  # which llama.cpp answered, with its build
    weights_bytes: int
    kv_cache_bytes: int
    recurrent_state_bytes: int
    compute_bytes: int  # every compute buffer, all devices together
    output_bytes: int
    devices: tuple[ExactDevice, ...]
    args: tuple[str, ...]  # the settings as llama.cpp was given them
    resolution_bytes: dict[str, int]  # per part: how far a figure may be from llama.cpp's bytes (its rounding)
    notes: tuple[str, ...] = ()
    copy_header_bytes: int = 0  # the sparse copy llama.cpp read: its header bytes (all shards) ...
    copy_size_bytes: int = 0  # ... its full size ...
    copy_disk_bytes: int = 0  # ... and what it occupied on disk
    incomparable: tuple[str, ...] = ()  # parts this engine sizes under other settings than fitcheck's (notes say why)

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.kv_cache_bytes + self.recurrent_state_bytes + self.compute_bytes
                + self.output_bytes)

    def parts(self) -> dict[str, int]:
        """The parts by the names Needs (and JSON's memory) gives them."""
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "recurrent_state_bytes": self.recurrent_state_bytes, "compute_bytes": self.compute_bytes,
                "output_bytes": self.output_bytes}


@dataclass(frozen=True)
class Report:
    spec: ModelSpec
    settings: Settings
    needs: Needs
    hardware: Hardware
    plan: Plan
    notes: tuple[str, ...] = ()
    sweep: tuple[SweepRow, ...] = ()
    speed: Speed | None = None
    known_architecture: bool = True  # False: fitcheck has no rules for it; the estimate is a guess
    ollama: OllamaSetup | None = None  # an `ollama:` model: the OLLAMA_* / PARAMETER lines for this plan
    exact: Exact | None = None  # --exact: llama.cpp's own figures for the same model and settings


@dataclass(frozen=True)
class QuantRow:
    """One quant of a repo (or a what-if quant of a safetensors repo) and its full report."""

    quant: str
    file: str | None  # None for what-if rows
    size_bytes: int | None
    estimate: bool  # a what-if from the parameter count, not a file
    report: Report
    bits_per_weight: float | None = None  # this file's own: weight bytes x 8 / parameters
    quality: QuantQuality | None = None  # its file type's published loss; None: not measured


@dataclass(frozen=True)
class QuantQuality:
    """What a llama.cpp file type loses against the unquantized model, as llama.cpp's measurements publish it."""

    file_type: str
    tier: str | None  # lossless ... extreme; None: not measured
    rank: int  # higher is better; every unmeasured type ranks below every measured one
    low: bool  # a tier to avoid where a better one fits (Q3/Q2 class)
    kld: float | None  # mean KL-divergence against f16 on `measured_on`
    ppl_increase: float | None
    measured_on: str | None
    source: str
    note: str | None = None


@dataclass(frozen=True)
class QuantReport:
    """Every quant of a repo side by side under one Settings and Hardware."""

    ref: str
    kind: str  # gguf | safetensors
    settings: Settings
    hardware: Hardware
    rows: tuple[QuantRow, ...]  # smallest file first
    best: int | None  # the largest quant that fits fully on the accelerators
    fallback: int | None  # without a best: the largest quant that runs at all
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class HardwareOption:
    """One --gpu option of a comparison and the model's report on it."""

    label: str  # the option as given ("RTX 3060 12GB", "2x RTX 3090")
    report: Report


@dataclass(frozen=True)
class HardwareComparison:
    """One model on several what-if machines: "3060 12 GB or 4060 Ti 16 GB or a used 3090?"."""

    ref: str
    settings: Settings
    options: tuple[HardwareOption, ...]
    notes: tuple[str, ...] = ()
