"""The llama.cpp build of the `llama-server` on PATH: its `--version` line (`version: 6123 (abcdef0)`).

A bounded subprocess call (2 s), only from the application layer; any failure means "not known" (None).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cachedir import cache_dir
from ..model import Settings

VERSION = re.compile(r"version:\s*(\d+)\s*\(")
TIMEOUT_S = 2.0
CACHE_FILE = "llama-build.json"


def detect(program: str = "llama-server", timeout_s: float = TIMEOUT_S,
           cache: Path | None = None) -> tuple[int, str] | None:
    """(build number, path) of `program` on PATH, or None when absent, silent, slow or unreadable.

    The answer is remembered per binary (real path, size, mtime) in fitcheck's cache: a GPU build's
    `--version` initialises its backends, which can take a second, and every check would pay it."""
    path = shutil.which(program)
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    store = (cache or cache_dir()) / CACHE_FILE
    known = _read(store)
    if key in known:
        build = known[key]
        return (build, path) if isinstance(build, int) and build > 0 else None
    build = _ask(path, timeout_s)
    if build is not None:
        _write(store, {**known, key: build})
    return (build, path) if build is not None else None


def _ask(path: str, timeout_s: float) -> int | None:
    import subprocess  # only when there is a program to ask (a plain check starts without it)

    try:
        done = subprocess.run([path, "--version"], capture_output=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    m = VERSION.search((done.stderr + done.stdout)[:4096].decode("utf-8", "replace"))
    return int(m[1]) if m else None


def _read(store: Path) -> dict[str, Any]:
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(store: Path, entries: dict[str, Any]) -> None:
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f"{store.name}.{os.getpid()}.tmp")  # written whole, then renamed
        tmp.write_text(json.dumps(dict(list(entries.items())[-16:])), encoding="utf-8")
        os.replace(tmp, store)
    except OSError:
        pass


def with_detected_build(settings: Settings) -> Settings:
    """The settings with the build of the llama-server on PATH (and where it came from), when one answers."""
    found = detect()
    return settings if found is None else replace(settings, llama_cpp_build=found[0], llama_cpp_build_source=found[1])
