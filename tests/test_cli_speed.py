"""Speed on the command line: the JSON `speed` object, --gpu what-if hardware and compare mode."""

from __future__ import annotations

import json

from tests.test_cli import EXAMPLE, _one_line_error, fitcheck


def test_json_speed_object_for_a_named_gpu():
    r = fitcheck(EXAMPLE, "--json", "--gpu", "RTX 3090", "--ram", "64G", "-c", "8k")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    s = doc["speed"]
    assert set(s) >= {"decode_tokens_per_s", "prompt_tokens_per_s", "limited_by", "assumptions"}
    assert 0 < s["decode_tokens_per_s"]["low"] < s["decode_tokens_per_s"]["high"]
    assert 0 < s["prompt_tokens_per_s"]["low"] < s["prompt_tokens_per_s"]["high"]
    assert s["limited_by"].startswith("RTX 3090")
    assert doc["hardware"]["gpus"][0]["bandwidth_gbps"] > 900 and doc["hardware"]["source"] == "override"


def test_vram_alone_gives_memory_but_no_speed():
    r = fitcheck(EXAMPLE, "--json", "--vram", "24G", "--ram", "64G")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["speed"] is None and any("memory bandwidth" in n for n in doc["notes"])


def test_compare_mode_one_row_per_gpu():
    r = fitcheck(EXAMPLE, "--json", "-c", "16k", "--ram", "32G", "--ram-bandwidth", "50",
                 "--gpu", "RTX 3060 12GB", "--gpu", "RTX 3060 8GB", "--gpu", "2x RTX 3090")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    labels = [o["gpu"] for o in doc["options"]]
    assert labels == ["RTX 3060 12GB", "RTX 3060 8GB", "2x RTX 3090"]
    verdicts = [o["plan"]["verdict"] for o in doc["options"]]
    assert verdicts[0] == "gpu" and verdicts[2] == "gpu"
    assert len(doc["options"][2]["hardware"]["gpus"]) == 2
    speeds = [o["speed"]["decode_tokens_per_s"]["low"] for o in doc["options"]]
    assert speeds[2] > speeds[0] > speeds[1]  # a 3090 pair beats the 12 GB card, which beats the 8 GB one
    memory = {json.dumps(o["memory"]) for o in doc["options"]}
    assert len(memory) == 1  # the model's need does not depend on the machine


def test_compare_table_and_exit_code():
    r = fitcheck(EXAMPLE, "-c", "8k", "--ram", "16G", "--ram-bandwidth", "50", "--require", "gpu",
                 "--gpu", "GTX 1050", "--gpu", "RTX 4090")
    assert r.returncode == 0, r.stderr  # one of them fits on the GPU
    assert "Hardware compared" in r.stdout and "RTX 4090" in r.stdout and "generate tok/s" in r.stdout
    alone = fitcheck(EXAMPLE, "-c", "8k", "--ram", "16G", "--ram-bandwidth", "50", "--require", "gpu",
                     "--gpu", "GTX 1050", "--gpu", "GTX 1050 Ti")
    assert alone.returncode == 1


def test_ambiguous_gpu_is_a_usage_error_listing_candidates():
    r = fitcheck(EXAMPLE, "--gpu", "RTX 3060")
    assert r.returncode == 2
    line = _one_line_error(r, 2)
    assert "RTX 3060 12GB" in line and "RTX 3060 8GB" in line


def test_speed_in_the_table_and_the_sweep():
    r = fitcheck(EXAMPLE, "--gpu", "RTX 4060 Ti 16GB", "-c", "8k,32k")
    assert r.returncode == 0, r.stderr
    assert "speed    generates" in r.stdout and "tok/s at that context" in r.stdout
