"""The studio's HTTP server: static files of the built page, and a JSON API under ``/api``.

Bound to 127.0.0.1 only. Every ``/api`` request must carry a local ``Host`` (``127.0.0.1:<port>`` or
``localhost:<port>``), and an ``Origin``, when the browser sends one, must be the studio's own: a page
from another site cannot drive the API (DNS rebinding, cross-site requests). Writes (apply, save)
also require ``Content-Type: application/json``, which a cross-site form cannot send.

| method | path | body / query | answer |
|---|---|---|---|
| GET | /api/catalog | | tables, columns, keys, foreign keys |
| GET | /api/mapping | | the loaded mapping (or null) and the file's, if ``--file`` |
| POST | /api/validate | mapping | ``{"problems": [{"path", "problem"}]}`` |
| POST | /api/diff | mapping | unified diff against the loaded mapping |
| POST | /api/apply | mapping | set_schema's summary, or its problems (422) |
| POST | /api/save | mapping | writes the ``--file`` JSON |
| POST | /api/bootstrap | {} | recvector.bootstrap()'s summary (embeds what is new, builds profiles) |
| GET | /api/preview/user?id=&k= | | recent interactions, recommendations with explanations |
| GET | /api/preview/entity?id=&k= | | similar entities |
"""
from __future__ import annotations

import json
import mimetypes
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import psycopg

from ..client import Client
from ..errors import MappingError, RecVectorError
from . import api

STATIC = Path(__file__).resolve().parent / "static"


class StudioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dsn: str, port: int = 0, mapping_file: Path | None = None, static: Path = STATIC) -> None:
        self.dsn = dsn
        self.mapping_file = mapping_file
        self.static = static
        self.lock = threading.Lock()  # one psycopg connection, one request at a time
        self.client = Client.connect(dsn)
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def allowed_hosts(self) -> set[str]:
        port = self.server_address[1]
        return {f"127.0.0.1:{port}", f"localhost:{port}"}

    def server_close(self) -> None:
        super().server_close()
        self.client.close()


class _Handler(BaseHTTPRequestHandler):
    server: StudioServer

    def log_message(self, *args: Any) -> None:  # quiet; errors are answered as JSON
        pass

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, default=str).encode(), "application/json")

    def _local(self) -> bool:
        allowed = self.server.allowed_hosts()
        if self.headers.get("Host") not in allowed:
            return False
        origin = self.headers.get("Origin")
        return origin is None or urllib.parse.urlsplit(origin).netloc in allowed and origin.startswith("http://")

    def _body(self) -> Any:
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise _HTTPError(415, "send the mapping as application/json")
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            raise _HTTPError(413, "request body too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as e:
            raise _HTTPError(400, f"request body is not JSON: {e}") from None

    def _api(self, method: str) -> None:
        if not self._local():
            self._json(403, {"error": "the studio answers only its own page on 127.0.0.1"})
            return
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        route = _ROUTES.get((method, url.path))
        if route is None:
            self._json(404, {"error": f"no such endpoint: {method} {url.path}"})
            return
        try:
            body = self._body() if method == "POST" else None
            with self.server.lock:
                status, value = route(self.server, body, query)
            self._json(status, value)
        except _HTTPError as e:
            self._json(e.status, {"error": e.message})
        except MappingError as e:
            self._json(422, {"error": e.message, "problems": [{"path": p.path, "problem": p.message} for p in e.problems]})
        except RecVectorError as e:
            self._json(400, {"error": e.message, "detail": e.detail, "hint": e.hint})
        except psycopg.Error as e:
            self._json(400, {"error": (e.diag.message_primary or str(e)).strip(), "detail": e.diag.message_detail,
                             "hint": e.diag.message_hint})

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/api/"):
            self._api("GET")
            return
        if self.headers.get("Host") not in self.server.allowed_hosts():
            self._send(403, b"forbidden", "text/plain")
            return
        rel = urllib.parse.urlsplit(self.path).path.lstrip("/") or "index.html"
        target = (self.server.static / rel).resolve()
        if not str(target).startswith(str(self.server.static.resolve())) or not target.is_file():
            target = self.server.static / "index.html"  # the page routes itself
        if not target.is_file():
            self._send(404, b"the studio's page is missing: run `npm install && npm run build` in studio/", "text/plain")
            return
        self._send(200, target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream")

    def do_POST(self) -> None:  # noqa: N802
        self._api("POST")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _mapping_arg(body: Any) -> dict[str, Any]:
    mapping = body.get("mapping") if isinstance(body, dict) else None
    if not isinstance(mapping, dict):
        raise _HTTPError(400, 'send {"mapping": {...}}')
    return mapping


def _get_mapping(s: StudioServer, body: Any, q: dict[str, str]) -> tuple[int, Any]:
    file_doc = None
    if s.mapping_file and s.mapping_file.is_file():
        file_doc = json.loads(s.mapping_file.read_text(encoding="utf-8"))
    return 200, {"loaded": api.current_mapping(s.client), "file": str(s.mapping_file) if s.mapping_file else None,
                 "file_mapping": file_doc}


def _save(s: StudioServer, body: Any, q: dict[str, str]) -> tuple[int, Any]:
    if s.mapping_file is None:
        raise _HTTPError(409, "the studio was started without --file: download the JSON instead")
    mapping = _mapping_arg(body)
    s.mapping_file.write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 200, {"saved": str(s.mapping_file)}


def _apply(s: StudioServer, body: Any, q: dict[str, str]) -> tuple[int, Any]:
    mapping = _mapping_arg(body)
    problems = api.validate(s.client, mapping)
    if problems:
        return 422, {"error": "the mapping has problems; nothing was written", "problems": problems}
    return 200, {"summary": api.apply(s.client, mapping)}


def _id(q: dict[str, str]) -> str:
    if not q.get("id"):
        raise _HTTPError(400, "pass ?id=")
    return q["id"]


def _k(q: dict[str, str]) -> int:
    try:
        return int(q.get("k", "10"))
    except ValueError:
        raise _HTTPError(400, f"k must be an integer, got {q.get('k')!r}") from None


_Route = Callable[[StudioServer, Any, dict[str, str]], tuple[int, Any]]
_ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", "/api/catalog"): lambda s, b, q: (200, api.catalog(s.client)),
    ("GET", "/api/mapping"): _get_mapping,
    ("POST", "/api/validate"): lambda s, b, q: (200, {"problems": api.validate(s.client, _mapping_arg(b))}),
    ("POST", "/api/diff"): lambda s, b, q: (200, api.diff(s.client, _mapping_arg(b))),
    ("POST", "/api/apply"): _apply,
    ("POST", "/api/save"): _save,
    ("POST", "/api/bootstrap"): lambda s, b, q: (200, {"summary": s.client.bootstrap(resumable=False)}),
    ("GET", "/api/preview/user"): lambda s, b, q: (200, api.preview_user(s.client, _id(q), _k(q))),
    ("GET", "/api/preview/entity"): lambda s, b, q: (200, api.preview_entity(s.client, _id(q), _k(q))),
}


def serve(dsn: str, port: int, mapping_file: Path | None, open_browser: bool) -> None:
    server = StudioServer(dsn, port, mapping_file)
    print(f"recvector studio on {server.url} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
