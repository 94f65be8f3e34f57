"""Keys and tokens never reach an error message, a DETAIL, a NOTICE or the server log.

Every key RecVector reads (an embedding provider's, a Chroma token) is registered here when it is
read; :func:`redact` masks those values and the common shapes of keys wherever they appear (a
provider that echoes the key in its 401 body, an exception that prints a header).
"""
from __future__ import annotations

import re
import threading

MASK = "[redacted]"

_lock = threading.Lock()
_secrets: set[str] = set()

# Key shapes of the providers RecVector talks to, and "key=value" pairs in bodies and headers.
_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),                # OpenAI
    re.compile(r"\bhf_[A-Za-z0-9]{8,}"),                    # Hugging Face
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),               # Google (Gemini)
    re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)([\"']?(?:api[_-]?key|access[_-]?token|token|secret|password|authorization|x-goog-api-key)"
               r"[\"']?\s*[:=]\s*[\"']?)([^\"'\s,;}&]{4,})"),
]


def register(secret: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it (values shorter than 4 characters are not
    secrets worth masking everywhere)."""
    if secret and len(secret.strip()) >= 4:
        with _lock:
            _secrets.add(secret.strip())


def redact(text: str | None) -> str | None:
    """``text`` with every registered secret and every key-shaped string replaced by [redacted]."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        text = text.replace(s, MASK)
    for i, pattern in enumerate(_PATTERNS):
        if i == 3:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        elif i == 4:
            text = pattern.sub(lambda m: f"{m.group(1)}{MASK}", text)
        else:
            text = pattern.sub(MASK, text)
    return text


__all__ = ["MASK", "register", "redact"]
