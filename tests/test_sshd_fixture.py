"""The real-sshd test fixture: what the daemon's integration tests rely on."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import asyncssh
import pytest

from tests.sshd import SshdStartError, SshServer, connect, ssh_run, start_sshd


def test_command_runs_as_the_current_user(sshd: SshServer) -> None:
    """A command sent with ssh_run runs on the server as the user running the tests."""
    result = ssh_run(sshd, "id -un")

    assert (result.returncode, result.stdout.decode().strip()) == (0, sshd.user), result.stderr


def test_ssh_run_feeds_input_to_the_command(sshd: SshServer, tmp_path: Path) -> None:
    """ssh_run passes its input to the remote command's stdin."""
    target = tmp_path / "written-remotely"

    result = ssh_run(sshd, f"cat > {target}", input=b"bytes from the test")

    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b"bytes from the test"


def test_known_hosts_pins_the_host_key_for_host_and_port(sshd: SshServer) -> None:
    """known_hosts holds exactly one ed25519 entry, for [127.0.0.1]:<port>."""
    entries = sshd.known_hosts.read_text().splitlines()

    assert [line.split()[:2] for line in entries] == [[f"[127.0.0.1]:{sshd.port}", "ssh-ed25519"]]


async def test_asyncssh_connects_with_strict_host_key_checking(sshd: SshServer) -> None:
    """asyncssh authenticates with the client key and verifies the host against known_hosts."""
    async with await connect(sshd) as conn:
        result = await conn.run("echo connected", check=True)

    assert result.stdout == "connected\n"


def test_server_starts_in_well_under_a_second(tmp_path: Path) -> None:
    """Keys, config and a listening sshd take well under a second."""
    started = time.monotonic()
    with start_sshd(tmp_path):
        elapsed = time.monotonic() - started

    assert elapsed < 1.0


def test_exit_stops_the_server_it_started(tmp_path: Path) -> None:
    """Leaving the context terminates and reaps the sshd process; its port refuses connections."""
    with start_sshd(tmp_path) as server:
        pass

    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1).close()


def test_servers_run_side_by_side_on_their_own_ports(tmp_path: Path) -> None:
    """Two servers started together listen on different ports with different keys."""
    with start_sshd(tmp_path / "a") as a, start_sshd(tmp_path / "b") as b:
        assert a.port != b.port
        assert ssh_run(a, "true").returncode == ssh_run(b, "true").returncode == 0
        assert a.known_hosts.read_text().split()[2] != b.known_hosts.read_text().split()[2]


async def test_extra_config_replaces_a_default(tmp_path: Path) -> None:
    """A keyword in extra_config wins over the fixture's default (here MaxSessions 1)."""
    with start_sshd(tmp_path, extra_config="MaxSessions 1") as server:
        async with await connect(server) as conn, conn.create_process("cat"):
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.run("true")


def test_extra_config_match_block_applies(tmp_path: Path) -> None:
    """A Match block in extra_config is honoured (placed last, where sshd requires it)."""
    extra = "Match Address 127.0.0.1\n    ForceCommand echo matched"

    with start_sshd(tmp_path, extra_config=extra) as server:
        result = ssh_run(server, "echo unmatched")

    assert result.stdout == b"matched\n"


def test_a_config_sshd_rejects_fails_fast_with_its_complaint(tmp_path: Path) -> None:
    """A bad extra_config raises SshdStartError quoting sshd's own error, without waiting it out."""
    bad = start_sshd(tmp_path, extra_config="NoSuchKeyword yes")

    with pytest.raises(SshdStartError, match="Bad configuration option: NoSuchKeyword"), bad:
        pass


def test_sftp_only_server_refuses_exec(sshd_sftp_only: SshServer, tmp_path: Path) -> None:
    """An SFTP-only server runs no command: exec fails and has no effect on the remote side."""
    marker = tmp_path / "marker"

    result = ssh_run(sshd_sftp_only, f"touch {marker}")

    assert result.returncode != 0
    assert b"sftp connections only" in result.stdout
    assert not marker.exists()


async def test_sftp_only_server_serves_sftp(sshd_sftp_only: SshServer, tmp_path: Path) -> None:
    """An SFTP-only server lists and serves files to asyncssh's SFTP client."""
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "00001-42.png").write_bytes(b"\x89PNG fake")

    local = tmp_path / "fetched.png"

    async with await connect(sshd_sftp_only) as conn, conn.start_sftp_client() as sftp:
        names = set(await sftp.listdir(str(remote))) - {".", ".."}
        await sftp.get(str(remote / "00001-42.png"), str(local))

    assert (names, local.read_bytes()) == ({"00001-42.png"}, b"\x89PNG fake")
