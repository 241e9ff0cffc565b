"""Terminal progress (rich) for `sync --once` and `status --watch`, drawn from a StatusView snapshot."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from mediasyncd.progress import StatusView
from mediasyncd.units import format_size


def render(snapshot: dict[str, Any]) -> Group:
    parts: list[Any] = []
    for r in snapshot["remotes"]:
        head = Table.grid(padding=(0, 2))
        head.add_row(
            f"[bold]{r['name']}[/]",
            r["state"],
            f"landed {r['landed_files']} ({format_size(r['landed_bytes'])})",
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
    return Group(*parts)


class ProgressDisplay:
    def __init__(self, view: StatusView) -> None:
        self.view = view
        self.live = Live(render(view.snapshot()), console=Console(stderr=True), auto_refresh=False)

    def __enter__(self) -> ProgressDisplay:
        self.live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.__exit__(et, e, tb)

    def refresh(self) -> None:
        self.live.update(render(self.view.snapshot()), refresh=True)
