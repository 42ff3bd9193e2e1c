"""The quant table: one row per quant of a repo (or per what-if quant of a safetensors repo), as text or JSON.

`build_rows` is pure (estimate + plan per quant under one Settings and Hardware); the renderers return str.
"Best" = the largest file whose verdict is `gpu` (in one repo, a bigger quant of the same model is the
higher-quality one).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..model import Hardware, Needs, Plan, Report, Settings
from .json import SCHEMA_VERSION, report_dict
from .table import VERDICT_TEXT, gib

VERDICT_STYLE = {"gpu": "green", "offload": "yellow", "cpu": "yellow", "none": "red"}


@dataclass(frozen=True)
class QuantRow:
    quant: str
    file: str | None
    file_type: str | None
    size_bytes: int | None
    estimate: bool
    report: Report

    @property
    def needs(self) -> Needs:
        return self.report.needs

    @property
    def plan(self) -> Plan:
        return self.report.plan


@dataclass(frozen=True)
class QuantTable:
    ref: str
    kind: str  # gguf | safetensors
    settings: Settings
    hardware: Hardware
    rows: tuple[QuantRow, ...]  # sorted by size
    best: int | None  # index of the highlighted row
    recommendation: str
    notes: tuple[str, ...]


def build_table(ref: str, kind: str, choices: list[Any], settings: Settings, hardware: Hardware,
                notes: list[str]) -> QuantTable:
    """choices: resolve.Choice items (quant, file, size_bytes, model.spec, model.model_arg, estimate)."""
    from ..estimate import estimate
    from ..plan import plan

    rows = []
    for c in choices:
        spec = c.model.spec
        needs = estimate(spec, settings)
        result = plan(spec, needs, settings, hardware, c.model.model_arg)
        report = Report(spec=spec, settings=settings, needs=needs, hardware=hardware, plan=result,
                        notes=spec.notes + needs.notes + result.notes)
        size = c.size_bytes if c.size_bytes is not None else spec.file_size_bytes
        rows.append(QuantRow(c.quant, c.file, spec.file_type, size, c.estimate, report))
    rows.sort(key=lambda r: (r.size_bytes or 0, r.quant))
    gpu = [i for i, r in enumerate(rows) if r.plan.verdict == "gpu"]
    best = gpu[-1] if gpu else None
    all_notes = list(notes) + list(hardware.notes)
    if rows:
        all_notes += [n for n in rows[0].needs.notes if n not in all_notes]
    return QuantTable(ref, kind, settings, hardware, tuple(rows), best, _recommend(rows, best), tuple(all_notes))


def _recommend(rows: list[QuantRow], best: int | None) -> str:
    if not rows:
        return "no model files to compare"
    ctx = rows[0].needs.ctx
    if best is not None:
        r = rows[best]
        extra = f" (up to {r.plan.max_ctx:,} tokens)" if r.plan.max_ctx else ""
        what = f"{r.quant} (estimate)" if r.estimate else r.quant
        return f"{what} is the best quality that fits fully on the GPU at ctx {ctx:,}{extra}: {r.plan.command}"
    offload = [r for r in rows if r.plan.verdict in ("offload", "cpu")]
    if offload:
        r = offload[-1]
        place = (f"with {r.plan.gpu_layers} of {r.report.spec.n_layer + 1} layers on the GPU"
                 if r.plan.verdict == "offload" else "on the CPU only")
        smallest = offload[0].quant
        return (f"nothing fits fully on the GPU at ctx {ctx:,}; {r.quant} is the largest that runs, {place} "
                f"(smaller quants such as {smallest} run faster): {r.plan.command}")
    return f"no quant fits on this machine at ctx {ctx:,}: try a shorter context (-c) or a quantized KV cache"


def render_quants_table(table: QuantTable, width: int = 120, color: bool = True) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False, soft_wrap=False)
    first = table.rows[0] if table.rows else None
    head = Text(table.ref, style="bold")
    if first is not None:
        spec = first.report.spec
        head += Text(f"  {spec.architecture} · {spec.n_layer} layers · trained ctx {spec.n_ctx_train:,} · "
                     f"{len(table.rows)} {'quants' if table.kind == 'gguf' else 'rows (estimates but native)'}")
        console.print(head)
        console.print(Text(f"assumes  ctx {first.needs.ctx:,} · K {table.settings.cache_type_k} / V "
                           f"{table.settings.cache_type_v} · flash-attn {'on' if first.needs.flash_attn else 'off'}"
                           f" · parallel {table.settings.parallel} · " + _hw_line(table.hardware), style="dim"))
    grid = Table(box=box.SIMPLE_HEAVY, title="Quants (GiB, binary)", title_justify="left")
    for col in ("quant", "file type", "size", "weights", "KV", "total", "verdict", "GPU layers", "max ctx"):
        grid.add_column(col, justify="left" if col in ("quant", "file type", "verdict") else "right", no_wrap=True)
    for i, r in enumerate(table.rows):
        mark = "★ " if i == table.best else "  "
        quant = r.quant + (" ~" if r.estimate else "")
        verdict = Text(VERDICT_TEXT[r.plan.verdict][0].replace("fits with partial offload", "partial offload"),
                       style=VERDICT_STYLE[r.plan.verdict])
        n_total = r.report.spec.n_layer + 1
        grid.add_row(Text(mark + quant, style="bold" if i == table.best else ""), r.file_type or "-",
                     gib(r.size_bytes), gib(r.needs.weights_bytes), gib(r.needs.kv_cache_bytes),
                     gib(r.needs.total_bytes), verdict,
                     f"{min(r.plan.gpu_layers, n_total)}/{n_total}" if table.hardware.gpus else "-",
                     f"{r.plan.max_ctx:,}" if r.plan.max_ctx else "-",
                     style="on grey23" if (i == table.best and color) else None)
    console.print(grid)
    console.print(Text("recommend  ", style="bold") + Text(table.recommendation))
    if any(r.estimate for r in table.rows):
        console.print(Text("~ = estimate from the parameter count, not a file in the repo", style="dim"))
    if table.notes:
        console.print(Text("notes", style="bold"))
        for note in table.notes:
            console.print(Text(f"  • {note}"))
    return out.getvalue()


def _hw_line(hw: Hardware) -> str:
    gpus = ", ".join(f"{g.name} {gib(g.free_bytes if g.free_bytes is not None else g.total_bytes)} GiB free"
                     for g in hw.gpus) or "no GPU"
    ram = f"RAM {gib(hw.ram_available_bytes)} GiB available" if hw.ram_available_bytes is not None else "RAM ?"
    return f"{gpus} · {ram}"


def quants_dict(table: QuantTable) -> dict[str, Any]:
    base = report_dict(table.rows[0].report) if table.rows else None
    settings = dict(base["settings"]) if base else {}
    if settings:
        settings["gpu_layers"] = table.settings.gpu_layers
        settings["n_cpu_moe"] = table.settings.n_cpu_moe
    return {
        "schema_version": SCHEMA_VERSION,
        "fitcheck_version": __version__,
        "ref": table.ref,
        "kind": table.kind,
        "settings": settings,
        "hardware": base["hardware"] if base else None,
        "quants": [{
            "file": r.file, "quant": r.quant, "file_type": r.file_type, "size_bytes": r.size_bytes,
            "weights_bytes": r.needs.weights_bytes, "kv_cache_bytes": r.needs.kv_cache_bytes,
            "total_bytes": r.needs.total_bytes, "verdict": r.plan.verdict, "gpu_layers": r.plan.gpu_layers,
            "max_ctx": r.plan.max_ctx, "command": r.plan.command, "estimate": r.estimate, "best": i == table.best,
        } for i, r in enumerate(table.rows)],
        "recommendation": table.recommendation,
        "notes": list(table.notes),
    }


def render_quants_json(table: QuantTable) -> str:
    return json.dumps(quants_dict(table), indent=2)
