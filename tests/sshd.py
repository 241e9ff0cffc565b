"""A real OpenSSH ``sshd`` for tests: own keys and config in a temp dir, a free loopback port.

``start_sshd(tmp)`` runs ``/usr/sbin/sshd -D -f <config> -E <log>`` as a child of the test process,
authorizes a fresh client key for the current user through ``AuthorizedKeysFile`` (``~/.ssh`` is never
touched), waits until the server reports that it listens, and on exit stops exactly the process it
started. ``ssh_run`` runs a command through the system ``ssh`` client to prove things on the remote side.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from tests.procs import subtree

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
HOST = "127.0.0.1"

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class SshServer:
    """A running sshd and everything a client needs to reach it."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    log: Path
    pid: int


class SshdStartError(RuntimeError):
    """sshd exited or never listened; the message carries its log."""


@contextmanager
def start_sshd(
    tmp: Path, *, sftp_only: bool = False, extra_config: str = "", port: int | None = None
) -> Iterator[SshServer]:
    """Run a real sshd on a free 127.0.0.1 port with keys, config and log under ``tmp``.

    ``sftp_only`` adds ``ForceCommand internal-sftp``: exec and shell requests run the SFTP server
    instead of the command, as on an SFTP-only host. ``extra_config`` is sshd_config text: its global
    keywords replace the defaults of the same name (sshd keeps the first value it reads), and a
    ``Match`` block in it goes at the end of the file, where sshd requires it. ``port`` listens on that
    port instead of a free one (e.g. an impostor with its own host key where another sshd was).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    _ensure_privsep_dir()
    host_key = _keygen(tmp / "ssh_host_ed25519_key")
    client_key = _keygen(tmp / "id_ed25519")
    authorized_keys = tmp / "authorized_keys"
    authorized_keys.write_bytes(client_key.with_suffix(".pub").read_bytes())
    config = tmp / "sshd_config"
    log = tmp / "sshd.log"

    proc, port = _spawn_listening(config, log, host_key, authorized_keys, sftp_only, extra_config, port)
    try:
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(_known_hosts_line(host_key, port))
        yield SshServer(
            host=HOST,
            port=port,
            user=pwd.getpwuid(os.getuid()).pw_name,
            client_key=client_key,
            known_hosts=known_hosts,
            log=log,
            pid=proc.pid,
        )
    finally:
        _stop(proc)


def ssh_run(
    server: SshServer, command: str, *, input: bytes | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` on ``server`` through the system ssh client; never raises on a non-zero exit."""
    return subprocess.run(
        [*ssh_argv(server), command],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def ssh_argv(server: SshServer) -> list[str]:
    """The system ssh client's argv for ``server``, up to the remote command (e.g. for ``rsync -e``)."""
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        f"IdentityFile={server.client_key}",
        "-o",
        f"UserKnownHostsFile={server.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        "-p",
        str(server.port),
        "-l",
        server.user,
        server.host,
        "--",
    ]


def _spawn_listening(
    config: Path,
    log: Path,
    host_key: Path,
    authorized_keys: Path,
    sftp_only: bool,
    extra_config: str,
    fixed_port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start sshd on a free port (or `fixed_port`); retry with another free port if one was taken
    between probe and bind."""
    failure = ""
    for _ in range(_PORT_ATTEMPTS if fixed_port is None else 1):
        port = fixed_port or _free_port()
        config.write_text(_render_config(port, host_key, authorized_keys, sftp_only, extra_config))
        try:
            # Errors sshd prints before it opens its -E log land in the same file.
            with log.open("wb") as early_stderr:
                proc = subprocess.Popen(
                    [str(SSHD), "-D", "-f", str(config), "-E", str(log)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=early_stderr,
                )
        except FileNotFoundError as exc:
            raise SshdStartError(f"{SSHD} not found: install openssh-server (scripts/setup --dev)") from exc
        try:
            if _wait_listening(proc, log, port):
                return proc, port
        except BaseException:
            _stop(proc)
            raise
        failure = _exit_report(proc, log)
        if "Address already in use" not in failure:
            break
    raise SshdStartError(f"sshd did not start:\n{failure}")


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, port: int) -> bool:
    """True once sshd logs that it listens on ``port``; False if it exits first; raises on timeout."""
    ready = f"Server listening on {HOST} port {port}.".encode()
    deadline = time.monotonic() + _START_TIMEOUT_S
    delay = 0.002
    while time.monotonic() < deadline:
        if ready in log.read_bytes():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    log_text = log.read_text(errors="replace")
    raise SshdStartError(f"sshd did not listen within {_START_TIMEOUT_S}s:\n{log_text}")


def _exit_report(proc: subprocess.Popen[bytes], log: Path) -> str:
    proc.wait(timeout=_STOP_TIMEOUT_S)
    return f"exit status {proc.returncode}\n{log.read_text(errors='replace')}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the sshd we started (only that PID), wait for it, SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _render_config(
    port: int, host_key: Path, authorized_keys: Path, sftp_only: bool, extra_config: str
) -> str:
    overrides, match_blocks = _split_extra(extra_config)
    overridden = {_keyword(line) for line in overrides}
    defaults = [
        f"ListenAddress {HOST}:{port}",
        f'HostKey "{host_key}"',
        f'AuthorizedKeysFile "{authorized_keys}"',
        "PidFile none",
        "StrictModes no",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 100",
        "MaxSessions 50",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "LogLevel INFO",
        "Subsystem sftp internal-sftp",
    ]
    if _sshd_version() >= (9, 8):
        # Newer sshd penalizes sources that fail auth or crash sessions; tests kill clients on purpose.
        defaults.append("PerSourcePenalties no")
    if sftp_only:
        defaults.append("ForceCommand internal-sftp")
    lines = overrides + [line for line in defaults if _keyword(line) not in overridden] + match_blocks
    return "\n".join(lines) + "\n"


def _split_extra(extra_config: str) -> tuple[list[str], list[str]]:
    """Global lines of ``extra_config``, and everything from its first ``Match`` on."""
    lines = [line.strip() for line in extra_config.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    for i, line in enumerate(lines):
        if _keyword(line) == "match":
            return lines[:i], lines[i:]
    return lines, []


def _keyword(line: str) -> str:
    return re.split(r"[\s=]", line, maxsplit=1)[0].lower()


@functools.cache
def _sshd_version() -> tuple[int, int]:
    out = subprocess.run([str(SSHD), "-V"], capture_output=True, check=False).stderr.decode()
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mediasyncd-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def _known_hosts_line(host_key: Path, port: int) -> str:
    key_type, key_b64 = host_key.with_suffix(".pub").read_text().split()[:2]
    return f"[{HOST}]:{port} {key_type} {key_b64}\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_privsep_dir() -> None:
    """sshd running as root refuses to start without its privilege-separation directory."""
    with contextlib.suppress(PermissionError):  # not root: sshd runs unprivileged, needs none
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)


async def connect(server: SshServer) -> asyncssh.SSHClientConnection:
    """An asyncssh connection to `server` with its key and known_hosts only (no agent, no ~/.ssh/config)."""
    return await asyncssh.connect(
        server.host,
        server.port,
        username=server.user,
        client_keys=[str(server.client_key)],
        known_hosts=str(server.known_hosts),
        agent_path=None,
        config=[],
    )


def session_pids(server: SshServer) -> list[int]:
    """Every process below the listening sshd: one privileged monitor per connection and its children."""
    return subtree(server.pid)


def cut_link(server: SshServer) -> int:
    """Cut every connection to `server` as a network failure would: SIGKILL its session processes (the
    listener stays, so clients can reconnect). Returns how many processes were killed."""
    killed = 0
    for pid in session_pids(server):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed
