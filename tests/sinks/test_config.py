"""`[[sinks]]` (SPEC §3.11): each type's keys, secrets read at load time and never shown, and every
mistake named by its key path and line (exit 78 from the CLI)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from mediasyncd.config import parse_config
from mediasyncd.config_sinks import parse_webhook_secret
from mediasyncd.errors import ConfigError
from tests.helpers import MEDIASYNCD

HEAD = '[daemon]\nlibrary = "/srv/media"\n'
KEY = base64.b64encode(b"k" * 32).decode()


def secret(tmp_path: Path, text: str = f"  whsec_{KEY}\n") -> Path:
    path = tmp_path / "hook.secret"
    path.write_text(text)
    return path


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + text)
    return info.value.problems


def test_the_three_types_parse(tmp_path: Path) -> None:
    """postgresql (dsn_file read and stripped), webhook (key decoded), plugin (options kept)."""
    dsn = tmp_path / "pg.dsn"
    dsn.write_text("postgresql://u@localhost/media\n")
    c = parse_config(
        HEAD
        + f"""
[[sinks]]
name = "db"
type = "postgresql"
dsn_file = "{dsn}"
schema = "media"

[[sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/h"
secret_file = "{secret(tmp_path)}"
events = ["file_synced", "file_processed"]
batch = 10

[[sinks]]
name = "mine"
type = "plugin"
plugin = "my_sink"
options = {{ path = "/tmp/x", level = 3 }}
max_attempts = 2
"""
    )
    db, hook, mine = c.sinks
    assert db.dsn == "postgresql://u@localhost/media" and db.schema == "media" and db.events == ("*",)
    assert hook.secret == b"k" * 32 and hook.batch == 10 and hook.timeout == 15.0
    assert hook.wants("file_synced") and not hook.wants("sync_complete")
    assert (
        mine.plugin == "my_sink" and mine.options == {"path": "/tmp/x", "level": 3} and mine.max_attempts == 2
    )
    assert "postgresql://" not in repr(db) and KEY not in repr(hook)
    assert db.consumer == "sink:db"


def test_entry_point_is_the_spec_spelling_of_plugin() -> None:
    """SPEC §3.11 writes `entry_point`; it means the same as `plugin`."""
    c = parse_config(HEAD + '[[sinks]]\nname = "m"\ntype = "plugin"\nentry_point = "my_sink"\n')
    assert c.sinks[0].plugin == "my_sink"


def test_every_mistake_is_named_with_its_key_and_line(tmp_path: Path) -> None:
    """Unknown type, missing dsn and url, unreadable and malformed secrets, unknown event types and a
    duplicate name: all reported at once, each with its key path and line."""
    found = problems(
        f"""
[[sinks]]
name = "a"
type = "kafka"

[[sinks]]
name = "b"
type = "postgresql"

[[sinks]]
name = "c"
type = "webhook"
secret_file = "{tmp_path / "missing.secret"}"

[[sinks]]
name = "d"
type = "webhook"
url = "http://127.0.0.1:9/"
secret_file = "{secret(tmp_path, "not-a-secret")}"
events = ["file_synced", "file_sinked"]

[[sinks]]
name = "d"
type = "plugin"

[[sinks]]
name = "a"
type = "plugin"
plugin = "x"
"""
    )
    text = "\n".join(found)
    assert "sinks[0].type (line 6): must be one of 'postgresql', 'webhook', 'plugin'" in text
    assert "sinks[1].dsn (line 8): is required" in text
    assert "sinks[2].url (line 12): is required" in text
    assert "sinks[2].secret_file (line 15): cannot read the secret file" in text
    assert "sinks[3].secret_file (line 21): " in text and "whsec_" in text
    assert "sinks[3].events (line 22): unknown event type(s) file_sinked" in text
    assert "sinks[4].plugin (line 24): is required" in text
    assert "sinks[5].name (line 29): duplicate sink name 'a'" in text


def test_malformed_secrets() -> None:
    """Not whsec_, not base64, too short: each refused with a reason; whitespace around is fine."""
    assert parse_webhook_secret(f"whsec_{KEY}") == b"k" * 32
    for bad, why in [("sk_abc", "whsec_"), ("whsec_!!!", "base64"), ("whsec_YWJj", "too short")]:
        with pytest.raises(ValueError, match=why):
            parse_webhook_secret(bad)


def test_config_check_exits_78_on_a_bad_sink(tmp_path: Path) -> None:
    """`config check` with an unknown sink type: exit 78, the key path on stderr."""
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nlibrary = "{tmp_path}"\n\n[[sinks]]\nname = "x"\ntype = "nope"\n')
    r = subprocess.run(
        [MEDIASYNCD, "config", "check", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 78 and "sinks[0].type" in r.stderr
