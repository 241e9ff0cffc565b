"""Metadata of the right shape but the wrong types is read as far as it goes, never as unreadable."""

from __future__ import annotations

import json
from pathlib import Path

from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples


def test_a_lora_list_of_the_wrong_type_reads_as_no_loras(tmp_path: Path) -> None:
    """`"loras": 5` in Fooocus metadata yields the prompt and no LoRAs, not "unreadable metadata"."""
    data = {
        "prompt": "a cat",
        "loras": 5,
        "steps": 30,
        "metadata_scheme": "fooocus",
        "version": "Fooocus v2.5.5",
    }
    path = samples.png(tmp_path / "f.png", text={"parameters": json.dumps(data), "fooocus_scheme": "fooocus"})
    extraction = extract(path)
    assert extraction.error is None
    assert extraction.record.prompt == "a cat" and extraction.record.loras == ()
