"""What resolving a model reference gives the application layer: one model, or a set of quants to compare.

Kept apart from the resolvers so that callers (and every source module) can name these types without importing
the Hub or HTTP code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import ModelSpec

Progress = Callable[[int, int, str], None]  # (done, total, what): header fetches of a repo


@dataclass(frozen=True)
class Location:
    """Where one file (shard) of a model is, so that its header can be read again (fitcheck --exact)."""

    path: str  # a local path, or a URL
    remote: bool = False
    send_token: bool = False  # the Hub's own URLs carry the HF token


@dataclass(frozen=True)
class Model:
    """One model, and how llama.cpp would be pointed at it."""

    spec: ModelSpec
    model_arg: list[str]
    files: tuple[Location, ...] = ()  # every shard, in order (spec.shard_extents has their extents)


@dataclass(frozen=True)
class Choice:
    """One row of a quant comparison."""

    quant: str
    file: str | None  # None for what-if rows of a safetensors repo
    size_bytes: int | None
    model: Model
    estimate: bool = False


@dataclass
class QuantSet:
    """Every model a repository offers: its GGUF quants, or a safetensors repo's native need and what-ifs."""

    ref: str
    repo: str
    kind: str  # gguf | safetensors
    choices: list[Choice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
