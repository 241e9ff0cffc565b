"""The `[purge]` config: cron schedules are checked at load time with the scheduler's own conversion,
and `local_retention` is off unless set, per daemon or per remote."""

from __future__ import annotations

import pytest

from mediasyncd.config import PurgeConfig, parse_config
from mediasyncd.errors import ConfigError

BASE = """
[daemon]
library = "/srv/media"

[purge]
schedule = "0 * * * *"

[[remotes]]
name = "forge1"
host = "my-gpu-box"
kind = "forge"
purge = { older_than = "12h" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_an_out_of_range_schedule_is_a_config_error_with_key_and_line() -> None:
    """`schedule = "61 * * * *"` names `purge.schedule`, its line and the bad field."""
    (found,) = problems(BASE.replace('"0 * * * *"', '"61 * * * *"'))
    assert found.startswith("purge.schedule (line 6): bad minute field '61'")


def test_a_bad_remote_schedule_names_the_remote_purge_key() -> None:
    """A remote's `purge = { schedule = "* * * * mon-xyz" }` names that remote's key and line."""
    text = BASE.replace('purge = { older_than = "12h" }', 'purge = { schedule = "* * * * mon-xyz" }')
    (found,) = problems(text)
    assert found.startswith("remotes[0].purge.schedule (line 12): bad weekday field 'mon-xyz'")


@pytest.mark.parametrize("bad", ["* * * *", "0 25 * * *", "*/0 * * * *", "0 0 * * 8", "0 0 31 2 *", "x"])
def test_schedules_the_scheduler_would_refuse_are_refused_at_load(bad: str) -> None:
    """Wrong field counts, out-of-range values, zero steps, bad weekdays and never-firing dates."""
    (found,) = problems(BASE.replace('"0 * * * *"', f'"{bad}"'))
    assert found.startswith("purge.schedule (line 6): ")


@pytest.mark.parametrize("good", ["0 * * * *", "*/15 2-5 * * 1-5", "30 3 * * 0", "0 4 * * 7", "0 0 29 2 *"])
def test_crontab_schedules_load(good: str) -> None:
    """Ordinary crontab lines, numeric weekdays 0-7 included, load unchanged."""
    assert parse_config(BASE.replace('"0 * * * *"', f'"{good}"')).purge.schedule == good


def test_local_retention_is_off_by_default() -> None:
    """Without `local_retention` the library keeps everything (0 = off)."""
    assert PurgeConfig().local_retention == 0
    assert parse_config(BASE).remotes[0].purge.local_retention == 0


def test_a_remote_can_override_local_retention() -> None:
    """`purge = { local_retention = "7d" }` on a remote overrides `[purge] local_retention`."""
    text = BASE.replace('schedule = "0 * * * *"', 'local_retention = "30d"')
    text += '\n[[remotes]]\nname = "b"\nhost = "h"\nkind = "comfyui"\n'
    text = text.replace('purge = { older_than = "12h" }', 'purge = { local_retention = "7d" }')
    a, b = parse_config(text).remotes
    assert (a.purge.local_retention, b.purge.local_retention) == (7 * 86400, 30 * 86400)


def test_a_bad_local_retention_is_a_config_error() -> None:
    """`local_retention = "forever"` is refused, naming the key and line."""
    (found,) = problems(BASE.replace('schedule = "0 * * * *"', 'local_retention = "forever"'))
    assert found.startswith("purge.local_retention (line 6): ")
