"""The one exception tree; cli.py turns each kind into a message and an exit code."""


class FitcheckError(Exception):
    """Base of every error fitcheck reports to the user. `hint` says what to try next."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(FitcheckError):
    """Bad command-line values (exit 2)."""

    exit_code = 2


class InputError(FitcheckError):
    """A model reference that cannot be read: missing, not GGUF, corrupt or truncated (exit 3)."""


class SourceError(FitcheckError):
    """A source failed while reading a model (exit 3)."""


class HubError(SourceError):
    """The Hugging Face Hub or an HTTP server failed or refused (exit 3)."""


class HubUnavailable(HubError):
    """The Hub could not be reached or failed on its side (network, timeout, 5xx, 429): a cached answer may
    stand in (exit 3 when none does)."""


class ProbeError(FitcheckError):
    """The hardware could not be read (exit 3). Usually degraded to a note instead."""
