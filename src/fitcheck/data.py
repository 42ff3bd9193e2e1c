"""The files in data/: shipped inside the wheel as fitcheck/data, read from the repository when editable."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def read_data(name: str) -> str:
    packaged = resources.files("fitcheck") / "data" / name
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "data" / name).read_text(encoding="utf-8")


def load_yaml(name: str) -> dict:
    import yaml

    return yaml.load(read_data(name), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
