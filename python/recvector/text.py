"""Entity text: how an entity's features become the one text that is embedded.

Template (documented in docs/mapping.md): features are taken in descending weight (ties keep the
mapping's order); each non-empty feature becomes the segment ``"<Label>: <value>."``; a feature of
weight w is written ``max(1, min(3, round(w)))`` times, so heavier features take a larger share of
the mean-pooled tokens; segments are joined by one space. Text longer than the model's input is cut
by the tokenizer from the end, so the lightest features are the first to go.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence


def repetitions(weight: float) -> int:
    return max(1, min(3, int(round(weight))))


def _clean(value: Any) -> str:
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return text.rstrip(".")


def compose(features: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> str:
    """Compose the entity text from the mapping's ``features`` and their ``values`` (same order)."""
    order = sorted(range(len(features)), key=lambda i: (-float(features[i].get("weight", 1.0)), i))
    segments: list[str] = []
    for i in order:
        value = _clean(values[i])
        if not value:
            continue
        seg = f"{features[i]['label']}: {value}."
        segments.extend([seg] * repetitions(float(features[i].get("weight", 1.0))))
    return " ".join(segments)


def fingerprint(model_id: str, text: str) -> str:
    """Hash of the model identity and the composed text: equal fingerprints are never re-embedded."""
    h = hashlib.sha256()
    h.update(model_id.encode("utf-8"))
    h.update(b"\x00")
    h.update(text.encode("utf-8"))
    return h.hexdigest()
