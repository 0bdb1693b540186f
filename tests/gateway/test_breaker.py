"""The circuit breaker's state machine."""

from sophia.gateway.breaker import CLOSED, HALF_OPEN, OPEN, Breaker


def test_opens_after_threshold_consecutive_failures() -> None:
    b = Breaker(threshold=3, cooldown=10)
    for t in range(2):
        b.failure("x", now=t)
        assert b.state == CLOSED
    b.failure("x", now=2)
    assert b.state == OPEN
    assert not b.allow(now=5)


def test_success_resets_the_count() -> None:
    b = Breaker(threshold=2, cooldown=10)
    b.failure("x", now=0)
    b.success(12.0)
    b.failure("x", now=1)
    assert b.state == CLOSED


def test_half_open_lets_one_probe_through() -> None:
    b = Breaker(threshold=1, cooldown=10)
    b.failure("x", now=0)
    assert b.allow(now=10)
    assert b.state == HALF_OPEN
    assert not b.allow(now=10.1)  # a second caller waits for the probe
    b.success(5.0)
    assert b.state == CLOSED
    assert b.allow(now=11)


def test_failed_probe_reopens() -> None:
    b = Breaker(threshold=5, cooldown=10)
    for t in range(5):
        b.failure("x", now=t)
    assert b.allow(now=20)
    b.failure("x", now=20)
    assert b.state == OPEN
    assert not b.allow(now=25)


def test_released_probe_frees_the_half_open_slot() -> None:
    b = Breaker(threshold=1, cooldown=1)
    b.failure("x", now=0)
    assert b.allow(now=2)
    b.release()
    assert b.allow(now=2)


def test_snapshot_reports_error_rate_and_latency() -> None:
    b = Breaker(threshold=5, cooldown=1)
    b.success(10.0)
    b.failure("provider_timeout", now=0)
    snap = b.snapshot()
    assert snap["error_rate"] == 0.5
    assert snap["latency_ms"] == 10.0
    assert snap["last_error"] == "provider_timeout"
