"""Metadata accuracy: a corpus written the way 20+ tools and savers write their files, read back by the real
`mediasyncd inspect --json`, scored field by field against what each writer put in.

    .venv/bin/python -m bench.metadata_corpus [--per-writer 12] [--seed 19] [--keep DIR] [--doc FILE]

The corpus is synthesized: every file is made here by a writer in `bench.corpus_writers` /
`bench.corpus_comfy` that follows that tool's saver code (cited there), from a random but plausible
generation (prompts with weights, CJK, emoji, quotes, a second line, LoRA tags, sometimes no negative).
The ground truth is what the writer put in, never what our parser reads. The files are not from users.

Scored fields: prompt, negative, seed, steps, CFG, width, height, model. A field counts when the writer
wrote it or the reader reported it (so an invented value is wrong, and two Nones are not a free point).
Width/height are the generation size where the tool writes one, else the pixel size. Also reported:
crashes (a missing or unparsable line from `inspect`, or a traceback), and the XMP sidecars built from
the records and read back by exiftool 13 (every field equal, no warning).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.corpus_common import FIELDS, Truth, setting
from bench.corpus_writers import WRITERS
from bench.report import write_section
from bench.tools import REPO
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.pipeline.xmp import build_xmp, write_sidecar

EXIFTOOL = REPO / ".venv/exiftool/node_modules/exiftool-vendored.pl/bin/exiftool"
_DOC_KEYS = {"negative": "negative_prompt"}
# XMP tag (exiftool -G1 name) for each scored field, as `mediasyncd.pipeline.xmp` writes it.
_XMP_TAGS = {
    "prompt": "XMP-dc:Description",
    "negative": "XMP-mediasyncd:NegativePrompt",
    "seed": "XMP-mediasyncd:Seed",
    "steps": "XMP-mediasyncd:Steps",
    "cfg": "XMP-mediasyncd:CFGScale",
    "width": "XMP-mediasyncd:Width",
    "height": "XMP-mediasyncd:Height",
    "model": "XMP-mediasyncd:Model",
}


@dataclass(frozen=True)
class Sample:
    tool: str
    fmt: str
    path: Path
    truth: Truth


@dataclass
class Tally:
    files: int = 0
    scored: int = 0
    right: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.right / self.scored if self.scored else 100.0


@dataclass
class Result:
    tools: dict[str, Tally]
    total: Tally
    crashes: list[str]
    sidecars: int
    sidecars_read: int
    sidecar_failures: list[str]


def build(folder: Path, per_writer: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    samples = []
    for index, (tool, fmt, suffix, writer) in enumerate(WRITERS):
        for n in range(per_writer):
            path = folder / f"{index:02d}-{n:03d}{suffix}"
            truth = writer(path, setting(rng, seed_bits=50 if "Comfy" in tool else 32))
            samples.append(Sample(tool, fmt, path, truth))
    return samples


def inspect(paths: list[Path]) -> tuple[list[dict[str, Any] | None], list[str]]:
    """`mediasyncd inspect --json` over every path (one process, in batches); a document per path, or
    None and a crash note when its line is missing or not JSON."""
    documents: list[dict[str, Any] | None] = []
    crashes: list[str] = []
    for start in range(0, len(paths), 400):
        batch = paths[start : start + 400]
        done = subprocess.run(
            [sys.executable, "-m", "mediasyncd", "inspect", "--json", *map(str, batch)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 1) or "Traceback" in done.stderr:
            crashes.append(f"inspect exited {done.returncode}: {done.stderr.strip()[-300:]}")
        lines = done.stdout.splitlines()
        for offset, path in enumerate(batch):
            try:
                document = json.loads(lines[offset])
                assert document["path"] == str(path)
            except (IndexError, ValueError, AssertionError, KeyError, TypeError):
                crashes.append(f"{path.name}: no record")
                document = None
            documents.append(document)
    return documents, crashes


def _same(name: str, truth: object, got: object) -> bool:
    if isinstance(truth, str) or isinstance(got, str):
        return (str(truth).strip() if truth else None) == (str(got).strip() if got else None)
    if name == "cfg" and truth is not None and got is not None:
        return abs(float(truth) - float(got)) < 1e-6  # type: ignore[arg-type]
    return truth == got


def score(samples: list[Sample], documents: list[dict[str, Any] | None]) -> tuple[dict[str, Tally], Tally]:
    tools: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    for sample, document in zip(samples, documents, strict=True):
        tally = tools[f"{sample.tool} ({sample.fmt})"]
        tally.files += 1
        total.files += 1
        for name in FIELDS:
            want = getattr(sample.truth, name)
            got = None if document is None else document.get(_DOC_KEYS.get(name, name))
            if (want is None or want == "") and (got is None or got == ""):
                continue
            right = _same(name, want, got)
            for counter in (tally, total):
                counter.scored += 1
                counter.right += right
            if not right:
                tally.misses.append(f"{sample.path.name} {name}: want {want!r}, got {got!r}")
    return dict(tools), total


def sidecars(folder: Path, documents: list[dict[str, Any] | None]) -> tuple[int, int, list[str]]:
    """Sidecars for every record with metadata (as the pipeline's xmp stage), read back by exiftool."""
    assert EXIFTOOL.is_file(), f"{EXIFTOOL} is missing: run scripts/setup --dev"
    written: dict[Path, GenerationRecord] = {}
    for document in documents:
        if document is None:
            continue
        record = GenerationRecord.from_json(document)
        if record.has_metadata:
            target = folder / (Path(document["path"]).name + ".xmp")
            write_sidecar(target, build_xmp(record))
            written[target] = record
    if not written:
        return 0, 0, []
    done = subprocess.run(
        ["perl", str(EXIFTOOL), "-j", "-struct", "-G1", "-n", *map(str, written)],
        capture_output=True,
        text=True,
        check=False,
    )
    read = {Path(tags["SourceFile"]): tags for tags in json.loads(done.stdout or "[]")}
    failures = []
    for target, record in written.items():
        tags = read.get(target)
        problem = _sidecar_problem(record, tags)
        if problem:
            failures.append(f"{target.name}: {problem}")
    return len(written), len(written) - len(failures), failures


def _sidecar_problem(record: GenerationRecord, tags: dict[str, Any] | None) -> str | None:
    if tags is None:
        return "not read"
    if "ExifTool:Warning" in tags or "ExifTool:Error" in tags:
        return str(tags.get("ExifTool:Warning") or tags.get("ExifTool:Error"))
    values = {
        "prompt": record.prompt,
        "negative": record.negative_prompt,
        "seed": record.seed,
        "steps": record.steps,
        "cfg": record.cfg,
        "width": record.width,
        "height": record.height,
        "model": record.model,
    }
    for name, want in values.items():
        got = tags.get(_XMP_TAGS[name])
        if not _same(name, want, got):
            return f"{_XMP_TAGS[name]}: want {want!r}, got {got!r}"
    return None


def run(folder: Path, per_writer: int, seed: int) -> Result:
    samples = build(folder, per_writer, seed)
    documents, crashes = inspect([sample.path for sample in samples])
    tools, total = score(samples, documents)
    sidecar_dir = folder / "sidecars"
    sidecar_dir.mkdir(exist_ok=True)
    count, read, failures = sidecars(sidecar_dir, documents)
    return Result(tools, total, crashes, count, read, failures)


def report(result: Result, per_writer: int, seed: int) -> list[str]:
    width = max(len(name) for name in result.tools)
    lines = [f"{'tool (format)':<{width}}  files  fields  right      %"]
    for name, tally in result.tools.items():
        lines.append(
            f"{name:<{width}}  {tally.files:>5}  {tally.scored:>6}  {tally.right:>5}  {tally.percent:5.1f}"
        )
    total = result.total
    lines += [
        "",
        f"writers:  {len(result.tools)} (tool x format), {per_writer} files each, seed {seed}",
        f"overall:  {total.right}/{total.scored} fields right = {total.percent:.2f} % over {total.files} files",
        f"crashes:  {len(result.crashes)}",
        f"sidecars: {result.sidecars_read}/{result.sidecars} read back by exiftool with every field equal"
        + (f" = {100.0 * result.sidecars_read / result.sidecars:.1f} %" if result.sidecars else ""),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-writer", type=int, default=12, help="files per tool and format")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--keep", type=Path, help="build the corpus in this directory and keep it")
    parser.add_argument("--doc", type=Path, help="also write the result into this Markdown file's section")
    parser.add_argument("--misses", action="store_true", help="list every wrong field")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="metadata-corpus-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = run(folder, args.per_writer, args.seed)
    finally:
        if args.keep is None:
            shutil.rmtree(folder)
    lines = report(result, args.per_writer, args.seed)
    print("\n".join(lines))
    for problem in result.crashes + result.sidecar_failures:
        print("!", problem)
    if args.misses:
        for tally in result.tools.values():
            for miss in tally.misses:
                print("-", miss)
    if args.doc:
        command = (
            f".venv/bin/python -m bench.metadata_corpus --per-writer {args.per_writer} --seed {args.seed}"
        )
        day = datetime.now(UTC).date().isoformat()
        section = "\n".join(
            [
                "### Metadata accuracy over a synthesized corpus (issue 19: at least 97 %)",
                "",
                f"Command: `{command}` ({day}, load average {os.getloadavg()[0]:.2f})",
                "",
                "```",
                *lines,
                "```",
            ]
        )
        write_section(args.doc, section, writer="bench/metadata_corpus.py")


if __name__ == "__main__":
    main()
