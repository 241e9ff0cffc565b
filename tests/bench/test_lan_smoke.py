"""Smoke test of the benchmark's LAN endpoint (bench/netem/lan.py): an unshaped veth pair, torn down."""

from __future__ import annotations

import subprocess

import pytest

from bench.netem.lan import lan_link


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def test_the_lan_sshd_answers_unshaped_and_leaves_nothing_behind() -> None:
    """Logging in with the yielded keys works, a round trip is far below a WAN's, and after a
    KeyboardInterrupt in the block the namespace, the veth pair, sshd and the files are gone."""
    with pytest.raises(KeyboardInterrupt), lan_link() as remote:
        out = subprocess.run(remote.ssh_command("echo", "ok"), capture_output=True, text=True, timeout=20)
        assert (out.returncode, out.stdout) == (0, "ok\n")
        assert min(remote.ping_ms(count=5, interval_s=0.02)) < 5.0
        pids = [int(p) for p in _ip("netns", "pids", remote.netns).split()]
        raise KeyboardInterrupt
    assert pids
    assert not [
        pid for pid in pids if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0
    ]
    assert remote.netns not in _ip("netns", "list")
    assert f"{remote.local_address}/" not in _ip("-4", "addr")
    assert not remote.workdir.exists()
