"""`BudgetLedger`: atomic reserve -> commit -> release of spend against budget limits.

Before a call the router reserves its estimated cost on the step's spend keys (`agent:<id>`,
`run:<id>`, caller keys such as `team:search`); the store checks every refusing limit and records
the reservation in one atomic step, so parallel steps can never all pass a check only some of them
fit. After the call the router commits the real cost (streamed calls too) and the reservation is
dropped; a failed or cancelled call releases it. While the call runs, a heartbeat renews the
reservation within every 0.6 x `reservation_ttl`, so a call longer than the ttl keeps what it holds; a
reservation nobody settles (a crashed process) stops counting `reservation_ttl` seconds after its
last renewal. A call that a limit refuses only for what other calls hold may wait for one of them
to settle (`wait_for_room`; the router does, up to `wait_seconds`) and try again.

Spend is never lost to a store fault: a commit the store cannot take goes to a local, fsynced
journal (`_journal`) and the caller keeps the answer it paid for; the next call that finds the store
answering replays the journal into it (idempotently: commits carry their reservation id). A reserve
replays it first, and is refused (`LedgerUnavailable`) when it cannot: a limit is never checked
against a total that lacks spend the journal still holds.

The ledger turns limits, windows and modes into `LimitCheck`s; the store only sums, compares and
records. Hard and downgrade limits refuse (`BudgetExceeded`); soft limits call `on_alert` and go on.
A store that cannot be reached at reserve time raises `LedgerUnavailable`, unless `fail_open` lets
calls through unaccounted (logged, without secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import BudgetExceeded, ConfigError, GearshiftError, InvalidRequestError, LedgerUnavailable
from ..config._data_dir import check_folder
from ._journal import JournaledSpend, SpendJournal, default_journal_path
from ._limits import BudgetLimit, BudgetMode, repeated_name, time_zone
from ._pacing import Allowance, format_usd, pace
from ._settings import DEFAULT_WAIT_SECONDS, MAX_RESERVATION_TTL, MAX_WAIT_SECONDS, MIN_RESERVATION_TTL
from ._status import BudgetAlert, BudgetStatus, LimitStatus, Reservation
from ._store import MAX_USD, BudgetStore, KeyUsage, LimitCheck, UsageQuery, exceeded_cap

if TYPE_CHECKING:
    from ._settings import BudgetsConfig

__all__ = ["BudgetLedger"]

logger = logging.getLogger("gearshift.budgets")

_RENEW_AFTER = 0.4  # share of the ttl after which a running call renews
_SWEEP_EVERY = 0.2  # share of the ttl between looks for reservations to renew
MAX_HOLD_SECONDS = 6 * 3600.0
"""The longest a heartbeat keeps an unsettled reservation alive: no model call runs this long, so a
reservation still unsettled by then was forgotten by its caller, and is left to expire."""
CLOSE_WAIT_SECONDS = 5.0
"""How long `BudgetLedger.aclose` waits for the calls holding reservations to settle."""
_SETTLED_POLL_SECONDS = 0.01
_JOURNAL_CHECK_EVERY = 1.0  # seconds between looks at the journal file for other processes' spend
_REPLAY_BACKOFF = 10.0  # seconds before replaying again after a replay the store refused
_ROOM_POLL_SECONDS = 0.25  # a call waiting for room looks again this often (other processes settle too)

_UNCHECKED = Allowance(
    None, None, None, None, False, "the budget ledger cannot be reached; calls go unaccounted (fail_open)"
)


class BudgetLedger:
    """Spend and reservations against budget limits, kept in a `BudgetStore`.

    `limits` apply to the spend keys they match; `reservation_ttl` is how long (seconds, 1 to 86,400)
    a reservation holds budget after its last renewal (a running call renews its own); `wait_seconds`
    (0 to 3,600) is how long a call refused only because of what other running calls hold waits for
    them to settle before the router plans it again (`wait_for_room`); `timezone` is
    where calendar windows start; `expected_steps` is the default run length for pacing;
    `default_agent` is the agent a step that names none is charged to; `on_alert` hears about soft
    limits passed (default: a logged warning); `journal` is the file that keeps spend the store could
    not take (default: next to a SQLite ledger, else in the user's data folder; a folder you name must
    exist, or `ConfigError` on `journal`); `clock` gives Unix time and is there for tests.
    """

    def __init__(
        self,
        store: BudgetStore,
        limits: Sequence[BudgetLimit] = (),
        *,
        reservation_ttl: float = 600.0,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        fail_open: bool = False,
        timezone: str = "UTC",
        expected_steps: int | None = None,
        default_agent: str = "anonymous",
        on_alert: Callable[[BudgetAlert], None] | None = None,
        journal: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_RESERVATION_TTL <= reservation_ttl <= MAX_RESERVATION_TTL:
            raise ConfigError(
                f"must be between {MIN_RESERVATION_TTL:g} and {MAX_RESERVATION_TTL:g} seconds, got "
                f"{reservation_ttl}",
                key="reservation_ttl",
            )
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:  # NaN fails both
            raise ConfigError(
                f"must be between 0 and {MAX_WAIT_SECONDS:g} seconds, got {wait_seconds}", key="wait_seconds"
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
        self.wait_seconds = wait_seconds
        self.fail_open = fail_open
        self.timezone = timezone
        self.expected_steps = expected_steps
        self.default_agent = default_agent
        self._on_alert = on_alert
        self._clock = clock
        if journal is not None:  # found now, not when the store is down and spend needs keeping
            check_folder(Path(journal), what="the spend journal", key="journal")
        self.journal = SpendJournal(Path(journal) if journal is not None else _journal_path(store))
        self._journal_checked = -math.inf  # monotonic time of the last look at the journal
        self._journal_owed = False  # whether spend this ledger journaled may not be replayed yet
        self._heartbeats: dict[str, _Heartbeat] = {}  # reservations of calls still running
        self._sweeps: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}
        self._renewals: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Future[None]] = set()  # releases whose caller was cancelled
        # Reservations not yet committed or released, with their event loop: `aclose` waits for them.
        self._unsettled: dict[str, asyncio.AbstractEventLoop] = {}
        self._settled: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}  # set when one settles

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
            wait_seconds=config.wait_seconds,
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
            if self._journal_owed or self._journal_due():
                await self.replay_journal()  # what the checks sum must include it
            result = await self.store.reserve(
                reservation.id, keys, usd, tokens, checks, now=now, expires_at=reservation.expires_at
            )
        except asyncio.CancelledError:
            # The store may record it all the same (SQLite's thread runs the queued write, Redis the
            # script it was sent): a caller that gave up must not hold budget until the ttl.
            await self._finish(self._release(reservation.id))
            raise
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
        self._start_heartbeat(reservation.id)
        self._unsettled[reservation.id] = asyncio.get_running_loop()
        return reservation

    async def commit(self, reservation: Reservation, *, usd: float, tokens: int) -> None:
        """Record what the call really cost on the reservation's keys, and drop the reservation.

        A late commit (after the reservation expired) is still recorded; a second commit of the same
        reservation is not. When the store cannot take it, the spend goes to the journal (fsynced)
        and is recorded when the store answers again; the caller keeps its answer. Only when the
        journal cannot be written either: `LedgerUnavailable` (unless `fail_open`: a warning). A
        commit cancelled under way goes to the journal too (whether the store took it is unknown;
        a replay records it once either way), so a caller that gives up never takes back the spend.
        """
        _check_amounts(usd, tokens)
        self._stop_heartbeat(reservation.id)
        if not reservation.keys:
            return
        now = self._clock()
        spend = JournaledSpend(reservation.id, reservation.keys, usd, tokens, now)
        try:
            await self.store.commit(reservation.id, reservation.keys, usd, tokens, now=now)
        except asyncio.CancelledError:
            # A timeout, a client that hung up, `asyncio.run` ending: the call was paid for all the
            # same, and a store slow to answer (Redis reconnecting) may never have been sent it.
            try:
                await self._journal_commit(spend, None)
            except LedgerUnavailable as error:  # the cancel goes on; nobody else hears of this
                logger.error("budget commit of a cancelled call went unrecorded: %s", error)
            raise
        except Exception as exc:
            await self._journal_commit(spend, exc)
            return
        finally:
            self._settle(reservation.id)
        if self._journal_due():
            await self._replay_quietly()

    async def replay_journal(self) -> int:
        """Record the journal's spend in the store (each commit once, however often it is replayed)
        and drop it from the journal; how many commits were replayed. `LedgerUnavailable` when the
        store still cannot take them (those stay in the journal)."""
        pending = await asyncio.to_thread(self.journal.pending)
        done: list[str] = []
        try:
            self._journal_owed = True  # until every record it found is in the store
            for spend in pending:
                await self.store.commit(
                    spend.reservation_id, spend.keys, spend.usd, spend.tokens, now=spend.at
                )
                done.append(spend.reservation_id)
            self._journal_owed = False
        except Exception as exc:
            raise self._unavailable(exc) from exc
        finally:
            if done:
                await asyncio.to_thread(self.journal.forget, done)
                logger.info(
                    "budget ledger at %s: %d journaled commit(s) recorded from %s",
                    self.store.url,
                    len(done),
                    self.journal.path,
                )
        return len(done)

    async def journaled(self) -> tuple[JournaledSpend, ...]:
        """Spend kept in the journal and not yet recorded in the store (see `replay_journal`)."""
        return await asyncio.to_thread(self.journal.pending)

    async def release(self, reservation: Reservation) -> None:
        """Drop a reservation without recording spend (the call failed or was cancelled). Idempotent.

        A store fault is logged, never raised: the reservation then expires after `reservation_ttl`,
        and raising here would hide the error that made the caller release.
        """
        self._stop_heartbeat(reservation.id)
        if not reservation.recorded or not reservation.keys:
            return
        try:
            await self._release(reservation.id)
        except asyncio.CancelledError:
            # The store may never have been sent it (Redis reconnecting): send it again, to the end,
            # or the budget stays held until the ttl.
            await self._finish(self._release(reservation.id))
            raise
        finally:
            self._settle(reservation.id)

    async def wait_for_room(self, timeout: float) -> None:
        """Wait until a reservation this ledger holds settles (commits or releases, freeing what its
        call did not spend), or at most `timeout` seconds, and never longer than a quarter second:
        calls of other processes settle too, and only the store sees those."""
        loop = asyncio.get_running_loop()
        settled = self._settled.get(loop)
        if settled is None:
            for closed in [other for other in self._settled if other.is_closed()]:
                del self._settled[closed]
            settled = self._settled[loop] = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(settled.wait(), max(0.0, min(timeout, _ROOM_POLL_SECONDS)))

    def _settle(self, reservation_id: str) -> None:
        """`reservation_id` no longer holds budget: wake the calls of this loop waiting for room."""
        self._unsettled.pop(reservation_id, None)
        with contextlib.suppress(RuntimeError):  # (no running loop: nobody of it waits)
            settled = self._settled.pop(asyncio.get_running_loop(), None)
            if settled is not None:
                settled.set()

    async def _release(self, reservation_id: str) -> None:
        try:
            await self.store.release(reservation_id)
        except Exception as exc:
            logger.warning(
                "budget ledger at %s: cannot release reservation %s (%s); it expires in %.0f s",
                self.store.url,
                reservation_id,
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
        """Wait for the calls still holding reservations to settle (up to `CLOSE_WAIT_SECONDS`), then
        close the store's connections and files. Idempotent.

        A server shutting down cancels its calls and closes its router at once: a cancelled call
        settles (commits what it was charged) only after that, and a store closed first left its
        reservation held and its spend in the journal until some later process replayed it. The
        wait goes on through a cancellation of the closing task (anyio's task groups cancel at every
        await while they unwind), which is raised once it ends."""
        try:
            await self._wait_for_settlements()
        finally:
            await self.store.aclose()

    async def _wait_for_settlements(self) -> None:
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        cancelled: asyncio.CancelledError | None = None
        while pending := [rid for rid, loop in self._unsettled.items() if not loop.is_closed()]:
            if time.monotonic() >= deadline:
                logger.warning(
                    "budget ledger at %s closed with %d reservation(s) of calls still running: each "
                    "expires %.0f s after its last renewal",
                    self.store.url,
                    len(pending),
                    self.reservation_ttl,
                )
                break
            try:
                await asyncio.sleep(_SETTLED_POLL_SECONDS)
            except asyncio.CancelledError as error:
                cancelled = error
        if cancelled is not None:
            raise cancelled

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

    # -- the journal ----------------------------------------------------------------------------

    def _journal_due(self) -> bool:
        """Whether to look for journaled spend now: at most once a second, and only when there is."""
        checked = time.monotonic()
        if checked - self._journal_checked < _JOURNAL_CHECK_EVERY:
            return False
        self._journal_checked = checked
        return self.journal.maybe_pending()

    async def _replay_quietly(self) -> None:
        try:
            await self.replay_journal()
        except Exception as exc:  # the store is still down: the spend waits in the journal
            self._journal_checked = time.monotonic() + _REPLAY_BACKOFF - _JOURNAL_CHECK_EVERY
            logger.warning("budget journal %s not replayed yet: %s", self.journal.path, exc)

    async def _journal_commit(self, spend: JournaledSpend, exc: Exception | None) -> None:
        """Keep `spend` in the journal after the store failed with `exc` (None: the commit was
        cancelled under way)."""
        error = self._unavailable(exc) if exc is not None else "the commit was cancelled under way"
        try:
            await asyncio.to_thread(self.journal.append, spend)
        except OSError as journal_error:
            if not self.fail_open:
                raise LedgerUnavailable(
                    self.store.url,
                    f"{error}; and the spend could not be journaled in {self.journal.path} "
                    f"({type(journal_error).__name__}: {journal_error})",
                ) from exc
            logger.warning("budget commit went unrecorded (fail_open): %s", error)
            return
        self._journal_checked = -math.inf  # replay as soon as the store answers again
        self._journal_owed = True  # and before the next reserve, whatever a failed replay put off
        logger.warning(
            "budget commit of reservation %s (%s) kept in the journal %s until the store answers: %s",
            spend.reservation_id,
            format_usd(spend.usd),
            self.journal.path,
            str(error).split("; calls are refused", 1)[0],  # they are not: the spend is kept
        )

    # -- the heartbeat ----------------------------------------------------------------------------
    # One sweep per event loop, every 0.2 ttl, renews the reservations of that loop last renewed at
    # least 0.4 ttl ago: each is renewed within 0.6 ttl, long before it lapses, and a reserve and a
    # commit cost a dict entry, not a timer each.

    def _start_heartbeat(self, reservation_id: str) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        self._heartbeats[reservation_id] = _Heartbeat(loop, now, now + MAX_HOLD_SECONDS)
        if loop not in self._sweeps:
            self._forget_closed_loops()
            self._sweeps[loop] = loop.call_later(self.reservation_ttl * _SWEEP_EVERY, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeps.pop(loop, None)
        now = time.monotonic()
        mine = [(rid, beat) for rid, beat in list(self._heartbeats.items()) if beat.loop is loop]
        for reservation_id, beat in mine:
            if now >= beat.deadline:  # held this long, it was forgotten: let it lapse
                self._heartbeats.pop(reservation_id, None)
            elif now - beat.renewed_at >= self.reservation_ttl * _RENEW_AFTER:
                beat.renewed_at = now
                renewal = loop.create_task(self._renew(reservation_id))
                self._renewals.add(renewal)  # a task nobody holds may be collected mid-way
                renewal.add_done_callback(self._renewals.discard)
        if any(now < beat.deadline for _, beat in mine):
            self._sweeps[loop] = loop.call_later(self.reservation_ttl * _SWEEP_EVERY, self._sweep, loop)

    async def _renew(self, reservation_id: str) -> None:
        now = self._clock()
        try:
            renewed = await self.store.renew(reservation_id, now=now, expires_at=now + self.reservation_ttl)
        except Exception as exc:  # tried again at the next sweep; the reservation lapses if none lands
            logger.warning(
                "budget ledger at %s: cannot renew reservation %s (%s)",
                self.store.url,
                reservation_id,
                type(exc).__name__,
            )
            return
        if not renewed:  # settled or lapsed meanwhile: nothing left to keep alive
            self._heartbeats.pop(reservation_id, None)

    def _forget_closed_loops(self) -> None:
        """Drop the sweeps and heartbeats of event loops that have closed (nothing runs them now)."""
        for loop in [loop for loop in self._sweeps if loop.is_closed()]:
            self._sweeps.pop(loop, None)
        for reservation_id, beat in list(self._heartbeats.items()):
            if beat.loop.is_closed():
                self._heartbeats.pop(reservation_id, None)

    def _stop_heartbeat(self, reservation_id: str) -> None:
        self._heartbeats.pop(reservation_id, None)  # a renewal under way finds it settled, and stops

    async def _finish(self, settling: Coroutine[Any, Any, None]) -> None:
        """Run `settling` for a caller being cancelled: in a task of its own (held here, so it is not
        collected mid-way) that the cancel waits for (a second cancel stops only the wait)."""
        task = asyncio.ensure_future(settling)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        await asyncio.wait({task})

    def _unreachable(self, exc: Exception, step: str) -> None:
        """Raise `LedgerUnavailable` for a store fault during `step`, or log it when `fail_open`."""
        error = self._unavailable(exc)
        if not self.fail_open:
            raise error from exc
        # Not the error's own text: it advises turning fail_open on, which it already is.
        what = error.summary if isinstance(error, LedgerUnavailable) else error
        logger.warning("budget %s went unrecorded (fail_open is on, the call goes ahead): %s", step, what)


@dataclass(slots=True)
class _Heartbeat:
    """A running call's reservation: the loop that renews it, when it last did, and until when."""

    loop: asyncio.AbstractEventLoop
    renewed_at: float  # time.monotonic()
    deadline: float  # time.monotonic(): renewed no longer after this (see MAX_HOLD_SECONDS)


def _journal_path(store: BudgetStore) -> Path:
    """The journal next to a SQLite ledger file, else one in the user's data folder for the store."""
    path = getattr(store, "path", None)
    sqlite_path = path if isinstance(path, Path) and store.url.startswith("sqlite:") else None
    return default_journal_path(store.url, sqlite_path=sqlite_path, prefix=str(getattr(store, "prefix", "")))


def _keys(keys: Sequence[str]) -> tuple[str, ...]:
    if isinstance(keys, str):
        raise InvalidRequestError("budget keys must be a sequence of keys, not one string")
    return tuple(dict.fromkeys(keys))


def _check_amounts(usd: float, tokens: int) -> None:
    if not 0 <= usd <= MAX_USD:  # NaN fails both
        raise InvalidRequestError(
            f"a budget amount must be a finite number of dollars from 0 to {MAX_USD:.0e}, got {usd}"
        )
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
