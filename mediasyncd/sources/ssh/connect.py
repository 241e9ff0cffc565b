"""SSH connections: options, host-key policy (strict | accept-new), the receive path (receive.py), prompt ACKs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh

from mediasyncd.config import RemoteConfig
from mediasyncd.errors import HostKeyError, RemoteError
from mediasyncd.sources.ssh.receive import receive_fast

# AES-GCM first: GPU hosts have AES-NI, and it costs ~30 % less CPU than chacha20 here (FIELD_NOTES 7).
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
PROMPT_ACK_READS = 64  # reads acknowledged at once: the handshake, the login and the first channel's start


def ack_promptly(conn: asyncssh.SSHClientConnection, reads: int = PROMPT_ACK_READS) -> None:
    """Acknowledge each of the connection's first `reads` socket reads at once (Linux `TCP_QUICKACK`).

    Until it starts a session, sshd leaves Nagle on. After the login it sends two messages of its own
    (a debug message, its host keys); our first channel's confirmation, small, then waits for their ACK,
    which the kernel delays by 40 ms, since the connection looks like request and answer to it. The
    first channel of every connection took 46 ms to open on loopback, 2 ms with this (the ones after
    it, 1 ms both ways: sshd turns Nagle off at its first session). After `reads` reads the hook
    removes itself. Where the option or a TCP socket is missing (a ProxyCommand's pipe), nothing."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    sock = conn.get_extra_info("socket")
    if quickack is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    deliver = conn.data_received
    left = reads

    def data_received(data: bytes, datatype: asyncssh.DataType = None) -> None:
        nonlocal left
        deliver(data, datatype)
        left -= 1
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            left = 0
        if left <= 0:
            conn.data_received = deliver  # type: ignore[method-assign]

    conn.data_received = data_received  # type: ignore[method-assign]


def _host_label(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class _PolicyClient(asyncssh.SSHClient):
    """Receives through receive.py and acknowledges its start at once; judges host keys that the
    known_hosts files do not already trust (asyncssh asks only for those)."""

    def __init__(self, remote: RemoteConfig, learned: Path, known_files: Sequence[Path]) -> None:
        self.remote = remote
        self.learned = learned
        self.known_files = known_files
        self.refusal: str | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        receive_fast(conn)
        ack_promptly(conn)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        label = _host_label(host, port)
        known = _known_keys(self.known_files, host, addr, port)
        fingerprint = key.get_fingerprint()
        if known:
            where = ", ".join(str(p) for p in self.known_files)
            self.refusal = (
                f"REMOTE HOST KEY CHANGED for {label} (now {fingerprint}); refusing to connect. "
                f"If the container was recreated on purpose, remove the old key and let accept-new learn "
                f"the new one: ssh-keygen -R '{label}' -f <file> for the file that holds it ({where})"
            )
            return False
        if self.remote.host_key != "accept-new":
            self.refusal = (
                f"host key {fingerprint} of {label} is not in known_hosts ({self.known_files[0]}); add it "
                f"(ssh-keyscan -p {port} {host} >> known_hosts, after checking the fingerprint) or set "
                f'host_key = "accept-new" for remote {self.remote.name!r}'
            )
            return False
        self.learned.parent.mkdir(parents=True, exist_ok=True)
        line = f"{label} {key.export_public_key('openssh').decode().strip()}\n"
        with self.learned.open("a", encoding="utf-8") as fh:
            fh.write(line)
        return True


def _known_keys(files: Sequence[Path], host: str, addr: str, port: int) -> list[asyncssh.SSHKey]:
    keys: list[asyncssh.SSHKey] = []
    for path in files:
        if not path.is_file():
            continue
        try:
            known = asyncssh.read_known_hosts(str(path))
        except (OSError, ValueError):
            continue
        matched = known.match(host, addr, port)
        keys.extend(matched[0])
    return keys


def known_hosts_files(remote: RemoteConfig, state_dir: Path) -> list[Path]:
    user_file = remote.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    return [user_file, state_dir / "known_hosts"]


async def connect(remote: RemoteConfig, state_dir: Path) -> asyncssh.SSHClientConnection:
    """Open one SSH connection to `remote`, applying its host-key policy. Raises RemoteError."""
    files = known_hosts_files(remote, state_dir)
    existing = [str(p) for p in files if p.is_file()]
    learned = state_dir / "known_hosts"
    client = _PolicyClient(remote, learned, files)
    options: dict[str, Any] = {
        "known_hosts": existing or b"",
        "encryption_algs": list(CIPHERS),
        "compression_algs": None,
        # The SFTP channel window stays at asyncssh's 2 MiB: measured through a 40 ms / 200 Mbit/s link,
        # larger windows only fill the bottleneck queue (2 MiB 21.5 MB/s, 8 MiB 19-21, 16 MiB 13), and on
        # loopback 16 MiB was slower too.
        "keepalive_interval": remote.keepalive_interval,
        "keepalive_count_max": remote.keepalive_count_max,
        "connect_timeout": remote.connect_timeout,
    }
    if remote.port is not None:
        options["port"] = remote.port
    if remote.user is not None:
        options["username"] = remote.user
    if remote.identity_file is not None:
        options["client_keys"] = [str(remote.identity_file)]
    try:
        conn, _ = await asyncssh.create_connection(lambda: client, remote.host, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyError(client.refusal or str(exc)) from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise RemoteError(f"cannot connect to {remote.host}: {_describe(exc)}") from None
    return conn


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "authentication failed (check user, identity_file or ssh-agent)"
    text = str(exc) or type(exc).__name__
    return text
