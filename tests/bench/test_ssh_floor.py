"""bench.ssh_floor's floors do the work they claim: against the real sshd, `floor verified` lands every
file byte for byte (names with spaces, nested folders) and `floor read` lands none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.endpoints import loopback_endpoint
from bench.ssh_floor import KeptFloor, _floor_run, _report
from bench.tools import RunStats


@pytest.mark.parametrize("mode", ["verified", "read"])
def test_a_floor_lands_every_file_whole_or_none(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "data"
    files = {f"d{i % 3}/f {i}.png": os.urandom(50_000 + i * 7_001) for i in range(9)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    names = tmp_path / "names.json"
    names.write_text(json.dumps(list(files)))
    with loopback_endpoint(tmp_path / "sshd") as endpoint:
        stats = _floor_run(mode, endpoint, root, names, tmp_path / "run")
    dest = tmp_path / "run" / "dest"
    landed = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert landed == (files if mode == "verified" else {})
    assert stats.wall_s > 0 and stats.cpu_s > 0


def test_the_kept_floor_lands_what_is_new_and_only_that(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = {f"d{i % 2}/f {i}.png": os.urandom(30_000 + i) for i in range(5)}
    later = {"new/g 1.png": os.urandom(70_000), "d0/g 2.png": os.urandom(1_000)}

    def write(files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)

    def landed(dest: Path) -> dict[str, bytes]:
        return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}

    write(first)
    with loopback_endpoint(tmp_path / "sshd") as endpoint:
        floor = KeptFloor(endpoint, root, tmp_path / "kept")
        floor.pull(120)
        assert landed(floor.dest) == first
        write(later)
        floor.pull(120)
        assert landed(floor.dest) == first | later
        (floor.dest / "d0" / "f 0.png").unlink()  # known: a nothing-new pass does not fetch it again
        floor.pull(120)
    assert set(landed(floor.dest)) == set(first | later) - {"d0/f 0.png"}
    assert set(json.loads((tmp_path / "kept" / "known.json").read_text())) == set(first | later)


def test_a_floor_process_imports_none_of_the_benchmark() -> None:
    """Its start-up is counted: the floor is the least a pull imports, not bench.ab or the test sshd."""
    code = "import sys, bench.floor_child; print(sorted(m for m in sys.modules if m.split('.')[0] in ('bench', 'tests')))"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert out.stdout.strip() == "['bench', 'bench.floor_child']"


def test_the_report_gives_each_tool_against_rsync_and_the_raw_channel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """100 MB in 10 s is 10 MB/s: half a 20 MB/s raw channel, and twice rsync's speed at 20 s."""
    samples = {
        "rsync": [RunStats(20.0, 2.0, 12, 3.0)],
        "mediasyncd": [RunStats(10.0, 5.0, 50, 6.0)],
    }
    _report("PNG", 200, 100.0, samples, 1, 1.0, "wan 40 ms", 20.0)
    rows = {line.split(" | ")[0].strip("| "): line for line in capsys.readouterr().out.splitlines()}
    assert "| 10.00 | 10.0 | 5.00 |" in rows["mediasyncd"]
    assert rows["mediasyncd"].endswith("| 2.00× | 2.50× | 0.500× |")
    assert rows["rsync"].endswith("| 1.00× | 1.00× | 0.250× |")
