"""`BudgetLedger`: reserve -> commit -> release against limits, windows and modes, and store faults."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

import gearshift.budgets
from gearshift import BudgetExceeded, ConfigError, InvalidRequestError
from gearshift._errors import LedgerUnavailable
from gearshift.budgets import (
    BudgetAlert,
    BudgetLedger,
    BudgetLimit,
    BudgetsConfig,
    KeyUsage,
    LimitCheck,
    MemoryStore,
    ReserveResult,
    UsageQuery,
)

KEYS = ("agent:researcher", "run:42", "team:search")
PASSWORD = "s3cret-pw-9f2"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class UnreachableStore:
    """A store whose server is down: every call fails as a network client's would."""

    url = "redis://:***@cache.internal:6379/0"

    def _fail(self) -> None:
        raise ConnectionError(f"Error 111 connecting to redis://:{PASSWORD}@cache.internal:6379. Refused.")

    async def reserve(
        self,
        reservation_id: str,
        keys: Sequence[str],
        usd: float,
        tokens: int,
        checks: Sequence[LimitCheck],
        *,
        now: float,
        expires_at: float,
    ) -> ReserveResult:
        self._fail()
        raise AssertionError

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        self._fail()

    async def release(self, reservation_id: str) -> None:
        self._fail()

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        self._fail()
        raise AssertionError

    async def keys(self) -> tuple[str, ...]:
        self._fail()
        raise AssertionError

    async def reset(self, key: str) -> None:
        self._fail()

    async def aclose(self) -> None:
        pass


def ledger(*limits: BudgetLimit, clock: Clock | None = None, **options: object) -> BudgetLedger:
    return BudgetLedger(MemoryStore(), limits, clock=clock or Clock(), **options)  # type: ignore[arg-type]


async def test_reserve_commit_records_the_real_cost_on_every_key() -> None:
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0))
    reservation = await budgets.reserve(KEYS, usd=0.2, tokens=1000, model_id="gpt-mini")
    assert (reservation.keys, reservation.model_id, reservation.recorded) == (KEYS, "gpt-mini", True)
    held = await budgets.usage(KEYS)
    assert [u.reserved_usd for u in held] == [0.2, 0.2, 0.2]
    await budgets.commit(reservation, usd=0.15, tokens=800)
    for usage in await budgets.usage(KEYS):
        assert (usage.spent_usd, usage.spent_tokens, usage.reserved_usd) == (0.15, 800, 0.0)
    assert await budgets.keys() == tuple(sorted(KEYS))


async def test_release_gives_the_reservation_back() -> None:
    budgets = ledger(BudgetLimit(key="run:42", usd=1.0))
    reservation = await budgets.reserve(KEYS, usd=0.9, tokens=10)
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(KEYS, usd=0.2, tokens=10)
    await budgets.release(reservation)
    await budgets.release(reservation)
    assert (await budgets.reserve(KEYS, usd=0.9, tokens=10)).recorded


async def test_a_run_spend_counts_against_its_agent_and_team() -> None:
    budgets = ledger(
        BudgetLimit(key="agent:*", usd=1.0, name="agent"),
        BudgetLimit(key="team:search", usd=0.5, name="team"),
    )
    first = await budgets.reserve(("agent:researcher", "run:1", "team:search"), usd=0.3, tokens=0)
    await budgets.commit(first, usd=0.3, tokens=0)
    await budgets.reserve(("agent:writer", "run:2", "team:search"), usd=0.15, tokens=0)
    with pytest.raises(BudgetExceeded) as caught:  # another run, another agent, the same team
        await budgets.reserve(("agent:critic", "run:3", "team:search"), usd=0.1, tokens=0)
    refusal = caught.value
    assert (refusal.limit_name, refusal.key, refusal.limit) == ("team", "team:search", 0.5)
    assert (refusal.spent, refusal.reserved, refusal.requested, refusal.unit) == (0.3, 0.15, 0.1, "usd")
    # each agent has its own $1 under the pattern
    status = await budgets.status(("agent:researcher", "agent:critic"))
    assert [(s.key, s.spent_usd) for s in status.limits] == [("agent:researcher", 0.3), ("agent:critic", 0.0)]


async def test_a_hard_refusal_says_what_was_spent_held_and_asked() -> None:
    budgets = ledger(BudgetLimit(key="agent:*", usd=2.0, window="day", name="daily agent cap"))
    done = await budgets.reserve(KEYS, usd=1.5, tokens=0)
    await budgets.commit(done, usd=1.5, tokens=0)
    await budgets.reserve(KEYS, usd=0.25, tokens=0)
    with pytest.raises(BudgetExceeded) as caught:
        await budgets.reserve(KEYS, usd=0.5, tokens=0)
    message = str(caught.value)
    assert message.startswith("budget 'daily agent cap' on key 'agent:researcher' refuses this call")
    for part in ("limit $2.00 per day", "spent $1.50", "held by calls in flight $0.25", "left $0.25"):
        assert part in message
    assert "this call needs up to $0.50" in message
    assert "wait for the window to roll over" in message
    assert caught.value.window == "day"


async def test_a_token_limit_refuses_in_tokens() -> None:
    budgets = ledger(BudgetLimit(key="run:*", tokens=1000))
    await budgets.reserve(KEYS, usd=0.0, tokens=700)
    with pytest.raises(BudgetExceeded) as caught:
        await budgets.reserve(KEYS, usd=0.0, tokens=400)
    assert (caught.value.unit, caught.value.limit, caught.value.spent, caught.value.reserved) == (
        "tokens",
        1000,
        0,
        700,
    )
    assert "limit 1000 tokens, spent 0 tokens" in str(caught.value)


async def test_parallel_steps_never_overspend_a_hard_limit() -> None:
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0))

    async def step() -> bool:
        try:
            reservation = await budgets.reserve(KEYS, usd=0.3, tokens=0)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)  # the provider call
        await budgets.commit(reservation, usd=0.3, tokens=0)
        return True

    assert sum(await asyncio.gather(*(step() for _ in range(10)))) == 3
    (run,) = await budgets.usage(["run:42"])
    assert run.spent_usd == pytest.approx(0.9)


async def test_a_downgrade_limit_refuses_only_what_does_not_fit() -> None:
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0, mode="downgrade"))
    await budgets.commit(await budgets.reserve(KEYS, usd=0.95, tokens=0), usd=0.95, tokens=0)
    allowance = await budgets.allowance(KEYS)
    assert allowance.downgrade and allowance.max_usd == pytest.approx(0.0025)
    assert allowance.hard_max_usd == pytest.approx(0.05)
    assert (await budgets.reserve(KEYS, usd=0.04, tokens=0)).recorded  # the cheapest model still fits
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(KEYS, usd=0.02, tokens=0)


async def test_a_soft_limit_alerts_and_goes_on() -> None:
    alerts: list[BudgetAlert] = []
    budgets = ledger(BudgetLimit(key="run:*", usd=0.5, mode="soft", name="run soft"), on_alert=alerts.append)
    await budgets.reserve(KEYS, usd=0.4, tokens=10)
    assert alerts == []
    reservation = await budgets.reserve(KEYS, usd=0.2, tokens=10)
    assert reservation.recorded
    (alert,) = alerts
    assert (alert.limit.name, alert.limit.key, alert.requested_usd, alert.requested_tokens) == (
        "run soft",
        "run:42",
        0.2,
        10,
    )
    assert alert.limit.reserved_usd == 0.4
    assert alert.message == (
        "soft budget 'run soft' on key 'run:42' is passed: $0.40 of $0.50 spent or held, "
        "and this call adds up to $0.20; going ahead"
    )


async def test_without_a_hook_a_soft_alert_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    budgets = ledger(BudgetLimit(key="run:*", tokens=10, mode="soft"))
    with caplog.at_level(logging.WARNING, logger="gearshift.budgets"):
        await budgets.reserve(KEYS, usd=0.0, tokens=20)
    assert "soft budget 'run:* lifetime soft' on key 'run:42' is passed: 0 tokens of 10 tokens" in caplog.text


async def test_an_alert_hook_that_raises_refuses_the_call_and_holds_nothing() -> None:
    def stop(alert: BudgetAlert) -> None:
        raise RuntimeError("over budget, stop the agent")

    budgets = ledger(BudgetLimit(key="run:*", usd=0.1, mode="soft"), on_alert=stop)
    with pytest.raises(RuntimeError, match="stop the agent"):
        await budgets.reserve(KEYS, usd=0.2, tokens=0)
    (run,) = await budgets.usage(["run:42"])
    assert run.reserved_usd == 0.0


async def test_reservations_expire_after_the_ttl() -> None:
    clock = Clock()
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0), clock=clock, reservation_ttl=60.0)
    crashed = await budgets.reserve(KEYS, usd=0.8, tokens=0)
    assert crashed.expires_at == clock.now + 60.0
    clock.now += 59
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(KEYS, usd=0.8, tokens=0)
    clock.now += 1
    late = await budgets.reserve(KEYS, usd=0.8, tokens=0)
    assert late.recorded
    await budgets.commit(crashed, usd=0.1, tokens=5)  # a late commit is still money spent
    (run,) = await budgets.usage(["run:42"])
    assert (run.spent_usd, run.reserved_usd) == (0.1, 0.8)


async def test_a_double_commit_is_counted_once() -> None:
    budgets = ledger()
    reservation = await budgets.reserve(KEYS, usd=0.2, tokens=5)
    await budgets.commit(reservation, usd=0.2, tokens=5)
    await budgets.commit(reservation, usd=0.2, tokens=5)
    (run,) = await budgets.usage(["run:42"])
    assert (run.spent_usd, run.spent_tokens) == (0.2, 5)


async def test_calendar_windows_start_over_at_local_midnight() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    clock = Clock(datetime(2024, 5, 1, 23, 0, tzinfo=tokyo).timestamp())
    budgets = ledger(BudgetLimit(key="agent:*", usd=1.0, window="day"), clock=clock, timezone="Asia/Tokyo")
    await budgets.commit(await budgets.reserve(KEYS, usd=1.0, tokens=0), usd=1.0, tokens=0)
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(KEYS, usd=0.1, tokens=0)
    clock.now += 3600  # 00:00 in Tokyo, still 15:00 the same day in UTC
    assert (await budgets.reserve(KEYS, usd=0.1, tokens=0)).recorded
    (status,) = (await budgets.status(["agent:researcher"])).limits
    assert (status.spent_usd, status.reserved_usd, status.window) == (0.0, 0.1, "day")


async def test_rolling_windows_forget_old_spend() -> None:
    clock = Clock()
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0, window="rolling:1h"), clock=clock)
    await budgets.commit(await budgets.reserve(KEYS, usd=1.0, tokens=0), usd=1.0, tokens=0)
    clock.now += 3599
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(KEYS, usd=0.1, tokens=0)
    clock.now += 2
    assert (await budgets.reserve(KEYS, usd=1.0, tokens=0)).recorded


async def test_allowance_prefers_the_callers_expected_steps() -> None:
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0), expected_steps=4)
    assert (await budgets.allowance(KEYS)).max_usd == pytest.approx(0.25)
    assert (await budgets.allowance(KEYS, expected_steps=10)).max_usd == pytest.approx(0.1)
    assert (await budgets.allowance(KEYS, step_index=2)).max_usd == pytest.approx(0.5)
    assert (await budgets.allowance(["agent:other"])).reason == "no budget limit applies"


async def test_applies_says_whether_any_limit_matches() -> None:
    budgets = ledger(BudgetLimit(key="team:search", usd=1.0))
    assert budgets.applies(KEYS)
    assert not budgets.applies(("agent:a", "run:1"))
    assert not ledger().applies(KEYS)


async def test_reset_lets_a_key_start_over() -> None:
    budgets = ledger(BudgetLimit(key="run:*", usd=1.0))
    await budgets.commit(await budgets.reserve(KEYS, usd=1.0, tokens=0), usd=1.0, tokens=0)
    await budgets.reset("run:42")
    assert (await budgets.reserve(KEYS, usd=1.0, tokens=0)).recorded
    assert "run:42" in await budgets.keys()


async def test_an_unreachable_store_is_an_error_that_hides_the_password() -> None:
    budgets = BudgetLedger(UnreachableStore(), [BudgetLimit(key="run:*", usd=1.0)])
    with pytest.raises(LedgerUnavailable) as caught:
        await budgets.reserve(KEYS, usd=0.1, tokens=0)
    message = str(caught.value)
    assert PASSWORD not in message
    assert message.startswith("the budget ledger at redis://:***@cache.internal:6379/0 cannot be reached")
    assert "ConnectionError" in message and "fail_open" in message
    for call in (
        budgets.status(KEYS),
        budgets.allowance(KEYS),
        budgets.keys(),
        budgets.reset("run:42"),
    ):
        with pytest.raises(LedgerUnavailable):
            await call


async def test_fail_open_lets_calls_through_unaccounted_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    budgets = BudgetLedger(UnreachableStore(), [BudgetLimit(key="run:*", usd=1.0)], fail_open=True)
    with caplog.at_level(logging.WARNING, logger="gearshift.budgets"):
        reservation = await budgets.reserve(KEYS, usd=5.0, tokens=0)
        await budgets.commit(reservation, usd=5.0, tokens=0)
        await budgets.release(reservation)
        allowance = await budgets.allowance(KEYS)
    assert not reservation.recorded
    assert (allowance.max_usd, allowance.hard_max_usd, allowance.downgrade) == (None, None, False)
    assert "fail_open" in allowance.reason
    assert "budget reserve went unrecorded" in caplog.text
    assert "kept in the journal" in caplog.text  # the spend itself is never let go
    assert [spend.usd for spend in await budgets.journaled()] == [5.0]
    assert PASSWORD not in caplog.text


async def test_a_failed_release_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    reservation = await ledger().reserve(KEYS, usd=0.1, tokens=0)
    budgets = BudgetLedger(UnreachableStore(), reservation_ttl=30.0)
    with caplog.at_level(logging.WARNING, logger="gearshift.budgets"):
        await budgets.release(reservation)
    assert f"cannot release reservation {reservation.id} (ConnectionError); it expires in 30 s" in caplog.text
    assert PASSWORD not in caplog.text


async def test_bad_amounts_and_keys_are_caller_errors() -> None:
    budgets = ledger()
    with pytest.raises(InvalidRequestError, match="finite number of dollars"):
        await budgets.reserve(KEYS, usd=-0.1, tokens=0)
    with pytest.raises(InvalidRequestError, match="finite number of dollars"):
        await budgets.reserve(KEYS, usd=float("nan"), tokens=0)
    with pytest.raises(
        InvalidRequestError, match=re.escape("finite number of dollars from 0 to 1e+09, got 1e+300")
    ):
        await budgets.reserve(KEYS, usd=1e300, tokens=0)  # was an OverflowError read as a store fault
    with pytest.raises(InvalidRequestError, match="token count"):
        await budgets.reserve(KEYS, usd=0.0, tokens=-1)
    with pytest.raises(InvalidRequestError, match="not one string"):
        await budgets.reserve("run:42", usd=0.0, tokens=0)
    nothing = await budgets.reserve((), usd=1.0, tokens=1)
    await budgets.commit(nothing, usd=1.0, tokens=1)
    assert await budgets.keys() == ()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"reservation_ttl": 0.0}, "reservation_ttl"),
        ({"reservation_ttl": 1e-9}, "reservation_ttl"),
        ({"reservation_ttl": 0.5}, "reservation_ttl"),
        ({"reservation_ttl": 86_401.0}, "reservation_ttl"),
        ({"reservation_ttl": float("inf")}, "reservation_ttl"),
        ({"reservation_ttl": float("nan")}, "reservation_ttl"),
        ({"expected_steps": 0}, "expected_steps"),
        ({"timezone": "Nowhere/City"}, "timezone"),
        ({"wait_seconds": -1.0}, "wait_seconds"),
        ({"wait_seconds": 3_601.0}, "wait_seconds"),
        ({"wait_seconds": float("nan")}, "wait_seconds"),
    ],
)
def test_bad_ledger_options_are_config_errors(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ledger(**options)
    assert caught.value.key == key


def test_two_limits_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="both named 'cap'") as caught:
        ledger(BudgetLimit(key="run:*", usd=1.0, name="cap"), BudgetLimit(key="agent:*", usd=1.0, name="cap"))
    assert caught.value.key == "limits[1].name"


async def test_from_config_builds_the_configured_ledger() -> None:
    config = BudgetsConfig.from_dict(
        {
            "store": "memory://",
            "reservation_ttl_seconds": 30,
            "wait_seconds": 2,
            "fail_open": True,
            "timezone": "Europe/Paris",
            "expected_steps": 5,
            "limits": [{"key": "run:*", "usd": 1.0}],
        }
    )
    budgets = BudgetLedger.from_config(config)
    assert isinstance(budgets.store, MemoryStore)
    assert budgets.wait_seconds == 2.0
    assert (budgets.reservation_ttl, budgets.fail_open, budgets.timezone, budgets.expected_steps) == (
        30.0,
        True,
        "Europe/Paris",
        5,
    )
    assert budgets.limits == config.limits
    assert repr(budgets) == "BudgetLedger(store='memory://', limits=1)"
    await budgets.aclose()


def test_the_public_names_are_exactly_these() -> None:
    assert sorted(gearshift.budgets.__all__) == [
        "Allowance",
        "BudgetAlert",
        "BudgetLedger",
        "BudgetLimit",
        "BudgetMode",
        "BudgetStatus",
        "BudgetStore",
        "BudgetsConfig",
        "JournaledSpend",
        "KeyUsage",
        "LimitCheck",
        "LimitStatus",
        "MemoryStore",
        "RedisStore",
        "Reservation",
        "ReserveResult",
        "SQLiteStore",
        "UsageQuery",
        "Window",
        "open_store",
        "pace",
    ]
    for name in gearshift.budgets.__all__:
        assert getattr(gearshift.budgets, name).__doc__
