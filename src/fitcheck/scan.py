"""`fitcheck scan`: every GGUF already on this machine (Ollama, LM Studio, the Hugging Face cache, llama.cpp's
cache, folders given), planned under one Settings on one Hardware, best runnable choices first.

Each model is planned as `fitcheck MODEL` plans it (check.check_model: verdict, largest context, speed), with
llama.cpp's defaults for every row so the rows compare. A row's outcome is cached (fitcheck's cache folder) by
its files' (real path, size, mtime_ns), the reference, the settings, the machine as probed and fitcheck's
version: a second scan of the same stores on the same machine parses and plans nothing, and a changed file or
option plans that row again. Probed free memory (GPU free bytes, available RAM) moves all the time, so a scan
plans with it rounded down to FREE_STEP (64 MiB): a rescan reuses its rows while free memory stays in the same
step, and a row is never planned with more memory than was free. Rows are planned in the order of their
folders, so one worker process gets a model's quants together (their shapes share the compute-graph replays
in its memo; their tokenizer arrays are shared through the cache, sources/shared_arrays.py). Projectors,
imatrix files, adapters and partial downloads are rows without a plan. No printing here: render/scan.py
formats a ScanReport.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ._version import __version__
from .errors import FitcheckError
from .model import Hardware, MiB, Range, Report, Settings, Verdict
from .probe.overrides import HardwareOverrides
from .sources.stores.files import Entry, StoreInfo

NOT_MODELS = {"mmproj": "a projector (mmproj)", "imatrix": "an importance matrix (imatrix)",
              "adapter": "a LoRA adapter", "partial": "a partial download", "missing": "missing"}
ROW_CACHE = "scan-row"
ROW_FORMAT = "3"
FREE_STEP = 64 * MiB  # probed free memory is planned (and keyed) rounded down to this
PARALLEL_FROM = 24  # uncached rows from which worker processes pay for their start (~0.3 s each)
MAX_WORKERS = 8
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RowPlan:
    """What a scan row shows of a model's full Report (check_model): small enough to cache."""

    name: str
    architecture: str
    file_type: str | None
    parameters: int
    n_layer: int
    file_size_bytes: int  # what the complete file holds (a header-only or cut file is smaller on disk)
    ctx: int
    verdict: Verdict
    gpu_layers: int
    n_cpu_moe: int
    max_ctx: int | None
    total_bytes: int
    decode_tokens_per_s: Range | None
    command: str | None  # None when it does not fit
    known_architecture: bool
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, r: Report) -> RowPlan:
        return cls(r.spec.name, r.spec.architecture, r.spec.file_type, r.spec.parameters, r.spec.n_layer,
                   r.spec.file_size_bytes, r.needs.ctx, r.plan.verdict, r.plan.gpu_layers, r.plan.n_cpu_moe,
                   r.plan.max_ctx, r.needs.total_bytes, r.speed.decode_tokens_per_s if r.speed else None,
                   r.plan.command if r.plan.verdict is not Verdict.NONE else None, r.known_architecture, r.notes)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": str(self.verdict), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RowPlan:
        speed = data["decode_tokens_per_s"]
        return cls(**{**data, "verdict": Verdict(data["verdict"]), "notes": tuple(data["notes"]),
                      "decode_tokens_per_s": Range(speed["low"], speed["high"]) if speed else None})


@dataclass(frozen=True)
class ScanRow:
    entry: Entry
    plan: RowPlan | None = None  # None: not a model, or unreadable (see note)
    note: str | None = None

    @property
    def verdict(self) -> Verdict | None:
        return self.plan.verdict if self.plan is not None else None


@dataclass(frozen=True)
class ScanReport:
    settings: Settings
    hardware: Hardware
    rows: tuple[ScanRow, ...]  # best runnable first
    stores: tuple[StoreInfo, ...]
    notes: tuple[str, ...] = ()


def scan(folders: Sequence[str] = (), settings: Settings | None = None,
         hardware: HardwareOverrides | None = None, *, stores: bool = True, nvml: Any = None,
         psutil_module: Any = None, measure_ram: Callable[[], tuple[float, str] | None] | None = None,
         progress: Progress | None = None, workers: int | None = None) -> ScanReport:
    """`workers`: processes for the rows the cache cannot answer (None: one per CPU, up to 8, when there
    are at least PARALLEL_FROM of them; parsing a header is pure Python, so threads would not help)."""
    from .check import _measure_ram, probe, validate, validate_machine
    from .sources.stores import discover

    settings = settings or Settings()
    overrides = hardware or HardwareOverrides()
    validate(settings, overrides)
    machine = probe(overrides, nvml=nvml, psutil_module=psutil_module)
    validate_machine(settings, overrides, machine)
    if machine.ram_bandwidth_gbps is None:  # many rows read weights from RAM: measure once (cached), up front
        measured = (measure_ram or _measure_ram)()
        if measured is not None:
            machine = replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
    machine = steady(machine, overrides)
    found = discover(folders, stores=stores)
    context = (ROW_FORMAT, __version__, repr(settings), repr(machine))
    rows = _rows(found.entries, settings, machine, context, progress, workers)
    rows.sort(key=_rank)
    notes = list(found.notes) + list(machine.notes)
    if any(r.entry.store == "ollama" and r.plan for r in rows):
        notes.append("every row is planned with llama.cpp's defaults at the same context; `fitcheck ollama:NAME` "
                     "plans one with Ollama's own (its num_ctx, batch and slots)")
    return ScanReport(settings, machine, tuple(rows), tuple(found.stores), tuple(dict.fromkeys(notes)))


def _rows(entries: Sequence[Entry], settings: Settings, machine: Hardware, context: tuple[str, ...],
          progress: Progress | None, workers: int | None) -> list[ScanRow]:
    """Every entry's row: from the row cache where it answers, the others planned (in processes when many)."""
    rows: list[ScanRow | None] = []
    todo: list[tuple[int, Entry, tuple[str, ...]]] = []
    for entry in entries:
        row, key = _cached_row(entry, context)
        if row is None and key is not None:
            todo.append((len(rows), entry, key))
        rows.append(row)
    todo.sort(key=lambda job: (os.path.dirname(job[1].path), job[1].path))  # a model's quants together
    n = len(todo)
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if n >= PARALLEL_FROM else 1
    jobs = [(entry, key, settings, machine) for _, entry, key in todo]
    if workers > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, n)) as pool:
            planned = list(_with_progress(pool.map(_plan_job, jobs, chunksize=max(1, n // (workers * 8))),
                                          todo, progress))
    else:
        planned = list(_with_progress(map(_plan_job, jobs), todo, progress))
    for (i, _, _), row in zip(todo, planned, strict=True):
        rows[i] = row
    return [r for r in rows if r is not None]


def steady(machine: Hardware, overrides: HardwareOverrides) -> Hardware:
    """The machine with probed free memory rounded down to FREE_STEP (what was given stays as given)."""
    def down(n: int | None) -> int | None:
        return None if n is None else n // FREE_STEP * FREE_STEP

    gpus = machine.gpus
    if overrides.vram is None and overrides.gpu is None:
        gpus = tuple(replace(g, free_bytes=down(g.free_bytes)) for g in gpus)
    ram = machine.ram_available_bytes if overrides.ram is not None else down(machine.ram_available_bytes)
    if gpus == machine.gpus and ram == machine.ram_available_bytes:
        return machine
    note = (f"free memory as probed, rounded down to {FREE_STEP // MiB} MiB steps: a rescan reuses its rows "
            "while free memory stays within a step")
    return replace(machine, gpus=gpus, ram_available_bytes=ram, notes=(*machine.notes, note))


def _with_progress(results: Any, todo: list[tuple[int, Entry, tuple[str, ...]]],
                   progress: Progress | None) -> Any:
    for done, row in enumerate(results, 1):
        if progress:
            progress(done, len(todo), todo[done - 1][1].name)
        yield row


def _cached_row(entry: Entry, context: tuple[str, ...]) -> tuple[ScanRow | None, tuple[str, ...] | None]:
    """(the row, None) when no plan is needed or the row cache has it; (None, key) when it must be planned."""
    from .sources import cache

    if entry.kind != "model":
        return ScanRow(entry, note=entry.note or NOT_MODELS.get(entry.kind, entry.kind)), None
    paths = list(entry.shards) or [entry.path]
    try:
        stats = [os.stat(p) for p in paths]
    except OSError as exc:
        return ScanRow(replace(entry, kind="unreadable"), note=f"cannot read ({exc.strerror or exc})"), None
    key = (*context, entry.ref, *(f"{os.path.realpath(p)}\0{s.st_size}\0{s.st_mtime_ns}"
                                  for p, s in zip(paths, stats, strict=True)))
    stored = cache.get(ROW_CACHE, *key)
    if isinstance(stored, dict):
        try:
            return _from_json(entry, stored), None
        except (KeyError, TypeError, ValueError):
            pass  # written by another format: plan it again
    return None, key


def _plan_job(job: tuple[Entry, tuple[str, ...], Settings, Hardware]) -> ScanRow:
    """Plan one row and store it in the row cache (module level: a worker process runs it)."""
    from .sources import cache

    entry, key, settings, machine = job
    row = _plan_row(entry, list(entry.shards) or [entry.path], settings, machine)
    cache.put(ROW_CACHE, {"kind": row.entry.kind, "note": row.note,
                          "plan": row.plan.to_json() if row.plan else None}, *key)
    return row


def _from_json(entry: Entry, data: dict[str, Any]) -> ScanRow:
    plan = RowPlan.from_json(data["plan"]) if data["plan"] is not None else None
    return ScanRow(replace(entry, kind=str(data["kind"])), plan, data["note"])


def _plan_row(entry: Entry, paths: list[str], settings: Settings, machine: Hardware) -> ScanRow:
    from .check import check_model
    from .sources.stores.headers import local_model, read_header

    try:
        header, _ = read_header(paths[0])
        kind = _header_kind(header.metadata)
        if kind is not None:
            return ScanRow(replace(entry, kind=kind), note=NOT_MODELS[kind])
        model = local_model(paths, ref=entry.ref)
        return ScanRow(entry, RowPlan.of(check_model(model, settings, machine, brief=True)), entry.note)
    except FitcheckError as exc:  # one unreadable file is its row's note, never the end of the scan
        return ScanRow(replace(entry, kind="unreadable"), note=str(exc))


def _header_kind(meta: dict[str, Any]) -> str | None:
    """What the header says a file is when it is not a model (llama.cpp's general.type and the clip arch)."""
    from . import archs

    kind = meta.get("general.type")
    if kind == "adapter":
        return "adapter"
    if kind == "mmproj" or archs.is_projector(str(meta.get("general.architecture"))):
        return "mmproj"
    if kind == "imatrix" or "imatrix.datasets" in meta:
        return "imatrix"
    return None


def _rank(row: ScanRow) -> tuple[int, int, int, int, str]:
    """Models that run first, best verdict first; within a verdict the largest model (parameters), then the
    largest file (the higher-quality quant); then what is not a model."""
    if row.plan is None:
        return (1, 0, 0, 0, row.entry.name)
    return (0, -row.plan.verdict.rank, -row.plan.parameters, -(row.entry.size_bytes or 0), row.entry.name)
