"""The command line: options to values, values to a Report, a Report to stdout, errors to exit codes.

Exit codes: 0 fits under --require, 1 does not fit, 2 usage error, 3 input or runtime error.
A llama.cpp command pasted after `--` (`fitcheck -- llama-server -m model.gguf -c 32k`) is translated into
these options first (fitcheck.command_line), so it is evaluated exactly as given.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from .model import HardwareComparison, QuantReport, Report
    from .probe.overrides import HardwareOverrides

from ._version import __version__
from .errors import FitcheckError, UsageError
from .model import FlashAttn, Require

EXIT_FITS, EXIT_NO_FIT, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3
ALL_LAYERS = 10**6  # -ngl all / -cmoe: more than any model has; the planner clamps it
UNLIMITED_WIDTH = 10_000  # piped output is never wrapped

EPILOG = """\b
Examples:
  fitcheck model.gguf -c 32k                          this machine, 32k context
  fitcheck model.gguf --vram 8G --ram 64G -c 32k      a what-if machine (G = GiB)
  fitcheck hf:Qwen/Qwen2.5-7B-Instruct-GGUF           every quant of a Hub repo
  fitcheck model.gguf -c 8k,32k,128k                  a context sweep
  fitcheck --vram 24G -- llama-server -m model.gguf -c 32k --mmproj mmproj.gguf -md draft.gguf
                                                      exactly that llama-server command
  fitcheck model.gguf --command-only                  just the llama-server command

\b
Exit codes: 0 fits (under --require), 1 does not fit, 2 usage error, 3 input, network or runtime error.

\b
Environment: HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1 (answer from the cache), FITCHECK_CACHE_DIR,
FITCHECK_HTTP_TIMEOUT, FITCHECK_HTTP_RETRIES, NO_COLOR, FITCHECK_DEBUG=1 (tracebacks).
"""

MODEL, CONTEXT, PLACEMENT, HARDWARE, OUTPUT = "Model", "Context & cache", "Placement", "Hardware", "Output"


class _Command(TyperCommand):
    """Before the options are parsed: a pasted llama.cpp command becomes fitcheck's options, and an unknown
    option is named whole (`-nkvo`, not click's `-n`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from .command_line import check_flags, expand_pasted

        known = _options(self)
        args = expand_pasted(list(args), known)
        check_flags(args, known)
        return super().parse_args(ctx, args)


def _options(command: TyperCommand) -> dict[str, bool]:
    """Every option name of the command -> whether it takes a value."""
    out: dict[str, bool] = {}
    for p in command.params:
        takes_value = not getattr(p, "is_flag", False) and not getattr(p, "count", False)
        for name in (*p.opts, *getattr(p, "secondary_opts", ())):
            if name.startswith("-"):
                out[name] = takes_value
    out.update({"-h": False, "--help": False})
    return out


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})


def _gpu_layers(text: Optional[str], flag: str = "-ngl") -> Optional[int]:
    if text is None or text.lower() in ("auto", "-1"):
        return None
    if text.lower() == "all":
        return ALL_LAYERS
    if not text.isdigit():
        raise UsageError(f"bad {flag} value {text!r}", hint="a number of layers, 'all' or 'auto'")
    return int(text)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"fitcheck {__version__}\n")
        raise typer.Exit(EXIT_FITS)


@app.command(cls=_Command, epilog=EPILOG)
def main(
    invocation: typer.Context,
    ref: Annotated[Optional[str], typer.Argument(
        help="A .gguf file (any shard of a split model), hf:org/repo (every quant), hf:org/repo:Q4_K_M, "
             "hf:org/repo/file.gguf, hf:org/repo@rev, an https:// URL — or, after --, a whole llama-server / "
             "llama-cli command line.", show_default=False)] = None,
    pasted: Annotated[Optional[list[str]], typer.Argument(hidden=True)] = None,
    embeddings: Annotated[Optional[bool], typer.Option("--embedding/--no-embedding", rich_help_panel=MODEL,
                                                       help="Embeddings output (default: on for encoders).")] = None,
    mmproj: Annotated[Optional[str], typer.Option("--mmproj", rich_help_panel=MODEL,
                                                  help="A vision projector (mmproj-*.gguf): its weights and "
                                                       "compute buffer on the main GPU.")] = None,
    no_mmproj_offload: Annotated[bool, typer.Option("--no-mmproj-offload", rich_help_panel=MODEL,
                                                    help="Keep the projector in RAM.")] = False,
    model_draft: Annotated[Optional[str], typer.Option("--model-draft", "-md", rich_help_panel=MODEL,
                                                       help="A draft model for speculative decoding (a path or "
                                                            "hf: reference).")] = None,
    gpu_layers_draft: Annotated[Optional[str], typer.Option(
        "--gpu-layers-draft", "-ngld", "--n-gpu-layers-draft", rich_help_panel=MODEL,
        help="Draft layers on the GPU: N, all or auto (default: all).")] = None,
    ctx_draft: Annotated[Optional[str], typer.Option("--ctx-size-draft", "-cd", rich_help_panel=MODEL,
                                                     help="Draft context (default 0: the context per slot).")] = None,
    cache_type_k_draft: Annotated[str, typer.Option("--cache-type-k-draft", "-ctkd", rich_help_panel=MODEL,
                                                    help="Draft K cache type.")] = "f16",
    cache_type_v_draft: Annotated[str, typer.Option("--cache-type-v-draft", "-ctvd", rich_help_panel=MODEL,
                                                    help="Draft V cache type.")] = "f16",
    lora: Annotated[Optional[list[str]], typer.Option("--lora", rich_help_panel=MODEL,
                                                      help="A LoRA adapter GGUF (repeatable).")] = None,
    ctx: Annotated[Optional[str], typer.Option("--ctx", "-c", "--ctx-size", rich_help_panel=CONTEXT,
                                               help="Context in tokens: 8192, 32k, 1M; 0 = the training context; "
                                                    "a list (4k,8k,32k) sweeps. Default: 8192 or the training "
                                                    "context if smaller.")] = None,
    batch: Annotated[int, typer.Option("--batch-size", "-b", rich_help_panel=CONTEXT,
                                       help="Logical batch (llama.cpp -b).")] = 2048,
    ubatch: Annotated[int, typer.Option("--ubatch-size", "-ub", rich_help_panel=CONTEXT,
                                        help="Micro-batch (llama.cpp -ub; at most -b).")] = 512,
    parallel: Annotated[int, typer.Option("--parallel", "-np", rich_help_panel=CONTEXT,
                                          help="Parallel sequences (slots).")] = 1,
    kv_unified: Annotated[bool, typer.Option("--kv-unified", "-kvu", rich_help_panel=CONTEXT,
                                             help="One KV buffer shared by all sequences.")] = False,
    cache_type_k: Annotated[str, typer.Option("--cache-type-k", "-ctk", rich_help_panel=CONTEXT,
                                              help="K cache type: f16, q8_0, q4_0, ...")] = "f16",
    cache_type_v: Annotated[str, typer.Option("--cache-type-v", "-ctv", rich_help_panel=CONTEXT,
                                              help="V cache type (quantized needs -fa).")] = "f16",
    flash_attn: Annotated[FlashAttn, typer.Option("--flash-attn", "-fa", rich_help_panel=CONTEXT,
                                                  help="Flash attention.")] = FlashAttn.AUTO,
    swa_full: Annotated[bool, typer.Option("--swa-full", rich_help_panel=CONTEXT,
                                           help="Full-size cache for sliding-window layers.")] = False,
    no_kv_offload: Annotated[bool, typer.Option("--no-kv-offload", "-nkvo", rich_help_panel=CONTEXT,
                                                help="Keep the KV cache in RAM (llama.cpp -nkvo).")] = False,
    gpu_layers: Annotated[Optional[str], typer.Option("--gpu-layers", "-ngl", "--n-gpu-layers",
                                                      rich_help_panel=PLACEMENT,
                                                      help="Layers on the GPU: N, all, or auto (plan it).")] = None,
    n_cpu_moe: Annotated[Optional[int], typer.Option("--n-cpu-moe", "-ncmoe", rich_help_panel=PLACEMENT,
                                                     help="Keep the experts of the first N blocks in RAM.")] = None,
    cpu_moe: Annotated[bool, typer.Option("--cpu-moe", "-cmoe", rich_help_panel=PLACEMENT,
                                          help="Keep all experts in RAM.")] = False,
    override_tensor: Annotated[Optional[list[str]], typer.Option(
        "--override-tensor", "-ot", rich_help_panel=PLACEMENT,
        help="REGEX=DEVICE (CPU, CUDA0, RPC[host:port]); first match wins.")] = None,
    tensor_split: Annotated[Optional[str], typer.Option("--tensor-split", "-ts", rich_help_panel=PLACEMENT,
                                                        help="Layer shares per GPU, e.g. 3,1.")] = None,
    split_mode: Annotated[str, typer.Option("--split-mode", "-sm", rich_help_panel=PLACEMENT,
                                            help="layer, row or none (the main GPU alone).")] = "layer",
    main_gpu: Annotated[int, typer.Option("--main-gpu", "-mg", rich_help_panel=PLACEMENT,
                                          help="The GPU for -sm none and for --mmproj/-md.")] = 0,
    device: Annotated[Optional[str], typer.Option("--device", "-dev", rich_help_panel=PLACEMENT,
                                                  help="Accelerators to use: CUDA0,CUDA1 or none.")] = None,
    no_mmap: Annotated[bool, typer.Option("--no-mmap", rich_help_panel=PLACEMENT,
                                          help="Read the weights into memory instead of mapping the file.")] = False,
    mlock: Annotated[bool, typer.Option("--mlock", rich_help_panel=PLACEMENT,
                                        help="Lock the weights in RAM.")] = False,
    llama_cpp: Annotated[Optional[str], typer.Option(
        "--llama-cpp", rich_help_panel=PLACEMENT, metavar="BUILD",
        help="llama.cpp build the figures are for: b6000, 6000 or latest (default: the llama-server on PATH, "
             "else latest).")] = None,
    rpc: Annotated[Optional[list[str]], typer.Option(
        rich_help_panel=HARDWARE, help="A llama.cpp RPC server and its free memory: HOST:PORT=24G (repeatable).")] = None,
    unified: Annotated[bool, typer.Option("--unified", rich_help_panel=HARDWARE,
                                          help="Plan for a unified-memory machine (Apple Silicon) with --ram.")] = False,
    gpu_share: Annotated[Optional[float], typer.Option(rich_help_panel=HARDWARE,
                                                       help="Unified memory: share of RAM the GPU may use "
                                                            "(default 2/3 up to 36 GiB, 3/4 above).")] = None,
    vram: Annotated[Optional[str], typer.Option(rich_help_panel=HARDWARE,
                                                help="GPU memory instead of probing, one per GPU: 24G or 24G,12G. "
                                                     "G/GiB/M = binary, GB/MB = decimal; a unit is required.")] = None,
    ram: Annotated[Optional[str], typer.Option(rich_help_panel=HARDWARE,
                                               help="Available RAM instead of probing, e.g. 64G.")] = None,
    gpu: Annotated[Optional[list[str]], typer.Option(
        "--gpu", rich_help_panel=HARDWARE,
        help="What-if hardware from fitcheck's table: 'RTX 3060 12GB', '2x RTX 3090', 'M2 Max 64GB'. "
             "Repeat to compare machines side by side.")] = None,
    ram_bandwidth: Annotated[Optional[float], typer.Option(
        "--ram-bandwidth", rich_help_panel=HARDWARE,
        help="System RAM bandwidth in GB/s for the speed estimate (default: measured once and cached).")] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu-only", rich_help_panel=HARDWARE,
                                           help="Ignore GPUs; plan for RAM only (-ngl 0).")] = False,
    reserve: Annotated[str, typer.Option(rich_help_panel=HARDWARE,
                                         help="Per-GPU reserve for the CUDA context, cuBLAS and driver.")] = "512M",
    margin: Annotated[str, typer.Option(rich_help_panel=HARDWARE,
                                        help="Headroom kept free on every device (GPU and RAM).")] = "512M",
    require: Annotated[Require, typer.Option(rich_help_panel=OUTPUT,
                                             help="Exit 0 only for this verdict or better: gpu, offload, any "
                                                  "(with a sweep: at every context).")] = Require.ANY,
    json_output: Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT,
                                              help="Print the JSON document (schema v1) instead.")] = False,
    command_only: Annotated[bool, typer.Option("--command-only", rich_help_panel=OUTPUT,
                                               help="Print only the llama-server command (nothing when it does "
                                                    "not fit); the exit code as usual.")] = False,
    exact: Annotated[bool, typer.Option("--exact", rich_help_panel=OUTPUT,
                                        help="Also ask llama.cpp itself (the llama_cpp module or llama-fit-params "
                                             "on PATH / in $FITCHECK_LLAMA_CPP) on a header-only sparse copy, and "
                                             "show its figures beside fitcheck's.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    rich_help_panel=OUTPUT, help="Print the version.")] = None,
) -> None:
    """Will this model fit, and how should llama.cpp run it? Reads only the GGUF header."""
    from dataclasses import replace

    from .check import check, compare_hardware, fits
    from .extras import Attachments, DraftRequest, check_cache_type
    from .llama_build import parse_build
    from .model import Settings
    from .units import parse_ctx, parse_ctx_list, parse_memory, parse_overrides, parse_split

    if ref is None:
        raise UsageError("no model given", hint="fitcheck MODEL.gguf, hf:org/repo, or -- llama-server -m MODEL ...")
    if pasted:
        raise UsageError(f"unexpected argument {pasted[0]!r}", hint="one model; a llama.cpp command goes after --")
    contexts = parse_ctx_list(ctx) if ctx else [None]
    if json_output and command_only:
        raise UsageError("--json and --command-only both choose the output: pick one")
    if exact and gpu and len(gpu) > 1:
        raise UsageError("--exact asks this machine's llama.cpp about one plan", hint="keep one --gpu option")
    draft = None
    if model_draft is not None:
        draft = DraftRequest(model_draft, _gpu_layers(gpu_layers_draft, "-ngld"),
                             parse_ctx(ctx_draft) if ctx_draft else 0,
                             check_cache_type("-ctkd", cache_type_k_draft), check_cache_type("-ctvd", cache_type_v_draft))
    elif gpu_layers_draft is not None or ctx_draft is not None:
        raise UsageError("-ngld and -cd size a draft model", hint="add -md DRAFT.gguf")
    attachments = Attachments(mmproj, not no_mmproj_offload, draft, tuple(lora or ()))
    devices = None
    if device is not None:
        devices = () if device.lower() == "none" else tuple(d.strip() for d in device.split(",") if d.strip())
    settings = Settings(
        ctx=contexts[0], batch=batch, ubatch=ubatch, parallel=parallel, kv_unified=kv_unified,
        cache_type_k=cache_type_k.lower(), cache_type_v=cache_type_v.lower(), flash_attn=flash_attn,
        swa_full=swa_full, embeddings=embeddings, gpu_layers=_gpu_layers(gpu_layers),
        n_cpu_moe=ALL_LAYERS if cpu_moe else n_cpu_moe,
        tensor_split=parse_split(tensor_split) if tensor_split else None,
        tensor_overrides=parse_overrides(override_tensor or []),
        gpu_reserve_bytes=parse_memory(reserve), margin_bytes=parse_memory(margin), require=require,
        no_kv_offload=no_kv_offload, main_gpu=main_gpu, split_mode=split_mode.lower(), devices=devices,
        mmap=not no_mmap, mlock=mlock, llama_cpp_build=parse_build(llama_cpp) if llama_cpp else None)
    overrides = machine_overrides(vram, ram, cpu_only=cpu_only, rpc=rpc, unified=unified, gpu_share=gpu_share,
                                  gpu=gpu[0] if gpu else None, ram_bandwidth=ram_bandwidth)
    sweep = [c for c in contexts[1:] if c is not None]
    result: Report | QuantReport | HardwareComparison
    if gpu and len(gpu) > 1:
        if sweep:
            raise UsageError("compare machines at one context, or sweep contexts on one machine",
                             hint="drop the --ctx list or all --gpu options but one")
        options = [(name, replace(overrides, gpu=name)) for name in dict.fromkeys(gpu)]
        result = compare_hardware(ref, settings, options, progress=_progress(), attachments=attachments)
    else:
        _load_output_early(ref, json_output or command_only)
        result = check(ref, settings, overrides, sweep=sweep, progress=_progress(), attachments=attachments,
                       detect_llama_build=llama_cpp is None, exact=exact, given=_given(invocation))
    ok = fits(result)
    sys.stdout.write(_commands(result) if command_only else _render(result, json_output))
    sys.stdout.flush()
    raise typer.Exit(EXIT_FITS if ok else EXIT_NO_FIT)


def _load_output_early(ref: str, plain: bool) -> None:
    """A model still arriving from the network (sources/prefetch.py) leaves this process idle: the table's
    modules (rich, ~25 ms) load now rather than after its last byte."""
    from .sources import prefetch

    if not plain and prefetch.in_flight(ref):
        from .render import quants, table  # noqa: F401


GIVEN_OPTIONS = ("parallel", "batch", "ubatch", "cache_type_k", "cache_type_v", "flash_attn")  # Settings names


def _given(invocation: typer.Context | None) -> frozenset[str] | None:
    """The options of GIVEN_OPTIONS the user gave (an `-np 1` equal to the default is given all the same)."""
    if invocation is None:
        return None
    return frozenset(name for name in GIVEN_OPTIONS
                     if getattr(invocation.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT")


def machine_overrides(vram: Optional[str], ram: Optional[str], *, cpu_only: bool = False,
                      rpc: Optional[list[str]] = None, unified: bool = False, gpu_share: Optional[float] = None,
                      gpu: Optional[str] = None, ram_bandwidth: Optional[float] = None) -> HardwareOverrides:
    """The machine options (--vram, --ram, --cpu-only, --rpc, --unified, --gpu-share, --gpu, --ram-bandwidth) as
    HardwareOverrides; shared with the subcommands (fitcheck search)."""
    from .probe.overrides import HardwareOverrides
    from .units import parse_memory, parse_memory_list, parse_rpc

    if gpu_share is not None and not 0 < gpu_share <= 1:
        raise UsageError("--gpu-share must be a fraction in (0, 1]")
    return HardwareOverrides(
        vram=tuple(parse_memory_list(vram)) if vram else None, ram=parse_memory(ram) if ram else None,
        cpu_only=cpu_only, rpc=tuple(parse_rpc(r) for r in rpc or []), unified=unified, gpu_share=gpu_share,
        gpu=gpu, ram_bandwidth_gbps=ram_bandwidth)


def _commands(result: Report | QuantReport | HardwareComparison) -> str:
    """--command-only: the command of each plan that runs (one line each), nothing for one that does not."""
    from .model import HardwareComparison, QuantReport, Verdict

    if isinstance(result, QuantReport):
        pick = result.best if result.best is not None else result.fallback
        reports = [result.rows[pick].report] if pick is not None else []
    elif isinstance(result, HardwareComparison):
        reports = [o.report for o in result.options]
    else:
        reports = [result]
    lines = [r.plan.command for r in reports if r.plan.verdict is not Verdict.NONE]
    if not lines:
        sys.stderr.write("fitcheck: does not fit, no command (run without --command-only for the details)\n")
    return "".join(line + "\n" for line in lines)


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
    """(width, color) for tables on stdout: the terminal's width (or $COLUMNS); piped output is not wrapped at
    all, so `| grep '^run'` gets the whole command; no color when piped or NO_COLOR is set."""
    tty = sys.stdout.isatty()
    if not tty and not os.environ.get("COLUMNS"):
        return UNLIMITED_WIDTH, False
    width = min(shutil.get_terminal_size((fallback_width, 24)).columns, max_width)
    return width, tty and "NO_COLOR" not in os.environ


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
    """Console entry point: one line on stderr and a distinct exit code for every failure.

    Messages are made safe for the terminal here, whatever raised them: one line, control characters and
    escape sequences written as escapes, a bounded length (fitcheck.text). FITCHECK_DEBUG=1 adds the traceback
    (tokens redacted) but keeps the exit code."""
    from .text import one_line

    debug = bool(os.environ.get("FITCHECK_DEBUG"))
    try:
        code = _app_for(sys.argv[1:2])(args=sys.argv[2:] if _subcommand(sys.argv[1:2]) else sys.argv[1:],
                                      prog_name=_prog_name(sys.argv[1:2]), standalone_mode=False)
    except FitcheckError as exc:
        if debug:
            _print_traceback()
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        print(one_line(f"error: {exc}{hint}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Typer's usage errors (bad option, bad choice) carry format_message(); its Abort is Ctrl-C.
        if hasattr(exc, "format_message"):
            message = " ".join(exc.format_message().split())
            print(one_line(f"error: {message} (hint: fitcheck --help)"), file=sys.stderr)
            sys.exit(EXIT_USAGE)
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        if debug:
            _print_traceback()
        print(one_line(f"error: internal error: {type(exc).__name__}: {exc} "
                       "(hint: rerun with FITCHECK_DEBUG=1 and report it)"), file=sys.stderr)
        sys.exit(EXIT_INPUT)
    sys.exit(code if isinstance(code, int) else 0)


# `fitcheck scan` and `fitcheck search QUERY` are their own typer apps, imported only when named, so a plain
# `fitcheck MODEL` pays nothing for them. A model file literally named `scan` is reached as `./scan`.
SUBCOMMANDS = {"scan": "fitcheck.scan_cli", "search": "fitcheck.search_cli"}


def _subcommand(first: list[str]) -> str | None:
    return first[0] if first and first[0] in SUBCOMMANDS else None


def _app_for(first: list[str]) -> typer.Typer:
    name = _subcommand(first)
    if name is None:
        return app
    import importlib

    return importlib.import_module(SUBCOMMANDS[name]).app


def _prog_name(first: list[str]) -> str:
    name = _subcommand(first)
    return f"fitcheck {name}" if name else "fitcheck"


def _print_traceback() -> None:
    """The current exception's traceback on stderr, with anything that looks like a credential redacted."""
    import traceback

    from .text import escape, redact

    sys.stderr.write("".join(escape(line) + "\n" for line in redact(traceback.format_exc()).splitlines()))
