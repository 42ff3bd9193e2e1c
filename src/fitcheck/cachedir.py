"""Where fitcheck keeps what it may reuse (Hub headers, this machine's measured RAM bandwidth)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$FITCHECK_CACHE_DIR, else $XDG_CACHE_HOME/fitcheck, else ~/.cache/fitcheck."""
    explicit = os.environ.get("FITCHECK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fitcheck"
