"""The metadata stage: one file in, one normalized record out, never an exception for a bad file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mediasyncd.pipeline.c2pa import summarize
from mediasyncd.pipeline.containers import read_embedded
from mediasyncd.pipeline.formats import parse_texts
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.pipeline.video_tags import read_video_tags
from mediasyncd.pipeline.xmp import read_spilled


@dataclass(frozen=True)
class Extraction:
    """The record, and `error` when the file could not be read completely (damaged, empty, unknown)."""

    record: GenerationRecord
    error: str | None = None
    format: str | None = None
    notes: tuple[str, ...] = ()
    file_stat: tuple[int, int] | None = None  # size and mtime (ns) of the file when it was read

    @property
    def summary(self) -> str:
        if self.error:
            return self.error
        return f"{self.record.generator} metadata" if self.record.has_metadata else "no metadata"


def read_texts(texts: dict[str, str]) -> tuple[GenerationRecord, str | None]:
    """The record of a file's texts, and why they could not be read (the record then holds `raw` only)."""
    try:
        return parse_texts(texts), None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as failure:
        # Hostile metadata must not stop the pipeline: keep the sources, name the failure.
        return GenerationRecord(raw=dict(texts)), f"unreadable metadata: {type(failure).__name__}: {failure}"


def extract(path: Path, ffprobe: str | None = None, timeout: float = 30.0) -> Extraction:
    """The record of one file; videos' container tags are read with `ffprobe` (None: not read)."""
    embedded = read_embedded(path)
    if embedded.format not in (None, "VIDEO"):
        spilled = read_spilled(path)  # the original's texts, which this re-encode could not hold all of
        if spilled:
            embedded.texts = spilled
    if embedded.format == "VIDEO" and embedded.error is None and ffprobe:
        tags = read_video_tags(path, ffprobe, timeout)
        embedded.texts.update(tags.texts)
        embedded.width, embedded.height = tags.width, tags.height
        embedded.error = tags.error
        if tags.note:
            embedded.dropped.append(tags.note)
    record, failure = read_texts(embedded.texts)
    error = failure or embedded.error
    record = record.with_pixel_size(embedded.width, embedded.height)
    if embedded.c2pa:
        record = replace(record, c2pa=summarize(embedded.c2pa))
    return Extraction(record, error, embedded.format, tuple(embedded.dropped), embedded.file_stat)
