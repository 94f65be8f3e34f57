"""The local provider (all-MiniLM-L6-v2, fp32 ONNX) inside PostgreSQL, and the entity text template."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, one, vec
from recvector.text import compose, fingerprint, repetitions

SHARED_MODEL = SHARED / "models" / "all-MiniLM-L6-v2"
SHIPPED_MODEL = ROOT / "models" / "all-MiniLM-L6-v2"


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_in_sql_are_normalised_and_meaningful(booted):
    rows = one(booted, "SELECT recvector.embed(ARRAY['A dog runs in the park.', "
                       "'A puppy plays outside on the grass.', 'Quarterly tax filing rules'])::text[]")
    dog, puppy, tax = (vec(r) for r in rows)
    assert len(dog) == 384
    assert math.sqrt(sum(x * x for x in dog)) == pytest.approx(1.0, abs=1e-5)
    assert _cos(dog, puppy) > _cos(dog, tax) + 0.2


def test_fp32_vectors_do_not_depend_on_batching(booted):
    texts = ["short", "a somewhat longer sentence about films", "x " * 60, "Documentary. Drama. Sci-Fi."]
    together = [vec(v) for v in one(booted, "SELECT recvector.embed(%s)::text[]", (texts,))]
    alone = [vec(one(booted, "SELECT (recvector.embed(ARRAY[%s]))[1]::text", (t,))) for t in texts]
    for a, b in zip(together, alone):
        assert _cos(a, b) > 0.99999


@pytest.mark.skipif(not SHARED_MODEL.is_dir(), reason="../shared is not beside the checkout")
def test_shipped_model_is_the_shared_one_and_gives_the_same_vectors(booted):
    for rel in ("onnx/model.onnx", "tokenizer.json"):
        assert hashlib.sha256((SHIPPED_MODEL / rel).read_bytes()).digest() == \
            hashlib.sha256((SHARED_MODEL / rel).read_bytes()).digest()
    from recvector.providers.local import LocalEmbeddingModel

    model = LocalEmbeddingModel("all-MiniLM-L6-v2", SHARED_MODEL, 384)
    texts = ["Category: Documentary. Title: ACADEMY DINOSAUR.", "Another text"]
    here = model.embed(texts)
    in_db = [vec(v) for v in one(booted, "SELECT recvector.embed(%s)::text[]", (texts,))]
    for a, b in zip(here, in_db):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-6


def test_stored_entity_vector_is_the_embedding_of_the_documented_text(booted):
    compiled = one(booted, "SELECT compiled FROM recvector.mapping")
    features = one(booted, "SELECT document -> 'entities' -> 'features' FROM recvector.mapping")
    row = booted.execute(f"SELECT * FROM ({compiled['entities']}) AS e WHERE entity_id = '1'").fetchone()
    text = compose(features, list(row[1:]))
    assert text.startswith("Category: ")
    assert text.count("Category: ") == 2 and "Title: ACADEMY DINOSAUR." in text
    fresh = vec(one(booted, "SELECT (recvector.embed(ARRAY[%s]))[1]::text", (text,)))
    stored, fp = booted.execute("SELECT embedding::text, fingerprint FROM recvector.entity_vectors "
                                "WHERE entity_id = '1'").fetchone()
    assert _cos(fresh, vec(stored)) > 0.99999
    assert fp == fingerprint("local/all-MiniLM-L6-v2/384", text)


def test_text_template():
    features = [
        {"name": "title", "label": "Title", "weight": 1},
        {"name": "genre", "label": "Genre", "weight": 2.4},
        {"name": "notes", "label": "Notes", "weight": 0.2},
        {"name": "empty", "label": "Empty", "weight": 5},
    ]
    text = compose(features, ["  The   Film. ", "Drama", "quiet", None])
    assert text == "Genre: Drama. Genre: Drama. Title: The Film. Notes: quiet."
    assert [repetitions(w) for w in (0.1, 1.4, 1.6, 7)] == [1, 1, 2, 3]
    assert fingerprint("a/b/3", text) != fingerprint("a/b/4", text)
    assert fingerprint("a/b/3", text) == fingerprint("a/b/3", text)


def test_missing_model_is_a_clear_error(booted):
    import json

    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["embedding"]["model_path"] = "/nonexistent"
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    with pytest.raises(Exception) as err:
        booted.execute("SELECT recvector.embed(ARRAY['x'])")
    diag = err.value.diag
    assert diag.message_primary == "local model file /nonexistent/onnx/model.onnx is missing"
    assert "provider=local" in diag.message_detail and "retryable=no" in diag.message_detail
    assert "make install" in diag.message_hint
    assert diag.sqlstate == "58000"


def test_model_directory_ships_with_licence():
    assert (SHIPPED_MODEL / "LICENSE").read_text().startswith("\n                                 Apache License") or \
        "Apache License" in (SHIPPED_MODEL / "LICENSE").read_text()[:200]
    assert Path(SHIPPED_MODEL / "onnx" / "model.onnx").stat().st_size > 80_000_000
