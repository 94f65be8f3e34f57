"""OpenAI (and OpenAI-compatible servers via base_url) embeddings, through the `openai` package."""
from .embedding_model import OpenAIEmbeddingModel

__all__ = ["OpenAIEmbeddingModel"]
