"""The CPU-bound stage bodies, run in worker processes (decode, resize, parse and XML building hold the
GIL, so threads would not scale). Plain functions of picklable values; they never log and never raise
for a bad file — everything they learn comes back in the returned value.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mediasyncd.paths import INTERNAL_DIR
from mediasyncd.pipeline.metadata import Extraction, extract
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.outcome import StageOutcome
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.pipeline.thumbs import make_thumbnail
from mediasyncd.pipeline.video_tags import ffprobe_for
from mediasyncd.pipeline.xmp import ForeignSidecar, build_xmp, sidecar_path, write_sidecar

TEMP_DIR = Path(INTERNAL_DIR) / "tmp"  # under the library: sidecars are written here, then renamed


def metadata_job(source: str, options: PipelineOptions) -> Extraction:
    return extract(Path(source), ffprobe_for(options.ffmpeg), options.ffmpeg_timeout)


def xmp_job(source: str, library: str, record: GenerationRecord, options: PipelineOptions) -> StageOutcome:
    if not record.has_metadata:
        return StageOutcome("skipped", "no metadata")
    image = Path(source)
    target = sidecar_path(image, options.xmp_naming)
    try:
        mode = stat.S_IMODE(os.stat(image).st_mode) & 0o666
        written = write_sidecar(target, build_xmp(record), mode or 0o644, Path(library) / TEMP_DIR)
    except ForeignSidecar as error:
        return StageOutcome("skipped", str(error))
    except OSError as error:
        return StageOutcome("error", f"cannot write {target.name}: {error.strerror or error}")
    relative = os.path.relpath(target, library)
    return StageOutcome("done", "written" if written else "unchanged", relative)


def thumbnail_job(
    source: str, library: str, sha256: str, options: PipelineOptions, rebuild: bool = False
) -> StageOutcome:
    return make_thumbnail(
        Path(source),
        Path(library),
        sha256,
        size=options.thumb_size,
        quality=options.thumb_quality,
        ffmpeg=options.ffmpeg if options.video_thumbnails else None,
        timeout=options.ffmpeg_timeout,
        rebuild=rebuild,
    )
