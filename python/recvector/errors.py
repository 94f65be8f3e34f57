"""One error family for RecVector.

Every error carries a one-line message, an optional detail and hint. Inside PostgreSQL they are
raised as ``ERROR`` with DETAIL and HINT (see :mod:`recvector.plpython`); the CLI prints one line
and exits non-zero. Keys and tokens are masked out of all three (:mod:`recvector.redaction`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .redaction import redact


class RecVectorError(Exception):
    """Base class of every error RecVector raises."""

    sqlstate: str = "XX000"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        message = redact(message) or ""
        super().__init__(message)
        self.message = message
        self.detail = redact(detail)
        self.hint = redact(hint)

    def __str__(self) -> str:
        return self.message


class ArgumentError(RecVectorError):
    """A function argument is out of range or malformed (the message names the argument)."""

    sqlstate = "22023"  # invalid_parameter_value


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a mapping document, located by its JSON path (``$.entities.id``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class MappingError(RecVectorError):
    """The mapping document is invalid, or does not match the live catalog."""

    sqlstate = "22023"  # invalid_parameter_value

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("$", "invalid mapping")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(
            f"invalid mapping at {first.path}: {first.message}{more}",
            detail="\n".join(str(p) for p in self.problems),
            hint=hint or "Fix every listed path; nothing was written.",
        )


class NotConfiguredError(RecVectorError):
    """No mapping has been loaded yet."""

    sqlstate = "55000"  # object_not_in_prerequisite_state

    def __init__(self) -> None:
        super().__init__(
            "RecVector has no mapping loaded",
            hint="Load one with: SELECT recvector.set_schema('<mapping json>'::jsonb);",
        )


class NotEnoughDataError(RecVectorError):
    """The application's history is too small for what was asked (an evaluation, tuning)."""

    sqlstate = "55000"  # object_not_in_prerequisite_state


class ServiceError(RecVectorError):
    """A service outside the database (an embedding provider, a Chroma server) failed or answered
    something unusable. ``provider`` names the service; ``retryable`` says whether trying again can help."""

    sqlstate = "58000"  # system_error

    def __init__(self, message: str, *, provider: str, retryable: bool = False,
                 detail: str | None = None, hint: str | None = None) -> None:
        self.provider = provider
        self.retryable = retryable
        parts = [f"provider={provider}", f"retryable={'yes' if retryable else 'no'}"]
        if detail:
            parts.append(detail)
        super().__init__(message, detail="; ".join(parts), hint=hint)


class EmbeddingError(ServiceError):
    """An embedding provider failed or returned something unusable."""


class DimensionMismatchError(EmbeddingError):
    """The provider returned vectors of another size than the mapping declares."""

    def __init__(self, *, provider: str, expected: int, got: int) -> None:
        super().__init__(
            f"embedding provider returned {got}-dimensional vectors, the mapping declares {expected}",
            provider=provider,
            hint="Set embedding.dimensions to the model's output size, then run recvector.reembed().",
        )


class ChromaError(ServiceError):
    """A Chroma server answered something RecVector cannot use (wrong space, size, shape)."""

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, provider="chroma", detail=detail, hint=hint)


RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class APICallError(ServiceError):
    """An HTTP call to a hosted provider or a Chroma server failed. ``retryable`` for 408/409/429/5xx
    and network errors."""

    def __init__(self, message: str, *, provider: str, url: str, status: int | None = None,
                 body: str | None = None, request_id: str | None = None, retry_after: float | None = None,
                 retryable: bool | None = None, hint: str | None = None) -> None:
        self.url = url
        self.status = status
        body = redact(body)
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        if retryable is None:
            retryable = status is None or status in RETRYABLE_STATUS
        parts = [f"url={url}", f"status={status if status is not None else 'none'}"]
        if request_id:
            parts.append(f"request_id={request_id}")
        if body:
            parts.append(f"body={body[:300]}")
        super().__init__(message, provider=provider, retryable=retryable, detail="; ".join(parts), hint=hint)


class MissingAPIKeyError(EmbeddingError):
    """No API key where the provider's configuration says to look."""

    def __init__(self, *, provider: str, env: str, file: str | None) -> None:
        where = f"the file {file} (embedding.api_key_file)" if file else f"the environment variable {env}"
        super().__init__(
            f"no API key for {provider}: {where} is not set",
            provider=provider,
            hint=(f"Put the key in {env} in the PostgreSQL server's environment (e.g. "
                  "/etc/postgresql/15/main/environment, then restart), or set embedding.api_key_file to a file "
                  "readable only by the postgres OS user. Keys are never stored in tables."),
        )
