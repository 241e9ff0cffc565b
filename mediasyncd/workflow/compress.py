"""`compress`: a WebP, AVIF or JPEG re-encode of each landed image at `quality`, its generation metadata
carried (see `encode`; what the format cannot hold goes into the copy's XMP sidecar), and with a
`video_profile` an ffmpeg re-encode of each video (see `video`). Skipped (done, without output) when the
saving is under `min_saving`, for videos without a profile and for anything else.

- `keep_original = true`: the copy goes under `compress.dest` (default `<library>/.mediasyncd/compressed`)
  as `<remote>/<path>.<ext>`; the library file is untouched. Either way the new file is first a verified
  partial beside its target (fsync'd, read back: an image decodes, a video has a stream for ffprobe).
- `keep_original = false`: the copy replaces the library file (`<path>` with the format's suffix), only
  after the archived original is verified and the copy is written and verified; the state DB's file row,
  the catalog record, the search index and the sidecar follow it (see `replace` for the crash-safety).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from dataclasses import replace as with_
from pathlib import Path

from PIL import UnidentifiedImageError

from mediasyncd.config import Config
from mediasyncd.digest import sha256_file
from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import INTERNAL_DIR, check_rel
from mediasyncd.pipeline.xmp import ForeignSidecar, sidecar_path
from mediasyncd.state.workflow import Intent, StageLedger, Switch
from mediasyncd.workflow.base import Item, Outcome, register
from mediasyncd.workflow.encode import EXTENSIONS, IMAGE_SUFFIXES, encode, partial_of, write_partial
from mediasyncd.workflow.replace import (
    digest_or_none,
    remove_old_sidecar,
    remove_original,
    rename_into_place,
    replacement_path,
    sidecar_for_copy,
)
from mediasyncd.workflow.video import PROFILES, VIDEO_SUFFIXES, transcode

RESUMED = "finished after an interruption"


def target_path(dest: Path, remote: str, rel: str, extension: str) -> Path:
    check_rel(rel)
    return dest / remote / f"{rel}.{extension}"


@dataclass(frozen=True)
class Made:
    """A verified partial: its SHA-256, and the metadata it could not hold."""

    sha256: str
    spilled: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def worth_it(original: int, compressed: int, min_saving: float) -> bool:
    """Whether the copy saves at least `min_saving` of the original's size."""
    return original > 0 and compressed <= original * (1 - min_saving)


def spilled_note(made: Made, sidecar: Path | None) -> str | None:
    if not made.spilled:
        return None
    where = f"in its XMP sidecar {sidecar}" if sidecar else "NOT kept: no sidecar could be written"
    what = (
        f"too large for the format: {', '.join(made.dropped)}" if made.dropped else "no place in the format"
    )
    return f"generation metadata ({what}) {where}"


class CompressStage:
    name = "compress"
    derived = True

    def __init__(self, config: Config, ledger: StageLedger) -> None:
        c = config.workflow.compress
        self.format = c.format
        self.quality = c.quality
        self.min_saving = c.min_saving
        self.replace = not c.keep_original
        self.library = config.daemon.library
        self.dest = c.dest or self.library / INTERNAL_DIR / "compressed"
        self.naming = config.pipeline.xmp_naming
        self.ffmpeg = config.pipeline.ffmpeg
        self.profile = PROFILES[c.video_profile] if c.video_profile else None
        self.crf = c.video_crf
        self.ledger = ledger

    async def paused(self, *, dry_run: bool = False) -> str | None:
        return None

    def extension(self, source: Path) -> str | None:
        """The new file's extension, or None when the file is left alone."""
        suffix = source.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return EXTENSIONS[self.format]
        if suffix in VIDEO_SUFFIXES and self.profile is not None:
            return self.profile.extension
        return None

    @staticmethod
    def left_alone(source: Path) -> Outcome:
        kind = (
            "a video and no video_profile is set"
            if source.suffix.lower() in VIDEO_SUFFIXES
            else "not an image"
        )
        return Outcome("done", note=f"skipped: {kind}")

    async def run(self, item: Item, *, dry_run: bool = False) -> Outcome:
        if self.replace:
            return await self._replace(item, dry_run)
        extension = self.extension(item.source)
        if extension is None:
            return self.left_alone(item.source)
        try:
            target = target_path(self.dest, item.row.remote, item.row.rel, extension)
        except UnsafePathError as exc:
            return Outcome.failed(str(exc))
        if dry_run:
            return Outcome("done", str(target), None, note="dry run")
        made = await self._make(item, partial_of(target))
        if isinstance(made, Outcome):
            return made
        try:
            await asyncio.to_thread(rename_into_place, partial_of(target), target)
        except OSError as exc:
            await asyncio.to_thread(partial_of(target).unlink, missing_ok=True)
            return Outcome.failed(f"cannot move the copy into place at {target}: {exc.strerror or exc}")
        sidecar = await self._sidecar(item.source, target, made, follow=False)
        return Outcome("done", str(target), made.sha256, note=spilled_note(made, sidecar))

    async def _make(self, item: Item, partial: Path) -> Made | Outcome:
        """The re-encode of `item` as a verified `partial` (Outcome: skipped or failed; no partial left)."""
        size = item.row.size
        if self.profile is not None and item.source.suffix.lower() in VIDEO_SUFFIXES:
            why = await transcode(self.ffmpeg, item.source, partial, self.profile, self.crf)
            if why is not None:
                return Outcome.failed(why)
            made = (await asyncio.to_thread(partial.stat)).st_size
            if not worth_it(size, made, self.min_saving):
                await asyncio.to_thread(partial.unlink, missing_ok=True)
                return Outcome("done", note=f"skipped: saves under min_saving ({made} of {size} bytes)")
            return Made(await asyncio.to_thread(sha256_file, partial))
        try:
            encoded = await asyncio.to_thread(encode, item.source, self.format, self.quality)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            return Outcome.failed(f"cannot re-encode: {exc}")
        if not worth_it(size, len(encoded.data), self.min_saving):
            return Outcome(
                "done", note=f"skipped: saves under min_saving ({len(encoded.data)} of {size} bytes)"
            )
        try:
            digest = await asyncio.to_thread(write_partial, encoded.data, partial)
        except OSError as exc:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            return Outcome.failed(f"cannot write {partial}: {exc}")
        return Made(digest, encoded.spilled, encoded.dropped)

    async def _sidecar(self, original: Path, copy: Path, made: Made, *, follow: bool) -> Path | None:
        try:
            return await asyncio.to_thread(
                sidecar_for_copy, original, copy, self.naming, made.spilled, follow=follow
            )
        except (ForeignSidecar, OSError):
            return None

    # ------------------------------------------------------------------------- keep_original = false

    async def _replace(self, item: Item, dry_run: bool) -> Outcome:
        row = item.row
        old = row.local_path or ""
        if not dry_run and (intent := await self.ledger.intent(row.id, self.name)) is not None:
            resumed = await self._resume(item, intent)
            if resumed is not None:
                return resumed
        extension = self.extension(item.source)
        if extension is None:
            return self.left_alone(item.source)
        try:
            new = replacement_path(old, extension)
            check_rel(new)
        except UnsafePathError as exc:
            return Outcome.failed(str(exc))
        target = self.library / new
        unverified = await self._archive_unverified(item)
        if unverified is not None:
            return Outcome.waiting(unverified)
        if target != item.source and await asyncio.to_thread(os.path.lexists, target):
            return Outcome.failed(f"a different file is already at {target}; the original is kept")
        if dry_run:
            return Outcome("done", str(target), None, note="dry run: would replace the library file")
        partial = partial_of(target)
        made = await self._make(item, partial)
        if isinstance(made, Outcome):
            return made
        await self.ledger.intend(row.id, self.name, str(target), made.sha256, old)
        sidecar = await self._sidecar(item.source, target, made, follow=True)
        try:
            await asyncio.to_thread(rename_into_place, partial, target)
        except OSError as exc:  # nothing was replaced: the original stays, the intent is retried
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            return Outcome.failed(f"cannot move the new file into place at {target}: {exc.strerror or exc}")
        return await self._switch(item, target, made.sha256, old, new, spilled_note(made, sidecar))

    async def _archive_unverified(self, item: Item) -> str | None:
        """Why the library file may not be replaced now: its archived original is not there and verified."""
        archived = await self.ledger.output(item.row.id, "archive")
        if archived is None or archived[1] != item.sha256:
            return "the archived original is not verified yet"
        found = await asyncio.to_thread(digest_or_none, Path(archived[0]))
        if found != item.sha256:
            return f"the archived original {archived[0]} cannot be verified now (not mounted?)"
        return None

    async def _switch(
        self, item: Item, target: Path, digest: str, old: str, new: str, note: str | None
    ) -> Outcome:
        """The state DB moves to the replacement (one transaction), then the original goes."""
        sidecar = sidecar_path(target, self.naming)
        stat = await asyncio.to_thread(target.stat)
        has_sidecar = await asyncio.to_thread(sidecar.is_file)
        sidecar_rel = str(sidecar.relative_to(self.library)) if has_sidecar else None
        change = Switch(item.row.id, old, new, digest, stat.st_size, stat.st_mtime_ns, sidecar_rel)
        await self.ledger.switch(change)
        if old != new:
            await asyncio.to_thread(self._cleanup, self.library / old, target, item.sha256)
        return Outcome("done", str(target), digest, note=note)

    def _cleanup(self, original: Path, copy: Path, landed_sha256: str) -> None:
        remove_original(original, landed_sha256)
        remove_old_sidecar(original, copy, self.naming)

    async def _resume(self, item: Item, intent: Intent) -> Outcome | None:
        """Finish what a killed run left (None: nothing usable, start again)."""
        target = Path(intent.output)
        try:
            new = str(target.relative_to(self.library))
        except ValueError:
            return None
        if intent.library_sha256 == intent.sha256:  # switched: only the original may be left
            if intent.replaced != new:
                await asyncio.to_thread(self._cleanup, self.library / intent.replaced, target, item.sha256)
            return Outcome("done", str(target), intent.sha256, note=RESUMED)
        await asyncio.to_thread(partial_of(target).unlink, missing_ok=True)
        if await asyncio.to_thread(digest_or_none, target) == intent.sha256:
            moved = with_(item, source=self.library / intent.replaced)
            return await self._switch(moved, target, intent.sha256, intent.replaced, new, RESUMED)
        return None


register("compress")(CompressStage)
