"""fitcheck against public llama.cpp GPU logs (benchmarks/accuracy/gpu/logs.yaml, issue #12).

Every row's model file is rebuilt from its published shapes and quant rules; fitcheck plans it with the log's
settings, placement, backend and build (--llama-cpp), and compare.py sets each device's parts against the
buffer lines the log printed. Held here: weights and KV cache exact on every device of every row (0.01 MiB,
the log's precision); where the log shows its build and every setting the buffers depend on, the output
buffer exact, device compute buffers within 5 % and host compute buffers within 10 %.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

GPU = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy" / "gpu"
if not (GPU / "compare.py").exists() or not (GPU / "logs.yaml").exists():  # pragma: no cover - repo layout
    pytest.skip("benchmarks/accuracy/gpu is not in this checkout", allow_module_level=True)
sys.path.insert(0, str(GPU))
compare = importlib.import_module("compare")

ROWS = {r["id"]: r for r in compare.load_rows()}
PARTS = list(compare.parts())


def _known(row: dict) -> bool:
    """The log shows the build and every setting the buffers depend on."""
    return bool(row.get("build_number")) and row.get("settings_known", True)


def _id(p) -> str:
    return f"{p.row}-{p.role}-{p.part}"


def test_enough_rows():
    assert len(ROWS) >= 5
    assert len({r["backend"] for r in ROWS.values()}) >= 3


@pytest.mark.parametrize("part", [p for p in PARTS if p.part in ("weights", "kv")], ids=_id)
def test_weights_and_kv_are_exact(part):
    if part.role == "host" and part.part == "weights" and "span" in str(ROWS[part.row].get("verified", "")):
        # llama.cpp maps the file from the first to the last host tensor: GPU tensors between them count in
        # the CPU_Mapped line, not in RAM use (fitcheck counts the host tensors themselves)
        pytest.skip("the log's CPU_Mapped line is the mapped file span, not the host tensors")
    assert part.ok, f"{part.row} {part.role} {part.part}: logged {part.logged}, fitcheck {part.estimated}"


# known misses, each with what is known of it; strict: a fix makes the test fail until it is removed here
KNOWN_MISSES = {
    "cuda-v100-pythia28b-q4_0-ngl10-b4655-host-compute":
        "CUDA_Host 29.01 MiB at b4655 against 14.01 at b4343 for the same partial offload (gptneox, stage model): "
        "a change between the two builds not identified yet",
}


def _marked(p):
    reason = KNOWN_MISSES.get(_id(p))
    return pytest.param(p, id=_id(p), marks=pytest.mark.xfail(reason=reason, strict=True)) if reason else \
        pytest.param(p, id=_id(p))


@pytest.mark.parametrize("part", [_marked(p) for p in PARTS
                                  if p.part in ("compute", "output") and _known(ROWS[p.row])])
def test_buffers_within_tolerance_where_build_and_settings_are_known(part):
    assert part.tolerance is not None or part.part == "output"
    assert part.ok, (f"{part.row} {part.role} {part.part}: logged {part.logged / 2**20:.2f} MiB, fitcheck "
                     f"{part.estimated / 2**20:.2f} MiB ({part.delta_pct:+.1f} %)")
