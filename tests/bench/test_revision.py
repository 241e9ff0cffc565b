"""`bench.run --mediasyncd-rev REV` benchmarks REV, not the work tree."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.tools import REPO, MediasyncdOptions, export_revision


def test_an_exported_revision_is_what_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--mediasyncd-rev`: the exported copy runs, not the repository's work tree, even when the
    benchmark is started from the repository (where `python -m` would find the work tree first)."""
    source = export_revision("HEAD", tmp_path / "rev")
    init = source / "mediasyncd" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', '__version__ = "9.9.9-exported"', init.read_text()))
    options = MediasyncdOptions(source=source)
    monkeypatch.chdir(REPO)
    done = subprocess.run(
        options.command("--version"), env=os.environ | (options.env() or {}), capture_output=True, text=True
    )
    assert done.stdout.strip() == "mediasyncd 9.9.9-exported"
