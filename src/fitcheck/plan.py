"""The pure planner: the placement a llama.cpp expert would choose, its verdict, context limits and command.

Search: for a dense model, the largest -ngl that fits. For a mixture of experts, also all layers on the
accelerators with the routed experts of the first N blocks in RAM (--n-cpu-moe N, smallest N that fits), and
-cmoe with the largest -ngl; the winner keeps the most weight bytes read per token in accelerator memory
(attention, shared experts and the KV cache first, then whole blocks' experts). A user's -ngl is evaluated
as given, never re-planned.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import replace

from . import archs, compute
from .context import resolve_context
from .estimate import estimate, resolve_flash_attn
from .model import DeviceKind, FlashAttn, GiB, Hardware, ModelSpec, Needs, Plan, Settings, Verdict
from .placement import Placement, Target, layer_loads, place, targets


def verdict_of(p: Placement) -> Verdict:
    if not p.fits:
        return Verdict.NONE
    if not any(d.kind is not DeviceKind.CPU and d.total_bytes > 0 for d in p.devices):
        return Verdict.CPU
    return Verdict.OFFLOAD if p.partial else Verdict.GPU


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Largest x in [lo, hi] with ok(x), for ok true up to a point and false after it."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _smallest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    if not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def _accel_fit(p: Placement) -> bool:
    return all(d.capacity_bytes is None or d.total_bytes <= d.capacity_bytes for d in p.devices
               if d.kind is not DeviceKind.CPU)


def best_placement(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware) -> Placement:
    tgts = targets(hw, settings)
    loads = layer_loads(spec, needs, settings, [t.name for t in tgts])
    full = spec.n_layer + 1
    has_accel = len(tgts) > 1

    def at(ngl: int, ncmoe: int) -> Placement:
        return place(spec, needs, settings, tgts, loads, min(ngl, full) if has_accel else 0, min(ncmoe, spec.n_layer))

    user_ncmoe = settings.n_cpu_moe
    if settings.gpu_layers is not None or not has_accel:
        return at(settings.gpu_layers if settings.gpu_layers is not None else 0, user_ncmoe or 0)

    candidates: list[Placement] = []

    def largest_ngl(ncmoe: int) -> None:
        # accelerator use grows with -ngl and RAM use shrinks: the largest -ngl that fits the accelerators
        # is the only candidate; if RAM does not hold the rest there, it holds it nowhere.
        ngl = _largest(0, full, lambda n: _accel_fit(at(n, ncmoe)))
        if ngl is not None:
            candidates.append(at(ngl, ncmoe))

    if user_ncmoe is not None:
        largest_ngl(user_ncmoe)
    else:
        largest_ngl(0)
        if any(load.expert_bytes for load in loads):
            ncmoe = _smallest(0, spec.n_layer, lambda n: _accel_fit(at(full, n)))
            if ncmoe is not None:
                candidates.append(at(full, ncmoe))
            largest_ngl(spec.n_layer)
    fitting = [p for p in candidates if p.fits]
    if fitting:
        return max(fitting, key=lambda p: (p.gpu_bytes_per_token, p.gpu_layers, -p.n_cpu_moe))
    cpu_only = at(0, 0)
    if cpu_only.fits:
        return cpu_only
    # nothing fits: the nearest placement (the least memory missing), so that the shortfall shown is honest
    return min([*candidates, cpu_only, at(full, 0)], key=lambda p: (shortfall(p), -p.gpu_layers))


def shortfall(p: Placement) -> int:
    """Bytes missing over all devices of a placement (0 when it fits)."""
    return sum(max(0, d.total_bytes - d.capacity_bytes) for d in p.devices if d.capacity_bytes is not None)


def _plan_verdict(spec: ModelSpec, settings: Settings, hw: Hardware, ctx: int,
                  compute_fn: compute.ComputeFn = compute.compute_buffers) -> Verdict:
    s = replace(settings, ctx=ctx)
    return verdict_of(best_placement(spec, estimate(spec, s, compute_fn=compute_fn), s, hw))


def max_ctx(spec: ModelSpec, settings: Settings, hw: Hardware, at_least: Verdict) -> int | None:
    """The largest context (a multiple of 256, at most the training context) whose verdict is at least this.

    The search runs on a cheap stand-in for the compute buffers (compute.anchored: exact at the requested
    context, moved by the stage model elsewhere) and then confirms the boundary with the exact method, probing
    outward from the cheap answer: the result is the exact search's, for a few exact estimates instead of ~10."""
    if at_least is Verdict.NONE:
        return None
    top = max(spec.n_ctx_train, 256) * _seqs(settings) // 256

    def ok(k: int, fn: compute.ComputeFn = compute.compute_buffers) -> bool:
        return _plan_verdict(spec, settings, hw, k * 256, fn).rank >= at_least.rank

    flash_attn, _ = resolve_flash_attn(spec, settings)
    kinds, _ = archs.layer_kinds(spec)
    cheap = compute.anchored(spec, resolve_context(spec, settings), settings, flash_attn, kinds)
    if cheap is None:
        found = _largest(1, top, ok)
    else:
        found = _largest_near(_largest(1, top, lambda k: ok(k, cheap)) or 1, 1, top, ok)
    return found * 256 if found else None


def _seqs(settings: Settings) -> int:
    """How many sequences share the context: llama.cpp checks n_ctx_seq (the context per sequence) against
    the training context (llama-context.cpp warns when n_ctx_seq > n_ctx_train)."""
    return 1 if settings.kv_unified else max(1, settings.parallel)


def _largest_near(guess: int, lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Largest x in [lo, hi] with ok(x) (true up to a point, false after it), probing outward from a guess."""
    guess = min(max(guess, lo), hi)
    step = 1
    if ok(guess):
        good, bad = guess, hi + 1
        while good + step <= hi:
            if not ok(good + step):
                bad = good + step
                break
            good, step = good + step, step * 2
    else:
        good, bad = lo - 1, guess
        while bad - step >= lo:
            if ok(bad - step):
                good = bad - step
                break
            bad, step = bad - step, step * 2
        if good < lo:  # the gallop stepped past lo: lo itself decides
            if bad == lo or not ok(lo):
                return None
            good = lo
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return good


def command(spec: ModelSpec, needs: Needs, settings: Settings, p: Placement, model_arg: list[str],
            tgts: list[Target]) -> str:
    parts = ["llama-server", *model_arg, "-c", str(needs.ctx)]
    rpc = [t.name[4:-1] for t in tgts if t.kind is DeviceKind.RPC]
    if rpc:
        parts += ["--rpc", ",".join(rpc)]
    if settings.devices is not None:
        parts += ["--device", ",".join(settings.devices) or "none"]
    if settings.split_mode != "layer":
        parts += ["-sm", settings.split_mode]
    if settings.main_gpu:
        parts += ["-mg", str(settings.main_gpu)]
    # always explicit: a GPU build offloads by default (-ngl auto), so a CPU plan must say -ngl 0
    parts += ["-ngl", str(p.gpu_layers)]
    if p.n_cpu_moe and has_experts(spec):
        parts += ["-cmoe"] if p.n_cpu_moe >= spec.n_layer else ["--n-cpu-moe", str(p.n_cpu_moe)]
    for pattern, device in settings.tensor_overrides:
        parts += ["-ot", f"{pattern}={device}"]
    if settings.tensor_split:
        parts += ["-ts", ",".join(f"{x:g}" for x in settings.tensor_split)]
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
    if settings.no_kv_offload:
        parts.append("-nkvo")
    if not settings.mmap:
        parts.append("--no-mmap")
    if settings.mlock:
        parts.append("--mlock")
    for extra in settings.extras:
        parts += list(extra.command_args)
    return shlex.join(parts)


def has_experts(spec: ModelSpec) -> bool:
    return any(t.is_expert for t in spec.tensors)


def _kv_suggestion(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware,
                   verdict: Verdict) -> tuple[str, ...]:
    """When a q8_0 KV cache would put everything on the accelerators, say so with the saving."""
    already_q8 = settings.cache_type_k == "q8_0" == settings.cache_type_v
    if verdict is not Verdict.OFFLOAD or settings.gpu_layers is not None or already_q8:
        return ()
    q8 = replace(settings, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn=FlashAttn.ON)
    q8_needs = estimate(spec, q8)
    if verdict_of(best_placement(spec, q8_needs, q8, hw)) is not Verdict.GPU:
        return ()
    saving = (needs.kv_cache_bytes - q8_needs.kv_cache_bytes) / GiB
    return (f"with -ctk q8_0 -ctv q8_0 -fa on the KV cache shrinks by {saving:.2f} GiB and the whole model fits "
            "on the GPU (q8_0 KV costs little quality)",)


def plan(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware, model_arg: list[str], *,
         limits: bool = True, brief: bool = False) -> Plan:
    """The placement, verdict and command; with `limits`, also the context limits and the KV-cache tip
    (each of which re-plans at other settings). `brief` (a `fitcheck scan` row): only the verdict's own max
    context, no GPU-only max context beside another verdict's and no tips (max_ctx_gpu None, suggestions ())."""
    p = best_placement(spec, needs, settings, hw)
    tgts = targets(hw, settings)
    verdict = verdict_of(p)
    notes: list[str] = []
    if tgts[-1].capacity is None:
        notes.append("available RAM unknown: the CPU side was not checked")
    experts = has_experts(spec)
    if settings.n_cpu_moe and not experts:
        notes.append("--n-cpu-moe/-cmoe ignored: a dense model has no expert tensors")
    if p.n_cpu_moe and experts:
        notes.append(f"experts of the first {min(p.n_cpu_moe, spec.n_layer)} blocks stay in RAM; everything "
                     "else is on the GPU (prompt processing copies experts to the GPU in large batches)")
    if settings.no_kv_offload:
        notes.append("-nkvo: the KV cache is in RAM and attention runs on the CPU (slower decoding)")
    if settings.split_mode == "row":
        notes.append("-sm row is planned like -sm layer (row split spreads each matrix; the totals per GPU are "
                     "close, but the KV cache and compute buffers sit on the main GPU)")
    has_accel = len(tgts) > 1
    used = [d for d in p.devices if d.kind is not DeviceKind.CPU and d.total_bytes - d.extra_bytes > 0]
    # llama-context.cpp: pipeline_parallel = n_devices > 1 && n_gpu_layers > n_layer && split_mode == LAYER
    # && offload_kqv && !has_tensor_overrides (--n-cpu-moe adds overrides); the scheduler then keeps
    # GGML_SCHED_MAX_COPIES (4) copies of the graph inputs (ggml-backend.cpp)
    if (len(used) > 1 and p.gpu_layers > spec.n_layer and settings.split_mode == "layer"
            and not settings.no_kv_offload and not settings.tensor_overrides and not p.n_cpu_moe):
        notes.append("pipeline parallelism is on (several GPUs, all layers offloaded): llama.cpp keeps 4 copies "
                     "of the compute graph's inputs, which these compute buffers do not include")
    gpu_max = ctx_max = None
    capped = False
    short = shortfall(p) if verdict is Verdict.NONE else 0
    suggestions: tuple[str, ...] = ()
    if limits:
        want_gpu = has_accel and settings.gpu_layers is None and (verdict is Verdict.GPU or not brief)
        gpu_max = max_ctx(spec, settings, hw, Verdict.GPU) if want_gpu else None
        ctx_max = gpu_max if verdict is Verdict.GPU else max_ctx(spec, settings, hw, verdict)
        train = spec.n_ctx_train * _seqs(settings)
        capped = ctx_max is not None and spec.n_ctx_train > 0 and ctx_max >= train // 256 * 256
        if capped and needs.ctx > (ctx_max or 0):
            notes.append(f"max context stops at the training context ({spec.n_ctx_train:,} per sequence); the "
                         f"requested {needs.ctx:,} is beyond it (llama.cpp warns; quality degrades without "
                         "rope scaling)")
        if not brief:
            suggestions = (_nearest(spec, needs, settings, hw, p, short) if verdict is Verdict.NONE
                           else _kv_suggestion(spec, needs, settings, hw, verdict))
    if verdict is Verdict.NONE:
        notes.append(f"does not fit: {_short_text(p)}")
        if settings.mmap and not settings.mlock and _ram_short_only(p):
            notes.append("llama.cpp maps the file (mmap), so it may still start and page weights from disk on "
                         "every token: usable only as a last resort (--no-mmap or --mlock would refuse)")
    return Plan(verdict=verdict, gpu_layers=p.gpu_layers, n_cpu_moe=min(p.n_cpu_moe, spec.n_layer) if experts else 0,
                max_ctx=ctx_max, max_ctx_gpu=gpu_max, command=command(spec, needs, settings, p, model_arg, tgts),
                devices=p.devices, notes=tuple(notes), suggestions=suggestions, shortfall_bytes=short,
                max_ctx_capped=capped)


def _short_text(p: Placement) -> str:
    parts = [f"{d.name} is {(d.total_bytes - d.capacity_bytes) / GiB:.2f} GiB short" for d in p.devices
             if d.capacity_bytes is not None and d.total_bytes > d.capacity_bytes]
    return "; ".join(parts) + f" ({shortfall(p) / GiB:.2f} GiB missing in all)"


def _ram_short_only(p: Placement) -> bool:
    return all(d.kind is DeviceKind.CPU for d in p.devices
               if d.capacity_bytes is not None and d.total_bytes > d.capacity_bytes)


def _nearest(spec: ModelSpec, needs: Needs, settings: Settings, hw: Hardware, p: Placement,
             short: int) -> tuple[str, ...]:
    """What would make a plan that does not fit work: a shorter context, a q8_0 KV cache, more memory."""
    out: list[str] = []
    capacity = sum(d.capacity_bytes or 0 for d in p.devices)
    fixed = needs.weights_bytes + sum(e.total_bytes for e in settings.extras)
    if fixed > capacity:
        out.append(f"nothing at any context: the weights alone need {fixed / GiB:.2f} GiB and this machine "
                   f"offers {capacity / GiB:.2f} GiB; a smaller quant or more memory is needed")
    else:
        fits_ctx = max_ctx(spec, settings, hw, Verdict.CPU)
        if fits_ctx:
            out.append(f"runs at -c {fits_ctx} or less")
        if {settings.cache_type_k, settings.cache_type_v} <= {"f16", "f32", "bf16"}:
            q8 = replace(settings, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn=FlashAttn.ON)
            if verdict_of(best_placement(spec, estimate(spec, q8), q8, hw)) is not Verdict.NONE:
                out.append("runs with -ctk q8_0 -ctv q8_0 -fa on (the KV cache at half size)")
    out.append(f"or with {short / GiB:.2f} GiB more memory where it is short (see the placement)")
    return tuple(out)

