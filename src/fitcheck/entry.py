"""The `fitcheck` console command: a remote model's first request leaves before the command line's modules
are imported (sources/prefetch.py), then the command line runs as usual (cli.run), and the process ends
without the interpreter's teardown."""

from __future__ import annotations

import atexit
import os
import sys

_exit_code: int | None = None


def run() -> None:
    atexit.register(_end_now)  # registered first, so it runs last: after every other exit handler
    global _exit_code
    try:
        _prefetch()
        from .cli import run as run_cli

        run_cli()
    except SystemExit as exc:
        _exit_code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else None
        raise


def _prefetch() -> None:
    from .sources.prefetch import start_from_argv

    try:
        start_from_argv(sys.argv[1:], ("scan", "search"))  # cli.SUBCOMMANDS, without importing cli yet
    except KeyboardInterrupt:
        sys.exit(130)  # as cli.run ends a Ctrl-C
    except RuntimeError:  # no thread to be had ("can't start new thread"): the command line reads it itself
        pass


def _end_now() -> None:
    """Skip the interpreter's teardown once everything is written: freeing every module's objects takes
    ~0.1 s after a Hub check (huggingface_hub and its HTTP stack are ~150 modules) and writes nothing.
    Threads were joined and the other exit handlers ran before this one; a failing flush keeps the usual
    path, so a closed pipe ends as Python ends it."""
    if _exit_code is None:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        return
    os._exit(_exit_code)
