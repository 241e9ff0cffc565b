"""`bench.run --mediasyncd-rev REV` benchmarks REV, not the work tree."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.report import git_revision
from bench.run import parse_args, plan_from
from bench.tools import REPO, MediasyncdOptions, Revision, export_revision


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


def test_a_revision_is_resolved_once_when_the_run_is_planned() -> None:
    """`--mediasyncd-rev HEAD` is pinned to a commit when the plan is made, so a commit made while the
    benchmark runs changes neither what runs nor the commit the report names."""
    plan = plan_from(parse_args(["--quick", "--mediasyncd-rev", "HEAD"]))
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert plan.mediasyncd_rev == Revision("HEAD", head.stdout.strip())
    pinned = "0123456789ab" + "c" * 28
    assert git_revision(Revision("HEAD", pinned)).startswith("commit 0123456789ab (`--mediasyncd-rev HEAD`")


def test_an_unknown_revision_stops_the_run_before_it_starts() -> None:
    """A revision git does not know ends the command at once, naming it."""
    with pytest.raises(SystemExit, match="no-such-rev"):
        plan_from(parse_args(["--quick", "--mediasyncd-rev", "no-such-rev"]))
