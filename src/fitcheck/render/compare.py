"""Compare mode: one model on several what-if machines, one row per `--gpu` option, as text or JSON."""

from __future__ import annotations

import io
import json
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from .._version import __version__
from ..model import HardwareComparison, Verdict
from .json import SCHEMA_VERSION, report_dict
from .table import VERDICT_TEXT, gib, rate, text_console

SHORT = {Verdict.GPU: "fits on the GPU", Verdict.OFFLOAD: "partial offload", Verdict.CPU: "CPU only",
         Verdict.NONE: "does not fit"}


def render_compare_table(cmp: HardwareComparison, width: int = 120, color: bool = True) -> str:
    out = io.StringIO()
    console = text_console(out, width, color)
    first = cmp.options[0].report if cmp.options else None
    if first is not None:
        spec = first.spec
        console.print(Text(spec.name, style="bold") + Text(
            f"  {spec.architecture} · {spec.file_type or '?'} · {gib(spec.file_size_bytes)} GiB file · "
            f"ctx {first.needs.ctx:,} · K {cmp.settings.cache_type_k} / V {cmp.settings.cache_type_v}"))
    grid = Table(box=box.SIMPLE_HEAVY, title="Hardware compared (GiB, binary; tokens per second as ranges)",
                 title_justify="left")
    for col in ("hardware", "memory", "GB/s", "verdict", "-ngl", "max ctx", "generate tok/s", "prompt tok/s",
                "limited by"):
        grid.add_column(col, justify="left" if col in ("hardware", "verdict", "limited by") else "right",
                        no_wrap=col != "limited by")
    for option in cmp.options:
        r = option.report
        gpus = r.hardware.gpus
        memory = sum(g.total_bytes for g in gpus)
        bandwidth = ", ".join(f"{g.bandwidth_gbps:g}" for g in gpus[:1] if g.bandwidth_gbps) or "?"
        speed = r.speed
        n_total = r.spec.n_layer + 1
        grid.add_row(option.label, gib(memory), bandwidth,
                     Text(SHORT[r.plan.verdict], style=VERDICT_TEXT[r.plan.verdict][1]),
                     f"{min(r.plan.gpu_layers, n_total)}/{n_total}",
                     f"{r.plan.max_ctx:,}" if r.plan.max_ctx else "-",
                     rate(speed.decode_tokens_per_s) if speed else "-",
                     rate(speed.prompt_tokens_per_s) if speed else "-",
                     speed.limited_by if speed else "-")
    console.print(grid)
    for option in cmp.options:
        console.print(Text(f"{option.label}: ", style="bold") + Text(option.report.plan.command, style="cyan"))
    notes = list(cmp.notes) + [f"{o.label}: {n}" for o in cmp.options for n in o.report.hardware.notes]
    notes += [n for o in cmp.options if o.report.speed for n in o.report.speed.notes]
    if notes:
        console.print(Text("notes", style="bold"))
        for note in dict.fromkeys(notes):
            console.print(Text(f"  • {note}"))
    return out.getvalue()


def compare_dict(cmp: HardwareComparison) -> dict[str, Any]:
    options = []
    for option in cmp.options:
        doc = report_dict(option.report)
        options.append({"gpu": option.label, "hardware": doc["hardware"], "memory": doc["memory"],
                        "plan": doc["plan"], "speed": doc["speed"], "notes": doc["notes"]})
    first = report_dict(cmp.options[0].report) if cmp.options else None
    return {
        "schema_version": SCHEMA_VERSION,
        "fitcheck_version": __version__,
        "ref": cmp.ref,
        "model": first["model"] if first else None,
        "settings": first["settings"] if first else None,
        "options": options,
        "notes": list(cmp.notes),
    }


def render_compare_json(cmp: HardwareComparison) -> str:
    return json.dumps(compare_dict(cmp), indent=2)
