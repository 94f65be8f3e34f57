"""The embedding providers RecVector knows: one entry each. The mapping's JSON Schema
(``embedding.provider``) and its defaults (model and dimensions when the mapping names only the
provider) are checked against this registry by a test; adding a provider is one file in this
package plus one entry here (docs/providers.md#adding-a-provider)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import RecVectorError
from .base import EmbeddingModel


@dataclass(frozen=True)
class Provider:
    name: str
    module: str           # providers/<module>.py
    cls: str              # its EmbeddingModel class
    defaults: dict[str, Any] = field(default_factory=dict)  # model, dimensions (, batch_size)
    factory: str = ""     # a classmethod building it from the mapping's section, if not the constructor


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("local", "local", "LocalEmbeddingModel",
             {"model": "all-MiniLM-L6-v2", "dimensions": 384, "batch_size": 32}, factory="from_config"),
    Provider("openai", "openai", "OpenAIEmbeddingModel", {"model": "text-embedding-3-small", "dimensions": 1536}),
    Provider("gemini", "gemini", "GeminiEmbeddingModel", {"model": "gemini-embedding-001", "dimensions": 768}),
    Provider("huggingface", "huggingface", "HuggingFaceEmbeddingModel",
             {"model": "sentence-transformers/all-MiniLM-L6-v2", "dimensions": 384}),
)}


def get_embedding_model(config: Mapping[str, Any]) -> EmbeddingModel:
    """The provider named by the mapping's ``embedding`` section (``provider``, default local)."""
    name = config.get("provider", "local")
    entry = PROVIDERS.get(name)
    if entry is None:
        raise RecVectorError(f"unknown embedding provider {name!r}", detail=f"known providers: {', '.join(PROVIDERS)}",
                             hint="Set embedding.provider in the mapping.")
    cls = getattr(importlib.import_module(f"{__package__}.{entry.module}"), entry.cls)
    return getattr(cls, entry.factory)(config) if entry.factory else cls(config)


def defaults(name: str) -> dict[str, Any]:
    """Model and size when the mapping names only the provider."""
    return dict(PROVIDERS[name].defaults)


__all__ = ["Provider", "PROVIDERS", "get_embedding_model", "defaults"]
