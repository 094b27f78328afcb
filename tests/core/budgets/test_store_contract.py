"""The `BudgetStore` contract: every store in `STORE_FACTORIES` (conftest) must pass all of it."""

from __future__ import annotations

import asyncio

from gearshift.budgets import BudgetStore, KeyUsage, LimitCheck, UsageQuery

NOW = 1_700_000_000.0  # a real Unix time, so stores that bucket by minute and hour see real buckets
TTL = 600.0


def cap(key: str, *, usd: float | None = None, tokens: int | None = None, since: float = 0.0) -> LimitCheck:
    return LimitCheck(f"cap {key}", key, since, usd, tokens, enforce=True)


async def usage_of(store: BudgetStore, key: str, *, since: float = 0.0, now: float = NOW) -> KeyUsage:
    (usage,) = await store.usage([UsageQuery(key, since)], now=now)
    return usage


async def test_a_reservation_that_fits_is_held_on_every_key(store: BudgetStore) -> None:
    result = await store.reserve(
        "r1", ["agent:a", "run:1"], 0.25, 100, [cap("run:1", usd=1.0)], now=NOW, expires_at=NOW + TTL
    )
    assert result.ok and result.refused_by is None
    for key in ("agent:a", "run:1"):
        usage = await usage_of(store, key)
        assert (usage.reserved_usd, usage.reserved_tokens) == (0.25, 100)
        assert (usage.spent_usd, usage.spent_tokens) == (0.0, 0)


async def test_reserve_reports_usage_before_the_reservation(store: BudgetStore) -> None:
    await store.commit("r0", ["run:1"], 0.5, 50, now=NOW - 10)
    checks = [cap("run:1", usd=1.0), LimitCheck("soft", "run:1", 0.0, 0.1, None, enforce=False)]
    result = await store.reserve("r1", ["run:1"], 0.25, 10, checks, now=NOW, expires_at=NOW + TTL)
    assert result.ok
    assert len(result.usage) == 2
    for usage in result.usage:
        assert (usage.key, usage.spent_usd, usage.spent_tokens, usage.reserved_usd) == ("run:1", 0.5, 50, 0.0)


async def test_a_refused_reservation_records_nothing_and_names_the_check(store: BudgetStore) -> None:
    await store.commit("r0", ["run:1"], 0.9, 10, now=NOW - 10)
    loose, tight = cap("agent:a", usd=100.0), cap("run:1", usd=1.0)
    result = await store.reserve(
        "r1", ["agent:a", "run:1"], 0.2, 10, [loose, tight], now=NOW, expires_at=NOW + TTL
    )
    assert not result.ok
    assert result.refused_by == tight
    assert (await usage_of(store, "agent:a")).reserved_usd == 0.0
    assert (await usage_of(store, "run:1")).reserved_usd == 0.0


async def test_a_token_cap_refuses_too(store: BudgetStore) -> None:
    ok = await store.reserve("r1", ["k"], 0.0, 600, [cap("k", tokens=1000)], now=NOW, expires_at=NOW + TTL)
    refused = await store.reserve(
        "r2", ["k"], 0.0, 401, [cap("k", tokens=1000)], now=NOW, expires_at=NOW + TTL
    )
    exact = await store.reserve("r3", ["k"], 0.0, 400, [cap("k", tokens=1000)], now=NOW, expires_at=NOW + TTL)
    assert (ok.ok, refused.ok, exact.ok) == (True, False, True)


async def test_a_check_not_enforced_never_refuses(store: BudgetStore) -> None:
    soft = LimitCheck("soft", "k", 0.0, 0.01, 1, enforce=False)
    result = await store.reserve("r1", ["k"], 5.0, 5000, [soft], now=NOW, expires_at=NOW + TTL)
    assert result.ok
    assert (await usage_of(store, "k")).reserved_usd == 5.0


async def test_sums_that_fit_exactly_are_not_refused_by_float_rounding(store: BudgetStore) -> None:
    await store.commit("a", ["k"], 0.1, 1, now=NOW)
    await store.commit("b", ["k"], 0.2, 1, now=NOW)
    result = await store.reserve("c", ["k"], 0.7, 1, [cap("k", usd=1.0)], now=NOW, expires_at=NOW + TTL)
    assert result.ok
    over = await store.reserve("d", ["k"], 0.000001, 0, [cap("k", usd=1.0)], now=NOW, expires_at=NOW + TTL)
    assert not over.ok


async def test_concurrent_reservations_never_pass_a_check_only_some_fit(store: BudgetStore) -> None:
    async def one(i: int) -> bool:
        result = await store.reserve(
            f"r{i}", ["agent:a", "run:1"], 0.1, 10, [cap("run:1", usd=1.0)], now=NOW, expires_at=NOW + TTL
        )
        return result.ok

    outcomes = await asyncio.gather(*(one(i) for i in range(40)))
    assert sum(outcomes) == 10
    usage = await usage_of(store, "run:1")
    assert round(usage.reserved_usd, 9) == 1.0
    assert usage.reserved_tokens == 100


async def test_concurrent_commits_and_reservations_keep_the_cap(store: BudgetStore) -> None:
    async def call(i: int) -> bool:
        result = await store.reserve(
            f"r{i}", ["run:1"], 0.1, 0, [cap("run:1", usd=1.0)], now=NOW, expires_at=NOW + TTL
        )
        if result.ok:
            await store.commit(f"r{i}", ["run:1"], 0.1, 0, now=NOW)
        return result.ok

    outcomes = await asyncio.gather(*(call(i) for i in range(30)))
    assert sum(outcomes) == 10
    usage = await usage_of(store, "run:1")
    assert (round(usage.spent_usd, 9), usage.reserved_usd) == (1.0, 0.0)


async def test_windows_sum_only_spend_at_or_after_since(store: BudgetStore) -> None:
    await store.commit("old", ["k"], 1.0, 100, now=NOW - 7200)
    await store.commit("mid", ["k"], 2.0, 200, now=NOW - 1800)
    await store.commit("new", ["k"], 4.0, 400, now=NOW - 30)
    lifetime, hour, minute, edge = await store.usage(
        [
            UsageQuery("k", 0.0),
            UsageQuery("k", NOW - 3600),
            UsageQuery("k", NOW - 60),
            UsageQuery("k", NOW - 30),
        ],
        now=NOW,
    )
    assert (lifetime.spent_usd, lifetime.spent_tokens) == (7.0, 700)
    assert (hour.spent_usd, hour.spent_tokens) == (6.0, 600)
    assert (minute.spent_usd, minute.spent_tokens) == (4.0, 400)
    assert edge.spent_usd == 4.0  # a spend exactly at `since` is inside the window
    assert hour.since == NOW - 3600


async def test_a_window_check_ignores_older_spend(store: BudgetStore) -> None:
    await store.commit("yesterday", ["k"], 0.9, 0, now=NOW - 86_400)
    today = cap("k", usd=1.0, since=NOW - 3600)
    assert (await store.reserve("r", ["k"], 0.5, 0, [today], now=NOW, expires_at=NOW + TTL)).ok
    lifetime = cap("k", usd=1.0)
    assert not (await store.reserve("s", ["k"], 0.5, 0, [lifetime], now=NOW, expires_at=NOW + TTL)).ok


async def test_a_renewed_reservation_holds_past_its_first_expiry(store: BudgetStore) -> None:
    limit = [cap("k", usd=1.0)]
    assert (await store.reserve("long", ["k", "run:1"], 0.8, 5, limit, now=NOW, expires_at=NOW + 10)).ok
    assert await store.renew("long", now=NOW + 9, expires_at=NOW + 19)
    # Past the first expiry the call still holds its $0.80 on every key: a second one does not fit.
    assert not (await store.reserve("other", ["k"], 0.8, 0, limit, now=NOW + 15, expires_at=NOW + 25)).ok
    assert (await usage_of(store, "run:1", now=NOW + 15)).reserved_usd == 0.8
    assert (await usage_of(store, "k", now=NOW + 19)).reserved_usd == 0.0  # the renewed expiry holds too


async def test_an_expired_or_settled_reservation_is_not_renewed(store: BudgetStore) -> None:
    assert (await store.reserve("late", ["k"], 0.5, 0, [], now=NOW, expires_at=NOW + 10)).ok
    assert not await store.renew("late", now=NOW + 10, expires_at=NOW + 30)  # expired: stays so
    assert (await usage_of(store, "k", now=NOW + 11)).reserved_usd == 0.0
    assert (await store.reserve("done", ["k"], 0.5, 0, [], now=NOW, expires_at=NOW + 10)).ok
    await store.commit("done", ["k"], 0.25, 0, now=NOW + 1)
    assert not await store.renew("done", now=NOW + 2, expires_at=NOW + 30)
    assert not await store.renew("never-made", now=NOW, expires_at=NOW + 30)
    assert (await usage_of(store, "k", now=NOW + 2)).reserved_usd == 0.5  # "late", until NOW + 10
    assert (await usage_of(store, "k", now=NOW + 11)).reserved_usd == 0.0


async def test_expired_reservations_stop_counting(store: BudgetStore) -> None:
    assert (await store.reserve("r1", ["k"], 0.8, 0, [cap("k", usd=1.0)], now=NOW, expires_at=NOW + 10)).ok
    assert not (
        await store.reserve("r2", ["k"], 0.8, 0, [cap("k", usd=1.0)], now=NOW + 9, expires_at=NOW + 20)
    ).ok
    assert (await usage_of(store, "k", now=NOW + 10)).reserved_usd == 0.0
    assert (
        await store.reserve("r3", ["k"], 0.8, 0, [cap("k", usd=1.0)], now=NOW + 11, expires_at=NOW + 30)
    ).ok


async def test_a_late_commit_after_expiry_is_still_recorded(store: BudgetStore) -> None:
    await store.reserve("r1", ["agent:a", "run:1"], 0.5, 50, [], now=NOW, expires_at=NOW + 10)
    await store.reserve("other", ["x"], 0.0, 0, [], now=NOW + 60, expires_at=NOW + 70)  # purges r1
    await store.commit("r1", ["agent:a", "run:1"], 0.4, 40, now=NOW + 60)
    for key in ("agent:a", "run:1"):
        usage = await usage_of(store, key, now=NOW + 60)
        assert (usage.spent_usd, usage.spent_tokens, usage.reserved_usd) == (0.4, 40, 0.0)


async def test_commit_replaces_the_reservation_with_the_real_cost(store: BudgetStore) -> None:
    await store.reserve("r1", ["k"], 0.5, 500, [], now=NOW, expires_at=NOW + TTL)
    await store.commit("r1", ["k"], 0.2, 150, now=NOW + 1)
    usage = await usage_of(store, "k", now=NOW + 1)
    assert (usage.spent_usd, usage.spent_tokens, usage.reserved_usd, usage.reserved_tokens) == (
        0.2,
        150,
        0.0,
        0,
    )


async def test_a_double_commit_is_counted_once(store: BudgetStore) -> None:
    await store.reserve("r1", ["k"], 0.5, 10, [], now=NOW, expires_at=NOW + TTL)
    await store.commit("r1", ["k"], 0.3, 10, now=NOW)
    await store.commit("r1", ["k"], 0.3, 10, now=NOW + 1)
    usage = await usage_of(store, "k", now=NOW + 1)
    assert (usage.spent_usd, usage.spent_tokens) == (0.3, 10)


async def test_release_drops_the_reservation_and_is_idempotent(store: BudgetStore) -> None:
    await store.reserve("r1", ["k"], 0.5, 10, [], now=NOW, expires_at=NOW + TTL)
    await store.release("r1")
    await store.release("r1")
    await store.release("never-made")
    usage = await usage_of(store, "k")
    assert (usage.spent_usd, usage.reserved_usd, usage.reserved_tokens) == (0.0, 0.0, 0)


async def test_release_after_commit_keeps_the_spend(store: BudgetStore) -> None:
    await store.reserve("r1", ["k"], 0.5, 10, [], now=NOW, expires_at=NOW + TTL)
    await store.commit("r1", ["k"], 0.4, 8, now=NOW)
    await store.release("r1")
    assert (await usage_of(store, "k")).spent_usd == 0.4


async def test_reset_forgets_one_key_only(store: BudgetStore) -> None:
    await store.commit("c1", ["agent:a", "run:1"], 1.0, 100, now=NOW)
    await store.reserve("r1", ["agent:a", "run:1"], 0.5, 10, [], now=NOW, expires_at=NOW + TTL)
    await store.reset("run:1")
    run = await usage_of(store, "run:1")
    agent = await usage_of(store, "agent:a")
    assert (run.spent_usd, run.spent_tokens, run.reserved_usd) == (0.0, 0, 0.0)
    assert (agent.spent_usd, agent.reserved_usd) == (1.0, 0.5)
    assert "run:1" not in await store.keys()
    assert (
        await store.reserve("r2", ["run:1"], 1.0, 0, [cap("run:1", usd=1.0)], now=NOW, expires_at=NOW + TTL)
    ).ok


async def test_keys_lists_spend_and_reservations_sorted(store: BudgetStore) -> None:
    assert await store.keys() == ()
    await store.commit("c1", ["team:search", "agent:b"], 0.1, 1, now=NOW)
    await store.reserve("r1", ["run:9"], 0.1, 1, [], now=NOW, expires_at=NOW + TTL)
    assert await store.keys() == ("agent:b", "run:9", "team:search")


async def test_usage_answers_every_query_in_order(store: BudgetStore) -> None:
    await store.commit("c1", ["a"], 1.0, 10, now=NOW)
    await store.commit("c2", ["b"], 2.0, 20, now=NOW)
    await store.reserve("r1", ["b"], 0.5, 5, [], now=NOW, expires_at=NOW + TTL)
    b, a, unknown = await store.usage(
        [UsageQuery("b", 0.0), UsageQuery("a", 0.0), UsageQuery("z", NOW)], now=NOW
    )
    assert (a.key, a.spent_usd, a.spent_tokens, a.reserved_usd) == ("a", 1.0, 10, 0.0)
    assert (b.key, b.spent_usd, b.reserved_usd, b.reserved_tokens) == ("b", 2.0, 0.5, 5)
    assert (unknown.key, unknown.since, unknown.spent_usd, unknown.reserved_usd) == ("z", NOW, 0.0, 0.0)
    assert await store.usage([], now=NOW) == ()


async def test_url_is_a_string_and_aclose_is_idempotent(store: BudgetStore) -> None:
    assert isinstance(store, BudgetStore)
    assert "://" in store.url
    await store.aclose()
    await store.aclose()
