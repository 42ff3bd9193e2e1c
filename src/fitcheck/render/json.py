"""The JSON document (schema_version 1): the contract CI scripts gate on. Bytes are integers."""

from __future__ import annotations

import json
from typing import Any

from .. import llama_build
from .._version import __version__
from ..model import Exact, Hardware, OllamaSetup, Range, Report, Speed

SCHEMA_VERSION = 1


def report_dict(report: Report) -> dict[str, Any]:
    spec, s, needs, hw, plan = report.spec, report.settings, report.needs, report.hardware, report.plan
    return {
        "schema_version": SCHEMA_VERSION,
        "fitcheck_version": __version__,
        "model": {
            "ref": spec.ref,
            "name": spec.name,
            "architecture": spec.architecture,
            "file_type": spec.file_type,
            "parameters": spec.parameters,
            "size_bytes": spec.file_size_bytes,
            "n_layer": spec.n_layer,
            "n_ctx_train": spec.n_ctx_train,
            "n_embd": spec.n_embd,
            "n_head": max(spec.n_head),
            "n_head_kv": list(spec.n_head_kv) if len(set(spec.n_head_kv)) > 1 else spec.n_head_kv[0],
            "n_expert": spec.n_expert,
            "n_expert_used": spec.n_expert_used,
            "sliding_window": spec.sliding_window,
            "known_architecture": report.known_architecture,
        },
        "settings": {
            "ctx": needs.ctx,
            "n_ctx": needs.n_ctx,
            "n_ctx_seq": needs.n_ctx_seq,
            "batch": s.batch,
            "ubatch": s.ubatch,
            "parallel": s.parallel,
            "kv_unified": s.kv_unified,
            "cache_type_k": s.cache_type_k,
            "cache_type_v": s.cache_type_v,
            "flash_attn": "on" if needs.flash_attn else "off",
            "flash_attn_requested": s.flash_attn,
            "swa_full": s.swa_full,
            "llama_cpp_build": llama_build.label(s.llama_cpp_build),
            "llama_cpp_build_source": ("given" if s.llama_cpp_build is not None else "default")
            if s.llama_cpp_build_source is None else "detected",
            "consumer": s.consumer,
            "output_rows": needs.output_rows,
            "gpu_layers": plan.gpu_layers,
            "n_cpu_moe": plan.n_cpu_moe,
            "tensor_split": list(s.tensor_split) if s.tensor_split else None,
            "tensor_overrides": [f"{pattern}={device}" for pattern, device in s.tensor_overrides],
            "gpu_reserve_bytes": s.gpu_reserve_bytes,
            "margin_bytes": s.margin_bytes,
            "require": s.require,
            "no_kv_offload": s.no_kv_offload,
            "split_mode": s.split_mode,
            "main_gpu": s.main_gpu,
            "devices": list(s.devices) if s.devices is not None else None,
            "mmap": s.mmap,
            "mlock": s.mlock,
        },
        "memory": {
            "weights_bytes": needs.weights_bytes,
            "kv_cache_bytes": needs.kv_cache_bytes,
            "recurrent_state_bytes": needs.recurrent_state_bytes,
            "compute_bytes": needs.compute_bytes,
            "output_bytes": needs.output_bytes,
            "overhead_bytes": needs.overhead_bytes,
            "total_bytes": needs.total_bytes,
        },
        "hardware": hardware_dict(hw),
        "plan": {
            "verdict": plan.verdict,
            "gpu_layers": plan.gpu_layers,
            "n_cpu_moe": plan.n_cpu_moe,
            "max_ctx": plan.max_ctx,
            "max_ctx_gpu": plan.max_ctx_gpu,
            "max_ctx_per_sequence": (plan.max_ctx // (1 if s.kv_unified else s.parallel)) if plan.max_ctx else None,
            "max_ctx_capped": plan.max_ctx_capped,
            "shortfall_bytes": plan.shortfall_bytes,
            "command": plan.command,
            "suggestions": list(plan.suggestions),
            "devices": [{"name": d.name, "kind": d.kind, "weights_bytes": d.weights_bytes,
                         "kv_cache_bytes": d.kv_cache_bytes, "compute_bytes": d.compute_bytes,
                         "overhead_bytes": d.overhead_bytes, "other_bytes": d.other_bytes,
                         "extra_bytes": d.extra_bytes,
                         "total_bytes": d.total_bytes, "capacity_bytes": d.capacity_bytes} for d in plan.devices],
        },
        "extras": [{"kind": e.kind, "ref": e.ref, "name": e.name, "weights_bytes": e.weights_bytes,
                    "kv_cache_bytes": e.kv_cache_bytes, "compute_bytes": e.compute_bytes,
                    "total_bytes": e.total_bytes, "gpu_bytes": e.gpu_bytes, "host_bytes": e.host_bytes,
                    "command_args": list(e.command_args)} for e in s.extras],
        "sweep": sweep_list(report),
        "speed": speed_dict(report.speed),
        "exact": exact_dict(report.exact),
        "ollama": ollama_dict(report.ollama),
        "notes": list(report.notes),
    }


def exact_dict(exact: Exact | None) -> dict[str, Any] | None:
    """--exact: llama.cpp's own figures, keyed as `memory` (overhead is fitcheck's, never llama.cpp's: 0)."""
    if exact is None:
        return None
    return {"engine": exact.engine,
            "memory": {**exact.parts(), "overhead_bytes": 0, "total_bytes": exact.total_bytes},
            "resolution_bytes": dict(exact.resolution_bytes),
            "devices": [{"name": d.name, "weights_bytes": d.weights_bytes, "context_bytes": d.context_bytes,
                         "compute_bytes": d.compute_bytes} for d in exact.devices],
            "args": list(exact.args),
            "incomparable": list(exact.incomparable),
            "sparse_copy": {"header_bytes": exact.copy_header_bytes, "size_bytes": exact.copy_size_bytes,
                            "disk_bytes": exact.copy_disk_bytes},
            "notes": list(exact.notes)}


def ollama_dict(setup: OllamaSetup | None) -> dict[str, Any] | None:
    """An `ollama:` model: the server environment and Modelfile that reproduce the plan (else null)."""
    if setup is None:
        return None
    return {"model": setup.model, "env": dict(setup.env),
            "parameters": {k: int(v) if v.isdigit() else v for k, v in setup.parameters},
            "modelfile": modelfile(setup), "notes": list(setup.notes)}


def modelfile(setup: OllamaSetup) -> str:
    return f"FROM {setup.model}\n" + "".join(f"PARAMETER {k} {v}\n" for k, v in setup.parameters)


def hardware_dict(hw: Hardware) -> dict[str, Any]:
    return {
        "source": hw.source,
        "gpus": [{"index": g.index, "name": g.name, "total_bytes": g.total_bytes, "free_bytes": g.free_bytes,
                  "bandwidth_gbps": g.bandwidth_gbps, "remote": g.remote, "fp16_tflops": g.fp16_tflops,
                  "fp32_tflops": g.fp32_tflops, "link_gbps": g.link_gbps, "backend": g.backend,
                  "spec_source": g.spec_source} for g in hw.gpus],
        "ram": {"total_bytes": hw.ram_total_bytes, "available_bytes": hw.ram_available_bytes,
                "bandwidth_gbps": hw.ram_bandwidth_gbps, "bandwidth_source": hw.ram_bandwidth_source},
        "cpu": {"name": hw.cpu_name, "threads": hw.cpu_threads, "gflops": hw.cpu_gflops},
        "unified_memory": hw.unified_memory,
    }


def sweep_list(report: Report) -> list[dict[str, Any]]:
    return [{"ctx": r.ctx, "kv_cache_bytes": r.kv_cache_bytes, "total_bytes": r.total_bytes,
             "verdict": r.verdict, "gpu_layers": r.gpu_layers, "n_cpu_moe": r.n_cpu_moe,
             "decode_tokens_per_s": range_dict(r.decode_tokens_per_s)} for r in report.sweep]


def range_dict(r: Range | None) -> dict[str, float] | None:
    return None if r is None else {"low": round(r.low, 2), "high": round(r.high, 2)}


def speed_dict(speed: Speed | None) -> dict[str, Any] | None:
    if speed is None:
        return None
    return {"decode_tokens_per_s": range_dict(speed.decode_tokens_per_s),
            "decode_full_context_tokens_per_s": range_dict(speed.decode_full_context_tokens_per_s),
            "prompt_tokens_per_s": range_dict(speed.prompt_tokens_per_s),
            "limited_by": speed.limited_by, "assumptions": list(speed.assumptions), "notes": list(speed.notes)}


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2)
