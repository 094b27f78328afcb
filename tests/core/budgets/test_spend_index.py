"""How the persistent stores index spend: exact window sums from totals, buckets and rows."""

from __future__ import annotations

import random

import pytest

from gearshift.budgets import BudgetStore, LimitCheck, MemoryStore, UsageQuery
from gearshift.budgets._spend_index import (
    HOUR,
    MINUTE,
    bucket_starts,
    first_refusal,
    from_nano,
    split_window,
    to_nano,
)

NOW = 1_700_000_000.0


def test_a_lifetime_window_reads_the_running_total() -> None:
    assert split_window(0.0) is None
    assert split_window(-5.0) is None


@pytest.mark.parametrize(
    ("since", "rows_until", "minutes_until"),
    [
        (1_699_999_980.0, 1_699_999_980, 1_700_002_800),  # a whole minute: no rows to read
        (1_699_999_980.5, 1_700_000_040, 1_700_002_800),
        (1_700_002_800.0, 1_700_002_800, 1_700_002_800),  # a whole hour: buckets of hours only
        (1_700_002_799.25, 1_700_002_800, 1_700_002_800),
    ],
)
def test_a_window_splits_into_rows_minutes_and_hours(
    since: float, rows_until: int, minutes_until: int
) -> None:
    split = split_window(since)
    assert split is not None
    assert (split.since, split.rows_until, split.minutes_until) == (since, rows_until, minutes_until)
    assert split.rows_until % MINUTE == 0 and split.minutes_until % HOUR == 0


def test_a_spend_lands_in_the_minute_and_hour_that_contain_it() -> None:
    assert bucket_starts(1_700_000_059.999) == (1_700_000_040, 1_699_999_200)
    assert bucket_starts(1_700_002_800.0) == (1_700_002_800, 1_700_002_800)


def test_money_round_trips_through_nano_dollars() -> None:
    for usd in (0.0, 1e-9, 0.1, 0.3, 1.0, 123.456789012, 9_000_000.0):
        assert from_nano(to_nano(usd)) == usd
    assert to_nano(0.1) + to_nano(0.2) == to_nano(0.3)  # unlike 0.1 + 0.2 != 0.3 in floats


def test_first_refusal_compares_exactly() -> None:
    from gearshift.budgets import KeyUsage

    check = LimitCheck("cap", "k", 0.0, 0.3, 100, True)
    used = KeyUsage("k", 0.0, spent_usd=0.1, spent_tokens=50, reserved_usd=0.1, reserved_tokens=50)
    assert first_refusal([check], [used], to_nano(0.1), 0) is None  # 0.1 + 0.1 + 0.1 == 0.3 fits
    assert first_refusal([check], [used], to_nano(0.1) + 1, 0) is check
    assert first_refusal([check], [used], 0, 1) is check  # tokens: 101 > 100
    soft = LimitCheck("soft", "k", 0.0, 0.0, 0, False)
    assert first_refusal([soft], [used], to_nano(5.0), 5) is None


async def test_every_window_sums_the_same_as_the_reference_store(store: BudgetStore) -> None:
    """Random spend over three hours; windows starting anywhere (mid-second, on a minute or hour
    boundary, exactly at a spend): every store gives the reference store's sums."""
    rng = random.Random(20251123)
    reference = MemoryStore()
    hour = 1_699_999_200.0  # a whole hour
    start = hour - 5400
    boundaries = [hour - 600, hour, hour + 60]  # spend exactly on a minute's and an hour's edge
    times = sorted([*(start + rng.uniform(0, 3 * HOUR) for _ in range(120)), *boundaries])
    for i, at in enumerate(times):
        usd, tokens = round(rng.uniform(0.0001, 0.01), 6), rng.randrange(1, 500)
        for ledger in (store, reference):
            await ledger.commit(f"c{i}", ["k"], usd, tokens, now=at)
    sinces = [0.0, start, start + 0.5, start + HOUR, times[17], times[60], times[-1], times[-1] + 1]
    sinces += [rng.uniform(start, times[-1]) for _ in range(30)]
    sinces += [edge - 0.5 for edge in boundaries] + boundaries
    sinces += [float(int(since) // MINUTE * MINUTE) for since in sinces[8:18]]
    queries = [UsageQuery("k", since) for since in sinces]
    got = await store.usage(queries, now=times[-1] + 10)
    want = await reference.usage(queries, now=times[-1] + 10)
    for query, mine, theirs in zip(queries, got, want, strict=True):
        assert mine.spent_tokens == theirs.spent_tokens, query
        assert mine.spent_usd == pytest.approx(theirs.spent_usd, abs=1e-9), query
