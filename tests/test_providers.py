"""Hosted embedding providers through the real SQL functions inside PostgreSQL, against a local
server answering in each provider's documented shapes (tests/fake_providers.py)."""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from conftest import one, pagila_mapping, vec
from fake_providers import KEY, FakeProviders, Fault, fake_vector


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    server = FakeProviders().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key_file() -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="rv-keys-"))
    (d / "key").write_text(KEY + "\n")
    d.chmod(0o755)
    (d / "key").chmod(0o644)
    yield str(d / "key")
    shutil.rmtree(d)


PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"provider": "openai", "model": "text-embedding-3-small", "dimensions": 256, "base_url": "{url}/v1"},
    "gemini": {"provider": "gemini", "model": "gemini-embedding-001", "dimensions": 128, "base_url": "{url}/v1beta"},
    "huggingface": {"provider": "huggingface", "model": "sentence-transformers/all-MiniLM-L6-v2", "dimensions": 384,
                    "base_url": "{url}/hf"},
    "tei": {"provider": "huggingface", "api": "tei", "model": "all-MiniLM-L6-v2", "dimensions": 384,
            "base_url": "{url}/tei"},
}
BATCH = {"openai": 2048, "gemini": 100, "huggingface": 32, "tei": 32}


def _load(conn: psycopg.Connection, fake: FakeProviders, key_file: str, name: str, **extra: Any) -> dict[str, Any]:
    cfg = {k: (v.format(url=fake.url) if isinstance(v, str) else v) for k, v in PROVIDERS[name].items()}
    if name != "tei":
        cfg["api_key_file"] = key_file
    cfg.update(retry_base_seconds=0.01, retry_max_seconds=0.05, timeout_seconds=5, max_concurrency=1)
    cfg.update(extra)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    doc = pagila_mapping()
    doc["embedding"] = cfg
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    fake.reset()
    return cfg


def _texts(conn: psycopg.Connection) -> dict[str, str]:
    from recvector.text import compose

    compiled = one(conn, "SELECT compiled FROM recvector.mapping")
    features = one(conn, "SELECT document -> 'entities' -> 'features' FROM recvector.mapping")
    return {r[0]: compose(features, list(r[1:])) for r in conn.execute(compiled["entities"])}


def _inputs(rec: Any) -> list[str]:
    b = rec.body
    if "input" in b:
        return b["input"]
    if "requests" in b:
        return [r["content"]["parts"][0]["text"] for r in b["requests"]]
    return b["inputs"]


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_provider_bootstrap_sends_documented_requests(pagila, fake, key_file, name):
    cfg = _load(pagila, fake, key_file, name)
    summary = one(pagila, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 1000 and summary["profiles"] == 599
    expected_requests = -(-1000 // BATCH[name])
    assert len(fake.requests) == expected_requests == summary["provider_calls"]["requests"]
    texts = _texts(pagila)
    sent = [t for r in fake.requests for t in _inputs(r)]
    assert sorted(sent) == sorted(texts.values())  # every text once, nothing else
    assert all(len(_inputs(r)) <= BATCH[name] for r in fake.requests)
    r = fake.requests[0]
    if name == "openai":
        assert r.path == "/v1/embeddings"
        assert r.headers["authorization"] == f"Bearer {KEY}"
        assert r.body["model"] == "text-embedding-3-small" and r.body["dimensions"] == 256
        assert r.body["encoding_format"] == "float"
    elif name == "gemini":
        assert r.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        assert r.headers["x-goog-api-key"] == KEY and "authorization" not in r.headers
        assert {q["taskType"] for q in r.body["requests"]} == {"RETRIEVAL_DOCUMENT"}
        assert {q["outputDimensionality"] for q in r.body["requests"]} == {128}
        assert {q["model"] for q in r.body["requests"]} == {"models/gemini-embedding-001"}
    elif name == "huggingface":
        assert r.path == "/hf/models/sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction"
        assert r.headers["authorization"] == f"Bearer {KEY}"
    else:
        assert r.path == "/tei/embed" and "authorization" not in r.headers
        assert r.body["normalize"] is True and r.body["truncate"] is True
    # The stored vector is exactly what the provider returned for that entity's text.
    stored = vec(one(pagila, "SELECT embedding::text FROM recvector.entity_vectors WHERE entity_id = '1'"))
    assert stored == pytest.approx(fake_vector(texts["1"], cfg["dimensions"]), abs=1e-6)
    assert len(pagila.execute("SELECT * FROM rec_recommend(1, 5)").fetchall()) == 5
    # Ad-hoc embeddings are queries (Gemini: RETRIEVAL_QUERY).
    fake.reset()
    pagila.execute("SELECT recvector.embed(ARRAY['space documentary'])")
    if name == "gemini":
        assert fake.requests[0].body["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_429_storm_then_success_and_retry_after(pagila, fake, key_file, name):
    _load(pagila, fake, key_file, name, retry_max_seconds=2)
    fake.faults = [Fault(429, {"Retry-After": "0"}, {"error": {"code": 429, "message": "Resource has been exhausted",
                                                              "status": "RESOURCE_EXHAUSTED"}})] * 3 + \
                  [Fault(429, {"Retry-After": "1"}, {"error": {"code": 429, "message": "slow down"}})]
    summary = one(pagila, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 1000
    calls = summary["provider_calls"]
    assert calls["requests"] == -(-1000 // BATCH[name]) + 4 and calls["retries"] == 4
    assert 1.0 <= calls["planned_wait_seconds"] <= 2 + 3 * 0.01  # Retry-After: 1 was honoured
    # The four failed requests were the same batch, sent again.
    assert _inputs(fake.requests[0]) == _inputs(fake.requests[4])


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_500_and_timeout_are_retried(pagila, fake, key_file, name):
    # (A 1.5 s timeout: OpenAI's single answer for 1,000 texts can take a good part of a second to
    # build on a loaded machine; the faulty answer takes 5 s.)
    _load(pagila, fake, key_file, name, timeout_seconds=1.5)
    fake.faults = [Fault(500, {}, {"error": {"message": "The server had an error", "type": "server_error"}}),
                   Fault(delay=5.0)]
    summary = one(pagila, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 1000 and summary["provider_calls"]["retries"] == 2


BAD_ANSWERS = [
    ("not json", Fault(body=b"<html>gateway</html>"), "not JSON", "no"),
    ("wrong shape", Fault(body={"embedding": []}), "unexpected body", "no"),
    ("401", Fault(401, {}, {"error": {"code": 401, "message": "API key not valid"}}), "HTTP 401: API key not valid", "no"),
    ("wrong dimensions", Fault(wrong_dims=True), "-dimensional vectors, the mapping declares", "no"),
]


@pytest.mark.parametrize("name", list(PROVIDERS))
@pytest.mark.parametrize("case, fault, message, retryable", BAD_ANSWERS, ids=[c[0] for c in BAD_ANSWERS])
def test_bad_answers_are_clear_errors_and_write_nothing(pagila, fake, key_file, name, case, fault, message, retryable):
    cfg = _load(pagila, fake, key_file, name)
    fake.faults = [fault]
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.bootstrap()")
    diag = err.value.diag
    assert message in diag.message_primary
    provider = cfg["provider"]
    assert f"provider={provider}" in diag.message_detail and f"retryable={retryable}" in diag.message_detail
    if case == "wrong dimensions":
        assert f"returned {cfg['dimensions'] - 1}-dimensional vectors, the mapping declares {cfg['dimensions']}" \
            in diag.message_primary
    if fault.status != 200:
        assert "status=401" in diag.message_detail and "request_id=req_" in diag.message_detail
    assert KEY not in (diag.message_primary + (diag.message_detail or "") + (diag.message_hint or ""))
    assert len(fake.requests) == 1  # not retried
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 0


def test_persistent_429_gives_up_after_max_retries(pagila, fake, key_file):
    _load(pagila, fake, key_file, "huggingface", max_retries=2)
    fake.faults = [Fault(429, {}, {"error": "Rate limit reached"})] * 5
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.bootstrap()")
    assert "HTTP 429: Rate limit reached" in err.value.diag.message_primary
    assert "retryable=yes" in err.value.diag.message_detail and "attempts=3" in err.value.diag.message_detail
    assert len(fake.requests) == 3


def test_batch_size_is_capped_to_what_one_request_allows(pagila, fake, key_file):
    _load(pagila, fake, key_file, "tei", batch_size=500)
    one(pagila, "SELECT recvector.bootstrap()")
    assert max(len(_inputs(r)) for r in fake.requests) == 32 and len(fake.requests) == 32


def test_missing_key_names_where_to_put_it(pagila, fake, key_file):
    _load(pagila, fake, key_file, "openai", api_key_file=None, api_key_env="RV_TEST_NO_SUCH_KEY")
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.bootstrap()")
    assert err.value.diag.message_primary == \
        "no API key for openai: the environment variable RV_TEST_NO_SUCH_KEY is not set"
    assert "RV_TEST_NO_SUCH_KEY" in err.value.diag.message_hint and "never stored in tables" in err.value.diag.message_hint
    assert fake.requests == []


def test_failure_mid_bootstrap_keeps_committed_batches_and_resumes(pagila, fake, key_file):
    _load(pagila, fake, key_file, "gemini", max_retries=1)
    fake.fail_from = 3
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("CALL recvector.bootstrap_resumable()")
    assert "HTTP 500" in err.value.diag.message_primary
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 300
    fake.reset()
    pagila.execute("CALL recvector.bootstrap_resumable()")
    assert len(fake.requests) == 7  # only the 700 entities left
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 1000


def test_sync_reembeds_only_what_changed(pagila, fake, key_file):
    _load(pagila, fake, key_file, "openai")
    one(pagila, "SELECT recvector.bootstrap()")
    fake.reset()
    assert one(pagila, "SELECT recvector.sync()")["embedded"] == 0
    assert fake.requests == []
    pagila.execute("UPDATE film SET description = description || ' Restored in 4K.' WHERE film_id IN (3, 4, 5)")
    summary = one(pagila, "SELECT recvector.sync()")
    assert summary["embedded"] == 3 and summary["up_to_date"] == 997
    assert len(fake.requests) == 1 and len(_inputs(fake.requests[0])) == 3
    assert all("Restored in 4K." in t for t in _inputs(fake.requests[0]))


def test_entity_sync_triggers_queue_changes_and_the_worker_reembeds_them(pagila, fake, key_file):
    _load(pagila, fake, key_file, "openai")
    one(pagila, "SELECT recvector.bootstrap()")
    added = [r[0] for r in pagila.execute("SELECT recvector.enable_entity_sync()")]
    assert added == ["recvector_entities_insert on public.film", "recvector_entities_update on public.film",
                     "recvector_entities_delete on public.film"]
    fake.reset()
    pagila.execute("UPDATE film SET description = 'A calm film about tides' WHERE film_id IN (7, 8)")
    pagila.execute("UPDATE film SET rental_rate = rental_rate + 1 WHERE film_id = 9")  # text unchanged
    pagila.execute("INSERT INTO film (film_id, title, language_id, fulltext) VALUES (5001, 'NEW ARRIVAL', 1, '')")
    assert sorted(r[0] for r in pagila.execute("SELECT key FROM recvector.queue WHERE kind = 'entity'")) == \
        ["5001", "7", "8", "9"]
    assert fake.requests == []  # nothing on the app's path
    assert one(pagila, "SELECT recvector.process_queue()") == 4
    assert len(fake.requests) == 1 and len(_inputs(fake.requests[0])) == 3  # 7, 8 and the new film; not 9
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors WHERE entity_id = '5001'") == 1
    pagila.execute("DELETE FROM film WHERE film_id = 5001")
    assert one(pagila, "SELECT recvector.process_queue()") == 1
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors WHERE entity_id = '5001'") == 0
    assert len([r for r in pagila.execute("SELECT recvector.disable_entity_sync()")]) == 3
    assert one(pagila, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'recvector_entities%'") == 0


# ---- Secrets and waits (docs/security.md, rules 8 and 9) -------------------------------------

def _server_log_tail(since: int) -> str:
    """What the server wrote to its log after byte offset ``since`` (empty when the log cannot be read)."""
    log = Path("/var/log/postgresql/postgresql-15-main.log")
    try:
        with log.open("rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _server_log_size() -> int:
    try:
        return Path("/var/log/postgresql/postgresql-15-main.log").stat().st_size
    except OSError:
        return 0


@pytest.mark.parametrize("name", ["openai", "gemini", "huggingface"])
def test_a_key_echoed_by_the_provider_is_masked_everywhere(pagila, fake, key_file, name):
    """A provider that puts the key in its 401 body (some do) must not put it in the ERROR, its
    DETAIL or the server log; nor may other key shapes in the body get through."""
    _load(pagila, fake, key_file, name)
    other = "sk-proj-" + "A1b2C3d4" * 4
    fake.faults = [Fault(401, {}, {"error": {"code": 401, "message": f"Incorrect API key provided: {KEY}. "
                                                                    f"Also tried {other}, Bearer {KEY}"}})]
    start = _server_log_size()
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.bootstrap()")
    diag = err.value.diag
    text = "\n".join(x or "" for x in (diag.message_primary, diag.message_detail, diag.message_hint))
    assert "HTTP 401" in diag.message_primary and "[redacted]" in text
    assert KEY not in text and other not in text and KEY[8:] not in text
    time.sleep(0.2)
    log = _server_log_tail(start)
    assert "HTTP 401" in log or log == ""  # the error reached the log (when readable) ...
    assert KEY not in log and other not in log  # ... without the key


def test_retry_after_is_capped_by_retry_max_seconds(pagila, fake, key_file):
    _load(pagila, fake, key_file, "openai", retry_max_seconds=0.3, max_retries=2)
    fake.faults = [Fault(429, {"Retry-After": "45"}, {"error": {"message": "slow down"}})] * 2
    summary = one(pagila, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 1000
    assert summary["provider_calls"]["planned_wait_seconds"] <= 0.61
    # The retries went out after the capped waits, not after the 45 s the server asked for.
    assert fake.requests[2].at - fake.requests[0].at < 15


@pytest.mark.parametrize("how", ["statement_timeout", "pg_cancel_backend"])
def test_a_wait_ends_at_statement_timeout_and_cancel(pagila, fake, key_file, how):
    """A long Retry-After (allowed by retry_max_seconds) or a slow answer is waited for in slices
    the server can interrupt: the statement ends within a second of its timeout or cancel."""
    _load(pagila, fake, key_file, "openai", retry_max_seconds=120, max_retries=3)
    fake.faults = [Fault(429, {"Retry-After": "60"}, {"error": {"message": "slow down"}})] * 3
    if how == "statement_timeout":
        pagila.execute("SET statement_timeout = '2s'")
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            pagila.execute("SELECT recvector.bootstrap()")
        pagila.execute("RESET statement_timeout")
    else:
        pid = one(pagila, "SELECT pg_backend_pid()")
        admin = psycopg.connect(pagila.info.dsn, autocommit=True)
        timer = threading.Timer(2.0, lambda: admin.execute("SELECT pg_cancel_backend(%s)", (pid,)))
        timer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
                pagila.execute("SELECT recvector.bootstrap()")
        finally:
            timer.cancel()
            admin.close()
    assert time.monotonic() - t0 < 4.5
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 0


def test_queued_entities_come_back_when_the_provider_works_again(pagila, fake, key_file):
    """The provider is down: the worker retries queued entities with backoff and never drops them
    (5 failures no longer means given up); when it works again, one successful re-embed brings
    every waiting entity back at once."""
    _load(pagila, fake, key_file, "openai", max_retries=0)
    one(pagila, "SELECT recvector.bootstrap()")
    pagila.execute("SELECT recvector.enable_entity_sync()")
    pagila.execute("UPDATE film SET description = 'Down time ' || film_id WHERE film_id IN (11, 12)")
    fake.fail_from = 0
    for _ in range(6):  # six failed rounds (each made due again at once, as if the backoff had passed)
        pagila.execute("SELECT recvector.process_queue()")
        pagila.execute("UPDATE recvector.queue SET next_attempt_at = now() WHERE kind = 'entity'")
    row = pagila.execute("SELECT count(*), min(attempts) FROM recvector.queue WHERE kind = 'entity'").fetchone()
    assert row == (2, 6)
    assert one(pagila, "SELECT given_up FROM recvector.status()") == 2
    pagila.execute("UPDATE recvector.queue SET next_attempt_at = now() + interval '1 hour' WHERE kind = 'entity'")
    fake.reset()  # the provider works again
    pagila.execute("UPDATE film SET description = 'Back up' WHERE film_id = 13")
    assert one(pagila, "SELECT recvector.process_queue()") == 1          # film 13 ...
    assert one(pagila, "SELECT count(*) FROM recvector.queue WHERE kind = 'entity' AND next_attempt_at <= now()") == 2
    assert one(pagila, "SELECT recvector.process_queue()") == 2          # ... and 11, 12 right after
    assert one(pagila, "SELECT count(*) FROM recvector.queue") == 0
    texts = _texts(pagila)
    assert "Down time 11" in texts["11"] and "Down time 12" in texts["12"]


def test_bootstrap_concurrency_holds_the_rate_absorbs_429s_and_embeds_once(pagila, fake, key_file):
    """recvector bootstrap --concurrency 4 against a slow provider (0.2 s an answer) with a limit of
    20 requests a second: at most 4 requests in flight, starts at least 1/20 s apart, two 429s
    retried, every film embedded exactly once, progress with rate and time left."""
    import subprocess
    import sys

    from conftest import ROOT, dsn

    _load(pagila, fake, key_file, "gemini", max_requests_per_second=20, max_retries=5)
    fake.latency = 0.2
    fake.faults = [Fault(429, {"Retry-After": "0"}, {"error": {"code": 429, "message": "Resource has been exhausted",
                                                              "status": "RESOURCE_EXHAUSTED"}})] * 2
    db = one(pagila, "SELECT current_database()")
    r = subprocess.run([sys.executable, "-m", "recvector.cli", "bootstrap", "--concurrency", "4", "--dsn", dsn(db)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "4 requests at a time, at most 20 a second, 400 entities per batch" in r.stderr
    assert "] embedded 1000/1000 entities (" in r.stderr and "left)" in r.stderr
    # 1,000 films, 100 texts a request: 10 answered requests plus the two refused and sent again.
    answered = [q for q in fake.requests if q.status == 200]
    assert len(answered) == 10 and len(fake.requests) == 12
    assert [q.status for q in fake.requests].count(429) == 2
    texts = [t for q in answered for t in _inputs(q)]
    assert len(texts) == len(set(texts)) == 1000 and set(texts) == set(_texts(pagila).values())
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 1000
    assert 2 <= fake.max_in_flight <= 4
    starts = sorted(q.at for q in fake.requests)
    # Starts are paced 1/20 s apart by the client (a little arrival jitter allowed).
    assert starts[-1] - starts[0] >= (len(starts) - 1) / 20 * 0.8
    # The session setting was for that run only; out of range is a clear error.
    assert one(pagila, "SELECT current_setting('recvector.embed_concurrency', true)") in (None, "")
    pagila.execute("SET recvector.embed_concurrency = '100'")
    with pytest.raises(psycopg.Error, match="embed_concurrency must be an integer between 1 and 64"):
        pagila.execute("SELECT recvector.bootstrap()")
