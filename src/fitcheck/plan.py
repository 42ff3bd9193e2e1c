"""The pure planner: where llama.cpp would put each part, and the best placement that fits.

Placement follows llama.cpp (src/llama-model.cpp load_tensors): `-ngl N` offloads the last N of the
n_layer + 1 "layers", the output layer counting as the last; token_embd stays on the CPU; a model with tied
embeddings gets a copy of token_embd on the output layer's device; GPU layers are split across devices in
proportion to their free memory; `--n-cpu-moe N` keeps the routed experts of blocks 0..N-1 on the CPU.
"""

from __future__ import annotations

import bisect
import shlex
from dataclasses import dataclass, replace

from .estimate import estimate
from .model import DeviceUse, Hardware, ModelSpec, Needs, Plan, Settings

VERDICT_RANK = {"gpu": 3, "offload": 2, "cpu": 1, "none": 0}


@dataclass(frozen=True)
class Placement:
    gpu_layers: int
    n_cpu_moe: int
    devices: tuple[DeviceUse, ...]  # GPUs first, CPU last
    fits: bool


def gpu_capacities(hw: Hardware, settings: Settings) -> list[int]:
    return [max(0, (g.free_bytes if g.free_bytes is not None else g.total_bytes) - settings.margin_bytes)
            for g in hw.gpus]


def ram_capacity(hw: Hardware, settings: Settings) -> int | None:
    if hw.ram_available_bytes is None:
        return None
    return max(0, hw.ram_available_bytes - settings.margin_bytes)


def layer_devices(n_layer: int, gpu_layers: int, capacities: list[int]) -> list[int | None]:
    """Device index for each of the n_layer + 1 layers (last = output); None = CPU."""
    n_gpu = len(capacities)
    act = min(gpu_layers, n_layer + 1) if n_gpu else 0
    start = max(n_layer - gpu_layers, 0)
    total = sum(capacities) or 1
    splits, acc = [], 0
    for cap in capacities:
        acc += cap
        splits.append(acc / total if sum(capacities) else (len(splits) + 1) / n_gpu)
    devices: list[int | None] = []
    for il in range(n_layer + 1):
        if not act or il < start or (il == n_layer and gpu_layers <= n_layer):
            devices.append(None)
        else:
            devices.append(min(bisect.bisect_right(splits, (il - start) / act), n_gpu - 1))
    return devices


def place(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware, gpu_layers: int,
          n_cpu_moe: int) -> Placement:
    caps = gpu_capacities(hw, settings)
    where = layer_devices(spec.n_layer, gpu_layers, caps)
    n_dev = len(caps)
    weights = [0] * (n_dev + 1)  # index n_dev = CPU
    kv = [0] * (n_dev + 1)
    other = [0] * (n_dev + 1)
    for layer, dev in zip(needs.layers, where):
        d = n_dev if dev is None else dev
        experts_to_cpu = layer.expert_bytes if (dev is not None and layer.index < n_cpu_moe) else 0
        weights[d] += layer.weights_bytes - experts_to_cpu
        weights[n_dev] += experts_to_cpu
        kv[d] += layer.kv_cache_bytes
        other[d] += layer.recurrent_state_bytes
    out_dev = n_dev if where[-1] is None else where[-1]
    weights[out_dev] += needs.output_layer_bytes
    if out_dev != n_dev:
        weights[out_dev] += needs.tied_output_copy_bytes
    weights[n_dev] += needs.input_bytes
    other[n_dev] += needs.output_bytes

    used = [any(w == i for w in where) for i in range(n_dev)]
    devices = []
    for i, gpu in enumerate(hw.gpus):
        devices.append(DeviceUse(
            name=gpu.name, kind="gpu", weights_bytes=weights[i], kv_cache_bytes=kv[i],
            compute_bytes=needs.compute_bytes if used[i] else 0,
            overhead_bytes=settings.gpu_reserve_bytes if used[i] else 0, other_bytes=other[i],
            capacity_bytes=caps[i]))
    any_gpu = any(used)
    # The CPU computes the layers it holds; with the output layer on the CPU that includes the logits.
    cpu_compute = needs.compute_bytes if (not any_gpu or where[-1] is None) else needs.host_compute_bytes
    ram_cap = ram_capacity(hw, settings)
    devices.append(DeviceUse(name="CPU (RAM)", kind="cpu", weights_bytes=weights[n_dev], kv_cache_bytes=kv[n_dev],
                             compute_bytes=cpu_compute, overhead_bytes=0, other_bytes=other[n_dev],
                             capacity_bytes=ram_cap))
    fits = all(d.capacity_bytes is None or d.total_bytes <= d.capacity_bytes for d in devices)
    return Placement(gpu_layers, n_cpu_moe, tuple(devices), fits)


def verdict_of(p: Placement, n_layer: int) -> str:
    if not p.fits:
        return "none"
    on_gpu = any(d.kind == "gpu" and d.total_bytes > 0 for d in p.devices)
    if not on_gpu:
        return "cpu"
    return "gpu" if p.gpu_layers > n_layer and p.n_cpu_moe == 0 else "offload"


def best_placement(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware) -> Placement:
    """The user's -ngl/--n-cpu-moe as given, else the most layers on the GPU(s) that still fits."""
    full = spec.n_layer + 1
    n_cpu_moe = min(settings.n_cpu_moe or 0, spec.n_layer)
    if settings.gpu_layers is not None:
        return place(spec, needs, settings, hw, min(settings.gpu_layers, full) if hw.gpus else 0, n_cpu_moe)
    if not hw.gpus:
        return place(spec, needs, settings, hw, 0, n_cpu_moe)
    for ngl in range(full, -1, -1):
        p = place(spec, needs, settings, hw, ngl, n_cpu_moe)
        if p.fits:
            return p
    return place(spec, needs, settings, hw, full, n_cpu_moe)


def max_ctx(spec: ModelSpec, settings: Settings, hw: Hardware, verdict: str) -> int | None:
    """The largest context (a multiple of 256, at most the training context) that keeps the verdict."""
    if verdict == "none":
        return None
    rank = VERDICT_RANK[verdict]

    def holds(ctx: int) -> bool:
        s = replace(settings, ctx=ctx)
        p = best_placement(spec, estimate(spec, s), s, hw)
        return VERDICT_RANK[verdict_of(p, spec.n_layer)] >= rank

    lo, hi = 0, max(spec.n_ctx_train, 256) // 256
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if holds(mid * 256):
            lo = mid
        else:
            hi = mid - 1
    return lo * 256 if lo else None


def command(spec: ModelSpec, needs: Needs, settings: Settings, p: Placement, model_arg: list[str]) -> str:
    parts = ["llama-server", *model_arg, "-c", str(needs.ctx)]
    if any(d.kind == "gpu" for d in p.devices):
        parts += ["-ngl", str(p.gpu_layers)]
    if p.n_cpu_moe:
        parts += ["-cmoe"] if p.n_cpu_moe >= spec.n_layer else ["--n-cpu-moe", str(p.n_cpu_moe)]
    parts += ["-fa", "on" if needs.flash_attn else "off"]
    if settings.cache_type_k != "f16":
        parts += ["-ctk", settings.cache_type_k]
    if settings.cache_type_v != "f16":
        parts += ["-ctv", settings.cache_type_v]
    parts += ["-np", str(settings.parallel)]  # llama-server's own default is 4 unified slots
    if settings.kv_unified:
        parts.append("--kv-unified")
    if settings.swa_full:
        parts.append("--swa-full")
    if settings.batch != 2048:
        parts += ["-b", str(settings.batch)]
    if settings.ubatch != 512:
        parts += ["-ub", str(settings.ubatch)]
    return shlex.join(parts)


def plan(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware, model_arg: list[str]) -> Plan:
    p = best_placement(spec, needs, settings, hw)
    verdict = verdict_of(p, spec.n_layer)
    notes: list[str] = []
    if any(d.capacity_bytes is None for d in p.devices if d.kind == "cpu"):
        notes.append("available RAM unknown: the CPU side was not checked")
    if verdict == "none":
        notes.append("does not fit: try a smaller quant, a shorter context (-c), or a quantized KV cache (-ctk/-ctv q8_0)")
    return Plan(verdict=verdict, gpu_layers=p.gpu_layers, n_cpu_moe=p.n_cpu_moe,
                max_ctx=max_ctx(spec, settings, hw, verdict), command=command(spec, needs, settings, p, model_arg),
                devices=p.devices, notes=tuple(notes))
