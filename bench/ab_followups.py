"""bench.ab's `--scenario noop` and `--scenario incremental`: runs into a library that already holds the dataset.

    sudo .venv/bin/python -m bench.ab --rev A --rev B --scenario noop --repeat 7
    sudo .venv/bin/python -m bench.ab --rev A --rev B --scenario incremental --repeat 5

Each tool (every --rev and rsync) first pulls the dataset once, unmeasured, into its own directory, which
it keeps for the whole run. Then, interleaved as bench.ab's full pulls are:

- noop: the tool runs again with nothing new on the remote (mediasyncd: the whole `sync --once`
  process, start to exit; rsync: a whole no-op `rsync -a -e ssh`);
- incremental: +50 PNGs (bench.run's `PngFactory`, mtimes an hour old, so settled) appear in a folder of
  their own on the remote, the tool pulls them (measured; every new file checked to have landed
  with its size), then the folder is removed on the remote and the tool runs once more, unmeasured,
  so that the next repetition starts again from the dataset alone.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.datasets import Dataset, PngFactory, clean_extras, scan, tree_totals
from bench.endpoints import Endpoint
from bench.tools import Mediasyncd, MediasyncdOptions, Rsync, RunStats, Tool, ToolFailed

SCENARIOS = ("pull", "noop", "incremental")
INCREMENTAL_FILES = 50
R = TypeVar("R")
INCREMENTAL_DIR = "9999-incremental"  # one of bench.datasets.EXTRA_DIRS: removed if a run is cut


class Kept:
    """The tools of one run, each with the directory it keeps from one repetition to the next."""

    def __init__(
        self,
        tools: dict[str, MediasyncdOptions | None],
        dataset: Dataset,
        endpoint: Endpoint,
        work: Path,
        timeout_s: float,
        png_size: int = 512,
    ) -> None:
        self.dataset, self.timeout_s = dataset, timeout_s
        clean_extras(dataset.root)
        self.tools: dict[str, Tool] = {}
        for i, (name, options) in enumerate(tools.items()):
            place = work / f"kept-{i}"
            shutil.rmtree(place, ignore_errors=True)
            self.tools[name] = (
                Rsync(endpoint, dataset.root, place)
                if options is None
                else Mediasyncd(endpoint, dataset.root, place, options)
            )
        self.factory = PngFactory(png_size, random.Random(21), pool=8)
        self.count = 0

    def prime(self, say: Callable[[str], None]) -> None:
        """The first, unmeasured pull of the whole dataset by every tool."""
        for name, tool in self.tools.items():
            stats = tool.pull(self.timeout_s)
            _expect(tool, (self.dataset.files, self.dataset.bytes))
            say(f"primed {name}: {stats.wall_s:.2f} s")

    def run(self, scenario: str, name: str) -> RunStats:
        return self.around(scenario, name, lambda: self.tools[name].pull(self.timeout_s))

    def around(self, scenario: str, name: str, pull: Callable[[], R]) -> R:
        """`pull` (the tool's measured run) in the scenario's setting; what it returns."""
        tool = self.tools[name]
        if scenario == "noop":
            _write_back()
            return pull()
        self.count += 1
        folder = self.dataset.root / "txt2img-images" / INCREMENTAL_DIR / f"{self.count:03d}"
        folder.mkdir(parents=True)
        try:
            for j in range(INCREMENTAL_FILES):
                self.factory.write(folder, j)
            added = scan("incremental", folder)
            _write_back()
            result = pull()
            landed = tree_totals(tool.dest / folder.relative_to(self.dataset.root))
            if landed != (added.files, added.bytes):
                raise ToolFailed(f"{name}: incremental landed {landed}, expected {added.files, added.bytes}")
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)
        tool.pull(self.timeout_s)  # back to the dataset alone (mediasyncd notes the folder gone)
        return result


def _write_back() -> None:
    """Write back dirty pages first (as bench.run does), so no tool pays for the one before it."""
    os.sync()


def _expect(tool: Tool, files_bytes: tuple[int, int]) -> None:
    got = tree_totals(tool.dest)
    if got != files_bytes:
        raise ToolFailed(f"{tool.name}: the first pull landed {got}, expected {files_bytes}")
