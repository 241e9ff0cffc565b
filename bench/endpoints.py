"""Where the tools pull from: the real OpenSSH sshd on loopback, or in a netns behind the emulated WAN link.

Both serve this machine's filesystem (the datasets are local directories) with the same sshd settings that
matter here: OpenSSH's `sftp-server` binary as the SFTP subsystem and `MaxStartups 100` (rclone opens one
connection per transfer). An `Endpoint` is all a tool needs to reach one.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.netem.lan import lan_link
from bench.netem.wan import LinkSpec, WanRemote, wan_link
from tests.sshd import start_sshd

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
SSHD_OPTIONS = {"MaxStartups": "100", "MaxSessions": "100"}


@dataclass(frozen=True)
class Endpoint:
    """An sshd and the credentials to reach it, plus the link it sits behind (None: plain loopback)."""

    label: str  # e.g. "loopback", "lan (veth, unshaped)", "wan 40 ms / 200 Mbit/s, queue 1 BDP"
    host: str
    port: int
    user: str
    key_path: Path
    known_hosts_path: Path
    link: LinkSpec | None = None
    wan: WanRemote | None = None

    def ssh_options(self) -> list[str]:
        return [
            *("-F", "/dev/null", "-i", str(self.key_path), "-p", str(self.port)),
            *("-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes"),
            *("-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts_path}"),
            *("-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"),
        ]

    def ssh_command(self, *remote_command: str) -> list[str]:
        return ["ssh", *self.ssh_options(), f"{self.user}@{self.host}", *remote_command]

    def rsync_shell(self) -> str:
        """The `-e` argument for rsync."""
        return shlex.join(["ssh", *self.ssh_options()])

    def rclone_remote(self, path: Path) -> str:
        """An on-the-fly rclone sftp remote for `path` (no rclone config file)."""
        params = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "key_file": str(self.key_path),
            "known_hosts_file": str(self.known_hosts_path),
        }
        for value in params.values():
            if any(c in value for c in ",:='\""):
                raise ValueError(f"cannot put {value!r} in an rclone connection string")
        return ":sftp," + ",".join(f"{k}={v}" for k, v in params.items()) + f":{path}"


def link_label(link: LinkSpec | None) -> str:
    if link is None:
        return "loopback"
    return f"wan {link.rtt_ms:g} ms / {link.rate_mbit:g} Mbit/s, queue {link.queue_bdp:g} BDP"


@contextlib.contextmanager
def loopback_endpoint(workdir: Path) -> Iterator[Endpoint]:
    """A real sshd on 127.0.0.1 (tests/sshd.py), no shaping: the CPU-bound case."""
    extra = f"Subsystem sftp {SFTP_SERVER}\n" + "".join(f"{k} {v}\n" for k, v in SSHD_OPTIONS.items())
    with start_sshd(workdir, extra_config=extra) as server:
        yield Endpoint(
            label=link_label(None),
            host=server.host,
            port=server.port,
            user=server.user,
            key_path=server.client_key,
            known_hosts_path=server.known_hosts,
        )


@contextlib.contextmanager
def wan_endpoint(link: LinkSpec) -> Iterator[Endpoint]:
    """The real sshd in a netns behind bench/netem's emulated link."""
    with wan_link(link, sshd_options=SSHD_OPTIONS) as remote:
        yield Endpoint(
            label=link_label(link),
            host=remote.host,
            port=remote.port,
            user=remote.user,
            key_path=remote.key_path,
            known_hosts_path=remote.known_hosts_path,
            link=link,
            wan=remote,
        )


LAN_LABEL = "lan (veth, unshaped)"


@contextlib.contextmanager
def lan_endpoint() -> Iterator[Endpoint]:
    """The real sshd in a netns behind an unshaped veth pair (bench/netem/lan.py): a box on the same LAN,
    with real TCP between the ends but no link emulator in the way."""
    with lan_link(sshd_options=SSHD_OPTIONS) as remote:
        yield Endpoint(
            label=LAN_LABEL,
            host=remote.host,
            port=remote.port,
            user=remote.user,
            key_path=remote.key_path,
            known_hosts_path=remote.known_hosts_path,
        )
