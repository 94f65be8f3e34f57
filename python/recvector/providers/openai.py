"""text-embedding-3-small/large: at most 2,048 inputs and ~300k tokens per request; `dimensions`
shortens the vectors. The package's own retries are off: retries are ours (providers/http.py)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import APICallError
from .base import Purpose
from .http import HostedEmbeddingModel, error_message, retry_after_seconds, resolve_api_key


class OpenAIEmbeddingModel(HostedEmbeddingModel):
    provider = "openai"
    max_inputs = 2048
    max_tokens_per_request = 300_000
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.api_key = resolve_api_key(config, self.provider, "OPENAI_API_KEY")
        self.send_dimensions = config.get("send_dimensions", self.model.startswith("text-embedding-3"))
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0,
                                         timeout=self.timeout)
        return self._client

    def _request(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        import openai

        url = f"{self.base_url}/embeddings"
        kwargs: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        if self.send_dimensions:
            kwargs["dimensions"] = self.dimensions
        try:
            resp = self.client().embeddings.create(**kwargs)
        except openai.APIStatusError as e:
            body = e.response.text if e.response is not None else None
            raise APICallError(f"openai returned HTTP {e.status_code}: {error_message(body or '')}",
                               provider=self.provider, url=url, status=e.status_code, body=body,
                               request_id=getattr(e, "request_id", None),
                               retry_after=retry_after_seconds(e.response.headers) if e.response is not None else None) from None
        except openai.APIConnectionError as e:  # includes timeouts
            raise APICallError(f"openai request failed: {e}", provider=self.provider, url=url) from None
        except ValueError:  # the package could not parse the body as JSON
            raise APICallError("openai returned a body that is not JSON", provider=self.provider, url=url,
                               status=200, retryable=False) from None
        except openai.APIResponseValidationError as e:
            raise APICallError(f"openai returned an unexpected body: {e}", provider=self.provider, url=url,
                               status=200, retryable=False) from None
        try:
            data = sorted(resp.data, key=lambda d: d.index)
            return [list(d.embedding) for d in data]
        except (AttributeError, TypeError) as e:
            raise APICallError(f"openai returned an unexpected body: {e}", provider=self.provider, url=url,
                               status=200, retryable=False) from None
