"""A fault-injecting HTTP proxy in front of Azurite: Azurite has no fault injection, and a storage
outage is what the lease, the pass history and the webhook must survive.

Requests pass through unchanged (the Shared Key signature covers the path and headers, not the host),
so a connection string whose TableEndpoint or QueueEndpoint names the proxy reaches the same Azurite
account. The stand-ins' admin API applies (faults with a status, latency or a dropped connection;
the call log), plus:

  PUT /_admin/outage   {"down": true}: every request is dropped until {"down": false}

    proxy, store = proxy_in_front(connection_string, "Table")  # the proxy, and a string through it
"""

from __future__ import annotations

import http.client
import threading
from urllib.parse import quote, urlencode, urlsplit

from emulators.httpbase import DropConnection, Emulator, Request, Response, RunningServer, serve

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones http.client and our server set themselves.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


class StorageProxy(Emulator):
    name = "storage-proxy"

    def __init__(self, target: str) -> None:
        super().__init__()
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        self.down = False
        self._local = threading.local()
        self.add_admin_route("PUT", r"/_admin/outage", self._admin_outage)

    def reset(self) -> None:
        super().reset()
        self.down = False

    def dispatch(self, req: Request) -> Response:
        if self.down and not req.path.startswith(self.unlogged_prefixes):
            with self.lock:
                self.calls.append({"method": req.method, "path": req.path, "status": "dropped"})
            raise DropConnection()
        return super().dispatch(req)

    def _run(self, routes: list, req: Request) -> Response:  # type: ignore[type-arg]
        # Every API path is forwarded (outside the base's lock: requests run side by side).
        if routes is self._admin_routes:
            return super()._run(routes, req)
        return self._forward(req)

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.target_host, self.target_port, timeout=30)
            self._local.conn = conn
        return conn

    def _forward(self, req: Request) -> Response:
        target = req.path + (f"?{urlencode(req.query, quote_via=quote)}" if req.query else "")
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(req.body))
        for attempt in (1, 2):  # a kept-alive connection Azurite closed meanwhile: open a new one
            conn = self._connection()
            try:
                conn.request(req.method, target, body=req.body, headers=headers)
                upstream = conn.getresponse()
                body = upstream.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        out = {k: v for k, v in upstream.getheaders() if k.lower() not in _HOP}
        return Response(upstream.status, body, out)

    def _admin_outage(self, req: Request) -> Response:
        self.down = bool((req.json() or {}).get("down", True))
        return Response.json(200, {"down": self.down})


def proxy_in_front(connection_string: str, service: str) -> tuple[RunningServer, str]:
    """A StorageProxy on loopback in front of the `service` endpoint ("Table" or "Queue") of an
    Azurite connection string, and the connection string that reaches the same account through it
    (its other endpoints unchanged). The caller stops the server."""
    parts = dict(p.split("=", 1) for p in connection_string.strip(";").split(";"))
    origin, account = parts[f"{service}Endpoint"].rstrip("/").rsplit("/", 1)
    proxy = serve(StorageProxy(origin), tls=None)
    parts[f"{service}Endpoint"] = f"{proxy.url}/{account}"
    return proxy, ";".join(f"{k}={v}" for k, v in parts.items()) + ";"
