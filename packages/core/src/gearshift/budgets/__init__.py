"""Budgets: keep every agent, run and team inside its spend, atomically.

```python
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore

ledger = BudgetLedger(
    MemoryStore(),
    [
        BudgetLimit(key="agent:*", usd=5.0, window="day"),  # each agent: $5 a day, refused above
        BudgetLimit(key="run:*", usd=0.50, mode="downgrade"),  # each run: cheaper models as it runs down
    ],
)
keys = ("agent:researcher", "run:42")
reservation = await ledger.reserve(keys, usd=0.012, tokens=3_000)  # BudgetExceeded if it does not fit
await ledger.commit(reservation, usd=0.009, tokens=2_400)  # the provider's real usage
allowance = await ledger.allowance(keys, step_index=3, expected_steps=10)  # what the next call may cost
```

Limits (`BudgetLimit`) cap dollars and/or tokens per spend key or key pattern, over a window
(`lifetime`, `rolling:1h`, `day`, `month`), in a mode (`hard`, `soft`, `downgrade`). The store is
`MemoryStore`, SQLite (the embedded default, safe across processes) or Redis (many hosts), chosen by
a URL with `open_store`; `[budgets]` in `gearshift.toml` is `BudgetsConfig`. A commit the store
cannot take is kept in a local journal (`JournaledSpend` records) and replayed when it answers.
"""

from ._journal import JournaledSpend
from ._ledger import BudgetLedger
from ._limits import BudgetLimit, BudgetMode, Window
from ._memory import MemoryStore
from ._open import open_store
from ._pacing import Allowance, pace
from ._redis import RedisStore
from ._settings import BudgetsConfig
from ._sqlite import SQLiteStore
from ._status import BudgetAlert, BudgetStatus, LimitStatus, Reservation
from ._store import BudgetStore, KeyUsage, LimitCheck, ReserveResult, UsageQuery

__all__ = [
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
