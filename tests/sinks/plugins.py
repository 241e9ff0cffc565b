"""Installing sink plug-ins for the tests by path: the example package (`examples/jsonl-sink`) and the
tests' own misbehaving plug-ins, each with a `.dist-info` whose `entry_points.txt` registers it in the
group `mediasyncd.sinks` — what `pip install` leaves behind, without a build or an index."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mediasyncd.sinks import EventRejected

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "jsonl-sink"


def install(site: Path) -> Path:
    """Make `site` a directory to put on sys.path / PYTHONPATH; returns it."""
    site.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(
        EXAMPLE / "src" / "mediasyncd_jsonl_sink", site / "mediasyncd_jsonl_sink", dirs_exist_ok=True
    )
    points = project["entry-points"]["mediasyncd.sinks"]
    _dist_info(site, project["name"].replace("-", "_"), project["version"], points)
    _dist_info(
        site, "mediasyncd_test_plugins", "0",
        {"crashing": "tests.sinks.plugins:crashing", "picky": "tests.sinks.plugins:picky"},
    )  # fmt: skip
    return site


def _dist_info(site: Path, name: str, version: str, points: Mapping[str, str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in points.items())
    (info / "entry_points.txt").write_text(f"[mediasyncd.sinks]\n{lines}")


class Crashing:
    """Fails its first `times` deliveries in the worst ways a plug-in can: SystemExit, a bug, a hang."""

    failures: int = 0

    def __init__(self, times: int, path: Path) -> None:
        self.times = times
        self.path = path

    async def open(self) -> None:
        pass

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> None:
        Crashing.failures += 1
        if Crashing.failures <= self.times:
            kind = Crashing.failures % 3
            if kind == 1:
                raise SystemExit(3)
            if kind == 2:
                raise ZeroDivisionError("plug-in bug")
            await asyncio.sleep(3600)
        with self.path.open("a") as f:
            f.write("".join(f"{e['id']}\n" for e in events))

    async def close(self) -> None:
        pass


class Picky(Crashing):
    """Rejects events whose id is in `reject`."""

    def __init__(self, reject: Sequence[int], path: Path) -> None:
        super().__init__(0, path)
        self.reject = set(reject)

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> None:
        bad = [e["id"] for e in events if e["id"] in self.reject]
        if bad:
            raise EventRejected(f"no thanks: {bad}")
        with self.path.open("a") as f:
            f.write("".join(f"{e['id']}\n" for e in events))


def crashing(name: str, options: Mapping[str, Any]) -> Crashing:
    return Crashing(int(options["times"]), Path(options["path"]))


def picky(name: str, options: Mapping[str, Any]) -> Picky:
    return Picky(options["reject"], Path(options["path"]))
