"""How fast the scratch filesystem takes new data: what memory this machine has not touched lately costs.

This machine is a VM whose kernel hands freed memory back to its host (free page reporting: its command
line has `page_reporting.page_reporting_order=11`). After a pull's library is removed, its pages go
back, and the next pull into an empty library faults every page in from the host again. Measured on
2026-12-04 with `dd` into /dev/shm: 2 GB into a new file 103–144 MB/s, the same file overwritten
4.6 GB/s, a new file right after one was removed (its pages not handed back yet) ~1 GB/s. Both tools of a
benchmark pay it for every byte they write, in the process that writes (rsync's receiver, beside its
ssh client; mediasyncd's event loop, beside the decryption), and how much varies from hour to hour:
rsync's own MANY pull on loopback took 6.9 to 13.4 s within one afternoon. The benchmarks print this
rate beside the load average so that runs can be compared knowingly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

BLOCK = 1 << 20
MIB = 256  # the amount written


def new_data_rate(directory: Path, mib: int = MIB) -> float:
    """MB/s (10^6 bytes) of writing `mib` MiB into a new file in `directory`, removed after; no flush."""
    path = directory / f".new-data-rate-{os.getpid()}"
    block = memoryview(b"\x5a" * BLOCK)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        for _ in range(mib):
            piece = block
            while piece:
                piece = piece[os.write(fd, piece) :]
        took = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return mib * BLOCK / 1e6 / took


def rate_line(before: float, after: float | None = None, mib: int = MIB) -> str:
    """The benchmark's line: the rate at its start (and end), each of `mib` MiB."""
    end = f", {after:,.0f} MB/s at the end" if after is not None else ""
    return (
        f"writing {mib} MiB of new data into the scratch filesystem {before:,.0f} MB/s at the start{end} "
        "(memory this VM has not touched lately is slow to fault in: bench/pages.py)"
    )
