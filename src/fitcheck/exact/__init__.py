"""`fitcheck --exact`: ask llama.cpp itself, for a model that need not be on disk.

A header-only sparse copy of every shard (exact/sparse.py) goes into a fresh temporary folder, removed
afterwards whatever happens (Ctrl-C included); llama.cpp runs its memory-fit pass on it with fitcheck's
settings and plan (exact/engines.py), and its log gives the buffer sizes (exact/logread.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from ..errors import SourceError
from ..model import Exact, ExactDevice, Report
from ..sources.types import Model
from .logread import MIB_2DP, MiB, read_log


def run_exact(model: Model, report: Report) -> Exact:
    from .engines import NOT_AVAILABLE, NOT_AVAILABLE_HINT, find_engine, run_binary, run_module
    from .sparse import disk_bytes, shards_of, write_copies

    engine = find_engine()
    if engine is None:
        raise SourceError(NOT_AVAILABLE, hint=NOT_AVAILABLE_HINT)
    shards = shards_of(model.files, model.spec.shard_extents)
    with tempfile.TemporaryDirectory(prefix="fitcheck-exact-") as tmp:
        first = write_copies(shards, Path(tmp))
        if engine.kind == "module":
            answer = run_module(first, report)
        else:
            assert engine.path is not None
            answer = run_binary(engine.path, first, report)
        on_disk = sum(disk_bytes(Path(tmp) / s.name) for s in shards)  # after the run: llama.cpp wrote nothing
    full = sum(s.size_bytes for s in shards)
    exact = to_exact(answer.log, answer.version, answer.model_bytes, answer.args,
                     answer.notes + (_disk_note(on_disk, full),))
    return replace(exact, copy_header_bytes=sum(s.data_offset for s in shards), copy_size_bytes=full,
                   copy_disk_bytes=on_disk, incomparable=answer.incomparable)


def _disk_note(on_disk: int, full: int) -> str:
    disk = f"{on_disk / MiB:,.1f} MiB" if on_disk >= MiB else f"{on_disk / 1024:,.0f} KiB"
    return (f"llama.cpp read a header-only sparse copy: {disk} on disk for a {full / MiB:,.0f} MiB file "
            "(no weight was downloaded or read)")


def to_exact(log: str, version: str, model_bytes: int | None, args: tuple[str, ...],
             notes: tuple[str, ...] = ()) -> Exact:
    """llama.cpp's figures from its log; `model_bytes` (llama_model_size) when the engine gives it exactly."""
    figures = read_log(log)
    if not figures.complete:
        from .logread import first_error

        line = first_error(log)
        raise SourceError("--exact: llama.cpp did not report its buffers",
                          hint=f"llama.cpp said: {line}" if line else None)
    table_weights = figures.table_weights_bytes
    weights = model_bytes if model_bytes is not None else table_weights or 0
    resolution = {"weights_bytes": 0 if model_bytes is not None else MiB * max(1, len(figures.devices)),
                  "kv_cache_bytes": MIB_2DP * figures.kv_lines, "recurrent_state_bytes": MIB_2DP,
                  "compute_bytes": MIB_2DP * len(figures.compute), "output_bytes": MIB_2DP}
    if figures.devices:
        devices = tuple(ExactDevice(d.name, d.weights_bytes, d.context_bytes, d.compute_bytes)
                        for d in figures.devices)
    else:  # no breakdown table (the module): compute per buffer type is what the log names
        from .logread import host_buffer

        host = sum(v for k, v in figures.compute.items() if host_buffer(k))
        others = [ExactDevice(k, None, None, v) for k, v in figures.compute.items() if not host_buffer(k)]
        whole = not others  # everything on the host: the totals are the host's
        devices = (ExactDevice("Host", weights if whole else None,
                               figures.kv_cache_bytes + figures.recurrent_state_bytes if whole else None, host),
                   *others)
    return Exact(engine=version, weights_bytes=weights, kv_cache_bytes=figures.kv_cache_bytes,
                 recurrent_state_bytes=figures.recurrent_state_bytes, compute_bytes=figures.compute_bytes,
                 output_bytes=figures.output_bytes, devices=devices, args=args, resolution_bytes=resolution,
                 notes=notes)
