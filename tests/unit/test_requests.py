"""What each hosted provider sends and how it handles answers, without a database (the same fake
server the database tests use, tests/fake_providers.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_providers import KEY, FakeProviders, Fault, fake_vector  # noqa: E402

from recvector.errors import APICallError  # noqa: E402
from recvector.providers import get_embedding_model  # noqa: E402


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    server = FakeProviders().start()
    yield server
    server.stop()


def _model(fake: FakeProviders, name: str, **extra):
    cfg = {"openai": {"provider": "openai", "model": "text-embedding-3-small", "dimensions": 8, "base_url": f"{fake.url}/v1"},
           "gemini": {"provider": "gemini", "model": "gemini-embedding-001", "dimensions": 8, "base_url": f"{fake.url}/v1beta"},
           "huggingface": {"provider": "huggingface", "model": "m", "dimensions": 384, "base_url": f"{fake.url}/hf"},
           "tei": {"provider": "huggingface", "api": "tei", "model": "m", "dimensions": 384, "base_url": f"{fake.url}/tei"}}[name]
    cfg = {**cfg, "retry_base_seconds": 0.01, "retry_max_seconds": 0.05, "max_concurrency": 1, **extra}
    fake.reset()
    return get_embedding_model(cfg)


@pytest.fixture
def keyed(monkeypatch):
    for env in ("OPENAI_API_KEY", "GEMINI_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(env, KEY)


@pytest.mark.parametrize("name", ["openai", "gemini", "huggingface", "tei"])
def test_documented_request_and_vectors(fake, keyed, name):
    model = _model(fake, name)
    out = model.embed(["a film about tides", "another"], purpose="document")
    assert out[0] == pytest.approx(fake_vector("a film about tides", model.dimensions), abs=1e-6)
    body = fake.requests[0].body
    if name == "openai":
        assert body == {"model": "text-embedding-3-small", "input": ["a film about tides", "another"],
                        "encoding_format": "float", "dimensions": 8}
        assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    elif name == "gemini":
        assert [r["taskType"] for r in body["requests"]] == ["RETRIEVAL_DOCUMENT"] * 2
        assert fake.requests[0].headers["x-goog-api-key"] == KEY
    else:
        assert body["inputs"] == ["a film about tides", "another"]


def test_a_retryable_error_is_retried_and_a_permanent_one_is_not(fake, keyed):
    model = _model(fake, "openai")
    fake.faults = [Fault(503, {}, {"error": {"message": "busy"}})]
    assert len(model.embed(["x"])) == 1 and len(fake.requests) == 2
    model = _model(fake, "openai")
    fake.faults = [Fault(401, {}, {"error": {"message": f"Incorrect API key provided: {KEY}"}})]
    with pytest.raises(APICallError) as err:
        model.embed(["x"])
    assert not err.value.retryable and len(fake.requests) == 1
    assert KEY not in err.value.message and KEY not in (err.value.detail or "")
