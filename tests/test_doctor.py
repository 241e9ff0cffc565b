"""`mediasyncd doctor`: the pure decisions (facts in, check lines out) one by one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mediasyncd.config import DaemonConfig, PurgeConfig, RemoteConfig
from mediasyncd.doctor.checks import (
    Check,
    LocalFacts,
    Reached,
    Section,
    Unreached,
    exit_code,
    forge_hint,
    local_checks,
    remote_checks,
    render,
    summary,
)
from mediasyncd.sources import Capabilities
from mediasyncd.sources.survey import RootSurvey, Survey

# ------------------------------------------------------------------------------------ pure decisions

ROOT = "/workspace/stable-diffusion-webui/outputs"
REMOTE = RemoteConfig(name="gpu", host="box", port=2222, user="root", roots=(ROOT,))
CAPS = Capabilities(find_printf=True, hasher="sha256sum", tar=True)
DAEMON = DaemonConfig(library=Path("/srv/media"), state_dir=Path("/var/lib/mediasyncd"))
LOCAL = LocalFacts(True, True, Path("/srv/media"), 10 << 30, True, True)


def reached(*roots: RootSurvey, python: str | None = "3.10.12", watches: int | None = 8192) -> Reached:
    survey = Survey(roots or (RootSurvey(ROOT, "dir", writable=True, dirs=12),), True, python, watches)
    return Reached(CAPS, True, survey, {r.root: 5 << 30 for r in survey.roots})


def levels(section: Section) -> list[tuple[str, str]]:
    return [(c.level, c.text) for c in section.checks]


def test_forge_hint_names_the_checkout_in_either_direction() -> None:
    """`stable-diffusion-webui` missing beside `-forge` suggests the Forge root, and the other way round;
    anything else gets no hint."""
    assert forge_hint(ROOT, "/workspace", ["stable-diffusion-webui-forge/", "models/"]) == (
        "Forge's checkout is named stable-diffusion-webui-forge; "
        'set roots = ["/workspace/stable-diffusion-webui-forge/outputs"]'
    )
    back = forge_hint("/w/stable-diffusion-webui-forge/outputs", "/w", ["stable-diffusion-webui/"])
    assert back is not None and back.endswith('set roots = ["/w/stable-diffusion-webui/outputs"]')
    assert forge_hint(ROOT, "/workspace", ["ComfyUI/"]) is None
    assert forge_hint(ROOT, "/workspace/stable-diffusion-webui", ["stable-diffusion-webui-forge/"]) is None


def test_a_good_remote_is_all_ok() -> None:
    """Every fact in order: one ok line each, exit 0."""
    section = remote_checks(REMOTE, reached())
    assert section.title == "remote gpu (root@box:2222)"
    assert {level for level, _ in levels(section)} == {"ok"} and exit_code([section]) == 0
    assert ("ok", f"root {ROOT}: a directory, 5.0 GiB free") in levels(section)


def test_a_missing_root_fails_with_a_few_parent_names_and_a_count_of_the_rest() -> None:
    """The FAIL line shows the parent, its first names and how many more there are."""
    names = tuple(f"d{i}/" for i in range(10))
    root = RootSurvey(ROOT, "missing", parent="/workspace", names=names, more=5)
    (fail,) = [c for c in remote_checks(REMOTE, reached(root)).checks if c.level == "fail"]
    assert fail.text == f"root {ROOT} does not exist"
    assert fail.detail == (
        "nearest existing parent: /workspace",
        "  " + "  ".join(names[:8]) + "  … and 7 more",
    )


def test_an_unreached_remote_is_one_failure_with_its_reason() -> None:
    section = remote_checks(REMOTE, Unreached("cannot connect to box: timed out"))
    assert levels(section) == [("fail", "cannot connect to box: timed out")] and exit_code([section]) == 1


@pytest.mark.parametrize(
    ("python", "level"), [(None, "warn"), ("3.6.9", "warn"), ("3.8.0", "ok"), ("3.12.1", "ok"), ("x", "warn")]
)
def test_python_below_3_8_or_missing_is_a_warning_not_a_failure(python: str | None, level: str) -> None:
    """The remote agent needs Python 3.8+; without it polling still works."""
    (check,) = [c for c in remote_checks(REMOTE, reached(python=python)).checks if "python3" in c.text]
    assert check.level == level


def test_an_inotify_limit_below_the_directory_count_is_a_warning() -> None:
    """max_user_watches below the directories under the roots warns; an unreadable limit warns too."""
    root = RootSurvey(ROOT, "dir", writable=True, dirs=9000)
    checks = remote_checks(REMOTE, reached(root, watches=8192)).checks
    assert any(c.level == "warn" and "below the 9000 directories" in c.text for c in checks)
    checks = remote_checks(REMOTE, reached(watches=None)).checks
    assert any(c.level == "warn" and c.text.startswith("no inotify limit") for c in checks)


def test_missing_tools_are_warnings_that_say_what_they_cost() -> None:
    """No find -printf, tar or SHA-256 tool: each a warning; no shell at all: one warning for all."""
    bare = replace(reached(), caps=Capabilities())
    warned = [c.text for c in remote_checks(REMOTE, bare).checks if c.level == "warn"]
    assert [w.split(":")[0] for w in warned] == [
        "no GNU find with -printf",
        "no GNU tar",
        "no SHA-256 tool (sha256sum or openssl)",
    ]
    no_shell = Reached(
        Capabilities(), False, Survey((RootSurvey(ROOT, "dir"),), host_known=False), {ROOT: None}
    )
    section = remote_checks(REMOTE, no_shell)
    assert [c.level for c in section.checks] == ["ok", "ok", "warn", "warn"]
    assert section.checks[1].text.endswith("free space unknown")
    assert section.checks[3].text == f"purge: cannot tell whether root {ROOT} is writable (no shell)"


def test_purge_permission_is_checked_only_when_purge_deletes() -> None:
    """A read-only root warns when purge is live; with dry_run it is not asked."""
    readonly = RootSurvey(ROOT, "dir", writable=False, dirs=1)
    live = remote_checks(REMOTE, reached(readonly)).checks
    assert any(c.level == "warn" and c.text.startswith(f"purge: root {ROOT} is not writable") for c in live)
    dry = replace(REMOTE, purge=PurgeConfig(dry_run=True))
    assert not any("purge" in c.text for c in remote_checks(dry, reached(readonly)).checks)


def test_local_checks_library_missing_warns_state_dir_unwritable_fails() -> None:
    """A missing library (a NAS may mount late) is a warning; a state dir that cannot be written fails."""
    facts = LocalFacts(False, False, None, None, False, False)
    section = local_checks(DAEMON, facts, remotes=0)
    assert [c.level for c in section.checks] == ["warn", "fail", "warn"]
    assert "a NAS may mount late" in section.checks[0].text
    assert section.checks[2].text.startswith("no [[remotes]] configured")


def test_local_checks_report_free_space_and_the_mount() -> None:
    """The library's free space and whether it is a mount point; below library_min_free warns."""
    (lib, state) = local_checks(DAEMON, LOCAL, remotes=1).checks
    assert lib == Check("ok", "library /srv/media: 10.0 GiB free, a mount point")
    assert state == Check("ok", "state dir /var/lib/mediasyncd: writable")
    on_root = replace(LOCAL, library_mount=Path("/"), library_free=1 << 20)
    (lib, _) = local_checks(DAEMON, on_root, remotes=1).checks
    assert lib.level == "warn" and "below daemon.library_min_free (1.0 GiB)" in lib.text
    (lib, _) = local_checks(replace(DAEMON, library_min_free=0), on_root, remotes=1).checks
    assert lib.text.endswith("on the filesystem mounted at /")


def test_render_marks_every_line_readably_without_colour() -> None:
    """One line per check with a fixed-width mark; details indented under the text."""
    section = Section("remote gpu", (Check("ok", "a"), Check("warn", "b"), Check("fail", "c", ("d",))))
    assert render(section) == "remote gpu\n  ok    a\n  warn  b\n  FAIL  c\n        d"
    assert summary([section]) == "1 check failed, 1 warning"
    assert summary([Section("x", (Check("ok", "a"),))]) == "all checks passed"
