"""ComfyUI outputs written by custom save nodes, each laid out as its source writes it, and a graph whose
seed, steps, CFG, sampler, checkpoint and prompt arrive through primitive/literal/converter nodes.
Every builder writes to `path` and returns it.

Sources followed:
- giriss/comfy-image-saver `nodes.py` (commit 198b544), `ImageSaveWithMetadata.save_files`: the comment
  f"{positive}\\nNegative prompt: {negative}\\nSteps: {steps}, Sampler: {sampler_name}{'_'+scheduler unless
  normal}, CFG Scale: {cfg}, Seed: {seed}, Size: {w}x{h}, Model hash: {sha256[:10]}, Model: {name}, Version:
  ComfyUI"; PNG: tEXt `parameters`, `prompt`, `workflow`; JPEG/WebP: piexif Exif UserComment
  `UserComment.dump(comment, encoding="unicode")` ("UNICODE\\0" + UTF-16BE).
- nkchocoai/ComfyUI-SaveImageWithMetaData `py/capture.py` (commit 0d2afa5) `gen_parameters_str`: prompt line,
  "Negative prompt: …" line, then "Steps, Sampler (+ "_" + scheduler unless normal), CFG Scale, Seed, Clip
  skip, Size, Model, Model hash, Hashes" — no Version; `py/nodes/node.py`: PNG `parameters` + `prompt` +
  `workflow`, JPEG/WebP the same piexif UserComment.
- audioscavenger/save-image-extended-comfyui `save_image_extended.py` (commit 052560f) `get_metadata_exif`:
  `img.getexif()[ExifTags.Base.UserComment] = json.dumps({"prompt": prompt, **extra_pnginfo})` — in IFD0,
  as ASCII — for JPEG/WebP/AVIF; PNG like ComfyUI's SaveImage.
- Suzie1/ComfyUI_Comfyroll_CustomNodes `CR_ImageOutput.save_images`: `img.save(path, **params,
  pnginfo=metadata)` — `prompt`/`workflow` tEXt in PNG; Pillow ignores pnginfo for jpg/webp (no metadata).
- Goktug/comfyui-saveimage-plus `save_image.py` (version 1.0.0 in its pyproject.toml; read in the yowasou
  fork, commit 1f6af69), node "SaveImagePlus" ("Save Image Plus"): PNG like SaveImage (`prompt` and each
  `extra_pnginfo` key as json.dumps'd tEXt, compress_level 4); JPEG (quality 90), WebP lossy (quality 90)
  or lossless: `exif = img.getexif(); exif[ExifTags.Base.UserComment] = json.dumps({"prompt": prompt,
  **extra_pnginfo})` — IFD0, a str — then `img.save(..., exif=exif.tobytes())`.
- chflame163/ComfyUI_LayerStyle `py/save_image_plus.py` (commit 17db0ff), node "LayerUtility: SaveImagePlus"
  ("LayerUtility: SaveImage Plus"): with `meta_data` on, PNG gets `prompt` + `workflow` tEXt
  (`compress_level=(100 - quality) // 10`); "jpg" is saved with `quality` only — no metadata.
- TensorArt: `generation_data` with "seed": "-1" beside the ComfyUI graph holding the seed used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.pipeline.samples import comfyui_workflow, insert_chunk, png, unicode_comment

POSITIVE = "a glass teapot on a windowsill, morning light"
NEGATIVE = "lowres, watermark"


def literal_graph() -> dict[str, Any]:
    """Settings through Comfy Image Saver's literal nodes, rgthree's seed, a string converter and a reroute
    of the checkpoint name; a LoRA on the model path."""
    return {
        "40": {
            "class_type": "Checkpoint Selector",
            "inputs": {"ckpt_name": "sdxl/juggernautXL_v9.safetensors"},
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ["40", 0]}},
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": "add-detail-xl.safetensors",
                "strength_model": 0.6,
                "strength_clip": 0.6,
                "model": ["4", 0],
                "clip": ["4", 1],
            },
        },
        "41": {"class_type": "Seed (rgthree)", "inputs": {"seed": 445566778899}},
        "42": {"class_type": "Int Literal", "inputs": {"int": 32}},
        "43": {"class_type": "Cfg Literal", "inputs": {"float": 6.0}},
        "44": {"class_type": "Sampler Selector", "inputs": {"sampler_name": "dpmpp_2m"}},
        "45": {"class_type": "Scheduler Selector", "inputs": {"scheduler": "karras"}},
        "46": {"class_type": "String Literal", "inputs": {"string": POSITIVE}},
        "47": {"class_type": "StringFunction|pysssss", "inputs": {"action": "append", "text_a": ["46", 0]}},
        "48": {"class_type": "String Literal", "inputs": {"string": NEGATIVE}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["47", 0], "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ["48", 0], "clip": ["10", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": ["41", 0],
                "steps": ["42", 0],
                "cfg": ["43", 0],
                "sampler_name": ["44", 0],
                "scheduler": ["45", 0],
                "denoise": 1.0,
                "model": ["10", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    }


def _with_saver(graph: dict[str, Any], class_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return graph | {"9": {"class_type": class_type, "inputs": {"images": ["8", 0], **inputs}}}


IMAGE_SAVER_COMMENT = (
    f"{POSITIVE}\nNegative prompt: {NEGATIVE}\n"
    "Steps: 32, Sampler: dpmpp_2m_karras, CFG Scale: 6.0, Seed: 445566778899, Size: 1024x1024, "
    "Model hash: 1a2b3c4d5e, Model: juggernautXL_v9, Version: ComfyUI"
)

WITH_METADATA_PARAMETERS = (
    f"{POSITIVE}\nNegative prompt: {NEGATIVE}\n"
    "Steps: 32, Sampler: dpmpp_2m_karras, CFG Scale: 6.0, Seed: 445566778899, Size: 1024x1024, "
    "Model: sdxl/juggernautXL_v9.safetensors, Model hash: 1a2b3c4d5e, "
    'Hashes: {"model": "1a2b3c4d5e", "lora:add-detail-xl": "9f8e7d6c5b"}'
)


def comfy_image_saver(path: Path, extension: str) -> Path:
    """Save Image w/Metadata: PNG `parameters` + graph + workflow; JPEG/WebP the comment in UserComment."""
    graph = _with_saver(literal_graph(), "Save Image w/Metadata", {"extension": extension})
    if extension == "png":
        return png(
            path,
            text={
                "parameters": IMAGE_SAVER_COMMENT,
                "prompt": json.dumps(graph),
                "workflow": json.dumps(comfyui_workflow()),
            },
        )
    return _exif_comment(path, extension, IMAGE_SAVER_COMMENT)


def save_image_with_metadata(path: Path, extension: str) -> Path:
    graph = _with_saver(literal_graph(), "SaveImageWithMetaData", {"file_format": extension})
    if extension == "png":
        return png(
            path,
            text={
                "parameters": WITH_METADATA_PARAMETERS,
                "prompt": json.dumps(graph),
                "workflow": json.dumps(comfyui_workflow()),
            },
        )
    return _exif_comment(path, extension, WITH_METADATA_PARAMETERS)


def _exif_comment(path: Path, extension: str, comment: str) -> Path:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = unicode_comment(comment, "be")
    fmt = {"jpeg": "JPEG", "webp": "WEBP"}[extension]
    Image.new("RGB", (64, 64), (200, 200, 190)).save(path, fmt, quality=90, exif=exif)
    return path


def save_image_extended(path: Path, extension: str) -> Path:
    """JPEG/WebP: IFD0 UserComment = json.dumps({"prompt": graph, "workflow": …}); PNG: prompt/workflow."""
    graph = _with_saver(literal_graph(), "SaveImageExtended", {"output_ext": f".{extension}"})
    if extension == "png":
        return png(path, text={"prompt": json.dumps(graph), "workflow": json.dumps(comfyui_workflow())})
    image = Image.new("RGB", (64, 64), (200, 200, 190))
    exif = image.getexif()
    exif[0x9286] = json.dumps({"prompt": graph, "workflow": comfyui_workflow()})
    image.save(path, {"jpg": "JPEG", "webp": "WEBP"}[extension], quality=90, exif=exif.tobytes())
    return path


def comfyroll_output(path: Path, file_format: str) -> Path:
    """CR Image Output: PngInfo passed to every format; only PNG keeps it. CR Seed / CR Prompt Text feed it."""
    graph = literal_graph()
    graph["41"] = {"class_type": "CR Seed", "inputs": {"seed": 445566778899}}
    graph["46"] = {"class_type": "CR Prompt Text", "inputs": {"prompt": POSITIVE}}
    graph = _with_saver(graph, "CR Image Output", {"output_type": "Save", "file_format": file_format})
    image = Image.new("RGB", (64, 64), (200, 200, 190))
    if file_format == "png":
        return png(path, text={"prompt": json.dumps(graph), "workflow": json.dumps(comfyui_workflow())})
    image.save(path, {"jpg": "JPEG", "webp": "WEBP"}[file_format])
    return path


def tensorart_with_graph(path: Path) -> Path:
    """TensorArt: `generation_data` says seed "-1"; the `prompt` graph holds the seed used."""
    data = {
        "prompt": POSITIVE,
        "negativePrompt": NEGATIVE,
        "width": 1024,
        "height": 1024,
        "samplerName": "dpmpp_2m",
        "steps": 32,
        "cfgScale": 6,
        "seed": "-1",
        "baseModel": {"modelFileName": "juggernautXL_v9.safetensors", "hash": "1A2B3C4D5E"},
    }
    path = png(path, text={"prompt": json.dumps(_with_saver(literal_graph(), "SaveImage", {}))})
    return insert_chunk(
        path,
        b"tEXt",
        b"generation_data\0" + json.dumps(data, ensure_ascii=False).encode() + b"\0",
        before=b"IDAT",
    )


def save_image_plus(path: Path, file_type: str) -> Path:
    """Save Image Plus (Goktug): file_type "PNG", "JPEG", "WEBP (lossless)" or "WEBP (lossy)"."""
    graph = _with_saver(literal_graph(), "SaveImagePlus", {"file_type": file_type, "remove_metadata": False})
    extra_pnginfo = {"workflow": comfyui_workflow()}
    image = Image.new("RGB", (64, 64), (200, 200, 190))
    if file_type == "PNG":
        info = PngInfo()
        info.add_text("prompt", json.dumps(graph))
        for key, value in extra_pnginfo.items():
            info.add_text(key, json.dumps(value))
        image.save(path, "PNG", compress_level=4, pnginfo=info)
        return path
    kwargs: dict[str, Any] = {"lossless": True} if file_type == "WEBP (lossless)" else {"quality": 90}
    exif = image.getexif()
    exif[0x9286] = json.dumps({"prompt": graph, **extra_pnginfo})  # ExifTags.Base.UserComment, in IFD0
    image.save(path, "JPEG" if file_type == "JPEG" else "WEBP", exif=exif.tobytes(), **kwargs)
    return path


def layerstyle_save_image_plus(path: Path, file_format: str, quality: int = 80) -> Path:
    """LayerUtility: SaveImage Plus with meta_data on: PNG prompt + workflow; jpg carries nothing."""
    graph = _with_saver(
        literal_graph(), "LayerUtility: SaveImagePlus", {"format": file_format, "meta_data": True}
    )
    image = Image.new("RGB", (64, 64), (200, 200, 190))
    if file_format == "png":
        info = PngInfo()
        info.add_text("prompt", json.dumps(graph))
        info.add_text("workflow", json.dumps(comfyui_workflow()))
        image.save(path, pnginfo=info, compress_level=(100 - quality) // 10)
    else:
        image.save(path, quality=quality)
    return path
