"""The quant table: one row per quant of a repo (or per what-if quant of a safetensors repo), as text or JSON.

Formats a QuantReport (built by fitcheck.check.compare_quants); the recommendation is worded here from the
report's `best` / `fallback` rows.
"""

from __future__ import annotations

import io
import json
from typing import Any

from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .._version import __version__
from ..model import Hardware, QuantReport, QuantRow, Verdict
from .json import SCHEMA_VERSION, range_dict, report_dict, sweep_list
from .table import VERDICT_TEXT, gib, rate, text_console

UNBOUNDED = 10_000  # measure a table's natural width, not the width it would be squeezed into
VERDICT_STYLE = {Verdict.GPU: "green", Verdict.OFFLOAD: "yellow", Verdict.CPU: "yellow", Verdict.NONE: "red"}


def recommendation(table: QuantReport) -> str:
    rows = table.rows
    if not rows:
        return "no model files to compare"
    ctx = rows[0].report.needs.ctx
    if table.best is not None:
        r = rows[table.best]
        plan = r.report.plan
        extra = f" (up to {plan.max_ctx:,} tokens)" if plan.max_ctx else ""
        what = (f"{r.quant} (estimate)" if r.estimate else r.quant) + _quality_words(r)
        return f"{what} is the best quality that fits fully on the GPU at ctx {ctx:,}{extra}: {plan.command}"
    if table.fallback is not None:
        r = rows[table.fallback]
        plan = r.report.plan
        place = (f"with {plan.gpu_layers} of {r.report.spec.n_layer + 1} layers on the GPU"
                 if plan.verdict is Verdict.OFFLOAD else "on the CPU only")
        smallest = next(q.quant for q in rows if q.report.plan.verdict in (Verdict.OFFLOAD, Verdict.CPU))
        return (f"nothing fits fully on the GPU at ctx {ctx:,}; {r.quant}{_quality_words(r)} is the best quality "
                f"that runs, {place} (smaller quants such as {smallest} run faster): {plan.command}")
    return f"no quant fits on this machine at ctx {ctx:,}: try a shorter context (-c) or a quantized KV cache"


def _quality_words(r: QuantRow) -> str:
    return f" ({r.quality.tier} quality)" if r.quality is not None and r.quality.tier else ""


def quality_cell(r: QuantRow) -> Text:
    """The tier of a row's file type, dimmed when unmeasured, yellow for the tiers worth avoiding."""
    q = r.quality
    if q is None or q.tier is None:
        return Text("not measured", style="dim")
    return Text(q.tier, style="yellow" if q.low else "")


def bpw_cell(r: QuantRow) -> str:
    return f"{r.bits_per_weight:.2f}" if r.bits_per_weight is not None else "-"


def quality_legend() -> str:
    """How the tiers are defined (mean KLD bounds) and where the figures come from."""
    from ..quality import tier_bounds

    bounds = " · ".join(f"{name} <{below:g}" if below is not None else name for name, below in tier_bounds())
    return ("quality: the file type's mean KL-divergence vs f16 as llama.cpp measured it on LLaMA-3-8B "
            f"(tools/perplexity/README.md): {bounds}; bpw: this file's own bits per weight")


def render_quants_table(table: QuantReport, width: int = 120, color: bool = True) -> str:
    out = io.StringIO()
    console = text_console(out, width, color)
    first = table.rows[0].report if table.rows else None
    if first is not None:
        spec = first.spec
        kind = "quants" if table.kind == "gguf" else "rows (estimates but native)"
        console.print(Text(table.ref, style="bold") + Text(
            f"  {spec.architecture} · {spec.n_layer} layers · trained ctx {spec.n_ctx_train:,} · "
            f"{len(table.rows)} {kind}"))
        console.print(Text(f"assumes  ctx {first.needs.ctx:,} · K {table.settings.cache_type_k} / V "
                           f"{table.settings.cache_type_v} · flash-attn {'on' if first.needs.flash_attn else 'off'}"
                           f" · parallel {table.settings.parallel} · " + _hw_line(table.hardware), style="dim"))
    sweep_ctx = [row.ctx for row in first.sweep[1:]] if first is not None else []
    if sweep_ctx and first is not None:
        console.print(Text(f"columns at ctx {first.needs.ctx:,} (the first of the sweep); verdicts at the others "
                           "in the 'at' columns", style="dim"))
    columns = ["quant", "file type", "bpw", "quality", "size", "weights", "KV", "total", "verdict", "GPU layers",
               "max ctx", "tok/s"]
    columns += [f"at {ctx:,}" for ctx in sweep_ctx]
    cells = [_cells(table, i, r) for i, r in enumerate(table.rows)]
    # a narrow terminal loses the least needed columns whole, never the figures inside the others
    keep = list(columns)
    for drop in _DROP_ORDER:
        grid = _grid(table, keep, columns, cells, color)
        if Measurement.get(console, console.options.update_width(UNBOUNDED), grid).maximum <= width:
            break
        keep.remove(drop)
    else:
        grid = _grid(table, keep, columns, cells, color)
    console.print(grid)
    console.print(Text("recommend  ", style="bold") + Text(recommendation(table)))
    if any(r.estimate for r in table.rows):
        console.print(Text("~ = estimate from the parameter count, not a file in the repo", style="dim"))
    if table.rows:
        console.print(Text(quality_legend(), style="dim"))
    if table.notes:
        console.print(Text("notes", style="bold"))
        for note in table.notes:
            console.print(Text(f"  • {note}"))
    return out.getvalue()


_DROP_ORDER = ("file type", "weights", "KV", "bpw", "tok/s", "size", "GPU layers")


def _grid(table: QuantReport, keep: list[str], columns: list[str], cells: list[list[Any]], color: bool) -> Table:
    grid = Table(box=box.SIMPLE_HEAVY, title="Quants (GiB, binary)", title_justify="left")
    for col in keep:
        left = col in ("quant", "file type", "quality", "verdict") or col.startswith("at ")
        grid.add_column(col, justify="left" if left else "right", no_wrap=True)
    index = [columns.index(col) for col in keep]
    for i, row in enumerate(cells):
        grid.add_row(*(row[k] for k in index), style="on grey23" if (i == table.best and color) else None)
    return grid


def _label(table: QuantReport, r: QuantRow) -> str:
    """The quant tag; where two files share it (X-Q4_K_M.gguf, X-Q4_K_M-imat.gguf), the file name too."""
    if r.file and sum(1 for q in table.rows if q.quant == r.quant) > 1:
        return f"{r.quant} ({r.file.rsplit('/', 1)[-1]})"
    return r.quant


def _short_verdict(verdict: Verdict) -> Text:
    text = VERDICT_TEXT[verdict][0].replace("fits with partial offload", "partial offload")
    return Text(text, style=VERDICT_STYLE[verdict])


def _cells(table: QuantReport, i: int, r: QuantRow) -> list[Any]:
    needs, plan, spec = r.report.needs, r.report.plan, r.report.spec
    mark = "★ " if i == table.best else "  "
    n_total = spec.n_layer + 1
    cells: list[Any] = [
        Text(mark + _label(table, r) + (" ~" if r.estimate else ""), style="bold" if i == table.best else ""),
        spec.file_type or "-", bpw_cell(r), quality_cell(r), gib(r.size_bytes), gib(needs.weights_bytes),
        gib(needs.kv_cache_bytes), gib(needs.total_bytes), _short_verdict(plan.verdict),
        f"{min(plan.gpu_layers, n_total)}/{n_total}" if table.hardware.gpus else "-",
        f"{plan.max_ctx:,}" if plan.max_ctx else "-",
        rate(r.report.speed.decode_tokens_per_s) if r.report.speed else "-"]
    cells += [_short_verdict(row.verdict) for row in r.report.sweep[1:]]
    return cells


def _hw_line(hw: Hardware) -> str:
    gpus = ", ".join(f"{g.name} {gib(g.free_bytes if g.free_bytes is not None else g.total_bytes)} GiB free"
                     for g in hw.gpus) or "no GPU"
    ram = f"RAM {gib(hw.ram_available_bytes)} GiB available" if hw.ram_available_bytes is not None else "RAM ?"
    return f"{gpus} · {ram}"


def quants_dict(table: QuantReport) -> dict[str, Any]:
    base = report_dict(table.rows[0].report) if table.rows else None
    settings = dict(base["settings"]) if base else {}
    if settings:
        settings["gpu_layers"] = table.settings.gpu_layers
        settings["n_cpu_moe"] = table.settings.n_cpu_moe
    rows = []
    for i, r in enumerate(table.rows):
        needs, plan = r.report.needs, r.report.plan
        rows.append({
            "file": r.file, "quant": r.quant, "file_type": r.report.spec.file_type, "size_bytes": r.size_bytes,
            "weights_bytes": needs.weights_bytes, "kv_cache_bytes": needs.kv_cache_bytes,
            "total_bytes": needs.total_bytes, "verdict": plan.verdict, "gpu_layers": plan.gpu_layers,
            "max_ctx": plan.max_ctx, "command": plan.command, "estimate": r.estimate, "best": i == table.best,
            "bits_per_weight": round(r.bits_per_weight, 3) if r.bits_per_weight is not None else None,
            "quality": quality_dict(r),
            "decode_tokens_per_s": range_dict(r.report.speed.decode_tokens_per_s) if r.report.speed else None,
            "sweep": sweep_list(r.report)})
    return {
        "schema_version": SCHEMA_VERSION,
        "fitcheck_version": __version__,
        "ref": table.ref,
        "kind": table.kind,
        "settings": settings,
        "hardware": base["hardware"] if base else None,
        "quants": rows,
        "recommendation": recommendation(table),
        "notes": list(table.notes),
    }


def quality_dict(r: QuantRow) -> dict[str, Any] | None:
    q = r.quality
    if q is None:
        return None
    return {"file_type": q.file_type, "tier": q.tier, "rank": q.rank, "low": q.low, "kld": q.kld,
            "ppl_increase": q.ppl_increase, "measured_on": q.measured_on, "source": q.source, "note": q.note}


def render_quants_json(table: QuantReport) -> str:
    return json.dumps(quants_dict(table), indent=2)
