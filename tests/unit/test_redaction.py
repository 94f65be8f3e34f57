"""Keys never leave in an error (docs/security.md, rule 8)."""
from __future__ import annotations

from recvector.errors import APICallError, RecVectorError
from recvector.redaction import MASK, redact, register


def test_registered_secrets_and_key_shapes_are_masked():
    register("my-very-own-secret-value")
    text = ("401: key my-very-own-secret-value is wrong; also sk-proj-abcdefghijkl, hf_abcdefghijkl, "
            "AIzaSyA-1234567890abcdefghijklmno, Authorization: Bearer abc.def.ghi.jkl, api_key=zzzzzzzz")
    out = redact(text)
    for secret in ("my-very-own-secret-value", "sk-proj-abcdefghijkl", "hf_abcdefghijkl",
                   "AIzaSyA-1234567890abcdefghijklmno", "abc.def.ghi.jkl", "zzzzzzzz"):
        assert secret not in out
    assert out.count(MASK) >= 6 and out.startswith("401: key ")


def test_errors_mask_message_detail_hint_and_body():
    register("sk-test-not-a-real-key-1234")
    e = APICallError("openai returned HTTP 401: Incorrect API key provided: sk-test-not-a-real-key-1234",
                     provider="openai", url="http://x", status=401, body='{"error": "sk-test-not-a-real-key-1234"}')
    for part in (e.message, e.detail, e.body, str(e)):
        assert "sk-test-not-a-real-key-1234" not in part
    e2 = RecVectorError("x", detail="token=abcdefgh123", hint="Bearer qwertyuiop")
    assert "abcdefgh123" not in e2.detail and "qwertyuiop" not in e2.hint


def test_ordinary_text_is_left_alone():
    text = "invalid mapping at $.interactions[0].weight: 1 stored entity vectors have 384 dimensions"
    assert redact(text) == text
