"""Quant quality hints: a file type's published loss (data/quant_quality.yaml) and a file's own bits per weight.

The tier of a measured type follows from its mean KL-divergence against f16 and the table's tier bounds, so
the ranking is the measurement's, not an opinion; `rank_key` orders a repo's quants by it (best first when
sorted in reverse). Pure: reads only the shipped data file.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .model import ModelSpec, QuantQuality

UNMEASURED_RANK = -1  # below every measured tier


def bits_per_weight(spec: ModelSpec) -> float | None:
    """The file's own bits per weight (every tensor's bytes x 8 / parameters), embeddings and output included."""
    parameters = spec.parameters
    return spec.weights_bytes * 8 / parameters if parameters else None


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, QuantQuality], dict[str, str], tuple[dict[str, Any], ...]]:
    from .data import load_yaml

    raw = load_yaml("quant_quality.yaml")
    tiers = tuple(raw["tiers"])
    names = [t["name"] for t in tiers]
    model = raw["measured_on"]["model"]
    out: dict[str, QuantQuality] = {}
    for name, row in raw["file_types"].items():
        kld = row.get("kld")
        tier = row.get("tier") or (_tier_for(kld, tiers) if kld is not None else None)
        info = tiers[names.index(tier)] if tier is not None else None
        out[name] = QuantQuality(
            file_type=name, tier=tier, rank=len(tiers) - 1 - names.index(tier) if tier is not None else UNMEASURED_RANK,
            low=bool(info and info.get("low")), kld=kld, ppl_increase=row.get("ppl_increase"),
            measured_on=row.get("measured", model) if (kld is not None or "ppl_increase" in row) else None,
            source=row["source"], note=row.get("note"))
    return out, dict(raw.get("aliases") or {}), tiers


def _tier_for(kld: float, tiers: tuple[dict[str, Any], ...]) -> str:
    return next((t["name"] for t in tiers if "below" in t and kld < t["below"]), tiers[-1]["name"])


def tier_bounds() -> tuple[tuple[str, float | None], ...]:
    """(tier, upper bound of mean KLD) best first, for the legend under a table."""
    return tuple((t["name"], t.get("below")) for t in _table()[2])


def quality_of(file_type: str | None, label: str | None = None) -> QuantQuality | None:
    """The published loss of a file's type: the header's general.file_type first (what llama-quantize wrote),
    else the quant tag of its name (`UD-Q4_K_XL` is no llama.cpp type: its header says what it is)."""
    table, aliases, _ = _table()
    for name in (file_type, label):
        if not name:
            continue
        key = name.upper().removeprefix("UD-")
        key = aliases.get(key, key)
        if key in table:
            return table[key]
    return None


def rank_key(quality: QuantQuality | None, size_bytes: int | None) -> tuple[int, float, int]:
    """Better quality sorts higher: the tier, then the lower measured KLD, then (same type) the larger file."""
    if quality is None:
        return UNMEASURED_RANK, 0.0, size_bytes or 0
    return quality.rank, -(quality.kld or 0.0), size_bytes or 0
