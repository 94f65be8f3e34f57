"""Hugging Face: the hosted Inference API (feature-extraction) and self-hosted Text Embeddings Inference."""
from .embedding_model import HuggingFaceEmbeddingModel

__all__ = ["HuggingFaceEmbeddingModel"]
