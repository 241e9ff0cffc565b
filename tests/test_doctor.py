"""`mediasyncd doctor` / `config check --connect`: against a real sshd end to end, and the pure decisions
(facts in, check lines out) one by one."""

from __future__ import annotations

import os
import subprocess
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
from tests.helpers import MEDIASYNCD, make_env, remote_table, write_config
from tests.sshd import SshServer, start_sshd


def doctor(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("MEDIASYNCD_CONFIG", "JOURNAL_STREAM")}
    return subprocess.run(
        [MEDIASYNCD, *args], capture_output=True, text=True, env={**base, "HOME": str(home)}, timeout=60
    )


def marked(stdout: str, level: str) -> list[str]:
    """The check lines of one level, without their mark."""
    return [line.strip()[4:].strip() for line in stdout.splitlines() if line.strip().startswith(level)]


# ------------------------------------------------------------------------------------ real sshd


def test_a_good_remote_passes_every_check(tmp_path: Path, sshd: SshServer) -> None:
    """A reachable remote with its root in place: every line is ok, exit 0."""
    env = make_env(tmp_path, sshd)
    env.write("txt2img-images/2024-05-01/00001-1.png", b"png")
    r = doctor("doctor", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not marked(r.stdout, "FAIL") and not marked(r.stdout, "warn")
    ok = "\n".join(marked(r.stdout, "ok"))
    for expected in (
        f"library {env.library}:",
        "connected; host key accepted",
        f"root {env.remote_root}: a directory,",
        "find -printf",
        "tar (GNU)",
        "SHA-256 on the remote:",
        "python3 3.",
        "for 3 directories under the roots",
        "purge: every root is writable",
    ):
        assert expected in ok, r.stdout
    assert r.stdout.rstrip().endswith("all checks passed")


def test_a_missing_root_fails_showing_its_parent_and_the_forge_hint(tmp_path: Path, sshd: SshServer) -> None:
    """A root under `stable-diffusion-webui` next to a `stable-diffusion-webui-forge` checkout: exit 1, the
    nearest existing parent's names, and the root Forge's checkout would give."""
    workspace = tmp_path / "workspace"
    (workspace / "stable-diffusion-webui-forge" / "outputs").mkdir(parents=True)
    (workspace / "models").mkdir()
    (workspace / "notes.txt").write_text("")
    env = make_env(tmp_path, sshd)
    missing = workspace / "stable-diffusion-webui" / "outputs"
    write_config(
        env.config_path, env.library, env.state_dir, [remote_table(sshd, "forge", missing, kind="forge")]
    )
    r = doctor("config", "check", "--connect", str(env.config_path), home=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert marked(r.stdout, "FAIL") == [f"root {missing} does not exist"]
    assert f"nearest existing parent: {workspace}\n" in r.stdout
    assert "  models/  notes.txt  stable-diffusion-webui-forge/\n" in r.stdout
    hint = f'set roots = ["{workspace}/stable-diffusion-webui-forge/outputs"]'
    assert "hint: Forge's checkout is named stable-diffusion-webui-forge; " + hint in r.stdout
    assert r.stdout.rstrip().endswith("1 check failed, 0 warnings")


@pytest.mark.parametrize("known", ["unknown", "changed"])
def test_a_refused_host_key_is_a_failure_with_the_connect_message(
    tmp_path: Path, sshd: SshServer, known: str
) -> None:
    """An unknown (strict policy) or changed host key fails with the message the daemon itself gives."""
    known_hosts = tmp_path / "my_known_hosts"
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known_hosts.write_text("" if known == "unknown" else f"[{sshd.host}]:{sshd.port} ssh-ed25519 {other}\n")
    env = make_env(tmp_path, sshd, known_hosts=str(known_hosts))
    r = doctor("doctor", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    (failure,) = marked(r.stdout, "FAIL")
    if known == "unknown":
        assert "is not in known_hosts" in failure and 'host_key = "accept-new"' in failure
    else:
        assert failure.startswith("REMOTE HOST KEY CHANGED") and "ssh-keygen -R" in failure


def test_an_sftp_only_remote_warns_and_still_finds_a_missing_root(
    tmp_path: Path, sshd_sftp_only: SshServer
) -> None:
    """Without a shell the doctor says what that costs (a warning) and checks the roots over SFTP."""
    env = make_env(tmp_path, sshd_sftp_only)
    missing = str(env.remote_root / "gone")
    write_config(
        env.config_path,
        env.library,
        env.state_dir,
        [
            remote_table(sshd_sftp_only, "r1", env.remote_root),
            remote_table(sshd_sftp_only, "r2", Path(missing)),
        ],
    )
    r = doctor("doctor", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert marked(r.stdout, "FAIL") == [f"root {missing} does not exist"]
    assert any(w.startswith("no remote shell (SFTP only)") for w in marked(r.stdout, "warn"))
    assert f"nearest existing parent: {env.remote_root}\n" in r.stdout


def test_a_shell_without_an_sftp_subsystem_fails_saying_what_the_server_needs(tmp_path: Path) -> None:
    """SFTP starts on first use, but the doctor needs it, and so does any file not sent by tar: a server
    with a shell and no SFTP subsystem is one failure that names the sshd_config line."""
    with start_sshd(tmp_path / "sshd", extra_config="Subsystem other /bin/false\n") as server:
        env = make_env(tmp_path, server)
        env.write("txt2img-images/2024-05-01/00001-1.png", b"png")
        r = doctor("doctor", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    (failure,) = marked(r.stdout, "FAIL")
    assert failure.startswith("connected, then: SFTP unavailable:"), failure
    assert "Subsystem sftp internal-sftp" in failure


def test_an_invalid_config_still_exits_78_before_connecting(tmp_path: Path) -> None:
    """--connect validates first: a config error is reported as by `config check`, exit 78."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nlibrary = "/srv/x"\n[transfer]\nconcurency = 4\n')
    r = doctor("config", "check", "--connect", str(bad), home=tmp_path)
    assert r.returncode == 78 and "transfer.concurency (line 4)" in r.stderr and r.stdout == ""


def test_help_names_doctor_and_its_exit_code() -> None:
    """`mediasyncd --help` lists the doctor and says a failed check exits 1."""
    top = " ".join(subprocess.run([MEDIASYNCD, "--help"], capture_output=True, text=True).stdout.split())
    assert "doctor" in top and "config check --connect` failed" in top


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
