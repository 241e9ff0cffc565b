"""Generation metadata in video containers (mp4, webm, mkv, mov), read through ffprobe.

ComfyUI writes the same `prompt` and `workflow` JSON into videos as into PNGs, in two ways:
VideoHelperSuite's Video Combine puts one JSON object `{"prompt": "<json>", "workflow": {...}}` into the
container's `comment` tag; ComfyUI's own SaveVideo writes `prompt` and `workflow` as tags of their own.
Both become the texts the image parsers already read (`prompt`, `workflow`). Other tags stay in `raw`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediasyncd.pipeline.orphans import deathsig

COMFY_KEYS = ("prompt", "workflow")
# What muxers write about themselves, not about the generation: left out of the record.
TECHNICAL_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name"})
MAX_TAG_CHARS = 16 * 1024 * 1024  # as for a PNG text chunk


@dataclass
class VideoTags:
    texts: dict[str, str] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    error: str | None = None  # the video itself is unreadable
    note: str | None = None  # the tags were not read (no ffprobe, too slow); the video may be fine


def last_line(stderr: bytes, default: str) -> str:
    """What an ffmpeg-family tool said last on stderr (its reason for failing), or `default`."""
    lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else default


def ffprobe_for(ffmpeg: str) -> str:
    """ffprobe ships with ffmpeg: next to it when `ffmpeg` is a path, else found on PATH."""
    if os.sep not in ffmpeg:
        return "ffprobe"
    return str(Path(ffmpeg).with_name(Path(ffmpeg).name.replace("ffmpeg", "ffprobe")))


def read_video_tags(path: Path, ffprobe: str, timeout: float) -> VideoTags:
    """The container's tags as parser texts, and the first video stream's size."""
    command = [ffprobe, "-v", "error", "-print_format", "json", "-show_entries"]
    command += ["format_tags:stream=codec_type,width,height", "-select_streams", "v:0", str(path)]
    try:
        done = subprocess.run(deathsig(command), capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return VideoTags(note=f"video metadata not read: {ffprobe} not found")
    except subprocess.TimeoutExpired:
        return VideoTags(note=f"video metadata not read: ffprobe took longer than {timeout:g}s")
    if done.returncode != 0:
        return VideoTags(error=f"unreadable video: {last_line(done.stderr, 'ffprobe failed')}")
    try:
        probed = json.loads(done.stdout)
    except ValueError:
        return VideoTags(error="unreadable video: ffprobe printed no JSON")
    found = parse_probe(probed if isinstance(probed, dict) else {})
    if found.width is None:
        found.error = f"unreadable video: no video stream ({last_line(done.stderr, 'ffprobe found none')})"
    return found


def parse_probe(probed: dict[str, Any]) -> VideoTags:
    """ffprobe's JSON (`format.tags`, `streams[0]`) as parser texts and a pixel size."""
    found = VideoTags()
    tags = (probed.get("format") or {}).get("tags") or {}
    found.texts = texts_from_tags({str(k): str(v) for k, v in tags.items() if isinstance(v, str | int)})
    streams = probed.get("streams") or []
    if streams and isinstance(streams[0], dict):
        width, height = streams[0].get("width"), streams[0].get("height")
        if isinstance(width, int) and isinstance(height, int):
            found.width, found.height = width, height
    return found


def texts_from_tags(tags: dict[str, str]) -> dict[str, str]:
    """Container tags → parser texts: ComfyUI's `prompt`/`workflow` lifted out of a JSON `comment`,
    or taken from tags of those names; every other tag kept under its own name."""
    texts = {
        key: value
        for key, value in tags.items()
        if len(value) <= MAX_TAG_CHARS and key.lower() not in TECHNICAL_TAGS
    }
    lowered = {key.lower(): key for key in texts}
    for name in (*COMFY_KEYS, "comment"):  # Matroska spells tags in capitals (COMMENT)
        if name in lowered:
            texts[name] = texts.pop(lowered[name])
    comment = texts.get("comment", "")
    if comment.lstrip().startswith("{"):
        try:
            document = json.loads(comment)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for name in COMFY_KEYS:
                value = document.get(name)
                if value is not None and name not in texts:
                    texts[name] = value if isinstance(value, str) else json.dumps(value)
    return texts
