"""Midjourney's Description text: the prompt before its `--` parameters, the seed and version it names."""

from __future__ import annotations

from pathlib import Path

from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples, samples_apps


def test_prompt_seed_and_version_come_from_the_description(tmp_path: Path) -> None:
    path = samples_apps.midjourney_png(
        tmp_path / "m.png", "a red fox in deep snow, 雪 --ar 16:9 --seed 4242 --stylize 80 --v 6.1"
    )
    record = extract(path).record
    assert (record.generator, record.generator_version) == ("midjourney", "6.1")
    assert (record.prompt, record.seed) == ("a red fox in deep snow, 雪", 4242)
    assert (record.steps, record.cfg, record.model, record.negative_prompt) == (None, None, None, None)
    assert (record.width, record.height) == (112, 63)  # no generation size is written: the pixels
    assert record.raw["Author"] == "someone"


def test_niji_and_no_parameters(tmp_path: Path) -> None:
    niji = extract(samples_apps.midjourney_png(tmp_path / "n.png", "cat girl --niji 6")).record
    assert (niji.prompt, niji.generator_version, niji.seed) == ("cat girl", "niji 6", None)
    bare = extract(samples_apps.midjourney_png(tmp_path / "b.png", "just a prompt")).record
    assert (bare.generator, bare.prompt, bare.generator_version) == ("midjourney", "just a prompt", None)


def test_a_description_without_a_job_id_is_not_midjourney(tmp_path: Path) -> None:
    """Any other tool's Description (e.g. a photo's caption) is left alone."""
    path = samples.png(tmp_path / "p.png", text={"Description": "holiday photo --ar 3:2"})
    assert not extract(path).record.has_metadata
