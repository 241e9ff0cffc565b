"""The compress stage: WebP/JPEG copies that `mediasyncd inspect` and exiftool read the same generation
metadata from, skipped when the saving is too small, recorded like every stage."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from mediasyncd.pipeline.metadata import extract
from mediasyncd.workflow.compress import worth_it
from mediasyncd.workflow.encode import encode
from tests.helpers import MEDIASYNCD
from tests.workflow.conftest import make_world, set_workflow

FIELDS = ("generator", "prompt", "negative_prompt", "model", "seed", "steps", "cfg", "width", "height")
A1111 = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 42, Size: 256x256, Model: sdxl"


def comfy_prompt(extra: int = 0) -> dict[str, Any]:
    graph: dict[str, Any] = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 5, "steps": 10, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["7", 0], "model": ["4", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 256, "height": 256, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    }  # fmt: skip
    if extra:
        graph["99"] = {"class_type": "Note", "inputs": {"text": "x" * extra}}
    return graph


def png(path: Path, **texts: str) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    image = Image.effect_mandelbrot((256, 256), (-2, -1.5, 1, 1.5), 100).convert("RGB")
    image.save(path, "PNG", pnginfo=info)
    return path


SAMPLES = {
    "a1111": {"parameters": A1111},
    "comfyui": {"prompt": json.dumps(comfy_prompt()), "workflow": json.dumps({"nodes": [], "links": []})},
}


def record(path: Path) -> dict[str, Any]:
    doc = extract(path).record.as_json(str(path), None)
    return {k: doc[k] for k in FIELDS}


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
@pytest.mark.parametrize("generator", sorted(SAMPLES))
def test_the_copy_carries_the_same_generation_metadata(tmp_path: Path, generator: str, fmt: str) -> None:
    """inspect reads the same generator, prompts, model, seed, steps, cfg and size from the copy."""
    source = png(tmp_path / "a.png", **SAMPLES[generator])
    encoded = encode(source, fmt, 90)
    copy = tmp_path / f"a.{fmt}"
    copy.write_bytes(encoded.data)
    assert encoded.dropped == ()
    assert record(copy) == record(source)
    assert record(copy)["generator"] == ("automatic1111" if generator == "a1111" else "comfyui")


def test_exiftool_and_the_inspect_command_read_the_copy(tmp_path: Path) -> None:
    """exiftool sees the A1111 parameters in the WebP's UserComment; `mediasyncd inspect --json` the
    same prompt as from the PNG."""
    source = png(tmp_path / "a.png", parameters=A1111)
    copy = tmp_path / "a.webp"
    copy.write_bytes(encode(source, "webp", 90).data)
    tags = json.loads(subprocess.run(["exiftool", "-j", "-UserComment", str(copy)], capture_output=True,
                                     check=True, text=True).stdout)[0]  # fmt: skip
    assert tags["UserComment"].startswith("a cat")
    out = subprocess.run([MEDIASYNCD, "inspect", "--json", str(source), str(copy)], capture_output=True,
                         check=True, text=True).stdout.splitlines()  # fmt: skip
    docs = [json.loads(line) for line in out]
    assert {k: docs[0][k] for k in FIELDS} == {k: docs[1][k] for k in FIELDS}


def test_a_comfyui_workflow_too_large_for_jpeg_exif_is_spilled(tmp_path: Path) -> None:
    """JPEG's 64 KB EXIF cannot hold a large graph: the workflow is left out of the file (`spilled`
    holds all the texts verbatim), the prompt graph still gives the same record."""
    big = big_workflow()
    source = png(tmp_path / "a.png", prompt=json.dumps(comfy_prompt()), workflow=big)
    encoded = encode(source, "jpeg", 90)
    copy = tmp_path / "a.jpg"
    copy.write_bytes(encoded.data)
    assert encoded.dropped == ("workflow",) and encoded.spilled["workflow"] == big
    assert set(encoded.spilled) == {"prompt", "workflow"}  # all the original's texts
    assert record(copy) == record(source)


def big_workflow() -> str:
    big = json.dumps({"nodes": [{"id": i, "widgets_values": ["y" * 200]} for i in range(400)], "links": []})
    assert len(big) > 64 * 1024
    return big


@pytest.mark.parametrize("keep_original", [True, False])
def test_the_spilled_workflow_goes_to_the_copys_sidecar_where_inspect_reads_it(
    tmp_path: Path, keep_original: bool
) -> None:
    """A ComfyUI workflow > 64 KB compressed to JPEG: the copy's XMP sidecar holds the workflow, and
    `mediasyncd inspect --json` of the JPEG shows the same record and the whole workflow as from the PNG;
    exiftool reads the sidecar as XMP."""
    world = make_world(tmp_path, pipeline={"enabled": True, "thumbnails": False})
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "jpeg", "keep_original": keep_original, "min_saving": "0%"},
    }, {"enabled": True, "thumbnails": False})  # fmt: skip
    big = big_workflow()
    source = png(tmp_path / "x.png", prompt=json.dumps(comfy_prompt()), workflow=big)
    world.write("a.png", source.read_bytes())
    assert world.sync() == 0
    if keep_original:
        copy = world.library / ".mediasyncd/compressed/r1/a.png.jpg"
    else:
        copy = world.library / "r1/a.jpg"
    sidecar = copy.with_name(copy.name + ".xmp")
    assert sidecar.is_file() and big not in copy.read_bytes().decode("latin-1")
    out = subprocess.run([MEDIASYNCD, "inspect", "--json", str(source), str(copy)], capture_output=True,
                         check=True, text=True).stdout.splitlines()  # fmt: skip
    docs = [json.loads(line) for line in out]
    assert {k: docs[0][k] for k in FIELDS} == {k: docs[1][k] for k in FIELDS}
    assert docs[1]["raw"]["workflow"] == big == docs[0]["raw"]["workflow"]
    tags = json.loads(subprocess.run(["exiftool", "-j", "-b", "-struct", "-XMP:Spilled", str(sidecar)],
                                     capture_output=True, check=True, text=True).stdout)[0]  # fmt: skip
    spilled = {entry["RawKey"]: entry["RawValue"] for entry in tags["Spilled"]}
    assert {entry["SpilledFor"] for entry in tags["Spilled"]} == {copy.name}
    assert set(spilled) == {"prompt", "workflow"}
    assert json.loads(spilled["workflow"]) == json.loads(big)


def test_saving_rule() -> None:
    """A copy counts only when it saves at least min_saving."""
    assert worth_it(1000, 899, 0.10)
    assert worth_it(1000, 900, 0.10)
    assert not worth_it(1000, 901, 0.10)
    assert not worth_it(0, 0, 0.0)


def test_the_stage_writes_the_copy_under_the_compressed_area_after_the_archive(tmp_path: Path) -> None:
    """archive then compress: the WebP lands at <library>/.mediasyncd/compressed/<remote>/<path>.webp,
    recorded done with its SHA-256 and a `file_staged` event; the library file is untouched."""
    world = make_world(tmp_path)
    set_workflow(world.config_path, {"stages": ["archive", "compress"], "purge_after": ["archive"],
                                     "archive": {"dest": str(world.nas)}, "compress": {"format": "webp"}})  # fmt: skip
    src = png(tmp_path / "x.png", parameters=A1111)
    world.write("a.png", src.read_bytes())
    assert world.sync() == 0
    copy = world.library / ".mediasyncd/compressed/r1/a.png.webp"
    assert copy.is_file() and copy.stat().st_size < src.stat().st_size
    assert (world.library / "r1/a.png").read_bytes() == src.read_bytes()
    assert record(copy) == record(src) | {"width": 256, "height": 256}
    assert world.staged_events().count("a.png") == 2


def test_a_copy_that_saves_too_little_is_skipped(tmp_path: Path) -> None:
    """min_saving = 99%: the stage is done without output, and no file is written."""
    world = make_world(tmp_path)
    set_workflow(world.config_path, {"stages": ["compress"], "compress": {"min_saving": "99%"}})
    world.write("a.png", png(tmp_path / "x.png").read_bytes())
    world.write("noise.png", _noise_png())
    assert world.sync() == 0
    assert not (world.library / ".mediasyncd/compressed").exists()


def _noise_png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(out, "PNG")
    return out.getvalue()


def test_spilled_texts_belong_to_one_file_and_survive_a_pipeline_rewrite(tmp_path: Path) -> None:
    """A stem-named sidecar (a.xmp) spilled for a.jpg gives nothing to a.png; when the pipeline rewrites
    the sidecar from a record, the spilled texts stay."""
    from mediasyncd.pipeline.record import GenerationRecord
    from mediasyncd.pipeline.xmp import build_xmp, read_spilled, spill_block, with_spill, write_sidecar

    sidecar = tmp_path / "a.xmp"
    document = with_spill(build_xmp(GenerationRecord(prompt="p")), spill_block("a.jpg", {"workflow": "{}"}))
    write_sidecar(sidecar, document)
    assert read_spilled(tmp_path / "a.jpg") == {"workflow": "{}"}
    assert read_spilled(tmp_path / "a.png") == {}
    assert write_sidecar(sidecar, build_xmp(GenerationRecord(prompt="q"))) is True
    assert read_spilled(tmp_path / "a.jpg") == {"workflow": "{}"}
    assert "q" in sidecar.read_text()


def generator_samples(tmp: Path) -> list[Path]:
    """One file shaped as each supported generator writes it (tests/pipeline's samples)."""
    from tests.pipeline import samples as s
    from tests.pipeline import samples_apps as a
    from tests.pipeline import samples_civitai as cv
    from tests.pipeline import samples_comfy_savers as cs
    from tests.pipeline import samples_novelai as n

    builders = [
        s.forge_png, s.a1111_jpeg, s.comfyui_png, s.comfyui_webp, s.reforge_png, s.forge_neo_png, s.sdnext_png,
        a.swarmui_png, a.swarmui_jpeg, a.invokeai_png, a.invokeai_legacy_png, a.fooocus_png, a.ruined_fooocus_png,
        a.novelai_png, a.easy_diffusion_png, a.tensorart_png, a.stability_matrix_png, a.civitai_jpeg,
        a.drawthings_png, a.hf_space_png, n.novelai_stealth_png, n.novelai_webp, cv.civitai_hires_jpeg,
        cv.civitai_upscale_jpeg, cs.tensorart_with_graph,
    ]  # fmt: skip
    suffix = {"png": "png", "jpeg": "jpg", "webp": "webp", "graph": "png"}
    out = [build(tmp / f"{build.__name__}.{suffix[build.__name__.rsplit('_', 1)[1]]}") for build in builders]
    out.append(n.webui_stealth_png(tmp / "webui_stealth.png", A1111, compressed=True))
    for saver, jpeg in ((cs.comfy_image_saver, "jpeg"), (cs.save_image_with_metadata, "jpeg"),
                        (cs.save_image_extended, "jpg")):  # fmt: skip
        out += [saver(tmp / f"{saver.__name__}.{ext}", ext) for ext in ("png", jpeg, "webp")]
    return out


def view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("raw", "path", "error", "pixel_width", "pixel_height")}


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
def test_every_supported_generator_round_trips(tmp_path: Path, fmt: str) -> None:
    """A sample of every generator, re-encoded as the stage does (texts the format has no place for go
    to the copy's sidecar): `mediasyncd inspect --json` gives the same record for copy and original, and
    exiftool reads every copy."""
    from mediasyncd.workflow.replace import sidecar_for_copy

    (tmp_path / "src").mkdir()
    sources = generator_samples(tmp_path / "src")
    copies = []
    for source in sources:
        encoded = encode(source, fmt, 90)
        copy = tmp_path / f"{source.name}.{fmt}"
        copy.write_bytes(encoded.data)
        sidecar_for_copy(source, copy, "ext", encoded.spilled, follow=False)
        copies.append(copy)
    out = subprocess.run([MEDIASYNCD, "inspect", "--json", *map(str, sources + copies)], capture_output=True,
                         text=True).stdout.splitlines()  # fmt: skip
    docs = [json.loads(line) for line in out]
    originals, copied = docs[: len(sources)], docs[len(sources) :]
    assert all(d["generator"] for d in originals)
    assert [view(d) for d in copied] == [view(d) for d in originals]
    tags = json.loads(subprocess.run(["exiftool", "-j", "-FileType", *map(str, copies)], capture_output=True,
                                     check=True, text=True).stdout)  # fmt: skip
    assert {t["FileType"].removeprefix("Extended ") for t in tags} == {fmt.upper()}  # WebP with EXIF
    assert len(tags) == len(copies)
