"""fitcheck: will this LLM fit on this machine, and how should llama.cpp run it?

The library API is the application layer's:

    from fitcheck import check, Settings, HardwareOverrides
    report = check("model.gguf", Settings(ctx=32768), HardwareOverrides(vram=(24 * 2**30,)))
    report.plan.verdict, report.needs.total_bytes

`check` returns a Report for one model, or a QuantReport for a repo of quants (`hf:org/repo`).
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .check import check, check_model, compare_quants, fits
    from .errors import FitcheckError, HubError, InputError, UsageError
    from .model import QuantReport, Report, Settings, Verdict
    from .probe.overrides import HardwareOverrides

# The API's names load on first use (PEP 562): `fitcheck hf:...` sends its first Hub request before the
# estimator's modules are imported, so they load while the network answers (sources/prefetch.py).
_EXPORTS = {"check": "check", "check_model": "check", "compare_quants": "check", "fits": "check",
            "FitcheckError": "errors", "HubError": "errors", "InputError": "errors", "UsageError": "errors",
            "QuantReport": "model", "Report": "model", "Settings": "model", "Verdict": "model",
            "HardwareOverrides": "probe.overrides"}

__all__ = ["FitcheckError", "HardwareOverrides", "HubError", "InputError", "QuantReport", "Report", "Settings",
           "UsageError", "Verdict", "__version__", "check", "check_model", "compare_quants", "fits"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fitcheck' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`fitcheck.check` is the API function: importing the `check` module must not rebind the name to it
    (the import system sets a package's attribute to each submodule it loads)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "check" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
