"""`api: "inference"` (default): POST {base_url}/models/{model}/pipeline/feature-extraction with
{"inputs": [...]} -> one vector per input (a 503 "model is loading" is retried).
`api: "tei"`: a Text Embeddings Inference server, POST {base_url}/embed with
{"inputs": [...], "normalize": true, "truncate": true}; its default client batch limit is 32."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import APICallError
from .base import Purpose
from .http import HostedEmbeddingModel, post_json, resolve_api_key


class HuggingFaceEmbeddingModel(HostedEmbeddingModel):
    provider = "huggingface"
    max_inputs = 32
    max_tokens_per_request = 32 * 512
    default_base_url = "https://router.huggingface.co/hf-inference"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.api = config.get("api", "inference")
        self.api_key = resolve_api_key(config, self.provider, "HF_TOKEN", required=self.api != "tei")

    def _request(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        if self.api == "tei":
            url = f"{self.base_url}/embed"
            body: dict[str, Any] = {"inputs": list(texts), "normalize": True, "truncate": True}
        else:
            url = f"{self.base_url}/models/{self.model}/pipeline/feature-extraction"
            body = {"inputs": list(texts), "normalize": True}
        doc = post_json(self.provider, url, body, headers, self.timeout)
        if not isinstance(doc, list) or not all(isinstance(v, list) and v and isinstance(v[0], (int, float)) for v in doc):
            raise APICallError("huggingface returned an unexpected body (want one list of numbers per input; "
                               "token-level output means the model is not a sentence-embedding model)",
                               provider=self.provider, url=url, status=200, body=str(doc)[:300], retryable=False)
        return [list(map(float, v)) for v in doc]
