"""RecVector: content-based recommendations inside PostgreSQL.

The same package serves three places: the code PL/Python runs inside the database
(:mod:`recvector.plpython`), a psycopg client (:func:`connect`), and the ``recvector`` CLI.
"""
from __future__ import annotations

__version__ = "0.3.0"

from .errors import EmbeddingError, MappingError, NotConfiguredError, RecVectorError  # noqa: E402

__all__ = ["__version__", "connect", "RecVectorError", "MappingError", "NotConfiguredError", "EmbeddingError"]


def connect(dsn: str = "", **kwargs):  # type: ignore[no-untyped-def]
    """Open a :class:`recvector.client.Client` on a database where the extension is installed."""
    from .client import Client

    return Client.connect(dsn, **kwargs)
