"""The application layer: the one path from a model reference to a Report, and fitcheck's library API.

    from fitcheck import check, Settings
    report = check("model.gguf", Settings(ctx=32768))

Order matters: settings and the machine (probed, or named with --gpu) are checked before any model is read,
so a bad cache type or an unknown GPU costs no Hub request; then the reference is resolved to one model or a
set of quants, and the pure core estimates and plans. A context sweep re-plans the same model at every
further context; a repo of quants is planned once per quant. Renderers format what this returns; they never compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .estimate import estimate, validate_settings
from .model import (
    Hardware,
    HardwareComparison,
    HardwareOption,
    QuantReport,
    QuantRow,
    Report,
    Settings,
    SweepRow,
    Verdict,
)
from .plan import plan
from .probe.overrides import HardwareOverrides, apply_overrides
from .probe.system import probe_hardware
from .sources.types import Model
from .speed import estimate_speed

if TYPE_CHECKING:
    from .sources.types import QuantSet

Progress = Callable[[int, int, str], None]  # (done, total, what): header fetches of a repo


MeasureRam = Callable[[], "tuple[float, str] | None"]  # () -> (GB/s, how it was found), None: unknown


def check(ref: str, settings: Settings | None = None, hardware: HardwareOverrides | None = None, *,
          sweep: Sequence[int] = (), progress: Progress | None = None, nvml: Any = None,
          psutil_module: Any = None, measure_ram: MeasureRam | None = None) -> Report | QuantReport:
    """A Report for one model, or a QuantReport for a repo of quants (`hf:org/repo`).

    `sweep`: further contexts to plan the same model at (settings.ctx is the first). `nvml` and
    `psutil_module` replace the probed libraries (tests fake the machine there). `measure_ram` measures
    the RAM bandwidth when a plan reads weights from RAM and none is known (default: a short, cached
    measurement of this machine)."""
    settings = settings or Settings()
    validate_settings(settings)
    from .sources.resolve import resolve
    from .sources.types import QuantSet

    machine = probe(hardware or HardwareOverrides(), nvml=nvml, psutil_module=psutil_module)  # --gpu checked here
    target = resolve(ref, progress=progress)

    def run(hw: Hardware) -> Report | QuantReport:
        if isinstance(target, QuantSet):
            return compare_quants(target, settings, hw, sweep=sweep)
        return check_model(target, settings, hw, sweep=sweep)

    if not machine.gpus and machine.ram_bandwidth_gbps is None:  # CPU only: every plan reads RAM
        measured = (measure_ram or _measure_ram)()
        if measured is not None:
            machine = replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
    result = run(machine)
    if machine.ram_bandwidth_gbps is None and _reads_ram(result):
        measured = (measure_ram or _measure_ram)()
        if measured is not None:
            hw = replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
            result = _with_hardware(result, hw)
    return result


def _with_hardware(result: Report | QuantReport, hw: Hardware) -> Report | QuantReport:
    """The same plans on hardware that differs only in what speed reads (the RAM bandwidth): speed again,
    nothing else (the placement does not depend on bandwidth)."""
    if isinstance(result, QuantReport):
        rows = tuple(replace(r, report=_respeed(r.report, hw)) for r in result.rows)
        return replace(result, rows=rows, hardware=hw)
    return _respeed(result, hw)


def _respeed(report: Report, hw: Hardware) -> Report:
    old = report.speed.notes if report.speed else ()
    old_notes = set(old) | {n for n in report.notes if n.startswith("no speed:")}
    speed, speed_notes = estimate_speed(report.spec, report.needs, report.plan, hw)
    notes = _merge(tuple(n for n in report.notes if n not in old_notes), speed_notes)
    model = Model(report.spec, [])
    sweep = tuple(replace(row, decode_tokens_per_s=_sweep_row(model, replace(report.settings, ctx=row.ctx),
                                                              hw).decode_tokens_per_s) for row in report.sweep)
    return replace(report, hardware=hw, speed=speed, notes=notes, sweep=sweep)


def compare_hardware(ref: str, settings: Settings, options: Sequence[tuple[str, HardwareOverrides]], *,
                     progress: Progress | None = None, nvml: Any = None, psutil_module: Any = None,
                     measure_ram: MeasureRam | None = None) -> HardwareComparison:
    """One model planned on each what-if machine (one `--gpu` option each), read once."""
    settings = settings or Settings()
    validate_settings(settings)
    machines = [(label, probe(o, nvml=nvml, psutil_module=psutil_module)) for label, o in options]
    from .sources.resolve import resolve
    from .sources.types import QuantSet

    target = resolve(ref, progress=progress)
    if isinstance(target, QuantSet):
        from .errors import UsageError

        raise UsageError(f"{ref}: a repository of {len(target.choices)} models; compare hardware for one",
                         hint="name one quant: hf:org/repo:Q4_K_M")
    rows = []
    for label, hw in machines:
        report = check_model(target, settings, hw)
        measured = (measure_ram or _measure_ram)() if hw.ram_bandwidth_gbps is None and _reads_ram(report) else None
        if measured is not None:
            hw = replace(hw, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
            report = check_model(target, settings, hw)
        rows.append(HardwareOption(label, report))
    notes = _merge(*(r.report.spec.notes for r in rows[:1]), *(r.report.needs.notes for r in rows[:1]))
    return HardwareComparison(ref, settings, tuple(rows), notes)


def _reads_ram(result: Report | QuantReport) -> bool:
    """Whether some plan streams weights from RAM for every token (so its speed needs the RAM bandwidth)."""
    reports = [r.report for r in result.rows] if isinstance(result, QuantReport) else [result]
    return any(d.gpu_index is None and d.read_bytes_per_token > 0
               for r in reports if r.plan.verdict is not Verdict.NONE for d in r.plan.devices)


def _measure_ram() -> tuple[float, str] | None:
    """This machine's RAM bandwidth, measured once (≤ 0.3 s) and cached; None when it cannot be measured."""
    from .probe.membw import cached_ram_bandwidth

    try:
        return cached_ram_bandwidth()
    except Exception:  # no numpy threads, no memory to spare: the speed line says the bandwidth is unknown
        return None


def probe(overrides: HardwareOverrides, *, nvml: Any = None, psutil_module: Any = None) -> Hardware:
    """This machine, with the command line's --vram/--ram/--cpu-only/--rpc/--unified applied."""
    return apply_overrides(probe_hardware(nvml, psutil_module, gpus=overrides.probe_gpus), overrides)


def check_model(model: Model, settings: Settings, hardware: Hardware, *, sweep: Sequence[int] = ()) -> Report:
    """Estimate and plan one model; with `sweep`, the need and verdict at every further context too."""
    spec = model.spec
    needs = estimate(spec, settings)
    result = plan(spec, needs, settings, hardware, model.model_arg)
    speed, speed_notes = estimate_speed(spec, needs, result, hardware)
    rows: list[SweepRow] = []
    if sweep:
        rows.append(SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, result.verdict,
                             result.gpu_layers, result.n_cpu_moe,
                             speed.decode_full_context_tokens_per_s if speed else None))
        rows += [_sweep_row(model, replace(settings, ctx=ctx), hardware) for ctx in sweep]
    notes = _merge(spec.notes, needs.notes, hardware.notes, result.notes, speed_notes)
    return Report(spec=spec, settings=settings, needs=needs, hardware=hardware, plan=result, notes=notes,
                  sweep=tuple(rows), speed=speed)


def _sweep_row(model: Model, settings: Settings, hardware: Hardware) -> SweepRow:
    spec = model.spec
    needs = estimate(spec, settings)
    result = plan(spec, needs, settings, hardware, model.model_arg, limits=False)
    speed, _ = estimate_speed(spec, needs, result, hardware)
    return SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, result.verdict, result.gpu_layers,
                    result.n_cpu_moe, speed.decode_full_context_tokens_per_s if speed else None)


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


def fits(result: Report | QuantReport | HardwareComparison) -> bool:
    """Whether the answer meets --require: the model, at least one quant of the repo, or on at least one of
    the compared machines."""
    require = result.settings.require
    if isinstance(result, QuantReport):
        return any(require.accepts(r.report.plan.verdict) for r in result.rows)
    if isinstance(result, HardwareComparison):
        return any(require.accepts(o.report.plan.verdict) for o in result.options)
    return require.accepts(result.plan.verdict)


def _merge(*groups: Sequence[str]) -> tuple[str, ...]:
    """Notes in order, each once."""
    return tuple(dict.fromkeys(note for group in groups for note in group))
