"""fitcheck's CPU speed prediction against llama.cpp's own, measured on this machine (cpu_measured.json).

    python benchmarks/speed/compare_cpu.py     # fit the cpu coefficients, write CPU_AGREEMENT.md, refresh README

Each measured model's header (cpu_models.write_header: the same tensors as the measured file) is planned
through fitcheck with this machine as hardware: CPU only, the measurement's threads, and the RAM bandwidth
measured in the same run (multi-threaded, read-dominated: what fitcheck's own probe measures). The cpu backend's
decode coefficients (e_bw, κ, τ) are fitted on the real and materialized runs; the band is the largest error
when each model is left out of the fit (so every measured model falls inside its range), at most ±30%.
Sparse runs are predicted with the same coefficients and shown apart.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cpu_models  # noqa: E402
import fit_speed  # noqa: E402

from fitcheck import speed  # noqa: E402
from fitcheck.check import check_model  # noqa: E402
from fitcheck.model import GiB, Hardware, HardwareSource, Settings  # noqa: E402
from fitcheck.sources.gguf import load_local  # noqa: E402
from fitcheck.sources.types import Model  # noqa: E402

MEASURED = HERE / "cpu_measured.json"
OUT = HERE / "CPU_AGREEMENT.md"


def rows() -> tuple[list[fit_speed.Row], dict, list[dict]]:
    data = json.loads(MEASURED.read_text())
    bandwidth = data["memory_bandwidth"]["sum_2t_GBps"]
    threads = data["settings"]["threads"]
    out, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in data["runs"]:
            path = Path(tmp) / f"{run['model']}.gguf"
            if not path.exists():
                cpu_models.write_header(run["model"], path)
            spec = load_local(str(path))
            hw = Hardware(HardwareSource.OVERRIDE, (), 20 * GiB, 20 * GiB, ram_bandwidth_gbps=bandwidth,
                          cpu_threads=threads)
            n_prompt, n_gen = data["settings"]["n_prompt"], data["settings"]["n_gen"]
            report = check_model(Model(spec, ["-m", "x.gguf"]), Settings(ctx=256, margin_bytes=0), hw)
            cpu = report.plan.devices[-1]
            per_byte = spec.parameters / spec.weights_bytes
            gflops = threads * speed.NOMINAL_CORE_GFLOPS
            terms = [speed.decode_terms(cpu, report.needs, per_byte, n_gen // 2, bandwidth, gflops / 1000)]
            prompt = (2 * cpu.read_bytes_per_token * per_byte, gflops / 1000)
            results = run["results"]
            out.append(fit_speed.Row(run["model"], run["model"], "cpu", f"{run['model']} ({run['variant']})",
                                     results[f"tg{n_gen}"]["avg_ts"], results[f"pp{n_prompt}"]["avg_ts"], terms,
                                     prompt, "cpu_measured.json"))
            runs.append(run)
    return out, data, runs


def main() -> None:
    all_rows, data, runs = rows()
    fit_rows = [r for r, run in zip(all_rows, runs, strict=True) if run["variant"] != "sparse"]
    c = fit_speed.fit_decode(fit_rows)
    loo_errors = [abs(r.tg / fit_speed.predict(r, fit_speed._loo(fit_rows, r)) - 1) for r in fit_rows]
    width = min(fit_speed.MAX_BAND, max(loo_errors) + 0.01)
    e_pp = fit_speed.fit_prompt(fit_rows)
    pp_errors = [abs(r.pp / fit_speed.predict_prompt(r, e_pp) - 1) for r in fit_rows] if e_pp else []
    pp_width = min(fit_speed.MAX_PROMPT_BAND, max(pp_errors) + 0.01) if pp_errors else None
    table_path = fit_speed.OUT
    table = yaml.safe_load(table_path.read_text())
    table["backends"]["cpu"] = {"bandwidth_efficiency": round(c.bandwidth_efficiency, 4),
                                "compute_per_weight": round(c.compute_per_weight, 3),
                                "per_layer_s": float(f"{c.per_layer_s:.3g}"),
                                "prompt_efficiency": round(e_pp, 4) if e_pp else None,
                                "rows": len(fit_rows), "band": round(width, 3),
                                "prompt_band": round(pp_width, 3) if pp_width else None}
    header = "".join(line + "\n" for line in table_path.read_text().splitlines() if line.startswith("#"))
    table_path.write_text(header + yaml.safe_dump(table, sort_keys=False))
    speed._table.cache_clear()

    cpu = speed.coefficients("cpu")
    m = data["machine"]
    lines = [
        "# fitcheck's CPU prediction against llama.cpp on this machine", "",
        f"On this machine ({m['cpu_model']}, {m['logical_cpus']} cores, {m['ram_bytes'] / GiB:.0f} GiB, "
        f"llama.cpp {data['llama_cpp_commit']} llama-bench, -t {data['settings']['threads']}, "
        f"RAM {data['memory_bandwidth']['sum_2t_GBps']} GB/s measured in the same run), tg{data['settings']['n_gen']} "
        f"and pp{data['settings']['n_prompt']}; cpu coefficients fitted on the real and materialized runs, band "
        f"±{width:.0%} (the worst error with each model left out of the fit):", "",
        "| model | arch | file type | GiB | weights | measured tg (± sd) | predicted tg | inside | "
        "left out of the fit | measured pp | predicted pp |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r, run in zip(all_rows, runs, strict=True):
        mid = fit_speed.predict(r, cpu)
        loo = fit_speed.predict(r, fit_speed._loo(fit_rows, r)) if run["variant"] != "sparse" else mid
        tg = run["results"][f"tg{data['settings']['n_gen']}"]
        pp_mid = fit_speed.predict_prompt(r, e_pp) if e_pp else None
        lines.append(
            f"| {run['model']} | {run['arch']} | {run['file_type']} | {run['tensor_bytes'] / GiB:.2f} | "
            f"{run['variant']} | {tg['avg_ts']:.2f} ± {tg['stddev_ts']:.2f} | {mid * (1 - width):.2f}–"
            f"{mid * (1 + width):.2f} | {'yes' if fit_speed.inside(r.tg, mid, width) else 'NO'} | "
            f"{'yes' if fit_speed.inside(r.tg, loo, width) else 'NO'} | {r.pp:.1f} | "
            f"{f'{pp_mid:.1f}' if pp_mid else '-'} |")
    lines += ["", f"Coefficients: e_bw {cpu.bandwidth_efficiency:.3f}, κ {cpu.compute_per_weight:.3f} per weight "
              f"at {speed.NOMINAL_CORE_GFLOPS:g} GFLOP/s per core, τ {cpu.per_layer_s * 1e6:.1f} µs per layer; "
              f"prompt e_pp {e_pp or 0:.3f}, band ±{pp_width or 0:.0%}."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fit_speed.main(["--check"])  # refresh AGREEMENT.md and the README's table with the new cpu entry


if __name__ == "__main__":
    main()
