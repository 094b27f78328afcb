"""`BudgetLedger`: atomic reserve -> commit -> release of spend against budget limits.

Before a call the router reserves its estimated cost on the step's spend keys (`agent:<id>`,
`run:<id>`, caller keys such as `team:search`); the store checks every refusing limit and records
the reservation in one atomic step, so parallel steps can never all pass a check only some of them
fit. After the call the router commits the real cost (streamed calls too) and the reservation is
dropped; a failed or cancelled call releases it. A reservation nobody settles (a crashed process)
stops counting after `reservation_ttl` seconds.

The ledger turns limits, windows and modes into `LimitCheck`s; the store only sums, compares and
records. Hard and downgrade limits refuse (`BudgetExceeded`); soft limits call `on_alert` and go on.
A store that cannot be reached raises `LedgerUnavailable`, unless `fail_open` lets calls through
unaccounted (logged, without secrets).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._errors import BudgetExceeded, ConfigError, GearshiftError, InvalidRequestError, LedgerUnavailable
from ._limits import BudgetLimit, BudgetMode, repeated_name, time_zone
from ._pacing import Allowance, format_usd, pace
from ._status import BudgetAlert, BudgetStatus, LimitStatus, Reservation
from ._store import BudgetStore, KeyUsage, LimitCheck, UsageQuery, exceeded_cap

if TYPE_CHECKING:
    from ._settings import BudgetsConfig

__all__ = ["BudgetLedger"]

logger = logging.getLogger("gearshift.budgets")

_UNCHECKED = Allowance(
    None, None, None, None, False, "the budget ledger cannot be reached; calls go unaccounted (fail_open)"
)


class BudgetLedger:
    """Spend and reservations against budget limits, kept in a `BudgetStore`.

    `limits` apply to the spend keys they match; `reservation_ttl` is how long (seconds) an unsettled
    reservation holds budget; `timezone` is where calendar windows start; `expected_steps` is the
    default run length for pacing; `default_agent` is the agent a step that names none is charged to;
    `on_alert` hears about soft limits passed (default: a logged warning); `clock` gives Unix time and
    is there for tests.
    """

    def __init__(
        self,
        store: BudgetStore,
        limits: Sequence[BudgetLimit] = (),
        *,
        reservation_ttl: float = 600.0,
        fail_open: bool = False,
        timezone: str = "UTC",
        expected_steps: int | None = None,
        default_agent: str = "anonymous",
        on_alert: Callable[[BudgetAlert], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not reservation_ttl > 0 or math.isinf(reservation_ttl):
            raise ConfigError(
                f"must be a positive number of seconds, got {reservation_ttl}", key="reservation_ttl"
            )
        if expected_steps is not None and expected_steps <= 0:
            raise ConfigError(f"must be positive, got {expected_steps}", key="expected_steps")
        if not default_agent or default_agent != "".join(default_agent.split()):
            raise ConfigError(
                f"must be a non-empty agent id without spaces, got {default_agent!r}", key="default_agent"
            )
        try:
            self._tz = time_zone(timezone)
        except ValueError as exc:
            raise ConfigError(str(exc), key="timezone") from None
        self.limits: tuple[BudgetLimit, ...] = tuple(limits)
        repeated = repeated_name(self.limits)
        if repeated is not None:
            raise ConfigError(
                f"limits[{repeated[0]}] and limits[{repeated[1]}] are both named "
                f"{self.limits[repeated[0]].name!r}; give each limit a distinct name",
                key=f"limits[{repeated[1]}].name",
            )
        self.store = store
        self.reservation_ttl = reservation_ttl
        self.fail_open = fail_open
        self.timezone = timezone
        self.expected_steps = expected_steps
        self.default_agent = default_agent
        self._on_alert = on_alert
        self._clock = clock

    @classmethod
    def from_config(
        cls,
        config: BudgetsConfig,
        *,
        on_alert: Callable[[BudgetAlert], None] | None = None,
        source: str | None = None,
    ) -> BudgetLedger:
        """The ledger `[budgets]` describes; `source` (the config file) is named in store URL errors."""
        from ._open import open_store

        return cls(
            open_store(config.store, source=source, key="budgets.store"),
            config.limits,
            reservation_ttl=config.reservation_ttl_seconds,
            fail_open=config.fail_open,
            timezone=config.timezone,
            expected_steps=config.expected_steps,
            default_agent=config.default_agent,
            on_alert=on_alert,
        )

    def __repr__(self) -> str:
        return f"BudgetLedger(store={self.store.url!r}, limits={len(self.limits)})"

    def applies(self, keys: Sequence[str]) -> bool:
        """Whether any limit matches any of `keys` (when none does, pacing has nothing to say)."""
        return any(limit.matches(key) for limit in self.limits for key in _keys(keys))

    async def reserve(
        self, keys: Sequence[str], *, usd: float, tokens: int, model_id: str | None = None
    ) -> Reservation:
        """Hold (`usd`, `tokens`) on every key until commit, release or expiry.

        Raises `BudgetExceeded` when a hard or downgrade limit would be passed (nothing is held then),
        and `LedgerUnavailable` when the store cannot be reached (unless `fail_open`). A soft limit
        that would be passed calls `on_alert` and the reservation stands.
        """
        keys = _keys(keys)
        _check_amounts(usd, tokens)
        now = self._clock()
        reservation = Reservation(
            uuid.uuid4().hex, keys, usd, tokens, now + self.reservation_ttl, model_id, recorded=True
        )
        if not keys:
            return reservation
        pairs = self._matching(keys)
        checks = [self._check(limit, key, now) for limit, key in pairs]
        try:
            result = await self.store.reserve(
                reservation.id, keys, usd, tokens, checks, now=now, expires_at=reservation.expires_at
            )
        except Exception as exc:
            self._unreachable(exc, "reserve")
            return Reservation(
                reservation.id, keys, usd, tokens, reservation.expires_at, model_id, recorded=False
            )
        statuses = [_status(limit, used) for (limit, _), used in zip(pairs, result.usage, strict=True)]
        if not result.ok:
            refused = next((i for i, check in enumerate(checks) if check == result.refused_by), None)
            raise _refusal(statuses[refused] if refused is not None else statuses[0], usd, tokens)
        try:
            self._alert(statuses, usd, tokens)
        except BaseException:
            await self.release(reservation)  # the hook refused the call: hold nothing for it
            raise
        return reservation

    async def commit(self, reservation: Reservation, *, usd: float, tokens: int) -> None:
        """Record what the call really cost on the reservation's keys, and drop the reservation.

        A late commit (after the reservation expired) is still recorded; a second commit of the same
        reservation is not. Raises `LedgerUnavailable` when the store cannot be reached (unless
        `fail_open`: then the spend goes unrecorded, and a warning is logged).
        """
        _check_amounts(usd, tokens)
        if not reservation.keys:
            return
        try:
            await self.store.commit(reservation.id, reservation.keys, usd, tokens, now=self._clock())
        except Exception as exc:
            self._unreachable(exc, "commit")

    async def release(self, reservation: Reservation) -> None:
        """Drop a reservation without recording spend (the call failed or was cancelled). Idempotent.

        A store fault is logged, never raised: the reservation then expires after `reservation_ttl`,
        and raising here would hide the error that made the caller release.
        """
        if not reservation.recorded or not reservation.keys:
            return
        try:
            await self.store.release(reservation.id)
        except Exception as exc:
            logger.warning(
                "budget ledger at %s: cannot release reservation %s (%s); it expires in %.0f s",
                self.store.url,
                reservation.id,
                type(exc).__name__,
                self.reservation_ttl,
            )

    async def status(self, keys: Sequence[str]) -> BudgetStatus:
        """Where every limit that applies to `keys` stands now. Raises `LedgerUnavailable` on a store
        fault (even when `fail_open`: there is nothing true to report)."""
        keys = _keys(keys)
        now = self._clock()
        pairs = self._matching(keys)
        queries = [UsageQuery(key, limit.window.start(now, self._tz)) for limit, key in pairs]
        try:
            usage = await self.store.usage(queries, now=now) if queries else ()
        except Exception as exc:
            raise self._unavailable(exc) from exc
        return BudgetStatus(
            keys, tuple(_status(limit, used) for (limit, _), used in zip(pairs, usage, strict=True))
        )

    async def allowance(
        self, keys: Sequence[str], *, step_index: int = 0, expected_steps: int | None = None
    ) -> Allowance:
        """What the next call on `keys` may cost (see `_pacing`); the caller's `expected_steps` wins
        over the configured one. With `fail_open` and the store down: unconstrained."""
        try:
            status = await self.status(keys)
        except LedgerUnavailable:
            if not self.fail_open:
                raise
            logger.warning("budget ledger at %s cannot be reached; pacing skipped", self.store.url)
            return _UNCHECKED
        steps = expected_steps if expected_steps is not None else self.expected_steps
        return pace(status, step_index=step_index, expected_steps=steps)

    async def usage(self, keys: Sequence[str], *, since: float = 0.0) -> tuple[KeyUsage, ...]:
        """Each key's spend since `since` (default: ever) and live reservations, limits or not."""
        queries = [UsageQuery(key, since) for key in _keys(keys)]
        try:
            return await self.store.usage(queries, now=self._clock()) if queries else ()
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def keys(self) -> tuple[str, ...]:
        """Every key with recorded spend or a live reservation, sorted."""
        try:
            return await self.store.keys()
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def reset(self, key: str) -> None:
        """Forget a key's spend and reservations (its limits start over)."""
        try:
            await self.store.reset(key)
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def aclose(self) -> None:
        """Close the store's connections and files. Idempotent."""
        await self.store.aclose()

    # -- internals ------------------------------------------------------------------------------

    def _matching(self, keys: tuple[str, ...]) -> list[tuple[BudgetLimit, str]]:
        return [(limit, key) for limit in self.limits for key in keys if limit.matches(key)]

    def _check(self, limit: BudgetLimit, key: str, now: float) -> LimitCheck:
        return LimitCheck(
            limit.name, key, limit.window.start(now, self._tz), limit.usd, limit.tokens, limit.mode.refuses
        )

    def _alert(self, statuses: Sequence[LimitStatus], usd: float, tokens: int) -> None:
        for status in statuses:
            if status.mode is not BudgetMode.SOFT:
                continue
            unit = _passed(status, usd, tokens)
            if unit is None:
                continue
            alert = BudgetAlert(status, usd, tokens, _alert_message(status, usd, tokens, unit))
            if self._on_alert is None:
                logger.warning("%s", alert.message)
            else:
                self._on_alert(alert)

    def _unavailable(self, exc: Exception) -> GearshiftError:
        if isinstance(exc, LedgerUnavailable) and self.fail_open and not exc.fail_open:
            return LedgerUnavailable(exc.url, exc.reason, fail_open=True)  # no advice to turn it on
        if isinstance(exc, GearshiftError):  # the store already said what is wrong, safely
            return exc
        return LedgerUnavailable(self.store.url, f"{type(exc).__name__}: {exc}", fail_open=self.fail_open)

    def _unreachable(self, exc: Exception, step: str) -> None:
        """Raise `LedgerUnavailable` for a store fault during `step`, or log it when `fail_open`."""
        error = self._unavailable(exc)
        if not self.fail_open:
            raise error from exc
        # Not the error's own text: it advises turning fail_open on, which it already is.
        what = error.summary if isinstance(error, LedgerUnavailable) else error
        logger.warning("budget %s went unrecorded (fail_open is on, the call goes ahead): %s", step, what)


def _keys(keys: Sequence[str]) -> tuple[str, ...]:
    if isinstance(keys, str):
        raise InvalidRequestError("budget keys must be a sequence of keys, not one string")
    return tuple(dict.fromkeys(keys))


def _check_amounts(usd: float, tokens: int) -> None:
    if not (usd >= 0 and math.isfinite(usd)):
        raise InvalidRequestError(f"a budget amount must be a finite number of dollars >= 0, got {usd}")
    if tokens < 0:
        raise InvalidRequestError(f"a budget token count must be >= 0, got {tokens}")


def _status(limit: BudgetLimit, used: KeyUsage) -> LimitStatus:
    return LimitStatus(
        limit.name,
        used.key,
        limit.mode,
        str(limit.window),
        limit.usd,
        limit.tokens,
        used.spent_usd,
        used.spent_tokens,
        used.reserved_usd,
        used.reserved_tokens,
    )


def _passed(status: LimitStatus, usd: float, tokens: int) -> str | None:
    return exceeded_cap(
        status.limit_usd,
        status.limit_tokens,
        status.spent_usd + status.reserved_usd,
        status.spent_tokens + status.reserved_tokens,
        usd,
        tokens,
    )


def _refusal(status: LimitStatus, usd: float, tokens: int) -> BudgetExceeded:
    unit = _passed(status, usd, tokens) or ("usd" if status.limit_usd is not None else "tokens")
    dollars = unit == "usd"
    return BudgetExceeded(
        limit_name=status.name,
        key=status.key,
        window=status.window,
        limit=(status.limit_usd if dollars else status.limit_tokens) or 0.0,
        spent=status.spent_usd if dollars else status.spent_tokens,
        reserved=status.reserved_usd if dollars else status.reserved_tokens,
        requested=usd if dollars else tokens,
        unit=unit,
    )


def _alert_message(status: LimitStatus, usd: float, tokens: int, unit: str) -> str:
    if unit == "usd":
        assert status.limit_usd is not None
        used, cap, need = (
            format_usd(status.spent_usd + status.reserved_usd),
            format_usd(status.limit_usd),
            format_usd(usd),
        )
    else:
        used, cap, need = (
            f"{status.spent_tokens + status.reserved_tokens} tokens",
            f"{status.limit_tokens} tokens",
            f"{tokens} tokens",
        )
    return (
        f"soft budget '{status.name}' on key '{status.key}' is passed: {used} of {cap} spent or held, "
        f"and this call adds up to {need}; going ahead"
    )
