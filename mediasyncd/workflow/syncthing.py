"""`syncthing`: hand a file to the devices of a Syncthing folder (e.g. the one a phone syncs).

The file (the compressed copy when `compress` ran before, else the original) is copied verified into the
folder's path at `<remote>/<path>`, through a partial Syncthing itself ignores (`.syncthing.*.tmp`), at
most `batch` files being there at once; Syncthing is asked to scan it (`POST /rest/db/scan`), and the
stage is done only when every device in `devices` has its current version (`GET /rest/db/file`: the
local version is the global one and every device is in its availability). Then, with `remove_after`,
it is removed from the folder, which frees a place for the next file. A device that is offline leaves
the file waiting (never failed); so does a Syncthing that does not answer (the stage pauses).

Removing a file from a shared folder removes it on the devices too, unless their side of the folder
ignores deletes (Syncthing's `ignoreDelete` folder option), as a phone that keeps the hand-off should.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp

from mediasyncd.config import Config
from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import check_rel
from mediasyncd.state.workflow import StageLedger
from mediasyncd.workflow.archive import Conflict, Corrupt, copy_verified
from mediasyncd.workflow.base import Item, Outcome, register

TIMEOUT = aiohttp.ClientTimeout(total=15)


def handoff_rel(remote: str, rel: str, previous: Path | None) -> str:
    """`<remote>/<rel>`, or the previous stage's file name in its folder (`a.png` -> `a.png.webp`)."""
    check_rel(rel)
    if previous is None:
        return f"{remote}/{rel}"
    return str(PurePosixPath(remote) / PurePosixPath(rel).parent / previous.name)


def in_handoff(folder: Path) -> int:
    """Files in the hand-off folder (Syncthing's own and hidden files aside)."""
    count = 0
    for _dir, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(1 for f in files if not f.startswith((".", "~syncthing~")))
    return count


def missing_devices(doc: dict[str, Any], devices: tuple[str, ...]) -> list[str] | None:
    """The devices that do not have the local version yet, from `GET /rest/db/file`; None when
    Syncthing has not scanned the local file (or another version is the global one)."""
    local, glob = doc.get("local") or {}, doc.get("global") or {}
    if not local or local.get("deleted") or local.get("version") != glob.get("version"):
        return None
    have = {a.get("id") for a in doc.get("availability") or []}
    return [d for d in devices if d not in have]


class SyncthingStage:
    name = "syncthing"
    derived = False

    def __init__(self, config: Config, ledger: StageLedger) -> None:
        c = config.workflow.syncthing
        if c.path is None or c.api_key_file is None:
            raise ValueError("workflow.syncthing.path and api_key_file are required")
        self.url = c.url
        self.key_file = c.api_key_file
        self.folder = c.folder
        self.path = c.path
        self.devices = c.devices
        self.batch = c.batch
        self.remove_after = c.remove_after
        self._placing = asyncio.Lock()  # counting the folder and filling it are one step

    async def _key(self) -> str:
        return (await asyncio.to_thread(self.key_file.read_text, encoding="utf-8")).strip()

    async def _call(self, method: str, path: str, params: dict[str, str]) -> Any:
        headers = {"X-API-Key": await self._key()}
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.request(method, self.url + path, params=params, headers=headers) as resp,
        ):
            if resp.status == 404:
                return None
            resp.raise_for_status()
            text = await resp.text()
            return await resp.json(content_type=None) if text.strip() else None

    async def paused(self, *, dry_run: bool = False) -> str | None:
        if not await asyncio.to_thread(self.path.is_dir):
            return f"the Syncthing folder's path {self.path} does not exist"
        try:
            await self._key()
        except OSError as exc:
            return f"cannot read workflow.syncthing.api_key_file {self.key_file}: {exc.strerror}"
        try:
            folder = await self._call("GET", f"/rest/config/folders/{self.folder}", {})
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"Syncthing at {self.url} does not answer: {exc or type(exc).__name__}"
        if folder is None:
            return f"Syncthing at {self.url} has no folder {self.folder!r}"
        return None

    async def run(self, item: Item, *, dry_run: bool = False) -> Outcome:
        source, sha256 = item.previous if item.previous else (item.source, item.sha256)
        try:
            rel = handoff_rel(item.row.remote, item.row.rel, item.previous[0] if item.previous else None)
        except UnsafePathError as exc:
            return Outcome.failed(str(exc))
        target = self.path / rel
        if dry_run:
            return Outcome("done", str(target), sha256, note="dry run")
        async with self._placing:
            if not await asyncio.to_thread(target.exists):
                if await asyncio.to_thread(in_handoff, self.path) >= self.batch:
                    return Outcome.waiting(f"the hand-off folder holds {self.batch} file(s) (batch)")
                partial = target.with_name(f".syncthing.{target.name}.tmp")
                try:
                    await asyncio.to_thread(copy_verified, source, target, sha256, partial)
                except (Conflict, Corrupt) as exc:
                    return Outcome.failed(str(exc))
                except OSError as exc:
                    return Outcome.failed(f"cannot copy into the hand-off folder: {exc.strerror or exc}")
        try:
            await self._call("POST", "/rest/db/scan", {"folder": self.folder, "sub": rel})
            doc = await self._call("GET", "/rest/db/file", {"folder": self.folder, "file": rel})
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome.waiting(f"Syncthing at {self.url} does not answer: {exc or type(exc).__name__}")
        missing = missing_devices(doc or {}, self.devices)
        if missing is None:
            return Outcome.waiting("Syncthing has not scanned it yet")
        if missing:
            return Outcome.waiting(f"waiting for device(s) {', '.join(d[:7] for d in missing)} to have it")
        note = None
        if self.remove_after:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            note = "on every device; removed from the hand-off folder"
        return Outcome("done", str(target), sha256, note=note)


register("syncthing")(SyncthingStage)
