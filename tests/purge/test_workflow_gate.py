"""`[workflow] purge_after`: a file leaves the real OpenSSH remote only once those stages are verified."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mediasyncd.purge.eligibility import Reason, Rules, Seen, screen
from mediasyncd.state import FileState
from mediasyncd.state.purge import Tracked
from mediasyncd.workflow_cli import run_main
from tests.helpers import once
from tests.purge.conftest import on_remote, purge, purge_env, reasons
from tests.sshd import SshServer
from tests.workflow.conftest import set_workflow

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(20_000)


def test_purge_waits_for_the_archive_and_says_so(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the archive unmounted, old verified files stay on the remote, `purge --dry-run` names
    "waiting for archive"; once archived, the same purge deletes them."""
    env = purge_env(tmp_path, sshd)
    nas = tmp_path / "nas"
    set_workflow(
        env.config_path, {"stages": ["archive"], "purge_after": ["archive"], "archive": {"dest": str(nas)}}
    )
    env.write("a.png", PNG)
    env.write("sub/b.png", PNG[::-1])
    assert once(env) == 0
    capsys.readouterr()

    assert purge(env, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "keep " in out and "waiting for archive" in out
    assert purge(env) == 0
    assert on_remote(env) == {"a.png", "sub/b.png"}
    assert set(reasons(env).values()) == {str(Reason.WAITING_ARCHIVE)}

    nas.mkdir()
    assert run_main(env.config(), first=None, last=None, dry_run=False, paths=()) == 0
    assert (nas / "r1/sub/b.png").read_bytes() == PNG[::-1]
    assert purge(env) == 0
    assert on_remote(env) == set()
    assert (env.library / "r1/a.png").read_bytes() == PNG


def test_only_archived_files_go(tmp_path: Path, sshd: SshServer) -> None:
    """A file whose archive failed (a different file is in the way) stays; the archived one goes."""
    env = purge_env(tmp_path, sshd)
    nas = tmp_path / "nas"
    (nas / "r1").mkdir(parents=True)
    (nas / "r1/a.png").write_bytes(b"not ours")
    set_workflow(
        env.config_path, {"stages": ["archive"], "purge_after": ["archive"], "archive": {"dest": str(nas)}}
    )
    env.write("a.png", PNG)
    env.write("b.png", PNG[::-1])
    assert once(env) == 0
    assert purge(env) == 0
    assert on_remote(env) == {"a.png"}
    assert reasons(env)["a.png"] == str(Reason.WAITING_ARCHIVE)


def test_screen_holds_a_file_waiting_for_a_stage_even_for_space() -> None:
    """The gate comes before age, so min_free never chooses a file that waits for a stage."""
    row = Tracked(1, "/r", "a.png", 10, 0.0, FileState.LANDED, "x" * 64, "r1/a.png")
    rules = Rules(older_than=60, min_free=1 << 40)
    seen = Seen(10, 0.0)
    assert (
        screen(row, seen, age=10, rules=rules, local_missing=False, waiting="archive")
        is Reason.WAITING_ARCHIVE
    )
    assert screen(row, seen, age=10, rules=rules, local_missing=False) is Reason.TOO_YOUNG
    assert screen(row, seen, age=time.time(), rules=rules, local_missing=False) is None
    assert Reason.WAITING_ARCHIVE.text.startswith("waiting for archive")
