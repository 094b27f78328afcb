from gearshift._errors import ProviderError
from gearshift.routing._cooldown import CooldownTracker


def _error(model: str, kind: str = "server", retry_after: float | None = None) -> ProviderError:
    return ProviderError("boom", model_id=model, kind=kind, retry_after=retry_after)  # type: ignore[arg-type]


def test_retry_after_sets_the_cooldown_length() -> None:
    tracker = CooldownTracker(base_seconds=30)
    assert tracker.on_failure(_error("a", "rate_limit", retry_after=2.5), now=100.0) == 2.5
    assert tracker.cooling("a", 101.0) == 1.5
    assert tracker.cooling("a", 102.5) == 0.0


def test_consecutive_failures_double_up_to_the_cap() -> None:
    tracker = CooldownTracker(base_seconds=10, max_seconds=35)
    lengths = [tracker.on_failure(_error("a"), now=0.0) for _ in range(4)]
    assert lengths == [10, 20, 35, 35]


def test_success_forgets_failures() -> None:
    tracker = CooldownTracker(base_seconds=10)
    tracker.on_failure(_error("a"), now=0.0)
    tracker.on_success("a")
    assert tracker.cooling("a", 0.0) == 0.0
    assert tracker.on_failure(_error("a"), now=0.0) == 10  # strikes restarted


def test_bad_request_is_not_the_models_fault() -> None:
    tracker = CooldownTracker()
    assert tracker.on_failure(_error("a", "bad_request"), now=0.0) == 0.0
    assert tracker.cooling("a", 0.0) == 0.0


def test_order_skips_cooling_models_but_never_leaves_nothing_to_try() -> None:
    tracker = CooldownTracker(base_seconds=10)
    tracker.on_failure(_error("a"), now=0.0)
    assert tracker.order(["a", "b", "c"], now=1.0) == (("b", "c"), ("a",))
    tracker.on_failure(_error("b", retry_after=1.0), now=0.0)
    tracker.on_failure(_error("c", retry_after=5.0), now=0.0)
    ready, skipped = tracker.order(["a", "b", "c"], now=0.5)
    assert ready == ("b", "c", "a")  # all cooling: soonest available first
    assert skipped == ()
