"""ComfyUI files for the metadata corpus: core SaveImage / SaveAnimatedWEBP and the custom save nodes, over
graphs wired four ways (core KSampler; primitive nodes; SamplerCustomAdvanced; Flux's guider).

Sources followed (the writers' code; the same ones the tests in tests/pipeline/ cite):
- comfyanonymous/ComfyUI `nodes.py` SaveImage.save_images: PngInfo `prompt` = json.dumps(prompt) and one
  tEXt per `extra_pnginfo` key (`workflow`), compress_level 4; `comfy_extras/nodes_images.py`
  SaveAnimatedWEBP: EXIF 0x0110 (Model) = "prompt:" + json, 0x010F (Make) = "workflow:" + json;
  `comfy_extras/nodes_primitive.py`: PrimitiveInt/PrimitiveFloat/PrimitiveString(Multiline) (`value`);
  pythongosssss/ComfyUI-Custom-Scripts `py/reroute_primitive.py` ReroutePrimitive|pysssss (`value` in,
  the same value out);
  `comfy_extras/nodes_custom_sampler.py`: SamplerCustomAdvanced(noise, guider, sampler, sigmas,
  latent_image), RandomNoise(noise_seed), CFGGuider(model, positive, negative, cfg), BasicGuider(model,
  conditioning), KSamplerSelect(sampler_name), BasicScheduler(model, scheduler, steps, denoise);
  `comfy_extras/nodes_flux.py` FluxGuidance(conditioning, guidance); `comfy_extras/nodes_clip_sdxl.py`
  CLIPTextEncodeSDXL (text_g, text_l, width, height, crop_*, target_*); `nodes.py` LatentUpscaleBy.
- WASasquatch/was-node-suite-comfyui `WAS_Node_Suite.py` "Text Concatenate" (text_a…text_d joined by
  `delimiter`) and "Text Multiline"; ltdrdata/ComfyUI-Impact-Pack `modules/impact/impact_pack.py`
  ImpactWildcardProcessor (wildcard_text, populated_text: the text actually encoded).
- giriss/comfy-image-saver `nodes.py` (commit 198b544) ImageSaveWithMetadata: "{positive}\\nNegative prompt:
  {negative}\\nSteps: {steps}, Sampler: {sampler}{_scheduler unless normal}, CFG Scale: {cfg}, Seed: {seed},
  Size: {w}x{h}, Model hash: {hash}, Model: {name}, Version: ComfyUI"; PNG `parameters` + prompt +
  workflow; JPEG/WebP piexif UserComment (unicode).
- nkchocoai/ComfyUI-SaveImageWithMetaData `py/capture.py` (commit 0d2afa5) gen_parameters_str, the same
  places as above; Model is the ckpt_name as listed (folder and extension kept).
- audioscavenger/save-image-extended-comfyui `save_image_extended.py` (commit 052560f): JPEG/WebP IFD0
  UserComment = json.dumps({"prompt": prompt, **extra_pnginfo}); PNG as SaveImage.
- Goktug/comfyui-saveimage-plus `save_image.py` (1.0.0; yowasou fork commit 1f6af69): the same IFD0
  UserComment JSON for JPEG/WebP; PNG as SaveImage.
- chflame163/ComfyUI_LayerStyle `py/save_image_plus.py` (commit 17db0ff): PNG prompt + workflow.
- Suzie1/ComfyUI_Comfyroll_CustomNodes CR_ImageOutput.save_images: PNG prompt + workflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from bench.corpus_common import (
    Setting,
    Truth,
    exif_user_comment,
    insert_png_chunk,
    png_texts,
    solid,
    unicode_comment,
)

Graph = dict[str, dict[str, Any]]
WORKFLOW = {"last_node_id": 9, "last_link_id": 9, "nodes": [], "links": [], "version": 0.4}


def _node(kind: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": kind, "inputs": inputs}


def core_graph(s: Setting) -> Graph:
    _, _, sampler, scheduler = s.sampler
    return {
        "4": _node("CheckpointLoaderSimple", ckpt_name=s.checkpoint),
        "5": _node("EmptyLatentImage", width=s.width, height=s.height, batch_size=1),
        "6": _node("CLIPTextEncode", text=s.prompt, clip=["4", 1]),
        "7": _node("CLIPTextEncode", text=s.negative, clip=["4", 1]),
        "3": _node(
            "KSampler",
            seed=s.seed,
            steps=s.steps,
            cfg=s.cfg,
            sampler_name=sampler,
            scheduler=scheduler,
            denoise=1.0,
            model=["4", 0],
            positive=["6", 0],
            negative=["7", 0],
            latent_image=["5", 0],
        ),
        "8": _node("VAEDecode", samples=["3", 0], vae=["4", 2]),
    }


def primitives_graph(s: Setting) -> Graph:
    """Seed, steps, CFG, the prompt and the checkpoint name from core primitive nodes (the widgets
    converted to inputs), the seed and checkpoint through pysssss's ReroutePrimitive."""
    graph = core_graph(s)
    graph |= {
        "20": _node("PrimitiveInt", value=s.seed),
        "21": _node("PrimitiveInt", value=s.steps),
        "22": _node("PrimitiveFloat", value=s.cfg),
        "23": _node("PrimitiveStringMultiline", value=s.prompt),
        "24": _node("ReroutePrimitive|pysssss", value=["20", 0]),
        "25": _node("PrimitiveString", value=s.checkpoint),
        "26": _node("ReroutePrimitive|pysssss", value=["25", 0]),
    }
    graph["6"]["inputs"]["text"] = ["23", 0]
    graph["4"]["inputs"]["ckpt_name"] = ["26", 0]
    sampler = graph["3"]["inputs"]
    sampler |= {"seed": ["24", 0], "steps": ["21", 0], "cfg": ["22", 0]}
    return graph


def custom_sampler_graph(s: Setting) -> Graph:
    """SamplerCustomAdvanced with a CFG guider: every setting sits on a different node."""
    _, _, sampler, scheduler = s.sampler
    graph = core_graph(s)
    del graph["3"]
    graph |= {
        "30": _node("RandomNoise", noise_seed=s.seed),
        "31": _node("CFGGuider", model=["4", 0], positive=["6", 0], negative=["7", 0], cfg=s.cfg),
        "32": _node("KSamplerSelect", sampler_name=sampler),
        "33": _node("BasicScheduler", model=["4", 0], scheduler=scheduler, steps=s.steps, denoise=1.0),
        "3": _node(
            "SamplerCustomAdvanced",
            noise=["30", 0],
            guider=["31", 0],
            sampler=["32", 0],
            sigmas=["33", 0],
            latent_image=["5", 0],
        ),
    }
    return graph


def flux_graph(s: Setting) -> Graph:
    """Flux: UNETLoader, FluxGuidance (the guidance is its CFG), BasicGuider; no negative prompt."""
    graph = custom_sampler_graph(s)
    del graph["4"], graph["7"]
    graph |= {
        "4": _node("UNETLoader", unet_name=s.checkpoint, weight_dtype="fp8_e4m3fn"),
        "40": _node("DualCLIPLoader", clip_name1="t5xxl_fp8.safetensors", clip_name2="clip_l.safetensors"),
        "5": _node("EmptySD3LatentImage", width=s.width, height=s.height, batch_size=1),
        "6": _node("CLIPTextEncode", text=s.prompt, clip=["40", 0]),
        "41": _node("FluxGuidance", conditioning=["6", 0], guidance=s.cfg),
        "31": _node("BasicGuider", model=["4", 0], conditioning=["41", 0]),
    }
    return graph


def sdxl_hires_graph(s: Setting) -> Graph:
    """SDXL text encoders (text_g/text_l, size conditioning) and a latent-upscale second pass."""
    graph = core_graph(s)
    _, _, sampler, scheduler = s.sampler
    for node, text in (("6", s.prompt), ("7", s.negative)):
        graph[node] = _node(
            "CLIPTextEncodeSDXL", text_g=text, text_l=text, width=s.width * 4, height=s.height * 4,
            crop_w=0, crop_h=0, target_width=s.width * 4, target_height=s.height * 4, clip=["4", 1],
        )  # fmt: skip
    graph |= {
        "11": _node("LatentUpscaleBy", upscale_method="nearest-exact", scale_by=1.5, samples=["3", 0]),
        "12": _node(
            "KSampler",
            seed=s.seed,
            steps=max(1, s.steps // 2),
            cfg=s.cfg,
            sampler_name=sampler,
            scheduler=scheduler,
            denoise=0.45,
            model=["4", 0],
            positive=["6", 0],
            negative=["7", 0],
            latent_image=["11", 0],
        ),
    }
    graph["8"]["inputs"]["samples"] = ["12", 0]
    return graph


def text_nodes_graph(s: Setting) -> Graph:
    """The positive prompt from WAS's Text Concatenate (style + subject, its delimiter) and the negative from
    Impact Pack's wildcard processor (the text it populated is what was encoded)."""
    graph = core_graph(s)
    style, _, subject = s.prompt.rpartition(", ")
    graph |= {
        "50": _node("Text Multiline", text=style),
        "51": _node("Text Multiline", text=subject),
        "52": _node(
            "Text Concatenate", delimiter=", ", clean_whitespace="true", text_a=["50", 0], text_b=["51", 0]
        ),
        "53": _node(
            "ImpactWildcardProcessor",
            wildcard_text="__negatives__",
            populated_text=s.negative,
            mode="fixed",
            seed=s.seed,
        ),
    }
    graph["6"]["inputs"]["text"] = ["52", 0]
    graph["7"]["inputs"]["text"] = ["53", 0]
    return graph


def with_saver(graph: Graph, kind: str, **inputs: Any) -> Graph:
    return graph | {"9": _node(kind, images=["8", 0], **inputs)}


def comfy_truth(s: Setting) -> Truth:
    return Truth.of(s)


def saveimage_png(path: Path, s: Setting, graph: Graph | None = None) -> Truth:
    graph = with_saver(graph or core_graph(s), "SaveImage", filename_prefix="ComfyUI")
    png_texts(
        path, s.pixels, {"prompt": json.dumps(graph), "workflow": json.dumps(WORKFLOW)}, compress_level=4
    )
    return comfy_truth(s)


def primitives_png(path: Path, s: Setting) -> Truth:
    return saveimage_png(path, s, primitives_graph(s))


def custom_sampler_png(path: Path, s: Setting) -> Truth:
    return saveimage_png(path, s, custom_sampler_graph(s))


def sdxl_hires_png(path: Path, s: Setting) -> Truth:
    return saveimage_png(path, s, sdxl_hires_graph(s))


def text_nodes_png(path: Path, s: Setting) -> Truth:
    return saveimage_png(path, s, text_nodes_graph(s))


def flux_png(path: Path, s: Setting) -> Truth:
    saveimage_png(path, s, flux_graph(s))
    return Truth.of(s, negative=None)


def animated_webp(path: Path, s: Setting) -> Truth:
    graph = with_saver(core_graph(s), "SaveAnimatedWEBP", fps=6.0, lossless=False, quality=80)
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(graph)
    exif[0x010F] = "workflow:" + json.dumps(WORKFLOW)
    solid(s.pixels).save(path, "WEBP", exif=exif, quality=80, save_all=True)
    return comfy_truth(s)


def _image_saver_text(s: Setting, model: str, cfg_label: str, tail: str) -> str:
    _, _, sampler, scheduler = s.sampler
    sampler_text = sampler if scheduler == "normal" else f"{sampler}_{scheduler}"
    return (
        f"{s.prompt}\nNegative prompt: {s.negative}\n"
        f"Steps: {s.steps}, Sampler: {sampler_text}, {cfg_label}: {float(s.cfg)}, Seed: {s.seed}, "
        f"Size: {s.width}x{s.height}, {tail.format(model=model)}"
    )


def _text_saver(path: Path, s: Setting, kind: str, text: str, extension: str) -> Truth:
    graph = with_saver(core_graph(s), kind, extension=extension)
    if extension == "png":
        texts = {"parameters": text, "prompt": json.dumps(graph), "workflow": json.dumps(WORKFLOW)}
        png_texts(path, s.pixels, texts, compress_level=4)
    else:
        fmt = "JPEG" if extension in ("jpg", "jpeg") else "WEBP"
        exif_user_comment(path, s.pixels, fmt, unicode_comment(text), quality=90)
    return comfy_truth(s)


def comfy_image_saver(extension: str) -> Any:
    def write(path: Path, s: Setting) -> Truth:
        text = _image_saver_text(
            s, s.model, "CFG Scale", "Model hash: 1a2b3c4d5e, Model: {model}, Version: ComfyUI"
        )
        return _text_saver(path, s, "Save Image w/Metadata", text, extension)

    return write


def save_image_with_metadata(extension: str) -> Any:
    def write(path: Path, s: Setting) -> Truth:
        text = _image_saver_text(
            s,
            s.checkpoint,
            "CFG scale",
            'Clip skip: 1, Model: {model}, Model hash: 1a2b3c4d5e, Hashes: {{"model": "1a2b3c4d5e"}}',
        )
        return _text_saver(path, s, "SaveImageWithMetaData", text, extension)

    return write


def _json_user_comment(path: Path, s: Setting, kind: str, fmt: str, **save: Any) -> Truth:
    """IFD0 UserComment = json.dumps({"prompt": prompt, **extra_pnginfo}) (Save Image Extended / Plus)."""
    graph = with_saver(core_graph(s), kind)
    image = solid(s.pixels)
    exif = image.getexif()
    exif[0x9286] = json.dumps({"prompt": graph, "workflow": WORKFLOW})
    image.save(path, fmt, exif=exif.tobytes(), **save)
    return comfy_truth(s)


def json_exif_saver(kind: str, extension: str) -> Any:
    def write(path: Path, s: Setting) -> Truth:
        if extension == "png":
            graph = with_saver(core_graph(s), kind)
            texts = {"prompt": json.dumps(graph), "workflow": json.dumps(WORKFLOW)}
            png_texts(path, s.pixels, texts, compress_level=4)
            return comfy_truth(s)
        fmt = "JPEG" if extension == "jpg" else "WEBP"
        return _json_user_comment(path, s, kind, fmt, quality=90)

    return write


def graph_only_png(kind: str) -> Any:
    """Savers that write SaveImage's prompt + workflow tEXt (Comfyroll, LayerStyle's SaveImage Plus)."""

    def write(path: Path, s: Setting) -> Truth:
        graph = with_saver(core_graph(s), kind)
        png_texts(path, s.pixels, {"prompt": json.dumps(graph), "workflow": json.dumps(WORKFLOW)})
        return comfy_truth(s)

    return write


def tensorart_png(path: Path, s: Setting) -> Truth:
    """TensorArt: `generation_data` with "seed": "-1" (raw UTF-8 tEXt before IDAT) beside the graph
    that holds the seed used."""
    sampler, _, _, _ = s.sampler
    data = {
        "prompt": s.prompt,
        "negativePrompt": s.negative,
        "width": s.width,
        "height": s.height,
        "samplerName": sampler,
        "steps": s.steps,
        "cfgScale": s.cfg,
        "seed": "-1",
        "baseModel": {"modelFileName": s.checkpoint.rsplit("/", 1)[-1], "hash": "8421598E93"},
    }
    graph = with_saver(core_graph(s), "SaveImage")
    png_texts(path, s.pixels, {"prompt": json.dumps(graph)})
    body = json.dumps(data, ensure_ascii=False).encode() + b"\0"
    insert_png_chunk(path, b"tEXt", b"generation_data\0" + body)
    return Truth.of(s)
