"""The Storage Queue between the webhook and the pass: one message per accepted delivery, picked up
by the queue-triggered function (`function_app.py: reconcile_queue`), whose host retries a failing
message and moves it to `<queue>-poison` after `maxDequeueCount` attempts (host.json).

The queue lives in the state store's account (in Azure also the Functions host's storage): a
connection string names its QueueEndpoint; a table endpoint URL
(https://ACCOUNT.table.core.windows.net) gives the queue endpoint of the same account, reached with
the managed identity (Storage Queue Data Contributor on the account: send, receive, delete).

Messages are JSON, base64-encoded as the Functions host expects by default (`messageEncoding`).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The webhook answers GitHub within its 10 s: one quick retry, short timeouts.
TIMEOUTS = (2.0, 3.0)


class QueueError(Exception):
    """The queue could not be reached; the message says which and what to check."""


def queue_endpoint(table_endpoint: str) -> str:
    """https://ACCOUNT.table.SUFFIX -> https://ACCOUNT.queue.SUFFIX (the same account)."""
    parts = urlsplit(table_endpoint)
    host = parts.hostname or ""
    if ".table." not in host:
        raise QueueError(
            f"cannot tell the queue endpoint of state store {table_endpoint}: use a "
            "https://ACCOUNT.table.core.windows.net endpoint or a connection string in SYNOSCD_STATE_STORE"
        )
    netloc = parts.netloc.replace(".table.", ".queue.", 1)
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def open_queue(store: str, credential: Any, name: str) -> Any:
    """A QueueClient for `name` (not created here: `send` creates it when missing)."""
    from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    options: dict[str, Any] = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
        "retry_policy": LinearRetry(backoff=0.2, random_jitter_range=0.1, retry_total=1),
        "connection_timeout": TIMEOUTS[0],
        "read_timeout": TIMEOUTS[1],
    }
    if store.startswith(("http://", "https://")):
        return QueueClient(queue_endpoint(store), name, credential=credential, **options)
    return QueueClient.from_connection_string(store, name, **options)


def send(queue: Any, message: dict[str, Any]) -> str:
    """Put one message on the queue (creating the queue the first time); returns its id."""
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

    text = json.dumps(message, separators=(",", ":"), sort_keys=True)
    try:
        try:
            sent = queue.send_message(text)
        except ResourceNotFoundError:  # a new deployment or a local stack: the queue is made on first use
            with contextlib.suppress(ResourceExistsError):  # another sender (a fan-out thread) made it first
                queue.create_queue()
            sent = queue.send_message(text)
    except AzureError as exc:
        raise QueueError(
            f"queue {queue.queue_name} at {queue.primary_hostname} did not take the message "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); check SYNOSCD_STATE_STORE and "
            "the identity's queue role"
        ) from exc
    return str(sent.id)


def parse(body: bytes | str) -> dict[str, Any]:
    """A message as the queue trigger gets it (already decoded by the host)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("a SynosCD queue message is a JSON object")
    return doc
