"""Local provider: a sentence-transformers model exported to ONNX, run offline."""
from .embedding_model import LocalEmbeddingModel, default_model_dir

__all__ = ["LocalEmbeddingModel", "default_model_dir"]
