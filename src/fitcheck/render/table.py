"""The human view: model facts, memory parts, each device against its capacity, verdict, command, notes."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..model import Exact, FlashAttn, GiB, MiB, OllamaSetup, Range, Report, Verdict

VERDICT_TEXT = {
    Verdict.GPU: ("fits on the GPU", "bold green"),
    Verdict.OFFLOAD: ("fits with partial offload", "bold yellow"),
    Verdict.CPU: ("runs on the CPU (RAM only)", "bold yellow"),
    Verdict.NONE: ("does not fit", "bold red"),
}


def size(n: int | None) -> str:
    """Binary units: GiB from 1 GiB up, MiB below."""
    if n is None:
        return "?"
    return f"{n / GiB:.2f} GiB" if abs(n) >= GiB else f"{n / MiB:.1f} MiB"


def text_console(out: io.StringIO, width: int, color: bool) -> Console:
    """A rich console writing into `out`: plain text when `color` is off (piped, NO_COLOR)."""
    return Console(file=out, width=width, force_terminal=color, no_color=not color,
                   color_system="standard" if color else None, highlight=False, soft_wrap=False)


def rate(r: Range | None) -> str:
    """Tokens per second as a range; whole numbers from 10 up."""
    if r is None:
        return "-"
    digits = 0 if r.low >= 10 else 1
    return f"{r.low:.{digits}f}–{r.high:.{digits}f}"


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GiB:.2f}"


def bar(used: int, capacity: int | None, width: int = 10) -> Text:
    """A usage bar with its percentage; green to 90%, yellow to 100%, red beyond."""
    if not capacity:
        return Text("no capacity" if capacity == 0 else "unknown", style="dim")
    ratio = used / capacity
    filled = min(width, round(ratio * width))
    style = "green" if ratio <= 0.9 else "yellow" if ratio <= 1 else "red"
    return Text("█" * filled + "░" * (width - filled), style=style) + Text(f" {ratio:4.0%}")


def _model_line(report: Report) -> Text:
    spec = report.spec
    params = spec.parameters
    scale = f"{params / 1e9:.1f}B" if params >= 1e9 else f"{params / 1e6:.0f}M"
    parts = [spec.architecture, spec.file_type or "?", f"{scale} params", f"{size(spec.file_size_bytes)} file",
             f"{spec.n_layer} layers", f"trained ctx {spec.n_ctx_train:,}"]
    if spec.n_expert:
        parts.append(f"{spec.n_expert_used}/{spec.n_expert} experts")
    if spec.sliding_window:
        parts.append(f"window {spec.sliding_window:,}")
    return Text(spec.name, style="bold") + Text("  " + " · ".join(parts))


def _settings_line(report: Report) -> Text:
    s, needs = report.settings, report.needs
    ctx = f"ctx {needs.ctx:,}" + ("" if s.ctx else " (default)")
    if needs.n_ctx != needs.ctx:
        ctx += f" → {needs.n_ctx:,} cells"
    items = [ctx, f"K {s.cache_type_k} / V {s.cache_type_v}",
             f"flash-attn {'on' if needs.flash_attn else 'off'}"
             + (" (auto)" if s.flash_attn is FlashAttn.AUTO else ""),
             f"batch {s.batch}/{s.ubatch}", f"parallel {s.parallel}" + (" unified" if s.kv_unified else ""),
             f"GPU reserve {size(s.gpu_reserve_bytes)}", f"margin {size(s.margin_bytes)}"]
    if s.swa_full:
        items.append("swa-full")
    build = "latest" if s.llama_cpp_build is None else f"b{s.llama_cpp_build}"
    if s.llama_cpp_build_source is not None:
        build += " (llama-server on PATH)"
    items.append(f"{s.consumer} {build}, {needs.output_rows} logits row{'s' if needs.output_rows != 1 else ''}")
    return Text("assumes  " + " · ".join(items), style="dim")


def _memory_table(report: Report) -> Table:
    needs = report.needs
    table = Table(title="Memory (whole model on one device)", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("part")
    table.add_column("size (GiB/MiB)", justify="right")
    table.add_column("share", justify="right")
    rows = [("weights", needs.weights_bytes), ("KV cache", needs.kv_cache_bytes),
            ("recurrent state", needs.recurrent_state_bytes), ("compute buffer", needs.compute_bytes),
            ("output buffer", needs.output_bytes), ("overhead (GPU reserve)", needs.overhead_bytes)]
    rows += [(f"{_EXTRA_LABEL.get(e.kind, e.kind)}", e.total_bytes) for e in report.settings.extras]
    grand = needs.total_bytes + sum(e.total_bytes for e in report.settings.extras)
    total = grand or 1
    for label, value in rows:
        if value or label in ("weights", "KV cache"):
            table.add_row(label, size(value), f"{value / total:.1%}")
    table.add_row(Text("total", style="bold"), Text(size(grand), style="bold"), "100%")
    return table


_EXTRA_LABEL = {"mmproj": "+ projector (--mmproj)", "draft": "+ draft model (-md)", "lora": "+ LoRA (--lora)"}


def _device_table(report: Report) -> Table:
    """One column per device, one row per part: many GPUs and RPC hosts stay readable."""
    table = Table(title="Placement (GiB, binary)", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("")
    devices = report.plan.devices
    for d in devices:
        table.add_column(d.name, justify="right", overflow="fold")
    rows = [("weights", lambda d: d.weights_bytes), ("KV cache", lambda d: d.kv_cache_bytes),
            ("compute", lambda d: d.compute_bytes), ("other", lambda d: d.other_bytes),
            ("extras", lambda d: d.extra_bytes), ("reserve", lambda d: d.overhead_bytes)]
    for label, part in rows:
        if label in ("weights", "KV cache") or any(part(d) for d in devices):
            table.add_row(label, *(gib(part(d)) for d in devices))
    table.add_row(Text("total", style="bold"), *(Text(gib(d.total_bytes), style="bold") for d in devices))
    table.add_row("capacity", *(gib(d.capacity_bytes) for d in devices))
    table.add_row("use", *(bar(d.total_bytes, d.capacity_bytes, width=6) for d in devices))
    return table


_EXACT_PARTS = (("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"),
                ("recurrent state", "recurrent_state_bytes"), ("compute buffer", "compute_bytes"),
                ("output buffer", "output_bytes"))


def _exact_table(report: Report, exact: Exact) -> Group:
    """fitcheck's estimate beside llama.cpp's own figures, part by part (difference = fitcheck − llama.cpp)."""
    table = Table(title="Estimate vs llama.cpp (--exact)", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("part", "fitcheck MiB", "llama.cpp MiB", "difference"):
        table.add_column(name, justify="left" if name == "part" else "right")
    needs = vars(report.needs)
    ours_total = theirs_total = 0
    for label, key in _EXACT_PARTS:
        ours, theirs = needs[key], exact.parts()[key]
        ours_total, theirs_total = ours_total + ours, theirs_total + theirs
        if ours or theirs or key in ("weights_bytes", "kv_cache_bytes"):
            table.add_row(label, f"{ours / MiB:,.2f}", f"{theirs / MiB:,.2f}",
                          _OTHER if key in exact.incomparable
                          else _difference(ours, theirs, exact.resolution_bytes.get(key, 0)))
    table.add_row(Text("total", style="bold"), f"{ours_total / MiB:,.2f}", f"{theirs_total / MiB:,.2f}",
                  _OTHER if exact.incomparable
                  else _difference(ours_total, theirs_total, sum(exact.resolution_bytes.values())))
    lines: list[Table | Text] = [table, Text(f"llama.cpp  {exact.engine}", style="dim")]
    devices = " · ".join(f"{d.name}: " + " + ".join(f"{label} {'?' if v is None else f'{v / MiB:,.0f}'}" for label, v in
                                                       (("model", d.weights_bytes), ("context", d.context_bytes),
                                                        ("compute", d.compute_bytes)))
                         for d in exact.devices)
    lines.append(Text(f"llama.cpp per device (MiB)  {devices}", style="dim"))
    lines.append(Text("llama.cpp ran with  " + " ".join(exact.args) + "  (fitcheck's settings and plan)", style="dim"))
    lines += [Text(f"  • {note}", style="dim") for note in exact.notes]
    return Group(*lines)


_OTHER = Text("other settings (note)", style="dim")


def _difference(ours: int, theirs: int, resolution: int) -> Text:
    diff = ours - theirs
    if abs(diff) <= resolution:
        return Text("=" if diff == 0 else "= (rounding)", style="green")
    pct = f" ({diff / theirs:+.1%})" if theirs else ""
    return Text(f"{diff / MiB:+,.2f}{pct}", style="yellow" if theirs and abs(diff / theirs) <= 0.05 else "red")


def _sweep_table(report: Report) -> Table:
    table = Table(title="Context sweep", box=box.SIMPLE_HEAVY, title_justify="left")
    for col in ("context", "KV cache", "total need", "verdict", "-ngl", "--n-cpu-moe", "tok/s at that context"):
        table.add_column(col, justify="right" if col != "verdict" else "left", no_wrap=True)
    for row in report.sweep:
        _, style = VERDICT_TEXT[row.verdict]
        table.add_row(f"{row.ctx:,}", size(row.kv_cache_bytes), size(row.total_bytes),
                      Text(str(row.verdict), style=style),
                      str(row.gpu_layers), str(row.n_cpu_moe) if row.n_cpu_moe else "", rate(row.decode_tokens_per_s))
    return table


def _verdict(report: Report) -> Group:
    plan, spec = report.plan, report.spec
    text, style = VERDICT_TEXT[plan.verdict]
    line = Text("verdict  ") + Text(text, style=style)
    if not report.known_architecture:
        line += Text(f"  (a guess: llama.cpp does not know '{spec.architecture}' and will not load it)",
                     style="bold red")
    if plan.verdict is Verdict.OFFLOAD:
        line += Text(f"  ({plan.gpu_layers} of {spec.n_layer + 1} layers on GPU"
                     + (f", experts of {plan.n_cpu_moe} blocks in RAM" if plan.n_cpu_moe else "") + ")")
    if plan.verdict is Verdict.NONE and plan.shortfall_bytes:
        line += Text(f"  ({size(plan.shortfall_bytes)} short)")
    lines = [line]
    limits = []
    seqs = 1 if report.settings.kv_unified else report.settings.parallel
    if plan.max_ctx:
        limit = f"max context with this verdict {plan.max_ctx:,}"
        if seqs > 1:
            limit += f" in all ({plan.max_ctx // seqs:,} per slot × {seqs})"
        if plan.max_ctx_capped:
            limit += " (the training context: the most fitcheck offers)"
        limits.append(limit)
    if plan.max_ctx_gpu and plan.max_ctx_gpu != plan.max_ctx:
        limits.append(f"all on GPU up to {plan.max_ctx_gpu:,}")
    if limits:
        lines.append(Text("context  " + " · ".join(limits)))
    speed = report.speed
    if speed is not None:
        parts = [f"generates {rate(speed.decode_tokens_per_s)} tok/s"]
        if speed.decode_full_context_tokens_per_s is not None:
            parts[0] += f" ({rate(speed.decode_full_context_tokens_per_s)} at {report.needs.ctx:,} tokens)"
        if speed.prompt_tokens_per_s is not None:
            parts.append(f"reads prompts at {rate(speed.prompt_tokens_per_s)} tok/s")
        parts.append(f"limited by {speed.limited_by}")
        lines.append(Text("speed    " + " · ".join(parts)))
    if plan.verdict is Verdict.NONE:
        lines.append(Text("run      nothing: it does not fit as asked", style="red"))
        lines += [Text("nearest  ") + Text(tip, style="green") for tip in plan.suggestions]
    else:
        lines.append(Text("run      ") + Text(plan.command, style="cyan"))
        if report.ollama is not None:  # an ollama: model: the same plan, told to Ollama
            lines += _ollama_lines(report.ollama)
        lines += [Text("tip      ") + Text(tip, style="green") for tip in plan.suggestions]
    return Group(*lines)


def _ollama_lines(setup: OllamaSetup) -> list[Text]:
    env = " ".join(f"{k}={v}" for k, v in setup.env)
    lines = [Text("ollama   ") + Text(f"{env} ollama serve" if env else "ollama serve", style="cyan")]
    params = " · ".join(f"PARAMETER {k} {v}" for k, v in setup.parameters)
    lines.append(Text("ollama   ") + Text(f"Modelfile: FROM {setup.model} · {params}", style="cyan"))
    return lines


def render_table(report: Report, width: int = 100, color: bool = True) -> str:
    out = io.StringIO()
    console = text_console(out, width, color)
    console.print(_model_line(report))
    console.print(_settings_line(report))
    if report.sweep:
        console.print(_sweep_table(report))
        console.print(Text(f"details below: ctx {report.needs.ctx:,}, the first context of the sweep", style="bold"))
    console.print(_memory_table(report))
    console.print(_device_table(report))
    if report.exact is not None:
        console.print(_exact_table(report, report.exact))
    for line in _verdict(report).renderables:
        # the command is never wrapped: a copied or grepped line must be the whole command
        console.print(line, soft_wrap=isinstance(line, Text) and line.plain.startswith(("run ", "ollama ")))
    if report.notes:
        console.print(Text("notes", style="bold"))
        for note in report.notes:
            console.print(Text(f"  • {note}"))
    return out.getvalue()
