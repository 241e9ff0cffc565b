"""`mediasyncd inspect|search|reprocess`: functions the CLI calls; they print and return the exit code.

Exit codes: 0 success; 1 some file could not be read or processed (inspect, reprocess) or nothing matched
(search, like grep); 2 bad usage (unknown stage, missing state DB).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mediasyncd.errors import MediasyncError
from mediasyncd.pipeline.metadata import extract
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.outcome import PipelineResult
from mediasyncd.pipeline.runner import Pipeline
from mediasyncd.pipeline.stages import names
from mediasyncd.pipeline.video_tags import ffprobe_for
from mediasyncd.state.catalog import Catalog
from mediasyncd.state.query import parse_query

_LABELS = (
    ("generator", "Generator"),
    ("generator_version", "Version"),
    ("model", "Model"),
    ("model_hash", "Model hash"),
    ("sampler", "Sampler"),
    ("scheduler", "Scheduler"),
    ("steps", "Steps"),
    ("cfg", "CFG"),
    ("seed", "Seed"),
    ("denoise", "Denoise"),
)


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def inspect_main(paths: Sequence[str], as_json: bool) -> int:
    """Print the normalized generation record of each file, in argument order."""
    failed = False
    for index, given in enumerate(paths):
        extraction = extract(Path(given), ffprobe_for(PipelineOptions().ffmpeg))
        document = extraction.record.as_json(given, extraction.error)
        failed |= extraction.error is not None
        if as_json:
            print(_compact(document), flush=True)
            continue
        if index:
            print()
        print(_describe(document, extraction.summary))
    return 1 if failed else 0


def _describe(doc: dict[str, Any], summary: str) -> str:
    lines = [f"{doc['path']}: {summary}"]
    if doc["generator"] is None and doc["prompt"] is None:
        if doc["width"]:
            lines.append(f"  Size: {doc['width']}x{doc['height']}")
        lines += _c2pa_lines(doc["c2pa"])
        return "\n".join(lines)
    if doc["prompt"] is not None:
        lines.append("  Prompt: " + _indent(doc["prompt"]))
    if doc["negative_prompt"] is not None:
        lines.append("  Negative prompt: " + _indent(doc["negative_prompt"]))
    lines += [f"  {label}: {doc[key]}" for key, label in _LABELS if doc[key] is not None]
    if doc["width"]:
        lines.append(f"  Size: {doc['width']}x{doc['height']}")
    if doc["pixel_width"] and (doc["pixel_width"], doc["pixel_height"]) != (doc["width"], doc["height"]):
        lines.append(f"  Pixel size: {doc['pixel_width']}x{doc['pixel_height']}")
    if doc["hires"]:
        shown = {k: v for k, v in doc["hires"].items() if k not in ("scale", "denoise")}  # aliases
        lines.append("  Hires: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for lora in doc["loras"]:
        weight = "" if lora["weight"] is None else f" ({lora['weight']:g})"
        lines.append(f"  LoRA: {lora['name']}{weight}")
    for character in doc["characters"]:
        lines.append("  Character: " + _indent(character["prompt"] or ""))
        if character["negative_prompt"]:
            lines.append("    Negative: " + _indent(character["negative_prompt"]))
    for resource in doc["resources"]:
        lines.append(
            f"  Resource: {resource['type']} {resource['name'] or ''} {resource['air'] or ''}".rstrip()
        )
    lines += _c2pa_lines(doc["c2pa"])
    lines.append("  Sources: " + ", ".join(doc["raw"]))
    return "\n".join(lines)


def _c2pa_lines(c2pa: dict[str, Any] | None) -> list[str]:
    if not c2pa:
        return []
    parts = [
        c2pa.get("claim_generator") or "unknown generator",
        c2pa.get("digital_source_type"),
        c2pa.get("error"),
    ]
    return ["  C2PA: " + ", ".join(str(part) for part in parts if part)]


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def search_main(db_path: Path, query: str, as_json: bool, limit: int) -> int:
    """Print the files whose prompt, negative prompt, model, generator or path match `query`."""
    if not db_path.exists():
        print(f"mediasyncd search: no state database at {db_path}", file=sys.stderr)
        return 2
    if not query.strip():
        print("mediasyncd search: the query is empty", file=sys.stderr)
        return 2
    try:
        catalog = Catalog.read_only(db_path)
    except MediasyncError as error:
        print(f"mediasyncd search: {error}", file=sys.stderr)
        return 2
    for note in parse_query(query).notes:
        print(f"mediasyncd search: {note}; searched as a word", file=sys.stderr)
    try:
        hits = catalog.search(query, max(1, limit))
    except MediasyncError as error:
        print(f"mediasyncd search: {error} (has the pipeline indexed anything yet?)", file=sys.stderr)
        return 2
    finally:
        catalog.close()
    if as_json:  # one JSON array, `[]` when nothing matched
        found = [
            {
                "path": h.path,
                "generator": h.generator,
                "model": h.model,
                "snippet": h.snippet,
                "thumbnail": h.thumbnail,
            }
            for h in hits
        ]
        print(json.dumps(found, ensure_ascii=False))
    elif not hits:
        print(f"mediasyncd search: nothing matches {query!r}", file=sys.stderr)
    for hit in [] if as_json else hits:
        print(hit.path)
        print(f"    {hit.snippet}".replace("\n", " "))
    return 0 if hits else 1


def reprocess_main(
    db_path: Path, library: Path, options: PipelineOptions, stage: str | None, paths: Sequence[str]
) -> int:
    """Re-run `stage` (plus what depends on it) or every stage, for `paths` or every file known."""
    if stage is not None and stage not in names():
        print(
            f"mediasyncd reprocess: unknown stage {stage!r}; stages are: {', '.join(names())}",
            file=sys.stderr,
        )
        return 2
    results = asyncio.run(_reprocess(db_path, library, options, stage, [Path(p) for p in paths]))
    for result in results:
        print(_result_line(result))
    failed = sum(1 for result in results if not result.ok)
    print(f"{len(results)} file(s) reprocessed, {failed} with errors")
    return 1 if failed else 0


async def _reprocess(
    db_path: Path, library: Path, options: PipelineOptions, stage: str | None, paths: list[Path]
) -> list[PipelineResult]:
    pipeline = Pipeline(db_path, library, options)
    try:
        return await pipeline.reprocess(paths, stage)
    finally:
        await pipeline.aclose()


def _result_line(result: PipelineResult) -> str:
    parts = []
    for name, outcome in result.stages.items():
        state = outcome.status if name not in result.resumed else f"{outcome.status} earlier"
        parts.append(f"{name} {state}" + (f" ({outcome.detail})" if outcome.status != "done" else ""))
    return f"{result.path}: " + ", ".join(parts)
