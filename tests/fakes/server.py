"""A threaded JSON HTTP server on 127.0.0.1 for fake platform APIs.

Subclasses register routes with ``self.route(path, handler, methods)``; a handler gets a
logged request dict and returns ``(status, body)`` or a body dict (status 200). Every
request is recorded in ``.requests``; ``fail_next`` queues platform-style failures.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[[dict], "dict | tuple[int, dict]"]


class FakeServer:
    """Base class: start()/stop(), base_url, request log and failure injection."""

    name = "fake"

    def __init__(self) -> None:
        self._routes: dict[str, tuple[Handler, frozenset[str]]] = {}
        self._lock = threading.RLock()
        self._requests: list[dict] = []
        self._failures: dict[str, deque] = defaultdict(deque)
        self._server = None
        self._thread: threading.Thread | None = None
        self.clock: Callable[[], float] = time.time

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeServer:
        if self._server is not None:
            return self
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- routes, log, failures --------------------------------------------------------

    def route(self, path: str, handler: Handler, methods=("GET", "POST")) -> None:
        self._routes[path] = (handler, frozenset(methods))

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    def calls(self, path: str) -> list[dict]:
        """Logged requests to `path` (the path only, without query)."""
        return [r for r in self.requests if r["path"] == path]

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(
        self,
        path: str,
        errcode: int | None = None,
        errmsg: str = "",
        times: int = 1,
        *,
        http_status: int = 200,
        **extra,
    ) -> None:
        """Answer the next `times` requests to `path` with an error instead of handling them.

        With `errcode` the body is ``{"errcode", "errmsg", **extra}`` (e.g.
        ``sub_code="40014"``); with only `http_status` the body is empty JSON.
        """
        body = {} if errcode is None else {"errcode": errcode, "errmsg": errmsg, **extra}
        with self._lock:
            for _ in range(times):
                self._failures[path].append((http_status, body))

    # -- WSGI -------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            entry = self._record(request)
        finally:
            request.close()  # closes spooled multipart uploads
        with self._lock:
            queue = self._failures.get(request.path)
            failure = queue.popleft() if queue else None
        if failure is not None:
            status, body = failure
        else:
            route = self._routes.get(request.path)
            if route is None:
                status, body = 404, {"errcode": 404, "errmsg": f"no route {request.path}"}
            elif request.method not in route[1]:
                status, body = 405, {"errcode": 405, "errmsg": "method not allowed"}
            else:
                outcome = route[0](entry)
                status, body = outcome if isinstance(outcome, tuple) else (200, outcome)
        entry["response"] = body
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        response = Response(payload, status=status, content_type="application/json; charset=utf-8")
        return response(environ, start_response)

    def _record(self, request: Request) -> dict:
        body = request.get_data(cache=True)
        parsed = None
        if body and (request.mimetype == "application/json" or body[:1] in (b"{", b"[")):
            try:
                parsed = json.loads(body.decode("utf-8"))
            except ValueError:
                parsed = None
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(),
            "json": parsed,
            "form": request.form.to_dict(),
            "files": {
                name: {"filename": f.filename, "content_type": f.mimetype, "data": f.read()}
                for name, f in request.files.items()
            },
            "headers": dict(request.headers),
            "at": self.clock(),
        }
        with self._lock:
            self._requests.append(entry)
        return entry


def ok(**fields) -> dict:
    return {"errcode": 0, "errmsg": "ok", **fields}


def error(errcode: int, errmsg: str, **fields) -> dict:
    return {"errcode": errcode, "errmsg": errmsg, **fields}
