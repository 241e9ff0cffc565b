"""Thumbnails: WebP, longest edge `size`, stored under `<library>/.mediasyncd/thumbs/ab/<sha256>.webp`.

Stills and the first frame of GIF / animated WebP go through Pillow (reduced while decoding where the
format allows); videos through ffmpeg. A missing ffmpeg or an undecodable video yields "no thumbnail".
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from mediasyncd.pipeline.containers import VIDEO_SUFFIXES
from mediasyncd.pipeline.orphans import deathsig
from mediasyncd.pipeline.outcome import StageOutcome
from mediasyncd.pipeline.video_tags import last_line

THUMBS_DIR = Path(".mediasyncd") / "thumbs"


class ThumbnailError(Exception):
    """The file could not be decoded into a thumbnail."""


def thumb_relpath(sha256: str) -> Path:
    return THUMBS_DIR / sha256[:2] / f"{sha256}.webp"


def make_thumbnail(
    source: Path,
    library: Path,
    sha256: str,
    *,
    size: int,
    quality: int,
    ffmpeg: str | None,
    timeout: float,
    rebuild: bool = False,
) -> StageOutcome:
    """Create the thumbnail unless it exists (same SHA-256, same pixels) or `rebuild`; never raises for a bad file."""
    rel = thumb_relpath(sha256)
    target = library / rel
    if target.exists() and not rebuild:
        return StageOutcome("done", "already present", str(rel))
    try:
        if source.suffix.lower() in VIDEO_SUFFIXES:
            if ffmpeg is None:
                return StageOutcome("skipped", "no thumbnail: video thumbnails are disabled")
            image = _first_video_frame(source, size, ffmpeg, timeout)
        else:
            image = _open_still(source, size)
        data = _encode_webp(image, size, quality)
    except ThumbnailError as error:
        return StageOutcome("error", str(error))
    except FileNotFoundError as error:
        if error.filename == ffmpeg:
            return StageOutcome("skipped", f"no thumbnail: {ffmpeg} is not installed")
        return StageOutcome("error", f"cannot read file: {error.strerror}")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        return StageOutcome("error", f"cannot decode image: {error}")
    try:
        _write_atomic(target, data)
    except OSError as error:
        return StageOutcome("error", f"cannot write thumbnail: {error.strerror or error}")
    return StageOutcome("done", f"{image.width}x{image.height}", str(rel))


def _open_still(source: Path, size: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as opened:
            opened.draft("RGB", (size, size))  # JPEG: decode at 1/2..1/8 scale
            image: Image.Image = opened
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGBA" if _has_alpha(image) else "RGB")
            image.thumbnail(
                (size, size), Image.Resampling.BICUBIC, reducing_gap=1.0
            )  # box-reduce, then bicubic
            if opened.format in ("JPEG", "WEBP", "TIFF"):
                image = ImageOps.exif_transpose(image)
            return image.copy() if image is opened else image


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def _first_video_frame(source: Path, size: int, ffmpeg: str, timeout: float) -> Image.Image:
    scale = f"scale={size}:{size}:force_original_aspect_ratio=decrease"
    command = [ffmpeg, "-v", "error", "-nostdin", "-i", str(source), "-frames:v", "1", "-vf", scale]
    command += ["-f", "image2pipe", "-vcodec", "png", "pipe:1"]
    try:
        done = subprocess.run(deathsig(command), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise ThumbnailError(f"no thumbnail: ffmpeg took longer than {timeout:g}s") from error
    if done.returncode != 0 or not done.stdout:
        raise ThumbnailError(
            f"no thumbnail: ffmpeg could not decode a frame ({last_line(done.stderr, 'no output')})"
        )
    with Image.open(io.BytesIO(done.stdout)) as frame:
        frame.load()
        return frame.copy()


def _encode_webp(image: Image.Image, size: int, quality: int) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=1)  # method 1: ~4x faster than 4, same size
    return out.getvalue()


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
