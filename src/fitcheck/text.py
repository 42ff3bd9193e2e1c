"""Untrusted text (key names, tensor names, architecture names, file names from a header or a Hub listing)
made safe to put in a message: one line, no control characters or terminal escapes, and short.

`shown()` is for a piece of untrusted text inside a message; `one_line()` is the last guard on a whole message
before it reaches the terminal (cli.py). Both only ever return printable text: control characters (C0, DEL,
C1, and the escape that starts an ANSI sequence) are written as `\\xNN` / `\\uNNNN`, so nothing a file holds can
move the cursor, recolour the terminal or start a new line.
"""

from __future__ import annotations

import re

MAX_SHOWN = 80  # characters of one untrusted piece in a message
MAX_LINE = 1000  # characters of a whole message line
ELLIPSIS = "…"

_SIMPLE = re.compile(r"[\x20-\x7e]*")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """Every unsafe character written as an escape; printable text (any script) kept."""
    if _SIMPLE.fullmatch(text):
        return text
    # str.isprintable() is False for controls (C0, DEL, C1), format characters (bidi overrides, zero-width),
    # separators other than the space (line/paragraph separators, no-break spaces), surrogates, unassigned
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def truncate(text: str, limit: int = MAX_SHOWN) -> str:
    """At most `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + ELLIPSIS


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """An untrusted value for a message: escaped, then cut to `limit` characters (never in an escape)."""
    text = value if isinstance(value, str) else repr(value)
    # cut before escaping too, so an 8 MiB name costs no 8 MiB escape pass
    raw = text[:limit * 4 + 1]
    out = escape(raw)
    if len(out) <= limit and len(raw) == len(text):
        return out
    # cut on a character boundary of the raw text so an escape is never split in half
    pieces: list[str] = []
    used = 0
    for ch in raw:
        piece = escape(ch)
        if used + len(piece) > limit - 1:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + ELLIPSIS


def quoted(value: object, limit: int = MAX_SHOWN) -> str:
    """`shown()` in single quotes."""
    return f"'{shown(value, limit)}'"


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """A whole message as one safe terminal line: whitespace runs (newlines too) become one space, control
    characters are escaped, the line is cut at `limit` characters."""
    text = message[:limit * 4 + 1]
    text = " ".join(text.split())  # split() treats \n, \r, \t, \v, \f, \x1c-\x1f as spaces
    return truncate(escape(text), limit)


_CREDENTIALS = re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?)(bearer\s+)?[^\s'\",}]+|\bbearer\s+[^\s'\",}]+"
                          r"|\bhf_[A-Za-z0-9]{6,}|([?&](?:token|sig|signature|x-amz-[a-z-]+|expires|policy|key-pair-id)=)"
                          r"[^&\s'\"]+")


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` without credentials: the Hugging Face token (HF_TOKEN or the saved login), Authorization values,
    bearer tokens, hf_ tokens, and signed-URL query parameters; each becomes `***`."""
    if secrets is None:
        secrets = _known_secrets()
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _CREDENTIALS.sub(_redacted, text)


def _redacted(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        return m.group(1) + "***"
    if m.group(3) is not None:
        return m.group(3) + "***"
    return "***" if not m.group(0).lower().startswith("bearer") else "Bearer ***"


def _known_secrets() -> tuple[str, ...]:
    import os

    found = [os.environ.get(name) or "" for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN")]
    try:
        from huggingface_hub import get_token

        found.append(get_token() or "")
    except Exception:  # no huggingface_hub, or an unreadable token file: the environment is all there is
        pass
    return tuple(s for s in found if s)
