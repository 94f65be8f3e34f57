"""Hosted embedding providers through the real SQL functions inside PostgreSQL, against a local
server answering in each provider's documented shapes (tests/fake_providers.py)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
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
    _load(pagila, fake, key_file, name)
    fake.faults = [Fault(429, {"Retry-After": "0"}, {"error": {"code": 429, "message": "Resource has been exhausted",
                                                              "status": "RESOURCE_EXHAUSTED"}})] * 3 + \
                  [Fault(429, {"Retry-After": "1"}, {"error": {"code": 429, "message": "slow down"}})]
    summary = one(pagila, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 1000
    calls = summary["provider_calls"]
    assert calls["requests"] == -(-1000 // BATCH[name]) + 4 and calls["retries"] == 4
    assert calls["planned_wait_seconds"] >= 1.0  # Retry-After: 1 was honoured
    # The four failed requests were the same batch, sent again.
    assert _inputs(fake.requests[0]) == _inputs(fake.requests[4])


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_500_and_timeout_are_retried(pagila, fake, key_file, name):
    _load(pagila, fake, key_file, name, timeout_seconds=0.5)
    fake.faults = [Fault(500, {}, {"error": {"message": "The server had an error", "type": "server_error"}}),
                   Fault(delay=2.0)]
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
    assert added == ["recvector_entities_insert on film", "recvector_entities_update on film",
                     "recvector_entities_delete on film"]
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
