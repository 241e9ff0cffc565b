"""What a fault scenario reports: counted figures against their targets, and the Markdown they become.

A scenario module under bench/faults/ exposes

    TITLE: str                      # the section heading, e.g. "Crash: kill -9 of run"
    PROMISE: str                    # one line: what the anchors promise (rclone move, rsync --partial, ...)
    def run(mode: Mode, work: Path) -> Section

and is listed in bench/faults/scenarios.py. `run` is synchronous (it may call asyncio.run inside), starts
and stops every process it needs, and only counts: every figure is measured, none is typed in.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum


class Mode(Enum):
    QUICK = "quick"  # what scripts/test runs: the whole harness in at most ~3 minutes
    FULL = "full"  # the figures for docs/reliability.md


@dataclass(frozen=True)
class Figure:
    """One counted thing. `target` is the bound it must meet; `ok` says whether it did."""

    name: str  # e.g. "partial files visible after restart"
    value: float | int | str
    target: str = "0"  # human text, e.g. "0", "≤ 10 %", "every file"
    ok: bool = True

    @staticmethod
    def zero(name: str, value: int) -> Figure:
        """The common case: a count that must be 0."""
        return Figure(name, value, "0", value == 0)

    @staticmethod
    def at_least(name: str, value: float, bound: float, unit: str = "") -> Figure:
        return Figure(name, value, f"≥ {bound:g}{unit}", value >= bound)

    @staticmethod
    def at_most(name: str, value: float, bound: float, unit: str = "") -> Figure:
        return Figure(name, value, f"≤ {bound:g}{unit}", value <= bound)

    @staticmethod
    def info(name: str, value: float | int | str) -> Figure:
        """Reported, not judged (e.g. bytes resumed, repetitions run)."""
        return Figure(name, value, "—", True)


@dataclass
class Section:
    title: str
    promise: str
    runs: int  # repetitions done
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each: what was done, what was found
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.figures) and bool(self.figures)

    def failures(self) -> list[Figure]:
        return [f for f in self.figures if not f.ok]


def _cell(v: float | int | str) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return v.replace("|", "\\|")


def markdown(sections: Sequence[Section], mode: Mode, command: str, now: datetime.datetime) -> str:
    lines = [
        "# Reliability: what breaks, and what mediasyncd does then",
        "",
        f"Every figure below was produced by `{command}` on {now:%Y-%m-%d} "
        f"({mode.value} mode, {platform.machine()}, {platform.system()} {platform.release()}). "
        "Re-run that command to reproduce them; it rewrites this file.",
        "",
        "| scenario | runs | result | time |",
        "|---|---|---|---|",
    ]
    for s in sections:
        verdict = "all targets met" if s.ok else f"{len(s.failures())} target(s) missed"
        lines.append(f"| {s.title} | {s.runs} | {verdict} | {s.seconds:.0f} s |")
    for s in sections:
        lines += ["", f"## {s.title}", "", f"*Anchor:* {s.promise}", ""]
        lines += ["| figure | value | target | met |", "|---|---|---|---|"]
        for f in s.figures:
            lines.append(f"| {f.name} | {_cell(f.value)} | {f.target} | {'yes' if f.ok else '**no**'} |")
        if s.notes:
            lines.append("")
            lines += [f"- {n}" for n in s.notes]
    return "\n".join(lines) + "\n"
