"""The committed speed model against published llama-bench results (benchmarks/speed/published.yaml).

Every usable row is planned through fitcheck as fit_speed.py does; the published tg must fall inside the
predicted range for ≥ 90% of the rows, with every backend's band at most ±30%.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "speed"


@pytest.fixture(scope="module")
def fit():
    sys.path.insert(0, str(SPEED))
    try:
        import fit_speed

        yield fit_speed
    finally:
        sys.path.remove(str(SPEED))


def test_published_decode_inside_the_range(fit):
    from fitcheck import speed

    rows, _ = fit.usable_rows()
    assert len({r.table_name for r in rows}) >= 25
    inside = 0
    for r in rows:
        c = speed.coefficients(r.backend)
        width = speed.band(r.backend)
        assert width <= 0.30
        inside += fit.inside(r.tg, fit.predict(r, c), width)
    assert inside / len(rows) >= 0.90, f"{inside}/{len(rows)} inside"
