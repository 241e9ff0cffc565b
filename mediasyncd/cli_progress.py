"""Terminal progress (rich) for `sync --once` and `status --watch`, drawn from a StatusView snapshot.

`sync --once` adds a header line for this run (files and bytes done of what it set out to do, rate, ETA,
like rclone's `--progress`); `status --watch` shows each remote's lifetime counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from mediasyncd.progress import StatusView
from mediasyncd.units import format_size


@dataclass(frozen=True)
class RunTotals:
    """What one `sync --once` run set out to transfer and how far it got."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


def run_line(totals: RunTotals, elapsed: float) -> str:
    """`this run: 120/403 files, 150 MiB/300 MiB (50%), 12 MiB/s, ETA 0:12` (pure, for the header)."""
    if totals.files_total == 0:
        return "this run: looking for new files"
    share = (
        totals.bytes_done / totals.bytes_total
        if totals.bytes_total
        else totals.files_done / totals.files_total
    )
    line = (
        f"this run: {totals.files_done}/{totals.files_total} files, "
        f"{format_size(totals.bytes_done)}/{format_size(totals.bytes_total)} ({share:.0%})"
    )
    rate = totals.bytes_done / elapsed if elapsed > 0 else 0.0
    if rate > 0:
        line += f", {format_size(rate)}/s"
        if totals.bytes_done < totals.bytes_total:
            line += f", ETA {_clock((totals.bytes_total - totals.bytes_done) / rate)}"
    return line


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def render(snapshot: dict[str, Any], run: str | None = None, recent: Sequence[str] = ()) -> Group:
    """Each remote with its bars; `run` is `sync --once`'s header, `recent` the latest arrivals."""
    parts: list[Any] = [f"[bold]{run}[/]"] if run is not None else []
    for r in snapshot["remotes"]:
        head = Table.grid(padding=(0, 2))
        head.add_row(
            f"[bold]{r['name']}[/]",
            r["state"],
            f"landed {r['landed_files']} ({format_size(r['landed_bytes'])}) all time",
            f"queued {r['queued']}",
            f"settling {r['settling']}",
            f"failed {r['failed_files']}" if r["failed_files"] else "",
        )
        parts.append(head)
        if r.get("last_error"):
            parts.append(f"  [red]{r['last_error']}[/]")
        files = Table.grid(padding=(0, 1))
        for f in r["in_flight"][:10]:
            total = max(f["size"], 1)
            rate = f"{format_size(f['rate_bps'])}/s" if f["rate_bps"] else ""
            files.add_row(
                "  " + f["path"][-60:], ProgressBar(total=total, completed=f["bytes_done"], width=30), rate
            )
        parts.append(files)
    if recent:
        parts.append("[bold]recent arrivals[/]")
        parts += [f"  {line}" for line in recent]
    return Group(*parts)


def arrival_line(event: dict[str, Any]) -> str:
    """One `file_synced` event as a line of the recent-arrivals list (pure)."""
    clock = str(event.get("time", ""))[11:19]
    size = event.get("data", {}).get("size")
    sized = f" ({format_size(size)})" if isinstance(size, int) else ""
    return f"{clock}  {event.get('remote')}: {event.get('path')}{sized}"


class ProgressDisplay:
    def __init__(self, view: StatusView, run: Callable[[], RunTotals] | None = None) -> None:
        self.view = view
        self.run = run
        self.started = time.monotonic()
        self.live = Live(self._render(), console=Console(stderr=True), auto_refresh=False)

    def _render(self) -> Group:
        snapshot = self.view.snapshot()
        if self.run is None:
            return render(snapshot)
        return render(snapshot, run_line(self.run(), time.monotonic() - self.started))

    def __enter__(self) -> ProgressDisplay:
        self.live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.__exit__(et, e, tb)

    def refresh(self) -> None:
        self.live.update(self._render(), refresh=True)
