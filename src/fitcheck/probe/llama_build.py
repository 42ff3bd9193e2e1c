"""The llama.cpp build of the `llama-server` on PATH: its `--version` line (`version: 6123 (abcdef0)`).

A bounded subprocess call (2 s), only from the application layer; any failure means "not known" (None).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

from ..model import Settings

VERSION = re.compile(r"version:\s*(\d+)\s*\(")
TIMEOUT_S = 2.0


def detect(program: str = "llama-server", timeout_s: float = TIMEOUT_S) -> tuple[int, str] | None:
    """(build number, path) of `program` on PATH, or None when absent, silent, slow or unreadable."""
    path = shutil.which(program)
    if path is None:
        return None
    import subprocess  # only when there is a program to ask (a plain check starts without it)

    try:
        done = subprocess.run([path, "--version"], capture_output=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    m = VERSION.search((done.stderr + done.stdout)[:4096].decode("utf-8", "replace"))
    return (int(m[1]), path) if m else None


def with_detected_build(settings: Settings) -> Settings:
    """The settings with the build of the llama-server on PATH (and where it came from), when one answers."""
    found = detect()
    return settings if found is None else replace(settings, llama_cpp_build=found[0], llama_cpp_build_source=found[1])
