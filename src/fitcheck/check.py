"""The application layer: the one path from a model reference to a Report, and fitcheck's library API.

    from fitcheck import check, Settings
    report = check("model.gguf", Settings(ctx=32768))

Order matters: settings are validated before any model is read (a bad cache type costs no Hub request), the
reference is resolved to one model or a set of quants, the machine is probed (or taken from overrides), and
the pure core estimates and plans. A context sweep re-plans the same model at every further context; a repo
of quants is planned once per quant. Renderers format what this returns; they never compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .estimate import estimate, validate_settings
from .model import Hardware, QuantReport, QuantRow, Report, Settings, SweepRow, Verdict
from .plan import best_placement, plan, verdict_of
from .probe.overrides import HardwareOverrides, apply_overrides
from .probe.system import probe_hardware

if TYPE_CHECKING:
    from .sources.types import Model, QuantSet

Progress = Callable[[int, int, str], None]  # (done, total, what): header fetches of a repo


def check(ref: str, settings: Settings | None = None, hardware: HardwareOverrides | None = None, *,
          sweep: Sequence[int] = (), progress: Progress | None = None, nvml: Any = None,
          psutil_module: Any = None) -> Report | QuantReport:
    """A Report for one model, or a QuantReport for a repo of quants (`hf:org/repo`).

    `sweep`: further contexts to plan the same model at (settings.ctx is the first). `nvml` and
    `psutil_module` replace the probed libraries (tests fake the machine there)."""
    settings = settings or Settings()
    validate_settings(settings)
    from .sources.resolve import resolve
    from .sources.types import QuantSet

    target = resolve(ref, progress=progress)
    machine = probe(hardware or HardwareOverrides(), nvml=nvml, psutil_module=psutil_module)
    if isinstance(target, QuantSet):
        return compare_quants(target, settings, machine, sweep=sweep)
    return check_model(target, settings, machine, sweep=sweep)


def probe(overrides: HardwareOverrides, *, nvml: Any = None, psutil_module: Any = None) -> Hardware:
    """This machine, with the command line's --vram/--ram/--cpu-only/--rpc/--unified applied."""
    return apply_overrides(probe_hardware(nvml, psutil_module, gpus=overrides.probe_gpus), overrides)


def check_model(model: Model, settings: Settings, hardware: Hardware, *, sweep: Sequence[int] = ()) -> Report:
    """Estimate and plan one model; with `sweep`, the need and verdict at every further context too."""
    spec = model.spec
    needs = estimate(spec, settings)
    result = plan(spec, needs, settings, hardware, model.model_arg)
    rows: list[SweepRow] = []
    if sweep:
        rows.append(SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, result.verdict,
                             result.gpu_layers, result.n_cpu_moe))
        rows += [_sweep_row(model, replace(settings, ctx=ctx), hardware) for ctx in sweep]
    notes = _merge(spec.notes, needs.notes, hardware.notes, result.notes)
    return Report(spec=spec, settings=settings, needs=needs, hardware=hardware, plan=result, notes=notes,
                  sweep=tuple(rows))


def _sweep_row(model: Model, settings: Settings, hardware: Hardware) -> SweepRow:
    spec = model.spec
    needs = estimate(spec, settings)
    p = best_placement(spec, needs, settings, hardware)
    return SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, verdict_of(p), p.gpu_layers,
                    min(p.n_cpu_moe, spec.n_layer))


def compare_quants(quants: QuantSet, settings: Settings, hardware: Hardware, *,
                   sweep: Sequence[int] = ()) -> QuantReport:
    """Every quant planned under the same settings; `best` is the largest that fits fully on the GPU (in one
    repo a bigger quant of the same model is the higher-quality one), `fallback` the largest that runs."""
    rows = []
    for choice in quants.choices:
        report = check_model(choice.model, settings, hardware, sweep=sweep)
        size = choice.size_bytes if choice.size_bytes is not None else report.spec.file_size_bytes
        rows.append(QuantRow(choice.quant, choice.file, size, choice.estimate, report))
    rows.sort(key=lambda r: (r.size_bytes or 0, r.quant))
    on_gpu = [i for i, r in enumerate(rows) if r.report.plan.verdict is Verdict.GPU]
    runs = [i for i, r in enumerate(rows) if r.report.plan.verdict in (Verdict.OFFLOAD, Verdict.CPU)]
    best = on_gpu[-1] if on_gpu else None
    fallback = runs[-1] if runs and best is None else None
    first_needs = rows[0].report.needs.notes if rows else ()
    notes = _merge(tuple(quants.notes), hardware.notes, first_needs)
    return QuantReport(quants.ref, quants.kind, settings, hardware, tuple(rows), best, fallback, notes)


def fits(result: Report | QuantReport) -> bool:
    """Whether the answer meets --require: the model, or at least one quant of the repo."""
    require = result.settings.require
    if isinstance(result, QuantReport):
        return any(require.accepts(r.report.plan.verdict) for r in result.rows)
    return require.accepts(result.plan.verdict)


def _merge(*groups: Sequence[str]) -> tuple[str, ...]:
    """Notes in order, each once."""
    return tuple(dict.fromkeys(note for group in groups for note in group))
