"""A connected remote: one SSH connection, one SFTP session and (where the remote has a shell) one
long-lived command channel, plus what the remote can do (GNU find -printf, sha256sum)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

from mediasyncd.errors import RemoteError
from mediasyncd.transfer.shell import CommandChannel

SHA256_BATCH_BYTES = 64 * 1024  # command-line bytes per hashing command


@dataclass(frozen=True)
class Capabilities:
    find_printf: bool = False
    hasher: str | None = None  # "openssl" (uses the CPU's SHA extensions: ~4x coreutils) or "sha256sum"
    tar: bool = False  # GNU tar: small files can come in one stream

    @property
    def sha256sum(self) -> bool:
        return self.hasher is not None

    @property
    def summary(self) -> str:
        parts = (("find", self.find_printf), (self.hasher or "", bool(self.hasher)), ("tar", self.tar))
        found = [name for name, ok in parts if ok]
        return ",".join(found) or "sftp-only"


PROBE = (
    "find / -maxdepth 0 -printf '' >/dev/null 2>&1 && echo find-printf; "
    "openssl dgst -sha256 -r /dev/null >/dev/null 2>&1 && echo openssl; "
    "command -v sha256sum >/dev/null 2>&1 && echo sha256sum; "
    "tar --version 2>/dev/null | grep -q 'GNU tar' && echo gnu-tar; true"
)
# Paths passed are absolute, so none can be taken for an option.
HASH_COMMANDS = {"openssl": "openssl dgst -sha256 -r", "sha256sum": "sha256sum --"}


class RemoteHost:
    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        shell: CommandChannel | None,
        caps: Capabilities,
    ) -> None:
        self.conn = conn
        self.sftp = sftp
        self.shell = shell
        self.caps = caps

    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection, *, use_shell: bool = True) -> RemoteHost:
        """Start the SFTP session and the command channel side by side (each pays a round trip and, for
        the shell, the remote's shell start-up)."""
        sftp_task = asyncio.ensure_future(conn.start_sftp_client())
        shell: CommandChannel | None = None
        caps = Capabilities()
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
        try:
            sftp = await sftp_task
        except (asyncssh.Error, OSError) as exc:
            if shell is not None:
                shell.close()
            raise RemoteError(f"SFTP unavailable: {exc}") from None
        return cls(conn, sftp, shell, caps)

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        """The remote's SHA-256 of each readable path (batched), or None if the remote cannot hash."""
        if self.shell is None or self.caps.hasher is None:
            return None
        command = HASH_COMMANDS[self.caps.hasher]
        out: dict[str, str] = {}
        batch: list[str] = []
        size = 0
        for p in [*paths, None]:
            if p is not None and size + len(p) < SHA256_BATCH_BYTES:
                batch.append(p)
                size += len(p) + 3
                continue
            if batch:
                args = " ".join(shlex.quote(x) for x in batch)
                result = await self.shell.run(f"{command} {args}")
                out.update(parse_sha256sum(result.stdout))
            batch, size = ([p], len(p)) if p is not None else ([], 0)
        return out

    async def close(self) -> None:
        if self.shell is not None:
            self.shell.close()
        self.sftp.exit()
        self.conn.close()
        await self.conn.wait_closed()


def parse_sha256sum(output: bytes) -> dict[str, str]:
    """Parse `sha256sum` / `openssl dgst -sha256 -r` lines: `<hex>  <path>` or `<hex> *<path>` (sha256sum
    starts a line with a backslash when it escaped the name)."""
    result: dict[str, str] = {}
    for line in output.decode("utf-8", "surrogateescape").split("\n"):
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        if len(line) < 67 or line[64:66] not in ("  ", " *"):
            continue
        digest, name = line[:64], line[66:]
        if escaped:
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        result[name] = digest.lower()
    return result
