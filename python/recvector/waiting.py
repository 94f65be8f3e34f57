"""Waits that PostgreSQL can interrupt.

Inside the database a backoff sleep, or waiting for embedding requests in flight, must end at
``statement_timeout`` or ``pg_cancel_backend()`` like any query. The PL/Python entry layer installs
a *server wait* (``pg_sleep`` through SPI, which checks for interrupts and raises when the
statement is cancelled); the main thread waits in short slices of it. Worker threads cannot call
into the server: they sleep on an event that the main thread sets when it is interrupted, and stop.
Outside the database (the CLI), waits are plain sleeps and Ctrl-C interrupts them.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

SLICE_SECONDS = 0.1

_server_wait: Callable[[float], None] | None = None
_main = threading.main_thread()
_cancelled = threading.Event()


class Cancelled(Exception):
    """The statement was cancelled while a worker thread was waiting."""


def use_server_wait(wait: Callable[[float], None] | None) -> None:
    """Install (or remove, with None) the server's interruptible sleep for the main thread."""
    global _server_wait
    _server_wait = wait
    _cancelled.clear()


def _check(seconds: float) -> None:
    try:
        if _server_wait is not None:
            _server_wait(seconds)
        elif seconds > 0:
            time.sleep(seconds)
    except BaseException:
        _cancelled.set()  # tell worker threads to stop waiting
        raise


def sleep(seconds: float) -> None:
    """Sleep, in slices the server can interrupt (main thread) or until cancelled (other threads)."""
    if seconds <= 0:
        return
    if threading.current_thread() is not _main:
        if _cancelled.wait(seconds):
            raise Cancelled("cancelled while waiting to retry")
        return
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        _check(min(SLICE_SECONDS, left))


def wait_for(futures: Iterable["concurrent.futures.Future[T]"]) -> None:
    """Wait until every future is done, checking for interrupts between slices."""
    pending = set(futures)
    while pending:
        _done, pending = concurrent.futures.wait(pending, timeout=SLICE_SECONDS)
        if pending:
            _check(0)


__all__ = ["Cancelled", "use_server_wait", "sleep", "wait_for", "SLICE_SECONDS"]
