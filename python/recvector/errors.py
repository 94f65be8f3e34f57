"""One error family for RecVector.

Every error carries a one-line message, an optional detail and hint. Inside PostgreSQL they are
raised as ``ERROR`` with DETAIL and HINT (see :mod:`recvector.plpython`); the CLI prints one line
and exits non-zero.
"""
from __future__ import annotations

from dataclasses import dataclass


class RecVectorError(Exception):
    """Base class of every error RecVector raises."""

    sqlstate: str = "XX000"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        return self.message


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


class EmbeddingError(RecVectorError):
    """An embedding provider failed or returned something unusable."""

    sqlstate = "58000"  # system_error

    def __init__(self, message: str, *, provider: str, retryable: bool = False,
                 detail: str | None = None, hint: str | None = None) -> None:
        self.provider = provider
        self.retryable = retryable
        parts = [f"provider={provider}", f"retryable={'yes' if retryable else 'no'}"]
        if detail:
            parts.append(detail)
        super().__init__(message, detail="; ".join(parts), hint=hint)


class DimensionMismatchError(EmbeddingError):
    """The provider returned vectors of another size than the mapping declares."""

    def __init__(self, *, provider: str, expected: int, got: int) -> None:
        super().__init__(
            f"embedding provider returned {got}-dimensional vectors, the mapping declares {expected}",
            provider=provider,
            hint="Set embedding.dimensions to the model's output size, then run recvector.reembed().",
        )
