"""Smoke test of the benchmark's emulated WAN link (bench/netem): delay, rate and teardown."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.netem import wan

RTT_MS, RATE_MBIT = 10.0, 50.0
NEEDS = ("gcc", "ip", "ssh", "ssh-keygen", "/usr/sbin/sshd")


@pytest.fixture(scope="module")
def remote() -> Iterator[Any]:
    missing = [tool for tool in NEEDS if not shutil.which(tool)]
    if os.geteuid() != 0 or not Path("/dev/net/tun").exists() or missing:
        pytest.fail(f"the WAN link needs root, /dev/net/tun and {', '.join(NEEDS)} (missing: {missing})")
    with wan.wan_link(wan.LinkSpec(rtt_ms=RTT_MS, rate_mbit=RATE_MBIT)) as remote:
        yield remote


def test_ping_rtt_is_the_configured_rtt(remote: Any) -> None:
    """An idle ping round trip takes the configured RTT, plus well under a millisecond."""
    rtts = remote.ping_ms(count=10, interval_s=0.05)
    assert len(rtts) == 10
    assert RTT_MS - 0.3 <= statistics.median(rtts) <= RTT_MS + 1.5


def test_ssh_cat_throughput_is_close_to_the_rate(remote: Any) -> None:
    """A raw OpenSSH channel moves data at close to, and never above, the link rate."""
    mbit_s = remote.ssh_cat_mbytes_per_s(8 << 20) * 8
    assert 0.7 * RATE_MBIT <= mbit_s <= 1.0 * RATE_MBIT


def test_ssh_login_uses_the_generated_keys(remote: Any) -> None:
    """The yielded key and known_hosts log in to the namespace's sshd with strict host key checking."""
    out = subprocess.run(remote.ssh_command("echo", "ok"), capture_output=True, text=True, timeout=10)
    assert (out.returncode, out.stdout) == (0, "ok\n")


def test_teardown_removes_everything_even_on_keyboard_interrupt() -> None:
    """After a KeyboardInterrupt inside the block, its processes, netns, devices and files are gone."""
    with pytest.raises(KeyboardInterrupt), wan.wan_link(wan.LinkSpec(rtt_ms=2, rate_mbit=10)) as remote:
        pids = [remote.emulator_pid, *map(int, _ip("netns", "pids", remote.netns).split())]
        raise KeyboardInterrupt
    assert len(pids) >= 2
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert remote.netns not in _ip("netns", "list")
    assert f"{remote.local_address}/" not in _ip("-4", "addr")  # the host-side TUN device is gone
    assert not remote.workdir.exists()


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def test_blackhole_and_loss_drop_packets_and_are_counted(remote: Any) -> None:
    """A blackhole drops every packet until it is lifted; a loss rate of 1 drops every packet too; both
    are counted apart from queue drops, and the link carries traffic again afterwards."""
    before = remote.emulator_counters()
    with remote.blackholed():
        assert remote.ping_ms(count=1, interval_s=0.0) == []
    remote.set_loss(1.0)
    try:
        assert remote.ping_ms(count=1, interval_s=0.0) == []
    finally:
        remote.set_loss(0.0)
    assert len(remote.ping_ms(count=3, interval_s=0.02)) == 3
    after = remote.emulator_counters()
    assert after["a_to_b"]["blackholed"] - before["a_to_b"]["blackholed"] >= 1
    assert after["a_to_b"]["lost"] - before["a_to_b"]["lost"] >= 1
    with pytest.raises(ValueError):
        remote.set_loss(1.5)
