"""Where llama.cpp puts each tensor and buffer for one -ngl / --n-cpu-moe / -ot / -ts choice (pure).

Rules from llama.cpp (src/llama-model.cpp load_tensors, common/arg.cpp):
- `-ngl N` offloads the last N of the n_layer + 1 "layers"; the output layer (output, output_norm) is the
  last one. token_embd is the input layer and stays on the CPU. With tied embeddings the output layer's
  device gets its own copy of token_embd.
- Offloaded layers are split across devices by `-ts` or, by default, in proportion to free memory; RPC
  devices come first in the device list, local GPUs after them.
- Tensor overrides are matched against tensor names in order, first match wins: the user's `-ot` entries,
  then those `--n-cpu-moe N` adds (`blk.0..N-1.ffn_(up|down|gate|gate_up)_exps` to the CPU).
- Each device holding layers has its own compute buffer and reserve; KV and recurrent state follow their
  layer, except with `-nkvo` (offload_kqv = false: llama-kv-cache.cpp allocates every layer's cache in host
  memory).
- `--device` limits the accelerators; `-sm none` uses the main GPU (`-mg`) alone (llama-model.cpp: with
  LLAMA_SPLIT_MODE_NONE only devices[main_gpu] is used). The extras (--mmproj, -md) take their bytes out of
  the main accelerator and RAM before the model is placed; LoRA tensors go where the tensor they adapt goes
  (llama-adapter.cpp picks the base tensor's buffer type).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, replace

from .errors import UsageError
from .model import DeviceKind, DeviceUse, Hardware, ModelSpec, Needs, Settings

CPU = "CPU"


@dataclass(frozen=True)
class Target:
    name: str  # llama.cpp's device name: CUDA0, RPC[host:port], CPU
    label: str  # for people: the card's name
    kind: DeviceKind
    capacity: int | None
    gpu_index: int | None = None  # position in Hardware.gpus; None for the CPU
    extra: int = 0  # bytes the extras (--mmproj, -md) put on this device


@dataclass(frozen=True)
class LayerLoad:
    """One of the n_layer + 2 placement units: blocks, then output (n_layer), then input (n_layer + 1)."""

    index: int
    movable_bytes: int  # goes where the layer goes
    expert_bytes: int  # routed experts not pinned by -ot (--n-cpu-moe may keep them on the CPU)
    pinned: tuple[tuple[str, int], ...]  # (device name, bytes) forced by -ot
    kv_bytes: int
    state_bytes: int


@dataclass(frozen=True)
class Placement:
    gpu_layers: int
    n_cpu_moe: int
    devices: tuple[DeviceUse, ...]  # accelerators in llama.cpp's order, CPU last
    fits: bool
    gpu_bytes_per_token: int  # weight bytes read per token from accelerator memory (the speed proxy)
    partial: bool  # some block or output weights stay in RAM


def targets(hw: Hardware, settings: Settings) -> list[Target]:
    """Accelerators in llama.cpp's device order (RPC first), then the CPU, with usable capacity."""
    margin = settings.margin_bytes
    remote = [(k, g) for k, g in enumerate(hw.gpus) if g.remote]
    local = [(k, g) for k, g in enumerate(hw.gpus) if not g.remote]
    out = []
    for k, g in remote:
        free = g.free_bytes if g.free_bytes is not None else g.total_bytes
        out.append(Target(f"RPC[{g.remote}]", g.name, DeviceKind.RPC, max(0, free - margin), k))
    for i, (k, g) in enumerate(local):
        free = g.free_bytes if g.free_bytes is not None else g.total_bytes
        prefix = "Metal" if hw.unified_memory else "CUDA"
        out.append(Target(f"{prefix}{i}", g.name, DeviceKind.GPU, max(0, free - margin), k))
    if settings.devices is not None:
        wanted = {d.upper() for d in settings.devices}
        unknown = wanted - {t.name.upper() for t in out}
        if unknown:
            raise UsageError(f"--device names an unknown device {sorted(unknown)[0]!r}",
                             hint=f"devices here: {', '.join(t.name for t in out) or 'none'}")
        out = [t for t in out if t.name.upper() in wanted]
    if settings.split_mode == "none" and out:
        if not 0 <= settings.main_gpu < len(out):
            raise UsageError(f"-mg {settings.main_gpu}: there are only {len(out)} accelerators")
        out = [out[settings.main_gpu]]
    ram = None if hw.ram_available_bytes is None else max(0, hw.ram_available_bytes - margin)
    out.append(Target(CPU, "CPU (RAM)", DeviceKind.CPU, ram))
    gpu_extra = sum(e.gpu_bytes for e in settings.extras)
    host_extra = sum(e.host_bytes for e in settings.extras)
    main = 0 if settings.split_mode == "none" else settings.main_gpu
    if len(out) > 1 and not 0 <= main < len(out) - 1:
        raise UsageError(f"-mg {settings.main_gpu}: there are only {len(out) - 1} accelerators")
    if len(out) == 1:  # no accelerator: the extras live in RAM
        host_extra += gpu_extra
    elif gpu_extra:
        out[main] = replace(out[main], extra=gpu_extra)
    if host_extra:
        out[-1] = replace(out[-1], extra=host_extra)
    return out


def _compile_overrides(settings: Settings, names: list[str]) -> list[tuple[re.Pattern[str], str]]:
    compiled = []
    for pattern, device in settings.tensor_overrides:
        wanted = _device_name(device, names)
        try:
            compiled.append((re.compile(pattern), wanted))
        except re.error as exc:
            raise UsageError(f"bad -ot pattern {pattern!r}: {exc}") from None
    return compiled


def _device_name(device: str, names: list[str]) -> str:
    """Accept llama.cpp's buffer names (CUDA0, CPU, RPC[host:port]) and GPU0-style aliases."""
    upper = device.upper()
    for name in names:
        if name.upper() == upper:
            return name
    m = re.fullmatch(r"(?:GPU|CUDA|METAL|VULKAN|ROCM)(\d+)", upper)
    accelerators = [n for n in names if n != CPU]
    if m and int(m[1]) < len(accelerators):
        local = [n for n in accelerators if not n.startswith("RPC")]
        return local[int(m[1])] if int(m[1]) < len(local) else accelerators[int(m[1])]
    raise UsageError(f"-ot names an unknown device {device!r}", hint=f"devices here: {', '.join(names)}")


def layer_loads(spec: ModelSpec, needs: Needs, settings: Settings, device_names: list[str]) -> list[LayerLoad]:
    overrides = _compile_overrides(settings, device_names)
    n = spec.n_layer
    movable = [0] * (n + 2)
    experts = [0] * (n + 2)
    pinned: list[dict[str, int]] = [{} for _ in range(n + 2)]
    adapters = tuple(t for e in settings.extras for t in e.tensors)
    for t in spec.tensors + adapters:
        if t.layer is not None and 0 <= t.layer < n:
            unit = t.layer
        elif t.name.startswith("token_embd"):
            unit = n + 1
        else:
            unit = n  # output, output_norm, extra heads
        target = next((dev for rx, dev in overrides if rx.search(t.name)), None)
        if target is not None:
            pinned[unit][target] = pinned[unit].get(target, 0) + t.size_bytes
        elif t.is_expert and unit < n:
            experts[unit] += t.size_bytes
        else:
            movable[unit] += t.size_bytes
    loads = []
    for i in range(n + 2):
        kv = needs.layers[i].kv_cache_bytes if i < n else 0
        state = needs.layers[i].recurrent_state_bytes if i < n else 0
        loads.append(LayerLoad(i, movable[i], experts[i], tuple(pinned[i].items()), kv, state))
    return loads


def layer_devices(n_layer: int, gpu_layers: int, split: list[float]) -> list[int | None]:
    """Accelerator index for each of the n_layer + 1 layers (last = output); None = CPU."""
    n_acc = len(split)
    act = min(gpu_layers, n_layer + 1) if n_acc else 0
    start = max(n_layer - gpu_layers, 0)
    total = sum(split)
    cumulative: list[float] = []
    acc = 0.0
    for share in split:
        acc += share
        cumulative.append(acc / total if total else (len(cumulative) + 1) / n_acc)
    devices: list[int | None] = []
    for il in range(n_layer + 1):
        if not act or il < start or (il == n_layer and gpu_layers <= n_layer):
            devices.append(None)
        else:
            devices.append(min(bisect.bisect_right(cumulative, (il - start) / act), n_acc - 1))
    return devices


def place(spec: ModelSpec, needs: Needs, settings: Settings, tgts: list[Target], loads: list[LayerLoad],
          gpu_layers: int, n_cpu_moe: int) -> Placement:
    accel = tgts[:-1]
    split = list(settings.tensor_split) if settings.tensor_split else [float(t.capacity or 0) for t in accel]
    if len(split) < len(accel):
        split += [0.0] * (len(accel) - len(split))
    where = layer_devices(spec.n_layer, gpu_layers, split[:len(accel)])
    cpu = len(accel)
    index = {t.name: i for i, t in enumerate(tgts)}
    weights = [0] * len(tgts)
    kv = [0] * len(tgts)
    other = [0] * len(tgts)
    holds_layer = [False] * len(tgts)
    blocks: list[list[int]] = [[] for _ in tgts]
    reads = [0] * len(tgts)  # weight bytes each device reads per generated token
    read_per_token = 0
    partial = False
    expert_share = spec.n_expert_used / spec.n_expert if spec.n_expert else 1.0
    for load in loads:
        slot = where[load.index] if load.index <= spec.n_layer else None  # the input layer stays on the CPU
        dev = cpu if slot is None else slot
        if load.index < spec.n_layer:
            holds_layer[dev] = True
            blocks[dev].append(load.index)
        weights[dev] += load.movable_bytes
        expert_dev = cpu if load.index < n_cpu_moe else dev
        weights[expert_dev] += load.expert_bytes
        kv[cpu if settings.no_kv_offload else dev] += load.kv_bytes
        other[cpu if settings.no_kv_offload else dev] += load.state_bytes
        in_block = load.index <= spec.n_layer
        partial |= in_block and ((dev == cpu and load.movable_bytes + load.expert_bytes > 0)
                                 or (expert_dev == cpu and load.expert_bytes > 0))
        for name, size in load.pinned:
            weights[index[name]] += size
            partial |= in_block and index[name] == cpu
            if in_block:
                reads[index[name]] += size
                read_per_token += size if index[name] != cpu else 0
        if in_block:  # decode reads one row of token_embd, not the input layer
            reads[dev] += load.movable_bytes
            read_per_token += load.movable_bytes if dev != cpu else 0
        active_experts = int(load.expert_bytes * expert_share)
        reads[expert_dev] += active_experts
        read_per_token += active_experts if expert_dev != cpu else 0
    out_dev = cpu if where[-1] is None else where[-1]
    reads[out_dev] += needs.tied_output_copy_bytes  # tied: the output matmul reads token_embd (or its copy)
    if out_dev != cpu:
        weights[out_dev] += needs.tied_output_copy_bytes
        read_per_token += needs.tied_output_copy_bytes
    other[cpu] += needs.output_bytes

    # per backend (CUDA, ROCm, Metal): the ops of a micro-batch whose weights are in RAM run on the first
    # accelerator, which copies the weights in (op offload); the host buffer keeps the graph inputs. Partial
    # -ngl puts the output layer in RAM too. (-ngl 0 is planned as CPU only.)
    streaming = needs.per_backend and cpu > 0 and (any(holds_layer[:cpu]) or any(weights[:cpu]))
    layers_in_ram = streaming and (holds_layer[cpu] or out_dev == cpu)
    experts_in_ram = streaming and any(load.expert_bytes for load in loads[:min(n_cpu_moe, spec.n_layer)])
    uses = []
    for i, t in enumerate(tgts):
        if i == cpu:
            if layers_in_ram and out_dev == cpu:
                compute = needs.streamed_host_compute_bytes
            elif out_dev == cpu:
                compute = needs.compute_bytes
            elif streaming or (any(holds_layer[:cpu]) and not holds_layer[cpu]):
                compute = needs.host_compute_bytes
            else:
                compute = max(needs.layer_compute_bytes, needs.host_compute_bytes)
            reserve = 0
        else:
            active = holds_layer[i] or i == out_dev or weights[i] > 0
            compute = (needs.compute_bytes if i == out_dev else needs.layer_compute_bytes) if active else 0
            if i == 0 and layers_in_ram:
                compute = max(compute, needs.streamed_compute_bytes)
            elif i == 0 and experts_in_ram:
                compute = max(compute, needs.expert_streamed_compute_bytes)
            reserve = settings.gpu_reserve_bytes if active or t.extra > 0 else 0
        uses.append(DeviceUse(name=t.label if t.kind is not DeviceKind.RPC else f"{t.name} {t.label}", kind=t.kind,
                              weights_bytes=weights[i], kv_cache_bytes=kv[i], compute_bytes=compute,
                              overhead_bytes=reserve, other_bytes=other[i], capacity_bytes=t.capacity,
                              read_bytes_per_token=reads[i], blocks=tuple(blocks[i]), gpu_index=t.gpu_index,
                              holds_output=i == out_dev, extra_bytes=t.extra))
    fits = all(u.capacity_bytes is None or u.total_bytes <= u.capacity_bytes for u in uses)
    if fits and tgts[-1].capacity is not None and any(t.kind is DeviceKind.GPU for t in tgts) and _shared_pool(tgts):
        fits = sum(u.total_bytes for u in uses) <= tgts[-1].capacity
    return Placement(gpu_layers, n_cpu_moe, tuple(uses), fits, read_per_token, partial)


def _shared_pool(tgts: list[Target]) -> bool:
    return any(t.name.startswith("Metal") for t in tgts)
