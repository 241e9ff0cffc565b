"""The exec source: a POSIX shell behind a command (`docker exec -i <container> sh`, `kubectl exec -i …
-- sh`, …). What the shell has decides how it lists (GNU `find -printf`, else `find … -exec stat`), hashes
(`openssl`, `sha256sum`) and streams many small files (GNU or busybox `tar`).

Everything that comes back is checked on this side as from any remote: listed names are decoded and
rejected when unsafe, tar members are taken only under a requested name, as regular files of the listed
size, and bytes only ever go to partials inside the library.
"""

from __future__ import annotations

import asyncio
import dataclasses
import posixpath
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

from mediasyncd.errors import RemoteError, RemoteFileChanged, TransferError
from mediasyncd.sources.base import Capabilities, Deletion, Expected, Progress
from mediasyncd.sources.commands import (
    DELETE_BATCH_BYTES,
    PROBE,
    batches,
    delete_command,
    emptied_dirs,
    free_space_command,
    hash_command,
    parse_deletion,
    parse_df,
    parse_hashes,
    quarantine_token,
    rmdir_command,
)
from mediasyncd.sources.exec.process import STDERR_KEPT, ByteProcess, PipeShell, ShellProcess, finish
from mediasyncd.sources.exec.spawn import ExecSpawned
from mediasyncd.sources.listing import Listing, find_command, parse_find, same_version
from mediasyncd.sources.portable import (
    TAR_PROBE,
    parse_stat,
    parse_stat_listing,
    read_script,
    stat_command,
    stat_listing_command,
    tar_script,
)
from mediasyncd.sources.receive import WRITE_CHUNK, PartialWriter, RateLimiter
from mediasyncd.sources.survey import Survey, parse_survey, survey_command
from mediasyncd.sources.tar import Member, unpack_stream
from mediasyncd.sources.tar_shells import TarShells, answer_bound

STREAM_BELOW = 16 << 20  # a process per file costs more than resuming a file this small could save


class ExecSource:
    def __init__(
        self, argv: Sequence[str], shell: ShellProcess, caps: Capabilities, *, gnu_tar: bool
    ) -> None:
        self.argv = tuple(argv)
        self._shell = shell
        self._caps = caps
        self.gnu_tar = gnu_tar
        self.roots: set[str] = set()  # the roots hashes pin directories below (config, listings)
        self._streams: set[PipeShell] = set()  # shells started for tar streams, until they are reaped
        self.tar_shells = TarShells(self._stream_shell)  # GNU tar: streams reuse their shells
        self._closed = False

    async def _stream_shell(self) -> PipeShell:
        """A new shell for tar streams; RemoteError when the command no longer gives one (a container
        that stopped: the session's error, with the command's own words)."""
        if self.closed():
            raise RemoteError("the source was closed")
        ended = {s for s in self._streams if s.exit_status is not None}
        self._streams -= ended
        for stream in ended:  # ended: nothing to signal, a pipe paused mid-archive to close
            await finish(stream.process)
        shell = await PipeShell.start(self.argv)
        if self.closed():  # closed while this one started: nobody would reap it
            await finish(shell.process)
            raise RemoteError("the source was closed")
        self._streams.add(shell)
        return shell

    def closed(self) -> bool:
        return self._closed

    @classmethod
    async def open(cls, argv: Sequence[str], transport: str = "exec") -> ExecSource:
        """Start the shell and probe what it has; RemoteError ("unreachable: …") if none answers."""
        shell, probe = await ShellProcess.start(argv, PROBE + "; " + TAR_PROBE + "true")
        words = set(probe.stdout.split())
        hasher = next((h for h in ("openssl", "sha256sum") if h.encode() in words), None)
        gnu = b"gnu-tar" in words
        caps = Capabilities(
            transport=transport,
            find_printf=b"find-printf" in words,
            hasher=hasher,
            tar=gnu or b"tar-args" in words,
            stream_below=STREAM_BELOW,
            hashes_in_stream=hasher is not None and (gnu or b"tar-args" in words),
        )
        return cls(argv, shell, caps, gnu_tar=gnu)

    @property
    def caps(self) -> Capabilities:
        return self._caps

    def noted(self, note: str) -> ExecSource:
        """This source, its summary followed by `note` (why a faster path is not taken)."""
        self._caps = dataclasses.replace(self._caps, note=note)
        return self

    async def spawn(self, command: str) -> ExecSpawned:
        """A long-running command (the remote agent) on its own process behind the same shell command."""
        return await ExecSpawned.start(self.argv, command)

    @property
    def shell(self) -> ShellProcess:
        return self._shell

    async def close(self) -> None:
        self._closed = True
        self.tar_shells.close()
        streams, self._streams = self._streams, set()
        await asyncio.gather(*(finish(stream.process) for stream in streams))
        await self._shell.aclose()

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        self.roots.update(roots)
        if self._caps.find_printf:
            return parse_find((await self._shell.run(find_command(roots))).stdout, roots)
        return parse_stat_listing((await self._shell.run(stat_listing_command(roots))).stdout, roots)

    # ------------------------------------------------------------------------------------ bytes

    async def pull(
        self,
        path: str,
        partial: Path,
        *,
        size: int,
        mtime: float,
        executor: Executor,
        limiter: RateLimiter | None = None,
        progress: Progress | None = None,
    ) -> str:
        writer = PartialWriter(partial, size, executor)
        offset = await writer.open()
        if progress:
            progress(offset)
        reader: ByteProcess | None = None
        try:
            reader = await ByteProcess.start(self.argv, read_script(path, offset))
            answer = await reader.answer()
            if answer == b"M":
                raise RemoteFileChanged(f"{path}: vanished or no longer a regular file")
            if answer != b"X":
                raise RemoteError(f"unreachable: {await reader.failure()}")
            done = offset
            while chunk := await reader.read(WRITE_CHUNK):
                if done + len(chunk) > size:
                    raise RemoteFileChanged(f"{path}: grew during transfer")
                if limiter:
                    await limiter.consume(len(chunk))
                await writer.write([chunk])
                done += len(chunk)
                if progress:
                    progress(done)
            if done != size:
                await self._shell.run("true")  # a shell that is gone is the session's error, not the file's
                raise RemoteFileChanged(f"{path}: {done} of {size} bytes, changed during transfer")
            if not self._caps.hashes:  # no remote hash will check the version: its attributes must
                seen = (await self.still_same([(path, size, mtime)])) == {path}
                if not seen:
                    raise RemoteFileChanged(f"{path}: changed during transfer")
        except RemoteFileChanged:
            await writer.abort(drop=True)
            raise
        except BaseException:
            await writer.abort(drop=False)
            raise
        finally:
            if reader is not None:
                await reader.close()
        return await writer.finish()

    async def pull_batch(
        self,
        root: str,
        partials: dict[str, Path],
        *,
        executor: Executor,
        on_member: Callable[[Member], None],
        progress: Progress | None = None,
        sizes: dict[str, int] | None = None,
        limiter: RateLimiter | None = None,
    ) -> dict[str, str] | None:
        """The stream's shell hashes what it sent right after the archive (`hashes_in_stream`), on
        stderr: each stream's hashes come with it rather than queueing for the one shell's commands.
        With GNU tar the streams run on reused shells (tar_shells.py): each process of the command
        (`docker exec`, an `ssh`) costs its start-up once, not once per stream."""
        if not self._caps.tar:
            raise TransferError("this shell has no tar: files are copied one by one")
        hasher, roots = self._caps.hasher, sorted(self.roots)
        paths = [posixpath.join(root, rel) for rel in partials] if hasher else []
        after = hash_command(hasher, paths, roots) if hasher else ""
        if self.gnu_tar:
            try:
                said = await self.tar_shells.stream(
                    root, partials, executor=executor, on_member=on_member, progress=progress, sizes=sizes,
                    limiter=limiter, after=after,
                )  # fmt: skip
            except (TransferError, OSError) as exc:
                await self._shell.run("true")  # the shell is gone: the session's error
                if isinstance(exc, OSError):
                    raise TransferError(f"tar stream broke: {exc}") from None
                raise
            return parse_hashes(said, paths, roots) if hasher and said is not None else None
        script = tar_script(root, list(partials), gnu=False, after=after)
        keep = answer_bound(after, len(partials)) if hasher else STDERR_KEPT
        reader = await ByteProcess.start(self.argv, script, keep=keep)
        try:
            answer = await reader.answer()
            if answer == b"M":
                raise TransferError(f"{root}: not a directory any more")
            if answer != b"X":
                raise RemoteError(f"unreachable: {await reader.failure()}")
            try:
                await unpack_stream(
                    reader, root, partials, executor=executor, on_member=on_member, progress=progress,
                    sizes=sizes, limiter=limiter,
                )  # fmt: skip
            except TransferError:
                await self._shell.run("true")  # the shell is gone: the session's error
                raise
            said = await reader.said() if hasher else None
            return parse_hashes(said, paths, roots) if said is not None else None
        finally:
            await reader.close()

    # ------------------------------------------------------------------------------------ checks

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        if self._caps.hasher is None:
            return None
        out: dict[str, str] = {}
        wanted = set(paths)
        for batch in batches(paths):
            result = await self._shell.run(hash_command(self._caps.hasher, batch, sorted(self.roots)))
            out.update(
                (p, h)
                for p, h in parse_hashes(result.stdout, batch, sorted(self.roots)).items()
                if p in wanted
            )
        return out

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        same: set[str] = set()
        for start in range(0, len(files), 200):
            chunk = files[start : start + 200]
            seen = parse_stat((await self._shell.run(stat_command([f[0] for f in chunk]))).stdout, chunk)
            for path, size, mtime in chunk:
                now = seen.get(path)
                if now is not None and same_version(now[0], now[1], size, mtime):
                    same.add(path)
        return same

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        result = Deletion()
        token = quarantine_token()
        by_path = {e.path: e for e in files}
        for batch in batches(list(by_path), max_bytes=DELETE_BATCH_BYTES):
            chunk = [by_path[p] for p in batch]
            out = await self._shell.run(delete_command(chunk, self._caps.hasher, token, sorted(self.roots)))
            result.merge(parse_deletion(out.stdout, chunk))
        return result

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        for batch in batches(emptied_dirs(root, deleted)):
            await self._shell.run(rmdir_command(batch))

    async def free_space(self, path: str) -> int | None:
        result = await self._shell.run(free_space_command(path))
        return parse_df(result.stdout) if result.exit_status == 0 else None

    async def survey(self, roots: Sequence[str]) -> Survey:
        return parse_survey((await self._shell.run(survey_command(roots))).stdout, roots)
