"""The application layer: the one path from a model reference to a Report, and fitcheck's library API.

    from fitcheck import check, Settings
    report = check("model.gguf", Settings(ctx=32768))

Order matters: settings and the machine (probed, or named with --gpu) are checked before any model is read,
so a bad cache type or an unknown GPU costs no Hub request (the `fitcheck` command itself starts a remote
reference's reads before it parses its options, sources/prefetch.py: there a refused option may cost the
listing already on its way, never a wait for it); then the reference is resolved to one model or a
set of quants, and the pure core estimates and plans. A context sweep re-plans the same model at every
further context; a repo of quants is planned once per quant. Renderers format what this returns; they never compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import archs
from .errors import InputError, UsageError
from .estimate import estimate, resolve_flash_attn, validate_settings
from .extras import Attachments, LoadedAttachments, read_side_file
from .model import (
    Hardware,
    HardwareComparison,
    HardwareOption,
    ModelSpec,
    QuantReport,
    QuantRow,
    Report,
    Require,
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
    from .sources.stores.ollama_defaults import Run as OllamaRun
    from .sources.types import QuantSet

Progress = Callable[[int, int, str], None]  # (done, total, what): header fetches of a repo


MeasureRam = Callable[[], "tuple[float, str] | None"]  # () -> (GB/s, how it was found), None: unknown


def check(ref: str, settings: Settings | None = None, hardware: HardwareOverrides | None = None, *,
          sweep: Sequence[int] = (), progress: Progress | None = None, nvml: Any = None,
          psutil_module: Any = None, measure_ram: MeasureRam | None = None,
          attachments: Attachments | None = None, detect_llama_build: bool = False,
          exact: bool = False, given: frozenset[str] | None = None) -> Report | QuantReport:
    """A Report for one model, or a QuantReport for a repo of quants (`hf:org/repo`).

    `sweep`: further contexts to plan the same model at (settings.ctx is the first). `nvml` and
    `psutil_module` replace the probed libraries (tests fake the machine there). `measure_ram` measures
    the RAM bandwidth when a plan reads weights from RAM and none is known (default: a short, cached
    measurement of this machine). `attachments`: the --mmproj, -md and --lora files of the command line.
    `detect_llama_build`: without a build in the settings, use the `llama-server --version` on PATH.
    `exact`: also ask llama.cpp itself for the same model and plan (Report.exact; fitcheck.exact).
    `given`: the Settings fields the user set (cli.GIVEN_OPTIONS), which Ollama's defaults never replace; None:
    a field equal to llama.cpp's default counts as not given."""
    settings = settings or Settings()
    overrides = hardware or HardwareOverrides()
    validate(settings, overrides)
    if exact:
        _exact_ref(ref)
    if detect_llama_build and settings.llama_cpp_build is None:
        from .probe.llama_build import with_detected_build

        settings = with_detected_build(settings)
    from .sources.types import QuantSet

    machine = probe(overrides, nvml=nvml, psutil_module=psutil_module)  # --gpu checked here
    validate_machine(settings, overrides, machine)
    loaded = load_attachments(attachments)
    if not machine.gpus and machine.ram_bandwidth_gbps is None:  # CPU only: every plan reads RAM
        # before the model is read: a remote header is still arriving (sources/prefetch.py)
        measured = (measure_ram or _measure_ram)()
        if measured is not None:
            machine = replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
    target = _resolve(ref, progress)
    if exact and isinstance(target, QuantSet):
        _exact_ref(ref, len(target.choices))
    ollama = None
    if ref.startswith("ollama:") and isinstance(target, Model):
        ollama, settings, loaded = _ollama(target, settings, machine, attachments, loaded, given)

    def run(hw: Hardware) -> Report | QuantReport:
        if isinstance(target, QuantSet):
            return compare_quants(target, settings, hw, sweep=sweep, attachments=loaded)
        return check_model(target, settings, hw, sweep=sweep, attachments=loaded)

    result = run(machine)
    if machine.ram_bandwidth_gbps is None and _reads_ram(result):
        measured = (measure_ram or _measure_ram)()
        if measured is not None:
            hw = replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
            result = _with_hardware(result, hw)
    if ollama is not None and isinstance(result, Report):
        result = ollama.finish(result)
    if exact and isinstance(result, Report) and isinstance(target, Model):
        from .exact import run_exact

        result = replace(result, exact=run_exact(target, result))
    return result


def _exact_ref(ref: str, choices: int | None = None) -> None:
    """--exact asks llama.cpp about one file: a repo of quants is refused before any header is read."""
    if choices is None and ref.startswith("hf:"):
        from .sources.hub_listing import parse_ref

        hub = parse_ref(ref[3:])
        if hub.tag or hub.path:
            return
    elif choices is None:
        return
    raise UsageError(f"--exact asks llama.cpp about one model file, and {ref} names a repository"
                     + (f" of {choices} models" if choices else ""),
                     hint="pick a quant: hf:org/repo:Q4_K_M (the quant table's recommendation is a good start)")


def _ollama(target: Model, settings: Settings, machine: Hardware, attachments: Attachments | None,
            loaded: LoadedAttachments | None,
            given: frozenset[str] | None = None) -> tuple[OllamaRun | None, Settings, LoadedAttachments | None]:
    """Ollama's own defaults where the options left llama.cpp's, and its projector layer as --mmproj (Ollama
    passes it to llama-server)."""
    import os

    from .sources.stores import ollama_defaults
    from .sources.stores.ollama import OllamaTarget

    if not isinstance(target, OllamaTarget) or target.ollama is None:
        return None, settings, loaded
    run = ollama_defaults.start(target.ollama, target.spec.n_ctx_train, settings, machine, os.environ, given)
    projectors = target.ollama.projectors
    if projectors and not (attachments and attachments.mmproj):
        loaded = load_attachments(replace(attachments or Attachments(), mmproj=projectors[0]))
    return run, run.settings, loaded


def validate(settings: Settings, overrides: HardwareOverrides) -> None:
    """What can be refused before any machine or model is read."""
    validate_settings(replace(settings, ctx=None) if settings.ctx == 0 else settings)  # 0: the training context
    if overrides.cpu_only and overrides.vram is not None:
        raise UsageError("--cpu-only and --vram contradict each other: pick one",
                         hint="--cpu-only plans for RAM alone; --vram SIZE plans for a GPU of that size")
    if overrides.cpu_only and settings.gpu_layers:
        raise UsageError(f"--cpu-only and -ngl {settings.gpu_layers} contradict each other: pick one",
                         hint="--cpu-only plans -ngl 0")
    if settings.split_mode not in ("layer", "row", "none"):
        raise UsageError(f"bad -sm value {settings.split_mode!r}", hint="layer, row or none")
    if settings.main_gpu < 0:
        raise UsageError("-mg must be a GPU index (0, 1, ...)")


def validate_machine(settings: Settings, overrides: HardwareOverrides, machine: Hardware) -> None:
    """What can be refused once the machine is known: options that do not match its devices."""
    from .placement import targets

    if overrides.gpu_share is not None and not machine.unified_memory and overrides.gpu is None:
        raise UsageError("--gpu-share applies to unified memory only",
                         hint="add --unified (with --ram) to plan for an Apple Silicon-style machine")
    accelerators = len(targets(machine, settings)) - 1  # --device, -sm none and -mg are checked here too
    if settings.tensor_split and len(settings.tensor_split) != accelerators:
        raise UsageError(f"-ts has {len(settings.tensor_split)} shares but the plan has {accelerators} "
                         f"accelerator{'s' if accelerators != 1 else ''}",
                         hint="one share per GPU (RPC servers first), e.g. -ts 3,1 for two")


def load_attachments(attachments: Attachments | None) -> LoadedAttachments | None:
    """Read the headers of --mmproj, -md and --lora once (before any model is planned)."""
    if not attachments:
        return None
    from .sources.resolve import load_model

    draft = load_model(attachments.draft.ref).spec if attachments.draft is not None else None
    return LoadedAttachments(attachments, read_side_file(attachments.mmproj) if attachments.mmproj else None,
                             draft, tuple(read_side_file(path) for path in attachments.loras))


def _resolve(ref: str, progress: Progress | None) -> Model | QuantSet:
    """The reference, with a clear answer when a projector or an adapter is passed as the model."""
    from .sources.resolve import resolve

    try:
        return resolve(ref, progress=progress)
    except InputError:
        if ref.startswith(("hf:", "http://", "https://")):
            raise
        try:
            kind = read_side_file(ref).kind
        except Exception:  # not readable either: the first error says why
            kind = None
        if kind == "mmproj":
            raise InputError(f"{ref}: a multimodal projector (mmproj), not a model",
                             hint=f"pass the model and add --mmproj {ref}") from None
        if kind == "lora":
            raise InputError(f"{ref}: a LoRA adapter, not a model",
                             hint=f"pass the base model and add --lora {ref}") from None
        raise


def _model_arg(model_arg: list[str]) -> list[str]:
    """llama.cpp loads a split model from its first shard only (it refuses a later one): name that one."""
    from pathlib import Path

    from .sources.gguf import split_names

    if len(model_arg) == 2 and model_arg[0] == "-m":
        path = Path(model_arg[1])
        names = split_names(path.name)
        if names and names[0] != path.name:
            return ["-m", str(path.with_name(names[0]))]
    return model_arg


DEFAULT_DRAFT_MAX = 3  # --spec-draft-n-max's default (common/common.h): llama-server reserves 1 + 3 outputs a slot


def _for_model(spec: ModelSpec, settings: Settings, attachments: LoadedAttachments | None,
               hardware: Hardware) -> tuple[Settings, tuple[str, ...]]:
    """Settings as llama.cpp resolves them for this model: -c 0 is the training context, -ub at most -b
    (llama-context.cpp: n_ubatch = min(n_batch, n_ubatch)), and the extras at this context."""
    notes: list[str] = []
    accel = [g for g in hardware.gpus if not g.remote]
    if accel and settings.backend is None:
        # the accelerators' backend decides how compute buffers split (CUDA/ROCm: device + CUDA_Host)
        settings = replace(settings, backend=accel[0].backend or ("metal" if hardware.unified_memory else "cuda"))
    if settings.ctx == 0:
        settings = replace(settings, ctx=spec.n_ctx_train or None)
        notes.append(f"-c 0: the training context, {spec.n_ctx_train:,} tokens")
    if settings.ubatch > settings.batch:
        notes.append(f"-ub {settings.ubatch} is larger than -b {settings.batch}: llama.cpp uses -ub {settings.batch}")
        settings = replace(settings, ubatch=settings.batch)
    if attachments is not None:
        from .context import resolve_context

        main_ctx = resolve_context(spec, settings).n_ctx
        flash_attn, _ = resolve_flash_attn(spec, settings)
        offload = bool(hardware.gpus)
        extras = attachments.extras(spec, settings, main_ctx, flash_attn, offload)
        settings = replace(settings, extras=extras)
        if any(e.kind == "draft" for e in extras) and not settings.n_draft:
            settings = replace(settings, n_draft=DEFAULT_DRAFT_MAX)
        for extra in extras:
            notes += extra.notes
    return settings, tuple(notes)


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
                     measure_ram: MeasureRam | None = None,
                     attachments: Attachments | None = None) -> HardwareComparison:
    """One model planned on each what-if machine (one `--gpu` option each), read once."""
    settings = settings or Settings()
    for _, o in options:
        validate(settings, o)
    machines = [(label, probe(o, nvml=nvml, psutil_module=psutil_module)) for label, o in options]
    for (_, hw), (_, o) in zip(machines, options, strict=True):
        validate_machine(settings, o, hw)
    from .sources.types import QuantSet

    loaded = load_attachments(attachments)
    target = _resolve(ref, progress)
    if isinstance(target, QuantSet):
        raise UsageError(f"{ref}: a repository of {len(target.choices)} models; compare hardware for one",
                         hint="name one quant: hf:org/repo:Q4_K_M")
    rows = []
    for label, hw in machines:
        report = check_model(target, settings, hw, attachments=loaded)
        measured = (measure_ram or _measure_ram)() if hw.ram_bandwidth_gbps is None and _reads_ram(report) else None
        if measured is not None:
            hw = replace(hw, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])
            report = check_model(target, settings, hw, attachments=loaded)
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


def check_model(model: Model, settings: Settings, hardware: Hardware, *, sweep: Sequence[int] = (),
                attachments: LoadedAttachments | None = None, brief: bool = False) -> Report:
    """Estimate and plan one model; with `sweep`, the need and verdict at every further context too;
    `brief`: what a scan row shows only (plan.plan's brief)."""
    spec = model.spec
    settings, setting_notes = _for_model(spec, settings, attachments, hardware)
    model = Model(spec, _model_arg(model.model_arg))
    needs = estimate(spec, settings)
    result = plan(spec, needs, settings, hardware, model.model_arg, brief=brief)
    speed, speed_notes = estimate_speed(spec, needs, result, hardware)
    rows: list[SweepRow] = []
    if sweep:
        rows.append(SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, result.verdict,
                             result.gpu_layers, result.n_cpu_moe,
                             speed.decode_full_context_tokens_per_s if speed else None))
        rows += [_sweep_row(model, replace(settings, ctx=ctx or spec.n_ctx_train or None), hardware)
                 for ctx in sweep]
        if settings.extras:
            setting_notes += ("the sweep keeps the extras (--mmproj, -md, --lora) as sized at the first context",)
    known = archs.known_to_llama_cpp(spec.architecture)
    arch_notes: tuple[str, ...] = ()
    if not known:
        arch_notes = (f"architecture '{spec.architecture}' is not one llama.cpp knows (src/llama-arch.cpp): it "
                      "refuses to load the file, and every figure here is a guess from the generic transformer rule",)
    notes = _merge(arch_notes, setting_notes, spec.notes, needs.notes, hardware.notes, result.notes, speed_notes)
    return Report(spec=spec, settings=settings, needs=needs, hardware=hardware, plan=result, notes=notes,
                  sweep=tuple(rows), speed=speed, known_architecture=known)


def _sweep_row(model: Model, settings: Settings, hardware: Hardware) -> SweepRow:
    spec = model.spec
    needs = estimate(spec, settings)
    result = plan(spec, needs, settings, hardware, model.model_arg, limits=False)
    speed, _ = estimate_speed(spec, needs, result, hardware)
    return SweepRow(needs.ctx, needs.kv_cache_bytes, needs.total_bytes, result.verdict, result.gpu_layers,
                    result.n_cpu_moe, speed.decode_full_context_tokens_per_s if speed else None)


def compare_quants(quants: QuantSet, settings: Settings, hardware: Hardware, *,
                   sweep: Sequence[int] = (), attachments: LoadedAttachments | None = None) -> QuantReport:
    """Every quant planned under the same settings; `best` is the best quality that fits fully on the GPU,
    `fallback` (without a best) the best quality that runs. Quality is the file type's published loss
    (fitcheck.quality: tier, then lower KLD), then size: the largest is not always the best (Q4_0 is larger
    than IQ4_XS and measures worse). A note says so when only a Q3/Q2-class quant fits."""
    from .quality import bits_per_weight, quality_of, rank_key

    rows = []
    for choice in quants.choices:
        report = check_model(choice.model, settings, hardware, sweep=sweep, attachments=attachments)
        size = choice.size_bytes if choice.size_bytes is not None else report.spec.file_size_bytes
        rows.append(QuantRow(choice.quant, choice.file, size, choice.estimate, report,
                             bits_per_weight(report.spec), quality_of(report.spec.file_type, choice.quant)))
    rows.sort(key=lambda r: (r.size_bytes or 0, r.quant))

    def pick(verdicts: tuple[Verdict, ...]) -> int | None:
        found = [i for i, r in enumerate(rows) if r.report.plan.verdict in verdicts]
        return max(found, key=lambda i: (rank_key(rows[i].quality, rows[i].size_bytes), i)) if found else None

    best = pick((Verdict.GPU,))
    fallback = pick((Verdict.OFFLOAD, Verdict.CPU)) if best is None else None
    first_needs = rows[0].report.needs.notes if rows else ()
    notes = _merge(tuple(quants.notes), hardware.notes, first_needs, _low_quality_notes(rows, best, fallback))
    return QuantReport(quants.ref, quants.kind, settings, hardware, tuple(rows), best, fallback, notes)


def _low_quality_notes(rows: Sequence[QuantRow], best: int | None, fallback: int | None) -> tuple[str, ...]:
    """'Avoid Q2/Q3' where the pick is of a low tier: with its measured loss next to Q4_K_M's."""
    from .quality import quality_of

    chosen = best if best is not None else fallback
    q = rows[chosen].quality if chosen is not None else None
    if chosen is None or q is None or not q.low:
        return ()
    where = "fully on the GPU" if best is not None else "on this machine"
    ref = quality_of("Q4_K_M")
    measured = (f" (mean KLD {q.kld:.3f} on {q.measured_on}, {q.kld / ref.kld:.1f}x Q4_K_M's {ref.kld:.3f})"
                if q.kld is not None and ref is not None and ref.kld else "")
    return (f"only a low-quality quant fits {where}: {rows[chosen].quant} is '{q.tier}'{measured}; avoid Q2/Q3 "
            "where you can: more memory, a shorter context (-c) or a smaller model at Q4_K_M or better",)


def fits(result: Report | QuantReport | HardwareComparison) -> bool:
    """Whether the answer meets --require: the model, at least one quant of the repo, or on at least one of
    the compared machines. With a context sweep, at every context of it (so the order of the list does not
    matter). A model of an architecture fitcheck does not know never passes: its figures are a guess."""
    require = result.settings.require
    if isinstance(result, QuantReport):
        return any(report_fits(r.report, require) for r in result.rows)
    if isinstance(result, HardwareComparison):
        return any(report_fits(o.report, require) for o in result.options)
    return report_fits(result, require)


def report_fits(report: Report, require: Require) -> bool:
    if not report.known_architecture:
        return False
    verdicts = [row.verdict for row in report.sweep] or [report.plan.verdict]
    return all(require.accepts(v) for v in verdicts)


def _merge(*groups: Sequence[str]) -> tuple[str, ...]:
    """Notes in order, each once."""
    return tuple(dict.fromkeys(note for group in groups for note in group))
