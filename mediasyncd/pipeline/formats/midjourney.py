"""Midjourney: images downloaded from midjourney.com carry a PNG `Description` text (EXIF ImageDescription
in JPEG/WebP) of the prompt, its `--` parameters and the job: "a red fox --ar 16:9 --v 6.1 Job ID: <uuid>",
beside `Author` and `Creation Time`. There is no negative prompt, step count, CFG or checkpoint to read;
`--seed` is there only when the user set one, `--v`/`--niji` name the model version.
"""

from __future__ import annotations

import re

from mediasyncd.pipeline.record import GenerationRecord, as_int

_JOB = re.compile(r"\s*Job ID:\s*[0-9a-fA-F-]{8,}\s*$")


def is_midjourney(texts: dict[str, str]) -> bool:
    return _JOB.search(_description(texts)) is not None


def _description(texts: dict[str, str]) -> str:
    return texts.get("Description") or texts.get("ImageDescription") or ""


def parse_midjourney(texts: dict[str, str], raw: dict[str, str]) -> GenerationRecord:
    """The prompt (the text before the first `--` parameter), the seed and the version it names."""
    body = _JOB.sub("", _description(texts))
    at = re.search(r"(?:^|\s)--[a-z]", body)
    prompt = (body[: at.start()] if at else body).strip() or None
    params = dict(_params(body[at.start() :] if at else ""))
    version = params.get("v") or params.get("version")
    niji = params.get("niji")
    return GenerationRecord(
        generator="midjourney",
        generator_version=f"niji {niji}" if niji else version,
        prompt=prompt,
        seed=as_int(params.get("seed")),
        raw=raw,
    )


def _params(text: str) -> list[tuple[str, str]]:
    """`--name value` pairs ("--ar 16:9 --v 6.1 --tile" -> ar=16:9, v=6.1, tile="")."""
    found = []
    for chunk in re.split(r"(?:^|\s)--", text)[1:]:
        name, _, value = chunk.strip().partition(" ")
        if name:
            found.append((name.lower(), value.strip()))
    return found
