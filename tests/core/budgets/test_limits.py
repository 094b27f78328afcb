"""Limits, windows and modes: parsing, window starts in time zones, key matching."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gearshift.budgets import BudgetLimit, BudgetMode, Window


@pytest.mark.parametrize(
    ("text", "kind", "seconds", "spelled"),
    [
        ("lifetime", "lifetime", None, "lifetime"),
        ("day", "day", None, "day"),
        (" Month ", "month", None, "month"),
        ("rolling:1h", "rolling", 3600.0, "rolling:1h"),
        ("rolling:30m", "rolling", 1800.0, "rolling:30m"),
        ("rolling:86400s", "rolling", 86400.0, "rolling:1d"),
        ("rolling:90s", "rolling", 90.0, "rolling:90s"),
        ("rolling:1.5h", "rolling", 5400.0, "rolling:90m"),
        ("rolling:7d", "rolling", 604800.0, "rolling:7d"),
    ],
)
def test_windows_parse_and_print(text: str, kind: str, seconds: float | None, spelled: str) -> None:
    window = Window.parse(text)
    assert (window.kind, window.seconds) == (kind, seconds)
    assert str(window) == spelled
    assert Window.parse(str(window)) == window


@pytest.mark.parametrize(
    "text", ["weekly", "rolling", "rolling:", "rolling:1y", "rolling:-1h", "rolling:h", ""]
)
def test_unknown_windows_are_refused_with_the_spellings_to_use(text: str) -> None:
    with pytest.raises(ValueError, match="use lifetime, day, month or rolling"):
        Window.parse(text)


def test_a_zero_rolling_window_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 0 seconds"):
        Window.parse("rolling:0m")


def test_lifetime_and_rolling_starts() -> None:
    assert Window.parse("lifetime").start(1_700_000_000.0) == 0.0
    assert Window.parse("rolling:1h").start(1_700_000_000.0) == 1_700_000_000.0 - 3600


def test_calendar_windows_start_at_local_midnight() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2024, 3, 15, 0, 30, tzinfo=paris).timestamp()  # 23:30 UTC the day before
    assert Window.parse("day").start(now, "Europe/Paris") == datetime(2024, 3, 15, tzinfo=paris).timestamp()
    assert Window.parse("day").start(now, "UTC") == datetime(2024, 3, 14, tzinfo=ZoneInfo("UTC")).timestamp()
    assert Window.parse("month").start(now, paris) == datetime(2024, 3, 1, tzinfo=paris).timestamp()


def test_a_day_across_a_dst_change_starts_at_its_real_midnight() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2024, 3, 31, 12, 0, tzinfo=paris).timestamp()  # clocks went forward at 02:00
    start = Window.parse("day").start(now, "Europe/Paris")
    assert now - start == 11 * 3600  # a 23-hour day: noon is 11 real hours after midnight
    # Santiago's clocks jump from 00:00 to 01:00: that day starts at the jump, not an hour off it.
    santiago = ZoneInfo("America/Santiago")
    later = datetime(2024, 9, 8, 12, 0, tzinfo=santiago).timestamp()
    first = Window.parse("day").start(later, santiago)
    assert datetime.fromtimestamp(first, santiago).date().isoformat() == "2024-09-08"
    assert datetime.fromtimestamp(first - 1, santiago).date().isoformat() == "2024-09-07"


def test_an_unknown_time_zone_is_named() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Window.parse("day").start(0.0, "Mars/Olympus")


def test_a_limit_defaults_to_a_lifetime_hard_cap_named_after_its_key() -> None:
    limit = BudgetLimit(key="run:42", usd=1.0)
    assert (limit.window, limit.mode) == (Window("lifetime"), BudgetMode.HARD)
    assert limit.name == "run:42 lifetime hard"
    assert BudgetLimit(key="agent:*", tokens=10, window="day", mode="Soft", name="daily").name == "daily"


def test_key_patterns_match_each_key_of_their_kind() -> None:
    agents = BudgetLimit(key="agent:*", usd=1.0)
    assert agents.is_pattern and agents.matches("agent:researcher") and agents.matches("agent:")
    assert not agents.matches("run:agent:x")
    exact = BudgetLimit(key="team:search", usd=1.0)
    assert not exact.is_pattern and exact.matches("team:search") and not exact.matches("team:search2")
    everything = BudgetLimit(key="*", usd=1.0)
    assert everything.matches("run:1") and everything.matches("anything")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "run:1"}, "a limit needs usd, tokens or both"),
        ({"key": "run:1", "usd": -1.0}, "greater than or equal to 0"),
        ({"key": "run:1", "tokens": -5}, "greater than or equal to 0"),
        ({"key": "run:1", "usd": "ten"}, "valid number"),
        ({"key": "run:1", "usd": True}, "valid number"),
        ({"key": "run:1", "usd": float("inf")}, "finite number"),
        ({"key": "run:1", "tokens": 2.5}, "valid integer"),
        ({"key": "agent:", "usd": 1.0}, r"'agent:' matches no call: use 'agent:\*' for each agent"),
        ({"key": "run:", "usd": 1.0}, r"'run:' matches no call: use 'run:\*' for each run"),
        ({"key": "run:1", "usd": 1.0, "window": "weekly"}, "unknown window 'weekly'"),
        (
            {"key": "run:1", "usd": 1.0, "mode": "strict"},
            "unknown mode 'strict'; use hard, soft or downgrade",
        ),
        ({"key": "run *", "usd": 1.0}, "must not contain spaces"),
        ({"key": "a*b", "usd": 1.0}, "'\\*' may only end a key pattern"),
        ({"key": "", "usd": 1.0}, "at least 1 character"),
        ({"key": "run:1", "usd": 1.0, "budget": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_limits_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BudgetLimit.model_validate(fields)


def test_a_limit_round_trips_through_its_dump() -> None:
    limit = BudgetLimit(key="agent:*", usd=2.5, tokens=1000, window="rolling:30m", mode="downgrade")
    dumped = limit.model_dump(mode="json")
    assert dumped["window"] == "rolling:30m" and dumped["mode"] == "downgrade"
    assert BudgetLimit.model_validate(dumped) == limit


def test_modes_say_whether_they_refuse() -> None:
    assert BudgetMode.HARD.refuses and BudgetMode.DOWNGRADE.refuses and not BudgetMode.SOFT.refuses
