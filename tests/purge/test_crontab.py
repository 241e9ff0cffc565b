"""Cron expressions keep crontab meaning under APScheduler 3 (which counts weekday 0 as Monday)."""

from __future__ import annotations

from datetime import UTC, datetime

from mediasyncd.purge.crontab import crontab_trigger, crontab_weekdays


def test_numeric_weekdays_are_crontab_days() -> None:
    """0 and 7 are Sunday, 1 is Monday; ranges, lists and steps expand to day names."""
    assert crontab_weekdays("0") == "sun"
    assert crontab_weekdays("7") == "sun"
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("0,6") == "sun,sat"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("*") == "*"
    assert crontab_weekdays("mon-fri") == "mon-fri"


def test_sunday_schedule_fires_on_sunday() -> None:
    """'30 3 * * 0' next fires on a Sunday at 03:30, as cron would."""
    trigger = crontab_trigger("30 3 * * 0")
    after = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None
    assert (fire.strftime("%A"), fire.hour, fire.minute) == ("Sunday", 3, 30)


def test_the_default_schedule_is_hourly() -> None:
    """'0 * * * *' fires at the top of every hour."""
    after = datetime(2026, 11, 18, 12, 0, 1, tzinfo=UTC)
    fire = crontab_trigger("0 * * * *").get_next_fire_time(None, after)
    assert fire is not None and (fire.minute, fire.second) == (0, 0)
    assert (fire - after).total_seconds() == 3599
