"""Tokens per second for a plan: generation from the bytes each device reads, prompt processing from FLOPs (pure).

Decode (one sequence, llama.cpp's default layer split): every generated token streams each device's share
of the weights (for a mixture of experts only the active experts' share, plus everything shared) and its
part of the KV cache through that device, one device after another. Per device

    t = bytes / (bandwidth × e_bw)  +  weights × κ / peak FLOP/s  +  layers × τ

- the memory term: weights and KV read per token over the device's memory bandwidth at an efficiency e_bw;
- the compute term: dequantise-and-dot work per weight (κ FLOP-equivalents) at the device's FP32 peak —
  what makes a quantized model on a small GPU or a 2-core CPU slower than its bandwidth alone says;
- a fixed cost per layer (kernel launches, synchronisation), which caps small models on fast GPUs.
Prompt processing is compute-bound: 2 FLOPs per active weight per token at the FP16 matrix peak × e_pp; with
partial offload llama.cpp copies the weights of CPU-resident layers to the GPU for every large batch, which
costs their bytes over the host link. Coefficients per llama.cpp backend are fitted on published llama-bench
results and this project's own CPU measurements (data/speed_model.yaml, benchmarks/speed/). Every figure is a
range: the fitted middle ± the band the fit justifies. Unknown bandwidth or compute: no figure, and a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .data import load_yaml
from .model import DeviceKind, DeviceUse, Hardware, ModelSpec, Needs, Plan, Range, Speed, Verdict

PROMPT_TOKENS = 512  # llama-bench's pp512
# The CPU's compute terms are counted in units of a nominal 100 GFLOP/s per physical core (an AVX2 core at
# ~3 GHz); κ and e_pp of the cpu backend are fitted against that unit on measured CPUs, so a CPU's speed
# scales with the threads llama.cpp uses. A measured Hardware.cpu_gflops replaces the nominal figure.
NOMINAL_CORE_GFLOPS = 100.0


@dataclass(frozen=True)
class Coefficients:
    bandwidth_efficiency: float  # e_bw
    compute_per_weight: float  # κ, FLOP-equivalents per weight read, at the FP32 peak
    per_layer_s: float  # τ
    prompt_efficiency: float | None  # e_pp, of the FP16 matrix peak (None: not fitted)


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return load_yaml("speed_model.yaml")


def coefficients(backend: str) -> Coefficients:
    entry = _table()["backends"].get(backend) or _table()["backends"]["default"]
    return Coefficients(float(entry["bandwidth_efficiency"]), float(entry["compute_per_weight"]),
                        float(entry["per_layer_s"]), entry.get("prompt_efficiency"))


def band(backend: str, prompt: bool = False) -> float:
    """The half-width of a backend's range: decode, or prompt processing (wider: kernels vary more)."""
    entry = _table()["backends"].get(backend) or {}
    value = entry.get("prompt_band" if prompt else "band")
    return float(value if value is not None else _table()["prompt_band" if prompt else "band"])


@dataclass(frozen=True)
class _Device:
    """One device of the plan with what the speed model needs to know about it."""

    name: str
    backend: str
    bandwidth_gbps: float | None
    fp32_tflops: float | None
    fp16_tflops: float | None
    link_gbps: float | None
    use: DeviceUse


def _devices(plan: Plan, hw: Hardware) -> list[_Device]:
    out = []
    gpu_backend = "metal" if hw.unified_memory else "cuda"
    for d in plan.devices:
        if d.kind is DeviceKind.CPU:
            gflops = hw.cpu_gflops or (hw.cpu_threads * NOMINAL_CORE_GFLOPS if hw.cpu_threads else None)
            cpu_flops = gflops / 1000 if gflops else None
            out.append(_Device(d.name, "cpu", hw.ram_bandwidth_gbps, cpu_flops, cpu_flops, None, d))
            continue
        g = hw.gpus[d.gpu_index] if d.gpu_index is not None else None
        if g is None:
            continue
        out.append(_Device(d.name, g.backend or gpu_backend, g.bandwidth_gbps, g.fp32_tflops, g.fp16_tflops,
                           g.link_gbps, d))
    return out


def _kv_read_bytes(needs: Needs, blocks: tuple[int, ...], depth: int) -> int:
    """KV bytes one token attends over at `depth` cells: every cell so far, a sliding layer's window at most."""
    n_stream = max(1, needs.n_ctx // max(1, needs.n_ctx_seq))
    total = 0
    for il in blocks:
        layer = needs.layers[il]
        if layer.kv_cells and layer.kv_cache_bytes:
            per_cell = layer.kv_cache_bytes // (n_stream * layer.kv_cells)
            total += per_cell * min(depth, layer.kv_cells)
    return total


@dataclass(frozen=True)
class DecodeTerms:
    """One device's share of a token, before the coefficients: t = memory/e_bw + κ·compute + τ·layers."""

    memory_s: float  # bytes read over the peak bandwidth
    compute_s: float | None  # weights read over the FP32 peak (None: peak unknown)
    layers: int


def decode_terms(use: DeviceUse, needs: Needs, weights_per_byte: float, depth: int,
                 bandwidth_gbps: float, fp32_tflops: float | None) -> DecodeTerms:
    read = use.read_bytes_per_token + _kv_read_bytes(needs, use.blocks, depth)
    compute = use.read_bytes_per_token * weights_per_byte / (fp32_tflops * 1e12) if fp32_tflops else None
    return DecodeTerms(read / (bandwidth_gbps * 1e9), compute, len(use.blocks) + (1 if use.holds_output else 0))


def seconds(terms: DecodeTerms, c: Coefficients) -> float | None:
    compute = 0.0
    if c.compute_per_weight:
        if terms.compute_s is None:
            return None
        compute = c.compute_per_weight * terms.compute_s
    return terms.memory_s / c.bandwidth_efficiency + compute + c.per_layer_s * terms.layers


def _decode_seconds(dev: _Device, c: Coefficients, weights_per_byte: float, needs: Needs,
                    depth: int) -> tuple[float, str] | None:
    """(seconds of this device per token, what dominates them), or None when a figure is missing."""
    use = dev.use
    if use.read_bytes_per_token == 0 and not use.blocks and not use.holds_output:
        return 0.0, ""
    if not dev.bandwidth_gbps:
        return None
    terms = decode_terms(use, needs, weights_per_byte, depth, dev.bandwidth_gbps, dev.fp32_tflops)
    total = seconds(terms, c)
    if total is None:
        return None
    parts = {"memory bandwidth": terms.memory_s / c.bandwidth_efficiency,
             "compute": c.compute_per_weight * (terms.compute_s or 0.0),
             "per-layer overhead": c.per_layer_s * terms.layers}
    return total, max(parts, key=parts.__getitem__)


def _prompt_seconds(devices: list[_Device], weights_per_byte: float, active_share: float,
                    tokens: int) -> tuple[float | None, str | None]:
    """Seconds for one batch of `tokens`, or (None, why not)."""
    gpus = [d for d in devices if d.backend != "cpu" and (d.use.blocks or d.use.holds_output)]
    cpu = next((d for d in devices if d.backend == "cpu"), None)
    seconds = 0.0
    for d in gpus:
        c = coefficients(d.backend)
        if not d.fp16_tflops or not c.prompt_efficiency:
            return None, f"no FP16 throughput known for {d.name}"
        flops = 2 * d.use.read_bytes_per_token * weights_per_byte * tokens
        seconds += flops / (d.fp16_tflops * 1e12 * c.prompt_efficiency)
    if cpu is not None and cpu.use.read_bytes_per_token:
        cpu_weights = cpu.use.weights_bytes * weights_per_byte
        if gpus:
            # llama.cpp runs large batches' matmuls of host-resident weights on the GPU: every batch copies
            # those weights over the host link, then computes there
            gpu = gpus[0]
            if not gpu.link_gbps:
                return None, f"host link of {gpu.name} unknown (unified memory or not in the table)"
            c = coefficients(gpu.backend)
            seconds += cpu.use.weights_bytes / (gpu.link_gbps * 1e9)
            seconds += 2 * cpu_weights * active_share * tokens / (
                (gpu.fp16_tflops or 0) * 1e12 * (c.prompt_efficiency or 1))
        else:
            c = coefficients("cpu")
            if not cpu.fp16_tflops or not c.prompt_efficiency:
                return None, "CPU compute throughput unknown"
            seconds += 2 * cpu.use.read_bytes_per_token * weights_per_byte * tokens / (
                cpu.fp16_tflops * 1e12 * c.prompt_efficiency)
    return seconds, None


def estimate_speed(spec: ModelSpec, needs: Needs, plan: Plan, hw: Hardware) -> tuple[Speed | None, tuple[str, ...]]:
    """Decode and prompt tokens/s for this plan, or (None, why) when no figure can be justified."""
    if not plan.devices or plan.verdict is Verdict.NONE:
        return None, ()
    devices = _devices(plan, hw)
    weights_per_byte = spec.parameters / max(1, spec.weights_bytes)
    active_share = spec.n_expert_used / spec.n_expert if spec.n_expert else 1.0
    notes: list[str] = []
    active = [d for d in devices if d.use.read_bytes_per_token or d.use.blocks]
    width = max(band(d.backend) for d in active)
    prompt_width = max(band(d.backend, prompt=True) for d in active)

    def decode(depth: int) -> tuple[float | None, str]:
        total, slowest, worst = 0.0, "", -1.0
        for d in devices:
            found = _decode_seconds(d, coefficients(d.backend), weights_per_byte, needs, depth)
            if found is None:
                missing = "RAM bandwidth or CPU throughput" if d.backend == "cpu" else "memory bandwidth"
                notes.append(f"no speed: {missing} of {d.name} unknown"
                             + (" (pass --ram-bandwidth)" if d.backend == "cpu" else " (name it with --gpu)"))
                return None, ""
            t, what = found
            total += t
            if t > worst:
                slowest, worst = f"{d.name} {what}", t
        return (1 / total if total else None), slowest

    start, limited_by = decode(0)
    if start is None:
        return None, tuple(dict.fromkeys(notes))
    full, _ = decode(needs.ctx)
    tokens = min(PROMPT_TOKENS, needs.ctx)
    prompt_s, why = _prompt_seconds(devices, weights_per_byte, active_share, tokens)
    if prompt_s is None:
        notes.append(f"no prompt-processing figure: {why}")
    assumptions = (
        "one sequence, llama.cpp's layer split (devices take turns per token)",
        f"decode at an empty context (llama-bench tg) and at {needs.ctx:,} tokens; prompt = {tokens} tokens",
        f"ranges = fitted middle ± {width:.0%} (decode), ± {prompt_width:.0%} (prompt); coefficients fitted on "
        "published llama-bench results (data/speed_model.yaml, benchmarks/speed/AGREEMENT.md)",
        *(f"{d.name}: {d.bandwidth_gbps:g} GB/s" + (f", {d.fp16_tflops:g} TFLOPS FP16" if d.fp16_tflops else "")
          for d in devices if d.bandwidth_gbps and (d.use.blocks or d.use.read_bytes_per_token)),
    )
    speed = Speed(
        decode_tokens_per_s=_range(start, width),
        decode_full_context_tokens_per_s=_range(full, width) if full else None,
        prompt_tokens_per_s=_range(tokens / prompt_s, prompt_width) if prompt_s else None,
        limited_by=limited_by,
        assumptions=assumptions,
        notes=tuple(dict.fromkeys(notes)),
    )
    return speed, speed.notes


def _range(middle: float, width: float) -> Range:
    return Range(low=middle * (1 - width), high=middle * (1 + width))
