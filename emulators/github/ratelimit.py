"""Primary and secondary rate limits: the state, the headers every answer carries, `/rate_limit`, and
the admin API that sets them."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from emulators.github.common import MSG_SECONDARY, Route, gh_error, json_body
from emulators.httpbase import Request, Response


@dataclass
class RateState:
    limit: int
    remaining: int
    reset_at: int
    secondary: bool = False
    secondary_status: int = 403
    retry_after: int | None = 60  # None: a secondary limit answered without Retry-After
    secondary_count: int | None = None

    def roll(self, now: float) -> None:
        """A new window once the reset time has passed, as GitHub's hourly window does."""
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = int(now) + 3600

    def core(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reset": self.reset_at,
            "used": self.limit - self.remaining,
            "resource": "core",
        }

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-resource": "core",
        }


class RateLimits:
    """Mixin: the rate-limit family."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._rate = RateState(self.rate_limit, self.rate_limit, int(time.time()) + 3600)

    def ratelimit_routes(self) -> list[Route]:
        return [("GET", r"/rate_limit", self._get_rate_limit, "token", False)]

    def ratelimit_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/_admin/ratelimit", self._admin_get_ratelimit),
            ("PUT", r"/_admin/ratelimit", self._admin_set_ratelimit),
        ]

    def _secondary_limited(self) -> Response | None:
        rate = self._rate
        if not rate.secondary:
            return None
        if rate.secondary_count is not None:
            rate.secondary_count -= 1
            if rate.secondary_count <= 0:
                rate.secondary, rate.secondary_count = False, None
        resp = gh_error(rate.secondary_status, MSG_SECONDARY.format(rid=uuid.uuid4().hex[:16].upper()))
        if rate.retry_after is not None:  # GitHub sends Retry-After only sometimes
            resp.headers["retry-after"] = str(rate.retry_after)
        return self._decorate(resp)

    def _get_rate_limit(self, req: Request) -> Response:
        core = self._rate.core()
        reset = self._rate.reset_at

        def other(limit: int, resource: str) -> dict[str, Any]:
            return {"limit": limit, "remaining": limit, "reset": reset, "used": 0, "resource": resource}

        resources = {
            "core": core,
            "search": other(30, "search"),
            "graphql": other(5000, "graphql"),
            "code_search": other(10, "code_search"),
            "integration_manifest": other(5000, "integration_manifest"),
        }
        return Response.json(200, {"resources": resources, "rate": core})

    def _admin_get_ratelimit(self, req: Request) -> Response:
        return Response.json(200, asdict(self._rate))

    def _admin_set_ratelimit(self, req: Request) -> Response:
        spec = json_body(req)
        rate = self._rate
        if "limit" in spec:
            rate.limit = int(spec["limit"])
            rate.remaining = min(rate.remaining, rate.limit)
        if "reset_in" in spec:
            rate.reset_at = int(time.time() + float(spec["reset_in"]))
        if "remaining" in spec:
            rate.remaining = max(0, min(int(spec["remaining"]), rate.limit))
        if "secondary" in spec:
            rate.secondary = bool(spec["secondary"])
            rate.secondary_count = None
        if "secondary_status" in spec:
            rate.secondary_status = 429 if int(spec["secondary_status"]) == 429 else 403
        if "retry_after" in spec:
            rate.retry_after = None if spec["retry_after"] is None else max(0, int(spec["retry_after"]))
        if spec.get("secondary_count") is not None:
            rate.secondary_count = int(spec["secondary_count"])
        return Response.json(200, asdict(rate))
