"""The config under property-based fuzzing: whatever one key is set to, loading gives a valid Config or a
ConfigError that names that key's path; never another exception (which `config check` would show as a
traceback). Plus the findings of the fault harness, each pinned."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from mediasyncd.config import load_config
from mediasyncd.errors import ConfigError
from mediasyncd.units import parse_duration, parse_size
from tests.config_fuzz import MUTATIONS, Mutation, base_doc, judge, render


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(MUTATIONS)
def test_any_one_broken_key_is_reported_with_its_path_never_a_crash(
    tmp_path: Path, mutation: Mutation
) -> None:
    """A wrong type, an absurd value, an unknown key, a duplicate name or non-UTF-8 bytes: a clear
    problem naming the key (or accepted when valid), never another exception."""
    path = tmp_path / "config.toml"
    path.write_bytes(render(tmp_path, mutation))
    verdict = judge(path, mutation)
    assert verdict.crashed is None
    assert not verdict.unnamed


def test_the_fuzzers_base_config_is_valid(tmp_path: Path) -> None:
    """The document every mutation starts from loads cleanly (else every case would be rejected)."""
    path = tmp_path / "config.toml"
    path.write_bytes(
        render(tmp_path, Mutation("value", "transfer.concurrency", ("transfer", "concurrency"), 8))
    )
    assert load_config(path).transfer.concurrency == 8
    assert base_doc(tmp_path)["remotes"][0]["name"] == "gpu"


def test_a_size_too_large_for_a_float_is_a_config_problem_not_a_traceback(tmp_path: Path) -> None:
    """Found by the harness: `bwlimit = "999…9TiB"` (400 digits) raised OverflowError out of `config check`."""
    path = tmp_path / "config.toml"
    path.write_bytes(
        render(tmp_path, Mutation("value", "transfer.bwlimit", ("transfer", "bwlimit"), "9" * 400 + "TiB"))
    )
    with pytest.raises(ConfigError, match=r"transfer\.bwlimit.*at most 8 EiB"):
        load_config(path)


@pytest.mark.parametrize("value", [math.nan, math.inf, "99999999999999999d", 10**30])
def test_durations_are_finite_and_at_most_a_century(value: object) -> None:
    """Found by the harness: `poll_interval = nan` (TOML has nan and inf) and absurd durations were accepted."""
    with pytest.raises(ValueError, match="at most 100 years"):
        parse_duration(value)
    assert parse_duration("36500d") == 36500 * 86400


def test_sizes_fit_sqlite_and_counts_stay_sane(tmp_path: Path) -> None:
    """Sizes above 2^63 - 1 (SQLite's largest integer) and counts above a million are problems."""
    with pytest.raises(ValueError, match="at most 8 EiB"):
        parse_size(10**30)
    assert parse_size(2**63 - 1) == 2**63 - 1
    path = tmp_path / "config.toml"
    path.write_bytes(
        render(tmp_path, Mutation("value", "transfer.concurrency", ("transfer", "concurrency"), 10**11))
    )
    with pytest.raises(ConfigError, match=r"transfer\.concurrency.*at most 1,000,000"):
        load_config(path)


def test_a_nul_character_in_any_path_name_or_argument_is_a_config_problem(tmp_path: Path) -> None:
    """Found by the harness: `library = "\\u0000"` raised ValueError (embedded null byte) out of
    `config check`, a traceback; NUL is refused in every string, root, glob and command word."""
    for key, where, value in (
        ("daemon.library", ("daemon", "library"), "\x00"),
        ("remotes[1].roots", ("remotes", 1, "roots"), ["/tmp/\x00"]),
        ("remotes[2].command", ("remotes", 2, "command"), ["sh", "-c\x00"]),
        ("remotes[0].include", ("remotes", 0, "include"), ["*\x00.png"]),
    ):
        path = tmp_path / "config.toml"
        path.write_bytes(render(tmp_path, Mutation("value", key, where, value)))
        with pytest.raises(ConfigError, match=re.escape(key) + r".*NUL"):
            load_config(path)


def test_a_library_that_holds_a_root_names_daemon_library_too(tmp_path: Path) -> None:
    """Found by the harness: `library = "/"` was reported at the root's key alone; the problem now names
    `daemon.library` as well, the key the user changed."""
    path = tmp_path / "config.toml"
    path.write_bytes(render(tmp_path, Mutation("value", "daemon.library", ("daemon", "library"), "/")))
    assert judge(path, Mutation("value", "daemon.library", ("daemon", "library"), "/")).unnamed is False
    with pytest.raises(ConfigError, match=r"remotes\[1\]\.roots.*inside the library '/' \(daemon\.library\)"):
        load_config(path)
