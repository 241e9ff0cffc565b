"""The metadata corpus's writers, one per tool and format: each renders a `Setting` the way that tool's saver
writes it and returns the `Truth` it wrote. `WRITERS` lists them all (ComfyUI's are in `corpus_comfy`).

Sources followed (the writers' code, not readers'):
- AUTOMATIC1111/stable-diffusion-webui v1.10.1 `modules/processing.py` create_infotext (prompt, then
  "\\nNegative prompt: …" only when there is one, then "Key: value" joined by ", ", values quoted by
  `infotext_utils.quote` when they hold "," ":" or a newline; Model is the checkpoint's short name) and
  `modules/images.py` save_image_with_geninfo (PNG: PngInfo.add_text("parameters"); JPEG/WebP: piexif
  Exif UserComment `UserComment.dump(text, encoding="unicode")`, quality = jpeg_quality 80). Forge and
  SD.Next keep this layout (Forge: hires keys "Hires upscale/steps/upscaler", Size the first pass's;
  SD.Next adds "App: SD.Next").
- ashen-sensored/sd_webui_stealth_pnginfo, NovelAI/novelai-image-metadata `nai_meta_writer.py`, NovelAI's
  image API v4 captions, enslo/sd-metadata's NovelAI WebP layout: see tests/pipeline/samples_novelai.py.
- civitai/civitai `src/utils/metadata/automatic.metadata.ts` encode (A1111 text, `Civitai resources` JSON,
  UserComment UTF-16), with its generator's hires and upscale workflows and AIRs.
- invoke-ai/InvokeAI `invokeai/app/invocations/metadata.py` CoreMetadataInvocation (tEXt
  `invokeai_metadata`); lllyasviel/Fooocus `modules/meta_parser.py` FooocusMetadataParser.to_json
  (`parameters` JSON + `fooocus_scheme`); mcmonkeyprojects/SwarmUI `T2IParamInput` (`sui_image_params`);
  easydiffusion `ui/easydiffusion/utils/save_utils.py` (one tEXt per field); runew0lf/RuinedFooocus
  `modules/imagebase.py`; LykosAI/StabilityMatrix `GenerationParameters` (`parameters-json`); Draw Things'
  XMP (exif:UserComment JSON); a Gradio+diffusers Space's `parameters` JSON; Midjourney's PNG
  Description "<prompt> --ar w:h --v 6.1 Job ID: <uuid>" with Author and Creation Time (as exiftool shows
  on files from midjourney.com); GIMP 2.10's PNG export (text chunks dropped, its own XMP packet).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from bench import corpus_comfy as comfy
from bench.corpus_common import (
    Setting,
    Truth,
    exif_user_comment,
    insert_png_chunk,
    num,
    png_texts,
    solid,
    unicode_comment,
    xml,
)
from tests.pipeline import samples_c2pa, samples_novelai

Writer = Callable[[Path, Setting], Truth]


def quote(value: object) -> str:
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def infotext(s: Setting, *extra: tuple[str, object], version: str = "v1.10.1", schedule: bool = True) -> str:
    sampler, schedule_type, _, _ = s.sampler
    params: dict[str, object] = {"Steps": s.steps, "Sampler": sampler}
    if schedule:
        params["Schedule type"] = schedule_type
    params |= {
        "CFG scale": num(s.cfg),
        "Seed": s.seed,
        "Size": f"{s.width}x{s.height}",
        "Model hash": "1449e5b0b9",
        "Model": s.model,
    }
    params |= dict(extra)
    params["Version"] = version
    negative = f"\nNegative prompt: {s.negative}" if s.negative else ""
    line = ", ".join(f"{key}: {quote(value)}" for key, value in params.items())
    return f"{s.prompt}{negative}\n{line}".strip()


# -- A1111 family ---------------------------------------------------------------------------------------


def extensions(s: Setting) -> tuple[tuple[str, object], ...]:
    """What popular extensions add to the infotext, on some images: ADetailer (its own prompt, quoted when
    it has commas) and the LoRA / embedding hashes lists."""
    if s.seed % 3:
        return ()
    return (
        ("ADetailer model", "face_yolov8n.pt"),
        ("ADetailer prompt", "detailed face, smile"),
        ("ADetailer confidence", 0.3),
        ("ADetailer version", "24.9.0"),
        ("Lora hashes", "add_detail: 7c6ab1fe4, style_x: 0d1f2e3c"),
        ("TI hashes", "easynegative: c74b4e810b03"),
    )


def a1111_png(path: Path, s: Setting) -> Truth:
    png_texts(path, s.pixels, {"parameters": infotext(s, *extensions(s))})
    return Truth.of(s)


def a1111_exif(fmt: str) -> Writer:
    def write(path: Path, s: Setting) -> Truth:
        exif_user_comment(path, s.pixels, fmt, unicode_comment(infotext(s, *extensions(s))), quality=80)
        return Truth.of(s)

    return write


def forge_hires_png(path: Path, s: Setting) -> Truth:
    scale = 2 if s.width * s.height <= 768 * 768 else 1.5
    text = infotext(
        s,
        ("Denoising strength", 0.45),
        ("Hires upscale", scale),
        ("Hires steps", max(1, s.steps // 2)),
        ("Hires upscaler", "4x-UltraSharp"),
        version="f2.0.1v1.10.1-previous-633-ge073e4ec",
    )
    pixels = int(s.pixels[0] * scale), int(s.pixels[1] * scale)
    png_texts(path, pixels, {"parameters": text})
    return Truth.of(s)


def sdnext_png(path: Path, s: Setting) -> Truth:
    png_texts(
        path, s.pixels, {"parameters": infotext(s, ("App", "SD.Next"), version="8d5e1b3", schedule=False)}
    )
    return Truth.of(s)


def webui_stealth_png(path: Path, s: Setting) -> Truth:
    """sd_webui_stealth_pnginfo (gzip'd "stealth_pngcomp"), the text chunks then stripped by a site."""
    samples_novelai.webui_stealth_png(path, infotext(s), compressed=True)
    return Truth.of(s)


def webui_stealth_rgb_png(path: Path, s: Setting) -> Truth:
    """The same extension's RGB mode ("stealth_rgbcomp" in the r, g, b low bits of an RGB PNG)."""
    samples_novelai.webui_stealth_png(path, infotext(s), compressed=True, mode="rgb")
    return Truth.of(s)


def truncated_png(path: Path, s: Setting) -> Truth:
    """An A1111 PNG cut short in its image data (an interrupted copy): the text before IDAT survives."""
    png_texts(path, (s.pixels[0] * 4, s.pixels[1] * 4), {"parameters": infotext(s)})
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index(b"IDAT") + 40])
    return Truth.of(s)


# -- NovelAI --------------------------------------------------------------------------------------------


def _novelai_texts(s: Setting, model: str, v4: bool) -> dict[str, str]:
    comment: dict[str, Any] = {
        "prompt": s.prompt,
        "steps": s.steps,
        "height": s.height,
        "width": s.width,
        "scale": s.cfg,
        "uncond_scale": 1.0,
        "cfg_rescale": 0.0,
        "seed": s.seed,
        "n_samples": 1,
        "noise_schedule": "karras",
        "sampler": "k_euler_ancestral",
        "uc": s.negative,
        "request_type": "PromptGenerateRequest",
    }
    if v4:
        comment["v4_prompt"] = {
            "caption": {"base_caption": s.prompt, "char_captions": [{"char_caption": "girl, red hair",
                        "centers": [{"x": 0.5, "y": 0.5}]}]},
            "use_coords": False,
            "use_order": True,
        }  # fmt: skip
        comment["v4_negative_prompt"] = {
            "caption": {"base_caption": s.negative, "char_captions": [{"char_caption": "",
                        "centers": [{"x": 0.5, "y": 0.5}]}]},
            "legacy_uc": False,
        }  # fmt: skip
    return {
        "Title": "NovelAI generated image",
        "Description": s.prompt,
        "Software": "NovelAI",
        "Source": f"{model} {'4F7EF1E0' if v4 else '4BDE2A90'}",
        "Generation time": "5.1",
        "Comment": json.dumps(comment),
    }


def novelai_png(v4: bool) -> Writer:
    model = "NovelAI Diffusion V4 Full" if v4 else "NovelAI Diffusion V3"

    def write(path: Path, s: Setting) -> Truth:
        png_texts(path, s.pixels, _novelai_texts(s, model, v4))
        return Truth.of(s, model=model)

    return write


def novelai_stealth_png(path: Path, s: Setting) -> Truth:
    """NovelAI's LSBInjector: every text chunk but Title, gzip'd JSON, in the alpha LSBs; no text chunks."""
    texts = _novelai_texts(s, "NovelAI Diffusion V3", False)
    del texts["Title"]
    samples_novelai.novelai_stealth_png(path, (s.width // 4, s.height // 4), texts)
    return Truth.of(s, model="NovelAI Diffusion V3")


def novelai_webp(path: Path, s: Setting) -> Truth:
    texts = _novelai_texts(s, "NovelAI Diffusion V4 Full", True)
    exif = Image.Exif()
    exif[0x010E] = texts["Description"]
    exif.get_ifd(0x8769)[0x9286] = unicode_comment(json.dumps(texts), "le")
    solid(s.pixels).save(path, "WEBP", exif=exif, quality=90)
    return Truth.of(s, model="NovelAI Diffusion V4 Full")


# -- Civitai --------------------------------------------------------------------------------------------


def civitai(variant: str) -> Writer:
    def write(path: Path, s: Setting) -> Truth:
        sampler, schedule, _, _ = s.sampler
        air = f"urn:air:sdxl:checkpoint:civitai:{s.seed % 400000}@{s.seed % 900000}"
        checkpoint: dict[str, Any] = {"type": "checkpoint", "modelVersionId": s.seed % 900000, "air": air}
        if variant != "air":
            checkpoint |= {"modelName": s.model, "modelVersionName": "v1.0"}
        details = [f"Steps: {s.steps}", f"CFG scale: {num(s.cfg)}", f"Sampler: {sampler} {schedule}",
                   f"Seed: {s.seed}"]  # fmt: skip
        scale = {"hires": 1.5, "upscale": 2.0}.get(variant, 1.0)
        if variant == "hires":
            details += ["workflow: txt2img-hires", "Denoising strength: 0.4", "Hires upscale: 1.5",
                        "Hires upscaler: 4x-UltraSharp", "Hires steps: 10"]  # fmt: skip
        if variant == "upscale":
            details += ["workflow: img2img-upscale", "Denoising strength: 0.3"]
        details += [f"Size: {s.width}x{s.height}", "Clip skip: 2", "Created Date: 2026-10-03T08:15:00.0000000Z",
                    f"Civitai resources: {json.dumps([checkpoint], separators=(',', ':'))}",
                    "Civitai metadata: {}"]  # fmt: skip
        negative = f"\nNegative prompt: {s.negative}" if s.negative else ""
        text = f"{s.prompt}{negative}\n" + ", ".join(details)
        pixels = int(s.pixels[0] * scale), int(s.pixels[1] * scale)
        exif_user_comment(
            path, pixels, "JPEG", unicode_comment(text, "le" if s.seed % 2 else "be"), quality=85
        )
        return Truth.of(s, model=air if variant == "air" else s.model)

    return write


# -- JSON-writing apps ----------------------------------------------------------------------------------


def invokeai_png(path: Path, s: Setting) -> Truth:
    metadata = {
        "generation_mode": "sdxl_txt2img", "positive_prompt": s.prompt, "negative_prompt": s.negative,
        "width": s.width, "height": s.height, "seed": s.seed, "rand_device": "cpu", "cfg_scale": s.cfg,
        "steps": s.steps, "scheduler": "dpmpp_2m_k", "app_version": "5.4.2",
        "model": {"key": "a1b2", "hash": "blake3:abcdef", "name": s.model, "base": "sdxl", "type": "main"},
    }  # fmt: skip
    png_texts(
        path, s.pixels, {"invokeai_metadata": json.dumps(metadata), "invokeai_graph": json.dumps({"id": "g"})}
    )
    return Truth.of(s)


def fooocus_png(path: Path, s: Setting) -> Truth:
    _, _, sampler, scheduler = s.sampler
    data = {
        "prompt": s.prompt, "negative_prompt": s.negative, "prompt_expansion": s.prompt + ", intricate",
        "styles": "['Fooocus V2']", "performance": "Speed", "steps": s.steps, "resolution": f"({s.width}, {s.height})",
        "guidance_scale": s.cfg, "sharpness": 2, "adm_guidance": "(1.5, 0.8, 0.3)",
        "base_model": s.checkpoint.rsplit("/", 1)[-1], "refiner_model": "None", "refiner_switch": 0.5,
        "sampler": sampler, "scheduler": scheduler, "seed": str(s.seed), "metadata_scheme": "fooocus",
        "version": "Fooocus v2.5.5",
    }  # fmt: skip
    png_texts(path, s.pixels, {"parameters": json.dumps(data), "fooocus_scheme": "fooocus"})
    return Truth.of(s)


def swarmui_png(path: Path, s: Setting) -> Truth:
    _, _, sampler, scheduler = s.sampler
    params = {
        "prompt": s.prompt, "negativeprompt": s.negative, "model": "SDXL/" + s.model, "seed": s.seed,
        "steps": s.steps, "cfgscale": s.cfg, "aspectratio": "Custom", "width": s.width, "height": s.height,
        "sampler": sampler, "scheduler": scheduler, "swarm_version": "0.9.1.1", "date": "2026-11-01",
    }  # fmt: skip
    png_texts(path, s.pixels, {"parameters": json.dumps({"sui_image_params": params}, indent=2)})
    return Truth.of(s)


def easy_diffusion_png(path: Path, s: Setting) -> Truth:
    texts = {
        "Prompt": s.prompt, "Negative Prompt": s.negative, "Seed": str(s.seed),
        "Stable Diffusion model": "/models/stable-diffusion/" + s.checkpoint.rsplit("/", 1)[-1],
        "Sampler": "euler_a", "Width": str(s.width), "Height": str(s.height), "Steps": str(s.steps),
        "Guidance Scale": num(s.cfg),
    }  # fmt: skip
    png_texts(path, s.pixels, texts)
    return Truth.of(s)


def ruined_fooocus_png(path: Path, s: Setting) -> Truth:
    data = {
        "Prompt": s.prompt, "Negative": s.negative, "steps": s.steps, "cfg": s.cfg, "width": s.width,
        "height": s.height, "seed": s.seed, "sampler_name": "dpmpp_2m_sde_gpu", "scheduler": "karras",
        "base_model_name": s.checkpoint.rsplit("/", 1)[-1], "base_model_hash": "e6bb9ea85b",
        "loras": [], "start_step": 0, "denoise": None, "clip_skip": 1, "software": "RuinedFooocus",
    }  # fmt: skip
    png_texts(path, s.pixels, {"parameters": json.dumps(data)})
    return Truth.of(s)


def stability_matrix_png(path: Path, s: Setting) -> Truth:
    params = {
        "PositivePrompt": s.prompt, "NegativePrompt": s.negative, "Steps": s.steps, "Sampler": "euler_ancestral",
        "Scheduler": "normal", "CfgScale": s.cfg, "Seed": s.seed, "Width": s.width, "Height": s.height,
        "ModelName": s.checkpoint.rsplit("/", 1)[-1], "ModelHash": "879db523c3",
    }  # fmt: skip
    texts = {"parameters": infotext(s, schedule=False), "parameters-json": json.dumps(params),
             "smproj": json.dumps({"v": 1})}  # fmt: skip
    png_texts(path, s.pixels, texts)
    return Truth.of(s)


def drawthings_png(path: Path, s: Setting) -> Truth:
    settings = {
        "c": s.prompt, "uc": s.negative, "sampler": "DPM++ 2M Karras", "steps": s.steps, "scale": s.cfg,
        "seed": s.seed, "size": f"{s.width}x{s.height}", "model": s.model + "_f16.ckpt", "strength": 1,
    }  # fmt: skip
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 6.0.0"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f'<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{xml(json.dumps(settings))}</rdf:li>'
        "</rdf:Alt></exif:UserComment><xmp:CreatorTool>Draw Things</xmp:CreatorTool><dc:description>"
        f'<rdf:Alt><rdf:li xml:lang="x-default">{xml(s.prompt)}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    png_texts(path, s.pixels, {"XML:com.adobe.xmp": packet})
    return Truth.of(s, model=s.model + "_f16")


def hf_space_png(path: Path, s: Setting) -> Truth:
    data = {
        "prompt": s.prompt, "negative_prompt": s.negative, "resolution": f"{s.width} x {s.height}",
        "guidance_scale": s.cfg, "num_inference_steps": s.steps, "style_preset": "(No style)", "seed": s.seed,
        "sampler": "DPM++ 2M SDE Karras", "Model": s.model, "Model hash": "e3c47aedb0",
    }  # fmt: skip
    png_texts(path, s.pixels, {"parameters": json.dumps(data)})
    return Truth.of(s)


def midjourney_png(path: Path, s: Setting) -> Truth:
    """midjourney.com downloads: Description = prompt + parameters + Job ID; no steps, CFG or model."""
    prompt = s.prompt.replace("\n", " ")
    seeded = s.seed % 3 == 0
    params = f" --ar {s.width // 64}:{s.height // 64}" + (f" --seed {s.seed}" if seeded else "") + " --v 6.1"
    texts = {
        "Description": f"{prompt}{params} Job ID: {uuid.UUID(int=s.seed)}",
        "Author": "someone",
        "Creation Time": "Mon, 30 Nov 2026 10:00:00 GMT",
    }
    png_texts(path, s.pixels, texts)
    return Truth(prompt=prompt, seed=s.seed if seeded else None, width=s.pixels[0], height=s.pixels[1])


# -- files without (readable) generation metadata ------------------------------------------------------


def c2pa_png(path: Path, s: Setting) -> Truth:
    """ChatGPT: a C2PA store in a `caBX` chunk before IDAT, no prompt anywhere."""
    solid(s.pixels).save(path, "PNG")
    insert_png_chunk(path, b"caBX", samples_c2pa.store(samples_c2pa.CHATGPT_CLAIM))
    return Truth(width=s.pixels[0], height=s.pixels[1])


def c2pa_jpeg(path: Path, s: Setting) -> Truth:
    """Adobe Firefly: a claim v2 store in JPEG APP11 packets."""
    manifest = samples_c2pa.store(samples_c2pa.FIREFLY_CLAIM, v2=True)
    samples_c2pa.jpeg_with_manifest(path, manifest, size=s.pixels)
    return Truth(width=s.pixels[0], height=s.pixels[1])


def gimp_png(path: Path, s: Setting) -> Truth:
    """An A1111 PNG opened in GIMP 2.10 and exported: `parameters` is gone, GIMP's XMP packet is there."""
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/" '
        'x:xmptk="XMP Core 4.4.0-Exiv2"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        'xmlns:GIMP="http://www.gimp.org/xmp/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmpMM:DocumentID="gimp:docid:gimp:1" GIMP:API="2.0" GIMP:Platform="Linux" '
        'GIMP:Version="2.10.34" xmp:CreatorTool="GIMP 2.10"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    png_texts(path, s.pixels, {"XML:com.adobe.xmp": packet})
    return Truth(width=s.pixels[0], height=s.pixels[1])


def stripped_jpeg(path: Path, s: Setting) -> Truth:
    """A chat app's re-encode: pixels only."""
    solid(s.pixels).save(path, "JPEG", quality=75)
    return Truth(width=s.pixels[0], height=s.pixels[1])


def empty_file(path: Path, s: Setting) -> Truth:
    path.write_bytes(b"")
    return Truth()


# (tool, format, suffix, writer)
WRITERS: list[tuple[str, str, str, Writer]] = [
    ("A1111", "PNG", ".png", a1111_png),
    ("A1111", "JPEG", ".jpg", a1111_exif("JPEG")),
    ("A1111", "WebP", ".webp", a1111_exif("WEBP")),
    ("Forge (hires fix)", "PNG", ".png", forge_hires_png),
    ("SD.Next", "PNG", ".png", sdnext_png),
    ("A1111 + stealth pnginfo, text stripped", "PNG", ".png", webui_stealth_png),
    ("A1111 + stealth pnginfo RGB mode, text stripped", "PNG", ".png", webui_stealth_rgb_png),
    ("ComfyUI SaveImage", "PNG", ".png", comfy.saveimage_png),
    ("ComfyUI SaveAnimatedWEBP", "WebP", ".webp", comfy.animated_webp),
    ("ComfyUI primitive nodes", "PNG", ".png", comfy.primitives_png),
    ("ComfyUI SamplerCustomAdvanced", "PNG", ".png", comfy.custom_sampler_png),
    ("ComfyUI Flux (guider)", "PNG", ".png", comfy.flux_png),
    ("ComfyUI SDXL encoders + hires pass", "PNG", ".png", comfy.sdxl_hires_png),
    ("ComfyUI text nodes (concatenate, wildcard)", "PNG", ".png", comfy.text_nodes_png),
    ("Comfy Image Saver", "PNG", ".png", comfy.comfy_image_saver("png")),
    ("Comfy Image Saver", "JPEG", ".jpg", comfy.comfy_image_saver("jpeg")),
    ("Comfy Image Saver", "WebP", ".webp", comfy.comfy_image_saver("webp")),
    ("Save Image With Metadata", "PNG", ".png", comfy.save_image_with_metadata("png")),
    ("Save Image With Metadata", "JPEG", ".jpg", comfy.save_image_with_metadata("jpeg")),
    ("Save Image With Metadata", "WebP", ".webp", comfy.save_image_with_metadata("webp")),
    ("Save Image Extended", "PNG", ".png", comfy.json_exif_saver("SaveImageExtended", "png")),
    ("Save Image Extended", "JPEG", ".jpg", comfy.json_exif_saver("SaveImageExtended", "jpg")),
    ("Save Image Extended", "WebP", ".webp", comfy.json_exif_saver("SaveImageExtended", "webp")),
    ("Save Image Plus", "PNG", ".png", comfy.json_exif_saver("SaveImagePlus", "png")),
    ("Save Image Plus", "JPEG", ".jpg", comfy.json_exif_saver("SaveImagePlus", "jpg")),
    ("Save Image Plus", "WebP", ".webp", comfy.json_exif_saver("SaveImagePlus", "webp")),
    ("LayerStyle SaveImage Plus", "PNG", ".png", comfy.graph_only_png("LayerUtility: SaveImagePlus")),
    ("Comfyroll CR Image Output", "PNG", ".png", comfy.graph_only_png("CR Image Output")),
    ("TensorArt (seed -1 + graph)", "PNG", ".png", comfy.tensorart_png),
    ("NovelAI v3", "PNG", ".png", novelai_png(v4=False)),
    ("NovelAI v4", "PNG", ".png", novelai_png(v4=True)),
    ("NovelAI stealth, text stripped", "PNG", ".png", novelai_stealth_png),
    ("NovelAI v4", "WebP", ".webp", novelai_webp),
    ("Civitai", "JPEG", ".jpg", civitai("plain")),
    ("Civitai hires", "JPEG", ".jpg", civitai("hires")),
    ("Civitai upscale", "JPEG", ".jpg", civitai("upscale")),
    ("Civitai (AIR only)", "JPEG", ".jpg", civitai("air")),
    ("InvokeAI 5", "PNG", ".png", invokeai_png),
    ("Fooocus", "PNG", ".png", fooocus_png),
    ("SwarmUI", "PNG", ".png", swarmui_png),
    ("Easy Diffusion", "PNG", ".png", easy_diffusion_png),
    ("RuinedFooocus", "PNG", ".png", ruined_fooocus_png),
    ("Stability Matrix", "PNG", ".png", stability_matrix_png),
    ("Draw Things", "PNG", ".png", drawthings_png),
    ("Hugging Face Space", "PNG", ".png", hf_space_png),
    ("Midjourney", "PNG", ".png", midjourney_png),
    ("C2PA (ChatGPT)", "PNG", ".png", c2pa_png),
    ("C2PA (Firefly)", "JPEG", ".jpg", c2pa_jpeg),
    ("GIMP-edited A1111", "PNG", ".png", gimp_png),
    ("stripped re-encode", "JPEG", ".jpg", stripped_jpeg),
    ("truncated A1111", "PNG", ".png", truncated_png),
    ("empty file", "PNG", ".png", empty_file),
]
