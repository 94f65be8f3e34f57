"""A local HTTP server answering in the documented shapes of the hosted embedding APIs, errors
included, and recording every request it gets. PostgreSQL (PL/Python) calls it on 127.0.0.1.

Routes: OpenAI  POST /v1/embeddings
        Gemini  POST /v1beta/models/<model>:batchEmbedContents
        HF      POST /hf/models/<model>/pipeline/feature-extraction   (Inference API)
        TEI     POST /tei/embed                                       (Text Embeddings Inference)
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-test-not-a-real-key-1234"


def fake_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for a text."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((x / 2**31) - 1.0 for x in struct.unpack(">8I", digest))
        counter += 1
    out = out[:dims]
    norm = math.sqrt(sum(x * x for x in out)) or 1.0
    return [round(x / norm, 6) for x in out]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int | None = None   # what it was answered


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None          # JSON-able, or bytes sent verbatim
    delay: float = 0.0        # seconds to sleep before answering (timeouts)
    wrong_dims: bool = False


class FakeProviders:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.fail_from: int | None = None  # every request from this index on gets a 500
        self.latency = 0.0                 # seconds every answer takes (a slow provider)
        self.in_flight = 0
        self.max_in_flight = 0             # the most requests being answered at once
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeProviders":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.fail_from = None
            self.latency = 0.0
            self.in_flight = self.max_in_flight = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                index = getattr(self, "index", None)
                if index is not None:
                    fake.requests[index].status = status
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-request-id", f"req_{len(fake.requests)}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with fake.lock:
                    index = len(fake.requests)
                    fake.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                                  time.monotonic()))
                    fault = fake.faults.pop(0) if fake.faults else None
                    fail = fake.fail_from is not None and index >= fake.fail_from
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                self.index = index
                try:
                    self._answer(index, body, fault, fail)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _answer(self, index: int, body: Any, fault: Fault | None, fail: bool) -> None:
                if fake.latency:
                    time.sleep(fake.latency)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fail:
                    return self._send(500, {"error": {"message": "The server had an error", "type": "server_error"}})
                if fault and fault.status != 200:
                    return self._send(fault.status, fault.body, fault.headers)
                if fault and fault.body is not None:
                    return self._send(200, fault.body)
                try:
                    status, answer = fake.answer(self.path, self.headers, body, fault)
                except Exception as e:  # noqa: BLE001 - a bug in the fake shows as a 599
                    status, answer = 599, {"error": repr(e)}
                self._send(status, answer)

        return Handler

    def answer(self, path: str, headers: Any, body: Any, fault: Fault | None) -> tuple[int, Any]:
        shrink = 1 if fault and fault.wrong_dims else 0
        if path == "/v1/embeddings":
            if headers.get("Authorization") != f"Bearer {KEY}":
                return 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                       "code": "invalid_api_key"}}
            inputs = body["input"]
            if len(inputs) > 2048:
                return 400, {"error": {"message": "'$.input' is invalid: at most 2048 inputs", "type": "invalid_request_error"}}
            dims = body.get("dimensions", 1536) - shrink
            return 200, {"object": "list", "model": body["model"],
                         "data": [{"object": "embedding", "index": i, "embedding": fake_vector(t, dims)}
                                  for i, t in enumerate(inputs)],
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        if path.startswith("/v1beta/models/") and path.endswith(":batchEmbedContents"):
            if headers.get("x-goog-api-key") != KEY:
                return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                       "status": "INVALID_ARGUMENT"}}
            reqs = body["requests"]
            if len(reqs) > 100:
                return 400, {"error": {"code": 400, "message": "* BatchEmbedContentsRequest.requests: at most 100 "
                                       "requests can be in one batch", "status": "INVALID_ARGUMENT"}}
            return 200, {"embeddings": [{"values": fake_vector(r["content"]["parts"][0]["text"],
                                                               r.get("outputDimensionality", 3072) - shrink)}
                                        for r in reqs]}
        if path.startswith("/hf/models/") and path.endswith("/pipeline/feature-extraction"):
            if headers.get("Authorization") != f"Bearer {KEY}":
                return 401, {"error": "Invalid credentials in Authorization header"}
            return 200, [fake_vector(t, 384 - shrink) for t in body["inputs"]]
        if path == "/tei/embed":
            if len(body["inputs"]) > 32:
                return 413, {"error": f"batch size {len(body['inputs'])} > maximum allowed batch size 32",
                             "error_type": "Validation"}
            return 200, [fake_vector(t, 384 - shrink) for t in body["inputs"]]
        return 404, {"error": f"no route {path}"}
