"""bench.ssh_floor's floors do the work they claim: against the real sshd, `floor verified` lands every
file byte for byte (names with spaces, nested folders) and `floor read` lands none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.endpoints import loopback_endpoint
from bench.ssh_floor import _floor_run


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
