"""Structured JSON logs. Every record is one JSON object; fields passed with `extra=` (pass_id,
trigger, app, ...) become keys. Settings are never logged whole, and secret-looking keys are masked."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_WORDS = ("secret", "token", "password", "private_key", "privatekey", "authorization", "connection")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = "********" if any(w in key.lower() for w in _SECRET_WORDS) else value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: int = logging.INFO, stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("synoscd")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The SDKs log every HTTP request at INFO, headers included: keep them quiet unless debugging.
    for noisy in ("azure", "urllib3", "github"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
