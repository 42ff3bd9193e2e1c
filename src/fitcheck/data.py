"""The files in data/: shipped inside the wheel as fitcheck/data, read from the repository when editable.

The YAML files are the source; each one's parsed value is also kept as JSON in fitcheck's cache folder, keyed
by a digest of the YAML text, because importing PyYAML and parsing costs ~20 ms of every ~0.25 s check while
json is already loaded: an edited file has a new digest, an unwritable cache only costs the parse."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .cachedir import cache_dir


def read_data(name: str) -> str:
    # A file path, not importlib.resources (~7 ms to import): pip installs the package unpacked, never zipped.
    here = Path(__file__).resolve()
    packaged = here.parent / "data" / name
    return (packaged if packaged.is_file() else here.parents[2] / "data" / name).read_text(encoding="utf-8")


def load_yaml(name: str) -> dict:
    text = read_data(name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    stored = cache_dir() / "data" / f"{Path(name).stem}-{digest}.json"
    try:
        value = json.loads(stored.read_text(encoding="utf-8"))
        if isinstance(value, dict):
            return value
    except (OSError, ValueError):
        pass
    value = _parse(text)
    _store(stored, value)
    return value


def _parse(text: str) -> dict:
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _store(path: Path, value: Any) -> None:
    """Keep the parsed value when JSON holds it unchanged (string keys, no dates): written whole or not at all."""
    try:
        encoded = json.dumps(value)
        if json.loads(encoded) != value:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(encoded, encoding="utf-8")
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        pass
