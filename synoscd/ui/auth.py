"""Who may read the dashboard and the JSON API (setting SYNOSCD_UI_AUTH).

- off (the default): neither is served; a Function app deployed without the sign-in parameters
  shows nothing.
- easyauth: App Service Authentication (Easy Auth) with Microsoft Entra ID signs users in before a
  request reaches the function (infra/modules/auth.bicep); it strips any X-MS-CLIENT-PRINCIPAL-*
  header a client sends and adds its own, so a request without one did not come through it: 401.
- loopback: the local Functions host; only requests addressed to 127.0.0.1 / localhost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PRINCIPAL_ID = "x-ms-client-principal-id"
PRINCIPAL_NAME = "x-ms-client-principal-name"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""
    user: str | None = None


def decide(mode: str, headers: Mapping[str, str], url: str) -> Decision:
    lowered = {k.lower(): v for k, v in headers.items()}
    if mode == "easyauth":
        if not lowered.get(PRINCIPAL_ID):
            return Decision(False, 401, "sign in first: this app is behind App Service Authentication")
        return Decision(True, user=lowered.get(PRINCIPAL_NAME) or lowered[PRINCIPAL_ID])
    if mode == "loopback":
        host = urlsplit(url).hostname or ""
        if host not in LOOPBACK:
            return Decision(False, 403, "SYNOSCD_UI_AUTH=loopback serves only requests to 127.0.0.1")
        return Decision(True, user=None)
    return Decision(
        False,
        404,
        "the dashboard is off: deploy infra/main.bicep with the Entra ID parameters (it sets "
        "SYNOSCD_UI_AUTH=easyauth)",
    )
