"""fitcheck: will this LLM fit on this machine, and how should llama.cpp run it?

The library API is the application layer's:

    from fitcheck import check, Settings, HardwareOverrides
    report = check("model.gguf", Settings(ctx=32768), HardwareOverrides(vram=(24 * 2**30,)))
    report.plan.verdict, report.needs.total_bytes

`check` returns a Report for one model, or a QuantReport for a repo of quants (`hf:org/repo`).
"""

from ._version import __version__
from .check import check, check_model, compare_quants, fits
from .errors import FitcheckError, HubError, InputError, UsageError
from .model import QuantReport, Report, Settings, Verdict
from .probe.overrides import HardwareOverrides

__all__ = ["FitcheckError", "HardwareOverrides", "HubError", "InputError", "QuantReport", "Report", "Settings",
           "UsageError", "Verdict", "__version__", "check", "check_model", "compare_quants", "fits"]
