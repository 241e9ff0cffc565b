"""The SSH source: one connection, one SFTP session and (where the remote has a shell) one long-lived
command channel, plus what the remote can do (GNU find -printf, a SHA-256 tool, GNU tar).

Bytes come over SFTP (pipelined reads) or, for many small files, one `tar` stream; listing, hashing and
deleting go through the shell in batches where there is one, else through SFTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import posixpath
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

import asyncssh

from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.errors import MediasyncError, RemoteError, RemoteFileChanged, TransferError
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
from mediasyncd.sources.listing import Listing, find_command, parse_find
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.ssh.connect import connect
from mediasyncd.sources.ssh.rtt import fast_link, stream_below, tar_streams, tcp_round_trip
from mediasyncd.sources.ssh.sftp import (
    bounded,
    sftp_delete_all,
    sftp_free,
    sftp_pull,
    sftp_rmdirs,
    sftp_same,
    sftp_survey,
    sftp_under_root,
    sftp_walk,
)
from mediasyncd.sources.ssh.sftp_session import SftpSession
from mediasyncd.sources.ssh.shell import CommandChannel
from mediasyncd.sources.ssh.spawn import SshSpawned
from mediasyncd.sources.ssh.stream import LargeFiles, exec_pull
from mediasyncd.sources.survey import Survey, parse_survey, survey_command
from mediasyncd.sources.tar import Member
from mediasyncd.sources.tar_shells import TarShells

CLOSE_TIMEOUT = 5.0


class SshSource:
    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        sftp: SftpSession,
        shell: CommandChannel | None,
        caps: Capabilities,
        transfer: TransferConfig | None = None,
    ) -> None:
        self.conn = conn
        self._sftp = sftp
        self._shell = shell
        rtt = tcp_round_trip(conn.get_extra_info("socket"))  # round trip; None: unknown (a proxy's pipe)
        self._caps = dataclasses.replace(
            caps, streams=tar_streams(rtt), stream_below=stream_below(rtt), round_trip=rtt,
            hashes_in_stream=caps.tar and caps.hasher is not None,
        )  # fmt: skip
        self.block_size = transfer.block_size if transfer else 0
        self.roots: set[str] = set()  # the roots hashes pin directories below (config, listings)
        self.max_requests = transfer.max_requests if transfer else 64
        self.large = LargeFiles(
            transfer.stream_above if transfer else 0,
            transfer.large_files if transfer else "sftp",
            round_trip=rtt,
        )
        # Where tar streams run (public for tests and benchmarks); on a fast link the first borrows the
        # command channel's shell (tar_shells.py).
        lender = shell.lent if shell is not None and fast_link(rtt) else None
        self.tar_shells = TarShells(lambda: conn.create_process("exec sh", encoding=None), lender=lender)

    @classmethod
    async def open(
        cls, remote: RemoteConfig, state_dir: Path, transfer: TransferConfig | None = None
    ) -> SshSource:
        """Connect and start the SFTP session and the command channel; the connection is closed again
        whatever goes wrong after it was made."""
        conn = await connect(remote, state_dir)
        try:
            source = await cls.start(conn, transfer)
            source.roots.update(remote.roots)
            return source
        except BaseException:
            conn.close()
            raise

    @classmethod
    async def start(
        cls,
        conn: asyncssh.SSHClientConnection,
        transfer: TransferConfig | None = None,
        *,
        use_shell: bool = True,
    ) -> SshSource:
        """Start the command channel; the SFTP session only when something needs it (sftp_session.py),
        or at once where there is no shell: then everything goes through SFTP."""
        sftp = SftpSession(conn)
        if not use_shell:
            sftp.start()
        shell: CommandChannel | None = None
        caps = Capabilities()
        try:
            if use_shell:
                try:
                    shell, probe = await CommandChannel.start(conn, PROBE)
                    words = set(probe.stdout.split())
                    hasher = next((h for h in ("openssl", "sha256sum") if h.encode() in words), None)
                    caps = Capabilities(
                        find_printf=b"find-printf" in words, hasher=hasher, tar=b"gnu-tar" in words
                    )
                except RemoteError:
                    shell = None
            if shell is None:
                await sftp.client()
        except BaseException:
            sftp.close()
            raise
        return cls(conn, sftp, shell, caps, transfer)

    @property
    def caps(self) -> Capabilities:
        return self._caps

    @property
    def shell(self) -> CommandChannel | None:
        return self._shell

    async def close(self) -> None:
        """Close the channels and the connection; a broken connection never holds this up long."""
        if self._shell is not None:
            self._shell.close()
        self.tar_shells.close()
        self._sftp.close()
        self.conn.close()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), CLOSE_TIMEOUT)
        except (OSError, TimeoutError, asyncssh.Error):
            pass

    # ------------------------------------------------------------------------------------ listing

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        self.roots.update(roots)
        if self._shell is not None and self._caps.find_printf:
            result = await self._shell.run(find_command(roots))
            return parse_find(result.stdout, roots)
        return await sftp_walk(await self._sftp.client(), roots)

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
        # the remote's hash pins the bytes, as for SFTP below
        if await self.large.by_exec(size, self._sftp.client, self._shell is not None and self._caps.hashes):
            try:
                return await exec_pull(
                    self.conn, path, partial, size=size, executor=executor, limiter=limiter, progress=progress
                )
            except TransferError as exc:
                raise self._lost_or(exc) from None
        # Without a remote hash nothing else pins the bytes to the root: check the directory's real path
        # before and after the read (a directory swapped for a symlink out of the root is refused).
        unpinned = not self._caps.hashes
        sftp = await self._sftp.client()
        if unpinned and not await sftp_under_root(sftp, path, self.roots):
            raise RemoteFileChanged(f"{path}: a directory below the root is no longer a directory")
        try:
            digest = await sftp_pull(
                sftp,
                path,
                partial,
                size=size,
                mtime=mtime,
                executor=executor,
                block_size=self.block_size,
                max_requests=self.max_requests,
                check_attrs=not self._caps.hashes,  # the remote's hash checks the version where it can
                limiter=limiter,
                progress=progress,
            )
        except TransferError as exc:
            raise self._lost_or(exc) from None
        if unpinned and not await sftp_under_root(sftp, path, self.roots):
            await asyncio.to_thread(partial.unlink, missing_ok=True)  # its bytes may be from outside the root
            raise RemoteFileChanged(f"{path}: a directory below the root was swapped during the transfer")
        return digest

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
        """The stream's shell hashes what it sent right after the archive (`hashes_in_stream`): no
        command waits for the command channel, which a stream may hold, and no second trip."""
        hasher, roots = self._caps.hasher, sorted(self.roots)
        paths = [posixpath.join(root, rel) for rel in partials] if hasher else []
        try:
            said = await self.tar_shells.stream(
                root, partials, executor=executor, on_member=on_member, progress=progress, sizes=sizes,
                limiter=limiter, after=hash_command(hasher, paths, roots) if hasher else "",
            )  # fmt: skip
            return parse_hashes(said, paths, roots) if hasher and said is not None else None
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(f"tar stream broke: {exc}") from None
        except TransferError as exc:  # a truncated archive: the stream was cut, or tar failed
            raise self._lost_or(exc) from None

    def _lost_or(self, error: TransferError) -> MediasyncError:
        """A file's error, unless the connection is gone: then it is the session's (RemoteError)."""
        if isinstance(error, RemoteFileChanged) or not self.conn.is_closed():
            return error
        return RemoteError(f"connection lost: {error}")

    # ------------------------------------------------------------------------------------ checks

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        if self._shell is None or self._caps.hasher is None:
            return None
        out: dict[str, str] = {}
        for batch in batches(paths, max_files=len(paths) or 1):
            result = await self._shell.run(hash_command(self._caps.hasher, batch, sorted(self.roots)))
            out.update(parse_hashes(result.stdout, batch, sorted(self.roots)))
        return out

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        sftp = await self._sftp.client()
        stats = await bounded(sftp_same(sftp, path, size, mtime) for path, size, mtime in files)
        return {path for (path, _, _), same in zip(files, stats, strict=True) if same}

    # ------------------------------------------------------------------------------------ deleting

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        result = Deletion()
        if not files:
            return result
        token = quarantine_token()
        if self._shell is not None:
            by_path = {e.path: e for e in files}
            for batch in batches(list(by_path), max_bytes=DELETE_BATCH_BYTES):
                chunk = [by_path[p] for p in batch]
                out = await self._shell.run(
                    delete_command(chunk, self._caps.hasher, token, sorted(self.roots))
                )
                result.merge(parse_deletion(out.stdout, chunk))
            return result
        return await sftp_delete_all(await self._sftp.client(), files, token)  # SFTP only

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        dirs = emptied_dirs(root, deleted)
        if not dirs:
            return
        if self._shell is not None:
            for batch in batches(dirs):
                await self._shell.run(rmdir_command(batch))
            return
        await sftp_rmdirs(await self._sftp.client(), dirs)

    async def free_space(self, path: str) -> int | None:
        free = await sftp_free(await self._sftp.client(), path)
        if free is not None or self._shell is None:
            return free
        result = await self._shell.run(free_space_command(path))
        return parse_df(result.stdout) if result.exit_status == 0 else None

    async def spawn(self, command: str) -> SshSpawned:
        """A long-running command (the remote agent) on a new exec channel of this connection."""
        return await SshSpawned.start(self.conn, command)

    async def survey(self, roots: Sequence[str]) -> Survey:
        if self._shell is None:
            return await sftp_survey(await self._sftp.client(), roots)
        return parse_survey((await self._shell.run(survey_command(roots))).stdout, roots)
