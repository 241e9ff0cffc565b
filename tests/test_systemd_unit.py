"""systemd/mediasyncd.service: what systemd accepts, and the directives the daemon relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "mediasyncd.service"
EXAMPLES = REPO / "systemd" / "examples"
# The console script that `pip install -e .` (scripts/setup) puts beside the interpreter running the tests.
MEDIASYNCD = Path(sys.executable).parent / "mediasyncd"
INSTALLED_MEDIASYNCD = "/usr/local/bin/mediasyncd"

Directive = tuple[str, str, str]


def _directives(text: str) -> list[Directive]:
    """(section, key, value) for every assignment in a unit file, in order."""
    found: list[Directive] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        else:
            key, _, value = line.partition("=")
            found.append((section, key.strip(), value.strip()))
    return found


def _values(text: str, section: str, key: str) -> list[str]:
    return [v for s, k, v in _directives(text) if (s, k) == (section, key)]


def _deployed(tmp_path: Path, drop_ins: list[Path]) -> Path:
    """A copy of the unit whose ExecStart runs the repository's venv binary, with drop-ins beside it."""
    assert MEDIASYNCD.exists(), f"{MEDIASYNCD} is missing: run scripts/setup --dev (pip install -e .)"
    unit = tmp_path / UNIT.name
    text = UNIT.read_text().replace(f"ExecStart={INSTALLED_MEDIASYNCD} ", f"ExecStart={MEDIASYNCD} ")
    unit.write_text(text)
    assert _values(unit.read_text(), "Service", "ExecStart")[0].startswith(f"{MEDIASYNCD} run ")
    drop_in_dir = tmp_path / f"{UNIT.name}.d"
    drop_in_dir.mkdir()
    for conf in drop_ins:
        shutil.copy(conf, drop_in_dir / conf.name)
    return unit


def _verify(unit: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify's exit status and its complaints about our unit or its drop-ins."""
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "mediasyncd" in line]
    return result.returncode, complaints


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit without a warning about it."""
    assert _verify(_deployed(tmp_path, [])) == (0, [])


def test_unit_with_example_drop_ins_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit with every example drop-in applied."""
    examples = sorted(EXAMPLES.glob("*.conf"))

    assert [p.name for p in examples] == ["nas-library.conf", "ssh-keys.conf"]
    assert _verify(_deployed(tmp_path, examples)) == (0, [])


def test_unit_hardening_rates_ok(tmp_path: Path) -> None:
    """systemd-analyze security rates the unit's exposure at 2.0 or below (it is 1.5)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(_deployed(tmp_path, []))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        ("Service", "WatchdogSec", "30s"),
        ("Service", "ExecStart", f"{INSTALLED_MEDIASYNCD} run --config /etc/mediasyncd/config.toml"),
        ("Service", "ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service", "Restart", "on-failure"),
        ("Service", "StateDirectory", "mediasyncd"),
        ("Service", "ConfigurationDirectory", "mediasyncd"),
        ("Service", "Environment", "MEDIASYNCD_CONFIG=/etc/mediasyncd/config.toml"),
        ("Service", "User", "mediasyncd"),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "ReadWritePaths", "-/srv/media"),
        ("Service", "ProtectHome", "read-only"),
        ("Service", "PrivateTmp", "yes"),
        ("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Service", "SystemCallArchitectures", "native"),
        ("Service", "LockPersonality", "yes"),
        ("Install", "WantedBy", "multi-user.target"),
    ],
)
def test_unit_sets_directive(section: str, key: str, value: str) -> None:
    """The unit sets each directive the daemon and its docs rely on, to the expected value."""
    assert value in _values(UNIT.read_text(), section, key)


@pytest.mark.parametrize("key", ["RestartSec", "TimeoutStopSec"])
def test_unit_bounds_restart_and_stop_times(key: str) -> None:
    """The unit sets its restart delay and stop timeout explicitly."""
    values = _values(UNIT.read_text(), "Service", key)

    assert values and all(values), values


def test_nas_drop_in_makes_the_mount_it_requires_writable() -> None:
    """nas-library.conf makes writable exactly the path whose mount it waits for."""
    text = (EXAMPLES / "nas-library.conf").read_text()

    assert _values(text, "Unit", "RequiresMountsFor") == _values(text, "Service", "ReadWritePaths") != []


def test_ssh_keys_drop_in_loads_the_key_as_a_credential() -> None:
    """ssh-keys.conf passes /etc/mediasyncd/ssh/id_ed25519 to the service with LoadCredential."""
    text = (EXAMPLES / "ssh-keys.conf").read_text()

    assert "id_ed25519:/etc/mediasyncd/ssh/id_ed25519" in _values(text, "Service", "LoadCredential")
