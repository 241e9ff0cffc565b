"""ComfyUI's prompt and workflow in videos, as VideoHelperSuite and ComfyUI's SaveVideo write them, read
back through the real ffprobe from files the real ffmpeg made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mediasyncd.pipeline.metadata import extract
from mediasyncd.pipeline.runner import Pipeline
from mediasyncd.pipeline.video_tags import ffprobe_for, texts_from_tags
from mediasyncd.state.catalog import Catalog
from tests.pipeline import samples
from tests.pipeline.conftest import sha256_of

PROMPT = json.dumps(samples.comfyui_graph())
WORKFLOW = samples.comfyui_workflow()


def video(path: Path, *metadata: str) -> Path:
    """A 64x48, 0.2 s clip; `metadata` are extra ffmpeg output options (tags, movflags)."""
    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=c=orange:s=64x48:d=0.2"]
    subprocess.run([*command, "-c:v", "mpeg4", *metadata, str(path)], check=True, capture_output=True)
    return path


def vhs_comment() -> str:
    """Video Combine's `comment`: the prompt as a JSON string, the workflow as an object."""
    return json.dumps({"prompt": PROMPT, "workflow": WORKFLOW})


def test_video_combine_comment_holds_prompt_and_workflow() -> None:
    texts = texts_from_tags({"comment": vhs_comment(), "encoder": "Lavf60.16.100"})
    assert json.loads(texts["prompt"]) == samples.comfyui_graph()
    assert json.loads(texts["workflow"]) == WORKFLOW
    assert "encoder" not in texts  # the muxer's, not the generation's


def test_savevideo_tags_and_unrelated_comments() -> None:
    texts = texts_from_tags({"PROMPT": PROMPT, "workflow": json.dumps(WORKFLOW)})
    assert texts["prompt"] == PROMPT and json.loads(texts["workflow"]) == WORKFLOW
    assert texts_from_tags({"comment": "made on a Tuesday"}) == {"comment": "made on a Tuesday"}
    assert texts_from_tags({"comment": "{not json"}) == {"comment": "{not json"}
    assert texts_from_tags({"comment": '["a list"]'}) == {"comment": '["a list"]'}


def test_ffprobe_sits_next_to_a_configured_ffmpeg() -> None:
    assert ffprobe_for("ffmpeg") == "ffprobe"
    assert ffprobe_for("/opt/ffmpeg-7/bin/ffmpeg") == "/opt/ffmpeg-7/bin/ffprobe"


def test_video_combine_mp4_is_read_like_a_comfyui_png(tmp_path: Path) -> None:
    path = video(tmp_path / "AnimateDiff_00001.mp4", "-metadata", f"comment={vhs_comment()}")
    extraction = extract(path, "ffprobe")
    assert extraction.error is None
    record = extraction.record.as_json("clip", None)
    assert record["generator"] == "comfyui"
    assert record["prompt"] == "a lighthouse at dusk, 灯台\nvolumetric fog"
    assert record["model"] == "sd_xl_base_1.0"


def test_savevideo_mkv_tags_are_read(tmp_path: Path) -> None:
    tags = ["-metadata", f"prompt={PROMPT}", "-metadata", f"workflow={json.dumps(WORKFLOW)}"]
    extraction = extract(video(tmp_path / "ComfyUI_00001_.mkv", *tags), "ffprobe")
    assert extraction.error is None
    assert extraction.record.as_json("clip", None)["seed"] == 987654321


def test_savevideo_mp4_metadata_tags_are_read(tmp_path: Path) -> None:
    tags = ["-movflags", "use_metadata_tags", "-metadata", f"prompt={PROMPT}"]
    extraction = extract(video(tmp_path / "ComfyUI_00002_.mp4", *tags), "ffprobe")
    assert extraction.record.as_json("clip", None)["generator"] == "comfyui"


def test_a_video_without_tags_has_no_metadata_and_no_error(tmp_path: Path) -> None:
    extraction = extract(video(tmp_path / "plain.mp4"), "ffprobe")
    assert extraction.error is None
    assert not extraction.record.has_metadata
    assert (extraction.record.width, extraction.record.height) == (64, 48)


def test_a_broken_video_or_a_missing_ffprobe_is_reported_not_raised(tmp_path: Path) -> None:
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(video(tmp_path / "whole.mp4").read_bytes()[:200])
    assert (extract(broken, "ffprobe").error or "").startswith("unreadable video:")
    missing = extract(tmp_path / "whole.mp4", str(tmp_path / "no-such-ffprobe"))
    assert missing.error is None
    assert missing.notes and "not found" in missing.notes[0]


async def test_a_landed_video_is_searchable_by_its_prompt(
    pipeline: Pipeline, library: Path, db_path: Path
) -> None:
    (library / "comfy").mkdir()
    path = video(library / "comfy" / "clip.mp4", "-metadata", f"comment={vhs_comment()}")
    result = await pipeline.process(path, sha256_of(path), remote="comfy", rel="clip.mp4")
    assert result.stages["metadata"].detail == "comfyui metadata"
    assert [hit.path for hit in Catalog.read_only(db_path).search("lighthouse", 5)] == ["comfy/clip.mp4"]


# AnimateDiff for A1111/Forge, continue-revolution/sd-webui-animatediff `scripts/animatediff_output.py`
# (commit 0878a2f) `_save`: MP4 through PyAV with `output.metadata["Comment"] = infotext`; WebM through
# imageio's pyav plugin with `container_metadata["Title"]` and `["Comment"]` = infotext; GIF through
# Pillow with `comment=infotext`. The ffmpeg CLI's `-metadata Comment=…` fills the same AVDictionary.
ANIMATEDIFF_INFOTEXT = (
    "a koi pond, ukiyo-e, <lora:koi:0.7>\nNegative prompt: photo\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
    'Model: dreamshaper_8, AnimateDiff: "enable: True, model: mm_sd15_v3.safetensors, video_length: 16", '
    "Version: f2.0.1v1.10.1-previous-633-ge073e4ec"
)


def test_animatediff_mp4_and_webm_comment_tag_is_an_a1111_infotext(tmp_path: Path) -> None:
    """MP4 (Comment) and WebM (Title + Comment) from AnimateDiff read as Forge records."""
    mp4 = video(tmp_path / "00001-1234.mp4", "-metadata", f"Comment={ANIMATEDIFF_INFOTEXT}")
    webm = tmp_path / "00002-1234.webm"
    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=c=blue:s=64x48:d=0.2"]
    metadata = ["-metadata", f"Title={ANIMATEDIFF_INFOTEXT}", "-metadata", f"Comment={ANIMATEDIFF_INFOTEXT}"]
    subprocess.run([*command, "-c:v", "libvpx-vp9", *metadata, str(webm)], check=True, capture_output=True)
    for path in (mp4, webm):
        record = extract(path, "ffprobe").record
        assert (record.generator, record.seed, record.steps, record.model) == (
            "forge",
            1234,
            20,
            "dreamshaper_8",
        )
        assert record.prompt == "a koi pond, ukiyo-e, <lora:koi:0.7>" and record.negative_prompt == "photo"


def test_animatediff_gif_comment_is_an_a1111_infotext(tmp_path: Path) -> None:
    """A GIF saved by Pillow with comment=infotext reads as a Forge record."""
    path = tmp_path / "00003-1234.gif"
    frames = [samples.solid(color=(i * 40, 10, 10)) for i in range(3)]
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=125, loop=0, comment=ANIMATEDIFF_INFOTEXT
    )
    record = extract(path).record
    assert (record.generator, record.seed, record.cfg) == ("forge", 1234, 7.0)
