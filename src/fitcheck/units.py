"""Parsing of the sizes people type: contexts (32k, 1M) and memory (24G, 24GiB, 24GB, 512M)."""

from __future__ import annotations

import re

from .errors import UsageError

_CTX_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB]?)\s*$")


def parse_ctx(text: str) -> int:
    """'32k' and '32K' are 32768, '1M' is 1048576, '8192' is 8192 (llama.cpp's contexts are powers of two).
    '0' is 0: the training context, as llama.cpp reads `-c 0` (common/arg.cpp: "0 = loaded from model")."""
    m = _CTX_RE.match(text)
    if not m:
        raise UsageError(f"bad context size {text!r}", hint="use a number of tokens such as 8192, 32k or 1M")
    value = float(m[1]) * {"": 1, "k": 1024, "m": 1024**2}[m[2].lower()]
    if value != int(value):
        raise UsageError(f"bad context size {text!r}", hint="a whole number of tokens (0 = the training context)")
    return int(value)


def parse_memory(text: str) -> int:
    """Bytes. G, GiB, M, MiB, K, T are binary (powers of 1024); GB, MB, KB, TB are decimal. A number without a
    unit is refused (is `--vram 24` 24 bytes or 24 GiB?), except 0."""
    m = _MEM_RE.match(text)
    if not m:
        raise UsageError(f"bad memory size {text!r}", hint="use e.g. 24G, 24GiB, 24GB or 512M")
    if not m[2] and not m[3] and float(m[1]) != 0:
        raise UsageError(f"memory size {text!r} has no unit",
                         hint=f"write {m[1]}G for GiB (binary) or {m[1]}GB for decimal gigabytes")
    prefix, suffix = m[2].lower(), m[3]
    decimal = suffix.lower() == "b" and prefix != ""
    base = 1000 if decimal else 1024
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[prefix]
    return int(float(m[1]) * base**power)


def parse_memory_list(text: str) -> list[int]:
    return [parse_memory(part) for part in text.split(",") if part.strip()]


def parse_ctx_list(text: str) -> list[int]:
    """One context, or a comma-separated sweep (duplicates dropped, order kept)."""
    values = [parse_ctx(part) for part in text.split(",") if part.strip()]
    if not values:
        raise UsageError(f"bad context size {text!r}")
    return list(dict.fromkeys(values))


def parse_split(text: str) -> tuple[float, ...]:
    """-ts 3,1 (llama.cpp also accepts 3/1)."""
    try:
        shares = tuple(float(part) for part in re.split(r"[,/]", text) if part.strip())
    except ValueError:
        raise UsageError(f"bad -ts value {text!r}", hint="shares per GPU such as 3,1") from None
    if not shares or any(s < 0 for s in shares) or not any(shares):
        raise UsageError(f"bad -ts value {text!r}", hint="non-negative shares, at least one above zero")
    return shares


def parse_overrides(values: list[str]) -> tuple[tuple[str, str], ...]:
    """-ot REGEX=DEVICE, several per option separated by commas, as llama.cpp reads them."""
    pairs = []
    for value in values:
        for item in value.split(","):
            pattern, sep, device = item.rpartition("=")
            if not sep or not pattern or not device:
                raise UsageError(f"bad -ot value {item!r}", hint=r"use REGEX=DEVICE, e.g. 'blk\.[0-9]\.ffn_.*=CPU'")
            pairs.append((pattern, device))
    return tuple(pairs)


_RPC_RE = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]:]+:\d{1,5})\s*=\s*(\S+)\s*$")


def parse_rpc(text: str) -> tuple[str, int]:
    m = _RPC_RE.match(text)
    if not m:
        raise UsageError(f"bad --rpc value {text!r}", hint="use HOST:PORT=MEMORY, e.g. 192.168.1.20:50052=24G")
    return m[1], parse_memory(m[2])
