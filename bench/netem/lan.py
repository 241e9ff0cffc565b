"""The LAN case: the real OpenSSH sshd in a network namespace behind an unshaped veth pair.

linkem (wan.py) carries ~577 Mbit/s at most on this machine: too little for a 2.5 or 10 GbE LAN. A veth
pair adds only the kernel's network stack between the tools and the sshd (real TCP, no loopback
shortcuts, no rate limit), the case of a box next door. Same sshd setup, keys and cleanup as wan.py
(the namespace name carries the same prefix, so `python -m bench.netem.wan cleanup` removes leftovers).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from bench.netem.wan import (
    NETNS_PREFIX,
    SSHD,
    TMP_PREFIX,
    LinkSpec,
    WanError,
    WanRemote,
    _alloc_lock,
    _free_subnet,
    _quietly,
    _run,
    _signals_held,
    _stop_netns_processes,
    _wait_for_sshd,
    _write_ssh_files,
)

LAN_MTU = 1500


@contextlib.contextmanager
def lan_link(
    *, user: str | None = None, sshd_options: Mapping[str, str] | None = None
) -> Iterator[WanRemote]:
    """A veth pair into a new namespace, an sshd there; yield how to reach it; tear it down on exit.
    The WanRemote's `emulator_pid` is 0 (there is no emulator) and its `link` says rtt 0, rate 0."""
    if os.geteuid() != 0:
        raise WanError("lan_link needs root (network namespaces, veth, sshd)")
    token = secrets.token_hex(4)
    netns = f"{NETNS_PREFIX}{os.getpid()}-{token}"
    dev_host, dev_ns = f"ml{token}h", f"ml{token}n"
    cleanup = contextlib.ExitStack()
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        cleanup.callback(_quietly, shutil.rmtree, workdir, True)
        with _alloc_lock():
            local, remote = _free_subnet()
            _run("ip", "netns", "add", netns)
            cleanup.callback(_quietly, _run, "ip", "netns", "delete", netns)
            _run("ip", "link", "add", dev_host, "type", "veth", "peer", "name", dev_ns, "netns", netns)
            cleanup.callback(_quietly, _run, "ip", "link", "delete", dev_host)
            for ns, dev, address in (([], dev_host, local), (["-n", netns], dev_ns, remote)):
                _run("ip", *ns, "link", "set", dev, "mtu", str(LAN_MTU))
                _run("ip", *ns, "addr", "add", f"{address}/30", "dev", dev)
                _run("ip", *ns, "link", "set", dev, "up")
            _run("ip", "-n", netns, "link", "set", "lo", "up")
        user = user or getpass.getuser()
        key, known_hosts, sshd_config = _write_ssh_files(workdir, remote, user, sshd_options or {})
        sshd_log = workdir / "sshd.log"
        _run(SSHD, "-t", "-f", str(sshd_config))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", netns, SSHD, "-D", "-f", str(sshd_config), "-E", str(sshd_log)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        cleanup.callback(_quietly, _stop_netns_processes, netns, sshd)
        _wait_for_sshd(remote, 22, sshd, sshd_log)
        yield WanRemote(
            host=remote, port=22, user=user, key_path=key, known_hosts_path=known_hosts, local_address=local,
            netns=netns, link=LinkSpec(rtt_ms=0.0, rate_mbit=0.0, mtu=LAN_MTU), workdir=workdir,
            sshd_log=sshd_log, emulator_pid=0,
        )  # fmt: skip
    finally:
        with _signals_held():
            cleanup.close()
