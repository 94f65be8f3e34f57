"""Google Gemini embeddings (batchEmbedContents)."""
from .embedding_model import GeminiEmbeddingModel

__all__ = ["GeminiEmbeddingModel"]
