"""What every stand-in shares: an HTTPS server on loopback, a small router, fault injection, a global
latency, a call log, and the admin paths (`/_admin/...`, outside the real API) that drive them.

Admin API (every stand-in):
  POST   /_admin/reset                 forget all state, faults, latency and calls
  GET    /_admin/calls[?since=N]       {"calls": [{method, path, query, status, ...}], "counts": {...}}
                                       (a call a fault hit has "fault": its id; a write SynosCD made has
                                       "pass": the x-synoscd-pass header, the pass that made it)
  DELETE /_admin/calls                 clear the call log
  POST   /_admin/faults                add a fault (see Fault), answers its id
  DELETE /_admin/faults                clear faults
  PUT    /_admin/latency               {"seconds": 0.02}: added to every API call
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from emulators.tls import CertPair

ADMIN_PREFIX = "/_admin/"
PASS_HEADER = "x-synoscd-pass"  # logged as the call's "pass" (synoscd/azure/arm.py sends it on writes)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    base_url: str

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(obj).encode("utf-8"), hdrs)

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class DropConnection(Exception):
    """Raised by a handler or a fault to close the socket without answering."""


class HttpError(Exception):
    """A handler's way to answer an error without building the response itself."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Fault:
    """Applies to the next `count` API calls whose method and path match.

    status: answer this status (with `body` and `retry_after` when given) instead of the real one.
    latency: seconds to sleep before answering (alone, it delays the real answer).
    drop: close the connection without answering.
    drop_after: do the work, then close the connection without answering (the answer is lost).
    """

    id: int
    method: str
    path: re.Pattern[str]
    count: int
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    drop: bool = False
    drop_after: bool = False
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in ("*", method) and bool(self.path.search(path))


Handler = Callable[..., Response]


class Emulator:
    """Base of a stand-in: subclasses register routes and may add admin routes."""

    name = "emulator"
    unlogged_prefixes: tuple[str, ...] = (ADMIN_PREFIX,)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._admin_routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.calls: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.latency = 0.0
        self._fault_ids = 0
        self.add_admin_route("POST", r"/_admin/reset", self._admin_reset)
        self.add_admin_route("GET", r"/_admin/calls", self._admin_calls)
        self.add_admin_route("DELETE", r"/_admin/calls", self._admin_clear_calls)
        self.add_admin_route("POST", r"/_admin/faults", self._admin_add_fault)
        self.add_admin_route("DELETE", r"/_admin/faults", self._admin_clear_faults)
        self.add_admin_route("PUT", r"/_admin/latency", self._admin_latency)

    # -- registration -------------------------------------------------------------------------
    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}/?$", re.IGNORECASE), handler))

    def add_admin_route(self, method: str, pattern: str, handler: Handler) -> None:
        self._admin_routes.append((method, re.compile(f"^{pattern}/?$"), handler))

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Subclasses extend this to forget their own state."""
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.latency = 0.0

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        if req.path.startswith(self.unlogged_prefixes):
            return self._run(self._admin_routes, req)
        started = time.monotonic()
        fault = self._take_fault(req.method, req.path)
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "time": time.time(),
        }
        writer = req.header(PASS_HEADER)
        if writer:  # the pass that sent a write (SynosCD names it on ARM writes)
            entry["pass"] = writer
        if fault:
            entry["fault"] = fault.id
        delay = self.latency + (fault.latency if fault else 0.0)
        if delay:
            time.sleep(delay)
        try:
            if fault and fault.drop:
                entry["status"] = "dropped"
                raise DropConnection()
            if fault and fault.status is not None:
                resp = self._fault_response(fault)
            else:
                resp = self._run(self._routes, req)
            entry["status"] = resp.status
            if fault and fault.drop_after:
                entry["status"] = f"{resp.status} dropped"
                raise DropConnection()
            return resp
        finally:
            entry["ms"] = round((time.monotonic() - started) * 1000, 2)
            with self.lock:
                self.calls.append(entry)

    def _run(self, routes: list[tuple[str, re.Pattern[str], Handler]], req: Request) -> Response:
        path_matched = False
        for method, pattern, handler in routes:
            m = pattern.match(req.path)
            if not m:
                continue
            path_matched = True
            if method != req.method:
                continue
            try:
                with self.lock:
                    return handler(req, **m.groupdict())
            except HttpError as err:
                return err.response
        if path_matched:
            return self.error_response(405, "MethodNotAllowed", f"{req.method} is not allowed on {req.path}")
        return self.not_found(req)

    def not_found(self, req: Request) -> Response:
        return self.error_response(404, "NotFound", f"No route for {req.method} {req.path}")

    def error_response(self, status: int, code: str, message: str) -> Response:
        """Subclasses answer errors in their service's shape."""
        return Response.json(status, {"error": {"code": code, "message": message}})

    def _fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        if fault.body is not None:
            resp = Response.json(status, fault.body)
        else:
            resp = self.error_response(status, "InjectedFault", "Fault injected by a test")
        if fault.retry_after is not None:
            resp.headers["Retry-After"] = f"{fault.retry_after:g}"
        return resp

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None

    # -- admin handlers -----------------------------------------------------------------------
    def _admin_reset(self, req: Request) -> Response:
        self.reset()
        return Response.json(200, {"reset": True})

    def _admin_calls(self, req: Request) -> Response:
        since = int(req.query.get("since", "0"))
        calls = self.calls[since:]
        counts = Counter(f"{c['method']} {c['path']}" for c in calls)
        return Response.json(200, {"total": len(self.calls), "calls": calls, "counts": dict(counts)})

    def _admin_clear_calls(self, req: Request) -> Response:
        self.calls.clear()
        return Response.json(200, {"cleared": True})

    def _admin_add_fault(self, req: Request) -> Response:
        spec = req.json() or {}
        self._fault_ids += 1
        fault = Fault(
            id=self._fault_ids,
            method=str(spec.get("method", "*")).upper(),
            path=re.compile(spec.get("path", ".*")),
            count=int(spec.get("count", 1)),
            status=spec.get("status"),
            retry_after=spec.get("retryAfter"),
            latency=float(spec.get("latency", 0.0)),
            drop=bool(spec.get("drop", False)),
            drop_after=bool(spec.get("dropAfter", False)),
            body=spec.get("body"),
        )
        self.faults.append(fault)
        return Response.json(201, {"id": fault.id})

    def _admin_clear_faults(self, req: Request) -> Response:
        self.faults.clear()
        return Response.json(200, {"cleared": True})

    def _admin_latency(self, req: Request) -> Response:
        self.latency = float((req.json() or {}).get("seconds", 0.0))
        return Response.json(200, {"seconds": self.latency})


# -- the server ---------------------------------------------------------------------------------


class LoopbackHandler(BaseHTTPRequestHandler):
    """What every local server here needs from http.server: keep-alive, no Nagle stall, quiet logs."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # http.server stalls ~40 ms per request through Nagle + delayed ACK unless this is set.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _Handler(LoopbackHandler):
    server: _Server

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        body = self.read_body()
        req = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            base_url=self.server.base_url,
        )
        try:
            resp = self.server.emulator.dispatch(req)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception as exc:  # a stand-in bug must answer 500, not hang the client
            resp = Response.json(500, {"error": {"code": "EmulatorError", "message": repr(exc)}})
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        payload = b"" if self.command == "HEAD" else resp.body
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if payload and resp.status not in (204, 304):
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], emulator: Emulator, ssl_ctx: ssl.SSLContext | None) -> None:
        super().__init__(addr, _Handler)
        self.emulator = emulator
        self.ssl_ctx = ssl_ctx
        scheme = "https" if ssl_ctx else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the connection's own thread, never in the accept loop.
        if self.ssl_ctx is not None:
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-request are normal in fault tests


@dataclass
class RunningServer:
    emulator: Emulator
    server: _Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(emulator: Emulator, tls: CertPair | None, port: int = 0) -> RunningServer:
    """Serve `emulator` on 127.0.0.1 (HTTPS when `tls` is given) in a background thread."""
    ctx = None
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    server = _Server(("127.0.0.1", port), emulator, ctx)
    thread = threading.Thread(target=server.serve_forever, name=f"{emulator.name}-server", daemon=True)
    thread.start()
    return RunningServer(emulator, server, thread)
