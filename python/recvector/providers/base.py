"""The interface every embedding provider implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, Sequence

from ..errors import DimensionMismatchError

Purpose = Literal["document", "query"]


class EmbeddingModel(ABC):
    """Turns texts into vectors of a fixed size.

    ``model_id`` names provider, model and dimensions; it is part of every entity fingerprint,
    so switching model makes every entity stale instead of mixing two vector spaces.
    """

    provider: str
    model: str
    dimensions: int
    max_batch_size: int = 32

    @property
    def model_id(self) -> str:
        return f"{self.provider}/{self.model}/{self.dimensions}"

    @abstractmethod
    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        """Embed at most ``max_batch_size`` texts."""

    def check_dimensions(self, vectors: Sequence[Sequence[float]]) -> None:
        for vec in vectors:
            if len(vec) != self.dimensions:
                raise DimensionMismatchError(provider=self.provider, expected=self.dimensions, got=len(vec))

    def embed(self, texts: Sequence[str], purpose: Purpose = "document") -> list[list[float]]:
        """Embed any number of texts, in batches within the provider's limit; checks dimensions
        before returning anything."""
        out: list[list[float]] = []
        for start in range(0, len(texts), self.max_batch_size):
            out.extend(self._embed_batch(texts[start:start + self.max_batch_size], purpose))
        self.check_dimensions(out)
        return out
