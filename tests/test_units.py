import pytest

from fitcheck.errors import UsageError
from fitcheck.units import parse_ctx, parse_memory, parse_memory_list


@pytest.mark.parametrize("text,value", [("32k", 32768), ("32K", 32768), ("32768", 32768), ("128k", 131072),
                                        ("1M", 1048576), ("4096", 4096)])
def test_contexts(text, value):
    assert parse_ctx(text) == value


@pytest.mark.parametrize("text,value", [("12G", 12 * 2**30), ("12GiB", 12 * 2**30), ("12GB", 12 * 10**9),
                                        ("512M", 512 * 2**20), ("512MiB", 512 * 2**20), ("1.5G", 3 * 2**29),
                                        ("1T", 2**40), ("1000B", 1000), ("0", 0)])
def test_memory(text, value):
    assert parse_memory(text) == value


def test_memory_list():
    assert parse_memory_list("24G,12G") == [24 * 2**30, 12 * 2**30]


@pytest.mark.parametrize("text", ["", "abc", "-5", "1.5", "32x"])
def test_bad_context(text):
    with pytest.raises(UsageError):
        parse_ctx(text)


def test_context_zero_is_the_training_context():
    assert parse_ctx("0") == 0  # llama.cpp: -c 0 = loaded from the model


@pytest.mark.parametrize("text", ["24", "1000", "0.5"])
def test_memory_without_a_unit_is_refused(text):
    # issue 13 #6: `--vram 24` used to mean 24 bytes
    with pytest.raises(UsageError, match="no unit"):
        parse_memory(text)


@pytest.mark.parametrize("text", ["", "G", "12Q", "twelve"])
def test_bad_memory(text):
    with pytest.raises(UsageError):
        parse_memory(text)
