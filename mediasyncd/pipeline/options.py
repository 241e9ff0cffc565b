"""The `[pipeline]` settings, as one immutable value the core builds from the config file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

XmpNaming = Literal["ext", "stem"]


@dataclass(frozen=True)
class PipelineOptions:
    """What the media pipeline does to each landed file; every field is a `[pipeline]` config key."""

    enabled: bool = True
    xmp: bool = True
    xmp_naming: XmpNaming = "ext"  # "ext": photo.png.xmp (digiKam, darktable, Immich); "stem": photo.xmp
    thumbnails: bool = True
    thumb_size: int = 320  # longest edge in pixels
    thumb_quality: int = 80  # WebP quality, 1..100
    video_thumbnails: bool = True  # first frame through ffmpeg (mp4, webm, …)
    ffmpeg: str = "ffmpeg"
    ffmpeg_timeout: float = 30.0  # seconds
    workers: int = 0  # CPU-bound worker processes; 0 = one per CPU core

    def worker_count(self) -> int:
        if self.workers > 0:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)

    def problems(self) -> list[str]:
        """Every invalid value, each named by its `pipeline.` key (empty when valid)."""
        found = []
        if self.xmp_naming not in ("ext", "stem"):
            found.append(f'pipeline.xmp_naming: must be "ext" or "stem", not {self.xmp_naming!r}')
        if not 16 <= self.thumb_size <= 4096:
            found.append(f"pipeline.thumb_size: must be between 16 and 4096 pixels, not {self.thumb_size}")
        if not 1 <= self.thumb_quality <= 100:
            found.append(f"pipeline.thumb_quality: must be between 1 and 100, not {self.thumb_quality}")
        if self.workers < 0:
            found.append(f"pipeline.workers: must be 0 (one per core) or more, not {self.workers}")
        if self.ffmpeg_timeout <= 0:
            found.append(f"pipeline.ffmpeg_timeout: must be positive, not {self.ffmpeg_timeout}")
        return found
