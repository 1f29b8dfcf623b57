"""Every output writes times and durations the same way (querywatch.timefmt)."""

from __future__ import annotations

import re

from querywatch.timefmt import clock, duration, local_stamp, rfc3339, utc_stamp

T = 1_700_000_000.25  # 2023-11-14 22:13:20.250 UTC


def test_utc_forms_say_their_zone() -> None:
    assert utc_stamp(T) == "2023-11-14 22:13:20 UTC"
    assert rfc3339(T) == "2023-11-14T22:13:20.250Z"


def test_local_forms() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", local_stamp(T))
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock(T))
    assert local_stamp(T).split()[1] == clock(T)


def test_durations_use_the_two_largest_units() -> None:
    assert duration(9000) == "2h 30m"
    assert duration(95) == "1m 35s"
    assert duration(59.6) == "1m 00s"
    assert duration(12.4) == "12s"
    assert duration(-3) == "0s"  # a clock step backwards is not a negative duration
