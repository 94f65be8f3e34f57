"""models/{model}:batchEmbedContents: up to 100 requests per call; RETRIEVAL_DOCUMENT for entities,
RETRIEVAL_QUERY for ad-hoc texts; outputDimensionality shortens the vectors."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import APICallError
from .base import Purpose
from .http import HostedEmbeddingModel, post_json, resolve_api_key

TASK = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}


class GeminiEmbeddingModel(HostedEmbeddingModel):
    provider = "gemini"
    max_inputs = 100
    max_tokens_per_request = 100 * 2048
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.api_key = resolve_api_key(config, self.provider, "GEMINI_API_KEY")

    def _request(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        name = self.model if self.model.startswith("models/") else f"models/{self.model}"
        url = f"{self.base_url}/{name}:batchEmbedContents"
        body = {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, "taskType": TASK[purpose],
                              "outputDimensionality": self.dimensions} for t in texts]}
        doc = post_json(self.provider, url, body, {"x-goog-api-key": self.api_key or ""}, self.timeout)
        try:
            return [list(map(float, e["values"])) for e in doc["embeddings"]]
        except (KeyError, TypeError, ValueError) as e:
            raise APICallError(f"gemini returned an unexpected body (no embeddings[].values): {e}",
                               provider=self.provider, url=url, status=200, body=str(doc)[:300],
                               retryable=False) from None
