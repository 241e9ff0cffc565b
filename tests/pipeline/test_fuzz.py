"""The crash-proof rule: any file, however malformed, yields a record (possibly empty) and never an
exception out of `extract` (what `inspect` and the pipeline's metadata stage call)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasyncd.pipeline.commands import inspect_main
from mediasyncd.pipeline.metadata import extract, read_texts
from mediasyncd.pipeline.runner import Pipeline
from tests.pipeline import samples, samples_c2pa, samples_civitai, samples_comfy_savers, samples_novelai
from tests.pipeline.conftest import sha256_of

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "forge.png": samples.forge_png,
    "a1111.jpg": samples.a1111_jpeg,
    "comfyui.png": samples.comfyui_png,
    "comfyui.webp": samples.comfyui_webp,
    "novelai-stealth.png": samples_novelai.novelai_stealth_png,
    "novelai.webp": samples_novelai.novelai_webp,
    "civitai.jpg": samples_civitai.civitai_jpeg,
    "image-saver.webp": lambda path: samples_comfy_savers.comfy_image_saver(path, "webp"),
    "save-image-extended.jpg": lambda path: samples_comfy_savers.save_image_extended(path, "jpg"),
    "tensorart.png": samples_comfy_savers.tensorart_with_graph,
    "c2pa.png": lambda path: samples_c2pa.png_with_manifest(
        path, samples_c2pa.store(samples_c2pa.CHATGPT_CLAIM)
    ),
    "c2pa.jpg": lambda path: samples_c2pa.jpeg_with_manifest(
        path, samples_c2pa.store(samples_c2pa.FIREFLY_CLAIM)
    ),
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("originals")
    return {name: build(folder / name).read_bytes() for name, build in BUILDERS.items()}


def _extract_bytes(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.write_bytes(data)
    extraction = extract(path)
    assert extraction.record is not None
    extraction.record.as_json(str(path), extraction.error)


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(name=st.sampled_from(sorted(BUILDERS)), cut=st.floats(0.0, 1.0))
def test_truncated_files_never_raise(
    tmp_path: Path, originals: dict[str, bytes], name: str, cut: float
) -> None:
    """A file cut anywhere reads as a record, with an error or not, and never raises."""
    data = originals[name]
    _extract_bytes(tmp_path, name, data[: int(len(data) * cut)])


@_FUZZ
@given(
    name=st.sampled_from(sorted(BUILDERS)),
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=8
    ),
)
def test_flipped_bytes_never_raise(
    tmp_path: Path, originals: dict[str, bytes], name: str, flips: list[tuple[float, int]]
) -> None:
    """Bytes changed anywhere (chunk lengths, EXIF offsets, JSON) never make `extract` raise."""
    data = bytearray(originals[name])
    for at, mask in flips:
        data[int(at * len(data))] ^= mask
    _extract_bytes(tmp_path, name, bytes(data))


@_FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".png", ".jpg", ".webp", ".gif", ".avif"]))
def test_random_bytes_with_an_image_extension_never_raise(tmp_path: Path, data: bytes, suffix: str) -> None:
    """Random bytes named like an image: a record with an error, never an exception."""
    _extract_bytes(tmp_path, "random" + suffix, data)


@_FUZZ
@given(
    head=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe1", b"RIFF\0\0\0\0WEBPVP8X", b"GIF89a"]),
    tail=st.binary(max_size=1024),
)
def test_a_valid_signature_then_garbage_never_raises(tmp_path: Path, head: bytes, tail: bytes) -> None:
    """A real format's magic bytes followed by garbage go to that format's reader and still never raise."""
    _extract_bytes(tmp_path, "magic.img", head + tail)


async def test_the_pipeline_records_every_malformed_file_without_an_internal_error(
    pipeline: Pipeline, library: Path, originals: dict[str, bytes]
) -> None:
    """Empty, truncated, flipped and random files go through every stage; none ends in an internal error."""
    png = originals["forge.png"]
    hostile = {
        "empty.png": b"",
        "truncated.png": png[: len(png) // 2],
        "header-only.jpg": originals["a1111.jpg"][:40],
        "random.webp": bytes(range(256)) * 4,
        "bomb.webp": b"RIFF\xff\xff\xff\xffWEBPVP8X\n\0\0\0\0\0\0\0\xff\xff\0\xff\xff\0",
        "flipped.png": png[:40] + bytes(b ^ 0x5A for b in png[40:80]) + png[80:],
    }
    for name, data in hostile.items():
        path = library / "forge1" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        result = await pipeline.process(path, sha256_of(path), remote="forge1", rel=name)
        assert result.record is not None, name
        details = {stage: outcome.detail or "" for stage, outcome in result.stages.items()}
        assert not any(detail.startswith("internal error") for detail in details.values()), (name, details)


def test_inspect_prints_a_record_for_every_malformed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect --json` on random, empty and truncated files prints one record each and exits 1."""
    files = [tmp_path / "empty.png", tmp_path / "random.jpg", tmp_path / "cut.png"]
    files[0].write_bytes(b"")
    files[1].write_bytes(bytes(range(256)))
    files[2].write_bytes(samples.forge_png(tmp_path / "whole.png").read_bytes()[:100])
    assert inspect_main([str(path) for path in files], as_json=True) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["path"] for line in lines] == [str(path) for path in files]
    assert all(json.loads(line)["error"] for line in lines)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    [
        "parameters", "prompt", "workflow", "Comment", "Software", "Source", "Description", "UserComment",
        "invokeai_metadata", "sd-metadata", "generation_data", "parameters-json", "stealth_pngcomp",
        "stealth_pnginfo", "XMP", "Model", "comment", "use_stable_diffusion_model",
    ]
)  # fmt: skip
_SHAPES = {
    "novelai": {"Software": "NovelAI", "Comment": "{}"},
    "comfy": {"prompt": '{"1": {"class_type": "KSampler", "inputs": {}}}'},
}


@_FUZZ
@given(
    texts=st.dictionaries(
        _KEYS, st.one_of(_JSON.map(lambda value: json.dumps(value)), st.text(max_size=200)), max_size=6
    ),
    nested=st.dictionaries(st.text(max_size=20), _JSON, max_size=6),
    shape=st.sampled_from(sorted(_SHAPES)),
)
def test_any_texts_of_the_known_keys_read_as_a_record(
    texts: dict[str, str], nested: dict[str, object], shape: str
) -> None:
    """JSON of any shape under every key a parser looks at: a record, maybe with an error; never a raise."""
    for candidate in (texts, _SHAPES[shape] | texts, _SHAPES[shape] | {"Comment": json.dumps(nested)}):
        record, _error = read_texts(candidate)
        json.dumps(record.as_json("x"), ensure_ascii=False)  # what the catalog stores
