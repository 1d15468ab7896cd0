"""Key Vault secrets stand-in (api-version 7.x): challenge authentication as the real service does
(an unauthenticated first request gets 401 with `WWW-Authenticate`), get latest and by version,
set (new version each time), list versions, and 404 `SecretNotFound`.

Admin API (besides the base's): PUT /_admin/secrets/{name} {"value"} sets a secret without a token.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from emulators.httpbase import Emulator, HttpError, Request, Response
from emulators.identity import TENANT_ID, TokenIssuer

VAULT_AUDIENCE = "https://vault.azure.net"


class KeyVaultEmulator(Emulator):
    name = "keyvault"

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__()
        self.issuer = issuer
        self.secrets: dict[str, list[dict[str, Any]]] = {}
        self._seeds: list[tuple[str, str, str]] = []  # (base_url, name, value): restored by reset
        self.add_route("GET", r"/secrets/(?P<name>[0-9A-Za-z-]+)", self._get_latest)
        self.add_route("GET", r"/secrets/(?P<name>[0-9A-Za-z-]+)/versions", self._list_versions)
        self.add_route(
            "GET", r"/secrets/(?P<name>[0-9A-Za-z-]+)/(?P<version>[0-9a-f]{32})", self._get_version
        )
        self.add_route("PUT", r"/secrets/(?P<name>[0-9A-Za-z-]+)", self._set)
        self.add_route("DELETE", r"/secrets/(?P<name>[0-9A-Za-z-]+)", self._delete)
        self.add_route("GET", r"/secrets", self._list)
        self.add_admin_route("PUT", r"/_admin/secrets/(?P<name>[0-9A-Za-z-]+)", self._admin_set)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.secrets.clear()
            for base_url, name, value in self._seeds:
                self.put_secret(base_url, name, value)

    def seed(self, base_url: str, name: str, value: str) -> None:
        """A secret the stack starts with; `reset` brings it back."""
        self._seeds.append((base_url, name, value))
        self.put_secret(base_url, name, value)

    def error_response(self, status: int, code: str, message: str) -> Response:
        return Response.json(status, {"error": {"code": code, "message": message}})

    def _guard(self, req: Request) -> None:
        if self.issuer.verify(req.header("Authorization"), VAULT_AUDIENCE) is None:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", '
                f'resource="{VAULT_AUDIENCE}"'
            )
            raise HttpError(
                Response.json(
                    401,
                    {
                        "error": {
                            "code": "Unauthorized",
                            "message": "AKV10000: Request is missing a Bearer or PoP token.",
                        }
                    },
                    {"WWW-Authenticate": challenge},
                )
            )
        if "api-version" not in req.query:
            raise HttpError(
                self.error_response(400, "BadParameter", "The api-version query parameter is required.")
            )

    def put_secret(
        self,
        base_url: str,
        name: str,
        value: str,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        version = uuid.uuid4().hex
        now = int(time.time())
        bundle: dict[str, Any] = {
            "value": value,
            "id": f"{base_url}/secrets/{name}/{version}",
            "attributes": {
                "enabled": True,
                "created": now,
                "updated": now,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": tags or {},
        }
        if content_type:
            bundle["contentType"] = content_type
        self.secrets.setdefault(name.lower(), []).append(bundle)
        return bundle

    def _versions(self, name: str) -> list[dict[str, Any]]:
        versions = self.secrets.get(name.lower())
        if not versions:
            raise HttpError(
                self.error_response(
                    404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
                )
            )
        return versions

    def _get_latest(self, req: Request, name: str) -> Response:
        self._guard(req)
        return Response.json(200, self._versions(name)[-1])

    def _get_version(self, req: Request, name: str, version: str) -> Response:
        self._guard(req)
        for bundle in self._versions(name):
            if bundle["id"].endswith("/" + version):
                return Response.json(200, bundle)
        raise HttpError(
            self.error_response(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name}/{version} was not found in this key vault.",
            )
        )

    def _items(self, bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in b.items() if k != "value"} for b in bundles]

    def _list_versions(self, req: Request, name: str) -> Response:
        self._guard(req)
        return Response.json(200, {"value": self._items(self._versions(name)), "nextLink": None})

    def _list(self, req: Request) -> Response:
        self._guard(req)
        latest = [versions[-1] for versions in self.secrets.values()]
        items = [dict(item, id=item["id"].rsplit("/", 1)[0]) for item in self._items(latest)]
        return Response.json(200, {"value": items, "nextLink": None})

    def _set(self, req: Request, name: str) -> Response:
        self._guard(req)
        body = req.json() or {}
        if "value" not in body:
            raise HttpError(self.error_response(400, "BadParameter", "The secret value is required."))
        return Response.json(
            200,
            self.put_secret(
                req.base_url, name, str(body["value"]), body.get("contentType"), body.get("tags")
            ),
        )

    def _delete(self, req: Request, name: str) -> Response:
        self._guard(req)
        latest = self._versions(name)[-1]
        del self.secrets[name.lower()]
        return Response.json(
            200,
            {
                **{k: v for k, v in latest.items() if k != "value"},
                "recoveryId": f"{req.base_url}/deletedsecrets/{name}",
            },
        )

    def _admin_set(self, req: Request, name: str) -> Response:
        body = req.json() or {}
        bundle = self.put_secret(req.base_url, name, str(body["value"]), body.get("contentType"))
        return Response.json(200, {"id": bundle["id"]})
