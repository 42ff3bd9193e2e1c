"""The command line: options to values, values to a Report, a Report to stdout, errors to exit codes.

Exit codes: 0 fits under --require, 1 does not fit, 2 usage error, 3 input or runtime error.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from .model import HardwareComparison, QuantReport, Report

from .errors import FitcheckError, UsageError
from .model import FlashAttn, Require

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})

EXIT_FITS, EXIT_NO_FIT, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3
ALL_LAYERS = 10**6  # -ngl all / -cmoe: more than any model has; the planner clamps it


def _gpu_layers(text: Optional[str]) -> Optional[int]:
    if text is None or text.lower() in ("auto", "-1"):
        return None
    if text.lower() == "all":
        return ALL_LAYERS
    if not text.isdigit():
        raise UsageError(f"bad -ngl value {text!r}", hint="a number of layers, 'all' or 'auto'")
    return int(text)


@app.command()
def main(
    ref: Annotated[str, typer.Argument(help="A .gguf file (the first shard of a split model works too), hf:org/repo (every quant), hf:org/repo:Q4_K_M, hf:org/repo/file.gguf, hf:org/repo@rev, or an https:// URL.")],
    ctx: Annotated[Optional[str], typer.Option("--ctx", "-c", "--ctx-size",
                                               help="Context in tokens: 8192, 32k, 1M; a list (4k,8k,32k) sweeps. "
                                                    "Default: 8192 or the training context if smaller.")] = None,
    batch: Annotated[int, typer.Option("--batch-size", "-b", help="Logical batch (llama.cpp -b).")] = 2048,
    ubatch: Annotated[int, typer.Option("--ubatch-size", "-ub", help="Micro-batch (llama.cpp -ub).")] = 512,
    parallel: Annotated[int, typer.Option("--parallel", "-np", help="Parallel sequences (slots).")] = 1,
    kv_unified: Annotated[bool, typer.Option("--kv-unified", "-kvu",
                                             help="One KV buffer shared by all sequences.")] = False,
    cache_type_k: Annotated[str, typer.Option("--cache-type-k", "-ctk", help="K cache type: f16, q8_0, q4_0, ...")] = "f16",
    cache_type_v: Annotated[str, typer.Option("--cache-type-v", "-ctv", help="V cache type (quantized needs -fa).")] = "f16",
    flash_attn: Annotated[FlashAttn, typer.Option("--flash-attn", "-fa", help="Flash attention.")] = FlashAttn.AUTO,
    swa_full: Annotated[bool, typer.Option("--swa-full", help="Full-size cache for sliding-window layers.")] = False,
    embeddings: Annotated[Optional[bool], typer.Option("--embedding/--no-embedding",
                                                       help="Embeddings output (default: on for encoders).")] = None,
    gpu_layers: Annotated[Optional[str], typer.Option("--gpu-layers", "-ngl", "--n-gpu-layers",
                                                      help="Layers on the GPU: N, all, or auto (plan it).")] = None,
    n_cpu_moe: Annotated[Optional[int], typer.Option("--n-cpu-moe", "-ncmoe",
                                                     help="Keep the experts of the first N blocks in RAM.")] = None,
    cpu_moe: Annotated[bool, typer.Option("--cpu-moe", "-cmoe", help="Keep all experts in RAM.")] = False,
    override_tensor: Annotated[Optional[list[str]], typer.Option(
        "--override-tensor", "-ot", help="REGEX=DEVICE (CPU, CUDA0, RPC[host:port]); first match wins.")] = None,
    tensor_split: Annotated[Optional[str], typer.Option("--tensor-split", "-ts",
                                                        help="Layer shares per GPU, e.g. 3,1.")] = None,
    rpc: Annotated[Optional[list[str]], typer.Option(
        help="A llama.cpp RPC server and its free memory: HOST:PORT=24G (repeatable).")] = None,
    unified: Annotated[bool, typer.Option("--unified", help="Plan for a unified-memory machine (Apple Silicon) "
                                                            "with --ram.")] = False,
    gpu_share: Annotated[Optional[float], typer.Option(help="Unified memory: share of RAM the GPU may use "
                                                            "(default 2/3 up to 36 GiB, 3/4 above).")] = None,
    vram: Annotated[Optional[str], typer.Option(help="GPU memory instead of probing, one per GPU: 24G or 24G,12G. "
                                                     "G/GiB/M = binary, GB/MB = decimal.")] = None,
    ram: Annotated[Optional[str], typer.Option(help="Available RAM instead of probing, e.g. 64G.")] = None,
    gpu: Annotated[Optional[list[str]], typer.Option(
        "--gpu", help="What-if hardware from fitcheck's table: 'RTX 3060 12GB', '2x RTX 3090', 'M2 Max 64GB'. "
                      "Repeat to compare machines side by side.")] = None,
    ram_bandwidth: Annotated[Optional[float], typer.Option(
        "--ram-bandwidth", help="System RAM bandwidth in GB/s for the speed estimate (default: measured once "
                                "and cached).")] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu-only", help="Ignore GPUs; plan for RAM only.")] = False,
    reserve: Annotated[str, typer.Option(help="Per-GPU reserve for the CUDA context, cuBLAS and driver.")] = "512M",
    margin: Annotated[str, typer.Option(help="Headroom kept free on every device (GPU and RAM).")] = "512M",
    require: Annotated[Require, typer.Option(help="Exit 0 only for this verdict or better: gpu, offload, any.")] = Require.ANY,
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON document (schema v1) instead.")] = False,
) -> None:
    """Will this model fit, and how should llama.cpp run it? Reads only the GGUF header."""
    from dataclasses import replace

    from .check import check, compare_hardware, fits
    from .model import Settings
    from .probe.overrides import HardwareOverrides
    from .units import parse_ctx_list, parse_memory, parse_memory_list, parse_overrides, parse_rpc, parse_split

    contexts = parse_ctx_list(ctx) if ctx else [None]
    if gpu_share is not None and not 0 < gpu_share <= 1:
        raise UsageError("--gpu-share must be a fraction in (0, 1]")
    settings = Settings(
        ctx=contexts[0], batch=batch, ubatch=ubatch, parallel=parallel, kv_unified=kv_unified,
        cache_type_k=cache_type_k.lower(), cache_type_v=cache_type_v.lower(), flash_attn=flash_attn,
        swa_full=swa_full, embeddings=embeddings, gpu_layers=_gpu_layers(gpu_layers),
        n_cpu_moe=ALL_LAYERS if cpu_moe else n_cpu_moe,
        tensor_split=parse_split(tensor_split) if tensor_split else None,
        tensor_overrides=parse_overrides(override_tensor or []),
        gpu_reserve_bytes=parse_memory(reserve), margin_bytes=parse_memory(margin), require=require)
    overrides = HardwareOverrides(
        vram=tuple(parse_memory_list(vram)) if vram else None, ram=parse_memory(ram) if ram else None,
        cpu_only=cpu_only, rpc=tuple(parse_rpc(r) for r in rpc or []), unified=unified, gpu_share=gpu_share,
        gpu=gpu[0] if gpu else None, ram_bandwidth_gbps=ram_bandwidth)
    sweep = [c for c in contexts[1:] if c is not None]
    result: Report | QuantReport | HardwareComparison
    if gpu and len(gpu) > 1:
        if sweep:
            raise UsageError("compare machines at one context, or sweep contexts on one machine",
                             hint="drop the --ctx list or all --gpu options but one")
        options = [(name, replace(overrides, gpu=name)) for name in dict.fromkeys(gpu)]
        result = compare_hardware(ref, settings, options, progress=_progress())
    else:
        result = check(ref, settings, overrides, sweep=sweep, progress=_progress())
    sys.stdout.write(_render(result, json_output))
    sys.stdout.flush()
    raise typer.Exit(EXIT_FITS if fits(result) else EXIT_NO_FIT)


def _render(result: Report | QuantReport | HardwareComparison, json_output: bool) -> str:
    from .model import HardwareComparison, QuantReport

    if isinstance(result, HardwareComparison):
        from .render.compare import render_compare_json, render_compare_table

        return render_compare_json(result) + "\n" if json_output else render_compare_table(result, *_terminal(120, 160))
    if isinstance(result, QuantReport):
        from .render.quants import render_quants_json, render_quants_table

        return render_quants_json(result) + "\n" if json_output else render_quants_table(result, *_terminal(120, 160))
    if json_output:
        from .render.json import render_json

        return render_json(result) + "\n"
    from .render.table import render_table

    return render_table(result, *_terminal(100, 140))


def _terminal(fallback_width: int, max_width: int) -> tuple[int, bool]:
    """(width, color) for tables on stdout: the terminal's width, no color when piped or NO_COLOR is set."""
    width = min(shutil.get_terminal_size((fallback_width, 24)).columns, max_width)
    return width, sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _progress():
    """Header fetches of a quant table, live on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, what: str) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r\033[Kreading GGUF headers {done}/{total} {what}{end}")
        sys.stderr.flush()

    return show


def run() -> None:
    """Console entry point: one line on stderr and a distinct exit code for every failure."""
    try:
        code = app(standalone_mode=False)
    except FitcheckError as exc:
        if os.environ.get("FITCHECK_DEBUG"):
            raise
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Typer's usage errors (bad option, bad choice) carry format_message(); its Abort is Ctrl-C.
        if hasattr(exc, "format_message"):
            message = " ".join(exc.format_message().split())
            print(f"error: {message} (hint: fitcheck --help)", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        if os.environ.get("FITCHECK_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} (hint: rerun with FITCHECK_DEBUG=1 and report it)",
              file=sys.stderr)
        sys.exit(EXIT_INPUT)
    sys.exit(code if isinstance(code, int) else 0)
