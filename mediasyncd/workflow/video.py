"""Re-encoding a video with ffmpeg for `compress` (`video_profile`), its generation metadata carried.

A profile is a codec, a container and a default CRF. The container's tags are copied (`-map_metadata 0`;
MP4 keeps tags of its own names such as ComfyUI's `prompt`/`workflow` only with `use_metadata_tags`), so
that `mediasyncd inspect` reads the same record from the new file as from the original: VideoHelperSuite's
JSON `comment` and SaveVideo's `prompt`/`workflow` tags alike. ffmpeg writes into the partial the stage
gives it (the muxer named explicitly), dies with mediasyncd (`setpriv --pdeathsig KILL`: a kill -9 of the
daemon leaves no ffmpeg writing on), and the result is verified with ffprobe before it is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mediasyncd.pipeline.orphans import deathsig
from mediasyncd.pipeline.video_tags import ffprobe_for, last_line

VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".mov", ".m4v"})
EVEN = "scale=trunc(iw/2)*2:trunc(ih/2)*2"  # 4:2:0 needs even sizes
MP4_FLAGS = ["-movflags", "+faststart+use_metadata_tags"]


@dataclass(frozen=True)
class Profile:
    name: str
    muxer: str  # ffmpeg's -f
    extension: str
    crf: int  # the default quality (lower: better, larger)
    max_crf: int
    video: tuple[str, ...]
    audio: tuple[str, ...]


PROFILES = {
    p.name: p
    for p in (
        Profile("h264", "mp4", "mp4", 23, 51, ("-c:v", "libx264", "-preset", "medium"), ("-c:a", "aac", "-b:a", "128k")),
        Profile("hevc", "mp4", "mp4", 28, 51, ("-c:v", "libx265", "-preset", "medium", "-tag:v", "hvc1",
                                             "-x265-params", "log-level=error"), ("-c:a", "aac", "-b:a", "128k")),
        Profile("av1", "mp4", "mp4", 35, 63, ("-c:v", "libsvtav1", "-preset", "8"), ("-c:a", "aac", "-b:a", "128k")),
        Profile("vp9", "webm", "webm", 33, 63, ("-c:v", "libvpx-vp9", "-b:v", "0", "-row-mt", "1"),
                ("-c:a", "libopus", "-b:a", "96k")),
    )
}  # fmt: skip


def ffmpeg_command(ffmpeg: str, source: Path, partial: Path, profile: Profile, crf: int | None) -> list[str]:
    """The ffmpeg argv that re-encodes `source` into `partial` (pure)."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    command += ["-map", "0:v:0", "-map", "0:a?", "-map_metadata", "0", "-vf", EVEN, "-pix_fmt", "yuv420p"]
    command += [*profile.video, "-crf", str(crf if crf is not None else profile.crf), *profile.audio]
    if profile.muxer == "mp4":
        command += MP4_FLAGS
    return [*command, "-f", profile.muxer, str(partial)]


async def transcode(
    ffmpeg: str, source: Path, partial: Path, profile: Profile, crf: int | None
) -> str | None:
    """Re-encode into `partial` (fsync'd) and check that ffprobe reads a video stream from it; None when
    it worked, else why not (the partial is removed)."""
    command = deathsig(ffmpeg_command(ffmpeg, source, partial, profile, crf))
    await asyncio.to_thread(partial.parent.mkdir, parents=True, exist_ok=True)
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except FileNotFoundError:
        return f"{ffmpeg} not found (install Debian's ffmpeg, or set pipeline.ffmpeg)"
    try:
        _, stderr = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    why = None
    if proc.returncode != 0:
        why = f"ffmpeg failed: {last_line(stderr, f'exit {proc.returncode}')}"
    else:
        why = await _verify(ffprobe_for(ffmpeg), partial)
    if why is not None:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return why


async def _verify(ffprobe: str, path: Path) -> str | None:
    await asyncio.to_thread(_fsync, path)
    command = [ffprobe, "-v", "error", "-print_format", "json", "-show_entries", "stream=codec_type",
               "-select_streams", "v:0", str(path)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    try:
        streams = json.loads(out).get("streams") or []
    except (ValueError, AttributeError):
        streams = []
    if proc.returncode != 0 or not streams:
        return f"the re-encoded video does not verify: {last_line(err, 'no video stream')}"
    return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
