"""The entity text template (docs/mapping.md) and fingerprints, by hand."""
from __future__ import annotations

from recvector.text import compose, fingerprint, repetitions

FEATURES = [{"name": "title", "label": "Title", "weight": 1.0}, {"name": "genre", "label": "Genre", "weight": 2.0},
            {"name": "tags", "label": "Tags", "weight": 0.3}]


def test_heavier_features_first_and_repeated():
    text = compose(FEATURES, ["Spirited Away", "Fantasy", "ghibli, bath house"])
    assert text == "Genre: Fantasy. Genre: Fantasy. Title: Spirited Away. Tags: ghibli, bath house."


def test_values_are_normalised_and_empty_ones_skipped():
    text = compose(FEATURES, ["  A   title \n with  spaces...", None, ""])
    assert text == "Title: A title with spaces."


def test_repetitions_are_between_one_and_three():
    assert [repetitions(w) for w in (0.1, 1, 1.6, 2.4, 3, 9)] == [1, 1, 2, 2, 3, 3]


def test_fingerprint_changes_with_model_and_text():
    a = fingerprint("local/m/384", "x")
    assert a == fingerprint("local/m/384", "x")
    assert a != fingerprint("local/m/768", "x") and a != fingerprint("local/m/384", "y")
