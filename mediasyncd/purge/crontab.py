"""Crontab expressions as APScheduler triggers, with crontab's meaning (and nothing heavier to import).

The config loader validates `schedule` keys with the same conversion the scheduler uses, so an
expression the scheduler would refuse never gets past `load_config`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

FIELDS = ("minute", "hour", "day", "month", "weekday")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_trigger(expr: str) -> CronTrigger:
    """A CronTrigger with crontab semantics (APScheduler 3 counts weekday 0 as Monday; cron as Sunday).

    Raises ValueError naming the offending field, or saying that the expression never fires.
    """
    parts = expr.split()
    if len(parts) != len(FIELDS):
        raise ValueError(f"must be a 5-field cron expression such as '0 * * * *', got {expr!r}")
    values = dict(zip(FIELDS, parts, strict=True))
    for name, value in values.items():
        try:
            _trigger({name: value})
        except ValueError as exc:
            raise ValueError(f"bad {name} field {value!r} in cron expression {expr!r}: {exc}") from None
    trigger = _trigger(values)
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ValueError(f"cron expression {expr!r} never fires")
    return trigger


def _trigger(values: dict[str, str]) -> CronTrigger:
    weekday = values.get("weekday")
    return CronTrigger(
        minute=values.get("minute"),
        hour=values.get("hour"),
        day=values.get("day"),
        month=values.get("month"),
        day_of_week=crontab_weekdays(weekday) if weekday is not None else None,
    )


def crontab_weekdays(field: str) -> str:
    """Rewrite numeric crontab weekdays (0-7, 0 and 7 = Sunday) as day names APScheduler reads alike."""
    if not any(ch.isdigit() for ch in field):
        return field
    names: list[str] = []
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _day_number(a), _day_number(b)
        else:
            first = last = _day_number(span)
            if step_text:
                last = 6
        if step < 1 or first > last:
            raise ValueError(f"bad weekday range {part!r}")
        names += [_DAYS[n] for n in range(first, last + 1, step)]
    return ",".join(dict.fromkeys(names))


def _day_number(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text.lower() in _DAYS:
        return _DAYS.index(text.lower())
    raise ValueError(f"bad weekday {text!r}")
