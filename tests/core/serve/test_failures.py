"""How core errors become HTTP answers (pure: no server)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gearshift import (
    AllModelsFailed,
    BudgetExceeded,
    InvalidRequestError,
    LedgerUnavailable,
    NoEligibleModel,
    ProviderError,
    UnknownModelError,
)
from gearshift.serve._failures import failure_from


def _refusal(window: str) -> BudgetExceeded:
    return BudgetExceeded(limit_name="agent:* day hard", limit=1.0, spent=0.99, requested=0.05, window=window)


def test_a_day_window_reopens_at_the_next_local_midnight() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 3, 28, 23, 0, tzinfo=paris).timestamp()  # the DST night follows
    failure = failure_from(_refusal("day"), timezone="Europe/Paris", now=now)
    assert failure.status == 429 and failure.kind == "budget_exceeded"
    assert failure.headers["retry-after"] == "3600"
    assert "limit $1.00 per day" in failure.message and "$0.05" in failure.message


def test_a_month_window_reopens_on_the_first() -> None:
    now = datetime(2026, 2, 27, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert failure_from(_refusal("month"), now=now).headers["retry-after"] == str(36 * 3600)


@pytest.mark.parametrize("window", ["lifetime", "rolling:1h"])
def test_windows_that_never_reopen_at_one_moment_send_no_retry_after(window: str) -> None:
    assert "retry-after" not in failure_from(_refusal(window)).headers


def test_the_sdks_are_told_not_to_retry_only_what_no_retry_can_pass() -> None:
    """Spent out, and no window reopening within the minute an SDK waits: no retry. Calls in flight
    that hold the rest may end (and free it), and a window reopening within the minute lets one pass."""
    assert failure_from(_refusal("lifetime")).headers["x-should-retry"] == "false"
    held = BudgetExceeded(limit_name="agent:* hard", limit=1.0, spent=0.5, reserved=0.49, requested=0.05)
    assert "x-should-retry" not in failure_from(held).headers
    just_before_midnight = datetime(2026, 3, 2, 23, 59, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    reopening = failure_from(_refusal("day"), now=just_before_midnight).headers
    assert reopening["retry-after"] == "30" and "x-should-retry" not in reopening


def test_each_core_error_has_its_status() -> None:
    failed = AllModelsFailed(
        "every model failed",
        [
            ProviderError("boom", model_id="a", kind="server", status_code=500),
            ProviderError("slow", model_id="b", kind="timeout"),
        ],
    )
    cases = [
        (UnknownModelError("x", ["a", "b"]), 404, "model"),
        (InvalidRequestError("'messages[1].content': must be a string"), 400, "messages[1].content"),
        (InvalidRequestError("tools[2] 'f' is malformed: name: ..."), 400, "tools[2]"),
        (InvalidRequestError("the request body is not valid JSON: ..."), 400, None),
        (NoEligibleModel({"a": "it cannot call tools"}), 400, None),
        (LedgerUnavailable("redis://:hunter2@db:6379/0", "refused"), 503, None),
        (ProviderError("bad schema", model_id="a", kind="bad_request", status_code=400), 400, None),
        (failed, 502, None),
    ]
    limited = AllModelsFailed(
        "every model was rate limited",
        [
            ProviderError("slow down", model_id="a", kind="rate_limit", status_code=429, retry_after=2.2),
            ProviderError("slow down", model_id="b", kind="rate_limit", status_code=429),
        ],
    )
    assert (failure_from(limited).status, failure_from(limited).headers) == (429, {"retry-after": "3"})
    for error, status, param in cases:
        failure = failure_from(error)
        assert (failure.status, failure.param) == (status, param), error
    assert (
        "boom [server (HTTP 500): a]" in failure_from(failed).message
        and "slow [timeout: b]" in failure_from(failed).message
    )
    assert "hunter2" not in failure_from(cases[3][0]).message
