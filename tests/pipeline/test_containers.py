"""Hostile and unusual files: the reader names the problem and keeps what it could read."""

from __future__ import annotations

import zlib
from pathlib import Path

from mediasyncd.pipeline.containers import MAX_TEXT_BYTES, decode_user_comment, read_embedded
from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples


def test_zero_byte_file_is_an_error(tmp_path: Path) -> None:
    """A 0-byte file yields an "empty file" error, not an exception."""
    (tmp_path / "empty.png").write_bytes(b"")
    assert extract(tmp_path / "empty.png").error == "empty file (0 bytes)"


def test_truncated_png_is_an_error_but_keeps_early_text(tmp_path: Path) -> None:
    """A PNG cut inside IDAT is reported truncated; the text before it is still read."""
    path = samples.forge_png(tmp_path / "t.png")
    path.write_bytes(path.read_bytes()[:-30])
    extraction = extract(path)
    assert extraction.error is not None and extraction.error.startswith("truncated PNG")
    assert extraction.record.generator == "forge"


def test_garbage_is_not_recognized(tmp_path: Path) -> None:
    """Random bytes with an image name are "not a recognized image" errors."""
    (tmp_path / "x.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    assert extract(tmp_path / "x.jpg").error == "not a recognized image or video format"


def test_corrupt_jpeg_is_an_error(tmp_path: Path) -> None:
    """A JPEG whose header is damaged after the SOI marker is reported, not raised."""
    path = samples.a1111_jpeg(tmp_path / "c.jpg")
    data = bytearray(path.read_bytes())
    data[2:40] = b"\xff" * 38
    path.write_bytes(bytes(data))
    assert extract(path).error is not None


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A vanished file gives "cannot read file"."""
    assert (extract(tmp_path / "gone.png").error or "").startswith("cannot read file")


def test_text_after_idat_is_read(tmp_path: Path) -> None:
    """Text chunks after the image data (some tools append them) are found."""
    path = samples.insert_chunk(
        samples.png(tmp_path / "late.png"),
        b"tEXt",
        b"parameters\0a late cat\nSteps: 5, Sampler: Euler, Seed: 1",
    )
    assert extract(path).record.prompt == "a late cat"


def test_ztxt_and_compressed_itxt_are_inflated(tmp_path: Path) -> None:
    """zTXt and compressed iTXt chunks are decompressed."""
    path = samples.png(tmp_path / "z.png")
    samples.insert_chunk(path, b"zTXt", b"Comment\0\0" + zlib.compress(b"zipped comment"))
    samples.insert_chunk(
        path,
        b"iTXt",
        b"parameters\0\1\0\0\0" + zlib.compress("圧縮 prompt\nSteps: 1, Sampler: Euler, Seed: 2".encode()),
    )
    found = read_embedded(path)
    assert found.texts["Comment"] == "zipped comment"
    assert found.texts["parameters"].startswith("圧縮 prompt")


def test_invalid_utf8_in_itxt_is_replaced(tmp_path: Path) -> None:
    """Invalid UTF-8 in an iTXt chunk decodes with U+FFFD instead of failing."""
    path = samples.insert_chunk(
        samples.png(tmp_path / "u.png"), b"iTXt", b"parameters\0\0\0\0\0bad \xff\xfe bytes"
    )
    assert read_embedded(path).texts["parameters"] == "bad \ufffd\ufffd bytes"


def test_huge_compressed_text_chunk_is_dropped(tmp_path: Path) -> None:
    """A zTXt bomb inflating past the limit is dropped with a note; the file still reads."""
    bomb = zlib.compress(b"a" * (MAX_TEXT_BYTES + 1024), 9)
    path = samples.insert_chunk(samples.png(tmp_path / "bomb.png"), b"zTXt", b"parameters\0\0" + bomb)
    found = read_embedded(path)
    assert found.error is None and "parameters" not in found.texts
    assert "decompresses to more than" in found.dropped[0]


def test_huge_plain_text_chunk_is_kept_below_the_limit(tmp_path: Path) -> None:
    """A 4 MiB prompt (big, under the limit) is read whole."""
    prompt = "word " * (4 * 1024 * 1024 // 5)
    path = samples.png(
        tmp_path / "big.png", itxt={"parameters": prompt + "\nSteps: 1, Sampler: Euler, Seed: 3"}
    )
    assert extract(path).record.prompt == prompt


def test_bad_crc_text_chunk_is_dropped(tmp_path: Path) -> None:
    """A text chunk with a wrong CRC is not trusted."""
    path = samples.png(tmp_path / "crc.png")
    raw = path.read_bytes()
    at = raw.index(b"IEND") - 4
    bad = samples.chunk(b"tEXt", b"parameters\0x")[:-4] + b"\0\0\0\0"
    path.write_bytes(raw[:at] + bad + raw[at:])
    found = read_embedded(path)
    assert "parameters" not in found.texts and "bad CRC" in found.dropped[0]


def test_invalid_metadata_json_falls_back_to_no_metadata(tmp_path: Path) -> None:
    """A broken `invokeai_metadata` JSON leaves the text in raw and the record empty."""
    path = samples.png(tmp_path / "j.png", text={"invokeai_metadata": "{not json"})
    extraction = extract(path)
    assert (extraction.error, extraction.record.generator, extraction.record.raw) == (
        None,
        None,
        {"invokeai_metadata": "{not json"},
    )


def test_user_comment_forms() -> None:
    """UserComment: UNICODE big- and little-endian, ASCII and undefined prefixes."""
    assert decode_user_comment(samples.unicode_comment("héllo 猫")) == "héllo 猫"
    assert decode_user_comment(samples.unicode_comment("héllo 猫", "le")) == "héllo 猫"
    assert decode_user_comment(b"ASCII\0\0\0plain text") == "plain text"
    assert decode_user_comment(b"\0" * 8 + b"undefined") == "undefined"
