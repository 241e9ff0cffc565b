"""NovelAI: stealth pnginfo in the alpha channel, WebP with EXIF, v4 character prompts."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples, samples_novelai
from tests.pipeline.samples_novelai import V4_COMMENT


def test_stealth_pngcomp_from_novelai_is_read_when_the_text_chunks_are_gone(tmp_path: Path) -> None:
    """A NovelAI PNG stripped of its text chunks: prompt, settings and model from the alpha LSBs."""
    extraction = extract(samples_novelai.novelai_stealth_png(tmp_path / "nai.png"))
    record = extraction.record
    assert extraction.error is None
    assert (record.generator, record.prompt, record.negative_prompt) == (
        "novelai",
        V4_COMMENT["prompt"],
        V4_COMMENT["uc"],
    )
    assert (record.seed, record.steps, record.cfg, record.width, record.height) == (
        1234567890,
        23,
        5.5,
        832,
        1216,
    )
    assert (record.model, record.model_hash) == ("NovelAI Diffusion V4 Full", "4F7EF1E0")
    assert (record.pixel_width, record.pixel_height) == (96, 80)
    assert set(record.raw) == {"stealth_pngcomp"}


def test_novelai_v4_character_prompts_keep_their_own_negatives(tmp_path: Path) -> None:
    """v4 char_captions: each character's prompt, its negative (by position) and its centre."""
    record = extract(samples_novelai.novelai_stealth_png(tmp_path / "nai.png")).record
    document = record.as_json("nai.png")
    assert document["characters"] == [
        {"prompt": "girl, red hair, reading", "negative_prompt": "glasses", "center": {"x": 0.3, "y": 0.5}},
        {"prompt": "girl, black hair, 咖啡", "negative_prompt": None, "center": {"x": 0.7, "y": 0.5}},
    ]


def test_webui_stealth_pnginfo_plain_and_gzip_carry_a1111_parameters(tmp_path: Path) -> None:
    """sd-webui-stealth-pnginfo, plain and compressed: the hidden `parameters` text parses as A1111."""
    for compressed in (False, True):
        path = samples_novelai.webui_stealth_png(
            tmp_path / f"s{compressed}.png", samples.FORGE_PARAMETERS, compressed=compressed
        )
        record = extract(path).record
        assert (record.generator, record.seed, record.steps) == ("forge", 3141592653, 28), compressed
        assert record.prompt is not None and record.prompt.startswith(samples.PROMPT)


def test_webui_stealth_rgb_mode_plain_and_gzip(tmp_path: Path) -> None:
    """The extension's RGB mode (an RGB PNG, three bits a pixel): read when the text chunks are gone."""
    for compressed in (False, True):
        path = samples_novelai.webui_stealth_png(
            tmp_path / f"r{compressed}.png", samples.FORGE_PARAMETERS, compressed=compressed, mode="rgb"
        )
        extraction = extract(path)
        record = extraction.record
        assert extraction.error is None
        assert (record.generator, record.seed, record.steps) == ("forge", 3141592653, 28), compressed
        assert ("stealth_rgbcomp" if compressed else "stealth_rgbinfo") in record.raw


def test_an_rgb_png_without_text_or_signature_reads_as_no_metadata(tmp_path: Path) -> None:
    """A plain RGB PNG is decoded once for the RGB signature and reads as an image without metadata."""
    extraction = extract(samples.png(tmp_path / "plain.png"))
    assert extraction.error is None and not extraction.record.has_metadata
    assert extraction.notes == ()


def test_an_rgba_png_without_a_signature_reads_as_no_metadata(tmp_path: Path) -> None:
    """Ordinary transparency is not mistaken for stealth data."""
    path = tmp_path / "plain.png"
    samples.solid().convert("RGBA").save(path)
    extraction = extract(path)
    assert extraction.error is None and not extraction.record.has_metadata


def test_a_stealth_payload_longer_than_the_image_is_a_note_not_an_error(tmp_path: Path) -> None:
    """A signature with a length past the last pixel: no record, a note, no exception."""
    path = samples_novelai.novelai_stealth_png(tmp_path / "nai.png")
    with Image.open(path) as image:
        image.load()
        cropped = image.crop((0, 0, 4, 80))  # keeps the signature and length, loses the payload
    cropped.save(path)
    extraction = extract(path)
    assert not extraction.record.has_metadata
    assert any("does not fit" in note for note in extraction.notes)


def test_novelai_webp_exif_user_comment(tmp_path: Path) -> None:
    """NovelAI WebP: the text chunks' JSON in EXIF UserComment (UTF-16LE) parses like the PNG."""
    record = extract(samples_novelai.novelai_webp(tmp_path / "nai.webp")).record
    assert (record.generator, record.prompt, record.seed, record.model) == (
        "novelai",
        V4_COMMENT["prompt"],
        1234567890,
        "NovelAI Diffusion V4 Full",
    )
    assert len(record.characters) == 2
