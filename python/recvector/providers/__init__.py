"""Embedding providers: one module each (``local``, ``openai``, ``gemini``, ``huggingface``), all
behind :class:`EmbeddingModel`, listed in :mod:`.registry`. Hosted providers share batching, bounded
concurrency, retries and key handling (``http.py``)."""
from __future__ import annotations

from .base import EmbeddingModel, Purpose
from .registry import PROVIDERS, get_embedding_model

__all__ = ["EmbeddingModel", "Purpose", "get_embedding_model", "PROVIDERS"]
