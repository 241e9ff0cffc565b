"""The command line as users type it: config check/init, --config anywhere, clear refusals, log format."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import MEDIASYNCD, make_env, once
from tests.sshd import SshServer


def cli(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("MEDIASYNCD_CONFIG", "JOURNAL_STREAM")}
    return subprocess.run(
        [MEDIASYNCD, *args], capture_output=True, text=True, env={**base, "HOME": str(home), **(env or {})}
    )


def test_run_without_a_config_names_init_and_demo(tmp_path: Path) -> None:
    """No config anywhere: exit 78 and point the user at `config init` and `demo`."""
    if Path("/etc/mediasyncd/config.toml").exists():
        pytest.fail("a system config exists on this machine; the test needs a clean /etc/mediasyncd")
    r = cli("run", home=tmp_path)
    assert r.returncode == 78
    assert "mediasyncd config init" in r.stderr and "mediasyncd demo" in r.stderr


def test_config_init_writes_a_config_that_check_accepts(tmp_path: Path) -> None:
    """`config init PATH` writes valid TOML (tomli-w); `config check PATH` exits 0 on it."""
    target = tmp_path / "conf" / "config.toml"
    library = tmp_path / "lib"
    library.mkdir()
    r = cli("config", "init", str(target), "--library", str(library), home=tmp_path)
    assert r.returncode == 0, r.stderr
    check = cli("config", "check", str(target), home=tmp_path)
    assert check.returncode == 0 and "OK (1 remote(s))" in check.stdout
    again = cli("config", "init", str(target), home=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr


def test_config_check_lists_every_problem_with_key_and_line(tmp_path: Path) -> None:
    """A broken config exits 78 and names each bad key and its line."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[daemon]\nlibrary = "/srv/x"\n\n[transfer]\nconcurency = 4\n\n[[remotes]]\nname = "a b"\nhost = "h"\n'
    )
    r = cli("config", "check", str(bad), home=tmp_path)
    assert r.returncode == 78
    assert "transfer.concurency (line 5): unknown key; did you mean 'concurrency'?" in r.stderr
    assert "remotes[0].name (line 8)" in r.stderr
    assert "remotes[0].roots" in r.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_works_before_or_after_the_subcommand(tmp_path: Path, where: str) -> None:
    """`--config PATH` is accepted on either side of the subcommand name."""
    conf = tmp_path / "c.toml"
    conf.write_text(f'[daemon]\nlibrary = "{tmp_path}"\n')
    args = (
        ["--config", str(conf), "config", "check"]
        if where == "before"
        else ["config", "check", "--config", str(conf)]
    )
    r = cli(*args, home=tmp_path)
    assert r.returncode == 0 and str(conf) in r.stdout


def test_environment_variable_config_is_used(tmp_path: Path) -> None:
    """$MEDIASYNCD_CONFIG is found when --config is absent."""
    conf = tmp_path / "env.toml"
    conf.write_text(f'[daemon]\nlibrary = "{tmp_path}"\n')
    r = cli("config", "check", home=tmp_path, env={"MEDIASYNCD_CONFIG": str(conf)})
    assert r.returncode == 0 and str(conf) in r.stdout


def test_journald_lines_carry_their_priority(tmp_path: Path, sshd: SshServer) -> None:
    """Under systemd (JOURNAL_STREAM set) each JSON line starts with <N> so `journalctl -p` filters work."""
    env = make_env(tmp_path, sshd)
    env.write("bad\x07name.png", b"x")
    env.write("ok.png", b"y")
    r = cli(
        "sync", "--once", "--config", str(env.config_path), home=tmp_path, env={"JOURNAL_STREAM": "8:123"}
    )
    assert r.returncode == 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("<")]
    warning = next(ln for ln in lines if "skipping unsafe name" in ln)
    assert warning.startswith("<4>") and json.loads(warning[3:])["level"] == "warning"
    info = next(ln for ln in lines if '"landed"' in ln)
    assert info.startswith("<6>") and json.loads(info[3:])["remote"] == "r1"


def test_sync_once_exit_code_is_nonzero_when_a_remote_is_unreachable(tmp_path: Path, sshd: SshServer) -> None:
    """A remote that cannot be reached makes `sync --once` fail with a message naming it."""
    env = make_env(tmp_path, sshd)
    env.config_path.write_text(env.config_path.read_text().replace(f"port = {sshd.port}", "port = 1"))
    r = cli("sync", "--once", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1 and "r1: FAILED: cannot connect" in r.stderr


def test_strict_host_key_refuses_an_unknown_host(tmp_path: Path, sshd: SshServer) -> None:
    """host_key = strict with the host missing from known_hosts: refused, with how to fix it."""
    env = make_env(tmp_path, sshd)
    sshd.known_hosts.write_text("")
    r = cli("sync", "--once", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1
    assert "is not in known_hosts" in r.stderr and 'host_key = "accept-new"' in r.stderr


def test_accept_new_learns_the_key_then_refuses_a_changed_one(tmp_path: Path, sshd: SshServer) -> None:
    """accept-new stores the first key in <state_dir>/known_hosts; a different key later is refused."""
    env = make_env(tmp_path, sshd, host_key="accept-new")
    real = sshd.known_hosts.read_text()
    sshd.known_hosts.write_text("")
    env.write("a.png", b"a")
    assert once(env) == 0
    learned = (env.state_dir / "known_hosts").read_text()
    assert learned.split()[1:] == real.split()[1:]
    other = subprocess.run(
        ["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-f", str(tmp_path / "other")], check=True
    )
    assert other.returncode == 0
    fake = (tmp_path / "other.pub").read_text().split()[:2]
    (env.state_dir / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {' '.join(fake)}\n")
    r = cli("sync", "--once", "--config", str(env.config_path), home=tmp_path)
    assert r.returncode == 1
    assert "REMOTE HOST KEY CHANGED" in r.stderr and "ssh-keygen -R" in r.stderr


def test_a_host_alias_from_ssh_config_is_resolved(tmp_path: Path, sshd: SshServer) -> None:
    """host = an alias from ~/.ssh/config: HostName, Port, User and IdentityFile come from there."""
    env = make_env(tmp_path, sshd)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host gpu-box\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    text = env.config_path.read_text()
    for line in (f'host = "{sshd.host}"', f"port = {sshd.port}", f'user = "{sshd.user}"'):
        text = text.replace(line + "\n", "")
    text = text.replace(f'identity_file = "{sshd.client_key}"\n', "").replace(
        'name = "r1"', 'name = "r1"\nhost = "gpu-box"'
    )
    env.config_path.write_text(text)
    env.write("via-alias.png", b"alias")
    r = cli("sync", "--once", "--config", str(env.config_path), home=home)
    assert r.returncode == 0, r.stderr
    assert env.landed() == {"via-alias.png": b"alias"}


def test_help_describes_the_tool_and_its_exit_codes() -> None:
    """`mediasyncd --help` says what the tool does (not a code comment) and lists the exit codes;
    `config check --help` names 78."""
    top = " ".join(
        subprocess.run([MEDIASYNCD, "--help"], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "argv ->" not in top and "remote GPU containers" in top and "78 configuration error" in top
    check = " ".join(
        subprocess.run(
            [MEDIASYNCD, "config", "check", "--help"], capture_output=True, text=True
        ).stdout.split()
    )
    assert "exit 78" in check


def test_status_of_a_remote_without_a_pass_never_prints_none() -> None:
    """A remote still connecting (or in backoff before its first pass) reads "no pass yet"."""
    import contextlib
    import io

    from mediasyncd.progress import StatusView
    from mediasyncd.status_client import _print_plain

    view = StatusView("0.1.0", "/etc/mediasyncd/config.toml")
    view.remote("r1").state = "backoff"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_plain(view.snapshot())
    assert "None" not in out.getvalue() and "r1: backoff, no pass yet" in out.getvalue()


def test_demo_listen_takes_a_port_and_names_the_flag_on_errors(tmp_path: Path) -> None:
    """`demo --listen 23006` means 127.0.0.1:23006; a bad value is a usage error about --listen (not a
    problem in a generated config file), and a non-loopback one is refused (the demo sets no token)."""
    from mediasyncd.cli_parser import _loopback_listen

    assert _loopback_listen("23006") == "127.0.0.1:23006"
    assert _loopback_listen("[::1]:8000") == "[::1]:8000"
    for bad, says in (("0.0.0.0:23006", "loopback only"), ("foo", "give PORT or HOST:PORT")):
        r = cli("demo", "--listen", bad, "--library", str(tmp_path / "lib"), home=tmp_path)
        assert r.returncode == 2
        assert "argument --listen: " in r.stderr and says in r.stderr and "config.toml" not in r.stderr
    assert not (tmp_path / "lib").exists()


def test_an_unusable_state_dir_is_one_line_and_exit_78(tmp_path: Path) -> None:
    """A state_dir that cannot be created (its parent is a file) stops `run` and `sync --once` with one
    line naming the directory and what to do; a restart would not fix it, so 78."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "file").write_text("")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nlibrary = "{tmp_path / "lib"}"\nstate_dir = "{tmp_path / "file" / "state"}"\n'
    )
    for command in (["run"], ["sync", "--once"]):
        r = cli(*command, "--config", str(config), home=tmp_path)
        assert r.returncode == 78
        [line] = r.stderr.splitlines()
        assert line.startswith(f"mediasyncd: cannot use the state directory {tmp_path / 'file' / 'state'}: ")
        assert "sudo install -d -o" in line
