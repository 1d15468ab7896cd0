"""Tokens for the stand-ins: a managed-identity endpoint speaking the App Service protocol
(`IDENTITY_ENDPOINT` / `IDENTITY_HEADER`, api-version 2019-08-01) so azure-identity's
`ManagedIdentityCredential` runs unchanged, and a verifier the ARM and Key Vault stand-ins share."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from emulators.httpbase import Request, Response

TENANT_ID = "72f988bf-0000-4000-8000-00000000feed"
DEFAULT_CLIENT_ID = "11111111-2222-4333-8444-555555555555"


class TokenIssuer:
    """Issues HS256 JWTs whose audience is the requested resource; only this issuer's tokens verify."""

    def __init__(self, identity_header: str | None = None, lifetime: int = 3600) -> None:
        self._key = secrets.token_bytes(32)
        self.identity_header = identity_header or secrets.token_urlsafe(24)
        self.lifetime = lifetime
        self.issued = 0

    def issue(self, resource: str, client_id: str | None) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "aud": resource.removesuffix("/.default"),
            "iat": now,
            "exp": now + self.lifetime,
            "tid": TENANT_ID,
            # Entra's issuer shape: Azurite's OAuth check (blob, --oauth basic) accepts only these.
            "iss": f"https://sts.windows.net/{TENANT_ID}/",
            "nbf": now,
            "appid": client_id or DEFAULT_CLIENT_ID,
            "oid": client_id or DEFAULT_CLIENT_ID,
        }
        self.issued += 1
        return {
            "access_token": jwt.encode(claims, self._key, algorithm="HS256"),
            "expires_on": str(now + self.lifetime),
            "resource": claims["aud"],
            "token_type": "Bearer",
            "client_id": claims["appid"],
        }

    def verify(self, authorization: str | None, audience_prefix: str) -> dict[str, Any] | None:
        """Claims of a valid `Bearer` token whose audience starts with `audience_prefix`, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                self._key,
                algorithms=["HS256"],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        if not str(claims.get("aud", "")).startswith(audience_prefix):
            return None
        return claims

    def handle_token_request(self, req: Request) -> Response:
        """GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=...[&client_id=...]"""
        if req.header("X-IDENTITY-HEADER") != self.identity_header:
            return Response.json(
                401, {"error": "invalid_request", "error_description": "bad X-IDENTITY-HEADER"}
            )
        resource = req.query.get("resource")
        if not resource:
            return Response.json(
                400, {"error": "invalid_request", "error_description": "resource is required"}
            )
        return Response.json(200, self.issue(resource, req.query.get("client_id")))
