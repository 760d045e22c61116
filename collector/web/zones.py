"""Country → IANA time zone, for showing a moment in the country's local time beside UTC.

One zone per country: the capital's, or the most populous one where a country spans several
(Russia shows Moscow time). ``zoneinfo`` reads the system's tzdata (Debian's ``tzdata``
package); without it, or for a country not listed, pages show UTC only.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

COUNTRY_ZONES: Final = {
    "AE": "Asia/Dubai", "AF": "Asia/Kabul", "AM": "Asia/Yerevan", "AZ": "Asia/Baku",
    "BD": "Asia/Dhaka", "BH": "Asia/Bahrain", "BY": "Europe/Minsk", "CN": "Asia/Shanghai",
    "CU": "America/Havana", "DE": "Europe/Berlin", "EG": "Africa/Cairo", "ER": "Africa/Asmara",
    "ET": "Africa/Addis_Ababa", "FR": "Europe/Paris", "GB": "Europe/London", "GE": "Asia/Tbilisi",
    "ID": "Asia/Jakarta", "IN": "Asia/Kolkata", "IQ": "Asia/Baghdad", "IR": "Asia/Tehran",
    "KG": "Asia/Bishkek", "KP": "Asia/Pyongyang", "KZ": "Asia/Almaty", "LT": "Europe/Vilnius",
    "LV": "Europe/Riga", "MD": "Europe/Chisinau", "MM": "Asia/Yangon", "MN": "Asia/Ulaanbaatar",
    "NG": "Africa/Lagos", "PK": "Asia/Karachi", "PL": "Europe/Warsaw", "RU": "Europe/Moscow",
    "SA": "Asia/Riyadh", "SD": "Africa/Khartoum", "SY": "Asia/Damascus", "TJ": "Asia/Dushanbe",
    "TM": "Asia/Ashgabat", "TR": "Europe/Istanbul", "UA": "Europe/Kyiv", "US": "America/New_York",
    "UZ": "Asia/Tashkent", "VE": "America/Caracas", "VN": "Asia/Ho_Chi_Minh", "ZW": "Africa/Harare",
}  # fmt: skip


@functools.cache
def zone_of(cc: str) -> ZoneInfo | None:
    name = COUNTRY_ZONES.get(cc.upper())
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local(moment: dt.datetime, cc: str) -> dt.datetime | None:
    """``moment`` in the country's time, or None when its zone is unknown here."""
    zone = zone_of(cc)
    return None if zone is None else moment.astimezone(zone)
