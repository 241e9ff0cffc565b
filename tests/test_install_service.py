"""scripts/install-service, for real: run as root in a mount namespace (tests/service_namespace.py), with
overlays over the directories it writes so the host stays as it was. One scenario: install, check, run
the unit's ExecStart= as the service user until READY=1 and SIGTERM, install again, uninstall, purge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "tests" / "service_namespace.py"
CHECKOUT_PARTS = ["pyproject.toml", "README.md", "config.toml", "mediasyncd", "scripts", "systemd"]
HOST_PATHS = [
    "/opt/mediasyncd",
    "/etc/mediasyncd",
    "/var/lib/mediasyncd",
    "/usr/local/bin/mediasyncd",
    "/etc/systemd/system/mediasyncd.service",
    "/srv/media",
]

Facts = dict[str, Any]


def _host_state() -> tuple[str, list[bool]]:
    return Path("/etc/passwd").read_text(), [os.path.lexists(p) for p in HOST_PATHS]


@pytest.fixture(scope="module")
def host_before() -> tuple[str, list[bool]]:
    return _host_state()


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory, host_before: tuple[str, list[bool]]) -> Facts:
    """What the scenario did, run once for the module in a copy of this checkout."""
    assert os.geteuid() == 0, "the install-service test runs as root (it needs unshare -m and mount)"
    base = tmp_path_factory.mktemp("install-service")
    checkout = base / "checkout"
    checkout.mkdir()
    for part in CHECKOUT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, checkout / part)
    scratch = Path(tempfile.mkdtemp(prefix="mediasyncd-ns-", dir="/tmp"))  # reachable by the service user
    scratch.chmod(0o755)
    out = base / "facts.json"
    try:
        r = subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                sys.executable,
                str(DRIVER),
                str(checkout),
                str(scratch),
                str(out),
                "--forbid",
                str(checkout),
                "--forbid",
                str(REPO),
            ],
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
    finally:
        scratch.rmdir()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result: Facts = json.loads(out.read_text())
    return result


def _ok(run: Facts) -> None:
    assert run["rc"] == 0, run["out"] + run["err"]


def test_install_succeeds(facts: Facts) -> None:
    """The script exits 0 on a machine without the service."""
    _ok(facts["install"])


def test_install_creates_a_system_user_whose_home_is_the_state_dir(facts: Facts) -> None:
    """mediasyncd: a system UID, home /var/lib/mediasyncd, no login shell, its own group."""
    name, _, uid, _, _, home, shell = facts["passwd"].strip().split(":")

    assert (name, home, shell) == ("mediasyncd", "/var/lib/mediasyncd", "/usr/sbin/nologin")
    assert int(uid) < 1000 and facts["groups"].split() == ["mediasyncd"]


@pytest.mark.parametrize(
    ("path", "kind", "mode", "owner"),
    [
        ("/etc/mediasyncd", "dir", "0755", "root:root"),
        ("/etc/mediasyncd/config.toml", "file", "0640", "root:mediasyncd"),
        ("/var/lib/mediasyncd", "dir", "0750", "mediasyncd:mediasyncd"),
        ("/opt/mediasyncd", "dir", "0755", "root:root"),
        ("/opt/mediasyncd/bin/mediasyncd", "file", "0755", "root:root"),
        ("/usr/local/bin/mediasyncd", "link", "0777", "root:root"),
        ("/etc/systemd/system/mediasyncd.service", "file", "0644", "root:root"),
        ("/etc/systemd/system/mediasyncd.service.d/write-paths.conf", "file", "0644", "root:root"),
    ],
)
def test_install_lays_out_the_tree(facts: Facts, path: str, kind: str, mode: str, owner: str) -> None:
    """Each installed path has its kind, mode and owner."""
    found = facts["tree"][path]

    assert (found["exists"], found["kind"], found["mode"], found["owner"]) == (True, kind, mode, owner)


def test_the_cli_on_path_is_the_venvs(facts: Facts) -> None:
    """/usr/local/bin/mediasyncd (the unit's ExecStart=) links to the venv's console script."""
    assert facts["tree"]["/usr/local/bin/mediasyncd"]["target"] == "/opt/mediasyncd/bin/mediasyncd"


def test_installed_unit_and_config_are_the_repositorys(facts: Facts) -> None:
    """The unit is systemd/mediasyncd.service and the config the example config.toml, byte for byte."""
    assert facts["unit_matches_repo"] and facts["config_matches_example"]


def test_venv_does_not_refer_back_to_the_checkout(facts: Facts) -> None:
    """No file under /opt/mediasyncd names the checkout, after the install and after the upgrade."""
    assert facts["mentions"] == [] and facts["mentions_after_reinstall"] == []


def test_drop_in_makes_the_configured_library_writable(facts: Facts) -> None:
    """write-paths.conf lists the config's library (and nothing for the default state dir)."""
    lines = [ln for ln in facts["drop_in"].splitlines() if not ln.startswith("#")]

    assert lines == ["[Service]", "ReadWritePaths=-/srv/media"]


def test_installed_unit_passes_systemd_analyze_verify(facts: Facts) -> None:
    """systemd-analyze verify accepts the installed unit with its drop-in, ExecStart= and User=."""
    verify = facts["verify"]

    assert (verify["rc"], verify["out"] + verify["err"]) == (0, "")


def test_config_check_service_only_warns_about_a_missing_library(facts: Facts) -> None:
    """Before the library exists, `config check --service` exits 0 with a warning naming it."""
    check = facts["check_without_library"]

    assert check["rc"] == 0 and "warning: daemon.library: /srv/media does not exist" in check["err"]


def test_config_check_service_flags_a_library_the_user_cannot_write(facts: Facts) -> None:
    """A root-owned 0755 library: exit 78, naming the key, the user, owner and mode."""
    check = facts["check_root_library"]

    assert check["rc"] == 78
    assert "error: daemon.library: /srv/media is not writable by mediasyncd" in check["err"]
    assert "owner root:root, mode 0755" in check["err"]


def test_config_check_service_passes_once_the_user_owns_the_library(facts: Facts) -> None:
    """With the library owned by mediasyncd, `config check --service` prints OK and no warning."""
    check = facts["check"]

    assert (check["rc"], check["err"]) == (0, "") and "OK" in check["out"]


def test_unit_exec_start_reaches_ready_as_the_service_user(facts: Facts) -> None:
    """ExecStart= run as mediasyncd with a NOTIFY_SOCKET sends READY=1."""
    daemon = facts["daemon"]
    uid = int(facts["passwd"].split(":")[2])

    assert daemon["ready"], daemon["log"]
    assert daemon["uid"] == uid


def test_unit_exec_start_stops_cleanly_on_sigterm(facts: Facts) -> None:
    """After READY=1, SIGTERM: STOPPING=1 and exit status 0."""
    daemon = facts["daemon"]

    assert daemon["rc"] == 0, daemon["log"]
    assert any("STOPPING=1" in m for m in daemon["messages"])


def test_install_prints_the_next_steps(facts: Facts) -> None:
    """The output ends with what to do next: edit, check, enable, follow the journal."""
    out = facts["install"]["out"]

    for step in [
        "sudoedit /etc/mediasyncd/config.toml",
        "sudo mediasyncd config check --service /etc/mediasyncd/config.toml",
        "sudo systemctl enable --now mediasyncd",
        "journalctl -u mediasyncd -f",
    ]:
        assert step in out


def test_second_run_keeps_an_edited_config_and_the_user(facts: Facts) -> None:
    """Run again: the admin's config and /etc/passwd are untouched, the unit file not even rewritten."""
    _ok(facts["reinstall"])
    before, after = facts["tree"], facts["tree_after_reinstall"]

    assert facts["config_kept"] and facts["passwd_unchanged"]
    assert "kept /etc/mediasyncd/config.toml" in facts["reinstall"]["out"]
    for path in ["/etc/systemd/system/mediasyncd.service", "/etc/mediasyncd/config.toml"]:
        assert after[path]["mode"] == before[path]["mode"] and after[path]["owner"] == before[path]["owner"]
    unit = "/etc/systemd/system/mediasyncd.service"
    assert after[unit]["mtime_ns"] == before[unit]["mtime_ns"]


def test_second_run_upgrades_the_venv_from_the_checkout(facts: Facts) -> None:
    """A change in the checkout's package reaches /opt/mediasyncd on the next run."""
    assert facts["upgraded"]


def test_uninstall_removes_the_program_and_keeps_config_and_state(facts: Facts) -> None:
    """--uninstall removes unit, drop-in, venv and link; keeps /etc/mediasyncd and the state DB, and says so."""
    _ok(facts["uninstall"])
    tree = facts["tree_after_uninstall"]

    assert {p: f["exists"] for p, f in tree.items()} == {
        "/etc/mediasyncd": True,
        "/etc/mediasyncd/config.toml": True,
        "/var/lib/mediasyncd": True,
        "/opt/mediasyncd": False,
        "/opt/mediasyncd/bin/mediasyncd": False,
        "/usr/local/bin/mediasyncd": False,
        "/etc/systemd/system/mediasyncd.service": False,
        "/etc/systemd/system/mediasyncd.service.d/write-paths.conf": False,
    }
    assert "state.db" in facts["state_after_uninstall"]
    out = facts["uninstall"]["out"]
    assert "kept /etc/mediasyncd" in out and "kept /var/lib/mediasyncd" in out


def test_uninstall_purge_data_removes_config_and_state_but_not_the_library(facts: Facts) -> None:
    """--uninstall --purge-data removes config and state too; the library stays."""
    _ok(facts["purge"])

    assert not any(f["exists"] for f in facts["tree_after_purge"].values())
    assert facts["library_after_purge"]


def test_the_host_is_left_as_it_was(facts: Facts, host_before: tuple[str, list[bool]]) -> None:
    """After the scenario, the host has no mediasyncd user and none of the installed paths."""
    assert facts
    assert _host_state() == host_before


def _first_sh_block(text: str, heading: str) -> list[str]:
    after = text[text.index(heading) :]
    block = after[after.index("```sh\n") + len("```sh\n") :]
    return block[: block.index("```")].splitlines()


def test_both_readmes_give_the_same_recipe() -> None:
    """README.md's systemd section starts with systemd/README.md's install recipe, line for line."""
    service = _first_sh_block((REPO / "systemd" / "README.md").read_text(), "## Install")
    readme = _first_sh_block((REPO / "README.md").read_text(), "### As a systemd service")
    commands = [line.split("#")[0].rstrip() for line in service]

    assert commands[0] == "sudo scripts/install-service"
    assert [line.split("#")[0].rstrip() for line in readme[: len(service)]] == commands
