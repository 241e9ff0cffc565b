"""C2PA manifests: recognised in JPEG APP11, PNG caBX and WebP C2PA; summarised; never a crash."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mediasyncd.pipeline.c2pa import decode_cbor, summarize
from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples_c2pa
from tests.pipeline.samples_c2pa import CHATGPT_CLAIM, FIREFLY_CLAIM, TRAINED


def test_png_cabx_manifest_gives_claim_generator_and_source_type(tmp_path: Path) -> None:
    """A ChatGPT-style PNG: claim v1 `claim_generator` and the actions' digital source type."""
    path = samples_c2pa.png_with_manifest(tmp_path / "c.png", samples_c2pa.store(CHATGPT_CLAIM))
    extraction = extract(path)
    assert extraction.error is None
    assert extraction.record.as_json("c.png")["c2pa"] == {
        "claim_generator": "ChatGPT",
        "digital_source_type": TRAINED,
        "manifest": "urn:c2pa:2f6e8d3a-1b5c-4c3e-9a6d-7f0e5b4a3c21",
    }


def test_jpeg_app11_manifest_split_over_packets_is_reassembled(tmp_path: Path) -> None:
    """A claim v2 store split over several APP11 packets: name/version of claim_generator_info."""
    path = samples_c2pa.jpeg_with_manifest(tmp_path / "c.jpg", samples_c2pa.store(FIREFLY_CLAIM, v2=True))
    c2pa = extract(path).record.c2pa
    assert c2pa is not None
    assert (c2pa["claim_generator"], c2pa["digital_source_type"]) == ("Adobe Firefly/3.1.0", TRAINED)


def test_webp_c2pa_chunk(tmp_path: Path) -> None:
    """A WebP's RIFF `C2PA` chunk is found."""
    path = samples_c2pa.webp_with_manifest(tmp_path / "c.webp", samples_c2pa.store(CHATGPT_CLAIM))
    c2pa = extract(path).record.c2pa
    assert c2pa is not None and c2pa["claim_generator"] == "ChatGPT"


def test_a_file_without_a_manifest_has_c2pa_null(tmp_path: Path) -> None:
    """No manifest: `c2pa` is null in `inspect --json`."""
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path)
    assert extract(path).record.as_json("p")["c2pa"] is None


def test_every_truncation_of_a_store_is_summarised_without_raising() -> None:
    """Each prefix of a store: a summary with an error or a partial summary, never an exception."""
    whole = samples_c2pa.store(FIREFLY_CLAIM, v2=True)
    for cut in range(len(whole)):
        summary = summarize(whole[:cut])
        assert "error" in summary or summary["manifest"] is not None


def test_cbor_decoder_reads_what_the_spec_encoding_writes() -> None:
    """The bounded CBOR decoder round-trips maps, arrays, text, bytes, negative ints and simple values."""
    value = {"a": [1, -5, "猫", b"\x00\x01", True, None], "n": {"k": 70000}}
    assert decode_cbor(samples_c2pa.cbor(value)) == value
