"""Fit the speed model to published llama-bench results and this machine's CPU measurements; check the fit.

    python benchmarks/speed/fit_speed.py            # fit -> data/speed_model.yaml, then write AGREEMENT.md
    python benchmarks/speed/fit_speed.py --check    # only check the committed coefficients (AGREEMENT.md)

Every usable row of published.yaml (a device in data/hardware.yaml, a model whose shape published_models.py
rebuilds to within 2% of the published size, a full-GPU run) is planned through fitcheck itself (check_model
with the device as hardware, llama-bench's context = prompt + generated tokens). Per backend the decode
coefficients (e_bw, κ, τ of fitcheck.speed) minimise the squared relative error of tg, non-negative; the band
is the smallest that holds ≥ 90% of the rows, never wider than ±30%. A leave-one-device-out pass refits
without each device and checks that device's rows, so the table also says how the model does on hardware it
was not fitted on.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import published_models  # noqa: E402

from fitcheck import speed  # noqa: E402
from fitcheck.check import check_model  # noqa: E402
from fitcheck.model import GiB, Hardware, HardwareSource, Settings, Verdict  # noqa: E402
from fitcheck.probe import catalog  # noqa: E402
from fitcheck.sources.types import Model  # noqa: E402

OUT = HERE.parents[1] / "data" / "speed_model.yaml"
AGREEMENT = HERE / "AGREEMENT.md"
MAX_BAND = 0.30
MAX_PROMPT_BAND = 0.50  # prompt processing depends on kernels the model does not see (MMQ, flash attention)
COVERAGE = 0.90


@dataclass
class Row:
    device: str
    table_name: str
    backend: str
    model: str
    tg: float
    pp: float | None
    terms: list[speed.DecodeTerms]
    prompt: tuple | None  # (flops, fp16 TFLOPS) for the one GPU
    source: str


def _device(row: dict) -> catalog.DeviceSpec | None:
    name = row["device"].split(",")[0]
    if row.get("gpu_cores"):
        try:
            return catalog.resolve(f"{name} ({row['gpu_cores']}-core GPU)").device
        except Exception:
            return None
    return catalog.find(name)


def usable_rows() -> tuple[list[Row], list[tuple[str, str]]]:
    data = yaml.safe_load((HERE / "published.yaml").read_text())
    rows, skipped = [], []
    for r in data["rows"]:
        why = None
        spec = published_models.model(r["model"])
        dev = _device(r)
        if r["backend"] == "CPU" or r.get("n_cpu_moe") or (r.get("gpu_count") or 1) != 1:
            why = "not a one-GPU full-offload run"
        elif spec is None:
            why = "model shape not rebuilt"
        elif abs(spec.weights_bytes / GiB / r["model_size_gib"] - 1) > 0.02:
            why = f"rebuilt size {spec.weights_bytes / GiB:.2f} GiB vs published {r['model_size_gib']}"
        elif dev is None:
            why = "device not in data/hardware.yaml"
        elif not r.get("tg_tokens_per_s"):
            why = "no tg figure"
        if why:
            skipped.append((f"{r['device']} · {r['backend']} · {r['model']}", why))
            continue
        backend = r["backend"].lower()
        gpus = catalog.Selection(dev, 1, max(dev.memory_gib), None).gpus()
        gpus = tuple(replace(g, backend=backend) for g in gpus)
        hw = Hardware(HardwareSource.OVERRIDE, gpus, 512 * GiB, 512 * GiB, unified_memory=dev.unified,
                      ram_bandwidth_gbps=dev.bandwidth_gbps if dev.unified else 50.0)
        ctx = (r.get("test_pp") or 0) + (r.get("test_tg") or 0)
        settings = Settings(ctx=max(256, ctx), gpu_layers=10**6, gpu_reserve_bytes=0, margin_bytes=0)
        report = check_model(Model(spec, ["-m", "x.gguf"]), settings, hw)
        if report.plan.verdict is not Verdict.GPU:
            skipped.append((f"{r['device']} · {r['backend']} · {r['model']}", "does not fit on the GPU"))
            continue
        needs, plan = report.needs, report.plan
        per_byte = spec.parameters / spec.weights_bytes
        depth = (r.get("test_tg") or 128) // 2
        terms = [speed.decode_terms(d, needs, per_byte, depth, gpus[0].bandwidth_gbps or 1, gpus[0].fp32_tflops)
                 for d in plan.devices if d.gpu_index is not None]
        gpu_use = next(d for d in plan.devices if d.gpu_index is not None)
        prompt = (2 * gpu_use.read_bytes_per_token * per_byte, dev.fp16_tflops) if r.get("pp_tokens_per_s") else None
        rows.append(Row(r["device"], dev.name, backend, r["model"], float(r["tg_tokens_per_s"]),
                        r.get("pp_tokens_per_s"), terms, prompt, r["source"]))
    return rows, skipped


def predict(row: Row, c: speed.Coefficients) -> float:
    total = sum(speed.seconds(t, c) or math.inf for t in row.terms)
    return 1 / total


def _nnls(a: list[list[float]], b: list[float]) -> list[float]:
    """Least squares with non-negative coefficients (few unknowns: try every subset)."""
    import itertools

    import numpy as np

    A, y = np.array(a), np.array(b)
    best, best_err = [0.0] * A.shape[1], math.inf
    for k in range(1, A.shape[1] + 1):
        for cols in itertools.combinations(range(A.shape[1]), k):
            sol, *_ = np.linalg.lstsq(A[:, cols], y, rcond=None)
            if (sol < 0).any():
                continue
            x = [0.0] * A.shape[1]
            for c, v in zip(cols, sol, strict=True):
                x[c] = float(v)
            err = float(((A @ np.array(x)) - y) @ ((A @ np.array(x)) - y))
            if err < best_err:
                best, best_err = x, err
    return best


def fit_decode(rows: list[Row]) -> speed.Coefficients:
    """t_obs ≈ memory/e + κ·compute + τ·layers with e ≤ 1 and κ, τ ≥ 0, in relative error.

    Written as t_obs - memory = (1/e - 1)·memory + κ·compute + τ·layers so that non-negative unknowns keep
    the efficiency at or below the peak bandwidth."""
    a, b = [], []
    for r in rows:
        t_obs = 1 / r.tg
        mem = sum(t.memory_s for t in r.terms)
        comp = sum(t.compute_s or 0.0 for t in r.terms)
        layers = sum(t.layers for t in r.terms)
        a.append([mem / t_obs, comp / t_obs, layers / t_obs])
        b.append(1.0 - mem / t_obs)
    extra, kappa, tau = _nnls(a, b)
    return speed.Coefficients(1 / (1 + extra), kappa, tau, None)


def fit_prompt(rows: list[Row]) -> float | None:
    ratios = [r.pp * r.prompt[0] / (r.prompt[1] * 1e12) for r in rows if r.pp and r.prompt and r.prompt[1]]
    if len(ratios) < 3:
        return None
    return math.exp(sum(math.log(x) for x in ratios) / len(ratios))  # geometric mean of achieved/peak


def band_for(errors: list[float], cap: float = MAX_BAND) -> float:
    """Smallest band w with |measured/predicted - 1| ≤ w for ≥ 90% of the rows, capped."""
    need = sorted(errors)
    k = max(0, math.ceil(COVERAGE * len(need)) - 1)
    return min(cap, need[k] + 0.005) if need else cap


def predict_prompt(row: Row, prompt_efficiency: float) -> float:
    assert row.prompt is not None
    flops_per_token, fp16_tflops = row.prompt
    return fp16_tflops * 1e12 * prompt_efficiency / flops_per_token


def inside(measured: float, middle: float, width: float) -> bool:
    return middle * (1 - width) <= measured <= middle * (1 + width)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="check the committed coefficients only")
    args = parser.parse_args(argv)
    rows, skipped = usable_rows()
    by_backend: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_backend[r.backend].append(r)
    if not args.check:
        table = yaml.safe_load(OUT.read_text()) if OUT.exists() else {"backends": {}}
        fitted: dict[str, dict] = {}
        for backend, rs in sorted(by_backend.items()):
            c = fit_decode(rs)
            pp = fit_prompt(rs)
            fitted[backend] = {"bandwidth_efficiency": round(c.bandwidth_efficiency, 4),
                               "compute_per_weight": round(c.compute_per_weight, 3),
                               "per_layer_s": float(f"{c.per_layer_s:.3g}"),
                               "prompt_efficiency": round(pp, 4) if pp else None,
                               "rows": len(rs)}
        for key in ("cpu", "default"):  # cpu: fitted by compare_cpu.py on this machine's measurements
            if key in table.get("backends", {}):
                fitted[key] = table["backends"][key]
        for backend, rs in by_backend.items():
            # the band is set by rows the fit did not see: each device's rows against a fit without it
            fitted[backend]["band"] = round(band_for([abs(r.tg / predict(r, _loo(rs, r)) - 1) for r in rs]), 3)
            e_pp = fitted[backend]["prompt_efficiency"]
            pp_errors = [abs(r.pp / predict_prompt(r, e_pp) - 1) for r in rs if e_pp and r.pp and r.prompt
                         and r.prompt[1]]
            fitted[backend]["prompt_band"] = round(band_for(pp_errors, MAX_PROMPT_BAND), 3) if pp_errors else None
        table = {"band": MAX_BAND, "prompt_band": MAX_PROMPT_BAND, "backends": fitted}
        header = ("# Speed-model coefficients per llama.cpp backend (fitcheck.speed), fitted by\n"
                  "# benchmarks/speed/fit_speed.py on benchmarks/speed/published.yaml (GPU backends) and\n"
                  "# benchmarks/speed/compare_cpu.py on benchmarks/speed/cpu_measured.json (cpu).\n"
                  "# Do not edit by hand: re-run the fits.\n")
        OUT.write_text(header + yaml.safe_dump(table, sort_keys=False))
    report(rows, skipped, by_backend)


def _readme_table(lines: list[str]) -> None:
    """The README's copy of the summary, between its markers, so it cannot go stale."""
    readme = HERE.parents[1] / "README.md"
    text = readme.read_text()
    start, end = "<!-- speed-agreement: written by benchmarks/speed/fit_speed.py -->\n", "<!-- /speed-agreement -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n".join(lines).rstrip() + "\n" + end + tail)


def cpu_lines() -> list[str]:
    """The CPU comparison (compare_cpu.py) as README lines, when it has been run."""
    path = HERE / "CPU_AGREEMENT.md"
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith("|") or line.startswith("On ")]


def _loo(rows: list[Row], held_out: Row) -> speed.Coefficients:
    others = [x for x in rows if x.table_name != held_out.table_name]
    return fit_decode(others) if len(others) >= 3 else fit_decode(rows)


def _coef(entry: dict) -> speed.Coefficients:
    return speed.Coefficients(entry["bandwidth_efficiency"], entry["compute_per_weight"], entry["per_layer_s"],
                              entry.get("prompt_efficiency"))


def report(rows: list[Row], skipped: list[tuple[str, str]], by_backend: dict[str, list[Row]]) -> None:
    table = yaml.safe_load(OUT.read_text())
    lines = ["# Speed model against published llama-bench results", "",
             f"Generated by `python benchmarks/speed/fit_speed.py` from `published.yaml` ({len(rows)} usable rows, "
             f"{len(skipped)} skipped) and `data/speed_model.yaml`. The band of each backend is set so that ≥ 90% of "
             "its rows fall inside it when their device is left out of the fit (at most ±30%).", "",
             "| backend | rows | devices | band | tg inside the range | leave-one-device-out | worst tg error | "
             "pp band | pp inside |", "|---|---|---|---|---|---|---|---|---|"]
    detail = ["", "| device | backend | model | published tg | predicted tg | inside | published pp | predicted pp |",
              "|---|---|---|---|---|---|---|---|"]
    total_in = total_loo = 0
    for backend, rs in sorted(by_backend.items()):
        c = _coef(table["backends"][backend])
        width = table["backends"][backend]["band"]
        pp_width = table["backends"][backend].get("prompt_band") or MAX_PROMPT_BAND
        hits = loo_hits = pp_ok = pp_n = 0
        worst = 0.0
        for r in rs:
            mid = predict(r, c)
            ok = inside(r.tg, mid, width)
            hits += ok
            worst = max(worst, abs(r.tg / mid - 1))
            loo_hits += inside(r.tg, predict(r, _loo(rs, r)), width)
            pp_mid = None
            if r.pp and r.prompt and r.prompt[1] and c.prompt_efficiency:
                pp_mid = predict_prompt(r, c.prompt_efficiency)
                pp_n += 1
                pp_ok += inside(r.pp, pp_mid, pp_width)
            detail.append(f"| {r.device} | {backend} | {r.model} | {r.tg:g} | {mid * (1 - width):.1f}–"
                          f"{mid * (1 + width):.1f} | {'yes' if ok else 'NO'} | {r.pp or '-'} | "
                          f"{f'{pp_mid:.0f}' if pp_mid else '-'} |")
        total_in += hits
        total_loo += loo_hits
        devices = len({r.table_name for r in rs})
        lines.append(f"| {backend} | {len(rs)} | {devices} | ±{width:.0%} | {hits}/{len(rs)} ({hits / len(rs):.0%}) | "
                     f"{loo_hits}/{len(rs)} | {worst:.0%} | ±{pp_width:.0%} | {pp_ok}/{pp_n} |")
    n = len(rows)
    lines.append(f"| **all** | {n} | {len({r.table_name for r in rows})} | | {total_in}/{n} ({total_in / n:.0%}) | "
                 f"{total_loo}/{n} ({total_loo / n:.0%}) | | | |")
    lines += detail
    lines += ["", "Skipped rows:", ""] + [f"- {what}: {why}" for what, why in skipped]
    AGREEMENT.write_text("\n".join(lines) + "\n")
    summary = [line for line in lines if line.startswith("|")][:2 + len(by_backend) + 1]
    _readme_table(summary + [""] + cpu_lines())
    print("\n".join(lines[:12 + len(by_backend)]))
    print(json.dumps({"rows": n, "inside": total_in, "loo": total_loo}))


if __name__ == "__main__":
    main()
