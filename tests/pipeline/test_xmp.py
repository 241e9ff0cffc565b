"""XMP sidecars: valid XML for any prompt, read back by the real exiftool, never clobbering others' files."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.pipeline.metadata import extract
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.pipeline.xmp import ForeignSidecar, build_xmp, sidecar_path, write_sidecar
from tests.pipeline import samples, samples_c2pa, samples_civitai, samples_novelai

HOSTILE = (
    "quotes \" ' <tag> & amp; ]]> ctrl\x00\x01\x08\x0b\x1f\x7f nonchar \ufffe emoji 🐱‍👤 CJK 漢字 RTL שלום"
)


# exiftool 13 from npm exiftool-vendored.pl (scripts/setup --dev): Debian 12's 12.57 predates IPTC 2025.1.
EXIFTOOL = Path(__file__).parents[2] / ".venv/exiftool/node_modules/exiftool-vendored.pl/bin/exiftool"


def exiftool(path: Path) -> dict[str, Any]:
    assert EXIFTOOL.is_file(), f"{EXIFTOOL} is missing: run scripts/setup --dev"
    out = subprocess.run(
        ["perl", str(EXIFTOOL), "-j", "-struct", "-G1", "-n", str(path)], capture_output=True, check=True
    )
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def test_the_exiftool_used_is_current() -> None:
    """The XMP tests read back with exiftool 13 or later (the IPTC 2025.1 AI fields)."""
    version = subprocess.run(["perl", str(EXIFTOOL), "-ver"], capture_output=True, check=True, text=True)
    assert float(version.stdout) >= 13.0


def test_exiftool_reads_back_the_issue_19_fields(tmp_path: Path) -> None:
    """Denoise, pixel size, NovelAI characters, Civitai AIRs and the C2PA source type come back."""
    novelai = extract(samples_novelai.novelai_stealth_png(tmp_path / "n.png")).record
    civitai = extract(samples_civitai.civitai_upscale_jpeg(tmp_path / "c.jpg")).record
    c2pa = extract(
        samples_c2pa.png_with_manifest(
            tmp_path / "g.png",
            samples_c2pa.store(
                samples_c2pa.CHATGPT_CLAIM,
                "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            ),
        )
    ).record
    for name, record in (("n", novelai), ("c", civitai), ("g", c2pa)):
        write_sidecar(tmp_path / f"{name}.xmp", build_xmp(record))
    tags = exiftool(tmp_path / "n.xmp")
    assert tags["XMP-mediasyncd:Characters"] == [
        {"Prompt": "girl, red hair, reading", "NegativePrompt": "glasses"},
        {"Prompt": "girl, black hair, 咖啡"},
    ]
    assert (tags["XMP-mediasyncd:PixelWidth"], tags["XMP-mediasyncd:PixelHeight"]) == (96, 80)
    tags = exiftool(tmp_path / "c.xmp")
    assert tags["XMP-mediasyncd:Denoise"] == 0.3
    assert tags["XMP-mediasyncd:Resources"] == [samples_civitai.CHECKPOINT_AIR, samples_civitai.LORA_AIR]
    tags = exiftool(tmp_path / "g.xmp")
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert (tags["XMP-iptcExt:AISystemUsed"], tags["XMP-mediasyncd:C2PAClaimGenerator"]) == (
        "ChatGPT",
        "ChatGPT",
    )
    assert "ExifTool:Warning" not in tags


def forge_record(tmp_path: Path) -> GenerationRecord:
    return extract(samples.forge_png(tmp_path / "f.png")).record


def test_exiftool_reads_back_every_field(tmp_path: Path) -> None:
    """exiftool reads description, subject, CreatorTool, IPTC AI fields and the mediasyncd settings."""
    record = forge_record(tmp_path)
    path = tmp_path / "f.png.xmp"
    write_sidecar(path, build_xmp(record))
    tags = exiftool(path)
    assert tags["XMP-dc:Description"] == record.prompt
    assert tags["XMP-iptcExt:AIPromptInformation"] == record.prompt
    assert tags["XMP-dc:Subject"] == [
        "forge",
        "juggernautXL_v9Rundiffusionphoto2",
        "detail_tweaker",
        "add_more",
    ]
    assert tags["XMP-xmp:CreatorTool"] == "forge f2.0.1v1.10.1-previous-633-ge073e4ec"
    assert (
        tags["XMP-iptcExt:DigitalSourceType"]
        == "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    )
    assert (tags["XMP-iptcExt:AISystemUsed"], tags["XMP-iptcExt:AISystemVersionUsed"]) == (
        "forge",
        record.generator_version,
    )
    assert tags["XMP-mediasyncd:NegativePrompt"] == record.negative_prompt
    assert (tags["XMP-mediasyncd:Model"], tags["XMP-mediasyncd:ModelHash"]) == (
        record.model,
        record.model_hash,
    )
    assert (tags["XMP-mediasyncd:Sampler"], tags["XMP-mediasyncd:Scheduler"]) == ("DPM++ 2M", "Karras")
    assert (tags["XMP-mediasyncd:Steps"], tags["XMP-mediasyncd:CFGScale"], tags["XMP-mediasyncd:Seed"]) == (
        28,
        6.5,
        3141592653,
    )
    assert (tags["XMP-mediasyncd:Width"], tags["XMP-mediasyncd:Height"]) == (832, 1216)
    assert json.loads(tags["XMP-mediasyncd:Hires"])["upscaler"] == "4x-UltraSharp"
    assert tags["XMP-mediasyncd:Loras"] == ["detail_tweaker:0.8", "add_more"]
    assert tags["XMP-mediasyncd:Raw"] == [{"RawKey": "parameters", "RawValue": samples.FORGE_PARAMETERS}]


def test_exiftool_reads_cjk_and_emoji_prompt(tmp_path: Path) -> None:
    """CJK and emoji in the prompt survive the round trip through exiftool."""
    record = replace(forge_record(tmp_path), prompt="東京の夜景 🌃 и кириллица")
    write_sidecar(tmp_path / "p.xmp", build_xmp(record))
    assert exiftool(tmp_path / "p.xmp")["XMP-dc:Description"] == "東京の夜景 🌃 и кириллица"


def test_comfyui_workflow_json_is_kept_raw(tmp_path: Path) -> None:
    """The ComfyUI prompt and workflow JSON come back from exiftool byte for byte."""
    record = extract(samples.comfyui_png(tmp_path / "c.png")).record
    write_sidecar(tmp_path / "c.png.xmp", build_xmp(record))
    raw = {
        item["RawKey"]: item["RawValue"] for item in exiftool(tmp_path / "c.png.xmp")["XMP-mediasyncd:Raw"]
    }
    assert json.loads(raw["workflow"]) == samples.comfyui_workflow()
    assert json.loads(raw["prompt"]) == samples.comfyui_graph()


def test_hostile_text_gives_well_formed_xml(tmp_path: Path) -> None:
    """Quotes, markup, control characters and non-characters still give well-formed XML."""
    record = GenerationRecord(
        generator="forge", prompt=HOSTILE, negative_prompt=HOSTILE, raw={"a<b": HOSTILE}
    )
    document = build_xmp(record)
    root = ET.fromstring(document.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    description = root.find(
        ".//{http://purl.org/dc/elements/1.1/}description//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"
    )
    assert description is not None and description.text is not None
    assert description.text.startswith("quotes \" ' <tag> & amp; ]]> ctrl\ufffd")
    assert "🐱‍👤 CJK 漢字 RTL שלום" in description.text


def test_exiftool_accepts_hostile_text(tmp_path: Path) -> None:
    """exiftool parses a sidecar built from hostile text without warnings."""
    write_sidecar(tmp_path / "h.xmp", build_xmp(GenerationRecord(generator="x", prompt=HOSTILE)))
    tags = exiftool(tmp_path / "h.xmp")
    assert "ExifTool:Warning" not in tags and "emoji 🐱‍👤" in tags["XMP-dc:Description"]


def test_sidecar_naming() -> None:
    """ "ext" naming keeps the image extension (digiKam/darktable), "stem" replaces it."""
    assert sidecar_path(Path("a/b.png"), "ext") == Path("a/b.png.xmp")
    assert sidecar_path(Path("a/b.png"), "stem") == Path("a/b.xmp")


def test_rewrite_of_same_document_is_a_no_op(tmp_path: Path) -> None:
    """Writing the identical sidecar again reports it unchanged."""
    document = build_xmp(forge_record(tmp_path))
    assert write_sidecar(tmp_path / "s.xmp", document) is True
    assert write_sidecar(tmp_path / "s.xmp", document) is False


def test_foreign_sidecar_is_never_overwritten(tmp_path: Path) -> None:
    """A sidecar written by another tool (darktable edits) is left byte for byte."""
    theirs = tmp_path / "f.png.xmp"
    theirs.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><!-- darktable history --></x:xmpmeta>')
    with pytest.raises(ForeignSidecar):
        write_sidecar(theirs, build_xmp(forge_record(tmp_path)))
    assert "darktable history" in theirs.read_text()


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    """The atomic write leaves only the sidecar in the directory."""
    samples.forge_png(tmp_path / "f.png")
    write_sidecar(tmp_path / "f.png.xmp", build_xmp(forge_record(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.png.xmp"]


def test_a_rating_set_by_a_photo_tool_survives_a_rewrite(tmp_path: Path) -> None:
    """exiftool sets xmp:Rating in our sidecar; reprocessing rewrites the sidecar and keeps the rating."""
    record = forge_record(tmp_path)
    path = tmp_path / "f.png.xmp"
    write_sidecar(path, build_xmp(record))
    subprocess.run(
        ["perl", str(EXIFTOOL), "-q", "-overwrite_original", "-XMP-xmp:Rating=4", str(path)], check=True
    )
    assert write_sidecar(path, build_xmp(replace(record, seed=7))) is True
    tags = exiftool(path)
    assert (tags["XMP-xmp:Rating"], tags["XMP-mediasyncd:Seed"]) == (4, 7)
    assert write_sidecar(path, build_xmp(replace(record, seed=7))) is False
