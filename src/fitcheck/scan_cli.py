"""`fitcheck scan [FOLDER...]`: what can this machine run of the models already on it?

cli.run() dispatches here (and turns errors into one line and an exit code): 0 when at least one model runs
under --require, 1 when none does, 2 usage error, 3 input or runtime error.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .cli import EXIT_FITS, EXIT_NO_FIT, _progress, _terminal
from .model import FlashAttn, Require

EPILOG = """\b
Stores: Ollama ($OLLAMA_MODELS, ~/.ollama/models), LM Studio ($LMSTUDIO_MODELS, ~/.lmstudio/models,
~/.cache/lm-studio/models), the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub) and llama.cpp's cache
($LLAMA_CACHE, ~/.cache/llama.cpp); an absent store is skipped. Nothing in a store is written or moved.

\b
Examples:
  fitcheck scan                         every store on this machine, ctx 8192
  fitcheck scan ~/models -c 32k         the stores and a folder, at 32k
  fitcheck scan --no-stores ~/models    a folder only
"""

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command(epilog=EPILOG)
def scan(
    folders: Annotated[Optional[list[str]], typer.Argument(help="Folders to scan as well (recursively).",
                                                           show_default=False)] = None,
    no_stores: Annotated[bool, typer.Option("--no-stores", help="Only the folders given.")] = False,
    ctx: Annotated[Optional[str], typer.Option("--ctx", "-c", "--ctx-size",
                                               help="Context for every row (default 8192, or the training "
                                                    "context if smaller).")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-np", help="Parallel sequences (slots).")] = 1,
    cache_type_k: Annotated[str, typer.Option("--cache-type-k", "-ctk", help="K cache type.")] = "f16",
    cache_type_v: Annotated[str, typer.Option("--cache-type-v", "-ctv", help="V cache type.")] = "f16",
    flash_attn: Annotated[FlashAttn, typer.Option("--flash-attn", "-fa", help="Flash attention.")] = FlashAttn.AUTO,
    vram: Annotated[Optional[str], typer.Option(help="GPU memory instead of probing: 24G or 24G,12G.")] = None,
    ram: Annotated[Optional[str], typer.Option(help="Available RAM instead of probing, e.g. 64G.")] = None,
    gpu: Annotated[Optional[str], typer.Option("--gpu", help="What-if hardware from fitcheck's table.")] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu-only", help="Ignore GPUs; plan for RAM only.")] = False,
    ram_bandwidth: Annotated[Optional[float], typer.Option(
        "--ram-bandwidth", help="System RAM bandwidth in GB/s (default: measured once and cached).")] = None,
    reserve: Annotated[str, typer.Option(help="Per-GPU reserve (CUDA context, driver).")] = "512M",
    margin: Annotated[str, typer.Option(help="Headroom kept free on every device.")] = "512M",
    require: Annotated[Require, typer.Option(help="Exit 0 only when some model gets this verdict or better.")]
    = Require.ANY,
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON document instead.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1,
                                                help="Processes that read uncached headers (default: one per "
                                                     "CPU, up to 8, from 24 uncached files).")] = None,
) -> None:
    """Every GGUF already on this machine, one row each, best runnable choices first. Reads headers only."""
    from .model import Settings
    from .probe.overrides import HardwareOverrides
    from .scan import scan as run_scan
    from .units import parse_ctx, parse_memory, parse_memory_list

    settings = Settings(ctx=parse_ctx(ctx) if ctx else None, parallel=parallel, cache_type_k=cache_type_k.lower(),
                        cache_type_v=cache_type_v.lower(), flash_attn=flash_attn,
                        gpu_reserve_bytes=parse_memory(reserve), margin_bytes=parse_memory(margin), require=require)
    overrides = HardwareOverrides(vram=tuple(parse_memory_list(vram)) if vram else None,
                                  ram=parse_memory(ram) if ram else None, cpu_only=cpu_only, gpu=gpu,
                                  ram_bandwidth_gbps=ram_bandwidth)
    report = run_scan(folders or [], settings, overrides, stores=not no_stores, progress=_progress(), workers=jobs)
    if json_output:
        from .render.scan import render_scan_json

        sys.stdout.write(render_scan_json(report) + "\n")
    else:
        from .render.scan import render_scan_table

        sys.stdout.write(render_scan_table(report, *_terminal(120, 200)))
    sys.stdout.flush()
    runs = any(r.plan is not None and require.accepts(r.plan.verdict) and r.plan.known_architecture
               for r in report.rows)
    raise typer.Exit(EXIT_FITS if runs else EXIT_NO_FIT)
