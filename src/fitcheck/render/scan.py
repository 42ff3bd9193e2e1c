"""`fitcheck scan` as a table (one row per GGUF, best runnable first) or as JSON (schema_version 1)."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table
from rich.text import Text

from .._version import __version__
from ..model import Verdict
from ..text import shown
from .json import SCHEMA_VERSION, hardware_dict, range_dict
from .table import VERDICT_TEXT, rate, size, text_console

if TYPE_CHECKING:
    from ..scan import ScanReport, ScanRow

SHORT = {Verdict.GPU: "gpu", Verdict.OFFLOAD: "offload", Verdict.CPU: "cpu", Verdict.NONE: "no fit"}


def _verdict_cell(row: ScanRow) -> Text:
    if row.plan is None:
        return Text(row.entry.kind, style="dim")
    return Text(SHORT[row.plan.verdict], style=VERDICT_TEXT[row.plan.verdict][1])


def render_scan_table(report: ScanReport, width: int = 120, color: bool = True) -> str:
    out = io.StringIO()
    console = text_console(out, width, color)
    plans = [r.plan for r in report.rows if r.plan is not None]
    ctxs = sorted({p.ctx for p in plans})
    ctx = "ctx " + ", ".join(f"{c:,}" for c in ctxs[:3]) + (" …" if len(ctxs) > 3 else "") if ctxs else "no models"
    gpus = ", ".join(g.name for g in report.hardware.gpus) or "no GPU"
    console.print(Text(f"{len(plans)} models, {len(report.rows) - len(plans)} other files · {ctx} · {gpus} · "
                       f"RAM {size(report.hardware.ram_available_bytes)} available", style="bold"))
    table = Table(box=box.SIMPLE_HEAVY, show_edge=False)
    for col, justify in (("#", "right"), ("model", "left"), ("store", "left"), ("quant", "left"),
                         ("size", "right"), ("verdict", "left"), ("-ngl", "right"), ("max ctx", "right"),
                         ("tok/s", "right"), ("reference", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, row in enumerate(report.rows, 1):
        p = row.plan
        runs = p is not None and p.verdict is not Verdict.NONE
        # names come from files and their metadata: escaped, and never read as rich markup
        table.add_row(str(i), Text(shown(p.name if p is not None else row.entry.name)), Text(shown(row.entry.store)),
                      (p.file_type or "?") if p is not None else "",
                      size(p.file_size_bytes if p is not None else row.entry.size_bytes), _verdict_cell(row),
                      str(p.gpu_layers) if p is not None and runs else "",
                      f"{p.max_ctx:,}" if p is not None and p.max_ctx else "",
                      rate(p.decode_tokens_per_s) if p is not None else "", Text(shown(row.entry.ref)))
    console.print(table)
    looked = [f"{s.store} {shown(s.root, 200)} ({s.files} file{'' if s.files == 1 else 's'})" if s.status == "found"
              else f"{s.store} {shown(s.root, 200)} ({s.status})" for s in report.stores]
    if looked:
        console.print(Text("looked in  " + " · ".join(looked), style="dim"))
    best = next((p for p in plans if p.command), None)
    if best is not None and best.command:
        console.print(Text("run        ") + Text(shown(best.command, 2000), style="cyan"), soft_wrap=True)
    notes = list(report.notes) + [f"{shown(row.entry.name)}: {row.note}" for row in report.rows
                                  if row.note and row.entry.kind in ("unreadable", "missing", "partial")]
    if notes:
        console.print(Text("notes", style="bold"))
        for note in notes:
            console.print(Text(f"  • {note}"))
    return out.getvalue()


def row_dict(row: ScanRow) -> dict[str, Any]:
    e, p = row.entry, row.plan
    doc: dict[str, Any] = {"name": p.name if p is not None else e.name, "store": e.store, "store_name": e.name,
                           "ref": e.ref, "path": e.path, "kind": e.kind, "size_bytes": e.size_bytes,
                           "attached": list(e.attached), "note": row.note}
    keys = ("architecture", "file_type", "parameters", "n_layer", "file_size_bytes", "ctx", "verdict",
            "gpu_layers", "n_cpu_moe",
            "max_ctx", "total_bytes", "command", "known_architecture")
    if p is None:
        doc.update(dict.fromkeys(keys), decode_tokens_per_s=None, notes=[])
        return doc
    doc.update({k: getattr(p, k) for k in keys})
    doc.update(verdict=str(p.verdict), decode_tokens_per_s=range_dict(p.decode_tokens_per_s), notes=list(p.notes))
    return doc


def render_scan_json(report: ScanReport) -> str:
    s = report.settings
    doc = {"schema_version": SCHEMA_VERSION, "fitcheck_version": __version__,
           "settings": {"ctx": s.ctx, "batch": s.batch, "ubatch": s.ubatch, "parallel": s.parallel,
                        "cache_type_k": s.cache_type_k, "cache_type_v": s.cache_type_v, "flash_attn": s.flash_attn,
                        "require": s.require},
           "hardware": hardware_dict(report.hardware),
           "rows": [row_dict(r) for r in report.rows],
           "stores": [{"store": st.store, "root": st.root, "status": st.status, "files": st.files}
                      for st in report.stores],
           "notes": list(report.notes)}
    return json.dumps(doc, indent=2)
