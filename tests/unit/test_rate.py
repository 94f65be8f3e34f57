"""The request pacing shared by a hosted provider's threads (embedding.max_requests_per_second)."""
from __future__ import annotations

import threading

import pytest

from recvector.providers.http import RateLimiter


def test_starts_are_spaced_one_interval_apart():
    waits: list[float] = []
    limiter = RateLimiter(10)
    for _ in range(4):
        limiter.wait_turn(waits.append)
    # The first starts at once; each next one a tenth of a second after the one before.
    assert waits == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


def test_threads_share_the_slots():
    limiter = RateLimiter(50)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        w = limiter.wait_turn(lambda s: None)
        with lock:
            waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([i / 50 for i in range(8)], abs=0.02)


def test_no_limit_never_waits():
    assert RateLimiter(None).wait_turn(lambda s: pytest.fail("slept")) == 0.0
