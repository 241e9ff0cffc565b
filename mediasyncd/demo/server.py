"""The demo container: an asyncssh server on 127.0.0.1 with SFTP and exec (commands run locally).

It answers the same requests a real container's OpenSSH does (SFTP subsystem, `exec sh` command channel),
so the daemon exercises its normal fast path against it. Key authentication only, loopback only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh


async def _run_command(process: asyncssh.SSHServerProcess[bytes]) -> None:
    command = process.command
    if not command:
        process.stderr.write(b"demo server: interactive shells are not offered\n")
        process.exit(1)
        return
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_feed(process.stdin, proc.stdin))
            out = tg.create_task(_copy(proc.stdout, process.stdout))
            err = tg.create_task(_copy(proc.stderr, process.stderr))
            status = await proc.wait()
            await out
            await err
            process.exit(status)
    except (asyncssh.Error, OSError):
        pass
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _feed(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    """Client -> command; EOF from the client closes the command's stdin."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (asyncssh.Error, OSError):
        pass
    finally:
        sink.close()


async def _copy(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()


def ensure_key(path: Path) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return key


async def start_demo_server(
    keys_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> tuple[asyncssh.SSHAcceptor, int]:
    """Start the server; returns it and its port. Client key: `keys_dir/client_key`."""
    host_key = ensure_key(keys_dir / "host_key")
    ensure_key(keys_dir / "client_key")
    acceptor = await asyncssh.listen(
        host,
        port,
        server_host_keys=[host_key],
        authorized_client_keys=str(keys_dir / "client_key.pub"),
        sftp_factory=True,
        process_factory=_run_command,
        encoding=None,
        allow_scp=False,
    )
    bound = acceptor.sockets[0].getsockname()[1]
    known = keys_dir / "known_hosts"
    known.write_text(f"[{host}]:{bound} {host_key.export_public_key('openssh').decode().strip()}\n")
    return acceptor, int(bound)
