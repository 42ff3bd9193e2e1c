"""The README's accuracy table for the compute buffer: fitcheck's estimate against every measured row.

Usage: python benchmarks/accuracy/compute_table.py   (prints markdown: architecture, rows, method, worst error)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import fit_compute  # noqa: E402

from fitcheck import archs  # noqa: E402
from fitcheck.estimate import estimate  # noqa: E402


def main() -> None:
    data = json.loads((HERE / "results" / "measurements.json").read_text())
    specs = fit_compute.layout_specs()
    worst: dict[str, tuple[float, int, str]] = {}
    for row in data["rows"]:
        if "measured" not in row:
            continue
        spec = specs[row["layout"]]
        err = estimate(spec, fit_compute.settings_of(row)).compute_bytes / row["measured"]["compute_bytes"] - 1
        arch = spec.architecture
        method = "graph replay" if archs.compute_method(spec) is archs.Compute.GRAPH else "stage model"
        old = worst.get(arch, (0.0, 0, method))
        worst[arch] = (max(old[0], abs(err)), old[1] + 1, method)
    print("| architecture | rows | compute buffer method | worst row |")
    print("|---|---|---|---|")
    for arch, (err, rows, method) in sorted(worst.items()):
        print(f"| {arch} | {rows} | {method} | {err * 100:.{2 if err < 0.001 else 1}f}% |")
    print(f"\nworst row overall: {max(worst.items(), key=lambda kv: kv[1][0])}")


if __name__ == "__main__":
    main()
