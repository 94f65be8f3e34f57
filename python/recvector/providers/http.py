"""Written once for every hosted provider: HTTP calls, retries with backoff, keys, batching.

* ``post_json`` turns every failure into :class:`APICallError` (status, body, request id,
  ``Retry-After``), retryable for 408/409/429/5xx, timeouts and network errors.
* ``call_with_retries`` retries retryable errors with exponential backoff and full jitter, waiting
  at least ``Retry-After`` when the server sends one, but never more than ``retry_max_seconds``;
  waits are interruptible by statement_timeout and cancel inside the database (:mod:`..waiting`).
* ``HostedEmbeddingModel`` splits texts into requests within the provider's input and token limits
  and runs them with bounded concurrency (``max_concurrency``), in order, starting at most
  ``max_requests_per_second`` requests a second (:class:`RateLimiter`, retries included).
"""
from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from .. import waiting
from ..errors import APICallError, EmbeddingError, MissingAPIKeyError
from ..redaction import register as register_secret
from .base import EmbeddingModel, Purpose

T = TypeVar("T")


def resolve_api_key(config: Mapping[str, Any], provider: str, default_env: str, *, required: bool = True) -> str | None:
    """The key from ``embedding.api_key_file`` if set, else from the environment variable
    ``embedding.api_key_env`` (default ``default_env``) of the server process."""
    key_file = config.get("api_key_file")
    env = config.get("api_key_env") or default_env
    if key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError:
            key = ""
    else:
        key = os.environ.get(env, "").strip()
    if not key and required:
        raise MissingAPIKeyError(provider=provider, env=env, file=key_file)
    register_secret(key)
    return key or None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        ms = headers.get("retry-after-ms")
        return float(ms) / 1000 if ms and ms.replace(".", "", 1).isdigit() else None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def post_json(provider: str, url: str, body: Any, headers: Mapping[str, str], timeout: float) -> Any:
    return request_json(provider, "POST", url, body, headers, timeout)


def request_json(provider: str, method: str, url: str, body: Any, headers: Mapping[str, str], timeout: float) -> Any:
    """One HTTP call with a JSON body (none for ``body=None``) and a JSON answer; every failure
    becomes :class:`APICallError`."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL from the admin's mapping
            raw = resp.read()
            request_id = resp.headers.get("x-request-id")
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", errors="replace")
        raise APICallError(f"{provider} returned HTTP {e.code}: {error_message(text)}", provider=provider, url=url,
                           status=e.code, body=text, request_id=e.headers.get("x-request-id"),
                           retry_after=retry_after_seconds(e.headers)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise APICallError(f"{provider} request failed: {reason}", provider=provider, url=url) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise APICallError(f"{provider} returned a body that is not JSON", provider=provider, url=url, status=200,
                           body=raw[:300].decode("utf-8", errors="replace"), request_id=request_id,
                           retryable=False) from None


def error_message(text: str) -> str:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return text[:200] or "(empty body)"
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:200]
    if isinstance(err, str):
        message = doc.get("message")  # Chroma: {"error": "NotFoundError", "message": "..."}
        return f"{err}: {message}"[:300] if isinstance(message, str) and message else err[:200]
    return text[:200]


class RetryStats:
    """What the retries of one embedding run did (reported in bootstrap's summary)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.planned_wait_seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries,
                "planned_wait_seconds": round(self.planned_wait_seconds, 3)}


def call_with_retries(fn: Callable[[], T], *, max_retries: int, base_delay: float, max_delay: float,
                      stats: RetryStats, sleep: Callable[[float], None] = waiting.sleep) -> T:
    attempt = 0
    while True:
        with stats.lock:
            stats.requests += 1
        try:
            return fn()
        except APICallError as e:
            if not e.retryable or attempt >= max_retries:
                if attempt:
                    e.detail = f"{e.detail}; attempts={attempt + 1}"
                raise
            backoff = random.uniform(0, min(max_delay, base_delay * (2 ** attempt)))  # full jitter
            # Retry-After is honoured up to retry_max_seconds, never beyond.
            delay = min(max(backoff, e.retry_after or 0.0), max_delay)
            with stats.lock:
                stats.retries += 1
                stats.planned_wait_seconds += delay
            sleep(delay)
            attempt += 1


class RateLimiter:
    """At most ``per_second`` request starts a second, shared by the threads of one model: each
    start takes the next free slot, ``1 / per_second`` after the previous one."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait_turn(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Blocks until this caller may start a request; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        if start > now:
            sleep(start - now)
        return max(0.0, start - now)


class HostedEmbeddingModel(EmbeddingModel):
    """Batching within limits, bounded concurrency and retries; subclasses send one request."""

    max_inputs: int = 100
    max_tokens_per_request: int = 300_000
    default_base_url: str = ""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.model = str(config["model"])
        self.dimensions = int(config["dimensions"])
        self.base_url = str(config.get("base_url") or self.default_base_url).rstrip("/")
        self.max_batch_size = min(int(config.get("batch_size") or self.max_inputs), self.max_inputs)
        self.max_retries = int(config.get("max_retries", 5))
        self.timeout = float(config.get("timeout_seconds", 30))
        self.base_delay = float(config.get("retry_base_seconds", 0.5))
        self.max_delay = float(config.get("retry_max_seconds", 30))
        self.concurrency = int(config.get("max_concurrency", 2))
        self.limiter = RateLimiter(config.get("max_requests_per_second"))
        self.stats = RetryStats()

    # Subclasses: one request for at most max_batch_size texts.
    def _request(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        raise NotImplementedError

    @staticmethod
    def estimate_tokens(text: str) -> int:
        """A conservative token estimate (about 3 characters per token), to stay under request limits."""
        return len(text) // 3 + 1

    def _batches(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        start, tokens = 0, 0
        for i, t in enumerate(texts):
            n = self.estimate_tokens(t)
            if i > start and (i - start >= self.max_batch_size or tokens + n > self.max_tokens_per_request):
                out.append((start, i))
                start, tokens = i, 0
            tokens += n
        if start < len(texts):
            out.append((start, len(texts)))
        return out

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        def attempt() -> list[list[float]]:
            self.limiter.wait_turn()
            return self._request(texts, purpose)

        vectors = call_with_retries(attempt, max_retries=self.max_retries,
                                    base_delay=self.base_delay, max_delay=self.max_delay, stats=self.stats)
        if len(vectors) != len(texts):
            raise EmbeddingError(f"{self.provider} returned {len(vectors)} vectors for {len(texts)} texts",
                                 provider=self.provider)
        return vectors

    def embed(self, texts: Sequence[str], purpose: Purpose = "document") -> list[list[float]]:
        """Requests run on worker threads while the calling thread waits in slices the server can
        interrupt: a cancelled statement stops waiting at once (requests in flight end within
        their timeout)."""
        batches = self._batches(texts)
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(batches))))
        try:
            futures = [pool.submit(self._embed_batch, texts[a:b], purpose) for a, b in batches]
            waiting.wait_for(futures)
            results = [f.result() for f in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        out = [v for batch in results for v in batch]
        self.check_dimensions(out)
        return out
