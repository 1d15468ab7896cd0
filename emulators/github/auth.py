"""The GitHub App side: app JWTs, installation tokens (and their expiry through the admin API), the
App and installation endpoints, and who may download."""

from __future__ import annotations

import hmac
import secrets
import string
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from emulators.github.common import (
    APP_EVENTS,
    DEFAULT_PERMISSIONS,
    MSG_NOT_ACCESSIBLE,
    PERMISSION_LEVELS,
    REPO,
    Route,
    gh_error,
    iso_utc,
    json_body,
    node_id,
    not_found,
    stable_id,
)
from emulators.httpbase import HttpError, Request, Response

JWT_LEEWAY = 60  # GitHub tolerates about a minute of clock drift
JWT_MAX_LIFETIME = 600
MSG_JWT_DECODE = "A JSON web token could not be decoded"
MSG_JWT_EXP = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
    "the assertion expires"
)
MSG_JWT_EXP_FAR = "'Expiration time' claim ('exp') is too far in the future"
MSG_JWT_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
)
MSG_JWT_ISS = "'Issuer' claim ('iss') must be an Integer"


class AppAuth:
    """Mixin: GitHub App authentication and the App / installation endpoints."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._tokens: dict[str, float] = {}  # installation token -> expiry (epoch)
        self._token_permissions: dict[str, dict[str, str]] = {}  # installation token -> what it may do
        # One ?token= for codeload/raw links per state: a fresh one per answer would change every
        # contents ETag and defeat conditional requests. Reset and token expiry rotate it.
        self._download_token = secrets.token_hex(20).upper()

    def auth_routes(self) -> list[Route]:
        return [
            ("POST", r"/app/installations/(?P<inst>\d+)/access_tokens", self._create_token, "jwt", False),
            ("GET", r"/app", self._get_app, "jwt", False),
            ("GET", r"/app/installations", self._list_installations, "jwt", False),
            ("GET", r"/app/installations/(?P<inst>\d+)", self._get_installation, "jwt", False),
            ("GET", REPO + r"/installation", self._repo_installation, "jwt", False),
        ]

    def auth_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [("POST", r"/_admin/tokens/expire", self._admin_expire_tokens)]

    def _authenticate(self, req: Request, auth: str) -> tuple[str, Response | None]:
        scheme, _, value = (req.header("Authorization") or "").strip().partition(" ")
        value = value.strip()
        if auth == "jwt":
            if scheme.lower() != "bearer" or not value:
                return "", gh_error(401, MSG_JWT_DECODE)
            problem = self._jwt_problem(value)
            return value, (gh_error(401, problem) if problem else None)
        if scheme.lower() not in ("token", "bearer") or not value:
            return "", gh_error(401, "Requires authentication")
        expiry = self._tokens.get(value)
        if expiry is None or expiry <= time.time():
            return "", gh_error(401, "Bad credentials")
        return value, None

    def _jwt_problem(self, token: str) -> str | None:
        """GitHub's message for an app JWT it would refuse, else None."""
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                leeway=JWT_LEEWAY,
                options={"require": ["exp", "iat", "iss"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.MissingRequiredClaimError) as exc:
            return _jwt_claim_message(exc)
        except jwt.PyJWTError:
            return MSG_JWT_DECODE
        iss = str(claims["iss"])
        if not iss.isdigit():
            return MSG_JWT_ISS
        if int(iss) != self.app_id:
            return MSG_JWT_DECODE  # another app's JWT: GitHub cannot verify it with this app's key
        if float(claims["exp"]) > time.time() + JWT_MAX_LIFETIME + JWT_LEEWAY:
            return MSG_JWT_EXP_FAR
        return None

    def _require(self, req: Request, permission: str, level: str) -> None:
        """GitHub's 403 for an installation token without `permission` at `level` (e.g. a check run
        written by an App that was never granted checks: write)."""
        token = (req.header("Authorization") or "").partition(" ")[2].strip()
        granted = self._token_permissions.get(token, {}).get(permission)
        if PERMISSION_LEVELS.get(granted or "", 0) < PERMISSION_LEVELS[level]:
            raise HttpError(gh_error(403, MSG_NOT_ACCESSIBLE))

    def _download_allowed(self, req: Request) -> bool:
        now = time.time()
        if hmac.compare_digest(req.query.get("token", ""), self._download_token):
            return True
        scheme, _, value = (req.header("Authorization") or "").partition(" ")
        return scheme.lower() in ("token", "bearer") and self._tokens.get(value.strip(), 0) > now

    def _create_token(self, req: Request, inst: str) -> Response:
        if int(inst) != self.installation_id:
            raise not_found()
        body = json_body(req)
        requested = body.get("permissions")
        if requested is not None and not isinstance(requested, dict):
            return gh_error(400, "Problems parsing JSON")
        levels = PERMISSION_LEVELS
        for name, level in (requested or {}).items():
            granted = DEFAULT_PERMISSIONS.get(str(name))
            if granted is None or levels.get(str(level), 9) > levels.get(granted, 0):
                return gh_error(422, "The permissions requested are not granted to this installation.")
        token = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        expires = int(time.time()) + self.token_lifetime
        self._tokens[token] = expires
        permissions = requested or DEFAULT_PERMISSIONS
        self._token_permissions[token] = dict(permissions)
        return Response.json(
            201,
            {
                "token": token,
                "expires_at": iso_utc(expires),
                "permissions": permissions,
                "repository_selection": "all",
            },
        )

    def _installation_json(self, base: str) -> dict[str, Any]:
        inst = self.installation_id
        return {
            "id": inst,
            "account": self._user_json(base, self.account_login),
            "repository_selection": "all",
            "access_tokens_url": f"{base}/app/installations/{inst}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": f"{base}/organizations/{self.account_login}/settings/installations/{inst}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": stable_id(f"user:{self.account_login}"),
            "target_type": "Organization",
            "permissions": DEFAULT_PERMISSIONS,
            "events": APP_EVENTS,
            "created_at": iso_utc(self._started),
            "updated_at": iso_utc(self._started),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def _app_json(self, base: str) -> dict[str, Any]:
        """The App as check runs and suites embed it (GET /app adds installations_count)."""
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": node_id("A", str(self.app_id)),
            "owner": self._user_json(base, self.account_login),
            "name": self.app_slug,
            "description": "SynosCD local stand-in app",
            "external_url": base,
            "html_url": f"{base}/apps/{self.app_slug}",
            "created_at": iso_utc(self._started),
            "updated_at": iso_utc(self._started),
            "permissions": DEFAULT_PERMISSIONS,
            "events": APP_EVENTS,
        }

    def _get_app(self, req: Request) -> Response:
        return Response.json(200, {**self._app_json(req.base_url), "installations_count": 1})

    def _list_installations(self, req: Request) -> Response:
        return Response.json(200, [self._installation_json(req.base_url)])

    def _get_installation(self, req: Request, inst: str) -> Response:
        if int(inst) != self.installation_id:
            raise not_found()
        return Response.json(200, self._installation_json(req.base_url))

    def _repo_installation(self, req: Request, owner: str, repo: str) -> Response:
        self._repo(owner, repo)
        return Response.json(200, self._installation_json(req.base_url))

    def _admin_expire_tokens(self, req: Request) -> Response:
        spec = json_body(req)
        only = str(spec["token"]) if spec.get("token") else None
        targets = [only] if only in self._tokens else ([] if only else list(self._tokens))
        for token in targets:
            self._tokens[token] = 0.0
        if targets:
            self._download_token = secrets.token_hex(20).upper()
        return Response.json(200, {"expired": len(targets)})


def load_public_key(pem: bytes) -> Any:
    """The app's public key; a private key PEM is accepted too (its public half is used)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def _jwt_claim_message(exc: Exception) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return MSG_JWT_EXP
    if isinstance(exc, jwt.ImmatureSignatureError):
        return MSG_JWT_IAT
    claim = getattr(exc, "claim", "")
    return {"exp": MSG_JWT_EXP, "iat": MSG_JWT_IAT, "iss": MSG_JWT_ISS}.get(claim, MSG_JWT_DECODE)
