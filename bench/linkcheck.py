"""What the link itself delivers, measured in the same run: ping RTT and raw SSH channel throughput.

The raw channels (`cat /dev/zero` over OpenSSH's ssh and over asyncssh preferring aes128-gcm, as
mediasyncd does) are the ceilings the pulls are compared with; on the WAN link also linkem's CPU.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import asyncssh

from bench.endpoints import Endpoint
from bench.netem.wan import icmp_ping, ssh_cat_mbytes_per_s

ASYNCSSH_CIPHERS = ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"]


@dataclass(frozen=True)
class LinkCheck:
    ping_ms: tuple[float, float, float]  # min, median, max
    ssh_cat_mb_s: float  # OpenSSH client, `cat /dev/zero`, from the first byte
    asyncssh_cat_mb_s: float  # asyncssh, aes128-gcm preferred
    cat_bytes: int
    emulator_cpu_fraction: float | None  # linkem CPU during the OpenSSH cat (WAN only)


def check_link(endpoint: Endpoint, nbytes: int, pings: int = 20) -> LinkCheck:
    rtts = icmp_ping(endpoint.host, pings, 0.1)
    cpu_before, start = _emulator_cpu(endpoint), time.monotonic()
    ssh_rate = ssh_cat_mb_s(endpoint, nbytes)
    cpu_after, elapsed = _emulator_cpu(endpoint), time.monotonic() - start
    emulator = None
    if cpu_before is not None and cpu_after is not None:
        emulator = (cpu_after - cpu_before) / elapsed
    return LinkCheck(
        ping_ms=(min(rtts), statistics.median(rtts), max(rtts)),
        ssh_cat_mb_s=ssh_rate,
        asyncssh_cat_mb_s=asyncio.run(asyncssh_cat_mb_s(endpoint, nbytes)),
        cat_bytes=nbytes,
        emulator_cpu_fraction=emulator,
    )


def _emulator_cpu(endpoint: Endpoint) -> float | None:
    return endpoint.wan.emulator_cpu_seconds() if endpoint.wan is not None else None


def ssh_cat_mb_s(endpoint: Endpoint, nbytes: int) -> float:
    """`ssh remote 'cat /dev/zero'` read to `nbytes`, timed from the first byte (MB/s)."""
    return ssh_cat_mbytes_per_s(endpoint.ssh_command("cat /dev/zero"), nbytes)


async def asyncssh_cat_mb_s(endpoint: Endpoint, nbytes: int) -> float:
    """The same through an asyncssh channel (aes128-gcm preferred, like mediasyncd)."""
    async with asyncssh.connect(
        endpoint.host,
        endpoint.port,
        username=endpoint.user,
        client_keys=[str(endpoint.key_path)],
        known_hosts=str(endpoint.known_hosts_path),
        encryption_algs=ASYNCSSH_CIPHERS,
        compression_algs=None,
        agent_path=None,
    ) as conn:
        proc = await conn.create_process("cat /dev/zero", encoding=None)
        got = len(await proc.stdout.read(1))
        start = time.perf_counter()
        while got < nbytes:
            chunk = await proc.stdout.read(min(1 << 20, nbytes - got))
            if not chunk:
                raise RuntimeError(f"asyncssh cat ended after {got} of {nbytes} bytes")
            got += len(chunk)
        elapsed = time.perf_counter() - start
        proc.close()
    return (got - 1) / elapsed / 1e6
