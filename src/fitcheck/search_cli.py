"""`fitcheck search QUERY`: options to a SearchReport, the report to stdout (progress on stderr), the exit code.

Imported only when the first argument is `search` (cli.SUBCOMMANDS); cli.run() turns errors into one line and
their exit code. The machine and context options are the main command's, with the same spellings and parsing.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from .cli import EXIT_FITS, EXIT_NO_FIT, HARDWARE, OUTPUT, _options, _terminal, machine_overrides
from .model import FlashAttn, Require
from .search import DEFAULT_LIMIT, MAX_LIMIT, SORTS

SEARCH, CONTEXT = "Search", "Context & cache"

EPILOG = """\b
Examples:
  fitcheck search qwen2.5-7b                      the 10 most downloaded GGUF repos matching it, on this machine
  fitcheck search llama --sort likes -n 20 -c 32k
  fitcheck search gemma-3 --vram 12G --ram 32G    a what-if machine
  fitcheck search mistral --json                  one JSON object: repos[] with each repo's best quant

\b
Each repo is read as `fitcheck hf:org/repo` reads it (GGUF headers only) and shows its best quality quant that
fits. Exit codes: 0 some repo fits (under --require), 1 none does, 2 usage error, 3 the Hub search failed.
"""

class _Command(TyperCommand):
    """An unknown option is named whole (`-ngl`, not click's `-n` with the value 'gl')."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from .command_line import check_flags

        check_flags(list(args), _options(self))
        return super().parse_args(ctx, args)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command(cls=_Command, epilog=EPILOG)
def search(
    query: Annotated[str, typer.Argument(help="Words in the repo id, as the Hub's search box takes them.",
                                         show_default=False)],
    limit: Annotated[int, typer.Option("--limit", "-n", rich_help_panel=SEARCH,
                                       help=f"Repos to check (1 to {MAX_LIMIT}).")] = DEFAULT_LIMIT,
    sort: Annotated[str, typer.Option("--sort", rich_help_panel=SEARCH,
                                      help="The Hub's order: " + ", ".join(SORTS) + ".")] = "downloads",
    ctx: Annotated[Optional[str], typer.Option("--ctx", "-c", "--ctx-size", rich_help_panel=CONTEXT,
                                               help="Context in tokens: 8192, 32k; 0 = each model's training "
                                                    "context. Default: 8192 or the training context if "
                                                    "smaller.")] = None,
    batch: Annotated[int, typer.Option("--batch-size", "-b", rich_help_panel=CONTEXT)] = 2048,
    ubatch: Annotated[int, typer.Option("--ubatch-size", "-ub", rich_help_panel=CONTEXT)] = 512,
    parallel: Annotated[int, typer.Option("--parallel", "-np", rich_help_panel=CONTEXT)] = 1,
    kv_unified: Annotated[bool, typer.Option("--kv-unified", "-kvu", rich_help_panel=CONTEXT)] = False,
    cache_type_k: Annotated[str, typer.Option("--cache-type-k", "-ctk", rich_help_panel=CONTEXT)] = "f16",
    cache_type_v: Annotated[str, typer.Option("--cache-type-v", "-ctv", rich_help_panel=CONTEXT)] = "f16",
    flash_attn: Annotated[FlashAttn, typer.Option("--flash-attn", "-fa", rich_help_panel=CONTEXT)] = FlashAttn.AUTO,
    vram: Annotated[Optional[str], typer.Option(rich_help_panel=HARDWARE,
                                                help="GPU memory instead of probing: 24G or 24G,12G.")] = None,
    ram: Annotated[Optional[str], typer.Option(rich_help_panel=HARDWARE,
                                               help="Available RAM instead of probing, e.g. 64G.")] = None,
    gpu: Annotated[Optional[str], typer.Option("--gpu", rich_help_panel=HARDWARE,
                                               help="What-if hardware from fitcheck's table: 'RTX 3060 12GB'.")] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu-only", rich_help_panel=HARDWARE)] = False,
    unified: Annotated[bool, typer.Option("--unified", rich_help_panel=HARDWARE,
                                          help="A unified-memory machine (Apple Silicon) with --ram.")] = False,
    ram_bandwidth: Annotated[Optional[float], typer.Option("--ram-bandwidth", rich_help_panel=HARDWARE,
                                                           help="System RAM bandwidth, GB/s.")] = None,
    reserve: Annotated[str, typer.Option(rich_help_panel=HARDWARE, help="Per-GPU reserve.")] = "512M",
    margin: Annotated[str, typer.Option(rich_help_panel=HARDWARE, help="Headroom on every device.")] = "512M",
    require: Annotated[Require, typer.Option(rich_help_panel=OUTPUT,
                                             help="Exit 0 only if some repo reaches this verdict: gpu, "
                                                  "offload, any.")] = Require.ANY,
    json_output: Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT,
                                              help="Print the JSON document (schema v1) instead.")] = False,
) -> None:
    """Search the Hub for GGUF repos and show each one's best quant for this machine."""
    from .model import Settings
    from .search import fits
    from .search import search as run_search
    from .units import parse_ctx, parse_memory

    settings = Settings(ctx=parse_ctx(ctx) if ctx else None, batch=batch, ubatch=ubatch, parallel=parallel,
                        kv_unified=kv_unified, cache_type_k=cache_type_k.lower(), cache_type_v=cache_type_v.lower(),
                        flash_attn=flash_attn, gpu_reserve_bytes=parse_memory(reserve),
                        margin_bytes=parse_memory(margin), require=require)
    overrides = machine_overrides(vram, ram, cpu_only=cpu_only, unified=unified, gpu=gpu,
                                  ram_bandwidth=ram_bandwidth)
    report = run_search(query, settings, overrides, limit=limit, sort=sort.lower(), progress=_progress())
    if json_output:
        from .render.search import render_search_json

        sys.stdout.write(render_search_json(report) + "\n")
    else:
        from .render.search import render_search_table

        sys.stdout.write(render_search_table(report, *_terminal(120, 180)))
    sys.stdout.flush()
    raise typer.Exit(EXIT_FITS if fits(report) else EXIT_NO_FIT)


def _progress():
    """Repos done, live on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, repo: str) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r\033[Kchecking repos {done}/{total} {repo}{end}")
        sys.stderr.flush()

    return show
