"""`[workflow]`: every mistake is reported with its key and line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mediasyncd.config import parse_config
from mediasyncd.errors import ConfigError
from tests.helpers import MEDIASYNCD

BASE = '[daemon]\nlibrary = "/tmp/lib"\nstate_dir = "/tmp/state"\n'


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(BASE + text)
    return exc.value.report()


def test_a_valid_workflow_is_read_and_gates_every_remotes_purge() -> None:
    """stages, purge_after and archive.dest are read; purge_after reaches each remote's purge rules."""
    config = parse_config(
        BASE + '[[remotes]]\nname = "a"\nhost = "h"\nkind = "forge"\n'
        '[workflow]\nstages = ["archive"]\npurge_after = ["archive"]\n[workflow.archive]\ndest = "/mnt/nas"\n'
    )
    assert config.workflow.stages == ("archive",)
    assert str(config.workflow.archive.dest) == "/mnt/nas"
    assert config.remotes[0].purge.after_stages == ("archive",)


def test_no_workflow_means_no_stages_and_no_gate() -> None:
    """Without [workflow] nothing runs and purge waits for nothing."""
    config = parse_config(BASE + '[[remotes]]\nname = "a"\nhost = "h"\nkind = "forge"\n')
    assert not config.workflow.enabled
    assert config.remotes[0].purge.after_stages == ()


def test_unknown_stage_and_missing_dest_are_errors_with_lines() -> None:
    """An unknown stage name and an archive without dest are reported with key and line."""
    report = problems('[workflow]\nstages = ["archiv"]\n')
    assert "workflow.stages (line 5): unknown stage 'archiv'" in report
    report = problems('[workflow]\nstages = ["archive"]\n')
    assert "workflow.archive.dest (line 4): is required" in report


def test_purge_after_must_name_configured_stages() -> None:
    """purge_after naming a stage that does not run would hold every file forever: an error."""
    report = problems('[workflow]\nstages = []\npurge_after = ["archive"]\n')
    assert "workflow.purge_after (line 6): names 'archive', which is not in workflow.stages" in report


def test_keep_original_false_needs_archive_before_compress_and_in_purge_after() -> None:
    """keep_original = false without a verified archive first is an error at the key's line."""
    report = problems(
        '[workflow]\nstages = ["compress", "archive"]\n[workflow.archive]\ndest = "/n"\n'
        "[workflow.compress]\nkeep_original = false\n"
    )
    assert "workflow.compress.keep_original (line 9): false replaces the library file" in report


def test_compress_and_syncthing_tables_are_validated() -> None:
    """Bad values in the stage tables are errors with their keys: quality, min_saving, url, batch."""
    report = problems(
        '[workflow]\nstages = ["archive"]\n[workflow.archive]\ndest = "/n"\n'
        '[workflow.compress]\nquality = 0\nmin_saving = "150%"\nformat = "gif"\n'
        '[workflow.syncthing]\nurl = "ftp://x"\nbatch = 0\n'
    )
    for key in ("quality", "min_saving", "format"):
        assert f"workflow.compress.{key} (line" in report
    for key in ("url", "batch"):
        assert f"workflow.syncthing.{key} (line" in report


def test_syncthing_needs_its_keys() -> None:
    """The syncthing stage without api_key_file, folder, path and devices: each one is reported."""
    report = problems('[workflow]\nstages = ["syncthing"]\n[workflow.syncthing]\nbatch = 5\n')
    for key in ("api_key_file", "folder", "path", "devices"):
        assert f"workflow.syncthing.{key} (line" in report


def test_keep_original_false_is_valid_after_a_gating_archive() -> None:
    """archive before compress and in purge_after: keep_original = false is accepted."""
    config = parse_config(
        BASE + '[workflow]\nstages = ["archive", "compress"]\npurge_after = ["archive"]\n'
        '[workflow.archive]\ndest = "/n"\n[workflow.compress]\nkeep_original = false\nformat = "avif"\n'
    )
    assert not config.workflow.compress.keep_original
    assert config.workflow.compress.format == "avif"


def test_keep_original_false_without_a_gating_archive_stops_config_check_with_78(tmp_path: Path) -> None:
    """`mediasyncd config check` exits 78 and names the key when archive does not gate the purge."""
    path = tmp_path / "c.toml"
    path.write_text(
        BASE + '[workflow]\nstages = ["archive", "compress"]\n[workflow.archive]\ndest = "/n"\n'
        "[workflow.compress]\nkeep_original = false\n"
    )
    done = subprocess.run(
        [MEDIASYNCD, "config", "check", "--config", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 78
    assert "workflow.compress.keep_original (line 9)" in done.stdout + done.stderr
