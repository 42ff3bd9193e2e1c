"""Parsing of the sizes people type: contexts (32k, 1M) and memory (24G, 24GiB, 24GB, 512M)."""

from __future__ import annotations

import re

from .errors import UsageError

_CTX_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB]?)\s*$")


def parse_ctx(text: str) -> int:
    """'32k' and '32K' are 32768, '1M' is 1048576, '8192' is 8192 (llama.cpp's contexts are powers of two)."""
    m = _CTX_RE.match(text)
    if not m:
        raise UsageError(f"bad context size {text!r}", hint="use a number of tokens such as 8192, 32k or 1M")
    value = float(m[1]) * {"": 1, "k": 1024, "m": 1024**2}[m[2].lower()]
    if value < 1 or value != int(value):
        raise UsageError(f"bad context size {text!r}", hint="a whole, positive number of tokens")
    return int(value)


def parse_memory(text: str) -> int:
    """Bytes. G, GiB, M, MiB, K, T are binary (powers of 1024); GB, MB, KB, TB are decimal; bare = bytes."""
    m = _MEM_RE.match(text)
    if not m:
        raise UsageError(f"bad memory size {text!r}", hint="use e.g. 24G, 24GiB, 24GB or 512M")
    prefix, suffix = m[2].lower(), m[3]
    decimal = suffix.lower() == "b" and prefix != ""
    base = 1000 if decimal else 1024
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[prefix]
    return int(float(m[1]) * base**power)


def parse_memory_list(text: str) -> list[int]:
    return [parse_memory(part) for part in text.split(",") if part.strip()]
