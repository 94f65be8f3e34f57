"""Waits end when the server interrupts the statement (docs/security.md, rule 9)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from recvector import waiting
from recvector.errors import APICallError
from recvector.providers.http import RetryStats, call_with_retries


class Cancel(Exception):
    pass


def _server_wait_that_cancels_after(seconds: float):
    start = time.monotonic()

    def wait(s: float) -> None:
        if time.monotonic() - start > seconds:
            raise Cancel("canceling statement due to statement timeout")
        time.sleep(s)

    return wait


def test_a_sleep_in_the_main_thread_ends_at_the_servers_interrupt():
    waiting.use_server_wait(_server_wait_that_cancels_after(0.3))
    try:
        t0 = time.monotonic()
        with pytest.raises(Cancel):
            waiting.sleep(30)
        assert time.monotonic() - t0 < 1
    finally:
        waiting.use_server_wait(None)


def test_worker_threads_stop_waiting_when_the_main_thread_is_interrupted():
    waiting.use_server_wait(_server_wait_that_cancels_after(0.3))
    pool = ThreadPoolExecutor(2)
    try:
        futures = [pool.submit(waiting.sleep, 30) for _ in range(2)]
        t0 = time.monotonic()
        with pytest.raises(Cancel):
            waiting.wait_for(futures)
        for f in futures:
            with pytest.raises(waiting.Cancelled):
                f.result(timeout=2)
        assert time.monotonic() - t0 < 3
    finally:
        pool.shutdown(wait=False)
        waiting.use_server_wait(None)


def test_retry_after_is_capped_by_the_maximum_delay():
    waits: list[float] = []
    calls = iter([APICallError("slow down", provider="p", url="u", status=429, retry_after=45)] * 2)

    def fn():
        err = next(calls, None)
        if err:
            raise err
        return "ok"

    assert call_with_retries(fn, max_retries=3, base_delay=0.01, max_delay=0.5, stats=RetryStats(),
                             sleep=waits.append) == "ok"
    assert waits and max(waits) <= 0.5
    assert threading.current_thread() is threading.main_thread()
