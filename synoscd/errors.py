"""What went wrong with a call to a service, in words a person can act on.

Adapters wrap SDK exceptions into their own (ArmError, StateError, SourceError, SecretUnavailable);
the cause stays chained. `problem()` walks that chain and tells three cases apart, because each has
a different fix: the service could not be reached (endpoint, network, local stack down), it refused
us (credentials, role assignments), or what we named does not exist there (a setting's value)."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from typing import Literal

Problem = Literal["unreachable", "refused", "not-found", "error"]

_CA_BUNDLE = re.compile(r"Could not find a suitable TLS CA certificate bundle, invalid path: (\S+)")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: __cause__/__context__, and the SDKs' own links
    (azure-core's `inner_exception`, urllib3's `reason`)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for link in ("__cause__", "__context__", "inner_exception", "reason"):
            nxt = getattr(current, link, None)
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                todo.append(arg)


def unreachable(exc: BaseException) -> str | None:
    """A short reason when the service could not be reached at all (None when it answered)."""
    for e in chain(exc):
        text = str(e)
        m = _CA_BUNDLE.search(text)
        if m:
            return (
                f"the CA bundle {m.group(1)} does not exist (REQUESTS_CA_BUNDLE); a local stack that "
                "wrote it has stopped?"
            )
        if isinstance(e, ConnectionRefusedError) or "Connection refused" in text:
            return "connection refused"
        if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return "its TLS certificate is not trusted (REQUESTS_CA_BUNDLE)"
        if isinstance(e, socket.gaierror) or "Name or service not known" in text or "nodename nor" in text:
            return "its host name does not resolve"
        if isinstance(e, socket.timeout | TimeoutError) or "timed out" in text.lower():
            return "timed out"
        if isinstance(e, ConnectionResetError) or "Connection reset" in text or "Connection aborted" in text:
            return "the connection was dropped"
    for e in chain(exc):
        if type(e).__name__ in ("ServiceRequestError", "ConnectionError", "NewConnectionError"):
            return "could not connect"
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a service answered with, found anywhere in the chain."""
    for e in chain(exc):
        for attr in ("status_code", "status"):
            value = getattr(e, attr, None)
            if isinstance(value, int) and 100 <= value <= 599:
                return value
    return None


def problem(exc: BaseException) -> Problem:
    if unreachable(exc):
        return "unreachable"
    status = status_of(exc)
    if status in (401, 403):
        return "refused"
    if status == 404:
        return "not-found"
    for e in chain(exc):
        if type(e).__name__ in ("ClientAuthenticationError", "BadCredentialsException"):
            return "refused"
    return "error"


def first_line(exc: BaseException, limit: int = 300) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_local(url: str | None) -> bool:
    from urllib.parse import urlsplit

    return bool(url) and (urlsplit(url or "").hostname or "") in ("127.0.0.1", "localhost", "::1")


def local_hint(url: str | None) -> str:
    """For a loopback endpoint, the likely cause: the local stack is not running."""
    return "; is the local stack running (`make up`, then `source .stack.env`)?" if is_local(url) else ""
