"""Thumbnails: WebP, bounded size, keyed by SHA-256; videos through ffmpeg or a clear "no thumbnail"."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from mediasyncd.config import MEDIA_GLOBS
from mediasyncd.pipeline.thumbs import make_thumbnail, thumb_relpath
from tests.pipeline import samples

SHA = "ab" * 32


def thumb(source: Path, library: Path, *, ffmpeg: str | None = "ffmpeg", size: int = 64):  # type: ignore[no-untyped-def]
    return make_thumbnail(source, library, SHA, size=size, quality=80, ffmpeg=ffmpeg, timeout=30)


def test_png_thumbnail_is_webp_within_size(tmp_path: Path) -> None:
    """A 400x200 PNG gives a 64x32 WebP under .mediasyncd/thumbs/ab/<sha>.webp."""
    source = samples.png(tmp_path / "a.png", size=(400, 200))
    outcome = thumb(source, tmp_path)
    assert (outcome.status, outcome.output) == ("done", str(thumb_relpath(SHA)))
    assert outcome.output == f".mediasyncd/thumbs/ab/{SHA}.webp"
    with Image.open(tmp_path / outcome.output) as image:
        assert (image.format, image.size) == ("WEBP", (64, 32))


def test_existing_thumbnail_is_not_redone(tmp_path: Path) -> None:
    """Same SHA-256, same thumbnail: the second call does not rewrite it."""
    source = samples.png(tmp_path / "a.png", size=(100, 100))
    first = thumb(source, tmp_path)
    mtime = (tmp_path / str(first.output)).stat().st_mtime_ns
    assert thumb(source, tmp_path).detail == "already present"
    assert (tmp_path / str(first.output)).stat().st_mtime_ns == mtime


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A JPEG tagged "rotate 90" gives an upright (portrait) thumbnail."""
    exif = Image.Exif()
    exif[0x0112] = 6
    samples.solid((200, 100)).save(tmp_path / "r.jpg", exif=exif)
    outcome = thumb(tmp_path / "r.jpg", tmp_path)
    with Image.open(tmp_path / str(outcome.output)) as image:
        assert image.size == (32, 64)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    """An animated GIF's thumbnail is its first frame."""
    frames = [Image.new("RGB", (80, 80), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    outcome = thumb(tmp_path / "a.gif", tmp_path)
    with Image.open(tmp_path / str(outcome.output)) as image:
        red, _green, blue = image.convert("RGB").getpixel((30, 30))  # type: ignore[misc]
    assert red > 200 and blue < 50


def test_mp4_first_frame_through_ffmpeg(tmp_path: Path) -> None:
    """An mp4 gets a first-frame thumbnail from ffmpeg."""
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x90:rate=5:duration=1",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    outcome = thumb(video, tmp_path)
    assert outcome.status == "done"
    with Image.open(tmp_path / str(outcome.output)) as image:
        assert image.size == (64, 36)


def test_corrupt_video_is_no_thumbnail(tmp_path: Path) -> None:
    """A broken mp4 gives a clear "no thumbnail" error record."""
    (tmp_path / "bad.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"junk" * 50)
    outcome = thumb(tmp_path / "bad.mp4", tmp_path)
    assert outcome.status == "error" and outcome.detail.startswith("no thumbnail: ffmpeg could not decode")


def test_missing_ffmpeg_is_no_thumbnail(tmp_path: Path) -> None:
    """Without ffmpeg a video is skipped with "no thumbnail", not an error."""
    (tmp_path / "v.webm").write_bytes(b"\x1a\x45\xdf\xa3junk")
    outcome = thumb(tmp_path / "v.webm", tmp_path, ffmpeg=str(tmp_path / "no-such-ffmpeg"))
    assert outcome.status == "skipped" and "is not installed" in outcome.detail


def test_truncated_image_is_an_error(tmp_path: Path) -> None:
    """A truncated PNG cannot be decoded: an error outcome, nothing written."""
    source = samples.png(tmp_path / "t.png", size=(300, 300))
    source.write_bytes(source.read_bytes()[:200])
    outcome = thumb(source, tmp_path)
    assert outcome.status == "error" and not (tmp_path / ".mediasyncd").exists()


def _made(path: Path) -> Path:
    """A 160x90 file of `path`'s format: stills by Pillow, videos by the real ffmpeg."""
    if path.suffix in (".mp4", ".webm", ".mov"):
        codec = {".mp4": "libx264", ".webm": "libvpx-vp9", ".mov": "mpeg4"}[path.suffix]
        command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"]
        command += [
            "testsrc=size=160x90:rate=5:duration=0.4",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            codec,
            str(path),
        ]
        subprocess.run(command, check=True, capture_output=True)
    else:
        samples.solid((160, 90)).save(path)
    return path


@pytest.mark.parametrize("glob", MEDIA_GLOBS)
def test_every_format_of_the_default_include_list_gets_a_thumbnail(tmp_path: Path, glob: str) -> None:
    """png, jpg, jpeg, webp, gif, avif, mp4, webm and mov: a 64x36 WebP thumbnail each."""
    outcome = thumb(_made(tmp_path / ("clip" + glob.removeprefix("*"))), tmp_path)
    assert outcome.status == "done", outcome.detail
    with Image.open(tmp_path / str(outcome.output)) as image:
        assert image.size == (64, 36)
