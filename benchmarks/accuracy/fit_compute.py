"""Fit the compute-buffer model (src/fitcheck/compute/stage.py) to llama.cpp's measured compute buffers.

Reads results/measurements.json and the layouts, fits per-architecture coefficients (minimax relative
error, coordinate search), and writes data/compute_model.yaml. Prints each architecture's worst error.
Usage: python benchmarks/accuracy/fit_compute.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import layout_io  # noqa: E402

from fitcheck import archs, compute  # noqa: E402
from fitcheck.compute import stage  # noqa: E402
from fitcheck.context import resolve_context  # noqa: E402
from fitcheck.estimate import resolve_flash_attn  # noqa: E402
from fitcheck.model import ModelSpec, Settings  # noqa: E402
from fitcheck.sources.gguf import load_local  # noqa: E402

OUT = HERE.parent.parent / "data" / "compute_model.yaml"
STEPS = (0.5, 0.8, 0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1, 1.25, 2.0, 4.0)


def settings_of(row: dict) -> Settings:
    s = row["settings"]
    return Settings(ctx=s["ctx"], batch=s["batch"], ubatch=s["ubatch"], parallel=s["parallel"],
                    kv_unified=s["kv_unified"], cache_type_k=s["cache_type_k"], cache_type_v=s["cache_type_v"],
                    flash_attn=s["flash_attn"], swa_full=s["swa_full"], embeddings=s.get("embeddings"),
                    consumer=s.get("consumer", "library"), n_draft=s.get("n_draft", 0))


def context_of(spec: ModelSpec, settings: Settings) -> tuple:
    """(context, flash attention, layer kinds) as estimate() derives them."""
    flash_attn, _ = resolve_flash_attn(spec, settings)
    kinds, _ = archs.layer_kinds(spec)
    return resolve_context(spec, settings), flash_attn, kinds


def features_of(spec: ModelSpec, settings: Settings) -> stage.Features:
    c, flash_attn, kinds = context_of(spec, settings)
    return compute.features(spec, c, flash_attn, kinds, settings)


def layout_specs() -> dict:
    """Every layout read back through fitcheck's own reader, by layout name."""
    specs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in layout_io.layout_paths():
            layout = layout_io.load_layout(path)
            out = Path(tmp) / f"{layout['name']}.gguf"
            layout_io.write_gguf(layout, out, sparse=False)
            specs[layout["name"]] = load_local(str(out))
    return specs


def samples() -> dict[str, list[tuple[stage.Features, int]]]:
    data = json.loads((HERE / "results" / "measurements.json").read_text())
    by_arch: dict[str, list] = defaultdict(list)
    specs = layout_specs()
    for row in data["rows"]:
        if "measured" not in row:
            continue
        spec = specs[row["layout"]]
        features = features_of(spec, settings_of(row))
        by_arch[spec.architecture].append((features, row["measured"]["compute_bytes"]))
    return by_arch


def worst(rows, coef) -> float:
    return max(abs(stage.peak(f, coef)[0] / y - 1) for f, y in rows)


def fit(rows) -> dict[str, float]:
    coef = dict(stage.DEFAULT)
    for _ in range(12):
        for key in coef:
            coef[key] = min((coef[key] * s if coef[key] else s - 1 + 0.0 for s in STEPS),
                            key=lambda v: (worst(rows, {**coef, key: v}), abs(v - coef[key])))
            coef[key] = max(coef[key], 0.0)
    return {k: round(v, 3) for k, v in coef.items()}


def main() -> None:
    lines = ["# Compute-buffer coefficients per architecture, fitted by benchmarks/accuracy/fit_compute.py on",
             "# llama.cpp's measured CPU compute buffers (benchmarks/accuracy/results/measurements.json).",
             "# See src/fitcheck/compute.py for the model; max_error is the worst relative error on the grid.",
             "default: " + json.dumps(stage.DEFAULT), "architectures:"]
    for arch, rows in sorted(samples().items()):
        coef = fit(rows)
        err = worst(rows, coef)
        print(f"{arch:16s} rows {len(rows):3d}  max error {err:.3f}")
        lines.append(f"  {arch}: {{coef: {json.dumps(coef)}, rows: {len(rows)}, max_error: {err:.3f}}}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
