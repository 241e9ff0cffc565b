"""The round trip of an SSH connection's TCP link, as the kernel measured it (Linux `TCP_INFO`): free, no
packet sent. It tells a box next door (loopback, a LAN: well under a millisecond) from a far-away
container (tens of milliseconds), where the CPU, not the link, sets a pull's pace.

`tcpi_min_rtt` (Linux 4.6+) is the smallest round trip seen, without the queueing delay a busy link adds;
older kernels give the smoothed `tcpi_rtt` only. A connection that is not a TCP socket of this machine
(a ProxyCommand's pipe) or a kernel without `TCP_INFO` has no figure: None.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

FAST_LINK = 0.005  # seconds of round trip at most for a link where the CPU sets the pace (loopback, LAN)
FAST_STREAM_BELOW = 8 << 20  # on a fast link, files below this come in tar streams (`stream_below`)
RTT_AT = 68  # struct tcp_info: __u32 tcpi_rtt (µs)
MIN_RTT_AT = 148  # __u32 tcpi_min_rtt (µs), Linux 4.6+; 0 before any sample
TCP_INFO_BYTES = 256


def parse_tcp_info(raw: bytes) -> float | None:
    """Seconds of round trip from a `struct tcp_info`: the minimum seen where the kernel gives it, else
    the smoothed one; None when the buffer holds neither or no sample was taken."""
    for at in (MIN_RTT_AT, RTT_AT):
        if len(raw) >= at + 4:
            (micros,) = struct.unpack_from("=I", raw, at)
            if micros:
                return float(micros) / 1e6
    return None


def tcp_round_trip(sock: Any) -> float | None:
    """The kernel's round trip of `sock` (a connected TCP socket), or None."""
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, TCP_INFO_BYTES)
    except (OSError, AttributeError, TypeError):
        return None
    return parse_tcp_info(raw) if isinstance(raw, bytes) else None


def fast_link(round_trip: float | None) -> bool:
    """A round trip within FAST_LINK: the CPU, not the link, sets a pull's pace (unknown: not fast)."""
    return round_trip is not None and round_trip <= FAST_LINK


def tar_streams(round_trip: float | None) -> int:
    """How many tar streams of small files share the byte budget at once (`Capabilities.streams`).

    On a fast link (a round trip within FAST_LINK) 2: the CPU sets the pace there, each stream's remote
    shell costs an exec (~0.1 CPU-s behind a heavy rc file) and both ends share the cores; measured on
    loopback, 2,000 × 100 KB came in 3 shells instead of 5, 0.56× → 0.62× rsync's files/s (LAN veth
    0.61× → 0.64×), each stream holding twice the bytes (peak RSS +15 MB). Elsewhere, and when the round
    trip is unknown, 4: over a 40 ms link two streams left it emptier (1.09× → 1.05× rsync).
    docs/benchmarks.md, issue 21's third and fourth passes."""
    return 2 if fast_link(round_trip) else 4


def stream_below(round_trip: float | None) -> int:
    """On a fast link, files below FAST_STREAM_BELOW come in tar streams whatever `batch_below` says
    (`Capabilities.stream_below`; `batch_below = 0` still turns streams off); elsewhere 0.

    One SFTP file costs this side more CPU than one tar member: 200 SD-sized PNGs (~1.7 MB) on
    loopback took 2.68 s and 2.28 CPU-s through SFTP, 2.14 s and 1.60 CPU-s through tar streams (0.53×
    → 0.67× rsync); +50 PNGs on top of 20,000 known files 0.97 → 0.92 s. Over the 40 ms link streams
    were as fast (1.12× rsync both) with 22 % less local CPU, but kept to SFTP there: a file that came
    by SFTP resumes from its partial after a cut, a tar member starts over. docs/benchmarks.md, issue
    21's fifth and sixth passes."""
    return FAST_STREAM_BELOW if fast_link(round_trip) else 0
