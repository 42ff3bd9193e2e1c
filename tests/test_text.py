"""Untrusted text in messages: escaped, cut, one line; credentials redacted from debug tracebacks."""

from __future__ import annotations

from fitcheck.text import MAX_SHOWN, escape, one_line, quoted, redact, shown


def test_controls_and_escapes_are_written_as_escapes():
    assert escape("a\nb\x1b[31mc\x07\x7f\x9b") == "a\\x0ab\\x1b[31mc\\x07\\x7f\\x9b"
    assert escape("\u202etxt\u2028\xa0") == "\\u202etxt\\u2028\\xa0"  # bidi override, line separator, nbsp
    assert escape("plain ascii, é and 中文") == "plain ascii, é and 中文"


def test_shown_cuts_with_an_ellipsis_and_never_splits_an_escape():
    assert shown("x" * 200) == "x" * (MAX_SHOWN - 1) + "…"
    cut = shown("\x1b" * 100)
    assert cut.endswith("…") and len(cut) <= MAX_SHOWN and cut[:-1].count("\\x1b") * 4 == len(cut) - 1
    assert shown("short") == "short" and quoted("k\n") == "'k\\x0a'"
    assert len(shown("K" * (8 << 20))) == MAX_SHOWN


def test_non_strings_are_shown_by_repr():
    assert shown(float("nan")) == "nan" and shown(b"\x00") == "b'\\x00'"


def test_one_line():
    assert one_line("error: a\nb\r\n\tc \x1b[2J") == "error: a b c \\x1b[2J"
    assert len(one_line("y" * 10_000)) == 1000


def test_redact():
    text = ("Authorization: Bearer hf_abcdefghijkl {'authorization': 'Bearer xyz'} "
            "https://cdn/x?X-Amz-Signature=abc&expires=1&a=1 secret-value")
    out = redact(text, ("secret-value",))
    assert "hf_abcdefghijkl" not in out and "xyz" not in out and "abc&" not in out and "secret-value" not in out
    assert "a=1" in out and "Authorization: ***" in out
