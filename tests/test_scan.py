"""`fitcheck scan`: fake Ollama, LM Studio, Hugging Face and llama.cpp stores with real GGUF headers; rows,
order, kinds, bad stores as notes, the header cache, and never a write into a store."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from fitcheck.check import check_model, probe
from fitcheck.model import GiB, MiB, Settings, Verdict
from fitcheck.probe import system
from fitcheck.probe.overrides import HardwareOverrides
from fitcheck.scan import FREE_STEP, RowPlan, scan, steady
from fitcheck.sources.stores import headers
from tests import store_trees as st

MACHINE = HardwareOverrides(vram=(8 * GiB,), ram=32 * GiB, ram_bandwidth_gbps=50.0)


@pytest.fixture()
def stores(tmp_path, monkeypatch):
    return st.isolate(tmp_path / "stores", monkeypatch)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return st.model_files(tmp_path_factory.mktemp("src"))


@pytest.fixture()
def populated(stores, files, tmp_path):
    st.ollama_model(stores / "ollama", "tiny", "latest", files["tiny"], projector_path=files["mmproj"])
    st.ollama_model(stores / "ollama", "gone", "latest", files["tiny_q8"], copy_blob=False)
    (stores / "ollama" / "blobs" / ("sha256-" + "b" * 64 + "-partial")).write_bytes(b"GGUF")
    bad = stores / "ollama" / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("[]")
    lms = stores / "lms" / "pub" / "Tiny-GGUF"
    lms.mkdir(parents=True)
    (lms / "Tiny-Q8_0.gguf").write_bytes(files["tiny_q8"].read_bytes())
    (lms / "Tiny-Q6_K.gguf.part").write_bytes(b"GGUF")
    big = stores / "lms" / "pub" / "Big-GGUF" / "Big-Q4_K_M.gguf"
    st.small_model(big, n_layer=48, n_embd=8192, name="big", n_ctx_train=8192)  # ~20 GiB of weights
    st.hf_cache_repo(stores / "hf", "org/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": files["tiny"],
                                                      "mmproj-Tiny-f16.gguf": files["mmproj"]})
    (stores / "llama.cpp").mkdir()
    (stores / "llama.cpp" / "org_repo_x.gguf.downloadInProgress").write_bytes(b"GGUF")
    (stores / "llama.cpp" / "imatrix.gguf").write_bytes(b"GGUF")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model")
    (folder / "corrupt.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 32)
    return folder


def test_rows_kinds_and_order(populated, stores):
    report = scan([str(populated)], Settings(), MACHINE)
    by_ref = {r.entry.ref: r for r in report.rows}
    assert by_ref["ollama:tiny:latest"].plan is not None
    assert by_ref["ollama:tiny:latest"].entry.attached  # its projector layer
    assert by_ref["ollama:gone:latest"].entry.kind == "missing"
    assert "dangling" in (by_ref["ollama:gone:latest"].note or "")
    assert by_ref["lmstudio:pub/Tiny-GGUF/Tiny-Q6_K.gguf.part"].entry.kind == "partial"
    assert by_ref["hf:org/Tiny-GGUF/mmproj-Tiny-f16.gguf"].entry.kind == "mmproj"
    assert by_ref[str(populated / "corrupt.gguf")].entry.kind == "unreadable"
    kinds = {r.entry.kind for r in report.rows}
    assert {"model", "missing", "partial", "mmproj", "imatrix", "unreadable"} <= kinds
    assert any("broken" in n for n in report.notes)  # a corrupt manifest is a note, not a crash
    verdicts = [r.verdict for r in report.rows]
    models = [v for v in verdicts if v is not None]
    assert verdicts[:len(models)] == models  # models first
    assert models == sorted(models, key=lambda v: -v.rank)  # best verdict first
    assert models[-1] in (Verdict.OFFLOAD, Verdict.CPU, Verdict.NONE)  # the big one does not fit on 8 GiB
    assert report.rows[0].plan is not None and report.rows[0].plan.max_ctx


def test_a_scan_writes_nothing_into_any_store(populated, stores):
    before = st.tree_state(stores)
    scan([str(populated)], Settings(), MACHINE)
    assert st.tree_state(stores) == before


def test_warm_scan_parses_and_plans_nothing(populated, monkeypatch):
    first = scan([str(populated)], Settings(), MACHINE)

    def fail(*args, **kwargs):
        raise AssertionError("a warm scan parsed a header or planned a row")

    monkeypatch.setattr(headers, "parse_file", fail)
    monkeypatch.setattr(importlib.import_module("fitcheck.check"), "check_model", fail)
    assert scan([str(populated)], Settings(), MACHINE).rows == first.rows
    with pytest.raises(AssertionError):  # other settings are other rows: planned again
        scan([str(populated)], Settings(ctx=4096), MACHINE)


def test_worker_processes_give_the_same_rows(populated, tmp_path, monkeypatch):
    one = scan([str(populated)], Settings(), MACHINE, workers=1)
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "fresh-cache"))  # nothing cached: all planned again
    assert scan([str(populated)], Settings(), MACHINE, workers=2).rows == one.rows


def test_a_changed_file_is_read_again(populated, stores):
    path = stores / "lms" / "pub" / "Tiny-GGUF" / "Tiny-Q8_0.gguf"
    scan([], Settings(), MACHINE)
    st.small_model(path, n_layer=6, name="tiny-q8-new")
    os.utime(path, ns=(1, 1))
    rows = [r for r in scan([], Settings(), MACHINE).rows if r.entry.path == str(path)]
    assert rows[0].plan is not None and rows[0].plan.n_layer == 6


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_is_one_note(stores, tmp_path):
    locked = tmp_path / "locked"
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0)
    try:
        report = scan([str(locked)], Settings(), MACHINE)
    finally:
        locked.chmod(0o755)
    assert len([n for n in report.notes if "cannot read" in n]) == 1


def test_absent_stores_are_silent(stores):
    report = scan([], Settings(), MACHINE)
    assert report.rows == () and report.notes == ()
    assert report.stores == ()  # nothing was there: not even a "looked in" line


def test_cli_scan_json(populated, stores):
    env = {**os.environ, "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "fitcheck", "scan", str(populated), "--vram", "8G", "--ram", "32G",
                        "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1
    row = next(x for x in doc["rows"] if x["ref"] == "ollama:tiny:latest")
    assert row["verdict"] == "gpu" and isinstance(row["size_bytes"], int) and row["command"].startswith("llama-server")
    assert {s["store"] for s in doc["stores"]} >= {"ollama", "lmstudio", "hf-cache"}
    table = subprocess.run([sys.executable, "-m", "fitcheck", "scan", "--no-stores", str(populated / "nothing")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert table.returncode == 1 and "no such folder" in table.stdout  # nothing runs: exit 1


def test_rows_show_what_a_full_check_shows(populated):
    """A scan row is planned briefly (no tips, no GPU-only max context beside another verdict's): every figure
    it shows is the full check's."""
    from fitcheck.sources.stores.headers import local_model

    report = scan([str(populated)], Settings(), MACHINE)
    machine = probe(MACHINE)
    planned = [r for r in report.rows if r.plan is not None]
    assert {r.plan.verdict for r in planned if r.plan} >= {Verdict.GPU}
    assert any(r.plan.verdict is not Verdict.GPU for r in planned if r.plan)  # the big one: the brief path
    for row in planned:
        model = local_model(list(row.entry.shards) or [row.entry.path], ref=row.entry.ref)
        assert row.plan == RowPlan.of(check_model(model, Settings(), machine))


class _Card:
    """pynvml's slice the probe uses, with one card whose free memory moves (probe/nvidia.py's seam)."""

    NVML_CLOCK_MEM = 2

    def __init__(self, free: int) -> None:
        self.free = free

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA GeForce RTX 4090"

    def nvmlDeviceGetMemoryInfo(self, handle: int):
        from types import SimpleNamespace

        return SimpleNamespace(total=24 * GiB, free=self.free, used=24 * GiB - self.free)

    def __getattr__(self, name: str):
        def unsupported(*args: object) -> None:
            raise RuntimeError("Not Supported")

        return unsupported


class _Ram:
    def virtual_memory(self):
        from types import SimpleNamespace

        return SimpleNamespace(total=64 * GiB, available=40 * GiB + 123)

    def cpu_count(self, logical: bool = True) -> int:
        return 8


def test_live_gpu_free_memory_moving_within_a_step_reuses_the_rows(populated, monkeypatch, tmp_path):
    monkeypatch.setattr(system, "SYSFS_ROOT", tmp_path / "empty-sys")
    live = HardwareOverrides(ram_bandwidth_gbps=50.0)
    card = _Card(20 * GiB + 5 * MiB)

    def run():
        return scan([str(populated)], Settings(), live, nvml=card, psutil_module=_Ram())

    first = run()
    gpu = first.hardware.gpus[0]
    assert gpu.free_bytes == 20 * GiB and first.hardware.ram_available_bytes == 40 * GiB  # planned rounded down
    assert any("64 MiB" in n for n in first.notes)
    planned = 0
    real = importlib.import_module("fitcheck.check").check_model

    def counting(*args, **kwargs):
        nonlocal planned
        planned += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(importlib.import_module("fitcheck.check"), "check_model", counting)
    card.free = 20 * GiB + FREE_STEP - 1  # another process freed 59 MiB: the same step
    assert run().rows == first.rows and planned == 0
    card.free = 20 * GiB - 1  # a step lower: every row planned again
    again = run()
    assert planned == len([r for r in again.rows if r.plan is not None]) > 0
    assert again.hardware.gpus[0].free_bytes == 20 * GiB - FREE_STEP


def test_given_memory_is_planned_as_given():
    machine = probe(HardwareOverrides(vram=(8 * GiB + 1,), ram=32 * GiB + 1, ram_bandwidth_gbps=50.0))
    assert steady(machine, HardwareOverrides(vram=(8 * GiB + 1,), ram=32 * GiB + 1)) == machine


def test_names_from_files_and_metadata_are_escaped_not_markup(stores, tmp_path):
    """A file name and a general.name are untrusted: control characters are shown as escapes and rich markup
    is printed as text, in the table and its notes."""
    from fitcheck.render.scan import render_scan_table

    folder = tmp_path / "odd"
    st.small_model(folder / "[red]x\x1b[2J.gguf", name="[bold]evil\x1b]0;title\x07")
    (folder / "[link=x]p\x1b[1m.gguf.part").write_bytes(b"GGUF")
    report = scan([str(folder)], Settings(ctx=4096), MACHINE, stores=False)
    text = render_scan_table(report, width=300, color=False)
    assert "\x1b" not in text and "\x07" not in text
    assert "[bold]evil" in text and "\\x1b" in text  # the markup is text, the escape is written out
    assert "[link=x]p" in text
