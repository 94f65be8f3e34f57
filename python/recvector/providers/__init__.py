"""Embedding providers: one sub-package each, all behind :class:`EmbeddingModel`.

``get_embedding_model(config)`` returns the provider named by the mapping's ``embedding`` section.
Hosted providers share batching, bounded concurrency, retries and key handling (``http.py``).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import RecVectorError
from .base import EmbeddingModel, Purpose

__all__ = ["EmbeddingModel", "Purpose", "get_embedding_model", "PROVIDERS"]

PROVIDERS = ("local", "openai", "gemini", "huggingface")


def get_embedding_model(config: Mapping[str, Any]) -> EmbeddingModel:
    provider = config.get("provider", "local")
    if provider == "local":
        from .local import LocalEmbeddingModel

        return LocalEmbeddingModel.from_config(config)
    if provider == "openai":
        from .openai import OpenAIEmbeddingModel

        return OpenAIEmbeddingModel(config)
    if provider == "gemini":
        from .gemini import GeminiEmbeddingModel

        return GeminiEmbeddingModel(config)
    if provider == "huggingface":
        from .huggingface import HuggingFaceEmbeddingModel

        return HuggingFaceEmbeddingModel(config)
    raise RecVectorError(
        f"unknown embedding provider {provider!r}",
        detail=f"known providers: {', '.join(PROVIDERS)}",
        hint="Set embedding.provider in the mapping.",
    )
