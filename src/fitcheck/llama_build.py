"""Which llama.cpp build the figures are for: `--llama-cpp BUILD` and the allocation rules that changed.

data/llama_cpp_builds.yaml lists every rule fitcheck models that changed across builds, with the build that
changed it; a build is llama.cpp's release number (b6000 = the 6000th commit on master). None = the newest
behaviour fitcheck knows (every rule on), which needs no table. Pure: parsing and a packaged table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import UsageError


@dataclass(frozen=True)
class Rule:
    rule: str
    build: int
    pr: int
    before: str
    since: str
    source: str
    exact_build: bool = True  # False: `build` is the first build that may have it (the merge's is not known)


@dataclass(frozen=True)
class Behaviour:
    """The build-dependent allocation rules, as one build has them."""

    kq_mask_f16: bool = True  # flash attention's KQ mask is created in f16 (else f32, cast on the device)
    n_outputs_max: bool = True  # llama-server reserves one output per sequence (else one per micro-batch token)
    inp_embd_input: bool = True  # the reserve graph holds the vector-embeddings input beside the token path


LATEST = Behaviour()


def parse_build(text: str) -> int | None:
    """`b6000`, `6000` or `latest` (None)."""
    value = text.strip().lower()
    if value in ("latest", ""):
        return None
    m = re.fullmatch(r"b?(\d{1,6})", value)
    if not m or int(m[1]) < 1:
        raise UsageError(f"--llama-cpp {text!r}: expected a build number such as b6000 or 6000, or 'latest'")
    return int(m[1])


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    from .data import load_yaml

    table = load_yaml("llama_cpp_builds.yaml")
    return tuple(Rule(str(r["rule"]), int(r["build"]), int(r["pr"]), str(r["before"]).strip(),
                      str(r["since"]).strip(), str(r["source"]), bool(r.get("exact_build", True)))
                 for r in table["rules"])


def behaviour(build: int | None) -> Behaviour:
    if build is None:
        return LATEST
    on = {r.rule: build >= r.build for r in rules()}
    return Behaviour(kq_mask_f16=on.get("kq_mask_f16", True), n_outputs_max=on.get("n_outputs_max", True),
                     inp_embd_input=on.get("inp_embd_input", True))


def label(build: int | None) -> str:
    return "latest" if build is None else f"b{build}"
