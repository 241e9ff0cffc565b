"""`compress`: a WebP or JPEG copy of each landed image at `quality`, its generation metadata carried
(see `encode`), under `compress.dest` (default `<library>/.mediasyncd/compressed`) as
`<remote>/<path>.<ext>`. Skipped (done, without output) when the saving is under `min_saving`, and for
videos and anything else that is not an image. Only `keep_original = true` exists so far.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PIL import UnidentifiedImageError

from mediasyncd.config import Config
from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import INTERNAL_DIR, check_rel
from mediasyncd.state.workflow import StageLedger
from mediasyncd.workflow.base import Item, Outcome, register
from mediasyncd.workflow.encode import EXTENSIONS, IMAGE_SUFFIXES, encode, write_verified


def target_path(dest: Path, remote: str, rel: str, fmt: str) -> Path:
    check_rel(rel)
    return dest / remote / f"{rel}.{EXTENSIONS[fmt]}"


def worth_it(original: int, compressed: int, min_saving: float) -> bool:
    """Whether the copy saves at least `min_saving` of the original's size."""
    return original > 0 and compressed <= original * (1 - min_saving)


class CompressStage:
    name = "compress"
    derived = True

    def __init__(self, config: Config, ledger: StageLedger) -> None:
        c = config.workflow.compress
        self.format = c.format
        self.quality = c.quality
        self.min_saving = c.min_saving
        self.dest = c.dest or config.daemon.library / INTERNAL_DIR / "compressed"

    async def paused(self, *, dry_run: bool = False) -> str | None:
        return None

    async def run(self, item: Item, *, dry_run: bool = False) -> Outcome:
        if item.source.suffix.lower() not in IMAGE_SUFFIXES:
            return Outcome("done", note="skipped: not an image")
        try:
            target = target_path(self.dest, item.row.remote, item.row.rel, self.format)
        except UnsafePathError as exc:
            return Outcome.failed(str(exc))
        try:
            encoded = await asyncio.to_thread(encode, item.source, self.format, self.quality)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            return Outcome.failed(f"cannot re-encode: {exc}")
        size = item.row.size
        if not worth_it(size, len(encoded.data), self.min_saving):
            return Outcome(
                "done", note=f"skipped: saves under min_saving ({len(encoded.data)} of {size} bytes)"
            )
        if dry_run:
            return Outcome("done", str(target), None, note="dry run")
        try:
            digest = await asyncio.to_thread(write_verified, encoded.data, target)
        except OSError as exc:
            return Outcome.failed(f"cannot write {target}: {exc}")
        note = (
            f"metadata not carried (too large for the format): {', '.join(encoded.dropped)}"
            if encoded.dropped
            else None
        )
        return Outcome("done", str(target), digest, note=note)


register("compress")(CompressStage)
