"""`fitcheck search` output: one row per Hub repo (its best quant for this machine), as text or JSON.

Formats a SearchReport (built by fitcheck.search); the order of the rows is the report's, the Hub's own order
stays visible in the '#' column.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .._version import __version__
from ..model import Verdict
from ..text import shown
from .json import SCHEMA_VERSION, hardware_dict, range_dict, report_dict
from .quants import UNBOUNDED, _hw_line, _short_verdict, bpw_cell, quality_cell, quality_dict, quality_legend
from .table import gib, rate, text_console

if TYPE_CHECKING:
    from ..search import RepoResult, SearchReport


def _counts(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _first_report(report: SearchReport) -> Any:
    return next((r.row.report for r in report.results if r.row is not None), None)


def recommendation(report: SearchReport) -> str:
    top = next((r for r in report.results if r.row is not None and r.verdict is not Verdict.NONE), None)
    if top is None or top.row is None:
        return "nothing found runs on this machine: try a shorter context (-c), a quantized KV cache or another query"
    row, plan = top.row, top.row.report.plan
    quality = f" ({row.quality.tier} quality)" if row.quality is not None and row.quality.tier else ""
    where = {Verdict.GPU: "fits fully on the GPU", Verdict.OFFLOAD: "runs with partial offload",
             Verdict.CPU: "runs on the CPU only"}[plan.verdict]
    return f"{top.hit.repo} {row.quant}{quality} {where}: {plan.command}"


def render_search_table(report: SearchReport, width: int = 120, color: bool = True) -> str:
    out = io.StringIO()
    console = text_console(out, width, color)
    console.print(Text(f"search {shown(report.query)}", style="bold") + Text(
        f"  GGUF repos on the Hub by {report.sort} · {len(report.results)} shown"))
    first = _first_report(report)
    ctx = f"ctx {first.needs.ctx:,}" if first is not None else "ctx " + (
        f"{report.settings.ctx:,}" if report.settings.ctx else "default")
    console.print(Text(f"assumes  {ctx} · K {report.settings.cache_type_k} / V {report.settings.cache_type_v} · "
                       f"parallel {report.settings.parallel} · " + _hw_line(report.hardware), style="dim"))
    if not report.results:
        console.print(Text("no GGUF repositories on the Hub match this search"))
        return out.getvalue()
    cells = [_cells(report, r) for r in report.results]
    keep = list(COLUMNS)
    for drop in _DROP_ORDER:  # a narrow terminal loses the least needed columns whole, never the repo's name
        grid = _grid(keep, cells)
        if Measurement.get(console, console.options.update_width(UNBOUNDED), grid).maximum <= width:
            break
        keep.remove(drop)
    else:
        grid = _grid(keep, cells)
    console.print(grid)
    console.print(Text("recommend  ", style="bold") + Text(recommendation(report)))
    console.print(Text("rows: fully on the GPU first, then partial offload, CPU, none; a Q3/Q2-class pick after the "
                       "others of its verdict; '#' is the Hub's order", style="dim"))
    console.print(Text(quality_legend(), style="dim"))
    notes = [f"{r.hit.repo}: {r.note}" for r in report.results if r.note]
    notes += [f"{r.hit.repo}: {r.skipped} quant{'s' if r.skipped != 1 else ''} larger than this machine's memory "
              "not read" for r in report.results if r.skipped and r.quants is not None]
    notes += list(report.notes)
    if notes:
        console.print(Text("notes", style="bold"))
        for note in notes:
            console.print(Text(f"  • {shown(note, 300)}"))
    return out.getvalue()


COLUMNS = ("#", "repo", "quant", "bpw", "quality", "size", "verdict", "GPU layers", "max ctx", "tok/s", "downloads",
           "likes")
_DROP_ORDER = ("likes", "downloads", "GPU layers", "tok/s", "bpw", "size", "max ctx")


def _grid(keep: list[str], cells: list[list[Any]]) -> Table:
    grid = Table(box=box.SIMPLE_HEAVY, title="Best quant per repo (GiB, binary)", title_justify="left")
    for col in keep:
        left = col in ("repo", "quant", "quality", "verdict")
        grid.add_column(col, justify="left" if left else "right", no_wrap=True)
    index = [COLUMNS.index(col) for col in keep]
    for row in cells:
        grid.add_row(*(row[k] for k in index))
    return grid


def _cells(report: SearchReport, r: RepoResult) -> list[Any]:
    row = r.row
    counts = [_counts(r.hit.downloads), _counts(r.hit.likes)]
    if row is None:
        return [str(r.hit.rank), Text(shown(r.hit.repo)), "-", "-", "-", "-", Text("see notes", style="dim"), "-", "-",
                "-", *counts]
    plan, spec = row.report.plan, row.report.spec
    n_total = spec.n_layer + 1
    return [str(r.hit.rank), Text(shown(r.hit.repo)), Text(shown(row.quant)), bpw_cell(row), quality_cell(row),
            gib(row.size_bytes), _short_verdict(plan.verdict),
            f"{min(plan.gpu_layers, n_total)}/{n_total}" if report.hardware.gpus else "-",
            f"{plan.max_ctx:,}" if plan.max_ctx else "-",
            rate(row.report.speed.decode_tokens_per_s) if row.report.speed else "-", *counts]


def search_dict(report: SearchReport) -> dict[str, Any]:
    first = _first_report(report)
    settings: dict[str, Any] = {}
    if first is not None:
        settings = dict(report_dict(first)["settings"])
        settings["gpu_layers"] = report.settings.gpu_layers
        settings["n_cpu_moe"] = report.settings.n_cpu_moe
    repos = []
    for r in report.results:
        row = r.row
        entry: dict[str, Any] = {"rank": r.hit.rank, "repo": r.hit.repo, "downloads": r.hit.downloads,
                                 "likes": r.hit.likes, "verdict": None, "quant": None, "file": None,
                                 "file_type": None, "bits_per_weight": None, "quality": None, "size_bytes": None,
                                 "total_bytes": None, "gpu_layers": None, "max_ctx": None,
                                 "decode_tokens_per_s": None, "command": None,
                                 "quants_read": len(r.quants.rows) if r.quants is not None else 0,
                                 "quants_skipped": r.skipped, "note": r.note}
        if row is not None:
            plan, needs = row.report.plan, row.report.needs
            entry.update(verdict=plan.verdict, quant=row.quant, file=row.file, file_type=row.report.spec.file_type,
                         bits_per_weight=round(row.bits_per_weight, 3) if row.bits_per_weight is not None else None,
                         quality=quality_dict(row), size_bytes=row.size_bytes, total_bytes=needs.total_bytes,
                         gpu_layers=plan.gpu_layers, max_ctx=plan.max_ctx,
                         decode_tokens_per_s=range_dict(row.report.speed.decode_tokens_per_s)
                         if row.report.speed else None,
                         command=plan.command if plan.verdict is not Verdict.NONE else None)
        repos.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "fitcheck_version": __version__,
        "query": report.query,
        "sort": report.sort,
        "limit": report.limit,
        "settings": settings,
        "hardware": hardware_dict(report.hardware),
        "repos": repos,
        "recommendation": recommendation(report),
        "notes": list(report.notes),
    }


def render_search_json(report: SearchReport) -> str:
    return json.dumps(search_dict(report), indent=2)
