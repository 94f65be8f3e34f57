"""Providers come from one registry; the mapping schema and defaults agree with it."""
from __future__ import annotations

import json
from importlib import resources

import pytest

from recvector.errors import RecVectorError
from recvector.mapping import with_defaults
from recvector.providers import PROVIDERS, get_embedding_model
from recvector.providers.base import EmbeddingModel


def test_schema_enum_is_the_registry():
    schema = json.loads(resources.files("recvector").joinpath("mapping.schema.json").read_text())
    assert schema["properties"]["embedding"]["properties"]["provider"]["enum"] == list(PROVIDERS)


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_every_provider_has_defaults_and_a_class(name):
    entry = PROVIDERS[name]
    assert {"model", "dimensions"} <= set(entry.defaults)
    doc = with_defaults({"version": 1, "users": {"table": "u", "id": "id"},
                         "entities": {"table": "e", "id": "id", "features": [{"name": "t", "kind": "text", "column": "t"}]},
                         "interactions": [{"name": "i", "table": "i", "user_column": "u", "entity_column": "e"}],
                         "embedding": {"provider": name}})
    assert doc["embedding"]["model"] == entry.defaults["model"]
    import importlib
    cls = getattr(importlib.import_module(f"recvector.providers.{entry.module}"), entry.cls)
    assert issubclass(cls, EmbeddingModel) and cls.provider == name


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(RecVectorError, match="unknown embedding provider 'nope'"):
        get_embedding_model({"provider": "nope"})
