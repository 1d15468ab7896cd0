"""How a ResourceList gets into and out of a synthesizer job: two blobs and two short-lived SAS URLs.

SynosCD uploads `<prefix>/input.json` and gives the execution a read-only SAS URL for it and a
create/write-only SAS URL for `<prefix>/output.json`, both expiring with the synthesizer's timeout
(plus a margin). With a blob endpoint URL the SAS is a user-delegation SAS signed with a key the
managed identity obtains (no account key anywhere); with a connection string (local development)
it is signed with the account key. The execution never sees a SynosCD credential.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

INPUT, OUTPUT = "input.json", "output.json"
DELEGATION_KEY_LIFETIME = dt.timedelta(hours=1)


class BlobExchange:
    def __init__(self, store: str, container: str, credential: Any = None) -> None:
        from azure.storage.blob import BlobServiceClient

        if store.startswith(("http://", "https://")):
            self.service = BlobServiceClient(store, credential=credential)
            self._account_key = None
        else:
            self.service = BlobServiceClient.from_connection_string(store)
            self._account_key = self.service.credential.account_key
        self.container = container
        self._lock = threading.Lock()
        self._delegation: tuple[dt.datetime, Any] | None = None
        self._created = False

    def _container(self) -> Any:
        client = self.service.get_container_client(self.container)
        if not self._created:
            from azure.core.exceptions import ResourceExistsError

            with contextlib.suppress(ResourceExistsError):
                client.create_container()
            self._created = True
        return client

    def _signing(self) -> dict[str, Any]:
        if self._account_key is not None:
            return {"account_key": self._account_key}
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            if self._delegation is None or self._delegation[0] - now < dt.timedelta(minutes=15):
                expiry = now + DELEGATION_KEY_LIFETIME
                key = self.service.get_user_delegation_key(now - dt.timedelta(minutes=5), expiry)
                self._delegation = (expiry, key)
            return {"user_delegation_key": self._delegation[1]}

    def _sas_url(self, blob: str, permission: Any, lifetime: dt.timedelta) -> str:
        from azure.storage.blob import generate_blob_sas

        now = dt.datetime.now(dt.UTC)
        sas = generate_blob_sas(
            account_name=self.service.account_name,
            container_name=self.container,
            blob_name=blob,
            permission=permission,
            start=now - dt.timedelta(minutes=5),
            expiry=now + lifetime,
            **self._signing(),
        )
        return f"{self.service.url.rstrip('/')}/{self.container}/{blob}?{sas}"

    def hand_over(self, prefix: str, payload: bytes, lifetime: dt.timedelta) -> tuple[str, str]:
        """Upload the input; the (input URL, output URL) the execution gets."""
        from azure.storage.blob import BlobSasPermissions

        container = self._container()
        container.upload_blob(f"{prefix}/{INPUT}", payload, overwrite=True)
        read = self._sas_url(f"{prefix}/{INPUT}", BlobSasPermissions(read=True), lifetime)
        write = self._sas_url(f"{prefix}/{OUTPUT}", BlobSasPermissions(create=True, write=True), lifetime)
        return read, write

    def take_output(self, prefix: str, max_bytes: int) -> bytes | None:
        """The output the execution wrote; None when it wrote none. Larger than `max_bytes`: the first
        `max_bytes + 1` bytes only (the protocol check then says it is too large)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        blob = self._container().get_blob_client(f"{prefix}/{OUTPUT}")
        try:
            return blob.download_blob(offset=0, length=max_bytes + 1).readall()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code == 416:  # a range of an empty blob
                return b""
            raise

    def clean(self, prefix: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container = self._container()
        for name in (INPUT, OUTPUT):
            with contextlib.suppress(ResourceNotFoundError):
                container.delete_blob(f"{prefix}/{name}")
