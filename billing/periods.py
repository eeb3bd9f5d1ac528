"""Billing time: hour slots and months in the billing time zone.

Storage is UTC. Slots are whole hours *of the billing time zone*
(``settings.TIME_ZONE``, Asia/Kolkata by default), so for IST a slot runs
from hh:30 to hh+1:30 UTC and months and financial years end exactly on a
slot boundary. A zone without daylight saving time is assumed.
"""

from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

HOUR = timedelta(hours=1)


def billing_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def slot_floor(moment: datetime) -> datetime:
    """Start (UTC) of the billing-zone hour containing ``moment``."""
    local = moment.astimezone(billing_tz()).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def local_date(moment: datetime) -> date:
    return moment.astimezone(billing_tz()).date()


def month_of(moment: datetime) -> date:
    """First day of the billing-zone month containing ``moment``."""
    return local_date(moment).replace(day=1)


def month_start(month: date) -> datetime:
    """The instant (UTC) a billing-zone month begins."""
    local = datetime(month.year, month.month, 1, tzinfo=billing_tz())
    return local.astimezone(UTC)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def parse_month(value: str | None, default: date) -> date:
    """``"2025-04"`` → 2025-04-01; anything unparsable gives ``default``, and so does a
    year at the calendar's edge (1 or 9999: the month before or after, or the month's
    start in UTC, would overflow: a 500 on ``?month=9999-12``)."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        first = date(year, month, 1)
    except ValueError:
        return default
    return first if MINYEAR < year < MAXYEAR else default
